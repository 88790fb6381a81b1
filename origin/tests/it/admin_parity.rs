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

/// RFC 9126 §6: `require_pushed_authorization_requests` is set through the
/// same domain function by `client create --require-par` and the admin API,
/// shows the same in both views, and defaults to off in both.
#[tokio::test]
async fn require_par_is_the_same_setting_through_the_cli_and_the_admin_api() {
    let tdb = sqlite_db();
    let state = state_with(Config::for_tests(&tdb.url), tdb.open().await).await;
    let web = |extra: Option<bool>| {
        let mut b = json!({"name": "web", "scope": "read", "grant_types": ["authorization_code"],
                           "redirect_uris": ["https://app.example/cb"]});
        if let Some(v) = extra {
            b["require_pushed_authorization_requests"] = json!(v);
        }
        b
    };
    let args = [
        "client",
        "create",
        "--name",
        "web",
        "--scope",
        "read",
        "--grant",
        "authorization_code",
        "--redirect-uri",
        "https://app.example/cb",
    ];
    let (s, api_on) = admin(&state, "POST", "/admin/clients", Some(web(Some(true)))).await;
    assert_eq!(s, 201, "{api_on}");
    let cli_on = cli(&tdb.url, &[&args[..], &["--require-par"]].concat());
    assert_eq!(api_on["require_pushed_authorization_requests"], true);
    assert_eq!(cli_on["require_pushed_authorization_requests"], true);
    assert_eq!(keys(&api_on), keys(&cli_on));
    let (s, api_off) = admin(&state, "POST", "/admin/clients", Some(web(None))).await;
    assert_eq!(s, 201, "{api_off}");
    let cli_off = cli(&tdb.url, &args);
    assert_eq!(api_off["require_pushed_authorization_requests"], false);
    assert_eq!(cli_off["require_pushed_authorization_requests"], false);
    // Stored: the views read back agree with what was created.
    for v in [&api_on, &cli_on, &api_off, &cli_off] {
        let id = v["client_id"].as_str().unwrap();
        let (s, shown) = admin(&state, "GET", &format!("/admin/clients/{id}"), None).await;
        assert_eq!(s, 200);
        assert_eq!(
            shown["require_pushed_authorization_requests"],
            v["require_pushed_authorization_requests"]
        );
        assert_eq!(shown, cli(&tdb.url, &["client", "show", id]));
    }
}
