//! Pushed authorization requests (RFC 9126) through the real origin
//! binary: discovery names `/par`; a confidential client pushes its
//! request, the browser goes to `/authorize?client_id=…&request_uri=…`,
//! logs in and consents on the origin's pages; the code redeems at `/token`
//! with the pushed PKCE challenge; the `request_uri` is then spent. A
//! client registered with `--require-par` is refused in the front channel.

use crate::harness::login::{authorize_url, create_user, login_from, CB, CHALLENGE, VERIFIER};
use crate::harness::{http, web_client_args, Origin};
use serde_json::Value;

fn push(o: &Origin, id: &str, secret: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = http()
        .post(format!("{}/par", o.url))
        .basic_auth(id, Some(secret))
        .form(form)
        .send()
        .expect("POST /par");
    let s = r.status().as_u16();
    (s, r.json().unwrap_or(Value::Null))
}

const PUSHED: [(&str, &str); 6] = [
    ("response_type", "code"),
    ("redirect_uri", CB),
    ("scope", "read"),
    ("state", "e2e-state"),
    ("code_challenge", CHALLENGE),
    ("code_challenge_method", "S256"),
];

#[test]
fn par_then_login_consent_code_and_token_through_the_binary() {
    let o = Origin::start();
    let _ = create_user(&o, "alice");
    let meta: Value = http()
        .get(format!("{}/.well-known/oauth-authorization-server", o.url))
        .send()
        .expect("metadata")
        .json()
        .expect("JSON");
    assert_eq!(
        meta["pushed_authorization_request_endpoint"],
        format!("{}/par", o.url)
    );
    let mut args = web_client_args(CB);
    args.push("--require-par");
    let client = o.create_client("web", "read", "https://api.example", &args);
    let secret = client.secret.clone().expect("confidential");

    // The front channel is closed to this client.
    let front = http()
        .get(authorize_url(&o.url, &client.id))
        .send()
        .expect("GET /authorize");
    assert_eq!(front.status(), 400);
    assert!(front.headers().get("location").is_none());

    let (s, pushed) = push(&o, &client.id, &secret, &PUSHED);
    assert_eq!(s, 201, "{pushed}");
    assert_eq!(pushed["expires_in"], 60);
    let request_uri = pushed["request_uri"].as_str().expect("request_uri");
    assert!(request_uri.starts_with("urn:ietf:params:oauth:request_uri:"));
    let url = reqwest::Url::parse_with_params(
        &format!("{}/authorize", o.url),
        &[
            ("client_id", client.id.as_str()),
            ("request_uri", request_uri),
        ],
    )
    .expect("URL");
    let (code, jar) = login_from(&o.url, &o.url, url.clone(), "alice");
    let t: Value = {
        let r = http()
            .post(format!("{}/token", o.url))
            .basic_auth(&client.id, Some(&secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", CB),
                ("code_verifier", VERIFIER),
            ])
            .send()
            .expect("POST /token");
        assert_eq!(r.status(), 200);
        r.json().expect("token JSON")
    };
    assert_eq!(t["scope"], "read");
    assert!(t["access_token"].is_string() && t["refresh_token"].is_string());

    // Spent: the same request_uri, in the same browser, is an error page.
    let again = http()
        .get(url)
        .header("cookie", jar.join("; "))
        .send()
        .expect("GET /authorize again");
    assert_eq!(again.status(), 400);
    assert!(again.headers().get("location").is_none());

    // Without client authentication there is no push.
    let r = http()
        .post(format!("{}/par", o.url))
        .form(&[&PUSHED[..], &[("client_id", client.id.as_str())]].concat())
        .send()
        .expect("POST /par");
    assert_eq!(r.status(), 401);
}
