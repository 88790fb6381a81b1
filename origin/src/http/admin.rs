//! The admin API under `/admin`: clients, keys, revocations and audit
//! events, behind a bearer admin token compared in constant time. Disabled
//! (404) when no admin token is configured.

use crate::audit::{self, AuditEvent};
use crate::clients::{self, NewClient};
use crate::error::Error;
use crate::http::form::ClientIp;
use crate::introspect::revoke_identifier;
use crate::state::{now, AppState};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use gatehouse_common::revocation::RevocationKind;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

/// The `/admin` routes (nested by [`super::router`]).
pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/clients", get(list_clients).post(create_client))
        .route(
            "/clients/{client_id}",
            get(show_client).delete(delete_client),
        )
        .route("/clients/{client_id}/rotate-secret", post(rotate_secret))
        .route("/keys", get(list_keys))
        .route("/keys/rotate", post(rotate_keys))
        .route("/keys/{kid}/retire", post(retire_key))
        .route(
            "/revocations",
            get(list_revocations).post(create_revocation),
        )
        .route("/revocations/status", get(revocation_status))
        .route("/audit", get(list_audit))
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
    let key = ip.map_or_else(|| "unknown".to_owned(), |i| i.to_string());
    let now_ms = crate::state::now_ms();
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
            Ok(next.run(req).await)
        }
        _ => {
            state.admin_failures.failed(&key, now_ms);
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
#[derive(Debug, Deserialize)]
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
    pub jwks: Option<serde_json::Value>,
    /// Audiences the client serves as a resource server.
    #[serde(default)]
    pub serves: Vec<String>,
    /// private_key_jwt: also accept the token endpoint URL as `aud`.
    #[serde(default)]
    pub legacy_assertion_audience: bool,
}

impl CreateClient {
    /// The registration request, with defaults applied.
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
                vec!["client_credentials".into()]
            } else {
                self.grant_types
            },
            redirect_uris: self.redirect_uris,
            dpop_required: self.dpop_required,
            jwks: self.jwks.map(|j| j.to_string()),
            serves: self.serves,
            legacy_assertion_audience: self.legacy_assertion_audience,
        }
    }
}

fn client_error(e: clients::ClientError) -> Error {
    match e {
        clients::ClientError::Invalid { field, reason } => {
            Error::InvalidRequest(format!("{field}: {reason}").into())
        }
        clients::ClientError::Db(e) => e.into(),
        clients::ClientError::Random(e) => e.into(),
    }
}

async fn list_clients(State(state): State<AppState>) -> Result<Json<Value>, Error> {
    let list: Vec<_> = clients::list(&state.db)
        .await?
        .iter()
        .map(clients::Client::view)
        .collect();
    Ok(Json(json!({ "clients": list })))
}

async fn create_client(
    State(state): State<AppState>,
    AdminJson(body): AdminJson<CreateClient>,
) -> Result<(axum::http::StatusCode, Json<Value>), Error> {
    let now = now();
    let new = body.into_new(&state.config.default_audience);
    let (client, secret) = clients::create(&state.db, &new, now)
        .await
        .map_err(client_error)?;
    audit::record(
        &state.db.pool,
        &AuditEvent::new("client_created", now)
            .client(&client.client_id)
            .detail("admin api"),
    )
    .await?;
    let mut out = serde_json::to_value(client.view()).map_err(Error::internal)?;
    if let (Some(s), Some(m)) = (secret, out.as_object_mut()) {
        m.insert("client_secret".into(), s.expose().into());
    }
    Ok((axum::http::StatusCode::CREATED, Json(out)))
}

async fn show_client(
    State(state): State<AppState>,
    AdminPath(client_id): AdminPath<String>,
) -> Result<Json<Value>, Error> {
    let c = clients::get(&state.db, &client_id)
        .await?
        .ok_or(Error::NotFound)?;
    Ok(Json(
        serde_json::to_value(c.view()).map_err(Error::internal)?,
    ))
}

async fn delete_client(
    State(state): State<AppState>,
    AdminPath(client_id): AdminPath<String>,
) -> Result<Json<Value>, Error> {
    let now = now();
    let span = crate::revocation::cover_span(&state.db, &state.config).await?;
    if !clients::delete(
        &state.db,
        &client_id,
        span,
        "client deleted (admin api)",
        now,
    )
    .await?
    {
        return Err(Error::NotFound);
    }
    audit::record(
        &state.db.pool,
        &AuditEvent::new("client_deleted", now)
            .client(&client_id)
            .detail("admin api"),
    )
    .await?;
    Ok(Json(json!({ "deleted": client_id })))
}

/// `POST /admin/clients/{id}/rotate-secret` query.
#[derive(Debug, Deserialize)]
pub struct RotateQuery {
    /// Grace period for the old secret, seconds.
    pub grace: Option<i64>,
}

async fn rotate_secret(
    State(state): State<AppState>,
    AdminPath(client_id): AdminPath<String>,
    AdminQuery(q): AdminQuery<RotateQuery>,
) -> Result<Json<Value>, Error> {
    let now = now();
    let grace = q
        .grace
        .unwrap_or(state.config.secret_grace)
        .clamp(0, 30 * 86_400);
    let secret = clients::rotate_secret(&state.db, &client_id, grace, now)
        .await
        .map_err(|e| match e {
            clients::ClientError::Invalid { reason, .. } => Error::Conflict(reason),
            other => client_error(other),
        })?
        .ok_or(Error::NotFound)?;
    audit::record(
        &state.db.pool,
        &AuditEvent::new("client_secret_rotated", now)
            .client(&client_id)
            .detail("admin api"),
    )
    .await?;
    Ok(Json(json!({
        "client_id": client_id,
        "client_secret": secret.expose(),
        "previous_secret_expires_at": now.0.saturating_add(grace),
    })))
}

async fn list_keys(State(state): State<AppState>) -> Result<Json<Value>, Error> {
    let now = now();
    Ok(Json(
        json!({ "keys": crate::keys::describe(&state.db, now).await? }),
    ))
}

/// `POST /admin/keys/rotate` query.
#[derive(Debug, Deserialize)]
pub struct KeyRotateQuery {
    /// Sign with the new key at once (after a compromise).
    #[serde(default)]
    pub immediate: bool,
}

async fn rotate_keys(
    State(state): State<AppState>,
    AdminQuery(q): AdminQuery<KeyRotateQuery>,
) -> Result<Json<Value>, Error> {
    let now = now();
    let c = &state.config;
    let meta = crate::keys::rotate(
        &state.db,
        &state.kek,
        c.signing_alg,
        &c.key_schedule,
        q.immediate,
        now,
    )
    .await?;
    state.reload_keys().await?;
    audit::record(
        &state.db.pool,
        &AuditEvent::new("key_rotated", now)
            .detail(format!("kid={} active_at={}", meta.kid, meta.active_at)),
    )
    .await?;
    Ok(Json(serde_json::to_value(meta).map_err(Error::internal)?))
}

/// `POST /admin/keys/{kid}/retire` query.
#[derive(Debug, Deserialize)]
pub struct KeyRetireQuery {
    /// Also unpublish it now (after a leak): its tokens die.
    #[serde(default)]
    pub now: bool,
}

/// Retires a key (`keys retire KID [--now]`); this server's ring is reloaded
/// at once, so it never signs with the key again and stops publishing it.
async fn retire_key(
    State(state): State<AppState>,
    AdminPath(kid): AdminPath<String>,
    AdminQuery(q): AdminQuery<KeyRetireQuery>,
) -> Result<Json<Value>, Error> {
    let now = now();
    let done = crate::keys::retire(
        &state.db,
        &state.kek,
        state.config.signing_alg,
        &kid,
        q.now,
        now,
    )
    .await?
    .ok_or(Error::NotFound)?;
    state.reload_keys().await?;
    audit::record(&state.db.pool, &done.audit_event(now)).await?;
    tracing::warn!(kid = %done.kid, removed = done.removed_at.is_some(), "{}", done.warning);
    Ok(Json(serde_json::to_value(done).map_err(Error::internal)?))
}

async fn list_revocations(State(state): State<AppState>) -> Result<Json<Value>, Error> {
    let now = now();
    Ok(Json(
        json!({ "revocations": crate::revocation::list(&state.db, now).await? }),
    ))
}

async fn revocation_status(State(state): State<AppState>) -> Result<Json<Value>, Error> {
    let c = &state.config;
    let span = crate::revocation::cover_span(&state.db, c).await?;
    let status = crate::revocation_push::status(&state.db, span, now()).await?;
    Ok(Json(serde_json::to_value(status).map_err(Error::internal)?))
}

/// `POST /admin/revocations` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRevocation {
    /// `jti`, `sid`, `sub` or `client_id`.
    pub kind: String,
    /// The identifier.
    pub value: String,
}

async fn create_revocation(
    State(state): State<AppState>,
    AdminJson(body): AdminJson<CreateRevocation>,
) -> Result<(axum::http::StatusCode, Json<Value>), Error> {
    let now = now();
    let kind = RevocationKind::from_name(&body.kind)
        .ok_or_else(|| Error::InvalidRequest("kind must be jti, sid, sub or client_id".into()))?;
    let span = crate::revocation::cover_span(&state.db, &state.config).await?;
    let rev = revoke_identifier(
        &state.db,
        span,
        kind,
        &body.value,
        crate::revocation::REASON_ADMIN_API,
        now,
    )
    .await?;
    Ok((
        axum::http::StatusCode::CREATED,
        Json(serde_json::to_value(rev).map_err(Error::internal)?),
    ))
}

/// `GET /admin/audit` query.
#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    /// How many (default 100, at most 10000).
    pub limit: Option<i64>,
    /// Only this client's.
    pub client_id: Option<String>,
}

async fn list_audit(
    State(state): State<AppState>,
    AdminQuery(q): AdminQuery<AuditQuery>,
) -> Result<Json<Value>, Error> {
    let events = audit::list(
        &state.db,
        q.limit.unwrap_or(100).clamp(1, 10_000),
        q.client_id.as_deref(),
    )
    .await?;
    Ok(Json(json!({ "events": events })))
}
