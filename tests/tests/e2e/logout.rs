//! OpenID Connect RP-Initiated Logout through the real binaries: a user
//! signs in through the origin's pages with `scope=openid`, the RP's access
//! token works at the edge, the RP sends the browser to the
//! `end_session_endpoint` with its id_token as `id_token_hint` — and within
//! a second the edge refuses that access token (the session's refresh
//! family is revoked like any family, and the revocation list reaches the
//! edge), the refresh token is `invalid_grant`, and the browser's session
//! signs nothing in any more.

use crate::harness::login::{create_user, login_with, CB, VERIFIER};
use crate::harness::{http, web_client_args, Origin, Stack};
use serde_json::Value;
use std::time::{Duration, Instant};

const BYE: &str = "https://app.example/bye";

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

fn edge_status(stack: &Stack, at: &str) -> u16 {
    http()
        .get(format!("{}/orders/1", stack.edge.url))
        .header("authorization", format!("Bearer {at}"))
        .send()
        .expect("edge answers")
        .status()
        .as_u16()
}

#[test]
fn rp_initiated_logout_makes_the_edge_refuse_the_sessions_token_within_a_second() {
    // The origin pushes revocations to the edge (GATEHOUSE_EDGE_URL).
    let stack = Stack::start_linked(&[], &[]);
    let origin = &stack.origin;
    create_user(origin, "alice");
    let mut args = web_client_args(CB);
    args.extend(["--post-logout-redirect-uri", BYE]);
    let web = origin.create_client("rp", "openid read", &stack.edge.url, &args);
    let secret = web.secret.clone().expect("confidential");

    // Discovery advertises the endpoint.
    let doc: Value = http()
        .get(format!("{}/.well-known/openid-configuration", origin.url))
        .send()
        .expect("discovery")
        .json()
        .expect("JSON");
    let end_session = doc["end_session_endpoint"]
        .as_str()
        .expect("end_session_endpoint advertised")
        .to_owned();
    assert_eq!(end_session, format!("{}/logout", origin.url));

    let (code, cookies) = login_with(
        &origin.url,
        &origin.url,
        &web.id,
        "alice",
        &[("scope", "openid read")],
    );
    let (s, tok) = token(
        origin,
        &web.id,
        &secret,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
            ("code_verifier", VERIFIER),
        ],
    );
    assert_eq!(s, 200, "{tok}");
    let at = tok["access_token"].as_str().expect("access_token");
    let rt = tok["refresh_token"].as_str().expect("refresh_token");
    let id_token = tok["id_token"].as_str().expect("id_token");
    assert_eq!(edge_status(&stack, at), 200, "the access token works");

    // The RP sends the browser (its session cookie) to the end-session
    // endpoint with its id_token: no confirmation, back to the RP.
    let logout = reqwest::Url::parse_with_params(
        &end_session,
        &[
            ("id_token_hint", id_token),
            ("post_logout_redirect_uri", BYE),
            ("state", "bye-1"),
        ],
    )
    .expect("logout URL");
    let resp = http()
        .get(logout)
        .header("cookie", cookies.join("; "))
        .send()
        .expect("GET /logout");
    assert_eq!(resp.status(), 303);
    assert_eq!(
        resp.headers()["location"].to_str().expect("ascii"),
        format!("{BYE}?state=bye-1")
    );
    let logged_out = Instant::now();

    // Within a second the edge refuses the session's access token.
    let deadline = logged_out + Duration::from_secs(1);
    loop {
        let s = edge_status(&stack, at);
        if s == 401 {
            break;
        }
        assert_eq!(s, 200, "unexpected edge status");
        assert!(
            Instant::now() < deadline,
            "the edge still accepts the logged-out session's token after 1 s; origin log:\n{}",
            origin.proc.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!("edge refused after {:?}", logged_out.elapsed());

    // The refresh token is dead, and the session signs nothing in.
    let (s, err) = token(
        origin,
        &web.id,
        &secret,
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
    );
    assert_eq!((s, err["error"].as_str()), (400, Some("invalid_grant")));
    let again = http()
        .get(crate::harness::login::authorize_url_with(
            &origin.url,
            &web.id,
            &[("scope", "openid read"), ("prompt", "none")],
        ))
        .header("cookie", cookies.join("; "))
        .send()
        .expect("GET /authorize");
    let location = again.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_eq!(
        crate::harness::login::param(&location, "error").as_deref(),
        Some("login_required"),
        "{location}"
    );
}
