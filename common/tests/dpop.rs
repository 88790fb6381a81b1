//! RFC 9449 §4.3: one test per numbered check, plus the RFC's own example
//! proofs (`common/testdata/rfc9449_examples.json`, from RFC 9449 §4.1 and §7).
#![cfg(all(feature = "testkit", not(target_arch = "wasm32")))]
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use gatehouse_common::alg::Algorithm;
use gatehouse_common::claims::ClaimError;
use gatehouse_common::dpop::*;
use gatehouse_common::jws::JwsError;
use gatehouse_common::nonce::NonceIssuer;
use gatehouse_common::provider::{RustCrypto, SignatureVerifier};
use gatehouse_common::rejection::{ErrorCode, Scheme};
use gatehouse_common::testkit::signer::TestKey;
use gatehouse_common::UnixTime;
use serde_json::{json, Value};

const NOW: i64 = 1_700_000_000;
const URI: &str = "https://api.example.com/v1/things";
const TOKEN: &str = "eyJhbGciOiJFUzI1NiJ9.e30.c2ln";

fn key() -> TestKey {
    TestKey::es256("dpop-client")
}

fn header(k: &TestKey) -> Value {
    json!({"typ": "dpop+jwt", "alg": k.alg().name(), "jwk": k.public_jwk_json()})
}

fn claims() -> Value {
    json!({"jti": "j1", "htm": "GET", "htu": URI, "iat": NOW})
}

fn request<'a>() -> DpopRequest<'a> {
    DpopRequest {
        method: "GET",
        uri: URI,
        access_token: None,
        nonces: None,
    }
}

fn check(raw: &str, req: &DpopRequest<'_>, now: i64) -> Result<DpopProof, DpopError> {
    let policy = DpopPolicy::default();
    let u = UntrustedDpopProof::parse(&[raw], &policy)?;
    let ok = RustCrypto.verify(u.jwk(), u.alg(), u.signing_input(), u.signature());
    u.accept(ok, &policy, req, UnixTime(now))
}

fn with(mut base: Value, k: &str, v: Value) -> Value {
    base.as_object_mut().unwrap().insert(k.into(), v);
    base
}

fn without(mut base: Value, k: &str) -> Value {
    base.as_object_mut().unwrap().remove(k);
    base
}

#[test]
fn a_good_proof_is_accepted_with_replay_key_and_thumbprint() {
    let k = key();
    let p = check(&k.sign(&header(&k), &claims()), &request(), NOW).unwrap();
    assert_eq!(p.jkt, k.public_jwk(None).unwrap().thumbprint());
    assert_eq!(p.replay_key, replay_key("j1", URI));
    // Accepted up to iat + max_age (60) + leeway (5) inclusive, so the replay
    // key must still be remembered at that last second: the bound is exclusive.
    assert_eq!(p.replay_until, UnixTime(NOW + 66));
    let last = check(&k.sign(&header(&k), &claims()), &request(), NOW + 65).unwrap();
    assert!(UnixTime(NOW + 65) < last.replay_until);
    assert!(check(&k.sign(&header(&k), &claims()), &request(), NOW + 66).is_err());
    assert_eq!(p.htu, URI);
    for k in [TestKey::es384("c"), TestKey::ed25519("c")] {
        check(&k.sign(&header(&k), &claims()), &request(), NOW).unwrap();
    }
}

#[test]
fn check_1_more_than_one_header_is_refused() {
    let k = key();
    let raw = k.sign(&header(&k), &claims());
    let policy = DpopPolicy::default();
    assert_eq!(
        UntrustedDpopProof::parse(&[&raw, &raw], &policy).unwrap_err(),
        DpopError::MultipleProofs
    );
    assert_eq!(
        UntrustedDpopProof::parse(&[], &policy).unwrap_err(),
        DpopError::Missing
    );
}

#[test]
fn check_2_not_a_single_well_formed_jwt() {
    let k = key();
    let raw = k.sign(&header(&k), &claims());
    assert_eq!(
        check(&format!("{raw}.x.y"), &request(), NOW).unwrap_err(),
        DpopError::Jws(JwsError::Encrypted)
    );
    assert_eq!(
        check("a.b", &request(), NOW).unwrap_err(),
        DpopError::Jws(JwsError::Malformed)
    );
    let dup = k.sign_text(
        &header(&k).to_string(),
        r#"{"jti":"a","jti":"b","htm":"GET","htu":"https://api.example.com/v1/things","iat":1700000000}"#,
    );
    assert!(matches!(
        check(&dup, &request(), NOW).unwrap_err(),
        DpopError::Jws(JwsError::Json { .. })
    ));
}

#[test]
fn check_3_required_claims() {
    let k = key();
    for c in ["jti", "htm", "htu", "iat"] {
        let raw = k.sign(&header(&k), &without(claims(), c));
        assert!(
            matches!(
                check(&raw, &request(), NOW).unwrap_err(),
                DpopError::Claim(ClaimError::Missing { .. })
            ),
            "{c}"
        );
    }
    let raw = k.sign(&header(&k), &with(claims(), "iat", json!("1700000000")));
    assert_eq!(
        check(&raw, &request(), NOW).unwrap_err(),
        DpopError::Claim(ClaimError::Invalid { claim: "iat" })
    );
}

#[test]
fn check_4_typ_must_be_dpop_jwt() {
    let k = key();
    for typ in [json!("at+jwt"), json!("JWT"), Value::Null] {
        let h = if typ.is_null() {
            without(header(&k), "typ")
        } else {
            with(header(&k), "typ", typ)
        };
        assert_eq!(
            check(&k.sign(&h, &claims()), &request(), NOW).unwrap_err(),
            DpopError::WrongType
        );
    }
    let h = with(header(&k), "typ", json!("application/DPoP+JWT"));
    check(&k.sign(&h, &claims()), &request(), NOW).unwrap();
}

#[test]
fn check_5_alg_is_asymmetric_and_allowed() {
    let k = key();
    let h = with(header(&k), "alg", json!("none"));
    assert!(matches!(
        check(&k.sign(&h, &claims()), &request(), NOW).unwrap_err(),
        DpopError::Jws(JwsError::Algorithm(_))
    ));
    let h = with(header(&k), "alg", json!("HS256"));
    assert!(matches!(
        check(&k.sign(&h, &claims()), &request(), NOW).unwrap_err(),
        DpopError::Jws(JwsError::Algorithm(_))
    ));
    let policy = DpopPolicy {
        algorithms: vec![Algorithm::EdDsa],
        ..DpopPolicy::default()
    };
    assert_eq!(
        UntrustedDpopProof::parse_one(&k.sign(&header(&k), &claims()), &policy).unwrap_err(),
        DpopError::AlgorithmNotAllowed {
            alg: Algorithm::Es256
        }
    );
    // alg inconsistent with the jwk (EdDSA header, P-256 key).
    let h = with(header(&k), "alg", json!("EdDSA"));
    assert_eq!(
        check(&k.sign(&h, &claims()), &request(), NOW).unwrap_err(),
        DpopError::AlgorithmKeyMismatch
    );
}

#[test]
fn check_6_signature_by_the_jwk() {
    let k = key();
    let other = TestKey::es256("someone else");
    // Signed by `other`, but claims `k`'s key.
    let raw = other.sign(&header(&k), &claims());
    assert_eq!(
        check(&raw, &request(), NOW).unwrap_err(),
        DpopError::InvalidSignature
    );
    assert_eq!(
        check(&without(header(&k), "jwk").to_string(), &request(), NOW)
            .map(|_| ())
            .unwrap_err()
            .code(),
        ErrorCode::InvalidDpopProof
    );
    let raw = k.sign(&without(header(&k), "jwk"), &claims());
    assert_eq!(
        check(&raw, &request(), NOW).unwrap_err(),
        DpopError::MissingKey
    );
}

#[test]
fn check_7_private_key_in_jwk_is_refused() {
    let k = key();
    let h = with(header(&k), "jwk", k.private_jwk_json());
    assert_eq!(
        check(&k.sign(&h, &claims()), &request(), NOW).unwrap_err(),
        DpopError::PrivateKey
    );
}

#[test]
fn check_8_htm_matches_method() {
    let k = key();
    let raw = k.sign(&header(&k), &with(claims(), "htm", json!("POST")));
    assert_eq!(
        check(&raw, &request(), NOW).unwrap_err(),
        DpopError::MethodMismatch
    );
    let raw = k.sign(&header(&k), &with(claims(), "htm", json!("get")));
    assert_eq!(
        check(&raw, &request(), NOW).unwrap_err(),
        DpopError::MethodMismatch
    );
}

#[test]
fn check_9_htu_matches_uri_after_normalization() {
    let k = key();
    let sign = |htu: &str| k.sign(&header(&k), &with(claims(), "htu", json!(htu)));
    // Scheme/host case and default port are normalized.
    check(
        &sign("HTTPS://API.example.com:443/v1/things"),
        &request(),
        NOW,
    )
    .unwrap();
    // The request's query and fragment are ignored.
    let mut req = request();
    req.uri = "https://api.example.com/v1/things?page=2#top";
    check(&sign(URI), &req, NOW).unwrap();
    // A query in the proof's htu is refused.
    assert_eq!(
        check(
            &sign("https://api.example.com/v1/things?x=1"),
            &request(),
            NOW
        )
        .unwrap_err(),
        DpopError::InvalidHtu
    );
    assert_eq!(
        check(&sign("https://api.example.com/v1/other"), &request(), NOW).unwrap_err(),
        DpopError::UriMismatch
    );
    assert_eq!(
        check(
            &sign("https://api.example.com:8443/v1/things"),
            &request(),
            NOW
        )
        .unwrap_err(),
        DpopError::UriMismatch
    );
    assert_eq!(
        check(&sign("http://api.example.com/v1/things"), &request(), NOW).unwrap_err(),
        DpopError::UriMismatch
    );
    assert_eq!(
        check(&sign("/v1/things"), &request(), NOW).unwrap_err(),
        DpopError::InvalidHtu
    );
}

#[test]
fn check_10_nonce_matches_server_nonce() {
    let k = key();
    let issuer = NonceIssuer::with_defaults(&[9; 32]).unwrap();
    let mut req = request();
    req.nonces = Some(&issuer);
    let err = check(&k.sign(&header(&k), &claims()), &req, NOW).unwrap_err();
    assert_eq!(err, DpopError::NonceRequired);
    let rej = err.rejection(Some(&issuer), UnixTime(NOW));
    assert_eq!(rej.code, Some(ErrorCode::UseDpopNonce));
    assert_eq!(rej.status(), 401);
    assert_eq!(rej.dpop_nonce, Some(issuer.issue(UnixTime(NOW))));

    let good = issuer.issue(UnixTime(NOW));
    let p = check(
        &k.sign(&header(&k), &with(claims(), "nonce", json!(good))),
        &req,
        NOW,
    )
    .unwrap();
    assert_eq!(p.nonce.as_deref(), Some(good.as_str()));
    let stale = issuer.issue(UnixTime(NOW - 600));
    assert_eq!(
        check(
            &k.sign(&header(&k), &with(claims(), "nonce", json!(stale))),
            &req,
            NOW
        )
        .unwrap_err(),
        DpopError::NonceInvalid
    );
}

/// Review of 3c24e0c: a nonce refusal must mean the proof is otherwise
/// acceptable now (the edge charges it to the token's subject), so a stale
/// proof is refused as such, not for its nonce.
#[test]
fn a_stale_proof_is_not_a_nonce_refusal() {
    let k = key();
    let issuer = NonceIssuer::with_defaults(&[9; 32]).unwrap();
    let mut req = request();
    req.nonces = Some(&issuer);
    let raw = k.sign(&header(&k), &claims());
    assert_eq!(
        check(&raw, &req, NOW).unwrap_err(),
        DpopError::NonceRequired
    );
    assert_eq!(check(&raw, &req, NOW + 3600).unwrap_err(), DpopError::Stale);
    let stale = issuer.issue(UnixTime(NOW - 600));
    let old = k.sign(&header(&k), &with(claims(), "nonce", json!(stale)));
    assert_eq!(check(&old, &req, NOW + 3600).unwrap_err(), DpopError::Stale);
}

#[test]
fn check_11_iat_window_with_skew_both_ways() {
    let k = key();
    let raw = k.sign(&header(&k), &claims());
    check(&raw, &request(), NOW + 65).unwrap();
    assert_eq!(
        check(&raw, &request(), NOW + 66).unwrap_err(),
        DpopError::Stale
    );
    check(&raw, &request(), NOW - 5).unwrap();
    assert_eq!(
        check(&raw, &request(), NOW - 6).unwrap_err(),
        DpopError::IssuedInFuture
    );
}

#[test]
fn check_12_ath_and_jkt_bind_the_access_token() {
    let k = key();
    let jkt = k.public_jwk(None).unwrap().thumbprint().to_owned();
    let mut req = request();
    req.access_token = Some(BoundAccessToken {
        raw: TOKEN,
        cnf_jkt: Some(&jkt),
    });
    let with_ath = with(claims(), "ath", json!(ath(TOKEN)));
    check(&k.sign(&header(&k), &with_ath), &req, NOW).unwrap();
    assert_eq!(
        check(&k.sign(&header(&k), &claims()), &req, NOW).unwrap_err(),
        DpopError::MissingAth
    );
    let wrong = with(claims(), "ath", json!(ath("another.token.x")));
    assert_eq!(
        check(&k.sign(&header(&k), &wrong), &req, NOW).unwrap_err(),
        DpopError::AthMismatch
    );
    let other = TestKey::es256("thief");
    let err = check(&other.sign(&header(&other), &with_ath), &req, NOW).unwrap_err();
    assert_eq!(err, DpopError::JktMismatch);
    assert_eq!(err.code(), ErrorCode::InvalidToken);
    req.access_token = Some(BoundAccessToken {
        raw: TOKEN,
        cnf_jkt: None,
    });
    assert_eq!(
        check(&k.sign(&header(&k), &with_ath), &req, NOW).unwrap_err(),
        DpopError::TokenNotBound
    );
}

fn examples() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/rfc9449_examples.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn rfc9449_example_proofs_validate_at_their_own_iat() {
    let ex = examples();
    let token = ex["example_access_token"].as_str().unwrap();
    assert_eq!(ath(token), ex["expected_ath_for_example_access_token"]);
    let jkt = ex["expected_jkt_of_example_key"].as_str().unwrap();
    for p in ex["proofs"].as_array().unwrap() {
        let c = &p["claims"];
        let access_token = c.get("ath").map(|_| BoundAccessToken {
            raw: token,
            cnf_jkt: Some(jkt),
        });
        let req = DpopRequest {
            method: c["htm"].as_str().unwrap(),
            uri: c["htu"].as_str().unwrap(),
            access_token,
            nonces: None,
        };
        let proof = check(
            p["proof"].as_str().unwrap(),
            &req,
            c["iat"].as_i64().unwrap(),
        )
        .unwrap();
        assert_eq!(proof.jkt, jkt);
        assert_eq!(proof.jti, c["jti"].as_str().unwrap());
    }
}

#[test]
fn scheme_downgrade_is_refused() {
    let k = TestKey::es256("issuer");
    let raw = k.sign(
        &json!({"alg": "ES256", "typ": "at+jwt", "kid": "k"}),
        &json!({"iss": "https://as", "aud": "api", "sub": "u", "client_id": "c", "jti": "t",
                "iat": NOW, "exp": NOW + 300, "cnf": {"jkt": "abc"}}),
    );
    let policy =
        gatehouse_common::access_token::AccessTokenPolicy::new("https://as", vec!["api".into()]);
    let u = gatehouse_common::access_token::UntrustedAccessToken::parse(&raw, &policy).unwrap();
    let jwk = k.public_jwk(Some("k")).unwrap();
    let ok = RustCrypto.verify(&jwk, Algorithm::Es256, u.signing_input(), u.signature());
    let token = u.accept(ok, &policy, UnixTime(NOW)).unwrap();
    assert_eq!(
        check_scheme(&token, Scheme::Bearer).unwrap_err(),
        DpopError::BoundTokenAsBearer
    );
    check_scheme(&token, Scheme::DPoP).unwrap();
}
