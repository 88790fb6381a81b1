//! OpenID Connect RP-Initiated Logout 1.0, offline access (OpenID Connect
//! Core §11) and the operator's sessions, through the router (`oneshot`) on
//! a settable clock — the attacks first: a forged hint, one signed by
//! another key or naming another issuer, an access token as hint; a
//! post-logout redirect URI not registered, registered for another client,
//! with an extra query or a fragment; a cross-site logout without
//! confirmation; another user's session through the admin API; logout
//! twice; a refresh after logout; offline access without registration or
//! consent.

use crate::support::{basic, create_user, send, sqlite_state_on_settable_clock, ADMIN, AUD};
use axum::body::Body;
use axum::http::{HeaderMap, Request};
use gatehouse_common::alg::Algorithm;
use gatehouse_origin::domain::admin;
use gatehouse_origin::domain::clients::{self, NewClient};
use gatehouse_origin::domain::state::AppState;
use gatehouse_origin::support::clock::{Clock as _, SettableClock};
use gatehouse_origin::support::crypto::SigningKey;
use http_body_util::BodyExt as _;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use tower::ServiceExt as _;

/// RFC 7636 Appendix B.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const PASSWORD: &str = "correct horse battery";
/// The relying party's redirect URI and its post-logout redirect URI.
pub const CB: &str = "https://rp.example/cb";
pub const BYE: &str = "https://rp.example/bye";
/// Another client's post-logout redirect URI.
const OTHER_BYE: &str = "https://other.example/bye";

pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn location(&self) -> String {
        self.headers
            .get("location")
            .map_or(String::new(), |v| v.to_str().unwrap().to_owned())
    }
    fn param(&self, name: &str) -> Option<String> {
        let loc = self.location();
        let url = url::Url::parse(&loc)
            .or_else(|_| url::Url::parse(&format!("https://origin.example{loc}")))
            .unwrap();
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// A browser: the cookies it holds.
#[derive(Default)]
pub struct Browser {
    cookies: BTreeMap<String, String>,
}

impl Browser {
    fn header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn call(
        &mut self,
        state: &AppState,
        req: axum::http::request::Builder,
        body: Body,
    ) -> Answer {
        let mut req = req;
        if !self.cookies.is_empty() {
            req = req.header("cookie", self.header());
        }
        let resp = gatehouse_origin::http::router(state.clone())
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        for c in headers.get_all("set-cookie") {
            let pair = c.to_str().unwrap().split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    pub async fn get(&mut self, state: &AppState, uri: &str) -> Answer {
        self.call(state, Request::get(uri), Body::empty()).await
    }

    pub async fn post(&mut self, state: &AppState, path: &str, form: &[(&str, &str)]) -> Answer {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        self.call(
            state,
            Request::post(path).header("content-type", "application/x-www-form-urlencoded"),
            Body::from(body),
        )
        .await
    }

    /// The way to a code: sign in as `user` if asked, consent if asked.
    pub async fn code_as(&mut self, state: &AppState, q: &str, user: &str) -> String {
        let mut a = self.get(state, &format!("/authorize?{q}")).await;
        if a.status == 200 && a.body.contains("/authorize/login") {
            let back = self
                .post(
                    state,
                    "/authorize/login",
                    &[
                        ("request", &hidden(&a.body, "request")),
                        ("csrf", &hidden(&a.body, "csrf")),
                        ("username", user),
                        ("password", PASSWORD),
                    ],
                )
                .await;
            assert_eq!(back.status, 303, "{}", back.body);
            a = self.get(state, &back.location()).await;
        }
        if a.status == 200 {
            assert!(a.body.contains("decision"), "{}", a.body);
            a = self
                .post(
                    state,
                    "/authorize/consent",
                    &[
                        ("request", &hidden(&a.body, "request")),
                        ("csrf", &hidden(&a.body, "csrf")),
                        ("decision", "approve"),
                    ],
                )
                .await;
        }
        assert_eq!(a.status, 303, "{}", a.body);
        a.param("code")
            .unwrap_or_else(|| panic!("no code: {}", a.location()))
    }

    /// Whether this browser still holds a live session: `/authorize` with
    /// `prompt=none` answers with a code or `consent_required`, not
    /// `login_required`.
    pub async fn signed_in(&mut self, state: &AppState, client_id: &str) -> bool {
        let a = self
            .get(
                state,
                &format!(
                    "/authorize?{}",
                    query(client_id, &[("scope", "openid"), ("prompt", "none")])
                ),
            )
            .await;
        assert_eq!(a.status, 303, "{}", a.body);
        a.param("error").as_deref() != Some("login_required")
    }
}

/// The value of the hidden field `name`, unescaped.
pub fn hidden(html: &str, name: &str) -> String {
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

/// The raw query of an authorization request of `client_id`.
pub fn query(client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.extend_pairs([
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", CB),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("state", "st-1"),
    ]);
    q.extend_pairs(extra);
    q.finish()
}

/// `/logout?…`.
pub fn logout_uri(params: &[(&str, &str)]) -> String {
    format!(
        "/logout?{}",
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish()
    )
}

pub struct Rp {
    pub id: String,
    pub secret: String,
}

/// A confidential web client for `openid read` (and `offline_access` when
/// `offline`) with refresh tokens and `post_logout` registered.
pub async fn rp(state: &AppState, offline: bool, post_logout: &[&str]) -> Rp {
    let mut scopes = vec!["openid".to_owned(), "read".to_owned()];
    if offline {
        scopes.push("offline_access".into());
    }
    let (c, s) = clients::create(
        &state.db,
        &NewClient {
            name: "rp".into(),
            scopes,
            audiences: vec![AUD.into()],
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            redirect_uris: vec![CB.into()],
            post_logout_redirect_uris: post_logout.iter().map(|u| (*u).to_owned()).collect(),
            ..NewClient::default()
        },
        crate::support::now(),
    )
    .await
    .unwrap();
    Rp {
        id: c.client_id,
        secret: s.unwrap().expose().to_owned(),
    }
}

pub async fn token(state: &AppState, c: &Rp, form: &[(&str, &str)]) -> (u16, Value) {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let req = Request::post("/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", basic(&c.id, &c.secret));
    let (status, _, json) = send(state, req.body(Body::from(body)).unwrap()).await;
    (status, json)
}

pub async fn redeem(state: &AppState, c: &Rp, code: &str) -> Value {
    let (s, tok) = token(
        state,
        c,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CB),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(s, 200, "{tok}");
    tok
}

pub async fn refresh(state: &AppState, c: &Rp, rt: &str) -> (u16, Value) {
    token(
        state,
        c,
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
    )
    .await
}

/// Whether introspection by its own client says `at` is active.
pub async fn active(state: &AppState, c: &Rp, at: &str) -> bool {
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("token", at)
        .finish();
    let req = Request::post("/introspect")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", basic(&c.id, &c.secret));
    let (s, _, v) = send(state, req.body(Body::from(body)).unwrap()).await;
    assert_eq!(s, 200, "{v}");
    v["active"] == true
}

/// The claims of a JWT, unverified.
pub fn claims_of(jwt: &str) -> Value {
    use base64::Engine as _;
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

pub async fn setup() -> (AppState, Arc<SettableClock>) {
    let (state, clock) = sqlite_state_on_settable_clock(|_| {}).await;
    create_user(&state.db, "alice", crate::support::now()).await;
    create_user(&state.db, "bob", crate::support::now()).await;
    (state, clock)
}

/// A browser signed in as alice with an `openid read` grant of `c`.
pub async fn signed_in(state: &AppState, c: &Rp) -> (Browser, Value) {
    let mut b = Browser::default();
    let code = b
        .code_as(state, &query(&c.id, &[("scope", "openid read")]), "alice")
        .await;
    let tok = redeem(state, c, &code).await;
    assert!(tok["id_token"].is_string(), "{tok}");
    (b, tok)
}

fn is_error_page(a: &Answer) -> bool {
    a.status == 400 && a.location().is_empty() && a.body.contains("<h1>")
}

#[tokio::test]
async fn discovery_advertises_the_end_session_endpoint_and_offline_access() {
    let (state, _clock) = setup().await;
    let (s, _, doc) = send(
        &state,
        Request::get("/.well-known/openid-configuration")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        doc["end_session_endpoint"],
        format!("{}/logout", state.config.issuer).as_str()
    );
    assert!(doc["scopes_supported"]
        .as_array()
        .unwrap()
        .contains(&"offline_access".into()));
}

#[tokio::test]
async fn a_hint_for_the_browsers_session_logs_out_revokes_and_redirects_with_state() {
    let (state, clock) = setup().await;
    let c = rp(&state, false, &[BYE]).await;
    let (mut b, tok) = signed_in(&state, &c).await;
    let at = tok["access_token"].as_str().unwrap();
    assert!(active(&state, &c, at).await);
    // The RP's id_token has expired by the time the user logs out (§2:
    // an expired hint is accepted).
    clock.advance_secs(state.config.access_token_ttl + 120);
    let a = b
        .get(
            &state,
            &logout_uri(&[
                ("id_token_hint", tok["id_token"].as_str().unwrap()),
                ("post_logout_redirect_uri", BYE),
                ("state", "bye state&x"),
            ]),
        )
        .await;
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(a.location(), format!("{BYE}?state=bye+state%26x"));
    assert!(
        a.headers
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("__Host-gh_session=;")),
        "the session cookie is cleared"
    );
    assert!(!b.cookies.contains_key("__Host-gh_session"));
    // The grant is revoked: its refresh token, and its access tokens
    // through the family's `sid` revocation (the edge's list).
    let (s, err) = refresh(&state, &c, tok["refresh_token"].as_str().unwrap()).await;
    assert_eq!((s, err["error"].as_str()), (400, Some("invalid_grant")));
    let family = claims_of(at)["sid"].as_str().unwrap().to_owned();
    let revs = admin::list_revocations(&state.db, clock.now().secs())
        .await
        .unwrap();
    assert!(
        revs.revocations
            .iter()
            .any(|r| r.value == family && r.kind == "sid"),
        "a sid revocation of the family reaches the edge"
    );
    assert!(!b.signed_in(&state, &c.id).await);
}

#[tokio::test]
async fn logout_revokes_the_access_tokens_at_once() {
    let (state, _clock) = setup().await;
    let c = rp(&state, false, &[BYE]).await;
    let (mut b, tok) = signed_in(&state, &c).await;
    let at = tok["access_token"].as_str().unwrap();
    assert!(active(&state, &c, at).await);
    let a = b
        .get(
            &state,
            &logout_uri(&[("id_token_hint", tok["id_token"].as_str().unwrap())]),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.contains("You are signed out."), "{}", a.body);
    assert!(!active(&state, &c, at).await, "the access token is revoked");
}

#[tokio::test]
async fn forged_hints_are_refused_and_change_nothing() {
    let (state, clock) = setup().await;
    let c = rp(&state, false, &[BYE]).await;
    let (mut b, tok) = signed_in(&state, &c).await;
    let id_token = tok["id_token"].as_str().unwrap();
    let claims = claims_of(id_token);
    let header: Value = {
        use base64::Engine as _;
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(id_token.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap()
    };
    let kid = header["kid"].as_str().unwrap();
    // Another key, same kid, same claims.
    let other = SigningKey::generate(Algorithm::Es256, kid).unwrap().key;
    let other_key = other.sign_jws("JWT", &claims).unwrap();
    // Our key, another issuer.
    let ring = state.key_ring().unwrap();
    let signer = ring.signer(clock.now().secs()).unwrap();
    let mut foreign = claims.clone();
    foreign["iss"] = json!("https://evil.example");
    let other_issuer = signer.sign_jws("JWT", &foreign).unwrap();
    // Our key, our issuer, but an access token (`at+jwt`), not an id_token.
    let access_token = tok["access_token"].as_str().unwrap().to_owned();
    // A payload changed after signing (another user).
    let mut parts: Vec<String> = id_token.split('.').map(str::to_owned).collect();
    let mut tampered_claims = claims.clone();
    tampered_claims["sub"] = json!("someone-else");
    {
        use base64::Engine as _;
        parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&tampered_claims).unwrap());
    }
    let tampered = parts.join(".");
    let unsigned = format!("{}.{}.", parts[0], parts[1]);
    for (what, hint) in [
        ("another key", other_key.as_str()),
        ("another issuer", other_issuer.as_str()),
        ("an access token", access_token.as_str()),
        ("a tampered payload", tampered.as_str()),
        ("no signature", unsigned.as_str()),
        ("garbage", "not.a.jwt"),
    ] {
        let a = b
            .get(
                &state,
                &logout_uri(&[
                    ("id_token_hint", hint),
                    ("post_logout_redirect_uri", BYE),
                    ("state", "s"),
                ]),
            )
            .await;
        assert!(is_error_page(&a), "{what}: {} {}", a.status, a.location());
        assert!(!a.body.contains(hint), "{what}: the hint is not reflected");
        assert!(b.signed_in(&state, &c.id).await, "{what}: still signed in");
    }
    let (s, _) = refresh(&state, &c, tok["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, 200, "the grant lives on");
}

#[tokio::test]
async fn post_logout_redirect_uris_must_be_registered_for_that_very_client() {
    let (state, _clock) = setup().await;
    let c = rp(&state, false, &[BYE]).await;
    let other = rp(&state, false, &[OTHER_BYE]).await;
    let (mut b, tok) = signed_in(&state, &c).await;
    let hint = tok["id_token"].as_str().unwrap();
    let with_query = format!("{BYE}?next=https://evil.example");
    let with_fragment = format!("{BYE}#x");
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "not registered",
            vec![
                ("id_token_hint", hint),
                ("post_logout_redirect_uri", "https://evil.example/"),
            ],
        ),
        (
            "registered for another client (hint)",
            vec![
                ("id_token_hint", hint),
                ("post_logout_redirect_uri", OTHER_BYE),
            ],
        ),
        (
            "registered for another client (client_id)",
            vec![
                ("client_id", &c.id),
                ("post_logout_redirect_uri", OTHER_BYE),
            ],
        ),
        (
            "client_id is not the hint's audience",
            vec![
                ("id_token_hint", hint),
                ("client_id", &other.id),
                ("post_logout_redirect_uri", OTHER_BYE),
            ],
        ),
        (
            "an extra query",
            vec![
                ("id_token_hint", hint),
                ("post_logout_redirect_uri", &with_query),
            ],
        ),
        (
            "a fragment",
            vec![
                ("id_token_hint", hint),
                ("post_logout_redirect_uri", &with_fragment),
            ],
        ),
        ("no client named", vec![("post_logout_redirect_uri", BYE)]),
        (
            "an unknown client",
            vec![("client_id", "nobody"), ("post_logout_redirect_uri", BYE)],
        ),
    ];
    for (what, params) in cases {
        let a = b.get(&state, &logout_uri(&params)).await;
        assert!(is_error_page(&a), "{what}: {} {}", a.status, a.location());
        assert!(b.signed_in(&state, &c.id).await, "{what}: still signed in");
    }
    // The confirmation form cannot be used to smuggle one in either.
    let page = b.get(&state, "/logout").await;
    assert_eq!(page.status, 200);
    let a = b
        .post(
            &state,
            "/logout",
            &[
                ("csrf", &hidden(&page.body, "csrf")),
                ("decision", "logout"),
                ("client_id", &c.id),
                ("post_logout_redirect_uri", "https://evil.example/"),
            ],
        )
        .await;
    assert!(is_error_page(&a), "{} {}", a.status, a.location());
    assert!(b.signed_in(&state, &c.id).await);
}

#[tokio::test]
async fn without_proof_the_user_confirms_and_a_cross_site_request_ends_nothing() {
    let (state, _clock) = setup().await;
    let c = rp(&state, false, &[BYE]).await;
    let (mut b, tok) = signed_in(&state, &c).await;
    // Another browser of alice's: its id_token names another session.
    let (_, other_tok) = signed_in(&state, &c).await;
    let unproven: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![("client_id", &c.id), ("post_logout_redirect_uri", BYE)],
        vec![
            ("id_token_hint", other_tok["id_token"].as_str().unwrap()),
            ("post_logout_redirect_uri", BYE),
        ],
        // The hint is this session's, but the RP thinks bob is signed in.
        vec![
            ("id_token_hint", tok["id_token"].as_str().unwrap()),
            ("logout_hint", "bob"),
        ],
    ];
    for params in &unproven {
        let a = b.get(&state, &logout_uri(params)).await;
        assert_eq!(a.status, 200, "{params:?}: {}", a.location());
        assert!(a.body.contains("Sign out?"), "{}", a.body);
        assert!(a.location().is_empty());
        assert!(b.signed_in(&state, &c.id).await, "{params:?}");
    }
    // A form posted from elsewhere: no CSRF token, or a forged one.
    let a = b.post(&state, "/logout", &[("decision", "logout")]).await;
    assert_eq!(a.status, 200, "a request, confirmed by nobody");
    assert!(a.body.contains("Sign out?"));
    let a = b
        .post(
            &state,
            "/logout",
            &[("csrf", "forged"), ("decision", "logout")],
        )
        .await;
    assert!(is_error_page(&a), "{}", a.status);
    // Another browser's valid token does not fit this browser's cookie.
    let mut attacker = Browser::default();
    attacker
        .code_as(&state, &query(&c.id, &[("scope", "openid read")]), "bob")
        .await;
    let theirs = attacker.get(&state, "/logout").await;
    let a = b
        .post(
            &state,
            "/logout",
            &[
                ("csrf", &hidden(&theirs.body, "csrf")),
                ("decision", "logout"),
            ],
        )
        .await;
    assert!(is_error_page(&a), "{}", a.status);
    assert!(b.signed_in(&state, &c.id).await);

    // "Stay signed in".
    let page = b.get(&state, "/logout").await;
    let a = b
        .post(
            &state,
            "/logout",
            &[("csrf", &hidden(&page.body, "csrf")), ("decision", "stay")],
        )
        .await;
    assert_eq!(a.status, 200);
    assert!(b.signed_in(&state, &c.id).await);

    // The user confirms: signed out, back to the RP with its state.
    let page = b
        .get(
            &state,
            &logout_uri(&[
                ("client_id", &c.id),
                ("post_logout_redirect_uri", BYE),
                ("state", "s-9"),
            ]),
        )
        .await;
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("form-action 'self' https://rp.example"),
        "{csp}"
    );
    let a = b
        .post(
            &state,
            "/logout",
            &[
                ("csrf", &hidden(&page.body, "csrf")),
                ("decision", "logout"),
                ("client_id", &hidden(&page.body, "client_id")),
                (
                    "post_logout_redirect_uri",
                    &hidden(&page.body, "post_logout_redirect_uri"),
                ),
                ("state", &hidden(&page.body, "state")),
            ],
        )
        .await;
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(a.location(), format!("{BYE}?state=s-9"));
    assert!(!b.signed_in(&state, &c.id).await);
    let (s, _) = refresh(&state, &c, tok["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, 400, "the session's grant is revoked");
    // The other browser's session and grant are not this logout's.
    let (s, _) = refresh(&state, &c, other_tok["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn logout_twice_and_refresh_after_logout() {
    let (state, _clock) = setup().await;
    let c = rp(&state, false, &[BYE]).await;
    let (mut b, tok) = signed_in(&state, &c).await;
    let params = [
        ("id_token_hint", tok["id_token"].as_str().unwrap()),
        ("post_logout_redirect_uri", BYE),
        ("state", "1"),
    ];
    let first = b.get(&state, &logout_uri(&params)).await;
    assert_eq!(first.status, 303);
    // Again (a double click, a replay): nothing left to end, the same
    // redirect, no error.
    let again = b.get(&state, &logout_uri(&params)).await;
    assert_eq!(again.status, 303, "{}", again.body);
    assert_eq!(again.location(), first.location());
    // The plain page, with no session: signed out.
    let plain = b.get(&state, "/logout").await;
    assert_eq!(plain.status, 200);
    assert!(plain.body.contains("You are signed out."), "{}", plain.body);
    let (s, err) = refresh(&state, &c, tok["refresh_token"].as_str().unwrap()).await;
    assert_eq!((s, err["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn the_consent_page_offers_sign_out() {
    let (state, _clock) = setup().await;
    let c = rp(&state, false, &[]).await;
    let mut b = Browser::default();
    let a = b
        .get(
            &state,
            &format!(
                "/authorize?{}",
                query(&c.id, &[("scope", "openid"), ("prompt", "consent")])
            ),
        )
        .await;
    // Signed out: the sign-in page. Sign in, then the consent page links
    // to /logout.
    let back = b
        .post(
            &state,
            "/authorize/login",
            &[
                ("request", &hidden(&a.body, "request")),
                ("csrf", &hidden(&a.body, "csrf")),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    let consent = b.get(&state, &back.location()).await;
    assert!(
        consent.body.contains("<a href=\"/logout\">Sign out</a>"),
        "{}",
        consent.body
    );
    let page = b.get(&state, "/logout").await;
    assert_eq!(page.status, 200);
    let a = b
        .post(
            &state,
            "/logout",
            &[
                ("csrf", &hidden(&page.body, "csrf")),
                ("decision", "logout"),
            ],
        )
        .await;
    assert_eq!(a.status, 200);
    assert!(a.body.contains("You are signed out."));
    assert!(!b.signed_in(&state, &c.id).await);
}

#[tokio::test]
async fn an_offline_grant_survives_logout_and_idle_but_not_revoke_session() {
    let (state, clock) = setup().await;
    let c = rp(&state, true, &[BYE]).await;
    let mut b = Browser::default();
    // An online grant and an offline one, in the same session.
    let code = b
        .code_as(&state, &query(&c.id, &[("scope", "openid read")]), "alice")
        .await;
    let online = redeem(&state, &c, &code).await;
    let page = b
        .get(
            &state,
            &format!(
                "/authorize?{}",
                query(&c.id, &[("scope", "openid offline_access")])
            ),
        )
        .await;
    assert_eq!(page.status, 200, "offline access is always consented");
    assert!(
        page.body.contains("keeps access after you sign out"),
        "{}",
        page.body
    );
    let code = b
        .code_as(
            &state,
            &query(&c.id, &[("scope", "openid offline_access")]),
            "alice",
        )
        .await;
    let offline = redeem(&state, &c, &code).await;
    assert_eq!(offline["scope"], "openid offline_access");
    let listed = admin::user_sessions(&state.db, "alice", clock.now().secs())
        .await
        .unwrap();
    assert_eq!(listed.sessions.len(), 1);
    let sid = listed.sessions[0].sid.clone();
    assert_eq!(listed.grants.len(), 2);
    assert_eq!(
        listed.grants.iter().filter(|g| g.offline).count(),
        1,
        "{listed:?}"
    );
    let offline_grant = claims_of(offline["access_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(listed
        .grants
        .iter()
        .any(|g| g.grant_id == offline_grant && g.offline && g.session_sid == sid));

    let a = b
        .get(
            &state,
            &logout_uri(&[("id_token_hint", online["id_token"].as_str().unwrap())]),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let (s, _) = refresh(&state, &c, online["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, 400, "the online grant ends with the session");
    // Past the idle limit and the online absolute lifetime: still usable.
    clock.advance_secs(state.config.refresh_token_ttl + 60);
    let (s, next) = refresh(&state, &c, offline["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, 200, "{next}");
    assert!(next["id_token"].is_string(), "{next}");
    // The browser session has ended: the id_token names no `sid` an RP
    // could take for a live session (same user, same original auth_time).
    let renewed = claims_of(next["id_token"].as_str().unwrap());
    assert!(renewed.get("sid").is_none(), "{renewed}");
    assert_eq!(
        renewed["sub"],
        claims_of(offline["id_token"].as_str().unwrap())["sub"]
    );
    assert_eq!(
        renewed["auth_time"],
        claims_of(offline["id_token"].as_str().unwrap())["auth_time"]
    );
    let listed = admin::user_sessions(&state.db, "alice", clock.now().secs())
        .await
        .unwrap();
    assert!(listed.sessions.is_empty());
    assert_eq!(listed.grants.len(), 1);
    assert_eq!(listed.grants[0].last_used, clock.now().secs().0);

    // Revoking the (ended) session leaves the offline grant; revoking the
    // grant ends it.
    let done = admin::revoke_session(
        &state.db,
        &state.config,
        "alice",
        &sid,
        admin::Via::AdminApi,
        clock.now().secs(),
    )
    .await
    .unwrap();
    assert!(done.grants_revoked.is_empty(), "{done:?}");
    let (s, after) = refresh(&state, &c, next["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, 200);
    let (status, _, v) = send(
        &state,
        Request::delete(format!("/admin/users/alice/sessions/{offline_grant}"))
            .header("authorization", format!("Bearer {ADMIN}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["grants_revoked"], json!([offline_grant]));
    let (s, err) = refresh(&state, &c, after["refresh_token"].as_str().unwrap()).await;
    assert_eq!((s, err["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn an_offline_grant_ends_at_its_absolute_lifetime() {
    let (state, clock) =
        sqlite_state_on_settable_clock(|c| c.offline_refresh_ttl = 3 * 86_400).await;
    create_user(&state.db, "alice", crate::support::now()).await;
    let c = rp(&state, true, &[]).await;
    let mut b = Browser::default();
    let code = b
        .code_as(
            &state,
            &query(&c.id, &[("scope", "openid offline_access")]),
            "alice",
        )
        .await;
    let mut tok = redeem(&state, &c, &code).await;
    // Two days unused (over the one-day idle limit): fine for offline.
    clock.advance_secs(2 * 86_400);
    let (s, next) = refresh(&state, &c, tok["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, 200, "{next}");
    tok = next;
    clock.advance_secs(86_400 + 1);
    let (s, err) = refresh(&state, &c, tok["refresh_token"].as_str().unwrap()).await;
    assert_eq!((s, err["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn offline_access_needs_registration_consent_and_openid() {
    let (state, _clock) = setup().await;
    // Not registered for offline_access: refused like any other scope.
    let plain = rp(&state, false, &[]).await;
    let mut b = Browser::default();
    let a = b
        .get(
            &state,
            &format!(
                "/authorize?{}",
                query(&plain.id, &[("scope", "openid offline_access")])
            ),
        )
        .await;
    assert_eq!(a.status, 303);
    assert_eq!(a.param("error").as_deref(), Some("invalid_scope"));

    let c = rp(&state, true, &[]).await;
    // Consent given once for offline access is not remembered for it.
    let code = b
        .code_as(
            &state,
            &query(&c.id, &[("scope", "openid offline_access")]),
            "alice",
        )
        .await;
    redeem(&state, &c, &code).await;
    let again = b
        .get(
            &state,
            &format!(
                "/authorize?{}",
                query(&c.id, &[("scope", "openid offline_access")])
            ),
        )
        .await;
    assert_eq!(again.status, 200, "the consent page again");
    assert!(again.body.contains("decision"));
    // prompt=none cannot show consent: offline_access is ignored (§11),
    // and the rest is served from the remembered consent.
    let code = b
        .code_as(&state, &query(&c.id, &[("scope", "openid read")]), "alice")
        .await;
    redeem(&state, &c, &code).await;
    let a = b
        .get(
            &state,
            &format!(
                "/authorize?{}",
                query(
                    &c.id,
                    &[("scope", "openid read offline_access"), ("prompt", "none")]
                )
            ),
        )
        .await;
    assert_eq!(a.status, 303, "{}", a.body);
    let code = a
        .param("code")
        .unwrap_or_else(|| panic!("{}", a.location()));
    let tok = redeem(&state, &c, &code).await;
    assert_eq!(tok["scope"], "openid read", "offline_access ignored");
    // Without openid it is not an OpenID Connect request: ignored.
    let code = b
        .code_as(
            &state,
            &query(&c.id, &[("scope", "read offline_access")]),
            "alice",
        )
        .await;
    let tok = redeem(&state, &c, &code).await;
    assert_eq!(tok["scope"], "read");
    let listed = admin::user_sessions(&state.db, "alice", crate::support::now())
        .await
        .unwrap();
    assert_eq!(listed.grants.iter().filter(|g| g.offline).count(), 1);
}

#[tokio::test]
async fn an_operator_ends_only_the_named_users_sessions() {
    let (state, _clock) = setup().await;
    let c = rp(&state, false, &[]).await;
    let (mut alice, tok) = signed_in(&state, &c).await;
    let alice_sid = claims_of(tok["id_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let alice_grant = claims_of(tok["access_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let call = |method: &'static str, path: String| {
        let state = state.clone();
        async move {
            let (s, _, v) = send(
                &state,
                Request::builder()
                    .method(method)
                    .uri(path)
                    .header("authorization", format!("Bearer {ADMIN}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
            (s, v)
        }
    };
    // Through bob: alice's session and grant are not found.
    for id in [&alice_sid, &alice_grant] {
        let (s, v) = call("DELETE", format!("/admin/users/bob/sessions/{id}")).await;
        assert_eq!(s, 404, "{v}");
        let r = admin::revoke_session(
            &state.db,
            &state.config,
            "bob",
            id,
            admin::Via::Cli,
            crate::support::now(),
        )
        .await;
        assert!(r.is_err());
    }
    assert!(alice.signed_in(&state, &c.id).await);
    let (s, _) = call("GET", "/admin/users/nobody/sessions".into()).await;
    assert_eq!(s, 404);
    let (s, v) = call("GET", "/admin/users/bob/sessions".into()).await;
    assert_eq!(s, 200);
    assert_eq!(v["sessions"], json!([]));
    let (s, v) = call("GET", "/admin/users/alice/sessions".into()).await;
    assert_eq!(s, 200);
    assert_eq!(v["sessions"][0]["sid"], alice_sid.as_str());
    assert_eq!(v["grants"][0]["grant_id"], alice_grant.as_str());
    assert_eq!(v["grants"][0]["client_id"], c.id.as_str());
    assert_eq!(v["grants"][0]["offline"], false);
    // Through alice: the session ends, with its grant.
    let (s, v) = call("DELETE", format!("/admin/users/alice/sessions/{alice_sid}")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["session_ended"], true);
    assert_eq!(v["grants_revoked"], json!([alice_grant]));
    assert!(!alice.signed_in(&state, &c.id).await);
    let (s, _) = refresh(&state, &c, tok["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, 400);
    // Unauthenticated: refused.
    let (s, _, _) = send(
        &state,
        Request::get("/admin/users/alice/sessions")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, 401);
}

/// The store's queries (the session's online grants, the user's live
/// grants with their last use, a session or grant of one user) on SQLite
/// and, when configured, PostgreSQL.
#[tokio::test]
async fn logout_and_the_sessions_operations_run_on_every_database() {
    for tdb in crate::support::databases() {
        let clock = SettableClock::starting_now();
        let state = crate::support::state_on_clock(
            gatehouse_origin::config::Config::for_tests(&tdb.url),
            tdb.open().await,
            clock.clone(),
        )
        .await;
        create_user(&state.db, "alice", crate::support::now()).await;
        create_user(&state.db, "bob", crate::support::now()).await;
        let c = rp(&state, true, &[BYE]).await;
        let mut b = Browser::default();
        let code = b
            .code_as(&state, &query(&c.id, &[("scope", "openid read")]), "alice")
            .await;
        let online = redeem(&state, &c, &code).await;
        let code = b
            .code_as(
                &state,
                &query(&c.id, &[("scope", "openid offline_access")]),
                "alice",
            )
            .await;
        let offline = redeem(&state, &c, &code).await;
        clock.advance_secs(5);
        let (s, rotated) = refresh(&state, &c, online["refresh_token"].as_str().unwrap()).await;
        assert_eq!(s, 200, "{}: {rotated}", tdb.name);
        let listed = admin::user_sessions(&state.db, "alice", clock.now().secs())
            .await
            .unwrap();
        assert_eq!(listed.sessions.len(), 1, "{}", tdb.name);
        assert_eq!(listed.grants.len(), 2, "{}: {listed:?}", tdb.name);
        let online_grant = listed.grants.iter().find(|g| !g.offline).unwrap();
        assert_eq!(online_grant.last_used, clock.now().secs().0, "{}", tdb.name);
        let sid = listed.sessions[0].sid.clone();
        assert!(admin::revoke_session(
            &state.db,
            &state.config,
            "bob",
            &sid,
            admin::Via::Cli,
            clock.now().secs()
        )
        .await
        .is_err());
        let a = b
            .get(
                &state,
                &logout_uri(&[
                    ("id_token_hint", online["id_token"].as_str().unwrap()),
                    ("post_logout_redirect_uri", BYE),
                ]),
            )
            .await;
        assert_eq!(a.status, 303, "{}: {}", tdb.name, a.body);
        let (s, _) = refresh(&state, &c, rotated["refresh_token"].as_str().unwrap()).await;
        assert_eq!(s, 400, "{}", tdb.name);
        let (s, _) = refresh(&state, &c, offline["refresh_token"].as_str().unwrap()).await;
        assert_eq!(s, 200, "{}", tdb.name);
        let listed = admin::user_sessions(&state.db, "alice", clock.now().secs())
            .await
            .unwrap();
        assert!(listed.sessions.is_empty(), "{}", tdb.name);
        assert_eq!(listed.grants.len(), 1, "{}", tdb.name);
        assert!(listed.grants[0].offline);
    }
}
