//! Attack review of issue 21 items 1–2 (the request read, forwarded and
//! its response rebuilt in one JS call each): odd bytes in header names
//! and values, forged and duplicated headers, very many headers and odd
//! reason phrases, sent as raw bytes through `wrangler dev` to an upstream
//! that echoes the raw request it received. See docs/security.md, "Review
//! of issue 21 (one-call request read and forward)".

use crate::harness::{Edge, Origin, Upstream};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

const ROUTES: &str = r#"[{"prefix":"/pub","public":true}]"#;

/// An upstream that answers `/pub/tab` with a reason phrase holding an
/// HTAB and every other request with the raw bytes of the request head it
/// received (as the body).
fn echo_upstream() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || echo(stream));
        }
    });
    format!("http://{addr}")
}

fn echo(mut s: TcpStream) {
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = Vec::new();
    let mut chunk = [0u8; 65536];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    }
    let answer = if head.starts_with(b"GET /pub/tab ") {
        b"HTTP/1.1 200 A\tB\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok".to_vec()
    } else {
        let mut a = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            head.len()
        )
        .into_bytes();
        a.extend_from_slice(&head);
        a
    };
    let _ = s.write_all(&answer);
}

/// Header lines as `(lower-cased name, value bytes)`.
type Lines = Vec<(String, Vec<u8>)>;

/// Sends `head` (raw bytes, then the blank line) on a fresh connection and
/// returns the answer's status, head (lower-cased names) and body.
fn send(base: &str, head: &[u8]) -> (u16, Lines, Vec<u8>) {
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!("host: {addr}\r\nconnection: close\r\n").into_bytes();
    req.splice(0..0, head.iter().copied());
    req.extend_from_slice(b"\r\n");
    s.write_all(&req).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(out.len());
    let mut lines = out[..split].split(|b| *b == b'\n');
    let status = lines
        .next()
        .and_then(|l| {
            String::from_utf8_lossy(l)
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0);
    let headers = lines.map(parse_line).collect();
    (
        status,
        headers,
        out.get(split + 4..).unwrap_or_default().to_vec(),
    )
}

/// `name: value` (name lower-cased, value trimmed, bytes kept).
fn parse_line(line: &[u8]) -> (String, Vec<u8>) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let colon = line.iter().position(|b| *b == b':').unwrap_or(line.len());
    let name = String::from_utf8_lossy(&line[..colon]).to_ascii_lowercase();
    let value = line
        .get(colon + 1..)
        .unwrap_or_default()
        .trim_ascii()
        .to_vec();
    (name, value)
}

/// The headers the upstream received (its echo of the request head).
fn upstream_saw(body: &[u8]) -> Lines {
    body.split(|b| *b == b'\n')
        .skip(1)
        .filter(|l| l.len() > 1)
        .map(parse_line)
        .collect()
}

/// An edge whose routes forward to [`echo_upstream`] (the origin and the
/// demo upstream it is started with are kept alive beside it).
fn echo_edge() -> (Edge, Origin, Upstream) {
    let origin = Origin::start();
    let upstream = Upstream::start();
    let echo = echo_upstream();
    let edge = Edge::start(
        &origin,
        &upstream,
        &[("ROUTES", ROUTES), ("UPSTREAM_URL", &echo)],
    );
    (edge, origin, upstream)
}

fn values<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Vec<&'a [u8]> {
    headers
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_slice())
        .collect()
}

/// Every request header crosses into wasm in one text now: none of the
/// bytes a caller can put in a header shifts a name or a value there, none
/// reaches the upstream as an identity header, and what passes through
/// passes byte for byte (the upstream gets the caller's headers copied in
/// JS, not re-encoded from the text).
#[test]
fn the_one_call_read_and_forward_keep_the_callers_bytes_in_place() {
    let (edge, origin, _upstream) = echo_edge();
    let client = origin.create_client("e2e", "read", &edge.url, &[]);
    let token = origin.client_credentials(&client, &[("scope", "read")])["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let get = |path: &str, extra: &[u8]| {
        send(
            &edge.url,
            &[format!("GET {path} HTTP/1.1\r\n").as_bytes(), extra].concat(),
        )
    };

    // A NUL in a value (which would shift the text's later fields onto a
    // `cf-connecting-ip` or identity name) never reaches the worker.
    let (status, _, _) = get(
        "/pub/a",
        b"x-a: a\0gatehouse-sub\0evil\0cf-connecting-ip\x001.2.3.4\r\n",
    );
    assert_eq!(status, 400);

    // Latin-1, UTF-8 and control bytes in values, an obs-fold, an empty
    // value and a non-token name pass unchanged (as on main).
    let (status, _, body) = get(
        "/pub/a",
        b"x-l: a\xe9\xff\xc3\xa9b\r\nx-c: a\x01\x1f\x7fb\r\nx-f: one\r\n two\r\nx-e:\r\nx-\xc3\xa9: 1\r\n",
    );
    assert_eq!(status, 200);
    let saw = upstream_saw(&body);
    assert_eq!(values(&saw, "x-l"), [&b"a\xe9\xff\xc3\xa9b"[..]], "{saw:?}");
    assert_eq!(values(&saw, "x-c"), [&b"a\x01\x1f\x7fb"[..]], "{saw:?}");
    assert_eq!(values(&saw, "x-f"), [&b"one   two"[..]], "{saw:?}");
    assert_eq!(values(&saw, "x-e"), [&b""[..]], "{saw:?}");
    assert_eq!(values(&saw, "x-\u{e9}"), [&b"1"[..]], "{saw:?}");

    // Forged identity in every spelling, duplicated, after a bare CR and a
    // bare LF: none reaches the upstream of a public route; an
    // authenticated one gets exactly the token's values.
    let forged = b"Gatehouse-Sub: evil\r\ngatehouse_client_id: evil\r\nGATEHOUSE-SCOPE: admin\r\ngatehouse-sub: evil2\r\nx-a: one\rgatehouse-issuer: evil\r\nx-b: one\ngatehouse-roles: admin\r\n";
    let (status, _, body) = get("/pub/a", forged);
    assert_eq!(status, 200);
    let saw = upstream_saw(&body);
    assert!(
        saw.iter().all(|(k, v)| !k.starts_with("gatehouse-")
            || (k == "gatehouse-request-id" && !v.starts_with(b"evil"))),
        "{saw:?}"
    );
    let (status, _, body) = get(
        "/x",
        &[
            format!("authorization: Bearer {token}\r\n").as_bytes(),
            forged,
        ]
        .concat(),
    );
    assert_eq!(status, 200);
    let saw = upstream_saw(&body);
    assert_eq!(
        values(&saw, "gatehouse-sub"),
        [client.id.as_bytes()],
        "{saw:?}"
    );
    assert_eq!(values(&saw, "gatehouse-scope"), [&b"read"[..]], "{saw:?}");
    assert_eq!(values(&saw, "gatehouse-client-id").len(), 1, "{saw:?}");
    assert_eq!(
        values(&saw, "gatehouse-issuer"),
        [origin.url.as_bytes()],
        "{saw:?}"
    );
    assert!(values(&saw, "gatehouse-roles").is_empty(), "{saw:?}");
    assert!(values(&saw, "authorization").is_empty(), "{saw:?}");

    // Duplicates keep their lines; the caller's trace headers are replaced
    // (two `traceparent` start a new trace, its `tracestate` is dropped).
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let (status, _, body) = get(
        "/pub/a",
        format!("x-d: 1\r\nX-D: 2\r\ntraceparent: {tp}\r\ntraceparent: {tp}\r\ntracestate: a=b\r\ngatehouse-request-id: c1\r\ngatehouse-request-id: c2\r\n").as_bytes(),
    );
    assert_eq!(status, 200);
    let saw = upstream_saw(&body);
    assert_eq!(values(&saw, "x-d"), [&b"1"[..], &b"2"[..]], "{saw:?}");
    assert!(values(&saw, "tracestate").is_empty(), "{saw:?}");
    let tps = values(&saw, "traceparent");
    assert_eq!(tps.len(), 1, "{saw:?}");
    assert!(!tps[0].starts_with(b"00-4bf92f35"), "{saw:?}");
    let ids = values(&saw, "gatehouse-request-id");
    assert_eq!(ids.len(), 1, "{saw:?}");
    // The edge's own id (a fresh trace-id: 32 hex digits), never the
    // caller's `c1`/`c2` (a random id starts with `c` one time in 16).
    assert!(ids[0] != &b"c1"[..] && ids[0] != &b"c2"[..], "{saw:?}");
    assert!(
        ids[0].len() == 32 && ids[0].iter().all(u8::is_ascii_hexdigit),
        "{saw:?}"
    );

    // Thousands of headers (of them thousands posing as identity): all
    // the others pass, none of those.
    let many: String = (0..2000)
        .map(|i| format!("x-h{i}: v{i}\r\ngatehouse-x{i}: v{i}\r\n"))
        .collect();
    let (status, _, body) = get("/pub/a", many.as_bytes());
    assert_eq!(status, 200);
    let saw = upstream_saw(&body);
    assert_eq!(
        saw.iter().filter(|(k, _)| k.starts_with("x-h")).count(),
        2000
    );
    assert!(
        saw.iter().all(|(k, _)| !k.starts_with("gatehouse-x")),
        "{saw:?}"
    );
}

/// workerd refuses a `statusText` holding an HTAB although RFC 9110 allows
/// it in a reason phrase: the rebuild drops such a phrase rather than
/// turning the upstream's answer into a 500.
#[test]
fn a_tab_in_the_upstreams_reason_phrase_does_not_break_the_answer() {
    let (edge, _origin, _upstream) = echo_edge();
    let (status, headers, body) = send(&edge.url, b"GET /pub/tab HTTP/1.1\r\n");
    assert_eq!(
        (status, body.as_slice()),
        (200, &b"ok"[..]),
        "{headers:?}\n{}",
        edge.proc.log()
    );
    assert_eq!(values(&headers, "gatehouse-request-id").len(), 1);
}
