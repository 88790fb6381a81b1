//! Review of issue 19 (UserInfo, the admin users API) and issue 18
//! (jwt-compact minting): the findings, each as the attack that showed it.
//!
//! - `HEAD /userinfo` (axum answers it with the `GET` handler) checked the
//!   DPoP proof's `htm` against `GET`: a proof signed for `GET` was spent
//!   by a `HEAD`, and an honest `HEAD` proof was refused (RFC 9449 §4.3
//!   check 8: `htm` is the request's method).
//! - Usernames (served as `preferred_username`, shown on the login and
//!   consent pages) took bidirectional overrides and invisible format
//!   characters (`adm\u{202e}in`, `alice\u{200b}`) that `name` refuses.
//! - Creating and deleting a user (admin API and CLI) left no audit row,
//!   unlike every client operation and the profile change.
//! - The users routes read the clock again instead of the admin
//!   middleware's one reading ([`AdminNow`]).

use crate::support::*;
use axum::body::Body;
use axum::http::Request;
use gatehouse_common::testkit::signer::TestKey;
use gatehouse_origin::config::Config;
use gatehouse_origin::domain::admin::{self, Via};
use gatehouse_origin::domain::clients::{self, NewClient};
use gatehouse_origin::domain::grants::{self, CodeGrant};
use gatehouse_origin::domain::state::AppState;
use gatehouse_origin::domain::users;
use gatehouse_origin::support::secret::{random_id, Password};
use serde_json::{json, Value};

/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

async fn admin_call(
    state: &AppState,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {ADMIN}"));
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    let (s, _, v) = send(state, req.body(body).unwrap()).await;
    (s, v)
}

/// A DPoP proof by `key` for `htm htu` with `ath` of `token`.
fn proof(key: &TestKey, htm: &str, htu: &str, token: &str, iat: i64) -> String {
    key.sign(
        &json!({"typ": "dpop+jwt", "alg": key.alg().name(), "jwk": key.public_jwk_json()}),
        &json!({
            "jti": random_id().unwrap(), "htm": htm, "htu": htu, "iat": iat,
            "ath": gatehouse_common::dpop::ath(token),
        }),
    )
}

/// A client allowed `openid`, `openidx` and `profile`.
async fn rp(state: &AppState) -> Registered {
    let (c, s) = clients::create(
        &state.db,
        &NewClient {
            name: "rp".into(),
            scopes: ["openid", "openidx", "profile"].map(str::to_owned).to_vec(),
            audiences: vec![AUD.into()],
            grant_types: vec!["authorization_code".into()],
            redirect_uris: vec![CB.into()],
            ..NewClient::default()
        },
        state.clock.now().secs(),
    )
    .await
    .unwrap();
    Registered::new(c, s)
}

/// A token of `user_id` with `scopes` through `/token` (authorization
/// code), bound to `key` when given.
async fn issue(
    state: &AppState,
    client: &Registered,
    user_id: &str,
    scopes: &str,
    key: Option<&TestKey>,
) -> String {
    let now = state.clock.now().secs();
    let code = grants::issue_code(
        &state.db,
        &CodeGrant {
            client_id: client.id.clone(),
            user_id: user_id.to_owned(),
            redirect_uri: CB.into(),
            scopes: scopes.split(' ').map(str::to_owned).collect(),
            audience: AUD.into(),
            code_challenge: CHALLENGE.into(),
            dpop_jkt: None,
            session: gatehouse_origin::domain::grants::ApprovingSession {
                sid: crate::support::live_session(&state.db, user_id).await,
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
    let mut req = form_post("/token", Some(&basic(&client.id, &client.secret)), "");
    if let Some(k) = key {
        let htu = format!("{}/token", state.config.issuer);
        req = req.header("dpop", proof(k, "POST", &htu, "unused", now.0));
    }
    let (s, _, t) = send(state, req.body(Body::from(body)).unwrap()).await;
    assert_eq!(s, 200, "{t}");
    t["access_token"].as_str().unwrap().to_owned()
}

async fn new_user(state: &AppState, username: &str) -> users::User {
    users::create(
        &state.db,
        username,
        &Password::new("correct horse battery".into()),
        state.clock.now().secs(),
    )
    .await
    .unwrap()
}

/// A DPoP-bound `openid` token of a fresh user, through `/token`.
async fn bound_token(state: &AppState, key: &TestKey) -> String {
    let client = rp(state).await;
    let user = new_user(state, "alice").await;
    issue(state, &client, &user.user_id, "openid", Some(key)).await
}

async fn bearer_userinfo(state: &AppState, token: &str) -> (u16, Value) {
    let (s, _, b) = send(
        state,
        Request::get("/userinfo")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    (s, b)
}

/// Held: a deleted user's token stays refused after a new user takes the
/// username (`sub` is the random `user_id`), and `openid` is a whole scope,
/// not a prefix.
#[tokio::test]
async fn a_recreated_username_and_a_lookalike_scope_get_nothing() {
    let state = sqlite_state().await;
    let client = rp(&state).await;
    let first = new_user(&state, "alice").await;
    let old = issue(&state, &client, &first.user_id, "openid profile", None).await;
    assert_eq!(bearer_userinfo(&state, &old).await.0, 200);
    let (s, _) = admin_call(&state, "DELETE", "/admin/users/alice", None).await;
    assert_eq!(s, 200);
    let second = new_user(&state, "alice").await;
    assert_ne!(first.user_id, second.user_id);
    let (s, b) = bearer_userinfo(&state, &old).await;
    assert_eq!(s, 401, "the old token reads the new alice: {b}");
    assert_eq!(b["error"], "invalid_token");
    let new = issue(&state, &client, &second.user_id, "openid profile", None).await;
    let (s, b) = bearer_userinfo(&state, &new).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["sub"], json!(second.user_id));

    let lookalike = issue(&state, &client, &second.user_id, "openidx profile", None).await;
    let (s, b) = bearer_userinfo(&state, &lookalike).await;
    assert_eq!(s, 403, "{b}");
    assert_eq!(b["error"], "insufficient_scope");
}

async fn userinfo(state: &AppState, method: &str, token: &str, dpop: &str) -> (u16, Value) {
    let (s, _, b) = send(
        state,
        Request::builder()
            .method(method)
            .uri("/userinfo")
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", dpop)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    (s, b)
}

#[tokio::test]
async fn head_userinfo_checks_the_proofs_htm_against_head_not_get() {
    let state = sqlite_state().await;
    let key = TestKey::es256("review19b-holder");
    let token = bound_token(&state, &key).await;
    let htu = format!("{}/userinfo", state.config.issuer);
    let now = state.clock.now().secs().0;
    // A proof signed for GET is not spent by a HEAD.
    let for_get = proof(&key, "GET", &htu, &token, now);
    let (s, b) = userinfo(&state, "HEAD", &token, &for_get).await;
    assert_eq!(s, 401, "a GET proof was accepted for HEAD: {b}");
    let (s, b) = userinfo(&state, "GET", &token, &for_get).await;
    assert_eq!(s, 200, "the GET proof was spent by the HEAD: {b}");
    // An honest HEAD proof is accepted.
    let for_head = proof(&key, "HEAD", &htu, &token, now);
    let (s, b) = userinfo(&state, "HEAD", &token, &for_head).await;
    assert_eq!(s, 200, "{b}");
}

/// Bidirectional overrides, isolates and marks, zero-width and other
/// invisible format characters.
const SPOOFING: [&str; 7] = [
    "adm\u{202e}in",
    "a\u{2066}b",
    "a\u{200f}b",
    "alice\u{200b}",
    "al\u{200d}ice",
    "\u{feff}bob",
    "a\u{00ad}b",
];

#[tokio::test]
async fn usernames_with_bidi_or_invisible_characters_are_refused_by_both_doors() {
    let state = sqlite_state().await;
    for name in SPOOFING {
        let (s, b) = admin_call(
            &state,
            "POST",
            "/admin/users",
            Some(json!({"username": name, "password": "password123"})),
        )
        .await;
        assert_eq!(s, 400, "{name:?}: {b}");
        assert_eq!(b["error"], "invalid_request", "{name:?}: {b}");
        // The CLI's door (the same domain operation).
        let r = admin::create_user(
            &state.db,
            name,
            &Password::new("password123".into()),
            Via::Cli,
            state.clock.now().secs(),
        )
        .await;
        assert!(r.is_err(), "{name:?} created through the CLI's door");
    }
    let (_, list) = admin_call(&state, "GET", "/admin/users", None).await;
    assert_eq!(list["users"], json!([]));
    // Ordinary non-ASCII names still work.
    let (s, b) = admin_call(
        &state,
        "POST",
        "/admin/users",
        Some(json!({"username": "zoë.ødegård", "password": "password123"})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
}

fn events(audit: &Value, event: &str) -> Vec<Value> {
    audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == event)
        .cloned()
        .collect()
}

#[tokio::test]
async fn creating_and_deleting_a_user_is_audited_through_both_doors() {
    let state = sqlite_state().await;
    // The admin API.
    let (s, created) = admin_call(
        &state,
        "POST",
        "/admin/users",
        Some(json!({"username": "bob", "password": "password123"})),
    )
    .await;
    assert_eq!(s, 201, "{created}");
    let (s, deleted) = admin_call(&state, "DELETE", "/admin/users/bob", None).await;
    assert_eq!(s, 200, "{deleted}");
    // The CLI's door.
    let now = state.clock.now().secs();
    let carol = admin::create_user(
        &state.db,
        "carol",
        &Password::new("password123".into()),
        Via::Cli,
        now,
    )
    .await
    .unwrap();
    admin::delete_user(&state.db, &state.config, "carol", Via::Cli, now)
        .await
        .unwrap();

    let (_, audit) = admin_call(&state, "GET", "/admin/audit?limit=100", None).await;
    for event in ["user_created", "user_deleted"] {
        let rows = events(&audit, event);
        let seen: Vec<(Value, Value)> = rows
            .iter()
            .map(|e| (e["subject"].clone(), e["detail"].clone()))
            .collect();
        assert!(
            seen.contains(&(created["user_id"].clone(), json!("admin api"))),
            "{event} by the admin API: {audit}"
        );
        assert!(
            seen.contains(&(json!(carol.user_id), json!("cli"))),
            "{event} by the CLI: {audit}"
        );
    }
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

#[tokio::test]
async fn the_users_routes_read_the_clock_once() {
    use std::sync::atomic::Ordering;
    let tdb = sqlite_db();
    let clock = std::sync::Arc::new(CountingClock::default());
    let state = state_on_clock(Config::for_tests(&tdb.url), tdb.open().await, clock.clone()).await;
    for (method, path, body, status) in [
        (
            "POST",
            "/admin/users",
            Some(json!({"username": "dave", "password": "password123"})),
            201,
        ),
        (
            "PATCH",
            "/admin/users/dave",
            Some(json!({"name": "Dave"})),
            200,
        ),
        ("DELETE", "/admin/users/dave", None, 200),
    ] {
        let before = clock.reads.load(Ordering::SeqCst);
        let (s, b) = admin_call(&state, method, path, body).await;
        assert_eq!(s, status, "{method} {path}: {b}");
        assert_eq!(
            clock.reads.load(Ordering::SeqCst) - before,
            1,
            "{method} {path}"
        );
    }
}
