//! An attacker's review of issue 19 (OpenID Connect core, pushed
//! authorization requests), through the router (`oneshot`) on a settable
//! clock. Each test was seen failing before its fix (docs/security.md,
//! "Review of issue 19 (OIDC core, PAR)").

use crate::support::{basic, create_user, form_post, now, sqlite_state_on_settable_clock};
use crate::support::{AUD, CB};
use axum::body::Body;
use axum::http::{HeaderMap, Request};
use gatehouse_origin::domain::clients::{self, NewClient};
use gatehouse_origin::domain::state::AppState;
use gatehouse_origin::support::clock::SettableClock;
use http_body_util::BodyExt as _;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use tower::ServiceExt as _;

/// RFC 7636 Appendix B.
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const PASSWORD: &str = "correct horse battery";

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn location(&self) -> String {
        self.headers
            .get("location")
            .map_or(String::new(), |v| v.to_str().unwrap().to_owned())
    }
    fn param(&self, name: &str) -> Option<String> {
        let loc = self.location();
        let q = loc.split_once('?').map_or("", |(_, q)| q).to_owned();
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
    fn is_login_page(&self) -> bool {
        self.status == 200 && self.body.contains("/authorize/login")
    }
    fn is_consent_page(&self) -> bool {
        self.status == 200 && self.body.contains("/authorize/consent")
    }
}

/// A browser: the cookies it holds.
#[derive(Default)]
struct Browser {
    cookies: BTreeMap<String, String>,
}

impl Browser {
    async fn call(&mut self, state: &AppState, req: Request<Body>) -> Answer {
        let mut req = req;
        if !self.cookies.is_empty() {
            let h = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            req.headers_mut().insert("cookie", h.parse().unwrap());
        }
        let resp = gatehouse_origin::http::router(state.clone())
            .oneshot(req)
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        for c in headers.get_all("set-cookie") {
            let pair = c.to_str().unwrap().split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            self.cookies.insert(k.to_owned(), v.to_owned());
        }
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn get(&mut self, state: &AppState, uri: &str) -> Answer {
        self.call(state, Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    async fn post(&mut self, state: &AppState, path: &str, form: &[(&str, &str)]) -> Answer {
        let req = Request::post(path)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(encode(form)))
            .unwrap();
        self.call(state, req).await
    }

    /// Signs in as `alice` on the login page `page`; the 303 back.
    async fn log_in(&mut self, state: &AppState, page: &Answer) -> Answer {
        let done = self.log_in_as(state, page, "alice").await;
        assert_eq!(done.status, 303, "{}", done.body);
        done
    }

    /// Posts the login form of `page` as `user`.
    async fn log_in_as(&mut self, state: &AppState, page: &Answer, user: &str) -> Answer {
        assert!(page.is_login_page(), "a login page: {}", page.body);
        self.post(
            state,
            "/authorize/login",
            &[
                ("request", &hidden(&page.body, "request")),
                ("csrf", &hidden(&page.body, "csrf")),
                ("username", user),
                ("password", PASSWORD),
            ],
        )
        .await
    }

    /// Posts the consent form of `page` (any page with `request` and `csrf`).
    async fn approve(&mut self, state: &AppState, page: &Answer) -> Answer {
        self.post(
            state,
            "/authorize/consent",
            &[
                ("request", &hidden(&page.body, "request")),
                ("csrf", &hidden(&page.body, "csrf")),
                ("decision", "approve"),
            ],
        )
        .await
    }
}

fn encode(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// The value of the hidden field `name`, unescaped.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end]
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A confidential web client for `openid read` on [`AUD`].
async fn client(state: &AppState) -> (String, String) {
    let (c, s) = clients::create(
        &state.db,
        &NewClient {
            name: "rp".into(),
            public: false,
            scopes: vec!["openid".into(), "read".into()],
            audiences: vec![AUD.into()],
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            redirect_uris: vec![CB.into()],
            ..NewClient::default()
        },
        now(),
    )
    .await
    .unwrap();
    (c.client_id, s.unwrap().expose().to_owned())
}

/// The authorization request's parameters plus `extra`.
fn authz<'a>(client_id: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut p = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", CB),
        ("scope", "openid read"),
        ("state", "st-1"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    p.extend_from_slice(extra);
    p
}

/// Pushes `params` as `(id, secret)`; the `request_uri`.
async fn push(state: &AppState, id: &str, secret: &str, params: &[(&str, &str)]) -> String {
    let req = form_post("/par", Some(&basic(id, secret)), "")
        .body(Body::from(encode(params)))
        .unwrap();
    let a = Browser::default().call(state, req).await;
    assert_eq!(a.status, 201, "{}", a.body);
    a.json()["request_uri"].as_str().unwrap().to_owned()
}

fn front(client_id: &str, request_uri: &str) -> String {
    format!(
        "/authorize?{}",
        encode(&[("client_id", client_id), ("request_uri", request_uri)])
    )
}

/// Redeems `code`; the token response.
async fn redeem(state: &AppState, id: &str, secret: &str, code: &str) -> Value {
    let req = form_post("/token", Some(&basic(id, secret)), "")
        .body(Body::from(encode(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CB),
            ("code_verifier", VERIFIER),
        ])))
        .unwrap();
    let a = Browser::default().call(state, req).await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.json()
}

fn claims_of(jwt: &str) -> Value {
    use base64::Engine as _;
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

fn secs(clock: &SettableClock) -> i64 {
    use gatehouse_origin::support::clock::Clock as _;
    clock.now().secs().0
}

async fn setup() -> (AppState, Arc<SettableClock>) {
    let (state, clock) = sqlite_state_on_settable_clock(|_| {}).await;
    create_user(&state.db, "alice", now()).await;
    (state, clock)
}

/// A browser with a session of `alice` (signed in through a front-channel
/// request of `id`, its code never used) made at the clock's current time.
async fn signed_in(state: &AppState, id: &str) -> Browser {
    let mut b = Browser::default();
    let q = encode(&authz(id, &[]));
    let page = b.get(state, &format!("/authorize?{q}")).await;
    let back = b.log_in(state, &page).await;
    let next = b.get(state, &back.location()).await;
    assert!(
        next.is_consent_page() || next.param("code").is_some(),
        "{}",
        next.body
    );
    b
}

/// Finding 1: a pushed `prompt=login` (or `max_age=0`) could never be
/// satisfied — the login form returns to `/authorize` with the same
/// `client_id` + `request_uri`, the pushed `prompt=login` is read again and
/// the login page comes back, forever (`after_login` can strip it only from
/// a front-channel query). One login in this interaction must satisfy it,
/// and the id_token's `auth_time` must be that login.
#[tokio::test]
async fn a_pushed_prompt_login_or_max_age_zero_is_satisfied_by_one_login() {
    let (state, clock) = setup().await;
    let (id, secret) = client(&state).await;
    for extra in [("prompt", "login"), ("max_age", "0")] {
        let mut b = signed_in(&state, &id).await;
        clock.advance_secs(100);
        let uri = push(&state, &id, &secret, &authz(&id, &[extra])).await;
        let page = b.get(&state, &front(&id, &uri)).await;
        assert!(
            page.is_login_page(),
            "{extra:?}: the old session does not count"
        );
        clock.advance_secs(5);
        let login_time = secs(&clock);
        let back = b.log_in(&state, &page).await;
        let next = b.get(&state, &back.location()).await;
        assert!(
            !next.is_login_page(),
            "{extra:?}: the login just made satisfies the pushed request, not another login page: {}",
            next.body
        );
        // Consent is remembered after the first round: then the code comes at once.
        let done = if next.is_consent_page() {
            b.approve(&state, &next).await
        } else {
            next
        };
        assert_eq!(done.status, 303, "{}", done.body);
        let code = done.param("code").expect("a code");
        let tokens = redeem(&state, &id, &secret, &code).await;
        let claims = claims_of(tokens["id_token"].as_str().unwrap());
        assert_eq!(claims["auth_time"], login_time, "{extra:?}");
    }
}

/// Finding 2: the consent form did not check `prompt=login` (only
/// `max_age`): with a pushed `prompt=login` (which the browser cannot
/// strip), posting the login page's `request` and `csrf` straight to
/// `/authorize/consent` issued a code on the old session, without the
/// login the client asked for.
#[tokio::test]
async fn a_pushed_prompt_login_cannot_be_skipped_through_the_consent_form() {
    let (state, clock) = setup().await;
    let (id, secret) = client(&state).await;
    for extra in [("prompt", "login"), ("max_age", "0"), ("max_age", "10")] {
        let mut b = signed_in(&state, &id).await;
        clock.advance_secs(100);
        let uri = push(&state, &id, &secret, &authz(&id, &[extra])).await;
        let page = b.get(&state, &front(&id, &uri)).await;
        assert!(page.is_login_page(), "{extra:?}");
        let skipped = b.approve(&state, &page).await;
        assert_eq!(
            skipped.status,
            400,
            "{extra:?}: no code without the login: {}",
            skipped.location()
        );
        assert!(skipped.param("code").is_none(), "{extra:?}");
        // The request is still usable for the real login.
        let back = b.log_in(&state, &page).await;
        let next = b.get(&state, &back.location()).await;
        assert!(
            next.is_consent_page() || next.param("code").is_some(),
            "{extra:?}: {}",
            next.body
        );
    }
}

/// Finding 2, front channel: the consent form refuses a request still
/// carrying `prompt=login` or `max_age=0` (the login form's return drops
/// them, so a genuine consent page never carries them).
#[tokio::test]
async fn the_consent_form_refuses_a_front_channel_request_still_asking_for_a_login() {
    let (state, clock) = setup().await;
    let (id, _) = client(&state).await;
    for extra in [("prompt", "login"), ("max_age", "0")] {
        let mut b = signed_in(&state, &id).await;
        clock.advance_secs(100);
        let q = encode(&authz(&id, &[extra]));
        let page = b.get(&state, &format!("/authorize?{q}")).await;
        assert!(page.is_login_page(), "{extra:?}");
        let skipped = b.approve(&state, &page).await;
        assert_eq!(skipped.status, 400, "{extra:?}: {}", skipped.location());
    }
}

/// Finding 3: a front-channel `max_age` of zero written with leading zeros
/// (`00`) is `max_age=0` to the parser, but the login form's return kept
/// it (it dropped only the exact text `0`): the login page came back
/// forever.
#[tokio::test]
async fn max_age_zero_with_leading_zeros_does_not_loop_the_login() {
    let (state, _) = setup().await;
    let (id, _) = client(&state).await;
    let mut b = Browser::default();
    let q = encode(&authz(&id, &[("max_age", "000")]));
    let page = b.get(&state, &format!("/authorize?{q}")).await;
    let back = b.log_in(&state, &page).await;
    let next = b.get(&state, &back.location()).await;
    assert!(
        next.is_consent_page(),
        "the login satisfies max_age=000: {}",
        next.body
    );
}

/// A browser signed in as `user` that has approved `id` once (consent
/// remembered), and the id_token of that approval.
async fn approved_as(state: &AppState, id: &str, secret: &str, user: &str) -> (Browser, String) {
    let mut b = Browser::default();
    let q = encode(&authz(id, &[("nonce", "n-1")]));
    let page = b.get(state, &format!("/authorize?{q}")).await;
    let back = b.log_in_as(state, &page, user).await;
    assert_eq!(back.status, 303, "{}", back.body);
    let next = b.get(state, &back.location()).await;
    let done = if next.is_consent_page() {
        b.approve(state, &next).await
    } else {
        next
    };
    let code = done.param("code").expect("a code");
    let tokens = redeem(state, id, secret, &code).await;
    (b, tokens["id_token"].as_str().unwrap().to_owned())
}

/// Finding 4: `id_token_hint` was ignored. A client re-authenticating
/// silently (`prompt=none`) with alice's id_token as the hint got a code
/// for whoever was signed in — bob — instead of `login_required` (OpenID
/// Connect Core §3.1.2.1); without `prompt=none` bob's session was used
/// with no chance to sign in as alice.
#[tokio::test]
async fn id_token_hint_names_the_only_user_a_session_may_serve() {
    let (state, _) = setup().await;
    create_user(&state.db, "bob", now()).await;
    let (id, secret) = client(&state).await;
    let (_, alice_hint) = approved_as(&state, &id, &secret, "alice").await;
    let alice_sub = claims_of(&alice_hint)["sub"].as_str().unwrap().to_owned();
    let (mut bob, bob_hint) = approved_as(&state, &id, &secret, "bob").await;

    // prompt=none for alice in bob's browser: login_required, no code.
    let q = encode(&authz(
        &id,
        &[("prompt", "none"), ("id_token_hint", &alice_hint)],
    ));
    let a = bob.get(&state, &format!("/authorize?{q}")).await;
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(
        a.param("error").as_deref(),
        Some("login_required"),
        "{}",
        a.location()
    );
    assert!(a.param("code").is_none());

    // The same pushed.
    let uri = push(
        &state,
        &id,
        &secret,
        &authz(&id, &[("prompt", "none"), ("id_token_hint", &alice_hint)]),
    )
    .await;
    let a = bob.get(&state, &front(&id, &uri)).await;
    assert_eq!(
        a.param("error").as_deref(),
        Some("login_required"),
        "{}",
        a.location()
    );

    // Without prompt=none: the login page, not bob's code; bob signing in
    // there is refused; alice signing in gets the code, for alice.
    let q = encode(&authz(&id, &[("id_token_hint", &alice_hint)]));
    let page = bob.get(&state, &format!("/authorize?{q}")).await;
    assert!(page.is_login_page(), "{} {}", page.status, page.location());
    // The login page's form posted to the consent endpoint: refused.
    let skipped = bob.approve(&state, &page).await;
    assert_eq!(skipped.status, 400, "{}", skipped.location());
    let wrong = bob.log_in_as(&state, &page, "bob").await;
    assert_ne!(wrong.status, 303, "bob is not the hinted user");
    assert!(
        wrong.is_login_page() || wrong.status == 401,
        "{}",
        wrong.body
    );
    let back = bob.log_in_as(&state, &page, "alice").await;
    assert_eq!(back.status, 303, "{}", back.body);
    let done = bob.get(&state, &back.location()).await;
    let code = done.param("code").expect("alice's consent is remembered");
    let tokens = redeem(&state, &id, &secret, &code).await;
    assert_eq!(
        claims_of(tokens["id_token"].as_str().unwrap())["sub"],
        alice_sub.as_str()
    );

    // The hint of the signed-in user: served silently.
    let (mut bob, _) = approved_as(&state, &id, &secret, "bob").await;
    let q = encode(&authz(
        &id,
        &[("prompt", "none"), ("id_token_hint", &bob_hint)],
    ));
    let a = bob.get(&state, &format!("/authorize?{q}")).await;
    assert!(a.param("code").is_some(), "{}", a.location());

    // A hint that is not a JWT: invalid_request (never ignored).
    for bad in ["not-a-jwt", "a.b.c", &"a".repeat(9000)] {
        let q = encode(&authz(&id, &[("id_token_hint", bad)]));
        let a = bob.get(&state, &format!("/authorize?{q}")).await;
        assert_eq!(
            a.param("error").as_deref(),
            Some("invalid_request"),
            "{}",
            a.location()
        );
    }
}
