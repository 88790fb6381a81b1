//! Each trusted issuer's signing keys, cached in isolate memory and, with
//! `JWKS_CACHE_SECRET`, shared between isolates of a location through the
//! Cache API in sealed entries (see [`crate::jwks_cache`] for the rules;
//! `caches.default` is shared with every Worker of the zone, so an unsealed
//! entry is never trusted). Every fetch has a deadline. Refreshes are
//! single-flight per issuer ([`crate::single_flight`]): one request fetches;
//! concurrent requests of the isolate wait for it on timers of their own and
//! then read the result from isolate memory.

use crate::config::{EdgeConfig, IssuerConfig};
use crate::jwks_cache::{self, Action, CachePolicy, CacheSeal, JwksState, SharedEntry};
use futures_util::future::{select, Either};
use gatehouse_common::jwk::JwkSet;
use gatehouse_common::UnixTime;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;
use worker::{AbortController, Cache, Delay, Fetch, Method, Request, RequestInit, Response};

/// Largest JWKS document read, in bytes.
const MAX_JWKS_BYTES: usize = 64 * 1024;

/// The deadline for one key fetch (shared cache, issuer, body): a stalling
/// issuer must not hold requests (and the instant they read their clock at)
/// without bound; past it the fetch is aborted and counts as failed, so the
/// last good set serves (stale-if-error) or the request is refused.
pub const FETCH_DEADLINE: Duration = Duration::from_secs(5);

/// A fetched set and where it came from.
enum Got {
    /// From the issuer, with its `max-age` (if any).
    Issuer(JwkSet, Option<i64>),
    /// From the location's shared cache, fetched from the issuer at the entry's time.
    Shared(JwkSet, SharedEntry),
}

type Fetched = Option<Got>;

#[derive(Default)]
struct Issuer {
    state: JwksState,
}

thread_local! {
    /// Per issuer (by `iss`).
    static STATE: RefCell<HashMap<String, Issuer>> = RefCell::new(HashMap::new());
    /// Key fetches of the isolate (succeeded, failed) not yet reported in a
    /// request's data point ([`take_fetch_counts`]).
    static FETCHES: Cell<(u32, u32)> = const { Cell::new((0, 0)) };
}

/// The isolate's key fetches (refreshes, failures) since the last call:
/// each is reported once, in the data point of the request that finishes
/// next (so sums over data points are exact).
pub fn take_fetch_counts() -> (u32, u32) {
    FETCHES.with(|f| f.replace((0, 0)))
}

fn count_fetch(ok: bool) {
    FETCHES.with(|f| {
        let (good, bad) = f.get();
        f.set(if ok {
            (good.saturating_add(1), bad)
        } else {
            (good, bad.saturating_add(1))
        });
    });
}

/// The cache rules of `cfg` (keys and discovery documents alike).
pub(crate) fn policy(cfg: &EdgeConfig) -> CachePolicy {
    CachePolicy {
        min_ttl: cfg.jwks_min_ttl_secs,
        max_ttl: cfg.jwks_max_ttl_secs,
        max_stale: cfg.jwks_max_stale_secs,
        cooldown: cfg.jwks_refresh_cooldown_secs,
    }
}

/// Why no key set could be produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JwksUnavailable {
    /// Never fetched successfully, or stale beyond the limit, and the fetch failed.
    Unreachable,
}

fn with_issuer<R>(iss: &str, f: impl FnOnce(&mut Issuer) -> R) -> R {
    STATE.with(|s| f(s.borrow_mut().entry(iss.to_owned()).or_default()))
}

/// A 200 answer's body (at most [`MAX_JWKS_BYTES`]) and `max-age`.
async fn read(resp: Response) -> Option<(Vec<u8>, Option<i64>)> {
    crate::body::read_ok_with_max_age(resp, MAX_JWKS_BYTES).await
}

/// The shared Cache API entry for `url`, if this deployment sealed it and it
/// is still fresh (see [`CacheSeal`]).
async fn from_shared(
    cache: &Cache,
    seal: &CacheSeal,
    url: &str,
    p: &CachePolicy,
    now: UnixTime,
) -> Option<Got> {
    let resp = cache.get(seal.cache_key(url), false).await.ok()??;
    let header = |name: &str| resp.headers().get(name).ok().flatten();
    let (entry, sealed) = (
        header(jwks_cache::SHARED_ENTRY_HEADER),
        header(jwks_cache::SEAL_HEADER),
    );
    let (body, _) = read(resp).await?;
    let entry = jwks_cache::trusted_shared_entry(
        Some(seal),
        url,
        entry.as_deref(),
        sealed.as_deref(),
        &body,
        now,
        p,
    )?;
    let set = JwkSet::from_json(&body).ok()?;
    Some(Got::Shared(set, entry))
}

/// Fetches from the Cache API (when a seal is configured and not
/// `bypass_shared`), then from the issuer, under `signal`; a good answer
/// from the issuer is shared through the Cache API (sealed) with its clamped
/// TTL and its fetch time, so another isolate trusts it only for what is
/// left of that TTL.
async fn fetch(
    url: String,
    seal: Option<CacheSeal>,
    bypass_shared: bool,
    p: CachePolicy,
    now: UnixTime,
    signal: worker::AbortSignal,
) -> Fetched {
    let cache = Cache::default();
    if let (Some(seal), false) = (&seal, bypass_shared) {
        if let Some(got) = from_shared(&cache, seal, &url, &p, now).await {
            return Some(got);
        }
    }
    let mut init = RequestInit::new();
    // Redirects are not followed (a 3xx is a failed fetch): the keys are
    // at the configured or discovered URL, and a redirect must not take an
    // https issuer's keys over http or to another host.
    init.with_method(Method::Get)
        .with_redirect(worker::RequestRedirect::Manual);
    let req = Request::new_with_init(&url, &init).ok()?;
    let resp = Fetch::Request(req).send_with_signal(&signal).await.ok()?;
    let (body, max_age) = read(resp).await?;
    let set = JwkSet::from_json(&body).ok()?;
    let ttl = jwks_cache::ttl(max_age, &p);
    if let (Some(seal), true) = (&seal, ttl > 0) {
        let entry = SharedEntry {
            fetched_at: now.0,
            ttl,
        };
        let body = set.to_json().to_string();
        let sealed = seal.seal(&url, &entry, body.as_bytes());
        if let Ok(mut shared) = Response::ok(body) {
            let h = shared.headers_mut();
            let _ = h.set("content-type", "application/json");
            let _ = h.set("cache-control", &format!("public, max-age={ttl}"));
            let _ = h.set(jwks_cache::SHARED_ENTRY_HEADER, &entry.header_value());
            let _ = h.set(jwks_cache::SEAL_HEADER, &sealed);
            if let Err(e) = cache.put(seal.cache_key(&url), shared).await {
                worker::console_warn!(
                    r#"{{"event":"jwks_cache_put_failed","error":{}}}"#,
                    serde_json::Value::from(e.to_string())
                );
            }
        }
    }
    Some(Got::Issuer(set, max_age))
}

/// [`fetch`] within [`FETCH_DEADLINE`]: past it the issuer fetch is aborted
/// and the fetch counts as failed.
async fn fetch_with_deadline(
    url: String,
    seal: Option<CacheSeal>,
    bypass_shared: bool,
    p: CachePolicy,
    now: UnixTime,
) -> Fetched {
    let controller = AbortController::default();
    let work = pin!(fetch(url, seal, bypass_shared, p, now, controller.signal()));
    let deadline = pin!(Delay::from(FETCH_DEADLINE));
    match select(work, deadline).await {
        Either::Left((fetched, _)) => fetched,
        Either::Right(((), _)) => {
            controller.abort();
            worker::console_warn!(
                r#"{{"event":"jwks_fetch_deadline","deadline_ms":{}}}"#,
                FETCH_DEADLINE.as_millis()
            );
            None
        }
    }
}

async fn refresh(cfg: &EdgeConfig, issuer: &IssuerConfig, now: UnixTime, bypass_shared: bool) {
    let iss = issuer.policy.issuer.as_str();
    crate::single_flight::run("jwks", iss, fetch_keys(cfg, issuer, now, bypass_shared)).await;
}

/// One key fetch (the single flight's leader): the result, or the failure,
/// goes into the issuer's state.
async fn fetch_keys(cfg: &EdgeConfig, issuer: &IssuerConfig, now: UnixTime, bypass_shared: bool) {
    let iss = issuer.policy.issuer.as_str();
    let p = policy(cfg);
    // An issuer configured by discovery: its metadata document names the
    // JWKS URL (cached by the same rules; a failure fails this fetch).
    let Some(jwks_url) = crate::discovery::jwks_url(cfg, issuer, now).await else {
        count_fetch(false);
        with_issuer(iss, |i| i.state.failed(now));
        return;
    };
    let result =
        fetch_with_deadline(jwks_url, cfg.jwks_cache_seal.clone(), bypass_shared, p, now).await;
    count_fetch(result.is_some());
    with_issuer(iss, |i| match result {
        Some(Got::Issuer(set, max_age)) => i.state.fetched(set, max_age, now, &p),
        Some(Got::Shared(set, entry)) => i.state.fetched_shared(set, entry, now),
        None => {
            worker::console_warn!(
                r#"{{"event":"jwks_fetch_failed","issuer":{}}}"#,
                serde_json::Value::from(iss)
            );
            i.state.failed(now);
        }
    });
}

/// The issuer's current key set, fetching or refreshing it as the cache rules say.
pub async fn keys(
    cfg: &EdgeConfig,
    issuer: &IssuerConfig,
    now: UnixTime,
) -> Result<Rc<JwkSet>, JwksUnavailable> {
    let p = policy(cfg);
    let iss = issuer.policy.issuer.as_str();
    if with_issuer(iss, |i| i.state.before_lookup(now, &p)) == Action::Fetch {
        refresh(cfg, issuer, now, false).await;
    }
    current(iss, now, &p)
}

/// Refetches from the issuer itself after an unknown `kid`, unless within the
/// cooldown; returns the (possibly new) set.
pub async fn keys_after_unknown_kid(
    cfg: &EdgeConfig,
    issuer: &IssuerConfig,
    now: UnixTime,
) -> Result<Rc<JwkSet>, JwksUnavailable> {
    let p = policy(cfg);
    let iss = issuer.policy.issuer.as_str();
    if with_issuer(iss, |i| i.state.may_refetch_for_unknown_kid(now, &p)) {
        refresh(cfg, issuer, now, true).await;
    }
    current(iss, now, &p)
}

fn current(iss: &str, now: UnixTime, p: &CachePolicy) -> Result<Rc<JwkSet>, JwksUnavailable> {
    with_issuer(iss, |i| match &i.state.keys {
        Some(k) if i.state.usable(now, p) => Ok(Rc::clone(k)),
        _ => Err(JwksUnavailable::Unreachable),
    })
}

/// Per issuer: age of the cached set and its key ids, for the health endpoint.
pub fn summary(iss: &str, now: UnixTime) -> (Option<i64>, Vec<String>) {
    with_issuer(iss, |i| {
        let age = i.state.fetched_at.map(|t| now.0 - t.0);
        let kids = i
            .state
            .keys
            .as_ref()
            .map(|k| {
                k.keys()
                    .iter()
                    .filter_map(|j| j.kid().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        (age, kids)
    })
}
