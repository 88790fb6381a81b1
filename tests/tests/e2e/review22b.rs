//! Attack review of issue 22 items 1–2 (request ids, edge metrics): what
//! the edge's per-response rebuild (every answer now carries
//! `Gatehouse-Request-Id`) does to upstream answers it used to pass
//! through untouched. See docs/security.md, "Review of issue 22 (request
//! ids, edge metrics)".

use crate::harness::{Edge, Origin, Upstream};
use base64::Engine;
use sha1::{Digest, Sha1};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// `hello gzip`, gzip-compressed (mtime 0).
const GZIP_HELLO: [u8; 30] = [
    0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xff, 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0x57,
    0x48, 0xaf, 0xca, 0x2c, 0x00, 0x00, 0x19, 0x6a, 0xd2, 0xdf, 0x0a, 0x00, 0x00, 0x00,
];

/// The large body's length (streamed through the rebuild).
const BIG: usize = 3 * 1024 * 1024 + 7;

const ROUTES: &str = r#"[{"prefix":"/pub","public":true}]"#;

/// A raw upstream answering each request by its path with a canned answer
/// (the demo upstream cannot answer 101, 204, 304 or two `Set-Cookie`s).
fn canned_upstream() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || answer(stream));
        }
    });
    format!("http://{addr}")
}

fn answer(stream: TcpStream) {
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_owned();
        let path = parts.next().unwrap_or("").to_owned();
        let mut key = None;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h == "\r\n" {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.trim().eq_ignore_ascii_case("sec-websocket-key") {
                    key = Some(v.trim().to_owned());
                }
            }
        }
        let mut w = stream.try_clone().unwrap();
        let resp: Vec<u8> = match path.as_str() {
            "/pub/cookies" => b"HTTP/1.1 200 OK\r\nset-cookie: a=1; Path=/\r\nset-cookie: b=2; Path=/\r\ncontent-length: 2\r\n\r\nok".to_vec(),
            "/pub/empty" => b"HTTP/1.1 204 No Content\r\nx-up: 1\r\n\r\n".to_vec(),
            "/pub/cached" => b"HTTP/1.1 304 Not Modified\r\netag: \"v1\"\r\n\r\n".to_vec(),
            "/pub/gzip" => {
                let mut r = b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-type: text/plain\r\ncontent-length: 30\r\n\r\n".to_vec();
                r.extend_from_slice(&GZIP_HELLO);
                r
            }
            "/pub/moved" => b"HTTP/1.1 302 Found\r\nlocation: /pub/elsewhere\r\ncontent-length: 0\r\n\r\n".to_vec(),
            "/pub/large" => {
                let mut r = format!("HTTP/1.1 200 OK\r\ncontent-length: {BIG}\r\n\r\n").into_bytes();
                r.extend((0..BIG).map(|i| (i % 251) as u8));
                r
            }
            "/pub/phrase-utf8" => b"HTTP/1.1 200 \xc3\x9cbersicht\r\ncontent-length: 2\r\n\r\nok".to_vec(),
            "/pub/phrase" => b"HTTP/1.1 200 Fine \x80\xff\x01 \"odd\"\r\ncontent-length: 2\r\n\r\nok".to_vec(),
            "/pub/own-id" => b"HTTP/1.1 200 OK\r\ngatehouse-request-id: upstream-says\r\ncontent-length: 2\r\n\r\nok".to_vec(),
            "/pub/head" if method == "HEAD" => b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n".to_vec(),
            "/pub/ws" => {
                let mut sha = Sha1::new();
                sha.update(key.unwrap_or_default().as_bytes());
                sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
                let accept = base64::engine::general_purpose::STANDARD.encode(sha.finalize());
                let head = format!("HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: {accept}\r\n\r\n");
                let _ = w.write_all(head.as_bytes());
                // Keep the socket open a while: the handshake is what is checked.
                std::thread::sleep(Duration::from_secs(5));
                return;
            }
            _ => b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello".to_vec(),
        };
        if w.write_all(&resp).is_err() {
            return;
        }
    }
}

/// The answer's status line and headers (lower-cased names), read off a
/// raw connection up to the blank line.
fn raw_head(base: &str, request: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(request.replace("{HOST}", addr).as_bytes())
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut chunk).unwrap_or(0);
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(buf.len());
    let text = String::from_utf8_lossy(&buf[..split]).into_owned();
    let head = text.as_str();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect::<Vec<(String, String)>>();
    // The body, to the end (`connection: close`), unless a protocol switched.
    let mut body = buf.get(split + 4..).unwrap_or_default().to_vec();
    if status != 101 {
        let _ = s.read_to_end(&mut body);
    }
    if !values(&headers, "transfer-encoding").is_empty() {
        body = dechunk(&body);
    }
    (status, headers, body)
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = body.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&body[..end])
            .ok()
            .and_then(|t| usize::from_str_radix(t.trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = end + 2;
        out.extend_from_slice(body.get(start..start + size).unwrap_or_default());
        body = body.get(start + size + 2..).unwrap_or_default();
    }
    out
}

fn values<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

#[test]
fn upstream_answers_survive_the_request_id_rebuild() {
    let origin = Origin::start();
    let upstream = Upstream::start();
    let canned = canned_upstream();
    let edge = Edge::start(
        &origin,
        &upstream,
        &[("ROUTES", ROUTES), ("UPSTREAM_URL", &canned)],
    );
    let get = |path: &str, method: &str, extra: &str| {
        raw_head(
            &edge.url,
            &format!(
                "{method} {path} HTTP/1.1\r\nhost: {{HOST}}\r\nconnection: close\r\n{extra}\r\n"
            ),
        )
    };

    // Both cookies, each its own header line, and the id.
    let (status, h, _) = get("/pub/cookies", "GET", "");
    assert_eq!(status, 200, "{h:?}");
    assert_eq!(
        values(&h, "set-cookie"),
        ["a=1; Path=/", "b=2; Path=/"],
        "{h:?}"
    );
    assert_eq!(values(&h, "gatehouse-request-id").len(), 1, "{h:?}");

    // Null-body statuses pass with their headers.
    let (status, h, _) = get("/pub/empty", "GET", "");
    assert_eq!(status, 204, "{h:?}");
    assert_eq!(values(&h, "x-up"), ["1"], "{h:?}");
    assert_eq!(values(&h, "gatehouse-request-id").len(), 1, "{h:?}");
    let (status, h, _) = get("/pub/cached", "GET", "if-none-match: \"v1\"\r\n");
    assert_eq!(status, 304, "{h:?}");
    assert_eq!(values(&h, "etag"), ["\"v1\""], "{h:?}");
    let (status, h, _) = get("/pub/head", "HEAD", "");
    assert_eq!(status, 200, "{h:?}");
    assert_eq!(values(&h, "gatehouse-request-id").len(), 1, "{h:?}");

    // A redirect is passed as the upstream's (never followed), a large body
    // arrives whole and in order.
    let (status, h, _) = get("/pub/moved", "GET", "");
    assert_eq!(status, 302, "{h:?}");
    assert_eq!(values(&h, "location"), ["/pub/elsewhere"], "{h:?}");
    let (status, h, body) = get("/pub/large", "GET", "");
    assert_eq!(status, 200, "{h:?}");
    assert_eq!(body.len(), BIG, "{h:?}");
    assert!(
        body.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8),
        "the large body changed"
    );

    // An odd reason phrase from the upstream does not break the rebuild.
    for path in ["/pub/phrase", "/pub/phrase-utf8"] {
        let (status, h, body) = get(path, "GET", "");
        assert_eq!((status, body.as_slice()), (200, &b"ok"[..]), "{path} {h:?}");
    }
    // The upstream's own request id is replaced by the edge's, never doubled.
    let (status, h, _) = get("/pub/own-id", "GET", "gatehouse-request-id: caller-1\r\n");
    assert_eq!(status, 200, "{h:?}");
    assert_eq!(values(&h, "gatehouse-request-id"), ["caller-1"], "{h:?}");

    // A compressed body arrives as the upstream sent it, or decoded without
    // its `content-encoding`: never decoded bytes labelled gzip.
    let (status, h, body) = get("/pub/gzip", "GET", "accept-encoding: gzip\r\n");
    assert_eq!(status, 200, "{h:?}");
    if values(&h, "content-encoding") == ["gzip"] {
        assert_eq!(body.get(..2), Some(&[0x1f, 0x8b][..]), "{h:?} {body:?}");
    } else {
        assert_eq!(body, b"hello gzip", "{h:?}");
    }

    // A WebSocket upgrade the upstream accepts is still a 101 (before the
    // rebuild of every answer it passed through untouched).
    let (status, h, _) = get(
        "/pub/ws",
        "GET",
        "upgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
    );
    assert_eq!(status, 101, "{h:?}\n{}", edge.proc.log());
    assert_eq!(
        values(&h, "sec-websocket-accept"),
        ["s3pPLMBiTxaQ9kYGzzhZRbK+xOo="],
        "{h:?}"
    );
    assert_eq!(values(&h, "gatehouse-request-id").len(), 1, "{h:?}");
}

/// A metrics binding whose `writeDataPoint` throws (here `METRICS_BINDING`
/// names a plain variable, as a misconfiguration would; a real dataset
/// throws on an oversize point the same way, synchronously) costs the
/// point, never the answer: public, refused and health answers are as
/// without metrics, each with its id, and the failure is logged.
#[test]
fn a_throwing_metrics_binding_never_breaks_the_answer() {
    let origin = Origin::start();
    let upstream = Upstream::start();
    let edge = Edge::start(
        &origin,
        &upstream,
        &[("ROUTES", ROUTES), ("METRICS_BINDING", "UPSTREAM_URL")],
    );
    let get = |path: &str, extra: &str| {
        raw_head(
            &edge.url,
            &format!("GET {path} HTTP/1.1\r\nhost: {{HOST}}\r\nconnection: close\r\n{extra}\r\n"),
        )
    };
    let (status, h, _) = get("/pub/x", "gatehouse-request-id: m-1\r\n");
    assert_eq!(status, 200, "{h:?}");
    assert_eq!(values(&h, "gatehouse-request-id"), ["m-1"], "{h:?}");
    let (status, h, body) = get("/private", "gatehouse-request-id: m-2\r\n");
    assert_eq!(status, 401, "{h:?}");
    assert_eq!(values(&h, "gatehouse-request-id"), ["m-2"], "{h:?}");
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["request_id"], "m-2", "{body}");
    let log = edge.proc.log();
    assert!(log.contains("metrics_write_failed"), "{log}");
    // The value the binding names (here a URL; it could be a secret) is
    // not in the failure's line.
    let failed = log
        .lines()
        .find(|l| l.contains("metrics_write_failed"))
        .unwrap_or_default();
    assert!(!failed.contains(&upstream.url), "{failed}");
    assert!(
        edge.request_lines()
            .iter()
            .any(|l| l["request_id"] == "m-2"),
        "{log}"
    );
}
