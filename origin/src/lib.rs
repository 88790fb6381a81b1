//! Gatehouse origin: the OAuth 2.1 authorization server and its admin CLI.
//!
//! The crate is a house with floors; a module imports only its own floor and
//! the floors below (checked by `scripts/check-layers`):
//!
//! 1. [`support`]: the clock, secrets, the KEK, the aws-lc-rs provider, metrics.
//! 2. [`config`]: the validated configuration.
//! 3. [`store`]: the only module that speaks SQL (sqlx `Any` over SQLite or
//!    PostgreSQL), one module per table family, and the group commit.
//! 4. [`domain`]: the OAuth operations and the operator's ([`domain::admin`]);
//!    they return [`domain::error::Error`], which knows nothing of HTTP.
//!    Grant types are [`domain::grant_type::GrantType`].
//! 5. [`http`]: one router, extractors, thin handlers and the one rendering
//!    of the domain error ([`http::error`]); [`server`] runs it with its
//!    background tasks.
//! 6. [`cli`]: the command line, calling the same [`domain::admin`]
//!    operations as [`http::admin`].
//!
//! A new grant type: a [`domain::grant_type::GrantType`] variant, its flow in
//! a new `domain` module, its SQL in a `store` module, one arm in the token
//! endpoint's dispatch (docs/architecture.md, "The origin's layers").
//!
//! Validation of tokens is `gatehouse_common`'s; signing and verifying run on
//! aws-lc-rs ([`support::crypto`]).

#![recursion_limit = "256"]

pub mod cli;
pub mod config;
pub mod domain;
pub mod http;
pub mod server;
pub mod store;
pub mod support;
