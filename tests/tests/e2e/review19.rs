//! An attacker's review of issue 19 (OpenID Connect core, pushed
//! authorization requests) through the real origin binary: a pushed
//! `prompt=login` takes exactly one login (no loop) and cannot be skipped
//! by posting the login page's form to the consent endpoint; a silent
//! re-authentication (`prompt=none`) for one user is `login_required` in a
//! browser signed in as another (`id_token_hint`). docs/security.md,
//! "Review of issue 19 (OIDC core, PAR)".

use crate::harness::login::{create_user, param, CB, CHALLENGE, PASSWORD, VERIFIER};
use crate::harness::{http, jwt_claims, Origin};
use serde_json::Value;

/// A browser: cookies by name.
#[derive(Default)]
struct Browser {
    jar: Vec<(String, String)>,
}

struct Page {
    status: u16,
    location: String,
    body: String,
}

impl Page {
    fn is_login(&self) -> bool {
        self.status == 200 && self.body.contains("/authorize/login")
    }
    fn is_consent(&self) -> bool {
        self.status == 200 && self.body.contains("/authorize/consent")
    }
    fn hidden(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&marker).expect("hidden field") + marker.len();
        let end = start + self.body[start..].find('"').expect("closing quote");
        self.body[start..end]
            .replace("&amp;", "&")
            .replace("&quot;", "\"")
    }
}

impl Browser {
    fn absorb(&mut self, r: reqwest::blocking::Response) -> Page {
        for v in r.headers().get_all("set-cookie") {
            let pair = v.to_str().expect("ascii").split(';').next().unwrap_or("");
            let (k, val) = pair.split_once('=').expect("a cookie");
            self.jar.retain(|(n, _)| n != k);
            self.jar.push((k.to_owned(), val.to_owned()));
        }
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get("location")
            .map(|v| v.to_str().expect("ascii").to_owned())
            .unwrap_or_default();
        Page {
            status,
            location,
            body: r.text().unwrap_or_default(),
        }
    }
    fn cookie(&self) -> String {
        self.jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
    fn get(&mut self, url: &str) -> Page {
        let r = http()
            .get(url)
            .header("cookie", self.cookie())
            .send()
            .expect("GET");
        self.absorb(r)
    }
    fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Page {
        let r = http()
            .post(url)
            .header("cookie", self.cookie())
            .form(form)
            .send()
            .expect("POST");
        self.absorb(r)
    }
    fn log_in(&mut self, o: &Origin, page: &Page, user: &str) -> Page {
        assert!(page.is_login(), "a login page: {}", page.body);
        self.post(
            &format!("{}/authorize/login", o.url),
            &[
                ("request", &page.hidden("request")),
                ("csrf", &page.hidden("csrf")),
                ("username", user),
                ("password", PASSWORD),
            ],
        )
    }
    fn approve(&mut self, o: &Origin, page: &Page) -> Page {
        self.post(
            &format!("{}/authorize/consent", o.url),
            &[
                ("request", &page.hidden("request")),
                ("csrf", &page.hidden("csrf")),
                ("decision", "approve"),
            ],
        )
    }
    /// From `/authorize?…` to the redirect to the client, as `user`.
    fn code(&mut self, o: &Origin, url: &str, user: &str) -> Page {
        let mut p = self.get(url);
        if p.is_login() {
            let back = self.log_in(o, &p, user);
            assert_eq!(back.status, 303, "{}", back.body);
            p = self.get(&format!("{}{}", o.url, back.location));
        }
        if p.is_consent() {
            p = self.approve(o, &p);
        }
        p
    }
}

fn authz<'a>(client_id: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut p = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", CB),
        ("scope", "openid read"),
        ("state", "st"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    p.extend_from_slice(extra);
    p
}

fn front(o: &Origin, params: &[(&str, &str)]) -> String {
    reqwest::Url::parse_with_params(&format!("{}/authorize", o.url), params)
        .expect("URL")
        .to_string()
}

fn push(o: &Origin, id: &str, secret: &str, params: &[(&str, &str)]) -> String {
    let r = http()
        .post(format!("{}/par", o.url))
        .basic_auth(id, Some(secret))
        .form(params)
        .send()
        .expect("POST /par");
    assert_eq!(r.status().as_u16(), 201);
    let v: Value = r.json().expect("JSON");
    v["request_uri"].as_str().expect("request_uri").to_owned()
}

fn redeem(o: &Origin, id: &str, secret: &str, code: &str) -> Value {
    let r = http()
        .post(format!("{}/token", o.url))
        .basic_auth(id, Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CB),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .expect("POST /token");
    assert_eq!(r.status().as_u16(), 200);
    r.json().expect("JSON")
}

#[test]
fn pushed_prompt_login_and_id_token_hint_through_the_binary() {
    let o = Origin::start();
    let alice = create_user(&o, "alice");
    let _ = create_user(&o, "bob");
    let args = [
        "--grant",
        "authorization_code",
        "--redirect-uri",
        CB,
        "--require-par",
    ];
    let c = o.create_client("rp", "openid read", "https://api.example", &args);
    let (id, secret) = (c.id.as_str(), c.secret.as_deref().expect("confidential"));

    // Alice signs in and approves once (consent remembered).
    let mut b = Browser::default();
    let uri = push(&o, id, secret, &authz(id, &[]));
    let done = b.code(
        &o,
        &front(&o, &[("client_id", id), ("request_uri", &uri)]),
        "alice",
    );
    let code = param(&done.location, "code").expect("a code");
    let alice_hint = redeem(&o, id, secret, &code)["id_token"]
        .as_str()
        .expect("id_token")
        .to_owned();
    std::thread::sleep(std::time::Duration::from_secs(7));

    // A pushed prompt=login: posting the login page's form to the consent
    // endpoint does not skip the login (was: a code on the old session).
    let uri = push(&o, id, secret, &authz(id, &[("prompt", "login")]));
    let url = front(&o, &[("client_id", id), ("request_uri", &uri)]);
    let page = b.get(&url);
    assert!(page.is_login(), "{}", page.body);
    let skipped = b.approve(&o, &page);
    assert_eq!(skipped.status, 400, "no code: {}", skipped.location);
    // One login satisfies it (was: the login page again, forever).
    let back = b.log_in(&o, &page, "alice");
    assert_eq!(back.status, 303, "{}", back.body);
    let after = b.get(&format!("{}{}", o.url, back.location));
    let code = param(&after.location, "code").unwrap_or_else(|| panic!("a code: {}", after.body));
    let t = redeem(&o, id, secret, &code);
    let claims = jwt_claims(t["id_token"].as_str().expect("id_token"));
    let first = jwt_claims(&alice_hint);
    assert!(
        claims["auth_time"].as_i64() > first["auth_time"].as_i64(),
        "auth_time is the new login"
    );

    // Bob's browser: a silent request hinted for alice is login_required.
    let mut bob = Browser::default();
    let uri = push(&o, id, secret, &authz(id, &[]));
    let done = bob.code(
        &o,
        &front(&o, &[("client_id", id), ("request_uri", &uri)]),
        "bob",
    );
    assert!(param(&done.location, "code").is_some(), "{}", done.body);
    let uri = push(
        &o,
        id,
        secret,
        &authz(id, &[("prompt", "none"), ("id_token_hint", &alice_hint)]),
    );
    let silent = bob.get(&front(&o, &[("client_id", id), ("request_uri", &uri)]));
    assert_eq!(silent.status, 303);
    assert_eq!(
        param(&silent.location, "error").as_deref(),
        Some("login_required"),
        "{}",
        silent.location
    );
    assert!(param(&silent.location, "code").is_none());
    assert_eq!(first["sub"], alice.as_str());
}
