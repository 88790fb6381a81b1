//! One refusal type, rendered once into an HTTP response.
//!
//! Status and `WWW-Authenticate` follow RFC 6750 §3 for Bearer and RFC 9449
//! §7.1 for DPoP; the JSON body is `{"error", "error_description",
//! "expires_at"?}`. Descriptions are fixed texts chosen here: no token, proof
//! or secret can reach a response through this type.

use crate::access_token::AccessTokenError;
use crate::alg::{self, Algorithm};
use std::borrow::Cow;

/// The authentication scheme a challenge or error belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// RFC 6750.
    Bearer,
    /// RFC 9449.
    DPoP,
}

impl Scheme {
    /// The scheme name as written in headers.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Bearer => "Bearer",
            Self::DPoP => "DPoP",
        }
    }
}

/// The error code of a refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    /// RFC 6750 §3.1, 400.
    InvalidRequest,
    /// RFC 6750 §3.1, 401.
    InvalidToken,
    /// RFC 6750 §3.1, 403.
    InsufficientScope,
    /// RFC 9449 §7.1, 401.
    InvalidDpopProof,
    /// RFC 9449 §8–9, 401 with a fresh `DPoP-Nonce`.
    UseDpopNonce,
    /// 403: no route allows the path (route policy default deny).
    AccessDenied,
    /// 429, rate limited (RFC 6585 §4).
    RateLimited,
    /// 500: the edge or origin could not decide (configuration, unreachable keys).
    ServerError,
}

impl ErrorCode {
    /// The registered error string.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
            Self::AccessDenied => "access_denied",
            Self::RateLimited => "rate_limited",
            Self::ServerError => "server_error",
        }
    }
}

/// A refused request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The error; `None` when the request carried no credentials at all, in
    /// which case RFC 6750 §3.1 says the challenge carries no error code.
    pub code: Option<ErrorCode>,
    /// A fixed, human-readable description (never request data).
    pub description: Cow<'static, str>,
    /// The scheme the client used (or would be asked to use).
    pub scheme: Scheme,
    /// For an expired token, when it expired.
    pub expires_at: Option<i64>,
    /// A nonce the client must use in its next DPoP proof.
    pub dpop_nonce: Option<String>,
    /// For `insufficient_scope`, the scopes required.
    pub scope: Option<String>,
    /// For 429, seconds until a retry may succeed.
    pub retry_after: Option<u64>,
}

/// What the resource offers, for rendering challenges.
#[derive(Clone, Debug, Default)]
pub struct Challenge<'a> {
    /// `realm`, if any.
    pub realm: Option<&'a str>,
    /// Offer the Bearer scheme.
    pub bearer: bool,
    /// Offer the DPoP scheme with these algorithms (empty: DPoP not offered).
    pub dpop_algs: &'a [Algorithm],
}

impl Rejection {
    /// A refusal with `code` and a fixed description.
    pub fn new(code: ErrorCode, scheme: Scheme, description: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code: Some(code),
            description: description.into(),
            scheme,
            expires_at: None,
            dpop_nonce: None,
            scope: None,
            retry_after: None,
        }
    }

    /// No credentials were presented.
    #[must_use]
    pub fn missing_credentials() -> Self {
        Self {
            code: None,
            ..Self::new(
                ErrorCode::InvalidToken,
                Scheme::Bearer,
                "no access token was presented",
            )
        }
    }

    /// An access token refused for `err`, presented with `scheme`.
    #[must_use]
    pub fn from_access_token(err: &AccessTokenError, scheme: Scheme) -> Self {
        let mut r = Self::new(ErrorCode::InvalidToken, scheme, err.to_string());
        if let AccessTokenError::Expired { expired_at } = err {
            r.expires_at = Some(*expired_at);
        }
        r
    }

    /// The HTTP status.
    #[must_use]
    pub fn status(&self) -> u16 {
        match self.code {
            None
            | Some(
                ErrorCode::InvalidToken | ErrorCode::InvalidDpopProof | ErrorCode::UseDpopNonce,
            ) => 401,
            Some(ErrorCode::InvalidRequest) => 400,
            Some(ErrorCode::InsufficientScope | ErrorCode::AccessDenied) => 403,
            Some(ErrorCode::RateLimited) => 429,
            Some(ErrorCode::ServerError) => 500,
        }
    }

    /// `WWW-Authenticate` values, one per offered scheme; the error is
    /// attached to the scheme the client used. Empty for 429, 500 and `access_denied`.
    #[must_use]
    pub fn www_authenticate(&self, offer: &Challenge<'_>) -> Vec<String> {
        if matches!(
            self.code,
            Some(ErrorCode::RateLimited | ErrorCode::ServerError | ErrorCode::AccessDenied)
        ) {
            return Vec::new();
        }
        let mut out = Vec::new();
        for scheme in [Scheme::DPoP, Scheme::Bearer] {
            let offered = match scheme {
                Scheme::Bearer => offer.bearer,
                Scheme::DPoP => !offer.dpop_algs.is_empty(),
            };
            if !offered && scheme != self.scheme {
                continue;
            }
            let mut params: Vec<String> = Vec::new();
            if let Some(realm) = offer.realm {
                params.push(format!("realm=\"{}\"", quoted(realm)));
            }
            if scheme == self.scheme {
                if let Some(code) = self.code {
                    params.push(format!("error=\"{}\"", code.as_str()));
                    params.push(format!(
                        "error_description=\"{}\"",
                        quoted(&self.description)
                    ));
                }
                if let Some(scope) = &self.scope {
                    params.push(format!("scope=\"{}\"", quoted(scope)));
                }
            }
            if scheme == Scheme::DPoP && !offer.dpop_algs.is_empty() {
                params.push(format!("algs=\"{}\"", alg::names(offer.dpop_algs)));
            }
            out.push(if params.is_empty() {
                scheme.name().to_owned()
            } else {
                format!("{} {}", scheme.name(), params.join(", "))
            });
        }
        out
    }

    /// Every response header to send: each `WWW-Authenticate` value,
    /// `DPoP-Nonce` when a nonce is required, `Retry-After` for 429, and
    /// `Cache-Control: no-store`.
    #[must_use]
    pub fn headers(&self, offer: &Challenge<'_>) -> Vec<(&'static str, String)> {
        let mut h: Vec<(&'static str, String)> = self
            .www_authenticate(offer)
            .into_iter()
            .map(|v| ("WWW-Authenticate", v))
            .collect();
        if let Some(n) = &self.dpop_nonce {
            h.push(("DPoP-Nonce", n.clone()));
        }
        if let Some(secs) = self.retry_after {
            h.push(("Retry-After", secs.to_string()));
        }
        h.push(("Cache-Control", "no-store".to_owned()));
        h
    }

    /// The JSON body.
    #[must_use]
    pub fn body(&self) -> String {
        let mut m = serde_json::Map::new();
        m.insert(
            "error".into(),
            self.code.unwrap_or(ErrorCode::InvalidToken).as_str().into(),
        );
        m.insert("error_description".into(), self.description.as_ref().into());
        if let Some(exp) = self.expires_at {
            m.insert("expires_at".into(), exp.into());
        }
        serde_json::Value::Object(m).to_string()
    }
}

/// RFC 6750 §3: error_description and scope use %x20-21 / %x23-5B / %x5D-7E only.
fn quoted(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            ' ' | '!' | '#'..='[' | ']'..='~' => c,
            _ => '?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_credentials_carry_no_error_code() {
        let r = Rejection::missing_credentials();
        assert_eq!(r.status(), 401);
        let offer = Challenge {
            realm: None,
            bearer: true,
            dpop_algs: &[Algorithm::Es256],
        };
        assert_eq!(
            r.www_authenticate(&offer),
            vec!["DPoP algs=\"ES256\"".to_owned(), "Bearer".to_owned()]
        );
    }

    #[test]
    fn expired_tokens_say_when() {
        let r = Rejection::from_access_token(
            &AccessTokenError::Expired { expired_at: 42 },
            Scheme::Bearer,
        );
        let offer = Challenge {
            realm: Some("api"),
            bearer: true,
            dpop_algs: &[],
        };
        assert_eq!(
            r.www_authenticate(&offer),
            vec![r#"Bearer realm="api", error="invalid_token", error_description="the access token expired""#.to_owned()]
        );
        let body: serde_json::Value = serde_json::from_str(&r.body()).unwrap();
        assert_eq!(body["error"], "invalid_token");
        assert_eq!(body["expires_at"], 42);
    }

    #[test]
    fn headers_carry_nonce_and_retry_after() {
        let mut r = Rejection::new(ErrorCode::UseDpopNonce, Scheme::DPoP, "nonce");
        r.dpop_nonce = Some("n1".into());
        let offer = Challenge {
            realm: None,
            bearer: false,
            dpop_algs: &[Algorithm::Es256],
        };
        let h = r.headers(&offer);
        assert!(h.contains(&("DPoP-Nonce", "n1".to_owned())));
        assert!(h
            .iter()
            .any(|(n, v)| *n == "WWW-Authenticate" && v.contains("use_dpop_nonce")));
        let mut r = Rejection::new(ErrorCode::RateLimited, Scheme::Bearer, "slow down");
        r.retry_after = Some(3);
        let h = r.headers(&offer);
        assert!(h.contains(&("Retry-After", "3".to_owned())));
        assert!(!h.iter().any(|(n, _)| *n == "WWW-Authenticate"));
        let denied = Rejection::new(ErrorCode::AccessDenied, Scheme::Bearer, "no");
        assert_eq!(
            (denied.status(), denied.www_authenticate(&offer).len()),
            (403, 0)
        );
    }

    #[test]
    fn dpop_errors_go_on_the_dpop_challenge() {
        let r = Rejection::new(ErrorCode::InvalidDpopProof, Scheme::DPoP, "bad \"proof\"");
        let offer = Challenge {
            realm: None,
            bearer: false,
            dpop_algs: &[Algorithm::Es256, Algorithm::EdDsa],
        };
        assert_eq!(
            r.www_authenticate(&offer),
            vec![r#"DPoP error="invalid_dpop_proof", error_description="bad ?proof?", algs="ES256 EdDSA""#.to_owned()]
        );
        assert_eq!(
            Rejection::new(ErrorCode::InsufficientScope, Scheme::Bearer, "x").status(),
            403
        );
        assert_eq!(
            Rejection::new(ErrorCode::InvalidRequest, Scheme::Bearer, "x").status(),
            400
        );
    }
}
