//! Grants across their tables: ending the grants of a family, a user or a
//! client (`sessions`, `auth_codes`, `refresh_tokens`) together with the
//! revocation entry that covers their access tokens, and pruning what can
//! no longer be used.

use crate::store::db::{Db, StoreError};
use crate::store::revocation;
use gatehouse_common::revocation::RevocationKind;
use gatehouse_common::UnixTime;
use sqlx::Row as _;

/// Whose grants to end (see [`end_grants`]).
#[derive(Clone, Copy, Debug)]
pub enum GrantsOf<'a> {
    /// One grant: the refresh family and the code it came from (`sid`).
    Family(&'a str),
    /// Every grant of a user (`sub`).
    User(&'a str),
    /// Every grant to a client (`client_id`).
    Client(&'a str),
}

impl<'a> GrantsOf<'a> {
    /// The grants a `sid`, `sub` or `client_id` revocation of `value` names
    /// (`None` for a `jti`, which names one access token).
    #[must_use]
    pub fn named_by(kind: RevocationKind, value: &'a str) -> Option<Self> {
        match kind {
            RevocationKind::Sid => Some(Self::Family(value)),
            RevocationKind::Sub => Some(Self::User(value)),
            RevocationKind::ClientId => Some(Self::Client(value)),
            RevocationKind::Jti => None,
        }
    }

    /// The revocation entry that covers these grants' access tokens.
    #[must_use]
    pub fn kind(self) -> RevocationKind {
        match self {
            Self::Family(_) => RevocationKind::Sid,
            Self::User(_) => RevocationKind::Sub,
            Self::Client(_) => RevocationKind::ClientId,
        }
    }

    /// The identifier.
    #[must_use]
    pub fn value(self) -> &'a str {
        match self {
            Self::Family(v) | Self::User(v) | Self::Client(v) => v,
        }
    }

    /// The column naming the owner, in `refresh_tokens` and in `auth_codes`.
    fn columns(self) -> (&'static str, &'static str) {
        match self {
            Self::Family(_) => ("family_id", "sid"),
            Self::User(_) => ("user_id", "user_id"),
            Self::Client(_) => ("client_id", "client_id"),
        }
    }
}

/// Ends grants inside the caller's transaction: a user's browser sessions
/// are ended, their outstanding codes are marked used (a later redemption
/// is refused as a replay) and every refresh token of theirs is revoked.
/// Returns the latest time a token was issued from them, at least `now`:
/// the `revoked_at` whose revocation entry covers every access token they
/// gave.
///
/// Codes come first: a redemption in flight holds its code's row until it
/// commits together with its refresh token (see
/// [`crate::store::auth_codes::redeem`]), so once
/// the code UPDATE has waited for it, the passes below see that token.
pub async fn end_grants(
    conn: &mut sqlx::AnyConnection,
    of: GrantsOf<'_>,
    now: UnixTime,
) -> Result<UnixTime, StoreError> {
    let (refresh_col, code_col) = of.columns();
    let value = of.value();
    // A user's browser sessions would hand out new codes without a
    // password: ending the user's grants logs them out (an `/authorize`
    // that read a session just before inserts a code that the revocation
    // entry refuses at redemption).
    if let GrantsOf::User(user_id) = of {
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query(&format!(
        "UPDATE auth_codes SET used_at = $1 WHERE {code_col} = $2 AND used_at IS NULL"
    ))
    .bind(now.0)
    .bind(value)
    .execute(&mut *conn)
    .await?;
    // Until a pass finds nothing: under PostgreSQL's READ COMMITTED, a
    // rotation that commits while this UPDATE waits for its row lock has
    // inserted a successor that the statement's snapshot cannot see, and
    // that token would stay usable in a revoked grant. Each pass revokes
    // what the last one could not see; a revoked token cannot be rotated,
    // so the passes end.
    let revoke = format!(
        "UPDATE refresh_tokens SET revoked_at = $1 WHERE {refresh_col} = $2 AND revoked_at IS NULL"
    );
    loop {
        let revoked = sqlx::query(&revoke)
            .bind(now.0)
            .bind(value)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        if revoked == 0 {
            break;
        }
    }
    // A rotation or redemption that committed just before may have issued
    // an access token with a later `iat` than this request's clock.
    let newest = format!(
        "SELECT (SELECT MAX(created_at) FROM refresh_tokens WHERE {refresh_col} = $1) AS refreshed, \
         (SELECT MAX(used_at) FROM auth_codes WHERE {code_col} = $1) AS redeemed"
    );
    let row = sqlx::query(&newest)
        .bind(value)
        .fetch_one(&mut *conn)
        .await?;
    let refreshed: Option<i64> = row.try_get("refreshed")?;
    let redeemed: Option<i64> = row.try_get("redeemed")?;
    Ok(UnixTime(
        now.0
            .max(refreshed.unwrap_or(now.0))
            .max(redeemed.unwrap_or(now.0)),
    ))
}

/// Ends grants ([`end_grants`]) and, in the same transaction, records the
/// `sid`/`sub`/`client_id` revocation that refuses every access token they
/// gave (carried to the edge through the outbox).
pub async fn end_and_revoke(
    db: &Db,
    span: revocation::CoverSpan,
    of: GrantsOf<'_>,
    reason: &str,
    now: UnixTime,
) -> Result<revocation::Revocation, StoreError> {
    let mut tx = db.pool.begin().await?;
    let revoked_at = end_grants(&mut tx, of, now).await?;
    let rev = revocation::revoke_in(
        &mut tx,
        of.kind(),
        of.value(),
        revoked_at.0.saturating_add(span.secs()),
        reason,
        revoked_at,
    )
    .await?;
    tx.commit().await?;
    db.metrics.revocation(of.kind().name());
    db.outbox_notify.notify_one();
    Ok(rev)
}

/// Forgets what can no longer be used: codes that expired before
/// `codes_before`, sessions that expired before `sessions_before`, refresh
/// tokens whose family expired before `refresh_before` (and the grants'
/// session rows, `grant_sessions`, that ended by then), pushed authorization
/// requests that expired before `sessions_before`. Returns rows deleted.
pub async fn prune(
    db: &Db,
    codes_before: i64,
    sessions_before: i64,
    refresh_before: i64,
) -> Result<u64, StoreError> {
    let mut n = 0u64;
    for (sql, before) in [
        ("DELETE FROM auth_codes WHERE expires_at < $1", codes_before),
        (
            "DELETE FROM sessions WHERE expires_at < $1",
            sessions_before,
        ),
        (
            "DELETE FROM refresh_tokens WHERE family_expires_at < $1",
            refresh_before,
        ),
        (
            "DELETE FROM grant_sessions WHERE expires_at < $1",
            refresh_before,
        ),
        (
            "DELETE FROM pushed_requests WHERE expires_at < $1",
            sessions_before,
        ),
    ] {
        n = n.saturating_add(
            sqlx::query(sql)
                .bind(before)
                .execute(&db.pool)
                .await?
                .rows_affected(),
        );
    }
    Ok(n)
}
