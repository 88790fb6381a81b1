//! OpenID Connect UserInfo (`GET`/`POST /userinfo`, OIDC Core §5.3): the
//! attacks first — no token, malformed ones, expired (on the server's
//! clock), another key's, revoked (RFC 7009 and by deleting the user),
//! without `openid`, a DPoP-bound token as Bearer or with a wrong proof
//! (another key, htu, htm, no ath, replayed), an ID-token-shaped JWT signed
//! by the origin itself, a token in the URL or the body, oversized headers
//! — then the claims each scope releases, Bearer and DPoP, GET and POST.

use crate::support::*;
use axum::body::Body;
use axum::http::{HeaderMap, Request};
use gatehouse_common::testkit::signer::TestKey;
use gatehouse_origin::domain::admin;
use gatehouse_origin::domain::clients::{self, NewClient};
use gatehouse_origin::domain::grants::{self, CodeGrant};
use gatehouse_origin::domain::state::AppState;
use gatehouse_origin::domain::users::{self, ProfileInput};
use gatehouse_origin::support::clock::SettableClock;
use gatehouse_origin::support::secret::{random_id, Password};
use serde_json::{json, Value};
use std::sync::Arc;

/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

struct Fx {
    state: AppState,
    clock: Arc<SettableClock>,
    client: Registered,
    user: users::User,
}

async fn fixture() -> Fx {
    fixture_with(|_| {}).await
}

async fn fixture_with(f: impl FnOnce(&mut gatehouse_origin::config::Config)) -> Fx {
    let (state, clock) = sqlite_state_on_settable_clock(f).await;
    let now = state.clock.now().secs();
    let (c, s) = clients::create(
        &state.db,
        &NewClient {
            name: "rp".into(),
            scopes: ["openid", "profile", "email", "read"]
                .map(str::to_owned)
                .to_vec(),
            audiences: vec![AUD.into()],
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            redirect_uris: vec![CB.into()],
            ..NewClient::default()
        },
        now,
    )
    .await
    .unwrap();
    let user = users::create_with_profile(
        &state.db,
        "alice",
        &Password::new("correct horse battery".into()),
        &ProfileInput {
            name: Some("Alice Liddell".into()),
            email: Some("alice@example.com".into()),
            email_verified: Some(true),
        },
        now,
    )
    .await
    .unwrap();
    Fx {
        state,
        clock,
        client: Registered::new(c, s),
        user,
    }
}

fn iss(fx: &Fx) -> String {
    fx.state.config.issuer.clone()
}

/// A DPoP proof by `key` for `htm htu`, with `ath` of `token` if given.
fn proof(key: &TestKey, htm: &str, htu: &str, token: Option<&str>, iat: i64) -> String {
    let mut claims = json!({"jti": random_id().unwrap(), "htm": htm, "htu": htu, "iat": iat});
    if let Some(t) = token {
        claims["ath"] = gatehouse_common::dpop::ath(t).into();
    }
    key.sign(
        &json!({"typ": "dpop+jwt", "alg": key.alg().name(), "jwk": key.public_jwk_json()}),
        &claims,
    )
}

/// An access token for alice with `scopes` through authorization_code at
/// `/token`, bound to `key` when given.
async fn issue(fx: &Fx, scopes: &str, key: Option<&TestKey>) -> String {
    let now = fx.state.clock.now().secs();
    let code = grants::issue_code(
        &fx.state.db,
        &CodeGrant {
            client_id: fx.client.id.clone(),
            user_id: fx.user.user_id.clone(),
            redirect_uri: CB.into(),
            scopes: scopes.split(' ').map(str::to_owned).collect(),
            audience: AUD.into(),
            code_challenge: CHALLENGE.into(),
            dpop_jkt: None,
            session: gatehouse_origin::domain::grants::ApprovingSession {
                sid: crate::support::live_session(&fx.state.db, &fx.user.user_id).await,
                auth_time: 1,
                amr: "pwd".into(),
            },
            nonce: None,
        },
        now,
    )
    .await
    .unwrap();
    let body = format!(
        "grant_type=authorization_code&code={}&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&code_verifier={VERIFIER}",
        code.expose()
    );
    let mut req = form_post("/token", Some(&basic(&fx.client.id, &fx.client.secret)), "");
    if let Some(k) = key {
        req = req.header(
            "dpop",
            proof(k, "POST", &format!("{}/token", iss(fx)), None, now.0),
        );
    }
    let (s, _, t) = send(&fx.state, req.body(Body::from(body)).unwrap()).await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(
        t["token_type"],
        if key.is_some() { "DPoP" } else { "Bearer" }
    );
    t["access_token"].as_str().unwrap().to_owned()
}

/// `method /userinfo` with these headers (and form `body` for POST).
async fn call(
    state: &AppState,
    method: &str,
    uri: &str,
    headers: &[(&str, String)],
    body: &str,
) -> (u16, HeaderMap, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    for (n, v) in headers {
        req = req.header(*n, v.as_str());
    }
    if !body.is_empty() {
        req = req.header("content-type", "application/x-www-form-urlencoded");
    }
    send(state, req.body(Body::from(body.to_owned())).unwrap()).await
}

async fn bearer(state: &AppState, token: &str) -> (u16, HeaderMap, Value) {
    call(
        state,
        "GET",
        "/userinfo",
        &[("authorization", format!("Bearer {token}"))],
        "",
    )
    .await
}

/// Every `WWW-Authenticate` value, joined.
fn challenge(h: &HeaderMap) -> String {
    h.get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join(" | ")
}

/// A refusal: status, the error, its challenge; never the token anywhere.
fn refused(r: &(u16, HeaderMap, Value), status: u16, error: &str, token: Option<&str>) {
    let (s, h, b) = r;
    assert_eq!(*s, status, "{b}");
    assert_eq!(b["error"], error, "{b}");
    assert_eq!(h["cache-control"], "no-store");
    if let Some(t) = token {
        assert!(!b.to_string().contains(t), "the token is in the body");
        assert!(!challenge(h).contains(t), "the token is in a header");
    }
}

// ---- attacks ----------------------------------------------------------------

#[tokio::test]
async fn no_token_is_a_bare_challenge_for_both_schemes() {
    let fx = fixture().await;
    for method in ["GET", "POST"] {
        let r = call(&fx.state, method, "/userinfo", &[], "").await;
        assert_eq!(r.0, 401, "{method}");
        let c = challenge(&r.1);
        // RFC 6750 §3.1: no error code when no credentials were sent.
        assert!(!c.contains("error="), "{c}");
        assert!(c.contains("Bearer"), "{c}");
        assert!(c.contains("DPoP algs=\""), "{c}");
    }
}

#[tokio::test]
async fn malformed_tokens_and_headers_are_refused() {
    let fx = fixture().await;
    let r = bearer(&fx.state, "not-a-jwt").await;
    refused(&r, 401, "invalid_token", None);
    assert!(challenge(&r.1).contains("Bearer error=\"invalid_token\""));
    let r = bearer(&fx.state, "a.b.c").await;
    refused(&r, 401, "invalid_token", None);
    // Not `scheme SP token68`.
    let r = call(
        &fx.state,
        "GET",
        "/userinfo",
        &[("authorization", "Bearer a b".into())],
        "",
    )
    .await;
    refused(&r, 400, "invalid_request", None);
    // Two Authorization headers.
    let token = issue(&fx, "openid", None).await;
    let r = call(
        &fx.state,
        "GET",
        "/userinfo",
        &[
            ("authorization", format!("Bearer {token}")),
            ("authorization", format!("Bearer {token}")),
        ],
        "",
    )
    .await;
    refused(&r, 400, "invalid_request", Some(&token));
    // Another scheme: a bare challenge.
    let r = call(
        &fx.state,
        "GET",
        "/userinfo",
        &[("authorization", basic(&fx.client.id, &fx.client.secret))],
        "",
    )
    .await;
    assert_eq!(r.0, 401);
}

#[tokio::test]
async fn an_expired_token_is_refused_on_the_servers_clock() {
    let fx = fixture().await;
    let token = issue(&fx, "openid profile", None).await;
    assert_eq!(bearer(&fx.state, &token).await.0, 200);
    let ttl = fx.state.config.access_token_ttl;
    let leeway = fx.state.config.leeway_secs;
    fx.clock.advance_secs(ttl + leeway);
    let r = bearer(&fx.state, &token).await;
    refused(&r, 401, "invalid_token", Some(&token));
    assert_eq!(r.2["error_description"], "the access token expired");
    assert!(r.2["expires_at"].is_i64(), "{}", r.2);
}

#[tokio::test]
async fn a_token_signed_by_another_key_is_refused() {
    let fx = fixture().await;
    let genuine = issue(&fx, "openid profile email", None).await;
    let mut parts = genuine.split('.');
    let header: Value =
        serde_json::from_slice(&gatehouse_common::b64::decode(parts.next().unwrap()).unwrap())
            .unwrap();
    let claims: Value =
        serde_json::from_slice(&gatehouse_common::b64::decode(parts.next().unwrap()).unwrap())
            .unwrap();
    let attacker = TestKey::es256("userinfo-attacker");
    // The origin's kid, the attacker's signature.
    let forged = attacker.sign(
        &json!({"typ": "at+jwt", "alg": "ES256", "kid": header["kid"]}),
        &claims,
    );
    refused(
        &bearer(&fx.state, &forged).await,
        401,
        "invalid_token",
        None,
    );
    // A kid the origin never published.
    let forged = attacker.sign(
        &json!({"typ": "at+jwt", "alg": "ES256", "kid": "attacker"}),
        &claims,
    );
    refused(
        &bearer(&fx.state, &forged).await,
        401,
        "invalid_token",
        None,
    );
}

#[tokio::test]
async fn a_token_revoked_at_revoke_or_by_deleting_the_user_is_refused() {
    let fx = fixture().await;
    let token = issue(&fx, "openid", None).await;
    assert_eq!(bearer(&fx.state, &token).await.0, 200);
    let body = format!("token={token}");
    let (s, _, _) = send(
        &fx.state,
        form_post(
            "/revoke",
            Some(&basic(&fx.client.id, &fx.client.secret)),
            "",
        )
        .body(Body::from(body))
        .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    let r = bearer(&fx.state, &token).await;
    refused(&r, 401, "invalid_token", Some(&token));
    assert_eq!(r.2["error_description"], "the access token was revoked");

    let other = issue(&fx, "openid profile", None).await;
    assert_eq!(bearer(&fx.state, &other).await.0, 200);
    let now = fx.state.clock.now().secs();
    admin::delete_user(
        &fx.state.db,
        &fx.state.config,
        "alice",
        admin::Via::AdminApi,
        now,
    )
    .await
    .unwrap();
    refused(
        &bearer(&fx.state, &other).await,
        401,
        "invalid_token",
        Some(&other),
    );
}

#[tokio::test]
async fn a_token_without_openid_is_insufficient_scope() {
    let fx = fixture().await;
    let token = issue(&fx, "profile email read", None).await;
    let r = bearer(&fx.state, &token).await;
    refused(&r, 403, "insufficient_scope", Some(&token));
    let c = challenge(&r.1);
    assert!(
        c.contains("Bearer error=\"insufficient_scope\"") && c.contains("scope=\"openid\""),
        "{c}"
    );
}

#[tokio::test]
async fn a_dpop_bound_token_is_refused_as_bearer_and_without_its_proof() {
    let fx = fixture().await;
    let key = TestKey::es256("userinfo-holder");
    let token = issue(&fx, "openid profile", Some(&key)).await;
    let r = bearer(&fx.state, &token).await;
    refused(&r, 401, "invalid_token", Some(&token));
    assert!(
        challenge(&r.1).contains("Bearer error=\"invalid_token\""),
        "{}",
        challenge(&r.1)
    );
    // The DPoP scheme without a proof.
    let r = call(
        &fx.state,
        "GET",
        "/userinfo",
        &[("authorization", format!("DPoP {token}"))],
        "",
    )
    .await;
    refused(&r, 401, "invalid_dpop_proof", Some(&token));
    let c = challenge(&r.1);
    assert!(
        c.contains("DPoP error=\"invalid_dpop_proof\"") && c.contains("algs=\""),
        "{c}"
    );
    // And an unbound token with the DPoP scheme and a proof.
    let plain = issue(&fx, "openid", None).await;
    let now = fx.state.clock.now().secs().0;
    let htu = format!("{}/userinfo", iss(&fx));
    let r = call(
        &fx.state,
        "GET",
        "/userinfo",
        &[
            ("authorization", format!("DPoP {plain}")),
            ("dpop", proof(&key, "GET", &htu, Some(&plain), now)),
        ],
        "",
    )
    .await;
    refused(&r, 401, "invalid_token", Some(&plain));
}

#[tokio::test]
async fn wrong_dpop_proofs_are_refused_and_a_proof_is_used_once() {
    let fx = fixture().await;
    let key = TestKey::es256("userinfo-holder");
    let token = issue(&fx, "openid profile", Some(&key)).await;
    let now = fx.state.clock.now().secs().0;
    let htu = format!("{}/userinfo", iss(&fx));
    let dpop = |p: String| vec![("authorization", format!("DPoP {token}")), ("dpop", p)];
    let other = TestKey::es256("userinfo-thief");
    let cases = [
        (
            "another key",
            proof(&other, "GET", &htu, Some(&token), now),
            "invalid_token",
        ),
        (
            "another htu",
            proof(
                &key,
                "GET",
                &format!("{}/token", iss(&fx)),
                Some(&token),
                now,
            ),
            "invalid_dpop_proof",
        ),
        (
            "another host",
            proof(
                &key,
                "GET",
                "https://evil.example/userinfo",
                Some(&token),
                now,
            ),
            "invalid_dpop_proof",
        ),
        (
            "another htm",
            proof(&key, "POST", &htu, Some(&token), now),
            "invalid_dpop_proof",
        ),
        (
            "no ath",
            proof(&key, "GET", &htu, None, now),
            "invalid_dpop_proof",
        ),
        (
            "ath of another token",
            proof(&key, "GET", &htu, Some("another.token.value"), now),
            "invalid_dpop_proof",
        ),
        (
            "stale",
            proof(&key, "GET", &htu, Some(&token), now - 600),
            "invalid_dpop_proof",
        ),
        (
            "from the future",
            proof(&key, "GET", &htu, Some(&token), now + 600),
            "invalid_dpop_proof",
        ),
    ];
    for (what, p, error) in cases {
        let r = call(&fx.state, "GET", "/userinfo", &dpop(p), "").await;
        assert_eq!(r.0, 401, "{what}: {}", r.2);
        assert_eq!(r.2["error"], error, "{what}");
        assert!(!r.2.to_string().contains(&token), "{what}");
    }
    // The right proof once; the same proof again is a replay.
    let p = proof(&key, "GET", &htu, Some(&token), now);
    let r = call(&fx.state, "GET", "/userinfo", &dpop(p.clone()), "").await;
    assert_eq!(r.0, 200, "{}", r.2);
    let r = call(&fx.state, "GET", "/userinfo", &dpop(p), "").await;
    refused(&r, 401, "invalid_dpop_proof", Some(&token));
    assert_eq!(r.2["error_description"], "the DPoP proof was already used");
    // Two proofs at once.
    let (a, b) = (
        proof(&key, "GET", &htu, Some(&token), now),
        proof(&key, "GET", &htu, Some(&token), now),
    );
    let r = call(
        &fx.state,
        "GET",
        "/userinfo",
        &[
            ("authorization", format!("DPoP {token}")),
            ("dpop", a),
            ("dpop", b),
        ],
        "",
    )
    .await;
    refused(&r, 401, "invalid_dpop_proof", Some(&token));
}

#[tokio::test]
async fn an_id_token_shaped_jwt_signed_by_the_origin_is_not_an_access_token() {
    let fx = fixture().await;
    let now = fx.state.clock.now().secs();
    let ring = fx.state.key_ring().unwrap();
    let signer = ring.signer(now).unwrap();
    let claims = json!({
        "iss": iss(&fx), "sub": fx.user.user_id, "aud": fx.client.id,
        "exp": now.0 + 300, "iat": now.0, "nonce": "n", "jti": "j",
        "client_id": fx.client.id, "scope": "openid profile email",
    });
    for typ in ["JWT", "id_token+jwt"] {
        let id_token = signer.sign_jws(typ, &claims).unwrap();
        let r = bearer(&fx.state, &id_token).await;
        refused(&r, 401, "invalid_token", Some(&id_token));
        assert_eq!(r.2["error_description"], "token typ is not at+jwt", "{typ}");
    }
}

#[tokio::test]
async fn a_token_in_the_query_string_or_the_body_is_refused() {
    let fx = fixture().await;
    let token = issue(&fx, "openid profile", None).await;
    // In the URL, alone or beside a valid header.
    for headers in [vec![], vec![("authorization", format!("Bearer {token}"))]] {
        for method in ["GET", "POST"] {
            let r = call(
                &fx.state,
                method,
                &format!("/userinfo?access_token={token}"),
                &headers,
                "",
            )
            .await;
            refused(&r, 400, "invalid_request", Some(&token));
        }
    }
    // In a form body (RFC 6750 §2.2), alone or beside a valid header.
    for headers in [vec![], vec![("authorization", format!("Bearer {token}"))]] {
        let r = call(
            &fx.state,
            "POST",
            "/userinfo",
            &headers,
            &format!("access_token={token}"),
        )
        .await;
        refused(&r, 400, "invalid_request", Some(&token));
    }
}

#[tokio::test]
async fn oversized_headers_are_refused() {
    let fx = fixture().await;
    // An Authorization value over common's 8 KiB token bound.
    let big = "a".repeat(9 * 1024);
    let r = bearer(&fx.state, &big).await;
    refused(&r, 400, "invalid_request", None);
    // Headers over the origin's 32 KiB total: 431.
    let huge = "b".repeat(40 * 1024);
    let r = call(
        &fx.state,
        "GET",
        "/userinfo",
        &[("authorization", format!("Bearer {huge}"))],
        "",
    )
    .await;
    assert_eq!(r.0, 431);
    let token = issue(&fx, "openid", None).await;
    let r = call(
        &fx.state,
        "GET",
        "/userinfo",
        &[
            ("authorization", format!("DPoP {token}")),
            ("dpop", "c".repeat(40 * 1024)),
        ],
        "",
    )
    .await;
    assert_eq!(r.0, 431);
}

// ---- the claims -------------------------------------------------------------

#[tokio::test]
async fn bearer_tokens_get_the_claims_of_their_scopes_by_get_and_post() {
    let fx = fixture().await;
    let sub = fx.user.user_id.clone();
    let at = fx.user.updated_at;
    let cases = [
        ("openid", json!({"sub": sub})),
        (
            "openid profile",
            json!({"sub": sub, "name": "Alice Liddell", "preferred_username": "alice", "updated_at": at}),
        ),
        (
            "openid email",
            json!({"sub": sub, "email": "alice@example.com", "email_verified": true}),
        ),
        (
            "openid profile email read",
            json!({"sub": sub, "name": "Alice Liddell", "preferred_username": "alice",
                   "updated_at": at, "email": "alice@example.com", "email_verified": true}),
        ),
    ];
    for (scopes, expected) in cases {
        let token = issue(&fx, scopes, None).await;
        for method in ["GET", "POST"] {
            let (s, h, b) = call(
                &fx.state,
                method,
                "/userinfo",
                &[("authorization", format!("Bearer {token}"))],
                "",
            )
            .await;
            assert_eq!(s, 200, "{scopes} {method}: {b}");
            assert_eq!(b, expected, "{scopes} {method}");
            assert!(h["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"));
            assert_eq!(h["cache-control"], "no-store");
        }
    }
}

#[tokio::test]
async fn dpop_bound_tokens_get_the_claims_with_their_proof_by_get_and_post() {
    let fx = fixture().await;
    let key = TestKey::es256("userinfo-holder");
    let token = issue(&fx, "openid email", Some(&key)).await;
    let htu = format!("{}/userinfo", iss(&fx));
    for method in ["GET", "POST"] {
        let now = fx.state.clock.now().secs().0;
        let (s, h, b) = call(
            &fx.state,
            method,
            "/userinfo",
            &[
                ("authorization", format!("DPoP {token}")),
                ("dpop", proof(&key, method, &htu, Some(&token), now)),
            ],
            "",
        )
        .await;
        assert_eq!(s, 200, "{method}: {b}");
        assert_eq!(
            b,
            json!({"sub": fx.user.user_id, "email": "alice@example.com", "email_verified": true})
        );
        assert_eq!(h["cache-control"], "no-store");
    }
}

#[tokio::test]
async fn the_claims_follow_profile_changes_and_omit_what_is_unset() {
    let fx = fixture().await;
    let token = issue(&fx, "openid profile email", None).await;
    fx.clock.advance_secs(5);
    let now = fx.state.clock.now().secs();
    let changed = admin::update_user(
        &fx.state.db,
        "alice",
        &ProfileInput {
            name: Some(String::new()),
            email: Some("alice@wonderland.example".into()),
            email_verified: None,
        },
        admin::Via::Cli,
        now,
    )
    .await
    .unwrap();
    assert_eq!(changed.updated_at, now.0);
    // Setting what is already there is no change: updated_at stays.
    fx.clock.advance_secs(5);
    let same = admin::update_user(
        &fx.state.db,
        "alice",
        &ProfileInput {
            email: Some("alice@wonderland.example".into()),
            ..ProfileInput::default()
        },
        admin::Via::Cli,
        fx.state.clock.now().secs(),
    )
    .await
    .unwrap();
    assert_eq!(same, changed);
    let (s, _, b) = bearer(&fx.state, &token).await;
    assert_eq!(s, 200, "{b}");
    // The name is cleared; the new address is not the verified one.
    assert_eq!(
        b,
        json!({"sub": fx.user.user_id, "preferred_username": "alice", "updated_at": now.0,
               "email": "alice@wonderland.example", "email_verified": false})
    );
}

#[tokio::test]
async fn a_client_credentials_token_names_no_user() {
    let fx = fixture().await;
    let svc = register(&fx.state, "openid read", false).await;
    let (s, _, t) = crate::support::token(
        &fx.state,
        &svc,
        "grant_type=client_credentials&scope=openid",
    )
    .await;
    assert_eq!(s, 200, "{t}");
    let token = t["access_token"].as_str().unwrap();
    let r = bearer(&fx.state, token).await;
    refused(&r, 401, "invalid_token", Some(token));
}

#[tokio::test]
async fn userinfo_is_advertised_and_open_to_listed_browser_origins() {
    let fx = fixture_with(|c| c.cors_allow_origins = vec!["https://app.example".into()]).await;
    let (s, _, meta) = send(
        &fx.state,
        Request::get("/.well-known/oauth-authorization-server")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(meta["userinfo_endpoint"], format!("{}/userinfo", iss(&fx)));
    let (s, h, _) = send(
        &fx.state,
        Request::builder()
            .method("OPTIONS")
            .uri("/userinfo")
            .header("origin", "https://app.example")
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization, dpop")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, 204);
    assert_eq!(h["access-control-allow-origin"], "https://app.example");
    assert_eq!(h["access-control-allow-methods"], "GET, POST");
    // The answer (a refusal too) is readable by the page, challenge included.
    let (s, h, _) = call(
        &fx.state,
        "GET",
        "/userinfo",
        &[("origin", "https://app.example".into())],
        "",
    )
    .await;
    assert_eq!(s, 401);
    assert_eq!(h["access-control-allow-origin"], "https://app.example");
    assert!(h["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .contains("WWW-Authenticate"));
}

#[tokio::test]
async fn with_nonces_on_a_proof_without_the_servers_nonce_gets_one() {
    let fx = fixture_with(|c| c.dpop_nonce = true).await;
    let key = TestKey::es256("userinfo-holder");
    let now = fx.state.clock.now().secs();
    let nonces = fx.state.dpop_nonces.clone().unwrap();
    // The token, bound at /token with a nonce of the server's.
    let code = grants::issue_code(
        &fx.state.db,
        &CodeGrant {
            client_id: fx.client.id.clone(),
            user_id: fx.user.user_id.clone(),
            redirect_uri: CB.into(),
            scopes: vec!["openid".into()],
            audience: AUD.into(),
            code_challenge: CHALLENGE.into(),
            dpop_jkt: None,
            session: gatehouse_origin::domain::grants::ApprovingSession {
                sid: crate::support::live_session(&fx.state.db, &fx.user.user_id).await,
                auth_time: 1,
                amr: "pwd".into(),
            },
            nonce: None,
        },
        now,
    )
    .await
    .unwrap();
    let signed = |htm: &str, htu: String, token: Option<&str>, nonce: Option<String>| {
        let mut c = json!({"jti": random_id().unwrap(), "htm": htm, "htu": htu, "iat": now.0});
        if let Some(t) = token {
            c["ath"] = gatehouse_common::dpop::ath(t).into();
        }
        if let Some(n) = nonce {
            c["nonce"] = n.into();
        }
        key.sign(
            &json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk_json()}),
            &c,
        )
    };
    let body = format!(
        "grant_type=authorization_code&code={}&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&code_verifier={VERIFIER}",
        code.expose()
    );
    let (s, _, t) = send(
        &fx.state,
        form_post("/token", Some(&basic(&fx.client.id, &fx.client.secret)), "")
            .header(
                "dpop",
                signed(
                    "POST",
                    format!("{}/token", iss(&fx)),
                    None,
                    Some(nonces.issue(now)),
                ),
            )
            .body(Body::from(body))
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{t}");
    let token = t["access_token"].as_str().unwrap().to_owned();
    let htu = format!("{}/userinfo", iss(&fx));
    let r = call(
        &fx.state,
        "GET",
        "/userinfo",
        &[
            ("authorization", format!("DPoP {token}")),
            ("dpop", signed("GET", htu.clone(), Some(&token), None)),
        ],
        "",
    )
    .await;
    refused(&r, 401, "use_dpop_nonce", Some(&token));
    assert!(challenge(&r.1).contains("DPoP error=\"use_dpop_nonce\""));
    let nonce = r.1["dpop-nonce"].to_str().unwrap().to_owned();
    let r = call(
        &fx.state,
        "GET",
        "/userinfo",
        &[
            ("authorization", format!("DPoP {token}")),
            ("dpop", signed("GET", htu, Some(&token), Some(nonce))),
        ],
        "",
    )
    .await;
    assert_eq!(r.0, 200, "{}", r.2);
    assert_eq!(r.2, json!({"sub": fx.user.user_id}));
}

#[tokio::test]
async fn anonymous_floods_are_limited_per_address() {
    let fx = fixture_with(|c| c.token_rate_per_minute = 2).await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let mut req = Request::get("/userinfo")
            .header("authorization", "Bearer a.b.c")
            .body(Body::empty())
            .unwrap();
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                [10, 0, 0, 7],
                40_000,
            ))));
        statuses.push(send(&fx.state, req).await.0);
    }
    assert_eq!(statuses, vec![401, 401, 429]);
}
