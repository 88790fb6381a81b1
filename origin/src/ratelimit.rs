//! Rate limiting in this process's memory: `common`'s GCRA keyed by client
//! and by IP, and an exponential backoff after repeated failures (passwords
//! per username, admin tokens per IP). Each replica limits on its own (the
//! edge holds the global limits).

use gatehouse_common::ratelimit::{check, Decision, GcraState, Quota};
use std::collections::HashMap;
use std::sync::Mutex;

/// Entries kept before stale ones are swept.
const SWEEP_AT: usize = 100_000;

/// GCRA state per key.
#[derive(Debug)]
pub struct RateLimiter {
    quota: Quota,
    state: Mutex<HashMap<String, GcraState>>,
}

impl RateLimiter {
    /// A limiter allowing `per_minute` requests a minute per key.
    #[must_use]
    pub fn per_minute(name: &str, per_minute: u32) -> Self {
        Self {
            quota: Quota::new(name, per_minute, 60),
            state: Mutex::new(HashMap::new()),
        }
    }

    /// Decides one request for `key` at `now_ms`.
    pub fn check(&self, key: &str, now_ms: i64) -> Decision {
        let Ok(mut map) = self.state.lock() else {
            // A poisoned lock only means another request panicked; do not block traffic.
            return check(GcraState::default(), now_ms, &self.quota).0;
        };
        if map.len() >= SWEEP_AT {
            map.retain(|_, s| !s.is_idle(now_ms));
        }
        let current = map.get(key).copied().unwrap_or_default();
        let (decision, next) = check(current, now_ms, &self.quota);
        map.insert(key.to_owned(), next);
        decision
    }
}

/// Failures allowed before the backoff starts.
const FREE_FAILURES: u32 = 5;
/// The first backoff; each further failure doubles it.
const FIRST_BACKOFF_MS: i64 = 1_000;
/// The longest backoff.
const MAX_BACKOFF_MS: i64 = 15 * 60 * 1_000;
/// An entry without failures for this long is forgotten.
const FORGET_AFTER_MS: i64 = 60 * 60 * 1_000;

#[derive(Clone, Copy, Debug, Default)]
struct Failures {
    count: u32,
    last_ms: i64,
    blocked_until_ms: i64,
}

/// Exponential backoff after repeated failures per key: [`FREE_FAILURES`]
/// failures are free, then each one blocks the key for twice as long as
/// the last (1 s, 2 s, 4 s, … up to 15 minutes). A success resets the key.
#[derive(Debug, Default)]
pub struct FailureBackoff {
    state: Mutex<HashMap<String, Failures>>,
}

impl FailureBackoff {
    /// `Err(retry_after_secs)` while `key` is blocked at `now_ms`.
    pub fn check(&self, key: &str, now_ms: i64) -> Result<(), u64> {
        let Ok(map) = self.state.lock() else {
            return Ok(());
        };
        match map.get(key) {
            Some(f) if f.blocked_until_ms > now_ms => {
                let ms = f.blocked_until_ms.saturating_sub(now_ms);
                Err(u64::try_from(ms.saturating_add(999) / 1000)
                    .unwrap_or(1)
                    .max(1))
            }
            _ => Ok(()),
        }
    }

    /// Records a failure for `key` at `now_ms`.
    pub fn failed(&self, key: &str, now_ms: i64) {
        let Ok(mut map) = self.state.lock() else {
            return;
        };
        if map.len() >= SWEEP_AT {
            map.retain(|_, f| now_ms.saturating_sub(f.last_ms) < FORGET_AFTER_MS);
        }
        let f = map.entry(key.to_owned()).or_default();
        if now_ms.saturating_sub(f.last_ms) >= FORGET_AFTER_MS {
            *f = Failures::default();
        }
        f.count = f.count.saturating_add(1);
        f.last_ms = now_ms;
        if let Some(over) = f.count.checked_sub(FREE_FAILURES + 1) {
            let backoff = FIRST_BACKOFF_MS
                .saturating_mul(1_i64 << over.min(20))
                .min(MAX_BACKOFF_MS);
            f.blocked_until_ms = now_ms.saturating_add(backoff);
        }
    }

    /// Forgets `key`'s failures (after a success).
    pub fn succeeded(&self, key: &str) {
        if let Ok(mut map) = self.state.lock() {
            map.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_back_off_exponentially_and_success_resets() {
        let b = FailureBackoff::default();
        let t = 1_000_000;
        for _ in 0..FREE_FAILURES {
            assert!(b.check("alice", t).is_ok());
            b.failed("alice", t);
        }
        assert!(
            b.check("alice", t).is_ok(),
            "the free failures block nothing"
        );
        b.failed("alice", t);
        assert_eq!(b.check("alice", t), Err(1));
        assert!(b.check("bob", t).is_ok(), "keys are independent");
        b.failed("alice", t + 1_000);
        assert_eq!(b.check("alice", t + 1_000), Err(2));
        b.failed("alice", t + 3_000);
        assert_eq!(b.check("alice", t + 3_000), Err(4));
        for i in 0..30 {
            b.failed("alice", t + 10_000 + i);
        }
        assert_eq!(
            b.check("alice", t + 10_029),
            Err(900),
            "capped at 15 minutes"
        );
        b.succeeded("alice");
        assert!(b.check("alice", t + 10_030).is_ok());
        // An hour without failures forgets them.
        for _ in 0..=FREE_FAILURES {
            b.failed("carol", t);
        }
        assert!(b.check("carol", t).is_err());
        b.failed("carol", t + FORGET_AFTER_MS);
        assert!(b.check("carol", t + FORGET_AFTER_MS).is_ok());
    }

    #[test]
    fn refuses_after_the_quota_and_recovers_with_time() {
        let l = RateLimiter::per_minute("client", 2);
        let t = 1_000_000;
        assert!(l.check("a", t).allowed);
        assert!(l.check("a", t).allowed);
        let d = l.check("a", t);
        assert!(!d.allowed);
        assert!(d.retry_after_secs() >= 1);
        assert!(l.check("b", t).allowed, "keys are independent");
        assert!(l.check("a", t + 30_000).allowed);
    }
}
