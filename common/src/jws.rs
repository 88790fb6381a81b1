//! Compact JWS parsing (RFC 7515 §7.1) with the rules of RFC 8725 applied
//! before anything is trusted.
//!
//! Size caps come first, before any decoding. The header must name an
//! asymmetric algorithm we implement (`none` and `HS*` are refused by
//! [`Algorithm::from_name`]); any `crit` entry is refused because we
//! implement no extensions (RFC 7515 §4.1.11); `b64: false` (RFC 7797),
//! `zip` and nested JWTs (`cty: JWT`) are refused; `jku`, `x5u` and `x5c`
//! are never followed — they are simply not read.

use crate::alg::{Algorithm, AlgorithmRefusal};
use crate::{b64, json};
use serde_json::{Map, Value};

/// Size caps, checked before decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest accepted compact serialization, in bytes.
    pub max_len: usize,
    /// Longest accepted base64url header segment, in bytes.
    pub max_header_len: usize,
}

impl Limits {
    /// Access tokens: 8 KiB overall, 1 KiB header.
    pub const ACCESS_TOKEN: Limits = Limits {
        max_len: 8 * 1024,
        max_header_len: 1024,
    };
    /// DPoP proofs: the header carries a public JWK (RSA 8192 bits fits in 2.5 KiB).
    pub const DPOP_PROOF: Limits = Limits {
        max_len: 8 * 1024,
        max_header_len: 4 * 1024,
    };
}

/// Why a compact JWS was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwsError {
    /// Longer than the cap (checked before any decoding).
    #[error("JWS longer than {limit} bytes")]
    TooLarge {
        /// The cap in bytes.
        limit: usize,
    },
    /// Not three dot-separated base64url segments.
    #[error("not a compact JWS")]
    Malformed,
    /// Five segments: a JWE. Encrypted tokens are not accepted.
    #[error("encrypted (JWE) tokens are not accepted")]
    Encrypted,
    /// A segment is not strict base64url.
    #[error("JWS {part} is not base64url")]
    Base64 {
        /// Which segment: `header`, `payload` or `signature`.
        part: &'static str,
    },
    /// The header or payload is not a duplicate-free JSON object.
    #[error("JWS {part}: {error}")]
    Json {
        /// Which segment.
        part: &'static str,
        /// What was wrong.
        error: json::JsonError,
    },
    /// The header has no `alg`, or it is not a string.
    #[error("JWS header has no alg")]
    MissingAlgorithm,
    /// The header's `alg` is refused.
    #[error("{0}")]
    Algorithm(AlgorithmRefusal),
    /// The header lists critical extensions (`crit`); we implement none.
    #[error("critical header extensions are not supported")]
    CriticalExtension,
    /// A header parameter we refuse outright (`b64`, `zip`, or `cty: JWT`).
    #[error("header parameter `{name}` is not accepted")]
    ForbiddenHeader {
        /// The parameter.
        name: &'static str,
    },
    /// A header parameter has the wrong JSON type.
    #[error("header parameter `{name}` is invalid")]
    InvalidHeader {
        /// The parameter.
        name: &'static str,
    },
    /// The signature length is wrong for the algorithm (P1363 for ECDSA).
    #[error("signature has the wrong length")]
    SignatureLength,
}

/// A JOSE header that passed the generic rules.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    /// The algorithm the header claims; only ever compared with the key's.
    pub alg: Algorithm,
    /// `typ`, as written.
    pub typ: Option<String>,
    /// `kid`, used only as a lookup key.
    pub kid: Option<String>,
    /// An embedded `jwk`, still unvalidated (only DPoP proofs may carry one).
    pub jwk: Option<Map<String, Value>>,
}

/// A compact JWS whose structure is valid but whose signature is unchecked.
#[derive(Clone, Debug)]
pub struct UntrustedJws<'a> {
    /// The header.
    pub header: Header,
    /// The payload, a duplicate-free JSON object.
    pub claims: Map<String, Value>,
    signing_input: &'a str,
    signature: Vec<u8>,
}

impl<'a> UntrustedJws<'a> {
    /// `BASE64URL(header) '.' BASE64URL(payload)` — the bytes the signature covers.
    #[must_use]
    pub fn signing_input(&self) -> &'a [u8] {
        self.signing_input.as_bytes()
    }

    /// The decoded signature.
    #[must_use]
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }
}

/// Whether a `typ` value names `expected` (e.g. `at+jwt`): media types are
/// case-insensitive and the `application/` prefix may be omitted (RFC 7515 §4.1.9).
#[must_use]
pub fn typ_is(typ: Option<&str>, expected: &str) -> bool {
    let Some(t) = typ else { return false };
    let t = t.to_ascii_lowercase();
    let t = t.strip_prefix("application/").unwrap_or(&t);
    t == expected
}

/// Parses a compact JWS under `limits`.
pub fn parse<'a>(raw: &'a str, limits: &Limits) -> Result<UntrustedJws<'a>, JwsError> {
    if raw.len() > limits.max_len {
        return Err(JwsError::TooLarge {
            limit: limits.max_len,
        });
    }
    let mut parts = raw.split('.');
    let (Some(h), Some(p), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(JwsError::Malformed);
    };
    let rest = parts.count();
    if rest == 2 {
        return Err(JwsError::Encrypted);
    }
    if rest != 0 || h.is_empty() || s.is_empty() {
        return Err(JwsError::Malformed);
    }
    if h.len() > limits.max_header_len {
        return Err(JwsError::TooLarge {
            limit: limits.max_header_len,
        });
    }
    let header_bytes = b64::decode(h).map_err(|_| JwsError::Base64 { part: "header" })?;
    let header_map = json::parse_object(&header_bytes).map_err(|error| JwsError::Json {
        part: "header",
        error,
    })?;
    let header = read_header(header_map)?;
    let payload = b64::decode(p).map_err(|_| JwsError::Base64 { part: "payload" })?;
    let claims = json::parse_object(&payload).map_err(|error| JwsError::Json {
        part: "payload",
        error,
    })?;
    let signature = b64::decode(s).map_err(|_| JwsError::Base64 { part: "signature" })?;
    if let Some(len) = header.alg.fixed_signature_len() {
        if signature.len() != len {
            return Err(JwsError::SignatureLength);
        }
    }
    let signing_input = raw
        .get(..h.len() + 1 + p.len())
        .ok_or(JwsError::Malformed)?;
    Ok(UntrustedJws {
        header,
        claims,
        signing_input,
        signature,
    })
}

fn read_header(mut m: Map<String, Value>) -> Result<Header, JwsError> {
    let alg = match m.get("alg") {
        Some(Value::String(a)) => Algorithm::from_name(a).map_err(JwsError::Algorithm)?,
        _ => return Err(JwsError::MissingAlgorithm),
    };
    if m.contains_key("crit") {
        return Err(JwsError::CriticalExtension);
    }
    if m.contains_key("b64") {
        return Err(JwsError::ForbiddenHeader { name: "b64" });
    }
    if m.contains_key("zip") {
        return Err(JwsError::ForbiddenHeader { name: "zip" });
    }
    match m.get("cty") {
        None => {}
        Some(Value::String(c)) if typ_is(Some(c), "jwt") => {
            return Err(JwsError::ForbiddenHeader { name: "cty" })
        }
        Some(Value::String(_)) => {}
        Some(_) => return Err(JwsError::InvalidHeader { name: "cty" }),
    }
    let typ = opt_string(&m, "typ")?;
    let kid = opt_string(&m, "kid")?;
    if kid
        .as_ref()
        .is_some_and(|k| k.len() > crate::jwk::MAX_KID_LEN)
    {
        return Err(JwsError::InvalidHeader { name: "kid" });
    }
    let jwk = match m.remove("jwk") {
        None => None,
        Some(Value::Object(o)) => Some(o),
        Some(_) => return Err(JwsError::InvalidHeader { name: "jwk" }),
    };
    Ok(Header { alg, typ, kid, jwk })
}

fn opt_string(m: &Map<String, Value>, name: &'static str) -> Result<Option<String>, JwsError> {
    match m.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(JwsError::InvalidHeader { name }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(json: &str) -> String {
        b64::encode(json.as_bytes())
    }

    fn jws(header: &str, payload: &str, sig_len: usize) -> String {
        format!(
            "{}.{}.{}",
            seg(header),
            seg(payload),
            b64::encode(&vec![7u8; sig_len])
        )
    }

    #[test]
    fn parses_a_well_formed_jws() {
        let raw = jws(
            r#"{"alg":"ES256","typ":"at+jwt","kid":"k1"}"#,
            r#"{"sub":"a"}"#,
            64,
        );
        let t = parse(&raw, &Limits::ACCESS_TOKEN).unwrap();
        assert_eq!(t.header.alg, Algorithm::Es256);
        assert_eq!(t.header.kid.as_deref(), Some("k1"));
        assert_eq!(t.signature().len(), 64);
        assert!(raw.starts_with(std::str::from_utf8(t.signing_input()).unwrap()));
    }

    #[test]
    fn refusals() {
        let l = Limits::ACCESS_TOKEN;
        let p = r#"{"sub":"a"}"#;
        let cases: Vec<(String, JwsError)> = vec![
            (
                jws(r#"{"alg":"none"}"#, p, 0)
                    .trim_end_matches('.')
                    .to_owned()
                    + ".",
                JwsError::Malformed,
            ),
            (
                jws(r#"{"alg":"none"}"#, p, 4),
                JwsError::Algorithm(AlgorithmRefusal::None),
            ),
            (
                jws(r#"{"alg":"HS256"}"#, p, 32),
                JwsError::Algorithm(AlgorithmRefusal::Symmetric),
            ),
            (
                jws(r#"{"typ":"at+jwt"}"#, p, 64),
                JwsError::MissingAlgorithm,
            ),
            (
                jws(r#"{"alg":["ES256"]}"#, p, 64),
                JwsError::MissingAlgorithm,
            ),
            (
                jws(r#"{"alg":"ES256","crit":["exp"],"exp":1}"#, p, 64),
                JwsError::CriticalExtension,
            ),
            (
                jws(r#"{"alg":"ES256","b64":false,"crit":["b64"]}"#, p, 64),
                JwsError::CriticalExtension,
            ),
            (
                jws(r#"{"alg":"ES256","b64":false}"#, p, 64),
                JwsError::ForbiddenHeader { name: "b64" },
            ),
            (
                jws(r#"{"alg":"ES256","zip":"DEF"}"#, p, 64),
                JwsError::ForbiddenHeader { name: "zip" },
            ),
            (
                jws(r#"{"alg":"ES256","cty":"JWT"}"#, p, 64),
                JwsError::ForbiddenHeader { name: "cty" },
            ),
            (
                jws(r#"{"alg":"ES256","alg":"ES256"}"#, p, 64),
                JwsError::Json {
                    part: "header",
                    error: json::JsonError::DuplicateMember,
                },
            ),
            (
                jws(r#"{"alg":"ES256"}"#, r#"{"sub":"a","sub":"b"}"#, 64),
                JwsError::Json {
                    part: "payload",
                    error: json::JsonError::DuplicateMember,
                },
            ),
            (jws(r#"{"alg":"ES256"}"#, p, 65), JwsError::SignatureLength),
            (jws(r#"{"alg":"ES256"}"#, p, 63), JwsError::SignatureLength),
            (
                jws(r#"{"alg":"ES256","kid":7}"#, p, 64),
                JwsError::InvalidHeader { name: "kid" },
            ),
            ("a.b.c.d.e".to_owned(), JwsError::Encrypted),
            ("a.b".to_owned(), JwsError::Malformed),
            ("a.b.c.d".to_owned(), JwsError::Malformed),
            ("x".repeat(9000), JwsError::TooLarge { limit: 8192 }),
            (
                format!("{}.e30.AA", "e".repeat(2000)),
                JwsError::TooLarge { limit: 1024 },
            ),
            (
                "e30=.e30.AA".to_owned(),
                JwsError::Base64 { part: "header" },
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(parse(&raw, &l).unwrap_err(), want, "for {raw:.60}");
        }
    }

    #[test]
    fn typ_matching_is_case_insensitive_with_optional_prefix() {
        assert!(typ_is(Some("at+jwt"), "at+jwt"));
        assert!(typ_is(Some("application/AT+JWT"), "at+jwt"));
        assert!(!typ_is(Some("dpop+jwt"), "at+jwt"));
        assert!(!typ_is(Some("JWT"), "at+jwt"));
        assert!(!typ_is(None, "at+jwt"));
    }
}
