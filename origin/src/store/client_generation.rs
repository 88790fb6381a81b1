//! `client_generation`: one counter the database bumps, by trigger, in the
//! same transaction as any change to a `clients` row (migration 0015), and
//! this process's record of the highest value it has read.
//!
//! A client record read together with the counter (one statement, one
//! snapshot) stays exact for as long as the counter has not moved: the
//! group commit re-reads it in the transaction that issues a token from a
//! cached record and refuses the write when it moved
//! ([`crate::store::group_commit::GroupCommit::write_as_of`]).

use crate::store::db::StoreError;
use sqlx::Row as _;
use std::sync::atomic::{AtomicI64, Ordering};

/// The highest `client_generation` this process has read (0 before any):
/// a cached record read at a lower one is known stale without asking.
#[derive(Debug, Default)]
pub struct Seen(AtomicI64);

impl Seen {
    /// Notes that the counter stood at `generation` at some point.
    pub fn observe(&self, generation: i64) {
        self.0.fetch_max(generation, Ordering::AcqRel);
    }

    /// The highest generation read so far.
    #[must_use]
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Acquire)
    }
}

/// The counter as `conn` sees it. Inside a SQLite write transaction (after
/// its first write) that is its value until the commit: the write lock is
/// held. On PostgreSQL (read committed) it is the last committed value.
pub async fn read(conn: &mut sqlx::AnyConnection) -> Result<i64, StoreError> {
    let row = sqlx::query("SELECT n FROM client_generation WHERE id = 1")
        .fetch_one(&mut *conn)
        .await?;
    Ok(row.try_get("n")?)
}

/// The counter's last committed value, read on `db`'s pool and noted in
/// [`crate::store::db::Db::client_generation`].
pub async fn current(db: &crate::store::db::Db) -> Result<i64, StoreError> {
    let mut conn = db.pool.acquire().await?;
    let n = read(&mut conn).await?;
    db.client_generation.observe(n);
    Ok(n)
}
