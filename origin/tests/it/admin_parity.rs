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

/// The CLI with `GATEHOUSE_USER_PASSWORD` set: its status and stdout.
fn cli_user(database_url: &str, args: &[&str]) -> (bool, Value) {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("GATEHOUSE_CONFIG")
        .env("GATEHOUSE_DATABASE_URL", database_url)
        .env("GATEHOUSE_ISSUER", "http://issuer.test")
        .env("GATEHOUSE_USER_PASSWORD", "correct horse battery")
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.success(), v)
}

/// Issue 19: a user's OpenID Connect profile (name, email, email_verified,
/// updated_at) is set the same way through the admin API and the CLI, at
/// creation and by a change, with the same answer.
#[tokio::test]
async fn a_user_profile_is_set_and_changed_the_same_way_through_both_doors() {
    let tdb = sqlite_db();
    let state = state_with(Config::for_tests(&tdb.url), tdb.open().await).await;
    let (s, api) = admin(
        &state,
        "POST",
        "/admin/users",
        Some(
            json!({"username": "alice", "password": "correct horse battery",
                    "name": "Alice Liddell", "email": "alice@example.com", "email_verified": true}),
        ),
    )
    .await;
    assert_eq!(s, 201, "{api}");
    assert!(api.get("password").is_none() && !api.to_string().contains("correct horse"));
    let (ok, by_cli) = cli_user(
        &tdb.url,
        &[
            "user",
            "create",
            "bob",
            "--name",
            "Bob B.",
            "--email",
            "bob@example.com",
            "--email-verified",
        ],
    );
    assert!(ok, "{by_cli}");
    assert_eq!(keys(&api), keys(&by_cli));
    for (v, name, email) in [
        (&api, "Alice Liddell", "alice@example.com"),
        (&by_cli, "Bob B.", "bob@example.com"),
    ] {
        assert_eq!(v["name"], name);
        assert_eq!(v["email"], email);
        assert_eq!(v["email_verified"], true);
        assert_eq!(v["updated_at"], v["created_at"]);
    }

    // A change: a new address is unverified unless said otherwise.
    let (s, changed) = admin(
        &state,
        "PATCH",
        "/admin/users/alice",
        Some(json!({"email": "alice@wonderland.example"})),
    )
    .await;
    assert_eq!(s, 200, "{changed}");
    assert_eq!(changed["email"], "alice@wonderland.example");
    assert_eq!(changed["email_verified"], false);
    assert_eq!(changed["name"], "Alice Liddell");
    let (ok, cli_changed) = cli_user(
        &tdb.url,
        &["user", "update", "bob", "--email", "bob@wonderland.example"],
    );
    assert!(ok, "{cli_changed}");
    assert_eq!(keys(&changed), keys(&cli_changed));
    assert_eq!(cli_changed["email_verified"], false);
    assert_eq!(cli_changed["name"], "Bob B.");
    // Verified again, and the name cleared with an empty value.
    let (ok, cli_changed) = cli_user(
        &tdb.url,
        &[
            "user",
            "update",
            "bob",
            "--email-verified",
            "true",
            "--name",
            "",
        ],
    );
    assert!(ok, "{cli_changed}");
    assert_eq!(cli_changed["email_verified"], true);
    assert_eq!(cli_changed["name"], Value::Null);
    let (s, api_changed) = admin(
        &state,
        "PATCH",
        "/admin/users/alice",
        Some(json!({"email_verified": true, "name": ""})),
    )
    .await;
    assert_eq!(s, 200, "{api_changed}");
    assert_eq!(api_changed["email_verified"], true);
    assert_eq!(api_changed["name"], Value::Null);

    // The same list whichever way it is asked for.
    let (s, listed) = admin(&state, "GET", "/admin/users", None).await;
    assert_eq!(s, 200);
    assert_eq!(listed, cli_user(&tdb.url, &["user", "list"]).1);

    // No such user: 404 / a failing command.
    let (s, _) = admin(
        &state,
        "PATCH",
        "/admin/users/nobody",
        Some(json!({"name": "N"})),
    )
    .await;
    assert_eq!(s, 404);
    assert!(!cli_user(&tdb.url, &["user", "update", "nobody", "--name", "N"]).0);
}

/// Issue 19: the profile rules refuse the same values through both doors:
/// an email without `@` or with two, an overlong address, a name with a
/// control or bidirectional-override character or over 256 characters,
/// `email_verified` without an address. Nothing is stored or changed.
#[tokio::test]
async fn a_profile_refused_by_the_admin_api_is_refused_by_the_cli() {
    let tdb = sqlite_db();
    let state = state_with(Config::for_tests(&tdb.url), tdb.open().await).await;
    let long_email = format!("{}@example.com", "a".repeat(250));
    let long_name = "n".repeat(257);
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            json!({"email": "no-at-sign"}),
            vec!["--email", "no-at-sign"],
        ),
        (
            json!({"email": "a@b@c.example"}),
            vec!["--email", "a@b@c.example"],
        ),
        (
            json!({"email": "a b@example.com"}),
            vec!["--email", "a b@example.com"],
        ),
        (
            json!({"email": "a@-x.example"}),
            vec!["--email", "a@-x.example"],
        ),
        (json!({"email": long_email}), vec!["--email", &long_email]),
        (
            json!({"name": "Al\u{0007}ice"}),
            vec!["--name", "Al\u{0007}ice"],
        ),
        (
            json!({"name": "Al\u{202e}ecila"}),
            vec!["--name", "Al\u{202e}ecila"],
        ),
        (json!({"name": "   "}), vec!["--name", "   "]),
        (json!({"name": long_name}), vec!["--name", &long_name]),
    ];
    for (fields, args) in &cases {
        let mut body = json!({"username": "carol", "password": "correct horse battery"});
        for (k, v) in fields.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (s, v) = admin(&state, "POST", "/admin/users", Some(body.clone())).await;
        assert!(s == 400, "{body}: {s} {v}");
        let mut cli_args = vec!["user", "create", "dave"];
        cli_args.extend(args.iter().copied());
        assert!(
            !cli_user(&tdb.url, &cli_args).0,
            "{args:?} accepted by the CLI"
        );
    }
    // email_verified without an address.
    let (s, _) = admin(
        &state,
        "POST",
        "/admin/users",
        Some(json!({"username": "carol", "password": "correct horse battery", "email_verified": true})),
    )
    .await;
    assert_eq!(s, 400);
    assert!(!cli_user(&tdb.url, &["user", "create", "dave", "--email-verified"]).0);
    let (s, v) = admin(&state, "GET", "/admin/users", None).await;
    assert_eq!((s, &v["users"]), (200, &json!([])), "{v}");

    // The same refusals for a change; the stored profile stays.
    let (s, before) = admin(
        &state,
        "POST",
        "/admin/users",
        Some(json!({"username": "erin", "password": "correct horse battery", "name": "Erin"})),
    )
    .await;
    assert_eq!(s, 201, "{before}");
    for (fields, args) in &cases {
        let (s, v) = admin(&state, "PATCH", "/admin/users/erin", Some(fields.clone())).await;
        assert_eq!(s, 400, "{fields}: {v}");
        let mut cli_args = vec!["user", "update", "erin"];
        cli_args.extend(args.iter().copied());
        assert!(
            !cli_user(&tdb.url, &cli_args).0,
            "{args:?} accepted by the CLI"
        );
    }
    let (s, _) = admin(
        &state,
        "PATCH",
        "/admin/users/erin",
        Some(json!({"email_verified": true})),
    )
    .await;
    assert_eq!(s, 400);
    // An unknown member is refused, not ignored.
    let (s, _) = admin(
        &state,
        "PATCH",
        "/admin/users/erin",
        Some(json!({"username": "mallory"})),
    )
    .await;
    assert_eq!(s, 400);
    let (_, list) = admin(&state, "GET", "/admin/users", None).await;
    assert_eq!(list["users"][0], before, "{list}");
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
