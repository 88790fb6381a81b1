//! The admin API under `/admin`: clients, users, keys, revocations and
//! audit events, behind a bearer admin token compared in constant time. Disabled
//! (404) when no admin token is configured.

use crate::domain::admin::{self, ClientRequest, Via};
use crate::domain::clients::ClientView;
use crate::domain::error::Error;
use crate::domain::keys::{KeyMeta, Retirement};
use crate::domain::revocation_push::PushStatus;
use crate::domain::state::AppState;
use crate::domain::users::{ProfileInput, User};
use crate::http::form::ClientIp;
use crate::store::audit::AuditFilter;
use crate::store::revocation::Revocation;
use crate::support::clock::Reading;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Json;
use gatehouse_common::revocation::RevocationKind;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::schema;

/// The `/admin` routes and their documentation (nested by [`super::routes`]).
pub fn routes(state: AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_clients, create_client))
        .routes(routes!(show_client, delete_client))
        .routes(routes!(rotate_secret))
        .routes(routes!(list_keys))
        .routes(routes!(rotate_keys))
        .routes(routes!(retire_key))
        .routes(routes!(list_revocations, create_revocation))
        .routes(routes!(revocation_status))
        .routes(routes!(list_audit))
        .routes(routes!(list_users, create_user))
        .routes(routes!(update_user, delete_user))
        .routes(routes!(user_sessions))
        .routes(routes!(revoke_session))
        .layer(middleware::from_fn_with_state(state, require_admin))
}

/// Checks the admin token. Failed attempts back off per client address
/// (exponentially, after a few), so the token cannot be guessed online.
async fn require_admin(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    req: Request,
    next: Next,
) -> Result<Response, Error> {
    let Some(expected) = &state.config.admin_token else {
        return Err(Error::NotFound);
    };
    // An IPv6 caller backs off by its /64: rotating addresses within it
    // does not buy fresh guesses.
    let key = ip.map_or_else(
        || "unknown".to_owned(),
        crate::domain::ratelimit::address_key,
    );
    // The request's one clock reading: the backoff's milliseconds here, the
    // handler's seconds through [`AdminNow`].
    let reading = state.clock.now();
    let now_ms = reading.millis();
    if let Err(retry_after) = state.admin_failures.check(&key, now_ms) {
        return Err(Error::RateLimited { retry_after });
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    match presented {
        Some(t) if expected.matches(t) => {
            state.admin_failures.succeeded(&key);
            if has_encoded_control(req.uri().path())
                || req.uri().query().is_some_and(has_encoded_control)
            {
                return Err(Error::InvalidRequest(
                    "the path or query contains a control character".into(),
                ));
            }
            let mut req = req;
            req.extensions_mut().insert(AdminNow(reading));
            Ok(next.run(req).await)
        }
        _ => {
            state.admin_failures.failed(&key, now_ms);
            state.audit_admin_failure(ip, reading.secs()).await?;
            Err(Error::AdminUnauthorized)
        }
    }
}

/// Whether percent-encoded `text` holds a control character (`%00`-`%1F`,
/// `%7F`): no identifier has one, and PostgreSQL refuses NUL in text.
fn has_encoded_control(text: &str) -> bool {
    text.split('%').skip(1).any(|rest| {
        rest.get(..2)
            .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            .is_some_and(|b| b < 0x20 || b == 0x7f)
    })
}

/// Whether a JSON text escapes a control character in a string (`\u0000`-`\u001f`, `\u007f`).
fn has_escaped_control(body: &[u8]) -> bool {
    body.windows(6).any(|w| {
        w.starts_with(b"\\u")
            && std::str::from_utf8(w.get(2..).unwrap_or_default())
                .ok()
                .and_then(|hex| u16::from_str_radix(hex, 16).ok())
                .is_some_and(|c| c < 0x20 || c == 0x7f)
    })
}

/// The request's clock reading, taken once by [`require_admin`] (which
/// needs its milliseconds for the backoff) and handed to the handler.
#[derive(Clone, Copy, Debug)]
pub struct AdminNow(pub Reading);

impl FromRequestParts<AppState> for AdminNow {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        // Outside `require_admin` (never on `/admin`) the handler reads the clock itself.
        Ok(parts
            .extensions
            .get::<Self>()
            .copied()
            .unwrap_or_else(|| Self(state.clock.now())))
    }
}

/// What [`require_admin`] answers on every admin route, named once in each
/// handler's `responses(...)`. A handler that looks a resource up lists its
/// own 404 after this set, which replaces this set's 404 in the document.
/// Documentation only: the refusals themselves are [`Error`]s.
#[derive(utoipa::IntoResponses)]
pub enum AdminRefusals {
    /// No admin token is configured.
    #[response(status = 404, description = "No admin token is configured")]
    Disabled(schema::OAuthError),
    /// No or a wrong token.
    #[response(
        status = 401,
        description = "No or a wrong admin token (`WWW-Authenticate: Bearer`); repeated failures back off"
    )]
    Unauthorized(schema::OAuthError),
    /// Backing off.
    #[response(
        status = 429,
        description = "Too many failed attempts from this address"
    )]
    TooManyFailures(schema::OAuthError),
}

/// What [`AdminJson`] answers for a refused body (documentation only: the
/// refusals themselves are [`Error`]s).
#[derive(utoipa::IntoResponses)]
pub enum JsonBodyRefusals {
    /// A refused field, query or path.
    #[response(
        status = 400,
        description = "invalid_request: a field, the query or the path is refused"
    )]
    InvalidRequest(schema::OAuthError),
    /// Not JSON.
    #[response(status = 415, description = "Not application/json")]
    UnsupportedMediaType(schema::OAuthError),
}

/// A query string that refuses with [`Error`] (RFC 6749 §5.2 body, 400).
pub struct AdminQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for AdminQuery<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| Self(q))
            .map_err(|_| Error::InvalidRequest("invalid query parameters".into()))
    }
}

/// A path parameter that refuses with [`Error`] (RFC 6749 §5.2 body, 400).
pub struct AdminPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for AdminPath<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(p)| Self(p))
            .map_err(|_| Error::InvalidRequest("invalid path parameter".into()))
    }
}

/// A JSON body that refuses with [`Error`] (415 / 413 / 400).
pub struct AdminJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for AdminJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Error> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(Error::UnsupportedMediaType(
                "the body must be application/json",
            ));
        }
        let body = axum::body::to_bytes(req.into_body(), super::MAX_BODY_BYTES)
            .await
            .map_err(|_| Error::PayloadTooLarge)?;
        if has_escaped_control(&body) {
            return Err(Error::InvalidRequest(
                "a JSON string contains a control character".into(),
            ));
        }
        gatehouse_common::json::parse_object(&body).map_err(|_| {
            Error::InvalidRequest("the body is not a JSON object (or repeats a member)".into())
        })?;
        serde_json::from_slice(&body).map(AdminJson).map_err(|_| {
            Error::InvalidRequest("the JSON body does not match the expected fields".into())
        })
    }
}

/// `POST /admin/clients` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateClient {
    /// Name.
    pub name: String,
    /// Space-separated scopes.
    #[serde(default)]
    pub scope: String,
    /// Audiences (default: the configured default audience).
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Grant types (default: client_credentials for confidential clients).
    #[serde(default)]
    #[schema(value_type = Vec<schema::GrantType>)]
    pub grant_types: Vec<String>,
    /// Redirect URIs.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Public client.
    #[serde(default)]
    pub public: bool,
    /// DPoP required.
    #[serde(default)]
    pub dpop_required: bool,
    /// private_key_jwt: the client's public JWK set.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// Audiences the client serves as a resource server.
    #[serde(default)]
    pub serves: Vec<String>,
    /// private_key_jwt: also accept the token endpoint URL as `aud`.
    #[serde(default)]
    pub legacy_assertion_audience: bool,
    /// RFC 9126 §6: authorization requests must be pushed to `/par`.
    #[serde(default)]
    pub require_pushed_authorization_requests: bool,
    /// Where RP-initiated logout may send the user back (exact match).
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
}

impl From<CreateClient> for ClientRequest {
    fn from(b: CreateClient) -> Self {
        Self {
            name: b.name,
            scope: b.scope,
            audiences: b.audiences,
            grant_types: b.grant_types,
            redirect_uris: b.redirect_uris,
            public: b.public,
            dpop_required: b.dpop_required,
            jwks: b.jwks.map(|j| j.to_string()),
            serves: b.serves,
            legacy_assertion_audience: b.legacy_assertion_audience,
            require_pushed_authorization_requests: b.require_pushed_authorization_requests,
            post_logout_redirect_uris: b.post_logout_redirect_uris,
        }
    }
}

#[utoipa::path(
    get,
    path = "/clients",
    tag = "admin",
    summary = "List clients",
    responses(
        (status = 200, description = "Every client, oldest first", body = schema::ClientList),
        AdminRefusals,
    ),
    security(("admin_token" = []))
)]
async fn list_clients(State(state): State<AppState>) -> Result<Json<admin::ClientList>, Error> {
    Ok(Json(admin::list_clients(&state.db).await?))
}

#[utoipa::path(
    post,
    path = "/clients",
    tag = "admin",
    summary = "Register a client; its secret is shown once",
    request_body(content = CreateClient, content_type = "application/json"),
    responses(
        (status = 201, description = "The client and, if confidential, its secret", body = schema::CreatedClient),
        AdminRefusals,
        JsonBodyRefusals,
    ),
    security(("admin_token" = []))
)]
async fn create_client(
    State(state): State<AppState>,
    AdminNow(now): AdminNow,
    AdminJson(body): AdminJson<CreateClient>,
) -> Result<(StatusCode, Json<admin::CreatedClient>), Error> {
    let created = admin::create_client(
        &state.db,
        &state.config.default_audience,
        body.into(),
        Via::AdminApi,
        now.secs(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(
    get,
    path = "/clients/{client_id}",
    tag = "admin",
    summary = "Show a client",
    params(("client_id" = String, Path, description = "The client")),
    responses(
        (status = 200, description = "The client", body = schema::ClientView),
        AdminRefusals,
        (status = 404, description = "No such client (or no admin token configured)", body = schema::OAuthError),
    ),
    security(("admin_token" = []))
)]
async fn show_client(
    State(state): State<AppState>,
    AdminPath(client_id): AdminPath<String>,
) -> Result<Json<ClientView>, Error> {
    Ok(Json(admin::show_client(&state.db, &client_id).await?))
}

#[utoipa::path(
    delete,
    path = "/clients/{client_id}",
    tag = "admin",
    summary = "Delete a client and revoke every token issued to it",
    params(("client_id" = String, Path, description = "The client")),
    responses(
        (status = 200, description = "Deleted", body = schema::Deleted),
        AdminRefusals,
        (status = 404, description = "No such client (or no admin token configured)", body = schema::OAuthError),
    ),
    security(("admin_token" = []))
)]
async fn delete_client(
    State(state): State<AppState>,
    AdminNow(now): AdminNow,
    AdminPath(client_id): AdminPath<String>,
) -> Result<Json<admin::Deleted>, Error> {
    let done = admin::delete_client(
        &state.db,
        &state.config,
        &client_id,
        Via::AdminApi,
        now.secs(),
    )
    .await?;
    Ok(Json(done))
}

/// `POST /admin/clients/{id}/rotate-secret` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RotateQuery {
    /// Grace period for the old secret, seconds (capped at 30 days).
    pub grace: Option<i64>,
}

#[utoipa::path(
    post,
    path = "/clients/{client_id}/rotate-secret",
    tag = "admin",
    summary = "New secret; the old one works for the grace period",
    params(("client_id" = String, Path, description = "The client"), RotateQuery),
    responses(
        (status = 200, description = "The new secret, shown once", body = schema::RotatedSecret),
        AdminRefusals,
        (status = 404, description = "No such client (or no admin token configured)", body = schema::OAuthError),
        (status = 409, description = "A public client has no secret", body = schema::OAuthError),
    ),
    security(("admin_token" = []))
)]
async fn rotate_secret(
    State(state): State<AppState>,
    AdminNow(now): AdminNow,
    AdminPath(client_id): AdminPath<String>,
    AdminQuery(q): AdminQuery<RotateQuery>,
) -> Result<Json<admin::RotatedSecret>, Error> {
    let rotated = admin::rotate_secret(
        &state.db,
        state.config.secret_grace,
        &client_id,
        q.grace,
        Via::AdminApi,
        now.secs(),
    )
    .await?;
    Ok(Json(rotated))
}

#[utoipa::path(
    get,
    path = "/keys",
    tag = "admin",
    summary = "Signing keys and their schedule",
    responses(
        (status = 200, description = "Every key with its state now", body = schema::KeyList),
        AdminRefusals,
    ),
    security(("admin_token" = []))
)]
async fn list_keys(
    State(state): State<AppState>,
    AdminNow(now): AdminNow,
) -> Result<Json<admin::KeyList>, Error> {
    Ok(Json(admin::list_keys(&state.db, now.secs()).await?))
}

/// `POST /admin/keys/rotate` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KeyRotateQuery {
    /// Sign with the new key at once (after a compromise).
    #[serde(default)]
    pub immediate: bool,
}

#[utoipa::path(
    post,
    path = "/keys/rotate",
    tag = "admin",
    summary = "Publish a new key now; it signs after the publish lead (`immediate=true`: at once)",
    params(KeyRotateQuery),
    responses(
        (status = 200, description = "The new key", body = schema::KeyMeta),
        AdminRefusals,
    ),
    security(("admin_token" = []))
)]
async fn rotate_keys(
    State(state): State<AppState>,
    AdminNow(now): AdminNow,
    AdminQuery(q): AdminQuery<KeyRotateQuery>,
) -> Result<Json<KeyMeta>, Error> {
    let meta = admin::rotate_key(
        &state.db,
        &state.kek,
        &state.config,
        q.immediate,
        now.secs(),
    )
    .await?;
    state.reload_keys().await?;
    Ok(Json(meta))
}

/// `POST /admin/keys/{kid}/retire` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KeyRetireQuery {
    /// Also unpublish it now (after a leak): its tokens die.
    #[serde(default)]
    pub now: bool,
}

#[utoipa::path(
    post,
    path = "/keys/{kid}/retire",
    tag = "admin",
    summary = "Retire a key: it never signs again; `now=true` also unpublishes it, so every token it signed dies (after a leak)",
    params(("kid" = String, Path, description = "The key id"), KeyRetireQuery),
    responses(
        (status = 200, description = "What the retirement did", body = schema::Retirement),
        AdminRefusals,
        (status = 404, description = "No such key (or no admin token configured)", body = schema::OAuthError),
    ),
    security(("admin_token" = []))
)]
/// Retires a key (`keys retire KID [--now]`); this server's ring is reloaded
/// at once, so it never signs with the key again and stops publishing it.
async fn retire_key(
    State(state): State<AppState>,
    AdminNow(now): AdminNow,
    AdminPath(kid): AdminPath<String>,
    AdminQuery(q): AdminQuery<KeyRetireQuery>,
) -> Result<Json<Retirement>, Error> {
    let done = admin::retire_key(
        &state.db,
        &state.kek,
        &state.config,
        &kid,
        q.now,
        now.secs(),
    )
    .await?;
    state.reload_keys().await?;
    Ok(Json(done))
}

#[utoipa::path(
    get,
    path = "/revocations",
    tag = "admin",
    summary = "Revocations in force",
    responses(
        (status = 200, description = "The revocations", body = schema::RevocationList),
        AdminRefusals,
    ),
    security(("admin_token" = []))
)]
async fn list_revocations(
    State(state): State<AppState>,
    AdminNow(now): AdminNow,
) -> Result<Json<admin::RevocationList>, Error> {
    Ok(Json(admin::list_revocations(&state.db, now.secs()).await?))
}

#[utoipa::path(
    get,
    path = "/revocations/status",
    tag = "admin",
    summary = "The revocation pusher: latest and delivered versions, pending outbox rows, last error",
    responses(
        (status = 200, description = "The pusher's state", body = schema::PushStatus),
        AdminRefusals,
    ),
    security(("admin_token" = []))
)]
async fn revocation_status(
    State(state): State<AppState>,
    AdminNow(now): AdminNow,
) -> Result<Json<PushStatus>, Error> {
    Ok(Json(
        admin::revocation_status(&state.db, &state.config, now.secs()).await?,
    ))
}

/// `POST /admin/revocations` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRevocation {
    /// `jti`, `sid`, `sub` or `client_id`.
    #[schema(value_type = schema::RevocationKind)]
    pub kind: String,
    /// The identifier.
    pub value: String,
}

#[utoipa::path(
    post,
    path = "/revocations",
    tag = "admin",
    summary = "Revoke by jti, sid, sub or client_id",
    request_body(content = CreateRevocation, content_type = "application/json"),
    responses(
        (status = 201, description = "The revocation", body = schema::Revocation),
        AdminRefusals,
        JsonBodyRefusals,
    ),
    security(("admin_token" = []))
)]
async fn create_revocation(
    State(state): State<AppState>,
    AdminNow(now): AdminNow,
    AdminJson(body): AdminJson<CreateRevocation>,
) -> Result<(StatusCode, Json<Revocation>), Error> {
    let kind = RevocationKind::from_name(&body.kind)
        .ok_or_else(|| Error::InvalidRequest("kind must be jti, sid, sub or client_id".into()))?;
    let rev = admin::revoke(
        &state.db,
        &state.config,
        kind,
        &body.value,
        Via::AdminApi,
        now.secs(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(rev)))
}

/// `GET /admin/audit` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// How many (default 100, at most 10000).
    pub limit: Option<i64>,
    /// Only this client's.
    pub client_id: Option<String>,
    /// Only this kind (`login_failed`, `token_issued`, …).
    pub kind: Option<String>,
    /// Only this subject's.
    pub subject: Option<String>,
    /// Only at or after this time (Unix seconds).
    pub since: Option<i64>,
    /// Only at or before this time (Unix seconds).
    pub until: Option<i64>,
    /// Only this request's (its `Gatehouse-Request-Id`).
    pub request_id: Option<String>,
    /// Only this token id's (`jti`, as the edge's log line names it).
    pub jti: Option<String>,
}

impl AuditQuery {
    /// The domain filter.
    fn filter(self) -> AuditFilter {
        AuditFilter {
            kind: self.kind,
            client_id: self.client_id,
            subject: self.subject,
            since: self.since,
            until: self.until,
            request_id: self.request_id,
            jti: self.jti,
        }
    }
}

#[utoipa::path(
    get,
    path = "/audit",
    tag = "admin",
    summary = "Audit events, newest first",
    description = "Every filter given must match: kind, client, subject, time range (Unix seconds, inclusive), request id and token id (`jti`).",
    params(AuditQuery),
    responses(
        (status = 200, description = "The events", body = schema::AuditList),
        (status = 400, description = "invalid_request: a field, the query or the path is refused", body = schema::OAuthError),
        AdminRefusals,
    ),
    security(("admin_token" = []))
)]
async fn list_audit(
    State(state): State<AppState>,
    AdminQuery(q): AdminQuery<AuditQuery>,
) -> Result<Json<admin::AuditList>, Error> {
    let limit = q.limit.unwrap_or(100);
    let events = admin::list_audit(&state.db, limit, &q.filter()).await?;
    Ok(Json(events))
}

/// `POST /admin/users` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Login name (OIDC `preferred_username`): 1-64 characters, no spaces.
    pub username: String,
    /// Password: 8-1024 characters (stored as an argon2id hash only).
    pub password: String,
    /// Full name (OIDC `name`): 1-256 characters, no control characters.
    #[serde(default)]
    pub name: Option<String>,
    /// Email address (OIDC `email`), at most 254 characters.
    #[serde(default)]
    pub email: Option<String>,
    /// Whether the email address is verified (needs `email`).
    #[serde(default)]
    pub email_verified: bool,
}

/// `PATCH /admin/users/{username}` body: members given change (an empty
/// text clears `name` or `email`), others stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    /// Full name (OIDC `name`); `""` clears it.
    #[serde(default)]
    pub name: Option<String>,
    /// Email address (OIDC `email`); `""` clears it. A new address is
    /// unverified unless `email_verified` comes with it.
    #[serde(default)]
    pub email: Option<String>,
    /// Whether the email address is verified.
    #[serde(default)]
    pub email_verified: Option<bool>,
}

#[utoipa::path(
    get,
    path = "/users",
    tag = "admin",
    summary = "List users (never their password hashes)",
    responses(
        (status = 200, description = "Every user, oldest first", body = schema::UserList),
        (status = 404, description = "No admin token is configured", body = schema::OAuthError),
        (status = 401, description = "No or a wrong admin token (`WWW-Authenticate: Bearer`); repeated failures back off", body = schema::OAuthError),
        (status = 429, description = "Too many failed attempts from this address", body = schema::OAuthError),
    ),
    security(("admin_token" = []))
)]
async fn list_users(State(state): State<AppState>) -> Result<Json<admin::UserList>, Error> {
    Ok(Json(admin::list_users(&state.db).await?))
}

#[utoipa::path(
    post,
    path = "/users",
    tag = "admin",
    summary = "Create a user who logs in at /authorize, with their OpenID Connect profile",
    request_body(content = CreateUser, content_type = "application/json"),
    responses(
        (status = 201, description = "The user", body = schema::User),
        (status = 400, description = "invalid_request: a field is refused", body = schema::OAuthError),
        (status = 404, description = "No admin token is configured", body = schema::OAuthError),
        (status = 409, description = "The username is taken", body = schema::OAuthError),
        (status = 415, description = "Not application/json", body = schema::OAuthError),
        (status = 401, description = "No or a wrong admin token (`WWW-Authenticate: Bearer`); repeated failures back off", body = schema::OAuthError),
        (status = 429, description = "Too many failed attempts from this address", body = schema::OAuthError),
    ),
    security(("admin_token" = []))
)]
async fn create_user(
    State(state): State<AppState>,
    AdminNow(now): AdminNow,
    AdminJson(body): AdminJson<CreateUser>,
) -> Result<(StatusCode, Json<User>), Error> {
    let password = crate::support::secret::Password::new(body.password);
    let profile = ProfileInput {
        name: body.name,
        email: body.email,
        email_verified: Some(body.email_verified),
    };
    let user = admin::create_user_with_profile(
        &state.db,
        &body.username,
        &password,
        &profile,
        Via::AdminApi,
        now.secs(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

#[utoipa::path(
    patch,
    path = "/users/{username}",
    tag = "admin",
    summary = "Change a user's profile (name, email, email_verified); updated_at becomes now if anything changed",
    params(("username" = String, Path, description = "The login name")),
    request_body(content = UpdateUser, content_type = "application/json"),
    responses(
        (status = 200, description = "The user as changed", body = schema::User),
        (status = 400, description = "invalid_request: a field is refused", body = schema::OAuthError),
        (status = 404, description = "No such user (or no admin token configured)", body = schema::OAuthError),
        (status = 415, description = "Not application/json", body = schema::OAuthError),
        (status = 401, description = "No or a wrong admin token (`WWW-Authenticate: Bearer`); repeated failures back off", body = schema::OAuthError),
        (status = 429, description = "Too many failed attempts from this address", body = schema::OAuthError),
    ),
    security(("admin_token" = []))
)]
async fn update_user(
    State(state): State<AppState>,
    AdminNow(now): AdminNow,
    AdminPath(username): AdminPath<String>,
    AdminJson(body): AdminJson<UpdateUser>,
) -> Result<Json<User>, Error> {
    let profile = ProfileInput {
        name: body.name,
        email: body.email,
        email_verified: body.email_verified,
    };
    let user =
        admin::update_user(&state.db, &username, &profile, Via::AdminApi, now.secs()).await?;
    Ok(Json(user))
}

#[utoipa::path(
    delete,
    path = "/users/{username}",
    tag = "admin",
    summary = "Delete a user, end their sessions and grants and revoke their tokens",
    params(("username" = String, Path, description = "The login name")),
    responses(
        (status = 200, description = "Deleted", body = schema::DeletedUser),
        (status = 404, description = "No such user (or no admin token configured)", body = schema::OAuthError),
        (status = 401, description = "No or a wrong admin token (`WWW-Authenticate: Bearer`); repeated failures back off", body = schema::OAuthError),
        (status = 429, description = "Too many failed attempts from this address", body = schema::OAuthError),
    ),
    security(("admin_token" = []))
)]
async fn delete_user(
    State(state): State<AppState>,
    AdminNow(now): AdminNow,
    AdminPath(username): AdminPath<String>,
) -> Result<Json<admin::DeletedUser>, Error> {
    let done = admin::delete_user(
        &state.db,
        &state.config,
        &username,
        Via::AdminApi,
        now.secs(),
    )
    .await?;
    Ok(Json(done))
}

#[utoipa::path(
    get,
    path = "/users/{username}/sessions",
    tag = "admin",
    summary = "A user's live browser sessions and grants (offline ones included)",
    params(("username" = String, Path, description = "The user's login name")),
    responses(
        (status = 200, description = "The sessions and grants", body = schema::UserSessions),
        AdminRefusals,
        (status = 404, description = "No such user (or no admin token configured)", body = schema::OAuthError),
    ),
    security(("admin_token" = []))
)]
async fn user_sessions(
    State(state): State<AppState>,
    AdminNow(now): AdminNow,
    AdminPath(username): AdminPath<String>,
) -> Result<Json<admin::UserSessions>, Error> {
    Ok(Json(
        admin::user_sessions(&state.db, &username, now.secs()).await?,
    ))
}

#[utoipa::path(
    delete,
    path = "/users/{username}/sessions/{sid}",
    tag = "admin",
    summary = "End one of a user's browser sessions (and its online grants) or revoke one grant",
    description = "`sid` is a session id (the session ends and its online grants are revoked; \
                   offline grants stay) or a grant id (that grant is revoked, offline or not). \
                   Only the user's own sessions and grants are found.",
    params(
        ("username" = String, Path, description = "The user's login name"),
        ("sid" = String, Path, description = "A session id or a grant id of that user"),
    ),
    responses(
        (status = 200, description = "Ended", body = schema::RevokedSession),
        AdminRefusals,
        (status = 404, description = "No such user, or no such session or grant of theirs (or no admin token configured)", body = schema::OAuthError),
    ),
    security(("admin_token" = []))
)]
async fn revoke_session(
    State(state): State<AppState>,
    AdminNow(now): AdminNow,
    AdminPath((username, sid)): AdminPath<(String, String)>,
) -> Result<Json<admin::RevokedSession>, Error> {
    Ok(Json(
        admin::revoke_session(
            &state.db,
            &state.config,
            &username,
            &sid,
            Via::AdminApi,
            now.secs(),
        )
        .await?,
    ))
}
