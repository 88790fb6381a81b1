//! Floor 2, store: the only module that speaks SQL (sqlx). One module per
//! table family; the group-commit batch writer lives here and knows rows,
//! not services.

pub mod audit;
pub mod db;
pub mod grant_lookup;
pub mod group_commit;
pub mod refresh_tokens;
pub mod replay;
pub mod revocation;
pub mod sessions;
