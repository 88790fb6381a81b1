//! The attack table: tokens, proofs and revocation documents crafted after
//! RFC 8725 (JWT Best Current Practices), RFC 9449 §11 and known CVEs, each of
//! which must be refused with one specific error.
//!
//! Every case builds real signed inputs with [`super::signer::TestKey`] and
//! runs them through the full parse → key → verify → accept flow with the
//! provider under test, so the table runs unchanged natively, in Node and in
//! headless Chromium, and against any provider.

use super::fixture::{
    self, client_key, issuer_key, proof_claims, proof_header, set, verify_proof, verify_token, NOW,
    URI,
};
use super::signer::TestKey;
use crate::access_token::AccessTokenError as A;
use crate::alg::AlgorithmRefusal;
use crate::b64;
use crate::claims::ClaimError;
use crate::dpop::{self, BoundAccessToken, DpopError as D, DpopPolicy, DpopRequest};
use crate::json::JsonError;
use crate::jwk::{JwkError, KeyError};
use crate::jws::JwsError;
use crate::nonce::NonceIssuer;
use crate::provider::SignatureVerifier;
use crate::revocation::{
    RevocationDocument, RevocationError, RevocationPolicy, UntrustedRevocationDocument,
};
use crate::UnixTime;
use serde_json::{json, Value};
use std::fmt::Debug;

/// The outcome of one case: `Ok` when refused with the expected error.
pub type Check = Result<(), String>;

/// One attack.
#[derive(Clone, Copy, Debug)]
pub struct Attack {
    /// Short name.
    pub name: &'static str,
    /// Where the attack comes from (RFC section or CVE).
    pub source: &'static str,
    /// Runs the case against a provider.
    pub check: fn(&dyn SignatureVerifier) -> Check,
}

/// Runs every attack; returns the failures as `(name, what happened)`.
#[must_use]
pub fn run_all(verifier: &dyn SignatureVerifier) -> Vec<(&'static str, String)> {
    all()
        .into_iter()
        .filter_map(|a| (a.check)(verifier).err().map(|e| (a.name, e)))
        .collect()
}

fn want<T: Debug, E: PartialEq + Debug>(got: Result<T, E>, expected: E) -> Check {
    match got {
        Err(e) if e == expected => Ok(()),
        other => Err(format!("expected Err({expected:?}), got {other:?}")),
    }
}

fn want_ok<T: Debug, E: Debug>(got: Result<T, E>) -> Check {
    got.map(|_| ())
        .map_err(|e| format!("expected success, got {e:?}"))
}

fn want_match<T: Debug, E: Debug>(got: Result<T, E>, pred: fn(&E) -> bool, what: &str) -> Check {
    match got {
        Err(e) if pred(&e) => Ok(()),
        other => Err(format!("expected {what}, got {other:?}")),
    }
}

// ---- builders -------------------------------------------------------------

fn token(v: &dyn SignatureVerifier, raw: &str) -> Result<crate::access_token::AccessToken, A> {
    verify_token(raw, v, NOW)
}

fn signed(header: &Value, claims: &Value) -> String {
    issuer_key().sign(header, claims)
}

fn claims_with(key: &str, value: Value) -> String {
    fixture::mint(&set(fixture::claims(), key, value))
}

fn header_with(key: &str, value: Value) -> String {
    signed(&set(fixture::header(), key, value), &fixture::claims())
}

fn text(header: &str, claims: &str) -> String {
    issuer_key().sign_text(header, claims)
}

/// `raw` with its signature replaced by `sig`.
fn resign(raw: &str, sig: &[u8]) -> String {
    let input = raw.rsplit_once('.').map_or(raw, |(i, _)| i);
    format!("{input}.{}", b64::encode(sig))
}

/// `raw` with its header replaced (signature kept).
fn reheader(raw: &str, header: &Value) -> String {
    let rest = raw.split_once('.').map_or("", |(_, r)| r);
    format!("{}.{rest}", b64::encode(header.to_string().as_bytes()))
}

fn hs256(key: &[u8], header: &Value, claims: &Value) -> String {
    use hmac::{Hmac, Mac};
    let input = format!(
        "{}.{}",
        b64::encode(header.to_string().as_bytes()),
        b64::encode(claims.to_string().as_bytes())
    );
    let sig = Hmac::<sha2::Sha256>::new_from_slice(key)
        .map(|mut m| {
            m.update(input.as_bytes());
            m.finalize().into_bytes().to_vec()
        })
        .unwrap_or_default();
    format!("{input}.{}", b64::encode(&sig))
}

/// P-256 group order n, big-endian.
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

fn request() -> DpopRequest<'static> {
    DpopRequest {
        method: "GET",
        uri: URI,
        access_token: None,
        nonces: None,
    }
}

fn proof(v: &dyn SignatureVerifier, raw: &str) -> Result<dpop::DpopProof, D> {
    verify_proof(raw, v, &request(), NOW)
}

fn proof_with_claim(key: &str, value: Value) -> String {
    let k = client_key();
    k.sign(&proof_header(&k), &set(proof_claims(), key, value))
}

fn proof_with_header(key: &str, value: Value) -> String {
    let k = client_key();
    k.sign(&set(proof_header(&k), key, value), &proof_claims())
}

const AT: &str = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl";

fn bound_check(
    v: &dyn SignatureVerifier,
    raw_proof: &str,
    jkt: &str,
) -> Result<dpop::DpopProof, D> {
    let req = DpopRequest {
        access_token: Some(BoundAccessToken {
            raw: AT,
            cnf_jkt: Some(jkt),
        }),
        ..request()
    };
    verify_proof(raw_proof, v, &req, NOW)
}

fn client_jkt() -> String {
    client_key()
        .public_jwk(None)
        .map(|k| k.thumbprint().to_owned())
        .unwrap_or_default()
}

fn revocations(
    v: &dyn SignatureVerifier,
    raw: &str,
    held: Option<u64>,
) -> Result<u64, RevocationError> {
    let policy = RevocationPolicy::new(fixture::ISSUER);
    let keys = fixture::jwks();
    let u = UntrustedRevocationDocument::parse(raw, &policy)?;
    let Ok(key) = keys.select(u.kid(), u.header_alg()) else {
        return Err(RevocationError::InvalidSignature);
    };
    let ok = v.verify(key.jwk, key.alg, u.signing_input(), u.signature());
    u.accept(ok, &policy, held, UnixTime(NOW))
        .map(|l| l.version())
}

fn revocation_doc(version: u64) -> Value {
    RevocationDocument {
        iss: fixture::ISSUER.into(),
        iat: NOW,
        version,
        entries: vec![],
    }
    .to_claims()
}

// ---- the table ------------------------------------------------------------

/// Every attack case (more than 60), with controls that must succeed first.
#[must_use]
#[allow(clippy::too_many_lines)]
pub fn all() -> Vec<Attack> {
    vec![
        // Controls: the unmodified inputs are accepted, so each refusal below
        // is caused by its one modification.
        Attack {
            name: "control: valid access token",
            source: "RFC 9068 §4",
            check: |v| want_ok(token(v, &fixture::mint(&fixture::claims()))),
        },
        Attack {
            name: "control: valid DPoP proof",
            source: "RFC 9449 §4.3",
            check: |v| want_ok(proof(v, &proof_with_claim("jti", json!("ok")))),
        },
        Attack {
            name: "control: valid bound proof",
            source: "RFC 9449 §4.3 (12)",
            check: |v| {
                want_ok(bound_check(
                    v,
                    &proof_with_claim("ath", json!(dpop::ath(AT))),
                    &client_jkt(),
                ))
            },
        },
        Attack {
            name: "control: valid revocation document",
            source: "ARCHITECTURE.md",
            check: |v| {
                want_ok(revocations(
                    v,
                    &issuer_key().sign(
                        &RevocationDocument::header(issuer_key().alg(), fixture::KID),
                        &revocation_doc(3),
                    ),
                    Some(2),
                ))
            },
        },
        // --- algorithm attacks (RFC 8725 §2.1, §3.1–3.2) ---
        Attack {
            name: "alg none, empty signature",
            source: "RFC 8725 §2.1; CVE-2015-9235",
            check: |v| {
                want(
                    token(
                        v,
                        &format!(
                            "{}.{}.",
                            b64::encode(br#"{"alg":"none","typ":"at+jwt","kid":"k1"}"#),
                            b64::encode(fixture::claims().to_string().as_bytes())
                        ),
                    ),
                    A::Jws(JwsError::Malformed),
                )
            },
        },
        Attack {
            name: "alg none with a signature",
            source: "RFC 8725 §3.2",
            check: |v| {
                want(
                    token(v, &header_with("alg", json!("none"))),
                    A::Jws(JwsError::Algorithm(AlgorithmRefusal::None)),
                )
            },
        },
        Attack {
            name: "alg None (case variant)",
            source: "CVE-2015-9235 variants",
            check: |v| {
                want(
                    token(v, &header_with("alg", json!("None"))),
                    A::Jws(JwsError::Algorithm(AlgorithmRefusal::Unsupported)),
                )
            },
        },
        Attack {
            name: "alg nOnE (case variant)",
            source: "CVE-2015-9235 variants",
            check: |v| {
                want(
                    token(v, &header_with("alg", json!("nOnE"))),
                    A::Jws(JwsError::Algorithm(AlgorithmRefusal::Unsupported)),
                )
            },
        },
        Attack {
            name: "HS256 keyed with the issuer's public JWK",
            source: "RFC 8725 §2.1; CVE-2016-10555",
            check: |v| {
                want(
                    token(
                        v,
                        &hs256(
                            issuer_key().public_jwk_json().to_string().as_bytes(),
                            &set(fixture::header(), "alg", json!("HS256")),
                            &fixture::claims(),
                        ),
                    ),
                    A::Jws(JwsError::Algorithm(AlgorithmRefusal::Symmetric)),
                )
            },
        },
        Attack {
            name: "HS384 algorithm confusion",
            source: "RFC 8725 §3.1",
            check: |v| {
                want(
                    token(v, &header_with("alg", json!("HS384"))),
                    A::Jws(JwsError::Algorithm(AlgorithmRefusal::Symmetric)),
                )
            },
        },
        Attack {
            name: "HS512 algorithm confusion",
            source: "RFC 8725 §3.1",
            check: |v| {
                want(
                    token(v, &header_with("alg", json!("HS512"))),
                    A::Jws(JwsError::Algorithm(AlgorithmRefusal::Symmetric)),
                )
            },
        },
        Attack {
            name: "lower-case es256",
            source: "RFC 7515 §4.1.1 (case-sensitive)",
            check: |v| {
                want(
                    token(v, &header_with("alg", json!("es256"))),
                    A::Jws(JwsError::Algorithm(AlgorithmRefusal::Unsupported)),
                )
            },
        },
        Attack {
            name: "alg with trailing NUL",
            source: "parser differential",
            check: |v| {
                want(
                    token(v, &header_with("alg", json!("ES256\u{0}"))),
                    A::Jws(JwsError::Algorithm(AlgorithmRefusal::Unsupported)),
                )
            },
        },
        Attack {
            name: "alg missing",
            source: "RFC 7515 §4.1.1",
            check: |v| {
                want(
                    token(
                        v,
                        &signed(&json!({"typ": "at+jwt", "kid": "k1"}), &fixture::claims()),
                    ),
                    A::Jws(JwsError::MissingAlgorithm),
                )
            },
        },
        Attack {
            name: "alg as array",
            source: "type confusion",
            check: |v| {
                want(
                    token(v, &header_with("alg", json!(["ES256"]))),
                    A::Jws(JwsError::MissingAlgorithm),
                )
            },
        },
        Attack {
            name: "RS256 header on an EC key",
            source: "RFC 8725 §3.1 (key decides alg)",
            check: |v| {
                want_match(
                    token(v, &header_with("alg", json!("RS256"))),
                    |e| matches!(e, A::Key(KeyError::AlgorithmMismatch { .. })),
                    "Key(AlgorithmMismatch)",
                )
            },
        },
        Attack {
            name: "EdDSA header on an EC key",
            source: "RFC 8725 §3.1",
            check: |v| {
                want_match(
                    token(v, &header_with("alg", json!("EdDSA"))),
                    |e| matches!(e, A::Key(KeyError::AlgorithmMismatch { .. })),
                    "Key(AlgorithmMismatch)",
                )
            },
        },
        Attack {
            name: "ES384 header with a 96-byte signature on a P-256 key",
            source: "RFC 8725 §3.1",
            check: |v| {
                want_match(
                    token(v, &resign(&header_with("alg", json!("ES384")), &[1; 96])),
                    |e| matches!(e, A::Key(KeyError::AlgorithmMismatch { .. })),
                    "Key(AlgorithmMismatch)",
                )
            },
        },
        // --- key selection (RFC 8725 §3.10, kid injection) ---
        Attack {
            name: "embedded jwk (attacker's key) in an access token",
            source: "CVE-2018-0114",
            check: |v| {
                let a = TestKey::es256("attacker");
                want(
                    token(
                        v,
                        &a.sign(
                            &set(fixture::header(), "jwk", a.public_jwk_json()),
                            &fixture::claims(),
                        ),
                    ),
                    A::EmbeddedKey,
                )
            },
        },
        Attack {
            name: "jku pointing at the attacker, signed by the attacker",
            source: "RFC 8725 §3.10",
            check: |v| {
                want(
                    token(
                        v,
                        &TestKey::es256("attacker").sign(
                            &set(fixture::header(), "jku", json!("https://evil.example/jwks")),
                            &fixture::claims(),
                        ),
                    ),
                    A::InvalidSignature,
                )
            },
        },
        Attack {
            name: "x5u pointing at the attacker",
            source: "RFC 8725 §3.10",
            check: |v| {
                want(
                    token(
                        v,
                        &TestKey::es256("attacker").sign(
                            &set(fixture::header(), "x5u", json!("https://evil.example/cert")),
                            &fixture::claims(),
                        ),
                    ),
                    A::InvalidSignature,
                )
            },
        },
        Attack {
            name: "x5c with the attacker's certificate",
            source: "RFC 8725 §3.10",
            check: |v| {
                want(
                    token(
                        v,
                        &TestKey::es256("attacker").sign(
                            &set(fixture::header(), "x5c", json!(["MIIB"])),
                            &fixture::claims(),
                        ),
                    ),
                    A::InvalidSignature,
                )
            },
        },
        Attack {
            name: "kid path traversal",
            source: "RFC 8725 §3.10; CVE-2018-1000531-style",
            check: |v| {
                want(
                    token(v, &header_with("kid", json!("../../../../dev/null"))),
                    A::Key(KeyError::UnknownKid),
                )
            },
        },
        Attack {
            name: "kid SQL injection",
            source: "RFC 8725 §3.10",
            check: |v| {
                want(
                    token(v, &header_with("kid", json!("x' UNION SELECT 'secret"))),
                    A::Key(KeyError::UnknownKid),
                )
            },
        },
        Attack {
            name: "kid too long",
            source: "resource exhaustion",
            check: |v| {
                want(
                    token(v, &header_with("kid", json!("k".repeat(300)))),
                    A::Jws(JwsError::InvalidHeader { name: "kid" }),
                )
            },
        },
        Attack {
            name: "kid not a string",
            source: "type confusion",
            check: |v| {
                want(
                    token(v, &header_with("kid", json!({"$ne": null}))),
                    A::Jws(JwsError::InvalidHeader { name: "kid" }),
                )
            },
        },
        Attack {
            name: "forged with an unknown key under the issuer's kid",
            source: "RFC 8725 §3.4",
            check: |v| {
                want(
                    token(
                        v,
                        &TestKey::es256("attacker").sign(&fixture::header(), &fixture::claims()),
                    ),
                    A::InvalidSignature,
                )
            },
        },
        Attack {
            name: "Ed25519 forgery under the issuer's kid",
            source: "RFC 8725 §3.4",
            check: |v| {
                want_match(
                    token(
                        v,
                        &TestKey::ed25519("attacker").sign(
                            &set(fixture::header(), "alg", json!("EdDSA")),
                            &fixture::claims(),
                        ),
                    ),
                    |e| matches!(e, A::Key(KeyError::AlgorithmMismatch { .. })),
                    "Key(AlgorithmMismatch)",
                )
            },
        },
        // --- signature malleability (CVE-2022-21449 and friends) ---
        Attack {
            name: "psychic signature r = s = 0",
            source: "CVE-2022-21449",
            check: |v| {
                want(
                    token(v, &resign(&fixture::mint(&fixture::claims()), &[0; 64])),
                    A::InvalidSignature,
                )
            },
        },
        Attack {
            name: "r = s = n (group order)",
            source: "CVE-2022-21449",
            check: |v| {
                let mut s = P256_N.to_vec();
                s.extend_from_slice(&P256_N);
                want(
                    token(v, &resign(&fixture::mint(&fixture::claims()), &s)),
                    A::InvalidSignature,
                )
            },
        },
        Attack {
            name: "r = 0 with the real s",
            source: "CVE-2022-21449",
            check: |v| {
                let raw = fixture::mint(&fixture::claims());
                let mut s =
                    b64::decode(raw.rsplit('.').next().unwrap_or_default()).unwrap_or_default();
                s.iter_mut().take(32).for_each(|b| *b = 0);
                want(token(v, &resign(&raw, &s)), A::InvalidSignature)
            },
        },
        Attack {
            name: "DER-encoded ECDSA signature",
            source: "RFC 7518 §3.4 (P1363 only)",
            check: |v| {
                want(
                    token(v, &resign(&fixture::mint(&fixture::claims()), &[0x30; 70])),
                    A::Jws(JwsError::SignatureLength),
                )
            },
        },
        Attack {
            name: "truncated signature",
            source: "RFC 7518 §3.4",
            check: |v| {
                let raw = fixture::mint(&fixture::claims());
                let s = b64::decode(raw.rsplit('.').next().unwrap_or_default()).unwrap_or_default();
                want(
                    token(v, &resign(&raw, s.get(..63).unwrap_or_default())),
                    A::Jws(JwsError::SignatureLength),
                )
            },
        },
        Attack {
            name: "signature stripped",
            source: "RFC 8725 §3.2",
            check: |v| {
                let raw = fixture::mint(&fixture::claims());
                want(
                    token(
                        v,
                        &format!("{}.", raw.rsplit_once('.').map_or("", |(i, _)| i)),
                    ),
                    A::Jws(JwsError::Malformed),
                )
            },
        },
        Attack {
            name: "payload changed after signing (scope escalation)",
            source: "RFC 7515 §5.2",
            check: |v| {
                let good = fixture::mint(&fixture::claims());
                let evil = fixture::mint(&set(fixture::claims(), "scope", json!("admin")));
                let sig = good.rsplit('.').next().unwrap_or_default();
                let input = evil.rsplit_once('.').map_or("", |(i, _)| i);
                want(token(v, &format!("{input}.{sig}")), A::InvalidSignature)
            },
        },
        Attack {
            name: "header changed after signing (typ/kid rewrite)",
            source: "RFC 7515 §5.2",
            check: |v| {
                want(
                    token(
                        v,
                        &reheader(
                            &fixture::mint(&fixture::claims()),
                            &json!({"alg": "ES256", "typ": "application/at+jwt", "kid": "k1"}),
                        ),
                    ),
                    A::InvalidSignature,
                )
            },
        },
        // --- size and structure (RFC 8725 §3.11, DoS) ---
        Attack {
            name: "oversized token",
            source: "RFC 8725 §3.11; CVE-2023-49290-style DoS",
            check: |v| {
                want(
                    token(v, &claims_with("pad", json!("x".repeat(9000)))),
                    A::Jws(JwsError::TooLarge { limit: 8192 }),
                )
            },
        },
        Attack {
            name: "oversized header",
            source: "DoS",
            check: |v| {
                want(
                    token(v, &header_with("pad", json!("x".repeat(1200)))),
                    A::Jws(JwsError::TooLarge { limit: 1024 }),
                )
            },
        },
        Attack {
            name: "deeply nested claims",
            source: "CVE-2017-1000052-style stack exhaustion",
            check: |v| {
                want(
                    token(
                        v,
                        &text(
                            &fixture::header().to_string(),
                            &format!("{{\"a\":{}1{}}}", "[".repeat(100), "]".repeat(100)),
                        ),
                    ),
                    A::Jws(JwsError::Json {
                        part: "payload",
                        error: JsonError::TooDeep,
                    }),
                )
            },
        },
        Attack {
            name: "JWE (five segments)",
            source: "RFC 9068 §4 step 2",
            check: |v| {
                want(
                    token(v, "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d"),
                    A::Jws(JwsError::Encrypted),
                )
            },
        },
        Attack {
            name: "four segments",
            source: "RFC 7515 §7.1",
            check: |v| {
                want(
                    token(v, &format!("{}.x", fixture::mint(&fixture::claims()))),
                    A::Jws(JwsError::Malformed),
                )
            },
        },
        Attack {
            name: "padded base64url",
            source: "RFC 7515 §2",
            check: |v| {
                let raw = fixture::mint(&fixture::claims());
                let (h, rest) = raw.split_once('.').unwrap_or_default();
                want(
                    token(v, &format!("{h}=.{rest}")),
                    A::Jws(JwsError::Base64 { part: "header" }),
                )
            },
        },
        Attack {
            name: "standard base64 alphabet",
            source: "RFC 7515 §2",
            check: |v| {
                let raw = fixture::mint(&fixture::claims());
                let (input, _) = raw.rsplit_once('.').unwrap_or_default();
                want(
                    token(v, &format!("{input}.+/+/")),
                    A::Jws(JwsError::Base64 { part: "signature" }),
                )
            },
        },
        Attack {
            name: "payload is a JSON array",
            source: "RFC 7519 §7.2",
            check: |v| {
                want(
                    token(v, &text(&fixture::header().to_string(), "[1,2]")),
                    A::Jws(JwsError::Json {
                        part: "payload",
                        error: JsonError::NotAnObject,
                    }),
                )
            },
        },
        Attack {
            name: "trailing garbage after the claims",
            source: "parser differential",
            check: |v| {
                want(
                    token(
                        v,
                        &text(
                            &fixture::header().to_string(),
                            &format!("{} x", fixture::claims()),
                        ),
                    ),
                    A::Jws(JwsError::Json {
                        part: "payload",
                        error: JsonError::Syntax,
                    }),
                )
            },
        },
        // --- duplicate members (RFC 7515 §5.2, RFC 8725 §3.2) ---
        Attack {
            name: "duplicate sub claim",
            source: "RFC 8725 §3.2; CVE-2017-12973-style",
            check: |v| {
                want(
                    token(
                        v,
                        &text(
                            &fixture::header().to_string(),
                            &fixture::claims()
                                .to_string()
                                .replacen('{', "{\"sub\":\"admin\",", 1),
                        ),
                    ),
                    A::Jws(JwsError::Json {
                        part: "payload",
                        error: JsonError::DuplicateMember,
                    }),
                )
            },
        },
        Attack {
            name: "duplicate exp claim",
            source: "RFC 8725 §3.2",
            check: |v| {
                want(
                    token(
                        v,
                        &text(
                            &fixture::header().to_string(),
                            &fixture::claims().to_string().replacen(
                                '{',
                                "{\"exp\":99999999999,",
                                1,
                            ),
                        ),
                    ),
                    A::Jws(JwsError::Json {
                        part: "payload",
                        error: JsonError::DuplicateMember,
                    }),
                )
            },
        },
        Attack {
            name: "duplicate alg header",
            source: "RFC 7515 §4",
            check: |v| {
                want(
                    token(
                        v,
                        &text(
                            r#"{"alg":"ES256","alg":"none","typ":"at+jwt","kid":"k1"}"#,
                            &fixture::claims().to_string(),
                        ),
                    ),
                    A::Jws(JwsError::Json {
                        part: "header",
                        error: JsonError::DuplicateMember,
                    }),
                )
            },
        },
        Attack {
            name: "duplicate nested cnf.jkt",
            source: "RFC 8725 §3.2",
            check: |v| {
                want(
                    token(
                        v,
                        &text(
                            &fixture::header().to_string(),
                            &fixture::claims().to_string().replacen(
                                '{',
                                r#"{"cnf":{"jkt":"a","jkt":"b"},"#,
                                1,
                            ),
                        ),
                    ),
                    A::Jws(JwsError::Json {
                        part: "payload",
                        error: JsonError::DuplicateMember,
                    }),
                )
            },
        },
        // --- claim types and values (RFC 9068 §4; CVE-2026-25537) ---
        Attack {
            name: "exp as a string",
            source: "CVE-2026-25537",
            check: |v| {
                want(
                    token(v, &claims_with("exp", json!((NOW - 10).to_string()))),
                    A::Claim(ClaimError::Invalid { claim: "exp" }),
                )
            },
        },
        Attack {
            name: "exp missing",
            source: "RFC 9068 §2.2",
            check: |v| {
                want(
                    token(
                        v,
                        &fixture::mint(&set(fixture::claims(), "exp", Value::Null)),
                    ),
                    A::Claim(ClaimError::Missing { claim: "exp" }),
                )
            },
        },
        Attack {
            name: "exp as a boolean",
            source: "type confusion",
            check: |v| {
                want(
                    token(v, &claims_with("exp", json!(true))),
                    A::Claim(ClaimError::Invalid { claim: "exp" }),
                )
            },
        },
        Attack {
            name: "exp negative",
            source: "range",
            check: |v| {
                want(
                    token(v, &claims_with("exp", json!(-1))),
                    A::Claim(ClaimError::Invalid { claim: "exp" }),
                )
            },
        },
        Attack {
            name: "exp 1e300",
            source: "range / float overflow",
            check: |v| {
                want(
                    token(v, &claims_with("exp", json!(1e300))),
                    A::Claim(ClaimError::Invalid { claim: "exp" }),
                )
            },
        },
        Attack {
            name: "iat as a string",
            source: "CVE-2026-25537",
            check: |v| {
                want(
                    token(v, &claims_with("iat", json!("now"))),
                    A::Claim(ClaimError::Invalid { claim: "iat" }),
                )
            },
        },
        Attack {
            name: "nbf as a string",
            source: "CVE-2026-25537",
            check: |v| {
                want(
                    token(v, &claims_with("nbf", json!("0"))),
                    A::Claim(ClaimError::Invalid { claim: "nbf" }),
                )
            },
        },
        Attack {
            name: "aud as a number",
            source: "type confusion",
            check: |v| {
                want(
                    token(v, &claims_with("aud", json!(1))),
                    A::Claim(ClaimError::Invalid { claim: "aud" }),
                )
            },
        },
        Attack {
            name: "aud for another resource",
            source: "RFC 8725 §3.9",
            check: |v| {
                want(
                    token(v, &claims_with("aud", json!("https://other.example"))),
                    A::AudienceMismatch,
                )
            },
        },
        Attack {
            name: "aud array without us",
            source: "RFC 8725 §3.9",
            check: |v| {
                want(
                    token(
                        v,
                        &claims_with("aud", json!(["https://a.example", "https://b.example"])),
                    ),
                    A::AudienceMismatch,
                )
            },
        },
        Attack {
            name: "aud prefix of ours",
            source: "substring matching",
            check: |v| {
                want(
                    token(v, &claims_with("aud", json!("https://api.exampl"))),
                    A::AudienceMismatch,
                )
            },
        },
        Attack {
            name: "iss of another issuer",
            source: "RFC 8725 §3.8",
            check: |v| {
                want(
                    token(v, &claims_with("iss", json!("https://evil.example"))),
                    A::UntrustedIssuer,
                )
            },
        },
        Attack {
            name: "iss with a trailing slash",
            source: "RFC 9068 §4 step 3 (exact match)",
            check: |v| {
                want(
                    token(v, &claims_with("iss", json!("https://issuer.example/"))),
                    A::UntrustedIssuer,
                )
            },
        },
        Attack {
            name: "iss as an array",
            source: "type confusion",
            check: |v| {
                want(
                    token(v, &claims_with("iss", json!([fixture::ISSUER]))),
                    A::Claim(ClaimError::Invalid { claim: "iss" }),
                )
            },
        },
        Attack {
            name: "expired token",
            source: "RFC 9068 §4 step 6",
            check: |v| {
                want(
                    token(v, &claims_with("exp", json!(NOW - 31))),
                    A::Expired {
                        expired_at: NOW - 31,
                    },
                )
            },
        },
        Attack {
            name: "not yet valid (nbf)",
            source: "RFC 7519 §4.1.5",
            check: |v| {
                want(
                    token(v, &claims_with("nbf", json!(NOW + 3600))),
                    A::NotYetValid,
                )
            },
        },
        Attack {
            name: "issued in the future",
            source: "RFC 7519 §4.1.6",
            check: |v| {
                want(
                    token(v, &claims_with("iat", json!(NOW + 3600))),
                    A::IssuedInFuture,
                )
            },
        },
        Attack {
            name: "sub missing",
            source: "RFC 9068 §2.2",
            check: |v| {
                want(
                    token(
                        v,
                        &fixture::mint(&set(fixture::claims(), "sub", Value::Null)),
                    ),
                    A::Claim(ClaimError::Missing { claim: "sub" }),
                )
            },
        },
        Attack {
            name: "client_id missing",
            source: "RFC 9068 §2.2",
            check: |v| {
                want(
                    token(
                        v,
                        &fixture::mint(&set(fixture::claims(), "client_id", Value::Null)),
                    ),
                    A::Claim(ClaimError::Missing { claim: "client_id" }),
                )
            },
        },
        Attack {
            name: "jti missing",
            source: "RFC 9068 §2.2",
            check: |v| {
                want(
                    token(
                        v,
                        &fixture::mint(&set(fixture::claims(), "jti", Value::Null)),
                    ),
                    A::Claim(ClaimError::Missing { claim: "jti" }),
                )
            },
        },
        Attack {
            name: "sub empty",
            source: "empty-string identity",
            check: |v| {
                want(
                    token(v, &claims_with("sub", json!(""))),
                    A::Claim(ClaimError::Invalid { claim: "sub" }),
                )
            },
        },
        Attack {
            name: "scope with a quote (header injection)",
            source: "RFC 6749 §3.3",
            check: |v| {
                want(
                    token(v, &claims_with("scope", json!("read\" admin"))),
                    A::Claim(ClaimError::Invalid { claim: "scope" }),
                )
            },
        },
        Attack {
            name: "cnf as a string",
            source: "RFC 7800 §3.1",
            check: |v| {
                want(
                    token(v, &claims_with("cnf", json!("jkt"))),
                    A::Claim(ClaimError::Invalid { claim: "cnf" }),
                )
            },
        },
        Attack {
            name: "cnf with only x5t#S256 (mTLS binding)",
            source: "RFC 8705 §3.1",
            check: |v| {
                want(
                    token(v, &claims_with("cnf", json!({"x5t#S256": "abc"}))),
                    A::UnsupportedConfirmation,
                )
            },
        },
        // --- critical headers and nesting (RFC 7515 §4.1.11, RFC 8725 §2.8) ---
        Attack {
            name: "crit naming exp",
            source: "RFC 7515 §4.1.11",
            check: |v| {
                want(
                    token(v, &header_with("crit", json!(["exp"]))),
                    A::Jws(JwsError::CriticalExtension),
                )
            },
        },
        Attack {
            name: "empty crit",
            source: "RFC 7515 §4.1.11",
            check: |v| {
                want(
                    token(v, &header_with("crit", json!([]))),
                    A::Jws(JwsError::CriticalExtension),
                )
            },
        },
        Attack {
            name: "b64 false (unencoded payload)",
            source: "RFC 7797",
            check: |v| {
                want(
                    token(v, &header_with("b64", json!(false))),
                    A::Jws(JwsError::ForbiddenHeader { name: "b64" }),
                )
            },
        },
        Attack {
            name: "zip DEF",
            source: "RFC 8725 §3.6",
            check: |v| {
                want(
                    token(v, &header_with("zip", json!("DEF"))),
                    A::Jws(JwsError::ForbiddenHeader { name: "zip" }),
                )
            },
        },
        Attack {
            name: "nested JWT (cty JWT)",
            source: "RFC 8725 §2.8; RFC 7519 §5.2",
            check: |v| {
                want(
                    token(v, &header_with("cty", json!("JWT"))),
                    A::Jws(JwsError::ForbiddenHeader { name: "cty" }),
                )
            },
        },
        Attack {
            name: "nested JWT (cty application/jwt)",
            source: "RFC 8725 §2.8",
            check: |v| {
                want(
                    token(v, &header_with("cty", json!("application/JWT"))),
                    A::Jws(JwsError::ForbiddenHeader { name: "cty" }),
                )
            },
        },
        // --- typ confusion (RFC 8725 §3.11) ---
        Attack {
            name: "DPoP proof presented as access token",
            source: "RFC 8725 §3.11",
            check: |v| {
                want(
                    token(v, &header_with("typ", json!("dpop+jwt"))),
                    A::WrongType,
                )
            },
        },
        Attack {
            name: "typ JWT (ID token as access token)",
            source: "RFC 9068 §4 step 1",
            check: |v| want(token(v, &header_with("typ", json!("JWT"))), A::WrongType),
        },
        Attack {
            name: "typ missing",
            source: "RFC 9068 §4 step 1",
            check: |v| {
                want(
                    token(
                        v,
                        &signed(&json!({"alg": "ES256", "kid": "k1"}), &fixture::claims()),
                    ),
                    A::WrongType,
                )
            },
        },
        Attack {
            name: "revocation document presented as access token",
            source: "RFC 8725 §3.11",
            check: |v| {
                want(
                    token(v, &header_with("typ", json!("gatehouse-revocations+jwt"))),
                    A::WrongType,
                )
            },
        },
        Attack {
            name: "access token presented as DPoP proof",
            source: "RFC 8725 §3.11",
            check: |v| {
                want(
                    proof(v, &proof_with_header("typ", json!("at+jwt"))),
                    D::WrongType,
                )
            },
        },
        Attack {
            name: "access token presented as revocation document",
            source: "RFC 8725 §3.11",
            check: |v| {
                want(
                    revocations(
                        v,
                        &issuer_key().sign(&fixture::header(), &revocation_doc(9)),
                        None,
                    ),
                    RevocationError::WrongType,
                )
            },
        },
        // --- DPoP proofs (RFC 9449 §4.3, §11) ---
        Attack {
            name: "private key in the proof's jwk",
            source: "RFC 9449 §4.3 (7)",
            check: |v| {
                want(
                    proof(
                        v,
                        &proof_with_header("jwk", client_key().private_jwk_json()),
                    ),
                    D::PrivateKey,
                )
            },
        },
        Attack {
            name: "symmetric jwk in the proof",
            source: "RFC 9449 §4.3 (5, 7)",
            check: |v| {
                want(
                    proof(
                        v,
                        &proof_with_header("jwk", json!({"kty": "oct", "k": "c2VjcmV0"})),
                    ),
                    D::PrivateKey,
                )
            },
        },
        Attack {
            name: "proof without jwk",
            source: "RFC 9449 §4.2",
            check: |v| {
                let k = client_key();
                want(
                    proof(
                        v,
                        &k.sign(&set(proof_header(&k), "jwk", Value::Null), &proof_claims()),
                    ),
                    D::MissingKey,
                )
            },
        },
        Attack {
            name: "proof jwk with a 1024-bit RSA key",
            source: "RFC 7518 §3.3",
            check: |v| {
                let mut n = vec![0xc5; 128];
                if let Some(last) = n.last_mut() {
                    *last = 1;
                }
                want(
                    proof(
                        v,
                        &proof_with_header(
                            "jwk",
                            json!({"kty": "RSA", "n": b64::encode(&n), "e": "AQAB"}),
                        ),
                    ),
                    D::InvalidKey(JwkError::RsaModulusSize { bits: 1024 }),
                )
            },
        },
        Attack {
            name: "proof alg EdDSA with a P-256 jwk",
            source: "RFC 9449 §4.3 (5)",
            check: |v| {
                want(
                    proof(v, &proof_with_header("alg", json!("EdDSA"))),
                    D::AlgorithmKeyMismatch,
                )
            },
        },
        Attack {
            name: "proof alg none",
            source: "RFC 9449 §4.3 (5)",
            check: |v| {
                want(
                    proof(v, &proof_with_header("alg", json!("none"))),
                    D::Jws(JwsError::Algorithm(AlgorithmRefusal::None)),
                )
            },
        },
        Attack {
            name: "proof HS256",
            source: "RFC 9449 §4.3 (5)",
            check: |v| {
                want(
                    proof(v, &proof_with_header("alg", json!("HS256"))),
                    D::Jws(JwsError::Algorithm(AlgorithmRefusal::Symmetric)),
                )
            },
        },
        Attack {
            name: "proof signed by a key other than its jwk",
            source: "RFC 9449 §4.3 (6)",
            check: |v| {
                want(
                    proof(
                        v,
                        &TestKey::es256("attacker")
                            .sign(&proof_header(&client_key()), &proof_claims()),
                    ),
                    D::InvalidSignature,
                )
            },
        },
        Attack {
            name: "psychic signature in a proof",
            source: "CVE-2022-21449",
            check: |v| {
                want(
                    proof(v, &resign(&proof_with_claim("jti", json!("p")), &[0; 64])),
                    D::InvalidSignature,
                )
            },
        },
        Attack {
            name: "htu with a query",
            source: "RFC 9449 §4.2",
            check: |v| {
                want(
                    proof(v, &proof_with_claim("htu", json!(format!("{URI}?admin=1")))),
                    D::InvalidHtu,
                )
            },
        },
        Attack {
            name: "htu with a fragment",
            source: "RFC 9449 §4.2",
            check: |v| {
                want(
                    proof(v, &proof_with_claim("htu", json!(format!("{URI}#x")))),
                    D::InvalidHtu,
                )
            },
        },
        Attack {
            name: "htu for another host",
            source: "RFC 9449 §4.3 (9)",
            check: |v| {
                want(
                    proof(
                        v,
                        &proof_with_claim("htu", json!("https://evil.example/v1/things")),
                    ),
                    D::UriMismatch,
                )
            },
        },
        Attack {
            name: "htu with userinfo",
            source: "RFC 3986 §3.2.1",
            check: |v| {
                want(
                    proof(
                        v,
                        &proof_with_claim(
                            "htu",
                            json!("https://api.example@evil.example/v1/things"),
                        ),
                    ),
                    D::InvalidHtu,
                )
            },
        },
        Attack {
            name: "htm for another method",
            source: "RFC 9449 §4.3 (8)",
            check: |v| {
                want(
                    proof(v, &proof_with_claim("htm", json!("POST"))),
                    D::MethodMismatch,
                )
            },
        },
        Attack {
            name: "stale proof (pre-generated)",
            source: "RFC 9449 §11.1",
            check: |v| {
                want(
                    proof(v, &proof_with_claim("iat", json!(NOW - 3600))),
                    D::Stale,
                )
            },
        },
        Attack {
            name: "proof from the future",
            source: "RFC 9449 §11.1",
            check: |v| {
                want(
                    proof(v, &proof_with_claim("iat", json!(NOW + 3600))),
                    D::IssuedInFuture,
                )
            },
        },
        Attack {
            name: "proof iat as a string",
            source: "CVE-2026-25537",
            check: |v| {
                want(
                    proof(v, &proof_with_claim("iat", json!("1700000000"))),
                    D::Claim(ClaimError::Invalid { claim: "iat" }),
                )
            },
        },
        Attack {
            name: "proof without jti",
            source: "RFC 9449 §4.2",
            check: |v| {
                want(
                    proof(v, &proof_with_claim("jti", Value::Null)),
                    D::Claim(ClaimError::Missing { claim: "jti" }),
                )
            },
        },
        Attack {
            name: "two DPoP headers",
            source: "RFC 9449 §4.3 (1)",
            check: |_| {
                let p = proof_with_claim("jti", json!("a"));
                want(
                    dpop::UntrustedDpopProof::parse(&[&p, &p], &DpopPolicy::default()).map(|_| ()),
                    D::MultipleProofs,
                )
            },
        },
        Attack {
            name: "ath of another token",
            source: "RFC 9449 §4.3 (12)",
            check: |v| {
                want(
                    bound_check(
                        v,
                        &proof_with_claim("ath", json!(dpop::ath("other.token.x"))),
                        &client_jkt(),
                    ),
                    D::AthMismatch,
                )
            },
        },
        Attack {
            name: "ath missing on a resource request",
            source: "RFC 9449 §4.3 (12)",
            check: |v| {
                want(
                    bound_check(v, &proof_with_claim("jti", json!("p")), &client_jkt()),
                    D::MissingAth,
                )
            },
        },
        Attack {
            name: "stolen token with the thief's proof key (jkt mismatch)",
            source: "RFC 9449 §4.3 (12)",
            check: |v| {
                let thief = TestKey::es256("thief");
                want(
                    bound_check(
                        v,
                        &thief.sign(
                            &proof_header(&thief),
                            &set(proof_claims(), "ath", json!(dpop::ath(AT))),
                        ),
                        &client_jkt(),
                    ),
                    D::JktMismatch,
                )
            },
        },
        Attack {
            name: "nonce required but absent",
            source: "RFC 9449 §8",
            check: |v| {
                let n = NonceIssuer::with_defaults(&[7; 32]).map_err(|e| e.to_string())?;
                let req = DpopRequest {
                    nonces: Some(&n),
                    ..request()
                };
                want(
                    verify_proof(&proof_with_claim("jti", json!("p")), v, &req, NOW),
                    D::NonceRequired,
                )
            },
        },
        Attack {
            name: "forged nonce",
            source: "RFC 9449 §8",
            check: |v| {
                let n = NonceIssuer::with_defaults(&[7; 32]).map_err(|e| e.to_string())?;
                let req = DpopRequest {
                    nonces: Some(&n),
                    ..request()
                };
                want(
                    verify_proof(
                        &proof_with_claim("nonce", json!(b64::encode(&[0; 32]))),
                        v,
                        &req,
                        NOW,
                    ),
                    D::NonceInvalid,
                )
            },
        },
        // --- revocation documents ---
        Attack {
            name: "revocation rollback to an older version",
            source: "ARCHITECTURE.md (no rollback)",
            check: |v| {
                want(
                    revocations(
                        v,
                        &issuer_key().sign(
                            &RevocationDocument::header(issuer_key().alg(), fixture::KID),
                            &revocation_doc(3),
                        ),
                        Some(4),
                    ),
                    RevocationError::Rollback {
                        held: 4,
                        offered: 3,
                    },
                )
            },
        },
        Attack {
            name: "revocation version far ahead of the clock (wedges later documents)",
            source: "issue 16.6 (leaked key, u64::MAX version)",
            check: |v| {
                want(
                    revocations(
                        v,
                        &issuer_key().sign(
                            &RevocationDocument::header(issuer_key().alg(), fixture::KID),
                            &revocation_doc(u64::MAX),
                        ),
                        None,
                    ),
                    RevocationError::VersionAhead,
                )
            },
        },
        Attack {
            name: "revocation document forged by another key",
            source: "RFC 8725 §3.4",
            check: |v| {
                let a = TestKey::es256("attacker");
                want(
                    revocations(
                        v,
                        &a.sign(
                            &RevocationDocument::header(a.alg(), fixture::KID),
                            &revocation_doc(99),
                        ),
                        Some(4),
                    ),
                    RevocationError::InvalidSignature,
                )
            },
        },
    ]
}
