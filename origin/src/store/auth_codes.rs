//! The `auth_codes` table: single-use authorization codes (stored only as
//! their hash), their lookup with what decides whether their grant still
//! stands, and the one transaction that consumes a code and stores what it
//! was exchanged for.

use crate::store::audit::{self, AuditEvent};
use crate::store::db::{Backend, Db, StoreError};
use crate::store::refresh_tokens::{insert_row, RefreshRow};
use crate::store::sessions::{insert_grant_session, GrantSession};
use sqlx::Row as _;

/// A new `auth_codes` row (unused).
#[derive(Clone, Debug)]
pub struct NewCode<'a> {
    /// `code_hash`.
    pub code_hash: &'a str,
    /// `client_id`.
    pub client_id: &'a str,
    /// `user_id`.
    pub user_id: &'a str,
    /// `redirect_uri`.
    pub redirect_uri: &'a str,
    /// `scope` (space-separated).
    pub scope: &'a str,
    /// `audience`.
    pub audience: &'a str,
    /// `code_challenge`.
    pub code_challenge: &'a str,
    /// `dpop_jkt`.
    pub dpop_jkt: Option<&'a str>,
    /// `sid`: the grant (and refresh family) this code starts.
    pub sid: &'a str,
    /// The browser session the code was approved in (`session_sid`,
    /// `auth_time`, `amr`).
    pub session: Option<CodeSession<'a>>,
    /// `nonce` from the authorization request.
    pub nonce: Option<&'a str>,
    /// `created_at`.
    pub created_at: i64,
    /// `expires_at`.
    pub expires_at: i64,
}

/// The session columns of a code.
#[derive(Clone, Copy, Debug)]
pub struct CodeSession<'a> {
    /// `session_sid`: the browser session's public id.
    pub sid: &'a str,
    /// `auth_time`.
    pub auth_time: i64,
    /// `amr` (space-separated).
    pub amr: &'a str,
}

/// Inserts a code. A code approved in a browser session is inserted only
/// while that session's row exists (`false` otherwise): an approval that
/// read the session just before a logout deleted it cannot leave a code,
/// and so a grant, that the logout did not see and revoke. Under
/// PostgreSQL the session row is locked `FOR SHARE` for the statement, so
/// a concurrent logout's `DELETE` either waits for this code to commit
/// (and then finds it) or commits first (and no code is inserted); SQLite
/// runs one writer at a time.
pub async fn insert(db: &Db, c: &NewCode<'_>) -> Result<bool, StoreError> {
    let lock = match db.backend {
        Backend::Postgres => " FOR SHARE",
        Backend::Sqlite => "",
    };
    let columns = "INSERT INTO auth_codes (code_hash, client_id, user_id, redirect_uri, scope, \
         audience, code_challenge, dpop_jkt, sid, created_at, expires_at, used_at, session_sid, \
         auth_time, amr, nonce) ";
    let values = "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, $12, $13, $14, $15";
    let sql = if c.session.is_some() {
        format!(
            "{columns}SELECT {values} WHERE EXISTS \
             (SELECT 1 FROM sessions WHERE sid = $12 AND user_id = $3{lock})"
        )
    } else {
        format!("{columns}VALUES ({values})")
    };
    let inserted = sqlx::query(&sql)
        .bind(c.code_hash)
        .bind(c.client_id)
        .bind(c.user_id)
        .bind(c.redirect_uri)
        .bind(c.scope)
        .bind(c.audience)
        .bind(c.code_challenge)
        .bind(c.dpop_jkt.map(str::to_owned))
        .bind(c.sid)
        .bind(c.created_at)
        .bind(c.expires_at)
        .bind(c.session.map(|x| x.sid.to_owned()))
        .bind(c.session.map(|x| x.auth_time))
        .bind(c.session.map(|x| x.amr.to_owned()))
        .bind(c.nonce.map(str::to_owned))
        .execute(&db.pool)
        .await?
        .rows_affected();
    Ok(inserted > 0)
}

/// A stored code as presented, with whether its grant still stands.
#[derive(Clone, Debug)]
pub struct PresentedCode {
    /// `client_id`.
    pub client_id: String,
    /// `user_id`.
    pub user_id: String,
    /// `redirect_uri`.
    pub redirect_uri: String,
    /// `scope` (space-separated).
    pub scope: String,
    /// `audience`.
    pub audience: String,
    /// `code_challenge`.
    pub code_challenge: String,
    /// `dpop_jkt`.
    pub dpop_jkt: Option<String>,
    /// `sid`.
    pub sid: String,
    /// `session_sid` (codes from before sessions had one: `None`).
    pub session_sid: Option<String>,
    /// `auth_time`.
    pub auth_time: Option<i64>,
    /// `amr`.
    pub amr: Option<String>,
    /// `nonce`.
    pub nonce: Option<String>,
    /// `expires_at`.
    pub expires_at: i64,
    /// Whether the code's user still exists.
    pub user_exists: bool,
    /// Whether a `sid`, `sub` or `client_id` revocation was recorded at or
    /// after the code was issued (its grant was ended).
    pub ended: bool,
}

/// The code whose hash is `code_hash`.
pub async fn lookup(db: &Db, code_hash: &str) -> Result<Option<PresentedCode>, StoreError> {
    let row = sqlx::query(
        "SELECT c.client_id, c.user_id, c.redirect_uri, c.scope, c.audience, c.code_challenge, \
         c.dpop_jkt, c.sid, c.session_sid, c.auth_time, c.amr, c.nonce, c.expires_at, \
         (SELECT COUNT(*) FROM users u WHERE u.user_id = c.user_id) AS user_exists, \
         (SELECT COUNT(*) FROM revocations v WHERE v.revoked_at >= c.created_at AND \
          ((v.kind = 'sid' AND v.value = c.sid) OR (v.kind = 'sub' AND v.value = c.user_id) \
           OR (v.kind = 'client_id' AND v.value = c.client_id))) AS ended \
         FROM auth_codes c WHERE c.code_hash = $1",
    )
    .bind(code_hash)
    .fetch_optional(&db.pool)
    .await?;
    row.map(|r| {
        Ok(PresentedCode {
            client_id: r.try_get("client_id")?,
            user_id: r.try_get("user_id")?,
            redirect_uri: r.try_get("redirect_uri")?,
            scope: r.try_get("scope")?,
            audience: r.try_get("audience")?,
            code_challenge: r.try_get("code_challenge")?,
            dpop_jkt: r.try_get("dpop_jkt")?,
            sid: r.try_get("sid")?,
            session_sid: r.try_get("session_sid")?,
            auth_time: r.try_get("auth_time")?,
            amr: r.try_get("amr")?,
            nonce: r.try_get("nonce")?,
            expires_at: r.try_get("expires_at")?,
            user_exists: r.try_get::<i64, _>("user_exists")? != 0,
            ended: r.try_get::<i64, _>("ended")? > 0,
        })
    })
    .transpose()
}

/// What [`redeem`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Redemption {
    /// The code is consumed; the refresh row and the audit row are stored.
    Redeemed,
    /// Another redemption consumed the code first (a replay); nothing stored.
    AlreadyUsed,
    /// The code had expired; nothing stored (the code stays unused).
    Expired,
}

/// Consumes the code (exactly one redemption wins, by a conditional
/// UPDATE) and, in the same transaction, inserts `refresh` and `session`
/// (the grant's browser session) and records `audit`: a replay waits on the
/// code's row and then sees the refresh token that its revocation must cover.
#[allow(clippy::too_many_arguments)]
pub async fn redeem(
    db: &Db,
    code_hash: &str,
    expires_at: i64,
    now: i64,
    refresh: Option<&RefreshRow>,
    session: Option<&GrantSession>,
    audit: &AuditEvent,
) -> Result<Redemption, StoreError> {
    let mut tx = db.pool.begin().await?;
    let consumed =
        sqlx::query("UPDATE auth_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL")
            .bind(now)
            .bind(code_hash)
            .execute(&mut *tx)
            .await?;
    if consumed.rows_affected() == 0 {
        tx.rollback().await?;
        return Ok(Redemption::AlreadyUsed);
    }
    if now >= expires_at {
        tx.rollback().await?;
        return Ok(Redemption::Expired);
    }
    if let Some(row) = refresh {
        insert_row(&mut *tx, row).await?;
    }
    if let Some(g) = session {
        insert_grant_session(&mut *tx, g).await?;
    }
    audit::record(&mut *tx, audit).await?;
    tx.commit().await?;
    Ok(Redemption::Redeemed)
}
