//! Every security-relevant refusal is audited like every success, through
//! the real router: a failed client authentication, a failed login (the
//! username as a keyed hash, never the password), a refused token exchange,
//! a replayed code, a reused refresh token and a refused admin token — each
//! with its kind, client and the caller's address, and at most a bounded
//! number of rows per address however many arrive. The listing filters by
//! kind, client, subject, time range and request id, the same through the
//! admin API and the CLI (`gatehouse-origin audit`, JSON lines, newest first).

use crate::support::*;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use gatehouse_origin::domain::clients::{self, NewClient};
use gatehouse_origin::domain::grants::{self, CodeGrant};
use gatehouse_origin::domain::state::{AppState, AUDITED_AUTH_FAILURES_PER_MINUTE};
use gatehouse_origin::store::audit::{self, AuditEvent, AuditFilter};
use gatehouse_origin::support::clock::SettableClock;
use http_body_util::BodyExt as _;
use serde_json::Value;
use std::net::SocketAddr;
use std::process::Command;
use tower::ServiceExt as _;

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse-origin");
/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const PASSWORD: &str = "correct horse battery";
const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// `req` sent from `ip` (the TCP peer the server sees).
async fn from(state: &AppState, ip: &str, mut req: Request<Body>) -> (u16, String, Value) {
    let peer = SocketAddr::new(ip.parse().unwrap(), 40000);
    req.extensions_mut().insert(ConnectInfo(peer));
    let resp = gatehouse_origin::http::router(state.clone())
        .oneshot(req)
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let cookies: Vec<String> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, cookies.join("; "), json)
}

fn token_post(auth: &str, body: String) -> Request<Body> {
    form_post("/token", Some(auth), "")
        .body(Body::from(body))
        .unwrap()
}

async fn rows(state: &AppState, kind: &str) -> Vec<AuditEvent> {
    audit::list(
        &state.db,
        1000,
        &AuditFilter {
            kind: Some(kind.into()),
            ..AuditFilter::default()
        },
    )
    .await
    .unwrap()
}

async fn code_for(state: &AppState, client_id: &str, user_id: &str) -> String {
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

#[tokio::test]
async fn audit_failed_client_authentication_names_client_and_address() {
    let state = sqlite_state().await;
    let c = register(&state, "read", false).await;
    let (s, _, body) = from(
        &state,
        "203.0.113.7",
        token_post(
            &basic(&c.id, "wrong-secret"),
            "grant_type=client_credentials".into(),
        ),
    )
    .await;
    assert_eq!(s, 401);
    let r = rows(&state, "authentication_failed").await;
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].client_id.as_deref(), Some(c.id.as_str()));
    assert_eq!(r[0].source_ip.as_deref(), Some("203.0.113.7"));
    // The request's (new) id, as its error body names it (request_id.rs).
    assert!(r[0].request_id.is_some());
    assert_eq!(r[0].request_id.as_deref(), body["request_id"].as_str());
    assert!(!serde_json::to_string(&r).unwrap().contains("wrong-secret"));
}

#[tokio::test]
async fn audit_failed_login_keeps_a_keyed_username_hash_never_the_name_or_password() {
    let state = sqlite_state().await;
    let (client, _) = web_client(&state.db, true, now()).await;
    create_user(&state.db, "alice", now()).await;
    let query = format!(
        "response_type=code&client_id={}&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&code_challenge={CHALLENGE}&code_challenge_method=S256",
        client.client_id
    );
    let mut details = Vec::new();
    for (user, ip) in [
        ("alice", "198.51.100.4"),
        ("alice", "198.51.100.4"),
        ("bob-unknown", "198.51.100.5"),
    ] {
        let (s, cookie, page) = from(
            &state,
            ip,
            Request::get(format!("/authorize?{query}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(s, 200);
        let html = page.as_str().unwrap().to_owned();
        let hidden = |name: &str| {
            let marker = format!("name=\"{name}\" value=\"");
            let start = html.find(&marker).unwrap() + marker.len();
            let end = start + html[start..].find('"').unwrap();
            html[start..end].replace("&amp;", "&")
        };
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("request", hidden("request").as_str()),
                ("csrf", hidden("csrf").as_str()),
                ("username", user),
                ("password", "hunter2-wrong"),
            ])
            .finish();
        let (s, _, _) = from(
            &state,
            ip,
            Request::post("/authorize/login")
                .header("content-type", "application/x-www-form-urlencoded")
                .header("cookie", cookie)
                .body(Body::from(body))
                .unwrap(),
        )
        .await;
        assert_eq!(s, 401);
        let r = rows(&state, "login_failed").await;
        let newest = &r[0];
        assert_eq!(newest.client_id.as_deref(), Some(client.client_id.as_str()));
        assert_eq!(newest.source_ip.as_deref(), Some(ip));
        let shown = serde_json::to_string(newest).unwrap();
        assert!(
            !shown.contains(user) && !shown.contains("hunter2"),
            "{shown}"
        );
        details.push(newest.detail.clone().unwrap());
    }
    assert!(details[0].starts_with("user="), "{details:?}");
    assert_eq!(details[0], details[1], "one name, one hash");
    assert_ne!(details[0], details[2]);
    assert_ne!(details[0], format!("user={}", "alice"));
    let _ = PASSWORD;
}

#[tokio::test]
async fn audit_refused_exchange_names_client_and_address_not_the_token() {
    let state = sqlite_state().await;
    let (c, secret) = clients::create(
        &state.db,
        &NewClient {
            name: "gateway".into(),
            scopes: vec!["read".into()],
            audiences: vec![AUD.into()],
            grant_types: vec![EXCHANGE.into(), "client_credentials".into()],
            ..NewClient::default()
        },
        now(),
    )
    .await
    .unwrap();
    let c = Registered::new(c, secret);
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", EXCHANGE),
            ("subject_token", "not.a-real.token-value"),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
        ])
        .finish();
    let (s, _, b) = from(
        &state,
        "2001:db8::9",
        token_post(&basic(&c.id, &c.secret), body),
    )
    .await;
    assert_eq!(s, 400, "{b}");
    let r = rows(&state, "token_exchange_refused").await;
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].client_id.as_deref(), Some(c.id.as_str()));
    assert_eq!(r[0].source_ip.as_deref(), Some("2001:db8::9"));
    assert!(!serde_json::to_string(&r)
        .unwrap()
        .contains("a-real.token-value"));
}

#[tokio::test]
async fn audit_code_replay_and_refresh_reuse_name_client_and_address() {
    let tdb = sqlite_db();
    let clock = SettableClock::starting_now();
    let state = state_on_clock(
        gatehouse_origin::config::Config::for_tests(&tdb.url),
        tdb.open().await,
        clock.clone(),
    )
    .await;
    let t0 = state.clock.now().secs();
    let (client, secret) = web_client(&state.db, false, t0).await;
    let c = Registered::new(client, secret);
    let auth = basic(&c.id, &c.secret);
    let user = create_user(&state.db, "alice", t0).await;

    // A refresh token rotated, then the first one presented again.
    let code = code_for(&state, &c.id, &user.user_id).await;
    clock.advance_secs(1);
    let (s, _, t) = from(&state, "192.0.2.10", token_post(&auth, redeem_body(&code))).await;
    assert_eq!(s, 200, "{t}");
    let first = t["refresh_token"].as_str().unwrap().to_owned();
    clock.advance_secs(5);
    let refresh = format!("grant_type=refresh_token&refresh_token={first}");
    let (s, _, t) = from(&state, "192.0.2.10", token_post(&auth, refresh.clone())).await;
    assert_eq!(s, 200, "{t}");
    clock.advance_secs(5);
    let (s, _, _) = from(&state, "192.0.2.11", token_post(&auth, refresh)).await;
    assert_eq!(s, 400);
    let r = rows(&state, "refresh_reuse").await;
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].client_id.as_deref(), Some(c.id.as_str()));
    assert_eq!(r[0].source_ip.as_deref(), Some("192.0.2.11"));
    assert_eq!(r[0].subject.as_deref(), Some(user.user_id.as_str()));
    assert!(!serde_json::to_string(&r).unwrap().contains(&first));

    // A code presented again.
    let code = code_for(&state, &c.id, &user.user_id).await;
    clock.advance_secs(1);
    let (s, _, t) = from(&state, "192.0.2.10", token_post(&auth, redeem_body(&code))).await;
    assert_eq!(s, 200, "{t}");
    let (s, _, t) = from(&state, "192.0.2.12", token_post(&auth, redeem_body(&code))).await;
    assert_eq!(s, 400, "{t}");
    let r = rows(&state, "code_replayed").await;
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].client_id.as_deref(), Some(c.id.as_str()));
    assert_eq!(r[0].source_ip.as_deref(), Some("192.0.2.12"));
    assert_eq!(r[0].subject.as_deref(), Some(user.user_id.as_str()));
    assert!(!serde_json::to_string(&r).unwrap().contains(&code));
}

#[tokio::test]
async fn audit_refused_admin_token_names_the_address_never_the_token() {
    let state = sqlite_state().await;
    let (s, _, _) = from(
        &state,
        "203.0.113.66",
        Request::get("/admin/clients")
            .header("authorization", "Bearer guessed-admin-token-123")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, 401);
    let r = rows(&state, "admin_auth_failed").await;
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].source_ip.as_deref(), Some("203.0.113.66"));
    assert!(!serde_json::to_string(&r).unwrap().contains("guessed"));
}

#[tokio::test]
async fn audit_a_flood_of_refusals_writes_a_bounded_number_of_rows() {
    // A clock that stands still: the flood is within one minute however slow the machine.
    let (state, _clock) = sqlite_state_on_settable_clock(|_| {}).await;
    let c = register(&state, "read", false).await;
    for _ in 0..60 {
        let (s, _, _) = from(
            &state,
            "203.0.113.99",
            token_post(
                &basic(&c.id, "nope"),
                "grant_type=client_credentials".into(),
            ),
        )
        .await;
        assert_eq!(s, 401);
    }
    // The admin token's refusals share the address's bound.
    for _ in 0..5 {
        from(
            &state,
            "203.0.113.99",
            Request::get("/admin/clients")
                .header("authorization", "Bearer nope")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    }
    let all = audit::list(&state.db, 1000, &AuditFilter::default())
        .await
        .unwrap();
    let from_flood = all
        .iter()
        .filter(|e| e.source_ip.as_deref() == Some("203.0.113.99"))
        .count();
    assert_eq!(
        from_flood, AUDITED_AUTH_FAILURES_PER_MINUTE as usize,
        "{all:?}"
    );
    // Another address is still audited.
    from(
        &state,
        "203.0.113.100",
        token_post(
            &basic(&c.id, "nope"),
            "grant_type=client_credentials".into(),
        ),
    )
    .await;
    let r = rows(&state, "authentication_failed").await;
    assert_eq!(r[0].source_ip.as_deref(), Some("203.0.113.100"));
}

/// `gatehouse-origin audit …` on `database_url`: one JSON object per line.
fn cli_lines(database_url: &str, args: &[&str]) -> Vec<Value> {
    let dir = std::env::temp_dir().join(format!(
        "gh-origin-audit-{}",
        gatehouse_origin::support::secret::random_id().unwrap()
    ));
    let out = Command::new(BIN)
        .arg("audit")
        .args(args)
        .env_remove("GATEHOUSE_CONFIG")
        .env("GATEHOUSE_DATA_DIR", dir.display().to_string())
        .env("GATEHOUSE_DATABASE_URL", database_url)
        .env("GATEHOUSE_ISSUER", "http://issuer.test")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn admin_events(state: &AppState, query: &str) -> (u16, Value) {
    let (s, _, v) = from(
        state,
        "127.0.0.1",
        Request::get(format!("/admin/audit?{query}"))
            .header("authorization", format!("Bearer {ADMIN}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    (s, v)
}

#[tokio::test]
async fn audit_cli_and_admin_api_filter_alike() {
    let tdb = sqlite_db();
    let state = state_with(
        gatehouse_origin::config::Config::for_tests(&tdb.url),
        tdb.open().await,
    )
    .await;
    let write = |e: AuditEvent| {
        let db = state.db.clone();
        async move { audit::record(&db.pool, &e).await.unwrap() }
    };
    let t = gatehouse_common::UnixTime;
    write(AuditEvent::new("login_failed", t(100)).client("c1")).await;
    write(
        AuditEvent::new("token_issued", t(200))
            .client("c1")
            .subject("u1"),
    )
    .await;
    write(
        AuditEvent::new("token_issued", t(300))
            .client("c2")
            .subject("u2"),
    )
    .await;
    let mut tagged = AuditEvent::new("refresh_reuse", t(400)).client("c2");
    tagged.request_id = Some("req-7".into());
    write(tagged).await;

    let ids = |events: &[Value]| -> Vec<i64> {
        events.iter().map(|e| e["id"].as_i64().unwrap()).collect()
    };
    let cases: [(&[&str], &str, usize); 8] = [
        (&[], "", 4),
        (&["--kind", "token_issued"], "kind=token_issued", 2),
        (&["--client", "c2"], "client_id=c2", 2),
        (&["--subject", "u1"], "subject=u1", 1),
        (
            &["--since", "200", "--until", "300"],
            "since=200&until=300",
            2,
        ),
        (&["--request-id", "req-7"], "request_id=req-7", 1),
        (
            &[
                "--kind",
                "token_issued",
                "--client",
                "c2",
                "--subject",
                "u1",
            ],
            "kind=token_issued&client_id=c2&subject=u1",
            0,
        ),
        (&["--limit", "1"], "limit=1", 1),
    ];
    for (args, query, n) in cases {
        let cli = cli_lines(&tdb.url, args);
        let (s, api) = admin_events(&state, query).await;
        assert_eq!(s, 200, "{api}");
        let api = api["events"].as_array().unwrap().clone();
        assert_eq!(cli.len(), n, "{args:?}: {cli:?}");
        assert_eq!(ids(&cli), ids(&api), "{args:?}");
        assert_eq!(cli, api, "{args:?}");
    }
    // Newest first.
    let all = cli_lines(&tdb.url, &[]);
    assert_eq!(all[0]["event"], "refresh_reuse");
    assert_eq!(all[0]["request_id"], "req-7");
    assert_eq!(all[3]["event"], "login_failed");

    // Refused alike: an empty or oversized field, an inverted range.
    let long = "k".repeat(300);
    for query in ["kind=", &format!("kind={long}"), "since=300&until=200"] {
        let (s, v) = admin_events(&state, query).await;
        assert_eq!(s, 400, "{query}: {v}");
    }
    let out = Command::new(BIN)
        .args(["audit", "--since", "300", "--until", "200"])
        .env_remove("GATEHOUSE_CONFIG")
        .env("GATEHOUSE_DATABASE_URL", &tdb.url)
        .env("GATEHOUSE_ISSUER", "http://issuer.test")
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[tokio::test]
async fn audit_filters_combine_on_every_database() {
    for tdb in databases() {
        let db = tdb.open().await;
        let t = gatehouse_common::UnixTime;
        let mut tagged = AuditEvent::new("login_failed", t(10)).client("c1");
        tagged.request_id = Some("r1".into());
        for e in [
            tagged,
            AuditEvent::new("token_issued", t(20))
                .client("c1")
                .subject("u1"),
            AuditEvent::new("token_issued", t(30))
                .client("c2")
                .subject("u1")
                .jti("j3"),
        ] {
            audit::record(&db.pool, &e).await.unwrap();
        }
        let count = |f: AuditFilter| {
            let db = db.clone();
            async move { audit::list(&db, 100, &f).await.unwrap().len() }
        };
        let f = AuditFilter::default;
        assert_eq!(count(f()).await, 3, "{}", tdb.name);
        let both = AuditFilter {
            kind: Some("token_issued".into()),
            subject: Some("u1".into()),
            since: Some(25),
            ..f()
        };
        assert_eq!(count(both).await, 1, "{}", tdb.name);
        let by_request = AuditFilter {
            request_id: Some("r1".into()),
            until: Some(10),
            ..f()
        };
        let r = audit::list(&db, 100, &by_request).await.unwrap();
        assert_eq!(r.len(), 1, "{}", tdb.name);
        assert_eq!(r[0].request_id.as_deref(), Some("r1"));
        assert_eq!(count(AuditFilter::client("c2")).await, 1, "{}", tdb.name);
        let by_jti = AuditFilter {
            jti: Some("j3".into()),
            ..f()
        };
        let r = audit::list(&db, 100, &by_jti).await.unwrap();
        assert_eq!(r.len(), 1, "{}", tdb.name);
        assert_eq!(r[0].client_id.as_deref(), Some("c2"));
        let none = AuditFilter {
            jti: Some("j3".into()),
            client_id: Some("c1".into()),
            ..f()
        };
        assert_eq!(count(none).await, 0, "{}", tdb.name);
    }
}

#[tokio::test]
async fn audit_revoking_another_clients_token_names_the_caller_and_address() {
    let state = sqlite_state().await;
    let owner = register(&state, "read", false).await;
    let other = register(&state, "read", false).await;
    let (s, _, t) = token(&state, &owner, "grant_type=client_credentials").await;
    assert_eq!(s, 200, "{t}");
    let at = t["access_token"].as_str().unwrap().to_owned();
    let (s, _, _) = from(
        &state,
        "198.51.100.77",
        form_post("/revoke", Some(&basic(&other.id, &other.secret)), "")
            .body(Body::from(format!("token={at}")))
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "RFC 7009: the same answer");
    let r = rows(&state, "revocation_refused").await;
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].client_id.as_deref(), Some(other.id.as_str()));
    assert_eq!(r[0].source_ip.as_deref(), Some("198.51.100.77"));
    assert!(!serde_json::to_string(&r).unwrap().contains(&at));
}
