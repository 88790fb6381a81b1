//! The issuer's signing keys, cached in isolate memory (see [`crate::jwks_cache`] for the rules).

use crate::config::EdgeConfig;
use crate::jwks_cache::{self, Action, CachePolicy, JwksState};
use gatehouse_common::jwk::JwkSet;
use gatehouse_common::UnixTime;
use std::cell::RefCell;
use worker::{Fetch, Method, Request, RequestInit};

/// Largest JWKS document read, in bytes.
const MAX_JWKS_BYTES: usize = 64 * 1024;

thread_local! {
    static STATE: RefCell<JwksState> = RefCell::new(JwksState::default());
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

async fn fetch(cfg: &EdgeConfig) -> Option<(JwkSet, Option<i64>)> {
    let mut init = RequestInit::new();
    init.with_method(Method::Get);
    let req = Request::new_with_init(&cfg.jwks_url, &init).ok()?;
    let mut resp = Fetch::Request(req).send().await.ok()?;
    if resp.status_code() != 200 {
        return None;
    }
    let max_age = resp
        .headers()
        .get("cache-control")
        .ok()
        .flatten()
        .and_then(|v| jwks_cache::max_age(&v));
    let body = resp.bytes().await.ok()?;
    if body.len() > MAX_JWKS_BYTES {
        return None;
    }
    let set = JwkSet::from_json(&body).ok()?;
    Some((set, max_age))
}

async fn refresh(cfg: &EdgeConfig, now: UnixTime) {
    let p = policy(cfg);
    match fetch(cfg).await {
        Some((set, max_age)) => STATE.with(|s| s.borrow_mut().fetched(set, max_age, now, &p)),
        None => {
            worker::console_warn!(r#"{{"event":"jwks_fetch_failed"}}"#);
            STATE.with(|s| s.borrow_mut().failed(now));
        }
    }
}

/// The current key set, fetching or refreshing it as the cache rules say.
pub async fn keys(cfg: &EdgeConfig, now: UnixTime) -> Result<JwkSet, JwksUnavailable> {
    let p = policy(cfg);
    if STATE.with(|s| s.borrow().before_lookup(now, &p)) == Action::Fetch {
        refresh(cfg, now).await;
    }
    current(now, &p)
}

/// Refetches after an unknown `kid`, unless within the cooldown; returns the (possibly new) set.
pub async fn keys_after_unknown_kid(cfg: &EdgeConfig, now: UnixTime) -> Result<JwkSet, JwksUnavailable> {
    let p = policy(cfg);
    if STATE.with(|s| s.borrow().may_refetch_for_unknown_kid(now, &p)) {
        refresh(cfg, now).await;
    }
    current(now, &p)
}

fn current(now: UnixTime, p: &CachePolicy) -> Result<JwkSet, JwksUnavailable> {
    STATE.with(|s| {
        let s = s.borrow();
        match &s.keys {
            Some(k) if s.usable(now, p) => Ok(k.clone()),
            _ => Err(JwksUnavailable::Unreachable),
        }
    })
}

/// Age of the cached set and its key ids, for the health endpoint.
pub fn summary(now: UnixTime) -> (Option<i64>, Vec<String>) {
    STATE.with(|s| {
        let s = s.borrow();
        let age = s.fetched_at.map(|t| now.0 - t.0);
        let kids = s
            .keys
            .as_ref()
            .map(|k| k.keys().iter().filter_map(|j| j.kid().map(str::to_owned)).collect())
            .unwrap_or_default();
        (age, kids)
    })
}
