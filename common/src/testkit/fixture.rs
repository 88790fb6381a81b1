//! A fixed issuer, audience, clock and keys for tests, with helpers that mint
//! real signed access tokens and DPoP proofs and run them through the full
//! parse → verify → accept flow.

use super::signer::TestKey;
use crate::access_token::{AccessToken, AccessTokenError, AccessTokenPolicy, UntrustedAccessToken};
use crate::dpop::{DpopError, DpopPolicy, DpopProof, DpopRequest, UntrustedDpopProof};
use crate::jwk::JwkSet;
use crate::provider::SignatureVerifier;
use crate::UnixTime;
use serde_json::{json, Map, Value};

/// The test issuer.
pub const ISSUER: &str = "https://issuer.example";
/// The test audience.
pub const AUDIENCE: &str = "https://api.example";
/// The fixed test clock.
pub const NOW: i64 = 1_700_000_000;
/// The issuer's signing key id.
pub const KID: &str = "k1";
/// A resource URI for proofs.
pub const URI: &str = "https://api.example/v1/things";

/// The issuer's signing key.
#[must_use]
pub fn issuer_key() -> TestKey {
    TestKey::es256("gatehouse-test-issuer")
}

/// The client's DPoP key.
#[must_use]
pub fn client_key() -> TestKey {
    TestKey::es256("gatehouse-test-client")
}

/// The issuer's JWKS (the issuer key under [`KID`]).
#[must_use]
pub fn jwks() -> JwkSet {
    JwkSet::from_keys(issuer_key().public_jwk(Some(KID)).into_iter().collect())
}

/// The access-token policy for [`ISSUER`] / [`AUDIENCE`].
#[must_use]
pub fn policy() -> AccessTokenPolicy {
    AccessTokenPolicy::new(ISSUER, vec![AUDIENCE.to_owned()])
}

/// A valid access-token header.
#[must_use]
pub fn header() -> Value {
    json!({"alg": "ES256", "typ": "at+jwt", "kid": KID})
}

/// Valid access-token claims at [`NOW`].
#[must_use]
pub fn claims() -> Value {
    json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "client_id": "client-1",
        "jti": "tok-1", "iat": NOW, "nbf": NOW, "exp": NOW + 300, "scope": "read write",
        "sid": "grant-1",
    })
}

/// `base` with `key` set to `value` (or removed when `value` is null).
#[must_use]
pub fn set(mut base: Value, key: &str, value: Value) -> Value {
    if let Some(m) = base.as_object_mut() {
        if value.is_null() {
            m.remove(key);
        } else {
            m.insert(key.to_owned(), value);
        }
    }
    base
}

/// An access token signed by the issuer key with `claims`.
#[must_use]
pub fn mint(claims: &Value) -> String {
    issuer_key().sign(&header(), claims)
}

/// Full flow: parse, select the key from [`jwks`], verify, accept at `now`.
pub fn verify_token(
    raw: &str,
    verifier: &dyn SignatureVerifier,
    now: i64,
) -> Result<AccessToken, AccessTokenError> {
    let policy = policy();
    let keys = jwks();
    let u = UntrustedAccessToken::parse(raw, &policy)?;
    let key = keys.select(u.kid(), u.header_alg())?;
    let ok = verifier.verify(key.jwk, key.alg, u.signing_input(), u.signature());
    u.accept(ok, &policy, UnixTime(now))
}

/// A valid DPoP proof header for `key`.
#[must_use]
pub fn proof_header(key: &TestKey) -> Value {
    json!({"typ": "dpop+jwt", "alg": key.alg().name(), "jwk": key.public_jwk_json()})
}

/// Valid proof claims for `GET` [`URI`] at [`NOW`].
#[must_use]
pub fn proof_claims() -> Value {
    json!({"jti": "proof-1", "htm": "GET", "htu": URI, "iat": NOW})
}

/// Full flow for a proof: parse, verify with its own key, accept.
pub fn verify_proof(
    raw: &str,
    verifier: &dyn SignatureVerifier,
    request: &DpopRequest<'_>,
    now: i64,
) -> Result<DpopProof, DpopError> {
    let policy = DpopPolicy::default();
    let u = UntrustedDpopProof::parse(&[raw], &policy)?;
    let ok = verifier.verify(u.jwk(), u.alg(), u.signing_input(), u.signature());
    u.accept(ok, &policy, request, UnixTime(now))
}

/// `claims` as a map (empty if not an object).
#[must_use]
pub fn map(v: &Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}
