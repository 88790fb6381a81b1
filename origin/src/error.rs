//! The origin's one error type and its one HTTP rendering.
//!
//! OAuth errors use the RFC 6749 §5.2 body `{"error", "error_description"}`
//! with the status the RFC calls for. Internal errors are logged once, here,
//! and reach the client only as `server_error` with a generic message.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::borrow::Cow;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `invalid_request` (400): malformed, missing or repeated parameters.
    #[error("invalid_request: {0}")]
    InvalidRequest(Cow<'static, str>),
    /// `invalid_client` (401): unknown client, wrong secret, unsupported method.
    #[error("invalid_client")]
    InvalidClient,
    /// `invalid_grant` (400).
    #[error("invalid_grant: {0}")]
    InvalidGrant(&'static str),
    /// `unauthorized_client` (400): the client may not use this grant.
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(&'static str),
    /// `unsupported_grant_type` (400).
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    /// `invalid_scope` (400).
    #[error("invalid_scope: {0}")]
    InvalidScope(&'static str),
    /// `invalid_target` (400, RFC 8707): the audience is not allowed.
    #[error("invalid_target: {0}")]
    InvalidTarget(&'static str),
    /// `invalid_dpop_proof` (400, RFC 9449 §5).
    #[error("invalid_dpop_proof: {0}")]
    InvalidDpopProof(Cow<'static, str>),
    /// `use_dpop_nonce` (400, RFC 9449 §8), with the nonce to use.
    #[error("use_dpop_nonce")]
    UseDpopNonce {
        /// The nonce for the `DPoP-Nonce` header.
        nonce: String,
    },
    /// 415: the body is not `application/x-www-form-urlencoded` (or JSON where expected).
    #[error("unsupported media type")]
    UnsupportedMediaType(&'static str),
    /// 413: the body is larger than allowed.
    #[error("payload too large")]
    PayloadTooLarge,
    /// 431: the request headers are larger than allowed.
    #[error("request headers too large")]
    HeadersTooLarge,
    /// 408: the request (its body) did not arrive in time.
    #[error("request timeout")]
    RequestTimeout,
    /// 429 with `Retry-After`.
    #[error("rate limited")]
    RateLimited {
        /// Seconds to wait.
        retry_after: u64,
    },
    /// 401 on the admin API.
    #[error("admin authentication required")]
    AdminUnauthorized,
    /// 404 for admin resources.
    #[error("not found")]
    NotFound,
    /// 409: the admin request conflicts with the current state.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// `/authorize` with no trustworthy redirect URI (RFC 6749 §4.1.2.1:
    /// unknown client, bad redirect_uri): an HTML error page, never a redirect.
    #[error("authorization request refused: {0}")]
    AuthorizePage(&'static str),
    /// `/authorize` errors reported to the client's (verified) redirect URI:
    /// `error`, `error_description`, `state` and `iss` (RFC 9207) as query parameters.
    #[error("authorization error {code}")]
    AuthorizeRedirect {
        /// The full redirect target (already carrying the parameters).
        location: String,
        /// The RFC 6749 §4.1.2.1 code (for metrics).
        code: &'static str,
    },
    /// 500: logged, never shown.
    #[error("internal error: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// An internal error from any source.
    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(e))
    }

    /// The status and RFC 6749 `error` code.
    #[must_use]
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::InvalidRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            Self::InvalidClient => (StatusCode::UNAUTHORIZED, "invalid_client"),
            Self::InvalidGrant(_) => (StatusCode::BAD_REQUEST, "invalid_grant"),
            Self::UnauthorizedClient(_) => (StatusCode::BAD_REQUEST, "unauthorized_client"),
            Self::UnsupportedGrantType => (StatusCode::BAD_REQUEST, "unsupported_grant_type"),
            Self::InvalidScope(_) => (StatusCode::BAD_REQUEST, "invalid_scope"),
            Self::InvalidTarget(_) => (StatusCode::BAD_REQUEST, "invalid_target"),
            Self::InvalidDpopProof(_) => (StatusCode::BAD_REQUEST, "invalid_dpop_proof"),
            Self::UseDpopNonce { .. } => (StatusCode::BAD_REQUEST, "use_dpop_nonce"),
            Self::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "invalid_request")
            }
            Self::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "invalid_request"),
            Self::HeadersTooLarge => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "invalid_request",
            ),
            Self::RequestTimeout => (StatusCode::REQUEST_TIMEOUT, "invalid_request"),
            // RFC 6749 §4.1.2.1's registered code for a temporary refusal
            // (`slow_down` is the device flow's polling error).
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "temporarily_unavailable"),
            Self::AdminUnauthorized => (StatusCode::UNAUTHORIZED, "invalid_token"),
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::AuthorizePage(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            Self::AuthorizeRedirect { code, .. } => (StatusCode::SEE_OTHER, code),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
        }
    }

    fn description(&self) -> Cow<'static, str> {
        match self {
            Self::InvalidRequest(d) | Self::InvalidDpopProof(d) => d.clone(),
            Self::InvalidClient => "client authentication failed".into(),
            Self::InvalidGrant(d)
            | Self::UnauthorizedClient(d)
            | Self::InvalidScope(d)
            | Self::InvalidTarget(d)
            | Self::UnsupportedMediaType(d)
            | Self::Conflict(d)
            | Self::AuthorizePage(d) => (*d).into(),
            Self::AuthorizeRedirect { .. } => "see the redirect".into(),
            Self::UnsupportedGrantType => "the grant type is not supported".into(),
            Self::UseDpopNonce { .. } => "a DPoP nonce from the server is required".into(),
            Self::PayloadTooLarge => "the request body is too large".into(),
            Self::HeadersTooLarge => "the request headers are too large".into(),
            Self::RequestTimeout => "the request did not arrive in time".into(),
            Self::RateLimited { .. } => "rate limit exceeded".into(),
            Self::AdminUnauthorized => "a valid admin token is required".into(),
            Self::NotFound => "not found".into(),
            Self::Internal(_) => "the server could not complete the request".into(),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let Self::Internal(e) = &self {
            tracing::error!(error = %e, "internal error");
        } else {
            tracing::debug!(error = code, status = status.as_u16(), "request refused");
        }
        match &self {
            Self::AuthorizePage(reason) => {
                let mut resp = (
                    status,
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    crate::http::authorize::error_page(reason),
                )
                    .into_response();
                resp.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                resp.extensions_mut().insert(ErrorKind(code));
                return resp;
            }
            Self::AuthorizeRedirect { location, .. } => {
                let mut resp = status.into_response();
                if let Ok(v) = HeaderValue::from_str(location) {
                    resp.headers_mut().insert(header::LOCATION, v);
                }
                resp.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                resp.extensions_mut().insert(ErrorKind(code));
                return resp;
            }
            _ => {}
        }
        let body = serde_json::json!({"error": code, "error_description": self.description()});
        let mut resp = (status, axum::Json(body)).into_response();
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match &self {
            Self::InvalidClient => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"gatehouse\", charset=\"UTF-8\""),
                );
            }
            Self::AdminUnauthorized => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(
                        "Bearer realm=\"gatehouse-admin\", error=\"invalid_token\"",
                    ),
                );
            }
            Self::UseDpopNonce { nonce } => {
                if let Ok(v) = HeaderValue::from_str(nonce) {
                    h.insert("dpop-nonce", v);
                }
            }
            Self::RateLimited { retry_after } => {
                h.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            _ => {}
        }
        if let Some(code) = metrics_label(&self) {
            resp.extensions_mut().insert(ErrorKind(code));
        }
        resp
    }
}

/// The error code of a refused request, left in response extensions for metrics.
#[derive(Clone, Copy, Debug)]
pub struct ErrorKind(pub &'static str);

fn metrics_label(e: &Error) -> Option<&'static str> {
    Some(e.status_and_code().1)
}

impl From<crate::db::DbError> for Error {
    fn from(e: crate::db::DbError) -> Self {
        Self::internal(e)
    }
}
impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Self::internal(e)
    }
}
impl From<crate::keys::KeyStoreError> for Error {
    fn from(e: crate::keys::KeyStoreError) -> Self {
        Self::internal(e)
    }
}
impl From<crate::secret::RandomError> for Error {
    fn from(e: crate::secret::RandomError) -> Self {
        Self::internal(e)
    }
}
impl From<crate::crypto::CryptoError> for Error {
    fn from(e: crate::crypto::CryptoError) -> Self {
        Self::internal(e)
    }
}
