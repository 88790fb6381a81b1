//! Verification speed of the RustCrypto provider, per algorithm, against the
//! provider as it was before jwt-compact did its signature math (direct
//! `p256` / `ed25519-dalek` / `rsa` calls, commit ea89bc1; copied below as
//! `before` and used nowhere else). Both run in this one process on the same
//! Wycheproof `valid` vector, interleaved round by round, so the ratio
//! compares like with like on a shared machine.
//!
//! `cargo bench -p gatehouse-common --features testkit --bench verify`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use gatehouse_common::alg::Algorithm;
use gatehouse_common::jwk::PublicJwk;
use gatehouse_common::provider::{RustCrypto, SignatureVerifier};
use gatehouse_common::testkit::wycheproof::{self, Expected, VectorFiles};
use std::hint::black_box;
use std::time::Instant;

const ROUNDS: usize = 7;

fn main() {
    let (cases, _) = wycheproof::cases(&VectorFiles::embedded());
    println!("algorithm | jwt-compact µs/op | before µs/op | ratio (after/before)");
    println!("---|---:|---:|---:");
    for alg in Algorithm::ALL {
        let case = cases
            .iter()
            .find(|c| c.alg == alg && c.expected == Expected::Valid && c.key.is_some())
            .expect("a valid vector");
        let key = case.key.as_ref().expect("key");
        assert!(RustCrypto.verify(key, alg, &case.msg, &case.sig));
        assert!(before::verify(key, alg, &case.msg, &case.sig));
        // ~20 ms per measurement at the slowest algorithm.
        let iters = if alg == Algorithm::Es384 { 50 } else { 200 };
        let mut after_ns = Vec::new();
        let mut before_ns = Vec::new();
        for round in 0..ROUNDS {
            let a = || time(iters, || RustCrypto.verify(key, alg, &case.msg, &case.sig));
            let b = || time(iters, || before::verify(key, alg, &case.msg, &case.sig));
            if round % 2 == 0 {
                after_ns.push(a());
                before_ns.push(b());
            } else {
                before_ns.push(b());
                after_ns.push(a());
            }
        }
        let (a, b) = (median(&mut after_ns), median(&mut before_ns));
        println!(
            "{} | {:.1} | {:.1} | {:.3}",
            alg.name(),
            a / 1000.0,
            b / 1000.0,
            a / b
        );
    }
}

/// Nanoseconds per call of `f`, over `iters` calls.
fn time(iters: u32, f: impl Fn() -> bool) -> f64 {
    let start = Instant::now();
    for _ in 0..iters {
        assert!(black_box(f()));
    }
    start.elapsed().as_nanos() as f64 / f64::from(iters)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The RustCrypto provider of ea89bc1, unchanged but for the signature.
mod before {
    use super::{Algorithm, PublicJwk};
    use gatehouse_common::jwk::{EcCurve, KeyMaterial};
    use p256::ecdsa::signature::Verifier as _;

    pub fn verify(key: &PublicJwk, alg: Algorithm, msg: &[u8], sig: &[u8]) -> bool {
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
            ) => es256(x, y, msg, sig),
            (
                KeyMaterial::Ec {
                    curve: EcCurve::P384,
                    x,
                    y,
                },
                Algorithm::Es384,
            ) => es384(x, y, msg, sig),
            (KeyMaterial::Ed25519 { x }, Algorithm::EdDsa) => ed25519(x, msg, sig),
            (KeyMaterial::Rsa { n, e }, Algorithm::Rs256) => rs256(n, e, msg, sig),
            (KeyMaterial::Rsa { n, e }, Algorithm::Ps256) => ps256(n, e, msg, sig),
            _ => false,
        }
    }

    fn es256(x: &[u8], y: &[u8], msg: &[u8], sig: &[u8]) -> bool {
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

    fn es384(x: &[u8], y: &[u8], msg: &[u8], sig: &[u8]) -> bool {
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

    fn ed25519(x: &[u8; 32], msg: &[u8], sig: &[u8]) -> bool {
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
            gatehouse_common::jwk::MAX_RSA_BITS,
        )
        .ok()
    }

    fn rs256(n: &[u8], e: &[u8], msg: &[u8], sig: &[u8]) -> bool {
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

    fn ps256(n: &[u8], e: &[u8], msg: &[u8], sig: &[u8]) -> bool {
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
