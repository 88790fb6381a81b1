//! Discovery at the edge: for an issuer configured by its URL alone, its
//! metadata document (OpenID Connect Discovery 1.0 or RFC 8414) names the
//! JWKS URL. The document is read with the JWKS cache's own rules (the same
//! [`JwksState`] timing and [`CachePolicy`](crate::jwks_cache::CachePolicy)): fresh for its clamped
//! `max-age`, refreshed by one request of the isolate at a time while the
//! others wait on their own timers ([`crate::single_flight`], as in `jwks`), not asked
//! again within the cooldown after a failure, and the last good document
//! used up to the stale limit while the issuer is unreachable
//! (stale-if-error). A document whose `issuer` is not exactly the
//! configured one is a failure (`issuers::read_discovery`). Kept in
//! isolate memory only.

use crate::config::{EdgeConfig, IssuerConfig};
use crate::issuers::{self, Discovered, JwksSource, MAX_DISCOVERY_BYTES};
use crate::jwks_cache::{Action, JwksState};
use futures_util::future::{select, Either};
use gatehouse_common::UnixTime;
use std::cell::RefCell;
use std::collections::HashMap;
use std::pin::pin;
use worker::{AbortController, Delay, Fetch, Method, Request, RequestInit};

#[derive(Default)]
struct Entry {
    state: JwksState<Discovered>,
}

thread_local! {
    /// Per issuer (by `iss`).
    static STATE: RefCell<HashMap<String, Entry>> = RefCell::new(HashMap::new());
}

fn with_entry<R>(iss: &str, f: impl FnOnce(&mut Entry) -> R) -> R {
    STATE.with(|s| f(s.borrow_mut().entry(iss.to_owned()).or_default()))
}

/// Fetches and reads the document (under `signal`): the document and its `max-age`.
async fn fetch(
    url: String,
    issuer: String,
    signal: worker::AbortSignal,
) -> Option<(Discovered, Option<i64>)> {
    let mut init = RequestInit::new();
    // Not following redirects (a 3xx is a failure): the document must be
    // at the issuer's well-known URL (OpenID Connect Discovery §4, RFC 8414
    // §3), not wherever that URL points to.
    init.with_method(Method::Get)
        .with_redirect(worker::RequestRedirect::Manual);
    let req = Request::new_with_init(&url, &init).ok()?;
    let resp = Fetch::Request(req).send_with_signal(&signal).await.ok()?;
    let (body, max_age) = crate::body::read_ok_with_max_age(resp, MAX_DISCOVERY_BYTES).await?;
    match issuers::read_discovery(&issuer, &body) {
        Ok(d) => Some((d, max_age)),
        Err(e) => {
            worker::console_warn!(
                r#"{{"event":"discovery_refused","issuer":{},"problem":"{:?}"}}"#,
                serde_json::Value::from(issuer.as_str()),
                e
            );
            None
        }
    }
}

async fn refresh(cfg: &EdgeConfig, issuer: &IssuerConfig, url: &str, now: UnixTime) {
    let iss = issuer.policy.issuer.as_str();
    crate::single_flight::run("discovery", iss, fetch_document(cfg, iss, url, now)).await;
}

/// One document fetch (the single flight's leader), under the fetch
/// deadline: the result, or the failure, goes into the issuer's entry.
async fn fetch_document(cfg: &EdgeConfig, iss: &str, url: &str, now: UnixTime) {
    let p = crate::jwks::policy(cfg);
    let controller = AbortController::default();
    let work = pin!(fetch(url.to_owned(), iss.to_owned(), controller.signal()));
    let deadline = pin!(Delay::from(crate::jwks::FETCH_DEADLINE));
    let result = match select(work, deadline).await {
        Either::Left((got, _)) => got,
        Either::Right(((), _)) => {
            controller.abort();
            None
        }
    };
    with_entry(iss, |e| match result {
        Some((doc, max_age)) => e.state.fetched(doc, max_age, now, &p),
        None => {
            worker::console_warn!(
                r#"{{"event":"discovery_failed","issuer":{}}}"#,
                serde_json::Value::from(iss)
            );
            e.state.failed(now);
        }
    });
}

/// The issuer's JWKS URL: the configured one, or the `jwks_uri` of its
/// metadata document (fetched or refreshed as the cache rules say);
/// `None` when no usable document can be had.
pub async fn jwks_url(cfg: &EdgeConfig, issuer: &IssuerConfig, now: UnixTime) -> Option<String> {
    let url = match &issuer.jwks {
        JwksSource::Url(u) => return Some(u.clone()),
        JwksSource::Discovery(url) => url,
    };
    let p = crate::jwks::policy(cfg);
    let iss = issuer.policy.issuer.as_str();
    if with_entry(iss, |e| e.state.before_lookup(now, &p)) == Action::Fetch {
        refresh(cfg, issuer, url, now).await;
    }
    with_entry(iss, |e| {
        if e.state.usable(now, &p) {
            e.state.keys.as_ref().map(|d| d.jwks_uri.clone())
        } else {
            None
        }
    })
}

/// The `jwks_uri` currently held for `iss` (for the health endpoint).
pub fn held(iss: &str) -> Option<String> {
    STATE.with(|s| {
        s.borrow()
            .get(iss)
            .and_then(|e| e.state.keys.as_ref().map(|d| d.jwks_uri.clone()))
    })
}
