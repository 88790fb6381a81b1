//! The user-facing grants end to end: a user logs in by posting the origin's
//! login and consent forms, the code is exchanged (PKCE S256), the access
//! token works at the edge; presenting a rotated refresh token revokes the
//! family, and through `sid` the edge then refuses its access tokens.

use crate::harness::login::{authorize, create_user, CB, VERIFIER};
use crate::harness::{http, jwt_claims, web_client_args, ClientCreds, Stack};
use serde_json::Value;
use std::time::{Duration, Instant};

fn token(stack: &Stack, id: &str, secret: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = http()
        .post(format!("{}/token", stack.origin.url))
        .basic_auth(id, Some(secret))
        .form(form)
        .send()
        .expect("POST /token");
    let s = r.status().as_u16();
    (s, r.json().unwrap_or(Value::Null))
}

fn edge_status(stack: &Stack, token: &str) -> u16 {
    http()
        .get(format!("{}/orders/1", stack.edge.url))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .expect("edge answers")
        .status()
        .as_u16()
}

fn until_refused(stack: &Stack, token: &str) {
    let started = Instant::now();
    while edge_status(stack, token) != 401 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the edge still accepts a token of the revoked family; origin log:\n{}",
            stack.origin.proc.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn login_code_refresh_and_reuse_revokes_the_family_at_the_edge() {
    let stack = Stack::start_linked(&[], &[]);
    let _ = create_user(&stack.origin, "alice");
    let client = stack
        .origin
        .create_client("web", "read", &stack.edge.url, &web_client_args(CB));
    let secret = client.secret.clone().expect("confidential");
    let code = authorize(&stack.origin.url, &client.id, "alice");
    let (s, t) = token(
        &stack,
        &client.id,
        &secret,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
            ("code_verifier", VERIFIER),
        ],
    );
    assert_eq!(s, 200, "{t}");
    let at1 = t["access_token"].as_str().expect("at").to_owned();
    let rt1 = t["refresh_token"].as_str().expect("rt").to_owned();
    assert_eq!(
        edge_status(&stack, &at1),
        200,
        "the edge accepts the user's token"
    );

    let (s, t) = token(
        &stack,
        &client.id,
        &secret,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt1)],
    );
    assert_eq!(s, 200, "{t}");
    let at2 = t["access_token"].as_str().expect("at").to_owned();
    assert_eq!(edge_status(&stack, &at2), 200);

    // Reuse of the rotated token: refused, and the whole family is revoked,
    // its access tokens included, at the edge.
    let (s, e) = token(
        &stack,
        &client.id,
        &secret,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt1)],
    );
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_grant")));
    until_refused(&stack, &at1);
    until_refused(&stack, &at2);

    // A replayed code is refused too.
    let (s, e) = token(
        &stack,
        &client.id,
        &secret,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
            ("code_verifier", VERIFIER),
        ],
    );
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_grant")));
}

fn exchange(stack: &Stack, gateway: &ClientCreds, form: &[(&str, &str)]) -> (u16, Value) {
    let mut full = vec![
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ),
        (
            "subject_token_type",
            "urn:ietf:params:oauth:token-type:access_token",
        ),
    ];
    full.extend_from_slice(form);
    token(
        stack,
        &gateway.id,
        gateway.secret.as_deref().expect("confidential"),
        &full,
    )
}

/// RFC 8693 through the real binaries: a gateway exchanges the user's token
/// for a narrower one that names the gateway as actor; the edge accepts it
/// and tells the upstream who acts for whom; widening is refused; revoking
/// the user's grant reaches the exchanged token at the edge (through `sid`),
/// and the revoked token can no longer be exchanged.
#[test]
fn token_exchange_narrows_names_the_actor_and_follows_the_grant_to_the_edge() {
    let stack = Stack::start_linked(&[], &[]);
    let _ = create_user(&stack.origin, "carol");
    let web =
        stack
            .origin
            .create_client("web", "read write", &stack.edge.url, &web_client_args(CB));
    let gateway = stack.origin.create_client(
        "gateway",
        "read",
        &stack.edge.url,
        &[
            "--grant",
            "client_credentials",
            "--grant",
            "urn:ietf:params:oauth:grant-type:token-exchange",
            // The gateway is a resource server of the edge's audience: only
            // an audience of the user's token may exchange it.
            "--serves",
            &stack.edge.url,
        ],
    );
    let code = authorize(&stack.origin.url, &web.id, "carol");
    let (s, t) = token(
        &stack,
        &web.id,
        web.secret.as_deref().expect("confidential"),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
            ("code_verifier", VERIFIER),
        ],
    );
    assert_eq!(s, 200, "{t}");
    let user_at = t["access_token"].as_str().expect("at").to_owned();
    let user_rt = t["refresh_token"].as_str().expect("rt").to_owned();
    let user_sub = jwt_claims(&user_at)["sub"]
        .as_str()
        .expect("sub")
        .to_owned();
    let actor_at = stack.origin.client_credentials(&gateway, &[])["access_token"]
        .as_str()
        .expect("gateway token")
        .to_owned();

    let (s, t) = exchange(
        &stack,
        &gateway,
        &[
            ("subject_token", &user_at),
            ("actor_token", &actor_at),
            (
                "actor_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
            ("audience", &stack.edge.url),
            ("scope", "read"),
        ],
    );
    assert_eq!(s, 200, "{t}");
    assert_eq!(
        t["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    let exchanged = t["access_token"].as_str().expect("exchanged").to_owned();
    let c = jwt_claims(&exchanged);
    assert_eq!(c["sub"], user_sub.as_str(), "the subject stays the user");
    assert_eq!(c["client_id"], gateway.id.as_str());
    assert_eq!(c["act"]["sub"], gateway.id.as_str());
    assert_eq!(c["scope"], "read");

    let seen: Value = http()
        .get(format!("{}/orders/7", stack.edge.url))
        .header("authorization", format!("Bearer {exchanged}"))
        .send()
        .expect("edge answers")
        .json()
        .expect("upstream JSON");
    assert_eq!(seen["identity"]["gatehouse-sub"], user_sub.as_str());
    assert_eq!(seen["identity"]["gatehouse-act"], gateway.id.as_str());
    assert_eq!(seen["identity"]["gatehouse-client-id"], gateway.id.as_str());

    // Only narrowing: more scope, or an audience the subject token lacks.
    let (s, e) = exchange(
        &stack,
        &gateway,
        &[("subject_token", &user_at), ("scope", "read write admin")],
    );
    assert_eq!(
        (s, e["error"].as_str()),
        (400, Some("invalid_scope")),
        "{e}"
    );
    let (s, e) = exchange(
        &stack,
        &gateway,
        &[
            ("subject_token", &user_at),
            ("audience", "https://elsewhere.example"),
        ],
    );
    assert_eq!(
        (s, e["error"].as_str()),
        (400, Some("invalid_target")),
        "{e}"
    );

    // Revoking the user's grant (RFC 7009, the refresh token's family)
    // reaches the exchanged token at the edge, and stops further exchanges.
    let r = http()
        .post(format!("{}/revoke", stack.origin.url))
        .basic_auth(&web.id, web.secret.as_deref())
        .form(&[("token", user_rt.as_str())])
        .send()
        .expect("POST /revoke");
    assert_eq!(r.status(), 200);
    until_refused(&stack, &exchanged);
    let (s, e) = exchange(&stack, &gateway, &[("subject_token", &user_at)]);
    assert_eq!(
        (s, e["error"].as_str()),
        (400, Some("invalid_grant")),
        "{e}"
    );
}
