//! The `refresh_tokens` table: rows, their insert, and the rotation that the
//! group commit applies (one conditional UPDATE decides who wins).

use crate::store::audit::{self, AuditEvent};
use crate::store::db::{max_rows_for, power_of_two_chunks, MultiRow, StoreError};
use sqlx::Row as _;

/// A refresh token row as stored (the token only as its hash).
#[derive(Clone, Debug)]
pub struct RefreshRow {
    /// Column `token_hash`.
    pub token_hash: String,
    /// Column `family_id`.
    pub family_id: String,
    /// Column `client_id`.
    pub client_id: String,
    /// Column `user_id`.
    pub user_id: String,
    /// Column `scope`.
    pub scope: String,
    /// Column `audience`.
    pub audience: String,
    /// Column `dpop_jkt`.
    pub jkt: Option<String>,
    /// Column `created_at`.
    pub created_at: i64,
    /// Column `expires_at`.
    pub expires_at: i64,
    /// Column `family_expires_at`.
    pub family_expires_at: i64,
}

#[cfg(test)]
impl RefreshRow {
    /// A row for tests: `token_hash` in `family`, created at `created_at`.
    pub fn for_test(token_hash: &str, family: &str, created_at: i64) -> Self {
        Self {
            token_hash: token_hash.into(),
            family_id: family.into(),
            client_id: "c".into(),
            user_id: "u".into(),
            scope: "read".into(),
            audience: "https://api.example".into(),
            jkt: None,
            created_at,
            expires_at: created_at + 3_600,
            family_expires_at: created_at + 86_400,
        }
    }
}

/// Inserts `row`.
pub async fn insert_row<'c, E>(exec: E, row: &RefreshRow) -> Result<(), StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, family_id, client_id, user_id, scope, audience, \
         dpop_jkt, created_at, expires_at, family_expires_at, rotated_at, revoked_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, NULL)",
    )
    .bind(&row.token_hash)
    .bind(&row.family_id)
    .bind(&row.client_id)
    .bind(&row.user_id)
    .bind(&row.scope)
    .bind(&row.audience)
    .bind(row.jkt.clone())
    .bind(row.created_at)
    .bind(row.expires_at)
    .bind(row.family_expires_at)
    .execute(exec)
    .await?;
    Ok(())
}

/// One rotation, written by [`crate::store::group_commit`] in the same transaction
/// as other requests' rotations: the presented token is marked rotated only
/// if it still is neither rotated nor revoked (the conditional UPDATE that
/// lets exactly one request win), and then the successor and the audit row
/// are inserted.
#[derive(Clone, Debug)]
pub struct Rotation {
    /// The presented token's hash.
    pub presented_hash: String,
    /// The successor.
    pub successor: RefreshRow,
    /// The audit row.
    pub audit: AuditEvent,
}

impl Rotation {
    /// Applies the rotation on `conn` (inside a transaction); `false` when
    /// the presented token was already rotated (by another request) or
    /// revoked (nothing written). The group commit's fallback re-applies a
    /// batch's rotations one by one, so finding this rotation's own
    /// successor already stored counts as won.
    pub async fn apply(&self, conn: &mut sqlx::AnyConnection) -> Result<bool, StoreError> {
        let won = sqlx::query(
            "UPDATE refresh_tokens SET rotated_at = $1 WHERE token_hash = $2 \
             AND rotated_at IS NULL AND revoked_at IS NULL",
        )
        .bind(self.successor.created_at)
        .bind(&self.presented_hash)
        .execute(&mut *conn)
        .await?;
        if won.rows_affected() == 0 {
            // Already rotated — by this very rotation when a batch's COMMIT
            // went through but its acknowledgement was lost and the group
            // commit re-applies it alone: the successor (a fresh random
            // hash) then exists, and this is a win, not a reuse.
            let own = sqlx::query("SELECT 1 AS one FROM refresh_tokens WHERE token_hash = $1")
                .bind(&self.successor.token_hash)
                .fetch_optional(&mut *conn)
                .await?;
            return Ok(own.is_some());
        }
        insert_row(&mut *conn, &self.successor).await?;
        audit::record(&mut *conn, &self.audit).await?;
        Ok(true)
    }
}

/// Applies `rotations` together (inside the group commit's transaction), in
/// three statements per chunk instead of three per rotation: one
/// conditional UPDATE marks every presented token still neither rotated nor
/// revoked (`RETURNING` tells which), then the winners' successors and audit
/// rows go in multi-row INSERTs. As with one rotation after another, the
/// first rotation presenting a token wins and any later one in the batch
/// presenting the same token loses. One `bool` per rotation, in order.
pub async fn apply_rotations(
    conn: &mut sqlx::AnyConnection,
    rotations: &[&Rotation],
) -> Result<Vec<bool>, StoreError> {
    static SUCCESSORS: MultiRow = MultiRow::new(
        "INSERT INTO refresh_tokens (token_hash, family_id, client_id, user_id, scope, audience, \
         dpop_jkt, created_at, expires_at, family_expires_at) VALUES",
        10,
        "",
    );
    let mut won = Vec::with_capacity(rotations.len());
    // Three parameters per rotation in the UPDATE.
    for chunk in power_of_two_chunks(rotations, max_rows_for(3)) {
        // rotated_at = the presenting request's time (the first one's, for a
        // token presented twice: a CASE takes its first matching WHEN).
        let n = chunk.len();
        let whens: Vec<String> = (0..n)
            .map(|i| format!("WHEN ${} THEN ${}", 2 * i + 1, 2 * i + 2))
            .collect();
        let ins: Vec<String> = (0..n).map(|i| format!("${}", 2 * n + i + 1)).collect();
        let sql = format!(
            "UPDATE refresh_tokens SET rotated_at = CASE token_hash {} END \
             WHERE token_hash IN ({}) AND rotated_at IS NULL AND revoked_at IS NULL \
             RETURNING token_hash",
            whens.join(" "),
            ins.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for r in chunk {
            query = query
                .bind(r.presented_hash.as_str())
                .bind(r.successor.created_at);
        }
        for r in chunk {
            query = query.bind(r.presented_hash.as_str());
        }
        let mut marked = std::collections::HashSet::with_capacity(n);
        for row in query.fetch_all(&mut *conn).await? {
            marked.insert(row.try_get::<String, _>("token_hash")?);
        }
        let mut winners: Vec<&Rotation> = Vec::with_capacity(n);
        for r in chunk {
            let w = marked.remove(&r.presented_hash);
            won.push(w);
            if w {
                winners.push(r);
            }
        }
        for (part, sql) in SUCCESSORS.chunks(&winners) {
            let mut insert = sqlx::query(&sql);
            for r in part {
                let row = &r.successor;
                insert = insert
                    .bind(row.token_hash.as_str())
                    .bind(row.family_id.as_str())
                    .bind(row.client_id.as_str())
                    .bind(row.user_id.as_str())
                    .bind(row.scope.as_str())
                    .bind(row.audience.as_str())
                    .bind(row.jkt.clone())
                    .bind(row.created_at)
                    .bind(row.expires_at)
                    .bind(row.family_expires_at);
            }
            insert.execute(&mut *conn).await?;
        }
        let audits: Vec<&AuditEvent> = winners.iter().map(|r| &r.audit).collect();
        audit::record_many(&mut *conn, &audits).await?;
    }
    Ok(won)
}

/// A stored refresh token as presented, with whether its grant still stands.
#[derive(Clone, Debug)]
pub struct PresentedRefresh {
    /// `family_id`.
    pub family_id: String,
    /// `client_id`.
    pub client_id: String,
    /// `user_id`.
    pub user_id: String,
    /// `scope` (space-separated).
    pub scope: String,
    /// `audience`.
    pub audience: String,
    /// `dpop_jkt`.
    pub dpop_jkt: Option<String>,
    /// `expires_at`.
    pub expires_at: i64,
    /// `family_expires_at`.
    pub family_expires_at: i64,
    /// `rotated_at`.
    pub rotated_at: Option<i64>,
    /// `revoked_at`.
    pub revoked_at: Option<i64>,
    /// Whether its user still exists.
    pub user_exists: bool,
    /// Whether a `sid`, `sub` or `client_id` revocation was recorded at or
    /// after it was issued (the grant was ended, even if a token of it
    /// escaped the UPDATE).
    pub ended: bool,
}

/// The refresh token whose hash is `token_hash`.
pub async fn lookup(
    db: &crate::store::db::Db,
    token_hash: &str,
) -> Result<Option<PresentedRefresh>, StoreError> {
    let row = sqlx::query(
        "SELECT r.family_id, r.client_id, r.user_id, r.scope, r.audience, r.dpop_jkt, \
         r.expires_at, r.family_expires_at, r.rotated_at, r.revoked_at, \
         (SELECT COUNT(*) FROM users u WHERE u.user_id = r.user_id) AS user_exists, \
         (SELECT COUNT(*) FROM revocations v WHERE v.revoked_at >= r.created_at AND \
          ((v.kind = 'sid' AND v.value = r.family_id) OR (v.kind = 'sub' AND v.value = r.user_id) \
           OR (v.kind = 'client_id' AND v.value = r.client_id))) AS ended \
         FROM refresh_tokens r WHERE r.token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(&db.pool)
    .await?;
    row.map(|r| {
        Ok(PresentedRefresh {
            family_id: r.try_get("family_id")?,
            client_id: r.try_get("client_id")?,
            user_id: r.try_get("user_id")?,
            scope: r.try_get("scope")?,
            audience: r.try_get("audience")?,
            dpop_jkt: r.try_get("dpop_jkt")?,
            expires_at: r.try_get("expires_at")?,
            family_expires_at: r.try_get("family_expires_at")?,
            rotated_at: r.try_get("rotated_at")?,
            revoked_at: r.try_get("revoked_at")?,
            user_exists: r.try_get::<i64, _>("user_exists")? != 0,
            ended: r.try_get::<i64, _>("ended")? > 0,
        })
    })
    .transpose()
}

/// The family and client of the refresh token whose hash is `token_hash`.
pub async fn family_of(
    db: &crate::store::db::Db,
    token_hash: &str,
) -> Result<Option<(String, String)>, StoreError> {
    let row = sqlx::query("SELECT family_id, client_id FROM refresh_tokens WHERE token_hash = $1")
        .bind(token_hash)
        .fetch_optional(&db.pool)
        .await?;
    row.map(|r| Ok((r.try_get("family_id")?, r.try_get("client_id")?)))
        .transpose()
}
