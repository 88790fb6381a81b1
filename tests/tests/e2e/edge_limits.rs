//! The edge's limits against abuse of its own budgets: whose bucket a
//! request is charged to (one user of a client, an IPv6 /64, a neighbour
//! behind the same address), which work happens before the limit (replay
//! guard writes, refusals after authentication), deadlines on the key
//! fetch, and what the public health endpoint tells. Tokens come from a
//! test issuer whose JWKS endpoint can be switched to fail or stall.

use crate::harness::forge::{proof_claims, proof_header};
use crate::harness::{http, now, unique, Edge, Origin, Upstream, HEALTH_TOKEN};
use gatehouse_common::dpop::ath;
use gatehouse_common::testkit::signer::TestKey;
use reqwest::blocking::Response;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const KID: &str = "limits-k1";

/// What the test issuer's JWKS endpoint answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Mode {
    Good = 0,
    Status500 = 1,
    /// Waits [`Issuer::stall_secs`] before answering with the good set.
    Stall = 2,
}

/// A token issuer run by the test: its JWKS served by a thread whose answer
/// can be switched, its tokens signed here.
struct Issuer {
    url: String,
    key: TestKey,
    mode: Arc<AtomicU8>,
    stall_secs: Arc<AtomicU64>,
    hits: Arc<AtomicUsize>,
}

impl Issuer {
    fn start(mode: Mode) -> Self {
        let key = TestKey::es256(&unique("limits-issuer"));
        let mut jwk = key.public_jwk_json();
        jwk["kid"] = KID.into();
        let good = json!({ "keys": [jwk] }).to_string();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!(
            "http://127.0.0.1:{}",
            listener.local_addr().expect("addr").port()
        );
        let mode = Arc::new(AtomicU8::new(mode as u8));
        let stall_secs = Arc::new(AtomicU64::new(40));
        let hits = Arc::new(AtomicUsize::new(0));
        let (m, s, h) = (mode.clone(), stall_secs.clone(), hits.clone());
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let (m, s, h, good) = (m.clone(), s.clone(), h.clone(), good.clone());
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
                        1 => (
                            "500 Internal Server Error",
                            r#"{"error":"boom"}"#.to_owned(),
                        ),
                        2 => {
                            std::thread::sleep(Duration::from_secs(s.load(Ordering::SeqCst)));
                            ("200 OK", good)
                        }
                        _ => ("200 OK", good),
                    };
                    let head = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncache-control: max-age=60\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes());
                    let _ = stream.write_all(body.as_bytes());
                });
            }
        });
        Self {
            url,
            key,
            mode,
            stall_secs,
            hits,
        }
    }

    fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    fn trusted(issuers: &[&Issuer]) -> String {
        Value::Array(
            issuers
                .iter()
                .map(|i| {
                    json!({
                        "issuer": i.url,
                        "jwks_url": format!("{}/jwks.json", i.url),
                        "audiences": ["{EDGE}"],
                        "algorithms": ["ES256"],
                    })
                })
                .collect(),
        )
        .to_string()
    }

    /// A token for `sub` of `client_id` with `scope`, bound to `dpop_key` if given.
    fn mint(
        &self,
        edge: &Edge,
        sub: &str,
        client_id: &str,
        scope: &str,
        dpop_key: Option<&TestKey>,
    ) -> String {
        let t = now();
        let mut claims = json!({
            "iss": self.url, "aud": edge.url, "sub": sub, "client_id": client_id,
            "jti": unique("jti"), "iat": t, "nbf": t, "exp": t + 600, "scope": scope,
        });
        if let Some(k) = dpop_key {
            let jkt = k.public_jwk(None).expect("jwk").thumbprint().to_owned();
            claims["cnf"] = json!({ "jkt": jkt });
        }
        self.key.sign(
            &json!({"alg": "ES256", "typ": "at+jwt", "kid": KID}),
            &claims,
        )
    }
}

/// Origin (the harness's default issuer), upstream and an edge trusting `issuers` too.
struct Setup {
    edge: Edge,
    _upstream: Upstream,
    _origin: Origin,
}

impl Setup {
    fn start(issuers: &[&Issuer], vars: &[(&str, &str)]) -> Self {
        let origin = Origin::start();
        let upstream = Upstream::start();
        let trusted = Issuer::trusted(issuers);
        let mut all: Vec<(&str, &str)> = vec![("TRUSTED_ISSUERS", trusted.as_str())];
        all.extend_from_slice(vars);
        let edge = Edge::start_retrying(&origin, &upstream, &all);
        Self {
            edge,
            _upstream: upstream,
            _origin: origin,
        }
    }
}

fn proof(key: &TestKey, method: &str, url: &str, token: &str, nonce: Option<&str>) -> String {
    crate::harness::forge::dpop_proof(key, method, url, Some(token), nonce)
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

fn answer(resp: Response) -> Answer {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer {
        status,
        headers,
        body,
    }
}

/// `GET path` with the given headers.
fn get(edge: &Edge, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut req = http().get(format!("{}{path}", edge.url));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    answer(req.send().expect("the edge answers"))
}

fn bearer(edge: &Edge, path: &str, token: &str) -> Answer {
    get(edge, path, &[("authorization", &format!("Bearer {token}"))])
}

fn dpop(edge: &Edge, path: &str, token: &str, proof: &str) -> Answer {
    get(
        edge,
        path,
        &[("authorization", &format!("DPoP {token}")), ("dpop", proof)],
    )
}

/// Issue 17.11: the client limit was keyed by `iss|client_id` only, so one
/// user of a public app at the limit's rate refused every other user.
#[test]
fn one_user_cannot_drain_the_limit_of_every_user_of_the_client() {
    let issuer = Issuer::start(Mode::Good);
    let s = Setup::start(
        &[&issuer],
        &[
            ("RATE_LIMIT_CLIENT", "3/60"),
            ("RATE_LIMIT_CLIENT_TOTAL", "5/60"),
        ],
    );
    let alice = issuer.mint(&s.edge, "alice", "public-app", "read", None);
    let bob = issuer.mint(&s.edge, "bob", "public-app", "read", None);
    let carol = issuer.mint(&s.edge, "carol", "public-app", "read", None);
    let flood: Vec<u16> = (0..5)
        .map(|_| bearer(&s.edge, "/flood", &alice).status)
        .collect();
    assert_eq!(flood, [200, 200, 200, 429, 429], "alice reaches her limit");
    let b = bearer(&s.edge, "/flood", &bob);
    assert_eq!(b.status, 200, "bob is not refused for alice: {}", b.body);
    // The optional limit for all users of the client together (5): alice's
    // refused requests did not count towards it.
    assert_eq!(bearer(&s.edge, "/flood", &bob).status, 200);
    let c = bearer(&s.edge, "/flood", &carol);
    assert_eq!(c.status, 429, "RATE_LIMIT_CLIENT_TOTAL: {}", c.body);
    assert!(c
        .header("ratelimit-policy")
        .is_some_and(|p| p.contains("client_total")));
}

/// Issue 16.13: every IPv6 address had its own failure bucket, so a caller
/// with a /64 (2^64 addresses) was never limited.
#[test]
fn addresses_of_one_ipv6_slash_64_share_one_failure_bucket() {
    let s = Setup::start(&[], &[("RATE_LIMIT_IP", "3/60")]);
    let failed = |ip: &str| {
        get(
            &s.edge,
            "/v6",
            &[("authorization", "Bearer nope"), ("cf-connecting-ip", ip)],
        )
        .status
    };
    let same_64 = [
        "2001:db8:1:2::1",
        "2001:db8:1:2::ffff:1",
        "2001:DB8:1:2:aaaa:bbbb:cccc:dddd",
        "2001:0db8:0001:0002:0000:0000:0000:0009",
    ];
    let statuses: Vec<u16> = same_64.iter().map(|ip| failed(ip)).collect();
    assert_eq!(statuses, [401, 401, 401, 429], "one bucket per /64");
    assert_eq!(failed("2001:db8:1:3::1"), 401, "another /64 has its own");
    assert_eq!(failed("192.0.2.7"), 401, "IPv4 addresses are keyed whole");
}

/// Issue 17.13: the replay guard was written before the client limit was
/// asked, so an over-limit client still cost a Durable Object write per
/// request. Observable: a proof refused 429 must not have been recorded,
/// so once the limit allows again the same proof is accepted.
#[test]
fn an_over_limit_client_costs_no_replay_guard_write() {
    let issuer = Issuer::start(Mode::Good);
    let s = Setup::start(&[&issuer], &[("RATE_LIMIT_CLIENT", "1/3")]);
    let key = TestKey::es256(&unique("over-limit-key"));
    let token = issuer.mint(&s.edge, "carol", "app", "read", Some(&key));
    let url = format!("{}/guarded", s.edge.url);
    let first = dpop(
        &s.edge,
        "/guarded",
        &token,
        &proof(&key, "GET", &url, &token, None),
    );
    assert_eq!(first.status, 200, "{}", first.body);
    let p2 = proof(&key, "GET", &url, &token, None);
    let refused = dpop(&s.edge, "/guarded", &token, &p2);
    assert_eq!(refused.status, 429, "{}", refused.body);
    let retry: u64 = refused
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    std::thread::sleep(Duration::from_millis(retry * 1000 + 300));
    let again = dpop(&s.edge, "/guarded", &token, &p2);
    assert_eq!(
        again.status, 200,
        "the 429 must not have recorded the proof in the replay guard: {}",
        again.body
    );
}

/// Review of issue 21 (with issue 20's per-route limits): the replay guard
/// was asked during the proof's signature check whenever the caller's
/// *client* lease admitted the request, without looking at the route's own
/// limits, so a caller over a route's limit (429) still cost a replay-guard
/// write per request and its refused proof was burnt. Observable as in
/// `an_over_limit_client_costs_no_replay_guard_write`: a proof refused 429
/// by the route's limit is accepted once the route allows again.
#[test]
fn an_over_route_limit_caller_costs_no_replay_guard_write() {
    let issuer = Issuer::start(Mode::Good);
    let routes = r#"[{"prefix": "/rl", "rate_limits": [{"key": "subject", "quota": "1/3"}]}]"#;
    // A large client limit: the caller's lease admits locally after its
    // first request (the overlapped path), only the route refuses.
    let s = Setup::start(
        &[&issuer],
        &[("RATE_LIMIT_CLIENT", "1000/60"), ("ROUTES", routes)],
    );
    let key = TestKey::es256(&unique("route-limit-key"));
    let token = issuer.mint(&s.edge, "rita", "app", "read", Some(&key));
    // Grow the caller's lease (sizes 1, 2, 4) on a route without a limit of
    // its own, so the next requests are admitted from it locally.
    let warm = format!("{}/warm", s.edge.url);
    for i in 0..4 {
        let p = proof(&key, "GET", &warm, &token, None);
        let a = dpop(&s.edge, "/warm", &token, &p);
        assert_eq!(a.status, 200, "warm-up {i}: {}", a.body);
    }
    let url = format!("{}/rl", s.edge.url);
    let first = dpop(
        &s.edge,
        "/rl",
        &token,
        &proof(&key, "GET", &url, &token, None),
    );
    assert_eq!(first.status, 200, "{}", first.body);
    let p2 = proof(&key, "GET", &url, &token, None);
    let refused = dpop(&s.edge, "/rl", &token, &p2);
    assert_eq!(refused.status, 429, "{}", refused.body);
    let retry: u64 = refused
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    std::thread::sleep(Duration::from_millis(retry * 1000 + 300));
    let again = dpop(&s.edge, "/rl", &token, &p2);
    assert_eq!(
        again.status, 200,
        "the route's 429 must not have recorded the proof in the replay guard: {}",
        again.body
    );
}

/// Issue 21: the replay guard is asked while the proof's signature is
/// verified (when the caller's lease admits the request), so the guard may
/// record the `jti` of a proof whose signature then fails. A forged proof —
/// the holder's public key in its header, every claim right, signed with
/// another key, presented with the holder's (stolen) token — must be refused
/// as a bad signature, charged to the presenting address and never to the
/// holder, and must spoil none of the holder's own proofs; a replayed valid
/// proof is still refused.
#[test]
fn a_forged_proof_is_refused_and_spoils_none_of_the_holders_proofs() {
    let issuer = Issuer::start(Mode::Good);
    // Leases of up to 2 admissions (5% of 40), so some forged proofs come
    // while the holder's lease admits locally (the overlapped path); the
    // address budget is large, so every forged proof reaches the check.
    let s = Setup::start(
        &[&issuer],
        &[
            ("RATE_LIMIT_CLIENT", "40/600"),
            ("RATE_LIMIT_IP", "1000/60"),
        ],
    );
    let key = TestKey::es256(&unique("holder-key"));
    let attacker = TestKey::es256(&unique("attacker-key"));
    let token = issuer.mint(&s.edge, "ivan", "app", "read", Some(&key));
    let url = format!("{}/f", s.edge.url);
    let forged = |jti: &str| {
        let mut claims = proof_claims("GET", &url, Some(&token));
        claims["jti"] = jti.into();
        attacker.sign(&proof_header(&key), &claims)
    };
    let from_attacker = |p: &str| {
        get(
            &s.edge,
            "/f",
            &[
                ("authorization", &format!("DPoP {token}")),
                ("dpop", p),
                ("cf-connecting-ip", "203.0.113.66"),
            ],
        )
    };
    let mut used = Vec::new();
    for round in 0..4 {
        // The holder's requests (they also grow the lease).
        for _ in 0..=round {
            let p = proof(&key, "GET", &url, &token, None);
            let a = dpop(&s.edge, "/f", &token, &p);
            assert_eq!(a.status, 200, "round {round}: {}", a.body);
            used.push(p);
        }
        // Forged proofs, each with a fresh jti, refused for their signature.
        for i in 0..12 {
            let a = from_attacker(&forged(&unique("forged")));
            assert_eq!(a.status, 401, "round {round}, forged {i}: {}", a.body);
            assert_eq!(a.body["error"], "invalid_dpop_proof", "{}", a.body);
            assert!(
                a.body["error_description"]
                    .as_str()
                    .is_some_and(|d| d.contains("signature")),
                "{}",
                a.body
            );
        }
    }
    // 10 of the holder's 40 were spent, none by the 48 forged proofs: the
    // holder's next proof (a jti of its own) is accepted.
    let a = dpop(
        &s.edge,
        "/f",
        &token,
        &proof(&key, "GET", &url, &token, None),
    );
    assert_eq!(
        a.status, 200,
        "the forged proofs spoiled the holder's: {}",
        a.body
    );
    // Review of issue 21: a forged proof carrying the jti of a proof the
    // guard has already recorded (the guard answers "replayed" while the
    // signature check fails) gets the signature error, as on the sequential
    // path, never "already used".
    for p in [&used[0], &used[used.len() - 1]] {
        use base64::Engine as _;
        let payload = p.split('.').nth(1).expect("a JWS");
        let claims: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .expect("base64url"),
        )
        .expect("JSON claims");
        let jti = claims["jti"].as_str().expect("jti");
        let a = from_attacker(&forged(jti));
        assert_eq!(a.status, 401, "{}", a.body);
        assert!(
            a.body["error_description"]
                .as_str()
                .is_some_and(|d| d.contains("signature")),
            "a forged proof with a recorded jti: {}",
            a.body
        );
    }
    // Replaying a valid proof is still refused.
    let a = dpop(&s.edge, "/f", &token, &used[used.len() - 1]);
    assert_eq!(a.status, 401, "{}", a.body);
    assert!(
        a.body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("already used")),
        "{}",
        a.body
    );
}

/// Issue 17.13: refusals after authentication (403 `insufficient_scope`)
/// charged no bucket, so a client could make them without limit.
#[test]
fn insufficient_scope_refusals_are_rate_limited() {
    let issuer = Issuer::start(Mode::Good);
    let s = Setup::start(
        &[&issuer],
        &[
            ("RATE_LIMIT_CLIENT", "3/60"),
            ("ROUTES", r#"[{"prefix":"/admin","scopes":["admin"]}]"#),
        ],
    );
    let token = issuer.mint(&s.edge, "dave", "app", "read", None);
    let statuses: Vec<u16> = (0..5)
        .map(|_| bearer(&s.edge, "/admin/x", &token).status)
        .collect();
    assert_eq!(statuses, [403, 403, 403, 429, 429]);
}

/// Issue 17.14: the edge read its clock once, then waited without bound on
/// the JWKS fetch before asking the replay guard with that old instant; the
/// guard prunes by its own clock, so a proof replayed just before it expired
/// and held up by a stalled key fetch was not recognised once pruned.
#[test]
fn a_proof_replayed_behind_a_stalled_key_fetch_is_still_refused() {
    let issuer = Issuer::start(Mode::Good);
    let s = Setup::start(
        &[&issuer],
        &[
            ("DPOP_MAX_AGE_SECS", "1"),
            ("DPOP_LEEWAY_SECS", "0"),
            ("JWKS_MIN_TTL_SECS", "0"),
            ("JWKS_MAX_TTL_SECS", "0"),
            ("JWKS_REFRESH_COOLDOWN_SECS", "0"),
            ("RATE_LIMIT_CLIENT", "100000/60"),
        ],
    );
    let key = TestKey::es256(&unique("stall-key"));
    let token = issuer.mint(&s.edge, "erin", "app", "read", Some(&key));
    let url = format!("{}/replay", s.edge.url);
    // Start on a fresh second, so the proof's one-second window is whole.
    let start = now();
    while now() == start {
        std::thread::sleep(Duration::from_millis(20));
    }
    let p = proof(&key, "GET", &url, &token, None);
    let first = dpop(&s.edge, "/replay", &token, &p);
    assert_eq!(first.status, 200, "{}", first.body);
    // The key fetch of the replay stalls past the guard's pruning (the
    // proof's bound plus 5 s), then answers the good keys.
    issuer.stall_secs.store(12, Ordering::SeqCst);
    issuer.set(Mode::Stall);
    let replay = dpop(&s.edge, "/replay", &token, &p);
    assert_eq!(
        replay.status, 401,
        "the replay was accepted: {}",
        replay.body
    );
    assert_eq!(
        replay.body["error"], "invalid_dpop_proof",
        "{}",
        replay.body
    );
}

/// Issue 17.14: the JWKS fetch had no deadline, so a stalling key endpoint
/// held every request for it (and its clock reading) indefinitely.
#[test]
fn a_stalling_jwks_endpoint_is_cut_off_by_a_deadline() {
    let issuer = Issuer::start(Mode::Stall);
    let s = Setup::start(&[&issuer], &[]);
    let token = issuer.mint(&s.edge, "frank", "app", "read", None);
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(25))
        .build()
        .expect("client");
    let started = Instant::now();
    let resp = client
        .get(format!("{}/stall", s.edge.url))
        .bearer_auth(&token)
        .send()
        .expect("the edge answers before the JWKS endpoint does");
    let a = answer(resp);
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(a.status, 500, "{}", a.body);
    assert_eq!(a.body["error"], "server_error", "{}", a.body);
}

/// Issue 17.16: a `use_dpop_nonce` refusal of a verified token was charged
/// to the caller's address and the 429 carried no `DPoP-Nonce`, so
/// neighbours failing from the same address kept a valid client from ever
/// learning a nonce.
#[test]
fn neighbours_cannot_keep_a_valid_client_from_getting_a_nonce() {
    let issuer = Issuer::start(Mode::Good);
    let s = Setup::start(
        &[&issuer],
        &[
            ("DPOP_NONCE", "required"),
            (
                "DPOP_NONCE_SECRET",
                "edge-limits-nonce-secret-0123456789abcdef",
            ),
            ("RATE_LIMIT_IP", "3/60"),
            ("RATE_LIMIT_CLIENT", "2/60"),
        ],
    );
    // The neighbours use up the address's failure budget.
    let neighbours: Vec<u16> = (0..4)
        .map(|_| bearer(&s.edge, "/n", "garbage").status)
        .collect();
    assert_eq!(neighbours, [401, 401, 401, 429]);
    let key = TestKey::es256(&unique("nonce-key"));
    let token = issuer.mint(&s.edge, "grace", "app", "read", Some(&key));
    let url = format!("{}/n", s.edge.url);
    let a = dpop(
        &s.edge,
        "/n",
        &token,
        &proof(&key, "GET", &url, &token, None),
    );
    let nonce = a
        .header("dpop-nonce")
        .unwrap_or_else(|| panic!("no DPoP-Nonce ({}): {}", a.status, a.body));
    assert_eq!(a.status, 401, "{}", a.body);
    assert_eq!(a.body["error"], "use_dpop_nonce", "{}", a.body);
    let ok = dpop(
        &s.edge,
        "/n",
        &token,
        &proof(&key, "GET", &url, &token, Some(&nonce)),
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    // Her own limit (the nonce refusal counted): a 429 still tells the nonce.
    let limited = dpop(
        &s.edge,
        "/n",
        &token,
        &proof(&key, "GET", &url, &token, Some(&nonce)),
    );
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert!(
        limited.header("dpop-nonce").is_some(),
        "a 429 carries DPoP-Nonce"
    );
    // And the neighbours' 429 carries one too.
    assert!(bearer(&s.edge, "/n", "garbage")
        .header("dpop-nonce")
        .is_some());
}

/// Issue 17.16: the edge's own JWKS outage (500) was charged to the
/// caller's address as a failed attempt.
#[test]
fn a_jwks_outage_is_not_charged_to_the_callers_address() {
    let issuer = Issuer::start(Mode::Status500);
    let s = Setup::start(
        &[&issuer],
        &[
            ("RATE_LIMIT_IP", "3/60"),
            ("JWKS_REFRESH_COOLDOWN_SECS", "0"),
        ],
    );
    let token = issuer.mint(&s.edge, "heidi", "app", "read", None);
    for i in 0..6 {
        let a = bearer(&s.edge, "/k", &token);
        assert_eq!(a.status, 500, "outage request {i}: {}", a.body);
    }
    assert!(issuer.hits.load(Ordering::SeqCst) >= 1);
    let statuses: Vec<u16> = (0..4)
        .map(|_| bearer(&s.edge, "/k", "garbage").status)
        .collect();
    assert_eq!(statuses, [401, 401, 401, 429], "failures still count");
}

/// Issue 15.4: the public health endpoint showed the upstream URL, key ids,
/// limits and CORS settings to anyone.
#[test]
fn health_shows_configuration_only_to_the_admin_token() {
    let s = Setup::start(&[], &[]);
    let health = |auth: Option<&str>| -> Value {
        let mut req = http().get(format!("{}/.gatehouse/health", s.edge.url));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().expect("health");
        assert_eq!(resp.status(), 200);
        resp.json().expect("JSON")
    };
    for auth in [None, Some("Bearer wrong-token"), Some("Basic x")] {
        let h = health(auth);
        assert_eq!(h, json!({"status": "ok"}), "{auth:?}");
    }
    let h = health(Some(&format!("Bearer {HEALTH_TOKEN}")));
    assert_eq!(h["status"], "ok");
    assert!(h["config"]["upstream_url"].is_string(), "{h}");
    assert!(h["issuers"].is_array(), "{h}");
}

/// A Worker of the same zone (here: of the same `wrangler dev`) that puts
/// whatever it is told into `caches.default`, and hands every other request
/// to the edge through a service binding.
const PLANTER: &str = r#"
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/.planter/put") {
      const target = url.searchParams.get("url");
      const now = Math.floor(Date.now() / 1000);
      await caches.default.put(target, new Response(await request.text(), {
        headers: {
          "content-type": "application/json",
          "cache-control": "public, max-age=86400",
          "gatehouse-jwks-fetched": `${now}/86400`,
        },
      }));
      return new Response("planted", { status: 201 });
    }
    return env.EDGE.fetch(request);
  },
};
"#;

/// `wrangler dev` running the planter (primary, on the edge's port) and the
/// edge (reached through the planter's service binding), killed on drop.
struct TwoWorkers {
    child: std::process::Child,
    log: std::path::PathBuf,
}

impl TwoWorkers {
    fn start(edge: &mut Edge) -> Self {
        use std::os::unix::process::CommandExt;
        edge.proc.stop();
        let dir = edge.dir.path();
        std::fs::write(dir.join("planter.mjs"), PLANTER).expect("planter");
        let planter = json!({
            "name": "planter",
            "main": dir.join("planter.mjs").display().to_string(),
            "compatibility_date": "2026-04-01",
            "services": [{ "binding": "EDGE", "service": "gatehouse-edge" }],
        });
        let planter: toml::Table =
            serde_json::from_value(planter).expect("planter config is a table");
        std::fs::write(
            dir.join("planter.toml"),
            toml::to_string(&planter).expect("toml"),
        )
        .expect("write");
        let port = edge.url.rsplit(':').next().expect("port").to_owned();
        let log = dir.join("two-workers.log");
        let out = std::fs::File::create(&log).expect("log");
        let root = crate::harness::repo_root();
        let child = std::process::Command::new(root.join("node_modules/.bin/wrangler"))
            .current_dir(&root)
            .args(["dev", "--local", "--ip", "127.0.0.1"])
            .args(["--show-interactive-dev-session=false"])
            .arg("-c")
            .arg(dir.join("planter.toml"))
            .arg("-c")
            .arg(dir.join("wrangler.toml"))
            .args(["--port", &port])
            .args(["--inspector-port", &crate::harness::free_port().to_string()])
            .arg("--persist-to")
            .arg(dir.join("state"))
            .env("CI", "true")
            .env("WRANGLER_SEND_METRICS", "false")
            .env("WRANGLER_SEND_ERROR_REPORTS", "false")
            .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
            .env("WRANGLER_LOG_PATH", dir.join("wrangler-logs-2"))
            .stdin(std::process::Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .process_group(0)
            .spawn()
            .expect("wrangler dev with two workers");
        let two = Self { child, log };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(r) = http().get(format!("{}/.gatehouse/health", edge.url)).send() {
                if r.status().is_success() {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "{}", two.log());
            std::thread::sleep(Duration::from_millis(200));
        }
        two
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for TwoWorkers {
    fn drop(&mut self) {
        let pgid = format!("-{}", self.child.id());
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &pgid])
            .status();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- two workers log ----\n{}", self.log());
        }
    }
}

/// Issue 17.15: any entry in `caches.default` under the JWKS URL carrying
/// the `gatehouse-jwks-fetched` header was trusted; another Worker of the
/// zone (the caches are shared, as `wrangler dev` shows with two workers)
/// could plant its own signing keys, for a day.
#[test]
fn signing_keys_planted_in_the_shared_cache_by_another_worker_are_not_trusted() {
    let issuer = Issuer::start(Mode::Good);
    let mut s = Setup::start(
        &[&issuer],
        &[(
            "JWKS_CACHE_SECRET",
            "edge-limits-jwks-cache-secret-0123456789abcdef",
        )],
    );
    let two = TwoWorkers::start(&mut s.edge);
    let attacker = TestKey::es256(&unique("attacker"));
    let mut jwk = attacker.public_jwk_json();
    jwk["kid"] = KID.into();
    let planted = json!({ "keys": [jwk] }).to_string();
    let jwks_url = format!("{}/jwks.json", issuer.url);
    let put = http()
        .post(format!("{}/.planter/put", s.edge.url))
        .query(&[("url", jwks_url.as_str())])
        .body(planted)
        .send()
        .expect("planter");
    assert_eq!(put.status(), 201);
    let t = now();
    let forged = attacker.sign(
        &json!({"alg": "ES256", "typ": "at+jwt", "kid": KID}),
        &json!({
            "iss": issuer.url, "aud": s.edge.url, "sub": "admin", "client_id": "app",
            "jti": unique("forged"), "iat": t, "nbf": t, "exp": t + 600, "scope": "read",
        }),
    );
    let a = bearer(&s.edge, "/planted", &forged);
    assert_eq!(a.status, 401, "planted keys were trusted: {}", a.body);
    // The genuine keys still work (fetched from the issuer).
    let good = issuer.mint(&s.edge, "ivan", "app", "read", None);
    let a = bearer(&s.edge, "/planted", &good);
    assert_eq!(a.status, 200, "{}", a.body);
    // ... and were shared, sealed, under the secret's key.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !two.log().contains("\"outcome\":\"forwarded\"") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = two.log();
    assert!(log.contains("\"outcome\":\"forwarded\""), "{log}");
    assert!(!log.contains("jwks_cache_put_failed"), "{log}");
}

/// Review of 3c24e0c (branch e2): the caller's limit was charged before the
/// revocation check, so whoever holds a leaked token that was then revoked
/// could go on spending its subject's budget at the edge — every refused
/// (401 revoked) presentation was charged to the legitimate holder, who was
/// locked out (429) with a valid token, while the presenter's address was
/// never charged. A revoked token is a failed attempt: charged to the
/// address that presents it, never to its subject.
#[test]
fn a_revoked_token_cannot_drain_its_subjects_limit() {
    use crate::harness::Stack;
    let stack = Stack::start_linked(&[], &[("RATE_LIMIT_CLIENT", "20/600")]);
    let client = stack.client("read");
    let access = |stack: &Stack| {
        stack.origin.client_credentials(&client, &[])["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    };
    let leaked = access(&stack);
    let current = access(&stack);
    let resp = http()
        .post(format!("{}/revoke", stack.origin.url))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[
            ("token", leaked.as_str()),
            ("token_type_hint", "access_token"),
        ])
        .send()
        .expect("POST /revoke");
    assert_eq!(resp.status(), 200);
    let attacker = [("cf-connecting-ip", "198.51.100.66")];
    let presented = |token: &str, from: &[(&str, &str)]| {
        let mut h = vec![("authorization", format!("Bearer {token}"))];
        h.extend(from.iter().map(|(k, v)| (*k, (*v).to_owned())));
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        get(&stack.edge, "/orders/1", &h)
    };
    // Wait (slowly) until the revocation reached the edge.
    let started = Instant::now();
    loop {
        let a = presented(&leaked, &attacker);
        if a.status == 401 {
            break;
        }
        assert_eq!(a.status, 200, "{}", a.body);
        assert!(started.elapsed() < Duration::from_secs(10), "not revoked");
        std::thread::sleep(Duration::from_millis(250));
    }
    // The holder of the leaked token keeps presenting it.
    for _ in 0..25 {
        let a = presented(&leaked, &attacker);
        assert!(matches!(a.status, 401 | 429), "{} {}", a.status, a.body);
    }
    let ok = presented(&current, &[("cf-connecting-ip", "203.0.113.9")]);
    assert_eq!(
        ok.status, 200,
        "the revoked token's presentations must not use up its subject's limit: {}",
        ok.body
    );
}

/// Review of 3c24e0c (branch e2): a `use_dpop_nonce` refusal of a proof
/// signed by the token's key is charged to the token's subject, and the
/// nonce was checked before the proof's age and `ath`. So one captured
/// proof without a nonce (say, the client's first request, an hour ago)
/// stayed "the holder's nonce refusal" forever: replayed by anyone from
/// anywhere, next to any live token bound to the same key, it spent the
/// legitimate holder's limit (never the presenter's address) and locked
/// them out. A stale proof is a failed attempt, whatever its nonce.
#[test]
fn a_captured_stale_proof_cannot_drain_its_holders_limit() {
    let issuer = Issuer::start(Mode::Good);
    let s = Setup::start(
        &[&issuer],
        &[
            ("DPOP_NONCE", "required"),
            (
                "DPOP_NONCE_SECRET",
                "edge-limits-nonce-secret-0123456789abcdef",
            ),
            ("RATE_LIMIT_CLIENT", "5/600"),
        ],
    );
    let key = TestKey::es256(&unique("captured-key"));
    let url = format!("{}/c", s.edge.url);
    // The proof of an hour ago (its token long gone), captured.
    let old_token = issuer.mint(&s.edge, "heidi", "app", "read", Some(&key));
    let captured = key.sign(
        &json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk_json()}),
        &json!({
            "jti": unique("captured"), "htm": "GET", "htu": url,
            "iat": now() - 3600, "ath": ath(&old_token),
        }),
    );
    // Her current token, bound to the same key.
    let token = issuer.mint(&s.edge, "heidi", "app", "read", Some(&key));
    for _ in 0..8 {
        let a = get(
            &s.edge,
            "/c",
            &[
                ("authorization", &format!("DPoP {token}")),
                ("dpop", &captured),
                ("cf-connecting-ip", "198.51.100.77"),
            ],
        );
        assert!(matches!(a.status, 401 | 429), "{} {}", a.status, a.body);
    }
    let first = dpop(
        &s.edge,
        "/c",
        &token,
        &proof(&key, "GET", &url, &token, None),
    );
    let nonce = first
        .header("dpop-nonce")
        .unwrap_or_else(|| panic!("no DPoP-Nonce ({}): {}", first.status, first.body));
    assert_eq!(
        first.status, 401,
        "the captured proof must not have used up her limit: {}",
        first.body
    );
    let ok = dpop(
        &s.edge,
        "/c",
        &token,
        &proof(&key, "GET", &url, &token, Some(&nonce)),
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
}
