//! Attacks on the user-facing grants through the real origin binary (found
//! by review of 3c24e0c): an operator's `sid`/`sub`/`client_id` revocation
//! that a refresh one second later walked around, a code burned by another
//! client's attempt, and codes that outlived their user's deletion.

use crate::harness::login::{authorize, authorize_url, create_user, login_at, param, CB, VERIFIER};
use crate::harness::{http, jwt_claims, ClientCreds, Origin};
use serde_json::Value;
use std::time::Duration;

fn web_client(origin: &Origin, name: &str) -> ClientCreds {
    origin.create_client(
        name,
        "read",
        "https://api.example",
        &[
            "--grant",
            "authorization_code",
            "--grant",
            "refresh_token",
            "--grant",
            "client_credentials",
            "--redirect-uri",
            CB,
        ],
    )
}

fn token(origin: &Origin, c: &ClientCreds, form: &[(&str, &str)]) -> (u16, Value) {
    let r = http()
        .post(format!("{}/token", origin.url))
        .basic_auth(&c.id, c.secret.as_deref())
        .form(form)
        .send()
        .expect("POST /token");
    let s = r.status().as_u16();
    (s, r.json().unwrap_or(Value::Null))
}

fn redeem(origin: &Origin, c: &ClientCreds, code: &str) -> (u16, Value) {
    token(
        origin,
        c,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CB),
            ("code_verifier", VERIFIER),
        ],
    )
}

fn refresh(origin: &Origin, c: &ClientCreds, rt: &str) -> (u16, Value) {
    token(
        origin,
        c,
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
    )
}

fn active(origin: &Origin, c: &ClientCreds, tok: &str) -> bool {
    let v: Value = http()
        .post(format!("{}/introspect", origin.url))
        .basic_auth(&c.id, c.secret.as_deref())
        .form(&[("token", tok)])
        .send()
        .expect("POST /introspect")
        .json()
        .expect("introspection JSON");
    v["active"] == true
}

/// Whether the token response `t` holds an access token that is active.
fn minted_live_token(origin: &Origin, c: &ClientCreds, t: &Value) -> bool {
    t["access_token"]
        .as_str()
        .is_some_and(|at| active(origin, c, at))
}

/// Logs `user` in for `c` and redeems the code: (access token, refresh token).
fn grant(origin: &Origin, c: &ClientCreds, user: &str) -> (String, String) {
    let code = authorize(&origin.url, &c.id, user);
    let (s, t) = redeem(origin, c, &code);
    assert_eq!(s, 200, "{t}");
    (
        t["access_token"].as_str().expect("at").to_owned(),
        t["refresh_token"].as_str().expect("rt").to_owned(),
    )
}

/// Revocation entries refuse tokens issued up to `revoked_at`: a refresh a
/// second later used to mint a fresh, valid token from the revoked grant.
/// Revoking a `sid` now ends its refresh family, a `sub` every family of the
/// user, a `client_id` every family of the client.
#[test]
fn revoking_a_sid_sub_or_client_id_stops_refresh_from_minting_new_tokens() {
    let origin = Origin::start();
    for (flag, claim) in [
        ("--sid", "sid"),
        ("--sub", "sub"),
        ("--client", "client_id"),
    ] {
        let user = format!("user-{claim}").replace('_', "-");
        let _ = create_user(&origin, &user);
        let c = web_client(&origin, &format!("web-{claim}"));
        let (at, rt) = grant(&origin, &c, &user);
        let value = jwt_claims(&at)[claim].as_str().expect("claim").to_owned();
        let _ = origin.cli(&["revoke", &format!("{flag}={value}")]);
        assert!(
            !active(&origin, &c, &at),
            "{claim}: the access token is revoked"
        );
        // A second later: past the entry's `revoked_at`.
        std::thread::sleep(Duration::from_millis(1100));
        let (s, t) = refresh(&origin, &c, &rt);
        let minted = minted_live_token(&origin, &c, &t);
        assert_eq!(
            (s, t["error"].as_str(), minted),
            (400, Some("invalid_grant"), false),
            "{claim} revoked, yet the refresh answered {s} {}",
            t["error"]
        );
        // The revocation ends what was issued; a new login starts a new grant.
        let (at2, rt2) = grant(&origin, &c, &user);
        assert!(active(&origin, &c, &at2), "{claim}: a later grant works");
        let (s, t) = refresh(&origin, &c, &rt2);
        assert_eq!(s, 200, "{claim}: a later grant refreshes: {t}");
    }
}

/// Documented limit (docs/guide.md §7): a `client_id` revocation does not
/// stop a confidential client from authenticating; rotating its secret
/// without grace (or deleting it) does.
#[test]
fn client_credentials_after_a_client_revocation_stop_only_with_the_secret() {
    let origin = Origin::start();
    let c = web_client(&origin, "machine");
    let old = origin.client_credentials(&c, &[])["access_token"]
        .as_str()
        .expect("at")
        .to_owned();
    let _ = origin.cli(&["revoke", &format!("--client={}", c.id)]);
    assert!(!active(&origin, &c, &old));
    std::thread::sleep(Duration::from_millis(1100));
    let (s, _) = token(&origin, &c, &[("grant_type", "client_credentials")]);
    assert_eq!(s, 200, "the secret still authenticates");
    let _ = origin.cli(&["client", "rotate-secret", &c.id, "--grace", "0"]);
    let (s, e) = token(&origin, &c, &[("grant_type", "client_credentials")]);
    assert_eq!((s, e["error"].as_str()), (401, Some("invalid_client")));
}

/// Client B presenting client A's code (with A's verifier) used to burn it:
/// A's own redemption then looked like a replay and revoked A's grant.
#[test]
fn a_code_presented_by_another_client_is_neither_consumed_nor_revokes_the_grant() {
    let origin = Origin::start();
    let _ = create_user(&origin, "alice");
    let a = web_client(&origin, "a");
    let b = web_client(&origin, "b");
    let code = authorize(&origin.url, &a.id, "alice");
    let (s, e) = redeem(&origin, &b, &code);
    assert_eq!(
        (s, e["error"].as_str()),
        (400, Some("invalid_grant")),
        "{e}"
    );
    let (s, t) = redeem(&origin, &a, &code);
    assert_eq!(s, 200, "A can still redeem its code: {t}");
    let at = t["access_token"].as_str().expect("at");
    let rt = t["refresh_token"].as_str().expect("rt");
    assert!(active(&origin, &a, at), "A's access token is live");
    let (s, t) = refresh(&origin, &a, rt);
    assert_eq!(s, 200, "A's family is intact: {t}");
}

/// Deleting a user used to leave their outstanding codes redeemable: a code
/// obtained before the delete became a new, live refresh family after it.
#[test]
fn codes_issued_before_a_user_is_deleted_cannot_be_redeemed_after() {
    let origin = Origin::start();
    let _ = create_user(&origin, "mallory");
    let c = web_client(&origin, "web");
    let code = authorize(&origin.url, &c.id, "mallory");
    let _ = origin.cli(&["user", "delete", "mallory"]);
    let (s, t) = redeem(&origin, &c, &code);
    let minted = minted_live_token(&origin, &c, &t);
    assert_eq!(
        (s, t["error"].as_str(), minted),
        (400, Some("invalid_grant"), false),
        "a deleted user's code was redeemed: {s} {}",
        t["error"]
    );
}

/// Sibling of the above: a wrong verifier, redirect URI or client used to
/// burn the code too, so whoever saw a code in transit (a public client's
/// id is no secret) could spend it and make the rightful redemption fail.
#[test]
fn a_code_presented_with_a_wrong_verifier_or_redirect_uri_is_not_consumed() {
    let origin = Origin::start();
    let _ = create_user(&origin, "bob");
    let a = web_client(&origin, "a");
    let code = authorize(&origin.url, &a.id, "bob");
    let wrong_verifier = "x".repeat(43);
    for (verifier, redirect) in [
        (wrong_verifier.as_str(), CB),
        (VERIFIER, "https://app.example/elsewhere"),
    ] {
        let (s, e) = token(
            &origin,
            &a,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect),
                ("code_verifier", verifier),
            ],
        );
        assert_eq!(
            (s, e["error"].as_str()),
            (400, Some("invalid_grant")),
            "{e}"
        );
    }
    let (s, t) = redeem(&origin, &a, &code);
    assert_eq!(
        s, 200,
        "the rightful redemption still works: {}",
        t["error"]
    );
}

/// `GET /authorize` with the browser's cookies: the code the origin hands
/// out without a login (a live session that consented before), if any.
fn silent_code(origin: &Origin, client_id: &str, jar: &[String]) -> Option<String> {
    let url = authorize_url(&origin.url, client_id);
    let r = http()
        .get(url)
        .header("cookie", jar.join("; "))
        .send()
        .expect("GET /authorize");
    if r.status() != 303 {
        return None;
    }
    let loc = r.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    param(&loc, "code")
}

/// `revoke --sub` ends what could mint new tokens for the user, but left
/// their browser sessions: whoever held one (a stolen cookie, the reason to
/// revoke the user) got a code without a password a moment later and
/// redeemed it into a new, live grant.
#[test]
fn revoking_a_sub_ends_the_browser_sessions_that_would_mint_a_new_grant() {
    let origin = Origin::start();
    let sub = create_user(&origin, "carol");
    let c = web_client(&origin, "web");
    let (code, jar) = login_at(&origin.url, &origin.url, &c.id, "carol");
    let (s, _) = redeem(&origin, &c, &code);
    assert_eq!(s, 200);
    assert!(
        silent_code(&origin, &c.id, &jar).is_some(),
        "the session and consent let /authorize answer without a login"
    );
    let _ = origin.cli(&["revoke", &format!("--sub={sub}")]);
    std::thread::sleep(Duration::from_millis(1100));
    let minted = silent_code(&origin, &c.id, &jar).is_some_and(|code| {
        let (s, t) = redeem(&origin, &c, &code);
        s == 200 && minted_live_token(&origin, &c, &t)
    });
    assert!(
        !minted,
        "the user's sub was revoked, yet their session minted a new live grant"
    );
}

/// Runs `f` twice at once (released together); both answers.
fn twice_at_once<F>(f: F) -> [(u16, Value); 2]
where
    F: Fn() -> (u16, Value) + Sync,
{
    let gate = std::sync::Barrier::new(2);
    std::thread::scope(|s| {
        let run = || {
            gate.wait();
            f()
        };
        let a = s.spawn(run);
        let b = s.spawn(run);
        [a.join().expect("thread"), b.join().expect("thread")]
    })
}

/// The one answer of two racing requests that got tokens (asserted to be
/// exactly one), and every answer's status and error code.
fn sole_winner(answers: &[(u16, Value)], round: usize) -> (&Value, Vec<(u16, Option<&str>)>) {
    let won: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, t)| t)
        .collect();
    let statuses: Vec<(u16, Option<&str>)> = answers
        .iter()
        .map(|(s, t)| (*s, t["error"].as_str()))
        .collect();
    assert_eq!(won.len(), 1, "round {round}: {statuses:?}");
    (won[0], statuses)
}

/// Two redemptions of one code racing (a code stolen in transit, with its
/// verifier, presented while the client redeems it): exactly one gets
/// tokens, and the replay revokes what that one got.
#[test]
fn two_concurrent_redemptions_of_one_code_give_one_grant_and_then_revoke_it() {
    let origin = Origin::start();
    let _ = create_user(&origin, "dave");
    let c = web_client(&origin, "web");
    for round in 0..4 {
        let code = authorize(&origin.url, &c.id, "dave");
        let answers = twice_at_once(|| redeem(&origin, &c, &code));
        let (won, statuses) = sole_winner(&answers, round);
        assert!(
            statuses.contains(&(400, Some("invalid_grant"))),
            "round {round}: {statuses:?}"
        );
        let at = won["access_token"].as_str().expect("at");
        let rt = won["refresh_token"].as_str().expect("rt");
        assert!(!active(&origin, &c, at), "round {round}: replay revokes");
        let (s, t) = refresh(&origin, &c, rt);
        assert_eq!(
            (s, t["error"].as_str()),
            (400, Some("invalid_grant")),
            "round {round}: the replayed grant's refresh token still worked"
        );
    }
}

/// Two refreshes of one token racing (a stolen refresh token used while
/// the client uses it): exactly one rotation wins, and the other is reuse
/// that revokes the family, the winner's new tokens included.
#[test]
fn two_concurrent_refreshes_of_one_token_give_one_rotation_and_then_revoke_the_family() {
    let origin = Origin::start();
    let _ = create_user(&origin, "erin");
    let c = web_client(&origin, "web");
    for round in 0..4 {
        let (_, rt) = grant(&origin, &c, "erin");
        let answers = twice_at_once(|| refresh(&origin, &c, &rt));
        let (won, _) = sole_winner(&answers, round);
        let at = won["access_token"].as_str().expect("at");
        let next = won["refresh_token"].as_str().expect("rt");
        assert!(!active(&origin, &c, at), "round {round}: reuse revokes");
        let (s, t) = refresh(&origin, &c, next);
        assert_eq!(
            (s, t["error"].as_str()),
            (400, Some("invalid_grant")),
            "round {round}: the winner's successor survived the reuse"
        );
    }
}
