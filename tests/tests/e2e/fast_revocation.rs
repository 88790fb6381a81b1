//! The fast revocation path (issue 21.4) through the real binaries: the
//! ingest store writes every pushed document to the regional
//! `RevocationReplica` objects (all local under `wrangler dev`), and each
//! isolate reads its replica at most every `REVOCATION_REFRESH_SECS`.
//!
//! Every edge here runs with `REVOCATION_ADOPT_ON_INGEST=false`, so the
//! isolate that took a push does not use it directly (in production the
//! push lands in one isolate of thousands); where the test is about speed
//! the KV TTL is an hour, so only the replica can explain a refusal within
//! seconds — and the control without replicas shows it.

use crate::harness::{http, now, ClientCreds, Edge, Origin, Stack, Upstream, ADMIN_TOKEN};
use crate::revocation_attacks::{edge_status, ingest, Issuer};
use serde_json::Value;
use std::time::{Duration, Instant};

/// `REVOCATION_REFRESH_SECS` in these tests (the default).
const N: u64 = 2;

fn fast_vars(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut v = vec![
        ("REVOCATION_REFRESH_SECS", "2"),
        ("REVOCATION_ADOPT_ON_INGEST", "false"),
        ("RATE_LIMIT_IP", "1000000/60"),
        ("RATE_LIMIT_CLIENT", "1000000/60"),
    ];
    v.extend_from_slice(extra);
    v
}

fn token(stack: &Stack, client: &ClientCreds) -> String {
    stack.origin.client_credentials(client, &[])["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

fn revoke_rfc7009(stack: &Stack, client: &ClientCreds, token: &str) {
    let resp = http()
        .post(format!("{}/revoke", stack.origin.url))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[("token", token), ("token_type_hint", "access_token")])
        .send()
        .expect("POST /revoke");
    assert_eq!(resp.status(), 200);
}

fn admin_revoke(stack: &Stack, kind: &str, value: &str) {
    let resp = http()
        .post(format!("{}/admin/revocations", stack.origin.url))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({"kind": kind, "value": value}))
        .send()
        .expect("POST /admin/revocations");
    assert_eq!(resp.status(), 201);
}

/// Polls the edge until it refuses `token` (401); `None` when it still
/// accepts it after `limit`. Any other status fails the test.
fn refused_within(edge: &Edge, token: &str, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    loop {
        let s = edge_status(edge, token);
        if s == 401 {
            return Some(started.elapsed());
        }
        assert_eq!(s, 200, "unexpected edge status");
        if started.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The edge's health details for its one issuer's revocations.
fn revocations(edge: &Edge, iss: &str) -> Value {
    let h = edge.health().expect("health details");
    h["issuers"]
        .as_array()
        .expect("issuers")
        .iter()
        .find(|i| i["issuer"] == iss)
        .expect("the issuer")["revocations"]
        .clone()
}

fn counter(r: &Value, name: &str) -> u64 {
    r["replica"][name].as_u64().unwrap_or_default()
}

/// The e2e proof: revocations through the origin (RFC 7009, then the admin
/// API) are refused within N + 1 s while the KV TTL is an hour.
#[test]
fn a_revocation_is_refused_within_n_plus_one_seconds_through_the_replicas() {
    let stack = Stack::start_linked(&[], &fast_vars(&[("REVOCATION_TTL_SECS", "3600")]));
    let client = stack.client("read");
    let limit = Duration::from_secs(N + 1);

    let t1 = token(&stack, &client);
    let t2 = token(&stack, &client);
    assert_eq!(edge_status(&stack.edge, &t1), 200);
    assert_eq!(edge_status(&stack.edge, &t2), 200);
    revoke_rfc7009(&stack, &client, &t1);
    let took = refused_within(&stack.edge, &t1, limit)
        .unwrap_or_else(|| panic!("RFC 7009 revocation not refused within {limit:?}"));
    println!("fast path: RFC 7009 revocation refused after {took:?}");
    assert_eq!(edge_status(&stack.edge, &t2), 200, "a sibling token stays");

    admin_revoke(&stack, "client_id", &client.id);
    let took = refused_within(&stack.edge, &t2, limit)
        .unwrap_or_else(|| panic!("admin revocation not refused within {limit:?}"));
    println!("fast path: admin revocation refused after {took:?}");

    let r = revocations(&stack.edge, &stack.origin.url);
    assert!(counter(&r, "taken") >= 2, "the replica brought both: {r}");
    assert!(r["replica"]["region"].is_string(), "{r}");
}

/// The control: the same setup without replicas (`REVOCATION_REPLICAS=off`)
/// does not refuse the revoked token for seconds — the hour-long KV TTL
/// holds it, so the test above measured the replicas, not KV.
#[test]
fn without_replicas_the_same_setup_waits_for_kv() {
    let stack = Stack::start_linked(
        &[],
        &fast_vars(&[
            ("REVOCATION_TTL_SECS", "3600"),
            ("REVOCATION_REPLICAS", "off"),
        ]),
    );
    let client = stack.client("read");
    let t = token(&stack, &client);
    assert_eq!(edge_status(&stack.edge, &t), 200);
    revoke_rfc7009(&stack, &client, &t);
    // Delivered to the edge (KV and the store hold it)...
    let deadline = Instant::now() + Duration::from_secs(10);
    while stack
        .edge
        .kv_get("REVOCATIONS", &format!("revocations/{}", stack.origin.url))
        .is_none()
    {
        assert!(Instant::now() < deadline, "the push never reached KV");
        std::thread::sleep(Duration::from_millis(100));
    }
    // ...yet not used by the isolate within N + 3 s.
    assert_eq!(
        refused_within(&stack.edge, &t, Duration::from_secs(N + 3)),
        None,
        "refused without replicas: something other than the fast path carried it"
    );
    let r = revocations(&stack.edge, &stack.origin.url);
    assert_eq!(counter(&r, "reads"), 0, "{r}");
}

fn issuer_edge(
    issuer: &Issuer,
    extra: &[(&'static str, &'static str)],
) -> (Origin, Upstream, Edge) {
    let origin = Origin::start();
    let upstream = Upstream::start();
    let trusted = issuer.trusted_issuers_var();
    let mut vars: Vec<(&str, &str)> = vec![("TRUSTED_ISSUERS", trusted.as_str())];
    vars.extend(fast_vars(extra));
    let edge = Edge::start_retrying(&origin, &upstream, &vars);
    (origin, upstream, edge)
}

/// A replica left behind (here: the origin wrote a newer document straight
/// into KV, as in its Cloudflare-KV push mode) serves an older genuine
/// document. The isolate, which holds the newer one from KV, refuses it as
/// a rollback: its version never goes down and the victim stays revoked;
/// and it does not download that document again.
#[test]
fn a_stale_replica_cannot_roll_the_list_back() {
    let issuer = Issuer::start();
    // Replica reads every 10 s: the first one (empty replica) happens with
    // the first request, the next one only once KV's newer list is held.
    let (_origin, _upstream, edge) = issuer_edge(
        &issuer,
        &[
            ("REVOCATION_TTL_SECS", "1"),
            ("REVOCATION_REFRESH_SECS", "10"),
        ],
    );
    let started = Instant::now();
    let victim = issuer.token(&edge.url, "victim");
    assert_eq!(edge_status(&edge, &victim), 200);
    // Version 1 (not revoking the victim) through the ingest route: the
    // replicas hold it.
    assert_eq!(ingest(&edge, &issuer.document(1, now(), &["early"])), 204);
    // Version 3, revoking the victim, straight into KV (replicas not fed).
    edge.kv_put(
        "REVOCATIONS",
        &format!("revocations/{}", issuer.url),
        &issuer.document(3, now(), &["early", "victim"]),
    );
    assert!(
        refused_within(&edge, &victim, Duration::from_secs(15)).is_some(),
        "KV's version 3 never took effect"
    );
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "the machine is too slow for this test's timing ({:?})",
        started.elapsed()
    );
    // Now the replica read falls due and serves version 1.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert_eq!(edge_status(&edge, &victim), 401, "the list was rolled back");
        let r = revocations(&edge, &issuer.url);
        assert_eq!(r["version"], 3, "the version went down: {r}");
        if counter(&r, "refused") >= 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stale replica was never read: {r}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Later reads are answered 304 (the isolate sends the version it
    // refused): nothing downloaded or refused again.
    std::thread::sleep(Duration::from_secs(11));
    assert_eq!(edge_status(&edge, &victim), 401);
    let r = revocations(&edge, &issuer.url);
    assert_eq!(r["version"], 3, "{r}");
    assert!(counter(&r, "reads") >= 3, "{r}");
    assert_eq!(counter(&r, "refused"), 1, "downloaded again: {r}");
    assert_eq!(counter(&r, "taken"), 0, "{r}");
}

/// No replica binding at all (every replica read and write fails): the
/// ingest still answers 204 (KV written; the store's alarm keeps retrying
/// the replicas), every request is decided with KV's list (no 503), and the
/// revocation arrives through KV.
#[test]
fn an_unreachable_replica_falls_back_to_kv() {
    let issuer = Issuer::start();
    let origin = Origin::start();
    let upstream = Upstream::start();
    let trusted = issuer.trusted_issuers_var();
    let mut vars: Vec<(&str, &str)> = vec![("TRUSTED_ISSUERS", trusted.as_str())];
    vars.extend(fast_vars(&[("REVOCATION_TTL_SECS", "1")]));
    let unbind = |cfg: &mut toml::Table| {
        let dobs = cfg
            .get_mut("durable_objects")
            .and_then(|d| d.get_mut("bindings"))
            .and_then(|b| b.as_array_mut())
            .expect("durable object bindings");
        dobs.retain(|b| b["name"].as_str() != Some("REVOCATION_REPLICA"));
    };
    let edge = Edge::start_edited(
        crate::harness::free_port(),
        &origin,
        &upstream,
        &vars,
        &unbind,
    );
    let victim = issuer.token(&edge.url, "victim");
    assert_eq!(edge_status(&edge, &victim), 200);
    assert_eq!(
        ingest(&edge, &issuer.document(1, now(), &["victim"])),
        204,
        "the ingest must not depend on the replicas"
    );
    assert!(
        refused_within(&edge, &victim, Duration::from_secs(10)).is_some(),
        "KV did not carry the revocation"
    );
    let r = revocations(&edge, &issuer.url);
    assert_eq!(r["version"], 1, "{r}");
    assert!(counter(&r, "failed") >= 1, "the replica was not tried: {r}");
    assert_eq!(counter(&r, "taken"), 0, "{r}");
}

/// A flood of requests from many connections causes at most one replica
/// read per N seconds in the isolate (single flight, counted by the
/// isolate and shown in the health details).
#[test]
fn a_flood_reads_the_replica_at_most_once_per_period() {
    let issuer = Issuer::start();
    let (_origin, _upstream, edge) = issuer_edge(&issuer, &[("REVOCATION_TTL_SECS", "3600")]);
    let token = issuer.token(&edge.url, "flooder");
    assert_eq!(edge_status(&edge, &token), 200);
    let before = counter(&revocations(&edge, &issuer.url), "reads");
    let started = Instant::now();
    let span = Duration::from_secs(6);
    let served: usize = std::thread::scope(|s| {
        let workers: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    let mut n = 0;
                    while started.elapsed() < span {
                        assert_eq!(edge_status(&edge, &token), 200);
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("worker")).sum()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let reads = counter(&revocations(&edge, &issuer.url), "reads") - before;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let most = (elapsed / N as f64).ceil() as u64 + 1;
    println!("flood: {served} requests in {elapsed:.1} s, {reads} replica reads (at most {most})");
    assert!(
        served >= 100,
        "too few requests to call it a flood: {served}"
    );
    assert!(reads >= 1, "the replica was never read");
    assert!(
        reads <= most,
        "{reads} replica reads in {elapsed:.1} s (at most {most})"
    );
}

/// A JWKS the test can change while the edge runs (served like
/// `harness::serve_jwks`, with the current body on every request).
fn serve_mutable_jwks(body: std::sync::Arc<std::sync::Mutex<String>>) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "http://127.0.0.1:{}",
        listener.local_addr().expect("addr").port()
    );
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let now = body.lock().map(|b| b.clone()).unwrap_or_default();
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncache-control: max-age=0\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
                now.len(),
                now
            );
            let _ = stream.write_all(resp.as_bytes());
        }
    });
    url
}

/// A replica serving a document whose signature the isolate can no longer
/// verify: an attacker with a leaked key `k2` pushed a genuine-looking
/// version 2 un-revoking the victim (taken by the ingest and fanned out),
/// and the operator retired `k2` from the JWKS before this isolate's next
/// replica read. The isolate refuses the document (unknown key after a
/// JWKS refetch): the victim stays revoked, the version stays 1, and the
/// refusal is counted.
#[test]
fn a_replica_document_that_no_longer_verifies_is_refused() {
    use gatehouse_common::revocation::{
        RevocationDocument, RevocationEntry, RevocationKind, REVOCATIONS_TYP,
    };
    use gatehouse_common::testkit::signer::TestKey;
    use serde_json::json;
    use std::sync::{Arc, Mutex};

    let k1 = TestKey::es256("gatehouse-e2e-fast-revocation-k1");
    let k2 = TestKey::es256("gatehouse-e2e-fast-revocation-k2");
    let jwk = |k: &TestKey, kid: &str| {
        let mut j = k.public_jwk_json();
        j["kid"] = kid.into();
        j["alg"] = "ES256".into();
        j
    };
    let jwks = Arc::new(Mutex::new(
        json!({ "keys": [jwk(&k1, "k1"), jwk(&k2, "k2")] }).to_string(),
    ));
    let iss = serve_mutable_jwks(Arc::clone(&jwks));
    let trusted = json!([{
        "issuer": iss,
        "jwks_url": format!("{iss}/jwks.json"),
        "audiences": ["{EDGE}"],
        "algorithms": ["ES256"],
    }])
    .to_string();
    let origin = Origin::start();
    let upstream = Upstream::start();
    let mut vars: Vec<(&str, &str)> = vec![("TRUSTED_ISSUERS", trusted.as_str())];
    vars.extend(fast_vars(&[
        ("REVOCATION_TTL_SECS", "3600"),
        ("REVOCATION_REFRESH_SECS", "3"),
        ("JWKS_MIN_TTL_SECS", "0"),
        ("JWKS_MAX_TTL_SECS", "1"),
        ("JWKS_REFRESH_COOLDOWN_SECS", "0"),
    ]));
    let edge = Edge::start_retrying(&origin, &upstream, &vars);
    let document = |key: &TestKey, kid: &str, version: u64, subs: &[&str]| {
        let doc = RevocationDocument {
            iss: iss.clone(),
            iat: now(),
            version,
            entries: subs
                .iter()
                .map(|s| RevocationEntry {
                    kind: RevocationKind::Sub,
                    value: (*s).to_owned(),
                    revoked_at: now(),
                    until: now() + 3600,
                })
                .collect(),
        };
        key.sign(
            &json!({"alg": "ES256", "typ": REVOCATIONS_TYP, "kid": kid}),
            &doc.to_claims(),
        )
    };
    let t = now();
    let victim = k1.sign(
        &json!({"alg": "ES256", "typ": "at+jwt", "kid": "k1"}),
        &json!({
            "iss": iss, "aud": edge.url, "sub": "victim", "client_id": "c",
            "jti": format!("victim-{t}"), "iat": t - 5, "nbf": t - 5, "exp": t + 300,
            "scope": "read",
        }),
    );
    assert_eq!(edge_status(&edge, &victim), 200);
    // Version 1 (k1) revokes the victim; it arrives through the replica.
    assert_eq!(ingest(&edge, &document(&k1, "k1", 1, &["victim"])), 204);
    assert!(
        refused_within(&edge, &victim, Duration::from_secs(3 + 2)).is_some(),
        "version 1 never arrived through the replica"
    );
    // The leaked k2 signs version 2 without the victim; then k2 is retired.
    assert_eq!(ingest(&edge, &document(&k2, "k2", 2, &[])), 204);
    *jwks.lock().expect("jwks") = json!({ "keys": [jwk(&k1, "k1")] }).to_string();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        assert_eq!(
            edge_status(&edge, &victim),
            401,
            "a document signed by a retired key un-revoked the victim"
        );
        let r = revocations(&edge, &iss);
        assert_eq!(r["version"], 1, "{r}");
        if counter(&r, "refused") >= 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the replica's version 2 was never read: {r}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
