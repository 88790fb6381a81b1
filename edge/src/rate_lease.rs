//! The pure half of the edge's rate limiting (native and wasm32, tested
//! natively): what the edge asks the `RateLimiter` Durable Object, its
//! answer, and the leases an isolate spends locally (see
//! `crate::ratelimit` for how they are used and why).

use gatehouse_common::jws::{self, Limits};
use gatehouse_common::profile::TokenProfile;
use gatehouse_common::ratelimit::{Decision, Quota};
use serde::{Deserialize, Serialize};
use std::cell::Cell;
use std::net::{IpAddr, Ipv6Addr};

/// The part of a caller's address its per-address limits are keyed by: an
/// IPv4 address whole, an IPv6 address by its /64 (one subscriber's
/// allocation: whoever holds a /64 chooses among 2^64 addresses, so keying by
/// the full address would give them as many buckets), an IPv4-mapped IPv6
/// address as the IPv4 address. Anything that is not an address (`local`
/// under `wrangler dev` without `CF-Connecting-IP`) shares one bucket.
#[must_use]
pub fn address_key(ip: &str) -> String {
    match ip.trim().parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                let prefix = Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0);
                format!("{prefix}/64")
            }
        },
        Err(_) => "unknown".to_owned(),
    }
}

/// The key of the per-caller limit (`RATE_LIMIT_CLIENT`): one bucket per
/// subject of a client of an issuer, so one user of a public client cannot
/// use up the budget of every other user of it. The parts are JSON-encoded,
/// so no `client_id` or `sub` can make two callers' keys equal.
#[must_use]
pub fn subject_key(iss: &str, client_id: &str, sub: &str) -> String {
    format!("subject:{}", serde_json::json!([iss, client_id, sub]))
}

/// The key of the optional per-client limit (`RATE_LIMIT_CLIENT_TOTAL`),
/// shared by every subject of the client.
#[must_use]
pub fn client_key(iss: &str, client_id: &str) -> String {
    format!("client:{}", serde_json::json!([iss, client_id]))
}

/// The per-caller key (`subject_key`) the access token `raw` names, read
/// before its signature is checked, for warming up the caller's limiter
/// while the issuer's keys are fetched. Never an authorization: whoever
/// sends a token can name any caller, so the warm-up it drives charges
/// nothing. The parts are read as `accept` reads them (`iss`, `sub`, the
/// client id where `profile` says), so a genuine token names the key its
/// charge will use; `None` when one is missing or not a string.
#[must_use]
pub fn unverified_caller(raw: &str, profile: &TokenProfile) -> Option<(String, String, String)> {
    let token = jws::parse(raw, &Limits::ACCESS_TOKEN).ok()?;
    let c = &token.claims;
    let iss = gatehouse_common::claims::string(c, "iss").ok()?;
    let client_id = profile.client_id(c).ok()?;
    let sub = gatehouse_common::claims::string(c, "sub").ok()?;
    Some((iss, client_id, sub))
}

/// Keys an isolate warms up in its life (`crate::ratelimit::warm_up`). The
/// warm-up is driven by unverified tokens, so without a bound every forged
/// token naming new callers started up to two limiter objects (Durable
/// Object requests and storage reads billed to the deployment, for names
/// the forger chose; review 21e). A new isolate needs a few; a busy one has
/// met its callers by the charge.
pub const MAX_WARM_UPS: u32 = 16;

thread_local! {
    /// Keys this isolate has warmed up so far (at most [`MAX_WARM_UPS`]).
    static WARM_UPS: Cell<u32> = const { Cell::new(0) };
}

/// Spends one of the isolate's [`MAX_WARM_UPS`]; false once they are spent.
pub fn take_warm_up() -> bool {
    WARM_UPS.with(|w| {
        let spent = w.get();
        w.set(spent.saturating_add(1).min(MAX_WARM_UPS));
        spent < MAX_WARM_UPS
    })
}

/// How long an isolate may spend a lease, milliseconds.
pub const LEASE_TTL_MS: i64 = 1_000;

/// What the edge asks the limiter.
#[derive(Serialize, Deserialize)]
pub struct RateCheck {
    /// The quota's name (for headers).
    pub name: String,
    /// Requests allowed per window.
    pub limit: u32,
    /// The window, seconds.
    pub window_secs: u32,
    /// Admissions wanted at once (a lease); 1 when absent.
    #[serde(default = "one")]
    pub want: u32,
}

fn one() -> u32 {
    1
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
    /// Admissions granted (this request's included); 0 when refused.
    #[serde(default)]
    pub granted: u32,
}

/// What an isolate holds for one key (quota name included in the map key).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lease {
    /// Admissions left to spend.
    left: u32,
    /// Until when they may be spent, and `remaining`/`reset` are told from.
    until_ms: i64,
    /// The size of the last lease asked for.
    size: u32,
    /// The object's `remaining` when it granted the lease.
    remaining: u32,
    /// When the bucket is full again, absolute milliseconds.
    reset_at_ms: i64,
    /// Refused until then (absolute ms; 0 when not refused).
    refused_until_ms: i64,
}

/// The largest lease for `quota`: `max`, and at most 5% of the quota.
pub fn lease_cap(quota: &Quota, max: u32) -> u32 {
    (quota.limit / 20).clamp(1, max.max(1))
}

/// Spends from the isolate's lease or remembered refusal, if that decides.
pub fn local(lease: &mut Lease, now_ms: i64) -> Option<Decision> {
    // Admissions already charged are spent first, also when a concurrent
    // request of this isolate was refused since.
    if lease.left > 0 && now_ms < lease.until_ms {
        lease.left -= 1;
        return Some(Decision {
            allowed: true,
            remaining: lease.remaining.saturating_add(lease.left),
            retry_after_ms: 0,
            reset_ms: (lease.reset_at_ms - now_ms).max(0),
        });
    }
    if now_ms < lease.refused_until_ms {
        return Some(Decision {
            allowed: false,
            remaining: 0,
            retry_after_ms: lease.refused_until_ms - now_ms,
            reset_ms: (lease.reset_at_ms - now_ms).max(0),
        });
    }
    None
}

/// Whether the lease would admit a request now without asking the object
/// (nothing is spent; a concurrent request may still spend it first).
#[must_use]
pub fn would_admit(lease: &Lease, now_ms: i64) -> bool {
    lease.left > 0 && now_ms < lease.until_ms
}

/// Whether a refusal is remembered now (and no admission is left to spend).
#[must_use]
pub fn is_refused(lease: &Lease, now_ms: i64) -> bool {
    !would_admit(lease, now_ms) && now_ms < lease.refused_until_ms
}

/// The next lease size: doubled when the last one was spent in time, halved
/// when it expired unspent.
pub fn next_size(lease: &Lease, now_ms: i64, cap: u32) -> u32 {
    let spent_in_time = lease.left == 0 && now_ms < lease.until_ms;
    let size = if lease.size == 0 {
        1
    } else if spent_in_time {
        lease.size.saturating_mul(2)
    } else {
        lease.size / 2
    };
    size.clamp(1, cap)
}

/// Records the object's answer; returns this request's decision.
pub fn granted(lease: &mut Lease, v: &RateVerdict, size: u32, now_ms: i64) -> Decision {
    lease.size = size;
    lease.remaining = v.remaining;
    lease.reset_at_ms = now_ms.saturating_add(v.reset_ms);
    if v.allowed {
        // Concurrent requests of this isolate may each have been granted a
        // lease: keep what is left of the others, so nothing charged is lost.
        let unspent = if now_ms < lease.until_ms {
            lease.left
        } else {
            0
        };
        lease.left = unspent.saturating_add(v.granted.max(1) - 1);
        lease.until_ms = now_ms.saturating_add(LEASE_TTL_MS);
        lease.refused_until_ms = 0;
    } else {
        // What a concurrent grant left unspent stays (it is charged already).
        lease.refused_until_ms = now_ms.saturating_add(v.retry_after_ms);
    }
    Decision {
        allowed: v.allowed,
        remaining: v.remaining.saturating_add(lease.left),
        retry_after_ms: v.retry_after_ms,
        reset_ms: v.reset_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(allowed: bool, granted: u32, remaining: u32) -> RateVerdict {
        RateVerdict {
            allowed,
            remaining,
            retry_after_ms: if allowed { 0 } else { 1_500 },
            reset_ms: 2_000,
            granted,
        }
    }

    #[test]
    fn a_lease_is_spent_locally_then_the_object_is_asked_again() {
        let mut l = Lease::default();
        assert_eq!(local(&mut l, 0), None, "nothing held: ask");
        assert_eq!(next_size(&l, 0, 16), 1, "a quiet key asks for one");
        let d = granted(&mut l, &verdict(true, 4, 10), 4, 0);
        assert!(d.allowed);
        assert_eq!(d.remaining, 13, "the object's remaining plus the lease");
        for left in (0..3).rev() {
            let d = local(&mut l, 10).expect("spent from the lease");
            assert!(d.allowed);
            assert_eq!(d.remaining, 10 + left);
        }
        assert_eq!(local(&mut l, 10), None, "spent: ask again");
        assert_eq!(next_size(&l, 10, 16), 8, "spent in time: doubled");
        assert_eq!(next_size(&l, 10, 5), 5, "within the cap");
    }

    /// The edge asks the DPoP replay guard before charging the caller only
    /// when the caller's lease would admit it: peeking spends nothing, an
    /// exhausted or expired lease or a remembered refusal does not admit.
    #[test]
    fn peeking_at_a_lease_spends_nothing() {
        let mut l = Lease::default();
        assert!(!would_admit(&l, 0), "nothing held");
        assert!(!is_refused(&l, 0));
        granted(&mut l, &verdict(true, 2, 0), 2, 0);
        assert!(would_admit(&l, 1));
        assert!(would_admit(&l, 1), "peeking twice spends nothing");
        assert!(local(&mut l, 1).is_some_and(|d| d.allowed), "the one left");
        assert!(!would_admit(&l, 1), "spent");
        granted(&mut l, &verdict(true, 2, 0), 2, 2);
        assert!(!would_admit(&l, LEASE_TTL_MS + 2), "expired");
        let mut r = Lease::default();
        granted(&mut r, &verdict(false, 0, 0), 1, 100);
        assert!(!would_admit(&r, 200));
        assert!(is_refused(&r, 200), "refused until Retry-After");
        assert!(!is_refused(&r, 1_600), "then asked again");
    }

    #[test]
    fn an_expired_lease_is_not_spent_and_shrinks() {
        let mut l = Lease::default();
        granted(&mut l, &verdict(true, 8, 0), 8, 0);
        assert_eq!(local(&mut l, LEASE_TTL_MS), None, "expired");
        assert_eq!(next_size(&l, LEASE_TTL_MS, 16), 4);
    }

    #[test]
    fn concurrent_grants_add_up_instead_of_overwriting() {
        let mut l = Lease::default();
        granted(&mut l, &verdict(true, 4, 0), 4, 0);
        granted(&mut l, &verdict(true, 4, 0), 4, 5);
        let mut spent = 0;
        while local(&mut l, 6).is_some_and(|d| d.allowed) {
            spent += 1;
        }
        assert_eq!(spent, 6, "3 + 3 left of two leases of 4");
    }

    #[test]
    fn a_refusal_is_remembered_until_retry_after() {
        let mut l = Lease::default();
        let d = granted(&mut l, &verdict(false, 0, 0), 1, 100);
        assert!(!d.allowed);
        let again = local(&mut l, 600).expect("decided locally");
        assert!(!again.allowed);
        assert_eq!(again.retry_after_ms, 1_000);
        assert_eq!(local(&mut l, 1_600), None, "after Retry-After: ask again");
    }

    #[test]
    fn a_concurrent_refusal_does_not_discard_a_granted_lease() {
        let mut l = Lease::default();
        granted(&mut l, &verdict(true, 4, 0), 4, 0);
        let d = granted(&mut l, &verdict(false, 0, 0), 4, 1);
        assert!(!d.allowed, "this request was refused");
        let mut spent = 0;
        while local(&mut l, 2).is_some_and(|d| d.allowed) {
            spent += 1;
        }
        assert_eq!(spent, 3, "the other request's lease is still spent");
        assert!(
            local(&mut l, 2).is_some_and(|d| !d.allowed),
            "then the refusal holds"
        );
    }

    /// Issue 16.13: an IPv6 caller holds a /64; each of its 2^64 addresses
    /// must not get a bucket of its own.
    #[test]
    fn addresses_of_one_ipv6_slash_64_share_one_key() {
        let k = address_key("2001:db8:1:2::1");
        assert_eq!(k, "2001:db8:1:2::/64");
        for same in [
            "2001:db8:1:2::ffff:1",
            "2001:DB8:1:2:aaaa:bbbb:cccc:dddd",
            "2001:0db8:0001:0002:0000:0000:0000:0009",
            " 2001:db8:1:2::9 ",
        ] {
            assert_eq!(address_key(same), k, "{same}");
        }
        assert_ne!(address_key("2001:db8:1:3::1"), k, "another /64");
        assert_eq!(address_key("192.0.2.7"), "192.0.2.7");
        assert_ne!(address_key("192.0.2.8"), address_key("192.0.2.7"));
        assert_eq!(address_key("::ffff:192.0.2.7"), "192.0.2.7", "IPv4-mapped");
        assert_eq!(address_key("local"), "unknown");
        assert_eq!(address_key("not an address"), "unknown");
    }

    /// Issue 17.11: the per-caller key names the subject, unambiguously.
    #[test]
    fn subject_keys_differ_per_subject_and_cannot_be_forged_by_separators() {
        assert_ne!(
            subject_key("i", "app", "alice"),
            subject_key("i", "app", "bob")
        );
        assert_ne!(subject_key("i", "a|b", "c"), subject_key("i", "a", "b|c"));
        assert_ne!(
            subject_key("i", "a\",\"b", "c"),
            subject_key("i", "a", "b\",\"c")
        );
        assert_ne!(client_key("i", "app"), subject_key("i", "app", ""));
    }

    /// The warm-up is keyed as the charge will be: by the claims `accept`
    /// reads, under the issuer's profile; nothing without them.
    #[test]
    fn the_unverified_caller_is_read_as_accept_reads_it() {
        use gatehouse_common::testkit::signer::TestKey;
        let key = TestKey::es256("warm");
        let header = serde_json::json!({"alg": "ES256", "typ": "at+jwt", "kid": "k"});
        let claims = serde_json::json!({"iss": "https://i", "sub": "alice", "client_id": "app", "azp": "other"});
        let token = key.sign(&header, &claims);
        let rfc = TokenProfile::rfc9068();
        assert_eq!(
            unverified_caller(&token, &rfc),
            Some(("https://i".into(), "app".into(), "alice".into()))
        );
        let azp = TokenProfile {
            client_id_claims: vec!["azp".into()],
            ..TokenProfile::rfc9068()
        };
        assert_eq!(
            unverified_caller(&token, &azp).map(|c| c.1),
            Some("other".into()),
            "the profile's client id claim"
        );
        let no_sub = key.sign(
            &header,
            &serde_json::json!({"iss": "https://i", "client_id": "app"}),
        );
        assert_eq!(unverified_caller(&no_sub, &rfc), None);
        let numeric = key.sign(
            &header,
            &serde_json::json!({"iss": "https://i", "client_id": "app", "sub": 7}),
        );
        assert_eq!(unverified_caller(&numeric, &rfc), None);
        assert_eq!(unverified_caller("not.a.token", &rfc), None);
    }

    /// Review 21e: forged tokens drive warm-ups, so an isolate (a thread
    /// here) warms at most `MAX_WARM_UPS` keys in its life, however many
    /// tokens name new callers.
    #[test]
    fn an_isolate_warms_at_most_max_warm_ups_keys() {
        let granted = (0..3 * MAX_WARM_UPS).filter(|_| take_warm_up()).count();
        assert_eq!(granted, MAX_WARM_UPS as usize);
        assert!(!take_warm_up(), "and none after");
    }

    #[test]
    fn leases_hold_at_most_five_percent_of_the_quota() {
        assert_eq!(lease_cap(&Quota::new("c", 600, 60), 16), 16);
        assert_eq!(lease_cap(&Quota::new("c", 100, 60), 16), 5);
        assert_eq!(lease_cap(&Quota::new("c", 10, 60), 16), 1);
        assert_eq!(lease_cap(&Quota::new("c", 600, 60), 1), 1);
    }
}
