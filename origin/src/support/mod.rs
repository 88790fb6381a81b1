//! Floor 0, support: the clock, secrets and randomness, the key-encryption
//! key, the signing/verifying provider (aws-lc-rs), metrics and request ids. Imports nothing else
//! of the crate.

pub mod clock;
pub mod crypto;
pub mod kek;
pub mod metrics;
pub mod request;
pub mod secret;
