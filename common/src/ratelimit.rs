//! GCRA rate limiting (the generic cell rate algorithm, equivalent to a token
//! bucket) with injected time, and the response header values.
//!
//! The state is one number — the theoretical arrival time (TAT) — so the edge
//! keeps it in a Durable Object and the origin in memory; [`check`] is pure:
//! `(state, now, quota) -> (decision, new state)`. Callers pass time in
//! milliseconds since the Unix epoch; the state is kept in microseconds so
//! that the emission interval of fast limits (5,000 per second is 200 µs) is
//! not rounded to whole milliseconds.
//!
//! Headers follow draft-ietf-httpapi-ratelimit-headers (structured fields):
//! `RateLimit-Policy: "name";q=LIMIT;w=WINDOW` and
//! `RateLimit: "name";r=REMAINING;t=RESET`, plus `Retry-After` (RFC 9110 §10.2.3) on 429.

use crate::rejection::{ErrorCode, Rejection, Scheme};

/// How many requests a key may make per window, with bursts up to `limit`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quota {
    /// Policy name used in the headers (a short token such as `client`).
    pub name: String,
    /// Requests allowed per window (and the largest burst). At least 1.
    pub limit: u32,
    /// The window in seconds. At least 1.
    pub window_secs: u32,
}

impl Quota {
    /// `limit` requests per `window_secs` under policy `name`.
    #[must_use]
    pub fn new(name: impl Into<String>, limit: u32, window_secs: u32) -> Self {
        Self {
            name: name.into(),
            limit: limit.max(1),
            window_secs: window_secs.max(1),
        }
    }

    fn window_us(&self) -> i64 {
        i64::from(self.window_secs.max(1)) * 1_000_000
    }

    /// Emission interval: microseconds of budget one request uses (at least 1).
    fn interval_us(&self) -> i64 {
        (self.window_us() / i64::from(self.limit.max(1))).max(1)
    }

    /// `RateLimit-Policy` header value.
    #[must_use]
    pub fn policy_header(&self) -> String {
        format!(
            "\"{}\";q={};w={}",
            sf_string(&self.name),
            self.limit,
            self.window_secs
        )
    }
}

/// The stored state for one key: the theoretical arrival time, in µs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GcraState {
    /// Theoretical arrival time (µs since the epoch); 0 for a fresh key.
    pub tat_us: i64,
}

impl GcraState {
    /// Whether the key is back to a full budget at `now_ms` (its state can be forgotten).
    #[must_use]
    pub fn is_idle(&self, now_ms: i64) -> bool {
        self.tat_us <= now_ms.saturating_mul(1000)
    }
}

/// The outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// Requests still allowed right now after this one.
    pub remaining: u32,
    /// For a refusal, milliseconds until a request would be allowed (0 when allowed).
    pub retry_after_ms: i64,
    /// Milliseconds until the full quota is available again.
    pub reset_ms: i64,
}

/// Decides one request for a key in `state` at `now_ms` under `quota`.
/// A refused request does not consume budget (the state is returned unchanged).
#[must_use]
pub fn check(state: GcraState, now_ms: i64, quota: &Quota) -> (Decision, GcraState) {
    let now = now_ms.saturating_mul(1000);
    let t = quota.interval_us();
    let window = t.saturating_mul(i64::from(quota.limit.max(1)));
    let tat = state.tat_us.max(now);
    let new_tat = tat.saturating_add(t);
    // The earliest instant at which new_tat fits within the burst tolerance.
    let allow_at = new_tat.saturating_sub(window);
    if now < allow_at {
        let decision = Decision {
            allowed: false,
            remaining: 0,
            retry_after_ms: ceil_div(allow_at - now, 1000).max(1),
            reset_ms: ceil_div(tat.saturating_sub(now), 1000),
        };
        return (decision, state);
    }
    let spare = now.saturating_add(window).saturating_sub(new_tat);
    let remaining = u32::try_from(spare / t).unwrap_or(u32::MAX);
    let decision = Decision {
        allowed: true,
        remaining,
        retry_after_ms: 0,
        reset_ms: ceil_div(new_tat.saturating_sub(now), 1000),
    };
    (decision, GcraState { tat_us: new_tat })
}

/// Charges up to `want` requests at once (at least one is asked): the first
/// exactly as [`check`], then as many more as the burst still holds, so the
/// caller may admit the returned count without asking again (a lease). Never
/// grants more than `want`, nor more than [`check`] called that many times
/// in a row would have admitted; `0` granted is a refusal.
#[must_use]
pub fn check_many(
    state: GcraState,
    now_ms: i64,
    quota: &Quota,
    want: u32,
) -> (Decision, u32, GcraState) {
    let (first, next) = check(state, now_ms, quota);
    if !first.allowed {
        return (first, 0, state);
    }
    let extra = want.max(1).saturating_sub(1).min(first.remaining);
    let t = quota.interval_us();
    let tat_us = next
        .tat_us
        .saturating_add(t.saturating_mul(i64::from(extra)));
    let now = now_ms.saturating_mul(1000);
    let decision = Decision {
        allowed: true,
        remaining: first.remaining - extra,
        retry_after_ms: 0,
        reset_ms: ceil_div(tat_us.saturating_sub(now), 1000),
    };
    (decision, extra + 1, GcraState { tat_us })
}

impl Decision {
    /// `Retry-After` in whole seconds, rounded up (at least 1 for a refusal).
    #[must_use]
    pub fn retry_after_secs(&self) -> u64 {
        if self.allowed {
            return 0;
        }
        u64::try_from(ceil_div(self.retry_after_ms, 1000).max(1)).unwrap_or(u64::MAX)
    }

    /// `RateLimit` header value for `quota`.
    #[must_use]
    pub fn ratelimit_header(&self, quota: &Quota) -> String {
        format!(
            "\"{}\";r={};t={}",
            sf_string(&quota.name),
            self.remaining,
            ceil_div(self.reset_ms, 1000)
        )
    }

    /// Every header to attach: `RateLimit-Policy`, `RateLimit`, and for a refusal `Retry-After`.
    #[must_use]
    pub fn headers(&self, quota: &Quota) -> Vec<(&'static str, String)> {
        let mut h = vec![
            ("RateLimit-Policy", quota.policy_header()),
            ("RateLimit", self.ratelimit_header(quota)),
        ];
        if !self.allowed {
            h.push(("Retry-After", self.retry_after_secs().to_string()));
        }
        h
    }

    /// The 429 refusal for a denied decision.
    #[must_use]
    pub fn rejection(&self) -> Rejection {
        let mut r = Rejection::new(ErrorCode::RateLimited, Scheme::Bearer, "too many requests");
        r.retry_after = Some(self.retry_after_secs());
        r
    }
}

fn ceil_div(a: i64, b: i64) -> i64 {
    if a <= 0 {
        0
    } else {
        (a.saturating_add(b - 1)) / b
    }
}

/// Keeps a policy name to the characters a structured-field string allows unescaped.
fn sf_string(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\')
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000_000;

    #[test]
    fn a_fresh_key_gets_the_full_burst_then_is_refused() {
        let q = Quota::new("client", 5, 10);
        let mut s = GcraState::default();
        for want_remaining in (0..5).rev() {
            let (d, next) = check(s, T0, &q);
            assert!(d.allowed);
            assert_eq!(d.remaining, want_remaining);
            s = next;
        }
        let (d, after) = check(s, T0, &q);
        assert!(!d.allowed);
        assert_eq!(after, s, "a refusal consumes nothing");
        assert_eq!(d.retry_after_ms, 2000, "one interval (10 s / 5)");
        assert_eq!(d.retry_after_secs(), 2);
    }

    #[test]
    fn a_lease_charges_exactly_what_single_checks_would() {
        let q = Quota::new("c", 10, 1);
        // Granting 4 at once leaves the same state as 4 single admissions.
        let (d, granted, leased) = check_many(GcraState::default(), 1_000, &q, 4);
        let mut single = GcraState::default();
        for _ in 0..4 {
            single = check(single, 1_000, &q).1;
        }
        assert_eq!((d.allowed, granted, d.remaining), (true, 4, 6));
        assert_eq!(leased, single);
        // Never more than the burst holds: 6 left, 100 wanted.
        let (d, granted, full) = check_many(leased, 1_000, &q, 100);
        assert_eq!((d.allowed, granted, d.remaining), (true, 6, 0));
        // Then refused, with the state unchanged.
        let (d, granted, after) = check_many(full, 1_000, &q, 3);
        assert_eq!((d.allowed, granted), (false, 0));
        assert_eq!(after, full);
        assert!(d.retry_after_ms > 0);
        // Asking for zero is asking for one.
        assert_eq!(check_many(GcraState::default(), 1_000, &q, 0).1, 1);
    }

    #[test]
    fn budget_refills_at_the_emission_rate() {
        let q = Quota::new("ip", 2, 1);
        let (_, s) = check(GcraState::default(), T0, &q);
        let (_, s) = check(s, T0, &q);
        assert!(!check(s, T0 + 499, &q).0.allowed);
        let (d, s) = check(s, T0 + 500, &q);
        assert!(d.allowed);
        assert!(!check(s, T0 + 500, &q).0.allowed);
        // After a long idle period the burst is back, not more.
        let (d, _) = check(s, T0 + 60_000, &q);
        assert_eq!(d.remaining, 1);
    }

    #[test]
    fn headers_follow_the_draft() {
        let q = Quota::new("client", 100, 60);
        let (d, _) = check(GcraState::default(), T0, &q);
        assert_eq!(q.policy_header(), "\"client\";q=100;w=60");
        assert_eq!(d.ratelimit_header(&q), "\"client\";r=99;t=1");
        assert_eq!(d.headers(&q).len(), 2);
        let denied = Decision {
            allowed: false,
            remaining: 0,
            retry_after_ms: 1001,
            reset_ms: 60_000,
        };
        assert_eq!(denied.retry_after_secs(), 2);
        assert_eq!(
            denied.headers(&q).last().cloned(),
            Some(("Retry-After", "2".to_owned()))
        );
        let r = denied.rejection();
        assert_eq!((r.status(), r.retry_after), (429, Some(2)));
        assert_eq!(Quota::new("a\"b", 1, 1).policy_header(), "\"ab\";q=1;w=1");
    }

    /// Fast limits keep their rate: 5,000/s is one request per 200 µs, not
    /// one per millisecond (the old whole-ms interval allowed only 1,000/s).
    #[test]
    fn fast_limits_are_not_rounded_to_whole_milliseconds() {
        let q = Quota::new("fast", 5000, 1);
        let drain = |mut s: GcraState, at: i64| {
            let mut n = 0;
            loop {
                let (d, next) = check(s, at, &q);
                if !d.allowed {
                    return (n, s);
                }
                n += 1;
                s = next;
            }
        };
        let (burst, s) = drain(GcraState::default(), T0);
        assert_eq!(burst, 5000);
        let (allowed_next_ms, _) = drain(s, T0 + 1);
        assert_eq!(allowed_next_ms, 5, "1 ms refills 5 requests at 5,000/s");
        // 7 per second: over a simulated minute, exactly 7 × 60 after the burst.
        let q = Quota::new("seven", 7, 1);
        let mut s = GcraState::default();
        let mut allowed = 0;
        for ms in 0..60_000 {
            let (d, next) = check(s, T0 + ms, &q);
            if d.allowed {
                allowed += 1;
                s = next;
            }
        }
        assert!((7 * 60..=7 * 60 + 7).contains(&allowed), "{allowed}");
    }

    #[test]
    fn clocks_going_backwards_do_not_grant_extra_budget() {
        let q = Quota::new("c", 1, 10);
        let (_, s) = check(GcraState::default(), T0, &q);
        assert!(!check(s, T0 - 5_000, &q).0.allowed);
    }
}
