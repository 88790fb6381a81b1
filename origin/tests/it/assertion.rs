//! private_key_jwt (RFC 7523) at /token: a registered JWKS, iss = sub =
//! client_id, aud = the issuer (the token endpoint only behind the
//! per-client compatibility flag: see client_rules.rs), short exp, single-use jti.

use crate::support::now;
use crate::support::*;
use axum::body::Body;
use gatehouse_common::testkit::signer::TestKey;
use gatehouse_origin::domain::clients::{self, NewClient};
use serde_json::{json, Value};

const ISSUER: &str = "http://127.0.0.1:8080";

fn assertion(key: &TestKey, claims: &Value) -> String {
    key.sign(&json!({"alg": key.alg().name(), "typ": "JWT"}), claims)
}

fn claims(id: &str, aud: &str, exp_in: i64) -> Value {
    json!({"iss": id, "sub": id, "aud": aud, "exp": now().0 + exp_in, "iat": now().0,
           "jti": gatehouse_origin::support::secret::random_id().unwrap()})
}

#[tokio::test]
async fn private_key_jwt_checks_every_claim_and_refuses_replay() {
    for tdb in databases() {
        let state = state_with(
            gatehouse_origin::config::Config::for_tests(&tdb.url),
            tdb.open().await,
        )
        .await;
        let key = TestKey::es256("client-assertion-key");
        let other = TestKey::es256("someone-else");
        let jwks = json!({"keys": [key.public_jwk_json()]}).to_string();
        let (c, secret) = clients::create(
            &state.db,
            &NewClient {
                name: "pkjwt".into(),
                scopes: vec!["read".into()],
                audiences: vec![AUD.into()],
                grant_types: vec!["client_credentials".into()],
                jwks: Some(jwks),
                ..NewClient::default()
            },
            now(),
        )
        .await
        .unwrap();
        assert!(secret.is_none(), "private_key_jwt clients get no secret");
        assert_eq!(c.view().token_endpoint_auth_method, "private_key_jwt");
        let id = c.client_id.as_str();

        let good = assertion(&key, &claims(id, ISSUER, 60));
        let (s, b) = post_assertion(&state, &good).await;
        assert_eq!(s, 200, "{}: {b}", tdb.name);
        assert_eq!(b["token_type"], "Bearer");
        let (s, b) = post_assertion(&state, &good).await;
        assert_eq!(
            (s, b["error"].as_str()),
            (401, Some("invalid_client")),
            "replayed jti"
        );
        let (s, _) = post_assertion(&state, &assertion(&key, &claims(id, ISSUER, 60))).await;
        assert_eq!(s, 200, "a fresh jti is accepted");

        let mut wrong_iss = claims(id, ISSUER, 60);
        wrong_iss["iss"] = "someone".into();
        for (what, bad) in [
            (
                "another audience",
                assertion(&key, &claims(id, "https://elsewhere.example/token", 60)),
            ),
            (
                "the token endpoint (no compatibility flag)",
                assertion(&key, &claims(id, &format!("{ISSUER}/token"), 60)),
            ),
            ("expired", assertion(&key, &claims(id, ISSUER, -120))),
            ("too long-lived", assertion(&key, &claims(id, ISSUER, 3600))),
            ("iss != sub", assertion(&key, &wrong_iss)),
            ("another key", assertion(&other, &claims(id, ISSUER, 60))),
            ("garbage", "a.b.c".to_owned()),
        ] {
            let (s, b) = post_assertion(&state, &bad).await;
            assert_eq!(
                (s, b["error"].as_str()),
                (401, Some("invalid_client")),
                "{what}"
            );
        }
        let mut no_jti = claims(id, ISSUER, 60);
        no_jti.as_object_mut().unwrap().remove("jti");
        let (s, _) = post_assertion(&state, &assertion(&key, &no_jti)).await;
        assert_eq!(s, 401, "jti is required");
        // A private_key_jwt client cannot fall back to a secret.
        let (s, _, _) = send(
            &state,
            form_post("/token", Some(&basic(id, "guess")), "")
                .body(Body::from("grant_type=client_credentials"))
                .unwrap(),
        )
        .await;
        assert_eq!(s, 401);
    }
}
