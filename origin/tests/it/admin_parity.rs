//! The admin HTTP API and the CLI are one service (`domain::admin`): the
//! same rules and the same answers whichever way an operator asks. They had
//! drifted: `client rotate-secret --grace` took any period while the admin
//! API capped it at 30 days.

use crate::support::*;
use axum::body::Body;
use axum::http::Request;
use gatehouse_origin::config::Config;
use serde_json::{json, Value};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse-origin");
const THIRTY_DAYS: i64 = 30 * 86_400;
/// Ten years: far beyond the cap.
const TEN_YEARS: i64 = 10 * 365 * 86_400;

fn cli(database_url: &str, args: &[&str]) -> Value {
    let dir = std::env::temp_dir().join(format!(
        "gh-origin-parity-{}",
        gatehouse_origin::support::secret::random_id().unwrap()
    ));
    let out = Command::new(BIN)
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
    serde_json::from_slice(&out.stdout).unwrap()
}

async fn admin(
    state: &gatehouse_origin::domain::state::AppState,
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

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

#[tokio::test]
async fn secret_grace_is_capped_at_thirty_days_through_the_admin_api_and_the_cli() {
    let tdb = sqlite_db();
    let state = state_with(Config::for_tests(&tdb.url), tdb.open().await).await;
    let (s, created) = admin(
        &state,
        "POST",
        "/admin/clients",
        Some(json!({"name": "svc", "scope": "read"})),
    )
    .await;
    assert_eq!(s, 201, "{created}");
    let id = created["client_id"].as_str().unwrap().to_owned();

    let before = crate::support::now().0;
    let (s, api) = admin(
        &state,
        "POST",
        &format!("/admin/clients/{id}/rotate-secret?grace={TEN_YEARS}"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{api}");
    let after = crate::support::now().0;
    let until = api["previous_secret_expires_at"].as_i64().unwrap();
    assert!(
        (before + THIRTY_DAYS..=after + THIRTY_DAYS).contains(&until),
        "admin API: {until}"
    );

    let before = crate::support::now().0;
    let cli_rotated = cli(
        &tdb.url,
        &[
            "client",
            "rotate-secret",
            &id,
            "--grace",
            &TEN_YEARS.to_string(),
        ],
    );
    let after = crate::support::now().0;
    let until = cli_rotated["previous_secret_expires_at"].as_i64().unwrap();
    assert!(
        (before + THIRTY_DAYS..=after + THIRTY_DAYS).contains(&until),
        "CLI: {until} (the CLI used to keep the old secret for the ten years asked)"
    );
    assert_eq!(keys(&api), keys(&cli_rotated));

    // The same view of the client, whichever way it is asked for.
    let (s, shown) = admin(&state, "GET", &format!("/admin/clients/{id}"), None).await;
    assert_eq!(s, 200);
    assert_eq!(shown, cli(&tdb.url, &["client", "show", &id]));
    let (s, listed) = admin(&state, "GET", "/admin/clients", None).await;
    assert_eq!(s, 200);
    assert_eq!(listed, cli(&tdb.url, &["client", "list"]));
}

#[tokio::test]
async fn a_client_created_through_the_cli_and_the_admin_api_gets_the_same_defaults() {
    let tdb = sqlite_db();
    let state = state_with(Config::for_tests(&tdb.url), tdb.open().await).await;
    let (s, api) = admin(
        &state,
        "POST",
        "/admin/clients",
        Some(json!({"name": "svc", "scope": "read"})),
    )
    .await;
    assert_eq!(s, 201, "{api}");
    let by_cli = cli(
        &tdb.url,
        &["client", "create", "--name", "svc", "--scope", "read"],
    );
    assert_eq!(keys(&api), keys(&by_cli));
    for field in [
        "grant_types",
        "token_endpoint_auth_method",
        "scope",
        "public",
    ] {
        assert_eq!(api[field], by_cli[field], "{field}");
    }
    assert_eq!(api["grant_types"], json!(["client_credentials"]));
}

/// Review of issue 18: the rules that refuse a client are the same through
/// both doors: a cleartext or userinfo redirect URI, a scope token with a
/// quote, a grant type Gatehouse does not offer (`password`). The admin API
/// answers 400 and the CLI exits non-zero, and neither stores a client.
#[tokio::test]
async fn a_client_refused_by_the_admin_api_is_refused_by_the_cli() {
    let tdb = sqlite_db();
    let state = state_with(Config::for_tests(&tdb.url), tdb.open().await).await;
    let cases: [(Value, &[&str]); 4] = [
        (
            json!({"name": "w", "scope": "read", "grant_types": ["authorization_code"],
                   "redirect_uris": ["http://app.example/cb"]}),
            &[
                "--scope",
                "read",
                "--grant",
                "authorization_code",
                "--redirect-uri",
                "http://app.example/cb",
            ],
        ),
        (
            json!({"name": "w", "scope": "read", "grant_types": ["authorization_code"],
                   "redirect_uris": ["https://u:p@app.example/cb"]}),
            &[
                "--scope",
                "read",
                "--grant",
                "authorization_code",
                "--redirect-uri",
                "https://u:p@app.example/cb",
            ],
        ),
        (
            json!({"name": "w", "scope": "re\"ad"}),
            &["--scope", "re\"ad"],
        ),
        (
            json!({"name": "w", "scope": "read", "grant_types": ["password"]}),
            &["--scope", "read", "--grant", "password"],
        ),
    ];
    for (body, args) in cases {
        let (s, v) = admin(&state, "POST", "/admin/clients", Some(body.clone())).await;
        assert_eq!(s, 400, "{body}: {v}");
        let out = Command::new(BIN)
            .args(["client", "create", "--name", "w"])
            .args(args)
            .env_remove("GATEHOUSE_CONFIG")
            .env("GATEHOUSE_DATABASE_URL", &tdb.url)
            .env("GATEHOUSE_ISSUER", "http://issuer.test")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} was accepted by the CLI");
    }
    let (_, list) = admin(&state, "GET", "/admin/clients", None).await;
    assert_eq!(list["clients"], json!([]), "{list}");
    // The same invocation with valid values succeeds (the refusals above
    // are the rules', not the environment's).
    let ok = Command::new(BIN)
        .args(["client", "create", "--name", "w", "--scope", "read"])
        .env_remove("GATEHOUSE_CONFIG")
        .env("GATEHOUSE_DATABASE_URL", &tdb.url)
        .env("GATEHOUSE_ISSUER", "http://issuer.test")
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

/// Issue 19: a user's sessions and grants are listed and ended the same way
/// through both doors, and neither ends another user's.
#[tokio::test]
async fn a_users_sessions_are_listed_and_ended_alike_through_the_cli_and_the_admin_api() {
    use crate::logout::{query, redeem, rp, Browser};
    let tdb = sqlite_db();
    let state = state_with(Config::for_tests(&tdb.url), tdb.open().await).await;
    create_user(&state.db, "alice", now()).await;
    create_user(&state.db, "bob", now()).await;
    let c = rp(&state, false, &[]).await;
    for _ in 0..2 {
        let mut b = Browser::default();
        let code = b
            .code_as(&state, &query(&c.id, &[("scope", "openid read")]), "alice")
            .await;
        redeem(&state, &c, &code).await;
    }
    let (s, api) = admin(&state, "GET", "/admin/users/alice/sessions", None).await;
    assert_eq!(s, 200, "{api}");
    assert_eq!(api, cli(&tdb.url, &["user", "sessions", "alice"]));
    assert_eq!(api["sessions"].as_array().unwrap().len(), 2, "{api}");
    assert_eq!(api["grants"].as_array().unwrap().len(), 2, "{api}");
    let sid1 = api["sessions"][0]["sid"].as_str().unwrap().to_owned();
    let sid2 = api["sessions"][1]["sid"].as_str().unwrap().to_owned();

    // Not through another user, by either door.
    let (s, _) = admin(
        &state,
        "DELETE",
        &format!("/admin/users/bob/sessions/{sid1}"),
        None,
    )
    .await;
    assert_eq!(s, 404);
    let out = Command::new(BIN)
        .args(["user", "revoke-session", "bob", &sid2])
        .env_remove("GATEHOUSE_CONFIG")
        .env("GATEHOUSE_DATABASE_URL", &tdb.url)
        .env("GATEHOUSE_ISSUER", "http://issuer.test")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the CLI ended bob's? {out:?}");
    let (_, unchanged) = admin(&state, "GET", "/admin/users/alice/sessions", None).await;
    assert_eq!(unchanged, api);

    let (s, by_api) = admin(
        &state,
        "DELETE",
        &format!("/admin/users/alice/sessions/{sid1}"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{by_api}");
    let by_cli = cli(&tdb.url, &["user", "revoke-session", "alice", &sid2]);
    assert_eq!(keys(&by_api), keys(&by_cli));
    for answer in [&by_api, &by_cli] {
        assert_eq!(answer["session_ended"], true, "{answer}");
        assert_eq!(answer["grants_revoked"].as_array().unwrap().len(), 1);
    }
    let (_, after) = admin(&state, "GET", "/admin/users/alice/sessions", None).await;
    assert_eq!(after["sessions"], json!([]));
    assert_eq!(after["grants"], json!([]));
    assert_eq!(after, cli(&tdb.url, &["user", "sessions", "alice"]));
}
