//! The user-facing grants end to end: a user logs in by posting the origin's
//! login and consent forms, the code is exchanged (PKCE S256), the access
//! token works at the edge; presenting a rotated refresh token revokes the
//! family, and through `sid` the edge then refuses its access tokens.

use crate::harness::{
    http, jwt_claims, origin_binary, web_client_args, ClientCreds, Origin, Stack,
};
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

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
    reqwest::Url::parse_with_params(
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
    .expect("authorize URL")
}

/// [`authorize_at`], also returning the browser's cookies (its session).
pub(crate) fn login_at(
    origin: &str,
    issuer: &str,
    client_id: &str,
    user: &str,
) -> (String, Vec<String>) {
    let url = authorize_url(origin, client_id);
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
    let _ = create_user(&stack.origin, "alice");
    let client = stack
        .origin
        .create_client("web", "read", &stack.edge.url, &web_client_args(CB));
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

fn exchange(stack: &Stack, gateway: &ClientCreds, form: &[(&str, &str)]) -> (u16, Value) {
    let mut full = vec![
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ),
        (
            "subject_token_type",
            "urn:ietf:params:oauth:token-type:access_token",
        ),
    ];
    full.extend_from_slice(form);
    token(
        stack,
        &gateway.id,
        gateway.secret.as_deref().expect("confidential"),
        &full,
    )
}

/// RFC 8693 through the real binaries: a gateway exchanges the user's token
/// for a narrower one that names the gateway as actor; the edge accepts it
/// and tells the upstream who acts for whom; widening is refused; revoking
/// the user's grant reaches the exchanged token at the edge (through `sid`),
/// and the revoked token can no longer be exchanged.
#[test]
fn token_exchange_narrows_names_the_actor_and_follows_the_grant_to_the_edge() {
    let stack = Stack::start_linked(&[], &[]);
    let _ = create_user(&stack.origin, "carol");
    let web =
        stack
            .origin
            .create_client("web", "read write", &stack.edge.url, &web_client_args(CB));
    let gateway = stack.origin.create_client(
        "gateway",
        "read",
        &stack.edge.url,
        &[
            "--grant",
            "client_credentials",
            "--grant",
            "urn:ietf:params:oauth:grant-type:token-exchange",
            // The gateway is a resource server of the edge's audience: only
            // an audience of the user's token may exchange it.
            "--serves",
            &stack.edge.url,
        ],
    );
    let code = authorize(&stack.origin.url, &web.id, "carol");
    let (s, t) = token(
        &stack,
        &web.id,
        web.secret.as_deref().expect("confidential"),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
            ("code_verifier", VERIFIER),
        ],
    );
    assert_eq!(s, 200, "{t}");
    let user_at = t["access_token"].as_str().expect("at").to_owned();
    let user_rt = t["refresh_token"].as_str().expect("rt").to_owned();
    let user_sub = jwt_claims(&user_at)["sub"]
        .as_str()
        .expect("sub")
        .to_owned();
    let actor_at = stack.origin.client_credentials(&gateway, &[])["access_token"]
        .as_str()
        .expect("gateway token")
        .to_owned();

    let (s, t) = exchange(
        &stack,
        &gateway,
        &[
            ("subject_token", &user_at),
            ("actor_token", &actor_at),
            (
                "actor_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
            ("audience", &stack.edge.url),
            ("scope", "read"),
        ],
    );
    assert_eq!(s, 200, "{t}");
    assert_eq!(
        t["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    let exchanged = t["access_token"].as_str().expect("exchanged").to_owned();
    let c = jwt_claims(&exchanged);
    assert_eq!(c["sub"], user_sub.as_str(), "the subject stays the user");
    assert_eq!(c["client_id"], gateway.id.as_str());
    assert_eq!(c["act"]["sub"], gateway.id.as_str());
    assert_eq!(c["scope"], "read");

    let seen: Value = http()
        .get(format!("{}/orders/7", stack.edge.url))
        .header("authorization", format!("Bearer {exchanged}"))
        .send()
        .expect("edge answers")
        .json()
        .expect("upstream JSON");
    assert_eq!(seen["identity"]["gatehouse-sub"], user_sub.as_str());
    assert_eq!(seen["identity"]["gatehouse-act"], gateway.id.as_str());
    assert_eq!(seen["identity"]["gatehouse-client-id"], gateway.id.as_str());

    // Only narrowing: more scope, or an audience the subject token lacks.
    let (s, e) = exchange(
        &stack,
        &gateway,
        &[("subject_token", &user_at), ("scope", "read write admin")],
    );
    assert_eq!(
        (s, e["error"].as_str()),
        (400, Some("invalid_scope")),
        "{e}"
    );
    let (s, e) = exchange(
        &stack,
        &gateway,
        &[
            ("subject_token", &user_at),
            ("audience", "https://elsewhere.example"),
        ],
    );
    assert_eq!(
        (s, e["error"].as_str()),
        (400, Some("invalid_target")),
        "{e}"
    );

    // Revoking the user's grant (RFC 7009, the refresh token's family)
    // reaches the exchanged token at the edge, and stops further exchanges.
    let r = http()
        .post(format!("{}/revoke", stack.origin.url))
        .basic_auth(&web.id, web.secret.as_deref())
        .form(&[("token", user_rt.as_str())])
        .send()
        .expect("POST /revoke");
    assert_eq!(r.status(), 200);
    until_refused(&stack, &exchanged);
    let (s, e) = exchange(&stack, &gateway, &[("subject_token", &user_at)]);
    assert_eq!(
        (s, e["error"].as_str()),
        (400, Some("invalid_grant")),
        "{e}"
    );
}
