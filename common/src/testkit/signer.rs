//! Deterministic signing keys for building real tokens and proofs in tests.
//!
//! Keys are derived from a seed string, so every run (native or wasm) builds
//! byte-identical tokens. Never use these keys for anything but tests.

use crate::alg::Algorithm;
use crate::b64;
use crate::jwk::PublicJwk;
use serde_json::{json, Value};
use sha2::{Digest, Sha256, Sha384};

/// A test signing key.
#[derive(Clone, Debug)]
pub enum TestKey {
    /// ES256.
    Es256(p256::ecdsa::SigningKey),
    /// ES384.
    Es384(p384::ecdsa::SigningKey),
    /// EdDSA (Ed25519).
    Ed25519(ed25519_dalek::SigningKey),
}

impl TestKey {
    /// A P-256 key derived from `seed`.
    #[must_use]
    pub fn es256(seed: &str) -> Self {
        let mut counter = 0u32;
        loop {
            let d = Sha256::digest(format!("{seed}/{counter}").as_bytes());
            if let Ok(k) = p256::ecdsa::SigningKey::from_slice(&d) {
                return Self::Es256(k);
            }
            counter += 1;
        }
    }

    /// A P-384 key derived from `seed`.
    #[must_use]
    pub fn es384(seed: &str) -> Self {
        let mut counter = 0u32;
        loop {
            let d = Sha384::digest(format!("{seed}/{counter}").as_bytes());
            if let Ok(k) = p384::ecdsa::SigningKey::from_slice(&d) {
                return Self::Es384(k);
            }
            counter += 1;
        }
    }

    /// An Ed25519 key derived from `seed`.
    #[must_use]
    pub fn ed25519(seed: &str) -> Self {
        let d: [u8; 32] = Sha256::digest(seed.as_bytes()).into();
        Self::Ed25519(ed25519_dalek::SigningKey::from_bytes(&d))
    }

    /// The key's algorithm.
    #[must_use]
    pub fn alg(&self) -> Algorithm {
        match self {
            Self::Es256(_) => Algorithm::Es256,
            Self::Es384(_) => Algorithm::Es384,
            Self::Ed25519(_) => Algorithm::EdDsa,
        }
    }

    /// The public JWK members (no `kid`, no `alg`).
    #[must_use]
    pub fn public_jwk_json(&self) -> Value {
        match self {
            Self::Es256(k) => {
                let p = k.verifying_key().to_encoded_point(false);
                json!({"kty": "EC", "crv": "P-256",
                    "x": b64::encode(&p.x().map(|x| x.to_vec()).unwrap_or_default()),
                    "y": b64::encode(&p.y().map(|y| y.to_vec()).unwrap_or_default())})
            }
            Self::Es384(k) => {
                let p = k.verifying_key().to_encoded_point(false);
                json!({"kty": "EC", "crv": "P-384",
                    "x": b64::encode(&p.x().map(|x| x.to_vec()).unwrap_or_default()),
                    "y": b64::encode(&p.y().map(|y| y.to_vec()).unwrap_or_default())})
            }
            Self::Ed25519(k) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64::encode(k.verifying_key().as_bytes())})
            }
        }
    }

    /// The JWK including the private member `d` (for attacks that leak it).
    #[must_use]
    pub fn private_jwk_json(&self) -> Value {
        let mut v = self.public_jwk_json();
        let d = match self {
            Self::Es256(k) => b64::encode(&k.to_bytes()),
            Self::Es384(k) => b64::encode(&k.to_bytes()),
            Self::Ed25519(k) => b64::encode(k.as_bytes()),
        };
        if let Some(m) = v.as_object_mut() {
            m.insert("d".into(), d.into());
        }
        v
    }

    /// The public key as a [`PublicJwk`] with `kid`.
    #[must_use]
    pub fn public_jwk(&self, kid: Option<&str>) -> Option<PublicJwk> {
        let mut v = self.public_jwk_json();
        if let (Some(kid), Some(m)) = (kid, v.as_object_mut()) {
            m.insert("kid".into(), kid.into());
        }
        PublicJwk::from_map(v.as_object()?).ok()
    }

    /// Signs `msg`, returning the raw JWS signature (P1363 for ECDSA).
    #[must_use]
    pub fn sign_bytes(&self, msg: &[u8]) -> Vec<u8> {
        use p256::ecdsa::signature::Signer as _;
        match self {
            Self::Es256(k) => {
                let s: p256::ecdsa::Signature = k.sign(msg);
                s.to_bytes().to_vec()
            }
            Self::Es384(k) => {
                let s: p384::ecdsa::Signature = k.sign(msg);
                s.to_bytes().to_vec()
            }
            Self::Ed25519(k) => k.sign(msg).to_bytes().to_vec(),
        }
    }

    /// A compact JWS of `header` and `claims` (JSON text, used verbatim).
    #[must_use]
    pub fn sign_text(&self, header: &str, claims: &str) -> String {
        let input = format!(
            "{}.{}",
            b64::encode(header.as_bytes()),
            b64::encode(claims.as_bytes())
        );
        let sig = self.sign_bytes(input.as_bytes());
        format!("{input}.{}", b64::encode(&sig))
    }

    /// A compact JWS of `header` and `claims`.
    #[must_use]
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        self.sign_text(&header.to_string(), &claims.to_string())
    }
}
