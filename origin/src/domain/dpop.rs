//! DPoP at the token endpoint (RFC 9449 §5) and at `/userinfo` (§7): the
//! proof is validated by `common` (checks 1–12), verified with the native
//! provider, and its `jti` remembered in the database so a proof cannot be
//! replayed at any replica.

use crate::domain::error::Error;
use crate::domain::state::TokenPath;
use crate::store::group_commit::Write;
use crate::support::crypto::AwsLc;
use gatehouse_common::dpop::{
    BoundAccessToken, DpopError, DpopPolicy, DpopProof, DpopRequest, UntrustedDpopProof,
};
use gatehouse_common::nonce::NonceIssuer;
use gatehouse_common::provider::SignatureVerifier as _;
use gatehouse_common::UnixTime;

/// Validates the request's `DPoP` header values (each as sent) for
/// `POST {issuer}{path}`. `Ok(None)` when the request carries no proof.
pub async fn token_endpoint_proof(
    tp: &TokenPath<'_>,
    headers: &[&[u8]],
    path: &str,
    now: UnixTime,
) -> Result<Option<DpopProof>, Error> {
    let values = ascii_values(headers)
        .ok_or_else(|| Error::InvalidDpopProof("the DPoP header is not ASCII".into()))?;
    if values.is_empty() {
        return Ok(None);
    }
    let nonces = tp.dpop_nonces;
    let target = ProofTarget {
        method: "POST",
        path,
        access_token: None,
    };
    let proof = check(tp, &values, &target, now).map_err(|e| refusal(&e, nonces, now))?;
    if !remember(tp, &proof).await? {
        return Err(Error::InvalidDpopProof(
            "the DPoP proof was already used".into(),
        ));
    }
    Ok(Some(proof))
}

/// The request a proof is checked against: `{method} {issuer}{path}`, with
/// the access token it accompanies at a protected resource.
#[derive(Clone, Copy, Debug)]
pub struct ProofTarget<'a> {
    /// The request method, as received.
    pub method: &'a str,
    /// The path on the issuer (`/token`, `/userinfo`).
    pub path: &'a str,
    /// At a protected resource, the (verified) token presented with the
    /// proof: its `ath` and `cnf.jkt` must match (RFC 9449 §4.3 check 12).
    pub access_token: Option<BoundAccessToken<'a>>,
}

/// The `DPoP` header values as text: `None` if one is not visible ASCII.
#[must_use]
pub fn ascii_values<'a>(headers: &[&'a [u8]]) -> Option<Vec<&'a str>> {
    headers
        .iter()
        .map(|v| {
            std::str::from_utf8(v)
                .ok()
                .filter(|s| s.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b)))
        })
        .collect()
}

/// RFC 9449 §4.3 checks 1-12 of the proof in `values` for `target` (by
/// `common`, the signature by the native provider), without the replay
/// record: call [`remember`] once the request is otherwise accepted.
pub fn check(
    tp: &TokenPath<'_>,
    values: &[&str],
    target: &ProofTarget<'_>,
    now: UnixTime,
) -> Result<DpopProof, DpopError> {
    let policy = policy();
    let uri = format!("{}{}", tp.config.issuer, target.path);
    let untrusted = UntrustedDpopProof::parse(values, &policy)?;
    let ok = AwsLc.verify(
        untrusted.jwk(),
        untrusted.alg(),
        untrusted.signing_input(),
        untrusted.signature(),
    );
    let request = DpopRequest {
        method: target.method,
        uri: &uri,
        access_token: target.access_token,
        nonces: tp.dpop_nonces,
    };
    untrusted.accept(ok, &policy, &request, now)
}

/// Records the proof's (jti, htu) while it is fresh, at every replica:
/// `false` when it was used already (a replay).
pub async fn remember(tp: &TokenPath<'_>, proof: &DpopProof) -> Result<bool, Error> {
    Ok(tp
        .db
        .group
        .write(Write::ProofJti {
            key: proof.replay_key.clone(),
            until: proof.replay_until.0,
        })
        .await?)
}

/// The proof policy `/token` applies (and the metadata advertises).
#[must_use]
pub fn policy() -> DpopPolicy {
    DpopPolicy::default()
}

fn refusal(e: &DpopError, nonces: Option<&NonceIssuer>, now: UnixTime) -> Error {
    match (e, nonces) {
        (DpopError::NonceRequired | DpopError::NonceInvalid, Some(n)) => Error::UseDpopNonce {
            nonce: n.issue(now),
        },
        _ => Error::InvalidDpopProof(e.to_string().into()),
    }
}

/// Forgets replay entries whose proofs are stale anyway.
pub async fn prune_replay(db: &crate::store::db::Db, now: UnixTime) -> Result<u64, Error> {
    Ok(crate::store::replay::prune(db, now.0).await?)
}

/// The nonce issuer: keyed from the KEK so every replica (and nothing else) agrees.
#[must_use]
pub fn nonce_issuer(kek: &crate::support::kek::Kek) -> Option<NonceIssuer> {
    NonceIssuer::with_defaults(&kek.derive(b"gatehouse/dpop-nonce-key/v1")).ok()
}
