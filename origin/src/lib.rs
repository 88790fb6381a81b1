//! Gatehouse origin: the OAuth 2.1 authorization server and its admin CLI.
//!
//! Layers: [`config`] → [`db`] (SQLite or PostgreSQL through sqlx `Any`) →
//! repositories ([`clients`], [`keys`], [`audit`]) → services ([`token`]) →
//! [`http`] (one router, thin handlers, one [`error::Error`]). Validation of
//! tokens is `gatehouse_common`'s; signing and verifying run on aws-lc-rs
//! ([`crypto`]).

#![recursion_limit = "256"]

pub mod audit;
pub mod cli;
pub mod client_assertion;
pub mod clients;
pub mod config;
pub mod crypto;
pub mod db;
pub mod dpop;
pub mod error;
pub mod exchange;
pub mod grants;
pub mod group_commit;
pub mod http;
pub mod introspect;
pub mod kek;
pub mod keys;
pub mod metrics;
pub mod ratelimit;
pub mod revocation;
pub mod revocation_push;
pub mod secret;
pub mod server;
pub mod state;
pub mod token;
pub mod users;
