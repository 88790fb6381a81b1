//! Operability at the edge (issue 22, items 1 and 2), through `wrangler
//! dev`: request ids and W3C `traceparent` accepted, refused or created,
//! forwarded upstream and echoed on every answer (header, refusal body, log
//! line); and one Workers Analytics Engine data point per request, read
//! back from a stand-in dataset bound beside the edge
//! (tests/fixtures/metrics-stub). Then issue 22's "done when": a refused
//! request followed from the edge's log line to the origin's audit row and
//! metrics, and a revocation followed from the admin call through the
//! pusher's metrics and log to the edge's ingest line and data points
//! (docs/operations.md §7.5 walks the same signals).

use crate::harness::{free_port, http, Edge, Origin, Stack, Upstream, ADMIN_TOKEN};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";
const ROUTES: &str = r#"[{"prefix":"/pub","public":true}]"#;

/// Whether `id` is a request id the edge could have made or accepted.
fn well_formed(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._:-".contains(&c))
}

fn is_trace_id(id: &str) -> bool {
    id.len() == 32
        && id.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
        && id.bytes().any(|c| c != b'0')
}

/// The parts of a `traceparent` the upstream received: (trace-id, span-id, flags).
fn traceparent_parts(tp: &str) -> (String, String, String) {
    let parts: Vec<&str> = tp.split('-').collect();
    assert_eq!(parts.len(), 4, "{tp}");
    assert_eq!(parts[0], "00", "{tp}");
    assert!(is_trace_id(parts[1]), "{tp}");
    assert!(
        parts[2].len() == 16 && parts[2].bytes().all(|c| c.is_ascii_hexdigit()),
        "{tp}"
    );
    assert_ne!(parts[2], "0000000000000000", "{tp}");
    (parts[1].into(), parts[2].into(), parts[3].into())
}

/// One answer read off a raw connection: status, headers (lower-cased
/// names), body.
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Raw {
    fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Sends `GET path` with `head` written as is (CRLF-separated header lines,
/// duplicates and odd bytes included), `connection: close`, and reads the
/// whole answer (the edge's answers and the echo are small, with a length).
fn raw_get(base: &str, path: &str, head: &[u8]) -> Raw {
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req =
        format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n").into_bytes();
    req.extend_from_slice(head);
    req.extend_from_slice(b"\r\n");
    s.write_all(&req).unwrap();
    // Read until the answer is whole (workerd may keep the connection open).
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let split = loop {
        let n = s.read(&mut chunk).unwrap_or(0);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(split) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..split]).to_ascii_lowercase();
            let length = head
                .split("\r\n")
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim() == "content-length")
                .and_then(|(_, v)| v.trim().parse::<usize>().ok());
            let body = &buf[split + 4..];
            let whole = match length {
                Some(len) => body.len() >= len,
                None => head.contains("chunked") && body.ends_with(b"0\r\n\r\n"),
            };
            if whole || n == 0 {
                break split;
            }
        } else if n == 0 {
            break buf.len();
        }
    };
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut rest = buf.get(split + 4..).unwrap_or_default().to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        rest = dechunk(&rest);
    }
    let body = serde_json::from_slice(&rest)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&rest).into_owned()));
    Raw {
        status,
        headers,
        body,
    }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = body.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&body[..end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 || body.len() < end + 2 + size {
            break;
        }
        out.extend_from_slice(&body[end + 2..end + 2 + size]);
        body = &body[(end + 4 + size).min(body.len())..];
    }
    out
}

/// Polls `find` until it has an answer (the edge writes its log line and
/// data point while the answer is sent); fails naming `what`.
fn poll(edge: &Edge, what: &str, find: impl Fn() -> Option<Value>) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(found) = find() {
            return found;
        }
        assert!(Instant::now() < deadline, "no {what}:\n{}", edge.proc.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The request line the edge logged for `request_id`.
fn logged(edge: &Edge, request_id: &str) -> Value {
    poll(
        edge,
        &format!("request line with request_id {request_id}"),
        || {
            edge.request_lines()
                .into_iter()
                .find(|l| l["request_id"] == request_id)
        },
    )
}

/// The data point written for `request_id` (blob6).
fn point(edge: &Edge, request_id: &str) -> Value {
    poll(
        edge,
        &format!("data point for request {request_id}"),
        || {
            edge.data_points()
                .into_iter()
                .find(|p| p["blobs"][5] == request_id)
        },
    )
}

/// Attack tests of the header parsing first: odd, huge, duplicate and
/// encoded `Gatehouse-Request-Id` and `traceparent` values are ignored (a
/// new id is made), never echoed, logged or forwarded; valid ones are
/// carried through.
#[test]
fn request_ids_are_accepted_created_and_forwarded() {
    let stack = Stack::start_with_edge_vars(&[("ROUTES", ROUTES)]);
    let edge = &stack.edge.url;

    // Refused inbound ids: each answer (public, forwarded to the echo) has
    // a fresh, well-formed id that is its trace-id, and the upstream got
    // that id, never the caller's.
    let long = "a".repeat(65);
    let huge = "b".repeat(6000);
    let bad_ids: Vec<(&str, Vec<u8>)> = vec![
        (
            "too long",
            format!("gatehouse-request-id: {long}\r\n").into_bytes(),
        ),
        (
            "huge",
            format!("gatehouse-request-id: {huge}\r\n").into_bytes(),
        ),
        ("space", b"gatehouse-request-id: a b\r\n".to_vec()),
        ("quote", b"gatehouse-request-id: a\"b\r\n".to_vec()),
        (
            "json",
            b"gatehouse-request-id: {\"event\":\"x\"}\r\n".to_vec(),
        ),
        ("slash", b"gatehouse-request-id: a/b\r\n".to_vec()),
        (
            "encoded CRLF",
            b"gatehouse-request-id: a%0D%0Ab\r\n".to_vec(),
        ),
        (
            "raw UTF-8",
            "gatehouse-request-id: r\u{e9}q\r\n".as_bytes().to_vec(),
        ),
        ("latin-1 byte", b"gatehouse-request-id: r\xe9q\r\n".to_vec()),
        ("tab", b"gatehouse-request-id: a\tb\r\n".to_vec()),
        (
            "duplicate",
            b"gatehouse-request-id: one\r\ngatehouse-request-id: two\r\n".to_vec(),
        ),
        (
            "obs-fold",
            b"gatehouse-request-id: fold\r\n continued\r\n".to_vec(),
        ),
        ("empty", b"gatehouse-request-id: \r\n".to_vec()),
    ];
    for (what, head) in &bad_ids {
        let a = raw_get(edge, "/pub/x", head);
        if a.status == 400 && a.header("gatehouse-request-id").is_empty() {
            // workerd refused the request itself (e.g. obs-fold): it never
            // reached the edge's code, so nothing was accepted either.
            continue;
        }
        assert_eq!(a.status, 200, "{what}: {}", a.body);
        let ids = a.header("gatehouse-request-id");
        assert_eq!(ids.len(), 1, "{what}: {:?}", a.headers);
        let id = ids[0];
        assert!(is_trace_id(id), "{what}: the edge kept {id:?}");
        let seen = &a.body["headers"];
        assert_eq!(seen["gatehouse-request-id"], id, "{what}: {seen}");
        let (trace, _, flags) = traceparent_parts(seen["traceparent"].as_str().unwrap());
        assert_eq!((trace.as_str(), flags.as_str()), (id, "00"), "{what}");
        // Logged with the new id (and only as one JSON line: the log parses).
        assert_eq!(logged(&stack.edge, id)["trace_id"], id, "{what}");
    }

    // Accepted ids pass through unchanged.
    for good in ["R1", "req-1.2_3:4", &"x".repeat(64), "0"] {
        let a = raw_get(
            edge,
            "/pub/x",
            format!("Gatehouse-Request-Id: {good}\r\n").as_bytes(),
        );
        assert_eq!(a.status, 200, "{good}: {}", a.body);
        assert_eq!(a.header("gatehouse-request-id"), vec![good]);
        assert_eq!(a.body["headers"]["gatehouse-request-id"], good);
        assert!(
            a.body["identity"].get("gatehouse-request-id").is_none(),
            "{}",
            a.body
        );
    }

    // A valid traceparent: the upstream continues the trace through a span
    // of the edge's (same trace-id, another span-id, the flags kept), the
    // caller's tracestate goes along, and the id defaults to the trace-id.
    let tp = format!("00-{TRACE}-{PARENT}-01");
    let a = raw_get(
        edge,
        "/pub/x",
        format!("traceparent: {tp}\r\ntracestate: vendor=1\r\n").as_bytes(),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let (trace, span, flags) =
        traceparent_parts(a.body["headers"]["traceparent"].as_str().unwrap());
    assert_eq!(trace, TRACE);
    assert_ne!(span, PARENT);
    assert_eq!(flags, "01");
    assert_eq!(a.body["headers"]["tracestate"], "vendor=1");
    assert_eq!(a.header("gatehouse-request-id"), vec![TRACE]);
    assert_eq!(logged(&stack.edge, TRACE)["trace_id"], TRACE);
    // With a request id too: both are kept, each in its place.
    let a = raw_get(
        edge,
        "/pub/x",
        format!("traceparent: {tp}\r\ngatehouse-request-id: R-both\r\n").as_bytes(),
    );
    assert_eq!(a.header("gatehouse-request-id"), vec!["R-both"]);
    assert_eq!(a.body["headers"]["gatehouse-request-id"], "R-both");
    assert_eq!(
        traceparent_parts(a.body["headers"]["traceparent"].as_str().unwrap()).0,
        TRACE
    );
    assert_eq!(logged(&stack.edge, "R-both")["trace_id"], TRACE);

    // Refused traceparents: a new trace (flags 00), the caller's tracestate dropped.
    let zeros32 = "0".repeat(32);
    let zeros16 = "0".repeat(16);
    let bad_tps = [
        format!("01-{TRACE}-{PARENT}-01"),
        format!("ff-{TRACE}-{PARENT}-01"),
        format!("00-{zeros32}-{PARENT}-01"),
        format!("00-{TRACE}-{zeros16}-01"),
        format!("00-{}-{PARENT}-01", TRACE.to_uppercase()),
        format!("00-{TRACE}-{PARENT}-01-extra"),
        format!("00-{TRACE}-{PARENT}"),
        format!("00-{TRACE}%2D{PARENT}-01"),
        "00-".to_owned() + &"a".repeat(5000),
    ];
    for bad in &bad_tps {
        let a = raw_get(
            edge,
            "/pub/x",
            format!("traceparent: {bad}\r\ntracestate: vendor=1\r\n").as_bytes(),
        );
        assert_eq!(a.status, 200, "{bad}: {}", a.body);
        let (trace, span, flags) =
            traceparent_parts(a.body["headers"]["traceparent"].as_str().unwrap());
        assert_ne!(trace, TRACE, "{bad}");
        assert_ne!(span, PARENT, "{bad}");
        assert_eq!(flags, "00", "{bad}");
        assert!(
            a.body["headers"].get("tracestate").is_none(),
            "{bad}: {}",
            a.body
        );
        assert_eq!(a.header("gatehouse-request-id"), vec![trace.as_str()]);
    }
    // Two traceparent headers, each valid alone: ambiguous, so refused.
    let other = format!("00-{}-{PARENT}-01", "1".repeat(32));
    let a = raw_get(
        edge,
        "/pub/x",
        format!("traceparent: {tp}\r\ntraceparent: {other}\r\n").as_bytes(),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let (trace, _, _) = traceparent_parts(a.body["headers"]["traceparent"].as_str().unwrap());
    assert!(trace != TRACE && trace != "1".repeat(32), "{trace}");

    // Refusals carry the id in the header and the JSON body, beside the
    // error; the log line has it with the reason.
    let a = raw_get(edge, "/api/x", b"gatehouse-request-id: R-refused\r\n");
    assert_eq!(a.status, 401);
    assert_eq!(a.header("gatehouse-request-id"), vec!["R-refused"]);
    assert_eq!(a.body["request_id"], "R-refused", "{}", a.body);
    assert!(a.body["error"].as_str().is_some(), "{}", a.body);
    let line = logged(&stack.edge, "R-refused");
    assert_eq!(line["outcome"], "refused");
    assert_eq!(line["status"], 401);
    // Health and CORS preflight answers carry it too.
    let r = http()
        .get(format!("{edge}/.gatehouse/health"))
        .header("gatehouse-request-id", "R-health")
        .send()
        .unwrap();
    assert_eq!(r.headers()["gatehouse-request-id"], "R-health");
    // A forwarded request: upstream and client see the same id; the
    // client's forged copy never passes.
    let client = stack.client("read");
    let token = stack.origin.client_credentials(&client, &[])["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let a = raw_get(
        edge,
        "/api/x",
        format!("authorization: Bearer {token}\r\nGatehouse_Request_Id: evil\r\n").as_bytes(),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let id = a.header("gatehouse-request-id")[0].to_owned();
    assert!(is_trace_id(&id), "{id}");
    assert_eq!(a.body["headers"]["gatehouse-request-id"], id.as_str());
    for (name, value) in a.body["headers"].as_object().unwrap() {
        assert!(value != "evil", "{name}: evil reached the upstream");
    }
    let line = logged(&stack.edge, &id);
    assert_eq!(line["outcome"], "forwarded");
    assert_eq!(line["client_id"], client.id.as_str());
    assert_eq!(line["sub"], client.id.as_str());
    assert!(
        line["jti"].as_str().is_some_and(|j| !j.is_empty()),
        "{line}"
    );
    // Never a token in the log.
    let signature = token.rsplit('.').next().unwrap();
    assert!(!stack.edge.proc.log().contains(signature));
    // Every request line is one JSON object with a well-formed id.
    for l in stack.edge.request_lines() {
        assert!(l["request_id"].as_str().is_some_and(well_formed), "{l}");
    }
}

/// An origin pushing its revocations to an edge that writes its data
/// points to the stub dataset, and the upstream behind the edge.
fn observed(edge_vars: &[(&str, &str)]) -> (Origin, Upstream, Edge) {
    let port = free_port();
    let edge_url = format!("http://127.0.0.1:{port}");
    let origin = Origin::start_on_suite_database(&[("GATEHOUSE_EDGE_URL", edge_url.as_str())]);
    let upstream = Upstream::start();
    let edge = Edge::start_with_metrics_stub(port, &origin, &upstream, edge_vars);
    (origin, upstream, edge)
}

/// A client_credentials access token for `client`, and its jti.
fn token_and_jti(origin: &Origin, client: &crate::harness::ClientCreds) -> (String, String) {
    let token = origin.client_credentials(client, &[])["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let jti = crate::harness::jwt_claims(&token)["jti"]
        .as_str()
        .unwrap()
        .to_owned();
    (token, jti)
}

/// Calls the edge with `token` under request ids `<prefix>1`, `<prefix>2`,
/// … (answered 200 until the revocation arrives) until it refuses it as
/// revoked; the refused request's id, echoed in the refusal's body.
fn until_refused_as_revoked(edge: &Edge, token: &str, prefix: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut n = 0;
    loop {
        n += 1;
        let id = format!("{prefix}{n}");
        let (status, body) = call(edge, token, &id);
        if status == 401 {
            assert_eq!(body["request_id"], id.as_str(), "{body}");
            assert_eq!(
                body["error_description"], "the access token has been revoked",
                "{body}"
            );
            return id;
        }
        assert_eq!(status, 200, "{body}");
        assert!(
            Instant::now() < deadline,
            "the edge never refused the revoked token"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An admin revocation of the token with `jti`.
fn revoke_jti(origin: &Origin, jti: &str, request_id: &str) {
    let resp = http()
        .post(format!("{}/admin/revocations", origin.url))
        .bearer_auth(ADMIN_TOKEN)
        .header("gatehouse-request-id", request_id)
        .json(&serde_json::json!({"kind": "jti", "value": jti}))
        .send()
        .expect("POST /admin/revocations");
    assert_eq!(resp.status(), 201);
}

/// GET /orders/1 at the edge with `token` and `request_id`: (status, body).
fn call(edge: &Edge, token: &str, request_id: &str) -> (u16, Value) {
    let r = http()
        .get(format!("{}/orders/1", edge.url))
        .header("authorization", format!("Bearer {token}"))
        .header("gatehouse-request-id", request_id)
        .send()
        .expect("edge answers");
    let status = r.status().as_u16();
    assert_eq!(
        r.headers()["gatehouse-request-id"].to_str().unwrap(),
        request_id
    );
    (status, r.json().unwrap_or(Value::Null))
}

/// Each request is one data point with the documented fields: forwarded
/// (indexed by client), refused as revoked (with the jti), refused for a
/// bad token (indexed by address), rate-limited; the revocation list's
/// version and age and the JWKS refresh ride along.
#[test]
fn every_request_writes_one_data_point() {
    let (origin, _upstream, edge) =
        observed(&[("RATE_LIMIT_IP", "4/60"), ("RATE_LIMIT_LEASE_MAX", "1")]);
    let client = origin.create_client("e2e", "read", &edge.url, &[]);
    let (token, jti) = token_and_jti(&origin, &client);

    // Forwarded.
    let (status, _) = call(&edge, &token, "P-fwd");
    assert_eq!(status, 200);
    let p = point(&edge, "P-fwd");
    assert_eq!(p["indexes"], serde_json::json!([client.id]));
    let blobs = &p["blobs"];
    assert_eq!(blobs[0], "forwarded", "{p}");
    assert_eq!(blobs[1], "", "{p}");
    assert_eq!(blobs[3], "default", "{p}");
    assert_eq!(blobs[4], origin.url.as_str(), "{p}");
    assert!(is_trace_id(blobs[6].as_str().unwrap()), "{p}");
    assert_eq!(blobs[7], jti.as_str(), "{p}");
    assert_eq!(blobs[9], "GET", "{p}");
    assert_eq!(blobs[10], client.id.as_str(), "{p}");
    let d = &p["doubles"];
    assert_eq!(d[0], 1.0, "{p}");
    assert_eq!(d[2], 200.0, "{p}");
    assert_eq!(d[7], 0.0, "{p}");
    assert_eq!(d[8], -1.0, "{p}");
    // The first request of the isolate fetched the issuer's keys (the
    // health probe during start-up asked for none).
    assert!(
        edge.data_points()
            .iter()
            .map(|p| p["doubles"][5].as_f64().unwrap())
            .sum::<f64>()
            >= 1.0,
        "no JWKS refresh counted"
    );

    // Revoked: refused, with the reason and the jti; charged to the address.
    revoke_jti(&origin, &jti, "R-admin-1");
    let refused_id = until_refused_as_revoked(&edge, &token, "P-rev-");
    let p = point(&edge, &refused_id);
    assert_eq!(p["indexes"], serde_json::json!([client.id]), "{p}");
    assert_eq!(p["blobs"][0], "refused", "{p}");
    assert_eq!(p["blobs"][1], "invalid_token", "{p}");
    assert_eq!(p["blobs"][2], "the access token has been revoked", "{p}");
    assert_eq!(p["blobs"][7], jti.as_str(), "{p}");
    assert!(
        p["doubles"][3].as_f64().unwrap() >= 1.0,
        "no revocation version: {p}"
    );
    assert!(
        p["doubles"][4].as_f64().unwrap() >= 0.0,
        "no revocation age: {p}"
    );
    let line = logged(&edge, &refused_id);
    assert_eq!(line["jti"], jti.as_str());
    assert_eq!(line["reason"], "the access token has been revoked");
    assert_eq!(line["revocation_version"], p["doubles"][3]);

    // The pusher's ingest calls are points too, with the version ingested.
    let ingest = edge
        .data_points()
        .into_iter()
        .find(|p| p["blobs"][0] == "ingested")
        .expect("an ingest data point");
    assert_eq!(ingest["blobs"][3], "ingest");
    assert!(ingest["doubles"][8].as_f64().unwrap() >= 1.0, "{ingest}");

    // A bad token: refused, indexed by the caller's address.
    let forged = format!("{}x", &token[..token.len() - 1]);
    let (status, body) = call(&edge, &forged, "P-bad");
    assert_eq!(status, 401, "{body}");
    let p = point(&edge, "P-bad");
    assert!(p["indexes"][0].as_str().unwrap().starts_with("ip:"), "{p}");
    assert_eq!(p["blobs"][0], "refused", "{p}");
    assert_eq!(p["blobs"][1], "invalid_token", "{p}");
    assert_eq!(p["blobs"][7], "", "{p}");

    // Over the address's budget (4 failed attempts a minute): rate-limited.
    let mut limited = None;
    for i in 0..20 {
        let id = format!("P-limit-{i}");
        let (status, body) = call(&edge, &forged, &id);
        if status == 429 {
            assert_eq!(body["request_id"], id.as_str(), "{body}");
            limited = Some(id);
            break;
        }
        assert_eq!(status, 401, "{body}");
    }
    let limited = limited.expect("the address was never rate-limited");
    let p = point(&edge, &limited);
    assert_eq!(p["blobs"][0], "rate_limited", "{p}");
    assert!(p["indexes"][0].as_str().unwrap().starts_with("ip:"), "{p}");
    assert_eq!(p["doubles"][2], 429.0, "{p}");

    // One point per request: every request id appears once.
    let points = edge.data_points();
    for id in ["P-fwd", "P-bad", refused_id.as_str(), limited.as_str()] {
        assert_eq!(
            points.iter().filter(|p| p["blobs"][5] == id).count(),
            1,
            "{id}"
        );
    }
}

/// The value of the OpenMetrics sample `name{labels}` in `text` (0 when absent).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .trim()
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

fn origin_metrics(origin: &Origin) -> String {
    http()
        .get(format!("{}/metrics", origin.url))
        .send()
        .expect("GET /metrics")
        .text()
        .expect("metrics text")
}

/// Issue 22, "done when": one refused request followed from the edge's log
/// line (by its request id) to the origin's audit row and metrics. An
/// operator revokes a token through the admin API with request id R1; the
/// edge then refuses the token; the edge's refusal line names the reason
/// and the token's jti J; the origin's audit row of R1 has the same J; the
/// origin's revocation counter moved.
#[test]
fn one_refused_request_is_followed_from_edge_to_origin() {
    let stack = Stack::start_linked(&[], &[]);
    let client = stack.client("read");
    let (token, jti) = token_and_jti(&stack.origin, &client);
    let series = "gatehouse_revocations_total{kind=\"jti\"}";
    let before = sample(&origin_metrics(&stack.origin), series);
    let admin_id = crate::harness::unique("R1");
    revoke_jti(&stack.origin, &jti, &admin_id);

    // The edge refuses the token once the pusher delivered the revocation.
    let refused_id = until_refused_as_revoked(&stack.edge, &token, "F-");

    // The edge's line, found by the request id the user quotes.
    let line = logged(&stack.edge, &refused_id);
    assert_eq!(line["outcome"], "refused", "{line}");
    assert_eq!(
        line["reason"], "the access token has been revoked",
        "{line}"
    );
    assert_eq!(line["jti"], jti.as_str(), "{line}");
    assert_eq!(line["client_id"], client.id.as_str(), "{line}");

    // The origin's audit row of the admin call, by its request id: the same jti.
    let out = stack.origin.cli(&["audit", "--request-id", &admin_id]);
    let rows: Vec<Value> = out
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("audit prints JSON lines"))
        .collect();
    assert!(
        rows.iter()
            .any(|r| r["request_id"] == admin_id.as_str() && r["jti"] == jti.as_str()),
        "no audit row of {admin_id} with jti {jti}: {out}; the jti's rows: {}",
        stack.origin.cli(&["audit", "--jti", &jti])
    );

    // And the origin counted the revocation.
    let after = sample(&origin_metrics(&stack.origin), series);
    assert!(after >= before + 1.0, "{series}: {before} -> {after}");
}

/// The origin's log lines (JSON, one object a line) so far, oldest first.
fn origin_lines(origin: &Origin) -> Vec<Value> {
    origin
        .proc
        .log()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(&l[l.find('{')?..]).ok())
        .collect()
}

/// Issue 22, "done when": one revocation followed from the admin call
/// through the pusher's metrics to the edge's metrics, by the signals
/// docs/operations.md §7.5 names. An operator revokes a token's jti J with
/// request id R2; the origin's audit row of R2 names J and the revocation;
/// the revocation counter moves; the pusher's gauges show the new document
/// version V acknowledged with nothing pending; the pusher's log line for V
/// names its request id P (`push-V-…`); the edge's ingest log line and its
/// Analytics Engine data point carry P and V; the edge then refuses the
/// token, its point holding a list of version ≥ V.
#[test]
fn one_revocation_is_followed_from_admin_call_to_edge_metrics() {
    let (origin, _upstream, edge) = observed(&[]);
    let client = origin.create_client("e2e", "read", &edge.url, &[]);
    let (token, jti) = token_and_jti(&origin, &client);
    let (status, body) = call(&edge, &token, "V-before");
    assert_eq!(status, 200, "{body}");

    let revoked = "gatehouse_revocations_total{kind=\"jti\"}";
    let acked = "gatehouse_revocation_pusher_acked_version";
    let pending = "gatehouse_revocation_pusher_pending";
    let metrics = origin_metrics(&origin);
    let revoked_before = sample(&metrics, revoked);
    let acked_before = sample(&metrics, acked);

    // The admin call.
    let admin_id = crate::harness::unique("R2");
    revoke_jti(&origin, &jti, &admin_id);

    // Its audit row, by its request id: the revocation of J.
    let out = origin.cli(&["audit", "--request-id", &admin_id]);
    let rows: Vec<Value> = out
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("audit prints JSON lines"))
        .collect();
    assert!(
        rows.iter().any(|r| r["request_id"] == admin_id.as_str()
            && r["event"] == "token_revoked"
            && r["jti"] == jti.as_str()
            && r["detail"]
                .as_str()
                .is_some_and(|d| d.contains(&format!("jti={jti}")))),
        "no token_revoked row of {admin_id} with jti {jti}: {out}"
    );
    let metrics = origin_metrics(&origin);
    let revoked_after = sample(&metrics, revoked);
    assert!(
        revoked_after >= revoked_before + 1.0,
        "{revoked}: {revoked_before} -> {revoked_after}"
    );

    // The pusher's gauges: a newer document acknowledged, nothing pending.
    let deadline = Instant::now() + Duration::from_secs(60);
    let version = loop {
        let metrics = origin_metrics(&origin);
        let v = sample(&metrics, acked);
        if v > acked_before && sample(&metrics, pending) == 0.0 {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "the pusher never acknowledged a document after the revocation: {metrics}\n{}",
            origin.proc.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let version = version as u64;
    assert!(version >= 1);

    // The pusher's log line for document V, and its push request id P.
    let pushed: Vec<Value> = origin_lines(&origin)
        .into_iter()
        .filter(|l| {
            l["fields"]["message"] == "revocation document pushed"
                && l["fields"]["version"] == version
        })
        .collect();
    assert_eq!(pushed.len(), 1, "pushes of version {version}: {pushed:?}");
    let push_id = pushed[0]["fields"]["request_id"]
        .as_str()
        .expect("the push line names its request id")
        .to_owned();
    assert!(
        push_id.starts_with(&format!("push-{version}-")) && well_formed(&push_id),
        "{push_id}"
    );

    // The edge's ingest line, found by P: the same version.
    let line = logged(&edge, &push_id);
    assert_eq!(line["outcome"], "ingested", "{line}");
    assert_eq!(line["ingested_version"], version, "{line}");
    assert_eq!(line["status"], 204, "{line}");
    // And its data point.
    let p = point(&edge, &push_id);
    assert_eq!(p["blobs"][0], "ingested", "{p}");
    assert_eq!(p["blobs"][3], "ingest", "{p}");
    assert_eq!(p["blobs"][4], origin.url.as_str(), "{p}");
    #[allow(clippy::cast_precision_loss)]
    let v = version as f64;
    assert_eq!(p["doubles"][8], v, "{p}");
    assert_eq!(p["doubles"][2], 204.0, "{p}");

    // The revoked token is refused; its point holds a list of version ≥ V.
    let refused_id = until_refused_as_revoked(&edge, &token, "V-after-");
    let p = point(&edge, &refused_id);
    assert_eq!(p["blobs"][0], "refused", "{p}");
    assert_eq!(p["blobs"][7], jti.as_str(), "{p}");
    assert!(p["doubles"][3].as_f64().unwrap() >= v, "{p}");
    let line = logged(&edge, &refused_id);
    assert_eq!(line["jti"], jti.as_str(), "{line}");
    assert!(line["revocation_version"].as_f64().unwrap() >= v, "{line}");
    // The edge's health details say the same.
    let held = edge.health().expect("health details")["issuers"][0]["revocations"]["version"]
        .as_f64()
        .unwrap_or(-1.0);
    assert!(
        held >= v,
        "the edge's health holds version {held}, not {version}"
    );
}
