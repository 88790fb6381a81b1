//! Signature verification providers.
//!
//! `common` never verifies on its own initiative: a caller hands the signing
//! input, the signature and the key (with the algorithm the key decided) to a
//! [`SignatureVerifier`]. [`RustCrypto`] is the portable provider, used
//! natively and in tests; the edge verifies through WebCrypto and the origin
//! through aws-lc-rs, and every provider must pass the same Wycheproof and
//! RFC vectors (`common/testdata/`).
//!
//! Providers supply primitives only. Which primitive a key and algorithm
//! call for, and every check that needs no cryptography — the key allows the
//! algorithm, its type and curve belong to it, the signature has the exact
//! length (P1363 `r ‖ s` for ECDSA, the modulus length for RSA) — is decided
//! here once, by [`primitive`], for every provider. A synchronous provider
//! implements [`SignaturePrimitives`] and gets [`SignatureVerifier`] from it;
//! an asynchronous one (WebCrypto) calls [`primitive`] and awaits the
//! primitive it names.

use crate::alg::Algorithm;
use crate::jwk::{EcCurve, KeyMaterial, PublicJwk};

/// Verifies a JWS signature with a key whose algorithm is already decided.
pub trait SignatureVerifier {
    /// `true` only if `signature` is a valid `alg` signature over
    /// `signing_input` by `key`. Malformed keys or signatures are `false`.
    fn verify(
        &self,
        key: &PublicJwk,
        alg: Algorithm,
        signing_input: &[u8],
        signature: &[u8],
    ) -> bool;
}

/// One signature check, fully decided: the primitive, the key's material and
/// a signature of the primitive's exact length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Primitive<'a> {
    /// ECDSA on P-256 with SHA-256 (`ES256`).
    Es256 {
        /// Affine x coordinate, big-endian.
        x: &'a [u8; 32],
        /// Affine y coordinate, big-endian.
        y: &'a [u8; 32],
        /// `r ‖ s` (IEEE P1363).
        sig: &'a [u8; 64],
    },
    /// ECDSA on P-384 with SHA-384 (`ES384`).
    Es384 {
        /// Affine x coordinate, big-endian.
        x: &'a [u8; 48],
        /// Affine y coordinate, big-endian.
        y: &'a [u8; 48],
        /// `r ‖ s` (IEEE P1363).
        sig: &'a [u8; 96],
    },
    /// Ed25519 (`EdDSA`, RFC 8037).
    Ed25519 {
        /// The encoded public point.
        x: &'a [u8; 32],
        /// `R ‖ S`.
        sig: &'a [u8; 64],
    },
    /// RSASSA-PKCS1-v1_5 with SHA-256 (`RS256`).
    Rs256 {
        /// Modulus, big-endian, no leading zeros (2048–8192 bits).
        n: &'a [u8],
        /// Public exponent, big-endian.
        e: &'a [u8],
        /// Exactly as long as `n`.
        sig: &'a [u8],
    },
    /// RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt (`PS256`, RFC 7518 §3.5).
    Ps256 {
        /// Modulus, big-endian, no leading zeros (2048–8192 bits).
        n: &'a [u8],
        /// Public exponent, big-endian.
        e: &'a [u8],
        /// Exactly as long as `n`.
        sig: &'a [u8],
    },
}

/// The primitive that checks a `alg` signature by `key`, or `None` when no
/// cryptography is needed to refuse it: the key does not allow `alg`, the
/// key's type or curve is not `alg`'s, or the signature's length is wrong.
#[must_use]
pub fn primitive<'a>(
    key: &'a PublicJwk,
    alg: Algorithm,
    signature: &'a [u8],
) -> Option<Primitive<'a>> {
    if !key.algorithms().contains(&alg) {
        return None;
    }
    Some(match (key.material(), alg) {
        (
            KeyMaterial::Ec {
                curve: EcCurve::P256,
                x,
                y,
            },
            Algorithm::Es256,
        ) => Primitive::Es256 {
            x: x.as_slice().try_into().ok()?,
            y: y.as_slice().try_into().ok()?,
            sig: signature.try_into().ok()?,
        },
        (
            KeyMaterial::Ec {
                curve: EcCurve::P384,
                x,
                y,
            },
            Algorithm::Es384,
        ) => Primitive::Es384 {
            x: x.as_slice().try_into().ok()?,
            y: y.as_slice().try_into().ok()?,
            sig: signature.try_into().ok()?,
        },
        (KeyMaterial::Ed25519 { x }, Algorithm::EdDsa) => Primitive::Ed25519 {
            x,
            sig: signature.try_into().ok()?,
        },
        (KeyMaterial::Rsa { n, e }, Algorithm::Rs256) if signature.len() == n.len() => {
            Primitive::Rs256 {
                n,
                e,
                sig: signature,
            }
        }
        (KeyMaterial::Rsa { n, e }, Algorithm::Ps256) if signature.len() == n.len() => {
            Primitive::Ps256 {
                n,
                e,
                sig: signature,
            }
        }
        _ => return None,
    })
}

/// What a synchronous provider supplies: one function per primitive, called
/// only with inputs [`primitive`] has already checked. Each answers `true`
/// only for a valid signature; a key its library refuses is `false`.
pub trait SignaturePrimitives {
    /// ECDSA P-256 / SHA-256 over `msg`; `sig` is `r ‖ s`.
    fn es256(&self, x: &[u8; 32], y: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool;
    /// ECDSA P-384 / SHA-384 over `msg`; `sig` is `r ‖ s`.
    fn es384(&self, x: &[u8; 48], y: &[u8; 48], msg: &[u8], sig: &[u8; 96]) -> bool;
    /// Ed25519 over `msg`.
    fn ed25519(&self, x: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool;
    /// RSASSA-PKCS1-v1_5 / SHA-256 over `msg`.
    fn rs256(&self, n: &[u8], e: &[u8], msg: &[u8], sig: &[u8]) -> bool;
    /// RSASSA-PSS / SHA-256, MGF1-SHA-256, 32-byte salt, over `msg`.
    fn ps256(&self, n: &[u8], e: &[u8], msg: &[u8], sig: &[u8]) -> bool;
}

impl<P: SignaturePrimitives + ?Sized> SignatureVerifier for P {
    fn verify(
        &self,
        key: &PublicJwk,
        alg: Algorithm,
        signing_input: &[u8],
        signature: &[u8],
    ) -> bool {
        let msg = signing_input;
        match primitive(key, alg, signature) {
            Some(Primitive::Es256 { x, y, sig }) => self.es256(x, y, msg, sig),
            Some(Primitive::Es384 { x, y, sig }) => self.es384(x, y, msg, sig),
            Some(Primitive::Ed25519 { x, sig }) => self.ed25519(x, msg, sig),
            Some(Primitive::Rs256 { n, e, sig }) => self.rs256(n, e, msg, sig),
            Some(Primitive::Ps256 { n, e, sig }) => self.ps256(n, e, msg, sig),
            None => false,
        }
    }
}

/// The portable provider (RustCrypto): ES256, EdDSA, RS256 and PS256 through
/// `jwt-compact`'s algorithms over `p256`, `ed25519-dalek` and `rsa`; ES384
/// on `p384` directly (jwt-compact has no ES384).
///
/// ECDSA signatures must be exactly the IEEE P1363 length with `r` and `s`
/// in `[1, n-1]` (CVE-2022-21449); Ed25519 is verified as `verify_strict`
/// does (canonical `S`, no small-order public key or `R`); RSA moduli are
/// 2048–8192 bits and PSS uses a 32-byte salt as RFC 7518 §3.5 requires.
/// Only the signature math is jwt-compact's: the token is parsed by
/// `common`'s stricter rules (`crate::jws`) before a primitive is called.
#[cfg(feature = "rustcrypto")]
#[derive(Clone, Copy, Debug, Default)]
pub struct RustCrypto;

#[cfg(feature = "rustcrypto")]
impl SignaturePrimitives for RustCrypto {
    fn es256(&self, x: &[u8; 32], y: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool {
        use jwt_compact::{Algorithm as _, AlgorithmSignature as _};
        use p256::ecdsa::{Signature, VerifyingKey};
        let point = p256::EncodedPoint::from_affine_coordinates(
            x.as_slice().into(),
            y.as_slice().into(),
            false,
        );
        let (Ok(key), Ok(sig)) = (
            VerifyingKey::from_encoded_point(&point),
            Signature::try_from_slice(sig),
        ) else {
            return false;
        };
        jwt_compact::alg::Es256.verify_signature(&sig, &key, msg)
    }

    fn es384(&self, x: &[u8; 48], y: &[u8; 48], msg: &[u8], sig: &[u8; 96]) -> bool {
        use p384::ecdsa::signature::Verifier as _;
        use p384::ecdsa::{Signature, VerifyingKey};
        let point = p384::EncodedPoint::from_affine_coordinates(
            x.as_slice().into(),
            y.as_slice().into(),
            false,
        );
        let (Ok(key), Ok(sig)) = (
            VerifyingKey::from_encoded_point(&point),
            Signature::from_slice(sig),
        ) else {
            return false;
        };
        key.verify(msg, &sig).is_ok()
    }

    fn ed25519(&self, x: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool {
        use ed25519_dalek::{Signature, VerifyingKey};
        use jwt_compact::{Algorithm as _, AlgorithmSignature as _};
        let Ok(key) = VerifyingKey::from_bytes(x) else {
            return false;
        };
        // jwt-compact verifies with ed25519-dalek's `verify`, which accepts a
        // small-order public key or `R` (with the identity as key, `R` = the
        // identity and `S` = 0 verify for every message). `verify_strict`
        // refuses both; so do we, before the signature math.
        let small_order_r = sig
            .first_chunk::<32>()
            .and_then(|r| VerifyingKey::from_bytes(r).ok())
            .is_none_or(|r| r.is_weak());
        if key.is_weak() || small_order_r {
            return false;
        }
        let Ok(sig) = Signature::try_from_slice(sig) else {
            return false;
        };
        jwt_compact::alg::Ed25519.verify_signature(&sig, &key, msg)
    }

    fn rs256(&self, n: &[u8], e: &[u8], msg: &[u8], sig: &[u8]) -> bool {
        rc::rsa(jwt_compact::alg::Rsa::rs256(), n, e, msg, sig)
    }

    fn ps256(&self, n: &[u8], e: &[u8], msg: &[u8], sig: &[u8]) -> bool {
        // jwt-compact's PS256 uses a salt as long as the hash: 32 bytes.
        rc::rsa(jwt_compact::alg::Rsa::ps256(), n, e, msg, sig)
    }
}

#[cfg(feature = "rustcrypto")]
mod rc {
    use jwt_compact::alg::{Rsa, RsaSignature};
    use jwt_compact::{Algorithm as _, AlgorithmSignature as _};

    /// `alg` over an RSA key of at most [`crate::jwk::MAX_RSA_BITS`] bits (the
    /// floor of 2048 is the JWK's rule). Not jwt-compact's `StrongAlg`: its
    /// `StrongKey` takes only 2048, 3072 and 4096-bit moduli.
    pub(super) fn rsa(alg: Rsa, n: &[u8], e: &[u8], msg: &[u8], sig: &[u8]) -> bool {
        use rsa::BigUint;
        let Ok(key) = rsa::RsaPublicKey::new_with_max_size(
            BigUint::from_bytes_be(n),
            BigUint::from_bytes_be(e),
            crate::jwk::MAX_RSA_BITS,
        ) else {
            return false;
        };
        let Ok(sig) = RsaSignature::try_from_slice(sig) else {
            return false;
        };
        alg.verify_signature(&sig, &key, msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::b64;

    fn jwk(json: &str) -> PublicJwk {
        PublicJwk::from_json(json.as_bytes()).unwrap()
    }

    fn ed25519_jwk(x: &[u8; 32]) -> PublicJwk {
        jwk(&format!(
            r#"{{"kty":"OKP","crv":"Ed25519","x":"{}"}}"#,
            b64::encode(x)
        ))
    }

    /// Issue 18 review: an OKP key on another curve (X25519 is a
    /// key-agreement key, RFC 8037 §2) never reaches the Ed25519 primitive;
    /// nor does an RSA modulus under 2048 bits reach RS256/PS256.
    #[test]
    fn keys_of_the_wrong_curve_or_size_are_refused_before_dispatch() {
        for crv in ["X25519", "X448", "Ed448", "ed25519"] {
            let json = format!(
                r#"{{"kty":"OKP","crv":"{crv}","x":"{}"}}"#,
                b64::encode(&[9; 32])
            );
            assert!(PublicJwk::from_json(json.as_bytes()).is_err(), "{crv}");
        }
        let n = [0xc5; 128];
        let json = format!(r#"{{"kty":"RSA","n":"{}","e":"AQAB"}}"#, b64::encode(&n));
        assert!(PublicJwk::from_json(json.as_bytes()).is_err(), "RSA-1024");
    }

    #[test]
    fn the_key_decides_the_primitive_and_lengths_are_checked_before_any_math() {
        let ed = ed25519_jwk(&[9; 32]);
        assert!(matches!(
            primitive(&ed, Algorithm::EdDsa, &[0; 64]),
            Some(Primitive::Ed25519 { .. })
        ));
        // An algorithm the key does not allow, whatever the header says.
        for alg in [Algorithm::Es256, Algorithm::Rs256, Algorithm::Ps256] {
            assert_eq!(primitive(&ed, alg, &[0; 64]), None, "{alg}");
        }
        // Ed25519 and ECDSA signatures have one length (no DER, no padding).
        assert_eq!(primitive(&ed, Algorithm::EdDsa, &[0; 63]), None);
        assert_eq!(primitive(&ed, Algorithm::EdDsa, &[0; 65]), None);
        let p256 = jwk(&format!(
            r#"{{"kty":"EC","crv":"P-256","x":"{0}","y":"{0}"}}"#,
            b64::encode(&[1; 32])
        ));
        assert!(matches!(
            primitive(&p256, Algorithm::Es256, &[0; 64]),
            Some(Primitive::Es256 { .. })
        ));
        assert_eq!(primitive(&p256, Algorithm::Es256, &[0; 72]), None);
        assert_eq!(primitive(&p256, Algorithm::Es384, &[0; 96]), None);
        // RSA: exactly the modulus length; both RS256 and PS256 unless `alg` says.
        let n = [0xc5; 256];
        let rsa = jwk(&format!(
            r#"{{"kty":"RSA","n":"{}","e":"AQAB"}}"#,
            b64::encode(&n)
        ));
        assert!(matches!(
            primitive(&rsa, Algorithm::Rs256, &[0; 256]),
            Some(Primitive::Rs256 { .. })
        ));
        assert!(matches!(
            primitive(&rsa, Algorithm::Ps256, &[0; 256]),
            Some(Primitive::Ps256 { .. })
        ));
        assert_eq!(primitive(&rsa, Algorithm::Rs256, &[0; 255]), None);
        assert_eq!(primitive(&rsa, Algorithm::Rs256, &[0; 257]), None);
        let rs256_only = jwk(&format!(
            r#"{{"kty":"RSA","n":"{}","e":"AQAB","alg":"RS256"}}"#,
            b64::encode(&n)
        ));
        assert_eq!(primitive(&rs256_only, Algorithm::Ps256, &[0; 256]), None);
    }

    /// A provider that accepts every primitive it is asked: whatever it is
    /// asked is what the dispatch decided.
    struct Yes;
    impl SignaturePrimitives for Yes {
        fn es256(&self, _: &[u8; 32], _: &[u8; 32], _: &[u8], _: &[u8; 64]) -> bool {
            true
        }
        fn es384(&self, _: &[u8; 48], _: &[u8; 48], _: &[u8], _: &[u8; 96]) -> bool {
            true
        }
        fn ed25519(&self, _: &[u8; 32], _: &[u8], _: &[u8; 64]) -> bool {
            true
        }
        fn rs256(&self, _: &[u8], _: &[u8], _: &[u8], _: &[u8]) -> bool {
            true
        }
        fn ps256(&self, _: &[u8], _: &[u8], _: &[u8], _: &[u8]) -> bool {
            true
        }
    }

    #[test]
    fn a_provider_of_primitives_is_never_asked_what_the_key_refuses() {
        let ed = ed25519_jwk(&[9; 32]);
        assert!(Yes.verify(&ed, Algorithm::EdDsa, b"m", &[0; 64]));
        assert!(!Yes.verify(&ed, Algorithm::Es256, b"m", &[0; 64]));
        assert!(!Yes.verify(&ed, Algorithm::EdDsa, b"m", &[0; 32]));
    }

    /// The identity point as the public key, `R` = the identity and `S` = 0:
    /// `[S]B = R + [k]A` holds for every message. ed25519-dalek's `verify`
    /// (what jwt-compact's `Ed25519` calls) accepts it; we must not.
    #[cfg(feature = "rustcrypto")]
    #[test]
    fn ed25519_small_order_key_trivial_forgery_is_refused() {
        use jwt_compact::{Algorithm as _, AlgorithmSignature as _};
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut sig = [0u8; 64];
        sig[0] = 1;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&identity).unwrap();
        let s = ed25519_dalek::Signature::try_from_slice(&sig).unwrap();
        assert!(
            jwt_compact::alg::Ed25519.verify_signature(&s, &key, b"any message"),
            "the forgery is real for non-strict verification"
        );
        // `common` refuses such a key as a JWK already (jwk.rs); the
        // primitive refuses it on its own too.
        let json = format!(
            r#"{{"kty":"OKP","crv":"Ed25519","x":"{}"}}"#,
            b64::encode(&identity)
        );
        assert!(PublicJwk::from_json(json.as_bytes()).is_err());
        for msg in [&b"any message"[..], b"", b"another one"] {
            assert!(!RustCrypto.ed25519(&identity, msg, &sig));
        }
    }
}
