//! Gatehouse's browser client, compiled to WebAssembly.
//!
//! Browser apps use it to hold a **non-extractable** WebCrypto ECDSA P-256 key
//! in IndexedDB and to make DPoP proofs (RFC 9449) with it, including `ath`
//! for access tokens and the `DPoP-Nonce` retry. See `README.md` for the JS
//! API ([`DpopClient`] on wasm32).
//!
//! The pure halves — proof building ([`proof`]) and the nonce retry decision
//! ([`nonce_retry`]) — build and are tested natively; the WebCrypto,
//! IndexedDB and fetch calls exist only on `wasm32`.

pub mod error;
pub mod nonce_retry;
pub mod proof;

#[cfg(target_arch = "wasm32")]
mod client;
#[cfg(target_arch = "wasm32")]
mod keystore;
#[cfg(target_arch = "wasm32")]
mod webcrypto;

#[cfg(target_arch = "wasm32")]
pub use client::DpopClient;
pub use error::BrowserError;
