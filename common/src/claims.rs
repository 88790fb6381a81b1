//! Typed reading of JWT claims: a claim of the wrong type is an error, never
//! "absent" (cf. CVE-2026-25537, where a string `exp` skipped expiry checks).

use serde_json::{Map, Value};

/// Latest instant accepted in a NumericDate claim (9999-12-31T23:59:59Z).
pub const MAX_NUMERIC_DATE: i64 = 253_402_300_799;
/// Longest accepted string claim, in bytes.
pub const MAX_STRING_CLAIM: usize = 1024;

/// Why a claim was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimError {
    /// A required claim is absent.
    #[error("missing claim `{claim}`")]
    Missing {
        /// The claim's name.
        claim: &'static str,
    },
    /// Present, but of the wrong JSON type, empty, too long, or out of range.
    #[error("claim `{claim}` is invalid")]
    Invalid {
        /// The claim's name.
        claim: &'static str,
    },
}

/// A required non-empty string claim.
pub fn string(m: &Map<String, Value>, claim: &'static str) -> Result<String, ClaimError> {
    opt_string(m, claim)?.ok_or(ClaimError::Missing { claim })
}

/// An optional non-empty string claim (absent → `None`; wrong type → error).
pub fn opt_string(
    m: &Map<String, Value>,
    claim: &'static str,
) -> Result<Option<String>, ClaimError> {
    match m.get(claim) {
        None => Ok(None),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_STRING_CLAIM => {
            Ok(Some(s.clone()))
        }
        Some(_) => Err(ClaimError::Invalid { claim }),
    }
}

/// A required NumericDate (RFC 7519 §2): a JSON number, integral or not,
/// in `0..=MAX_NUMERIC_DATE`; fractions are truncated.
pub fn numeric_date(m: &Map<String, Value>, claim: &'static str) -> Result<i64, ClaimError> {
    opt_numeric_date(m, claim)?.ok_or(ClaimError::Missing { claim })
}

/// An optional NumericDate.
pub fn opt_numeric_date(
    m: &Map<String, Value>,
    claim: &'static str,
) -> Result<Option<i64>, ClaimError> {
    let Some(v) = m.get(claim) else {
        return Ok(None);
    };
    let invalid = ClaimError::Invalid { claim };
    let Value::Number(n) = v else {
        return Err(invalid);
    };
    let secs = if let Some(i) = n.as_i64() {
        i
    } else if let Some(f) = n.as_f64() {
        if !f.is_finite() || f < 0.0 || f > MAX_NUMERIC_DATE as f64 {
            return Err(invalid);
        }
        f.trunc() as i64
    } else {
        return Err(invalid);
    };
    if !(0..=MAX_NUMERIC_DATE).contains(&secs) {
        return Err(invalid);
    }
    Ok(Some(secs))
}

/// `aud` (RFC 7519 §4.1.3): a string or an array of strings, non-empty.
pub fn audiences(m: &Map<String, Value>) -> Result<Vec<String>, ClaimError> {
    const CLAIM: &str = "aud";
    let invalid = ClaimError::Invalid { claim: CLAIM };
    match m.get(CLAIM) {
        None => Err(ClaimError::Missing { claim: CLAIM }),
        Some(Value::String(s)) if !s.is_empty() => Ok(vec![s.clone()]),
        Some(Value::Array(a)) if !a.is_empty() && a.len() <= 32 => a
            .iter()
            .map(|v| match v {
                Value::String(s) if !s.is_empty() && s.len() <= MAX_STRING_CLAIM => Ok(s.clone()),
                _ => Err(invalid.clone()),
            })
            .collect(),
        Some(_) => Err(invalid),
    }
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )` — no
/// whitespace, control, quote, backslash or non-ASCII byte.
#[must_use]
pub fn is_scope_token(t: &str) -> bool {
    !t.is_empty()
        && t.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

/// `scope` (RFC 9068 §2.2.3, RFC 6749 §3.3): space-delimited, absent → empty.
pub fn scopes(m: &Map<String, Value>) -> Result<Vec<String>, ClaimError> {
    match m.get("scope") {
        None => Ok(Vec::new()),
        Some(Value::String(s)) if s.len() <= 4096 => {
            let scopes: Vec<String> = s
                .split(' ')
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect();
            if scopes.iter().all(|t| is_scope_token(t)) {
                Ok(scopes)
            } else {
                Err(ClaimError::Invalid { claim: "scope" })
            }
        }
        Some(_) => Err(ClaimError::Invalid { claim: "scope" }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn wrong_types_are_errors_not_absence() {
        let m = obj(json!({"exp": "1700000000", "sub": 5, "aud": [1]}));
        assert_eq!(
            numeric_date(&m, "exp"),
            Err(ClaimError::Invalid { claim: "exp" })
        );
        assert_eq!(
            opt_numeric_date(&m, "exp"),
            Err(ClaimError::Invalid { claim: "exp" })
        );
        assert_eq!(string(&m, "sub"), Err(ClaimError::Invalid { claim: "sub" }));
        assert_eq!(audiences(&m), Err(ClaimError::Invalid { claim: "aud" }));
        assert_eq!(
            numeric_date(&m, "iat"),
            Err(ClaimError::Missing { claim: "iat" })
        );
    }

    #[test]
    fn numeric_dates_have_a_range() {
        let m = obj(json!({"a": -1, "b": 1.9, "c": 1e300, "d": 253402300800_i64}));
        assert!(numeric_date(&m, "a").is_err());
        assert_eq!(numeric_date(&m, "b"), Ok(1));
        assert!(numeric_date(&m, "c").is_err());
        assert!(numeric_date(&m, "d").is_err());
    }

    #[test]
    fn scopes_and_audiences() {
        let m = obj(json!({"scope": "read  write", "aud": "x"}));
        assert_eq!(scopes(&m).unwrap(), vec!["read", "write"]);
        assert_eq!(audiences(&m).unwrap(), vec!["x"]);
        let m = obj(json!({"scope": "a\"b"}));
        assert!(scopes(&m).is_err());
    }
}
