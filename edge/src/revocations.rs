//! Revocations at the edge: each trusted issuer's signed revocation document,
//! kept in KV `REVOCATIONS` under `revocations/<iss>`, verified against the
//! issuer's JWKS through WebCrypto, never rolled back to a lower version, and
//! cached per isolate for `REVOCATION_TTL_SECS`.
//!
//! The ingest route (`POST /.gatehouse/revocations`) verifies a pushed
//! document before writing KV and answers 204 only after the write succeeded.
//! When KV cannot be read the isolate keeps the list it holds (logged).

use crate::config::{EdgeConfig, IssuerConfig};
use crate::{jwks, webcrypto};
use gatehouse_common::jwk::KeyError;
use gatehouse_common::revocation::{
    RevocationError, RevocationList, RevocationPolicy, UntrustedRevocationDocument,
};
use gatehouse_common::UnixTime;
use std::cell::RefCell;
use std::collections::HashMap;
use worker::kv::KvStore;
use worker::Env;

/// The KV binding.
pub const BINDING: &str = "REVOCATIONS";

/// Largest document accepted, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 8 * 1024 * 1024;

struct Held {
    list: RevocationList,
    raw_len: usize,
    checked_at: UnixTime,
}

thread_local! {
    static HELD: RefCell<HashMap<String, Held>> = RefCell::new(HashMap::new());
}

fn kv_key(iss: &str) -> String {
    format!("revocations/{iss}")
}

fn policy(issuer: &IssuerConfig) -> RevocationPolicy {
    let mut p = RevocationPolicy::new(issuer.policy.issuer.clone());
    p.algorithms = issuer.policy.algorithms.clone();
    p
}

/// The version an isolate holds for `iss`, if any.
pub fn held_version(iss: &str) -> Option<u64> {
    HELD.with(|h| h.borrow().get(iss).map(|x| x.list.version()))
}

/// Why a document was not taken.
#[derive(Debug)]
pub enum IngestError {
    /// Not a valid document from a trusted issuer (400).
    Invalid(RevocationError),
    /// Older than the held version (409).
    Rollback,
    /// KV or the issuer's keys unavailable (503).
    Unavailable(&'static str),
}

/// Verifies `raw` against the issuer's JWKS (refetching once on an unknown `kid`).
async fn verify(
    raw: &str,
    cfg: &EdgeConfig,
    issuer: &IssuerConfig,
    held: Option<u64>,
    now: UnixTime,
) -> Result<RevocationList, IngestError> {
    let p = policy(issuer);
    let doc = UntrustedRevocationDocument::parse(raw, &p).map_err(IngestError::Invalid)?;
    if held.is_some_and(|h| doc.version() < h) {
        return Err(IngestError::Rollback);
    }
    let unavailable = |_| IngestError::Unavailable("the issuer's keys are unavailable");
    let mut keys = jwks::keys(cfg, issuer, now).await.map_err(unavailable)?;
    if matches!(
        keys.select(doc.kid(), doc.header_alg()),
        Err(KeyError::UnknownKid)
    ) {
        keys = jwks::keys_after_unknown_kid(cfg, issuer, now)
            .await
            .map_err(unavailable)?;
    }
    let key = keys
        .select(doc.kid(), doc.header_alg())
        .map_err(|_| IngestError::Invalid(RevocationError::InvalidSignature))?;
    let ok = webcrypto::verify(key.jwk, key.alg, doc.signing_input(), doc.signature()).await;
    doc.accept(ok, &p, held, now).map_err(|e| match e {
        RevocationError::Rollback { .. } => IngestError::Rollback,
        other => IngestError::Invalid(other),
    })
}

fn kv(env: &Env) -> Result<KvStore, IngestError> {
    env.kv(BINDING)
        .map_err(|_| IngestError::Unavailable("the REVOCATIONS binding is missing"))
}

/// The version of the document in KV for `issuer`, read without verification
/// (only verified documents are ever written there).
async fn kv_version(store: &KvStore, issuer: &IssuerConfig) -> Result<Option<u64>, IngestError> {
    let text = store
        .get(&kv_key(&issuer.policy.issuer))
        .text()
        .await
        .map_err(|_| IngestError::Unavailable("KV could not be read"))?;
    Ok(text.and_then(|t| {
        UntrustedRevocationDocument::parse(&t, &policy(issuer))
            .ok()
            .map(|d| d.version())
    }))
}

/// Ingests a pushed document: verify, refuse rollback, write KV, then hold it.
/// Returns the issuer and version taken.
pub async fn ingest(
    raw: &str,
    cfg: &EdgeConfig,
    env: &Env,
    now: UnixTime,
) -> Result<(String, u64), IngestError> {
    // The issuer whose policy the document parses under (its `iss`).
    let mut last = RevocationError::UntrustedIssuer;
    let mut found = None;
    for issuer in &cfg.issuers {
        match UntrustedRevocationDocument::parse(raw, &policy(issuer)) {
            Ok(_) => {
                found = Some(issuer);
                break;
            }
            Err(RevocationError::UntrustedIssuer) => {}
            Err(e) => last = e,
        }
    }
    let issuer = found.ok_or(IngestError::Invalid(last))?;
    let iss = issuer.policy.issuer.clone();
    let store = kv(env)?;
    let held = [held_version(&iss), kv_version(&store, issuer).await?]
        .into_iter()
        .flatten()
        .max();
    let list = verify(raw, cfg, issuer, held, now).await?;
    let version = list.version();
    store
        .put(&kv_key(&iss), raw)
        .map_err(|_| IngestError::Unavailable("KV could not be written"))?
        .execute()
        .await
        .map_err(|_| IngestError::Unavailable("KV could not be written"))?;
    HELD.with(|h| {
        h.borrow_mut().insert(
            iss.clone(),
            Held {
                list,
                raw_len: raw.len(),
                checked_at: now,
            },
        )
    });
    Ok((iss, version))
}

/// The issuer's current list (re-read from KV after the TTL). `None` when no
/// document was ever seen.
pub async fn current(
    cfg: &EdgeConfig,
    issuer: &IssuerConfig,
    env: &Env,
    now: UnixTime,
) -> Option<RevocationList> {
    let iss = issuer.policy.issuer.as_str();
    let fresh = HELD.with(|h| {
        h.borrow().get(iss).and_then(|x| {
            (now.0 < x.checked_at.0.saturating_add(cfg.revocation_ttl_secs)).then(|| x.list.clone())
        })
    });
    if fresh.is_some() {
        return fresh;
    }
    reload(cfg, issuer, env, now).await;
    HELD.with(|h| h.borrow().get(iss).map(|x| x.list.clone()))
}

async fn reload(cfg: &EdgeConfig, issuer: &IssuerConfig, env: &Env, now: UnixTime) {
    let iss = issuer.policy.issuer.as_str();
    let touch = || {
        HELD.with(|h| {
            if let Some(x) = h.borrow_mut().get_mut(iss) {
                x.checked_at = now;
            }
        })
    };
    let text = match kv(env) {
        Ok(store) => store.get(&kv_key(iss)).text().await.ok(),
        Err(_) => None,
    };
    let Some(text) = text else {
        worker::console_warn!(r#"{{"event":"revocations_read_failed"}}"#);
        touch();
        return;
    };
    let Some(raw) = text else {
        // Nothing pushed yet: an empty list at version 0 is not held, so the
        // first document of any version is taken.
        touch();
        return;
    };
    let held = held_version(iss);
    let same = HELD.with(|h| {
        h.borrow()
            .get(iss)
            .is_some_and(|x| x.raw_len == raw.len() && held.is_some())
    });
    if same
        && UntrustedRevocationDocument::parse(&raw, &policy(issuer))
            .is_ok_and(|d| Some(d.version()) == held)
    {
        touch();
        return;
    }
    match verify(&raw, cfg, issuer, held, now).await {
        Ok(mut list) => {
            list.prune(now);
            HELD.with(|h| {
                h.borrow_mut().insert(
                    iss.to_owned(),
                    Held {
                        list,
                        raw_len: raw.len(),
                        checked_at: now,
                    },
                )
            });
        }
        Err(e) => {
            let reason = match e {
                IngestError::Rollback => "rollback refused".to_owned(),
                IngestError::Invalid(e) => e.to_string(),
                IngestError::Unavailable(why) => why.to_owned(),
            };
            worker::console_warn!(
                r#"{{"event":"revocations_not_taken","reason":{}}}"#,
                serde_json::Value::from(reason)
            );
            touch();
        }
    }
}
