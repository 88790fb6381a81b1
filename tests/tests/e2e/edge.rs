//! The complete edge worker through `wrangler dev` with the real origin:
//! Bearer and DPoP (proofs signed here), every refusal kind, nonces, the
//! replay guard, revocation ingest, route policy, CORS, health, rate limits,
//! key rotation picked up on an unknown `kid`, and the origin going away.

use crate::harness::forge::dpop_proof as proof;
use crate::harness::{http, now, serve_jwks, unique, Edge, Origin, Stack, Upstream};
use gatehouse_common::revocation::{
    RevocationDocument, RevocationEntry, RevocationKind, REVOCATIONS_TYP,
};
use gatehouse_common::testkit::signer::TestKey;
use reqwest::blocking::Response;
use serde_json::{json, Value};

/// A second, test-run issuer: its JWKS served by a tiny HTTP thread, its
/// tokens and revocation documents signed here.
struct TestIssuer {
    url: String,
    key: TestKey,
}

const TEST_KID: &str = "test-k1";

impl TestIssuer {
    fn start() -> Self {
        let key = TestKey::es256("gatehouse-e2e-test-issuer");
        let mut jwk = key.public_jwk_json();
        jwk["kid"] = TEST_KID.into();
        jwk["use"] = "sig".into();
        jwk["alg"] = "ES256".into();
        let body = json!({ "keys": [jwk] }).to_string();
        let url = serve_jwks(body);
        Self { url, key }
    }

    fn trusted_issuers_var(&self, audience: &str) -> String {
        json!([{
            "issuer": self.url,
            "jwks_url": format!("{}/jwks.json", self.url),
            "audiences": [audience],
            "algorithms": ["ES256"],
        }])
        .to_string()
    }

    fn claims(&self, aud: &str, jti: &str) -> Value {
        let t = now();
        json!({
            "iss": self.url, "aud": aud, "sub": "user-7", "client_id": "test-client",
            "jti": jti, "iat": t, "nbf": t, "exp": t + 300, "scope": "read",
        })
    }

    fn mint(&self, claims: &Value) -> String {
        self.key.sign(
            &json!({"alg": "ES256", "typ": "at+jwt", "kid": TEST_KID}),
            claims,
        )
    }

    fn revocations(&self, version: u64, entries: Vec<RevocationEntry>) -> String {
        let doc = RevocationDocument {
            iss: self.url.clone(),
            iat: now(),
            version,
            entries,
        };
        self.key.sign(
            &json!({"alg": "ES256", "typ": REVOCATIONS_TYP, "kid": TEST_KID}),
            &doc.to_claims(),
        )
    }
}

/// Origin + upstream + edge; `{EDGE}` in a var value stands for the edge's URL.
fn stack_with(vars: impl FnOnce(&Origin, &str) -> Vec<(String, String)>) -> (Stack, ()) {
    let origin = Origin::start();
    let upstream = Upstream::start();
    let vars = vars(&origin, "{EDGE}");
    let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let edge = Edge::start(&origin, &upstream, &refs);
    (
        Stack {
            edge,
            upstream,
            origin,
        },
        (),
    )
}

/// A DPoP-bound token for `client` from the origin, bound to `key`.
fn dpop_token(origin: &Origin, client: &crate::harness::ClientCreds, key: &TestKey) -> String {
    let url = format!("{}/token", origin.url);
    let resp = http()
        .post(&url)
        .basic_auth(&client.id, client.secret.as_deref())
        .header("dpop", proof(key, "POST", &url, None, None))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .unwrap();
    let status = resp.status();
    let body: Value = resp.json().unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "DPoP", "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

struct Answer {
    status: u16,
    challenge: String,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

fn answer(resp: Response) -> Answer {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let challenge = headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join(" | ");
    let text = resp.text().unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer {
        status,
        challenge,
        headers,
        body,
    }
}

fn get(edge: &Edge, path: &str, auth: Option<&str>, dpop: Option<&str>) -> Answer {
    let mut req = http().get(format!("{}{path}", edge.url));
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    if let Some(p) = dpop {
        req = req.header("dpop", p);
    }
    answer(req.send().unwrap())
}

fn assert_refused(a: &Answer, status: u16, error: &str, scheme: &str) {
    assert_eq!(a.status, status, "{} {}", a.body, a.challenge);
    assert_eq!(a.body["error"], error, "{}", a.body);
    if status == 401 {
        assert!(
            a.challenge.starts_with(scheme),
            "challenge should start with {scheme}: {}",
            a.challenge
        );
        assert!(
            a.challenge.contains(&format!("error=\"{error}\"")),
            "{}",
            a.challenge
        );
    }
}

fn ingest(edge: &Edge, doc: &str) -> u16 {
    http()
        .post(format!("{}/.gatehouse/revocations", edge.url))
        .body(doc.to_owned())
        .send()
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn bearer_dpop_policy_revocation_and_every_refusal() {
    let issuer = TestIssuer::start();
    let routes = r#"[{"prefix":"/admin","scopes":["admin"]},{"prefix":"/secure","dpop":true},{"prefix":"/public","public":true}]"#;
    let (stack, _) = stack_with(|_, edge_url| {
        vec![
            (
                "TRUSTED_ISSUERS".into(),
                issuer.trusted_issuers_var(edge_url),
            ),
            ("ROUTES".into(), routes.into()),
            ("CORS_ALLOW_ORIGINS".into(), "https://app.example".into()),
        ]
    });
    let edge = &stack.edge;
    let client = stack.client("read write");
    let bearer = stack
        .origin
        .client_credentials(&client, &[("scope", "read")])["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // Valid Bearer.
    let a = get(edge, "/orders/1", Some(&format!("Bearer {bearer}")), None);
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.body["identity"]["gatehouse-client-id"],
        client.id.as_str()
    );
    assert!(a.headers.get("ratelimit").is_some(), "{:?}", a.headers);

    // Valid DPoP: a token bound to the key, a fresh proof per request.
    let key = TestKey::es256(&unique("client-key"));
    let jkt = key.public_jwk(None).unwrap().thumbprint().to_owned();
    let dtok = dpop_token(&stack.origin, &client, &key);
    let url = format!("{}/secure/x", edge.url);
    let p1 = proof(&key, "GET", &url, Some(&dtok), None);
    let a = get(edge, "/secure/x", Some(&format!("DPoP {dtok}")), Some(&p1));
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["identity"]["gatehouse-jkt"], jkt.as_str());
    // A second fresh proof works too; the replayed first one does not.
    let p2 = proof(&key, "GET", &url, Some(&dtok), None);
    assert_eq!(
        get(edge, "/secure/x", Some(&format!("DPoP {dtok}")), Some(&p2)).status,
        200
    );
    let a = get(edge, "/secure/x", Some(&format!("DPoP {dtok}")), Some(&p1));
    assert_refused(&a, 401, "invalid_dpop_proof", "DPoP");
    assert!(a.body["error_description"]
        .as_str()
        .unwrap()
        .contains("already used"));

    // DPoP refusals.
    let dpop_auth = format!("DPoP {dtok}");
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("no proof", None, "invalid_dpop_proof"),
        (
            "wrong htm",
            Some(proof(&key, "POST", &url, Some(&dtok), None)),
            "invalid_dpop_proof",
        ),
        (
            "wrong htu",
            Some(proof(
                &key,
                "GET",
                &format!("{}/other", edge.url),
                Some(&dtok),
                None,
            )),
            "invalid_dpop_proof",
        ),
        (
            "no ath",
            Some(proof(&key, "GET", &url, None, None)),
            "invalid_dpop_proof",
        ),
        (
            "wrong ath",
            Some(proof(&key, "GET", &url, Some(&bearer), None)),
            "invalid_dpop_proof",
        ),
        (
            "another key",
            Some(proof(
                &TestKey::es256("other"),
                "GET",
                &url,
                Some(&dtok),
                None,
            )),
            "invalid_token",
        ),
        (
            "garbage proof",
            Some("not.a.proof".into()),
            "invalid_dpop_proof",
        ),
    ];
    for (what, p, error) in cases {
        let a = get(edge, "/secure/x", Some(&dpop_auth), p.as_deref());
        assert_eq!(a.status, 401, "{what}: {}", a.body);
        assert_refused(&a, 401, error, "DPoP");
        assert!(a.challenge.contains("algs="), "{what}: {}", a.challenge);
    }
    // A bound token with the Bearer scheme: refused (no downgrade).
    let a = get(edge, "/orders/1", Some(&format!("Bearer {dtok}")), None);
    assert_refused(&a, 401, "invalid_token", "Bearer");
    // An unbound token with the DPoP scheme.
    let p = proof(
        &key,
        "GET",
        &format!("{}/orders/1", edge.url),
        Some(&bearer),
        None,
    );
    let a = get(edge, "/orders/1", Some(&format!("DPoP {bearer}")), Some(&p));
    assert_refused(&a, 401, "invalid_token", "DPoP");
    // A DPoP-required route with a Bearer token.
    let a = get(edge, "/secure/x", Some(&format!("Bearer {bearer}")), None);
    assert_refused(&a, 401, "invalid_token", "DPoP");

    // Access-token refusals.
    let a = get(edge, "/orders/1", None, None);
    assert_eq!(a.status, 401);
    assert!(a.challenge.starts_with("Bearer"), "{}", a.challenge);
    let a = get(edge, "/orders/1", Some("Basic dXNlcjpwYXNz"), None);
    assert!(a.status == 401 || a.status == 400, "{}", a.body);
    let a = get(edge, "/orders/1", Some("Bearer not-a-jwt"), None);
    assert_refused(&a, 401, "invalid_token", "Bearer");
    let mut tampered = bearer.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let a = get(edge, "/orders/1", Some(&format!("Bearer {tampered}")), None);
    assert_refused(&a, 401, "invalid_token", "Bearer");
    assert!(!a.body.to_string().contains(&tampered[..20]));
    // Untrusted issuer: refused before any key lookup.
    let rogue = TestKey::es256("rogue");
    let mut c = issuer.claims(&edge.url, "rogue-1");
    c["iss"] = "https://rogue.example".into();
    let rogue_tok = rogue.sign(&json!({"alg":"ES256","typ":"at+jwt","kid":"r"}), &c);
    let a = get(
        edge,
        "/orders/1",
        Some(&format!("Bearer {rogue_tok}")),
        None,
    );
    assert_refused(&a, 401, "invalid_token", "Bearer");
    assert!(a.body["error_description"]
        .as_str()
        .unwrap()
        .contains("issuer"));
    // The second issuer's tokens: accepted; expired (with expires_at); other audience; unknown kid.
    let good = issuer.mint(&issuer.claims(&edge.url, "t-ok"));
    let a = get(edge, "/orders/1", Some(&format!("Bearer {good}")), None);
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["identity"]["gatehouse-sub"], "user-7");
    let mut c = issuer.claims(&edge.url, "t-exp");
    c["exp"] = (now() - 3600).into();
    c["iat"] = (now() - 4000).into();
    c["nbf"] = (now() - 4000).into();
    let a = get(
        edge,
        "/orders/1",
        Some(&format!("Bearer {}", issuer.mint(&c))),
        None,
    );
    assert_refused(&a, 401, "invalid_token", "Bearer");
    assert_eq!(a.body["expires_at"], c["exp"]);
    let c = issuer.claims("https://elsewhere.example", "t-aud");
    let a = get(
        edge,
        "/orders/1",
        Some(&format!("Bearer {}", issuer.mint(&c))),
        None,
    );
    assert_refused(&a, 401, "invalid_token", "Bearer");
    let unknown_kid = issuer.key.sign(
        &json!({"alg":"ES256","typ":"at+jwt","kid":"nope"}),
        &issuer.claims(&edge.url, "t-kid"),
    );
    let a = get(
        edge,
        "/orders/1",
        Some(&format!("Bearer {unknown_kid}")),
        None,
    );
    assert_refused(&a, 401, "invalid_token", "Bearer");

    // Route policy: scope, public.
    let a = get(
        edge,
        "/admin/users",
        Some(&format!("Bearer {bearer}")),
        None,
    );
    assert_refused(&a, 403, "insufficient_scope", "Bearer");
    assert!(a.challenge.contains("scope=\"admin\""), "{}", a.challenge);
    let a = get(edge, "/public/logo", None, None);
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(
        a.body["identity"]
            .get("gatehouse-sub")
            .is_none_or(Value::is_null),
        "{}",
        a.body
    );

    // CORS: preflight and exposed headers.
    let resp = http()
        .request(reqwest::Method::OPTIONS, format!("{}/orders/1", edge.url))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization, dpop")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let resp = http()
        .get(format!("{}/orders/1", edge.url))
        .header("origin", "https://app.example")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 401);
    let expose = resp.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap();
    assert!(expose.contains("WWW-Authenticate") && expose.contains("DPoP-Nonce"));

    // Revocation: ingest a signed document, the token is refused afterwards.
    let revoked = issuer.mint(&issuer.claims(&edge.url, "t-revoked"));
    assert_eq!(
        get(edge, "/o", Some(&format!("Bearer {revoked}")), None).status,
        200
    );
    let entry = RevocationEntry {
        kind: RevocationKind::Jti,
        value: "t-revoked".into(),
        revoked_at: now(),
        until: now() + 600,
    };
    assert_eq!(
        ingest(edge, &issuer.revocations(2, vec![entry.clone()])),
        204
    );
    let a = get(edge, "/o", Some(&format!("Bearer {revoked}")), None);
    assert_refused(&a, 401, "invalid_token", "Bearer");
    assert!(a.body["error_description"]
        .as_str()
        .unwrap()
        .contains("revoked"));
    assert_eq!(
        get(edge, "/o", Some(&format!("Bearer {good}")), None).status,
        200
    );
    // Older versions: 409; a forged signature: 400; garbage: 400.
    assert_eq!(ingest(edge, &issuer.revocations(1, vec![])), 409);
    let forged = TestKey::es256("forger").sign(
        &json!({"alg": "ES256", "typ": REVOCATIONS_TYP, "kid": TEST_KID}),
        &RevocationDocument {
            iss: issuer.url.clone(),
            iat: now(),
            version: 9,
            entries: vec![],
        }
        .to_claims(),
    );
    assert_eq!(ingest(edge, &forged), 400);
    assert_eq!(ingest(edge, "garbage"), 400);
    assert_eq!(
        get(edge, "/o", Some(&format!("Bearer {revoked}")), None).status,
        401
    );

    // Health: per-issuer keys and revocation version, no secrets.
    let h: Value = edge.health().unwrap();
    let issuers = h["issuers"].as_array().unwrap();
    assert_eq!(issuers.len(), 2, "{h}");
    assert_eq!(issuers[1]["jwks"]["kids"][0], TEST_KID, "{h}");
    assert_eq!(issuers[1]["revocations"]["version"], 2, "{h}");
    assert!(
        !issuers[0]["jwks"]["kids"].as_array().unwrap().is_empty(),
        "{h}"
    );

    // The log: one JSON line per request, no token material.
    let log = stack.edge.proc.log();
    assert!(log.contains("\"outcome\":\"forwarded\""), "{log}");
    assert!(!log.contains(&bearer[..40]));
    assert!(!log.contains(&dtok[..40]));
}

#[test]
fn nonce_required_and_429_at_the_configured_rate() {
    let (stack, _) = stack_with(|_, _| {
        vec![
            ("DPOP_NONCE".into(), "required".into()),
            (
                "DPOP_NONCE_SECRET".into(),
                "e2e-nonce-secret-0123456789abcdef0123".into(),
            ),
            ("RATE_LIMIT_CLIENT".into(), "3/60".into()),
            ("RATE_LIMIT_IP".into(), "4/60".into()),
        ]
    });
    let edge = &stack.edge;
    let client = stack.client("read");
    let key = TestKey::es256(&unique("nonce-key"));
    let dtok = dpop_token(&stack.origin, &client, &key);
    let url = format!("{}/n", edge.url);
    let a = get(
        edge,
        "/n",
        Some(&format!("DPoP {dtok}")),
        Some(&proof(&key, "GET", &url, Some(&dtok), None)),
    );
    assert_refused(&a, 401, "use_dpop_nonce", "DPoP");
    let nonce = a.headers["dpop-nonce"].to_str().unwrap().to_owned();
    let a = get(
        edge,
        "/n",
        Some(&format!("DPoP {dtok}")),
        Some(&proof(&key, "GET", &url, Some(&dtok), Some(&nonce))),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let a = get(
        edge,
        "/n",
        Some(&format!("DPoP {dtok}")),
        Some(&proof(
            &key,
            "GET",
            &url,
            Some(&dtok),
            Some("bm90LWEtbm9uY2U"),
        )),
    );
    assert_refused(&a, 401, "use_dpop_nonce", "DPoP");
    assert!(a.headers.get("dpop-nonce").is_some());

    // Per client: 3 per minute, the 4th is 429 with Retry-After and RateLimit-*.
    let other = stack.client("read");
    let tok = stack.origin.client_credentials(&other, &[])["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    for i in 0..3 {
        let a = get(edge, "/r", Some(&format!("Bearer {tok}")), None);
        assert_eq!(a.status, 200, "request {i}: {}", a.body);
    }
    let a = get(edge, "/r", Some(&format!("Bearer {tok}")), None);
    assert_eq!(a.status, 429, "{}", a.body);
    assert!(a.headers.get("retry-after").is_some());
    assert!(a.headers.get("ratelimit-policy").is_some());
    assert!(a.headers.get("ratelimit").is_some());

    // Per IP for failed attempts: the nonce failures above already count;
    // failures keep being charged until 429.
    let mut saw_429 = false;
    for _ in 0..6 {
        if get(edge, "/r", Some("Bearer nope"), None).status == 429 {
            saw_429 = true;
            break;
        }
    }
    assert!(saw_429, "failed attempts are rate-limited per IP");
}

#[test]
fn rotated_key_is_picked_up_and_the_origin_going_away_is_survived() {
    let (mut stack, _) = stack_with(|_, _| vec![("JWKS_REFRESH_COOLDOWN_SECS".into(), "0".into())]);
    let client = stack.client("read");
    let token = |stack: &Stack| {
        stack.origin.client_credentials(&client, &[])["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let t1 = token(&stack);
    assert_eq!(
        get(&stack.edge, "/a", Some(&format!("Bearer {t1}")), None).status,
        200
    );
    // The admin API rotates and reloads the running origin's signer (the CLI
    // `keys rotate --immediate` writes the database only; a running origin
    // keeps signing with its loaded key until restarted).
    let rotated = http()
        .post(format!(
            "{}/admin/keys/rotate?immediate=true",
            stack.origin.url
        ))
        .bearer_auth(crate::harness::ADMIN_TOKEN)
        .send()
        .unwrap();
    assert!(rotated.status().is_success(), "{:?}", rotated.text());
    let t2 = token(&stack);
    let kid = |t: &str| -> String {
        use base64::Engine;
        let h = t.split('.').next().unwrap();
        let v: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .unwrap(),
        )
        .unwrap();
        v["kid"].as_str().unwrap().to_owned()
    };
    assert_ne!(kid(&t1), kid(&t2), "the origin signs with the new key");
    let a = get(&stack.edge, "/a", Some(&format!("Bearer {t2}")), None);
    assert_eq!(a.status, 200, "new kid picked up: {}", a.body);
    let h: Value = stack.edge.health().unwrap();
    assert!(h["issuers"][0]["jwks"]["kids"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k == kid(&t2).as_str()));

    // The origin goes away: cached keys keep validating.
    stack.origin.proc.stop();
    for t in [&t1, &t2] {
        let a = get(&stack.edge, "/a", Some(&format!("Bearer {t}")), None);
        assert_eq!(a.status, 200, "{}", a.body);
    }
}

/// A revocation document for `issuer` signed by a key its JWKS does not hold.
fn unverifiable_revocations(issuer: &TestIssuer, version: u64) -> String {
    TestKey::es256("not-in-the-jwks").sign(
        &json!({"alg": "ES256", "typ": REVOCATIONS_TYP, "kid": "test-k-unknown"}),
        &RevocationDocument {
            iss: issuer.url.clone(),
            iat: now(),
            version,
            entries: vec![],
        }
        .to_claims(),
    )
}

#[test]
fn revocations_fail_closed_ingest_is_compare_and_set_and_rate_limited() {
    let issuer = TestIssuer::start();
    let (stack, _) = stack_with(|_, edge_url| {
        vec![
            (
                "TRUSTED_ISSUERS".into(),
                issuer.trusted_issuers_var(edge_url),
            ),
            ("RATE_LIMIT_INGEST".into(), "8/60".into()),
            ("REVOCATION_TTL_SECS".into(), "60".into()),
        ]
    });
    let edge = &stack.edge;
    let kv_key = format!("revocations/{}", issuer.url);
    let token = issuer.mint(&issuer.claims(&edge.url, "t-cold"));
    let bearer = format!("Bearer {token}");

    // A cold isolate whose KV document cannot be verified (its kid is not in
    // the JWKS, even after the unknown-kid refresh) refuses: 503, not 200.
    edge.kv_put(
        "REVOCATIONS",
        &kv_key,
        &unverifiable_revocations(&issuer, 5),
    );
    let a = get(edge, "/o", Some(&bearer), None);
    assert_eq!(a.status, 503, "{}", a.body);
    assert_eq!(a.body["error"], "server_error", "{}", a.body);

    // The store takes only higher versions (its floor: KV's version 5).
    assert_eq!(ingest(edge, &issuer.revocations(4, vec![])), 409);
    assert_eq!(ingest(edge, &issuer.revocations(6, vec![])), 204);
    assert_eq!(get(edge, "/o", Some(&bearer), None).status, 200);
    // The same version again is refused too (compare-and-set, not last writer wins).
    assert_eq!(ingest(edge, &issuer.revocations(6, vec![])), 409);

    // The signature is checked before the claims are parsed: a forged
    // document with malformed entries is refused for its signature.
    let forged = TestKey::es256("forger").sign(
        &json!({"alg": "ES256", "typ": REVOCATIONS_TYP, "kid": TEST_KID}),
        &json!({"iss": issuer.url, "iat": now(), "version": 7, "entries": "not a list"}),
    );
    let resp = http()
        .post(format!("{}/.gatehouse/revocations", edge.url))
        .body(forged)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().unwrap();
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("signature"),
        "{body}"
    );

    // A body without Content-Length is cut at the cap: 413.
    let huge = vec![b'x'; 9 * 1024 * 1024];
    let status = http()
        .post(format!("{}/.gatehouse/revocations", edge.url))
        .body(reqwest::blocking::Body::new(std::io::Cursor::new(huge)))
        .send()
        .unwrap()
        .status();
    assert_eq!(status, 413);

    // Ingest is charged to the caller's address (RATE_LIMIT_INGEST): 429
    // within the quota of 8 (5 ingests above).
    let statuses: Vec<u16> = (0..8).map(|_| ingest(edge, "garbage")).collect();
    assert!(statuses.contains(&429), "{statuses:?}");

    // REVOCATION_FAIL=open: the same unverifiable document lets the token through.
    let open = Edge::start(
        &stack.origin,
        &stack.upstream,
        &[
            (
                "TRUSTED_ISSUERS",
                issuer.trusted_issuers_var("{EDGE}").as_str(),
            ),
            ("REVOCATION_FAIL", "open"),
        ],
    );
    open.kv_put(
        "REVOCATIONS",
        &kv_key,
        &unverifiable_revocations(&issuer, 5),
    );
    let token = issuer.mint(&issuer.claims(&open.url, "t-open"));
    let a = get(&open, "/o", Some(&format!("Bearer {token}")), None);
    assert_eq!(a.status, 200, "{}", a.body);
}

/// The `version` claim of a compact revocation document.
fn version_of(doc: &str) -> u64 {
    let payload = doc.split('.').nth(1).unwrap();
    let claims: Value =
        serde_json::from_slice(&gatehouse_common::b64::decode(payload).unwrap()).unwrap();
    claims["version"].as_u64().unwrap()
}

#[test]
fn concurrent_ingests_never_move_kv_backwards() {
    let issuer = TestIssuer::start();
    let (stack, _) = stack_with(|_, edge_url| {
        vec![(
            "TRUSTED_ISSUERS".into(),
            issuer.trusted_issuers_var(edge_url),
        )]
    });
    let edge = &stack.edge;
    // Versions 1..=24 pushed at once, in an order where older ones come last.
    let docs: Vec<(u64, String)> = (1..=24u64)
        .rev()
        .map(|v| (v, issuer.revocations(v, vec![])))
        .collect();
    let url = format!("{}/.gatehouse/revocations", edge.url);
    let handles: Vec<_> = docs
        .into_iter()
        .map(|(v, doc)| {
            let url = url.clone();
            std::thread::spawn(move || {
                let status = http().post(url).body(doc).send().unwrap().status().as_u16();
                (v, status)
            })
        })
        .collect();
    let results: Vec<(u64, u16)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for (v, status) in &results {
        assert!(matches!(status, 204 | 409), "version {v}: {status}");
    }
    let acknowledged = results
        .iter()
        .filter(|(_, s)| *s == 204)
        .map(|(v, _)| *v)
        .max()
        .expect("at least one version taken");
    // KV holds exactly the highest acknowledged version, and the store
    // refuses everything not above it.
    let kv = edge
        .kv_get("REVOCATIONS", &format!("revocations/{}", issuer.url))
        .expect("a document in KV");
    assert_eq!(version_of(&kv), acknowledged, "{results:?}");
    assert_eq!(ingest(edge, &issuer.revocations(acknowledged, vec![])), 409);
    assert_eq!(
        ingest(edge, &issuer.revocations(acknowledged + 1, vec![])),
        204
    );
}
