//! The domain's one error type: what an operation can fail with, as
//! variants named after RFC 6749 / 7009 / 9449 error codes. It knows nothing
//! of HTTP: its one rendering (status, RFC 6749 §5.2 body, headers, the
//! `/authorize` error page) is in [`crate::http::error`].

use std::borrow::Cow;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `invalid_request` (400): malformed, missing or repeated parameters.
    #[error("invalid_request: {0}")]
    InvalidRequest(Cow<'static, str>),
    /// `invalid_request` (400): an operator's client registration names a
    /// field the rules refuse.
    #[error("invalid_request: {field}: {reason}")]
    InvalidClientField {
        /// The field.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
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
    /// An authorization request refused where the answer is JSON, not a
    /// redirect: at the pushed authorization request endpoint (RFC 9126
    /// §2.3), with the code `/authorize` would have redirected with.
    #[error("authorization request refused: {code}")]
    AuthorizationRequest {
        /// The RFC 6749 §4.1.2.1 (or RFC 9101 §6.2) code.
        code: &'static str,
        /// The `error_description`.
        description: Cow<'static, str>,
    },
    /// A token issued on a cached client record was not written because a
    /// client registration changed since the record was read
    /// ([`crate::domain::client_cache`]): the token endpoint authenticates
    /// the client again from the database and retries once, so callers do
    /// not see it; were it to escape, 503 `temporarily_unavailable`.
    #[error("a client registration changed during the request")]
    ClientChanged,
    /// 500: logged, never shown.
    #[error("internal error: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// An internal error from any source.
    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(e))
    }

    /// The RFC 6749 `error` code (or this server's own for admin refusals).
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_)
            | Self::UnsupportedMediaType(_)
            | Self::PayloadTooLarge
            | Self::HeadersTooLarge
            | Self::RequestTimeout
            | Self::InvalidClientField { .. }
            | Self::AuthorizePage(_) => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::UnauthorizedClient(_) => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope(_) => "invalid_scope",
            Self::InvalidTarget(_) => "invalid_target",
            Self::InvalidDpopProof(_) => "invalid_dpop_proof",
            Self::UseDpopNonce { .. } => "use_dpop_nonce",
            // RFC 6749 §4.1.2.1's registered code for a temporary refusal
            // (`slow_down` is the device flow's polling error).
            Self::RateLimited { .. } | Self::ClientChanged => "temporarily_unavailable",
            Self::AdminUnauthorized => "invalid_token",
            Self::NotFound => "not_found",
            Self::Conflict(_) => "conflict",
            Self::AuthorizeRedirect { code, .. } | Self::AuthorizationRequest { code, .. } => code,
            Self::Internal(_) => "server_error",
        }
    }

    /// The `error_description` shown to the client (never an internal detail).
    #[must_use]
    pub fn description(&self) -> Cow<'static, str> {
        match self {
            Self::InvalidRequest(d)
            | Self::InvalidDpopProof(d)
            | Self::AuthorizationRequest { description: d, .. } => d.clone(),
            Self::InvalidClientField { field, reason } => format!("{field}: {reason}").into(),
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
            Self::ClientChanged => "the client's registration changed; try again".into(),
            Self::AdminUnauthorized => "a valid admin token is required".into(),
            Self::NotFound => "not found".into(),
            Self::Internal(_) => "the server could not complete the request".into(),
        }
    }
}

/// A storage failure reaching a request is the server's (500, logged once,
/// a generic `server_error` for the client): the domain turns the store's
/// expected outcomes (no such row, a taken name, a lost race) into its own
/// variants where it asks for them, so whatever arrives here is unexpected
/// — but for a write refused because a client changed, which the token
/// endpoint answers by authenticating again ([`Error::ClientChanged`]).
impl From<crate::store::StoreError> for Error {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::ClientChanged => Self::ClientChanged,
            e => Self::internal(e),
        }
    }
}
impl From<crate::domain::keys::KeyStoreError> for Error {
    fn from(e: crate::domain::keys::KeyStoreError) -> Self {
        Self::internal(e)
    }
}
impl From<crate::support::secret::RandomError> for Error {
    fn from(e: crate::support::secret::RandomError) -> Self {
        Self::internal(e)
    }
}
impl From<crate::support::crypto::CryptoError> for Error {
    fn from(e: crate::support::crypto::CryptoError) -> Self {
        Self::internal(e)
    }
}
