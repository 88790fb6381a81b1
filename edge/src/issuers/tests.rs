//! Vendor-shaped tokens through the real configuration and the full
//! parse → key → verify (RustCrypto) → accept flow. The attacks first:
//! wrong issuer, audience, expiry, a key of another trusted issuer, an ID
//! token passed as an access token, a discovery document naming another
//! issuer; then each vendor's token accepted by its preset and refused by
//! the strict default.

use super::*;
use crate::config::EdgeConfig;
use gatehouse_common::access_token::{AccessToken, AccessTokenError, UntrustedAccessToken};
use gatehouse_common::jwk::{JwkSet, KeyError};
use gatehouse_common::provider::{RustCrypto, SignatureVerifier};
use gatehouse_common::UnixTime;
use serde_json::{json, Value};

include!("../../../tests/fixtures/vendors.rs");
use vendors::{RsaTestKey, Shape, AUTH0_ROLES_CLAIM, ENTRA_TENANT};

const NOW: i64 = 1_765_000_000;
const KC: &str = "https://kc.example/realms/demo";
const AUTH0: &str = "https://tenant.example.auth0.com/";
const API: &str = "https://orders.example";

fn entra_v1() -> String {
    format!("https://sts.windows.net/{ENTRA_TENANT}/")
}
fn entra_v2() -> String {
    format!("https://login.microsoftonline.com/{ENTRA_TENANT}/v2.0")
}

/// The issuer URL a shape comes from.
fn issuer_of(s: Shape) -> String {
    match s.preset() {
        "keycloak" => KC.to_owned(),
        "auth0" => AUTH0.to_owned(),
        _ if s == Shape::EntraV1 => entra_v1(),
        _ => entra_v2(),
    }
}

fn key_of(s: Shape) -> RsaTestKey {
    match s.preset() {
        "keycloak" => RsaTestKey::load("keycloak", "kc-rs256-1"),
        "auth0" => RsaTestKey::load("auth0", "auth0-key-1"),
        _ => RsaTestKey::load("entra", "entra-x5t-1"),
    }
}

struct Trust {
    cfg: EdgeConfig,
    sets: Vec<JwkSet>,
}

/// An edge configuration trusting the four issuers: with their presets
/// (`strict`: none, i.e. rfc9068), each with its own key set.
fn trust(strict: bool) -> Trust {
    let entry = |iss: String, preset: &str| {
        let mut e = json!({"issuer": iss, "audiences": [API], "jwks_url": format!("{}/keys", iss.trim_end_matches('/'))});
        if !strict {
            e["preset"] = preset.into();
            if preset == "auth0" {
                e["role_claims"] = json!([AUTH0_ROLES_CLAIM]);
            }
        }
        e
    };
    let issuers = json!([
        entry(KC.into(), "keycloak"),
        entry(AUTH0.into(), "auth0"),
        entry(entra_v1(), "entra"),
        entry(entra_v2(), "entra"),
    ])
    .to_string();
    let vars: Vec<(&str, String)> = vec![
        ("TRUSTED_ISSUERS", issuers),
        ("UPSTREAM_URL", "https://upstream.example".into()),
    ];
    let cfg = EdgeConfig::from_vars(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
        .unwrap();
    let set = |k: RsaTestKey| {
        JwkSet::from_json(json!({"keys": [k.public_jwk()]}).to_string().as_bytes()).unwrap()
    };
    let entra = || set(RsaTestKey::load("entra", "entra-x5t-1"));
    Trust {
        cfg,
        sets: vec![
            set(RsaTestKey::load("keycloak", "kc-rs256-1")),
            set(RsaTestKey::load("auth0", "auth0-key-1")),
            entra(),
            entra(),
        ],
    }
}

impl Trust {
    /// What the edge does: pick the issuer by `iss`, the key from *that*
    /// issuer's set only, verify, accept.
    fn verify(&self, raw: &str, now: i64) -> Result<AccessToken, AccessTokenError> {
        let policies = self.cfg.policies();
        let u = UntrustedAccessToken::parse_for(raw, policies)?;
        let i = u.policy_index();
        let key = self.sets[i].select(u.kid(), u.header_alg())?;
        let ok = RustCrypto.verify(key.jwk, key.alg, u.signing_input(), u.signature());
        u.accept(ok, &policies[i], UnixTime(now))
    }
}

fn mint(s: Shape, claims: &Value) -> String {
    let k = key_of(s);
    k.sign(&s.header(&k.kid), claims)
}

fn claims(s: Shape) -> Value {
    s.claims(&issuer_of(s), API, "user-alice", "orders-admin", NOW)
}

#[test]
fn wrong_issuer_audience_and_expiry_are_refused_under_every_preset() {
    let t = trust(false);
    for s in Shape::ALL {
        let mut c = claims(s);
        c["iss"] = "https://evil.example/".into();
        assert_eq!(
            t.verify(&mint(s, &c), NOW).unwrap_err(),
            AccessTokenError::UntrustedIssuer,
            "{s:?}"
        );
        let mut c = claims(s);
        c["aud"] = json!(["https://other-api.example", "account"]);
        assert_eq!(
            t.verify(&mint(s, &c), NOW).unwrap_err(),
            AccessTokenError::AudienceMismatch,
            "{s:?}"
        );
        let mut c = claims(s);
        c.as_object_mut().unwrap().remove("aud");
        assert!(t.verify(&mint(s, &c), NOW).is_err(), "{s:?}: no aud");
        let exp = claims(s)["exp"].as_i64().unwrap();
        assert!(
            matches!(
                t.verify(&mint(s, &claims(s)), exp + 31),
                Err(AccessTokenError::Expired { .. })
            ),
            "{s:?}"
        );
        // A signature by another key under the right kid.
        let forged = RsaTestKey::load(
            if s.preset() == "keycloak" {
                "auth0"
            } else {
                "keycloak"
            },
            &key_of(s).kid,
        )
        .sign(&s.header(&key_of(s).kid), &claims(s));
        assert_eq!(
            t.verify(&forged, NOW).unwrap_err(),
            AccessTokenError::InvalidSignature,
            "{s:?}"
        );
    }
}

/// A token naming issuer A, signed with issuer B's key under B's `kid`:
/// only A's keys are ever consulted for it.
#[test]
fn a_key_of_another_trusted_issuer_is_not_used() {
    let t = trust(false);
    let auth0_key = RsaTestKey::load("auth0", "auth0-key-1");
    let as_keycloak = Shape::KeycloakDefault.claims(KC, API, "mallory", "orders-admin", NOW);
    let raw = auth0_key.sign(&Shape::KeycloakDefault.header(&auth0_key.kid), &as_keycloak);
    assert_eq!(
        t.verify(&raw, NOW).unwrap_err(),
        AccessTokenError::Key(KeyError::UnknownKid)
    );
    // And the other way round: an Auth0-shaped token naming Keycloak's kid.
    let kc_kid = "kc-rs256-1";
    let raw = auth0_key.sign(
        &Shape::Auth0.header(kc_kid),
        &Shape::Auth0.claims(AUTH0, API, "mallory", "orders-admin", NOW),
    );
    assert_eq!(
        t.verify(&raw, NOW).unwrap_err(),
        AccessTokenError::Key(KeyError::UnknownKid)
    );
    // Entra's key signing a token for the v1 issuer naming the v2 issuer's
    // key id is fine only because both really share Microsoft's keys; a
    // Keycloak key under Entra's kid is not.
    let raw = RsaTestKey::load("keycloak", "entra-x5t-1").sign(
        &Shape::EntraV2.header("entra-x5t-1"),
        &Shape::EntraV2.claims(&entra_v2(), API, "mallory", "orders-admin", NOW),
    );
    assert_eq!(
        t.verify(&raw, NOW).unwrap_err(),
        AccessTokenError::InvalidSignature
    );
}

/// Keycloak signs ID tokens with the realm's keys too (payload `typ: "ID"`);
/// one whose `aud` names the API must not pass as an access token.
#[test]
fn a_keycloak_id_token_is_not_an_access_token() {
    let t = trust(false);
    let mut c = claims(Shape::KeycloakDefault);
    c["typ"] = "ID".into();
    assert!(matches!(
        t.verify(&mint(Shape::KeycloakDefault, &c), NOW),
        Err(AccessTokenError::Claim(_))
    ));
    c.as_object_mut().unwrap().remove("typ");
    assert!(t.verify(&mint(Shape::KeycloakDefault, &c), NOW).is_err());
}

#[test]
fn presets_never_allow_symmetric_or_unsigned_tokens() {
    let t = trust(false);
    for s in Shape::ALL {
        let c = claims(s);
        let body = gatehouse_common::b64::encode(c.to_string().as_bytes());
        for alg in ["none", "HS256"] {
            let h = gatehouse_common::b64::encode(
                json!({"alg": alg, "typ": "JWT", "kid": key_of(s).kid})
                    .to_string()
                    .as_bytes(),
            );
            assert!(
                t.verify(&format!("{h}.{body}.c2ln"), NOW).is_err(),
                "{s:?} {alg}"
            );
        }
    }
    // Entra and Auth0 sign with RSA only: an ES256 header is refused before any key lookup.
    for iss in [entra_v2(), AUTH0.to_owned()] {
        let p = t.cfg.policies().iter().find(|p| p.issuer == iss).unwrap();
        assert!(!p.algorithms.contains(&Algorithm::Es256), "{iss}");
    }
}

#[test]
fn each_vendor_token_is_accepted_with_its_preset() {
    let t = trust(false);
    for s in Shape::ALL {
        let token = t
            .verify(&mint(s, &claims(s)), NOW)
            .unwrap_or_else(|e| panic!("{s:?}: {e}"));
        assert_eq!(token.iss, issuer_of(s), "{s:?}");
        assert_eq!(token.sub, "user-alice");
        assert_eq!(token.client_id, s.client_id(), "{s:?}");
        let roles = if s == Shape::KeycloakLightweight {
            vec![]
        } else {
            vec!["orders-admin".to_owned()]
        };
        assert!(
            roles.iter().all(|r| token.roles.contains(r)),
            "{s:?}: {:?}",
            token.roles
        );
        match s.preset() {
            "keycloak" if s != Shape::KeycloakLightweight => {
                // Realm roles and the API client's roles, not another client's.
                assert!(token.roles.contains(&"orders-reader".to_owned()));
                assert!(!token.roles.contains(&"manage-account".to_owned()));
                assert!(token.scope.contains(&"profile".to_owned()));
            }
            "auth0" => assert!(token.scope.contains(&"read:orders".to_owned())),
            "entra" => assert!(token.scope.contains(&"Orders.Read".to_owned())),
            _ => {}
        }
    }
}

#[test]
fn the_strict_default_refuses_vendor_tokens_with_the_right_error() {
    let t = trust(true);
    for s in Shape::ALL {
        let got = t.verify(&mint(s, &claims(s)), NOW);
        match s.strict_refusal() {
            None => assert!(got.is_ok(), "{s:?}: {got:?}"),
            Some(why) => assert_eq!(got.unwrap_err().to_string(), why, "{s:?}"),
        }
    }
}

#[test]
fn overrides_replace_preset_fields_and_are_checked() {
    let file = |extra: Value| -> IssuerFile {
        let mut e = json!({"issuer": KC, "audiences": [API], "preset": "keycloak"});
        for (k, v) in extra.as_object().unwrap() {
            e[k] = v.clone();
        }
        serde_json::from_value(e).unwrap()
    };
    let r = file(json!({})).resolve().unwrap();
    assert_eq!(r.preset, Preset::Keycloak);
    assert_eq!(
        r.jwks,
        JwksSource::Discovery(format!("{KC}/.well-known/openid-configuration"))
    );
    assert_eq!(
        r.profile.role_claims,
        [
            "/realm_access/roles",
            "/resource_access/https:~1~1orders.example/roles"
        ]
    );
    let r = file(
        json!({"typ": ["at+jwt"], "client_id_claims": ["client_id"], "require_jti": true,
        "role_claims": ["roles"], "scope_claims": ["scp"], "leeway_secs": 5}),
    )
    .resolve()
    .unwrap();
    assert_eq!(r.profile.typ, ["at+jwt"]);
    assert_eq!(r.profile.client_id_claims, ["client_id"]);
    assert_eq!(r.profile.role_claims, ["roles"]);
    assert_eq!(r.leeway_secs, Some(5));
    for bad in [
        json!({"preset": "okta"}),
        json!({"typ": []}),
        json!({"client_id_claims": []}),
        json!({"leeway_secs": 3600}),
        json!({"jwks_url": "https://kc.example/certs", "discovery": "openid-configuration"}),
        json!({"discovery": "ftp://x"}),
    ] {
        assert!(file(bad.clone()).resolve().is_err(), "{bad}");
    }
    assert!(serde_json::from_value::<IssuerFile>(
        json!({"issuer": KC, "audiences": [API], "verify_signature": false})
    )
    .is_err());
}

#[test]
fn discovery_urls_follow_oidc_and_rfc8414() {
    assert_eq!(
        discovery_url(&entra_v1(), None).unwrap(),
        format!("https://sts.windows.net/{ENTRA_TENANT}/.well-known/openid-configuration")
    );
    assert_eq!(
        discovery_url(&entra_v2(), Some("openid-configuration")).unwrap(),
        format!(
            "https://login.microsoftonline.com/{ENTRA_TENANT}/v2.0/.well-known/openid-configuration"
        )
    );
    assert_eq!(
        discovery_url(KC, Some("oauth-authorization-server")).unwrap(),
        "https://kc.example/.well-known/oauth-authorization-server/realms/demo"
    );
    assert_eq!(
        discovery_url(AUTH0, Some("oauth-authorization-server")).unwrap(),
        "https://tenant.example.auth0.com/.well-known/oauth-authorization-server"
    );
    assert_eq!(
        discovery_url(KC, Some("https://kc.example/meta")).unwrap(),
        "https://kc.example/meta"
    );
    assert!(discovery_url("kc.example", None).is_err());
    assert!(discovery_url("https://kc.example/?x", None).is_err());
}

#[test]
fn a_discovery_document_must_name_the_configured_issuer() {
    let doc = |iss: &str, jwks: &str| json!({"issuer": iss, "jwks_uri": jwks}).to_string();
    assert_eq!(
        read_discovery(KC, doc(KC, "https://kc.example/certs").as_bytes()),
        Ok(Discovered {
            jwks_uri: "https://kc.example/certs".into()
        })
    );
    // Another issuer's document (a mix-up, or a compromised redirect).
    assert_eq!(
        read_discovery(
            KC,
            doc(
                "https://evil.example/realms/demo",
                "https://evil.example/certs"
            )
            .as_bytes()
        ),
        Err(DiscoveryError::IssuerMismatch)
    );
    // Exactly equal: a trailing slash is another issuer.
    assert_eq!(
        read_discovery(
            AUTH0,
            doc(AUTH0.trim_end_matches('/'), "https://a/keys").as_bytes()
        ),
        Err(DiscoveryError::IssuerMismatch)
    );
    assert_eq!(
        read_discovery(KC, doc(KC, "http://kc.example/certs").as_bytes()),
        Err(DiscoveryError::BadJwksUri),
        "no plain http keys for an https issuer"
    );
    assert_eq!(
        read_discovery(KC, json!({"issuer": KC}).to_string().as_bytes()),
        Err(DiscoveryError::BadJwksUri)
    );
    assert_eq!(read_discovery(KC, b"[]"), Err(DiscoveryError::NotJson));
    let huge = vec![b' '; MAX_DISCOVERY_BYTES + 1];
    assert_eq!(read_discovery(KC, &huge), Err(DiscoveryError::NotJson));
}

// ---- Review of issue 20 (attacks written by the reviewer) ----

/// A config trusting one issuer with `entry` (keycloak by default) and its key set.
fn trust_one(entry: Value, set_of: Shape) -> Trust {
    let issuers = json!([entry]).to_string();
    let vars: Vec<(&str, String)> = vec![
        ("TRUSTED_ISSUERS", issuers),
        ("UPSTREAM_URL", "https://upstream.example".into()),
    ];
    let cfg = EdgeConfig::from_vars(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
        .unwrap();
    let k = key_of(set_of);
    Trust {
        cfg,
        sets: vec![
            JwkSet::from_json(json!({"keys": [k.public_jwk()]}).to_string().as_bytes()).unwrap(),
        ],
    }
}

/// Auth0 RBAC `permissions` (an array scope claim) are scopes: each must be
/// an RFC 6749 §3.3 scope-token like the space-separated `scope`. A CR/LF
/// would make the `Gatehouse-Scope` header unsettable (500), a tab or NBSP
/// would split into another scope for an upstream that splits on any
/// whitespace, a quote would break a `WWW-Authenticate` parameter.
#[test]
fn array_scope_entries_must_be_scope_tokens() {
    let t = trust(false);
    for bad in [
        "read:orders\r\nx-injected: 1",
        "read:orders\tadmin",
        "read:orders\u{a0}admin",
        "a\"b",
        "a\\b",
        "pr\u{fc}fen",
        "\u{7f}",
    ] {
        let mut c = claims(Shape::Auth0);
        c["permissions"] = json!(["read:orders", bad]);
        assert!(
            matches!(
                t.verify(&mint(Shape::Auth0, &c), NOW),
                Err(AccessTokenError::Claim(_))
            ),
            "{bad:?}"
        );
    }
    let mut c = claims(Shape::Auth0);
    c["permissions"] = json!(["read:orders", "write:orders"]);
    let ok = t.verify(&mint(Shape::Auth0, &c), NOW).unwrap();
    assert!(ok.scope.contains(&"write:orders".to_owned()));
}

/// An operator adding a required claim to the Keycloak preset must not
/// silently drop the preset's own `typ: "Bearer"` (the only thing keeping
/// Keycloak ID tokens, same keys and often the same `aud`, out).
#[test]
fn a_required_claims_override_keeps_the_presets_id_token_guard() {
    let entry = json!({"issuer": KC, "audiences": [API], "preset": "keycloak",
        "jwks_url": format!("{KC}/keys"), "required_claims": {"azp": "web-app"}});
    let t = trust_one(entry.clone(), Shape::KeycloakDefault);
    let mut c = claims(Shape::KeycloakDefault);
    c["typ"] = "ID".into();
    assert!(
        t.verify(&mint(Shape::KeycloakDefault, &c), NOW).is_err(),
        "a Keycloak ID token passed once required_claims was set"
    );
    // The added requirement itself applies, and an access token passes.
    let ok = claims(Shape::KeycloakDefault);
    assert!(t.verify(&mint(Shape::KeycloakDefault, &ok), NOW).is_ok());
    let mut other = claims(Shape::KeycloakDefault);
    other["azp"] = "other-app".into();
    assert!(t
        .verify(&mint(Shape::KeycloakDefault, &other), NOW)
        .is_err());
    // Changing the preset's own value is a configuration error, not a loosening.
    let mut e = entry;
    e["required_claims"] = json!({"typ": "ID"});
    let f: IssuerFile = serde_json::from_value(e).unwrap();
    assert!(f.resolve().is_err());
}

/// ID tokens as Entra ID (v1.0 and v2.0) and Auth0 issue them (nonce,
/// at_hash, `aud` the client id), presented where the operator made the
/// client id an audience (Entra v2: the API's own app id is its `aud`, and
/// one app registration often signs users in too): never an access token.
/// Entra's carry no `azp`/`appid`
/// (<https://learn.microsoft.com/en-us/entra/identity-platform/id-token-claims-reference>);
/// Auth0's carry no `azp` and no `scope`
/// (<https://auth0.com/docs/secure/tokens/id-tokens/id-token-structure>).
#[test]
fn entra_and_auth0_id_tokens_are_not_access_tokens() {
    let t = trust(false);
    for s in [Shape::EntraV1, Shape::EntraV2] {
        let c = json!({
            "aud": API, "iss": issuer_of(s), "iat": NOW, "nbf": NOW, "exp": NOW + 3600,
            "nonce": "n-0S6_WzA2Mj", "at_hash": "HK6E_P6Dh8Y93mRNtsDB1Q", "c_hash": "x",
            "name": "Alice", "oid": "00000000-0000-0000-66f3-3332eca7ea81",
            "preferred_username": "alice@contoso.example", "roles": ["orders-admin"],
            "sub": "user-alice", "tid": ENTRA_TENANT, "uti": "u", "sid": "s",
            "ver": if s == Shape::EntraV1 { "1.0" } else { "2.0" }
        });
        assert!(t.verify(&mint(s, &c), NOW).is_err(), "{s:?} ID token");
    }
    let c = json!({
        "iss": AUTH0, "sub": "auth0|alice", "aud": API, "iat": NOW, "exp": NOW + 36000,
        "nonce": "n-0S6_WzA2Mj", "at_hash": "HK6E_P6Dh8Y93mRNtsDB1Q", "sid": "s",
        "name": "Alice", AUTH0_ROLES_CLAIM: ["orders-admin"]
    });
    assert!(
        t.verify(&mint(Shape::Auth0, &c), NOW).is_err(),
        "Auth0 ID token"
    );
    // Even one that names its client in azp (OpenID Connect Core §2 allows
    // it): an ID token is told apart by its nonce / at_hash / c_hash.
    let mut with_azp = c.clone();
    with_azp["azp"] = Shape::Auth0.client_id().into();
    assert!(
        t.verify(&mint(Shape::Auth0, &with_azp), NOW).is_err(),
        "Auth0 ID token with azp"
    );
}

/// Roles claims of the wrong shape fail the token (never read as "no
/// roles", never reached through a dotted name), and a dotted
/// `role_claims` name is one top-level claim, not a path.
#[test]
fn role_claims_are_read_only_where_configured() {
    let t = trust(false);
    for bad in [
        json!("orders-admin"),
        json!({"roles": ["orders-admin"]}),
        json!([["orders-admin"]]),
    ] {
        let mut c = claims(Shape::KeycloakDefault);
        c["realm_access"] = json!({"roles": bad.clone()});
        assert!(
            t.verify(&mint(Shape::KeycloakDefault, &c), NOW).is_err(),
            "{bad}"
        );
    }
    let entry = json!({"issuer": KC, "audiences": [API], "preset": "keycloak",
        "jwks_url": format!("{KC}/keys"), "role_claims": ["resource_access.web.app.roles"]});
    let t = trust_one(entry, Shape::KeycloakDefault);
    let mut c = claims(Shape::KeycloakDefault);
    c["resource_access"] =
        json!({"web": {"app": {"roles": ["evil"]}}, "web.app": {"roles": ["evil2"]}});
    let ok = t.verify(&mint(Shape::KeycloakDefault, &c), NOW).unwrap();
    assert!(ok.roles.is_empty(), "{:?}", ok.roles);
}

/// No override can loosen iss, aud, exp or the algorithm: symmetric or
/// `none` algorithms are refused, a leeway past 300 s is refused, and
/// there is no field for iss/aud/exp at all.
#[test]
fn overrides_cannot_loosen_iss_aud_exp_or_alg() {
    let base = json!({"issuer": KC, "audiences": [API], "preset": "keycloak", "jwks_url": format!("{KC}/keys")});
    for extra in [
        json!({"algorithms": ["HS256"]}),
        json!({"algorithms": ["none"]}),
        json!({"algorithms": ["RS256", "HS512"]}),
        json!({"leeway_secs": 301}),
        json!({"leeway_secs": -1}),
    ] {
        let mut e = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            e[k] = v.clone();
        }
        let vars = [
            ("TRUSTED_ISSUERS", json!([e]).to_string()),
            ("UPSTREAM_URL", "https://u.example".to_owned()),
        ];
        assert!(
            EdgeConfig::from_vars(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
                .is_err(),
            "{extra}"
        );
    }
    for field in [
        "verify_iss",
        "audience_check",
        "exp",
        "verify_exp",
        "iss",
        "aud",
        "skip_signature",
    ] {
        let mut e = base.clone();
        e[field] = json!(false);
        assert!(serde_json::from_value::<IssuerFile>(e).is_err(), "{field}");
    }
    // A required claim cannot stand in for iss/aud/exp either: they stay checked.
    let mut e = base.clone();
    e["required_claims"] = json!({"iss": "https://evil.example/"});
    let t = trust_one(e, Shape::KeycloakDefault);
    let mut c = claims(Shape::KeycloakDefault);
    c["iss"] = "https://evil.example/".into();
    assert!(t.verify(&mint(Shape::KeycloakDefault, &c), NOW).is_err());
}

/// Discovery documents: the issuer must be byte-identical (no trailing-slash,
/// case or Unicode look-alike leniency), and an https issuer's keys are never
/// named over http.
#[test]
fn discovery_documents_are_compared_exactly() {
    let doc = |iss: &str, jwks: &str| json!({"issuer": iss, "jwks_uri": jwks}).to_string();
    let iss = "https://idp.example/realms/demo";
    for other in [
        "https://idp.example/realms/demo/",
        "https://IDP.example/realms/demo",
        "https://idp.example/realms/Demo",
        "https://idp.examp\u{13de}e/realms/demo",
        "https://idp.example/realms/demo\u{200b}",
        " https://idp.example/realms/demo",
    ] {
        assert_eq!(
            read_discovery(iss, doc(other, "https://idp.example/certs").as_bytes()),
            Err(DiscoveryError::IssuerMismatch),
            "{other:?}"
        );
    }
    for bad in [
        "http://idp.example/certs",
        "HTTP://idp.example/certs",
        "ftp://idp.example/certs",
        "//idp.example/certs",
        "https://idp.example/ce rts",
    ] {
        assert_eq!(
            read_discovery(iss, doc(iss, bad).as_bytes()),
            Err(DiscoveryError::BadJwksUri),
            "{bad}"
        );
    }
    let huge = format!(
        r#"{{"issuer":"{iss}","jwks_uri":"https://idp.example/certs","x":"{}"}}"#,
        "a".repeat(MAX_DISCOVERY_BYTES)
    );
    assert_eq!(
        read_discovery(iss, huge.as_bytes()),
        Err(DiscoveryError::NotJson)
    );
    let dup = format!(
        r#"{{"issuer":"https://evil.example","issuer":"{iss}","jwks_uri":"https://evil.example/certs"}}"#
    );
    assert!(
        read_discovery(iss, dup.as_bytes()).is_err(),
        "duplicate issuer member"
    );
}

/// An https issuer's metadata and keys are never fetched over plain http,
/// whatever the configuration says: a network attacker on an http
/// discovery fetch could name an https `jwks_uri` of their own (the
/// document's https check would pass), and on an http JWKS fetch hand over
/// keys directly.
#[test]
fn an_https_issuer_is_never_configured_with_http_metadata_or_keys() {
    assert!(discovery_url(
        KC,
        Some("http://kc.example/realms/demo/.well-known/openid-configuration")
    )
    .is_err());
    let file = |extra: Value| -> IssuerFile {
        let mut e = json!({"issuer": KC, "audiences": [API], "preset": "keycloak"});
        for (k, v) in extra.as_object().unwrap() {
            e[k] = v.clone();
        }
        serde_json::from_value(e).unwrap()
    };
    assert!(file(json!({"jwks_url": "http://kc.example/certs"}))
        .resolve()
        .is_err());
    assert!(file(json!({"discovery": "http://kc.example/meta"}))
        .resolve()
        .is_err());
    assert!(file(json!({"jwks_url": "https://kc.example/certs"}))
        .resolve()
        .is_ok());
    // An http issuer (a test or a private network) may use http.
    assert!(discovery_url(
        "http://127.0.0.1:8080/realms/demo",
        Some("http://127.0.0.1:8080/meta")
    )
    .is_ok());
}

/// Route-limit keys cannot be made to collide through separators in
/// client ids or subjects (they are JSON arrays, issuer-qualified).
#[test]
fn route_limit_keys_do_not_collide_through_separators() {
    use crate::route_limits::{RouteLimit, RouteLimits};
    use gatehouse_common::policy::{CanonicalPath, DefaultAction, RoutePolicy, RouteRule};
    use gatehouse_common::ratelimit::Quota;
    let policy =
        RoutePolicy::new(DefaultAction::Deny, vec![RouteRule::new("/r", &[], false)]).unwrap();
    let path = CanonicalPath::parse("/r/x").unwrap();
    let route = policy.route(&path);
    let mut limits = RouteLimits::default();
    limits.add(
        "/r",
        vec![RouteLimit::new("client+subject", Quota::new("route", 1, 60)).unwrap()],
    );
    let t = trust(false);
    let key = |client: &str, sub: &str| {
        let mut c = claims(Shape::Auth0Rfc9068);
        c["client_id"] = client.into();
        c["sub"] = sub.into();
        let tok = t.verify(&mint(Shape::Auth0Rfc9068, &c), NOW).unwrap();
        limits.buckets(&route, &tok, "192.0.2.1").remove(0).0
    };
    assert_ne!(key("a", "b|c"), key("a|b", "c"));
    assert_ne!(key("a\",\"b", "c"), key("a", "b\",\"c"));
    assert_ne!(key("a", "b"), key("b", "a"));
    assert_eq!(key("a", "b"), key("a", "b"));
}
