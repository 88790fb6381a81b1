//! CORS for browser apps on other origins, through `oneshot`: exact origins
//! only, preflights for the browser-facing endpoints, `DPoP-Nonce` and
//! `WWW-Authenticate` readable, nothing at all for unlisted origins or for
//! server-only endpoints.

use crate::support::*;
use axum::body::Body;
use axum::http::{HeaderMap, Request};
use gatehouse_common::testkit::signer::TestKey;
use serde_json::json;

const PAGE: &str = "http://127.0.0.1:8070";
const OTHER: &str = "https://evil.example";

fn preflight(path: &str, origin: &str) -> Request<Body> {
    Request::options(path)
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type,dpop")
        .body(Body::empty())
        .unwrap()
}

/// Every `access-control-*` header name in `h`.
fn cors_headers(h: &HeaderMap) -> Vec<String> {
    h.keys()
        .map(|k| k.as_str().to_owned())
        .filter(|k| k.starts_with("access-control-"))
        .collect()
}

fn list(h: &HeaderMap, name: &str) -> Vec<String> {
    h[name]
        .to_str()
        .unwrap()
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .collect()
}

async fn cors_state() -> gatehouse_origin::domain::state::AppState {
    sqlite_state_with(|c| {
        c.cors_allow_origins = vec![PAGE.into()];
        c.dpop_nonce = true;
    })
    .await
}

#[tokio::test]
async fn preflight_from_a_listed_origin_allows_dpop_and_no_credentials() {
    let state = cors_state().await;
    for (path, method) in [("/token", "POST"), ("/revoke", "POST")] {
        let (s, h, _) = send(&state, preflight(path, PAGE)).await;
        assert_eq!(s, 204, "{path}");
        assert_eq!(h["access-control-allow-origin"], PAGE, "{path}");
        assert_eq!(h["access-control-allow-methods"], method);
        let allowed = list(&h, "access-control-allow-headers");
        for needed in ["dpop", "content-type", "authorization"] {
            assert!(allowed.iter().any(|a| a == needed), "{path}: {allowed:?}");
        }
        assert!(h.contains_key("access-control-max-age"));
        assert!(!h.contains_key("access-control-allow-credentials"));
        assert!(h
            .get_all("vary")
            .iter()
            .any(|v| v.to_str().unwrap().contains("Origin")));
    }
}

#[tokio::test]
async fn unlisted_origins_and_server_only_endpoints_get_no_cors_headers() {
    let state = cors_state().await;
    // An unlisted origin's preflight is not answered: 405 and no CORS headers.
    for origin in [
        OTHER,
        "null",
        "http://127.0.0.1:8071",
        "http://127.0.0.1:8070/",
    ] {
        let (s, h, _) = send(&state, preflight("/token", origin)).await;
        assert_eq!(s, 405, "{origin}");
        assert!(cors_headers(&h).is_empty(), "{origin}: {h:?}");
    }
    // An unlisted origin's actual request is answered (the server cannot
    // tell), but without headers the browser lets the page read nothing.
    let (s, h, _) = send(
        &state,
        form_post("/token", None, "")
            .header("origin", OTHER)
            .body(Body::from("grant_type=client_credentials&client_id=nobody"))
            .unwrap(),
    )
    .await;
    assert_eq!(s, 401);
    assert!(cors_headers(&h).is_empty(), "{h:?}");
    // Server-only endpoints and the login pages get nothing, even for the page.
    for path in ["/introspect", "/authorize/login", "/admin/clients"] {
        let (_, h, _) = send(&state, preflight(path, PAGE)).await;
        assert!(cors_headers(&h).is_empty(), "{path}: {h:?}");
    }
    let (_, h, _) = send(
        &state,
        Request::get("/authorize")
            .header("origin", PAGE)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(cors_headers(&h).is_empty(), "{h:?}");
}

#[tokio::test]
async fn without_configured_origins_nothing_is_cross_origin() {
    let state = sqlite_state().await;
    let (s, h, _) = send(&state, preflight("/token", PAGE)).await;
    assert_eq!(s, 405);
    assert!(cors_headers(&h).is_empty(), "{h:?}");
    let (_, h, _) = send(
        &state,
        Request::get("/.well-known/jwks.json")
            .header("origin", PAGE)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(cors_headers(&h).is_empty(), "{h:?}");
}

#[tokio::test]
async fn a_listed_page_can_read_the_nonce_challenge_and_its_token() {
    let state = cors_state().await;
    let c = register(&state, "read", false).await;
    let key = TestKey::ed25519("cors-page");
    let proof = |nonce: Option<&str>| {
        let mut claims = json!({
            "jti": gatehouse_origin::support::secret::random_id().unwrap(),
            "htm": "POST",
            "htu": "http://127.0.0.1:8080/token",
            "iat": crate::support::now().0,
        });
        if let Some(n) = nonce {
            claims["nonce"] = n.into();
        }
        key.sign(
            &json!({"typ": "dpop+jwt", "alg": key.alg().name(), "jwk": key.public_jwk_json()}),
            &claims,
        )
    };
    let request = |p: String| {
        form_post("/token", Some(&basic(&c.id, &c.secret)), "")
            .header("origin", PAGE)
            .header("dpop", p)
            .body(Body::from("grant_type=client_credentials"))
            .unwrap()
    };
    // The use_dpop_nonce refusal: the page must be able to read DPoP-Nonce.
    let (s, h, b) = send(&state, request(proof(None))).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("use_dpop_nonce")));
    assert_eq!(h["access-control-allow-origin"], PAGE);
    let exposed = list(&h, "access-control-expose-headers");
    for needed in ["dpop-nonce", "www-authenticate"] {
        assert!(exposed.iter().any(|e| e == needed), "{exposed:?}");
    }
    assert!(!h.contains_key("access-control-allow-credentials"));
    let nonce = h["dpop-nonce"].to_str().unwrap().to_owned();
    let (s, h, b) = send(&state, request(proof(Some(&nonce)))).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["token_type"], "DPoP");
    assert_eq!(h["access-control-allow-origin"], PAGE);
    assert_eq!(h["cache-control"], "no-store");
    // A failed client authentication is readable too (401 + WWW-Authenticate).
    let (s, h, _) = send(
        &state,
        form_post("/token", Some(&basic(&c.id, "wrong-secret")), "")
            .header("origin", PAGE)
            .body(Body::from("grant_type=client_credentials"))
            .unwrap(),
    )
    .await;
    assert_eq!(s, 401);
    assert_eq!(h["access-control-allow-origin"], PAGE);
    // The cacheable JWKS varies by Origin.
    let (s, h, _) = send(
        &state,
        Request::get("/.well-known/jwks.json")
            .header("origin", PAGE)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(h["access-control-allow-origin"], PAGE);
    assert!(h
        .get_all("vary")
        .iter()
        .any(|v| v.to_str().unwrap().contains("Origin")));
}

#[tokio::test]
async fn a_listed_page_can_read_the_openid_configuration_and_no_other_page_can() {
    // A browser relying party discovers the userinfo, JWKS and end-session
    // endpoints from its own origin (OpenID Connect Discovery 1.0 §4).
    let state = cors_state().await;
    let get = |origin: &str| {
        Request::get("/.well-known/openid-configuration")
            .header("origin", origin)
            .body(Body::empty())
            .unwrap()
    };
    let (s, h, body) = send(&state, get(PAGE)).await;
    assert_eq!(s, 200);
    assert_eq!(h["access-control-allow-origin"], PAGE);
    assert!(!h.contains_key("access-control-allow-credentials"));
    assert!(body["userinfo_endpoint"].is_string(), "{body}");
    let (s, h, _) = send(&state, get(OTHER)).await;
    assert_eq!(s, 200);
    assert!(cors_headers(&h).is_empty(), "{h:?}");
    // GET only: no preflight for a POST.
    let (s, h, _) = send(
        &state,
        preflight("/.well-known/openid-configuration", OTHER),
    )
    .await;
    assert_eq!(s, 405);
    assert!(cors_headers(&h).is_empty(), "{h:?}");
}
