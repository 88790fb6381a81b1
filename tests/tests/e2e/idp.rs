//! Bring your own identity provider (issue 20), through `wrangler dev`:
//! fake Keycloak, Auth0 and Entra ID issuers (HTTP threads of this test
//! process) serve discovery documents and JWKS; the edge trusts them by
//! URL and preset only (no `jwks_url`), and is handed tokens shaped as
//! those vendors document them (tests/fixtures/vendors.rs), signed RS256
//! with the fakes' test keys. The attacks come first: another issuer,
//! audience, an expired token, a key of another trusted issuer, a
//! Keycloak ID token, a discovery document naming another issuer; then
//! each vendor's token on a route requiring a role, the strict default's
//! refusals, and a per-subject quota on a shared client.

use crate::harness::fake_issuer::FakeIssuer;
use crate::harness::{http, now, unique, Edge, Origin, Upstream};
use serde_json::{json, Value};

include!("../../fixtures/vendors.rs");
use vendors::{RsaTestKey, Shape, AUTH0_ROLES_CLAIM, ENTRA_TENANT};

/// The API's audience at every issuer.
const API: &str = "https://orders.example";

/// A discovery document as OpenID Connect Discovery 1.0 §3 lists it.
fn discovery(issuer: &str, jwks_uri: &str) -> Value {
    json!({
        "issuer": issuer, "jwks_uri": jwks_uri,
        "authorization_endpoint": format!("{}/authorize", issuer.trim_end_matches('/')),
        "token_endpoint": format!("{}/token", issuer.trim_end_matches('/')),
        "response_types_supported": ["code"], "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    })
}

fn jwks(key: &RsaTestKey) -> Value {
    json!({ "keys": [key.public_jwk()] })
}

/// Keycloak: realm `demo`, keys at the realm's `certs` endpoint.
fn keycloak(key: &RsaTestKey) -> (FakeIssuer, String) {
    let idp = FakeIssuer::serving(|base| {
        let iss = format!("{base}/realms/demo");
        let certs = format!("{iss}/protocol/openid-connect/certs");
        vec![
            (
                "/realms/demo/.well-known/openid-configuration".into(),
                discovery(&iss, &certs),
            ),
            (
                "/realms/demo/protocol/openid-connect/certs".into(),
                jwks(key),
            ),
        ]
    });
    let iss = format!("{}/realms/demo", idp.base);
    (idp, iss)
}

/// Auth0: the tenant's issuer ends with `/`.
fn auth0(key: &RsaTestKey) -> (FakeIssuer, String) {
    let idp = FakeIssuer::serving(|base| {
        vec![
            (
                "/.well-known/openid-configuration".into(),
                discovery(
                    &format!("{base}/"),
                    &format!("{base}/.well-known/jwks.json"),
                ),
            ),
            ("/.well-known/jwks.json".into(), jwks(key)),
        ]
    });
    let iss = format!("{}/", idp.base);
    (idp, iss)
}

/// Entra ID: one tenant's v1.0 (`/{tid}/`) and v2.0 (`/{tid}/v2.0`)
/// issuers, sharing the tenant's keys.
fn entra(key: &RsaTestKey) -> (FakeIssuer, String, String) {
    let idp = FakeIssuer::serving(|base| {
        let v1 = format!("{base}/{ENTRA_TENANT}/");
        let v2 = format!("{base}/{ENTRA_TENANT}/v2.0");
        vec![
            (
                format!("/{ENTRA_TENANT}/.well-known/openid-configuration"),
                discovery(&v1, &format!("{base}/{ENTRA_TENANT}/discovery/keys")),
            ),
            (
                format!("/{ENTRA_TENANT}/v2.0/.well-known/openid-configuration"),
                discovery(&v2, &format!("{base}/{ENTRA_TENANT}/discovery/v2.0/keys")),
            ),
            (format!("/{ENTRA_TENANT}/discovery/keys"), jwks(key)),
            (format!("/{ENTRA_TENANT}/discovery/v2.0/keys"), jwks(key)),
        ]
    });
    let v1 = format!("{}/{ENTRA_TENANT}/", idp.base);
    let v2 = format!("{}/{ENTRA_TENANT}/v2.0", idp.base);
    (idp, v1, v2)
}

/// Every fake issuer and the keys they sign with.
struct Idps {
    kc_key: RsaTestKey,
    auth0_key: RsaTestKey,
    entra_key: RsaTestKey,
    kc: (FakeIssuer, String),
    auth0: (FakeIssuer, String),
    entra: (FakeIssuer, String, String),
    /// The same vendors' servers again, trusted with no preset (rfc9068).
    strict_kc: (FakeIssuer, String),
    strict_auth0: (FakeIssuer, String),
    strict_entra: (FakeIssuer, String, String),
    /// Its discovery document names another issuer.
    mixup: (FakeIssuer, String),
}

impl Idps {
    fn start() -> Self {
        let kc_key = RsaTestKey::load("keycloak", "kc-rs256-1");
        let auth0_key = RsaTestKey::load("auth0", "auth0-key-1");
        let entra_key = RsaTestKey::load("entra", "entra-x5t-1");
        let mixup = FakeIssuer::serving(|base| {
            vec![
                (
                    "/.well-known/openid-configuration".into(),
                    discovery("https://evil.example", &format!("{base}/keys")),
                ),
                ("/keys".into(), jwks(&RsaTestKey::load("auth0", "mixup-1"))),
            ]
        });
        let mixup_iss = mixup.base.clone();
        Self {
            kc: keycloak(&kc_key),
            auth0: auth0(&auth0_key),
            entra: entra(&entra_key),
            strict_kc: keycloak(&kc_key),
            strict_auth0: auth0(&auth0_key),
            strict_entra: entra(&entra_key),
            mixup: (mixup, mixup_iss),
            kc_key,
            auth0_key,
            entra_key,
        }
    }

    /// `TRUSTED_ISSUERS`: by URL and preset only (Auth0's roles are in an
    /// Action's namespaced claim, which only its tenant knows).
    fn trusted_issuers(&self) -> String {
        let by_url = |iss: &str, preset: Option<&str>| {
            let mut e = json!({"issuer": iss, "audiences": [API]});
            if let Some(p) = preset {
                e["preset"] = p.into();
            }
            e
        };
        let mut auth0 = by_url(&self.auth0.1, Some("auth0"));
        auth0["role_claims"] = json!([AUTH0_ROLES_CLAIM]);
        json!([
            by_url(&self.kc.1, Some("keycloak")),
            auth0,
            by_url(&self.entra.2, Some("entra")),
            by_url(&self.entra.1, Some("entra")),
            by_url(&self.strict_kc.1, None),
            by_url(&self.strict_auth0.1, None),
            by_url(&self.strict_entra.1, None),
            by_url(&self.strict_entra.2, None),
            by_url(&self.mixup.1, None),
        ])
        .to_string()
    }

    /// The (preset-trusted) issuer a shape comes from, and its key.
    fn issuer(&self, s: Shape, strict: bool) -> (&str, &RsaTestKey) {
        let (kc, auth0, entra) = if strict {
            (&self.strict_kc, &self.strict_auth0, &self.strict_entra)
        } else {
            (&self.kc, &self.auth0, &self.entra)
        };
        match s {
            Shape::KeycloakDefault | Shape::KeycloakLightweight | Shape::KeycloakAtJwt => {
                (&kc.1, &self.kc_key)
            }
            Shape::Auth0 | Shape::Auth0Rfc9068 => (&auth0.1, &self.auth0_key),
            Shape::EntraV1 => (&entra.1, &self.entra_key),
            Shape::EntraV2 => (&entra.2, &self.entra_key),
        }
    }

    /// A token of shape `s` for `sub` with `role`, `edit`ed before signing.
    fn mint(
        &self,
        s: Shape,
        strict: bool,
        sub: &str,
        role: &str,
        edit: impl Fn(&mut Value),
    ) -> String {
        let (iss, key) = self.issuer(s, strict);
        let mut c = s.claims(iss, API, sub, role, now());
        edit(&mut c);
        key.sign(&s.header(&key.kid), &c)
    }
}

const ROUTES: &str = r#"[
  {"prefix": "/orders", "roles": ["orders-admin"]},
  {"prefix": "/reports", "roles": ["orders-admin"], "rate_limits": [{"key": "subject", "quota": "3/60"}]}
]"#;

fn start_edge(idps: &Idps) -> (Edge, Upstream, Origin) {
    let origin = Origin::start();
    let upstream = Upstream::start();
    let trusted = idps.trusted_issuers();
    let edge = Edge::start_retrying(
        &origin,
        &upstream,
        &[
            ("TRUSTED_ISSUERS", trusted.as_str()),
            ("ROUTES", ROUTES),
            // The refusals below are failed attempts from one address.
            ("RATE_LIMIT_IP", "1000/60"),
        ],
    );
    (edge, upstream, origin)
}

struct Answer {
    status: u16,
    body: Value,
}

fn get(edge: &Edge, path: &str, token: &str) -> Answer {
    let resp = http()
        .get(format!("{}{path}", edge.url))
        .bearer_auth(token)
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().unwrap();
    Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

fn assert_refused(a: &Answer, status: u16, error: &str, description: &str, what: &str) {
    assert_eq!(a.status, status, "{what}: {}", a.body);
    assert_eq!(a.body["error"], error, "{what}: {}", a.body);
    assert!(
        a.body["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains(description),
        "{what}: {}",
        a.body
    );
}

#[test]
fn vendor_tokens_by_discovery_with_roles_and_the_strict_default() {
    let idps = Idps::start();
    let (edge, _upstream, _origin) = start_edge(&idps);
    let alice = unique("alice");

    // Attacks first. Another issuer, another audience, expired.
    for s in [Shape::KeycloakDefault, Shape::Auth0, Shape::EntraV2] {
        let t = idps.mint(s, false, &alice, "orders-admin", |c| {
            c["iss"] = "https://evil.example/".into();
        });
        assert_refused(
            &get(&edge, "/orders/1", &t),
            401,
            "invalid_token",
            "issuer is not trusted",
            "wrong iss",
        );
        let t = idps.mint(s, false, &alice, "orders-admin", |c| {
            c["aud"] = json!(["https://other.example"]);
        });
        assert_refused(
            &get(&edge, "/orders/1", &t),
            401,
            "invalid_token",
            "audience does not match",
            "wrong aud",
        );
        let t = idps.mint(s, false, &alice, "orders-admin", |c| {
            c["iat"] = (now() - 7_200).into();
            c["nbf"] = (now() - 7_200).into();
            c["exp"] = (now() - 3_600).into();
        });
        assert_refused(
            &get(&edge, "/orders/1", &t),
            401,
            "invalid_token",
            "expired",
            "expired",
        );
    }
    // Key confusion: a token naming Keycloak, signed with Auth0's key under
    // Auth0's kid (both issuers trusted): Keycloak's keys only.
    let c = Shape::KeycloakDefault.claims(&idps.kc.1, API, &alice, "orders-admin", now());
    let t = idps
        .auth0_key
        .sign(&Shape::KeycloakDefault.header(&idps.auth0_key.kid), &c);
    assert_refused(
        &get(&edge, "/orders/1", &t),
        401,
        "invalid_token",
        "no key with that key id",
        "cross-issuer kid",
    );
    // Keycloak's key under Entra's kid, for Entra: the signature fails.
    let c = Shape::EntraV2.claims(&idps.entra.2, API, &alice, "orders-admin", now());
    let t = idps
        .kc_key
        .sign(&Shape::EntraV2.header(&idps.entra_key.kid), &c);
    assert_refused(
        &get(&edge, "/orders/1", &t),
        401,
        "invalid_token",
        "signature",
        "another issuer's key",
    );
    // A Keycloak ID token (payload typ "ID") naming the API as audience.
    let t = idps.mint(Shape::KeycloakDefault, false, &alice, "orders-admin", |c| {
        c["typ"] = "ID".into();
    });
    assert_refused(
        &get(&edge, "/orders/1", &t),
        401,
        "invalid_token",
        "typ",
        "Keycloak ID token",
    );
    // An issuer whose discovery document names another issuer: its keys
    // are never used (the edge's outage, not the caller's: 500).
    let mix_key = RsaTestKey::load("auth0", "mixup-1");
    let t = mix_key.sign(
        &Shape::Auth0Rfc9068.header(&mix_key.kid),
        &Shape::Auth0Rfc9068.claims(&idps.mixup.1, API, &alice, "orders-admin", now()),
    );
    assert_refused(
        &get(&edge, "/orders/1", &t),
        500,
        "server_error",
        "signing keys are unavailable",
        "discovery mix-up",
    );
    assert!(
        idps.mixup.0.hits("/keys") == 0,
        "the mixed-up document's jwks_uri is never fetched"
    );

    // Each vendor's token, by its preset, on a route that requires a role.
    for s in Shape::ALL {
        let t = idps.mint(s, false, &alice, "orders-admin", |_| {});
        let a = get(&edge, "/orders/1", &t);
        if s == Shape::KeycloakLightweight {
            // Lightweight tokens carry no roles (unless a mapper adds them).
            assert_refused(
                &a,
                403,
                "access_denied",
                "lacks a required role",
                "lightweight",
            );
            let a = get(&edge, "/profile", &t);
            assert_eq!(a.status, 200, "{s:?}: {}", a.body);
            continue;
        }
        assert_eq!(a.status, 200, "{s:?}: {}", a.body);
        let id = &a.body["identity"];
        assert_eq!(id["gatehouse-sub"], alice.as_str(), "{s:?}");
        assert_eq!(id["gatehouse-client-id"], s.client_id(), "{s:?}");
        assert_eq!(id["gatehouse-issuer"], idps.issuer(s, false).0, "{s:?}");
        // Auth0's default profile and Entra ID set no `jti`: no token id is forwarded.
        let has_jti = matches!(
            s,
            Shape::KeycloakDefault | Shape::KeycloakAtJwt | Shape::Auth0Rfc9068
        );
        assert_eq!(
            id.get("gatehouse-token-id").is_some(),
            has_jti,
            "{s:?}: {id}"
        );
        let roles = id["gatehouse-roles"].as_str().unwrap_or_default();
        assert!(roles.split(' ').any(|r| r == "orders-admin"), "{s:?}: {id}");
        // The same user without the role is refused.
        let t = idps.mint(s, false, &alice, "viewer", |_| {});
        assert_refused(
            &get(&edge, "/orders/1", &t),
            403,
            "access_denied",
            "role",
            "no role",
        );
    }

    // The strict default (rfc9068) refuses them, saying why.
    for s in Shape::ALL {
        let t = idps.mint(s, true, &alice, "orders-admin", |_| {});
        let a = get(&edge, "/profile", &t);
        match s.strict_refusal() {
            None => assert_eq!(a.status, 200, "{s:?}: {}", a.body),
            Some(why) => assert_refused(&a, 401, "invalid_token", why, &format!("{s:?} strict")),
        }
    }

    // Discovery was read once per issuer, not per request.
    let kc_doc = "/realms/demo/.well-known/openid-configuration";
    let n = idps.kc.0.hits(kc_doc);
    assert!((1..=2).contains(&n), "Keycloak discovery fetched {n} times");
    let health = edge.health().unwrap();
    let kc = health["issuers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["issuer"] == idps.kc.1.as_str())
        .unwrap();
    assert_eq!(kc["preset"], "keycloak");
    assert_eq!(
        kc["jwks_url"],
        format!("{}/protocol/openid-connect/certs", idps.kc.1).as_str()
    );
}

#[test]
fn a_per_subject_quota_refuses_one_user_while_another_of_the_same_client_passes() {
    let idps = Idps::start();
    let (edge, _upstream, _origin) = start_edge(&idps);
    let (alice, bob) = (unique("alice"), unique("bob"));
    let token = |sub: &str| idps.mint(Shape::KeycloakDefault, false, sub, "orders-admin", |_| {});
    let (ta, tb) = (token(&alice), token(&bob));
    assert_eq!(
        Shape::KeycloakDefault.client_id(),
        "web-app",
        "one public client"
    );
    for i in 0..3 {
        let a = get(&edge, "/reports/q1", &ta);
        assert_eq!(a.status, 200, "alice #{i}: {}", a.body);
    }
    let a = get(&edge, "/reports/q1", &ta);
    assert_eq!(a.status, 429, "alice over her quota: {}", a.body);
    assert_eq!(a.body["error"], "rate_limited", "{}", a.body);
    // Bob, a user of the same client, still passes; Alice still may use
    // routes without that quota.
    let b = get(&edge, "/reports/q1", &tb);
    assert_eq!(b.status, 200, "bob: {}", b.body);
    assert_eq!(get(&edge, "/orders/1", &ta).status, 200);
}

mod review;
