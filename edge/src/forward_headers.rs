//! Header rules for forwarding, kept apart from the I/O so they are tested
//! natively: which incoming headers could pose as the edge's identity
//! headers, and how the edge's CORS list values merge into the upstream's.

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
