//! Rate limiting in this process's memory: `common`'s GCRA keyed by client
//! and by IP, and an exponential backoff after repeated failures (passwords
//! per username, admin tokens per IP). Each replica limits on its own (the
//! edge holds the global limits).

use gatehouse_common::ratelimit::{check, Decision, GcraState, Quota};
use std::collections::HashMap;
use std::sync::Mutex;

/// The key a client address is limited (and its refusals audited) by: an
/// IPv4 address itself, an IPv6 address by its /64 (one subscriber's usual
/// allocation: its 2^64 addresses are one key, not 2^64), an IPv4-mapped
/// IPv6 address as IPv4.
#[must_use]
pub fn address_key(ip: std::net::IpAddr) -> String {
    use std::net::{IpAddr, Ipv6Addr};
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                format!("{}/64", Ipv6Addr::from(prefix))
            }
        },
    }
}

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

/// Exponential backoff after repeated failures per key: `free` failures
/// are free, then each one blocks the key for twice as long as the last
/// (from `first_ms` up to `max_ms`). A success resets the key.
#[derive(Debug)]
pub struct FailureBackoff {
    free: u32,
    first_ms: i64,
    max_ms: i64,
    state: Mutex<HashMap<String, Failures>>,
}

impl Default for FailureBackoff {
    /// 5 free failures, then 1 s, 2 s, 4 s, … up to 15 minutes.
    fn default() -> Self {
        Self::new(FREE_FAILURES, FIRST_BACKOFF_MS, MAX_BACKOFF_MS)
    }
}

impl FailureBackoff {
    /// A backoff with `free` free failures, then `first_ms` doubling up to `max_ms`.
    #[must_use]
    pub fn new(free: u32, first_ms: i64, max_ms: i64) -> Self {
        Self {
            free,
            first_ms,
            max_ms,
            state: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(retry_after_secs)` while `key` is blocked at `now_ms`.
    pub fn check(&self, key: &str, now_ms: i64) -> Result<(), u64> {
        let Ok(map) = self.state.lock() else {
            return Ok(());
        };
        blocked(map.get(key), now_ms)
    }

    /// Records a failure for `key` at `now_ms`.
    pub fn failed(&self, key: &str, now_ms: i64) {
        let Ok(mut map) = self.state.lock() else {
            return;
        };
        self.count(&mut map, key, now_ms);
    }

    /// Checks `key` and, when it is not blocked, counts this attempt as a
    /// failure in the same step (forgiven by [`Self::succeeded`] or
    /// [`Self::forgive`]): concurrent attempts cannot all pass the check
    /// before the first of them fails.
    pub fn attempt(&self, key: &str, now_ms: i64) -> Result<(), u64> {
        let Ok(mut map) = self.state.lock() else {
            return Ok(());
        };
        blocked(map.get(key), now_ms)?;
        self.count(&mut map, key, now_ms);
        Ok(())
    }

    fn count(&self, map: &mut HashMap<String, Failures>, key: &str, now_ms: i64) {
        if map.len() >= SWEEP_AT {
            map.retain(|_, f| now_ms.saturating_sub(f.last_ms) < FORGET_AFTER_MS);
        }
        let f = map.entry(key.to_owned()).or_default();
        if now_ms.saturating_sub(f.last_ms) >= FORGET_AFTER_MS {
            *f = Failures::default();
        }
        f.count = f.count.saturating_add(1);
        f.last_ms = now_ms;
        if let Some(over) = f.count.checked_sub(self.free.saturating_add(1)) {
            let backoff = self
                .first_ms
                .saturating_mul(1_i64 << over.min(20))
                .min(self.max_ms);
            f.blocked_until_ms = now_ms.saturating_add(backoff);
        }
    }

    /// Forgets `key`'s failures (after a success).
    pub fn succeeded(&self, key: &str) {
        if let Ok(mut map) = self.state.lock() {
            map.remove(key);
        }
    }

    /// Takes back one attempt counted by [`Self::attempt`] that succeeded,
    /// without forgetting the other failures.
    pub fn forgive(&self, key: &str) {
        if let Ok(mut map) = self.state.lock() {
            if let Some(f) = map.get_mut(key) {
                f.count = f.count.saturating_sub(1);
                if f.count <= self.free {
                    f.blocked_until_ms = 0;
                }
            }
        }
    }
}

fn blocked(f: Option<&Failures>, now_ms: i64) -> Result<(), u64> {
    match f {
        Some(f) if f.blocked_until_ms > now_ms => {
            let ms = f.blocked_until_ms.saturating_sub(now_ms);
            Err(u64::try_from(ms.saturating_add(999) / 1000)
                .unwrap_or(1)
                .max(1))
        }
        _ => Ok(()),
    }
}

/// Keys (a username at an address) that succeeded recently, each with the
/// time of its last success; forgotten after `ttl_ms`.
#[derive(Debug)]
pub struct KnownKeys {
    ttl_ms: i64,
    state: Mutex<HashMap<String, i64>>,
}

impl KnownKeys {
    /// Keys remembered for `ttl_ms` after their last success.
    #[must_use]
    pub fn new(ttl_ms: i64) -> Self {
        Self {
            ttl_ms,
            state: Mutex::new(HashMap::new()),
        }
    }

    /// Remembers `key` at `now_ms`.
    pub fn remember(&self, key: &str, now_ms: i64) {
        if let Ok(mut map) = self.state.lock() {
            if map.len() >= SWEEP_AT {
                let ttl = self.ttl_ms;
                map.retain(|_, at| now_ms.saturating_sub(*at) < ttl);
            }
            map.insert(key.to_owned(), now_ms);
        }
    }

    /// Whether `key` succeeded within the last `ttl_ms` before `now_ms`.
    pub fn knows(&self, key: &str, now_ms: i64) -> bool {
        self.state.lock().is_ok_and(|map| {
            map.get(key)
                .is_some_and(|at| now_ms.saturating_sub(*at) < self.ttl_ms)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_address_is_keyed_by_its_64_and_ipv4_by_itself() {
        let key = |s: &str| address_key(s.parse().unwrap());
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_eq!(key("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.1"), "192.0.2.1");
        assert_eq!(key("192.0.2.1"), "192.0.2.1");
        assert_ne!(key("192.0.2.1"), key("192.0.2.2"));
    }

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
    fn attempts_are_counted_before_their_outcome_and_can_be_forgiven() {
        let b = FailureBackoff::new(2, 1_000, 60_000);
        let t = 1_000_000;
        // Three concurrent attempts pass (2 free + the one that blocks); the fourth does not.
        assert!(b.attempt("k", t).is_ok());
        assert!(b.attempt("k", t).is_ok());
        assert!(b.attempt("k", t).is_ok());
        assert_eq!(b.attempt("k", t), Err(1));
        b.forgive("k");
        assert!(
            b.attempt("k", t).is_ok(),
            "forgiven back to the free failures"
        );
        let known = KnownKeys::new(10);
        known.remember("a", t);
        assert!(known.knows("a", t + 9));
        assert!(!known.knows("a", t + 10));
        assert!(!known.knows("b", t));
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
