//! The operator's operations, once: the admin HTTP API (`http::admin`) and
//! the CLI (`cli`) both call these, so they apply the same rules (defaults,
//! the secret grace cap, audit rows) and answer with the same typed
//! responses. Each takes the narrow things it needs, never the app state.

use crate::config::Config;
use crate::domain::clients::{self, ClientError, ClientView, NewClient};
use crate::domain::error::Error;
use crate::domain::grant_type::GrantType;
use crate::domain::keys::{self, KeyMeta, KeyView, Retirement};
use crate::domain::revocation_push::{self, PushStatus};
use crate::domain::users::{self, ProfileInput, User, UserError};
use crate::store::audit::{self, AuditEvent};
use crate::store::db::Db;
use crate::store::revocation::{self, Revocation};
use crate::support::kek::Kek;
use crate::support::secret::Password;
use gatehouse_common::revocation::RevocationKind;
use gatehouse_common::UnixTime;
use serde::Serialize;

/// The longest grace period an old client secret keeps working after a
/// rotation, seconds (30 days), whoever asks for more.
pub const MAX_SECRET_GRACE_SECS: i64 = 30 * 86_400;

/// Most audit events one listing returns.
pub const MAX_AUDIT_EVENTS: i64 = 10_000;

/// Who asked: recorded in audit rows and revocation reasons.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// The admin HTTP API.
    AdminApi,
    /// The command line.
    Cli,
}

impl Via {
    /// The audit detail and revocation reason naming the caller.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AdminApi => revocation::REASON_ADMIN_API,
            Self::Cli => revocation::REASON_CLI,
        }
    }
}

/// A client registration as an operator asks for it (before defaults).
#[derive(Clone, Debug, Default)]
pub struct ClientRequest {
    /// Name.
    pub name: String,
    /// Space-separated scopes.
    pub scope: String,
    /// Audiences (default: the configured default audience).
    pub audiences: Vec<String>,
    /// Grant types by name (default: client_credentials for confidential
    /// clients); a name that is no [`GrantType`] is refused.
    pub grant_types: Vec<String>,
    /// Redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Public client.
    pub public: bool,
    /// DPoP required.
    pub dpop_required: bool,
    /// private_key_jwt: the client's public JWK set (JSON text).
    pub jwks: Option<String>,
    /// Audiences the client serves as a resource server.
    pub serves: Vec<String>,
    /// private_key_jwt: also accept the token endpoint URL as `aud`.
    pub legacy_assertion_audience: bool,
    /// Where RP-initiated logout may send the user back (exact match).
    pub post_logout_redirect_uris: Vec<String>,
    /// Authorization requests must be pushed (RFC 9126 §6).
    pub require_pushed_authorization_requests: bool,
}

impl ClientRequest {
    /// The registration, with defaults applied.
    #[must_use]
    pub fn into_new(self, default_audience: &str) -> NewClient {
        NewClient {
            name: self.name,
            public: self.public,
            scopes: self
                .scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            audiences: if self.audiences.is_empty() {
                vec![default_audience.to_owned()]
            } else {
                self.audiences
            },
            grant_types: if self.grant_types.is_empty() && !self.public {
                vec![GrantType::ClientCredentials.as_str().to_owned()]
            } else {
                self.grant_types
            },
            redirect_uris: self.redirect_uris,
            dpop_required: self.dpop_required,
            jwks: self.jwks,
            serves: self.serves,
            legacy_assertion_audience: self.legacy_assertion_audience,
            post_logout_redirect_uris: self.post_logout_redirect_uris,
            require_pushed_authorization_requests: self.require_pushed_authorization_requests,
        }
    }
}

/// A registered client and, for a confidential one, its secret (shown once).
#[derive(Clone, Debug, Serialize)]
pub struct CreatedClient {
    /// The client.
    #[serde(flatten)]
    pub client: ClientView,
    /// The secret, only in this answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

/// Every client.
#[derive(Clone, Debug, Serialize)]
pub struct ClientList {
    /// Oldest first.
    pub clients: Vec<ClientView>,
}

/// What was deleted.
#[derive(Clone, Debug, Serialize)]
pub struct Deleted {
    /// The client id.
    pub deleted: String,
}

/// A rotated client secret.
#[derive(Clone, Debug, Serialize)]
pub struct RotatedSecret {
    /// The client id.
    pub client_id: String,
    /// The new secret (shown once).
    pub client_secret: String,
    /// Until when the previous secret still works.
    pub previous_secret_expires_at: i64,
}

/// Every signing key.
#[derive(Clone, Debug, Serialize)]
pub struct KeyList {
    /// In the store's order.
    pub keys: Vec<KeyView>,
}

/// Live revocations.
#[derive(Clone, Debug, Serialize)]
pub struct RevocationList {
    /// The entries.
    pub revocations: Vec<Revocation>,
}

/// Recent audit events.
#[derive(Clone, Debug, Serialize)]
pub struct AuditList {
    /// Newest first.
    pub events: Vec<AuditEvent>,
}

/// Every user.
#[derive(Clone, Debug, Serialize)]
pub struct UserList {
    /// The users (never their hashes).
    pub users: Vec<User>,
}

/// A deleted user.
#[derive(Clone, Debug, Serialize)]
pub struct DeletedUser {
    /// The login name.
    pub deleted: String,
    /// Their id.
    pub user_id: String,
}

impl From<ClientError> for Error {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Invalid { field, reason } => Self::InvalidClientField { field, reason },
            ClientError::Db(e) => e.into(),
            ClientError::Random(e) => e.into(),
        }
    }
}

impl From<UserError> for Error {
    fn from(e: UserError) -> Self {
        match e {
            UserError::InvalidUsername => Self::InvalidRequest(
                "the username must be 1-64 characters without spaces, control or invisible characters".into(),
            ),
            UserError::InvalidPassword => {
                Self::InvalidRequest("the password must be 8-1024 characters".into())
            }
            UserError::InvalidName | UserError::InvalidEmail | UserError::VerifiedWithoutEmail => {
                Self::InvalidRequest(e.to_string().into())
            }
            UserError::Taken => Self::Conflict("the username is taken"),
            UserError::Hash => Self::internal(e),
            UserError::Db(e) => e.into(),
            UserError::Random(e) => e.into(),
        }
    }
}

/// Registers a client and records `client_created`.
pub async fn create_client(
    db: &Db,
    default_audience: &str,
    request: ClientRequest,
    via: Via,
    now: UnixTime,
) -> Result<CreatedClient, Error> {
    let new = request.into_new(default_audience);
    let (client, secret) = clients::create(db, &new, now).await?;
    audit::record(
        &db.pool,
        &AuditEvent::new("client_created", now)
            .client(&client.client_id)
            .detail(via.as_str()),
    )
    .await?;
    Ok(CreatedClient {
        client: client.view(),
        client_secret: secret.map(|s| s.expose().to_owned()),
    })
}

/// Every client, oldest first.
pub async fn list_clients(db: &Db) -> Result<ClientList, Error> {
    Ok(ClientList {
        clients: clients::list(db)
            .await?
            .iter()
            .map(clients::Client::view)
            .collect(),
    })
}

/// One client ([`Error::NotFound`] if there is none).
pub async fn show_client(db: &Db, client_id: &str) -> Result<ClientView, Error> {
    clients::get(db, client_id)
        .await?
        .map(|c| c.view())
        .ok_or(Error::NotFound)
}

/// Deletes a client, revoking every token issued to it, and records `client_deleted`.
pub async fn delete_client(
    db: &Db,
    config: &Config,
    client_id: &str,
    via: Via,
    now: UnixTime,
) -> Result<Deleted, Error> {
    let span = revocation::cover_span(db, config).await?;
    let reason = format!("client deleted ({})", via.as_str());
    if !clients::delete(db, client_id, span, &reason, now).await? {
        return Err(Error::NotFound);
    }
    audit::record(
        &db.pool,
        &AuditEvent::new("client_deleted", now)
            .client(client_id)
            .detail(via.as_str()),
    )
    .await?;
    Ok(Deleted {
        deleted: client_id.to_owned(),
    })
}

/// The grace period a rotation grants: `requested` (else the configured
/// default) within 0..=[`MAX_SECRET_GRACE_SECS`].
#[must_use]
pub fn secret_grace(requested: Option<i64>, configured: i64) -> i64 {
    requested
        .unwrap_or(configured)
        .clamp(0, MAX_SECRET_GRACE_SECS)
}

/// Gives a confidential client a new secret; the old one works for the
/// grace period ([`secret_grace`]). Records `client_secret_rotated`.
/// [`Error::NotFound`] for no such client, [`Error::Conflict`] for a public one.
pub async fn rotate_secret(
    db: &Db,
    configured_grace: i64,
    client_id: &str,
    grace: Option<i64>,
    via: Via,
    now: UnixTime,
) -> Result<RotatedSecret, Error> {
    let grace = secret_grace(grace, configured_grace);
    let secret = clients::rotate_secret(db, client_id, grace, now)
        .await
        .map_err(|e| match e {
            ClientError::Invalid { reason, .. } => Error::Conflict(reason),
            other => other.into(),
        })?
        .ok_or(Error::NotFound)?;
    audit::record(
        &db.pool,
        &AuditEvent::new("client_secret_rotated", now)
            .client(client_id)
            .detail(via.as_str()),
    )
    .await?;
    Ok(RotatedSecret {
        client_id: client_id.to_owned(),
        client_secret: secret.expose().to_owned(),
        previous_secret_expires_at: now.0.saturating_add(grace),
    })
}

/// Every signing key with its state at `now`.
pub async fn list_keys(db: &Db, now: UnixTime) -> Result<KeyList, Error> {
    Ok(KeyList {
        keys: keys::describe(db, now).await?,
    })
}

/// Starts a key rotation (`immediate`: the new key signs at once) and records
/// `key_rotated`. A running server reloads its ring afterwards.
pub async fn rotate_key(
    db: &Db,
    kek: &Kek,
    config: &Config,
    immediate: bool,
    now: UnixTime,
) -> Result<KeyMeta, Error> {
    let meta = keys::rotate(
        db,
        kek,
        config.signing_alg,
        &config.key_schedule,
        immediate,
        now,
    )
    .await?;
    db.metrics.key_rotated(true);
    audit::record(
        &db.pool,
        &AuditEvent::new("key_rotated", now)
            .detail(format!("kid={} active_at={}", meta.kid, meta.active_at)),
    )
    .await?;
    Ok(meta)
}

/// Retires `kid` (`unpublish`: also leaves the JWKS now) and records
/// `key_retired`. [`Error::NotFound`] for no such key.
pub async fn retire_key(
    db: &Db,
    kek: &Kek,
    config: &Config,
    kid: &str,
    unpublish: bool,
    now: UnixTime,
) -> Result<Retirement, Error> {
    let done = keys::retire(db, kek, config.signing_alg, kid, unpublish, now)
        .await?
        .ok_or(Error::NotFound)?;
    audit::record(&db.pool, &done.audit_event(now)).await?;
    tracing::warn!(kid = %done.kid, removed = done.removed_at.is_some(), "{}", done.warning);
    Ok(done)
}

/// Live revocations.
pub async fn list_revocations(db: &Db, now: UnixTime) -> Result<RevocationList, Error> {
    Ok(RevocationList {
        revocations: revocation::list(db, now).await?,
    })
}

/// The revocation pusher's state.
pub async fn revocation_status(
    db: &Db,
    config: &Config,
    now: UnixTime,
) -> Result<PushStatus, Error> {
    let span = revocation::cover_span(db, config).await?;
    Ok(revocation_push::status(db, span, now).await?)
}

/// Revokes by identifier (and ends the grants a sid, sub or client id names).
pub async fn revoke(
    db: &Db,
    config: &Config,
    kind: RevocationKind,
    value: &str,
    via: Via,
    now: UnixTime,
) -> Result<Revocation, Error> {
    let span = revocation::cover_span(db, config).await?;
    crate::domain::introspect::revoke_identifier(db, span, kind, value, via.as_str(), now).await
}

/// Longest value an audit filter field takes (no identifier is longer).
const MAX_AUDIT_FILTER_LEN: usize = 256;

/// Recent audit events matching `filter`, newest first (`limit` within
/// 1..=[`MAX_AUDIT_EVENTS`]): the admin API's `GET /admin/audit` and the
/// CLI's `audit`, with the same filters and the same answer.
pub async fn list_audit(
    db: &Db,
    limit: i64,
    filter: &audit::AuditFilter,
) -> Result<AuditList, Error> {
    for (name, value) in [
        ("kind", &filter.kind),
        ("client_id", &filter.client_id),
        ("subject", &filter.subject),
        ("request_id", &filter.request_id),
        ("jti", &filter.jti),
    ] {
        if value
            .as_ref()
            .is_some_and(|v| v.is_empty() || v.len() > MAX_AUDIT_FILTER_LEN)
        {
            return Err(Error::InvalidRequest(
                format!("{name} must be 1-{MAX_AUDIT_FILTER_LEN} bytes").into(),
            ));
        }
    }
    if let (Some(since), Some(until)) = (filter.since, filter.until) {
        if since > until {
            return Err(Error::InvalidRequest("since is after until".into()));
        }
    }
    Ok(AuditList {
        events: audit::list(db, limit.clamp(1, MAX_AUDIT_EVENTS), filter).await?,
    })
}

/// Creates a user who logs in at `/authorize`, without profile fields
/// ([`create_user_with_profile`] with none).
pub async fn create_user(
    db: &Db,
    username: &str,
    password: &Password,
    via: Via,
    now: UnixTime,
) -> Result<User, Error> {
    create_user_with_profile(db, username, password, &ProfileInput::default(), via, now).await
}

/// Creates a user who logs in at `/authorize`, with their OpenID Connect
/// profile (`user create --name --email --email-verified`, `POST /admin/users`).
/// Records `user_created`.
pub async fn create_user_with_profile(
    db: &Db,
    username: &str,
    password: &Password,
    profile: &ProfileInput,
    via: Via,
    now: UnixTime,
) -> Result<User, Error> {
    let user = users::create_with_profile(db, username, password, profile, now).await?;
    audit::record(
        &db.pool,
        &AuditEvent::new("user_created", now)
            .subject(&user.user_id)
            .detail(via.as_str()),
    )
    .await?;
    Ok(user)
}

/// Changes a user's profile (`user update`, `PATCH /admin/users/{username}`):
/// absent fields stay, empty ones are cleared, a new email address is
/// unverified unless `email_verified` comes with it; `updated_at` becomes
/// `now` if anything changed. Records `user_updated`. [`Error::NotFound`] for no such user.
pub async fn update_user(
    db: &Db,
    username: &str,
    profile: &ProfileInput,
    via: Via,
    now: UnixTime,
) -> Result<User, Error> {
    let user = users::update_profile(db, username, profile, now)
        .await?
        .ok_or(Error::NotFound)?;
    audit::record(
        &db.pool,
        &AuditEvent::new("user_updated", now)
            .subject(&user.user_id)
            .detail(via.as_str()),
    )
    .await?;
    Ok(user)
}

/// Every user.
pub async fn list_users(db: &Db) -> Result<UserList, Error> {
    Ok(UserList {
        users: users::list(db).await?,
    })
}

/// Deletes a user, ends their sessions and grants and revokes their tokens.
/// Records `user_deleted`. [`Error::NotFound`] for no such user.
pub async fn delete_user(
    db: &Db,
    config: &Config,
    username: &str,
    via: Via,
    now: UnixTime,
) -> Result<DeletedUser, Error> {
    let span = revocation::cover_span(db, config).await?;
    let user = users::delete(db, username, span, now)
        .await?
        .ok_or(Error::NotFound)?;
    audit::record(
        &db.pool,
        &AuditEvent::new("user_deleted", now)
            .subject(&user.user_id)
            .detail(via.as_str()),
    )
    .await?;
    Ok(DeletedUser {
        deleted: user.username,
        user_id: user.user_id,
    })
}

/// A live browser session as an operator sees it.
#[derive(Clone, Debug, Serialize)]
pub struct SessionView {
    /// The public session id (the id_tokens' `sid`).
    pub sid: String,
    /// When it started.
    pub created_at: i64,
    /// When the user last authenticated in it.
    pub auth_time: i64,
    /// When it ends unless the user logs out first.
    pub expires_at: i64,
}

/// A live grant (a refresh family) as an operator sees it.
#[derive(Clone, Debug, Serialize)]
pub struct GrantView {
    /// The grant id: the refresh family, the `sid` of its access tokens.
    pub grant_id: String,
    /// The browser session it was approved in.
    pub session_sid: String,
    /// The client.
    pub client_id: String,
    /// When it started.
    pub created_at: i64,
    /// When it was last used: its latest refresh rotation, or its issue.
    pub last_used: i64,
    /// Offline (`offline_access`): survives the session's logout.
    pub offline: bool,
    /// When its current refresh token expires unless used.
    pub expires_at: i64,
    /// When the grant ends whatever happens.
    pub family_expires_at: i64,
}

/// A user's live sessions and grants.
#[derive(Clone, Debug, Serialize)]
pub struct UserSessions {
    /// The login name.
    pub username: String,
    /// Their id (`sub`).
    pub user_id: String,
    /// Live browser sessions, oldest first.
    pub sessions: Vec<SessionView>,
    /// Grants with a usable refresh token, oldest first.
    pub grants: Vec<GrantView>,
}

/// What `revoke_session` ended.
#[derive(Clone, Debug, Serialize)]
pub struct RevokedSession {
    /// The user.
    pub username: String,
    /// The session id or grant id asked for.
    pub revoked: String,
    /// Whether a live browser session was ended.
    pub session_ended: bool,
    /// The grants revoked.
    pub grants_revoked: Vec<String>,
}

/// The user named `username` ([`Error::NotFound`] if there is none).
async fn user_named(db: &Db, username: &str) -> Result<User, Error> {
    crate::store::users::with_hash(db, username)
        .await?
        .map(|(row, _)| User::from(row))
        .ok_or(Error::NotFound)
}

/// `username`'s live browser sessions and grants at `now`.
/// [`Error::NotFound`] for no such user.
pub async fn user_sessions(db: &Db, username: &str, now: UnixTime) -> Result<UserSessions, Error> {
    let user = user_named(db, username).await?;
    let sessions = crate::store::sessions::sessions_of_user(db, &user.user_id, now.0)
        .await?
        .into_iter()
        .map(|s| SessionView {
            sid: s.sid,
            created_at: s.created_at,
            auth_time: s.auth_time,
            expires_at: s.expires_at,
        })
        .collect();
    let grants = crate::store::sessions::grants_of_user(db, &user.user_id, now.0)
        .await?
        .into_iter()
        .map(|g| GrantView {
            grant_id: g.grant_id,
            session_sid: g.session_sid,
            client_id: g.client_id,
            created_at: g.created_at,
            last_used: g.last_used,
            offline: g.offline,
            expires_at: g.expires_at,
            family_expires_at: g.family_expires_at,
        })
        .collect();
    Ok(UserSessions {
        username: user.username,
        user_id: user.user_id,
        sessions,
        grants,
    })
}

/// Ends one of `username`'s sessions or grants: `id` is a browser
/// session's `sid` (the session ends and its online grants are revoked, as
/// at logout; its offline grants stay) or a grant id (that grant is
/// revoked, offline or not). Only what belongs to `username` is found:
/// anything else is [`Error::NotFound`].
pub async fn revoke_session(
    db: &Db,
    config: &Config,
    username: &str,
    id: &str,
    via: Via,
    now: UnixTime,
) -> Result<RevokedSession, Error> {
    let user = user_named(db, username).await?;
    let reason = format!("session revoked ({})", via.as_str());
    if crate::store::sessions::is_session_of(db, &user.user_id, id).await? {
        let ended =
            crate::domain::logout::end_session(db, config, &user.user_id, id, &reason, now).await?;
        return Ok(RevokedSession {
            username: user.username,
            revoked: id.to_owned(),
            session_ended: ended.session_ended,
            grants_revoked: ended.grants_revoked,
        });
    }
    match crate::store::sessions::grant_session(db, id).await? {
        Some(g) if g.user_id == user.user_id => {
            crate::domain::grants::revoke_family(db, config, id, &reason, now).await?;
            audit::record(
                &db.pool,
                &AuditEvent::new("grant_revoked", now)
                    .subject(&user.user_id)
                    .client(&g.client_id)
                    .detail(format!("grant={id} offline={} ({reason})", g.offline)),
            )
            .await?;
            Ok(RevokedSession {
                username: user.username,
                revoked: id.to_owned(),
                session_ended: false,
                grants_revoked: vec![id.to_owned()],
            })
        }
        _ => Err(Error::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::{secret_grace, MAX_SECRET_GRACE_SECS};

    #[test]
    fn the_grace_is_capped_at_thirty_days_and_never_negative() {
        assert_eq!(secret_grace(None, 3_600), 3_600);
        assert_eq!(secret_grace(Some(60), 3_600), 60);
        assert_eq!(secret_grace(Some(-5), 3_600), 0);
        assert_eq!(secret_grace(Some(i64::MAX), 3_600), MAX_SECRET_GRACE_SECS);
        assert_eq!(secret_grace(None, 90 * 86_400), MAX_SECRET_GRACE_SECS);
    }
}
