//! The server's one clock, settable in tests: lifetimes pass without
//! sleeping, and what the server decides follows the clock it holds (the
//! handler reads it once; codes, refresh tokens and keys expire by it).

use crate::support::*;
use axum::body::Body;
use gatehouse_origin::domain::grants::{self, CodeGrant, CODE_TTL_SECS};

/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

async fn code_for(
    state: &gatehouse_origin::domain::state::AppState,
    client_id: &str,
    user_id: &str,
) -> String {
    grants::issue_code(
        &state.db,
        &CodeGrant {
            client_id: client_id.to_owned(),
            user_id: user_id.to_owned(),
            redirect_uri: CB.into(),
            scopes: vec!["read".into()],
            audience: AUD.into(),
            code_challenge: CHALLENGE.into(),
            dpop_jkt: None,
            session: grants::ApprovingSession {
                sid: crate::support::live_session(&state.db, user_id).await,
                auth_time: 1,
                amr: "pwd".into(),
            },
            nonce: None,
        },
        state.clock.now().secs(),
    )
    .await
    .unwrap()
    .expose()
    .to_owned()
}

fn redeem_body(code: &str) -> String {
    format!(
        "grant_type=authorization_code&code={code}&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&code_verifier={VERIFIER}"
    )
}

fn claims(jwt: &str) -> serde_json::Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&gatehouse_common::b64::decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn codes_and_refresh_tokens_expire_on_the_servers_clock() {
    let (state, clock) = sqlite_state_on_settable_clock(|_| {}).await;
    let t0 = state.clock.now().secs();
    let (client, secret) = web_client(&state.db, false, t0).await;
    let c = Registered {
        id: client.client_id.clone(),
        secret: secret.unwrap().expose().to_owned(),
    };
    let user = create_user(&state.db, "alice", t0).await;
    let fresh = code_for(&state, &c.id, &user.user_id).await;
    let stale = code_for(&state, &c.id, &user.user_id).await;

    // One second before the code's lifetime ends: redeemed, and the token's
    // `iat` is the server's clock, not the system's.
    clock.advance_secs(CODE_TTL_SECS - 1);
    let (s, _, t) = token(&state, &c, &redeem_body(&fresh)).await;
    assert_eq!(s, 200, "{t}");
    let at = claims(t["access_token"].as_str().unwrap());
    assert_eq!(at["iat"], t0.0 + CODE_TTL_SECS - 1);
    let refresh = t["refresh_token"].as_str().unwrap().to_owned();

    // At the end of its lifetime: expired.
    clock.advance_secs(1);
    let (s, _, e) = token(&state, &c, &redeem_body(&stale)).await;
    assert_eq!(
        (s, e["error"].as_str(), e["error_description"].as_str()),
        (
            400,
            Some("invalid_grant"),
            Some("the authorization code has expired")
        ),
        "{e}"
    );

    // The refresh token lives `refresh_idle_ttl` from its issue.
    let idle = state.config.refresh_idle_ttl;
    clock.advance_secs(idle - 2);
    let (s, _, t) = token(
        &state,
        &c,
        &format!("grant_type=refresh_token&refresh_token={refresh}"),
    )
    .await;
    assert_eq!(s, 200, "{t}");
    let next = t["refresh_token"].as_str().unwrap().to_owned();
    clock.advance_secs(idle);
    let (s, _, e) = token(
        &state,
        &c,
        &format!("grant_type=refresh_token&refresh_token={next}"),
    )
    .await;
    assert_eq!(
        (s, e["error"].as_str(), e["error_description"].as_str()),
        (
            400,
            Some("invalid_grant"),
            Some("the refresh token has expired")
        ),
        "{e}"
    );
}

#[tokio::test]
async fn keys_rotate_and_leave_the_jwks_on_the_servers_clock() {
    let (state, clock) = sqlite_state_on_settable_clock(|_| {}).await;
    let jwks = |state: &gatehouse_origin::domain::state::AppState| {
        let state = state.clone();
        async move {
            let (s, _, j) = send(
                &state,
                axum::http::Request::get("/.well-known/jwks.json")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
            assert_eq!(s, 200);
            j["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["kid"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    let first = jwks(&state).await;
    assert_eq!(first.len(), 1, "{first:?}");
    // Past the first key's active period: maintenance (the background task
    // reads this clock too) publishes a successor.
    let schedule = state.config.key_schedule;
    clock.advance_secs(schedule.active_period);
    state.maintain_keys(state.clock.now().secs()).await.unwrap();
    let both = jwks(&state).await;
    assert_eq!(both.len(), 2, "{both:?}");
    assert!(both.contains(&first[0]));
    // Long after: the first key has left the JWKS.
    clock.advance_secs(
        schedule.active_period + schedule.retention + state.config.access_token_ttl + 3_600,
    );
    state.maintain_keys(state.clock.now().secs()).await.unwrap();
    let later = jwks(&state).await;
    assert!(!later.contains(&first[0]), "{later:?}");
}

/// The system clock, counting its readings.
#[derive(Debug, Default)]
struct CountingClock {
    reads: std::sync::atomic::AtomicUsize,
}

impl gatehouse_origin::support::clock::Clock for CountingClock {
    fn now(&self) -> gatehouse_origin::support::clock::Reading {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        gatehouse_origin::support::clock::SystemClock.now()
    }
}

/// An admin request reads the clock once: the backoff middleware's reading
/// (milliseconds) is the one the handler uses (seconds); a refused token
/// reads it once too.
#[tokio::test]
async fn an_admin_request_reads_the_clock_once() {
    use std::sync::atomic::Ordering;
    let tdb = sqlite_db();
    let clock = std::sync::Arc::new(CountingClock::default());
    let state = state_on_clock(
        gatehouse_origin::config::Config::for_tests(&tdb.url),
        tdb.open().await,
        clock.clone(),
    )
    .await;
    for (path, token, status) in [
        ("/admin/keys", ADMIN, 200),
        ("/admin/revocations/status", ADMIN, 200),
        ("/admin/keys", "wrong-token", 401),
    ] {
        let before = clock.reads.load(Ordering::SeqCst);
        let (s, _, body) = send(
            &state,
            axum::http::Request::get(path)
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(s, status, "{path}: {body}");
        assert_eq!(
            clock.reads.load(Ordering::SeqCst) - before,
            1,
            "{path} with {token}"
        );
    }
}
