//! Each trusted issuer's signing keys, cached in isolate memory and shared
//! between isolates of a location through the Cache API (see
//! [`crate::jwks_cache`] for the rules). Refreshes are single-flight per
//! issuer: one request fetches; concurrent requests of the isolate wait for
//! it on timers of their own and then read the result from isolate memory.
//! They never await the fetching request's future: workerd ties a promise to
//! the request that created it, and a request woken from another request's
//! context is cancelled as hung.

use crate::config::{EdgeConfig, IssuerConfig};
use crate::jwks_cache::{self, Action, CachePolicy, JwksState, SharedEntry};
use gatehouse_common::jwk::JwkSet;
use gatehouse_common::UnixTime;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;
use worker::{Cache, Delay, Fetch, Method, Request, RequestInit, Response};

/// Largest JWKS document read, in bytes.
const MAX_JWKS_BYTES: usize = 64 * 1024;

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
    /// A request of this isolate is fetching (cleared when it finishes or is dropped).
    in_flight: bool,
    /// Counts finished fetches, so a waiter sees that "its" fetch ended.
    generation: u64,
}

/// How often a waiting request looks whether the fetch finished, and for how long.
const WAIT_STEP: Duration = Duration::from_millis(5);
const WAIT_LIMIT: Duration = Duration::from_secs(10);

/// Clears `in_flight` when the fetching request finishes or is cancelled.
struct InFlight<'a> {
    iss: &'a str,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        with_issuer(self.iss, |i| {
            i.in_flight = false;
            i.generation = i.generation.wrapping_add(1);
        });
    }
}

thread_local! {
    /// Per issuer (by `iss`).
    static STATE: RefCell<HashMap<String, Issuer>> = RefCell::new(HashMap::new());
}

fn policy(cfg: &EdgeConfig) -> CachePolicy {
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

/// A 200 answer's key set (at most [`MAX_JWKS_BYTES`]) and `max-age`.
async fn read(mut resp: Response) -> Option<(JwkSet, Option<i64>)> {
    if resp.status_code() != 200 {
        return None;
    }
    let max_age = resp
        .headers()
        .get("cache-control")
        .ok()
        .flatten()
        .and_then(|v| jwks_cache::max_age(&v));
    let body = crate::body::read_capped(resp.stream().ok()?, MAX_JWKS_BYTES).await?;
    let set = JwkSet::from_json(&body).ok()?;
    Some((set, max_age))
}

/// Fetches from the Cache API (unless `bypass_shared`), then from the issuer;
/// a good answer from the issuer is shared through the Cache API with its
/// clamped TTL and its fetch time, so another isolate trusts it only for
/// what is left of that TTL.
async fn fetch(url: String, bypass_shared: bool, p: CachePolicy, now: UnixTime) -> Fetched {
    let cache = Cache::default();
    if !bypass_shared {
        if let Ok(Some(resp)) = cache.get(url.as_str(), false).await {
            let entry = resp
                .headers()
                .get(jwks_cache::SHARED_ENTRY_HEADER)
                .ok()
                .flatten()
                .and_then(|v| SharedEntry::parse(&v))
                .filter(|e| e.remaining(now).is_some());
            if let Some(entry) = entry {
                if let Some((set, _)) = read(resp).await {
                    return Some(Got::Shared(set, entry));
                }
            }
        }
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Get);
    let req = Request::new_with_init(&url, &init).ok()?;
    let resp = Fetch::Request(req).send().await.ok()?;
    let (set, max_age) = read(resp).await?;
    let ttl = jwks_cache::ttl(max_age, &p);
    if ttl > 0 {
        let entry = SharedEntry {
            fetched_at: now.0,
            ttl,
        };
        if let Ok(mut shared) = Response::ok(set.to_json().to_string()) {
            let h = shared.headers_mut();
            let _ = h.set("content-type", "application/json");
            let _ = h.set("cache-control", &format!("public, max-age={ttl}"));
            let _ = h.set(jwks_cache::SHARED_ENTRY_HEADER, &entry.header_value());
            if let Err(e) = cache.put(url.as_str(), shared).await {
                worker::console_warn!(
                    r#"{{"event":"jwks_cache_put_failed","error":{}}}"#,
                    serde_json::Value::from(e.to_string())
                );
            }
        }
    }
    Some(Got::Issuer(set, max_age))
}

async fn refresh(cfg: &EdgeConfig, issuer: &IssuerConfig, now: UnixTime, bypass_shared: bool) {
    let iss = issuer.policy.issuer.as_str();
    let p = policy(cfg);
    let (leader, generation) = with_issuer(iss, |i| {
        let leader = !i.in_flight;
        i.in_flight = true;
        (leader, i.generation)
    });
    if !leader {
        // Wait on our own timers until the fetching request is done.
        let mut waited = Duration::ZERO;
        while waited < WAIT_LIMIT && with_issuer(iss, |i| i.in_flight && i.generation == generation)
        {
            Delay::from(WAIT_STEP).await;
            waited += WAIT_STEP;
        }
        return;
    }
    let _in_flight = InFlight { iss };
    let result = fetch(issuer.jwks_url.clone(), bypass_shared, p, now).await;
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
