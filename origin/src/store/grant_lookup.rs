//! Which session or refresh-token family a presented grant belongs to,
//! looked up before authentication for the per-family rate limit.

use crate::store::db::{Db, StoreError};
use sqlx::Row as _;

/// A grant as presented at `/token`, by its hash.
#[derive(Debug)]
pub enum Presented {
    /// An authorization code's hash (`auth_codes.code_hash`).
    Code(String),
    /// A refresh token's hash (`refresh_tokens.token_hash`).
    Refresh(String),
}

/// The code's `sid` or the refresh token's family id, if it is `client_id`'s.
pub async fn sid_of(
    db: &Db,
    presented: &Presented,
    client_id: &str,
) -> Result<Option<String>, StoreError> {
    let (sql, hash) = match presented {
        Presented::Code(h) => (
            "SELECT sid FROM auth_codes WHERE code_hash = $1 AND client_id = $2",
            h,
        ),
        Presented::Refresh(h) => (
            "SELECT family_id AS sid FROM refresh_tokens WHERE token_hash = $1 AND client_id = $2",
            h,
        ),
    };
    let row = sqlx::query(sql)
        .bind(hash)
        .bind(client_id)
        .fetch_optional(&db.pool)
        .await?;
    Ok(match row {
        Some(r) => Some(r.try_get("sid")?),
        None => None,
    })
}
