//! Token endpoint rate limiting: `common`'s GCRA with state in this
//! process's memory, keyed by client and by IP. Each replica limits on its
//! own (the edge holds the global limits).

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

#[cfg(test)]
mod tests {
    use super::*;

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
