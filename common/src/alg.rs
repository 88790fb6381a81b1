//! The asymmetric JWS algorithms Gatehouse implements (RFC 7518 §3, RFC 8037).
//!
//! Symmetric (`HS*`) algorithms and `none` are deliberately absent: a value of
//! this type can never name them (RFC 8725 §3.1–3.2).

use core::fmt;

/// An asymmetric JWS signature algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Algorithm {
    /// ECDSA P-256 with SHA-256, P1363 (r‖s) signatures.
    Es256,
    /// ECDSA P-384 with SHA-384, P1363 (r‖s) signatures.
    Es384,
    /// Ed25519 (RFC 8037 `EdDSA` with `crv: Ed25519`).
    EdDsa,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PSS with SHA-256, MGF1-SHA-256, 32-byte salt.
    Ps256,
}

/// What a header's `alg` names when it is not one we verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AlgorithmRefusal {
    /// `none`: unsecured JWS, never accepted (RFC 8725 §3.2).
    #[error("alg none is not accepted")]
    None,
    /// An HMAC algorithm: never accepted where keys are public (RFC 8725 §2.1).
    #[error("symmetric algorithms are not accepted")]
    Symmetric,
    /// Anything else we do not implement.
    #[error("unsupported signature algorithm")]
    Unsupported,
}

impl Algorithm {
    /// Every algorithm, in the order we advertise them.
    pub const ALL: [Algorithm; 5] = [
        Algorithm::Es256,
        Algorithm::Es384,
        Algorithm::EdDsa,
        Algorithm::Rs256,
        Algorithm::Ps256,
    ];

    /// The registered JWS name (`ES256`, `EdDSA`, …).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::EdDsa => "EdDSA",
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
        }
    }

    /// Reads a header's `alg`. Names are case-sensitive (RFC 7515 §4.1.1).
    /// `Ed25519` (the fully-specified name of RFC 9864) is read as [`Algorithm::EdDsa`].
    pub fn from_name(name: &str) -> Result<Self, AlgorithmRefusal> {
        Ok(match name {
            "ES256" => Self::Es256,
            "ES384" => Self::Es384,
            "EdDSA" | "Ed25519" => Self::EdDsa,
            "RS256" => Self::Rs256,
            "PS256" => Self::Ps256,
            "none" => return Err(AlgorithmRefusal::None),
            "HS256" | "HS384" | "HS512" => return Err(AlgorithmRefusal::Symmetric),
            _ => return Err(AlgorithmRefusal::Unsupported),
        })
    }

    /// Length in bytes of a valid signature, where it is fixed by the algorithm.
    #[must_use]
    pub const fn fixed_signature_len(self) -> Option<usize> {
        match self {
            Self::Es256 | Self::EdDsa => Some(64),
            Self::Es384 => Some(96),
            Self::Rs256 | Self::Ps256 => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Space-separated algorithm names, as in a `WWW-Authenticate` `algs` parameter.
#[must_use]
pub fn names(algs: &[Algorithm]) -> String {
    algs.iter().map(|a| a.name()).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_refusals_are_classified() {
        for a in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(a.name()), Ok(a));
        }
        assert_eq!(Algorithm::from_name("none"), Err(AlgorithmRefusal::None));
        assert_eq!(
            Algorithm::from_name("HS256"),
            Err(AlgorithmRefusal::Symmetric)
        );
        assert_eq!(
            Algorithm::from_name("es256"),
            Err(AlgorithmRefusal::Unsupported)
        );
        assert_eq!(
            Algorithm::from_name("NONE"),
            Err(AlgorithmRefusal::Unsupported)
        );
        assert_eq!(names(&[Algorithm::Es256, Algorithm::EdDsa]), "ES256 EdDSA");
    }
}
