//! `private_key_jwt` client authentication (RFC 7523 §3, OpenID Connect
//! Core §9): a JWS signed by a key in the client's registered JWKS, with
//! `iss` = `sub` = client_id, `aud` the issuer identifier as its sole value
//! (draft-ietf-oauth-rfc7523bis §4: a string, or an array of that one
//! string), a short `exp`, and a `jti` accepted once. An `aud` naming the
//! token endpoint, or an array with other values beside the issuer, is
//! refused: an assertion a client made for another authorization server
//! (whose metadata named our token endpoint) must not authenticate it here
//! (the audience injection attack). Clients registered with
//! `legacy_assertion_audience` may still name the token endpoint alone.

use crate::domain::clients::Client;
use crate::store::db::Db;
use crate::support::crypto::AwsLc;
use gatehouse_common::jwk::JwkSet;
use gatehouse_common::jws::{self, Limits};
use gatehouse_common::provider::SignatureVerifier as _;
use gatehouse_common::UnixTime;
use serde_json::Value;

/// The longest lifetime (`exp - now`) an assertion may claim, seconds.
pub const MAX_LIFETIME_SECS: i64 = 300;

const LIMITS: Limits = Limits::DPOP_PROOF;

/// Why an assertion was refused (all answered as `invalid_client`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AssertionError {
    /// Not a well-formed JWS, or the client has no usable JWKS.
    #[error("malformed assertion")]
    Malformed,
    /// No registered key fits, or the signature is wrong.
    #[error("bad signature")]
    Signature,
    /// `iss`/`sub` are not the client id.
    #[error("iss and sub must be the client id")]
    Subject,
    /// `aud` is not the issuer identifier as its sole value.
    #[error("wrong audience")]
    Audience,
    /// Missing, expired or too long-lived `exp`.
    #[error("bad exp")]
    Expiry,
    /// Missing `jti`, or already used.
    #[error("replayed or missing jti")]
    Replay,
}

/// The unverified `sub` of an assertion: which client to look up.
#[must_use]
pub fn unverified_sub(raw: &str) -> Option<String> {
    let parsed = jws::parse(raw, &LIMITS).ok()?;
    parsed
        .claims
        .get("sub")?
        .as_str()
        .filter(|s| !s.is_empty() && s.len() <= 256)
        .map(str::to_owned)
}

/// Verifies `raw` for `client` at `now` and records its `jti` (single use).
pub async fn verify(
    db: &Db,
    client: &Client,
    issuer: &str,
    raw: &str,
    leeway: i64,
    now: UnixTime,
) -> Result<(), VerifyError> {
    let (jti, exp) = check(client, issuer, raw, leeway, now)?;
    let key = format!("private_key_jwt:{}:{jti}", client.client_id);
    if crate::store::replay::remember_once(db, &key, exp.saturating_add(leeway)).await? {
        Ok(())
    } else {
        Err(AssertionError::Replay.into())
    }
}

/// Why [`verify`] did not accept an assertion.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The assertion is refused (answered as `invalid_client`).
    #[error(transparent)]
    Refused(#[from] AssertionError),
    /// Its `jti` could not be recorded.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// draft-ietf-oauth-rfc7523bis §4: the audience is the issuer identifier,
/// its only value (a JSON string, or an array holding just that string).
/// With `legacy_token_endpoint` the token endpoint URL alone is accepted too.
fn audience_ok(aud: Option<&Value>, issuer: &str, legacy_token_endpoint: bool) -> bool {
    let sole = match aud {
        Some(Value::String(a)) => a.as_str(),
        Some(Value::Array(list)) => match list.as_slice() {
            [Value::String(a)] => a.as_str(),
            _ => return false,
        },
        _ => return false,
    };
    sole == issuer || (legacy_token_endpoint && sole == format!("{issuer}/token"))
}

fn check(
    client: &Client,
    issuer: &str,
    raw: &str,
    leeway: i64,
    now: UnixTime,
) -> Result<(String, i64), AssertionError> {
    let keys = client
        .jwks
        .as_deref()
        .and_then(|j| JwkSet::from_json(j.as_bytes()).ok())
        .ok_or(AssertionError::Malformed)?;
    let parsed = jws::parse(raw, &LIMITS).map_err(|_| AssertionError::Malformed)?;
    // The algorithm comes from the registered key, never from the header alone.
    let key = keys
        .select(parsed.header.kid.as_deref(), parsed.header.alg)
        .map_err(|_| AssertionError::Signature)?;
    if !AwsLc.verify(key.jwk, key.alg, parsed.signing_input(), parsed.signature()) {
        return Err(AssertionError::Signature);
    }
    let c = &parsed.claims;
    let s = |name: &str| c.get(name).and_then(Value::as_str);
    if s("iss") != Some(client.client_id.as_str()) || s("sub") != Some(client.client_id.as_str()) {
        return Err(AssertionError::Subject);
    }
    if !audience_ok(c.get("aud"), issuer, client.legacy_assertion_audience) {
        return Err(AssertionError::Audience);
    }
    let exp = c
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or(AssertionError::Expiry)?;
    if exp.saturating_add(leeway) <= now.0 || exp.saturating_sub(now.0) > MAX_LIFETIME_SECS {
        return Err(AssertionError::Expiry);
    }
    if c.get("nbf")
        .and_then(Value::as_i64)
        .is_some_and(|n| n > now.0.saturating_add(leeway))
    {
        return Err(AssertionError::Expiry);
    }
    let jti = s("jti")
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or(AssertionError::Replay)?;
    Ok((jti.to_owned(), exp))
}

#[cfg(test)]
mod tests {
    use super::audience_ok;
    use serde_json::json;

    const ISS: &str = "https://as.example";

    #[test]
    fn audience_injection_is_refused_unless_the_issuer_is_the_sole_audience() {
        let ok = |v: serde_json::Value, legacy| audience_ok(Some(&v), ISS, legacy);
        assert!(ok(json!(ISS), false));
        assert!(ok(json!([ISS]), false));
        // The token endpoint: only behind the per-client compatibility flag.
        assert!(!ok(json!("https://as.example/token"), false));
        assert!(ok(json!("https://as.example/token"), true));
        // Arrays with anything beside the issuer: refused, flag or not.
        assert!(!ok(json!([ISS, "https://attacker.example"]), false));
        assert!(!ok(json!(["https://attacker.example", ISS]), true));
        assert!(!ok(json!([ISS, "https://as.example/token"]), true));
        assert!(!ok(json!([]), false));
        assert!(!ok(json!("https://as.example/"), false));
        assert!(!ok(json!(1), false));
        assert!(!audience_ok(None, ISS, true));
    }
}
