//! Users who log in at `/authorize`: argon2id password hashes (PHC strings),
//! the repository, and the CLI's operations.

use crate::store::db::{Db, StoreError};
use crate::store::users::{self as rows, UserRow};
use crate::support::secret::{random_id, Password, RandomError};
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::Argon2;
use gatehouse_common::UnixTime;
use serde::Serialize;

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
    Db(#[from] StoreError),
    /// Randomness.
    #[error(transparent)]
    Random(#[from] RandomError),
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        Self {
            user_id: r.user_id,
            username: r.username,
            created_at: r.created_at,
        }
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
    if rows::username_taken(db, username).await? {
        return Err(UserError::Taken);
    }
    let row = UserRow {
        user_id: user.user_id.clone(),
        username: user.username.clone(),
        created_at: user.created_at,
    };
    // A unique-index refusal is a lost race for the name; any other failure
    // (a lost connection, a full disk) stays a storage error (a 500), not a
    // 409 that would hide the outage.
    rows::insert(db, &row, &hash).await.map_err(|e| match e {
        StoreError::Conflict(_) => UserError::Taken,
        e => UserError::Db(e),
    })?;
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
) -> Result<Option<User>, StoreError> {
    let row = if valid_username(username) {
        rows::with_hash(db, username).await?
    } else {
        None
    };
    let (user, hash) = match row {
        Some((user, hash)) => (Some(User::from(user)), hash),
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
pub async fn list(db: &Db) -> Result<Vec<User>, StoreError> {
    Ok(rows::list(db).await?.into_iter().map(User::from).collect())
}

/// Looks a user up by id.
pub async fn get(db: &Db, user_id: &str) -> Result<Option<User>, StoreError> {
    Ok(rows::get(db, user_id).await?.map(User::from))
}

/// Deletes a user by username, with their sessions, consents and
/// outstanding codes, ends every grant of theirs (refresh families included,
/// a rotation in flight too: [`crate::store::grants::end_grants`]) and
/// revokes their access tokens (a `sub` revocation, through the outbox), in
/// one transaction.
pub async fn delete(
    db: &Db,
    username: &str,
    span: crate::store::revocation::CoverSpan,
    now: UnixTime,
) -> Result<Option<User>, StoreError> {
    Ok(rows::delete(db, username, span, now).await?.map(User::from))
}
