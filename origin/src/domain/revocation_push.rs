//! The revocation pusher: carries committed revocations to the edge.
//!
//! Every revocation commits its row and an outbox row in one transaction
//! ([`crate::store::revocation::revoke`]). The pusher, a task inside `serve`, then
//!
//! 1. takes the push lock (PostgreSQL: a session advisory lock on a
//!    connection that is closed afterwards, so a crashed replica never holds
//!    it; SQLite has one writer anyway),
//! 2. in one transaction bumps the version row (strictly increasing across
//!    replicas), claims the pending outbox ids and reads every revocation
//!    whose tokens can still be unexpired,
//! 3. signs the document with the active key and sends it to the edge
//!    worker or to the Cloudflare KV API,
//! 4. only on acknowledgement marks exactly the claimed outbox rows delivered.
//!
//! A failure leaves the rows pending; the next attempt builds a fresh
//! document with a new version, after exponential backoff with jitter.
//! Pending rows survive any crash, so a restarted origin pushes them.

use crate::config::{CloudflareKv, Config, PushTarget};
use crate::domain::keys::KeyRing;
use crate::store::db::{Db, StoreError};
use crate::store::outbox;
use crate::store::revocation::CoverSpan;
use crate::support::clock::SharedClock;
use crate::support::metrics::Metrics;
use crate::support::request::{self, RequestIds};
use gatehouse_common::revocation::{
    RevocationDocument, RevocationEntry, RevocationKind, MAX_ENTRIES, REVOCATIONS_TYP,
};
use gatehouse_common::UnixTime;
use serde::Serialize;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The configuration the pusher reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushSettings {
    /// The issuer named in every document.
    pub issuer: String,
    /// Seconds after which a delivered document is published again.
    pub republish_secs: i64,
    /// The configured access token TTL (with the persisted maximum, how
    /// long entries are carried).
    pub access_token_ttl: i64,
    /// The validators' clock leeway.
    pub leeway_secs: i64,
}

impl PushSettings {
    /// The pusher's slice of `config`.
    #[must_use]
    pub fn from_config(config: &Config) -> Self {
        Self {
            issuer: config.issuer.clone(),
            republish_secs: config.republish_secs,
            access_token_ttl: config.access_token_ttl,
            leeway_secs: config.leeway_secs,
        }
    }
}

/// What the pusher needs, instead of the whole server state: storage, its
/// configuration, the key ring (swapped by key maintenance), metrics and
/// the clock. The HTTP client is the [`PushClient`] passed beside it.
#[derive(Clone)]
pub struct Pusher {
    /// Storage.
    pub db: Db,
    /// Its configuration.
    pub settings: PushSettings,
    /// The key ring as key maintenance leaves it.
    pub keys: Arc<RwLock<Arc<KeyRing>>>,
    /// Metrics (document size).
    pub metrics: Arc<Metrics>,
    /// The one clock (the background loop reads it once per cycle).
    pub clock: SharedClock,
}

impl std::fmt::Debug for Pusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pusher")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Pusher {
    /// The current ring.
    fn ring(&self) -> Result<Arc<KeyRing>, PushError> {
        self.keys
            .read()
            .map(|r| Arc::clone(&r))
            .map_err(|_| PushError::NoSigner)
    }
}

/// Outbox rows claimed per document (the document always carries every
/// revocation; this only bounds one UPDATE).
const CLAIM_LIMIT: i64 = 10_000;
/// Rows marked delivered per statement.
const MARK_CHUNK: usize = 500;
/// The edge's ingest route.
pub const EDGE_INGEST_PATH: &str = "/.gatehouse/revocations";

/// Timing of the push loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PushSchedule {
    /// How often to look for rows written by other processes.
    pub poll: Duration,
    /// First retry delay after a failure.
    pub backoff_base: Duration,
    /// Longest retry delay.
    pub backoff_cap: Duration,
    /// Timeout of one push request.
    pub request_timeout: Duration,
}

impl Default for PushSchedule {
    fn default() -> Self {
        Self {
            poll: Duration::from_secs(1),
            backoff_base: Duration::from_millis(250),
            backoff_cap: Duration::from_secs(15),
            request_timeout: Duration::from_secs(10),
        }
    }
}

impl PushSchedule {
    /// The delay before retry number `failures` (1-based): exponential,
    /// capped, with "equal jitter" (half fixed, half random) so replicas and
    /// restarts do not retry in lockstep. `random` is any 64-bit value.
    #[must_use]
    pub fn backoff(&self, failures: u32, random: u64) -> Duration {
        let exp = failures.saturating_sub(1).min(20);
        let full = self
            .backoff_base
            .saturating_mul(1u32 << exp)
            .min(self.backoff_cap);
        let half = full / 2;
        let half_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX).max(1);
        half + Duration::from_millis(random % half_ms)
    }
}

/// Why a push failed (stored as the last error: never contains the document or a token).
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// Storage.
    #[error(transparent)]
    Db(#[from] StoreError),
    /// No key may sign now.
    #[error("no active signing key")]
    NoSigner,
    /// Signing failed.
    #[error("signing the revocation document failed: {0}")]
    Sign(#[from] crate::support::crypto::CryptoError),
    /// The request did not complete.
    #[error("push to {target} failed: {reason}")]
    Transport {
        /// `edge` or `cloudflare`.
        target: &'static str,
        /// The client's description (no headers, no body).
        reason: String,
    },
    /// The receiver answered with an error status.
    #[error("push to {target} refused with HTTP {status}")]
    Refused {
        /// `edge` or `cloudflare`.
        target: &'static str,
        /// The status code.
        status: u16,
    },
    /// Cloudflare answered 2xx without `"success": true`.
    #[error("cloudflare did not report success")]
    NotAcknowledged,
    /// Pushing is off.
    #[error("revocation push is off")]
    Off,
}

/// Sends signed documents to the configured target.
#[derive(Clone, Debug)]
pub struct PushClient {
    http: reqwest::Client,
    target: PushTarget,
}

impl PushClient {
    /// A client for `target`.
    pub fn new(target: PushTarget, schedule: &PushSchedule) -> Result<Self, PushError> {
        let http = reqwest::Client::builder()
            .timeout(schedule.request_timeout)
            .connect_timeout(schedule.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("gatehouse-origin/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| PushError::Transport {
                target: "http client",
                reason: e.to_string(),
            })?;
        Ok(Self { http, target })
    }

    /// The configured target.
    #[must_use]
    pub fn target(&self) -> &PushTarget {
        &self.target
    }

    /// Sends `jws`; `Ok` only when the receiver acknowledged the write. A
    /// call to the edge carries `ids` (`traceparent`, `Gatehouse-Request-Id`),
    /// so the edge's ingest log line can be found from the pusher's.
    pub async fn send(&self, jws: &str, ids: &RequestIds) -> Result<(), PushError> {
        match &self.target {
            PushTarget::Off => Err(PushError::Off),
            PushTarget::Edge { url } => {
                let resp = self
                    .http
                    .post(format!("{url}{EDGE_INGEST_PATH}"))
                    .header(reqwest::header::CONTENT_TYPE, "application/jwt")
                    .header(request::TRACEPARENT_HEADER, ids.traceparent())
                    .header(request::REQUEST_ID_HEADER, &ids.request_id)
                    .body(jws.to_owned())
                    .send()
                    .await
                    .map_err(|e| transport("edge", &e))?;
                let status = resp.status();
                if status.is_success() {
                    Ok(())
                } else {
                    Err(PushError::Refused {
                        target: "edge",
                        status: status.as_u16(),
                    })
                }
            }
            PushTarget::Cloudflare(kv) => self.send_cloudflare(kv, jws).await,
        }
    }

    /// Cloudflare "Write key-value pair": `PUT
    /// /accounts/{account_id}/storage/kv/namespaces/{namespace_id}/values/{key}`
    /// with the value as the body; success is `{"success": true, …}`.
    async fn send_cloudflare(&self, kv: &CloudflareKv, jws: &str) -> Result<(), PushError> {
        let url = cloudflare_value_url(kv);
        let resp = self
            .http
            .put(url)
            .bearer_auth(kv.api_token.expose())
            .header(reqwest::header::CONTENT_TYPE, "text/plain")
            .body(jws.to_owned())
            .send()
            .await
            .map_err(|e| transport("cloudflare", &e))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(PushError::Refused {
                target: "cloudflare",
                status: status.as_u16(),
            });
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| transport("cloudflare", &e))?;
        let ok = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("success").and_then(serde_json::Value::as_bool))
            .unwrap_or(false);
        if ok {
            Ok(())
        } else {
            Err(PushError::NotAcknowledged)
        }
    }
}

/// The KV value URL. Ids are URL-safe (the config checks); the key is
/// percent-encoded, as the API asks for keys with `/`, `:` and the like.
#[must_use]
pub fn cloudflare_value_url(kv: &CloudflareKv) -> String {
    format!(
        "{}/accounts/{}/storage/kv/namespaces/{}/values/{}",
        kv.api_base,
        kv.account_id,
        kv.namespace_id,
        percent_encode(&kv.key)
    )
}

/// RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`) stay; every other
/// byte is percent-encoded.
const KEY_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// RFC 3986 percent-encoding of everything but unreserved characters.
fn percent_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, KEY_SEGMENT).to_string()
}

fn transport(target: &'static str, e: &reqwest::Error) -> PushError {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    PushError::Transport {
        target,
        reason: kind.to_owned(),
    }
}

/// A document built and claimed, ready to sign.
#[derive(Clone, Debug)]
pub struct Claim {
    /// The document (its version is already reserved).
    pub document: RevocationDocument,
    /// The outbox rows it delivers once acknowledged.
    pub outbox_ids: Vec<i64>,
    /// Live revocations (more than the document carries when over the cap).
    pub live: usize,
}

/// What one push cycle did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cycle {
    /// Nothing pending.
    Idle,
    /// Another replica holds the push lock.
    Busy,
    /// A document was acknowledged.
    Delivered {
        /// Its version.
        version: u64,
        /// Outbox rows marked delivered.
        rows: usize,
        /// Entries in the document.
        entries: usize,
    },
}

/// When an entry may be dropped: a `jti` entry when that token has expired
/// (stored `drop_after`), a `sid`/`sub`/`client_id` entry when every token
/// issued up to `revoked_at` has (`revoked_at` + longest lifetime + leeway).
#[must_use]
pub fn entry_until(kind: RevocationKind, revoked_at: i64, drop_after: i64, span: CoverSpan) -> i64 {
    match kind {
        RevocationKind::Jti => drop_after,
        _ => drop_after.max(revoked_at.saturating_add(span.secs())),
    }
}

/// The lowest version a document built at `now` gets: `now` in
/// milliseconds since the epoch (versions strictly increase above it).
#[must_use]
pub fn version_floor(now: UnixTime) -> i64 {
    now.0.saturating_mul(1000)
}

/// Whether any outbox row is waiting.
pub async fn has_pending(db: &Db) -> Result<bool, StoreError> {
    outbox::has_pending(db).await
}

/// Reserves the next version and builds the document over every live
/// revocation, claiming the pending outbox rows it covers. `None` when
/// nothing is pending.
pub async fn claim(
    db: &Db,
    issuer: &str,
    span: CoverSpan,
    republish: bool,
    now: UnixTime,
) -> Result<Option<Claim>, PushError> {
    // Versions are milliseconds since the epoch (or one above the last, if
    // that is higher): the edge refuses versions ahead of its clock, so a
    // document signed with a leaked key cannot raise the floor past what
    // this pusher reaches shortly after (see `version_floor`).
    let Some(claimed) = outbox::claim(
        db,
        now.0,
        version_floor(now),
        CLAIM_LIMIT,
        now.0.saturating_sub(span.secs()),
        republish,
    )
    .await?
    else {
        return Ok(None);
    };
    let version = claimed.version;
    let ids = claimed.outbox_ids;
    let mut live = Vec::with_capacity(claimed.revocations.len());
    for r in claimed.revocations {
        let kind =
            RevocationKind::from_name(&r.kind).ok_or(StoreError::Corrupt { column: "kind" })?;
        let until = entry_until(kind, r.revoked_at, r.drop_after, span);
        if until > now.0 {
            live.push((
                Priority::of(kind, &r.reason),
                r.reason,
                RevocationEntry {
                    kind,
                    value: r.value,
                    revoked_at: r.revoked_at,
                    until,
                },
            ));
        }
    }
    let live_count = live.len();
    let entries = within_cap(live, MAX_ENTRIES, MAX_PAYLOAD_BYTES);
    Ok(Some(Claim {
        document: RevocationDocument {
            iss: issuer.to_owned(),
            iat: now.0,
            version: u64::try_from(version)
                .map_err(|_| StoreError::Corrupt { column: "version" })?,
            entries,
        },
        outbox_ids: ids,
        live: live_count,
    }))
}

/// Which live revocations a document keeps first when there are more than
/// it may carry ([`MAX_ENTRIES`]): an operator's (admin API, CLI) before any
/// other, then whole subjects and clients, then grant families, then single
/// tokens (which any client can create in bulk by revoking its own).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// Revoked by an operator through the admin API or the CLI.
    Operator,
    /// A `sub` or `client_id` entry (user or client deleted).
    Principal,
    /// A `sid` entry (a grant family).
    Family,
    /// A `jti` entry (one token).
    Token,
}

impl Priority {
    /// The priority of an entry of `kind` stored with `reason`.
    #[must_use]
    pub fn of(kind: RevocationKind, reason: &str) -> Self {
        match (kind, reason) {
            (
                _,
                crate::store::revocation::REASON_ADMIN_API | crate::store::revocation::REASON_CLI,
            ) => Self::Operator,
            (RevocationKind::Sub | RevocationKind::ClientId, _) => Self::Principal,
            (RevocationKind::Sid, _) => Self::Family,
            (RevocationKind::Jti, _) => Self::Token,
        }
    }
}

/// The most claim bytes (the JSON payload) a document may carry: the edge's
/// ingest route takes a compact JWS of at most 8 MiB
/// (`edge/src/revocations.rs` `MAX_DOCUMENT_BYTES`), base64url makes the
/// payload 4/3 larger, and the header, `iss` and signature need a margin.
pub const MAX_PAYLOAD_BYTES: usize = 6 * 1024 * 1024 - 64 * 1024;

/// An upper bound of `e`'s encoded size in the payload (with its comma):
/// the longest kind name, two 20-digit numbers, the JSON-escaped value.
fn encoded_len(e: &RevocationEntry) -> usize {
    let value = serde_json::to_string(&e.value).map_or(usize::MAX / 2, |v| v.len());
    value.saturating_add(80)
}

/// The live entries a document carries: all of them when they fit in `cap`
/// entries and `max_bytes` of payload; otherwise by [`Priority`], and within
/// one shared out round robin between the stored reasons (each names the
/// client that caused it, [`crate::store::revocation::by_client`]), newest first
/// within a reason: the caps never hold back an operator's revocation, and
/// a client revoking its own tokens in bulk only displaces its own entries,
/// never another client's older ones (what is left out is carried again
/// once older entries expire). Kept in their original order.
#[must_use]
pub fn within_cap(
    live: Vec<(Priority, String, RevocationEntry)>,
    cap: usize,
    max_bytes: usize,
) -> Vec<RevocationEntry> {
    let total: usize = live
        .iter()
        .map(|(_, _, e)| encoded_len(e))
        .fold(0, usize::saturating_add);
    if live.len() <= cap && total <= max_bytes {
        return live.into_iter().map(|(_, _, e)| e).collect();
    }
    let mut ranked: Vec<(usize, Priority, String, usize, RevocationEntry)> = live
        .into_iter()
        .enumerate()
        .map(|(i, (p, owner, e))| (i, p, owner, 0, e))
        .collect();
    // Each entry's rank within its (priority, reason), newest first.
    ranked.sort_by(|a, b| {
        a.1.cmp(&b.1)
            .then_with(|| a.2.cmp(&b.2))
            .then(b.4.revoked_at.cmp(&a.4.revoked_at))
    });
    let mut previous: Option<(Priority, String)> = None;
    let mut rank = 0usize;
    for r in &mut ranked {
        if previous
            .as_ref()
            .is_some_and(|(p, o)| *p == r.1 && *o == r.2)
        {
            rank = rank.saturating_add(1);
        } else {
            rank = 0;
            previous = Some((r.1, r.2.clone()));
        }
        r.3 = rank;
    }
    ranked.sort_by(|a, b| {
        a.1.cmp(&b.1)
            .then(a.3.cmp(&b.3))
            .then(b.4.revoked_at.cmp(&a.4.revoked_at))
    });
    let mut bytes = 0usize;
    let mut kept: Vec<(usize, RevocationEntry)> = Vec::new();
    for (i, _, _, _, e) in ranked {
        let len = encoded_len(&e);
        if kept.len() >= cap || bytes.saturating_add(len) > max_bytes {
            break;
        }
        bytes = bytes.saturating_add(len);
        kept.push((i, e));
    }
    kept.sort_by_key(|k| k.0);
    kept.into_iter().map(|(_, e)| e).collect()
}

/// When a document is close to the cap: from 80 % of [`MAX_ENTRIES`] on,
/// the pusher warns (and `/metrics` shows it) before anything is left out.
pub const NEAR_CAP: usize = MAX_ENTRIES / 5 * 4;

/// Who delivered a document: the pusher's mode and the signing key.
#[derive(Clone, Copy, Debug)]
pub struct Delivery<'a> {
    /// The pusher's push mode (`edge`, `cloudflare`).
    pub mode: &'static str,
    /// The kid that signed the document.
    pub kid: &'a str,
}

/// Marks `claim`'s rows delivered by `version` (after the acknowledgement),
/// recording the pusher's mode and the signing kid.
pub async fn mark_delivered(
    db: &Db,
    claim: &Claim,
    by: Delivery<'_>,
    now: UnixTime,
) -> Result<usize, PushError> {
    let version = i64::try_from(claim.document.version)
        .map_err(|_| StoreError::Corrupt { column: "version" })?;
    Ok(outbox::mark_delivered(
        db,
        &claim.outbox_ids,
        MARK_CHUNK,
        version,
        by.mode,
        by.kid,
        now.0,
    )
    .await?)
}

/// Records a failed attempt (the message names no secret).
pub async fn record_failure(db: &Db, error: &PushError, now: UnixTime) -> Result<(), StoreError> {
    outbox::record_failure(db, &error.to_string(), now.0).await
}

/// Signs the document with `ring`'s signer at `now`.
pub fn sign(ring: &KeyRing, doc: &RevocationDocument, now: UnixTime) -> Result<String, PushError> {
    let signer = ring.signer(now).ok_or(PushError::NoSigner)?;
    Ok(signer.sign_jws(REVOCATIONS_TYP, &doc.to_claims())?)
}

/// Whether the last delivered document is due to be published again with
/// nothing pending: older than `every_secs` (an edge whose KV lost it
/// heals), or signed by another key than the signer now (re-sign after
/// rotation, before the old key leaves the JWKS). Never, before a first delivery.
pub async fn republish_due(
    db: &Db,
    every_secs: i64,
    signer_kid: &str,
    now: UnixTime,
) -> Result<bool, StoreError> {
    let (delivered_at, signed_kid) = outbox::last_delivery(db).await?;
    Ok(delivered_at.is_some_and(|at| {
        now.0.saturating_sub(at) >= every_secs || signed_kid.as_deref() != Some(signer_kid)
    }))
}

/// The ids of the push of document `version`: a new trace, and the request
/// id `push-<version>-<16 random hex>` (unique per attempt; the version
/// says which document an edge log line is about).
#[must_use]
pub fn push_ids(version: u64) -> RequestIds {
    request::outbound(format!(
        "push-{version}-{}",
        crate::support::request::random_hex::<8>()
    ))
}

/// One push cycle: lock, claim, sign, send, mark delivered on acknowledgement.
pub async fn push_pending(
    pusher: &Pusher,
    client: &PushClient,
    now: UnixTime,
) -> Result<Cycle, PushError> {
    let settings = &pusher.settings;
    let db = &pusher.db;
    // One ring for the cycle: the kid recorded is the kid that signed.
    let ring = pusher.ring()?;
    let signer_kid = ring
        .signer(now)
        .map(|k| k.kid().to_owned())
        .ok_or(PushError::NoSigner)?;
    let pending = has_pending(db).await?;
    let republish =
        !pending && republish_due(db, settings.republish_secs, &signer_kid, now).await?;
    if !pending && !republish {
        return Ok(Cycle::Idle);
    }
    // PostgreSQL: one pusher at a time across replicas, so documents reach
    // the edge in version order. The lock lives on a connection that is
    // closed when this cycle ends (also if it is cancelled), which releases it.
    let Some(_lock) = outbox::try_pusher_lock(db).await? else {
        return Ok(Cycle::Busy);
    };
    let Some(claim) = claim(
        db,
        &settings.issuer,
        crate::store::revocation::cover_span_for(
            db,
            settings.access_token_ttl,
            settings.leeway_secs,
        )
        .await?,
        republish,
        now,
    )
    .await?
    else {
        return Ok(Cycle::Idle);
    };
    let carried = claim.document.entries.len();
    pusher.metrics.revocation_document(claim.live, carried);
    if claim.live >= NEAR_CAP {
        tracing::warn!(
            live = claim.live,
            carried,
            cap = MAX_ENTRIES,
            "revocation document near its entry cap: single-token revocations are left out first (operator revocations never)"
        );
    }
    let jws = sign(&ring, &claim.document, now)?;
    let version = claim.document.version;
    let ids = push_ids(version);
    let sent = client.send(&jws, &ids).await;
    match &sent {
        Ok(()) => tracing::info!(
            request_id = %ids.request_id,
            trace_id = %ids.trace_id,
            version,
            entries = carried,
            target = client.target().mode(),
            "revocation document pushed"
        ),
        Err(e) => tracing::warn!(
            request_id = %ids.request_id,
            trace_id = %ids.trace_id,
            version,
            entries = carried,
            target = client.target().mode(),
            error = %e,
            "revocation document push refused or failed"
        ),
    }
    sent?;
    let by = Delivery {
        mode: client.target().mode(),
        kid: &signer_kid,
    };
    let rows = mark_delivered(db, &claim, by, now).await?;
    Ok(Cycle::Delivered {
        version: claim.document.version,
        rows,
        entries: claim.document.entries.len(),
    })
}

/// The pusher task: runs until aborted. Wakes on this process's
/// revocations, polls for other processes', backs off after failures.
pub async fn run(pusher: Pusher, client: PushClient, schedule: PushSchedule) {
    let notify = pusher.db.outbox_notify.clone();
    let mut failures: u32 = 0;
    tracing::info!(mode = client.target().mode(), "revocation pusher started");
    // `revocations status` shows the server's mode, not the CLI's.
    if let Err(e) = outbox::set_mode(&pusher.db, client.target().mode()).await {
        tracing::warn!(error = %e, "recording the push mode failed");
    }
    loop {
        let wait = match push_pending(&pusher, &client, pusher.clock.now().secs()).await {
            Ok(Cycle::Delivered {
                version,
                rows,
                entries,
            }) => {
                failures = 0;
                tracing::info!(version, rows, entries, "revocation document delivered");
                // More may have arrived meanwhile: look again at once.
                continue;
            }
            Ok(Cycle::Idle | Cycle::Busy) => {
                failures = 0;
                schedule.poll
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let random = crate::support::secret::random_bytes::<8>()
                    .map(u64::from_le_bytes)
                    .unwrap_or_default();
                let delay = schedule.backoff(failures, random);
                tracing::warn!(error = %e, failures, retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), "revocation push failed");
                if let Err(db) = record_failure(&pusher.db, &e, pusher.clock.now().secs()).await {
                    tracing::warn!(error = %db, "recording the push failure failed");
                }
                // Back off fully: new revocations must not hammer a failing receiver.
                tokio::time::sleep(delay).await;
                continue;
            }
        };
        tokio::select! {
            () = notify.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// What `revocations status` shows.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct PushStatus {
    /// `edge` or `cloudflare`: the mode the server's pusher recorded with
    /// its last delivery (`None` until a pusher delivered; the CLI's own
    /// configuration says nothing about the server's).
    pub mode: Option<String>,
    /// The kid that signed the last delivered document.
    pub signed_kid: Option<String>,
    /// The last version assigned to a document.
    pub latest_version: i64,
    /// The newest version the receiver acknowledged.
    pub delivered_version: i64,
    /// When it was acknowledged.
    pub delivered_at: Option<i64>,
    /// Outbox rows not yet delivered.
    pub pending: i64,
    /// When the oldest of them was written.
    pub oldest_pending_at: Option<i64>,
    /// When a push was last tried.
    pub last_attempt_at: Option<i64>,
    /// The last failure, cleared by the next success.
    pub last_error: Option<String>,
    /// Consecutive failures.
    pub failures: i64,
    /// Live revocations (what the next document carries).
    pub live_revocations: i64,
}

/// Reads the pusher's state.
pub async fn status(db: &Db, span: CoverSpan, now: UnixTime) -> Result<PushStatus, StoreError> {
    let r = outbox::status(db, now.0, now.0.saturating_sub(span.secs())).await?;
    Ok(PushStatus {
        mode: r.mode,
        signed_kid: r.signed_kid,
        latest_version: r.latest_version,
        delivered_version: r.delivered_version,
        delivered_at: r.delivered_at,
        pending: r.pending,
        oldest_pending_at: r.oldest_pending_at,
        last_attempt_at: r.last_attempt_at,
        last_error: r.last_error,
        failures: r.failures,
        live_revocations: r.live_revocations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_jitters_within_bounds() {
        let s = PushSchedule {
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_millis(1_000),
            ..PushSchedule::default()
        };
        for (n, full) in [
            (1u32, 100u64),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (40, 1000),
        ] {
            for r in [0u64, 7, u64::MAX] {
                let d = u64::try_from(s.backoff(n, r).as_millis()).unwrap();
                assert!(d >= full / 2 && d < full, "n={n} r={r} d={d}");
            }
        }
    }

    #[test]
    fn kv_keys_are_percent_encoded() {
        assert_eq!(
            percent_encode("revocations/https://a.example:8443"),
            "revocations%2Fhttps%3A%2F%2Fa.example%3A8443"
        );
    }

    fn e(kind: RevocationKind, value: &str, revoked_at: i64) -> RevocationEntry {
        RevocationEntry {
            kind,
            value: value.to_owned(),
            revoked_at,
            until: revoked_at + 300,
        }
    }

    #[test]
    fn over_the_caps_operator_revocations_come_first_and_order_is_kept() {
        let live = vec![
            (
                Priority::Token,
                "a".to_owned(),
                e(RevocationKind::Jti, "old", 1),
            ),
            (
                Priority::Token,
                "a".to_owned(),
                e(RevocationKind::Jti, "new", 5),
            ),
            (
                Priority::Family,
                "a".to_owned(),
                e(RevocationKind::Sid, "s", 2),
            ),
            (
                Priority::Operator,
                "cli".to_owned(),
                e(RevocationKind::Sub, "admin", 3),
            ),
        ];
        let names = |v: Vec<RevocationEntry>| v.into_iter().map(|e| e.value).collect::<Vec<_>>();
        assert_eq!(
            names(within_cap(live.clone(), 10, 10_000)),
            ["old", "new", "s", "admin"]
        );
        assert_eq!(
            names(within_cap(live.clone(), 3, 10_000)),
            ["new", "s", "admin"]
        );
        assert_eq!(names(within_cap(live.clone(), 1, 10_000)), ["admin"]);
        // The byte budget too: room for two entries.
        assert_eq!(names(within_cap(live, 10, 2 * 90)), ["s", "admin"]);
    }

    #[test]
    fn over_the_caps_one_reason_cannot_displace_another() {
        // The flooder's entries are all newer than the victim's one.
        let mut live = vec![(
            Priority::Token,
            "rfc7009 by client victim".to_owned(),
            e(RevocationKind::Jti, "victim", 1),
        )];
        for n in 0..10 {
            live.push((
                Priority::Token,
                "rfc7009 by client flooder".to_owned(),
                e(RevocationKind::Jti, &format!("f{n}"), 10 + n),
            ));
        }
        let names = |v: Vec<RevocationEntry>| v.into_iter().map(|e| e.value).collect::<Vec<_>>();
        assert_eq!(
            names(within_cap(live.clone(), 3, 10_000)),
            ["victim", "f8", "f9"]
        );
        assert_eq!(names(within_cap(live, 2, 10_000)), ["victim", "f9"]);
    }

    #[test]
    fn until_covers_the_longest_token() {
        let span = CoverSpan {
            max_token_ttl: 300,
            leeway_secs: 7,
        };
        assert_eq!(entry_until(RevocationKind::Jti, 100, 150, span), 150);
        assert_eq!(
            entry_until(RevocationKind::Sid, 100, 150, span),
            100 + 300 + 7
        );
        assert_eq!(entry_until(RevocationKind::Sub, 100, 10_000, span), 10_000);
    }
}
