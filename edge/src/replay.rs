//! The DPoP proof replay guard: a Durable Object per `jkt` shard that
//! remembers each proof's replay key until the proof could no longer be
//! accepted anyway (its `iat` window plus skew), so a replayed proof is
//! refused everywhere, exactly once accepted.

use crate::replay_window::{self, Verdict};
use serde::{Deserialize, Serialize};
use std::cell::Cell;
use worker::{
    durable_object, DurableObject, Env, Method, Request, RequestInit, Response, Result, State,
};

/// The Durable Object binding.
pub const BINDING: &str = "REPLAY_GUARD";

/// Asks the guard for `jkt`'s shard whether `key` was seen; records it if not.
/// Any failure is an error (the caller fails closed). `now` is the edge's
/// clock, read just before the check; `expires_at` is the proof's exclusive
/// `replay_until`.
pub async fn seen_before(
    env: &Env,
    jkt: &str,
    key: &str,
    expires_at: i64,
    now: i64,
) -> Result<Verdict> {
    let ns = env.durable_object(BINDING)?;
    let stub = ns.id_from_name(jkt)?.get_stub()?;
    let body = serde_json::to_string(&ReplayCheck {
        key: key.to_owned(),
        expires_at,
        now,
    })?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_body(Some(wasm_bindgen::JsValue::from_str(&body)));
    let req = Request::new_with_init("https://replay-guard/check", &init)?;
    let mut resp = stub.fetch_with_request(req).await?;
    if resp.status_code() != 200 {
        return Err(worker::Error::RustError(
            "replay guard answered an error".into(),
        ));
    }
    let v: ReplayVerdict = resp.json().await?;
    Ok(if v.stale_clock {
        Verdict::StaleClock
    } else if v.replayed {
        Verdict::Replayed
    } else {
        Verdict::Fresh
    })
}

/// What the edge asks the guard.
#[derive(Serialize, Deserialize)]
pub struct ReplayCheck {
    /// The proof's replay key (hash of `jti` and `htu`, from `common::dpop`).
    pub key: String,
    /// The exclusive bound: the key counts as seen while `now < expires_at`.
    pub expires_at: i64,
    /// The edge's clock for this request (read once per request).
    pub now: i64,
}

/// The guard's answer.
#[derive(Serialize, Deserialize)]
pub struct ReplayVerdict {
    /// `true` when the key was already seen and has not expired.
    pub replayed: bool,
    /// `true` when the check's `now` was too old to be answered (nothing recorded).
    #[serde(default)]
    pub stale_clock: bool,
}

/// Durable Object remembering DPoP proof replay keys.
#[durable_object]
pub struct ReplayGuard {
    state: State,
    /// Whether this instance knows a pruning alarm is pending, so a check
    /// costs two storage operations, not three (`false` after a restart:
    /// then the stored alarm is asked once).
    alarm_pending: Cell<bool>,
}

impl DurableObject for ReplayGuard {
    fn new(state: State, _env: Env) -> Self {
        Self {
            state,
            alarm_pending: Cell::new(false),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        if req.method() != Method::Post {
            return Response::error("method not allowed", 405);
        }
        let check: ReplayCheck = req.json().await?;
        let storage = self.state.storage();
        let seen: Option<i64> = storage.get(&check.key).await?;
        let own_now = (worker::Date::now().as_millis() / 1000) as i64;
        let verdict = replay_window::decide(seen, check.now, own_now);
        if verdict == Verdict::Fresh {
            // Never lowers a stored bound; storage operations of one request
            // run under the object's input gate, so no other check interleaves.
            let exp = replay_window::bound_to_store(seen, check.expires_at);
            storage.put(&check.key, exp).await?;
            if !self.alarm_pending.get() {
                if storage.get_alarm().await?.is_none() {
                    let delay_ms = (exp + replay_window::PRUNE_MARGIN_SECS - own_now).max(1) * 1000;
                    storage.set_alarm(delay_ms).await?;
                }
                self.alarm_pending.set(true);
            }
        }
        Response::from_json(&ReplayVerdict {
            replayed: verdict == Verdict::Replayed,
            stale_clock: verdict == Verdict::StaleClock,
        })
    }

    async fn alarm(&self) -> Result<Response> {
        // The alarm that ran is spent; a check during this handler asks the
        // storage again (it can only set an alarm earlier than needed).
        self.alarm_pending.set(false);
        let now = (worker::Date::now().as_millis() / 1000) as i64;
        let storage = self.state.storage();
        let entries = storage.list().await?;
        let mut expired = Vec::new();
        let mut next: Option<i64> = None;
        for entry in entries.entries() {
            let pair: js_sys::Array = entry?.into();
            let (Some(key), Some(exp)) = (pair.get(0).as_string(), pair.get(1).as_f64()) else {
                continue;
            };
            let exp = exp as i64;
            if replay_window::is_prunable(exp, now) {
                expired.push(key);
            } else {
                next = Some(next.map_or(exp, |n| n.min(exp)));
            }
        }
        if !expired.is_empty() {
            storage.delete_multiple(expired).await?;
        }
        if let Some(exp) = next {
            let delay_s = (exp + replay_window::PRUNE_MARGIN_SECS - now).max(1);
            storage.set_alarm(delay_s * 1000).await?;
            self.alarm_pending.set(true);
        }
        Response::ok("")
    }
}
