//! The origin's native crypto provider on aws-lc-rs: key generation, JWS
//! signing, and [`SignaturePrimitives`] for `common`'s validation.
//!
//! Verification applies the same rules as `common`'s portable provider:
//! ECDSA signatures are fixed-length P1363 (`r ‖ s`), RSA moduli are
//! 2048–8192 bits with signatures exactly the modulus length, PSS uses a
//! 32-byte salt (RFC 7518 §3.5), and the key must allow the algorithm.

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use chrono::{DateTime, TimeDelta};
use gatehouse_common::alg::Algorithm;
use gatehouse_common::b64;
use gatehouse_common::jwk::PublicJwk;
use gatehouse_common::provider::SignaturePrimitives;
use gatehouse_common::provider::SignatureVerifier as _;
use gatehouse_common::UnixTime;
use jwt_compact::{AlgorithmExt as _, AlgorithmSignature, Claims, Header, TimeOptions};
use serde::Serialize;
use serde_json::{json, Value};
use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

/// The aws-lc-rs provider.
#[derive(Clone, Copy, Debug, Default)]
pub struct AwsLc;

/// Primitives only: `common` (`provider::primitive`) has already checked that
/// the key allows the algorithm, that its type and curve are the
/// algorithm's, and the signature's exact length.
impl SignaturePrimitives for AwsLc {
    fn es256(&self, x: &[u8; 32], y: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool {
        UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point(x, y))
            .verify(msg, sig)
            .is_ok()
    }

    fn es384(&self, x: &[u8; 48], y: &[u8; 48], msg: &[u8], sig: &[u8; 96]) -> bool {
        UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point(x, y))
            .verify(msg, sig)
            .is_ok()
    }

    fn ed25519(&self, x: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool {
        UnparsedPublicKey::new(&signature::ED25519, x)
            .verify(msg, sig)
            .is_ok()
    }

    fn rs256(&self, n: &[u8], e: &[u8], msg: &[u8], sig: &[u8]) -> bool {
        signature::RsaPublicKeyComponents { n, e }
            .verify(&signature::RSA_PKCS1_2048_8192_SHA256, msg, sig)
            .is_ok()
    }

    fn ps256(&self, n: &[u8], e: &[u8], msg: &[u8], sig: &[u8]) -> bool {
        signature::RsaPublicKeyComponents { n, e }
            .verify(&signature::RSA_PSS_2048_8192_SHA256, msg, sig)
            .is_ok()
    }
}

fn point(x: &[u8], y: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(1 + x.len() + y.len());
    p.push(0x04);
    p.extend_from_slice(x);
    p.extend_from_slice(y);
    p
}

/// Why a key could not be generated, loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The algorithm is not one the origin signs with.
    #[error("the origin does not sign with {0}")]
    UnsupportedAlgorithm(Algorithm),
    /// Key generation failed.
    #[error("key generation failed")]
    Generate,
    /// Stored private key material could not be parsed.
    #[error("stored private key is invalid")]
    InvalidKey,
    /// Signing failed.
    #[error("signing failed")]
    Sign,
    /// The header or claims could not be serialized (claims that are not a
    /// JSON object).
    #[error("the token could not be encoded")]
    Encode,
    /// A claim time (`now`, or `now` plus a lifetime) is out of range.
    #[error("a token time is out of range")]
    TimeOutOfRange,
}

enum Inner {
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
    Rsa(
        signature::RsaKeyPair,
        &'static signature::RsaSignatureEncoding,
    ),
}

/// A private signing key with its public JWK (which carries `kid` and `alg`).
pub struct SigningKey {
    inner: Inner,
    public: PublicJwk,
    alg: Algorithm,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.public.kid())
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// A freshly generated key: its PKCS#8 document (secret) and the loaded key.
pub struct GeneratedKey {
    /// PKCS#8 v1 DER of the private key (to be sealed under the KEK).
    pub pkcs8: Vec<u8>,
    /// The usable key.
    pub key: SigningKey,
}

impl SigningKey {
    /// Generates a key for `alg` (RSA: 2048 bits).
    pub fn generate(alg: Algorithm, kid: &str) -> Result<GeneratedKey, CryptoError> {
        let rng = SystemRandom::new();
        let pkcs8 = match alg {
            Algorithm::Es256 => {
                EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| CryptoError::Generate)?
                    .as_ref()
                    .to_vec()
            }
            Algorithm::EdDsa => Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(|_| CryptoError::Generate)?
                .as_ref()
                .to_vec(),
            Algorithm::Rs256 | Algorithm::Ps256 => {
                let kp = signature::RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .map_err(|_| CryptoError::Generate)?;
                let der: aws_lc_rs::encoding::Pkcs8V1Der<'_> =
                    kp.as_der().map_err(|_| CryptoError::Generate)?;
                der.as_ref().to_vec()
            }
            other => return Err(CryptoError::UnsupportedAlgorithm(other)),
        };
        let key = Self::from_pkcs8(alg, kid, &pkcs8)?;
        Ok(GeneratedKey { pkcs8, key })
    }

    /// Loads a stored key.
    pub fn from_pkcs8(alg: Algorithm, kid: &str, pkcs8: &[u8]) -> Result<Self, CryptoError> {
        let (inner, jwk) = match alg {
            Algorithm::Es256 => {
                let kp =
                    EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                        .map_err(|_| CryptoError::InvalidKey)?;
                let pt = kp.public_key().as_ref();
                let (x, y) = match pt {
                    [0x04, rest @ ..] if rest.len() == 64 => rest.split_at(32),
                    _ => return Err(CryptoError::InvalidKey),
                };
                let jwk =
                    json!({"kty": "EC", "crv": "P-256", "x": b64::encode(x), "y": b64::encode(y)});
                (Inner::Ec(kp), jwk)
            }
            Algorithm::EdDsa => {
                let kp = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| CryptoError::InvalidKey)?;
                let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": b64::encode(kp.public_key().as_ref())});
                (Inner::Ed(kp), jwk)
            }
            Algorithm::Rs256 | Algorithm::Ps256 => {
                let kp = signature::RsaKeyPair::from_pkcs8(pkcs8)
                    .map_err(|_| CryptoError::InvalidKey)?;
                let pk = kp.public_key();
                let jwk = json!({
                    "kty": "RSA",
                    "n": b64::encode(pk.modulus().big_endian_without_leading_zero()),
                    "e": b64::encode(pk.exponent().big_endian_without_leading_zero()),
                });
                let enc = if alg == Algorithm::Rs256 {
                    &signature::RSA_PKCS1_SHA256
                } else {
                    &signature::RSA_PSS_SHA256
                };
                (Inner::Rsa(kp, enc), jwk)
            }
            other => return Err(CryptoError::UnsupportedAlgorithm(other)),
        };
        let mut jwk = jwk;
        if let Value::Object(m) = &mut jwk {
            m.insert("kid".into(), kid.into());
            m.insert("alg".into(), alg.name().into());
            m.insert("use".into(), "sig".into());
        }
        let map = jwk.as_object().cloned().unwrap_or_default();
        let public = PublicJwk::from_map(&map).map_err(|_| CryptoError::InvalidKey)?;
        Ok(Self { inner, public, alg })
    }

    /// The key id.
    #[must_use]
    pub fn kid(&self) -> &str {
        self.public.kid().unwrap_or_default()
    }

    /// The algorithm this key signs with.
    #[must_use]
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The public JWK (with `kid`, `alg`, `use: sig`).
    #[must_use]
    pub fn public(&self) -> &PublicJwk {
        &self.public
    }

    /// Signs `msg`, returning the JWS signature bytes.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let rng = SystemRandom::new();
        match &self.inner {
            Inner::Ec(kp) => Ok(kp
                .sign(&rng, msg)
                .map_err(|_| CryptoError::Sign)?
                .as_ref()
                .to_vec()),
            Inner::Ed(kp) => Ok(kp.sign(msg).as_ref().to_vec()),
            Inner::Rsa(kp, enc) => {
                let mut sig = vec![0u8; kp.public_modulus_len()];
                kp.sign(*enc, &rng, msg, &mut sig)
                    .map_err(|_| CryptoError::Sign)?;
                Ok(sig)
            }
        }
    }

    /// jwt-compact's [`Algorithm`](jwt_compact::Algorithm) for this key:
    /// named by the key's algorithm, signing with the key itself.
    #[must_use]
    pub fn jws_algorithm(&self) -> AwsLcJws {
        AwsLcJws {
            alg: self.alg,
            failed: Cell::new(false),
        }
    }

    /// The JWS header this key signs under: `typ` and the key's `kid`
    /// (jwt-compact adds `alg` from [`Self::jws_algorithm`]).
    #[must_use]
    pub fn header(&self, typ: &str) -> Header {
        Header::empty().with_key_id(self.kid()).with_token_type(typ)
    }

    /// Signs a compact JWS with header `{alg, kid, typ}` over `claims`,
    /// which must serialize to a JSON object (the complete claims set: no
    /// time claim is added).
    pub fn sign_jws<T: Serialize + ?Sized>(
        &self,
        typ: &str,
        claims: &T,
    ) -> Result<String, CryptoError> {
        self.sign_claims(typ, &Claims::new(claims))
    }

    /// Signs a compact JWS with header `{alg, kid, typ}` over jwt-compact
    /// `claims` (its `exp`, `nbf` and `iat` next to the custom claims).
    pub fn sign_claims<T: Serialize>(
        &self,
        typ: &str,
        claims: &Claims<T>,
    ) -> Result<String, CryptoError> {
        let alg = self.jws_algorithm();
        let token = alg
            .token(&self.header(typ), claims, self)
            .map_err(|_| CryptoError::Encode)?;
        if alg.failed.get() {
            return Err(CryptoError::Sign);
        }
        Ok(token)
    }
}

/// `custom` as jwt-compact claims issued at and valid from `now`, expiring
/// `ttl` seconds later: the times come from jwt-compact's [`TimeOptions`]
/// over the request's one clock reading (nothing here reads a clock).
pub fn timed_claims<T>(custom: T, ttl: i64, now: UnixTime) -> Result<Claims<T>, CryptoError> {
    let at = DateTime::from_timestamp(now.0, 0).ok_or(CryptoError::TimeOutOfRange)?;
    let ttl = TimeDelta::try_seconds(ttl).ok_or(CryptoError::TimeOutOfRange)?;
    // jwt-compact adds with `+`, which panics on overflow: check first.
    at.checked_add_signed(ttl)
        .ok_or(CryptoError::TimeOutOfRange)?;
    let options = TimeOptions::new(TimeDelta::zero(), move || at);
    Ok(Claims::new(custom)
        .set_duration_and_issuance(&options, ttl)
        .set_not_before(at))
}

/// jwt-compact's [`Algorithm`](jwt_compact::Algorithm) over aws-lc-rs: the
/// origin's [`SigningKey`] signs, [`AwsLc`] verifies (with `common`'s
/// key and length checks). Signatures are JOSE's: ECDSA as fixed-length
/// `r ‖ s`, RSA as long as the modulus, Ed25519 64 bytes.
///
/// jwt-compact's `sign` cannot fail, aws-lc-rs's can (its random source):
/// a failed signature is empty and recorded here, and
/// [`SigningKey::sign_claims`] turns it into [`CryptoError::Sign`] instead
/// of returning the token. One value per token, so it is not `Sync`.
#[derive(Debug)]
pub struct AwsLcJws {
    alg: Algorithm,
    failed: Cell<bool>,
}

impl AwsLcJws {
    /// The algorithm for tokens signed by `alg` keys (to verify them).
    #[must_use]
    pub fn new(alg: Algorithm) -> Self {
        Self {
            alg,
            failed: Cell::new(false),
        }
    }
}

/// A JWS signature's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwsSignature(Vec<u8>);

impl AlgorithmSignature for JwsSignature {
    fn try_from_slice(slice: &[u8]) -> anyhow::Result<Self> {
        Ok(Self(slice.to_vec()))
    }

    fn as_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.0)
    }
}

impl jwt_compact::Algorithm for AwsLcJws {
    type SigningKey = SigningKey;
    type VerifyingKey = PublicJwk;
    type Signature = JwsSignature;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(self.alg.name())
    }

    fn sign(&self, signing_key: &SigningKey, message: &[u8]) -> JwsSignature {
        // The header names `self.alg`: a key of another algorithm must not sign under it.
        let sig = if signing_key.alg == self.alg {
            signing_key.sign(message).ok()
        } else {
            None
        };
        JwsSignature(sig.unwrap_or_else(|| {
            self.failed.set(true);
            Vec::new()
        }))
    }

    fn verify_signature(&self, signature: &JwsSignature, key: &PublicJwk, message: &[u8]) -> bool {
        AwsLc.verify(key, self.alg, message, &signature.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_common::provider::RustCrypto;

    /// Every algorithm the origin signs with.
    const SIGNING_ALGS: [Algorithm; 4] = [
        Algorithm::Es256,
        Algorithm::EdDsa,
        Algorithm::Rs256,
        Algorithm::Ps256,
    ];

    #[test]
    fn every_algorithm_signs_and_both_providers_verify() {
        for alg in SIGNING_ALGS {
            let g = SigningKey::generate(alg, "k1").unwrap();
            let again = SigningKey::from_pkcs8(alg, "k1", &g.pkcs8).unwrap();
            assert_eq!(again.public(), g.key.public());
            let sig = g.key.sign(b"hello").unwrap();
            assert!(AwsLc.verify(g.key.public(), alg, b"hello", &sig), "{alg}");
            assert!(
                RustCrypto.verify(g.key.public(), alg, b"hello", &sig),
                "{alg}"
            );
            assert!(!AwsLc.verify(g.key.public(), alg, b"hellp", &sig), "{alg}");
            let mut bad = sig.clone();
            bad.push(0);
            assert!(!AwsLc.verify(g.key.public(), alg, b"hello", &bad), "{alg}");
            assert!(format!("{:?}", g.key).contains("k1"));
        }
    }

    #[test]
    fn key_decides_the_algorithm() {
        let g = SigningKey::generate(Algorithm::Rs256, "r").unwrap();
        let sig = g.key.sign(b"m").unwrap();
        assert!(!AwsLc.verify(g.key.public(), Algorithm::Ps256, b"m", &sig));
        let e = SigningKey::generate(Algorithm::Es256, "e").unwrap();
        let sig = e.key.sign(b"m").unwrap();
        assert!(!AwsLc.verify(e.key.public(), Algorithm::EdDsa, b"m", &sig));
    }

    #[test]
    fn jws_goes_through_jwt_compact_with_the_old_header_and_jose_signatures() {
        use jwt_compact::{AlgorithmExt as _, UntrustedToken};
        for alg in SIGNING_ALGS {
            let g = SigningKey::generate(alg, "k1").unwrap();
            let claims = json!({"iss": "https://i", "exp": 20, "iat": 10});
            let jws = g.key.sign_jws("at+jwt", &claims).unwrap();
            let parts: Vec<&str> = jws.split('.').collect();
            assert_eq!(parts.len(), 3);
            let header = String::from_utf8(b64::decode(parts[0]).unwrap()).unwrap();
            // Same bytes as the hand-built header before jwt-compact.
            assert_eq!(
                header,
                format!(r#"{{"alg":"{}","kid":"k1","typ":"at+jwt"}}"#, alg.name())
            );
            let body: Value = serde_json::from_slice(&b64::decode(parts[1]).unwrap()).unwrap();
            assert_eq!(body, claims, "{alg}");
            let sig = b64::decode(parts[2]).unwrap();
            if alg == Algorithm::Es256 {
                assert_eq!(sig.len(), 64, "raw r||s, not DER");
            }
            let signed = format!("{}.{}", parts[0], parts[1]);
            assert!(
                AwsLc.verify(g.key.public(), alg, signed.as_bytes(), &sig),
                "{alg}"
            );
            let untrusted = UntrustedToken::new(&jws).unwrap();
            let token = AwsLcJws::new(alg)
                .validator::<Value>(g.key.public())
                .validate(&untrusted)
                .unwrap();
            assert_eq!(token.header().key_id.as_deref(), Some("k1"));
            assert_eq!(token.claims().custom["iss"], "https://i");
            // Another algorithm's name does not verify it.
            let other = if alg == Algorithm::Rs256 {
                Algorithm::Ps256
            } else {
                Algorithm::Rs256
            };
            assert!(AwsLcJws::new(other)
                .validator::<Value>(g.key.public())
                .validate(&untrusted)
                .is_err());
        }
    }

    #[test]
    fn timed_claims_write_exp_nbf_iat_from_now_and_refuse_overflow() {
        let g = SigningKey::generate(Algorithm::Es256, "k").unwrap();
        let claims = timed_claims(json!({"sub": "s"}), 300, UnixTime(1_700_000_000)).unwrap();
        let jws = g.key.sign_claims("JWT", &claims).unwrap();
        let body = jws.split('.').nth(1).unwrap();
        let body: Value = serde_json::from_slice(&b64::decode(body).unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"sub": "s", "iat": 1_700_000_000, "nbf": 1_700_000_000, "exp": 1_700_000_300})
        );
        assert!(matches!(
            timed_claims((), i64::MAX, UnixTime(0)),
            Err(CryptoError::TimeOutOfRange)
        ));
        assert!(matches!(
            timed_claims((), 300, UnixTime(i64::MAX)),
            Err(CryptoError::TimeOutOfRange)
        ));
    }

    #[test]
    fn claims_that_are_not_an_object_or_a_key_of_another_alg_are_refused() {
        use jwt_compact::AlgorithmExt as _;
        let g = SigningKey::generate(Algorithm::Es256, "k").unwrap();
        assert!(matches!(
            g.key.sign_jws("JWT", &json!([1, 2])),
            Err(CryptoError::Encode)
        ));
        // The header would say EdDSA while an ES256 key signs: no token.
        let alg = AwsLcJws::new(Algorithm::EdDsa);
        let token = alg
            .token(&g.key.header("JWT"), &Claims::new(json!({})), &g.key)
            .unwrap();
        assert!(token.ends_with('.'));
        assert!(alg.failed.get());
    }
}
