//! Rate limiting: GCRA state (from `common::ratelimit`) held in a
//! `RateLimiter` Durable Object per key, so limits are global and exact.
//! Keys: `client:<client_id>` for authenticated callers, `ip:<address>` for
//! unauthenticated and failed attempts. When the object cannot be reached the
//! configured [`FailMode`] decides (open by default, logged either way).

use crate::config::{EdgeConfig, FailMode};
use gatehouse_common::ratelimit::{check, Decision, GcraState, Quota};
use serde::{Deserialize, Serialize};
use worker::{
    durable_object, DurableObject, Env, Method, Request, RequestInit, Response, Result, State,
};

/// The Durable Object binding.
pub const BINDING: &str = "RATE_LIMITER";

/// What the edge asks the limiter.
#[derive(Serialize, Deserialize)]
pub struct RateCheck {
    /// The quota's name (for headers).
    pub name: String,
    /// Requests allowed per window.
    pub limit: u32,
    /// The window, seconds.
    pub window_secs: u32,
}

/// The limiter's answer (a `common::ratelimit::Decision`).
#[derive(Serialize, Deserialize)]
pub struct RateVerdict {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// Requests left in the burst.
    pub remaining: u32,
    /// Milliseconds until a request would be allowed (0 when allowed).
    pub retry_after_ms: i64,
    /// Milliseconds until the bucket is full again.
    pub reset_ms: i64,
}

impl From<RateVerdict> for Decision {
    fn from(v: RateVerdict) -> Self {
        Decision {
            allowed: v.allowed,
            remaining: v.remaining,
            retry_after_ms: v.retry_after_ms,
            reset_ms: v.reset_ms,
        }
    }
}

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
        if req.method() != Method::Post {
            return Response::error("method not allowed", 405);
        }
        let q: RateCheck = req.json().await?;
        let quota = Quota::new(q.name, q.limit, q.window_secs);
        let now_ms = worker::Date::now().as_millis() as i64;
        let storage = self.state.storage();
        // A storage error is an error (the edge's RATE_LIMIT_FAIL then
        // decides), never a fresh bucket.
        let tat_us: Option<i64> = storage.get("tat_us").await?;
        let state = GcraState {
            tat_us: tat_us.unwrap_or_default(),
        };
        let (d, next) = check(state, now_ms, &quota);
        if next != state {
            storage.put("tat_us", next.tat_us).await?;
        }
        Response::from_json(&RateVerdict {
            allowed: d.allowed,
            remaining: d.remaining,
            retry_after_ms: d.retry_after_ms,
            reset_ms: d.reset_ms,
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

async fn ask(env: &Env, key: &str, quota: &Quota) -> Result<Decision> {
    let ns = env.durable_object(BINDING)?;
    let stub = ns.id_from_name(key)?.get_stub()?;
    let body = serde_json::to_string(&RateCheck {
        name: quota.name.clone(),
        limit: quota.limit,
        window_secs: quota.window_secs,
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
    let v: RateVerdict = resp.json().await?;
    Ok(v.into())
}

/// Charges one request to `key` under `quota`.
pub async fn charge(env: &Env, cfg: &EdgeConfig, key: &str, quota: &Quota) -> Limit {
    match ask(env, key, quota).await {
        Ok(d) => Limit::Decided(d),
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
