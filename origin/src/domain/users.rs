//! Users who log in at `/authorize`: argon2id password hashes (PHC strings),
//! the repository, and the CLI's operations.

use crate::store::db::{Db, DbError};
use crate::support::secret::{random_id, Password, RandomError};
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::Argon2;
use gatehouse_common::UnixTime;
use serde::Serialize;
use sqlx::Row as _;

/// A user as operators see it (never the hash).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct User {
    /// Stable id (the `sub` of their tokens).
    pub user_id: String,
    /// Login name.
    pub username: String,
    /// Creation time.
    pub created_at: i64,
}

/// Why a user operation failed.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The username is not 1-64 visible characters.
    #[error("the username must be 1-64 characters without spaces or control characters")]
    InvalidUsername,
    /// The password is shorter than 8 characters or longer than 1024.
    #[error("the password must be 8-1024 characters")]
    InvalidPassword,
    /// The username is taken.
    #[error("the username is taken")]
    Taken,
    /// Hashing failed.
    #[error("password hashing failed")]
    Hash,
    /// Storage.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Randomness.
    #[error(transparent)]
    Random(#[from] RandomError),
}

impl From<sqlx::Error> for UserError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e.into())
    }
}

fn valid_username(u: &str) -> bool {
    !u.is_empty() && u.len() <= 64 && !u.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Creates a user with an argon2id hash of `password`.
pub async fn create(
    db: &Db,
    username: &str,
    password: &Password,
    now: UnixTime,
) -> Result<User, UserError> {
    if !valid_username(username) {
        return Err(UserError::InvalidUsername);
    }
    let len = password.expose().chars().count();
    if !(8..=1024).contains(&len) {
        return Err(UserError::InvalidPassword);
    }
    let salt_bytes = crate::support::secret::random_bytes::<16>()?;
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|_| UserError::Hash)?;
    let hash = Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .map_err(|_| UserError::Hash)?
        .to_string();
    let user = User {
        user_id: random_id()?,
        username: username.to_owned(),
        created_at: now.0,
    };
    let taken = sqlx::query("SELECT user_id FROM users WHERE username = $1")
        .bind(username)
        .fetch_optional(&db.pool)
        .await?
        .is_some();
    if taken {
        return Err(UserError::Taken);
    }
    sqlx::query(
        "INSERT INTO users (user_id, username, password_hash, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&user.user_id)
    .bind(&user.username)
    .bind(hash)
    .bind(user.created_at)
    .execute(&db.pool)
    .await
    .map_err(|_| UserError::Taken)?;
    Ok(user)
}

/// The user `username` if `password` is theirs. Runs argon2 on a blocking
/// thread holding `slot` (one of the few password-hash slots, so a burst of
/// logins cannot hold 19 MiB per request), released when the hash is done
/// even if the request is abandoned.
pub async fn verify(
    db: &Db,
    username: &str,
    password: &Password,
    slot: tokio::sync::OwnedSemaphorePermit,
) -> Result<Option<User>, DbError> {
    let row = if valid_username(username) {
        sqlx::query(
            "SELECT user_id, username, password_hash, created_at FROM users WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(&db.pool)
        .await?
    } else {
        None
    };
    let (user, hash) = match &row {
        Some(r) => (
            Some(User {
                user_id: r.try_get("user_id")?,
                username: r.try_get("username")?,
                created_at: r.try_get("created_at")?,
            }),
            r.try_get::<String, _>("password_hash")?,
        ),
        None => (None, String::new()),
    };
    let password = password.clone();
    let ok = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        if hash.is_empty() {
            // Unknown user: the same argon2 work, so timing does not reveal
            // which usernames exist.
            if let Ok(salt) = SaltString::encode_b64(b"gatehouse-nouser") {
                let _ = Argon2::default().hash_password(password.expose().as_bytes(), &salt);
            }
            return false;
        }
        PasswordHash::new(&hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.expose().as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false);
    Ok(user.filter(|_| ok))
}

/// Every user, oldest first.
pub async fn list(db: &Db) -> Result<Vec<User>, DbError> {
    let rows = sqlx::query(
        "SELECT user_id, username, created_at FROM users ORDER BY created_at, username",
    )
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(User {
                user_id: r.try_get("user_id")?,
                username: r.try_get("username")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
}

/// Looks a user up by id.
pub async fn get(db: &Db, user_id: &str) -> Result<Option<User>, DbError> {
    let row = sqlx::query("SELECT user_id, username, created_at FROM users WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(&db.pool)
        .await?;
    row.map(|r| {
        Ok(User {
            user_id: r.try_get("user_id")?,
            username: r.try_get("username")?,
            created_at: r.try_get("created_at")?,
        })
    })
    .transpose()
}

/// Deletes a user by username, with their sessions, consents and
/// outstanding codes, ends every grant of theirs (refresh families included,
/// a rotation in flight too: [`crate::domain::grants::end_grants`]) and revokes
/// their access tokens (a `sub` revocation, through the outbox), in one
/// transaction.
pub async fn delete(
    db: &Db,
    username: &str,
    span: crate::store::revocation::CoverSpan,
    now: UnixTime,
) -> Result<Option<User>, DbError> {
    let mut tx = db.pool.begin().await?;
    // A write first: on SQLite a transaction that reads before it writes
    // fails outright when another writer commits in between.
    let row = sqlx::query(
        "DELETE FROM users WHERE username = $1 RETURNING user_id, username, created_at",
    )
    .bind(username)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(r) = row else {
        tx.rollback().await?;
        return Ok(None);
    };
    let user = User {
        user_id: r.try_get("user_id")?,
        username: r.try_get("username")?,
        created_at: r.try_get("created_at")?,
    };
    for sql in [
        "DELETE FROM sessions WHERE user_id = $1",
        "DELETE FROM consents WHERE user_id = $1",
    ] {
        sqlx::query(sql)
            .bind(&user.user_id)
            .execute(&mut *tx)
            .await?;
    }
    let revoked_at = crate::domain::grants::end_grants(
        &mut tx,
        crate::domain::grants::GrantsOf::User(&user.user_id),
        now,
    )
    .await?;
    sqlx::query("DELETE FROM auth_codes WHERE user_id = $1")
        .bind(&user.user_id)
        .execute(&mut *tx)
        .await?;
    crate::store::revocation::revoke_in(
        &mut tx,
        gatehouse_common::revocation::RevocationKind::Sub,
        &user.user_id,
        revoked_at.0.saturating_add(span.secs()),
        "user deleted",
        revoked_at,
    )
    .await?;
    tx.commit().await?;
    db.outbox_notify.notify_one();
    Ok(Some(user))
}
