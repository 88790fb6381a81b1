//! The `signing_keys` table: key schedules and sealed private keys, and the
//! key-maintenance transaction (on PostgreSQL under an advisory lock, so
//! with several replicas exactly one rotates at a time).

use crate::store::db::{Backend, Db, StoreError};
use sqlx::any::AnyRow;
use sqlx::Row as _;

/// A key's schedule as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRow {
    /// `kid`.
    pub kid: String,
    /// `alg`.
    pub alg: String,
    /// `created_at`.
    pub created_at: i64,
    /// `published_at`.
    pub published_at: i64,
    /// `active_at`.
    pub active_at: i64,
    /// `retired_at`.
    pub retired_at: Option<i64>,
    /// `removed_at`.
    pub removed_at: Option<i64>,
}

const COLUMNS: &str = "kid, alg, created_at, published_at, active_at, retired_at, removed_at";

fn from_row(row: &AnyRow) -> Result<KeyRow, StoreError> {
    Ok(KeyRow {
        kid: row.try_get("kid")?,
        alg: row.try_get("alg")?,
        created_at: row.try_get("created_at")?,
        published_at: row.try_get("published_at")?,
        active_at: row.try_get("active_at")?,
        retired_at: row.try_get("retired_at")?,
        removed_at: row.try_get("removed_at")?,
    })
}

/// Every key's schedule, oldest first.
pub async fn list(db: &Db) -> Result<Vec<KeyRow>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM signing_keys ORDER BY active_at, created_at"
    ))
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Every key not yet removed with its sealed private key, oldest first.
pub async fn live(db: &Db) -> Result<Vec<(KeyRow, Vec<u8>)>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS}, private_key FROM signing_keys WHERE removed_at IS NULL ORDER BY active_at, created_at"
    ))
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| Ok((from_row(r)?, r.try_get("private_key")?)))
        .collect()
}

/// The key-maintenance transaction: begun with [`Db::begin_key_maintenance`]
/// (holding the lock until it commits or rolls back).
pub struct KeyMaintenance(sqlx::Transaction<'static, sqlx::Any>);

impl Db {
    /// Begins the key-maintenance transaction; on PostgreSQL it takes a
    /// transaction-scoped advisory lock first.
    pub async fn begin_key_maintenance(&self) -> Result<KeyMaintenance, StoreError> {
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            // 0x6761_7465 = "gate": one lock id for key maintenance.
            sqlx::query("SELECT pg_advisory_xact_lock(1734438245)::TEXT AS locked")
                .fetch_one(&mut *tx)
                .await?;
        }
        Ok(KeyMaintenance(tx))
    }
}

impl KeyMaintenance {
    /// Every key's schedule (in the table's order).
    pub async fn all(&mut self) -> Result<Vec<KeyRow>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM signing_keys"))
            .fetch_all(&mut *self.0)
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// The schedule of `kid`.
    pub async fn get(&mut self, kid: &str) -> Result<KeyRow, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM signing_keys WHERE kid = $1"
        ))
        .bind(kid)
        .fetch_one(&mut *self.0)
        .await?;
        from_row(&row)
    }

    /// Inserts a key created and published at `now`, signing from `active_at`.
    pub async fn insert(
        &mut self,
        kid: &str,
        alg: &str,
        now: i64,
        active_at: i64,
        sealed: &[u8],
    ) -> Result<(), StoreError> {
        sqlx::query(&format!("INSERT INTO signing_keys ({COLUMNS}, private_key) VALUES ($1, $2, $3, $4, $5, NULL, NULL, $6)"))
            .bind(kid)
            .bind(alg)
            .bind(now)
            .bind(now)
            .bind(active_at)
            .bind(sealed.to_vec())
            .execute(&mut *self.0)
            .await?;
        Ok(())
    }

    /// Sets `retired_at` of `kid`.
    pub async fn retire(&mut self, kid: &str, at: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE kid = $2")
            .bind(at)
            .bind(kid)
            .execute(&mut *self.0)
            .await?;
        Ok(())
    }

    /// Marks `kid` removed at `now` and destroys its private key; the row
    /// stays for the audit trail.
    pub async fn remove(&mut self, kid: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE signing_keys SET removed_at = $1, private_key = $2 WHERE kid = $3")
            .bind(now)
            .bind(Vec::<u8>::new())
            .bind(kid)
            .execute(&mut *self.0)
            .await?;
        Ok(())
    }

    /// Commits (and releases the lock).
    pub async fn commit(self) -> Result<(), StoreError> {
        self.0.commit().await?;
        Ok(())
    }

    /// Rolls back (and releases the lock).
    pub async fn rollback(self) -> Result<(), StoreError> {
        self.0.rollback().await?;
        Ok(())
    }
}
