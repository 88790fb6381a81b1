//! Signature verification providers.
//!
//! `common` never verifies on its own initiative: a caller hands the signing
//! input, the signature and the key (with the algorithm the key decided) to a
//! [`SignatureVerifier`]. [`RustCrypto`] is the portable provider, used
//! natively and in tests; the edge verifies through WebCrypto and the origin
//! through aws-lc-rs, and every provider must pass the same Wycheproof and
//! RFC vectors (`common/testdata/`).

use crate::alg::Algorithm;
use crate::jwk::PublicJwk;

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

/// The portable provider: p256, p384, ed25519-dalek and rsa (RustCrypto).
///
/// ECDSA signatures must be exactly the IEEE P1363 length with `r` and `s`
/// in `[1, n-1]` (CVE-2022-21449); Ed25519 uses `verify_strict` (canonical
/// `S`, no small-order keys); RSA moduli are 2048–8192 bits and PSS uses a
/// 32-byte salt as RFC 7518 §3.5 requires.
#[cfg(feature = "rustcrypto")]
#[derive(Clone, Copy, Debug, Default)]
pub struct RustCrypto;

#[cfg(feature = "rustcrypto")]
impl SignatureVerifier for RustCrypto {
    fn verify(
        &self,
        key: &PublicJwk,
        alg: Algorithm,
        signing_input: &[u8],
        signature: &[u8],
    ) -> bool {
        use crate::jwk::{EcCurve, KeyMaterial};
        if !key.algorithms().contains(&alg) {
            return false;
        }
        match (key.material(), alg) {
            (
                KeyMaterial::Ec {
                    curve: EcCurve::P256,
                    x,
                    y,
                },
                Algorithm::Es256,
            ) => rc::es256(x, y, signing_input, signature),
            (
                KeyMaterial::Ec {
                    curve: EcCurve::P384,
                    x,
                    y,
                },
                Algorithm::Es384,
            ) => rc::es384(x, y, signing_input, signature),
            (KeyMaterial::Ed25519 { x }, Algorithm::EdDsa) => {
                rc::ed25519(x, signing_input, signature)
            }
            (KeyMaterial::Rsa { n, e }, Algorithm::Rs256) => {
                rc::rs256(n, e, signing_input, signature)
            }
            (KeyMaterial::Rsa { n, e }, Algorithm::Ps256) => {
                rc::ps256(n, e, signing_input, signature)
            }
            _ => false,
        }
    }
}

#[cfg(feature = "rustcrypto")]
mod rc {
    use signature_traits::Verifier as _;

    mod signature_traits {
        pub use p256::ecdsa::signature::Verifier;
    }

    pub(super) fn es256(x: &[u8], y: &[u8], msg: &[u8], sig: &[u8]) -> bool {
        use p256::ecdsa::{Signature, VerifyingKey};
        use p256::EncodedPoint;
        let point = EncodedPoint::from_affine_coordinates(x.into(), y.into(), false);
        let (Ok(key), Ok(sig)) = (
            VerifyingKey::from_encoded_point(&point),
            Signature::from_slice(sig),
        ) else {
            return false;
        };
        key.verify(msg, &sig).is_ok()
    }

    pub(super) fn es384(x: &[u8], y: &[u8], msg: &[u8], sig: &[u8]) -> bool {
        use p384::ecdsa::{Signature, VerifyingKey};
        use p384::EncodedPoint;
        let point = EncodedPoint::from_affine_coordinates(x.into(), y.into(), false);
        let (Ok(key), Ok(sig)) = (
            VerifyingKey::from_encoded_point(&point),
            Signature::from_slice(sig),
        ) else {
            return false;
        };
        key.verify(msg, &sig).is_ok()
    }

    pub(super) fn ed25519(x: &[u8; 32], msg: &[u8], sig: &[u8]) -> bool {
        let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(x) else {
            return false;
        };
        let Ok(sig) = ed25519_dalek::Signature::from_slice(sig) else {
            return false;
        };
        key.verify_strict(msg, &sig).is_ok()
    }

    fn rsa_key(n: &[u8], e: &[u8]) -> Option<rsa::RsaPublicKey> {
        use rsa::BigUint;
        rsa::RsaPublicKey::new_with_max_size(
            BigUint::from_bytes_be(n),
            BigUint::from_bytes_be(e),
            crate::jwk::MAX_RSA_BITS,
        )
        .ok()
    }

    pub(super) fn rs256(n: &[u8], e: &[u8], msg: &[u8], sig: &[u8]) -> bool {
        let Some(key) = rsa_key(n, e) else {
            return false;
        };
        if sig.len() != n.len() {
            return false;
        }
        let Ok(sig) = rsa::pkcs1v15::Signature::try_from(sig) else {
            return false;
        };
        rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key)
            .verify(msg, &sig)
            .is_ok()
    }

    pub(super) fn ps256(n: &[u8], e: &[u8], msg: &[u8], sig: &[u8]) -> bool {
        let Some(key) = rsa_key(n, e) else {
            return false;
        };
        if sig.len() != n.len() {
            return false;
        }
        let Ok(sig) = rsa::pss::Signature::try_from(sig) else {
            return false;
        };
        rsa::pss::VerifyingKey::<sha2::Sha256>::new_with_salt_len(key, 32)
            .verify(msg, &sig)
            .is_ok()
    }
}
