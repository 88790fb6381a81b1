//! Revocations at the edge: each trusted issuer's signed revocation document,
//! kept in KV `REVOCATIONS` under `revocations/<iss>`, verified against the
//! issuer's JWKS through WebCrypto, never rolled back to a lower version, and
//! cached per isolate for `REVOCATION_TTL_SECS` (as an `Rc`, never copied per
//! request; a re-read that returns the same text is recognised by its
//! fingerprint without parsing or verifying it again).
//!
//! [`current`] tells "KV holds no document for this issuer" (nothing
//! revoked) apart from "KV could not be read" and "the document failed
//! verification" ([`Unavailable`]); the caller refuses with 503 on the latter
//! unless `REVOCATION_FAIL=open`. A document signed by a `kid` the JWKS does
//! not hold yet goes through the unknown-`kid` refresh (with its cooldown).
//!
//! Ingest (`POST /.gatehouse/revocations`) verifies a pushed document, then
//! hands it to the issuer's [`RevocationStore`] Durable Object, which holds
//! the highest version taken and does compare-and-set: a version not above
//! it, or above the version KV holds (which the origin writes directly in
//! Cloudflare-KV push mode), is refused (409); KV is written only from
//! inside the object, after the check, one write at a time; 204 only after
//! the KV write succeeded. A document signed more than
//! [`INGEST_MAX_AGE_SECS`](crate::revocation_rules::INGEST_MAX_AGE_SECS)
//! ago is refused too (a replay), and versions ahead of the clock are
//! refused by `common` (`RevocationError::VersionAhead`).

use crate::config::{EdgeConfig, IssuerConfig};
use crate::replica_rules::read_due;
use crate::revocation_rules::{fingerprint, floor, fresh_for_ingest, needs_reread, takes_version};
use crate::{jwks, revocation_replica, webcrypto};
use futures_util::lock::Mutex;
use gatehouse_common::alg::Algorithm;
use gatehouse_common::jwk::KeyError;
use gatehouse_common::jws::{self, JwsError};
use gatehouse_common::revocation::{
    RevocationError, RevocationList, RevocationPolicy, UntrustedRevocationDocument, REVOCATIONS_TYP,
};
use gatehouse_common::{b64, UnixTime};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use worker::kv::KvStore;
use worker::{durable_object, DurableObject, Env, Method, Request, RequestInit, Response, State};

/// The KV binding.
pub const BINDING: &str = "REVOCATIONS";

/// The Durable Object binding of the ingest store.
pub const STORE_BINDING: &str = "REVOCATION_STORE";

/// Largest document accepted, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 8 * 1024 * 1024;

/// What an isolate knows of one issuer's list.
#[derive(Default)]
struct IssuerState {
    /// The last verified list and its raw text's fingerprint.
    list: Option<(Rc<RevocationList>, (usize, u64))>,
    /// When KV was last read (successfully or not).
    checked_at: Option<UnixTime>,
    /// Whether that read (or the verification) failed.
    failed: bool,
    /// The fast path's reads of this issuer from the isolate's replica.
    replica: ReplicaReads,
    /// What [`beside`] read from KV (the instant it read, and the text or
    /// the failure) for the next [`current`] to verify and take as its KV
    /// read; used only while that read is within the TTL.
    kv_prefetched: Option<(UnixTime, Result<Option<String>, Unavailable>)>,
    /// [`beside`] is reading KV for this issuer.
    kv_prefetching: bool,
    /// A document [`beside`] received from the replica, for the next
    /// [`current`] to verify (and take only if newer than the list held).
    replica_prefetched: Option<String>,
}

/// What an isolate did with its replica for one issuer.
#[derive(Default, Clone, Copy)]
pub struct ReplicaReads {
    /// When the last read started (milliseconds since the epoch).
    started_ms: Option<f64>,
    /// A read is running (single flight).
    in_flight: bool,
    /// The version last received from the replica (sent with the next read,
    /// so an unchanged replica answers 304).
    seen: Option<u64>,
    /// Reads started.
    pub reads: u64,
    /// Documents taken from the replica (newer than the list held).
    pub taken: u64,
    /// Documents the replica served that were not taken (older than held,
    /// or not verifying).
    pub refused: u64,
    /// Reads that failed (unreachable, failed or slower than the deadline).
    pub failed: u64,
}

thread_local! {
    static HELD: RefCell<HashMap<String, IssuerState>> = RefCell::new(HashMap::new());
}

fn kv_key(iss: &str) -> String {
    format!("revocations/{iss}")
}

fn policy(issuer: &IssuerConfig) -> RevocationPolicy {
    let mut p = RevocationPolicy::new(issuer.policy.issuer.clone());
    p.algorithms = issuer.policy.algorithms.clone();
    p
}

fn with_state<R>(iss: &str, f: impl FnOnce(&mut IssuerState) -> R) -> R {
    HELD.with(|h| {
        let mut h = h.borrow_mut();
        // No key copied per request once the issuer is known.
        if let Some(s) = h.get_mut(iss) {
            return f(s);
        }
        f(h.entry(iss.to_owned()).or_default())
    })
}

/// The version an isolate holds for `iss`, if any.
pub fn held_version(iss: &str) -> Option<u64> {
    HELD.with(|h| {
        h.borrow()
            .get(iss)
            .and_then(|x| x.list.as_ref().map(|(l, _)| l.version()))
    })
}

/// The version and `iat` of the list an isolate holds for `iss` (for the
/// request's data point: the list's version and age).
pub fn held_info(iss: &str) -> Option<(u64, i64)> {
    HELD.with(|h| {
        h.borrow()
            .get(iss)
            .and_then(|x| x.list.as_ref().map(|(l, _)| (l.version(), l.issued_at())))
    })
}

/// The last verified list an isolate holds for `iss` (for `REVOCATION_FAIL=open`).
pub fn held(iss: &str) -> Option<Rc<RevocationList>> {
    HELD.with(|h| {
        h.borrow()
            .get(iss)
            .and_then(|x| x.list.as_ref().map(|(l, _)| Rc::clone(l)))
    })
}

/// The isolate's replica reads for `iss` (for the health details).
pub fn replica_reads(iss: &str) -> ReplicaReads {
    HELD.with(|h| h.borrow().get(iss).map(|x| x.replica).unwrap_or_default())
}

/// The issuer's list could not be read from KV or did not verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unavailable;

/// Why [`IngestError::UnknownKey`] refused a document.
pub const UNKNOWN_KEY: &str = "the document's signing key is not in the issuer's JWKS yet";

/// Why a document was not taken.
#[derive(Debug)]
pub enum IngestError {
    /// Not a valid document from a trusted issuer (400).
    Invalid(RevocationError),
    /// Not newer than the held version (409).
    Rollback,
    /// KV or the issuer's keys unavailable (503).
    Unavailable(&'static str),
    /// Signed by a key the issuer's JWKS does not hold even after a refetch
    /// (503, so the origin's pusher retries after a rotation; but charged to
    /// the caller like a refusal, as it is what the caller sent).
    UnknownKey,
}

/// What is read of a document before its signature is checked: the header's
/// `alg`/`kid` (after the `typ` and no-embedded-key rules), the bytes the
/// signature covers and the signature. The claims are parsed only after the
/// signature verified.
struct Signed<'a> {
    alg: Algorithm,
    kid: Option<String>,
    signing_input: &'a str,
    signature: Vec<u8>,
}

fn signed_parts(raw: &str) -> Result<Signed<'_>, RevocationError> {
    #[derive(serde::Deserialize)]
    struct Head {
        alg: String,
        #[serde(default)]
        typ: Option<String>,
        #[serde(default)]
        kid: Option<String>,
        #[serde(default)]
        jwk: Option<serde_json::Value>,
    }
    let malformed = || RevocationError::Jws(JwsError::Malformed);
    if raw.len() > MAX_DOCUMENT_BYTES {
        return Err(malformed());
    }
    let (head_and_payload, sig) = raw.rsplit_once('.').ok_or_else(malformed)?;
    let (head, _payload) = head_and_payload.split_once('.').ok_or_else(malformed)?;
    if head.len() > 4096 {
        return Err(malformed());
    }
    let head: Head = b64::decode(head)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(malformed)?;
    if !jws::typ_is(head.typ.as_deref(), REVOCATIONS_TYP) {
        return Err(RevocationError::WrongType);
    }
    if head.jwk.is_some() {
        return Err(RevocationError::EmbeddedKey);
    }
    let alg = Algorithm::from_name(&head.alg)
        .map_err(|e| RevocationError::Jws(JwsError::Algorithm(e)))?;
    Ok(Signed {
        alg,
        kid: head.kid,
        signing_input: head_and_payload,
        signature: b64::decode(sig).map_err(|_| malformed())?,
    })
}

/// Verifies `raw` against the issuer's JWKS (refetching on an unknown `kid`,
/// within the cooldown rules): header and signature first, then the claims
/// are parsed (full JWS rules) and checked (version, `iat`).
async fn verify(
    raw: &str,
    cfg: &EdgeConfig,
    issuer: &IssuerConfig,
    held: Option<u64>,
    now: UnixTime,
) -> Result<RevocationList, IngestError> {
    let p = policy(issuer);
    let signed = signed_parts(raw).map_err(IngestError::Invalid)?;
    if !p.algorithms.contains(&signed.alg) {
        return Err(IngestError::Invalid(RevocationError::AlgorithmNotAllowed {
            alg: signed.alg,
        }));
    }
    let kid = signed.kid.as_deref();
    let unavailable = |_| IngestError::Unavailable("the issuer's keys are unavailable");
    let mut keys = jwks::keys(cfg, issuer, now).await.map_err(unavailable)?;
    if matches!(keys.select(kid, signed.alg), Err(KeyError::UnknownKid)) {
        keys = jwks::keys_after_unknown_kid(cfg, issuer, now)
            .await
            .map_err(unavailable)?;
    }
    let key = match keys.select(kid, signed.alg) {
        Ok(k) => k,
        Err(KeyError::UnknownKid) => return Err(IngestError::UnknownKey),
        Err(_) => return Err(IngestError::Invalid(RevocationError::InvalidSignature)),
    };
    let ok = webcrypto::verify(
        key.jwk,
        key.alg,
        signed.signing_input.as_bytes(),
        &signed.signature,
    )
    .await;
    if !ok {
        return Err(IngestError::Invalid(RevocationError::InvalidSignature));
    }
    // Signed by the issuer: now the claims (and the JWS rules in full).
    let doc = UntrustedRevocationDocument::parse(raw, &p).map_err(IngestError::Invalid)?;
    if doc.signing_input() != signed.signing_input.as_bytes() {
        return Err(IngestError::Invalid(RevocationError::InvalidSignature));
    }
    doc.accept(true, &p, held, now).map_err(|e| match e {
        RevocationError::Rollback { .. } => IngestError::Rollback,
        other => IngestError::Invalid(other),
    })
}

fn kv(env: &Env) -> Result<KvStore, IngestError> {
    env.kv(BINDING)
        .map_err(|_| IngestError::Unavailable("the REVOCATIONS binding is missing"))
}

/// The `iss` claim of a compact JWS, decoded without parsing anything else
/// (the header and the full claims are parsed once, under that issuer's policy).
fn peek_iss(raw: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Iss {
        iss: String,
    }
    let mut parts = raw.split('.');
    let _header = parts.next()?;
    let payload = parts.next()?;
    let bytes = b64::decode(payload).ok()?;
    serde_json::from_slice::<Iss>(&bytes).ok().map(|c| c.iss)
}

/// Ingests a pushed document: find its issuer by `iss` (the only claim read
/// before the signature is checked), verify it once under that issuer's
/// policy, then have the issuer's store take it (compare-and-set
/// on the version, KV write inside the store). Returns the issuer and version.
pub async fn ingest(
    raw: &str,
    cfg: &EdgeConfig,
    env: &Env,
    now: UnixTime,
) -> Result<(String, u64), IngestError> {
    let iss = peek_iss(raw).ok_or(IngestError::Invalid(RevocationError::UntrustedIssuer))?;
    let issuer = cfg
        .issuer(&iss)
        .ok_or(IngestError::Invalid(RevocationError::UntrustedIssuer))?;
    let list = verify(raw, cfg, issuer, held_version(&iss), now).await?;
    // A genuine document older than the ingest window is a replay (the
    // pusher signs each document when it sends it): refused like a rollback,
    // whatever floor the store could read.
    if !fresh_for_ingest(list.issued_at(), now.0) {
        return Err(IngestError::Rollback);
    }
    let version = list.version();
    store(env, &iss, version, raw).await?;
    if cfg.revocation_adopt_on_ingest {
        with_state(&iss, |s| {
            // A replica read or KV re-read that finished while the store
            // worked may already have brought a newer list: never go back.
            if takes_version(s.list.as_ref().map(|(l, _)| l.version()), version) {
                s.list = Some((Rc::new(list), fingerprint(raw)));
            }
            s.checked_at = Some(now);
            s.failed = false;
        });
    }
    Ok((iss, version))
}

/// Asks the issuer's store to take `raw` at `version`.
async fn store(env: &Env, iss: &str, version: u64, raw: &str) -> Result<(), IngestError> {
    let unavailable = |_| IngestError::Unavailable("the revocation store is unavailable");
    let ns = env.durable_object(STORE_BINDING).map_err(unavailable)?;
    let stub = ns
        .id_from_name(iss)
        .map_err(unavailable)?
        .get_stub()
        .map_err(unavailable)?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_body(Some(wasm_bindgen::JsValue::from_str(raw)));
    let mut req =
        Request::new_with_init("https://revocation-store/put", &init).map_err(unavailable)?;
    let h = req.headers_mut().map_err(unavailable)?;
    h.set(ISS_HEADER, iss).map_err(unavailable)?;
    h.set(VERSION_HEADER, &version.to_string())
        .map_err(unavailable)?;
    let resp = stub.fetch_with_request(req).await.map_err(unavailable)?;
    match resp.status_code() {
        204 => Ok(()),
        409 => Err(IngestError::Rollback),
        _ => Err(IngestError::Unavailable("KV could not be written")),
    }
}

const ISS_HEADER: &str = "gatehouse-iss";
const VERSION_HEADER: &str = "gatehouse-version";

/// Durable Object (one per issuer) that serialises revocation ingest: it
/// holds the highest version taken and writes KV only for a higher one.
#[durable_object]
pub struct RevocationStore {
    state: State,
    env: Env,
    /// One KV write at a time (a KV write is external I/O, during which the
    /// object's input gate lets other requests in).
    lock: Mutex<()>,
    /// The last document taken (version, text), for the replicas' retries.
    last: RefCell<Option<(u64, Rc<str>)>>,
}

/// Replicas that have not acknowledged a version yet (kept in the store's
/// storage under [`FANOUT_KEY`], retried by its alarm).
#[derive(serde::Serialize, serde::Deserialize)]
struct Fanout {
    iss: String,
    version: u64,
    regions: Vec<String>,
    attempt: u32,
}

const FANOUT_KEY: &str = "fanout";

impl RevocationStore {
    async fn take(&self, iss: &str, version: u64, raw: &str) -> worker::Result<u16> {
        let _one_at_a_time = self.lock.lock().await;
        let storage = self.state.storage();
        let stored: Option<String> = storage.get("version").await?;
        let store = self.env.kv(BINDING)?;
        // The floor is the higher of the object's version and KV's: in
        // Cloudflare-KV push mode the origin writes KV directly, past this
        // object, and an older genuine document posted here must not roll
        // that back. Only verified documents (from here or the origin's
        // pusher) are ever written to KV.
        let in_kv = store.get(&kv_key(iss)).text().await?.and_then(|t| {
            UntrustedRevocationDocument::parse(&t, &RevocationPolicy::new(iss))
                .ok()
                .map(|d| d.version())
        });
        let held = floor(stored.as_deref().and_then(|v| v.parse::<u64>().ok()), in_kv);
        if !takes_version(held, version) {
            return Ok(409);
        }
        // The version first (under the lock nothing interleaves), so the
        // acknowledgement follows the KV write directly; a failed KV write
        // puts the previous version back.
        storage.put("version", version.to_string()).await?;
        let written = match store.put(&kv_key(iss), raw) {
            Ok(put) => put.execute().await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            match stored {
                Some(previous) => storage.put("version", previous).await?,
                None => {
                    storage.delete("version").await?;
                }
            }
            return Err(e.into());
        }
        let raw: Rc<str> = raw.into();
        *self.last.borrow_mut() = Some((version, Rc::clone(&raw)));
        // The fast path: every regional replica, in parallel and bounded;
        // the ones that did not acknowledge are retried by the alarm (KV,
        // written above, covers them meanwhile).
        let regions = revocation_replica::configured(&self.env);
        let missed = revocation_replica::put_all(&self.env, &regions, iss, version, &raw).await;
        self.remember_missed(iss, version, &missed, 0).await?;
        Ok(204)
    }

    /// Records the replicas still to be written (or that none are) and sets
    /// the alarm that retries them.
    async fn remember_missed(
        &self,
        iss: &str,
        version: u64,
        missed: &[&'static str],
        attempt: u32,
    ) -> worker::Result<()> {
        let storage = self.state.storage();
        if missed.is_empty() {
            storage.delete(FANOUT_KEY).await?;
            return Ok(());
        }
        worker::console_warn!(
            r#"{{"event":"revocation_replicas_behind","version":{version},"replicas":{}}}"#,
            serde_json::Value::from(missed.to_vec())
        );
        let pending = Fanout {
            iss: iss.to_owned(),
            version,
            regions: missed.iter().map(|r| (*r).to_owned()).collect(),
            attempt,
        };
        storage.put(FANOUT_KEY, &pending).await?;
        let delay = crate::replica_rules::retry_delay_ms(attempt);
        storage
            .set_alarm(std::time::Duration::from_millis(delay))
            .await
    }

    /// The alarm: writes the pending version to the replicas that have not
    /// acknowledged it (from memory, or from KV after an eviction).
    async fn retry_replicas(&self) -> worker::Result<()> {
        let _one_at_a_time = self.lock.lock().await;
        let storage = self.state.storage();
        let Some(pending) = storage.get::<Fanout>(FANOUT_KEY).await? else {
            return Ok(());
        };
        let in_memory = self
            .last
            .borrow()
            .as_ref()
            .filter(|(v, _)| *v == pending.version)
            .map(|(_, raw)| Rc::clone(raw));
        let raw = match in_memory {
            Some(raw) => raw,
            None => {
                // KV holds what this store wrote, or something newer that
                // the origin wrote past it; only what reaches this version
                // is sent (replicas refuse anything older than they hold).
                let text = self
                    .env
                    .kv(BINDING)?
                    .get(&kv_key(&pending.iss))
                    .text()
                    .await?;
                match text.filter(|t| {
                    UntrustedRevocationDocument::parse(t, &RevocationPolicy::new(&pending.iss))
                        .is_ok_and(|d| d.version() == pending.version)
                }) {
                    Some(t) => t.into(),
                    None => {
                        storage.delete(FANOUT_KEY).await?;
                        return Ok(());
                    }
                }
            }
        };
        let regions: Vec<&'static str> = crate::replica_rules::REGIONS
            .iter()
            .copied()
            .filter(|r| pending.regions.iter().any(|p| p == r))
            .collect();
        let missed =
            revocation_replica::put_all(&self.env, &regions, &pending.iss, pending.version, &raw)
                .await;
        self.remember_missed(
            &pending.iss,
            pending.version,
            &missed,
            pending.attempt.saturating_add(1),
        )
        .await
    }
}

impl DurableObject for RevocationStore {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            lock: Mutex::new(()),
            last: RefCell::new(None),
        }
    }

    async fn alarm(&self) -> worker::Result<Response> {
        if let Err(e) = self.retry_replicas().await {
            worker::console_error!(
                r#"{{"event":"revocation_replicas_retry_failed","error":{}}}"#,
                serde_json::Value::from(e.to_string())
            );
            // Try again later rather than never.
            self.state
                .storage()
                .set_alarm(std::time::Duration::from_secs(60))
                .await?;
        }
        Response::empty()
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        if req.method() != Method::Post {
            return Response::error("method not allowed", 405);
        }
        let header = |name: &str| req.headers().get(name).ok().flatten();
        let (Some(iss), Some(version)) = (
            header(ISS_HEADER),
            header(VERSION_HEADER).and_then(|v| v.parse::<u64>().ok()),
        ) else {
            return Response::error("bad request", 400);
        };
        let raw = req.text().await?;
        match self.take(&iss, version, &raw).await {
            Ok(status) => Ok(Response::empty()?.with_status(status)),
            Err(e) => {
                worker::console_error!(
                    r#"{{"event":"revocation_store_failed","error":{}}}"#,
                    serde_json::Value::from(e.to_string())
                );
                Response::error("unavailable", 503)
            }
        }
    }
}

/// The issuer's current list: re-read from KV after the TTL and, beside
/// it, refreshed from the isolate's regional replica at most every
/// `REVOCATION_REFRESH_SECS` (the fast path; it can only move the list to a
/// newer verified version). `Ok(None)`: no document anywhere (nothing
/// revoked). `Err`: KV could not be read, or its document did not verify
/// (remembered for the TTL) — the replica never changes that outcome.
pub async fn current(
    cfg: &EdgeConfig,
    issuer: &IssuerConfig,
    env: &Env,
    now: UnixTime,
) -> Result<Option<Rc<RevocationList>>, Unavailable> {
    let iss = issuer.policy.issuer.as_str();
    let (_, from_kv) = futures_util::future::join(
        from_replica(cfg, issuer, env, now, Then::Verify),
        from_kv(cfg, issuer, env, now),
    )
    .await;
    // The newest list held, whichever path brought it.
    from_kv.map(|_| held(iss))
}

/// What a replica or KV read does with the document it got.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Then {
    /// Verifies it now (and takes it by the usual rules).
    Verify,
    /// Keeps it in the issuer's state for the next [`current`] to verify:
    /// [`beside`], before the issuer's keys are held.
    Keep,
}

/// Runs `work` (a request's key fetch) beside the I/O of the next
/// [`current`] call (issue 21.5: on a cold isolate the JWKS fetch, the KV
/// read and the replica's first contact were awaited one after the other).
/// Reads KV when the TTL says [`current`] will, and the replica when a read
/// is due, and keeps what they return, unverified, in isolate memory;
/// nothing is decided here: [`current`] verifies a kept document exactly as
/// a fresh one (signature against the issuer's keys, no rollback) and takes
/// a kept KV read as its own only within the TTL of the instant it was
/// made, so the outcome (and `REVOCATION_FAIL`) is the one a sequential
/// read gives. Costs no await when nothing is due (a warm isolate within
/// its TTL). At most one KV read per isolate and issuer runs here at a
/// time, and none while a kept one is waiting.
///
/// The request waits for all three: the replica read is bounded by
/// [`revocation_replica::READ_DEADLINE`] like every replica read, so a new
/// isolate's first request is decided on the newest list either copy holds
/// (a revocation the replicas carry before KV does is refused on an
/// isolate's very first request too).
pub async fn beside<T>(
    work: impl std::future::Future<Output = T>,
    cfg: &EdgeConfig,
    issuer: &IssuerConfig,
    env: &Env,
    now: UnixTime,
) -> T {
    let (out, _read_kv, ()) = futures_util::future::join3(
        work,
        prefetch_kv(cfg, issuer, env, now),
        from_replica(cfg, issuer, env, now, Then::Keep),
    )
    .await;
    out
}

/// Reads KV for the next [`current`] when due; whether it did.
async fn prefetch_kv(cfg: &EdgeConfig, issuer: &IssuerConfig, env: &Env, now: UnixTime) -> bool {
    let iss = issuer.policy.issuer.as_str();
    let ttl = cfg.revocation_ttl_secs;
    let due = with_state(iss, |s| {
        let kept_fresh = s
            .kv_prefetched
            .as_ref()
            .is_some_and(|(at, _)| !needs_reread(at.0, ttl, now.0));
        let reread = s.checked_at.is_none_or(|at| needs_reread(at.0, ttl, now.0));
        let due = ttl > 0 && reread && !kept_fresh && !s.kv_prefetching;
        if due {
            s.kv_prefetching = true;
        }
        due
    });
    if !due {
        return false;
    }
    /// Clears the mark when the read ends or is dropped.
    struct Reading<'a>(&'a str);
    impl Drop for Reading<'_> {
        fn drop(&mut self) {
            with_state(self.0, |s| s.kv_prefetching = false);
        }
    }
    let _reading = Reading(iss);
    let read = read_kv(env, iss).await;
    with_state(iss, |s| s.kv_prefetched = Some((now, read)));
    true
}

/// Clears a replica read's in-flight mark when it ends or is dropped; a
/// read dropped before the replica answered ([`beside`]) is due again.
struct ReadInFlight<'a> {
    iss: &'a str,
    answered: bool,
}

impl Drop for ReadInFlight<'_> {
    fn drop(&mut self) {
        with_state(self.iss, |s| {
            s.replica.in_flight = false;
            if !self.answered {
                s.replica.started_ms = None;
                s.replica.reads = s.replica.reads.saturating_sub(1);
            }
        });
    }
}

/// The fast path: one read of the isolate's replica when due (single
/// flight; the request that starts it waits at most
/// [`revocation_replica::READ_DEADLINE`] for the answer, the others do not
/// wait). A document is verified as KV's is and taken only when newer than
/// the list held; anything else is counted, logged, and changes nothing.
async fn from_replica(
    cfg: &EdgeConfig,
    issuer: &IssuerConfig,
    env: &Env,
    now: UnixTime,
    then: Then,
) {
    let Some(region) = revocation_replica::region(&cfg.revocation_replicas) else {
        return;
    };
    let iss = issuer.policy.issuer.as_str();
    if then == Then::Verify {
        // A document a read beside the key fetch received (counted already).
        if let Some(raw) = with_state(iss, |s| s.replica_prefetched.take()) {
            take_from_replica(cfg, issuer, now, raw).await;
        }
    }
    #[allow(clippy::cast_precision_loss)] // milliseconds since the epoch, below 2^52
    let now_ms = worker::Date::now().as_millis() as f64;
    let have = with_state(iss, |s| {
        let r = &mut s.replica;
        read_due(
            r.started_ms,
            r.in_flight,
            cfg.revocation_refresh_secs,
            now_ms,
        )
        .then(|| {
            r.started_ms = Some(now_ms);
            r.in_flight = true;
            r.reads += 1;
            r.seen
        })
    });
    let Some(have) = have else {
        return;
    };
    let mut in_flight = ReadInFlight {
        iss,
        answered: false,
    };
    let read = revocation_replica::read(env, region, iss, have).await;
    in_flight.answered = true;
    let raw = match read {
        Ok(revocation_replica::Answer::Document(raw)) => raw,
        Ok(_) => return,
        Err(()) => {
            with_state(iss, |s| s.replica.failed += 1);
            warn("revocation_replica_unreachable", region);
            return;
        }
    };
    match then {
        Then::Verify => take_from_replica(cfg, issuer, now, raw).await,
        Then::Keep => with_state(iss, |s| s.replica_prefetched = Some(raw)),
    }
}

/// Verifies a replica's document as KV's is and takes it only when newer
/// than the list held; anything else is counted, logged, and changes nothing.
async fn take_from_replica(cfg: &EdgeConfig, issuer: &IssuerConfig, now: UnixTime, raw: String) {
    let iss = issuer.policy.issuer.as_str();
    let fp = fingerprint(&raw);
    if with_state(iss, |s| s.list.as_ref().is_some_and(|(_, f)| *f == fp)) {
        with_state(iss, |s| {
            s.replica.seen = s.list.as_ref().map(|(l, _)| l.version())
        });
        return;
    }
    match verify(&raw, cfg, issuer, held_version(iss), now).await {
        Ok(mut list) => {
            list.prune(now);
            let version = list.version();
            with_state(iss, |s| {
                s.replica.seen = Some(version);
                // A KV read that finished meanwhile may hold a newer one.
                if s.list.as_ref().is_none_or(|(l, _)| l.version() < version) {
                    s.list = Some((Rc::new(list), fp));
                    s.replica.taken += 1;
                }
            });
        }
        Err(e) => {
            let version = UntrustedRevocationDocument::parse(&raw, &policy(issuer))
                .ok()
                .map(|d| d.version());
            with_state(iss, |s| {
                s.replica.refused += 1;
                // Not downloaded again until the replica moves on; except
                // after an outage of the keys, retried at the next read.
                s.replica.seen = match e {
                    IngestError::Unavailable(_) | IngestError::UnknownKey => None,
                    IngestError::Rollback | IngestError::Invalid(_) => version,
                };
            });
            if !matches!(e, IngestError::Rollback) {
                warn("revocation_replica_refused", &reason(&e));
            }
        }
    }
}

/// The KV path (unchanged rules): the held answer within the TTL, else a
/// re-read of KV.
async fn from_kv(
    cfg: &EdgeConfig,
    issuer: &IssuerConfig,
    env: &Env,
    now: UnixTime,
) -> Result<(), Unavailable> {
    let iss = issuer.policy.issuer.as_str();
    let cached = with_state(iss, |s| match s.checked_at {
        Some(at) if !needs_reread(at.0, cfg.revocation_ttl_secs, now.0) => {
            Some(if s.failed { Err(Unavailable) } else { Ok(()) })
        }
        _ => None,
    });
    if let Some(answer) = cached {
        return answer;
    }
    let (read_at, outcome) = reload(cfg, issuer, env, now).await;
    with_state(iss, |s| {
        s.checked_at = Some(read_at);
        s.failed = outcome.is_err();
    });
    outcome
}

fn reason(e: &IngestError) -> String {
    match e {
        IngestError::Rollback => "rollback refused".to_owned(),
        IngestError::Invalid(e) => e.to_string(),
        IngestError::Unavailable(why) => (*why).to_owned(),
        IngestError::UnknownKey => UNKNOWN_KEY.to_owned(),
    }
}

fn warn(event: &str, reason: &str) {
    worker::console_warn!(
        r#"{{"event":{},"reason":{}}}"#,
        serde_json::Value::from(event),
        serde_json::Value::from(reason)
    );
}

/// The issuer's document in KV (`None`: none there).
async fn read_kv(env: &Env, iss: &str) -> Result<Option<String>, Unavailable> {
    let store = kv(env).map_err(|_| {
        warn(
            "revocations_read_failed",
            "the REVOCATIONS binding is missing",
        );
        Unavailable
    })?;
    store.get(&kv_key(iss)).text().await.map_err(|_| {
        warn("revocations_read_failed", "KV could not be read");
        Unavailable
    })
}

/// Re-reads KV (or takes the read a [`beside`] kept, while it is within
/// the TTL); on success the state's list is the one to use. Returns the
/// instant of the read beside the outcome.
async fn reload(
    cfg: &EdgeConfig,
    issuer: &IssuerConfig,
    env: &Env,
    now: UnixTime,
) -> (UnixTime, Result<(), Unavailable>) {
    let iss = issuer.policy.issuer.as_str();
    let kept = with_state(iss, |s| s.kv_prefetched.take())
        .filter(|(at, _)| !needs_reread(at.0, cfg.revocation_ttl_secs, now.0));
    let (read_at, read) = match kept {
        Some(kept) => kept,
        None => (now, read_kv(env, iss).await),
    };
    (read_at, take_from_kv(cfg, issuer, now, read).await)
}

async fn take_from_kv(
    cfg: &EdgeConfig,
    issuer: &IssuerConfig,
    now: UnixTime,
    read: Result<Option<String>, Unavailable>,
) -> Result<(), Unavailable> {
    let iss = issuer.policy.issuer.as_str();
    let Some(raw) = read? else {
        // Nothing pushed for this issuer: nothing revoked (a list already
        // held stays: versions never go backwards).
        return Ok(());
    };
    let fp = fingerprint(&raw);
    if with_state(iss, |s| s.list.as_ref().is_some_and(|(_, f)| *f == fp)) {
        return Ok(());
    }
    match verify(&raw, cfg, issuer, held_version(iss), now).await {
        Ok(mut list) => {
            list.prune(now);
            let version = list.version();
            with_state(iss, |s| {
                // The replica may have brought a newer one meanwhile.
                if s.list.as_ref().is_none_or(|(l, _)| l.version() < version) {
                    s.list = Some((Rc::new(list), fp));
                }
            });
            Ok(())
        }
        // KV still shows an older document than this isolate took (KV
        // propagation): the held, newer list stays in use.
        Err(IngestError::Rollback) => Ok(()),
        Err(e) => {
            warn("revocations_not_taken", &reason(&e));
            Err(Unavailable)
        }
    }
}
