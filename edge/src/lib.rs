//! Gatehouse's edge worker.
//!
//! On every request: read the credentials, parse the access token with
//! `gatehouse-common`, pick the issuer's key (the key decides the
//! algorithm), verify through WebCrypto, check the claims at the current
//! time, and forward only verified requests upstream with the verified
//! identity in `Gatehouse-*` headers. Refusals are `common::Rejection`s
//! rendered once (status, `WWW-Authenticate`, JSON body).

pub mod assertion;
pub mod config;
pub mod forward_headers;
pub mod issuers;
pub mod jwks_cache;
pub mod rate_lease;
pub mod replay_window;
pub mod replica_rules;
pub mod request_record;
pub mod revocation_rules;
pub mod route_limits;
pub mod trace;

// The worker's entry points (`#[event]` exports) and Durable Object classes
// are left out under `browser-test`: a headless browser cannot instantiate a
// module importing workerd's bindings, and the WebCrypto provider needs none.
#[cfg(all(target_arch = "wasm32", not(feature = "browser-test")))]
mod body;
#[cfg(all(target_arch = "wasm32", not(feature = "browser-test")))]
mod discovery;
#[cfg(all(target_arch = "wasm32", not(feature = "browser-test")))]
mod jwks;
#[cfg(all(target_arch = "wasm32", not(feature = "browser-test")))]
mod metrics;
#[cfg(all(target_arch = "wasm32", not(feature = "browser-test")))]
mod proxy;
#[cfg(all(target_arch = "wasm32", not(feature = "browser-test")))]
pub mod ratelimit;
#[cfg(all(target_arch = "wasm32", not(feature = "browser-test")))]
pub mod replay;
#[cfg(all(target_arch = "wasm32", not(feature = "browser-test")))]
mod revocation_replica;
#[cfg(all(target_arch = "wasm32", not(feature = "browser-test")))]
mod revocations;
#[cfg(all(target_arch = "wasm32", not(feature = "browser-test")))]
mod single_flight;
#[cfg(target_arch = "wasm32")]
pub mod webcrypto;
#[cfg(all(target_arch = "wasm32", not(feature = "browser-test")))]
mod worker_main;
