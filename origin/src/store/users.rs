//! The `users` table, and deleting a user with everything that lets them
//! or their tokens back in (sessions, consents, codes, refresh families)
//! together with the `sub` revocation.

use crate::store::db::{Db, StoreError};
use crate::store::grants::{end_grants, GrantsOf};
use crate::store::revocation::{self, CoverSpan};
use gatehouse_common::revocation::RevocationKind;
use gatehouse_common::UnixTime;
use sqlx::any::AnyRow;
use sqlx::Row as _;

/// A `users` row without its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRow {
    /// `user_id`.
    pub user_id: String,
    /// `username`.
    pub username: String,
    /// `created_at`.
    pub created_at: i64,
    /// `name` (OIDC `name`).
    pub name: Option<String>,
    /// `email` (OIDC `email`).
    pub email: Option<String>,
    /// `email_verified` (OIDC `email_verified`).
    pub email_verified: bool,
    /// `updated_at`: creation or the last profile change.
    pub updated_at: i64,
}

/// The columns [`from_row`] reads.
const COLUMNS: &str = "user_id, username, created_at, name, email, email_verified, updated_at";

fn from_row(r: &AnyRow) -> Result<UserRow, StoreError> {
    Ok(UserRow {
        user_id: r.try_get("user_id")?,
        username: r.try_get("username")?,
        created_at: r.try_get("created_at")?,
        name: r.try_get("name")?,
        email: r.try_get("email")?,
        email_verified: crate::store::db::flag(r, "email_verified")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// The profile fields of one user, as written by [`update_profile`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    /// `name`.
    pub name: Option<String>,
    /// `email`.
    pub email: Option<String>,
    /// `email_verified`.
    pub email_verified: bool,
}

/// Whether `username` is taken.
pub async fn username_taken(db: &Db, username: &str) -> Result<bool, StoreError> {
    Ok(sqlx::query("SELECT user_id FROM users WHERE username = $1")
        .bind(username)
        .fetch_optional(&db.pool)
        .await?
        .is_some())
}

/// Inserts a user with its PHC password hash ([`StoreError::Conflict`] if
/// the username was taken meanwhile).
pub async fn insert(db: &Db, user: &UserRow, password_hash: &str) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO users (user_id, username, password_hash, created_at, name, email, \
         email_verified, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&user.user_id)
    .bind(&user.username)
    .bind(password_hash)
    .bind(user.created_at)
    .bind(user.name.as_deref())
    .bind(user.email.as_deref())
    .bind(i64::from(user.email_verified))
    .bind(user.updated_at)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// The user named `username` and their PHC password hash.
pub async fn with_hash(db: &Db, username: &str) -> Result<Option<(UserRow, String)>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS}, password_hash FROM users WHERE username = $1"
    ))
    .bind(username)
    .fetch_optional(&db.pool)
    .await?;
    row.map(|r| Ok((from_row(&r)?, r.try_get::<String, _>("password_hash")?)))
        .transpose()
}

/// Every user, oldest first.
pub async fn list(db: &Db) -> Result<Vec<UserRow>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM users ORDER BY created_at, username"
    ))
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(from_row).collect()
}

/// The user `user_id`.
pub async fn get(db: &Db, user_id: &str) -> Result<Option<UserRow>, StoreError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE user_id = $1"))
        .bind(user_id)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The user named `username`.
pub async fn by_username(db: &Db, username: &str) -> Result<Option<UserRow>, StoreError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE username = $1"))
        .bind(username)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Writes `profile` for the user `user_id` with `updated_at = now`; `None`
/// when there is no such user (deleted meanwhile). The row as it stands
/// afterwards is returned.
pub async fn update_profile(
    db: &Db,
    user_id: &str,
    profile: &Profile,
    now: UnixTime,
) -> Result<Option<UserRow>, StoreError> {
    let row = sqlx::query(&format!(
        "UPDATE users SET name = $1, email = $2, email_verified = $3, updated_at = $4 \
         WHERE user_id = $5 RETURNING {COLUMNS}"
    ))
    .bind(profile.name.as_deref())
    .bind(profile.email.as_deref())
    .bind(i64::from(profile.email_verified))
    .bind(now.0)
    .bind(user_id)
    .fetch_optional(&db.pool)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Deletes a user by username, with their sessions, consents and
/// outstanding codes, ends every grant of theirs (refresh families included,
/// a rotation in flight too: [`end_grants`]) and revokes their access
/// tokens (a `sub` revocation, through the outbox), in one transaction.
pub async fn delete(
    db: &Db,
    username: &str,
    span: CoverSpan,
    now: UnixTime,
) -> Result<Option<UserRow>, StoreError> {
    let mut tx = db.pool.begin().await?;
    // A write first: on SQLite a transaction that reads before it writes
    // fails outright when another writer commits in between.
    let row = sqlx::query(&format!(
        "DELETE FROM users WHERE username = $1 RETURNING {COLUMNS}"
    ))
    .bind(username)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(r) = row else {
        tx.rollback().await?;
        return Ok(None);
    };
    let user = from_row(&r)?;
    for sql in [
        "DELETE FROM sessions WHERE user_id = $1",
        "DELETE FROM consents WHERE user_id = $1",
        "DELETE FROM grant_sessions WHERE user_id = $1",
    ] {
        sqlx::query(sql)
            .bind(&user.user_id)
            .execute(&mut *tx)
            .await?;
    }
    let revoked_at = end_grants(&mut tx, GrantsOf::User(&user.user_id), now).await?;
    sqlx::query("DELETE FROM auth_codes WHERE user_id = $1")
        .bind(&user.user_id)
        .execute(&mut *tx)
        .await?;
    revocation::revoke_in(
        &mut tx,
        RevocationKind::Sub,
        &user.user_id,
        revoked_at.0.saturating_add(span.secs()),
        "user deleted",
        revoked_at,
    )
    .await?;
    tx.commit().await?;
    db.metrics.revocation(RevocationKind::Sub.name());
    db.outbox_notify.notify_one();
    Ok(Some(user))
}
