//! Floor 2, store: the only module that speaks SQL (sqlx). One module per
//! table family; the group-commit batch writer lives here and knows rows,
//! not services.

pub mod audit;
pub mod auth_codes;
pub mod client_generation;
pub mod clients;
pub mod db;
pub mod error;
pub mod grant_lookup;
pub mod grants;
pub mod group_commit;
pub mod keys;
pub mod outbox;
pub mod pushed;
pub mod refresh_tokens;
pub mod replay;
pub mod revocation;
pub mod sessions;
pub mod users;
pub use error::StoreError;
