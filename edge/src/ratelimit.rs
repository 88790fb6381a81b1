//! Rate limiting: GCRA state (from `common::ratelimit`) held in a
//! `RateLimiter` Durable Object per key, so limits are global and exact.
//! Keys (built in `rate_lease`): `subject:["iss","client_id","sub"]` for
//! verified callers, optionally `client:["iss","client_id"]` for all of a
//! client's subjects together (`RATE_LIMIT_CLIENT_TOTAL`), and
//! `ip:<address>` (IPv6 by its /64) for unauthenticated and failed attempts.
//! When the object cannot be reached the configured [`FailMode`] decides
//! (open by default, logged either way).
//!
//! Leases spare busy keys the Durable Object round trip on most requests
//! (it cost ~2 ms of a ~5 ms request under `wrangler dev`, BENCHMARKS.md):
//! the object may grant an isolate several admissions at once, charged to
//! the key's GCRA state when granted, which the isolate then spends locally
//! for at most [`LEASE_TTL_MS`]. A lease starts at one admission (a quiet key
//! asks every time, as without leases) and doubles each time one is spent
//! before it expires, up to `RATE_LIMIT_LEASE_MAX` and at most 5% of the
//! quota. Admissions are charged before they are spent, so the limit is
//! never exceeded; what an isolate leaves unspent when its lease expires is
//! lost, so a key spread over many isolates may be admitted slightly less
//! than its quota. A refusal is remembered in the isolate until its
//! `Retry-After`, so a flood of refused requests does not reach the object.
//! `RATE_LIMIT_LEASE_MAX=1` asks the object on every request.

use crate::config::{EdgeConfig, FailMode};
use crate::rate_lease::{
    granted, is_refused, lease_cap, local, next_size, take_warm_up, would_admit, Lease, RateCheck,
    RateVerdict,
};
use gatehouse_common::ratelimit::{check_many, Decision, GcraState, Quota};
use std::cell::RefCell;
use std::collections::HashMap;
use worker::{
    durable_object, DurableObject, Env, Method, Request, RequestInit, Response, Result, State,
};

/// Keys tracked per isolate before the table is cleared.
const MAX_TRACKED_KEYS: usize = 10_000;

/// The Durable Object binding.
pub const BINDING: &str = "RATE_LIMITER";

/// Durable Object holding one key's GCRA state (its theoretical arrival time).
#[durable_object]
pub struct RateLimiter {
    state: State,
}

impl DurableObject for RateLimiter {
    fn new(state: State, _env: Env) -> Self {
        Self { state }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let storage = self.state.storage();
        if req.method() == Method::Get {
            // A warm-up ([`warm_up`]): the object is started and its state
            // read into its cache, nothing is charged or written.
            let _: Option<i64> = storage.get("tat_us").await?;
            return Ok(Response::empty()?.with_status(204));
        }
        if req.method() != Method::Post {
            return Response::error("method not allowed", 405);
        }
        let q: RateCheck = req.json().await?;
        let quota = Quota::new(q.name, q.limit, q.window_secs);
        let now_ms = worker::Date::now().as_millis() as i64;
        // A storage error is an error (the edge's RATE_LIMIT_FAIL then
        // decides), never a fresh bucket.
        let tat_us: Option<i64> = storage.get("tat_us").await?;
        let state = GcraState {
            tat_us: tat_us.unwrap_or_default(),
        };
        let (d, granted, next) = check_many(state, now_ms, &quota, q.want);
        if next != state {
            storage.put("tat_us", next.tat_us).await?;
        }
        Response::from_json(&RateVerdict {
            allowed: d.allowed,
            remaining: d.remaining,
            retry_after_ms: d.retry_after_ms,
            reset_ms: d.reset_ms,
            granted,
        })
    }
}

/// The outcome of a limit check at the edge.
pub enum Limit {
    /// Decided by the limiter.
    Decided(Decision),
    /// The limiter was unreachable and the fail mode says let it through.
    FailedOpen,
    /// The limiter was unreachable and the fail mode says refuse.
    FailedClosed,
}

thread_local! {
    static LEASES: RefCell<HashMap<String, Lease>> = RefCell::new(HashMap::new());
}

async fn ask(env: &Env, key: &str, quota: &Quota, want: u32) -> Result<RateVerdict> {
    let ns = env.durable_object(BINDING)?;
    let stub = ns.id_from_name(key)?.get_stub()?;
    let body = serde_json::to_string(&RateCheck {
        name: quota.name.clone(),
        limit: quota.limit,
        window_secs: quota.window_secs,
        want,
    })?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_body(Some(wasm_bindgen::JsValue::from_str(&body)));
    let req = Request::new_with_init("https://rate-limiter/check", &init)?;
    let mut resp = stub.fetch_with_request(req).await?;
    if resp.status_code() != 200 {
        return Err(worker::Error::RustError(
            "rate limiter answered an error".into(),
        ));
    }
    resp.json().await
}

/// Whether this isolate holds an entry for `key` under `quota` (a lease,
/// spent or not, or a remembered refusal): it has asked the object before.
pub fn tracked(key: &str, quota: &Quota) -> bool {
    let slot = format!("{}|{key}", quota.name);
    LEASES.with(|l| l.borrow().contains_key(&slot))
}

/// Starts the objects of `keys` without charging anything (a `GET`, which
/// reads the key's state and writes nothing), so that the charge made after
/// verification meets a running object: a new isolate's first contact with
/// an object (~15 ms under `wrangler dev`, BENCHMARKS.md §5) then overlaps
/// the key fetch instead of following the signature check. Errors are
/// ignored: the charge decides, under `RATE_LIMIT_FAIL`, as without it.
/// Nothing is recorded in the lease table, so warm-ups cannot fill it.
/// At most [`crate::rate_lease::MAX_WARM_UPS`] keys are ever warmed per
/// isolate: the rest are left to the charge (review 21e).
pub async fn warm_up(env: &Env, keys: &[String]) {
    let keys: Vec<&String> = keys.iter().filter(|_| take_warm_up()).collect();
    if keys.is_empty() {
        return;
    }
    let Ok(ns) = env.durable_object(BINDING) else {
        return;
    };
    let touches = keys.into_iter().map(|key| {
        let ns = &ns;
        async move {
            let stub = ns.id_from_name(key)?.get_stub()?;
            stub.fetch_with_str("https://rate-limiter/warm").await
        }
    });
    let _ = futures_util::future::join_all(touches).await;
}

fn with_lease<R>(key: &str, f: impl FnOnce(&mut Lease) -> R) -> R {
    LEASES.with(|l| {
        let mut l = l.borrow_mut();
        if l.len() >= MAX_TRACKED_KEYS && !l.contains_key(key) {
            l.clear();
        }
        f(l.entry(key.to_owned()).or_default())
    })
}

fn peek_lease(key: &str, quota: &Quota, f: impl FnOnce(&Lease, i64) -> bool) -> bool {
    let now_ms = worker::Date::now().as_millis() as i64;
    let slot = format!("{}|{key}", quota.name);
    LEASES.with(|l| l.borrow().get(&slot).is_some_and(|lease| f(lease, now_ms)))
}

/// Whether this isolate's lease for `key` would admit one more request now,
/// without asking the object (read only: nothing is spent or charged).
pub fn admits_locally(key: &str, quota: &Quota) -> bool {
    peek_lease(key, quota, would_admit)
}

/// Whether this isolate remembers a refusal of `key` now (read only).
pub fn refused_locally(key: &str, quota: &Quota) -> bool {
    peek_lease(key, quota, is_refused)
}

/// Charges one request to `key` under `quota`.
pub async fn charge(env: &Env, cfg: &EdgeConfig, key: &str, quota: &Quota) -> Limit {
    let now_ms = worker::Date::now().as_millis() as i64;
    let slot = format!("{}|{key}", quota.name);
    let cap = lease_cap(quota, cfg.rate_limit_lease_max);
    let size = match with_lease(&slot, |l| {
        local(l, now_ms).ok_or_else(|| next_size(l, now_ms, cap))
    }) {
        Ok(d) => return Limit::Decided(d),
        Err(size) => size,
    };
    match ask(env, key, quota, size).await {
        Ok(v) => {
            let now_ms = worker::Date::now().as_millis() as i64;
            Limit::Decided(with_lease(&slot, |l| granted(l, &v, size, now_ms)))
        }
        Err(e) => {
            worker::console_error!(
                r#"{{"event":"rate_limiter_unreachable","fail":"{}","error":{}}}"#,
                if cfg.rate_limit_fail == FailMode::Open {
                    "open"
                } else {
                    "closed"
                },
                serde_json::Value::from(e.to_string())
            );
            match cfg.rate_limit_fail {
                FailMode::Open => Limit::FailedOpen,
                FailMode::Closed => Limit::FailedClosed,
            }
        }
    }
}
