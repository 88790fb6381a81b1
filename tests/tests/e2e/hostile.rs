//! Hostile input over HTTP. The core's attack table (RFC 8725, RFC 9449 §11,
//! CVE classes; `gatehouse_common::testkit::attacks`) rebuilt at the current
//! time and replayed against the real edge in `wrangler dev` and against the
//! origin's `/introspect` and `/token`, plus protocol abuse at both: oversized
//! headers and bodies, repeated `Authorization` and `DPoP` headers, invalid
//! UTF-8, slow bodies, deeply nested JSON. Nothing is accepted, nothing
//! answers 5xx, every refusal is RFC-shaped, nothing is written.
//!
//! The edge trusts a second issuer whose JWKS a thread here serves, so the
//! signature-dependent cases are signed by a key the edge really trusts and
//! a control token from the same key is accepted first: each refusal is
//! caused by the one modification the case makes.

use crate::harness::forge::{
    der, proof_claims, proof_header, replace_segment, resign, set, sig_of, with_duplicate, Forge,
    AUD,
};
use crate::harness::{http, now, Edge, Origin, Stack, Upstream, ADMIN_TOKEN};
use base64::Engine as _;
use gatehouse_common::b64;
use gatehouse_common::dpop::ath;
use gatehouse_common::revocation::{
    RevocationDocument, RevocationEntry, RevocationKind, REVOCATIONS_TYP,
};
use gatehouse_common::testkit::signer::TestKey;
use reqwest::blocking::{RequestBuilder, Response};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

const KID: &str = "hostile-k1";

/// Serves `body` as JSON on every path from a std thread (a JWKS endpoint).
fn serve_json(body: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncache-control: max-age=300\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
                body.len(),
                body
            );
            let _ = stream.write_all(resp.as_bytes());
        }
    });
    url
}

/// Every DPoP-proof case of the attack table for `method url` (and `token`
/// for `ath`), each one modification away from a valid proof by `key`.
#[allow(clippy::too_many_lines)]
fn proof_attacks(
    key: &TestKey,
    method: &str,
    url: &str,
    token: Option<&str>,
) -> Vec<(&'static str, Vec<String>)> {
    let thief = TestKey::es256("hostile-thief");
    let h = proof_header(key);
    let c = || proof_claims(method, url, token);
    let claim = |name: &str, v: Value| key.sign(&h, &set(c(), name, v));
    let head = |name: &str, v: Value| key.sign(&set(h.clone(), name, v), &c());
    let rsa_1024 = json!({
        "kty": "RSA", "e": "AQAB",
        "n": b64::encode(&[0xc3u8; 128]),
    });
    let mut cases: Vec<(&'static str, Vec<String>)> = vec![
        (
            "private key in the proof's jwk",
            vec![head("jwk", key.private_jwk_json())],
        ),
        (
            "symmetric jwk in the proof",
            vec![head(
                "jwk",
                json!({"kty": "oct", "k": b64::encode(b"secret-secret-secret")}),
            )],
        ),
        ("proof without jwk", vec![head("jwk", Value::Null)]),
        ("proof jwk with a 1024-bit RSA key", {
            let hd = json!({"typ": "dpop+jwt", "alg": "RS256", "jwk": rsa_1024});
            let input = format!(
                "{}.{}",
                b64::encode(hd.to_string().as_bytes()),
                b64::encode(c().to_string().as_bytes())
            );
            vec![format!("{input}.{}", b64::encode(&[1u8; 128]))]
        }),
        (
            "proof alg EdDSA with a P-256 jwk",
            vec![head("alg", json!("EdDSA"))],
        ),
        (
            "proof alg none",
            vec![{
                let hd = set(h.clone(), "alg", json!("none"));
                format!(
                    "{}.{}.",
                    b64::encode(hd.to_string().as_bytes()),
                    b64::encode(c().to_string().as_bytes())
                )
            }],
        ),
        ("proof HS256", vec![head("alg", json!("HS256"))]),
        (
            "proof signed by a key other than its jwk",
            vec![thief.sign(&h, &c())],
        ),
        (
            "psychic signature in a proof",
            vec![resign(&key.sign(&h, &c()), &[0u8; 64])],
        ),
        (
            "htu with a query",
            vec![claim("htu", json!(format!("{url}?a=b")))],
        ),
        (
            "htu with a fragment",
            vec![claim("htu", json!(format!("{url}#f")))],
        ),
        (
            "htu for another host",
            vec![claim("htu", json!("https://other.example/x"))],
        ),
        (
            "htu with userinfo",
            vec![claim("htu", json!(url.replacen("://", "://user:pw@", 1)))],
        ),
        (
            "htm for another method",
            vec![claim(
                "htm",
                json!(if method == "GET" { "POST" } else { "GET" }),
            )],
        ),
        (
            "stale proof (pre-generated)",
            vec![claim("iat", json!(now() - 3600))],
        ),
        (
            "proof from the future",
            vec![claim("iat", json!(now() + 3600))],
        ),
        (
            "proof iat as a string",
            vec![claim("iat", json!(now().to_string()))],
        ),
        ("proof without jti", vec![claim("jti", Value::Null)]),
        (
            "two DPoP headers",
            vec![key.sign(&h, &c()), key.sign(&h, &c())],
        ),
        (
            "access token presented as DPoP proof",
            vec![head("typ", json!("at+jwt"))],
        ),
        ("proof typ missing", vec![head("typ", Value::Null)]),
        (
            "duplicate htu in a proof",
            vec![key.sign_text(
                &h.to_string(),
                &with_duplicate(&c(), r#""htu":"https://other.example/x""#),
            )],
        ),
        ("garbage DPoP header", vec!["garbage".to_owned()]),
        ("empty DPoP header", vec![String::new()]),
    ];
    if token.is_some() {
        cases.push((
            "ath of another token",
            vec![claim("ath", json!(ath("another")))],
        ));
        cases.push((
            "ath missing on a resource request",
            vec![claim("ath", Value::Null)],
        ));
        cases.push((
            "stolen token with the thief's proof key (jkt mismatch)",
            vec![thief.sign(&proof_header(&thief), &c())],
        ));
    }
    cases
}

/// Why one response is not an RFC-shaped refusal, if it is not.
fn check_refusal(
    case: &str,
    resp: Response,
    codes: &[&str],
    scheme: &str,
    secrets: &[&str],
) -> Result<(), String> {
    let status = resp.status().as_u16();
    let challenges: Vec<String> = resp
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    let text = resp.text().unwrap_or_default();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let fail = |why: String| {
        Err(format!(
            "{case}: {why} (status {status}, {challenges:?}, {text})"
        ))
    };
    if !(400..500).contains(&status) {
        return fail("not a 4xx".into());
    }
    let Some(code) = body["error"].as_str() else {
        return fail("body has no RFC 6750 / RFC 6749 §5.2 \"error\"".into());
    };
    if !codes.contains(&code) {
        return fail(format!("error {code:?} is not one of {codes:?}"));
    }
    if status == 401 {
        let ok = challenges
            .iter()
            .any(|c| c.starts_with(scheme) && c.contains(&format!("error=\"{code}\"")));
        if !ok {
            return fail(format!("no {scheme} challenge naming error=\"{code}\""));
        }
    }
    for s in secrets.iter().filter(|s| s.len() > 16) {
        // The signature segment alone is enough to identify a credential.
        let tail = s.rsplit('.').next().unwrap_or(s);
        if tail.len() > 16 && (text.contains(tail) || challenges.iter().any(|c| c.contains(tail))) {
            return fail("the response echoes the credential".into());
        }
    }
    Ok(())
}

fn assert_all(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} case(s) not refused as expected:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The edge trusting a hostile test issuer (and its own origin), with rate
/// limits out of the way so every case reaches validation.
fn hostile_stack() -> (Stack, Forge) {
    let key = TestKey::es256("hostile-issuer");
    let mut jwk = key.public_jwk_json();
    jwk["kid"] = KID.into();
    let jwks = serve_json(json!({ "keys": [jwk] }).to_string());
    let trusted = json!([{
        "issuer": jwks,
        "jwks_url": format!("{jwks}/jwks.json"),
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
            ("RATE_LIMIT_IP", "100000/60"),
            ("RATE_LIMIT_CLIENT", "100000/60"),
        ],
    );
    let stack = Stack {
        edge,
        upstream,
        origin,
    };
    let forge = Forge {
        iss: jwks,
        aud: AUD.to_owned(),
        kid: KID.to_owned(),
        key,
    };
    (stack, forge)
}

fn edge_get(url: &str, auth: Option<&str>, proofs: &[String]) -> Response {
    let mut req = http().get(url);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    for p in proofs {
        req = req.header("dpop", p);
    }
    req.send().unwrap()
}

#[test]
fn attack_table_is_refused_by_the_edge() {
    let (stack, forge) = hostile_stack();
    let url = format!("{}/hostile/resource", stack.edge.url);

    // Controls: a valid token from the hostile issuer's key is accepted, so
    // the key is trusted and each refusal below is the case's own doing.
    let valid = forge.valid();
    let r = edge_get(&url, Some(&format!("Bearer {valid}")), &[]);
    assert_eq!(
        r.status(),
        200,
        "control token refused: {}",
        r.text().unwrap()
    );

    let mut failures = Vec::new();
    let cases = forge.token_attacks();
    assert!(cases.len() >= 70, "{} token cases", cases.len());
    for (name, token) in &cases {
        let r = edge_get(&url, Some(&format!("Bearer {token}")), &[]);
        if let Err(e) = check_refusal(
            name,
            r,
            &["invalid_token", "invalid_request"],
            "Bearer",
            &[token],
        ) {
            failures.push(e);
        }
    }

    // DPoP: a token bound to the client key; a valid proof is accepted once.
    let client = TestKey::es256("hostile-client");
    let jkt = client.public_jwk(None).unwrap().thumbprint().to_owned();
    let bound = forge.bound(&jkt);
    let auth = format!("DPoP {bound}");
    let good = client.sign(
        &proof_header(&client),
        &proof_claims("GET", &url, Some(&bound)),
    );
    let r = edge_get(&url, Some(&auth), std::slice::from_ref(&good));
    assert_eq!(
        r.status(),
        200,
        "control proof refused: {}",
        r.text().unwrap()
    );
    let mut proof_cases = proof_attacks(&client, "GET", &url, Some(&bound));
    proof_cases.push(("replayed proof (jti seen)", vec![good]));
    eprintln!(
        "hostile: edge: {} access-token cases, {} DPoP proof cases",
        cases.len(),
        proof_cases.len()
    );
    for (name, proofs) in &proof_cases {
        let r = edge_get(&url, Some(&auth), proofs);
        let secrets: Vec<&str> = proofs.iter().map(String::as_str).collect();
        if let Err(e) = check_refusal(
            name,
            r,
            &["invalid_dpop_proof", "invalid_token", "invalid_request"],
            "DPoP",
            &secrets,
        ) {
            failures.push(e);
        }
    }
    // Downgrades: the bound token as a Bearer token; an unbound token, or
    // no token at all, with the DPoP scheme.
    let fresh = || {
        client.sign(
            &proof_header(&client),
            &proof_claims("GET", &url, Some(&bound)),
        )
    };
    for (name, auth, proofs) in [
        (
            "DPoP-bound token presented as Bearer",
            format!("Bearer {bound}"),
            vec![],
        ),
        (
            "DPoP-bound token as Bearer with a proof",
            format!("Bearer {bound}"),
            vec![fresh()],
        ),
        ("DPoP-bound token without a proof", auth.clone(), vec![]),
        (
            "unbound token with the DPoP scheme",
            format!("DPoP {valid}"),
            vec![fresh()],
        ),
        ("scheme only", "DPoP".to_owned(), vec![fresh()]),
        ("unknown scheme", format!("Basic {valid}"), vec![]),
    ] {
        let r = edge_get(&url, Some(&auth), &proofs);
        if let Err(e) = check_refusal(
            name,
            r,
            &["invalid_dpop_proof", "invalid_token", "invalid_request"],
            if auth.starts_with("DPoP") {
                "DPoP"
            } else {
                "Bearer"
            },
            &[&bound],
        ) {
            // A scheme the edge does not know is answered like no
            // credentials: 401 with a bare challenge (RFC 6750 §3.1).
            let again = edge_get(&url, Some(&auth), &[]);
            let bare = name == "unknown scheme"
                && again.status() == 401
                && again.headers().get("www-authenticate").is_some();
            if !bare {
                failures.push(e);
            }
        }
    }
    assert_all(&failures);

    // Nothing above changed what the edge accepts; the scheme is
    // case-insensitive and may be followed by several spaces (RFC 7235 §2.1).
    let r = edge_get(&url, Some(&format!("Bearer {}", forge.valid())), &[]);
    assert_eq!(r.status(), 200);
    let r = edge_get(&url, Some(&format!("bearer  {}", forge.valid())), &[]);
    assert_eq!(r.status(), 200);

    // No token or proof reached a log line (the signature segment is enough
    // to recognise one): the edge's request log names the reason only.
    let log = stack.edge.proc.log();
    assert!(
        log.contains("\"outcome\":\"refused\""),
        "the edge logged no refusals"
    );
    let sent = cases
        .iter()
        .map(|(_, t)| t.clone())
        .chain(proof_cases.iter().flat_map(|(_, p)| p.clone()))
        .chain([valid, bound]);
    for credential in sent {
        let tail = credential.rsplit('.').next().unwrap_or_default();
        assert!(
            tail.len() <= 16 || !log.contains(tail),
            "the edge log contains a credential's signature: {tail}"
        );
    }
}

fn revocations(key: &TestKey, iss: &str, version: u64, sub: &str) -> String {
    let doc = RevocationDocument {
        iss: iss.to_owned(),
        iat: now(),
        version,
        entries: vec![RevocationEntry {
            kind: RevocationKind::Sub,
            value: sub.to_owned(),
            revoked_at: now(),
            until: now() + 3600,
        }],
    };
    key.sign(
        &json!({"alg": "ES256", "typ": REVOCATIONS_TYP, "kid": KID}),
        &doc.to_claims(),
    )
}

#[test]
fn revocation_ingest_refuses_forgery_rollback_and_garbage() {
    let (stack, forge) = hostile_stack();
    let ingest = |body: Vec<u8>| {
        http()
            .post(format!("{}/.gatehouse/revocations", stack.edge.url))
            .body(body)
            .send()
            .unwrap()
    };
    let url = format!("{}/hostile/r", stack.edge.url);
    let victim = forge.claim("sub", json!("victim"));
    let bystander = forge.valid();
    let accepted = |t: &str| edge_get(&url, Some(&format!("Bearer {t}")), &[]).status() == 200;
    assert!(accepted(&victim) && accepted(&bystander));

    // Control: version 10 revoking sub "victim", signed by the trusted key.
    let r = ingest(revocations(&forge.key, &forge.iss, 10, "victim").into_bytes());
    assert!(r.status().is_success(), "{}", r.text().unwrap());

    let attacker = TestKey::es256("hostile-attacker");
    let mut failures = Vec::new();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "revocation rollback to an older version",
            revocations(&forge.key, &forge.iss, 9, "nobody").into_bytes(),
        ),
        (
            "revocation document forged by another key",
            revocations(&attacker, &forge.iss, 11, "user-h").into_bytes(),
        ),
        (
            "access token presented as revocation document",
            forge.valid().into_bytes(),
        ),
        ("garbage", b"garbage".to_vec()),
        ("empty body", Vec::new()),
        ("invalid UTF-8", vec![0xff, 0xfe, b'.', 0x80, b'.', 0xc0]),
        ("5 MB body", vec![b'a'; 5 * 1024 * 1024]),
    ];
    for (name, body) in cases {
        let r = ingest(body);
        let status = r.status().as_u16();
        if !(400..500).contains(&status) {
            failures.push(format!(
                "{name}: status {status}: {}",
                r.text().unwrap_or_default()
            ));
        }
    }
    assert_all(&failures);
    // The genuine document holds; the forged one revoked nobody; the rolled
    // back one did not un-revoke the victim.
    assert!(!accepted(&victim), "the genuine revocation was lost");
    assert!(accepted(&forge.valid()), "a forged revocation took effect");
}

/// Introspects `token` as `client`; returns status and body.
fn introspect(origin: &Origin, client: &crate::harness::ClientCreds, token: &str) -> (u16, Value) {
    let r = http()
        .post(format!("{}/introspect", origin.url))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[("token", token)])
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

#[test]
fn attack_table_is_inactive_at_the_origin_introspect_and_refused_at_token() {
    let origin = Origin::start();
    let client = origin.create_client("hostile", "read", AUD, &[]);
    let real = origin.client_credentials(&client, &[])["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = introspect(&origin, &client, &real);
    assert_eq!(
        (status, body["active"].clone()),
        (200, json!(true)),
        "{body}"
    );

    // The origin's own kid and issuer, signed by a key it does not hold:
    // key lookup succeeds, so each case reaches the check it targets.
    let header: Value =
        serde_json::from_slice(&b64::decode(real.split('.').next().unwrap()).unwrap()).unwrap();
    let forge = Forge {
        iss: origin.url.clone(),
        aud: AUD.to_owned(),
        kid: header["kid"].as_str().unwrap().to_owned(),
        key: TestKey::es256("hostile-issuer"),
    };
    let mut cases = forge.token_attacks();
    cases.push(("forged control (unknown key)", forge.valid()));
    // Tampering with the origin's own token.
    let real_claims: Value =
        serde_json::from_slice(&b64::decode(real.split('.').nth(1).unwrap()).unwrap()).unwrap();
    let real_sig = sig_of(&real);
    cases.extend([
        (
            "real token, scope escalated",
            replace_segment(
                &real,
                1,
                &set(real_claims.clone(), "scope", json!("read admin")).to_string(),
            ),
        ),
        (
            "real token, sub swapped",
            replace_segment(
                &real,
                1,
                &set(real_claims.clone(), "sub", json!("admin")).to_string(),
            ),
        ),
        (
            "real token, alg none",
            replace_segment(
                &real,
                0,
                &set(header.clone(), "alg", json!("none")).to_string(),
            ),
        ),
        ("real token, signature stripped", resign(&real, &[])),
        ("real token, psychic signature", resign(&real, &[0u8; 64])),
        ("real token, DER signature", resign(&real, &der(&real_sig))),
        ("real token, last signature byte flipped", {
            let mut s = real_sig.clone();
            *s.last_mut().unwrap() ^= 1;
            resign(&real, &s)
        }),
    ]);
    let mut failures = Vec::new();
    eprintln!("hostile: origin: {} introspection cases", cases.len());
    for (name, token) in &cases {
        let (status, body) = introspect(&origin, &client, token);
        // RFC 7662 §2.2: an invalid token is `{"active": false}` and nothing else.
        // A missing or over-long `token` parameter is a malformed request
        // (RFC 6749 §5.2 invalid_request) rather than an inactive token.
        let malformed = (400..500).contains(&status) && body["error"] == "invalid_request";
        if !malformed && (status != 200 || body != json!({"active": false})) {
            failures.push(format!("{name}: introspection answered {status} {body}"));
        }
    }

    // DPoP proof attacks at /token (RFC 9449 §5: 400 invalid_dpop_proof).
    let key = TestKey::es256("hostile-client");
    let token_url = format!("{}/token", origin.url);
    let post = |proofs: &[String]| {
        let mut req: RequestBuilder = http()
            .post(&token_url)
            .basic_auth(&client.id, client.secret.as_deref());
        for p in proofs {
            req = req.header("dpop", p);
        }
        req.form(&[("grant_type", "client_credentials")])
            .send()
            .unwrap()
    };
    let good = key.sign(&proof_header(&key), &proof_claims("POST", &token_url, None));
    let r = post(std::slice::from_ref(&good));
    assert_eq!(
        r.status(),
        200,
        "control proof refused: {}",
        r.text().unwrap()
    );
    let mut proof_cases = proof_attacks(&key, "POST", &token_url, None);
    proof_cases.push(("replayed proof (jti seen)", vec![good]));
    proof_cases.push((
        "proof with ath at the token endpoint",
        vec![key.sign(
            &proof_header(&key),
            &proof_claims("POST", &token_url, Some(&real)),
        )],
    ));
    eprintln!("hostile: origin: {} /token proof cases", proof_cases.len());
    for (name, proofs) in &proof_cases {
        let r = post(proofs);
        let status = r.status().as_u16();
        let text = r.text().unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let ok = status == 400
            && matches!(
                body["error"].as_str(),
                Some("invalid_dpop_proof" | "invalid_request")
            )
            && body.get("access_token").is_none();
        // An `ath` at /token is allowed to be ignored (RFC 9449 §4.2 only
        // requires it on resource requests), but never with a 5xx.
        let tolerated = *name == "proof with ath at the token endpoint" && status == 200;
        if !ok && !tolerated {
            failures.push(format!("{name}: /token answered {status} {text}"));
        }
    }
    assert_all(&failures);
}

/// Sends raw bytes on a fresh connection and reads the status line of the
/// answer; `None` if the server closed the connection without one.
fn raw_status(url: &str, request: &[u8]) -> Option<u16> {
    let addr = url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let _ = s.write_all(request);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(2).any(|w| w == b"\r\n") {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let line = String::from_utf8_lossy(&buf);
    line.split_whitespace().nth(1)?.parse().ok()
}

fn host(url: &str) -> &str {
    url.trim_start_matches("http://")
}

#[test]
fn protocol_abuse_at_the_edge_is_a_4xx() {
    let (stack, forge) = hostile_stack();
    let url = format!("{}/hostile/p", stack.edge.url);
    let valid = forge.valid();
    let mut failures = Vec::new();
    let mut expect_4xx = |name: &str, status: Option<u16>| {
        if !status.is_some_and(|s| (400..500).contains(&s)) {
            failures.push(format!("{name}: answered {status:?}"));
        }
    };
    let send = |req: RequestBuilder| req.send().ok().map(|r| r.status().as_u16());

    for n in [9 * 1024, 32 * 1024, 100 * 1024] {
        expect_4xx(
            "oversized Authorization",
            send(
                http()
                    .get(&url)
                    .header("authorization", format!("Bearer {}", "a".repeat(n))),
            ),
        );
        expect_4xx(
            "oversized DPoP header",
            send(
                http()
                    .get(&url)
                    .header("authorization", format!("DPoP {valid}"))
                    .header("dpop", "a".repeat(n)),
            ),
        );
    }
    let mut many = http().get(&url);
    for i in 0..150 {
        many = many.header(format!("x-pad-{i}"), "p".repeat(200));
    }
    expect_4xx("150 extra headers, no credentials", send(many));
    expect_4xx(
        "two Authorization headers",
        send(
            http()
                .get(&url)
                .header("authorization", format!("Bearer {valid}"))
                .header("authorization", format!("Bearer {valid}")),
        ),
    );
    expect_4xx(
        "Authorization with a comma-joined second credential",
        send(
            http()
                .get(&url)
                .header("authorization", format!("Bearer {valid}, Bearer {valid}")),
        ),
    );
    for bytes in [
        &b"Bearer \xff\xfe\xfd"[..],
        b"Bearer eyJ\x80.\xc0\xaf.x",
        b"DPoP \xe2\x80",
    ] {
        expect_4xx(
            "invalid UTF-8 in Authorization",
            send(http().get(&url).header(
                "authorization",
                reqwest::header::HeaderValue::from_bytes(bytes).unwrap(),
            )),
        );
    }
    expect_4xx(
        "invalid UTF-8 in DPoP",
        send(
            http()
                .get(&url)
                .header("authorization", format!("DPoP {valid}"))
                .header(
                    "dpop",
                    reqwest::header::HeaderValue::from_bytes(b"\xff\xfe.\x80").unwrap(),
                ),
        ),
    );
    // Raw HTTP: a control character and a bare CR in the header value.
    let addr = host(&stack.edge.url);
    expect_4xx(
        "NUL in Authorization (raw)",
        raw_status(
            &stack.edge.url,
            format!("GET /hostile/p HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer a\0b\r\nconnection: close\r\n\r\n").as_bytes(),
        )
        .or(Some(400)),
    );
    expect_4xx(
        "oversized body on an authenticated-only route without credentials",
        send(http().post(&url).body(vec![b'a'; 8 * 1024 * 1024])),
    );
    assert_all(&failures);

    // Still serving, still accepting the valid token; identity headers a
    // caller sends are stripped and replaced by the verified ones.
    let r = http()
        .get(&url)
        .header("authorization", format!("Bearer {valid}"))
        .header("gatehouse-sub", "admin")
        .header("Gatehouse-Scope", "admin")
        .header("gatehouse-client-id", "spoofed")
        .header("gatehouse-jkt", "spoofed")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen: Value = r.json().unwrap();
    let identity = &seen["identity"];
    assert_eq!(identity["gatehouse-sub"], "user-h", "{seen}");
    assert_eq!(identity["gatehouse-scope"], "read", "{seen}");
    assert_eq!(identity["gatehouse-client-id"], "client-h", "{seen}");
    assert!(
        identity.get("gatehouse-jkt").is_none_or(Value::is_null),
        "{seen}"
    );
}

fn admin(origin: &Origin, path: &str) -> Value {
    http()
        .get(format!("{}/admin/{path}", origin.url))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .unwrap()
        .json()
        .unwrap()
}

#[test]
fn protocol_abuse_at_the_origin_is_a_4xx_and_writes_nothing() {
    let origin = Origin::start();
    let client = origin.create_client("hostile", "read", AUD, &[]);
    let clients_before = admin(&origin, "clients");
    let revocations_before = admin(&origin, "revocations");
    let token_url = format!("{}/token", origin.url);
    let mut failures = Vec::new();
    let mut expect = |name: &str, status: Option<u16>, body: Option<Value>| {
        let ok = status.is_some_and(|s| (400..500).contains(&s))
            && body
                .as_ref()
                .is_none_or(|b| b.get("access_token").is_none());
        if !ok {
            failures.push(format!("{name}: answered {status:?} {body:?}"));
        }
    };
    let send = |req: RequestBuilder| match req.send() {
        Ok(r) => {
            let s = r.status().as_u16();
            (Some(s), r.json::<Value>().ok())
        }
        Err(_) => (None, None),
    };
    let grant = [("grant_type", "client_credentials")];
    let basic = || {
        http()
            .post(&token_url)
            .basic_auth(&client.id, client.secret.as_deref())
    };

    // Oversized requests are sent raw: the origin answers (413, 431) and
    // closes as soon as it has seen enough, while an HTTP client would still
    // be writing the rest and report the closed connection instead of the
    // answer already received (seen once under load in CI).
    let addr = host(&origin.url).to_owned();
    let credentials = b64::encode(
        format!(
            "{}:{}",
            client.id,
            client.secret.as_deref().unwrap_or_default()
        )
        .as_bytes(),
    );
    let form = format!(
        "grant_type=client_credentials&pad={}",
        "a".repeat(1024 * 1024)
    );
    let status = raw_status(
        &origin.url,
        format!(
            "POST /token HTTP/1.1\r\nhost: {addr}\r\nauthorization: Basic {credentials}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{form}",
            form.len()
        )
        .as_bytes(),
    );
    expect("1 MB form at /token", status, None);
    let status = raw_status(
        &origin.url,
        format!(
            "POST /token HTTP/1.1\r\nhost: {addr}\r\nauthorization: Basic {credentials}\r\nx-pad: {}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 29\r\nconnection: close\r\n\r\ngrant_type=client_credentials",
            "a".repeat(1024 * 1024)
        )
        .as_bytes(),
    );
    expect("1 MB header at /token", status, None);
    let mut many = basic();
    for i in 0..200 {
        many = many.header(format!("x-pad-{i}"), "p");
    }
    let (s, b) = send(many.form(&grant));
    expect("200 headers at /token", s, b);
    let (s, b) = send(
        basic()
            .header("authorization", "Basic Zm9vOmJhcg==")
            .form(&grant),
    );
    expect("two Authorization headers at /token", s, b);
    let (s, b) = send(
        http()
            .post(&token_url)
            .header(
                "authorization",
                reqwest::header::HeaderValue::from_bytes(b"Basic \xff\xfe\x80").unwrap(),
            )
            .form(&grant),
    );
    expect("invalid UTF-8 in Authorization at /token", s, b);
    let (s, b) = send(
        http()
            .post(&token_url)
            .header(
                "authorization",
                format!("Basic {}", b64::encode(b"\xff\xfe:\x80")),
            )
            .form(&grant),
    );
    expect("invalid UTF-8 inside Basic credentials", s, b);
    let (s, b) = send(
        basic()
            .header(
                "dpop",
                reqwest::header::HeaderValue::from_bytes(b"\xff.\xfe.\x80").unwrap(),
            )
            .form(&grant),
    );
    expect("invalid UTF-8 in DPoP at /token", s, b);
    let (s, b) = send(
        basic()
            .header("content-type", "application/x-www-form-urlencoded")
            .body(b"grant_type=client_credentials&\xff\xfe=%ff%fe".to_vec()),
    );
    expect("invalid UTF-8 in the form body", s, b);
    let (s, b) = send(
        http()
            .post(format!("{}/introspect", origin.url))
            .form(&[("token", "x")]),
    );
    // RFC 6749 §5.2: 401 invalid_client.
    let shaped = s == Some(401) && b.as_ref().is_some_and(|b| b["error"] == "invalid_client");
    expect(
        "introspect without client authentication",
        s.filter(|_| shaped),
        b,
    );

    // Deeply nested, duplicated and oversized JSON at the admin API (the
    // nested bodies stay under the 64 KB body cap so the parser sees them).
    let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    for (name, path, body) in [
        (
            "20 000-deep array in a client",
            "clients",
            format!(
                r#"{{"name":"n","scope":"read","audience":"a","x":{}}}"#,
                nested(20_000)
            ),
        ),
        (
            "nested name",
            "clients",
            format!(r#"{{"name":{}}}"#, nested(20)),
        ),
        (
            "30 000-deep array in a revocation",
            "revocations",
            format!(r#"{{"kind":"sub","value":{}}}"#, nested(30_000)),
        ),
        (
            "20 000-deep objects in a revocation",
            "revocations",
            format!(
                r#"{{"kind":"sub","value":"v","x":{}0{}}}"#,
                r#"{"a":"#.repeat(10_000),
                "}".repeat(10_000)
            ),
        ),
        (
            "duplicate member",
            "clients",
            r#"{"name":"dup","name":"dup2","scope":"read","audience":"a"}"#.to_owned(),
        ),
        ("JSON array body", "clients", "[]".to_owned()),
        ("unterminated JSON", "clients", "{\"name\":\"n".to_owned()),
    ] {
        let (s, b) = send(
            http()
                .post(format!("{}/admin/{path}", origin.url))
                .bearer_auth(ADMIN_TOKEN)
                .header("content-type", "application/json")
                .body(body),
        );
        expect(&format!("{name} at /admin/{path}"), s, b);
    }
    // A 2 MB body announced by Content-Length is refused before it is read.
    let status = raw_status(
        &origin.url,
        format!(
            "POST /admin/clients HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {ADMIN_TOKEN}\r\ncontent-type: application/json\r\ncontent-length: 2097152\r\n\r\n{{\"name\":\""
        )
        .as_bytes(),
    );
    expect("2 MB body at /admin/clients", status, None);
    let status = raw_status(
        &origin.url,
        format!(
            "POST /token HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 2097152\r\n\r\ngrant_type="
        )
        .as_bytes(),
    );
    expect("2 MB body at /token", status, None);
    let mut raw = format!(
        "POST /admin/clients HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {ADMIN_TOKEN}\r\ncontent-type: application/json\r\ncontent-length: 12\r\nconnection: close\r\n\r\n{{\"name\":\""
    )
    .into_bytes();
    raw.extend_from_slice(b"\xff\xfe\"}");
    let status = raw_status(&origin.url, &raw);
    expect("raw invalid UTF-8 JSON at /admin/clients", status, None);
    assert_all(&failures);

    // Nothing was written, and the origin still serves.
    assert_eq!(admin(&origin, "clients"), clients_before);
    assert_eq!(admin(&origin, "revocations"), revocations_before);
    origin.client_credentials(&client, &[]);
}

#[test]
fn a_64_kb_header_is_refused_by_the_origin() {
    let origin = Origin::start();
    let client = origin.create_client("hostile", "read", AUD, &[]);
    let r = http()
        .post(format!("{}/token", origin.url))
        .basic_auth(&client.id, client.secret.as_deref())
        .header("x-pad", "a".repeat(64 * 1024))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .unwrap();
    assert_eq!(r.status(), 431);
}

#[test]
fn slow_bodies_do_not_starve_the_origin() {
    let origin = Origin::start();
    let addr = host(&origin.url).to_owned();
    // 100 connections that promise a body and never send it.
    let held: Vec<TcpStream> = (0..100)
        .map(|_| {
            let mut s = TcpStream::connect(&addr).unwrap();
            s.write_all(
                format!("POST /token HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 1000\r\n\r\ngrant_type=").as_bytes(),
            )
            .unwrap();
            s
        })
        .collect();
    let r = http()
        .get(format!("{}/healthz", origin.url))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    drop(held);
}

#[test]
fn a_stalled_body_is_timed_out_by_the_origin() {
    let origin = Origin::start();
    let addr = host(&origin.url).to_owned();
    // The request promises 1000 bytes and sends 11; a server with a body
    // read timeout answers 408 (or closes) instead of waiting forever. The
    // 120 s read timeout is only the test's own safety net.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    s.write_all(
        format!("POST /token HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 1000\r\n\r\ngrant_type=").as_bytes(),
    )
    .unwrap();
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => {
            let line = String::from_utf8_lossy(&buf[..n]).into_owned();
            assert!(
                line.starts_with("HTTP/1.1 408") || line.starts_with("HTTP/1.1 400"),
                "{line}"
            );
        }
        Err(e) => panic!("the origin kept a stalled request open: {e}"),
    }
}

/// Issue 17.8: a NUL (or another control character) in an identifier
/// reached the database; PostgreSQL refuses NUL in text and the origin
/// answered 500. The form layer refuses control characters first (this
/// suite also runs on PostgreSQL: scripts/test's second e2e pass).
#[test]
fn control_characters_in_identifiers_are_a_4xx_not_a_500() {
    let origin = Origin::start();
    let token_url = format!("{}/token", origin.url);
    let mut failures = Vec::new();
    let mut check = |name: &str, status: u16| {
        if !(400..500).contains(&status) {
            failures.push(format!("{name}: answered {status}"));
        }
    };
    for body in [
        "grant_type=client_credentials&client_id=a%00b&client_secret=x",
        "grant_type=refresh_token&client_id=a%00b&refresh_token=x",
        "grant_type=authorization_code&client_id=a%00b&code=x&code_verifier=y",
        "grant_type=client_credentials&client_id=a%01b&client_secret=x",
    ] {
        let r = http()
            .post(&token_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .expect("POST /token");
        check(body, r.status().as_u16());
    }
    let nul_basic = base64::engine::general_purpose::STANDARD.encode("a\0b:secret");
    let r = http()
        .post(&token_url)
        .header("authorization", format!("Basic {nul_basic}"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .expect("POST /token");
    check("Basic a\\0b", r.status().as_u16());
    for path in ["/revoke", "/introspect"] {
        let r = http()
            .post(format!("{}{path}", origin.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("client_id=a%00b&token=x")
            .send()
            .expect("POST");
        check(path, r.status().as_u16());
    }
    for query in [
        "response_type=code&client_id=a%00b",
        "response_type=code&client_id=a%0Ab&redirect_uri=https%3A%2F%2Fx",
    ] {
        let r = http()
            .get(format!("{}/authorize?{query}", origin.url))
            .send()
            .expect("GET /authorize");
        check(query, r.status().as_u16());
    }
    for path in ["/admin/clients/a%00b", "/admin/audit?client_id=a%00b"] {
        let r = http()
            .get(format!("{}{path}", origin.url))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .expect("GET admin");
        check(path, r.status().as_u16());
    }
    assert_all(&failures);
}
