//! Users who log in at `/authorize`: argon2id password hashes (PHC strings),
//! their OpenID Connect profile (`name`, `email`, `email_verified`,
//! `updated_at`, served at `/userinfo`), the repository, and the operator's
//! operations.

use crate::store::db::{Db, StoreError};
use crate::store::users::{self as rows, Profile, UserRow};
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
    /// Full name (OIDC `name`), if set.
    pub name: Option<String>,
    /// Email address (OIDC `email`), if set.
    pub email: Option<String>,
    /// Whether the operator vouches for the email address (OIDC `email_verified`).
    pub email_verified: bool,
    /// Creation or the last profile change (OIDC `updated_at`).
    pub updated_at: i64,
}

/// Profile fields as an operator gives them, at creation or in a change.
/// At creation an absent or empty value means none. In a change, `None`
/// leaves a field as it is and an empty text clears it; a new email address
/// is unverified unless `email_verified` is given with it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProfileInput {
    /// Full name: 1-256 characters, no control or bidirectional-override characters.
    pub name: Option<String>,
    /// Email address: `local@domain`, at most 254 bytes (RFC 5321 §4.5.3.1).
    pub email: Option<String>,
    /// Whether the email address is verified (needs an address).
    pub email_verified: Option<bool>,
}

/// Longest `name`, in characters.
pub const MAX_NAME_CHARS: usize = 256;
/// Longest `email`, in bytes (RFC 5321 §4.5.3.1.3's path limit less the brackets).
pub const MAX_EMAIL_BYTES: usize = 254;

/// Why a user operation failed.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The username is not 1-64 visible characters.
    #[error(
        "the username must be 1-64 characters without spaces, control or invisible characters"
    )]
    InvalidUsername,
    /// The password is shorter than 8 characters or longer than 1024.
    #[error("the password must be 8-1024 characters")]
    InvalidPassword,
    /// The name is longer than 256 characters or holds a control character.
    #[error(
        "the name must be 1-256 characters without control or bidirectional-override characters"
    )]
    InvalidName,
    /// The email address is not `local@domain` within the bounds.
    #[error("the email must be an address local@domain of at most 254 characters")]
    InvalidEmail,
    /// `email_verified` without an email address.
    #[error("email_verified needs an email address")]
    VerifiedWithoutEmail,
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
            name: r.name,
            email: r.email,
            email_verified: r.email_verified,
            updated_at: r.updated_at,
        }
    }
}

/// Whether `c` may not appear in a name: control characters, and the
/// bidirectional formatting characters that make a name display as another.
fn forbidden_in_name(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn valid_name(n: &str) -> bool {
    let len = n.chars().count();
    (1..=MAX_NAME_CHARS).contains(&len) && !n.trim().is_empty() && !n.chars().any(forbidden_in_name)
}

/// An email address's shape, bounded: one `@`; a local part of 1-64 visible
/// ASCII characters other than `"(),:;<>@[\]`; a domain of dot-separated
/// labels of 1-63 letters, digits and inner hyphens. Not a proof that the
/// address exists (that is what `email_verified` records).
fn valid_email(e: &str) -> bool {
    if e.len() > MAX_EMAIL_BYTES {
        return false;
    }
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    let local_ok = (1..=64).contains(&local.len())
        && local
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"\"(),:;<>@[\\]".contains(&b))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    let domain_ok = (1..=253).contains(&domain.len())
        && domain.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    local_ok && domain_ok
}

/// A name or email as given: empty is none, anything else must pass `valid`.
fn field(
    value: Option<&str>,
    valid: fn(&str) -> bool,
    err: UserError,
) -> Result<Option<String>, UserError> {
    match value {
        None | Some("") => Ok(None),
        Some(v) if valid(v) => Ok(Some(v.to_owned())),
        Some(_) => Err(err),
    }
}

/// The profile `input` makes of `current` (the stored one; the empty
/// profile at creation), validated.
fn apply(current: Profile, input: &ProfileInput) -> Result<Profile, UserError> {
    let name = match &input.name {
        None => current.name,
        Some(n) => field(Some(n.as_str()), valid_name, UserError::InvalidName)?,
    };
    let email = match &input.email {
        None => current.email.clone(),
        Some(e) => field(Some(e.as_str()), valid_email, UserError::InvalidEmail)?,
    };
    // A new address is not the one that was verified.
    let email_verified = match input.email_verified {
        Some(v) => v,
        None => current.email_verified && email == current.email,
    };
    if email_verified && email.is_none() {
        return Err(UserError::VerifiedWithoutEmail);
    }
    Ok(Profile {
        name,
        email,
        email_verified,
    })
}

fn valid_username(u: &str) -> bool {
    !u.is_empty() && u.len() <= 64 && !u.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Invisible characters: format characters (zero-width spaces and joiners,
/// the soft hyphen, the byte-order mark, tags, the bidirectional marks,
/// embeddings, overrides and isolates), the combining grapheme joiner and
/// the Hangul fillers. A username holding one displays as another user's.
fn invisible(c: char) -> bool {
    forbidden_in_name(c)
        || matches!(
            c,
            '\u{00ad}'
                | '\u{034f}'
                | '\u{061c}'
                | '\u{115f}'
                | '\u{1160}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206f}'
                | '\u{3164}'
                | '\u{feff}'
                | '\u{ffa0}'
                | '\u{fff9}'..='\u{fffb}'
                | '\u{e0000}'..='\u{e007f}'
        )
}

/// A new username: [`valid_username`] without invisible characters
/// ([`invisible`]; it is `preferred_username` at `/userinfo` and is shown on
/// the login and consent pages). Only checked at creation: an existing user
/// named so can still log in, be changed and be deleted.
fn valid_new_username(u: &str) -> bool {
    valid_username(u) && !u.chars().any(invisible)
}

/// Creates a user with an argon2id hash of `password` and no profile fields.
pub async fn create(
    db: &Db,
    username: &str,
    password: &Password,
    now: UnixTime,
) -> Result<User, UserError> {
    create_with_profile(db, username, password, &ProfileInput::default(), now).await
}

/// Creates a user with an argon2id hash of `password` and the profile
/// `profile` (validated; `updated_at` is `now`).
pub async fn create_with_profile(
    db: &Db,
    username: &str,
    password: &Password,
    profile: &ProfileInput,
    now: UnixTime,
) -> Result<User, UserError> {
    if !valid_new_username(username) {
        return Err(UserError::InvalidUsername);
    }
    let profile = apply(Profile::default(), profile)?;
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
    if rows::username_taken(db, username).await? {
        return Err(UserError::Taken);
    }
    let row = UserRow {
        user_id: random_id()?,
        username: username.to_owned(),
        created_at: now.0,
        name: profile.name,
        email: profile.email,
        email_verified: profile.email_verified,
        updated_at: now.0,
    };
    // A unique-index refusal is a lost race for the name; any other failure
    // (a lost connection, a full disk) stays a storage error (a 500), not a
    // 409 that would hide the outage.
    rows::insert(db, &row, &hash).await.map_err(|e| match e {
        StoreError::Conflict(_) => UserError::Taken,
        e => UserError::Db(e),
    })?;
    Ok(User::from(row))
}

/// Changes the profile of the user named `username` ([`ProfileInput`]:
/// absent fields stay, empty ones are cleared) and sets `updated_at` to
/// `now` if anything changed. `Ok(None)` when there is no such user.
pub async fn update_profile(
    db: &Db,
    username: &str,
    input: &ProfileInput,
    now: UnixTime,
) -> Result<Option<User>, UserError> {
    let Some(row) = rows::by_username(db, username).await? else {
        return Ok(None);
    };
    let current = Profile {
        name: row.name,
        email: row.email,
        email_verified: row.email_verified,
    };
    let profile = apply(current.clone(), input)?;
    if profile == current {
        // Nothing changes: neither the row nor `updated_at` (OIDC Core
        // §5.1: the time the information was last updated).
        return Ok(Some(User::from(UserRow {
            name: current.name,
            email: current.email,
            email_verified: current.email_verified,
            ..row
        })));
    }
    // `updated_at` never goes back, even if the clock does.
    let at = UnixTime(now.0.max(row.updated_at));
    Ok(rows::update_profile(db, &row.user_id, &profile, at)
        .await?
        .map(User::from))
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
    let user = user.filter(|_| ok);
    db.metrics.login(user.is_some());
    Ok(user)
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

#[cfg(test)]
mod tests {
    use super::{apply, valid_email, valid_name, Profile, ProfileInput, UserError};

    #[test]
    fn email_shapes_are_bounded() {
        for ok in [
            "a@b",
            "alice@example.com",
            "first.last+tag@sub.example.co",
            "o'neil@x-y.example",
        ] {
            assert!(valid_email(ok), "{ok}");
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        let long_total = format!("{}@{}.example", "a".repeat(60), "b".repeat(60).repeat(4));
        for bad in [
            "",
            "plain",
            "@example.com",
            "alice@",
            "a@b@c",
            "a b@example.com",
            "a\"b@example.com",
            ".a@example.com",
            "a..b@example.com",
            "a@-example.com",
            "a@example-.com",
            "a@exa_mple.com",
            "a@example..com",
            "al\u{e9}@example.com",
            "a@ex\u{e4}mple.com",
            "a\n@example.com",
            long_local.as_str(),
            long_total.as_str(),
        ] {
            assert!(!valid_email(bad), "{bad:?}");
        }
    }

    #[test]
    fn names_refuse_controls_and_bidi_overrides() {
        assert!(valid_name("Alice Liddell"));
        assert!(valid_name("Zoë Ødegård-李"));
        assert!(valid_name(&"n".repeat(256)));
        for bad in [
            String::new(),
            "   ".into(),
            "n".repeat(257),
            "Al\u{0}ice".into(),
            "Al\nice".into(),
            "Al\u{7f}ice".into(),
            "Al\u{202e}ecila".into(),
            "Al\u{2066}ice".into(),
        ] {
            assert!(!valid_name(&bad), "{bad:?}");
        }
    }

    #[test]
    fn a_new_email_is_unverified_unless_said_and_verified_needs_an_address() {
        let current = Profile {
            name: Some("A".into()),
            email: Some("a@example.com".into()),
            email_verified: true,
        };
        let same = apply(
            current.clone(),
            &ProfileInput {
                email: Some("a@example.com".into()),
                ..ProfileInput::default()
            },
        )
        .unwrap();
        assert!(same.email_verified);
        let moved = apply(
            current.clone(),
            &ProfileInput {
                email: Some("b@example.com".into()),
                ..ProfileInput::default()
            },
        )
        .unwrap();
        assert!(!moved.email_verified);
        assert_eq!(moved.name.as_deref(), Some("A"));
        let cleared = apply(
            current,
            &ProfileInput {
                name: Some(String::new()),
                email: Some(String::new()),
                email_verified: None,
            },
        )
        .unwrap();
        assert_eq!(cleared, Profile::default());
        assert!(matches!(
            apply(
                Profile::default(),
                &ProfileInput {
                    email_verified: Some(true),
                    ..ProfileInput::default()
                }
            ),
            Err(UserError::VerifiedWithoutEmail)
        ));
    }
}
