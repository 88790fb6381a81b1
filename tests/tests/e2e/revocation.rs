//! Revocation reaches the edge: the origin's pusher signs the document and
//! POSTs it to the worker's ingest route; the edge then refuses the token.

use crate::harness::{free_port, http, ClientCreds, Stack, ADMIN_TOKEN};
use serde_json::Value;
use std::time::{Duration, Instant};

/// The edge's status for `token`.
fn edge_status(stack: &Stack, token: &str) -> u16 {
    http()
        .get(format!("{}/orders/1", stack.edge.url))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .expect("edge answers")
        .status()
        .as_u16()
}

fn token(stack: &Stack, client: &ClientCreds) -> String {
    stack.origin.client_credentials(client, &[])["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

/// RFC 7009 revocation by the owning client.
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

/// Waits until the edge refuses `token`; returns how long that took.
fn until_refused(stack: &Stack, token: &str, timeout: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let s = edge_status(stack, token);
        if s == 401 {
            return started.elapsed();
        }
        assert_eq!(s, 200, "unexpected edge status");
        assert!(
            started.elapsed() < timeout,
            "the edge still accepts the revoked token after {timeout:?}; origin log:\n{}",
            stack.origin.proc.log()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn status(stack: &Stack) -> Value {
    http()
        .get(format!("{}/admin/revocations/status", stack.origin.url))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .expect("status")
        .json()
        .expect("JSON")
}

/// The pusher's status once nothing is pending. The edge refuses a token as
/// soon as its KV holds the document, which can be a moment before the
/// origin has recorded the edge's acknowledgement — so poll, briefly.
fn status_once_delivered(stack: &Stack, within: Duration) -> Value {
    let deadline = std::time::Instant::now() + within;
    loop {
        let s = status(stack);
        if s["pending"] == 0 || std::time::Instant::now() >= deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn rfc7009_client_and_sid_revocations_reach_the_edge() {
    let stack = Stack::start_linked(&[], &[]);
    let client = stack.client("read");
    let other = stack.client("read");

    // RFC 7009: that token is refused, a sibling token is not.
    let t1 = token(&stack, &client);
    let t2 = token(&stack, &client);
    assert_eq!(edge_status(&stack, &t1), 200);
    revoke_rfc7009(&stack, &client, &t1);
    until_refused(&stack, &t1, Duration::from_secs(10));
    assert_eq!(edge_status(&stack, &t2), 200);

    // A client (admin API): all its tokens issued so far are refused; another client's are not.
    let t3 = token(&stack, &client);
    let o1 = token(&stack, &other);
    admin_revoke(&stack, "client_id", &client.id);
    until_refused(&stack, &t2, Duration::from_secs(10));
    until_refused(&stack, &t3, Duration::from_secs(10));
    assert_eq!(edge_status(&stack, &o1), 200);

    // A grant (sid) via the CLI: the other process's outbox row is found by polling.
    let sid = sid_of(&o1);
    stack.origin.cli(&["revoke", "--sid", &sid]);
    until_refused(&stack, &o1, Duration::from_secs(10));

    let s = status_once_delivered(&stack, Duration::from_secs(10));
    assert_eq!(s["mode"], "edge");
    assert_eq!(s["pending"], 0, "{s}");
    assert!(s["delivered_version"].as_i64().unwrap_or(0) >= 3, "{s}");
    let cli: Value = serde_json::from_str(stack.origin.cli(&["revocations", "status"]).trim())
        .expect("status JSON");
    assert_eq!(cli["pending"], 0);
    assert_eq!(cli["delivered_version"], s["delivered_version"]);
}

pub(crate) fn sid_of(token: &str) -> String {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("payload");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("b64"),
    )
    .expect("claims");
    claims["sid"].as_str().expect("sid").to_owned()
}

#[test]
fn a_revocation_committed_before_a_crash_reaches_the_edge_after_restart() {
    // The origin first pushes to a port where nothing listens.
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let mut stack = Stack::start_linked(&[("GATEHOUSE_EDGE_URL", nowhere.as_str())], &[]);
    let client = stack.client("read");
    let t = token(&stack, &client);
    assert_eq!(edge_status(&stack, &t), 200);
    revoke_rfc7009(&stack, &client, &t);
    // Committed, not delivered: the push keeps failing.
    std::thread::sleep(Duration::from_millis(500));
    let s = status(&stack);
    assert_eq!(s["pending"], 1, "{s}");
    assert!(s["last_error"].is_string(), "{s}");
    assert_eq!(edge_status(&stack, &t), 200);

    // kill -9, then start again with the right edge URL.
    let edge_url = stack.edge.url.clone();
    stack
        .origin
        .crash_and_restart(&[("GATEHOUSE_EDGE_URL", edge_url.as_str())]);
    until_refused(&stack, &t, Duration::from_secs(15));
    let s = status_once_delivered(&stack, Duration::from_secs(10));
    assert_eq!(s["pending"], 0, "{s}");
    assert_eq!(s["last_error"], Value::Null, "{s}");
}

#[test]
fn propagation_latency_from_revoke_to_edge_refusal() {
    let stack = Stack::start_linked(&[], &[]);
    let client = stack.client("read");
    let mut samples = Vec::new();
    for _ in 0..50 {
        let t = token(&stack, &client);
        assert_eq!(edge_status(&stack, &t), 200);
        revoke_rfc7009(&stack, &client, &t);
        samples.push(until_refused(&stack, &t, Duration::from_secs(10)));
    }
    samples.sort();
    let pct = |p: usize| samples[(samples.len() * p / 100).min(samples.len() - 1)];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "revocation propagation (revoke returned → edge refuses), n={}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        samples.len(),
        ms(pct(50)),
        ms(pct(99)),
        ms(samples[samples.len() - 1])
    );
}
