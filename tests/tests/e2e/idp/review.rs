//! Review of issue 20 (bring your own IdP): attacks on the new issuer
//! profiles, discovery and role forwarding, through `wrangler dev`.
//! Fake issuers as in the parent module, plus ones that redirect or hang.

use super::*;
use crate::harness::fake_issuer::Reply;
use std::time::{Duration, Instant};

const WK: &str = "/.well-known/openid-configuration";

fn get_with(edge: &Edge, path: &str, token: &str, headers: &[(&str, &str)]) -> Answer {
    let mut req = http().get(format!("{}{path}", edge.url)).bearer_auth(token);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().unwrap();
    Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

#[test]
fn review_attacks_on_profiles_discovery_and_roles() {
    let idps = Idps::start();
    let key = RsaTestKey::load("auth0", "mixup-1");
    // Its discovery document is reached only through a redirect.
    let redirecting = FakeIssuer::start(|base| {
        vec![
            (
                WK.into(),
                Reply::Redirect(format!("{base}/moved/openid-configuration")),
            ),
            (
                "/moved/openid-configuration".into(),
                Reply::Json(discovery(base, &format!("{base}/keys"))),
            ),
            ("/keys".into(), Reply::Json(jwks(&key))),
        ]
    });
    // Its jwks_uri redirects elsewhere.
    let jwks_redirect = FakeIssuer::start(|base| {
        vec![
            (
                WK.into(),
                Reply::Json(discovery(base, &format!("{base}/keys"))),
            ),
            (
                "/keys".into(),
                Reply::Redirect(format!("{base}/elsewhere/keys")),
            ),
            ("/elsewhere/keys".into(), Reply::Json(jwks(&key))),
        ]
    });
    // Its discovery never answers.
    let hanging = FakeIssuer::start(|_| vec![(WK.into(), Reply::Hang)]);

    let mut trusted: Vec<Value> = serde_json::from_str(&idps.trusted_issuers()).unwrap();
    for f in [&redirecting, &jwks_redirect, &hanging] {
        trusted.push(json!({"issuer": f.base, "audiences": [API]}));
    }
    let trusted = Value::Array(trusted).to_string();
    let origin = Origin::start();
    let upstream = Upstream::start();
    let edge = Edge::start_retrying(
        &origin,
        &upstream,
        &[
            ("TRUSTED_ISSUERS", trusted.as_str()),
            ("ROUTES", ROUTES),
            ("RATE_LIMIT_IP", "1000/60"),
        ],
    );
    let alice = unique("alice");
    let rfc9068 = |iss: &str| {
        key.sign(
            &Shape::Auth0Rfc9068.header(&key.kid),
            &Shape::Auth0Rfc9068.claims(iss, API, &alice, "orders-admin", now()),
        )
    };

    // 1. Discovery and JWKS fetches do not follow redirects: the document
    //    must be at the issuer's well-known URL, the keys at its jwks_uri
    //    (a redirect could otherwise take an https issuer's keys over http).
    for (what, f) in [
        ("discovery redirect", &redirecting),
        ("jwks redirect", &jwks_redirect),
    ] {
        assert_refused(
            &get(&edge, "/profile", &rfc9068(&f.base)),
            500,
            "server_error",
            "signing keys are unavailable",
            what,
        );
    }
    assert_eq!(
        redirecting.hits("/moved/openid-configuration"),
        0,
        "redirect followed"
    );
    assert_eq!(
        jwks_redirect.hits("/elsewhere/keys"),
        0,
        "jwks redirect followed"
    );

    // 2. A hanging discovery endpoint costs one bounded wait, then the
    //    cooldown answers at once without asking again.
    let t = rfc9068(&hanging.base);
    let started = Instant::now();
    let a = get(&edge, "/profile", &t);
    assert_eq!(a.status, 500, "hanging discovery: {}", a.body);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "waited {:?}",
        started.elapsed()
    );
    let started = Instant::now();
    assert_eq!(get(&edge, "/profile", &t).status, 500);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "cooldown: {:?}",
        started.elapsed()
    );
    assert_eq!(hanging.hits(WK), 1, "asked again within the cooldown");

    // 3. A caller's own Gatehouse-Roles (any spelling) is dropped: it
    //    neither opens a role-guarded route nor reaches the upstream.
    let viewer = idps.mint(Shape::EntraV2, false, &alice, "viewer", |_| {});
    let spoof = [
        ("Gatehouse-Roles", "orders-admin"),
        ("gatehouse_roles", "orders-admin"),
    ];
    assert_refused(
        &get_with(&edge, "/orders/1", &viewer, &spoof),
        403,
        "access_denied",
        "role",
        "spoofed roles header",
    );
    let a = get_with(&edge, "/profile", &viewer, &spoof);
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.body["identity"]["gatehouse-roles"], "viewer",
        "{}",
        a.body
    );
    assert!(
        !a.body["headers"]
            .as_object()
            .unwrap()
            .contains_key("gatehouse_roles"),
        "{}",
        a.body
    );

    // 4. Role names with separators, CR/LF and non-ASCII stay one header
    //    value, percent-encoded, and split back exactly.
    let roles = [
        "orders-admin",
        "read only",
        "a,b",
        "x\r\nGatehouse-Sub: admin",
        "pr\u{fc}fer",
        "100%",
    ];
    let t = idps.mint(Shape::EntraV2, false, &alice, "orders-admin", |c| {
        c["roles"] = json!(roles);
    });
    let a = get(&edge, "/orders/1", &t);
    assert_eq!(a.status, 200, "{}", a.body);
    let value = a.body["identity"]["gatehouse-roles"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        value,
        "orders-admin read%20only a,b x%0D%0AGatehouse-Sub:%20admin pr%C3%BCfer 100%25"
    );
    assert_eq!(a.body["identity"]["gatehouse-sub"], alice.as_str());

    // 5. Auth0 permissions that are not scope-tokens are refused, not
    //    forwarded (a tab would split into another scope upstream).
    let t = idps.mint(Shape::Auth0, false, &alice, "orders-admin", |c| {
        c["permissions"] = json!(["read:orders\tadmin"]);
    });
    assert_refused(
        &get(&edge, "/orders/1", &t),
        401,
        "invalid_token",
        "",
        "tab in permissions",
    );

    // 6. An Auth0 ID token naming the API and its client (nonce, at_hash)
    //    is not an access token; an Entra ID token either.
    let t = idps.mint(Shape::Auth0, false, &alice, "orders-admin", |c| {
        c["nonce"] = "n-0S6_WzA2Mj".into();
        c["at_hash"] = "HK6E_P6Dh8Y93mRNtsDB1Q".into();
    });
    assert_refused(
        &get(&edge, "/orders/1", &t),
        401,
        "invalid_token",
        "",
        "Auth0 ID token",
    );
    let t = idps.mint(Shape::EntraV2, false, &alice, "orders-admin", |c| {
        c["nonce"] = "n".into();
    });
    assert_refused(
        &get(&edge, "/orders/1", &t),
        401,
        "invalid_token",
        "",
        "Entra ID token",
    );

    // 7. A token of a strict (rfc9068) issuer with a `roles` claim gets no
    //    roles: the profile, not the token, says where roles are.
    let t = idps.mint(Shape::Auth0Rfc9068, true, &alice, "orders-admin", |c| {
        c["roles"] = json!(["orders-admin"]);
        c["realm_access"] = json!({"roles": ["orders-admin"]});
    });
    assert_refused(
        &get(&edge, "/orders/1", &t),
        403,
        "access_denied",
        "role",
        "strict issuer roles",
    );

    // 8. Claims confusion: `azp` and `client_id` naming different clients
    //    (an upstream reading the other would see another client), and a
    //    `scope` array under the strict profile, are refused.
    let t = idps.mint(Shape::KeycloakDefault, false, &alice, "orders-admin", |c| {
        c["client_id"] = "admin-cli".into();
    });
    assert_refused(
        &get(&edge, "/profile", &t),
        401,
        "invalid_token",
        "",
        "azp vs client_id",
    );
    let t = idps.mint(Shape::KeycloakDefault, false, &alice, "orders-admin", |c| {
        c["client_id"] = "web-app".into();
    });
    assert_eq!(
        get(&edge, "/profile", &t).status,
        200,
        "azp and client_id agree"
    );
    let t = idps.mint(Shape::Auth0Rfc9068, true, &alice, "orders-admin", |c| {
        c["scope"] = json!(["openid", "read:orders"]);
    });
    assert_refused(
        &get(&edge, "/profile", &t),
        401,
        "invalid_token",
        "scope",
        "scope array",
    );
}
