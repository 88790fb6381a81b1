//! Logging a user in through the origin's own pages: the login and consent
//! forms, PKCE, cookies — shared by every module that needs a user's grant.

use super::{http, origin_binary, Origin};
use serde_json::Value;
use std::process::Command;

pub(crate) const CB: &str = "https://app.example/cb";
pub(crate) const PASSWORD: &str = "correct horse battery staple";
/// RFC 7636 Appendix B.
pub(crate) const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub(crate) const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// Creates a user through the origin CLI (password [`PASSWORD`]); returns
/// its `user_id` (the `sub` of its tokens).
pub(crate) fn create_user(o: &Origin, name: &str) -> String {
    let out = Command::new(origin_binary())
        .args(["user", "create", name])
        .env("GATEHOUSE_ISSUER", &o.url)
        .env("GATEHOUSE_DATABASE_URL", &o.database_url)
        .env("GATEHOUSE_DATA_DIR", o.data.path())
        .env("GATEHOUSE_USER_PASSWORD", PASSWORD)
        .env_remove("GATEHOUSE_CONFIG")
        .output()
        .expect("run gatehouse-origin user create");
    assert!(
        out.status.success(),
        "user create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let user: Value = serde_json::from_slice(&out.stdout).expect("user create prints JSON");
    user["user_id"].as_str().expect("user_id").to_owned()
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).expect("hidden field") + marker.len();
    let end = start + html[start..].find('"').expect("closing quote");
    html[start..end]
        .replace("&amp;", "&")
        .replace("&quot;", "\"")
}

pub(crate) fn param(location: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(location)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `name=value` pairs from Set-Cookie headers, joined for a Cookie header.
fn cookies(resp: &reqwest::blocking::Response, jar: &mut Vec<String>) {
    for v in resp.headers().get_all("set-cookie") {
        let pair = v
            .to_str()
            .expect("ascii cookie")
            .split(';')
            .next()
            .unwrap_or_default()
            .to_owned();
        let name = pair.split('=').next().unwrap_or_default().to_owned();
        jar.retain(|c| !c.starts_with(&format!("{name}=")));
        jar.push(pair);
    }
}

/// Logs in as `user` and consents; returns the authorization code.
pub(crate) fn authorize(origin: &str, client_id: &str, user: &str) -> String {
    authorize_at(origin, origin, client_id, user)
}

/// [`authorize`] at `origin`, whose issuer identifier is `issuer` (replicas
/// share one issuer).
pub(crate) fn authorize_at(origin: &str, issuer: &str, client_id: &str, user: &str) -> String {
    login_at(origin, issuer, client_id, user).0
}

/// `/authorize` at `origin` for `client_id`: code flow with PKCE ([`CHALLENGE`]),
/// scope `read`, redirect URI [`CB`].
pub(crate) fn authorize_url(origin: &str, client_id: &str) -> reqwest::Url {
    authorize_url_with(origin, client_id, &[])
}

/// [`authorize_url`] with `extra` parameters added, or replacing the
/// defaults of the same name (e.g. `scope`).
pub(crate) fn authorize_url_with(
    origin: &str,
    client_id: &str,
    extra: &[(&str, &str)],
) -> reqwest::Url {
    let mut params: Vec<(&str, &str)> = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", CB),
        ("scope", "read"),
        ("state", "e2e-state"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]
    .into_iter()
    .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
    .collect();
    params.extend_from_slice(extra);
    reqwest::Url::parse_with_params(&format!("{origin}/authorize"), &params).expect("authorize URL")
}

/// [`login_at`] asking for `scope` (e.g. `openid profile email`).
pub(crate) fn login_scoped(
    origin: &str,
    issuer: &str,
    client_id: &str,
    user: &str,
    scope: &str,
) -> (String, Vec<String>) {
    login_with(origin, issuer, client_id, user, &[("scope", scope)])
}

/// [`authorize_at`], also returning the browser's cookies (its session).
pub(crate) fn login_at(
    origin: &str,
    issuer: &str,
    client_id: &str,
    user: &str,
) -> (String, Vec<String>) {
    login_with(origin, issuer, client_id, user, &[])
}

/// [`login_at`] with `extra` authorization request parameters (see
/// [`authorize_url_with`]).
pub(crate) fn login_with(
    origin: &str,
    issuer: &str,
    client_id: &str,
    user: &str,
    extra: &[(&str, &str)],
) -> (String, Vec<String>) {
    login_from(
        origin,
        issuer,
        authorize_url_with(origin, client_id, extra),
        user,
    )
}

/// Logs in as `user` and consents through the origin's pages, starting at
/// the authorization request `url` (state `e2e-state`, redirect URI [`CB`]),
/// e.g. a pushed request's `/authorize?client_id=…&request_uri=…`; returns
/// the code and the browser's cookies.
pub(crate) fn login_from(
    origin: &str,
    issuer: &str,
    url: reqwest::Url,
    user: &str,
) -> (String, Vec<String>) {
    let mut jar = Vec::new();
    let page = http().get(url).send().expect("GET /authorize");
    assert_eq!(page.status(), 200);
    cookies(&page, &mut jar);
    let html = page.text().expect("login page");
    let login = http()
        .post(format!("{origin}/authorize/login"))
        .header("cookie", jar.join("; "))
        .form(&[
            ("request", hidden(&html, "request").as_str()),
            ("csrf", hidden(&html, "csrf").as_str()),
            ("username", user),
            ("password", PASSWORD),
        ])
        .send()
        .expect("POST /authorize/login");
    assert_eq!(login.status(), 303);
    cookies(&login, &mut jar);
    let back = login.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let consent = http()
        .get(format!("{origin}{back}"))
        .header("cookie", jar.join("; "))
        .send()
        .expect("consent page");
    // Consent the user gave this client before is remembered: straight back.
    let loc = if consent.status() == 303 {
        consent.headers()["location"]
            .to_str()
            .expect("location")
            .to_owned()
    } else {
        assert_eq!(consent.status(), 200);
        let html = consent.text().expect("consent html");
        let done = http()
            .post(format!("{origin}/authorize/consent"))
            .header("cookie", jar.join("; "))
            .form(&[
                ("request", hidden(&html, "request").as_str()),
                ("csrf", hidden(&html, "csrf").as_str()),
                ("decision", "approve"),
            ])
            .send()
            .expect("POST /authorize/consent");
        assert_eq!(done.status(), 303);
        done.headers()["location"]
            .to_str()
            .expect("location")
            .to_owned()
    };
    assert!(loc.starts_with(CB), "{loc}");
    assert_eq!(param(&loc, "state").as_deref(), Some("e2e-state"));
    assert_eq!(param(&loc, "iss").as_deref(), Some(issuer));
    (param(&loc, "code").expect("code"), jar)
}
