//! Every endpoint through `oneshot`, including bad input: each a clear 4xx.

use crate::support::*;
use axum::body::Body;
use axum::http::Request;
use gatehouse_common::testkit::signer::TestKey;
use serde_json::{json, Value};

fn proof(key: &TestKey, htu: &str, nonce: Option<&str>) -> String {
    let now = crate::support::now().0;
    let mut claims = json!({"jti": gatehouse_origin::support::secret::random_id().unwrap(), "htm": "POST", "htu": htu, "iat": now});
    if let Some(n) = nonce {
        claims["nonce"] = n.into();
    }
    key.sign(
        &json!({"typ": "dpop+jwt", "alg": key.alg().name(), "jwk": key.public_jwk_json()}),
        &claims,
    )
}

async fn jwks(state: &gatehouse_origin::domain::state::AppState) -> Value {
    let (s, h, body) = send(
        state,
        Request::get("/.well-known/jwks.json")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    assert!(h["cache-control"].to_str().unwrap().contains("max-age=300"));
    body
}

#[tokio::test]
async fn token_is_verified_by_an_independent_jose_library() {
    let state = sqlite_state().await;
    let c = register(&state, "read write", false).await;
    let (s, h, body) = token(&state, &c, "grant_type=client_credentials&scope=read").await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "read");
    assert_eq!(body["expires_in"], 300);
    let at = body["access_token"].as_str().unwrap();

    let keys = jwks(&state).await;
    let k = &keys["keys"][0];
    assert_eq!(k["alg"], "ES256");
    assert_eq!(k["use"], "sig");
    assert!(k.get("d").is_none());
    let header = jsonwebtoken::decode_header(at).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.kid.as_deref(), k["kid"].as_str());
    let key = jsonwebtoken::DecodingKey::from_ec_components(
        k["x"].as_str().unwrap(),
        k["y"].as_str().unwrap(),
    )
    .unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.set_audience(&[AUD]);
    v.set_issuer(&["http://127.0.0.1:8080"]);
    v.set_required_spec_claims(&["exp", "iat", "nbf", "iss", "aud", "sub"]);
    let data = jsonwebtoken::decode::<Value>(at, &key, &v).unwrap();
    let claims = data.claims;
    assert_eq!(claims["sub"], c.id.as_str());
    assert_eq!(claims["client_id"], c.id.as_str());
    assert_eq!(claims["scope"], "read");
    assert_eq!(claims["aud"], AUD);
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
    assert!(claims["sid"].as_str().is_some());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );
}

#[tokio::test]
async fn client_secret_post_audience_and_scope_rules() {
    let state = sqlite_state().await;
    let c = register(&state, "read write", false).await;
    let body = format!("grant_type=client_credentials&client_id={}&client_secret={}&resource=https%3A%2F%2Fother.example", c.id, c.secret);
    let (s, _, b) = send(
        &state,
        form_post("/token", None, "")
            .body(Body::from(body))
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["scope"], "read write");
    let (s, _, b) = token(&state, &c, "grant_type=client_credentials&scope=admin").await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_scope")));
    let (s, _, b) = token(
        &state,
        &c,
        "grant_type=client_credentials&audience=https%3A%2F%2Fevil.example",
    )
    .await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_target")));
}

#[tokio::test]
async fn wrong_credentials_are_401_with_basic_challenge() {
    let state = sqlite_state().await;
    let c = register(&state, "read", false).await;
    for auth in [
        basic(&c.id, "wrong"),
        basic("nobody", &c.secret),
        "Bearer abc".to_owned(),
        "Basic !!!".to_owned(),
    ] {
        let (s, h, b) = send(
            &state,
            form_post("/token", Some(&auth), "")
                .body(Body::from("grant_type=client_credentials"))
                .unwrap(),
        )
        .await;
        assert_eq!(s, 401, "{auth}");
        assert_eq!(b["error"], "invalid_client");
        assert!(h["www-authenticate"].to_str().unwrap().starts_with("Basic"));
    }
    let (s, _, b) = send(
        &state,
        form_post("/token", None, "")
            .body(Body::from("grant_type=client_credentials"))
            .unwrap(),
    )
    .await;
    assert_eq!((s, b["error"].as_str()), (401, Some("invalid_client")));
    let events = gatehouse_origin::store::audit::list(&state.db, 10, &Default::default())
        .await
        .unwrap();
    assert!(events.iter().any(|e| e.event == "authentication_failed"));
    assert!(events.iter().all(|e| !format!("{e:?}").contains(&c.secret)));
}

#[tokio::test]
async fn bad_input_is_always_a_clear_4xx() {
    let state = sqlite_state().await;
    let c = register(&state, "read", false).await;
    let auth = basic(&c.id, &c.secret);
    let cases: Vec<(&str, Request<Body>, u16, &str)> = vec![
        (
            "missing grant_type",
            form_post("/token", Some(&auth), "")
                .body(Body::from("scope=read"))
                .unwrap(),
            400,
            "invalid_request",
        ),
        (
            "unknown grant",
            form_post("/token", Some(&auth), "")
                .body(Body::from("grant_type=password"))
                .unwrap(),
            400,
            "unsupported_grant_type",
        ),
        (
            "duplicate parameter",
            form_post("/token", Some(&auth), "")
                .body(Body::from("grant_type=client_credentials&scope=a&scope=b"))
                .unwrap(),
            400,
            "invalid_request",
        ),
        (
            "malformed encoding",
            form_post("/token", Some(&auth), "")
                .body(Body::from("grant_type=client_credentials&scope=%ff"))
                .unwrap(),
            400,
            "invalid_request",
        ),
        (
            "non-UTF-8 body",
            form_post("/token", Some(&auth), "")
                .body(Body::from(vec![0xff, 0xfe]))
                .unwrap(),
            400,
            "invalid_request",
        ),
        (
            "wrong content type",
            Request::post("/token")
                .header("authorization", &auth)
                .header("content-type", "application/json")
                .body(Body::from("{}"))
                .unwrap(),
            415,
            "invalid_request",
        ),
        (
            "no content type",
            Request::post("/token")
                .header("authorization", &auth)
                .body(Body::from("grant_type=client_credentials"))
                .unwrap(),
            415,
            "invalid_request",
        ),
        (
            "oversized body",
            form_post("/token", Some(&auth), "")
                .body(Body::from(format!(
                    "grant_type=client_credentials&x={}",
                    "a".repeat(20_000)
                )))
                .unwrap(),
            413,
            "invalid_request",
        ),
        (
            "two auth methods",
            form_post("/token", Some(&auth), "")
                .body(Body::from(format!(
                    "grant_type=client_credentials&client_secret={}",
                    c.secret
                )))
                .unwrap(),
            400,
            "invalid_request",
        ),
        (
            "garbage DPoP",
            form_post("/token", Some(&auth), "")
                .header("dpop", "garbage")
                .body(Body::from("grant_type=client_credentials"))
                .unwrap(),
            400,
            "invalid_dpop_proof",
        ),
        (
            "two DPoP headers",
            form_post("/token", Some(&auth), "")
                .header("dpop", "a.b.c")
                .header("dpop", "a.b.c")
                .body(Body::from("grant_type=client_credentials"))
                .unwrap(),
            400,
            "invalid_dpop_proof",
        ),
        (
            "introspect without token",
            form_post("/introspect", Some(&auth), "")
                .body(Body::from("x=1"))
                .unwrap(),
            400,
            "invalid_request",
        ),
        (
            "unknown path",
            Request::get("/nope").body(Body::empty()).unwrap(),
            404,
            "not_found",
        ),
        (
            "wrong method",
            Request::get("/token").body(Body::empty()).unwrap(),
            405,
            "invalid_request",
        ),
    ];
    for (name, req, status, code) in cases {
        let (s, _, b) = send(&state, req).await;
        assert_eq!(s, status, "{name}: {b}");
        assert_eq!(b["error"], code, "{name}");
        assert!(b["error_description"].is_string(), "{name}");
    }
}

#[tokio::test]
async fn random_bodies_never_cause_a_5xx() {
    let state = sqlite_state().await;
    let c = register(&state, "read", false).await;
    let auth = basic(&c.id, &c.secret);
    let mut seed = 0x9e37_79b9_u64;
    for _ in 0..200 {
        let len = (seed % 300) as usize;
        let body: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let alphabet = b"grant_type=client_credentials&%=scope+dpop\xff\x00";
                alphabet[(seed % alphabet.len() as u64) as usize]
            })
            .collect();
        for path in ["/token", "/introspect", "/revoke"] {
            let (s, _, _) = send(
                &state,
                form_post(path, Some(&auth), "")
                    .body(Body::from(body.clone()))
                    .unwrap(),
            )
            .await;
            assert!(s < 500, "{path} answered {s}");
        }
    }
}

#[tokio::test]
async fn dpop_binds_the_token_and_refuses_replay() {
    let state = sqlite_state().await;
    let c = register(&state, "read", true).await;
    let key = TestKey::es256("dpop-client");
    let jkt = key.public_jwk(None).unwrap().thumbprint().to_owned();
    // A DPoP-required client never gets a Bearer token.
    let (s, _, b) = token(&state, &c, "grant_type=client_credentials").await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_dpop_proof")));
    let p = proof(&key, "http://127.0.0.1:8080/token", None);
    let req = || {
        form_post("/token", Some(&basic(&c.id, &c.secret)), "")
            .header("dpop", &p)
            .body(Body::from("grant_type=client_credentials"))
            .unwrap()
    };
    let (s, _, b) = send(&state, req()).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["token_type"], "DPoP");
    let claims: Value = serde_json::from_slice(
        &gatehouse_common::b64::decode(
            b["access_token"]
                .as_str()
                .unwrap()
                .split('.')
                .nth(1)
                .unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["cnf"]["jkt"], jkt.as_str());
    let (s, _, b) = send(&state, req()).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "replayed proof"
    );
    // Wrong htu.
    let p = proof(&key, "http://127.0.0.1:8080/other", None);
    let (s, _, b) = send(
        &state,
        form_post("/token", Some(&basic(&c.id, &c.secret)), "")
            .header("dpop", &p)
            .body(Body::from("grant_type=client_credentials"))
            .unwrap(),
    )
    .await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_dpop_proof")));
}

#[tokio::test]
async fn dpop_nonce_is_required_when_enabled() {
    let state = sqlite_state_with(|c| c.dpop_nonce = true).await;
    let c = register(&state, "read", false).await;
    let key = TestKey::ed25519("nonce-client");
    let p = proof(&key, "http://127.0.0.1:8080/token", None);
    let (s, h, b) = send(
        &state,
        form_post("/token", Some(&basic(&c.id, &c.secret)), "")
            .header("dpop", &p)
            .body(Body::from("grant_type=client_credentials"))
            .unwrap(),
    )
    .await;
    assert_eq!((s, b["error"].as_str()), (400, Some("use_dpop_nonce")));
    let nonce = h["dpop-nonce"].to_str().unwrap().to_owned();
    let p = proof(&key, "http://127.0.0.1:8080/token", Some(&nonce));
    let (s, h, b) = send(
        &state,
        form_post("/token", Some(&basic(&c.id, &c.secret)), "")
            .header("dpop", &p)
            .body(Body::from("grant_type=client_credentials"))
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["token_type"], "DPoP");
    assert!(h.contains_key("dpop-nonce"));
}

#[tokio::test]
async fn introspection_and_revocation_agree_with_common() {
    let state = sqlite_state().await;
    let c = register(&state, "read", false).await;
    let other = register(&state, "read", false).await;
    let (_, _, b) = token(&state, &c, "grant_type=client_credentials").await;
    let at = b["access_token"].as_str().unwrap().to_owned();
    let introspect = |tok: String, who: &Registered| {
        form_post("/introspect", Some(&basic(&who.id, &who.secret)), "")
            .body(Body::from(format!("token={tok}")))
            .unwrap()
    };
    let (s, h, b) = send(&state, introspect(at.clone(), &c)).await;
    assert_eq!(s, 200);
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(b["active"], true);
    assert_eq!(b["client_id"], c.id.as_str());
    // Garbage and foreign tokens are inactive.
    let foreign = TestKey::es256("foreign").sign(
        &json!({"alg": "ES256", "typ": "at+jwt", "kid": "x"}),
        &json!({"iss": "http://127.0.0.1:8080", "sub": "s", "aud": AUD, "exp": 4_000_000_000_i64, "iat": 1, "jti": "j", "client_id": "c"}),
    );
    for tok in ["garbage".to_owned(), foreign] {
        let (s, _, b) = send(&state, introspect(tok, &c)).await;
        assert_eq!((s, &b), (200, &json!({"active": false})));
    }
    // Expired: signed by our key long ago.
    let ring = state.key_ring().unwrap();
    let old = gatehouse_origin::domain::token::sign_access_token(
        ring.signer(crate::support::now()).unwrap(),
        "http://127.0.0.1:8080",
        300,
        &gatehouse_origin::domain::token::AccessTokenClaims {
            sub: "s",
            client_id: &c.id,
            aud: AUD,
            scopes: &[],
            sid: "f",
            jkt: None,
        },
        gatehouse_common::UnixTime(crate::support::now().0 - 10_000),
    )
    .unwrap();
    let (_, _, b) = send(&state, introspect(old.access_token, &c)).await;
    assert_eq!(b["active"], false);
    // Another client cannot revoke it; unknown tokens are 200.
    for (tok, who) in [(at.clone(), &other), ("unknown".to_owned(), &c)] {
        let (s, _, _) = send(
            &state,
            form_post("/revoke", Some(&basic(&who.id, &who.secret)), "")
                .body(Body::from(format!("token={tok}")))
                .unwrap(),
        )
        .await;
        assert_eq!(s, 200);
    }
    assert_eq!(
        send(&state, introspect(at.clone(), &c)).await.2["active"],
        true
    );
    let (s, _, _) = send(
        &state,
        form_post("/revoke", Some(&basic(&c.id, &c.secret)), "")
            .body(Body::from(format!(
                "token={at}&token_type_hint=access_token"
            )))
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(send(&state, introspect(at, &c)).await.2["active"], false);
    let outbox = gatehouse_origin::store::revocation::pending_outbox(&state.db)
        .await
        .unwrap();
    assert_eq!(
        outbox.len(),
        1,
        "revocation and outbox row written together"
    );
}

#[tokio::test]
async fn token_endpoint_is_rate_limited_per_client() {
    let state = sqlite_state_with(|c| c.token_rate_per_minute = 2).await;
    let c = register(&state, "read", false).await;
    assert_eq!(
        token(&state, &c, "grant_type=client_credentials").await.0,
        200
    );
    assert_eq!(
        token(&state, &c, "grant_type=client_credentials").await.0,
        200
    );
    let (s, h, b) = token(&state, &c, "grant_type=client_credentials").await;
    assert_eq!(s, 429, "{b}");
    assert!(h["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
}

#[tokio::test]
async fn admin_api_manages_clients_keys_revocations_and_audit() {
    let state = sqlite_state().await;
    let admin = |method: &str, path: &str, body: Option<Value>| {
        let b = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {ADMIN}"));
        match body {
            Some(v) => b
                .header("content-type", "application/json")
                .body(Body::from(v.to_string()))
                .unwrap(),
            None => b.body(Body::empty()).unwrap(),
        }
    };
    let (s, h, _) = send(
        &state,
        Request::get("/admin/clients").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(s, 401);
    assert!(h["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    let (s, _, _) = send(
        &state,
        Request::get("/admin/clients")
            .header("authorization", "Bearer wrong")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, 401);

    let (s, _, created) = send(
        &state,
        admin(
            "POST",
            "/admin/clients",
            Some(json!({"name": "svc", "scope": "read", "audiences": [AUD]})),
        ),
    )
    .await;
    assert_eq!(s, 201, "{created}");
    let id = created["client_id"].as_str().unwrap().to_owned();
    let old = Registered {
        id: id.clone(),
        secret: created["client_secret"].as_str().unwrap().to_owned(),
    };
    let (s, _, _) = send(
        &state,
        admin(
            "POST",
            "/admin/clients",
            Some(json!({"name": "svc", "bogus": 1})),
        ),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _, shown) = send(&state, admin("GET", &format!("/admin/clients/{id}"), None)).await;
    assert_eq!(s, 200);
    assert!(shown.get("client_secret").is_none());

    let (s, _, rotated) = send(
        &state,
        admin(
            "POST",
            &format!("/admin/clients/{id}/rotate-secret?grace=60"),
            None,
        ),
    )
    .await;
    assert_eq!(s, 200);
    let new = Registered {
        id: id.clone(),
        secret: rotated["client_secret"].as_str().unwrap().to_owned(),
    };
    assert_eq!(
        token(&state, &new, "grant_type=client_credentials").await.0,
        200
    );
    assert_eq!(
        token(&state, &old, "grant_type=client_credentials").await.0,
        200,
        "old secret within grace"
    );
    let (s, _, _) = send(
        &state,
        admin(
            "POST",
            &format!("/admin/clients/{id}/rotate-secret?grace=0"),
            None,
        ),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        token(&state, &new, "grant_type=client_credentials").await.0,
        401,
        "grace 0: previous secret is dead"
    );

    let (s, _, rev) = send(
        &state,
        admin(
            "POST",
            "/admin/revocations",
            Some(json!({"kind": "client_id", "value": id})),
        ),
    )
    .await;
    assert_eq!(s, 201, "{rev}");
    let (s, _, _) = send(
        &state,
        admin(
            "POST",
            "/admin/revocations",
            Some(json!({"kind": "nope", "value": "x"})),
        ),
    )
    .await;
    assert_eq!(s, 400);
    let (_, _, list) = send(&state, admin("GET", "/admin/revocations", None)).await;
    assert_eq!(list["revocations"].as_array().unwrap().len(), 1);

    let (s, _, k) = send(&state, admin("POST", "/admin/keys/rotate", None)).await;
    assert_eq!(s, 200, "{k}");
    let (_, _, keys) = send(&state, admin("GET", "/admin/keys", None)).await;
    let states: Vec<_> = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["state"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(states, ["active", "published"]);
    assert_eq!(
        jwks(&state).await["keys"].as_array().unwrap().len(),
        2,
        "the next key is published before it signs"
    );

    let (_, _, audit) = send(&state, admin("GET", "/admin/audit?limit=100", None)).await;
    let kinds: Vec<_> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_owned())
        .collect();
    for k in [
        "client_created",
        "client_secret_rotated",
        "token_issued",
        "token_revoked",
        "key_rotated",
    ] {
        assert!(kinds.iter().any(|x| x == k), "{k} in {kinds:?}");
    }
    let (s, _, _) = send(
        &state,
        admin("DELETE", &format!("/admin/clients/{id}"), None),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _, _) = send(&state, admin("GET", &format!("/admin/clients/{id}"), None)).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn admin_api_is_off_without_a_token() {
    let state = sqlite_state_with(|c| c.admin_token = None).await;
    let (s, _, _) = send(
        &state,
        Request::get("/admin/clients")
            .header("authorization", "Bearer x")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn discovery_metadata_openapi_and_metrics() {
    let state = sqlite_state().await;
    let (s, _, m) = send(
        &state,
        Request::get("/.well-known/oauth-authorization-server")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(m["issuer"], "http://127.0.0.1:8080");
    assert_eq!(m["token_endpoint"], "http://127.0.0.1:8080/token");
    assert_eq!(
        m["grant_types_supported"],
        json!([
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:token-exchange"
        ])
    );
    assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        m["authorization_endpoint"],
        "http://127.0.0.1:8080/authorize"
    );
    assert!(m["dpop_signing_alg_values_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("ES256")));
    assert!(
        m.get("device_authorization_endpoint").is_none(),
        "nothing advertised that is not served"
    );
    // RFC 8414 §2: an endpoint that accepts private_key_jwt names its
    // assertion algorithms (Authlib's metadata validator refuses it otherwise).
    for endpoint in ["token", "introspection", "revocation"] {
        let methods = m[format!("{endpoint}_endpoint_auth_methods_supported")]
            .as_array()
            .expect("auth methods")
            .clone();
        if methods.contains(&json!("private_key_jwt")) {
            let algs = &m[format!("{endpoint}_endpoint_auth_signing_alg_values_supported")];
            assert!(
                algs.as_array()
                    .is_some_and(|a| a.contains(&json!("ES256")) && !a.contains(&json!("none"))),
                "{endpoint}: {algs}"
            );
        }
    }
    let (s, _, doc) = send(
        &state,
        Request::get("/openapi.json").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    // Routes and document agree both ways: tests/it/openapi.rs.
    assert!(doc["paths"]["/token"]["post"].is_object());
    let c = register(&state, "read", false).await;
    token(&state, &c, "grant_type=client_credentials").await;
    let resp = tower::ServiceExt::oneshot(
        gatehouse_origin::http::router(state.clone()),
        Request::get("/metrics").body(Body::empty()).unwrap(),
    )
    .await
    .unwrap();
    let text = String::from_utf8(
        http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert!(text.contains(&format!("gatehouse_tokens_issued_total{{grant=\"client_credentials\",alg=\"ES256\",token_type=\"Bearer\",client=\"{}\"}} 1", c.id)), "{text}");
    assert!(text.contains("gatehouse_request_duration_seconds_count{route=\"/token\"}"));
}

#[test]
fn native_provider_passes_wycheproof() {
    use gatehouse_common::testkit::wycheproof::{run_all, VectorFiles};
    let report = run_all(
        &gatehouse_origin::support::crypto::AwsLc,
        &VectorFiles::embedded(),
    );
    assert!(
        report.unreadable_files.is_empty(),
        "{:?}",
        report.unreadable_files
    );
    assert!(report.total > 1000, "{}", report.total);
    assert!(
        report.failures.is_empty(),
        "{:#?}",
        &report.failures[..report.failures.len().min(10)]
    );
}
