//! DPoP at the token endpoint (RFC 9449 §5): the proof is validated by
//! `common` (checks 1–12), verified with the native provider, and its `jti`
//! remembered in the database so a proof cannot be replayed at any replica.

use crate::domain::error::Error;
use crate::domain::state::TokenPath;
use crate::store::group_commit::Write;
use crate::support::crypto::AwsLc;
use gatehouse_common::dpop::{DpopError, DpopPolicy, DpopProof, DpopRequest, UntrustedDpopProof};
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
    let values: Vec<&str> = headers
        .iter()
        .map(|v| {
            std::str::from_utf8(v)
                .ok()
                .filter(|s| s.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b)))
                .ok_or_else(|| Error::InvalidDpopProof("the DPoP header is not ASCII".into()))
        })
        .collect::<Result<_, _>>()?;
    if values.is_empty() {
        return Ok(None);
    }
    let policy = policy();
    let uri = format!("{}{path}", tp.config.issuer);
    let nonces = tp.dpop_nonces;
    let untrusted =
        UntrustedDpopProof::parse(&values, &policy).map_err(|e| refusal(&e, nonces, now))?;
    let ok = AwsLc.verify(
        untrusted.jwk(),
        untrusted.alg(),
        untrusted.signing_input(),
        untrusted.signature(),
    );
    let request = DpopRequest {
        method: "POST",
        uri: &uri,
        access_token: None,
        nonces,
    };
    let proof = untrusted
        .accept(ok, &policy, &request, now)
        .map_err(|e| refusal(&e, nonces, now))?;
    // Replay: the proof's (jti, htu) may be used once while it is fresh.
    let new = tp
        .db
        .group
        .write(Write::ProofJti {
            key: proof.replay_key.clone(),
            until: proof.replay_until.0,
        })
        .await?;
    if !new {
        return Err(Error::InvalidDpopProof(
            "the DPoP proof was already used".into(),
        ));
    }
    Ok(Some(proof))
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
