//! Review of issue 21.5 (the limiter warm-up driven by the unverified
//! token): attacks through `wrangler dev`. A forged token must not make the
//! edge start limiter objects for the callers it names beyond a small,
//! per-isolate bound: each such object is a Durable Object request (and a
//! storage read) charged to the deployment, started for a name the attacker
//! chose, and its latency is visible in the forged request's answer.

use crate::cold_ratelimit::{unchanged, Setup};
use crate::harness::unique;
use gatehouse_common::testkit::signer::TestKey;
use std::path::Path;

impl Setup {
    /// The `RateLimiter` objects `wrangler dev` has started and kept so far
    /// (one SQLite file each in the persisted state, named by the object's
    /// id; a read-only object keeps one too).
    fn limiter_objects(&self) -> usize {
        fn walk(dir: &Path, n: &mut usize, inside: bool) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for e in entries.flatten() {
                let path = e.path();
                let name = e.file_name().to_string_lossy().into_owned();
                if path.is_dir() {
                    walk(&path, n, inside || name.contains("RateLimiter"));
                } else if inside
                    && name.strip_suffix(".sqlite").is_some_and(|id| {
                        id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
                    })
                {
                    *n += 1;
                }
            }
        }
        let mut n = 0;
        walk(&self.edge.dir.path().join("state"), &mut n, false);
        n
    }
}

/// Once the isolate holds the issuer's keys, forged tokens naming new
/// callers (and new clients) start no limiter object of theirs: only the
/// address their failures are charged to is ever met.
#[test]
fn forged_tokens_naming_new_callers_start_no_limiter_objects() {
    let s = Setup::start(
        &[
            ("RATE_LIMIT_CLIENT", "100/60"),
            ("RATE_LIMIT_CLIENT_TOTAL", "1000/60"),
            ("RATE_LIMIT_IP", "1000/60"),
        ],
        &unchanged,
    );
    assert_eq!(s.call(&s.token(&s.key, "alice", "app")).0, 200);
    let forger = TestKey::es256(&unique("forger"));
    assert_eq!(s.call(&s.token(&forger, "first", "app")).0, 401);
    let before = s.limiter_objects();
    for i in 0..10 {
        let forged = s.token(&forger, &format!("victim-{i}"), &format!("app-{i}"));
        assert_eq!(s.call(&forged).0, 401, "forged token {i}");
    }
    let after = s.limiter_objects();
    assert_eq!(
        after,
        before,
        "ten forged tokens naming new callers started {} limiter objects",
        after - before
    );
}

/// While the isolate has never held the issuer's keys (here: they cannot be
/// fetched, an outage charged to no address) every token still names
/// callers to warm up; the isolate warms at most 16 keys in its life
/// (`rate_lease::MAX_WARM_UPS`), so twenty tokens naming forty keys start
/// at most sixteen objects.
#[test]
fn warm_ups_are_bounded_per_isolate_while_keys_are_unreachable() {
    let closed = format!("http://127.0.0.1:{}/jwks.json", crate::harness::free_port());
    let s = Setup::start_with_jwks(
        &[
            ("RATE_LIMIT_CLIENT", "100/60"),
            ("RATE_LIMIT_CLIENT_TOTAL", "1000/60"),
            ("RATE_LIMIT_IP", "1000/60"),
        ],
        Some(closed),
        &unchanged,
    );
    let statuses: Vec<u16> = (0..20)
        .map(|i| {
            s.call(&s.token(&s.key, &format!("caller-{i}"), &format!("app-{i}")))
                .0
        })
        .collect();
    assert!(
        statuses.iter().all(|&st| st >= 500),
        "the keys are unavailable: {statuses:?}"
    );
    let started = s.limiter_objects();
    assert!(
        started <= 16,
        "forty keys named, {started} limiter objects started"
    );
}

/// The bound keeps what issue 21.5 is for: a new isolate (no keys held yet)
/// still starts the named caller's objects beside the key fetch, its own
/// and its client's, besides the address a failure is charged to.
#[test]
fn a_new_isolate_still_warms_the_named_callers_objects() {
    let s = Setup::start(
        &[
            ("RATE_LIMIT_CLIENT", "100/60"),
            ("RATE_LIMIT_CLIENT_TOTAL", "1000/60"),
            ("RATE_LIMIT_IP", "1000/60"),
        ],
        &unchanged,
    );
    let forger = TestKey::es256(&unique("forger"));
    assert_eq!(s.call(&s.token(&forger, "carol", "carol-app")).0, 401);
    assert_eq!(
        s.limiter_objects(),
        3,
        "carol's, carol-app's and the address's objects"
    );
}
