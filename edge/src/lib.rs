//! Gatehouse's edge worker.
//!
//! On every request: read the credentials, parse the access token with
//! `gatehouse-common`, pick the issuer's key (the key decides the
//! algorithm), verify through WebCrypto, check the claims at the current
//! time, and forward only verified requests upstream with the verified
//! identity in `Gatehouse-*` headers. Refusals are `common::Rejection`s
//! rendered once (status, `WWW-Authenticate`, JSON body).

pub mod config;
pub mod jwks_cache;
pub mod replay_window;
pub mod revocation_rules;

#[cfg(target_arch = "wasm32")]
mod jwks;
#[cfg(target_arch = "wasm32")]
mod proxy;
#[cfg(target_arch = "wasm32")]
pub mod ratelimit;
#[cfg(target_arch = "wasm32")]
pub mod replay;
#[cfg(target_arch = "wasm32")]
mod revocations;
#[cfg(target_arch = "wasm32")]
pub mod webcrypto;
#[cfg(target_arch = "wasm32")]
mod worker_main;
