//! Flows across origin and edge that no single component test can show.

use crate::harness::{http, unique, Origin, Stack, ADMIN_TOKEN};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

fn kid_of(token: &str) -> String {
    let header = token.split('.').next().expect("header segment");
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("base64url"))
            .expect("JSON header");
    header["kid"].as_str().expect("kid").to_owned()
}

/// Keys rotate on the published schedule (publish lead 2 s, JWKS max-age 1 s)
/// while tokens are issued and used continuously: every valid request is
/// accepted, and the tokens really were signed by several keys.
#[test]
fn key_rotation_while_requests_flow_refuses_no_valid_request() {
    let stack = Stack::start_linked(
        &[
            ("GATEHOUSE_KEY_PUBLISH_LEAD", "2"),
            ("GATEHOUSE_JWKS_MAX_AGE", "1"),
            ("GATEHOUSE_TOKEN_RATE", "1000000"),
        ],
        &[
            ("JWKS_MIN_TTL_SECS", "1"),
            ("RATE_LIMIT_CLIENT", "1000000/60"),
        ],
    );
    let client = stack.client("read");
    let web = http();
    let mut kids = BTreeSet::new();
    let mut refused = Vec::new();
    let mut requests = 0u32;
    let started = Instant::now();
    let mut next_rotation = started + Duration::from_secs(1);
    let mut rotations = 0;
    while started.elapsed() < Duration::from_secs(14) {
        if Instant::now() >= next_rotation && rotations < 4 {
            let resp = web
                .post(format!("{}/admin/keys/rotate", stack.origin.url))
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .expect("rotate");
            assert!(
                resp.status().is_success(),
                "rotation refused: {}",
                resp.status()
            );
            rotations += 1;
            next_rotation += Duration::from_secs(3);
        }
        let tok = stack.origin.client_credentials(&client, &[]);
        let at = tok["access_token"].as_str().expect("access_token");
        kids.insert(kid_of(at));
        let resp = web
            .get(format!("{}/resource", stack.edge.url))
            .bearer_auth(at)
            .send()
            .expect("edge answers");
        requests += 1;
        if resp.status() != 200 {
            refused.push((
                kid_of(at),
                resp.status().as_u16(),
                resp.text().unwrap_or_default(),
            ));
        }
    }
    eprintln!(
        "{requests} requests, {rotations} rotations, {} signing keys used",
        kids.len()
    );
    assert!(
        refused.is_empty(),
        "valid requests refused during rotation: {refused:?}"
    );
    assert!(
        kids.len() >= 3,
        "the schedule should have switched signers: {kids:?}"
    );
}

/// The custom claims of an origin access token, as jwt-compact reads them
/// (`exp`, `nbf` and `iat` are jwt-compact's own `Claims` fields).
#[derive(serde::Deserialize)]
struct AccessClaims {
    iss: String,
    sub: String,
    aud: serde_json::Value,
    client_id: String,
    scope: String,
    jti: String,
}

/// jwt-compact's verdict on `token` under `alg` with `key`: its parser, its
/// signature check and its own `exp`/`nbf` checks (60 s leeway).
fn jwt_compact_claims<A: jwt_compact::Algorithm>(
    alg: &A,
    key: &A::VerifyingKey,
    token: &str,
) -> Result<AccessClaims, String> {
    use jwt_compact::prelude::*;
    let untrusted = UntrustedToken::new(token).map_err(|e| e.to_string())?;
    let token = alg
        .validator::<AccessClaims>(key)
        .validate(&untrusted)
        .map_err(|e| e.to_string())?;
    let time = TimeOptions::default();
    let claims = token
        .claims()
        .validate_expiration(&time)
        .and_then(|c| c.validate_maturity(&time))
        .map_err(|e| e.to_string())?;
    assert!(claims.issued_at.is_some(), "iat");
    Ok(token.into_parts().1.custom)
}

/// Tokens minted by the origin binary (aws-lc-rs) verify under an
/// implementation that shares no code with ours — jwt-compact's parser,
/// algorithms and time checks over the RustCrypto crates, the key read from
/// the origin's JWKS by jwt-compact's JWK type — for every algorithm the
/// origin signs with; and the same token with its payload changed does not.
#[test]
fn origin_tokens_verify_with_jwt_compact() {
    use jwt_compact::alg::{Ed25519, Es256, Rsa};
    use jwt_compact::jwk::JsonWebKey;
    use jwt_compact::Algorithm;

    for alg in ["ES256", "EdDSA", "RS256", "PS256"] {
        let origin = Origin::start_on_suite_database(&[("GATEHOUSE_SIGNING_ALG", alg)]);
        let audience = "https://api.jwt-compact.example";
        let client = origin.create_client(&unique("jwt-compact"), "read write", audience, &[]);
        let tok = origin.client_credentials(&client, &[("scope", "read")]);
        let at = tok["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned();
        let jwks: serde_json::Value = http()
            .get(format!("{}/.well-known/jwks.json", origin.url))
            .send()
            .expect("GET jwks")
            .json()
            .expect("JWKS is JSON");
        let kid = kid_of(&at);
        let jwk = jwks["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .find(|k| k["kid"] == kid.as_str())
            .expect("the signing key is published")
            .clone();
        let jwk: JsonWebKey<'_> = serde_json::from_value(jwk).expect("jwt-compact reads the JWK");

        let mut payload: serde_json::Value = crate::harness::jwt_claims(&at);
        payload["scope"] = "read write".into();
        let mut parts: Vec<String> = at.split('.').map(str::to_owned).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(payload.to_string());
        let tampered = parts.join(".");

        fn both<A: Algorithm>(
            alg: A,
            key: &A::VerifyingKey,
            at: &str,
            tampered: &str,
        ) -> (Result<AccessClaims, String>, Result<AccessClaims, String>) {
            (
                jwt_compact_claims(&alg, key, at),
                jwt_compact_claims(&alg, key, tampered),
            )
        }
        let (genuine, forged) = match alg {
            "ES256" => both(
                Es256,
                &(&jwk).try_into().expect("P-256 key"),
                &at,
                &tampered,
            ),
            "EdDSA" => both(
                Ed25519,
                &(&jwk).try_into().expect("Ed25519 key"),
                &at,
                &tampered,
            ),
            "RS256" => both(
                Rsa::rs256(),
                &(&jwk).try_into().expect("RSA key"),
                &at,
                &tampered,
            ),
            _ => both(
                Rsa::ps256(),
                &(&jwk).try_into().expect("RSA key"),
                &at,
                &tampered,
            ),
        };
        let claims = genuine.unwrap_or_else(|e| panic!("{alg}: jwt-compact refused: {e}"));
        assert_eq!(claims.iss, origin.url, "{alg}");
        assert_eq!(claims.client_id, client.id, "{alg}");
        assert_eq!(
            claims.sub, client.id,
            "{alg}: client_credentials: sub is the client"
        );
        assert_eq!(claims.scope, "read", "{alg}");
        assert!(!claims.jti.is_empty(), "{alg}");
        assert!(
            claims.aud == audience
                || claims
                    .aud
                    .as_array()
                    .is_some_and(|a| a.contains(&audience.into())),
            "{alg}: aud {}",
            claims.aud
        );
        let err = forged
            .err()
            .unwrap_or_else(|| panic!("{alg}: tampered token accepted"));
        assert!(err.to_lowercase().contains("signature"), "{alg}: {err}");
    }
}
