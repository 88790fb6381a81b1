//! Header rules for forwarding, kept apart from the I/O so they are tested
//! natively: which incoming headers could pose as the edge's identity
//! headers, how the edge's CORS list values merge into the upstream's, and
//! the NUL-separated text in which the request's headers and the headers to
//! set cross between wasm and JS in one call each (see `proxy`).

/// The request as read in one call: `method`, `url` and its headers
/// (`(name, value)`, names lower-case).
pub struct RequestFields<'a> {
    /// The method, as sent.
    pub method: &'a str,
    /// The URL.
    pub url: &'a str,
    /// Every header, in the runtime's order.
    pub headers: Vec<(String, String)>,
}

/// Reads `count NUL method NUL url (NUL name NUL value)*` (what the JS side
/// writes). `None` unless exactly `count` pairs follow: a NUL inside a
/// value would shift every later name and value (a forged
/// `CF-Connecting-IP`, the rate limits' key), so such a request is refused
/// whole rather than read.
#[must_use]
pub fn parse_request_fields(all: &str) -> Option<RequestFields<'_>> {
    let mut parts = all.split('\0');
    let count: usize = parts.next()?.parse().ok()?;
    let method = parts.next()?;
    let url = parts.next()?;
    let fields: Vec<&str> = parts.collect();
    if Some(fields.len()) != count.checked_mul(2) {
        return None;
    }
    let headers = fields
        .chunks_exact(2)
        .filter_map(|nv| match nv {
            [name, value] => Some((name.to_ascii_lowercase(), (*value).to_owned())),
            _ => None,
        })
        .collect();
    Some(RequestFields {
        method,
        url,
        headers,
    })
}

/// `items` joined by NUL for the JS side; `None` if one holds a NUL (it
/// would split into other names and values there: the runtime refuses such
/// a header value anyway, so refusing here changes nothing else).
#[must_use]
pub fn joined<'a>(items: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut out = String::new();
    for (i, item) in items.into_iter().enumerate() {
        if item.contains('\0') {
            return None;
        }
        if i > 0 {
            out.push('\0');
        }
        out.push_str(item);
    }
    Some(out)
}

/// The prefix of every identity header the edge sets (and strips).
pub const IDENTITY_PREFIX: &str = "gatehouse-";

/// Whether an incoming header could pose as an identity header: its name,
/// lower-cased and with `_` read as `-`, starts with [`IDENTITY_PREFIX`].
#[must_use]
pub fn is_identity_header(name: &str) -> bool {
    name.len() >= IDENTITY_PREFIX.len()
        && name
            .bytes()
            .zip(IDENTITY_PREFIX.bytes())
            .all(|(a, b)| a.to_ascii_lowercase() == b || (a == b'_' && b == b'-'))
}

/// A comma-separated header list with `add` appended where missing (compared case-insensitively).
pub fn merge_list(existing: Option<String>, add: &[&str]) -> String {
    let mut out: Vec<String> = existing
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .collect();
    for a in add {
        if !out.iter().any(|m| m.eq_ignore_ascii_case(a) || m == "*") {
            out.push((*a).to_owned());
        }
    }
    out.join(", ")
}

/// The `Gatehouse-Roles` value: the roles separated by single spaces, each
/// with `%`, space and every byte outside visible ASCII percent-encoded
/// (UTF-8), so any role name survives as one header value and splits back
/// unambiguously (Keycloak role names may hold spaces and non-ASCII text).
#[must_use]
pub fn roles_value(roles: &[String]) -> String {
    roles
        .iter()
        .map(|r| {
            let mut out = String::with_capacity(r.len());
            for b in r.bytes() {
                if (0x21..=0x7e).contains(&b) && b != b'%' {
                    out.push(char::from(b));
                } else {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            out
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_one_header_value_that_splits_back() {
        let roles = vec![
            "admin".to_owned(),
            "read only".to_owned(),
            "100%".to_owned(),
            "prüfer".to_owned(),
        ];
        assert_eq!(roles_value(&roles), "admin read%20only 100%25 pr%C3%BCfer");
    }

    #[test]
    fn identity_headers_are_recognised_in_every_spelling() {
        for name in [
            "gatehouse-sub",
            "Gatehouse-Sub",
            "gatehouse_sub",
            "Gatehouse_Sub",
            "GATEHOUSE_CLIENT_ID",
            "gatehouse-assertion",
            "gatehouse_",
        ] {
            assert!(is_identity_header(name), "{name}");
        }
        for name in [
            "gatehouse",
            "x-gatehouse-sub",
            "gatehousesub",
            "authorization",
        ] {
            assert!(!is_identity_header(name), "{name}");
        }
    }

    #[test]
    fn request_fields_are_read_and_a_shifted_list_is_refused() {
        let r =
            parse_request_fields("2\0GET\0https://e/x\0authorization\0Bearer t\0X-A\0").unwrap();
        assert_eq!((r.method, r.url), ("GET", "https://e/x"));
        assert_eq!(
            r.headers,
            [
                ("authorization".to_owned(), "Bearer t".to_owned()),
                ("x-a".to_owned(), String::new())
            ]
        );
        assert!(parse_request_fields("0\0GET\0https://e/")
            .unwrap()
            .headers
            .is_empty());
        // A NUL in a value: one more field than the count says.
        let forged = "1\0GET\0https://e/\0x\0a\0cf-connecting-ip\0\x31.2.3.4";
        assert!(parse_request_fields(forged).is_none());
        assert!(parse_request_fields("1\0GET\0https://e/\0x\0a\0b").is_none());
        assert!(parse_request_fields("1\0GET\0https://e/").is_none());
        assert!(parse_request_fields("GET\0https://e/").is_none());
    }

    /// A NUL anywhere a caller's byte could sit (in the method, the URL, a
    /// name or a value, at either end of one) always adds a field, so no
    /// placement lines the text up again with its count: each is refused,
    /// never read as other names and values.
    #[test]
    fn no_extra_nul_anywhere_is_read_as_other_fields() {
        let text = "2\0GET\0https://e/x\0x-a\0v\0cf-connecting-ip\x001.2.3.4";
        assert!(parse_request_fields(text).is_some());
        let count_len = text.find('\0').unwrap();
        for at in count_len + 1..=text.len() {
            for extra in ["\0", "\0\0", "\0gatehouse-sub\0evil"] {
                let shifted = format!("{}{extra}{}", &text[..at], &text[at..]);
                assert!(parse_request_fields(&shifted).is_none(), "{shifted:?}");
            }
        }
    }

    #[test]
    fn joined_refuses_a_nul() {
        assert_eq!(joined(["a", "b", ""]).as_deref(), Some("a\0b\0"));
        assert_eq!(joined([]).as_deref(), Some(""));
        assert!(joined(["a", "sub\0gatehouse-scope"]).is_none());
    }

    #[test]
    fn lists_are_merged_not_replaced() {
        assert_eq!(
            merge_list(Some("Authorization, Accept-Encoding".into()), &["Origin"]),
            "Authorization, Accept-Encoding, Origin"
        );
        assert_eq!(merge_list(None, &["Origin"]), "Origin");
        assert_eq!(
            merge_list(
                Some("x-trace, dpop-nonce".into()),
                &["DPoP-Nonce", "RateLimit"]
            ),
            "x-trace, dpop-nonce, RateLimit"
        );
        assert_eq!(merge_list(Some("*".into()), &["RateLimit"]), "*");
    }
}
