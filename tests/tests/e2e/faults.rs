//! Faults: the origin down for a while, and an issuer's JWKS endpoint
//! answering 500, garbage, a huge document or nothing at all. The edge keeps
//! deciding from its last good keys: valid tokens accepted, invalid ones
//! refused. Every decision is counted; the tests require zero false
//! decisions and no 5xx for a token the cached keys can decide.
//!
//! `GATEHOUSE_FAULT_DOWN_SECS` sets how long the origin stays down (default
//! 20 s; `scripts/chaos` runs it for minutes).

use crate::harness::forge::{replace_segment, resign, set, sig_of, Forge, AUD};
use crate::harness::{http, now, Edge, Origin, TempDir, Upstream};
use gatehouse_common::b64;
use gatehouse_common::testkit::signer::TestKey;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the faulty JWKS endpoint answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Mode {
    Good = 0,
    Status500 = 1,
    Garbage = 2,
    Huge = 3,
    Hangup = 4,
    OtherKeys = 5,
}

/// A JWKS endpoint whose answer can be switched, counting the fetches.
struct FaultyJwks {
    url: String,
    mode: Arc<AtomicU8>,
    hits: Arc<AtomicUsize>,
}

impl FaultyJwks {
    fn start(good: String, other: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let mode = Arc::new(AtomicU8::new(Mode::Good as u8));
        let hits = Arc::new(AtomicUsize::new(0));
        let (m, h) = (mode.clone(), hits.clone());
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let (m, h, good, other) = (m.clone(), h.clone(), good.clone(), other.clone());
                std::thread::spawn(move || {
                    let mut req = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => req.extend_from_slice(&buf[..n]),
                        }
                    }
                    h.fetch_add(1, Ordering::SeqCst);
                    let (status, body) = match m.load(Ordering::SeqCst) {
                        0 => ("200 OK", good),
                        1 => (
                            "500 Internal Server Error",
                            r#"{"error":"boom"}"#.to_owned(),
                        ),
                        2 => ("200 OK", "<html>garbage{{{".to_owned()),
                        3 => (
                            "200 OK",
                            format!(r#"{{"keys":[],"pad":"{}"}}"#, "x".repeat(16 * 1024 * 1024)),
                        ),
                        5 => ("200 OK", other),
                        _ => return, // hang up without an answer
                    };
                    let head = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncache-control: max-age=1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes());
                    let _ = stream.write_all(body.as_bytes());
                });
            }
        });
        Self { url, mode, hits }
    }

    fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn jwks_of(key: &TestKey, kid: &str) -> String {
    let mut jwk = key.public_jwk_json();
    jwk["kid"] = kid.into();
    json!({ "keys": [jwk] }).to_string()
}

/// Decisions made and how many were wrong.
#[derive(Default, Debug)]
struct Tally {
    decisions: usize,
    false_accepts: Vec<String>,
    false_refusals: Vec<String>,
    server_errors: Vec<String>,
}

impl Tally {
    fn decide(&mut self, edge: &str, name: &str, token: &str, should_accept: bool) {
        let r = http()
            .get(format!("{edge}/fault/probe"))
            .header("authorization", format!("Bearer {token}"))
            .send()
            .unwrap();
        let status = r.status().as_u16();
        self.decisions += 1;
        let what = format!("{name}: {status} {}", r.text().unwrap_or_default());
        if status >= 500 {
            self.server_errors.push(what);
        } else if should_accept && status != 200 {
            self.false_refusals.push(what);
        } else if !should_accept && (200..300).contains(&status) {
            self.false_accepts.push(what);
        }
    }

    fn assert_clean(&self, phase: &str) {
        eprintln!(
            "faults: {phase}: {} decisions, {} false accepts, {} false refusals, {} 5xx",
            self.decisions,
            self.false_accepts.len(),
            self.false_refusals.len(),
            self.server_errors.len()
        );
        assert!(
            self.false_accepts.is_empty()
                && self.false_refusals.is_empty()
                && self.server_errors.is_empty(),
            "{phase}: {self:#?}"
        );
    }
}

/// Invalid tokens the cached keys alone can decide.
fn invalid_tokens(forge: &Forge) -> Vec<(&'static str, String)> {
    let attacker = TestKey::es256("faults-attacker");
    let valid = forge.valid();
    vec![
        (
            "forged under the trusted kid",
            attacker.sign(&forge.header(), &forge.claims()),
        ),
        ("scope escalated", {
            let c = set(forge.claims(), "scope", json!("read admin"));
            replace_segment(&valid, 1, &c.to_string())
        }),
        ("psychic signature", resign(&valid, &[0u8; 64])),
        ("expired", {
            let t = now() - 3600;
            forge.sign(
                &forge.header(),
                &set(
                    set(set(forge.claims(), "iat", json!(t)), "nbf", json!(t)),
                    "exp",
                    json!(t + 60),
                ),
            )
        }),
        (
            "wrong audience",
            forge.claim("aud", json!("https://other.example")),
        ),
        ("alg none", {
            let h = set(forge.header(), "alg", json!("none"));
            format!(
                "{}.{}.",
                b64::encode(h.to_string().as_bytes()),
                b64::encode(forge.claims().to_string().as_bytes())
            )
        }),
    ]
}

#[test]
fn jwks_500_garbage_huge_or_hangup_keeps_the_last_good_keys() {
    let key = TestKey::es256("faults-issuer");
    let kid = "faults-k1";
    let other = TestKey::es256("faults-rotated");
    let jwks = FaultyJwks::start(jwks_of(&key, kid), jwks_of(&other, "faults-k2"));
    let trusted = json!([{
        "issuer": jwks.url,
        "jwks_url": format!("{}/jwks.json", jwks.url),
        "audiences": [AUD],
    }])
    .to_string();
    let origin = Origin::start();
    let upstream = Upstream::start();
    let edge = Edge::start_retrying(
        &origin,
        &upstream,
        &[
            ("TRUSTED_ISSUERS", &trusted),
            ("JWKS_MIN_TTL_SECS", "1"),
            ("JWKS_MAX_TTL_SECS", "1"),
            ("JWKS_REFRESH_COOLDOWN_SECS", "1"),
            ("RATE_LIMIT_IP", "100000/60"),
            ("RATE_LIMIT_CLIENT", "100000/60"),
        ],
    );
    let forge = Forge {
        iss: jwks.url.clone(),
        aud: AUD.to_owned(),
        kid: kid.to_owned(),
        key,
    };
    let mut tally = Tally::default();
    tally.decide(&edge.url, "control", &forge.valid(), true);
    tally.assert_clean("good JWKS");

    for mode in [Mode::Status500, Mode::Garbage, Mode::Huge, Mode::Hangup] {
        jwks.set(mode);
        // Drive requests until the edge has asked the broken endpoint at
        // least twice (its TTL is 1 s); every answer meanwhile is a decision.
        let before = jwks.hits();
        let deadline = Instant::now() + Duration::from_secs(120);
        while jwks.hits() < before + 2 {
            assert!(
                Instant::now() < deadline,
                "the edge never refetched in {mode:?}"
            );
            tally.decide(&edge.url, "valid while refetching", &forge.valid(), true);
            std::thread::sleep(Duration::from_millis(300));
        }
        for _ in 0..3 {
            tally.decide(&edge.url, "valid", &forge.valid(), true);
            for (name, t) in invalid_tokens(&forge) {
                tally.decide(&edge.url, name, &t, false);
            }
        }
        tally.assert_clean(&format!("JWKS {mode:?}"));
        // An unknown kid during the fault is refused (it cannot be
        // verified); a 5xx here would be acceptable only as 503, so count it.
        let unknown = forge.head("kid", json!("faults-unknown"));
        let r = http()
            .get(format!("{}/fault/probe", edge.url))
            .header("authorization", format!("Bearer {unknown}"))
            .send()
            .unwrap();
        assert!(
            (400..500).contains(&r.status().as_u16()) || r.status() == 503,
            "{mode:?}: unknown kid answered {}",
            r.status()
        );
    }

    // Recovery, then a real rotation: a good document with other keys
    // replaces the set (tokens of the old key are refused once it is gone).
    jwks.set(Mode::Good);
    tally.decide(&edge.url, "valid after recovery", &forge.valid(), true);
    tally.assert_clean("recovered");
    jwks.set(Mode::OtherKeys);
    let rotated = Forge {
        iss: forge.iss.clone(),
        aud: AUD.to_owned(),
        kid: "faults-k2".to_owned(),
        key: other,
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let r = http()
            .get(format!("{}/fault/probe", edge.url))
            .header("authorization", format!("Bearer {}", rotated.valid()))
            .send()
            .unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rotation never picked up: {}",
            r.status()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let mut after = Tally::default();
    after.decide(&edge.url, "old key after rotation", &forge.valid(), false);
    after.decide(&edge.url, "new key", &rotated.valid(), true);
    after.assert_clean("rotated");
}

#[test]
fn unknown_kids_do_not_cause_a_refetch_storm() {
    let key = TestKey::es256("storm-issuer");
    let jwks = FaultyJwks::start(jwks_of(&key, "storm-k1"), String::new());
    let trusted = json!([{
        "issuer": jwks.url,
        "jwks_url": format!("{}/jwks.json", jwks.url),
        "audiences": [AUD],
    }])
    .to_string();
    let origin = Origin::start();
    let upstream = Upstream::start();
    let cooldown = 10;
    let edge = Edge::start_retrying(
        &origin,
        &upstream,
        &[
            ("TRUSTED_ISSUERS", &trusted),
            ("JWKS_REFRESH_COOLDOWN_SECS", "10"),
            ("RATE_LIMIT_IP", "100000/60"),
        ],
    );
    let forge = Forge {
        iss: jwks.url.clone(),
        aud: AUD.to_owned(),
        kid: "storm-k1".to_owned(),
        key,
    };
    let mut tally = Tally::default();
    tally.decide(&edge.url, "control", &forge.valid(), true);
    let before = jwks.hits();
    let started = Instant::now();
    for i in 0..200 {
        let t = forge.head("kid", json!(format!("random-kid-{i}")));
        tally.decide(&edge.url, "random kid", &t, false);
    }
    let elapsed = started.elapsed().as_secs() as usize;
    let fetches = jwks.hits() - before;
    tally.decide(&edge.url, "valid after the storm", &forge.valid(), true);
    tally.assert_clean("random kids");
    eprintln!("faults: 200 random kids in {elapsed} s caused {fetches} JWKS fetches");
    // At most one kid-triggered refetch per cooldown (plus one in flight at
    // either end), whatever the number of random kids.
    assert!(
        fetches <= elapsed / cooldown + 2,
        "{fetches} fetches in {elapsed} s"
    );
}

#[test]
fn origin_down_the_edge_decides_from_its_cache() {
    let down_secs: u64 = std::env::var("GATEHOUSE_FAULT_DOWN_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    // Tokens must outlive the outage.
    let ttl = (down_secs + 600).to_string();
    let data = TempDir::new("origin");
    let database_url = format!("sqlite://{}/gatehouse.db", data.path().display());
    let mut origin = Origin::start_with(
        data,
        database_url,
        &[("GATEHOUSE_ACCESS_TOKEN_TTL", ttl.as_str())],
    );
    let upstream = Upstream::start();
    let edge = Edge::start_retrying(
        &origin,
        &upstream,
        &[
            ("JWKS_MIN_TTL_SECS", "1"),
            ("JWKS_MAX_TTL_SECS", "2"),
            ("JWKS_REFRESH_COOLDOWN_SECS", "1"),
            ("JWKS_MAX_STALE_SECS", &(down_secs + 3600).to_string()),
            ("RATE_LIMIT_IP", "1000000/60"),
            ("RATE_LIMIT_CLIENT", "1000000/60"),
        ],
    );
    let client = origin.create_client("faults", "read", &edge.url, &[]);
    let elsewhere = origin.create_client("faults-other", "read", "https://other.example", &[]);
    let valid: Vec<String> = (0..5)
        .map(|_| {
            origin.client_credentials(&client, &[])["access_token"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let other_aud = origin.client_credentials(&elsewhere, &[])["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let real = &valid[0];
    let claims: Value =
        serde_json::from_slice(&b64::decode(real.split('.').nth(1).unwrap()).unwrap()).unwrap();
    let invalid: Vec<(&str, String)> = vec![
        ("genuine token for another audience", other_aud),
        (
            "scope escalated",
            replace_segment(
                real,
                1,
                &set(claims.clone(), "scope", json!("admin")).to_string(),
            ),
        ),
        ("psychic signature", resign(real, &[0u8; 64])),
        ("last signature byte flipped", {
            let mut s = sig_of(real);
            *s.last_mut().unwrap() ^= 1;
            resign(real, &s)
        }),
    ];
    let mut tally = Tally::default();
    for t in &valid {
        tally.decide(&edge.url, "valid before the outage", t, true);
    }
    tally.assert_clean("origin up");

    origin.proc.kill9();
    let started = Instant::now();
    let mut rounds = 0;
    while started.elapsed() < Duration::from_secs(down_secs) || rounds < 3 {
        for t in &valid {
            tally.decide(&edge.url, "valid during the outage", t, true);
        }
        for (name, t) in &invalid {
            tally.decide(&edge.url, name, t, false);
        }
        rounds += 1;
        std::thread::sleep(Duration::from_millis(500));
    }
    tally.assert_clean(&format!("origin down {down_secs} s"));

    origin.crash_and_restart(&[("GATEHOUSE_ACCESS_TOKEN_TTL", ttl.as_str())]);
    let fresh = origin.client_credentials(&client, &[])["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    tally.decide(&edge.url, "fresh token after the restart", &fresh, true);
    tally.decide(&edge.url, "old token after the restart", real, true);
    tally.assert_clean("origin back");
}
