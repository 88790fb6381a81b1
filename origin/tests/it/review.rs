//! Regression tests for the origin review findings (each failed before its fix).

use crate::support::*;
use axum::body::Body;
use gatehouse_common::revocation::RevocationKind;
use gatehouse_common::UnixTime;
use gatehouse_origin::config::Config;
use gatehouse_origin::state::now;
use gatehouse_origin::token::{sign_access_token, AccessTokenClaims};

fn introspect_req(tok: &str, who: &Registered) -> axum::http::Request<Body> {
    form_post("/introspect", Some(&basic(&who.id, &who.secret)), "")
        .body(Body::from(format!("token={tok}")))
        .unwrap()
}

/// A token of ours for `c`, issued at `iat` with `ttl`.
fn old_token(
    state: &gatehouse_origin::state::AppState,
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
        let span = gatehouse_origin::revocation::cover_span(&state.db, &state.config)
            .await
            .unwrap();
        assert_eq!(span.secs(), 3_607, "{}", tdb.name);
        let t = now();
        let rev = gatehouse_origin::introspect::revoke_identifier(
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
        let claim = gatehouse_origin::revocation_push::claim(&state.db, "iss", span, false, t)
            .await
            .unwrap()
            .unwrap();
        let until: Vec<i64> = claim.document.entries.iter().map(|e| e.until).collect();
        assert_eq!(until, vec![t.0 + 3_607], "{}", tdb.name);
    }
}
