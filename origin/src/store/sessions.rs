//! The `sessions` and `consents` tables: a signed-in user's browser session
//! (stored only as the hash of its id) and the consents they gave.

use crate::store::db::{Db, StoreError};
use sqlx::Row as _;

/// The user of the live session whose id hashes to `id_hash`.
pub async fn user_of(db: &Db, id_hash: &str, now: i64) -> Result<Option<String>, StoreError> {
    let row = sqlx::query("SELECT user_id FROM sessions WHERE id_hash = $1 AND expires_at > $2")
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&db.pool)
        .await?;
    Ok(match row {
        Some(r) => Some(r.try_get("user_id")?),
        None => None,
    })
}

/// Inserts a session.
pub async fn insert(
    db: &Db,
    id_hash: &str,
    user_id: &str,
    created_at: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO sessions (id_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(id_hash)
    .bind(user_id)
    .bind(created_at)
    .bind(expires_at)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Whether `user` consented to `client_id` for `key` (scopes and audience).
pub async fn has_consent(
    db: &Db,
    user: &str,
    client_id: &str,
    key: &str,
) -> Result<bool, StoreError> {
    Ok(sqlx::query(
        "SELECT user_id FROM consents WHERE user_id = $1 AND client_id = $2 AND scope = $3",
    )
    .bind(user)
    .bind(client_id)
    .bind(key)
    .fetch_optional(&db.pool)
    .await?
    .is_some())
}

/// Remembers a consent (once).
pub async fn insert_consent(
    db: &Db,
    user: &str,
    client_id: &str,
    key: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO consents (user_id, client_id, scope, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (user_id, client_id, scope) DO NOTHING",
    )
    .bind(user)
    .bind(client_id)
    .bind(key)
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok(())
}
