//! Reading credentials from HTTP requests (RFC 9110 §11.6.2, RFC 6750 §2.1, RFC 9449 §7.1).

use crate::rejection::{ErrorCode, Rejection, Scheme};

/// Longest `Authorization` header value read.
pub const MAX_AUTHORIZATION_LEN: usize = 8 * 1024 + 16;

/// Credentials from an `Authorization` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Credentials<'a> {
    /// `Bearer` or `DPoP`.
    pub scheme: Scheme,
    /// The access token (token68 syntax checked, otherwise untrusted).
    pub token: &'a str,
}

/// Reads the request's `Authorization` header values.
///
/// No header → `Ok(None)`. More than one, an unknown scheme, or a value that
/// is not `scheme SP token68` → a rejection (`invalid_request`, 400; an
/// unsupported scheme gets a bare 401 challenge as RFC 6750 §3.1 advises).
pub fn authorization<'a>(values: &[&'a str]) -> Result<Option<Credentials<'a>>, Rejection> {
    let value = match values {
        [] => return Ok(None),
        [one] => *one,
        _ => {
            return Err(Rejection::new(
                ErrorCode::InvalidRequest,
                Scheme::Bearer,
                "more than one Authorization header",
            ))
        }
    };
    let malformed = || {
        Rejection::new(
            ErrorCode::InvalidRequest,
            Scheme::Bearer,
            "malformed Authorization header",
        )
    };
    if value.len() > MAX_AUTHORIZATION_LEN {
        return Err(Rejection::new(
            ErrorCode::InvalidRequest,
            Scheme::Bearer,
            "Authorization header too large",
        ));
    }
    let (scheme, token) = value.split_once(' ').ok_or_else(malformed)?;
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Scheme::DPoP
    } else {
        return Err(Rejection {
            code: None,
            ..Rejection::new(
                ErrorCode::InvalidToken,
                Scheme::Bearer,
                "unsupported authorization scheme",
            )
        });
    };
    let token = token.trim_start_matches(' ');
    if !is_token68(token) {
        return Err(Rejection {
            scheme,
            ..malformed()
        });
    }
    Ok(Some(Credentials { scheme, token }))
}

/// `token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`
fn is_token68(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bearer_and_dpop_case_insensitively() {
        assert_eq!(
            authorization(&["bearer abc.def.ghi"]).unwrap(),
            Some(Credentials {
                scheme: Scheme::Bearer,
                token: "abc.def.ghi"
            })
        );
        assert_eq!(
            authorization(&["DPoP a.b.c"]).unwrap().unwrap().scheme,
            Scheme::DPoP
        );
        assert_eq!(authorization(&[]).unwrap(), None);
    }

    #[test]
    fn refuses_duplicates_garbage_and_other_schemes() {
        assert_eq!(
            authorization(&["Bearer a", "Bearer b"])
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(authorization(&["Bearer"]).unwrap_err().status(), 400);
        assert_eq!(authorization(&["Bearer a b"]).unwrap_err().status(), 400);
        assert_eq!(
            authorization(&["Bearer a\u{e9}"]).unwrap_err().status(),
            400
        );
        let basic = authorization(&["Basic dXNlcjpwYXNz"]).unwrap_err();
        assert_eq!((basic.status(), basic.code), (401, None));
    }
}
