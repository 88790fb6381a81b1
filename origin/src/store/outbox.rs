//! The revocation pusher's tables: `outbox` (rows waiting to reach the
//! edge), the single `revocation_push` row (versions, delivery state) and
//! the live `revocations` a document carries. The pusher's lock on
//! PostgreSQL lives here too.

use crate::store::db::{Backend, Db, StoreError};
use sqlx::Row as _;

/// Whether any revocation outbox row is waiting.
pub async fn has_pending(db: &Db) -> Result<bool, StoreError> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM (SELECT id FROM outbox WHERE delivered_at IS NULL AND topic = 'revocation' LIMIT 1) AS p",
    )
    .fetch_one(&db.pool)
    .await?;
    Ok(row.try_get::<i64, _>("n")? > 0)
}

/// A stored revocation as the document reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationRow {
    /// `kind` (`jti`, `sid`, `sub`, `client_id`).
    pub kind: String,
    /// `value`.
    pub value: String,
    /// `revoked_at`.
    pub revoked_at: i64,
    /// `drop_after`.
    pub drop_after: i64,
    /// `reason`.
    pub reason: String,
}

/// What [`claim`] reserved and read.
#[derive(Clone, Debug)]
pub struct Claimed {
    /// The version reserved for the document.
    pub version: i64,
    /// The pending outbox rows it covers (at most `limit`).
    pub outbox_ids: Vec<i64>,
    /// The revocations dropped after `now` or revoked after `live_since`, oldest first.
    pub revocations: Vec<RevocationRow>,
}

/// Reserves the next version (one above the last, at least `version_floor`)
/// and reads the pending outbox ids and the live revocations, in one
/// transaction. `None` when nothing is pending and `republish` is false.
pub async fn claim(
    db: &Db,
    now: i64,
    version_floor: i64,
    limit: i64,
    live_since: i64,
    republish: bool,
) -> Result<Option<Claimed>, StoreError> {
    let mut tx = db.pool.begin().await?;
    // Write first: on SQLite this takes the write lock before any read (no
    // snapshot upgrade); on PostgreSQL the row lock orders concurrent claims.
    sqlx::query(
        "UPDATE revocation_push SET version = CASE WHEN version + 1 > $2 THEN version + 1 ELSE $2 END, \
         last_attempt_at = $1 WHERE id = 1",
    )
    .bind(now)
    .bind(version_floor)
    .execute(&mut *tx)
    .await?;
    let version: i64 = sqlx::query("SELECT version FROM revocation_push WHERE id = 1")
        .fetch_one(&mut *tx)
        .await?
        .try_get("version")?;
    // The exact ids seen now (not a watermark: on PostgreSQL a lower id can
    // commit after a higher one). Their revocations committed with them, so
    // the read below sees them.
    let outbox_ids = sqlx::query(
        "SELECT id FROM outbox WHERE delivered_at IS NULL AND topic = 'revocation' ORDER BY id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?
    .iter()
    .map(|r| r.try_get::<i64, _>("id"))
    .collect::<Result<Vec<_>, _>>()?;
    if outbox_ids.is_empty() && !republish {
        tx.rollback().await?;
        return Ok(None);
    }
    let rows = sqlx::query(
        "SELECT kind, value, revoked_at, drop_after, reason FROM revocations \
         WHERE drop_after > $1 OR revoked_at > $2 ORDER BY id",
    )
    .bind(now)
    .bind(live_since)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let revocations = rows
        .iter()
        .map(|r| {
            Ok(RevocationRow {
                kind: r.try_get("kind")?,
                value: r.try_get("value")?,
                revoked_at: r.try_get("revoked_at")?,
                drop_after: r.try_get("drop_after")?,
                reason: r.try_get("reason")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Some(Claimed {
        version,
        outbox_ids,
        revocations,
    }))
}

/// Marks the outbox rows `ids` delivered by `version` (in statements of at
/// most `chunk` ids) and records the delivery (the pusher's `mode`, the
/// signing `kid`), in one transaction. Returns the rows marked.
pub async fn mark_delivered(
    db: &Db,
    ids: &[i64],
    chunk: usize,
    version: i64,
    mode: &str,
    kid: &str,
    now: i64,
) -> Result<usize, StoreError> {
    let mut tx = db.pool.begin().await?;
    let mut marked = 0usize;
    for chunk in ids.chunks(chunk.max(1)) {
        let placeholders = (0..chunk.len())
            .map(|i| format!("${}", i + 3))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "UPDATE outbox SET delivered_at = $1, version = $2 WHERE delivered_at IS NULL AND id IN ({placeholders})"
        );
        let mut q = sqlx::query(&sql).bind(now).bind(version);
        for id in chunk {
            q = q.bind(*id);
        }
        let done = q.execute(&mut *tx).await?;
        marked = marked.saturating_add(usize::try_from(done.rows_affected()).unwrap_or(0));
    }
    sqlx::query(
        "UPDATE revocation_push SET delivered_version = CASE WHEN $1 > delivered_version THEN $2 ELSE delivered_version END, \
         delivered_at = $3, last_error = NULL, failures = 0, mode = $4, signed_kid = $5 WHERE id = 1",
    )
    .bind(version)
    .bind(version)
    .bind(now)
    .bind(mode)
    .bind(kid)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(marked)
}

/// Records a failed attempt (`message` must name no secret).
pub async fn record_failure(db: &Db, message: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE revocation_push SET last_error = $1, last_attempt_at = $2, failures = failures + 1 WHERE id = 1",
    )
    .bind(message)
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// When the last document was delivered and the kid that signed it.
pub async fn last_delivery(db: &Db) -> Result<(Option<i64>, Option<String>), StoreError> {
    let row = sqlx::query("SELECT delivered_at, signed_kid FROM revocation_push WHERE id = 1")
        .fetch_one(&db.pool)
        .await?;
    Ok((row.try_get("delivered_at")?, row.try_get("signed_kid")?))
}

/// Records the server pusher's mode (for `revocations status`).
pub async fn set_mode(db: &Db, mode: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE revocation_push SET mode = $1 WHERE id = 1")
        .bind(mode)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// The pusher's lock: on PostgreSQL a session advisory lock held by a
/// connection that is closed (releasing it) when this is dropped, also when
/// the cycle holding it is cancelled; on SQLite nothing (one process).
pub struct PusherLock {
    _conn: Option<sqlx::pool::PoolConnection<sqlx::Any>>,
}

/// Takes the pusher's lock if no other pusher holds it (`None`: busy).
pub async fn try_pusher_lock(db: &Db) -> Result<Option<PusherLock>, StoreError> {
    match db.backend {
        Backend::Postgres => {
            let mut conn = db.pool.acquire().await?;
            conn.close_on_drop();
            // Keyed by ("grvp", schema): advisory locks are database-wide,
            // and deployments (or tests) in other schemas must not block us.
            let got: String = sqlx::query(
                "SELECT pg_try_advisory_lock(1735554672, hashtext(current_schema()))::TEXT AS got",
            )
            .fetch_one(&mut *conn)
            .await?
            .try_get("got")?;
            Ok((got == "true").then_some(PusherLock { _conn: Some(conn) }))
        }
        Backend::Sqlite => Ok(Some(PusherLock { _conn: None })),
    }
}

/// The pusher's state as stored (see `revocation_push::PushStatus`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusRow {
    /// `mode`.
    pub mode: Option<String>,
    /// `signed_kid`.
    pub signed_kid: Option<String>,
    /// `version`.
    pub latest_version: i64,
    /// `delivered_version`.
    pub delivered_version: i64,
    /// `delivered_at`.
    pub delivered_at: Option<i64>,
    /// Undelivered outbox rows.
    pub pending: i64,
    /// The oldest undelivered row's `created_at`.
    pub oldest_pending_at: Option<i64>,
    /// `last_attempt_at`.
    pub last_attempt_at: Option<i64>,
    /// `last_error`.
    pub last_error: Option<String>,
    /// `failures`.
    pub failures: i64,
    /// Revocations dropped after `now` or revoked after `live_since`.
    pub live_revocations: i64,
}

/// Reads the pusher's state.
pub async fn status(db: &Db, now: i64, live_since: i64) -> Result<StatusRow, StoreError> {
    let p = sqlx::query(
        "SELECT version, delivered_version, delivered_at, last_attempt_at, last_error, failures, \
         mode, signed_kid FROM revocation_push WHERE id = 1",
    )
    .fetch_one(&db.pool)
    .await?;
    let o = sqlx::query(
        "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox WHERE delivered_at IS NULL",
    )
    .fetch_one(&db.pool)
    .await?;
    let live = sqlx::query(
        "SELECT COUNT(*) AS n FROM revocations WHERE drop_after > $1 OR revoked_at > $2",
    )
    .bind(now)
    .bind(live_since)
    .fetch_one(&db.pool)
    .await?;
    Ok(StatusRow {
        mode: p.try_get("mode")?,
        signed_kid: p.try_get("signed_kid")?,
        latest_version: p.try_get("version")?,
        delivered_version: p.try_get("delivered_version")?,
        delivered_at: p.try_get("delivered_at")?,
        pending: o.try_get("n")?,
        oldest_pending_at: o.try_get("oldest")?,
        last_attempt_at: p.try_get("last_attempt_at")?,
        last_error: p.try_get("last_error")?,
        failures: p.try_get("failures")?,
        live_revocations: live.try_get("n")?,
    })
}
