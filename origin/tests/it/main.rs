//! The origin's integration tests, in one binary (one link): HTTP endpoints
//! through `oneshot`, repositories on SQLite and PostgreSQL, and the real
//! `gatehouse-origin` binary as a process.
//!
//! PostgreSQL runs when `GATEHOUSE_TEST_DATABASE_URL` is set (CI sets it,
//! e.g. `postgres://postgres@127.0.0.1:5432/test`); otherwise those cases
//! print why they were skipped.

// Test code: helpers outside #[test] fns may unwrap and index too (clippy.toml covers only test fns).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod admin_parity;
mod api;
mod assertion;
mod audit;
mod client_cache;
mod client_rules;
mod clock;
mod cors;
mod exchange;
mod family_revocation;
mod grant_review;
mod grants;
mod logout;
mod metrics;
mod oidc;
mod openapi;
mod pages;
mod par;
mod process;
mod push;
mod ready;
mod request_id;
mod review;
mod review18;
mod review19;
mod review19b;
mod review19c;
mod review21f;
mod review22;
mod storage;
mod support;
mod userinfo;
