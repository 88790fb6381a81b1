//! The revocation KV made unusable under `wrangler dev`, three real ways:
//! garbage in the key the edge reads (`revocations/<iss>`), a value larger
//! than any document may be (9 MiB), and no `REVOCATIONS` binding at all.
//! Documented behaviour (edge/README.md, "Revocations" and "Fail-open /
//! fail-closed choices"):
//!
//! - `REVOCATION_FAIL=closed` (default): 503 with the JSON error body
//!   `{"error": "server_error", "error_description": …}` (RFC 6749 §5.2 /
//!   RFC 6750 §3 shape; no `WWW-Authenticate` challenge, as the token is not
//!   at fault) for every token — a revoked one is never let through;
//! - `REVOCATION_FAIL=open`: decide with the list the isolate already holds
//!   (a token revoked before stays refused), or accept when it holds none;
//! - once KV holds a good document again, the edge decides normally.

use crate::harness::{http, ClientCreds, Edge, Origin, Stack, Upstream};
use serde_json::Value;
use std::process::Stdio;
use std::time::{Duration, Instant};

const VARS: [(&str, &str); 3] = [
    ("RATE_LIMIT_IP", "1000000/60"),
    ("RATE_LIMIT_CLIENT", "1000000/60"),
    ("REVOCATION_TTL_SECS", "1"),
];

struct Answer {
    status: u16,
    challenge: Option<String>,
    content_type: Option<String>,
    body: Value,
}

fn call(edge: &Edge, token: &str) -> Answer {
    let r = http()
        .get(format!("{}/kv/probe", edge.url))
        .bearer_auth(token)
        .send()
        .expect("edge answers");
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    Answer {
        status: r.status().as_u16(),
        challenge: header("www-authenticate"),
        content_type: header("content-type"),
        body: r.json().unwrap_or(Value::Null),
    }
}

/// Polls until `token` is answered `status` (generous: the isolate re-reads
/// KV after `REVOCATION_TTL_SECS`, and the machine may be loaded).
fn until_status(edge: &Edge, token: &str, status: u16, what: &str) -> Answer {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let a = call(edge, token);
        if a.status == status {
            return a;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: still {} {} instead of {status}",
            a.status,
            a.body
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The documented fail-closed answer.
fn assert_fail_closed_shape(a: &Answer, what: &str) {
    assert_eq!(a.status, 503, "{what}: {}", a.body);
    assert_eq!(a.body["error"], "server_error", "{what}: {}", a.body);
    let description = a.body["error_description"].as_str().unwrap_or_default();
    assert!(
        description.contains("revocation"),
        "{what}: the description names the cause: {}",
        a.body
    );
    assert!(
        a.content_type
            .as_deref()
            .is_some_and(|c| c.starts_with("application/json")),
        "{what}: {:?}",
        a.content_type
    );
    assert_eq!(
        a.challenge, None,
        "{what}: no challenge — the token is not at fault"
    );
}

fn token(origin: &Origin, client: &ClientCreds) -> String {
    origin.client_credentials(client, &[])["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

fn revoke(origin: &Origin, client: &ClientCreds, token: &str) {
    let r = http()
        .post(format!("{}/revoke", origin.url))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[("token", token)])
        .send()
        .expect("revoke");
    assert_eq!(r.status(), 200);
}

/// Writes the file `path` as the value of `key` in the edge's local KV
/// (values too large for a command-line argument).
fn kv_put_file(edge: &Edge, key: &str, path: &std::path::Path) {
    let status = edge
        .wrangler_kv(&["key", "put", "--binding", "REVOCATIONS", "--local", key])
        .arg("--path")
        .arg(path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("wrangler kv key put --path");
    assert!(status.success(), "wrangler kv key put --path {key} failed");
}

/// How often the edge has logged that it could not take the KV document.
fn failed_reads(edge: &Edge) -> usize {
    let log = edge.proc.log();
    log.matches("revocations_not_taken").count() + log.matches("revocations_read_failed").count()
}

/// Waits until the edge has re-read KV and failed at least once more than `before`.
fn until_failed_read(edge: &Edge, token: &str, before: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while failed_reads(edge) <= before {
        assert!(
            Instant::now() < deadline,
            "the edge never logged a failed revocation read:\n{}",
            edge.proc.log()
        );
        let _ = call(edge, token);
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn unreadable_revocation_kv_fails_closed_then_recovers() {
    let stack = Stack::start_linked(&[], &VARS);
    let (origin, edge) = (&stack.origin, &stack.edge);
    let client = stack.client("read");
    let good = token(origin, &client);
    let revoked = token(origin, &client);
    revoke(origin, &client, &revoked);
    until_status(edge, &revoked, 401, "revoked before the fault");
    assert_eq!(call(edge, &good).status, 200);
    let key = format!("revocations/{}", origin.url);
    let huge = edge.dir.path().join("huge-value");
    std::fs::write(&huge, "a".repeat(9 * 1024 * 1024)).expect("write the huge value");

    let faults: [(&str, &dyn Fn()); 3] = [
        ("garbage", &|| {
            edge.kv_put("REVOCATIONS", &key, "this is not a revocation document")
        }),
        ("a three-part value that is no JWS", &|| {
            edge.kv_put("REVOCATIONS", &key, "eyJ.e30.AAAA")
        }),
        ("9 MiB", &|| kv_put_file(edge, &key, &huge)),
    ];
    for (round, (what, corrupt)) in faults.iter().enumerate() {
        corrupt();
        // Fail closed: every token is refused with 503, the revoked one included.
        let a = until_status(edge, &good, 503, what);
        assert_fail_closed_shape(&a, what);
        assert_fail_closed_shape(&call(edge, &revoked), what);
        // The origin's next push (any new revocation) repairs KV.
        let extra = token(origin, &client);
        revoke(origin, &client, &extra);
        until_status(edge, &good, 200, &format!("{what}: after repair"));
        assert_eq!(call(edge, &revoked).status, 401, "{what}: after repair");
        assert_eq!(call(edge, &extra).status, 401, "{what}: after repair");
        eprintln!("kv unreadable ({what}, round {round}): 503 server_error, then recovered");
    }
}

#[test]
fn unreadable_revocation_kv_with_fail_open_keeps_the_held_list() {
    let open: Vec<(&str, &str)> = VARS
        .iter()
        .copied()
        .chain([("REVOCATION_FAIL", "open")])
        .collect();
    let stack = Stack::start_linked(&[], &open);
    let (origin, edge) = (&stack.origin, &stack.edge);
    let client = stack.client("read");
    let good = token(origin, &client);
    let revoked = token(origin, &client);
    revoke(origin, &client, &revoked);
    until_status(edge, &revoked, 401, "revoked before the fault");

    let before = failed_reads(edge);
    edge.kv_put(
        "REVOCATIONS",
        &format!("revocations/{}", origin.url),
        "garbage",
    );
    until_failed_read(edge, &good, before);
    // The isolate decides with the list it holds: the revoked token stays
    // refused, the good one passes.
    for _ in 0..5 {
        assert_eq!(
            call(edge, &revoked).status,
            401,
            "fail-open let a revoked token through"
        );
        assert_eq!(call(edge, &good).status, 200);
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn a_missing_revocations_binding_fails_closed_or_open_as_configured() {
    let origin = Origin::start();
    let upstream = Upstream::start();
    let no_kv = |cfg: &mut toml::Table| {
        assert!(
            cfg.remove("kv_namespaces").is_some(),
            "wrangler.toml binds KV"
        );
    };
    let closed = Edge::start_edited(
        crate::harness::free_port(),
        &origin,
        &upstream,
        &VARS,
        &no_kv,
    );
    let client = origin.create_client("kv", "read", &closed.url, &[]);
    let t = token(&origin, &client);
    assert_fail_closed_shape(&call(&closed, &t), "no binding, closed");
    // The cause is logged (wrangler may write the line a moment after the answer).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !closed
        .proc
        .log()
        .contains("the REVOCATIONS binding is missing")
    {
        assert!(
            Instant::now() < deadline,
            "the cause is not logged:\n{}",
            closed.proc.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(closed);

    let open: Vec<(&str, &str)> = VARS
        .iter()
        .copied()
        .chain([("REVOCATION_FAIL", "open")])
        .collect();
    let open_edge = Edge::start_edited(
        crate::harness::free_port(),
        &origin,
        &upstream,
        &open,
        &no_kv,
    );
    let client = origin.create_client("kv-open", "read", &open_edge.url, &[]);
    let t = token(&origin, &client);
    // Open with no list held: decided without revocations.
    assert_eq!(call(&open_edge, &t).status, 200);
}

/// Regression: a revocation outage (503) was charged to the caller's
/// address as a failed attempt, so a valid caller got 429 after
/// `RATE_LIMIT_IP` requests instead of the documented 503, and everyone
/// behind that address lost their brute-force budget.
#[test]
fn a_revocation_outage_is_not_charged_to_the_callers_address() {
    let stack = Stack::start_linked(
        &[],
        &[
            ("RATE_LIMIT_IP", "3/60"),
            ("RATE_LIMIT_CLIENT", "1000000/60"),
            ("REVOCATION_TTL_SECS", "1"),
        ],
    );
    let (origin, edge) = (&stack.origin, &stack.edge);
    let client = stack.client("read");
    let good = token(origin, &client);
    assert_eq!(call(edge, &good).status, 200);
    edge.kv_put(
        "REVOCATIONS",
        &format!("revocations/{}", origin.url),
        "garbage",
    );
    until_status(edge, &good, 503, "garbage in KV");
    for i in 0..10 {
        assert_fail_closed_shape(&call(edge, &good), &format!("outage request {i}"));
    }
    // Failed attempts are still charged: three unauthenticated requests
    // are refused 401, the fourth hits the address's limit.
    let unauthenticated: Vec<u16> = (0..4)
        .map(|_| {
            http()
                .get(format!("{}/kv/probe", edge.url))
                .send()
                .expect("edge answers")
                .status()
                .as_u16()
        })
        .collect();
    assert_eq!(unauthenticated, [401, 401, 401, 429]);
}
