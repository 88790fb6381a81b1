//! Gatehouse's pure validation core.
//!
//! Everything that decides whether a token, a DPoP proof or a revocation list
//! is valid lives here, so the edge and the origin can never disagree. The
//! crate performs no I/O and reads no clock: time arrives as a [`UnixTime`]
//! parameter, and signatures are checked by a [`provider::SignatureVerifier`]
//! the caller chooses (RustCrypto natively, WebCrypto at the edge).
//!
//! The flow is always parse → look up the key → verify → accept:
//!
//! ```
//! # use gatehouse_common::{access_token::*, jwk::JwkSet, UnixTime};
//! # fn demo(raw: &str, keys: &JwkSet, policy: &AccessTokenPolicy) -> Result<(), AccessTokenError> {
//! let untrusted = UntrustedAccessToken::parse(raw, policy)?;  // no crypto yet
//! let key = keys.select(untrusted.kid(), untrusted.header_alg())?; // alg comes from the key
//! # let provider = gatehouse_common::provider::RustCrypto;
//! # use gatehouse_common::provider::SignatureVerifier;
//! let ok = provider.verify(key.jwk, key.alg, untrusted.signing_input(), untrusted.signature());
//! let token = untrusted.accept(ok, policy, UnixTime(1_700_000_000))?;
//! # let _ = token; Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod access_token;
pub mod alg;
pub mod b64;
pub mod claims;
pub mod dpop;
pub mod http;
pub mod json;
pub mod jwk;
pub mod jws;
pub mod keys;
pub mod nonce;
pub mod policy;
pub mod profile;
pub mod provider;
pub mod ratelimit;
pub mod rejection;
pub mod revocation;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod trace;
pub mod uri;

pub use rejection::Rejection;

/// Seconds since the Unix epoch, passed in by the caller (the core never reads a clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixTime(pub i64);

impl UnixTime {
    /// The instant `secs` seconds later (saturating).
    #[must_use]
    pub fn plus(self, secs: i64) -> Self {
        Self(self.0.saturating_add(secs))
    }
}
