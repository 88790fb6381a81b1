//! What the upstream receives through the edge (`wrangler dev`), checked on
//! the wire: the demo upstream echoes the raw request target, every header
//! and the method it got. Attacks on the forwarding itself: path spellings
//! the route policy and an upstream read differently, identity headers
//! spelled with `_`, forged identity sent straight to the upstream, CORS
//! headers replacing the upstream's, and unknown methods turned into GET.

use crate::harness::forge::{proof_claims, proof_header};
use crate::harness::{http, Edge, Origin, Stack, Upstream};
use gatehouse_common::policy::CanonicalPath;
use gatehouse_common::testkit::signer::TestKey;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// One answer read off a raw connection.
struct Raw {
    status: u16,
    body: Value,
}

impl Raw {
    /// The request target the upstream saw (None when the edge answered itself).
    fn target(&self) -> Option<&str> {
        self.body.get("target").and_then(Value::as_str)
    }
}

/// The body of a chunked message, once it is complete.
fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let end = body.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&body[..end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())?;
        if size == 0 {
            return Some(out);
        }
        if body.len() < end + 2 + size + 2 {
            return None;
        }
        out.extend_from_slice(&body[end + 2..end + 2 + size]);
        body = &body[end + 4 + size..];
    }
}

/// Sends `METHOD target HTTP/1.1` with `headers` on a fresh connection, as
/// written (no client-side normalization), and reads one whole answer.
fn raw(base: &str, method: &str, target: &str, headers: &[(&str, &str)]) -> Raw {
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!("{method} {target} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let (status, body) = loop {
        let n = s.read(&mut chunk).unwrap_or(0);
        buf.extend_from_slice(&chunk[..n]);
        let Some(split) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            if n == 0 {
                break (0, Vec::new());
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..split]).to_ascii_lowercase();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let header = |name: &str| {
            head.split("\r\n")
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim() == name)
                .map(|(_, v)| v.trim().to_owned())
        };
        let rest = &buf[split + 4..];
        let done = if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            dechunk(rest)
        } else if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
            (rest.len() >= len).then(|| rest[..len].to_vec())
        } else {
            (n == 0).then(|| rest.to_vec())
        };
        match done {
            Some(body) => break (status, body),
            None if n == 0 => break (status, rest.to_vec()),
            None => {}
        }
    };
    let body = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    Raw { status, body }
}

fn token(stack: &Stack, scope: &str) -> String {
    let client = stack.client(scope);
    let body = stack
        .origin
        .client_credentials(&client, &[("scope", scope)]);
    body["access_token"].as_str().unwrap().to_owned()
}

const ROUTES: &str =
    r#"[{"prefix":"/api/admin","scopes":["admin"]},{"prefix":"/pub","public":true}]"#;

/// Spellings of `/api/admin/users` that an upstream which decodes, strips
/// `;` parameters, merges slashes or reads `\` as `/` routes to the admin
/// handler. Each must be refused (403 for the read-only token, or 400)
/// and, whatever the edge answers, the upstream must never receive it.
const ADMIN_SPELLINGS: &[&str] = &[
    // Doubled slashes.
    "//api/admin/users",
    "///api/admin/users",
    "/api//admin/users",
    "/api/admin//users",
    "//api//admin//users",
    "/.//api/admin/users",
    // Case (case-insensitive upstreams: IIS, some Spring and Express setups).
    "/API/ADMIN/users",
    "/Api/Admin/users",
    "/api/%41dmin/users",
    "/api/adm%C4%B1n/users",
    // Encoded slashes.
    "/api%2Fadmin/users",
    "/api%2fadmin/users",
    "/api/admin%2Fusers",
    "/%2Fapi/admin/users",
    // Path parameters.
    "/api;x/admin/users",
    "/api/admin;/users",
    "/api;/admin;/users",
    "/api/admin;jsessionid=1/users",
    "/api%3Bx/admin/users",
    // Backslashes.
    "/api\\admin/users",
    "/api%5Cadmin/users",
    "/api%5cadmin/users",
    "\\api\\admin\\users",
    // NUL and other control characters.
    "/api/admin%00/users",
    "/api%00/admin/users",
    "/api/admin/users%00",
    "/api/admin%0A/users",
    "/api/admin%09/users",
    // Double encoding.
    "/api%252Fadmin/users",
    "/api/%2561dmin/users",
    "/api%255Cadmin/users",
    "/api/admin%252F..%252Fusers",
    // Dot segments, plain and encoded.
    "/pub/../api/admin/users",
    "/api/x/../admin/users",
    "/api/%2E%2E/api/admin/users",
    "/api/%2e/admin/users",
    "/pub/..%2Fapi/admin/users",
    "/pub/%2E%2E%2Fapi/admin/users",
    // Overlong UTF-8 for `/` and `.`.
    "/api%C0%AFadmin/users",
    "/api/%C0%AE%C0%AE/api/admin/users",
    // Encoded `?` and `#`, which a re-parsing proxy cuts at.
    "/api/admin%3F/users",
    "/api/admin%23/users",
    // Segments of only dots and spaces, which upstreams that trim them
    // read as `..`, `.` or an empty segment.
    "/x/..%20/api/admin/users",
    "/x/.../api/admin/users",
    "/api/%20/admin/users",
    "/api/.%20/admin/users",
];

/// A stack with the [`ROUTES`] policy (others allowed to any token) and
/// limits too high to matter, with `Bearer` headers of a `read` token and
/// of a `read admin` token.
fn route_policy_stack() -> (Stack, String, String) {
    let stack = Stack::start_with_edge_vars(&[
        ("ROUTES", ROUTES),
        ("DEFAULT_ROUTE", "allow-authenticated"),
        ("RATE_LIMIT_CLIENT", "100000/60"),
        ("RATE_LIMIT_IP", "100000/60"),
    ]);
    let read = format!("Bearer {}", token(&stack, "read"));
    let admin = format!("Bearer {}", token(&stack, "read admin"));
    (stack, read, admin)
}

#[test]
fn path_spellings_cannot_bypass_route_policy() {
    let (stack, read, admin) = route_policy_stack();
    let edge = &stack.edge.url;
    let mut failures = Vec::new();

    // The straight spelling is refused: the baseline.
    let a = raw(edge, "GET", "/api/admin/users", &[("authorization", &read)]);
    assert_eq!(a.status, 403, "{}", a.body);

    for spelling in ADMIN_SPELLINGS {
        let a = raw(edge, "GET", spelling, &[("authorization", &read)]);
        // A target that is not a path at all never reaches the worker:
        // `wrangler dev` answers it itself (500).
        let by_runtime = spelling.starts_with('\\') && a.status >= 400;
        if !(matches!(a.status, 400 | 403) || by_runtime) || a.target().is_some() {
            failures.push(format!(
                "{spelling}: {} (upstream saw {:?})",
                a.status,
                a.target()
            ));
        }
        if a.status == 400 && a.body["error"] != "invalid_request" {
            failures.push(format!(
                "{spelling}: 400 without an RFC 6750 body: {}",
                a.body
            ));
        }
        // With the admin scope, what the upstream receives is exactly the
        // canonical path the edge judged, or nothing at all.
        let a = raw(edge, "GET", spelling, &[("authorization", &admin)]);
        match (a.status, a.target()) {
            (200, Some(t)) => {
                let canonical = CanonicalPath::parse(t).ok();
                let ambiguous = ["//", ";", "\\", "%2F", "%25", "%5C", "%00", "/./", "/../"]
                    .iter()
                    .any(|bad| t.to_ascii_uppercase().contains(bad));
                if canonical.as_ref().map(CanonicalPath::as_str) != Some(t) || ambiguous {
                    failures.push(format!("{spelling} (admin): forwarded as {t}"));
                }
            }
            (400, None) => {}
            (s, None) if spelling.starts_with('\\') && s >= 400 => {}
            (s, t) => failures.push(format!("{spelling} (admin): {s} (upstream saw {t:?})")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} spellings got through:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Prefixes end on segment boundaries: `/api/adminx` is not `/api/admin`
    // (it gets the default route), and the forwarded path is canonical.
    for (target, forwarded) in [
        ("/api/adminx", "/api/adminx"),
        ("/api/administrator/x", "/api/administrator/x"),
        ("//api//other", "/api/other"),
        ("/api/./other/", "/api/other/"),
        ("/api/caf%c3%a9", "/api/caf%C3%A9"),
        ("/api/%7Euser", "/api/~user"),
    ] {
        let a = raw(edge, "GET", target, &[("authorization", &read)]);
        assert_eq!(a.status, 200, "{target}: {}", a.body);
        assert_eq!(a.target(), Some(forwarded), "{target}");
    }

    // The query is not part of the match and is forwarded unchanged.
    for target in [
        "/api/other?next=/api/admin/users",
        "/api/other?x=..%2F..%2Fapi%2Fadmin&y=;z",
        "/api/other?a=1&a=2#frag",
    ] {
        let a = raw(edge, "GET", target, &[("authorization", &read)]);
        assert_eq!(a.status, 200, "{target}: {}", a.body);
        let sent = target.split('#').next().unwrap();
        assert_eq!(a.target(), Some(sent), "{target}");
    }
    let a = raw(
        edge,
        "GET",
        "/api/admin/users?scope=read",
        &[("authorization", &read)],
    );
    assert_eq!(a.status, 403, "{}", a.body);

    // A public prefix does not lend itself to a path that leaves it.
    let a = raw(edge, "GET", "/pub/../api/admin/users", &[]);
    assert_eq!(a.status, 401, "{}", a.body);
    let a = raw(edge, "GET", "//pub//x", &[]);
    assert_eq!((a.status, a.target()), (200, Some("/pub/x")), "{}", a.body);
}

#[test]
fn underscore_identity_headers_are_stripped() {
    let stack = Stack::start_with_edge_vars(&[("ROUTES", ROUTES)]);
    let read = format!("Bearer {}", token(&stack, "read"));
    let forged: &[(&str, &str)] = &[
        ("Gatehouse_Sub", "evil"),
        ("gatehouse_client_id", "evil"),
        ("GATEHOUSE_SCOPE", "admin"),
        ("Gatehouse_Assertion", "evil"),
        ("gatehouse-sub", "evil"),
        ("Gatehouse-Act", "evil"),
        ("gatehouse_jkt", "evil"),
    ];
    for (path, auth) in [("/pub/x", None), ("/api/x", Some(read.as_str()))] {
        let mut headers = forged.to_vec();
        if let Some(a) = auth {
            headers.push(("authorization", a));
        }
        let a = raw(&stack.edge.url, "GET", path, &headers);
        assert_eq!(a.status, 200, "{path}: {}", a.body);
        let seen = a.body["headers"].as_object().unwrap();
        for (name, value) in seen {
            let spelled = name.replace('_', "-");
            assert!(
                !(spelled.starts_with("gatehouse-") && value == "evil"),
                "{path}: the caller's {name}: {value} reached the upstream"
            );
            assert!(
                !name.contains('_') || !spelled.starts_with("gatehouse-"),
                "{path}: {name} reached the upstream"
            );
        }
        if auth.is_some() {
            assert_eq!(a.body["identity"]["gatehouse-scope"], "read", "{}", a.body);
            assert_ne!(a.body["identity"]["gatehouse-sub"], "evil", "{}", a.body);
        } else {
            assert!(
                a.body["identity"].as_object().unwrap().is_empty(),
                "{}",
                a.body
            );
        }
    }
}

/// A stack whose edge signs identity assertions with `key` and whose
/// upstream requires them.
fn asserting_stack(key: &TestKey) -> Stack {
    let origin = Origin::start();
    let public = key.public_jwk_json().to_string();
    // The upstream expects `aud` = its own URL, the edge's UPSTREAM_URL.
    let upstream = Upstream::start_with_env(&[
        ("GATEHOUSE_ASSERTION_JWK", &public),
        ("GATEHOUSE_ASSERTION_REQUIRED", "true"),
    ]);
    let mut private = key.private_jwk_json();
    private["kid"] = "edge-assertion-1".into();
    let private = private.to_string();
    let edge = Edge::start_retrying(
        &origin,
        &upstream,
        &[("ROUTES", ROUTES), ("IDENTITY_SIGNING_KEY", &private)],
    );
    Stack {
        edge,
        upstream,
        origin,
    }
}

#[test]
fn forged_identity_sent_straight_to_the_upstream_is_told_apart() {
    let edge_key = TestKey::es256("edge-identity-assertion");
    let stack = asserting_stack(&edge_key);
    let client = stack.client("read");
    let body = stack
        .origin
        .client_credentials(&client, &[("scope", "read")]);
    let bearer = format!("Bearer {}", body["access_token"].as_str().unwrap());

    // Through the edge: a valid assertion for this request and identity,
    // even when the caller sends one of its own.
    let a = raw(
        &stack.edge.url,
        "POST",
        "/api//orders?x=1",
        &[
            ("authorization", &bearer),
            ("gatehouse-assertion", "forged.by.caller"),
            ("content-length", "0"),
        ],
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let assertion = &a.body["assertion"];
    assert_eq!(assertion["valid"], true, "{}", a.body);
    let claims = &assertion["claims"];
    assert_eq!(claims["htm"], "POST");
    assert_eq!(claims["path"], "/api/orders");
    assert_eq!(claims["client_id"], client.id.as_str());
    assert_eq!(claims["scope"], "read");
    assert_eq!(claims["aud"], stack.upstream.url.as_str());
    assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() <= 60);
    let observed = a.body["headers"]["gatehouse-assertion"]
        .as_str()
        .unwrap()
        .to_owned();

    // Public routes are asserted too (no subject).
    let p = raw(&stack.edge.url, "GET", "/pub/x", &[]);
    assert_eq!(p.status, 200, "{}", p.body);
    assert_eq!(p.body["assertion"]["valid"], true, "{}", p.body);
    assert!(p.body["assertion"]["claims"].get("sub").is_none());

    // Straight to the upstream: identity headers alone, a forged assertion
    // (another key, a tampered claim), or a replayed one are all refused.
    let up = &stack.upstream.url;
    let forger = TestKey::es256("not-the-edge");
    let t = crate::harness::now();
    let claims = json!({
        "iss": "gatehouse-edge", "aud": up, "iat": t, "exp": t + 60, "jti": "f1",
        "htm": "GET", "path": "/api/admin", "sub": "admin", "client_id": "x", "scope": "admin",
    });
    let header =
        json!({"alg": "ES256", "typ": "gatehouse-assertion+jwt", "kid": "edge-assertion-1"});
    let forged = forger.sign(&header, &claims);
    let mut parts: Vec<&str> = observed.split('.').collect();
    let tampered_claims = gatehouse_common::b64::encode(claims.to_string().as_bytes());
    parts[1] = &tampered_claims;
    let tampered = parts.join(".");
    for (name, headers) in [
        (
            "identity headers only",
            vec![("gatehouse-sub", "admin"), ("gatehouse-scope", "admin")],
        ),
        (
            "another key",
            vec![("gatehouse-assertion", forged.as_str())],
        ),
        (
            "tampered claims",
            vec![("gatehouse-assertion", tampered.as_str())],
        ),
        (
            "replayed for another path",
            vec![("gatehouse-assertion", observed.as_str())],
        ),
    ] {
        let a = raw(up, "GET", "/api/admin", &headers);
        assert_eq!(a.status, 401, "{name}: {}", a.body);
        assert_eq!(a.body["error"], "invalid_assertion", "{name}: {}", a.body);
    }
    let a = raw(
        up,
        "POST",
        "/api/orders?x=1",
        &[("gatehouse-assertion", &observed), ("content-length", "0")],
    );
    assert_eq!(a.status, 401, "replayed as is: {}", a.body);
    assert_eq!(a.body["error_description"], "replayed", "{}", a.body);
}

#[test]
fn ed25519_identity_assertions_verify_too() {
    let stack = asserting_stack(&TestKey::ed25519("edge-identity-assertion"));
    let bearer = format!("Bearer {}", token(&stack, "read"));
    for _ in 0..3 {
        // The key is imported once per isolate, then reused.
        let a = raw(
            &stack.edge.url,
            "GET",
            "/api/x",
            &[("authorization", &bearer)],
        );
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.body["assertion"]["valid"], true, "{}", a.body);
    }
    let direct = raw(
        &stack.upstream.url,
        "GET",
        "/api/x",
        &[("gatehouse-sub", "admin")],
    );
    assert_eq!(direct.status, 401, "{}", direct.body);
}

#[test]
fn cors_answer_is_merged_with_the_upstreams() {
    let stack = Stack::start_with_edge_vars(&[
        ("ROUTES", ROUTES),
        ("CORS_ALLOW_ORIGINS", "https://app.example"),
    ]);
    let read = format!("Bearer {}", token(&stack, "read"));
    let get = |path: &str, upstream_headers: Value, auth: bool| {
        let mut req = http()
            .get(format!("{}{path}", stack.edge.url))
            .header("origin", "https://app.example")
            .header("x-upstream-response-headers", upstream_headers.to_string());
        if auth {
            req = req.header("authorization", &read);
        }
        let resp = req.send().unwrap();
        let h = resp.headers().clone();
        let one = |name: &str| {
            h.get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect::<Vec<_>>()
                .join(", ")
        };
        (
            resp.status().as_u16(),
            one("vary"),
            one("access-control-allow-origin"),
            one("access-control-expose-headers"),
        )
    };
    let members = |list: &str| -> Vec<String> {
        list.split(',')
            .map(|m| m.trim().to_ascii_lowercase())
            .filter(|m| !m.is_empty())
            .collect()
    };

    for auth in [false, true] {
        let path = if auth { "/api/x" } else { "/pub/x" };
        let (status, vary, allow, expose) = get(
            path,
            json!({
                "vary": "Authorization, Accept-Encoding",
                "access-control-allow-origin": "https://partner.example",
                "access-control-expose-headers": "X-Trace-Id",
            }),
            auth,
        );
        assert_eq!(status, 200);
        let vary = members(&vary);
        for m in ["authorization", "accept-encoding", "origin"] {
            assert!(
                vary.contains(&m.to_owned()),
                "{path}: Vary {vary:?} lacks {m}"
            );
        }
        assert_eq!(vary.len(), 3, "{path}: {vary:?}");
        assert_eq!(
            allow, "https://partner.example",
            "{path}: the upstream's answer was replaced"
        );
        let expose = members(&expose);
        for m in ["x-trace-id", "www-authenticate", "dpop-nonce", "ratelimit"] {
            assert!(
                expose.contains(&m.to_owned()),
                "{path}: expose {expose:?} lacks {m}"
            );
        }

        // An upstream that already varies on Origin keeps one `Origin`.
        let (_, vary, allow, _) = get(path, json!({"vary": "origin"}), auth);
        assert_eq!(members(&vary), vec!["origin"], "{path}");
        assert_eq!(allow, "https://app.example", "{path}");
    }
    // The edge's own refusals carry its CORS answer.
    let (status, vary, allow, expose) = get("/api/x", json!({}), false);
    assert_eq!(status, 401);
    assert_eq!(members(&vary), vec!["origin"]);
    assert_eq!(allow, "https://app.example");
    assert!(members(&expose).contains(&"www-authenticate".to_owned()));
}

/// A DPoP-bound access token from the origin for `key`.
fn dpop_token(stack: &Stack, key: &TestKey) -> String {
    let client = stack.client("read");
    let url = format!("{}/token", stack.origin.url);
    let proof = key.sign(&proof_header(key), &proof_claims("POST", &url, None));
    let resp = http()
        .post(&url)
        .basic_auth(&client.id, client.secret.as_deref())
        .header("dpop", proof)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .unwrap();
    let body: Value = resp.json().unwrap();
    assert_eq!(body["token_type"], "DPoP", "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

#[test]
fn unknown_methods_are_not_turned_into_get() {
    let stack = Stack::start_with_edge_vars(&[("ROUTES", ROUTES)]);
    let key = TestKey::es256("unknown-method-client");
    let at = dpop_token(&stack, &key);
    let url = format!("{}/api/dav/file", stack.edge.url);
    let send = |method: &str, htm: &str| {
        let proof = key.sign(&proof_header(&key), &proof_claims(htm, &url, Some(&at)));
        raw(
            &stack.edge.url,
            method,
            "/api/dav/file",
            &[("authorization", &format!("DPoP {at}")), ("dpop", &proof)],
        )
    };
    for method in ["PROPFIND", "PURGE", "MKCOL", "QUERY"] {
        // A proof for GET does not cover another method.
        let a = send(method, "GET");
        assert_eq!(a.status, 401, "{method} with htm GET: {}", a.body);
        assert_eq!(a.body["error"], "invalid_dpop_proof", "{}", a.body);
        assert!(a.target().is_none());
        // A proof for the real method does, and the upstream gets that method.
        let a = send(method, method);
        assert_eq!(a.status, 200, "{method}: {}", a.body);
        assert_eq!(a.body["method"], method, "{}", a.body);
    }
    // Bearer: forwarded with the method as sent, never as GET.
    let bearer = format!("Bearer {}", token(&stack, "read"));
    for method in ["PROPFIND", "PURGE", "QUERY", "REPORT"] {
        let a = raw(
            &stack.edge.url,
            method,
            "/api/x",
            &[("authorization", &bearer)],
        );
        assert_eq!(a.status, 200, "{method}: {}", a.body);
        assert_eq!(a.body["method"], method, "{}", a.body);
    }
}

/// A case variant of a public prefix (`/PUB/x` for the public `/pub`) is
/// not public: a case-sensitive upstream routes it elsewhere than `/pub`
/// (e.g. to a `/{name}/x` handler), where the default route applies. The
/// edge requires what the exact spelling requires as well as what the
/// case-insensitive match requires (found by review of 3c24e0c).
#[test]
fn case_variant_of_public_prefix_is_not_public() {
    let stack = Stack::start_with_edge_vars(&[
        ("ROUTES", ROUTES),
        ("DEFAULT_ROUTE", "allow-authenticated"),
    ]);
    let edge = &stack.edge.url;
    for target in ["/PUB/x", "/Pub/x", "/%50ub/x"] {
        let a = raw(edge, "GET", target, &[]);
        assert_eq!((a.status, a.target()), (401, None), "{target}: {}", a.body);
    }
    // The exact spelling stays public; a token still passes the variant.
    let a = raw(edge, "GET", "/pub/x", &[]);
    assert_eq!((a.status, a.target()), (200, Some("/pub/x")), "{}", a.body);
    let read = format!("Bearer {}", token(&stack, "read"));
    let a = raw(edge, "GET", "/PUB/x", &[("authorization", &read)]);
    assert_eq!((a.status, a.target()), (200, Some("/PUB/x")), "{}", a.body);
}

/// `/FILES/SHARED./x` with a scoped `/files` and a public `/files/shared`:
/// the full fold reaches the share, the exact spelling no rule, but an
/// upstream that folds case and keeps `shared.` serves it under `/files`.
/// A token without the `files` scope must not pass (found by review of the
/// `Route::Both` fix).
#[test]
fn half_folded_spelling_of_public_share_needs_the_outer_scope() {
    let stack = Stack::start_with_edge_vars(&[
        (
            "ROUTES",
            r#"[{"prefix":"/files","scopes":["files"]},{"prefix":"/files/shared","public":true}]"#,
        ),
        ("DEFAULT_ROUTE", "allow-authenticated"),
    ]);
    let edge = &stack.edge.url;
    let read = format!("Bearer {}", token(&stack, "read"));
    let files = format!("Bearer {}", token(&stack, "files"));
    for target in ["/FILES/SHARED./x", "/Files/Shared%20/x"] {
        let a = raw(edge, "GET", target, &[]);
        assert_eq!((a.status, a.target()), (401, None), "{target}: {}", a.body);
        let a = raw(edge, "GET", target, &[("authorization", &read)]);
        assert_eq!((a.status, a.target()), (403, None), "{target}: {}", a.body);
        let a = raw(edge, "GET", target, &[("authorization", &files)]);
        assert_eq!(a.status, 200, "{target} (files): {}", a.body);
    }
    let a = raw(edge, "GET", "/files/shared/x", &[]);
    assert_eq!(
        (a.status, a.target()),
        (200, Some("/files/shared/x")),
        "{}",
        a.body
    );
}

/// Spellings of `/api/admin/users` that the case-insensitive match missed:
/// a trailing `.` or space on a segment, which Windows (IIS) strips, and
/// the dotted capital I (U+0130), which Java's `equalsIgnoreCase` matches
/// to `i` (its simple lower case) while the full lower case is `i` plus a
/// combining dot. Each must need the admin scope (found by review of 3c24e0c).
#[test]
fn trailing_dot_space_and_dotted_capital_i_cannot_skip_admin_rule() {
    let (stack, read, admin) = route_policy_stack();
    let edge = &stack.edge.url;
    for target in [
        "/api/admin./users",
        "/api/admin%20/users",
        "/api/admin%2e%2e/users",
        "/api/admin.%20./users",
        "/api%20/admin/users",
        "/api/ADM%C4%B0N/users",
        "/api/adm%C4%B0n/users",
    ] {
        let a = raw(edge, "GET", target, &[("authorization", &read)]);
        assert_eq!((a.status, a.target()), (403, None), "{target}: {}", a.body);
        let a = raw(edge, "GET", target, &[("authorization", &admin)]);
        assert_eq!(a.status, 200, "{target} (admin): {}", a.body);
    }
}
