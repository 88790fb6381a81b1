//! Secrets as types: redacted `Debug`, constant-time comparison, and the
//! server-side generation of identifiers and secrets.
//!
//! Client secrets carry 256 bits of entropy, so a single SHA-256 is a
//! sufficient hash (no slow KDF needed) and keeps the token endpoint fast.

use gatehouse_common::b64;
use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;

/// Random bytes from the operating system's CSPRNG (through aws-lc-rs).
pub fn random_bytes<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut buf = [0u8; N];
    aws_lc_rs::rand::fill(&mut buf).map_err(|_| RandomError)?;
    Ok(buf)
}

/// The system random number generator failed.
#[derive(Clone, Copy, Debug, thiserror::Error)]
#[error("the system random number generator failed")]
pub struct RandomError;

/// A random identifier: 128 bits, base64url (22 characters). Not secret.
pub fn random_id() -> Result<String, RandomError> {
    Ok(b64::encode(&random_bytes::<16>()?))
}

/// SHA-256 of a secret, as stored.
#[must_use]
pub fn sha256(secret: &[u8]) -> [u8; 32] {
    Sha256::digest(secret).into()
}

/// Constant-time equality of two byte strings (length is not secret).
#[must_use]
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

macro_rules! secret_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone)]
        pub struct $name(String);

        impl $name {
            /// Wraps a secret value.
            #[must_use]
            pub fn new(value: String) -> Self {
                Self(value)
            }
            /// The secret itself: only for comparing, hashing or showing once.
            #[must_use]
            pub fn expose(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "([redacted])"))
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                ct_eq(self.0.as_bytes(), other.0.as_bytes())
            }
        }
        impl Eq for $name {}
    };
}

secret_type!(
    /// The admin API's bearer token.
    AdminToken
);
secret_type!(
    /// The Cloudflare API token the revocation pusher writes KV with.
    CloudflareApiToken
);
secret_type!(
    /// A client secret as presented or generated (stored only as its SHA-256).
    ClientSecret
);

secret_type!(
    /// A refresh token (RFC 6749 §1.5): 256-bit random, stored as its SHA-256.
    RefreshToken
);
secret_type!(
    /// An authorization code: 256-bit random, single-use, stored as its SHA-256.
    AuthCode
);
secret_type!(
    /// A browser session id (the cookie value), stored as its SHA-256.
    SessionId
);
secret_type!(
    /// The random part of a pushed request's `request_uri` (RFC 9126): 256-bit
    /// random, single-use, stored as its SHA-256.
    PushedRequestHandle
);
secret_type!(
    /// A CSRF token (double-submitted: cookie and form field).
    CsrfToken
);
secret_type!(
    /// A user's password, as typed (stored only as an argon2 hash).
    Password
);

macro_rules! random_secret {
    ($($name:ident),*) => {$(
        impl $name {
            /// A fresh value with 256 bits of entropy, base64url (43 characters).
            pub fn generate() -> Result<Self, RandomError> {
                Ok(Self(b64::encode(&random_bytes::<32>()?)))
            }

            /// The stored form: base64url of its SHA-256.
            #[must_use]
            pub fn hash_b64(&self) -> String {
                b64::encode(&sha256(self.0.as_bytes()))
            }
        }
    )*};
}
random_secret!(
    RefreshToken,
    AuthCode,
    SessionId,
    CsrfToken,
    PushedRequestHandle
);

impl ClientSecret {
    /// A fresh secret with 256 bits of entropy, base64url (43 characters).
    pub fn generate() -> Result<Self, RandomError> {
        Ok(Self(b64::encode(&random_bytes::<32>()?)))
    }

    /// The stored form.
    #[must_use]
    pub fn hash(&self) -> [u8; 32] {
        sha256(self.0.as_bytes())
    }
}

impl AdminToken {
    /// Constant-time check of a presented token (hashing first hides the length too).
    #[must_use]
    pub fn matches(&self, presented: &str) -> bool {
        ct_eq(&sha256(self.0.as_bytes()), &sha256(presented.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted_and_generation_is_256_bits() {
        let s = ClientSecret::generate().unwrap();
        assert_eq!(s.expose().len(), 43);
        assert!(!format!("{s:?}").contains(s.expose()));
        assert_eq!(format!("{s:?}"), "ClientSecret([redacted])");
        assert_ne!(s, ClientSecret::generate().unwrap());
        let a = AdminToken::new("abcdefghijklmnopq".into());
        assert!(a.matches("abcdefghijklmnopq"));
        assert!(!a.matches("abcdefghijklmnop"));
    }
}
