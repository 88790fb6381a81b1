//! The user-facing grants end to end: a user logs in by posting the origin's
//! login and consent forms, the code is exchanged (PKCE S256), the access
//! token works at the edge; presenting a rotated refresh token revokes the
//! family, and through `sid` the edge then refuses its access tokens.

use crate::harness::{http, origin_binary, Origin, Stack};
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

pub(crate) const CB: &str = "https://app.example/cb";
const PASSWORD: &str = "correct horse battery staple";
/// RFC 7636 Appendix B.
pub(crate) const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

pub(crate) fn create_user(o: &Origin, name: &str) {
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
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).expect("hidden field") + marker.len();
    let end = start + html[start..].find('"').expect("closing quote");
    html[start..end]
        .replace("&amp;", "&")
        .replace("&quot;", "\"")
}

fn param(location: &str, name: &str) -> Option<String> {
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
    let url = reqwest::Url::parse_with_params(
        &format!("{origin}/authorize"),
        &[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", CB),
            ("scope", "read"),
            ("state", "e2e-state"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
    )
    .expect("authorize URL");
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
    param(&loc, "code").expect("code")
}

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
    create_user(&stack.origin, "alice");
    let client = stack.origin.create_client(
        "web",
        "read",
        &stack.edge.url,
        &[
            "--grant",
            "authorization_code",
            "--grant",
            "refresh_token",
            "--redirect-uri",
            CB,
        ],
    );
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
