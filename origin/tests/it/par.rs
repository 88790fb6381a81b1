//! Pushed authorization requests (RFC 9126) through the router (`oneshot`):
//! client authentication at `/par` as at `/token`; `/par` refuses, as JSON,
//! exactly what `/authorize` refuses; a `request_uri` works only for its
//! client, only while live, only once (one code, even when approvals race),
//! and only with the pushed parameters (front-channel ones are ignored); a
//! client that must push is refused at the front channel; malformed and
//! oversized input is refused without a redirect.

use crate::support::{basic, create_user, form_post, send, sqlite_state_on_settable_clock};
use crate::support::{now, AUD, CB};
use axum::body::Body;
use axum::http::{HeaderMap, Request};
use gatehouse_origin::domain::clients::{self, NewClient};
use gatehouse_origin::domain::par::{INTERACTION_SECS, PUSHED_REQUEST_TTL_SECS};
use gatehouse_origin::domain::state::AppState;
use http_body_util::BodyExt as _;
use serde_json::Value;
use tower::ServiceExt as _;

/// RFC 7636 Appendix B.
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const PASSWORD: &str = "correct horse battery";
const PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn location(&self) -> &str {
        self.headers
            .get("location")
            .map_or("", |v| v.to_str().unwrap())
    }
    fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|l| l.starts_with(&format!("{name}=")))
            .map(|l| l.split(';').next().unwrap().to_owned())
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
    /// An error page: 400, HTML, no redirect.
    fn assert_page(&self, what: &str) {
        assert_eq!(self.status, 400, "{what}: {}", self.body);
        assert_eq!(self.location(), "", "{what}: no redirect");
        assert!(
            self.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{what}"
        );
    }
}

async fn call(state: &AppState, req: Request<Body>) -> Answer {
    let resp = gatehouse_origin::http::router(state.clone())
        .oneshot(req)
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

async fn get(state: &AppState, uri: &str, cookie: &str) -> Answer {
    let mut req = Request::get(uri);
    if !cookie.is_empty() {
        req = req.header("cookie", cookie);
    }
    call(state, req.body(Body::empty()).unwrap()).await
}

async fn post(state: &AppState, path: &str, cookie: &str, form: &[(&str, &str)]) -> Answer {
    let req = Request::post(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", cookie)
        .body(Body::from(encode(form)))
        .unwrap();
    call(state, req).await
}

fn encode(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// A web client with `read` and `write`, returning to [`CB`].
async fn web(state: &AppState, public: bool, require_par: bool) -> (String, Option<String>) {
    let (c, s) = clients::create(
        &state.db,
        &NewClient {
            name: "web".into(),
            public,
            scopes: vec!["read".into(), "write".into()],
            audiences: vec![AUD.into()],
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            redirect_uris: vec![CB.into()],
            require_pushed_authorization_requests: require_par,
            ..NewClient::default()
        },
        now(),
    )
    .await
    .unwrap();
    (c.client_id, s.map(|s| s.expose().to_owned()))
}

/// The authorization request's parameters (PKCE S256, scope `read`).
fn authz<'a>(extra: &[(&'static str, &'a str)]) -> Vec<(&'static str, &'a str)> {
    let mut p = vec![
        ("response_type", "code"),
        ("redirect_uri", CB),
        ("scope", "read"),
        ("state", "st-1"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    p.extend_from_slice(extra);
    p
}

/// Form parameters.
type Params<'a> = Vec<(&'static str, &'a str)>;

/// `POST /par` with `auth` (an `Authorization` header) and `body`.
async fn par_raw(state: &AppState, auth: Option<&str>, body: String) -> Answer {
    let req = form_post("/par", auth, "").body(Body::from(body)).unwrap();
    call(state, req).await
}

/// `POST /par` as the confidential client `(id, secret)`.
async fn par(state: &AppState, id: &str, secret: &str, params: &[(&str, &str)]) -> Answer {
    par_raw(state, Some(&basic(id, secret)), encode(params)).await
}

/// A pushed request's `request_uri`.
async fn pushed(state: &AppState, id: &str, secret: &str) -> String {
    let a = par(state, id, secret, &authz(&[])).await;
    assert_eq!(a.status, 201, "{}", a.body);
    a.json()["request_uri"].as_str().unwrap().to_owned()
}

fn front(client_id: &str, request_uri: &str) -> String {
    format!(
        "/authorize?{}",
        encode(&[("client_id", client_id), ("request_uri", request_uri)])
    )
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

/// Logs `alice` in from the login page `/authorize` showed for `url`:
/// the `Cookie` header (CSRF and session) and the consent page.
async fn sign_in(state: &AppState, url: &str) -> (String, Answer) {
    let page = get(state, url, "").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf_cookie = page.cookie("__Host-gh_csrf").expect("a CSRF cookie");
    let done = post(
        state,
        "/authorize/login",
        &csrf_cookie,
        &[
            ("request", &hidden(&page.body, "request")),
            ("csrf", &hidden(&page.body, "csrf")),
            ("username", "alice"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let session = done.cookie("__Host-gh_session").expect("a session cookie");
    let cookie = format!("{csrf_cookie}; {session}");
    let consent = get(state, done.location(), &cookie).await;
    (cookie, consent)
}

async fn approve(state: &AppState, cookie: &str, consent: &Answer) -> Answer {
    post(
        state,
        "/authorize/consent",
        cookie,
        &[
            ("request", &hidden(&consent.body, "request")),
            ("csrf", &hidden(&consent.body, "csrf")),
            ("decision", "approve"),
        ],
    )
    .await
}

fn param(location: &str, name: &str) -> Option<String> {
    let q = location.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

async fn setup() -> (
    AppState,
    std::sync::Arc<gatehouse_origin::support::clock::SettableClock>,
) {
    let (state, clock) = sqlite_state_on_settable_clock(|_| {}).await;
    create_user(&state.db, "alice", now()).await;
    (state, clock)
}

/// [`setup`] on every test database (SQLite; PostgreSQL when configured).
async fn setups() -> Vec<(
    AppState,
    std::sync::Arc<gatehouse_origin::support::clock::SettableClock>,
)> {
    let mut out = Vec::new();
    for tdb in crate::support::databases() {
        let clock = gatehouse_origin::support::clock::SettableClock::starting_now();
        let config = gatehouse_origin::config::Config::for_tests(&tdb.url);
        let state = crate::support::state_on_clock(config, tdb.open().await, clock.clone()).await;
        create_user(&state.db, "alice", now()).await;
        out.push((state, clock));
    }
    out
}

#[tokio::test]
async fn par_answers_201_no_store_with_a_single_use_urn() {
    let (state, _) = setup().await;
    let (id, secret) = web(&state, false, false).await;
    let a = par(&state, &id, secret.as_deref().unwrap(), &authz(&[])).await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.headers["cache-control"], "no-store");
    let v = a.json();
    assert_eq!(v["expires_in"], PUSHED_REQUEST_TTL_SECS);
    let uri = v["request_uri"].as_str().unwrap();
    let rest = uri.strip_prefix(PREFIX).unwrap();
    assert_eq!(rest.len(), 43, "{uri}");
    // Another push, another request_uri.
    let b = par(&state, &id, secret.as_deref().unwrap(), &authz(&[])).await;
    assert_ne!(b.json()["request_uri"], v["request_uri"]);
}

#[tokio::test]
async fn par_authenticates_the_client_as_the_token_endpoint_does() {
    let (state, _) = setup().await;
    let (id, secret) = web(&state, false, false).await;
    let secret = secret.unwrap();
    let body = |extra: &[(&'static str, &'static str)]| encode(&authz(extra));
    // No authentication at all (a confidential client naming itself).
    let mut p = authz(&[]);
    p.push(("client_id", &id));
    let a = par_raw(&state, None, encode(&p)).await;
    assert_eq!(a.status, 401, "{}", a.body);
    assert_eq!(a.json()["error"], "invalid_client");
    assert!(a.headers.contains_key("www-authenticate"));
    // A wrong secret, by Basic and by post.
    let a = par_raw(&state, Some(&basic(&id, "wrong")), body(&[])).await;
    assert_eq!(a.status, 401, "{}", a.body);
    assert_eq!(a.json()["error"], "invalid_client");
    let mut p = authz(&[]);
    p.extend([("client_id", id.as_str()), ("client_secret", "wrong")]);
    let a = par_raw(&state, None, encode(&p)).await;
    assert_eq!(a.status, 401, "{}", a.body);
    // An unknown client.
    let a = par_raw(&state, Some(&basic("nobody", &secret)), body(&[])).await;
    assert_eq!(a.status, 401, "{}", a.body);
    // Basic for one client, client_id of another.
    let (other, _) = web(&state, false, false).await;
    let mut p = authz(&[]);
    p.push(("client_id", &other));
    let a = par_raw(&state, Some(&basic(&id, &secret)), encode(&p)).await;
    assert!(matches!(a.status, 400 | 401), "{}", a.body);
    // client_secret_post works; so does `none` for a public client.
    let mut p = authz(&[]);
    p.extend([("client_id", id.as_str()), ("client_secret", &secret)]);
    assert_eq!(par_raw(&state, None, encode(&p)).await.status, 201);
    let (public, _) = web(&state, true, false).await;
    let mut p = authz(&[]);
    p.push(("client_id", &public));
    let a = par_raw(&state, None, encode(&p)).await;
    assert_eq!(a.status, 201, "{}", a.body);
    // A public client's id with a secret is not `none`.
    p.push(("client_secret", "x"));
    assert_eq!(par_raw(&state, None, encode(&p)).await.status, 401);
}

/// What `/authorize` refuses, `/par` refuses as JSON (never a redirect),
/// with the code `/authorize` redirects (or shows a page) with.
#[tokio::test]
async fn par_refuses_what_authorize_refuses_as_json() {
    let (state, _) = setup().await;
    let (id, secret) = web(&state, false, false).await;
    let secret = secret.unwrap();
    let (cc, cc_secret) = {
        let (c, s) = clients::create(
            &state.db,
            &NewClient {
                name: "svc".into(),
                scopes: vec!["read".into()],
                audiences: vec![AUD.into()],
                grant_types: vec!["client_credentials".into()],
                redirect_uris: vec![CB.into()],
                ..NewClient::default()
            },
            now(),
        )
        .await
        .unwrap();
        (c.client_id, s.unwrap().expose().to_owned())
    };
    let replace = |name: &'static str, value: Option<&'static str>| {
        let mut p: Vec<(&str, &str)> = authz(&[]).into_iter().filter(|(k, _)| *k != name).collect();
        if let Some(v) = value {
            p.push((name, v));
        }
        p
    };
    let cases: Vec<(&str, Params, &str)> = vec![
        (
            "unregistered redirect_uri",
            replace("redirect_uri", Some("https://evil.example/cb")),
            "invalid_request",
        ),
        (
            "a scope the client lacks",
            replace("scope", Some("admin")),
            "invalid_scope",
        ),
        (
            "no PKCE",
            replace("code_challenge", None),
            "invalid_request",
        ),
        (
            "plain PKCE",
            replace("code_challenge_method", Some("plain")),
            "invalid_request",
        ),
        (
            "implicit",
            replace("response_type", Some("token")),
            "unsupported_response_type",
        ),
        (
            "an audience the client lacks",
            authz(&[("audience", "https://other.example")]),
            "invalid_target",
        ),
        (
            "a request object",
            authz(&[("request", "eyJhbGciOiJub25lIn0.e30.")]),
            "request_not_supported",
        ),
        (
            "request_uri inside the pushed request (RFC 9126 §2.1)",
            authz(&[("request_uri", "urn:ietf:params:oauth:request_uri:abc")]),
            "invalid_request",
        ),
        (
            "a malformed dpop_jkt",
            authz(&[("dpop_jkt", "short")]),
            "invalid_request",
        ),
    ];
    for (what, params, code) in cases {
        let a = par(&state, &id, &secret, &params).await;
        assert_eq!(a.status, 400, "{what}: {}", a.body);
        assert_eq!(a.location(), "", "{what}");
        assert_eq!(a.json()["error"], code, "{what}: {}", a.body);
        assert!(a.json()["error_description"].is_string(), "{what}");
        // And /authorize refuses the same request in the front channel.
        let mut q = params.clone();
        q.push(("client_id", &id));
        if what.starts_with("request_uri") {
            continue;
        }
        let f = get(&state, &format!("/authorize?{}", encode(&q)), "").await;
        match f.status {
            303 => assert_eq!(
                param(f.location(), "error").as_deref(),
                Some(code),
                "{what}"
            ),
            400 => assert_eq!(code, "invalid_request", "{what}: a page"),
            s => panic!("{what}: /authorize answered {s}"),
        }
    }
    // A client without authorization_code.
    let a = par(&state, &cc, &cc_secret, &authz(&[])).await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert_eq!(a.json()["error"], "unauthorized_client");
    // Nothing refused was stored: nothing to open.
    assert_eq!(
        get(
            &state,
            &front(&id, &format!("{PREFIX}{}", "A".repeat(43))),
            ""
        )
        .await
        .status,
        400
    );
}

#[tokio::test]
async fn an_oversized_par_body_is_refused() {
    let (state, _) = setup().await;
    let (id, secret) = web(&state, false, false).await;
    let big = "a".repeat(20 * 1024);
    let a = par(
        &state,
        &id,
        secret.as_deref().unwrap(),
        &authz(&[("state", &*big.leak())]),
    )
    .await;
    assert_eq!(a.status, 413, "{}", a.body);
    assert_eq!(a.json()["error"], "invalid_request");
}

#[tokio::test]
async fn a_request_uri_works_only_for_its_client() {
    let (state, _) = setup().await;
    let (a_id, a_secret) = web(&state, false, false).await;
    let (b_id, _) = web(&state, false, false).await;
    let uri = pushed(&state, &a_id, a_secret.as_deref().unwrap()).await;
    get(&state, &front(&b_id, &uri), "")
        .await
        .assert_page("another client's request_uri");
    // No client_id at all.
    get(
        &state,
        &format!("/authorize?{}", encode(&[("request_uri", &uri)])),
        "",
    )
    .await
    .assert_page("no client_id");
    // Still its own client's (the other client's attempt did not burn it).
    assert_eq!(get(&state, &front(&a_id, &uri), "").await.status, 200);
}

#[tokio::test]
async fn an_expired_request_uri_is_refused_and_an_opened_one_lasts_the_interaction() {
    for (state, clock) in setups().await {
        expiry_on(&state, &clock).await;
    }
}

async fn expiry_on(state: &AppState, clock: &gatehouse_origin::support::clock::SettableClock) {
    let state = state.clone();
    let (id, secret) = web(&state, false, false).await;
    let secret = secret.unwrap();
    // Never opened within expires_in: gone.
    let late = pushed(&state, &id, &secret).await;
    clock.advance_secs(PUSHED_REQUEST_TTL_SECS + 1);
    get(&state, &front(&id, &late), "")
        .await
        .assert_page("expired request_uri");
    // Opened in time: the login and consent round trip may take longer
    // than expires_in, but not longer than the interaction window.
    let uri = pushed(&state, &id, &secret).await;
    clock.advance_secs(PUSHED_REQUEST_TTL_SECS - 5);
    let (cookie, consent) = sign_in(&state, &front(&id, &uri)).await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    clock.advance_secs(INTERACTION_SECS - 10);
    assert_eq!(get(&state, &front(&id, &uri), &cookie).await.status, 200);
    clock.advance_secs(20);
    approve(&state, &cookie, &consent)
        .await
        .assert_page("approval after the interaction window");
    get(&state, &front(&id, &uri), &cookie)
        .await
        .assert_page("reload after the interaction window");
}

#[tokio::test]
async fn the_pushed_flow_issues_one_code_and_the_request_uri_is_then_spent() {
    let (state, _) = setup().await;
    let (id, secret) = web(&state, false, false).await;
    let secret = secret.unwrap();
    let uri = pushed(&state, &id, &secret).await;
    let (cookie, consent) = sign_in(&state, &front(&id, &uri)).await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    // A reload is fine before the code is issued.
    assert_eq!(get(&state, &front(&id, &uri), &cookie).await.status, 200);
    let done = approve(&state, &cookie, &consent).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let loc = done.location().to_owned();
    assert!(loc.starts_with(&format!("{CB}?")), "{loc}");
    assert_eq!(param(&loc, "state").as_deref(), Some("st-1"));
    let code = param(&loc, "code").unwrap();
    // Replays: approving again, reloading /authorize (consent now remembered).
    approve(&state, &cookie, &consent)
        .await
        .assert_page("a second approval");
    get(&state, &front(&id, &uri), &cookie)
        .await
        .assert_page("a replayed request_uri");
    // The code redeems with the pushed PKCE challenge and redirect_uri.
    let body = encode(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", CB),
        ("code_verifier", VERIFIER),
    ]);
    let (s, _, v) = send(
        &state,
        form_post("/token", Some(&basic(&id, &secret)), "")
            .body(Body::from(body))
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["scope"], "read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_approvals_of_one_pushed_request_issue_at_most_one_code() {
    for (state, _) in setups().await {
        race_on(state).await;
    }
}

async fn race_on(state: AppState) {
    let (id, secret) = web(&state, false, false).await;
    let uri = pushed(&state, &id, secret.as_deref().unwrap()).await;
    let (cookie, consent) = sign_in(&state, &front(&id, &uri)).await;
    let request = hidden(&consent.body, "request");
    let csrf = hidden(&consent.body, "csrf");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (state, cookie, request, csrf) =
            (state.clone(), cookie.clone(), request.clone(), csrf.clone());
        tasks.spawn(async move {
            post(
                &state,
                "/authorize/consent",
                &cookie,
                &[
                    ("request", &request),
                    ("csrf", &csrf),
                    ("decision", "approve"),
                ],
            )
            .await
        });
    }
    let answers = tasks.join_all().await;
    let codes = answers
        .iter()
        .filter(|a| a.status == 303 && param(a.location(), "code").is_some())
        .count();
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(codes, 1, "{statuses:?}");
    for a in answers.iter().filter(|a| a.status != 303) {
        a.assert_page("a losing approval");
    }
}

/// RFC 9126 §4: only the pushed parameters are used; a different
/// redirect_uri, scope or state in the front channel changes nothing.
#[tokio::test]
async fn front_channel_parameters_cannot_override_pushed_ones() {
    let (state, _) = setup().await;
    let (id, secret) = web(&state, false, false).await;
    let uri = pushed(&state, &id, secret.as_deref().unwrap()).await;
    let url = format!(
        "/authorize?{}",
        encode(&[
            ("client_id", &id),
            ("request_uri", &uri),
            ("redirect_uri", "https://evil.example/cb"),
            ("scope", "read write"),
            ("state", "attacker"),
            (
                "code_challenge",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
            ),
            ("response_type", "token"),
        ]),
    );
    let (cookie, consent) = sign_in(&state, &url).await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    assert!(consent.body.contains("<li>read</li>"), "{}", consent.body);
    assert!(
        !consent.body.contains("<li>write</li>"),
        "the pushed scope only"
    );
    let done = approve(&state, &cookie, &consent).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let loc = done.location();
    assert!(loc.starts_with(&format!("{CB}?")), "{loc}");
    assert_eq!(param(loc, "state").as_deref(), Some("st-1"), "{loc}");
    // The pushed challenge and redirect URI bind the code.
    let code = param(loc, "code").unwrap();
    let body = encode(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", CB),
        ("code_verifier", VERIFIER),
    ]);
    let (s, _, v) = send(
        &state,
        form_post("/token", Some(&basic(&id, secret.as_deref().unwrap())), "")
            .body(Body::from(body))
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["scope"], "read");
}

#[tokio::test]
async fn a_client_that_must_push_is_refused_in_the_front_channel() {
    let (state, _) = setup().await;
    let (id, secret) = web(&state, false, true).await;
    let mut q = authz(&[]);
    q.push(("client_id", &id));
    get(&state, &format!("/authorize?{}", encode(&q)), "")
        .await
        .assert_page("a required-PAR client in the front channel");
    // The login form's posted request is the front channel too.
    let uri = pushed(&state, &id, secret.as_deref().unwrap()).await;
    let page = get(&state, &front(&id, &uri), "").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf_cookie = page.cookie("__Host-gh_csrf").unwrap();
    post(
        &state,
        "/authorize/login",
        &csrf_cookie,
        &[
            ("request", &encode(&q)),
            ("csrf", &hidden(&page.body, "csrf")),
            ("username", "alice"),
            ("password", PASSWORD),
        ],
    )
    .await
    .assert_page("a front-channel request posted to the login form");
    // Pushed, it works.
    let (_, consent) = sign_in(&state, &front(&id, &uri)).await;
    assert_eq!(consent.status, 200, "{}", consent.body);
}

#[tokio::test]
async fn the_server_wide_setting_requires_every_client_to_push() {
    let (state, _) =
        sqlite_state_on_settable_clock(|c| c.require_pushed_authorization_requests = true).await;
    let (id, secret) = web(&state, false, false).await;
    let mut q = authz(&[]);
    q.push(("client_id", &id));
    get(&state, &format!("/authorize?{}", encode(&q)), "")
        .await
        .assert_page("front channel with GATEHOUSE_REQUIRE_PAR");
    let uri = pushed(&state, &id, secret.as_deref().unwrap()).await;
    assert_eq!(get(&state, &front(&id, &uri), "").await.status, 200);
    let (s, _, meta) = send(
        &state,
        Request::get("/.well-known/oauth-authorization-server")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(meta["require_pushed_authorization_requests"], true);
}

#[tokio::test]
async fn garbage_request_uris_are_an_error_page() {
    let (state, _) = setup().await;
    let (id, secret) = web(&state, false, false).await;
    let real = pushed(&state, &id, secret.as_deref().unwrap()).await;
    let rest = real.strip_prefix(PREFIX).unwrap();
    let long = format!("{PREFIX}{}", "A".repeat(8000));
    let cases = [
        format!("{PREFIX}{}", "A".repeat(43)),
        format!("{PREFIX}{}", &rest[..42]),
        format!("{PREFIX}{rest}A"),
        format!("{PREFIX}{rest}#"),
        format!("{} {rest}", PREFIX.trim_end_matches(':')),
        format!("URN:IETF:PARAMS:OAUTH:REQUEST_URI:{rest}"),
        format!("urn:ietf:params:oauth:request-uri:{rest}"),
        format!("https://app.example/{rest}"),
        rest.to_owned(),
        PREFIX.to_owned(),
        "urn:".to_owned(),
        long,
    ];
    for bad in &cases {
        get(&state, &front(&id, bad), "")
            .await
            .assert_page(&bad.chars().take(80).collect::<String>());
    }
    // Repeated request_uri: refused as malformed.
    let twice = format!(
        "/authorize?{}",
        encode(&[
            ("client_id", &id),
            ("request_uri", &real),
            ("request_uri", &real)
        ])
    );
    get(&state, &twice, "")
        .await
        .assert_page("a repeated request_uri");
    // The real one still works.
    assert_eq!(get(&state, &front(&id, &real), "").await.status, 200);
}

#[tokio::test]
async fn par_is_rate_limited_per_address_before_authentication() {
    let (state, _) = sqlite_state_on_settable_clock(|c| c.token_rate_per_minute = 2).await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let mut req = form_post("/par", Some(&basic("nobody", "wrong")), "")
            .body(Body::from(encode(&authz(&[]))))
            .unwrap();
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                [10, 0, 0, 9],
                40_000,
            ))));
        statuses.push(call(&state, req).await.status);
    }
    assert_eq!(statuses, vec![401, 401, 429]);
}

#[tokio::test]
async fn metadata_advertises_the_par_endpoint_truthfully() {
    let (state, _) = setup().await;
    let (s, _, meta) = send(
        &state,
        Request::get("/.well-known/oauth-authorization-server")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200);
    let iss = meta["issuer"].as_str().unwrap();
    assert_eq!(
        meta["pushed_authorization_request_endpoint"],
        format!("{iss}/par")
    );
    assert_eq!(meta["require_pushed_authorization_requests"], false);
    // RFC 9126 §5: request_uri_parameter_supported concerns RFC 9101
    // request URIs from elsewhere, which stay refused.
    assert_eq!(meta["request_uri_parameter_supported"], false);
    // A GET at /par is not a push.
    let a = get(&state, "/par", "").await;
    assert_eq!(a.status, 405, "{}", a.body);
}

fn dpop_proof(key: &gatehouse_common::testkit::signer::TestKey, htu: &str) -> String {
    key.sign(
        &serde_json::json!({"typ": "dpop+jwt", "alg": key.alg().name(), "jwk": key.public_jwk_json()}),
        &serde_json::json!({
            "jti": gatehouse_origin::support::secret::random_id().unwrap(),
            "htm": "POST",
            "htu": htu,
            "iat": now().0,
        }),
    )
}

/// RFC 9449 §10.1: a DPoP proof at `/par` binds the code to its key, as
/// `dpop_jkt` does; a `dpop_jkt` naming another key is refused, and so is a
/// proof made for another endpoint.
#[tokio::test]
async fn a_dpop_proof_at_par_binds_the_code_to_its_key() {
    use gatehouse_common::testkit::signer::TestKey;
    let (state, _) = setup().await;
    let (id, secret) = web(&state, false, false).await;
    let secret = secret.unwrap();
    let key = TestKey::es256("par-dpop");
    let other = TestKey::es256("par-other");
    let other_jkt = other.public_jwk(None).unwrap().thumbprint().to_owned();
    let push = |proof: String, extra: Vec<(&'static str, String)>| {
        let mut p: Vec<(&str, &str)> = authz(&[]);
        p.extend(extra.iter().map(|(k, v)| (*k, v.as_str())));
        let req = form_post("/par", Some(&basic(&id, &secret)), "")
            .header("dpop", proof)
            .body(Body::from(encode(&p)))
            .unwrap();
        call(&state, req)
    };
    let a = push(
        dpop_proof(&key, "http://127.0.0.1:8080/par"),
        vec![("dpop_jkt", other_jkt)],
    )
    .await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert_eq!(a.json()["error"], "invalid_dpop_proof");
    let a = push(dpop_proof(&key, "http://127.0.0.1:8080/token"), vec![]).await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert_eq!(a.json()["error"], "invalid_dpop_proof");
    let a = push(dpop_proof(&key, "http://127.0.0.1:8080/par"), vec![]).await;
    assert_eq!(a.status, 201, "{}", a.body);
    let uri = a.json()["request_uri"].as_str().unwrap().to_owned();
    let (cookie, consent) = sign_in(&state, &front(&id, &uri)).await;
    let done = approve(&state, &cookie, &consent).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let code = param(done.location(), "code").unwrap();
    let body = encode(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", CB),
        ("code_verifier", VERIFIER),
    ]);
    let redeem = |proof: Option<String>| {
        let mut b = form_post("/token", Some(&basic(&id, &secret)), "");
        if let Some(p) = proof {
            b = b.header("dpop", p);
        }
        send(&state, b.body(Body::from(body.clone())).unwrap())
    };
    // Without the key: refused (and the code is not burnt by it).
    let (s, _, v) = redeem(None).await;
    assert_eq!(s, 400, "{v}");
    let (s, _, v) = redeem(Some(dpop_proof(&key, "http://127.0.0.1:8080/token"))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["token_type"], "DPoP");
}
