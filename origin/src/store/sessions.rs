//! The `sessions` and `consents` tables: a signed-in user's browser session
//! (keyed by the hash of its cookie; named in tokens and by logout by a
//! separate public `sid`) and the consents they gave.

use crate::store::db::{flag, Db, StoreError};
use sqlx::Row as _;

/// A live browser session (the row of `sessions`, without its key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The public session id (OpenID Connect `sid`): random, unrelated to
    /// the cookie.
    pub sid: String,
    /// The signed-in user.
    pub user_id: String,
    /// When the user last authenticated in this session (OIDC `auth_time`).
    pub auth_time: i64,
    /// How they authenticated (OIDC `amr` values, space-separated).
    pub amr: String,
}

/// The live session whose cookie hashes to `id_hash`.
pub async fn live(db: &Db, id_hash: &str, now: i64) -> Result<Option<Session>, StoreError> {
    let row = sqlx::query(
        "SELECT sid, user_id, auth_time, amr FROM sessions WHERE id_hash = $1 AND expires_at > $2",
    )
    .bind(id_hash)
    .bind(now)
    .fetch_optional(&db.pool)
    .await?;
    row.map(|r| {
        Ok(Session {
            sid: r.try_get("sid")?,
            user_id: r.try_get("user_id")?,
            auth_time: r.try_get("auth_time")?,
            amr: r.try_get("amr")?,
        })
    })
    .transpose()
}

/// A new session row.
#[derive(Clone, Copy, Debug)]
pub struct NewSession<'a> {
    /// The hash of the cookie value.
    pub id_hash: &'a str,
    /// The public session id.
    pub sid: &'a str,
    /// The user.
    pub user_id: &'a str,
    /// `amr`, space-separated.
    pub amr: &'a str,
    /// Login time (`created_at` and `auth_time`).
    pub now: i64,
    /// `expires_at`.
    pub expires_at: i64,
}

/// Starts a session at a login. When the browser already held a live
/// session of the same user (`previous`, a cookie hash), that session is
/// re-keyed instead: it keeps its public `sid` (so what was granted in it
/// stays findable by `sid`) and gains the new cookie, `auth_time` and
/// expiry; the old cookie stops working. Returns the session's `sid`.
pub async fn login(
    db: &Db,
    previous: Option<&str>,
    s: &NewSession<'_>,
) -> Result<String, StoreError> {
    if let Some(old) = previous {
        let row = sqlx::query(
            "UPDATE sessions SET id_hash = $1, auth_time = $2, amr = $3, expires_at = $4 \
             WHERE id_hash = $5 AND user_id = $6 AND expires_at > $2 RETURNING sid",
        )
        .bind(s.id_hash)
        .bind(s.now)
        .bind(s.amr)
        .bind(s.expires_at)
        .bind(old)
        .bind(s.user_id)
        .fetch_optional(&db.pool)
        .await?;
        if let Some(r) = row {
            return Ok(r.try_get("sid")?);
        }
    }
    sqlx::query(
        "INSERT INTO sessions (id_hash, sid, user_id, auth_time, amr, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $4, $6)",
    )
    .bind(s.id_hash)
    .bind(s.sid)
    .bind(s.user_id)
    .bind(s.now)
    .bind(s.amr)
    .bind(s.expires_at)
    .execute(&db.pool)
    .await?;
    Ok(s.sid.to_owned())
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

/// A row of `grant_sessions`: the browser session a grant (its refresh
/// family, and the `sid` of its access tokens) was approved in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantSession {
    /// The grant: the refresh family id, the access tokens' `sid`.
    pub family_id: String,
    /// The browser session's public `sid`.
    pub session_sid: String,
    /// The user.
    pub user_id: String,
    /// The client.
    pub client_id: String,
    /// When the user authenticated in that session before the code was issued.
    pub auth_time: i64,
    /// How (space-separated `amr` values).
    pub amr: String,
    /// When the grant started.
    pub created_at: i64,
    /// When the grant can no longer be used (pruned after).
    pub expires_at: i64,
    /// An offline grant (`offline_access`, OpenID Connect Core §11): it
    /// outlives its browser session's logout.
    pub offline: bool,
}

/// Inserts `g` (in the caller's transaction).
pub async fn insert_grant_session<'c, E>(exec: E, g: &GrantSession) -> Result<(), StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO grant_sessions (family_id, session_sid, user_id, client_id, auth_time, amr, \
         created_at, expires_at, offline) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&g.family_id)
    .bind(&g.session_sid)
    .bind(&g.user_id)
    .bind(&g.client_id)
    .bind(g.auth_time)
    .bind(&g.amr)
    .bind(g.created_at)
    .bind(g.expires_at)
    .bind(i64::from(g.offline))
    .execute(exec)
    .await?;
    Ok(())
}

/// The session grant `family_id` came from, if recorded.
pub async fn grant_session(db: &Db, family_id: &str) -> Result<Option<GrantSession>, StoreError> {
    let row = sqlx::query(
        "SELECT family_id, session_sid, user_id, client_id, auth_time, amr, created_at, \
         expires_at, offline FROM grant_sessions WHERE family_id = $1",
    )
    .bind(family_id)
    .fetch_optional(&db.pool)
    .await?;
    row.map(|r| {
        Ok(GrantSession {
            family_id: r.try_get("family_id")?,
            session_sid: r.try_get("session_sid")?,
            user_id: r.try_get("user_id")?,
            client_id: r.try_get("client_id")?,
            auth_time: r.try_get("auth_time")?,
            amr: r.try_get("amr")?,
            created_at: r.try_get("created_at")?,
            expires_at: r.try_get("expires_at")?,
            offline: flag(&r, "offline")?,
        })
    })
    .transpose()
}

/// Ends the browser session `sid` of `user_id` (deletes its row: its cookie
/// stops working at once). Returns whether there was one.
pub async fn delete_session(db: &Db, user_id: &str, sid: &str) -> Result<bool, StoreError> {
    Ok(
        sqlx::query("DELETE FROM sessions WHERE sid = $1 AND user_id = $2")
            .bind(sid)
            .bind(user_id)
            .execute(&db.pool)
            .await?
            .rows_affected()
            > 0,
    )
}

/// The online grants approved in the browser session `session_sid` of
/// `user_id` that may still be in use at `now`: the refresh families
/// (`grant_sessions`, not offline, not already revoked) and the codes not
/// yet redeemed (their `sid` names the family they would start). Offline
/// grants are not listed.
pub async fn online_grants_of_session(
    db: &Db,
    user_id: &str,
    session_sid: &str,
    now: i64,
) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query(
        "SELECT family_id AS grant_id FROM grant_sessions g \
         WHERE session_sid = $1 AND user_id = $2 AND offline = 0 AND expires_at > $3 \
         AND NOT EXISTS (SELECT 1 FROM refresh_tokens r \
         WHERE r.family_id = g.family_id AND r.revoked_at IS NOT NULL) \
         UNION SELECT sid AS grant_id FROM auth_codes \
         WHERE session_sid = $1 AND user_id = $2 AND used_at IS NULL AND expires_at > $3",
    )
    .bind(session_sid)
    .bind(user_id)
    .bind(now)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| Ok(r.try_get::<String, _>("grant_id")?))
        .collect()
}

/// A live browser session as an operator sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRow {
    /// The public session id.
    pub sid: String,
    /// When it started.
    pub created_at: i64,
    /// When the user last authenticated in it.
    pub auth_time: i64,
    /// When it ends.
    pub expires_at: i64,
}

/// `user_id`'s live browser sessions at `now`, oldest first.
pub async fn sessions_of_user(
    db: &Db,
    user_id: &str,
    now: i64,
) -> Result<Vec<SessionRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT sid, created_at, auth_time, expires_at FROM sessions \
         WHERE user_id = $1 AND expires_at > $2 ORDER BY created_at, sid",
    )
    .bind(user_id)
    .bind(now)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(SessionRow {
                sid: r.try_get("sid")?,
                created_at: r.try_get("created_at")?,
                auth_time: r.try_get("auth_time")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .collect()
}

/// A live grant (a refresh family with a usable token) as an operator sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantRow {
    /// The grant id: the refresh family, the access tokens' `sid`.
    pub grant_id: String,
    /// The browser session it was approved in.
    pub session_sid: String,
    /// The client.
    pub client_id: String,
    /// When it started.
    pub created_at: i64,
    /// When its current refresh token was issued (the latest rotation, or
    /// the code's redemption).
    pub last_used: i64,
    /// Whether it is offline.
    pub offline: bool,
    /// When its current refresh token expires unless used (the idle limit,
    /// within the family's absolute lifetime).
    pub expires_at: i64,
    /// The family's absolute end.
    pub family_expires_at: i64,
}

/// `user_id`'s grants whose current refresh token is usable at `now`
/// (neither rotated nor revoked nor expired), oldest first.
pub async fn grants_of_user(db: &Db, user_id: &str, now: i64) -> Result<Vec<GrantRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT g.family_id, g.session_sid, g.client_id, g.created_at, g.offline, \
         MAX(r.created_at) AS last_used, MAX(r.expires_at) AS expires_at, \
         MAX(r.family_expires_at) AS family_expires_at \
         FROM grant_sessions g JOIN refresh_tokens r ON r.family_id = g.family_id \
         WHERE g.user_id = $1 AND r.user_id = $1 AND r.rotated_at IS NULL \
         AND r.revoked_at IS NULL AND r.expires_at > $2 AND r.family_expires_at > $2 \
         GROUP BY g.family_id, g.session_sid, g.client_id, g.created_at, g.offline \
         ORDER BY g.created_at, g.family_id",
    )
    .bind(user_id)
    .bind(now)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(GrantRow {
                grant_id: r.try_get("family_id")?,
                session_sid: r.try_get("session_sid")?,
                client_id: r.try_get("client_id")?,
                created_at: r.try_get("created_at")?,
                last_used: r.try_get("last_used")?,
                offline: flag(r, "offline")?,
                expires_at: r.try_get("expires_at")?,
                family_expires_at: r.try_get("family_expires_at")?,
            })
        })
        .collect()
}

/// Whether the browser session `sid` is live (not ended by logout or
/// revocation, not expired at `now`).
pub async fn is_live(db: &Db, sid: &str, now: i64) -> Result<bool, StoreError> {
    Ok(
        sqlx::query("SELECT sid FROM sessions WHERE sid = $1 AND expires_at > $2")
            .bind(sid)
            .bind(now)
            .fetch_optional(&db.pool)
            .await?
            .is_some(),
    )
}

/// Whether `session_sid` names a browser session of `user_id`: a live
/// session row, or grants approved in one.
pub async fn is_session_of(db: &Db, user_id: &str, session_sid: &str) -> Result<bool, StoreError> {
    Ok(sqlx::query(
        "SELECT sid FROM sessions WHERE sid = $1 AND user_id = $2 \
         UNION SELECT session_sid AS sid FROM grant_sessions WHERE session_sid = $1 AND user_id = $2",
    )
    .bind(session_sid)
    .bind(user_id)
    .fetch_optional(&db.pool)
    .await?
    .is_some())
}
