//! OpenID Connect UserInfo through the real origin binary (issue 19): a
//! user created and given a profile with the CLI logs in through the login
//! and consent pages (authorization code + PKCE, scope `openid profile
//! email`), and `/userinfo` answers the profile for the Bearer token; a
//! DPoP-bound token's claims come only with its proof (GET and POST), and
//! without it, or as Bearer, it is refused with a challenge.

use crate::harness::forge::{proof_claims, proof_header};
use crate::harness::login::{create_user, login_scoped, CB, VERIFIER};
use crate::harness::{http, web_client_args, Origin};
use gatehouse_common::testkit::signer::TestKey;
use serde_json::{json, Value};

const SCOPE: &str = "openid profile email";

/// Redeems `code` (PKCE [`VERIFIER`]) with client_secret_basic, bound to
/// `key` when given; returns the access token.
fn redeem(o: &Origin, id: &str, secret: &str, code: &str, key: Option<&TestKey>) -> String {
    let mut req = http()
        .post(format!("{}/token", o.url))
        .basic_auth(id, Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CB),
            ("code_verifier", VERIFIER),
        ]);
    if let Some(k) = key {
        let url = format!("{}/token", o.url);
        req = req.header(
            "DPoP",
            k.sign(&proof_header(k), &proof_claims("POST", &url, None)),
        );
    }
    let resp = req.send().expect("POST /token");
    let status = resp.status();
    let body: Value = resp.json().expect("token JSON");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["token_type"],
        if key.is_some() { "DPoP" } else { "Bearer" }
    );
    assert_eq!(body["scope"], SCOPE);
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

#[test]
fn userinfo_answers_the_profile_for_bearer_and_dpop_tokens_and_refuses_a_bound_token_without_proof()
{
    let o = Origin::start();
    let client = o.create_client("rp", SCOPE, "https://api.example", &web_client_args(CB));
    let secret = client.secret.clone().expect("confidential");
    let sub = create_user(&o, "alice");
    let updated: Value = serde_json::from_str(
        o.cli(&[
            "user",
            "update",
            "alice",
            "--name",
            "Alice Liddell",
            "--email",
            "alice@example.com",
            "--email-verified",
            "true",
        ])
        .trim(),
    )
    .expect("user update prints JSON");
    assert_eq!(updated["user_id"], sub);
    let expected = json!({
        "sub": sub,
        "name": "Alice Liddell",
        "preferred_username": "alice",
        "updated_at": updated["updated_at"],
        "email": "alice@example.com",
        "email_verified": true,
    });
    let userinfo = format!("{}/userinfo", o.url);

    // Discovery names the endpoint.
    let meta: Value = http()
        .get(format!("{}/.well-known/oauth-authorization-server", o.url))
        .send()
        .expect("metadata")
        .json()
        .expect("metadata JSON");
    assert_eq!(meta["userinfo_endpoint"], userinfo);

    // Bearer: GET and POST.
    let (code, _) = login_scoped(&o.url, &o.url, &client.id, "alice", SCOPE);
    let token = redeem(&o, &client.id, &secret, &code, None);
    for post in [false, true] {
        let req = if post {
            http().post(&userinfo)
        } else {
            http().get(&userinfo)
        };
        let resp = req.bearer_auth(&token).send().expect("userinfo");
        assert_eq!(resp.status(), 200, "post={post}");
        assert_eq!(resp.headers()["cache-control"], "no-store");
        assert!(resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
        let claims: Value = resp.json().expect("claims JSON");
        assert_eq!(claims, expected, "post={post}");
    }
    // No token: a challenge for both schemes.
    let resp = http().get(&userinfo).send().expect("userinfo");
    assert_eq!(resp.status(), 401);
    let challenge: Vec<String> = resp
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        challenge.iter().any(|c| c.starts_with("Bearer"))
            && challenge.iter().any(|c| c.starts_with("DPoP algs=")),
        "{challenge:?}"
    );

    // DPoP: the second login remembers the consent.
    let key = TestKey::es256("e2e-userinfo-holder");
    let (code, _) = login_scoped(&o.url, &o.url, &client.id, "alice", SCOPE);
    let bound = redeem(&o, &client.id, &secret, &code, Some(&key));
    for method in ["GET", "POST"] {
        let proof = key.sign(
            &proof_header(&key),
            &proof_claims(method, &userinfo, Some(&bound)),
        );
        let req = if method == "POST" {
            http().post(&userinfo)
        } else {
            http().get(&userinfo)
        };
        let resp = req
            .header("Authorization", format!("DPoP {bound}"))
            .header("DPoP", proof)
            .send()
            .expect("userinfo");
        assert_eq!(resp.status(), 200, "{method}");
        let claims: Value = resp.json().expect("claims JSON");
        assert_eq!(claims, expected, "{method}");
    }
    // Without its proof: 401 invalid_dpop_proof on the DPoP challenge.
    let resp = http()
        .get(&userinfo)
        .header("Authorization", format!("DPoP {bound}"))
        .send()
        .expect("userinfo");
    assert_eq!(resp.status(), 401);
    let challenge = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with("DPoP error=\"invalid_dpop_proof\""),
        "{challenge}"
    );
    let body = resp.text().expect("body");
    assert!(!body.contains(&bound), "the token is in the body");
    // As Bearer (RFC 9449 §7.1): refused.
    let resp = http()
        .get(&userinfo)
        .bearer_auth(&bound)
        .send()
        .expect("userinfo");
    assert_eq!(resp.status(), 401);
    let err: Value = resp.json().expect("error JSON");
    assert_eq!(err["error"], "invalid_token");
    // A proof replayed: refused.
    let proof = key.sign(
        &proof_header(&key),
        &proof_claims("GET", &userinfo, Some(&bound)),
    );
    let first = http()
        .get(&userinfo)
        .header("Authorization", format!("DPoP {bound}"))
        .header("DPoP", &proof)
        .send()
        .expect("userinfo");
    assert_eq!(first.status(), 200);
    let again = http()
        .get(&userinfo)
        .header("Authorization", format!("DPoP {bound}"))
        .header("DPoP", &proof)
        .send()
        .expect("userinfo");
    assert_eq!(again.status(), 401);

    // Deleting the user ends it.
    o.cli(&["user", "delete", "alice"]);
    let resp = http()
        .get(&userinfo)
        .bearer_auth(&token)
        .send()
        .expect("userinfo");
    assert_eq!(resp.status(), 401);
}
