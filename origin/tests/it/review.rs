//! Regression tests for the origin review findings (each failed before its fix).

use crate::support::now;
use crate::support::*;
use axum::body::Body;
use gatehouse_common::revocation::RevocationKind;
use gatehouse_common::UnixTime;
use gatehouse_origin::config::Config;
use gatehouse_origin::domain::token::{sign_access_token, AccessTokenClaims};

fn introspect_req(tok: &str, who: &Registered) -> axum::http::Request<Body> {
    form_post("/introspect", Some(&basic(&who.id, &who.secret)), "")
        .body(Body::from(format!("token={tok}")))
        .unwrap()
}

/// A token of ours for `c`, issued at `iat` with `ttl`.
fn old_token(
    state: &gatehouse_origin::domain::state::AppState,
    c: &Registered,
    iat: i64,
    ttl: i64,
) -> String {
    let ring = state.key_ring().unwrap();
    sign_access_token(
        ring.signer(now()).unwrap(),
        "http://127.0.0.1:8080",
        ttl,
        &AccessTokenClaims {
            sub: "s",
            client_id: &c.id,
            aud: AUD,
            scopes: &[],
            sid: "f",
            jkt: None,
        },
        UnixTime(iat),
    )
    .unwrap()
    .access_token
}

#[tokio::test]
async fn introspection_uses_the_configured_leeway() {
    // Expired 10 s ago: inside the default 30 s leeway, outside a 5 s one.
    for (leeway, active) in [(30, true), (5, false)] {
        let state = sqlite_state_with(|c| c.leeway_secs = leeway).await;
        let c = register(&state, "read", false).await;
        let tok = old_token(&state, &c, now().0 - 70, 60);
        let (s, _, b) = send(&state, introspect_req(&tok, &c)).await;
        assert_eq!(s, 200);
        assert_eq!(b["active"], active, "leeway {leeway}");
    }
}

#[tokio::test]
async fn lowering_the_ttl_never_shrinks_identifier_revocations() {
    for tdb in databases() {
        let mut long = Config::for_tests(&tdb.url);
        long.access_token_ttl = 3_600;
        long.leeway_secs = 7;
        let first = state_with(long, tdb.open().await).await;
        drop(first);
        // Restarted with a shorter TTL: tokens issued under 3600 s still live.
        let mut short = Config::for_tests(&tdb.url);
        short.access_token_ttl = 60;
        short.leeway_secs = 7;
        let state = state_with(short, tdb.open().await).await;
        let span = gatehouse_origin::store::revocation::cover_span(&state.db, &state.config)
            .await
            .unwrap();
        assert_eq!(span.secs(), 3_607, "{}", tdb.name);
        let t = now();
        let rev = gatehouse_origin::domain::introspect::revoke_identifier(
            &state.db,
            span,
            RevocationKind::Sid,
            "family-1",
            "test",
            t,
        )
        .await
        .unwrap();
        assert_eq!(rev.drop_after, t.0 + 3_607, "{}", tdb.name);
        let claim =
            gatehouse_origin::domain::revocation_push::claim(&state.db, "iss", span, false, t)
                .await
                .unwrap()
                .unwrap();
        let until: Vec<i64> = claim.document.entries.iter().map(|e| e.until).collect();
        assert_eq!(until, vec![t.0 + 3_607], "{}", tdb.name);
    }
}

fn from_ip(mut req: axum::http::Request<Body>, ip: [u8; 4]) -> axum::http::Request<Body> {
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            ip, 40_000,
        ))));
    req
}

#[tokio::test]
async fn introspect_and_revoke_are_rate_limited_with_a_registered_code() {
    let state = sqlite_state_with(|c| c.token_rate_per_minute = 2).await;
    let c = register(&state, "read", false).await;
    // Per client, after authentication.
    let mut last = (0, axum::http::HeaderMap::new(), serde_json::Value::Null);
    for _ in 0..3 {
        last = send(&state, introspect_req("x", &c)).await;
    }
    assert_eq!(last.0, 429, "{}", last.2);
    assert_eq!(last.2["error"], "temporarily_unavailable");
    assert_eq!(last.2["error_description"], "rate limit exceeded");
    assert!(last.1.contains_key("retry-after"));
    // Per IP, before authentication: anonymous failures at /revoke too.
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let req = form_post("/revoke", Some(&basic("nobody", "wrong")), "")
            .body(Body::from("token=x"))
            .unwrap();
        statuses.push(send(&state, from_ip(req, [10, 0, 0, 9])).await.0);
    }
    assert_eq!(statuses, vec![401, 401, 429]);
}

#[tokio::test]
async fn failed_authentications_are_audited_at_a_bounded_rate() {
    let state = sqlite_state_with(|c| c.token_rate_per_minute = 10_000).await;
    for _ in 0..25 {
        let req = form_post("/introspect", Some(&basic("nobody", "wrong")), "")
            .body(Body::from("token=x"))
            .unwrap();
        assert_eq!(send(&state, from_ip(req, [10, 0, 0, 7])).await.0, 401);
    }
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_events WHERE event = 'authentication_failed'",
    )
    .fetch_one(&state.db.pool)
    .await
    .unwrap();
    let limit = i64::from(gatehouse_origin::domain::state::AUDITED_AUTH_FAILURES_PER_MINUTE);
    assert!(n <= limit + 1, "{n} audit rows for 25 failures");
    assert_eq!(
        state
            .unaudited_failures
            .load(std::sync::atomic::Ordering::Relaxed),
        u64::try_from(25 - n).unwrap()
    );
}

#[tokio::test]
async fn body_limit_and_admin_extractor_rejections_are_oauth_errors() {
    let state = sqlite_state().await;
    let big = axum::http::Request::post("/admin/clients")
        .header("authorization", format!("Bearer {ADMIN}"))
        .header("content-type", "application/json")
        .header("content-length", "100000")
        .body(Body::from(vec![b'a'; 100_000]))
        .unwrap();
    let (s, _, b) = send(&state, big).await;
    assert_eq!(s, 413);
    assert_eq!(b["error"], "invalid_request", "{b}");
    let bad_query = axum::http::Request::get("/admin/audit?limit=abc")
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(Body::empty())
        .unwrap();
    let (s, _, b) = send(&state, bad_query).await;
    assert_eq!(s, 400);
    assert_eq!(b["error"], "invalid_request", "{b}");
    let bad_grace = axum::http::Request::post("/admin/clients/x/rotate-secret?grace=soon")
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(Body::empty())
        .unwrap();
    let (s, _, b) = send(&state, bad_grace).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_request")));
}

#[tokio::test]
async fn metadata_advertises_what_is_applied() {
    let state = sqlite_state().await;
    let (_, _, m) = send(
        &state,
        axum::http::Request::get("/.well-known/oauth-authorization-server")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let revoke: Vec<&str> = m["revocation_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(revoke.contains(&"none"), "{m}");
    let dpop: Vec<&str> = m["dpop_signing_alg_values_supported"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    let applied: Vec<&str> = gatehouse_origin::domain::dpop::policy()
        .algorithms
        .iter()
        .map(|a| a.name())
        .collect();
    assert_eq!(dpop, applied);
    assert_eq!(applied.len(), gatehouse_common::alg::Algorithm::ALL.len());
}

#[tokio::test]
async fn deleting_a_client_revokes_its_tokens_through_the_outbox() {
    for tdb in databases() {
        let state = state_with(Config::for_tests(&tdb.url), tdb.open().await).await;
        let c = register(&state, "read", false).await;
        // Read before the delete: the revocation's times are at least this.
        let t = now();
        let req = axum::http::Request::delete(format!("/admin/clients/{}", c.id))
            .header("authorization", format!("Bearer {ADMIN}"))
            .body(Body::empty())
            .unwrap();
        let (s, _, _) = send(&state, req).await;
        assert_eq!(s, 200, "{}", tdb.name);
        let revs = gatehouse_origin::store::revocation::list(&state.db, t)
            .await
            .unwrap();
        assert_eq!(revs.len(), 1, "{}", tdb.name);
        assert_eq!(
            (revs[0].kind.as_str(), revs[0].value.as_str()),
            ("client_id", c.id.as_str())
        );
        assert!(revs[0].drop_after >= t.0 + 300 + 30);
        assert_eq!(
            gatehouse_origin::store::revocation::pending_outbox(&state.db)
                .await
                .unwrap()
                .len(),
            1,
            "{}",
            tdb.name
        );
    }
}

#[tokio::test]
async fn concurrent_secret_rotations_lose_no_secret() {
    for tdb in databases() {
        let state = state_with(Config::for_tests(&tdb.url), tdb.open().await).await;
        let c = register(&state, "read", false).await;
        let t = now();
        let (a, b) = tokio::join!(
            gatehouse_origin::domain::clients::rotate_secret(&state.db, &c.id, 600, t),
            gatehouse_origin::domain::clients::rotate_secret(&state.db, &c.id, 600, t),
        );
        let (a, b) = (a.unwrap().unwrap(), b.unwrap().unwrap());
        let got = gatehouse_origin::domain::clients::get(&state.db, &c.id)
            .await
            .unwrap()
            .unwrap();
        // Both secrets handed out work (one current, one in its grace period).
        assert!(got.secret_matches(&a, t), "{}", tdb.name);
        assert!(got.secret_matches(&b, t), "{}", tdb.name);
    }
}

#[tokio::test]
async fn introspection_reads_only_the_named_clients_audiences() {
    let state = sqlite_state().await;
    let c = register(&state, "read", false).await;
    let rs = register_resource_server(&state, AUD).await;
    let bad = register(&state, "read", false).await;
    let (_, _, b) = token(&state, &c, "grant_type=client_credentials").await;
    let at = b["access_token"].as_str().unwrap().to_owned();
    let corrupt = |id: String| {
        let pool = state.db.pool.clone();
        async move {
            sqlx::query("UPDATE clients SET audiences = 'not json' WHERE client_id = $1")
                .bind(id)
                .execute(&pool)
                .await
                .unwrap();
        }
    };
    // An unrelated client's corrupt row does not matter.
    corrupt(bad.id.clone()).await;
    let (s, _, b) = send(&state, introspect_req(&at, &rs)).await;
    assert_eq!((s, b["active"].as_bool()), (200, Some(true)), "{b}");
    // The issuing client's row corrupt: an error (logged), not a silently
    // dropped audience list that makes a live token look inactive.
    corrupt(c.id.clone()).await;
    let (s, _, b) = send(&state, introspect_req(&at, &rs)).await;
    assert_eq!(s, 500, "{b}");
    assert_eq!(b["error"], "server_error");
}

#[tokio::test]
async fn no_signer_is_a_structured_error() {
    let state = sqlite_state().await;
    let c = register(&state, "read", false).await;
    *state.keys.write().unwrap() =
        std::sync::Arc::new(gatehouse_origin::domain::keys::KeyRing::default());
    let client = gatehouse_origin::domain::clients::get(&state.db, &c.id)
        .await
        .unwrap()
        .unwrap();
    let e = gatehouse_origin::domain::token::client_credentials(
        &state.token_path().unwrap(),
        &client,
        gatehouse_origin::domain::token::ClientCredentialsRequest::default(),
        gatehouse_origin::domain::token::RequestContext {
            ip: None,
            now: now(),
            client_as_of: None,
        },
    )
    .await
    .unwrap_err();
    let gatehouse_origin::domain::error::Error::Internal(source) = e else {
        panic!("not internal: {e:?}");
    };
    assert!(matches!(
        source.downcast_ref::<gatehouse_origin::domain::keys::KeyStoreError>(),
        Some(gatehouse_origin::domain::keys::KeyStoreError::NoSigner)
    ));
}

#[tokio::test]
async fn token_response_debug_redacts_the_token() {
    let state = sqlite_state().await;
    let ring = state.key_ring().unwrap();
    let resp = sign_access_token(
        ring.signer(now()).unwrap(),
        "http://127.0.0.1:8080",
        60,
        &AccessTokenClaims {
            sub: "s",
            client_id: "c",
            aud: AUD,
            scopes: &[],
            sid: "f",
            jkt: None,
        },
        now(),
    )
    .unwrap();
    let shown = format!("{resp:?}");
    assert!(!shown.contains(&resp.access_token), "{shown}");
    assert!(shown.contains("[redacted]"));
    assert!(!format!("{state:?}").contains("test-admin-token"));
}

#[tokio::test]
async fn login_attempts_are_rate_limited_per_ip() {
    let state = sqlite_state_with(|c| c.token_rate_per_minute = 2).await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let req = form_post("/authorize/login", None, "")
            .body(Body::from("request=x&csrf=y&username=a&password=b"))
            .unwrap();
        statuses.push(send(&state, from_ip(req, [10, 0, 0, 5])).await.0);
    }
    assert_eq!(statuses, vec![400, 400, 429]);
}
