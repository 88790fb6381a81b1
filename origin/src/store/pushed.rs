//! The `pushed_requests` table (RFC 9126): pushed authorization requests
//! by the hash of their `request_uri`'s random part, with their client,
//! lifetime and whether `/authorize` has opened them. A row is used once:
//! [`consume`] deletes it.

use crate::store::db::{Db, StoreError};
use sqlx::Row as _;

/// Stores a pushed request.
pub async fn insert(
    db: &Db,
    handle_hash: &str,
    client_id: &str,
    params: &str,
    created_at: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO pushed_requests (handle_hash, client_id, params, created_at, expires_at, opened_at) \
         VALUES ($1, $2, $3, $4, $5, NULL)",
    )
    .bind(handle_hash)
    .bind(client_id)
    .bind(params)
    .bind(created_at)
    .bind(expires_at)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// The parameters of `client_id`'s unexpired request `handle_hash`, and
/// when it was first opened; the first call marks it opened (at `now`) and
/// moves its expiry to `opened_until` (once: later calls do not extend it).
/// `None` if there is no such live row.
pub async fn open(
    db: &Db,
    handle_hash: &str,
    client_id: &str,
    now: i64,
    opened_until: i64,
) -> Result<Option<(String, i64)>, StoreError> {
    sqlx::query(
        "UPDATE pushed_requests SET opened_at = $1, \
         expires_at = CASE WHEN expires_at > $2 THEN expires_at ELSE $2 END \
         WHERE handle_hash = $3 AND client_id = $4 AND opened_at IS NULL AND expires_at > $1",
    )
    .bind(now)
    .bind(opened_until)
    .bind(handle_hash)
    .bind(client_id)
    .execute(&db.pool)
    .await?;
    let row = sqlx::query(
        "SELECT params, opened_at FROM pushed_requests \
         WHERE handle_hash = $1 AND client_id = $2 AND expires_at > $3 AND opened_at IS NOT NULL",
    )
    .bind(handle_hash)
    .bind(client_id)
    .bind(now)
    .fetch_optional(&db.pool)
    .await?;
    row.map(|r| -> Result<(String, i64), StoreError> {
        Ok((r.try_get("params")?, r.try_get("opened_at")?))
    })
    .transpose()
}

/// Uses the request up: deletes the live row. `true` for exactly one caller
/// however many race (the DELETE is the arbiter); `false` when it was used,
/// expired or never existed.
pub async fn consume(db: &Db, handle_hash: &str, now: i64) -> Result<bool, StoreError> {
    let r = sqlx::query("DELETE FROM pushed_requests WHERE handle_hash = $1 AND expires_at > $2")
        .bind(handle_hash)
        .bind(now)
        .execute(&db.pool)
        .await?;
    Ok(r.rows_affected() == 1)
}
