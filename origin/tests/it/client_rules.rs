//! Client registration and the per-client rules of issue 16/17: redirect
//! URIs (RFC 8252), public clients and token exchange, introspection only
//! for a token's own client or its resource servers, and the private_key_jwt
//! audience (draft-ietf-oauth-rfc7523bis).

use crate::support::now;
use crate::support::*;
use axum::body::Body;
use axum::http::Request;
use gatehouse_common::testkit::signer::TestKey;
use gatehouse_origin::domain::clients::{self, NewClient};
use gatehouse_origin::domain::exchange::GRANT;
use gatehouse_origin::domain::state::AppState;
use serde_json::{json, Value};

async fn admin_create(state: &AppState, body: Value) -> (u16, Value) {
    let (s, _, b) = send(
        state,
        Request::post("/admin/clients")
            .header("authorization", format!("Bearer {ADMIN}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await;
    (s, b)
}

/// Registers a web client with each redirect URI alone: every one of `bad`
/// is refused (`invalid_request`), every one of `good` accepted.
async fn assert_redirect_uris(state: &AppState, bad: &[&str], good: &[&str]) {
    for bad in bad {
        let (s, b) = admin_create(
            state,
            json!({"name": "web", "scope": "read", "audiences": [AUD],
                   "grant_types": ["authorization_code"], "redirect_uris": [bad]}),
        )
        .await;
        assert_eq!(
            (s, b["error"].as_str()),
            (400, Some("invalid_request")),
            "{bad:?}: {b}"
        );
    }
    for good in good {
        let (s, b) = admin_create(
            state,
            json!({"name": "web", "scope": "read", "audiences": [AUD],
                   "grant_types": ["authorization_code"], "redirect_uris": [good]}),
        )
        .await;
        assert_eq!(s, 201, "{good}: {b}");
    }
}

#[tokio::test]
async fn non_loopback_http_redirect_uris_are_refused_at_registration() {
    let state = sqlite_state().await;
    assert_redirect_uris(
        &state,
        &[
            "http://app.example/cb",
            "http://192.168.1.10/cb",
            "http://localhost.attacker.example/cb",
            "http://127.0.0.1.attacker.example/cb",
            "http://user@127.0.0.1/cb",
        ],
        &[
            "https://app.example/cb",
            "http://127.0.0.1:8070/",
            "http://[::1]:9000/cb",
            "http://localhost:3000/cb",
        ],
    )
    .await;
}

/// The attack: a redirect URI spelled so that the WHATWG URL parser (the
/// `url` crate, like a browser) silently rewrites it: tabs and newlines
/// dropped, `\\` read as `/`, IDNA-mapped or numeric hosts. The loopback
/// check then judges a different string from the one stored, matched at
/// `/authorize` and written into `Location`, and any other parser (a
/// native app's, a proxy's) may see another host. Only RFC 3986 characters
/// are registrable, and an http host must be written as the loopback
/// literal it is.
#[tokio::test]
async fn redirect_uri_spellings_the_parser_rewrites_are_refused() {
    let state = sqlite_state().await;
    assert_redirect_uris(
        &state,
        &[
            "http://local\thost/cb",
            "http://127.0.0.1\\@attacker.example/cb",
            "https://app.example\n/cb",
            "http://\u{24db}ocalhost/cb",
            "https://app.example/c<b>",
            "http://0x7f.1/cb",
            "http://2130706433/cb",
            "http://127.1/cb",
            "http://[0:0:0:0:0:0:0:1]/cb",
        ],
        &[
            "http://LOCALHOST:3000/cb",
            "http://127.0.0.1",
            "http://[::1]/cb?x=1",
            "https://app.example/cb%20x?a=b&c=%7E",
        ],
    )
    .await;
}

#[tokio::test]
async fn public_clients_cannot_register_token_exchange() {
    let state = sqlite_state().await;
    let (s, b) = admin_create(
        &state,
        json!({"name": "spa", "public": true, "audiences": [AUD], "grant_types": [GRANT]}),
    )
    .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("invalid_request")),
        "{b}"
    );
    // A confidential resource server may, and says what it serves.
    let (s, b) = admin_create(
        &state,
        json!({"name": "gw", "audiences": [AUD], "grant_types": [GRANT], "serves": [AUD]}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["serves"], json!([AUD]));
}

fn introspect_req(tok: &str, who: &Registered) -> Request<Body> {
    form_post("/introspect", Some(&basic(&who.id, &who.secret)), "")
        .body(Body::from(format!("token={tok}")))
        .unwrap()
}

/// Issue 16.10: any confidential client could read any token's details.
#[tokio::test]
async fn unrelated_client_cannot_introspect_another_clients_token() {
    let state = sqlite_state().await;
    let owner = register(&state, "read", false).await;
    let snoop = register(&state, "read", false).await;
    let (_, _, b) = token(&state, &owner, "grant_type=client_credentials").await;
    let at = b["access_token"].as_str().unwrap().to_owned();
    let (s, _, b) = send(&state, introspect_req(&at, &snoop)).await;
    assert_eq!(
        (s, &b),
        (200, &json!({"active": false})),
        "unrelated client"
    );
    let elsewhere = register_resource_server(&state, "https://other.example").await;
    let (_, _, b) = send(&state, introspect_req(&at, &elsewhere)).await;
    assert_eq!(b, json!({"active": false}), "serves another audience");
    let rs = register_resource_server(&state, AUD).await;
    let (_, _, b) = send(&state, introspect_req(&at, &rs)).await;
    assert_eq!(b["active"], true, "the token's resource server: {b}");
    assert_eq!(b["client_id"], owner.id.as_str());
    let (_, _, b) = send(&state, introspect_req(&at, &owner)).await;
    assert_eq!(b["active"], true, "the token's own client");
}

fn assertion(key: &TestKey, id: &str, aud: Value) -> String {
    key.sign(
        &json!({"alg": key.alg().name(), "typ": "JWT"}),
        &json!({"iss": id, "sub": id, "aud": aud, "exp": now().0 + 60, "iat": now().0,
                "jti": gatehouse_origin::support::secret::random_id().unwrap()}),
    )
}

async fn pkjwt_client(state: &AppState, key: &TestKey, legacy: bool) -> String {
    let (c, _) = clients::create(
        &state.db,
        &NewClient {
            name: "pkjwt".into(),
            scopes: vec!["read".into()],
            audiences: vec![AUD.into()],
            grant_types: vec!["client_credentials".into()],
            jwks: Some(json!({"keys": [key.public_jwk_json()]}).to_string()),
            legacy_assertion_audience: legacy,
            ..NewClient::default()
        },
        now(),
    )
    .await
    .unwrap();
    c.client_id
}

/// Issue 17.4: an assertion the client made for another authorization
/// server (whose metadata named our token endpoint, or whose issuer sits
/// beside ours in an array) must not authenticate it here.
#[tokio::test]
async fn private_key_jwt_audience_injection_is_refused() {
    const ISSUER: &str = "http://127.0.0.1:8080";
    let state = sqlite_state().await;
    let key = TestKey::es256("pkjwt-aud-key");
    let id = pkjwt_client(&state, &key, false).await;
    for aud in [
        json!(format!("{ISSUER}/token")),
        json!([ISSUER, "https://attacker.example"]),
        json!(["https://attacker.example", format!("{ISSUER}/token")]),
    ] {
        let (s, b) = post_assertion(&state, &assertion(&key, &id, aud.clone())).await;
        assert_eq!(
            (s, b["error"].as_str()),
            (401, Some("invalid_client")),
            "{aud}"
        );
    }
    let (s, b) = post_assertion(&state, &assertion(&key, &id, json!(ISSUER))).await;
    assert_eq!(s, 200, "the issuer as the sole audience: {b}");
    let (s, b) = post_assertion(&state, &assertion(&key, &id, json!([ISSUER]))).await;
    assert_eq!(s, 200, "an array of just the issuer: {b}");
    // The compatibility flag admits the token endpoint alone, nothing more.
    let legacy = pkjwt_client(&state, &key, true).await;
    let (s, b) = post_assertion(
        &state,
        &assertion(&key, &legacy, json!(format!("{ISSUER}/token"))),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, _) = post_assertion(
        &state,
        &assertion(&key, &legacy, json!([ISSUER, "https://attacker.example"])),
    )
    .await;
    assert_eq!(s, 401);
}
