//! Attack review of issue 19's logout, offline access and sessions
//! (docs/security.md, "Review of issue 19 (logout, offline access,
//! sessions)"): what an approval racing a logout leaves behind, redirect
//! URI look-alikes, oversized hints, a refreshed offline id_token as a
//! hint in a later session, what the operator's listing shows.

use crate::logout::{
    claims_of, logout_uri, redeem, rp, setup, signed_in, token, Browser, BYE, CB, CHALLENGE,
    VERIFIER,
};
use crate::support::{create_user, send, ADMIN, AUD};
use axum::body::Body;
use axum::http::Request;
use gatehouse_origin::domain::grants::{self, ApprovingSession, CodeGrant};
use gatehouse_origin::domain::state::AppState;
use gatehouse_origin::support::clock::{Clock as _, SettableClock};

/// An `/authorize` (or consent approval) reads the browser's session, then
/// the user logs out (the session row is deleted and the session's codes
/// and families are revoked), then the approval inserts its code: that
/// code must not start a grant of the ended session that logout never saw.
#[tokio::test]
async fn a_code_approved_in_a_session_that_logout_just_ended_is_refused() {
    for tdb in crate::support::databases() {
        let clock = SettableClock::starting_now();
        let state = crate::support::state_on_clock(
            gatehouse_origin::config::Config::for_tests(&tdb.url),
            tdb.open().await,
            clock.clone(),
        )
        .await;
        create_user(&state.db, "alice", crate::support::now()).await;
        code_after_logout(&state, &clock, tdb.name).await;
    }
}

async fn code_after_logout(state: &AppState, clock: &SettableClock, db: &str) {
    let state = state.clone();
    let c = rp(&state, false, &[]).await;
    let (mut b, tok) = signed_in(&state, &c).await;
    let idt = claims_of(tok["id_token"].as_str().unwrap());
    // What the approval read from the session before the logout.
    let read = ApprovingSession {
        sid: idt["sid"].as_str().unwrap().to_owned(),
        auth_time: idt["auth_time"].as_i64().unwrap(),
        amr: "pwd".to_owned(),
    };
    let a = b
        .get(
            &state,
            &logout_uri(&[("id_token_hint", tok["id_token"].as_str().unwrap())]),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.contains("You are signed out."), "{}", a.body);
    let grant = CodeGrant {
        client_id: c.id.clone(),
        user_id: idt["sub"].as_str().unwrap().to_owned(),
        redirect_uri: CB.to_owned(),
        scopes: vec!["openid".to_owned(), "read".to_owned()],
        audience: AUD.to_owned(),
        code_challenge: CHALLENGE.to_owned(),
        dpop_jkt: None,
        session: read,
        nonce: None,
    };
    match grants::issue_code(&state.db, &grant, clock.now().secs()).await {
        Err(_) => {}
        Ok(code) => {
            let (s, v) = token(
                &state,
                &c,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code.expose()),
                    ("redirect_uri", CB),
                    ("code_verifier", VERIFIER),
                ],
            )
            .await;
            assert_eq!(
                (s, v["error"].as_str()),
                (400, Some("invalid_grant")),
                "{db}: a code approved in a logged-out session was redeemed: {v}"
            );
        }
    }
    let (s, _, list) = send(
        &state,
        Request::get("/admin/users/alice/sessions")
            .header("authorization", format!("Bearer {ADMIN}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{db}: {list}");
    assert_eq!(list["grants"].as_array().map(Vec::len), Some(0), "{list}");
}

/// Look-alikes of the registered post-logout URI (case, trailing slash or
/// `?`, percent-encoding, userinfo, another port) are error pages that end
/// nothing, with or without the browser's own hint.
#[tokio::test]
async fn post_logout_uri_look_alikes_are_refused_and_end_nothing() {
    let (state, _clock) = setup().await;
    let c = rp(&state, false, &[BYE]).await;
    let (mut b, tok) = signed_in(&state, &c).await;
    let hint = tok["id_token"].as_str().unwrap();
    for uri in [
        "https://RP.example/bye",
        "https://rp.example/bye/",
        "https://rp.example/bye?",
        "https://rp.example/%62ye",
        "https://rp.example/bye#",
        "https://rp.example:443/bye",
        "https://rp.example@evil.example/bye",
        "https://evil.example/?https://rp.example/bye",
        " https://rp.example/bye",
        "https://rp.example/bye\t",
    ] {
        for params in [
            vec![("id_token_hint", hint), ("post_logout_redirect_uri", uri)],
            vec![
                ("client_id", c.id.as_str()),
                ("post_logout_redirect_uri", uri),
            ],
        ] {
            let a = b.get(&state, &logout_uri(&params)).await;
            assert_eq!(a.status, 400, "{uri:?}: {} {}", a.location(), a.body);
            assert!(a.location().is_empty(), "{uri:?}");
            assert!(
                b.signed_in(&state, &c.id).await,
                "{uri:?} ended the session"
            );
        }
    }
}

/// A hint far over the size limit, sent as a form, is refused before
/// anything is parsed and ends nothing.
#[tokio::test]
async fn an_oversized_hint_is_refused_and_ends_nothing() {
    let (state, _clock) = setup().await;
    let c = rp(&state, false, &[BYE]).await;
    let (mut b, tok) = signed_in(&state, &c).await;
    let real = tok["id_token"].as_str().unwrap();
    // The real hint with a huge tail on its signature.
    let huge = format!("{real}{}", "A".repeat(256 * 1024));
    let a = b.post(&state, "/logout", &[("id_token_hint", &huge)]).await;
    assert!(a.status == 400 || a.status == 413, "{}", a.status);
    assert!(b.signed_in(&state, &c.id).await);
}

/// An offline grant outlives logout and keeps issuing id_tokens naming the
/// ended session. Such an id_token, sent as a hint once the user has
/// signed in again (a new session), proves nothing: the user confirms.
#[tokio::test]
async fn an_offline_id_token_does_not_prove_a_later_session() {
    let (state, _clock) = setup().await;
    let c = rp(&state, true, &[BYE]).await;
    let mut b = Browser::default();
    let q = crate::logout::query(&c.id, &[("scope", "openid read offline_access")]);
    let code = b.code_as(&state, &q, "alice").await;
    let tok = redeem(&state, &c, &code).await;
    let a = b
        .get(
            &state,
            &logout_uri(&[("id_token_hint", tok["id_token"].as_str().unwrap())]),
        )
        .await;
    assert!(a.body.contains("You are signed out."), "{}", a.body);
    // The offline family still refreshes, with an id_token for the old sid.
    let (s, refreshed) =
        crate::logout::refresh(&state, &c, tok["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, 200, "{refreshed}");
    let later_hint = refreshed["id_token"].as_str().unwrap().to_owned();
    // alice signs in again in the same browser: a new session.
    let q2 = crate::logout::query(&c.id, &[("scope", "openid read")]);
    let _ = b.code_as(&state, &q2, "alice").await;
    assert!(b.signed_in(&state, &c.id).await);
    let a = b
        .get(&state, &logout_uri(&[("id_token_hint", &later_hint)]))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.contains("Sign out?"), "{}", a.body);
    assert!(b.signed_in(&state, &c.id).await);
}

/// The operator's listing names sessions and grants by their public ids
/// only: no refresh token, cookie, hash or secret.
#[tokio::test]
async fn the_sessions_listing_reveals_no_secret() {
    let (state, _clock) = setup().await;
    let c = rp(&state, true, &[BYE]).await;
    let (_b, tok) = signed_in(&state, &c).await;
    let (s, _, list) = send(
        &state,
        Request::get("/admin/users/alice/sessions")
            .header("authorization", format!("Bearer {ADMIN}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{list}");
    let text = list.to_string();
    for secret in [
        tok["refresh_token"].as_str().unwrap(),
        tok["access_token"].as_str().unwrap(),
        c.secret.as_str(),
    ] {
        assert!(!text.contains(secret), "{text}");
    }
    for forbidden in ["hash", "password", "cookie", "token\""] {
        assert!(!text.contains(forbidden), "{forbidden}: {text}");
    }
    let mut keys: Vec<String> = list["grants"][0]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "client_id",
            "created_at",
            "expires_at",
            "family_expires_at",
            "grant_id",
            "last_used",
            "offline",
            "session_sid"
        ]
    );
}

/// alice signs in and approves an app; then bob signs in in the same
/// browser (`prompt=login`): alice's session cookie is replaced, so no
/// logout in this browser can reach her session again. Her session must
/// end there and then (her online grants revoked, as at a logout), not
/// linger with live grants that only its expiry or an operator ends.
#[tokio::test]
async fn signing_in_as_another_user_ends_the_replaced_session() {
    let (state, _clock) = setup().await;
    let c = rp(&state, false, &[BYE]).await;
    let (mut b, alice_tok) = signed_in(&state, &c).await;
    let q = crate::logout::query(&c.id, &[("scope", "openid read"), ("prompt", "login")]);
    let code = b.code_as(&state, &q, "bob").await;
    let bob_tok = redeem(&state, &c, &code).await;
    assert_ne!(
        claims_of(bob_tok["id_token"].as_str().unwrap())["sub"],
        claims_of(alice_tok["id_token"].as_str().unwrap())["sub"]
    );
    // alice's app signs her out with her own hint: the browser's session is
    // bob's, so the user is asked; whatever the answer, alice's grant is over.
    let a = b
        .get(
            &state,
            &logout_uri(&[("id_token_hint", alice_tok["id_token"].as_str().unwrap())]),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let (s, v) =
        crate::logout::refresh(&state, &c, alice_tok["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("invalid_grant")),
        "alice's grant outlived her session: {v}"
    );
    let (s, _, list) = send(
        &state,
        Request::get("/admin/users/alice/sessions")
            .header("authorization", format!("Bearer {ADMIN}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list["sessions"].as_array().map(Vec::len), Some(0), "{list}");
    // bob's session and grant stand.
    assert!(b.signed_in(&state, &c.id).await);
    let (s, v) =
        crate::logout::refresh(&state, &c, bob_tok["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, 200, "{v}");
}

/// RP-initiated logout sent as a cross-site form `POST` (§2 allows it;
/// openid-client and others can) reaches the origin without the
/// `SameSite=Lax` session cookie. Answering it as "nothing to end" sent the
/// user back to the RP as signed out while their session and its grants
/// lived on (the next person at that browser is signed in as them). The
/// origin moves such a request to a `GET` of itself — a top-level
/// navigation, which carries the Lax cookie — and ends the session there.
#[tokio::test]
async fn a_cross_site_post_logout_does_not_report_success_without_ending_the_session() {
    let (state, _clock) = setup().await;
    let c = rp(&state, false, &[BYE]).await;
    let (mut b, tok) = signed_in(&state, &c).await;
    let hint = tok["id_token"].as_str().unwrap();
    // The browser's cross-site POST: its Lax session cookie is withheld.
    let mut cross_site = Browser::default();
    let a = cross_site
        .post(
            &state,
            "/logout",
            &[
                ("id_token_hint", hint),
                ("post_logout_redirect_uri", BYE),
                ("state", "s-1"),
            ],
        )
        .await;
    assert_eq!(a.status, 303, "{}", a.body);
    let next = a.location();
    assert!(
        next.starts_with("/logout?"),
        "the RP was told the user is signed out while the session lives: {next}"
    );
    assert!(b.signed_in(&state, &c.id).await);
    // The navigation that follows carries the cookie: the session ends.
    let a = b.get(&state, &next).await;
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(a.location(), format!("{BYE}?state=s-1"));
    assert!(!b.signed_in(&state, &c.id).await);
    let (s, _) = crate::logout::refresh(&state, &c, tok["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, 400);
    // A POST that fails validation is the error page at once.
    let a = Browser::default()
        .post(
            &state,
            "/logout",
            &[
                ("client_id", &c.id),
                ("post_logout_redirect_uri", "https://evil.example/"),
            ],
        )
        .await;
    assert_eq!(a.status, 400);
    assert!(a.location().is_empty());
}

/// A logout whose revocations fail (here: the outbox is gone) used to have
/// deleted the session row first: the user saw an error, a second logout
/// found no session and ended nothing, and the grants lived on. The
/// session now stands until its grants are revoked, so the logout can be
/// repeated.
#[tokio::test]
async fn a_logout_that_fails_midway_leaves_the_session_to_log_out_again() {
    let (state, _clock) = setup().await;
    let c = rp(&state, false, &[BYE]).await;
    let (mut b, tok) = signed_in(&state, &c).await;
    sqlx::query("ALTER TABLE outbox RENAME TO outbox_gone")
        .execute(&state.db.pool)
        .await
        .unwrap();
    let hint = tok["id_token"].as_str().unwrap();
    let a = b.get(&state, &logout_uri(&[("id_token_hint", hint)])).await;
    assert!(a.status >= 500, "{} {}", a.status, a.body);
    sqlx::query("ALTER TABLE outbox_gone RENAME TO outbox")
        .execute(&state.db.pool)
        .await
        .unwrap();
    // The session is still there: logging out again ends it and its grant.
    assert!(b.signed_in(&state, &c.id).await, "the session was lost");
    let a = b.get(&state, &logout_uri(&[("id_token_hint", hint)])).await;
    assert!(a.body.contains("You are signed out."), "{}", a.body);
    let (s, _) = crate::logout::refresh(&state, &c, tok["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, 400, "the grant outlived the logout");
}
