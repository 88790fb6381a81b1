//! An attacker's review of issue 22 (metrics, audit of refusals): each test
//! was seen failing before its fix (docs/security.md, "Review of issue 22").

use crate::support::*;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use gatehouse_common::b64;
use gatehouse_origin::domain::grants::{self, CodeGrant};
use gatehouse_origin::domain::state::{AppState, AUDITED_AUTH_FAILURES_PER_MINUTE};
use gatehouse_origin::store::audit::{self, AuditEvent, AuditFilter};
use http_body_util::BodyExt as _;
use serde_json::Value;
use std::net::SocketAddr;
use tower::ServiceExt as _;

/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// `req` sent from `ip` (the TCP peer the server sees).
async fn from(state: &AppState, ip: &str, mut req: Request<Body>) -> (u16, Value) {
    let peer = SocketAddr::new(ip.parse().unwrap(), 40000);
    req.extensions_mut().insert(ConnectInfo(peer));
    let resp = gatehouse_origin::http::router(state.clone())
        .oneshot(req)
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn token_post(auth: &str, body: String) -> Request<Body> {
    form_post("/token", Some(auth), "")
        .body(Body::from(body))
        .unwrap()
}

async fn all_rows(state: &AppState) -> Vec<AuditEvent> {
    audit::list(&state.db, 10_000, &AuditFilter::default())
        .await
        .unwrap()
}

/// A client assertion (RFC 7523) whose `sub` is the JSON string `sub_json`,
/// with a signature of zeros: only its unverified `sub` is read.
fn assertion_with_sub(sub_json: &str) -> String {
    let header = b64::encode(br#"{"alg":"ES256","typ":"JWT"}"#);
    let claims =
        format!(r#"{{"sub":"{sub_json}","iss":"x","aud":"x","exp":9999999999,"jti":"j1"}}"#);
    format!(
        "{header}.{}.{}",
        b64::encode(claims.as_bytes()),
        b64::encode(&[0u8; 64])
    )
}

#[tokio::test]
async fn review22_an_assertion_sub_with_control_characters_is_refused_not_stored_or_a_server_error()
{
    for tdb in databases() {
        let state = state_with(
            gatehouse_origin::config::Config::for_tests(&tdb.url),
            tdb.open().await,
        )
        .await;
        // A NUL (PostgreSQL refuses it in text: the lookup failed, 500,
        // paging on the 5xx alert, and nothing audited), an ANSI escape
        // (written as is into the audit row's client_id).
        for sub in [r"a\u0000b", r"\u001b[2J\u001b[31mEVIL", "bell\\u0007"] {
            let (s, body) = post_assertion(&state, &assertion_with_sub(sub)).await;
            assert_eq!(s, 401, "{}: {sub}: {body}", tdb.name);
            assert_eq!(body["error"], "invalid_client", "{}", tdb.name);
        }
        for row in all_rows(&state).await {
            let text = format!("{row:?}");
            assert!(
                !row.client_id
                    .as_deref()
                    .unwrap_or_default()
                    .chars()
                    .any(char::is_control),
                "{}: a control character reached the audit log: {text}",
                tdb.name
            );
        }
        // The refusal is still audited (without the unusable client id).
        let failed = all_rows(&state)
            .await
            .into_iter()
            .filter(|e| e.event == "authentication_failed")
            .count();
        assert_eq!(failed, 3, "{}", tdb.name);
    }
}

#[tokio::test]
async fn review22_rotating_addresses_within_one_ipv6_64_does_not_escape_the_audit_bound() {
    // A standing clock: the flood is within one minute however slow the machine.
    let (state, _clock) = sqlite_state_on_settable_clock(|_| {}).await;
    let c = register(&state, "read", false).await;
    // Anyone with an IPv6 /64 (the smallest usual allocation) has 2^64
    // addresses: one each per refusal.
    for i in 1..=60u32 {
        let (s, _) = from(
            &state,
            &format!("2001:db8:1:2::{i:x}"),
            token_post(
                &basic(&c.id, "nope"),
                "grant_type=client_credentials".into(),
            ),
        )
        .await;
        assert_eq!(s, 401);
    }
    let rows = all_rows(&state).await;
    assert_eq!(
        rows.len(),
        AUDITED_AUTH_FAILURES_PER_MINUTE as usize,
        "{rows:?}"
    );
    // Each row still names the full address it came from.
    assert_eq!(
        rows.last().unwrap().source_ip.as_deref(),
        Some("2001:db8:1:2::1")
    );
    // Another /64 is still audited.
    from(
        &state,
        "2001:db8:1:3::1",
        token_post(
            &basic(&c.id, "nope"),
            "grant_type=client_credentials".into(),
        ),
    )
    .await;
    let rows = all_rows(&state).await;
    assert_eq!(rows[0].source_ip.as_deref(), Some("2001:db8:1:3::1"));
}

#[tokio::test]
async fn review22_cheap_refusals_do_not_spend_the_budget_that_audits_a_code_replay() {
    let (state, clock) = sqlite_state_on_settable_clock(|_| {}).await;
    let t0 = state.clock.now().secs();
    let (client, secret) = web_client(&state.db, false, t0).await;
    let client = Registered::new(client, secret);
    let auth = basic(&client.id, &client.secret);
    let user = create_user(&state.db, "alice", t0).await;
    let code = grants::issue_code(
        &state.db,
        &CodeGrant {
            client_id: client.id.clone(),
            user_id: user.user_id.clone(),
            redirect_uri: CB.into(),
            scopes: vec!["read".into()],
            audience: AUD.into(),
            code_challenge: CHALLENGE.into(),
            dpop_jkt: None,
            session: grants::ApprovingSession {
                sid: live_session(&state.db, &user.user_id).await,
                auth_time: 1,
                amr: "pwd".into(),
            },
            nonce: None,
        },
        t0,
    )
    .await
    .unwrap()
    .expose()
    .to_owned();
    let redeem = format!(
        "grant_type=authorization_code&code={code}&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&code_verifier={VERIFIER}"
    );
    clock.advance_secs(1);
    let (s, t) = from(&state, "192.0.2.10", token_post(&auth, redeem.clone())).await;
    assert_eq!(s, 200, "{t}");

    // The thief first spends the address's audit budget on free refusals
    // (an unknown client id costs nothing)...
    let thief = "198.51.100.66";
    for _ in 0..AUDITED_AUTH_FAILURES_PER_MINUTE {
        let (s, _) = from(
            &state,
            thief,
            token_post(
                &basic("no-such-client", "x"),
                "grant_type=client_credentials".into(),
            ),
        )
        .await;
        assert_eq!(s, 401);
    }
    // ...then replays the intercepted code from the same address.
    let (s, _) = from(&state, thief, token_post(&auth, redeem)).await;
    assert_eq!(s, 400);
    let replays: Vec<AuditEvent> = all_rows(&state)
        .await
        .into_iter()
        .filter(|e| e.event == "code_replayed")
        .collect();
    assert_eq!(replays.len(), 1, "the replay left no audit row");
    assert_eq!(replays[0].source_ip.as_deref(), Some(thief));
}

#[tokio::test]
async fn review22_refusals_of_the_outer_layers_are_counted_by_route_and_status() {
    let state = sqlite_state().await;
    // Header fields over the 32 KiB cap (431), a body over 64 KiB (413):
    // answered by layers around the one that counted responses, so they
    // never reached `gatehouse_http_responses_total`.
    let big = "a".repeat(33 * 1024);
    let (s, _) = from(
        &state,
        "192.0.2.1",
        form_post("/token", None, "")
            .header("x-big", big.as_str())
            .body(Body::from("grant_type=client_credentials"))
            .unwrap(),
    )
    .await;
    assert_eq!(s, 431);
    let body = "a".repeat(70 * 1024);
    let (s, _) = from(
        &state,
        "192.0.2.1",
        form_post("/token", None, "")
            .header("content-length", body.len())
            .body(Body::from(body))
            .unwrap(),
    )
    .await;
    assert_eq!(s, 413);
    let text = state.metrics.render();
    for status in ["431", "413"] {
        assert!(
            text.contains(&format!(
                "gatehouse_http_responses_total{{route=\"/token\",status=\"{status}\"}} 1"
            )),
            "{status} not counted:\n{text}"
        );
    }
}

#[tokio::test]
async fn review22_rotating_ipv6_addresses_does_not_escape_the_admin_token_backoff() {
    // A standing clock: the backoff cannot expire between attempts.
    let (state, _clock) = sqlite_state_on_settable_clock(|_| {}).await;
    let mut statuses = Vec::new();
    for i in 1..=12u32 {
        let (s, _) = from(
            &state,
            &format!("2001:db8:5:6::{i:x}"),
            Request::get("/admin/clients")
                .header("authorization", "Bearer guess-0123456789abcdef")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        statuses.push(s);
    }
    // A few free failures, then the /64 waits: every address in it.
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
}

#[tokio::test]
async fn review22_cheap_refusals_do_not_spend_the_budget_that_audits_a_refused_revocation() {
    let (state, _clock) = sqlite_state_on_settable_clock(|_| {}).await;
    let owner = register(&state, "read", false).await;
    let other = register(&state, "read", false).await;
    let (s, _, t) = token(&state, &owner, "grant_type=client_credentials").await;
    assert_eq!(s, 200, "{t}");
    let at = t["access_token"].as_str().unwrap().to_owned();
    let caller = "198.51.100.88";
    for _ in 0..AUDITED_AUTH_FAILURES_PER_MINUTE {
        let (s, _) = from(
            &state,
            caller,
            token_post(
                &basic("no-such-client", "x"),
                "grant_type=client_credentials".into(),
            ),
        )
        .await;
        assert_eq!(s, 401);
    }
    let (s, _) = from(
        &state,
        caller,
        form_post("/revoke", Some(&basic(&other.id, &other.secret)), "")
            .body(Body::from(format!("token={at}")))
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    let refused: Vec<AuditEvent> = all_rows(&state)
        .await
        .into_iter()
        .filter(|e| e.event == "revocation_refused")
        .collect();
    assert_eq!(refused.len(), 1, "the refused revocation left no audit row");
    assert_eq!(refused[0].source_ip.as_deref(), Some(caller));
}

#[test]
fn review22_the_audit_command_on_a_missing_sqlite_file_fails_instead_of_listing_nothing() {
    // The default URL is `./data/gatehouse.db` from the working directory:
    // run elsewhere, `audit` created an empty database, printed nothing and
    // exited 0 ("no failures").
    let dir = std::env::temp_dir().join(format!(
        "gatehouse-review22-{}",
        gatehouse_origin::support::secret::random_id().unwrap()
    ));
    let file = dir.join("gatehouse.db");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse-origin"))
        .args(["audit"])
        .env_remove("GATEHOUSE_CONFIG")
        .env(
            "GATEHOUSE_DATABASE_URL",
            format!("sqlite://{}", file.display()),
        )
        .env("GATEHOUSE_ISSUER", "http://issuer.test")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("no database at"), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(!file.exists(), "a read created the database");
}
