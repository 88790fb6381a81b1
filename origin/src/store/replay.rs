//! The `dpop_jtis` table: single-use keys (a DPoP proof's `jti` and `htu`,
//! a private_key_jwt assertion's `jti`), kept while the proof or assertion
//! is fresh. The token path writes DPoP keys through the group commit
//! (`Write::ProofJti`); assertions are recorded here directly.

use crate::store::db::{Db, StoreError};

/// Records `key` until `until`; `false` when it was recorded before (a replay).
pub async fn remember_once(db: &Db, key: &str, until: i64) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO dpop_jtis (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING",
    )
    .bind(key)
    .bind(until)
    .execute(&db.pool)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Forgets keys kept until before `now`: their proofs are stale anyway.
/// The number removed.
pub async fn prune(db: &Db, now: i64) -> Result<u64, StoreError> {
    let r = sqlx::query("DELETE FROM dpop_jtis WHERE expires_at < $1")
        .bind(now)
        .execute(&db.pool)
        .await?;
    Ok(r.rows_affected())
}
