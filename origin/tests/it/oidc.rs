//! OpenID Connect Core on the authorization code flow, through the router
//! (`oneshot`) on a settable clock: the id_token (claims, signature checked
//! by an independent JOSE implementation, `nonce`, `at_hash`, `sid`,
//! `auth_time`), its refresh, `prompt`, `max_age`, `login_hint`, and the
//! attacks: a replayed or another client's code gets no id_token, an
//! id_token is not an access token at introspection, a malformed or
//! oversized parameter is refused.

use crate::support::{
    basic, create_user, register_resource_server, send, sqlite_state_on_settable_clock, AUD, CB,
};
use axum::body::Body;
use axum::http::{HeaderMap, Request};
use gatehouse_origin::domain::clients::{self, NewClient};
use gatehouse_origin::domain::state::AppState;
use gatehouse_origin::support::clock::SettableClock;
use http_body_util::BodyExt as _;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use tower::ServiceExt as _;

/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
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
    /// A query parameter of the redirect.
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
struct Browser {
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
            self.cookies.insert(k.to_owned(), v.to_owned());
        }
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    async fn get(&mut self, state: &AppState, uri: &str) -> Answer {
        self.call(state, Request::get(uri), Body::empty()).await
    }

    async fn post(&mut self, state: &AppState, path: &str, form: &[(&str, &str)]) -> Answer {
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

    /// Signs in on the login page `page` as `user`; returns the 303 back.
    async fn log_in(&mut self, state: &AppState, page: &Answer, user: &str) -> Answer {
        assert_eq!(page.status, 200, "a login page: {}", page.location());
        assert!(page.body.contains("/authorize/login"), "{}", page.body);
        let done = self
            .post(
                state,
                "/authorize/login",
                &[
                    ("request", &hidden(&page.body, "request")),
                    ("csrf", &hidden(&page.body, "csrf")),
                    ("username", user),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(done.status, 303, "{}", done.body);
        done
    }

    /// Approves on the consent page `page`; returns the redirect to the client.
    async fn approve(&mut self, state: &AppState, page: &Answer) -> Answer {
        assert_eq!(page.status, 200, "a consent page: {}", page.location());
        assert!(page.body.contains("decision"), "{}", page.body);
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

    /// The whole way to a code: login if asked, consent if asked.
    async fn code(&mut self, state: &AppState, q: &str) -> String {
        let mut a = self.get(state, &format!("/authorize?{q}")).await;
        if a.status == 200 && a.body.contains("/authorize/login") {
            let back = self.log_in(state, &a, "alice").await;
            a = self.get(state, &back.location()).await;
        }
        if a.status == 200 {
            a = self.approve(state, &a).await;
        }
        assert_eq!(a.status, 303, "{}", a.body);
        assert!(a.location().starts_with(CB), "{}", a.location());
        a.param("code")
            .unwrap_or_else(|| panic!("no code: {}", a.location()))
    }
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

/// The raw query of an authorization request of `client_id`.
fn query(client_id: &str, extra: &[(&str, &str)]) -> String {
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

struct Client {
    id: String,
    secret: Option<String>,
}

/// A web client for `openid read` on [`AUD`] with refresh tokens.
async fn oidc_client(state: &AppState, public: bool) -> Client {
    let (c, s) = clients::create(
        &state.db,
        &NewClient {
            name: "rp".into(),
            public,
            scopes: vec!["openid".into(), "read".into()],
            audiences: vec![AUD.into()],
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            redirect_uris: vec![CB.into()],
            ..NewClient::default()
        },
        crate::support::now(),
    )
    .await
    .unwrap();
    Client {
        id: c.client_id,
        secret: s.map(|s| s.expose().to_owned()),
    }
}

async fn token(state: &AppState, c: &Client, form: &[(&str, &str)]) -> (u16, Value) {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let mut req =
        Request::post("/token").header("content-type", "application/x-www-form-urlencoded");
    if let Some(s) = &c.secret {
        req = req.header("authorization", basic(&c.id, s));
    }
    let (status, _, json) = send(state, req.body(Body::from(body)).unwrap()).await;
    (status, json)
}

async fn redeem(state: &AppState, c: &Client, code: &str) -> (u16, Value) {
    token(
        state,
        c,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CB),
            ("code_verifier", VERIFIER),
            ("client_id", &c.id),
        ],
    )
    .await
}

/// Verifies `id_token` with `jsonwebtoken` against the origin's JWKS, for
/// audience `client_id`; returns its header and claims.
async fn verify_id_token(
    state: &AppState,
    id_token: &str,
    client_id: &str,
) -> (jsonwebtoken::Header, Value) {
    let (s, _, jwks) = send(
        state,
        Request::get("/.well-known/jwks.json")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    let k = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"].as_str() == header.kid.as_deref())
        .expect("the id_token's kid is published");
    assert_eq!(k["kty"], "EC", "the test configuration signs with ES256");
    let key = jsonwebtoken::DecodingKey::from_ec_components(
        k["x"].as_str().unwrap(),
        k["y"].as_str().unwrap(),
    )
    .unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.set_audience(&[client_id]);
    v.set_issuer(&[state.config.issuer.as_str()]);
    v.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    let data = jsonwebtoken::decode::<Value>(id_token, &key, &v).unwrap();
    (header, data.claims)
}

/// The claims of a JWT, unverified.
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

/// OpenID Connect Core §3.1.3.6, computed here: base64url of the left half
/// of SHA-256 of the access token's ASCII.
fn expected_at_hash(access_token: &str) -> String {
    use base64::Engine as _;
    let d = Sha256::digest(access_token.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&d[..16])
}

async fn setup() -> (AppState, Arc<SettableClock>, String) {
    let (state, clock) = sqlite_state_on_settable_clock(|_| {}).await;
    let user = create_user(&state.db, "alice", crate::support::now()).await;
    (state, clock, user.user_id)
}

#[tokio::test]
async fn the_id_token_is_signed_and_says_who_when_and_for_whom() {
    let (state, clock, user_id) = setup().await;
    let c = oidc_client(&state, false).await;
    let mut b = Browser::default();
    let login_time = secs(&clock);
    let code = b
        .code(
            &state,
            &query(
                &c.id,
                &[("scope", "openid read"), ("nonce", "n-0S6_WzA2Mj")],
            ),
        )
        .await;
    clock.advance_secs(7);
    let (s, tok) = redeem(&state, &c, &code).await;
    assert_eq!(s, 200, "{tok}");
    let at = tok["access_token"].as_str().unwrap();
    let id_token = tok["id_token"].as_str().expect("an id_token");
    let (header, claims) = verify_id_token(&state, id_token, &c.id).await;
    assert_eq!(header.typ.as_deref(), Some("JWT"), "never at+jwt");
    assert_eq!(claims["iss"], state.config.issuer.as_str());
    assert_eq!(claims["sub"], user_id.as_str());
    assert_eq!(claims["aud"], c.id.as_str());
    assert_eq!(claims["azp"], c.id.as_str());
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(claims["auth_time"], login_time);
    assert_eq!(claims["iat"], login_time + 7);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        state.config.access_token_ttl
    );
    assert_eq!(claims["at_hash"], expected_at_hash(at).as_str());
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
    assert!(claims.get("acr").is_none(), "acr is not claimed");
    let sid = claims["sid"].as_str().unwrap().to_owned();
    assert!(sid.len() >= 22, "a random session id: {sid}");
    // The session sid is not the grant's (the access token's `sid`), nor
    // the session cookie or its hash.
    assert_ne!(claims_of(at)["sid"].as_str().unwrap(), sid);
    for v in b.cookies.values() {
        assert!(!v.contains(&sid) && !sid.contains(v.as_str()));
    }
    assert!(claims_of(at).get("nonce").is_none());

    // Same browser, consent remembered, no nonce: none in the id_token; the
    // same session.
    let code = b
        .code(&state, &query(&c.id, &[("scope", "openid read")]))
        .await;
    let (s, tok2) = redeem(&state, &c, &code).await;
    assert_eq!(s, 200, "{tok2}");
    let (_, claims2) = verify_id_token(&state, tok2["id_token"].as_str().unwrap(), &c.id).await;
    assert!(claims2.get("nonce").is_none(), "{claims2}");
    assert_eq!(claims2["sid"], sid.as_str());
    assert_eq!(claims2["auth_time"], login_time);

    // Without `openid`: plain OAuth, no id_token.
    let code = b.code(&state, &query(&c.id, &[("scope", "read")])).await;
    let (s, plain) = redeem(&state, &c, &code).await;
    assert_eq!(s, 200, "{plain}");
    assert!(plain.get("id_token").is_none(), "{plain}");

    // A refresh of the openid grant: a new id_token for the same session
    // and authentication, for the new access token, without nonce.
    clock.advance_secs(60);
    let (s, refreshed) = token(
        &state,
        &c,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tok["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(s, 200, "{refreshed}");
    let (_, rc) = verify_id_token(&state, refreshed["id_token"].as_str().unwrap(), &c.id).await;
    assert_eq!(rc["sid"], sid.as_str());
    assert_eq!(rc["auth_time"], login_time);
    assert_eq!(rc["iat"], secs(&clock));
    assert!(rc.get("nonce").is_none());
    assert_eq!(
        rc["at_hash"],
        expected_at_hash(refreshed["access_token"].as_str().unwrap()).as_str()
    );
    // Narrowed to `read`: no id_token.
    let (s, narrowed) = token(
        &state,
        &c,
        &[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                refreshed["refresh_token"].as_str().unwrap(),
            ),
            ("scope", "read"),
        ],
    )
    .await;
    assert_eq!(s, 200, "{narrowed}");
    assert!(narrowed.get("id_token").is_none());
}

#[tokio::test]
async fn a_replayed_or_stolen_code_gets_no_id_token() {
    let (state, _clock, _) = setup().await;
    let c = oidc_client(&state, false).await;
    let other = oidc_client(&state, false).await;
    let mut b = Browser::default();
    let code = b
        .code(
            &state,
            &query(&c.id, &[("scope", "openid"), ("nonce", "abc")]),
        )
        .await;
    // Another client presenting it: refused (and the code is not burnt).
    let (s, e) = redeem(&state, &other, &code).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (400, Some("invalid_grant")),
        "{e}"
    );
    assert!(e.get("id_token").is_none());
    let (s, first) = redeem(&state, &c, &code).await;
    assert_eq!(s, 200, "{first}");
    assert!(first["id_token"].is_string());
    // A replay: refused, no second id_token.
    let (s, again) = redeem(&state, &c, &code).await;
    assert_eq!(
        (s, again["error"].as_str()),
        (400, Some("invalid_grant")),
        "{again}"
    );
    assert!(again.get("id_token").is_none());
}

#[tokio::test]
async fn an_id_token_is_not_an_access_token_at_introspection() {
    let (state, _clock, _) = setup().await;
    let c = oidc_client(&state, false).await;
    let rs = register_resource_server(&state, AUD).await;
    let mut b = Browser::default();
    let code = b
        .code(&state, &query(&c.id, &[("scope", "openid read")]))
        .await;
    let (s, tok) = redeem(&state, &c, &code).await;
    assert_eq!(s, 200, "{tok}");
    let introspect = |t: String| {
        let state = state.clone();
        let auth = basic(&rs.id, &rs.secret);
        async move {
            let body = format!("token={t}");
            send(
                &state,
                Request::post("/introspect")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("authorization", auth)
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await
        }
    };
    let (s, _, at) = introspect(tok["access_token"].as_str().unwrap().to_owned()).await;
    assert_eq!((s, &at["active"]), (200, &Value::Bool(true)), "{at}");
    let (s, _, it) = introspect(tok["id_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(s, 200);
    assert_eq!(
        it,
        serde_json::json!({"active": false}),
        "an id_token is inactive"
    );
}

#[tokio::test]
async fn prompt_none_answers_login_required_or_consent_required() {
    let (state, _clock, _) = setup().await;
    let c = oidc_client(&state, false).await;
    let public = oidc_client(&state, true).await;
    let mut b = Browser::default();
    let none = query(&c.id, &[("scope", "openid"), ("prompt", "none")]);
    // No session: login_required, never a page.
    let a = b.get(&state, &format!("/authorize?{none}")).await;
    assert_eq!(a.status, 303, "{}", a.body);
    assert!(a.location().starts_with(CB));
    assert_eq!(a.param("error").as_deref(), Some("login_required"));
    assert_eq!(a.param("state").as_deref(), Some("st-1"));
    assert_eq!(
        a.param("iss").as_deref(),
        Some(state.config.issuer.as_str())
    );
    assert!(a.param("code").is_none());
    // A session but no consent: consent_required.
    let page = b
        .get(
            &state,
            &format!("/authorize?{}", query(&c.id, &[("scope", "openid")])),
        )
        .await;
    let back = b.log_in(&state, &page, "alice").await;
    let consent = b.get(&state, &back.location()).await;
    assert_eq!(consent.status, 200, "the consent page");
    let a = b.get(&state, &format!("/authorize?{none}")).await;
    assert_eq!(
        a.param("error").as_deref(),
        Some("consent_required"),
        "{}",
        a.location()
    );
    // With consent: a code without any page.
    let done = b.approve(&state, &consent).await;
    assert!(done.param("code").is_some());
    let a = b.get(&state, &format!("/authorize?{none}")).await;
    assert_eq!(a.status, 303);
    assert!(a.param("code").is_some(), "{}", a.location());
    // prompt=consent asks again although remembered; with none: invalid.
    let a = b
        .get(
            &state,
            &format!(
                "/authorize?{}",
                query(&c.id, &[("scope", "openid"), ("prompt", "consent")])
            ),
        )
        .await;
    assert_eq!(a.status, 200);
    assert!(a.body.contains("decision"));
    // A public client always needs the user's approval: prompt=none is
    // consent_required even with a remembered consent.
    let pq = query(&public.id, &[("scope", "openid")]);
    let page = b.get(&state, &format!("/authorize?{pq}")).await;
    let _ = b.approve(&state, &page).await;
    let a = b
        .get(
            &state,
            &format!(
                "/authorize?{}",
                query(&public.id, &[("scope", "openid"), ("prompt", "none")])
            ),
        )
        .await;
    assert_eq!(a.param("error").as_deref(), Some("consent_required"));
    // Malformed, contradictory, unsupported values: invalid_request.
    for p in [
        "none login",
        "consent none",
        "select_account",
        "bogus",
        "login select_account",
    ] {
        let a = b
            .get(
                &state,
                &format!("/authorize?{}", query(&c.id, &[("prompt", p)])),
            )
            .await;
        assert_eq!(a.status, 303, "{p}");
        assert_eq!(a.param("error").as_deref(), Some("invalid_request"), "{p}");
    }
}

#[tokio::test]
async fn prompt_login_and_max_age_force_a_new_login_and_move_auth_time() {
    let (state, clock, _) = setup().await;
    let c = oidc_client(&state, false).await;
    let mut b = Browser::default();
    let first_login = secs(&clock);
    let code = b.code(&state, &query(&c.id, &[("scope", "openid")])).await;
    let (_, tok) = redeem(&state, &c, &code).await;
    let (_, first) = verify_id_token(&state, tok["id_token"].as_str().unwrap(), &c.id).await;
    assert_eq!(first["auth_time"], first_login);
    let sid = first["sid"].clone();

    // prompt=login: the login page despite the session and the consent;
    // after it, a code (no loop), and the id_token says when.
    clock.advance_secs(100);
    let q = query(&c.id, &[("scope", "openid"), ("prompt", "login")]);
    let page = b.get(&state, &format!("/authorize?{q}")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("/authorize/login"), "the login page");
    let back = b.log_in(&state, &page, "alice").await;
    let done = b.get(&state, &back.location()).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let (_, tok) = redeem(&state, &c, &done.param("code").unwrap()).await;
    let (_, second) = verify_id_token(&state, tok["id_token"].as_str().unwrap(), &c.id).await;
    assert_eq!(second["auth_time"], first_login + 100);
    assert_eq!(
        second["sid"], sid,
        "the same browser session, re-authenticated"
    );

    // max_age: a session older than it signs in again; a younger one not.
    clock.advance_secs(120);
    let young = query(&c.id, &[("scope", "openid"), ("max_age", "600")]);
    let a = b.get(&state, &format!("/authorize?{young}")).await;
    assert_eq!(a.status, 303, "within max_age: no page");
    let (_, tok) = redeem(&state, &c, &a.param("code").unwrap()).await;
    let (_, c3) = verify_id_token(&state, tok["id_token"].as_str().unwrap(), &c.id).await;
    assert_eq!(c3["auth_time"], first_login + 100);
    let old = query(&c.id, &[("scope", "openid"), ("max_age", "60")]);
    let page = b.get(&state, &format!("/authorize?{old}")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("/authorize/login"));
    // prompt=none with a session too old: login_required.
    let a = b
        .get(
            &state,
            &format!(
                "/authorize?{}",
                query(
                    &c.id,
                    &[("scope", "openid"), ("max_age", "60"), ("prompt", "none")]
                )
            ),
        )
        .await;
    assert_eq!(a.param("error").as_deref(), Some("login_required"));
    let back = b.log_in(&state, &page, "alice").await;
    let done = b.get(&state, &back.location()).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let (_, tok) = redeem(&state, &c, &done.param("code").unwrap()).await;
    let (_, c4) = verify_id_token(&state, tok["id_token"].as_str().unwrap(), &c.id).await;
    assert_eq!(c4["auth_time"], first_login + 220);

    // A consent page left open past max_age approves nothing.
    let other = oidc_client(&state, false).await;
    let q = query(&other.id, &[("scope", "openid"), ("max_age", "30")]);
    let page = b.get(&state, &format!("/authorize?{q}")).await;
    assert!(page.body.contains("decision"), "the consent page");
    clock.advance_secs(31);
    let late = b.approve(&state, &page).await;
    assert_eq!(late.status, 400, "{}", late.location());
    assert!(late.param("code").is_none());
    let login = b.get(&state, &format!("/authorize?{q}")).await;
    let back = b.log_in(&state, &login, "alice").await;
    let page = b.get(&state, &back.location()).await;
    let done = b.approve(&state, &page).await;
    assert!(done.param("code").is_some(), "{}", done.location());

    // max_age=0: like prompt=login.
    let zero = query(&c.id, &[("scope", "openid"), ("max_age", "0")]);
    let page = b.get(&state, &format!("/authorize?{zero}")).await;
    assert!(page.body.contains("/authorize/login"));
    let back = b.log_in(&state, &page, "alice").await;
    let done = b.get(&state, &back.location()).await;
    assert_eq!(done.status, 303, "after the login, a code: {}", done.body);
    assert!(done.param("code").is_some());

    for bad in ["-1", "1.5", "abc", "99999999999"] {
        let a = b
            .get(
                &state,
                &format!("/authorize?{}", query(&c.id, &[("max_age", bad)])),
            )
            .await;
        assert_eq!(
            a.param("error").as_deref(),
            Some("invalid_request"),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn nonce_is_bounded_and_login_hint_prefills_escaped() {
    let (state, _clock, _) = setup().await;
    let c = oidc_client(&state, false).await;
    let mut b = Browser::default();
    let long = "n".repeat(256);
    let a = b
        .get(
            &state,
            &format!(
                "/authorize?{}",
                query(&c.id, &[("scope", "openid"), ("nonce", &long)])
            ),
        )
        .await;
    assert_eq!(a.status, 303);
    assert_eq!(a.param("error").as_deref(), Some("invalid_request"));
    let hint = "\"><script>alert(1)</script>";
    let page = b
        .get(
            &state,
            &format!(
                "/authorize?{}",
                query(&c.id, &[("scope", "openid"), ("login_hint", hint)])
            ),
        )
        .await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("<script"), "{}", page.body);
    assert!(
        page.body
            .contains("value=\"&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;\""),
        "{}",
        page.body
    );
    let page = b
        .get(
            &state,
            &format!("/authorize?{}", query(&c.id, &[("login_hint", "alice")])),
        )
        .await;
    assert!(
        page.body.contains("required value=\"alice\""),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn discovery_is_one_document_extended() {
    let (state, _clock, _) = setup().await;
    let get = |path: &'static str| {
        let state = state.clone();
        async move {
            let (s, h, doc) = send(&state, Request::get(path).body(Body::empty()).unwrap()).await;
            assert_eq!(s, 200);
            assert_eq!(h["cache-control"], "public, max-age=300");
            doc
        }
    };
    let oauth = get("/.well-known/oauth-authorization-server").await;
    let oidc = get("/.well-known/openid-configuration").await;
    for (k, v) in oauth.as_object().unwrap() {
        assert_eq!(&oidc[k], v, "{k} differs between the two documents");
    }
    assert_eq!(oidc["issuer"], state.config.issuer.as_str());
    assert!(oidc["scopes_supported"]
        .as_array()
        .unwrap()
        .contains(&"openid".into()));
    assert_eq!(
        oidc["subject_types_supported"],
        serde_json::json!(["public"])
    );
    assert_eq!(
        oidc["response_types_supported"],
        serde_json::json!(["code"])
    );
    assert_eq!(
        oidc["prompt_values_supported"],
        serde_json::json!(["none", "login", "consent"])
    );
    assert_eq!(oidc["claims_parameter_supported"], false);
    assert_eq!(oidc["request_uri_parameter_supported"], false);
    for claim in ["sub", "auth_time", "nonce", "at_hash", "sid", "amr"] {
        assert!(
            oidc["claims_supported"]
                .as_array()
                .unwrap()
                .contains(&claim.into()),
            "{claim}"
        );
    }
    // The id_token algorithms are those of the published keys.
    let jwks = get("/.well-known/jwks.json").await;
    let mut published: Vec<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["alg"].as_str().unwrap().to_owned())
        .collect();
    published.dedup();
    assert_eq!(
        oidc["id_token_signing_alg_values_supported"],
        serde_json::json!(published)
    );
    assert_eq!(
        oidc["userinfo_endpoint"],
        format!("{}/userinfo", oidc["issuer"].as_str().unwrap())
    );
    for claim in ["email", "email_verified", "preferred_username", "name"] {
        assert!(
            oidc["claims_supported"]
                .as_array()
                .unwrap()
                .contains(&claim.into()),
            "{claim}"
        );
    }
    // Nothing that is not served.
    for absent in ["registration_endpoint", "acr_values_supported"] {
        assert!(oidc.get(absent).is_none(), "{absent}");
    }
}

/// The settable clock's reading, seconds.
fn secs(clock: &SettableClock) -> i64 {
    use gatehouse_origin::support::clock::Clock as _;
    clock.now().secs().0
}
