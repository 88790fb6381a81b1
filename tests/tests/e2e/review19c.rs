//! Review of issue 19's logout through the real binaries: a second user
//! signing in in a browser where the first is signed in (`prompt=login`)
//! replaces the first user's session cookie; that session must end there
//! (no logout in this browser could reach it again), so within a second
//! the edge refuses the first user's access token and their refresh token
//! is dead, while the second user's grant works.

use crate::harness::login::{
    authorize_url_with, create_user, login_with, param, CB, PASSWORD, VERIFIER,
};
use crate::harness::{http, web_client_args, Origin, Stack};
use serde_json::Value;
use std::time::{Duration, Instant};

fn token(origin: &Origin, id: &str, secret: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = http()
        .post(format!("{}/token", origin.url))
        .basic_auth(id, Some(secret))
        .form(form)
        .send()
        .expect("POST /token");
    let s = r.status().as_u16();
    (s, r.json().unwrap_or(Value::Null))
}

fn redeem(origin: &Origin, id: &str, secret: &str, code: &str) -> Value {
    let (s, tok) = token(
        origin,
        id,
        secret,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CB),
            ("code_verifier", VERIFIER),
        ],
    );
    assert_eq!(s, 200, "{tok}");
    tok
}

fn edge_status(stack: &Stack, at: &str) -> u16 {
    http()
        .get(format!("{}/orders/1", stack.edge.url))
        .header("authorization", format!("Bearer {at}"))
        .send()
        .expect("edge answers")
        .status()
        .as_u16()
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).expect("hidden field") + marker.len();
    let end = start + html[start..].find('"').expect("closing quote");
    html[start..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// Replaces the cookies named in `resp`'s Set-Cookie headers in `jar`.
fn keep_cookies(resp: &reqwest::blocking::Response, jar: &mut Vec<String>) {
    for v in resp.headers().get_all("set-cookie") {
        let pair = v
            .to_str()
            .expect("ascii")
            .split(';')
            .next()
            .unwrap_or_default()
            .to_owned();
        let name = pair.split('=').next().unwrap_or_default().to_owned();
        jar.retain(|c| !c.starts_with(&format!("{name}=")));
        if !pair.ends_with('=') {
            jar.push(pair);
        }
    }
}

#[test]
fn a_second_user_signing_in_ends_the_first_users_session_at_the_edge() {
    let stack = Stack::start_linked(&[], &[]);
    let origin = &stack.origin;
    create_user(origin, "alice");
    create_user(origin, "bob");
    let web = origin.create_client("rp", "openid read", &stack.edge.url, &web_client_args(CB));
    let secret = web.secret.clone().expect("confidential");

    let (code, mut jar) = login_with(
        &origin.url,
        &origin.url,
        &web.id,
        "alice",
        &[("scope", "openid read")],
    );
    let alice = redeem(origin, &web.id, &secret, &code);
    let alice_at = alice["access_token"].as_str().expect("access_token");
    assert_eq!(edge_status(&stack, alice_at), 200);

    // bob signs in in the same browser: prompt=login shows the login page.
    let page = http()
        .get(authorize_url_with(
            &origin.url,
            &web.id,
            &[("scope", "openid read"), ("prompt", "login")],
        ))
        .header("cookie", jar.join("; "))
        .send()
        .expect("GET /authorize");
    assert_eq!(page.status(), 200);
    keep_cookies(&page, &mut jar);
    let html = page.text().expect("login page");
    let login = http()
        .post(format!("{}/authorize/login", origin.url))
        .header("cookie", jar.join("; "))
        .form(&[
            ("request", hidden(&html, "request").as_str()),
            ("csrf", hidden(&html, "csrf").as_str()),
            ("username", "bob"),
            ("password", PASSWORD),
        ])
        .send()
        .expect("POST /authorize/login");
    assert_eq!(login.status(), 303);
    keep_cookies(&login, &mut jar);
    let signed_in = Instant::now();

    // Within a second the edge refuses alice's token; her refresh is dead.
    loop {
        let s = edge_status(&stack, alice_at);
        if s == 401 {
            break;
        }
        assert_eq!(s, 200, "unexpected edge status");
        assert!(
            signed_in.elapsed() < Duration::from_secs(1),
            "alice's token outlived her replaced session; origin log:\n{}",
            origin.proc.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let (s, err) = token(
        origin,
        &web.id,
        &secret,
        &[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                alice["refresh_token"].as_str().expect("rt"),
            ),
        ],
    );
    assert_eq!(
        (s, err["error"].as_str()),
        (400, Some("invalid_grant")),
        "{err}"
    );

    // bob's session approves on (consent page, then a code that works).
    let back = login.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let consent = http()
        .get(format!("{}{back}", origin.url))
        .header("cookie", jar.join("; "))
        .send()
        .expect("consent page");
    assert_eq!(consent.status(), 200);
    let html = consent.text().expect("consent html");
    let done = http()
        .post(format!("{}/authorize/consent", origin.url))
        .header("cookie", jar.join("; "))
        .form(&[
            ("request", hidden(&html, "request").as_str()),
            ("csrf", hidden(&html, "csrf").as_str()),
            ("decision", "approve"),
        ])
        .send()
        .expect("POST /authorize/consent");
    assert_eq!(done.status(), 303);
    let loc = done.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let bob = redeem(
        origin,
        &web.id,
        &secret,
        &param(&loc, "code").expect("code"),
    );
    assert_eq!(
        edge_status(&stack, bob["access_token"].as_str().expect("at")),
        200
    );
}
