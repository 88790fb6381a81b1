//! Public JSON Web Keys (RFC 7517) and key sets, with the key deciding the algorithm.
//!
//! A [`PublicJwk`] can only hold public material: a JWK with any private
//! member (`d`, `p`, `q`, `dp`, `dq`, `qi`, `oth`, `k`) is refused, and so are
//! symmetric (`oct`) keys. Which algorithms a key may verify is a property of
//! the key ([`PublicJwk::algorithms`]); a token header's `alg` is only checked
//! against it (RFC 8725 §3.1).

use crate::alg::Algorithm;
use crate::{b64, json};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::fmt;

/// Smallest RSA modulus accepted, in bits (RFC 7518 §3.3, NIST SP 800-131A).
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits (bounds verification cost).
pub const MAX_RSA_BITS: usize = 8192;
/// Most keys read from one JWKS document.
pub const MAX_KEYS: usize = 64;
/// Largest accepted `kid`, in bytes.
pub const MAX_KID_LEN: usize = 256;

/// Why a JWK or JWKS was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwkError {
    /// The JSON itself was refused.
    #[error("JWK: {0}")]
    Json(json::JsonError),
    /// A required member is absent.
    #[error("JWK lacks `{member}`")]
    MissingMember {
        /// The member's name.
        member: &'static str,
    },
    /// A member has the wrong JSON type or an undecodable value.
    #[error("JWK member `{member}` is invalid")]
    InvalidMember {
        /// The member's name.
        member: &'static str,
    },
    /// The JWK carries private key material.
    #[error("JWK contains private key material")]
    PrivateKeyMaterial,
    /// `kty` or `crv` names something we do not verify with.
    #[error("unsupported JWK key type or curve")]
    UnsupportedKeyType,
    /// The key's `alg` does not belong to its type or curve.
    #[error("JWK `alg` does not match its key type")]
    AlgorithmKeyMismatch,
    /// An RSA modulus outside [`MIN_RSA_BITS`]..=[`MAX_RSA_BITS`].
    #[error("RSA modulus of {bits} bits is not allowed")]
    RsaModulusSize {
        /// The modulus size found.
        bits: usize,
    },
    /// `use` is not `sig`, or `key_ops` does not allow `verify`.
    #[error("JWK is not a signature verification key")]
    NotForSignatures,
    /// A JWKS without a `keys` array, or with too many keys.
    #[error("malformed JWK set")]
    InvalidKeySet,
}

/// Elliptic curves for `kty: EC`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EcCurve {
    /// NIST P-256 (`crv: P-256`).
    P256,
    /// NIST P-384 (`crv: P-384`).
    P384,
}

impl EcCurve {
    /// Length of one coordinate in bytes.
    #[must_use]
    pub const fn coordinate_len(self) -> usize {
        match self {
            Self::P256 => 32,
            Self::P384 => 48,
        }
    }
    /// The JWK `crv` name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::P256 => "P-256",
            Self::P384 => "P-384",
        }
    }
}

/// The public key material of a JWK, decoded.
#[derive(Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyMaterial {
    /// `kty: EC` — affine coordinates, each exactly the curve's length.
    Ec {
        /// The curve.
        curve: EcCurve,
        /// x coordinate, big-endian.
        x: Vec<u8>,
        /// y coordinate, big-endian.
        y: Vec<u8>,
    },
    /// `kty: OKP, crv: Ed25519` — the 32-byte public key.
    Ed25519 {
        /// The encoded point.
        x: [u8; 32],
    },
    /// `kty: RSA` — modulus and exponent, big-endian, without leading zeros.
    Rsa {
        /// Modulus.
        n: Vec<u8>,
        /// Public exponent.
        e: Vec<u8>,
    },
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ec { curve, .. } => write!(f, "Ec({})", curve.name()),
            Self::Ed25519 { .. } => f.write_str("Ed25519"),
            Self::Rsa { n, .. } => write!(f, "Rsa({} bits)", n.len() * 8),
        }
    }
}

/// A validated public signature-verification key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PublicJwk {
    material: KeyMaterial,
    kid: Option<String>,
    /// The algorithm named by the key's own `alg`, if any.
    alg: Option<Algorithm>,
    thumbprint: String,
}

impl PublicJwk {
    /// Reads a JWK from its JSON text.
    pub fn from_json(bytes: &[u8]) -> Result<Self, JwkError> {
        Self::from_map(&json::parse_object(bytes).map_err(JwkError::Json)?)
    }

    /// Reads a JWK from an already-parsed (duplicate-free) JSON object.
    pub fn from_map(m: &Map<String, Value>) -> Result<Self, JwkError> {
        const PRIVATE: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
        if PRIVATE.iter().any(|p| m.contains_key(*p)) {
            return Err(JwkError::PrivateKeyMaterial);
        }
        if let Some(u) = m.get("use") {
            if u.as_str() != Some("sig") {
                return Err(JwkError::NotForSignatures);
            }
        }
        if let Some(ops) = m.get("key_ops") {
            let ops = ops
                .as_array()
                .ok_or(JwkError::InvalidMember { member: "key_ops" })?;
            if !ops.iter().any(|o| o.as_str() == Some("verify")) {
                return Err(JwkError::NotForSignatures);
            }
        }
        let kid = match m.get("kid") {
            None => None,
            Some(Value::String(s)) if s.len() <= MAX_KID_LEN => Some(s.clone()),
            Some(_) => return Err(JwkError::InvalidMember { member: "kid" }),
        };
        let alg = match m.get("alg") {
            None => None,
            Some(Value::String(s)) => {
                Some(Algorithm::from_name(s).map_err(|_| JwkError::AlgorithmKeyMismatch)?)
            }
            Some(_) => return Err(JwkError::InvalidMember { member: "alg" }),
        };
        let kty = str_member(m, "kty")?;
        let (material, thumbprint_input) = match kty {
            "EC" => {
                let crv = str_member(m, "crv")?;
                let curve = match crv {
                    "P-256" => EcCurve::P256,
                    "P-384" => EcCurve::P384,
                    _ => return Err(JwkError::UnsupportedKeyType),
                };
                let (xs, x) = bytes_member(m, "x")?;
                let (ys, y) = bytes_member(m, "y")?;
                if x.len() != curve.coordinate_len() {
                    return Err(JwkError::InvalidMember { member: "x" });
                }
                if y.len() != curve.coordinate_len() {
                    return Err(JwkError::InvalidMember { member: "y" });
                }
                // RFC 7638 §3.2: required members only, lexicographic order, no whitespace.
                let tp = format!(r#"{{"crv":"{crv}","kty":"EC","x":"{xs}","y":"{ys}"}}"#);
                (KeyMaterial::Ec { curve, x, y }, tp)
            }
            "OKP" => {
                let crv = str_member(m, "crv")?;
                if crv != "Ed25519" {
                    return Err(JwkError::UnsupportedKeyType);
                }
                let (xs, x) = bytes_member(m, "x")?;
                let x: [u8; 32] = x
                    .try_into()
                    .map_err(|_| JwkError::InvalidMember { member: "x" })?;
                if is_small_order_ed25519(&x) {
                    return Err(JwkError::InvalidMember { member: "x" });
                }
                let tp = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{xs}"}}"#);
                (KeyMaterial::Ed25519 { x }, tp)
            }
            "RSA" => {
                let (ns, n) = bytes_member(m, "n")?;
                let (es, e) = bytes_member(m, "e")?;
                let n = strip_leading_zeros(n);
                let e = strip_leading_zeros(e);
                let bits = bit_len(&n);
                if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                    return Err(JwkError::RsaModulusSize { bits });
                }
                // Exponent: odd, > 1, at most 64 bits (RFC 8017 §3.1 bounds; keeps verification cheap).
                if e.is_empty() || e.len() > 8 || e.last().is_some_and(|b| b & 1 == 0) || e == [1] {
                    return Err(JwkError::InvalidMember { member: "e" });
                }
                let tp = format!(r#"{{"e":"{es}","kty":"RSA","n":"{ns}"}}"#);
                (KeyMaterial::Rsa { n, e }, tp)
            }
            "oct" => return Err(JwkError::UnsupportedKeyType),
            _ => return Err(JwkError::UnsupportedKeyType),
        };
        let key = Self {
            material,
            kid,
            alg,
            thumbprint: b64::encode(&Sha256::digest(thumbprint_input.as_bytes())),
        };
        if let Some(a) = alg {
            if !key.type_allows(a) {
                return Err(JwkError::AlgorithmKeyMismatch);
            }
        }
        Ok(key)
    }

    fn type_allows(&self, alg: Algorithm) -> bool {
        matches!(
            (&self.material, alg),
            (
                KeyMaterial::Ec {
                    curve: EcCurve::P256,
                    ..
                },
                Algorithm::Es256
            ) | (
                KeyMaterial::Ec {
                    curve: EcCurve::P384,
                    ..
                },
                Algorithm::Es384
            ) | (KeyMaterial::Ed25519 { .. }, Algorithm::EdDsa)
                | (KeyMaterial::Rsa { .. }, Algorithm::Rs256 | Algorithm::Ps256)
        )
    }

    /// The algorithms this key may verify: its own `alg` if it names one,
    /// otherwise every algorithm its type and curve support.
    #[must_use]
    pub fn algorithms(&self) -> &'static [Algorithm] {
        match (self.alg, &self.material) {
            (Some(Algorithm::Es256), _) => &[Algorithm::Es256],
            (Some(Algorithm::Es384), _) => &[Algorithm::Es384],
            (Some(Algorithm::EdDsa), _) => &[Algorithm::EdDsa],
            (Some(Algorithm::Rs256), _) => &[Algorithm::Rs256],
            (Some(Algorithm::Ps256), _) => &[Algorithm::Ps256],
            (
                None,
                KeyMaterial::Ec {
                    curve: EcCurve::P256,
                    ..
                },
            ) => &[Algorithm::Es256],
            (
                None,
                KeyMaterial::Ec {
                    curve: EcCurve::P384,
                    ..
                },
            ) => &[Algorithm::Es384],
            (None, KeyMaterial::Ed25519 { .. }) => &[Algorithm::EdDsa],
            (None, KeyMaterial::Rsa { .. }) => &[Algorithm::Rs256, Algorithm::Ps256],
        }
    }

    /// The algorithm to verify with when a header names `header_alg`:
    /// the key's own, if the header agrees with it.
    pub fn algorithm_for(&self, header_alg: Algorithm) -> Result<Algorithm, KeyError> {
        self.algorithms()
            .iter()
            .copied()
            .find(|a| *a == header_alg)
            .ok_or(KeyError::AlgorithmMismatch {
                key: self.algorithms().first().copied(),
                header: header_alg,
            })
    }

    /// The decoded public key.
    #[must_use]
    pub fn material(&self) -> &KeyMaterial {
        &self.material
    }

    /// The key id, if the JWK has one.
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The RFC 7638 SHA-256 thumbprint, base64url (the value of `cnf.jkt`).
    #[must_use]
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// The public JWK as JSON members (`kty`, `crv`, coordinates, `kid`, `alg`),
    /// suitable for a JWKS or for WebCrypto's `importKey("jwk", …)`.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        match &self.material {
            KeyMaterial::Ec { curve, x, y } => {
                m.insert("kty".into(), "EC".into());
                m.insert("crv".into(), curve.name().into());
                m.insert("x".into(), b64::encode(x).into());
                m.insert("y".into(), b64::encode(y).into());
            }
            KeyMaterial::Ed25519 { x } => {
                m.insert("kty".into(), "OKP".into());
                m.insert("crv".into(), "Ed25519".into());
                m.insert("x".into(), b64::encode(x).into());
            }
            KeyMaterial::Rsa { n, e } => {
                m.insert("kty".into(), "RSA".into());
                m.insert("n".into(), b64::encode(n).into());
                m.insert("e".into(), b64::encode(e).into());
            }
        }
        if let Some(kid) = &self.kid {
            m.insert("kid".into(), kid.clone().into());
        }
        if let Some(alg) = self.alg {
            m.insert("alg".into(), alg.name().into());
        }
        m.insert("use".into(), "sig".into());
        Value::Object(m)
    }
}

fn str_member<'a>(m: &'a Map<String, Value>, member: &'static str) -> Result<&'a str, JwkError> {
    match m.get(member) {
        None => Err(JwkError::MissingMember { member }),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(JwkError::InvalidMember { member }),
    }
}

fn bytes_member<'a>(
    m: &'a Map<String, Value>,
    member: &'static str,
) -> Result<(&'a str, Vec<u8>), JwkError> {
    let s = str_member(m, member)?;
    let bytes = b64::decode(s).map_err(|_| JwkError::InvalidMember { member })?;
    Ok((s, bytes))
}

/// The Ed25519 points of small order (1, 2, 4 and 8), as encoded with the
/// sign bit cleared, including the non-canonical spellings `y = p` and
/// `y = p + 1`: libsodium's `has_small_order` list. A key among them has no
/// secret: the identity key verifies `R` = identity, `S` = 0 for every
/// message, and WebCrypto (BoringSSL) and aws-lc-rs accept that; only a
/// strict verifier would refuse it. Refused for every provider at parse.
const SMALL_ORDER_ED25519: [[u8; 32]; 7] = [
    // 0 (order 4)
    [0; 32],
    // 1 (order 1)
    [
        0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0,
    ],
    // order 8
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x05,
    ],
    // order 8
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67,
        0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac,
        0x03, 0x7a,
    ],
    // p - 1 (order 2)
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    // p (= 0, order 4)
    [
        0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    // p + 1 (= 1, order 1)
    [
        0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
];

/// Whether `x` encodes an Ed25519 point of small order (either sign).
fn is_small_order_ed25519(x: &[u8; 32]) -> bool {
    let mut y = *x;
    if let Some(last) = y.last_mut() {
        *last &= 0x7f;
    }
    SMALL_ORDER_ED25519.contains(&y)
}

fn strip_leading_zeros(v: Vec<u8>) -> Vec<u8> {
    let first = v.iter().position(|b| *b != 0).unwrap_or(v.len());
    v.get(first..).map(<[u8]>::to_vec).unwrap_or_default()
}

fn bit_len(v: &[u8]) -> usize {
    match v.first() {
        None => 0,
        Some(b) => (v.len() - 1) * 8 + (8 - b.leading_zeros() as usize),
    }
}

/// Why no key could be chosen for a token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// No key has this `kid` (the caller may refresh its JWKS, rate-limited).
    #[error("no key with that key id")]
    UnknownKid,
    /// The token has no `kid` and the set has more than one candidate key.
    #[error("token has no key id")]
    KidRequired,
    /// Several keys share the `kid`; none is used.
    #[error("key id is ambiguous")]
    AmbiguousKid,
    /// The header's `alg` is not one the key verifies.
    #[error("algorithm {header} does not match the key")]
    AlgorithmMismatch {
        /// What the key verifies.
        key: Option<Algorithm>,
        /// What the header named.
        header: Algorithm,
    },
}

/// A key chosen for verification, with the algorithm the key decided.
#[derive(Clone, Copy, Debug)]
pub struct SelectedKey<'a> {
    /// The key.
    pub jwk: &'a PublicJwk,
    /// The algorithm to verify with — the key's, never merely the header's.
    pub alg: Algorithm,
}

/// A set of verification keys (RFC 7517 §5).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JwkSet {
    keys: Vec<PublicJwk>,
    skipped: usize,
}

impl JwkSet {
    /// Reads `{"keys":[…]}`. Keys we cannot use (unsupported types,
    /// encryption keys, malformed entries) are skipped as RFC 7517 §5
    /// directs, and counted in [`JwkSet::skipped`]; a private key is never
    /// skipped silently — it refuses the whole set.
    pub fn from_json(bytes: &[u8]) -> Result<Self, JwkError> {
        let doc = json::parse_object(bytes).map_err(JwkError::Json)?;
        let keys = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(JwkError::InvalidKeySet)?;
        if keys.len() > MAX_KEYS {
            return Err(JwkError::InvalidKeySet);
        }
        let mut set = JwkSet::default();
        for k in keys {
            let Some(obj) = k.as_object() else {
                set.skipped += 1;
                continue;
            };
            match PublicJwk::from_map(obj) {
                Ok(key) => set.keys.push(key),
                Err(JwkError::PrivateKeyMaterial) => return Err(JwkError::PrivateKeyMaterial),
                Err(_) => set.skipped += 1,
            }
        }
        Ok(set)
    }

    /// Builds a set from keys already validated.
    #[must_use]
    pub fn from_keys(keys: Vec<PublicJwk>) -> Self {
        Self { keys, skipped: 0 }
    }

    /// The usable keys.
    #[must_use]
    pub fn keys(&self) -> &[PublicJwk] {
        &self.keys
    }

    /// How many entries of the document were not usable.
    #[must_use]
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// Chooses the key for a token with header `kid` and `alg`. The `kid` is
    /// only a lookup key; the returned algorithm is the key's.
    pub fn select(
        &self,
        kid: Option<&str>,
        header_alg: Algorithm,
    ) -> Result<SelectedKey<'_>, KeyError> {
        let jwk = match kid {
            Some(kid) => {
                let mut found = self.keys.iter().filter(|k| k.kid() == Some(kid));
                let first = found.next().ok_or(KeyError::UnknownKid)?;
                if found.next().is_some() {
                    return Err(KeyError::AmbiguousKid);
                }
                first
            }
            None => match self.keys.as_slice() {
                [only] => only,
                _ => return Err(KeyError::KidRequired),
            },
        };
        Ok(SelectedKey {
            jwk,
            alg: jwk.algorithm_for(header_alg)?,
        })
    }

    /// The document `{"keys":[…]}` for publishing.
    #[must_use]
    pub fn to_json(&self) -> Value {
        serde_json::json!({ "keys": self.keys.iter().map(PublicJwk::to_json).collect::<Vec<_>>() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every point of small order, either sign, is refused; each list entry
    /// that decodes is of small order; an ordinary key is kept. Checked
    /// against curve25519-dalek's eight-torsion points, not against the list.
    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn small_order_ed25519_keys_are_refused() {
        use curve25519_dalek::constants::EIGHT_TORSION;
        let okp = |x: &[u8; 32]| {
            PublicJwk::from_json(
                format!(
                    r#"{{"kty":"OKP","crv":"Ed25519","x":"{}"}}"#,
                    b64::encode(x)
                )
                .as_bytes(),
            )
        };
        for p in EIGHT_TORSION {
            let x = p.compress().to_bytes();
            let mut flipped = x;
            flipped[31] ^= 0x80;
            for x in [x, flipped] {
                assert_eq!(
                    okp(&x),
                    Err(JwkError::InvalidMember { member: "x" }),
                    "{x:02x?}"
                );
            }
        }
        for x in SMALL_ORDER_ED25519 {
            if let Some(p) = curve25519_dalek::edwards::CompressedEdwardsY(x).decompress() {
                assert!(p.is_small_order(), "{x:02x?}");
            }
        }
        let base = curve25519_dalek::constants::ED25519_BASEPOINT_COMPRESSED.to_bytes();
        assert!(okp(&base).is_ok());
    }

    /// RFC 7638 §3.1: the example RSA key and its thumbprint.
    #[test]
    fn rfc7638_example_thumbprint() {
        let jwk = br#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#;
        let key = PublicJwk::from_json(jwk).unwrap();
        assert_eq!(
            key.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        assert_eq!(key.algorithms(), &[Algorithm::Rs256]);
    }

    #[test]
    fn private_and_symmetric_keys_are_refused() {
        let d = br#"{"kty":"EC","crv":"P-256","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","d":"AAAA"}"#;
        assert_eq!(PublicJwk::from_json(d), Err(JwkError::PrivateKeyMaterial));
        let k = br#"{"kty":"oct","k":"c2VjcmV0"}"#;
        assert_eq!(PublicJwk::from_json(k), Err(JwkError::PrivateKeyMaterial));
        let k = br#"{"kty":"oct"}"#;
        assert_eq!(PublicJwk::from_json(k), Err(JwkError::UnsupportedKeyType));
    }

    #[test]
    fn alg_must_belong_to_the_key_type() {
        let k = br#"{"kty":"EC","crv":"P-256","alg":"RS256","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"}"#;
        assert_eq!(PublicJwk::from_json(k), Err(JwkError::AlgorithmKeyMismatch));
        let k = br#"{"kty":"EC","crv":"P-256","alg":"HS256","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"}"#;
        assert_eq!(PublicJwk::from_json(k), Err(JwkError::AlgorithmKeyMismatch));
    }

    #[test]
    fn select_uses_the_keys_algorithm() {
        let set = JwkSet::from_json(br#"{"keys":[{"kty":"EC","crv":"P-256","kid":"a","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"},{"kty":"weird"}]}"#).unwrap();
        assert_eq!(set.skipped(), 1);
        assert_eq!(
            set.select(Some("a"), Algorithm::Es256).unwrap().alg,
            Algorithm::Es256
        );
        assert!(matches!(
            set.select(Some("a"), Algorithm::Rs256),
            Err(KeyError::AlgorithmMismatch { .. })
        ));
        assert_eq!(
            set.select(Some("b"), Algorithm::Es256).unwrap_err(),
            KeyError::UnknownKid
        );
        assert_eq!(
            set.select(Some("../../etc/passwd"), Algorithm::Es256)
                .unwrap_err(),
            KeyError::UnknownKid
        );
    }
}
