//! The `/authorize` pages, cookies and redirects through the router
//! (`oneshot`): every value a page reflects is escaped (a script in a
//! client's name, a scope, the request's `state`, the original request
//! posted back in the login form); the session and CSRF cookies keep their
//! `__Host-` attributes, and a cookie sent twice, oversized or with
//! attribute-looking neighbours is refused or ignored as before; the redirect
//! back keeps the registered URI's own query (RFC 6749 §3.1.2) and adds
//! `code`/`error`, `state` and `iss` (RFC 9207) after it.

use crate::support::now;
use crate::support::{create_user, sqlite_state, AUD};
use axum::body::Body;
use axum::http::{HeaderMap, Request};
use gatehouse_origin::domain::clients::{self, NewClient};
use gatehouse_origin::domain::state::AppState;
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

/// RFC 7636 Appendix B.
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const PASSWORD: &str = "correct horse battery";
/// Markup that would run, or leave an attribute, if a page wrote it as is.
const XSS: &str = "\"'><script>alert(1)</script><img src=x onerror=alert(2)>";
/// A scope token may hold `<`, `>` and `/` (RFC 6749 §3.3: %x21 / %x23-5B / %x5D-7E).
const XSS_SCOPE: &str = "<img/src=x/onerror=alert(3)>";

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
    fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }
    /// The `name=value` of the cookie this answer sets.
    fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookies()
            .into_iter()
            .find(|l| l.starts_with(&format!("{name}=")))
            .map(|l| l.split(';').next().unwrap().to_owned())
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
        body: String::from_utf8(bytes.to_vec()).unwrap(),
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
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let req = Request::post(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", cookie)
        .body(Body::from(body))
        .unwrap();
    call(state, req).await
}

/// A client for `audience` with `scopes` that returns to `redirect_uri`.
async fn client(state: &AppState, name: &str, scopes: &[&str], redirect_uri: &str) -> String {
    let (c, _) = clients::create(
        &state.db,
        &NewClient {
            name: name.into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            audiences: vec![AUD.into()],
            grant_types: vec!["authorization_code".into()],
            redirect_uris: vec![redirect_uri.into()],
            ..NewClient::default()
        },
        now(),
    )
    .await
    .unwrap();
    c.client_id
}

/// The raw query of an authorization request.
fn query(client_id: &str, redirect_uri: &str, extra: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.extend_pairs([
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]);
    q.extend_pairs(extra);
    q.finish()
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

/// No tag or attribute of [`XSS`] or [`XSS_SCOPE`] reached `html`.
fn assert_inert(html: &str) {
    for raw in ["<script", "<img", "\"'>"] {
        assert!(!html.contains(raw), "{raw} reached the page: {html}");
    }
}

/// A signed-in browser's `Cookie` header (session and CSRF cookies) after
/// `GET /authorize?{query}` and a login as `user`.
async fn signed_in(state: &AppState, query: &str, user: &str) -> String {
    let page = get(state, &format!("/authorize?{query}"), "").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf_cookie = page.cookie("__Host-gh_csrf").expect("a CSRF cookie");
    let done = post(
        state,
        "/authorize/login",
        &csrf_cookie,
        &[
            ("request", &hidden(&page.body, "request")),
            ("csrf", &hidden(&page.body, "csrf")),
            ("username", user),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let session = done.cookie("__Host-gh_session").expect("a session cookie");
    format!("{csrf_cookie}; {session}")
}

#[tokio::test]
async fn every_reflected_value_on_every_page_is_escaped() {
    let state = sqlite_state().await;
    let _ = create_user(&state.db, "alice", now()).await;
    let cb = "https://app.example/cb";
    let id = client(&state, XSS, &["read", XSS_SCOPE], cb).await;
    let q = query(
        &id,
        cb,
        &[("scope", &format!("read {XSS_SCOPE}")), ("state", XSS)],
    );

    // The login page reflects the request; the consent page also the
    // client's name, the scopes and the audience.
    let login = get(&state, &format!("/authorize?{q}"), "").await;
    assert_eq!(login.status, 200);
    assert_inert(&login.body);
    assert_eq!(hidden(&login.body, "request"), q);
    let cookies = signed_in(&state, &q, "alice").await;
    let consent = get(&state, &format!("/authorize?{q}"), &cookies).await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    assert_inert(&consent.body);
    assert!(
        consent.body.contains(
            "<strong>&quot;'&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;</strong>"
        ),
        "{}",
        consent.body
    );
    assert!(
        consent
            .body
            .contains("<li>&lt;img/src=x/onerror=alert(3)&gt;</li>"),
        "{}",
        consent.body
    );

    // The request posted back in the login form is reflected as sent, not
    // as a browser would have encoded it: a raw `state` full of markup.
    let raw = format!("{}&state={XSS}", query(&id, cb, &[]));
    let csrf_cookie = login.cookie("__Host-gh_csrf").unwrap();
    let wrong = post(
        &state,
        "/authorize/login",
        &csrf_cookie,
        &[
            ("request", &raw),
            ("csrf", &hidden(&login.body, "csrf")),
            ("username", XSS),
            ("password", "wrong"),
        ],
    )
    .await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert_inert(&wrong.body);
    assert_eq!(hidden(&wrong.body, "request"), raw);
    assert!(wrong.body.contains("Wrong username or password."));

    // The error page, for a request that cannot go back to the client.
    let bad = get(
        &state,
        &format!(
            "/authorize?{}",
            query(&id, "https://elsewhere.example/cb", &[("state", XSS)])
        ),
        "",
    )
    .await;
    assert_eq!(bad.status, 400);
    assert_inert(&bad.body);

    // An error sent back to the client: its description and the state are
    // query parameters, encoded, not markup or new parameters.
    let refused = get(
        &state,
        &format!(
            "/authorize?{}",
            query(&id, cb, &[("state", XSS), ("prompt", "select_account")])
        ),
        "",
    )
    .await;
    assert_eq!(refused.status, 303);
    let loc = url::Url::parse(refused.location()).unwrap();
    let params: Vec<(String, String)> = loc.query_pairs().into_owned().collect();
    assert_eq!(
        params,
        [
            ("error".into(), "invalid_request".into()),
            (
                "error_description".into(),
                "prompt=select_account is not supported".into()
            ),
            ("state".into(), XSS.into()),
            ("iss".into(), state.config.issuer.clone()),
        ]
    );
    assert!(
        !refused.location().contains(['<', '>', '"', '\'', ' ']),
        "{}",
        refused.location()
    );
}

#[tokio::test]
async fn the_cookies_keep_their_host_prefix_attributes() {
    let state = sqlite_state().await;
    let _ = create_user(&state.db, "alice", now()).await;
    let cb = "https://app.example/cb";
    let id = client(&state, "web", &["read"], cb).await;
    let q = query(&id, cb, &[]);
    let page = get(&state, &format!("/authorize?{q}"), "").await;
    let [csrf] = page.set_cookies().try_into().unwrap();
    let done = post(
        &state,
        "/authorize/login",
        &page.cookie("__Host-gh_csrf").unwrap(),
        &[
            ("request", &q),
            ("csrf", &hidden(&page.body, "csrf")),
            ("username", "alice"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(done.location(), format!("/authorize?{q}"));
    let [session] = done.set_cookies().try_into().unwrap();
    for (line, name) in [(csrf, "__Host-gh_csrf"), (session, "__Host-gh_session")] {
        let (pair, attributes) = line.split_once("; ").unwrap();
        let (n, v) = pair.split_once('=').unwrap();
        assert_eq!((n, v.len()), (name, 43), "{line}");
        assert_eq!(
            attributes, "HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=28800",
            "{line}"
        );
    }
}

#[tokio::test]
async fn odd_duplicate_and_oversized_cookies_are_refused_or_ignored() {
    let state = sqlite_state().await;
    let _ = create_user(&state.db, "alice", now()).await;
    let cb = "https://app.example/cb";
    let id = client(&state, "web", &["read"], cb).await;
    let q = query(&id, cb, &[]);
    let url = format!("/authorize?{q}");
    let cookies = signed_in(&state, &q, "alice").await;
    let (csrf, session) = cookies.split_once("; ").unwrap();
    assert_eq!(get(&state, &url, &cookies).await.status, 200, "consent");

    // Sent twice (one planted), in one line or in two Cookie headers: refused.
    let csrf_value = csrf.split_once('=').unwrap().1;
    for twice in [
        format!("{session}; __Host-gh_session=planted"),
        format!("__Host-gh_session=planted; {session}"),
        format!("{csrf}; {session}; {csrf}"),
        format!("{session}; __Host-gh_csrf={csrf_value}; __Host-gh_csrf=x"),
    ] {
        let a = get(&state, &url, &twice).await;
        assert_eq!(a.status, 400, "{twice}");
        assert!(a.body.contains("sent twice"), "{}", a.body);
    }
    let req = Request::get(&url)
        .header("cookie", session)
        .header("cookie", "__Host-gh_session=planted")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&state, req).await.status, 400, "two Cookie headers");

    // Attribute-looking pairs and other names beside them change nothing.
    let odd = format!("Path=/; {session}; Domain=evil.example; Secure; HttpOnly; gh_session=x");
    let a = get(&state, &url, &odd).await;
    assert_eq!(a.status, 200);
    assert!(
        a.body.contains("Allow access?"),
        "still signed in: {}",
        a.body
    );

    // A session cookie that is not one (oversized, quoted, empty): signed out.
    for not_a_session in [
        format!("__Host-gh_session={}", "A".repeat(4000)),
        format!(
            "__Host-gh_session=\"{}\"",
            session.split_once('=').unwrap().1
        ),
        "__Host-gh_session=".to_owned(),
    ] {
        let a = get(&state, &url, &not_a_session).await;
        assert_eq!(a.status, 200, "{not_a_session}");
        assert!(a.body.contains("Sign in"), "{}", a.body);
    }

    // An oversized or malformed CSRF cookie is replaced, not used.
    for bad in [
        format!("__Host-gh_csrf={}", "A".repeat(4000)),
        "__Host-gh_csrf=short".to_owned(),
    ] {
        let a = get(&state, &url, &bad).await;
        assert_eq!(a.status, 200);
        let fresh = a.cookie("__Host-gh_csrf").expect("a fresh CSRF cookie");
        assert_eq!(fresh.len(), "__Host-gh_csrf=".len() + 43, "{fresh}");
        // And a token made for it does not verify with the bad cookie.
        let refused = post(
            &state,
            "/authorize/login",
            &bad,
            &[
                ("request", &q),
                ("csrf", &hidden(&a.body, "csrf")),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
        assert_eq!(refused.status, 400, "{}", refused.body);
    }
}

/// RFC 6749 §3.1.2: the redirection endpoint URI "MAY include an
/// application/x-www-form-urlencoded formatted ... query component, which
/// MUST be retained when adding additional query parameters", and "MUST NOT
/// include a fragment component".
#[tokio::test]
async fn a_redirect_uri_keeps_its_query_and_may_not_have_a_fragment() {
    let state = sqlite_state().await;
    let _ = create_user(&state.db, "alice", now()).await;
    let iss = form_urlencoded::byte_serialize(state.config.issuer.as_bytes()).collect::<String>();
    for cb in [
        "https://app.example/cb?x=1&y=a%20b",
        "https://app.example/cb?",
        "http://127.0.0.1:8070/cb?next=%2Fhome",
    ] {
        let id = client(&state, "web", &["read"], cb).await;
        let q = query(&id, cb, &[("state", "s t")]);
        let url = format!("/authorize?{q}");
        let cookies = signed_in(&state, &q, "alice").await;
        let page = get(&state, &url, &cookies).await;
        let csrf = hidden(&page.body, "csrf");
        let decide = |decision| {
            [
                ("request", q.as_str()),
                ("csrf", csrf.as_str()),
                ("decision", decision),
            ]
        };
        let sep = if cb.ends_with('?') { "" } else { "&" };
        let denied = post(&state, "/authorize/consent", &cookies, &decide("deny")).await;
        assert_eq!(
            denied.location(),
            format!(
                "{cb}{sep}error=access_denied&error_description=the+user+denied+the+request&state=s+t&iss={iss}"
            )
        );
        let approved = post(&state, "/authorize/consent", &cookies, &decide("approve")).await;
        let loc = approved.location();
        let code = loc
            .strip_prefix(&format!("{cb}{sep}code="))
            .unwrap_or_else(|| panic!("{loc}"));
        assert!(code.ends_with(&format!("&state=s+t&iss={iss}")), "{loc}");
        // An error before the user is asked goes back the same way.
        let refused = get(&state, &format!("{url}&prompt=select_account"), "").await;
        assert!(
            refused
                .location()
                .starts_with(&format!("{cb}{sep}error=invalid_request&")),
            "{}",
            refused.location()
        );
    }

    // A fragment is refused at registration, and a redirect_uri with one
    // is not the registered URI: an error page, no redirect.
    let refused = clients::create(
        &state.db,
        &NewClient {
            name: "frag".into(),
            scopes: vec!["read".into()],
            audiences: vec![AUD.into()],
            grant_types: vec!["authorization_code".into()],
            redirect_uris: vec!["https://app.example/cb#f".into()],
            ..NewClient::default()
        },
        now(),
    )
    .await;
    assert!(refused.is_err());
    let id = client(&state, "web", &["read"], "https://app.example/cb").await;
    for with_fragment in ["https://app.example/cb#f", "https://app.example/cb#"] {
        let a = get(
            &state,
            &format!("/authorize?{}", query(&id, with_fragment, &[])),
            "",
        )
        .await;
        assert_eq!((a.status, a.location()), (400, ""), "{with_fragment}");
    }
}

/// Review of issue 18: a `#`, quotes, angle brackets or a raw space put in
/// the login form's `request` field (the form is the user's to edit) come
/// back percent-encoded in the `Location` to `/authorize`, which stays a
/// relative URL on this site with no fragment.
#[tokio::test]
async fn a_login_request_field_cannot_gain_a_fragment_or_leave_the_site() {
    let state = sqlite_state().await;
    let _ = create_user(&state.db, "alice", now()).await;
    let cb = "https://app.example/cb";
    let id = client(&state, "web", &["read"], cb).await;
    let q = query(&id, cb, &[]);
    let page = get(&state, &format!("/authorize?{q}"), "").await;
    let smuggled = format!("{q}&state=x#@evil.example/\"<> y");
    let done = post(
        &state,
        "/authorize/login",
        &page.cookie("__Host-gh_csrf").unwrap(),
        &[
            ("request", &smuggled),
            ("csrf", &hidden(&page.body, "csrf")),
            ("username", "alice"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let location = done.location();
    assert!(location.starts_with("/authorize?"), "{location}");
    assert!(!location.contains(['#', '"', '<', '>', ' ']), "{location}");
    assert_eq!(
        location,
        format!("/authorize?{q}&state=x%23@evil.example/%22%3C%3E%20y")
    );
}
