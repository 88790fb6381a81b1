//! Revocations: stored with an outbox row in the same transaction (the
//! pusher that carries them to the edge reads the outbox), and read back as
//! `common`'s [`RevocationList`] so the origin's verdict is the edge's.

use crate::store::db::{Db, StoreError};
use gatehouse_common::access_token::AccessToken;
use gatehouse_common::revocation::{
    revocable_names, RevocationDocument, RevocationEntry, RevocationKind, RevocationList,
};
use gatehouse_common::UnixTime;
use serde::Serialize;
use sqlx::Row as _;

/// A stored revocation, for operators.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Revocation {
    /// `jti`, `sid`, `sub` or `client_id`.
    pub kind: String,
    /// The revoked identifier.
    pub value: String,
    /// When it was revoked (tokens with `iat <= revoked_at` are refused for sid/sub/client_id).
    pub revoked_at: i64,
    /// When the entry may be dropped (every token it covers has expired).
    pub drop_after: i64,
    /// Why (`rfc7009`, `admin`, `cli`, …).
    pub reason: String,
}

/// The stored reason of a revocation made through the admin API.
pub const REASON_ADMIN_API: &str = "admin api";
/// The stored reason of a revocation made with the CLI (`revoke`).
pub const REASON_CLI: &str = "cli";

/// The reason stored for a revocation a client caused (RFC 7009, a replayed
/// code, a reused refresh token): `what` and the client. Over the document's
/// caps the pusher shares each priority out per reason
/// (`revocation_push::within_cap`), so a client flooding its own
/// revocations only ever displaces its own entries.
#[must_use]
pub fn by_client(what: &str, client_id: &str) -> String {
    format!("{what} by client {client_id}")
}

/// How long a sid/sub/client_id revocation must stay: the longest lifetime
/// of any token issued so far, plus the leeway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoverSpan {
    /// The longest access-token TTL ever configured (persisted, never lowered).
    pub max_token_ttl: i64,
    /// The configured leeway.
    pub leeway_secs: i64,
}

impl CoverSpan {
    /// `max_token_ttl + leeway_secs`.
    #[must_use]
    pub fn secs(self) -> i64 {
        self.max_token_ttl.saturating_add(self.leeway_secs)
    }
}

/// Raises the persisted longest token lifetime to `ttl` (before tokens with
/// that lifetime are issued); returns the persisted value.
pub async fn record_token_ttl(db: &Db, ttl: i64) -> Result<i64, StoreError> {
    sqlx::query(
        "UPDATE revocation_push SET max_token_ttl = $1 WHERE id = 1 AND max_token_ttl < $1",
    )
    .bind(ttl)
    .execute(&db.pool)
    .await?;
    let row = sqlx::query("SELECT max_token_ttl FROM revocation_push WHERE id = 1")
        .fetch_one(&db.pool)
        .await?;
    Ok(row.try_get("max_token_ttl")?)
}

/// The span for `config`: the larger of its TTL and the persisted maximum,
/// so lowering `GATEHOUSE_ACCESS_TOKEN_TTL` never shortens coverage of
/// tokens already issued under a longer one.
pub async fn cover_span(db: &Db, config: &crate::config::Config) -> Result<CoverSpan, StoreError> {
    cover_span_for(db, config.access_token_ttl, config.leeway_secs).await
}

/// [`cover_span`] from the two settings it reads: the configured access
/// token TTL and the validators' clock leeway.
pub async fn cover_span_for(
    db: &Db,
    access_token_ttl: i64,
    leeway_secs: i64,
) -> Result<CoverSpan, StoreError> {
    let row = sqlx::query("SELECT max_token_ttl FROM revocation_push WHERE id = 1")
        .fetch_one(&db.pool)
        .await?;
    let persisted: i64 = row.try_get("max_token_ttl")?;
    Ok(CoverSpan {
        max_token_ttl: persisted.max(access_token_ttl),
        leeway_secs,
    })
}

/// Records a revocation and its outbox row atomically. Revoking again
/// extends the entry (latest `revoked_at`, latest `drop_after`).
pub async fn revoke(
    db: &Db,
    kind: RevocationKind,
    value: &str,
    drop_after: i64,
    reason: &str,
    now: UnixTime,
) -> Result<Revocation, StoreError> {
    let mut tx = db.pool.begin().await?;
    let rev = revoke_in(&mut tx, kind, value, drop_after, reason, now).await?;
    tx.commit().await?;
    db.metrics.revocation(kind.name());
    db.outbox_notify.notify_one();
    Ok(rev)
}

/// [`revoke`] inside the caller's transaction (with the change it belongs
/// to); the caller commits and then wakes the pusher (`db.outbox_notify`).
pub async fn revoke_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    kind: RevocationKind,
    value: &str,
    drop_after: i64,
    reason: &str,
    now: UnixTime,
) -> Result<Revocation, StoreError> {
    // An entry only ever grows: a second revocation of the same identifier
    // computed with an earlier clock (another replica, the CLI elsewhere)
    // must not un-revoke the tokens issued between the two.
    let row = sqlx::query(
        "INSERT INTO revocations (kind, value, revoked_at, drop_after, reason) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (kind, value) DO UPDATE SET \
         revoked_at = CASE WHEN excluded.revoked_at > revocations.revoked_at THEN excluded.revoked_at ELSE revocations.revoked_at END, \
         drop_after = CASE WHEN excluded.drop_after > revocations.drop_after THEN excluded.drop_after ELSE revocations.drop_after END, \
         reason = excluded.reason \
         RETURNING revoked_at, drop_after",
    )
    .bind(kind.name())
    .bind(value)
    .bind(now.0)
    .bind(drop_after)
    .bind(reason)
    .fetch_one(&mut **tx)
    .await?;
    let revoked_at: i64 = row.try_get("revoked_at")?;
    let drop_after: i64 = row.try_get("drop_after")?;
    let payload = serde_json::json!({"kind": kind.name(), "value": value, "revoked_at": revoked_at, "drop_after": drop_after});
    sqlx::query(
        "INSERT INTO outbox (topic, payload, created_at, delivered_at) VALUES ($1, $2, $3, NULL)",
    )
    .bind("revocation")
    .bind(payload.to_string())
    .bind(now.0)
    .execute(&mut **tx)
    .await?;
    Ok(Revocation {
        kind: kind.name().to_owned(),
        value: value.to_owned(),
        revoked_at,
        drop_after,
        reason: reason.to_owned(),
    })
}

fn from_row(r: &sqlx::any::AnyRow) -> Result<Revocation, StoreError> {
    Ok(Revocation {
        kind: r.try_get("kind")?,
        value: r.try_get("value")?,
        revoked_at: r.try_get("revoked_at")?,
        drop_after: r.try_get("drop_after")?,
        reason: r.try_get("reason")?,
    })
}

/// Revocations still in force at `now`.
pub async fn list(db: &Db, now: UnixTime) -> Result<Vec<Revocation>, StoreError> {
    let rows = sqlx::query(
        "SELECT kind, value, revoked_at, drop_after, reason FROM revocations WHERE drop_after > $1 ORDER BY revoked_at, id",
    )
    .bind(now.0)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Whether `token` is revoked at `now`, decided by `common`'s [`RevocationList`]
/// over the entries that could name it ([`revocable_names`]: its own ids and
/// those of every actor in its `act` chain).
pub async fn is_revoked(db: &Db, token: &AccessToken, now: UnixTime) -> Result<bool, StoreError> {
    let names = revocable_names(token);
    let conditions = (0..names.len())
        .map(|i| format!("(kind = ${} AND value = ${})", 2 * i + 2, 2 * i + 3))
        .collect::<Vec<_>>()
        .join(" OR ");
    let sql = format!(
        "SELECT kind, value, revoked_at, drop_after, reason FROM revocations WHERE drop_after > $1 AND ({conditions})"
    );
    let mut q = sqlx::query(&sql).bind(now.0);
    for (kind, value) in &names {
        q = q.bind(kind.name()).bind(*value);
    }
    let rows = q.fetch_all(&db.pool).await?;
    let mut entries = Vec::with_capacity(rows.len());
    for r in &rows {
        let rev = from_row(r)?;
        let kind =
            RevocationKind::from_name(&rev.kind).ok_or(StoreError::Corrupt { column: "kind" })?;
        entries.push(RevocationEntry {
            kind,
            value: rev.value,
            revoked_at: rev.revoked_at,
            until: rev.drop_after,
        });
    }
    let doc = RevocationDocument {
        iss: String::new(),
        iat: now.0,
        version: 0,
        entries,
    };
    Ok(RevocationList::from_document(doc, now)
        .check(token, now)
        .is_some())
}

/// Outbox rows not yet delivered (for the pusher and for tests).
pub async fn pending_outbox(db: &Db) -> Result<Vec<(i64, String)>, StoreError> {
    let rows = sqlx::query("SELECT id, payload FROM outbox WHERE delivered_at IS NULL ORDER BY id")
        .fetch_all(&db.pool)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("payload")?)))
        .collect()
}
