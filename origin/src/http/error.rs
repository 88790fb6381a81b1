//! The one HTTP rendering of the domain [`Error`]: OAuth errors use the
//! RFC 6749 §5.2 body `{"error", "error_description"}` (plus the
//! `request_id` of the request, `support::request`) with the status the
//! RFC calls for (RFC 7009 and RFC 9449 reuse it); `/authorize` refusals are
//! an HTML page or a redirect. Internal errors are logged once, here, and
//! reach the client only as `server_error` with a generic message.

use crate::domain::error::Error;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// The status and RFC 6749 `error` code of `e`.
#[must_use]
pub fn status_and_code(e: &Error) -> (StatusCode, &'static str) {
    let status = match e {
        Error::InvalidRequest(_)
        | Error::InvalidClientField { .. }
        | Error::InvalidGrant(_)
        | Error::UnauthorizedClient(_)
        | Error::UnsupportedGrantType
        | Error::InvalidScope(_)
        | Error::InvalidTarget(_)
        | Error::InvalidDpopProof(_)
        | Error::UseDpopNonce { .. }
        | Error::AuthorizationRequest { .. }
        | Error::AuthorizePage(_) => StatusCode::BAD_REQUEST,
        Error::InvalidClient | Error::AdminUnauthorized => StatusCode::UNAUTHORIZED,
        Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Error::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Error::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        Error::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::NotFound => StatusCode::NOT_FOUND,
        Error::Conflict(_) => StatusCode::CONFLICT,
        Error::AuthorizeRedirect { .. } => StatusCode::SEE_OTHER,
        Error::ClientChanged => StatusCode::SERVICE_UNAVAILABLE,
        Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, e.code())
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code) = status_and_code(&self);
        if let Error::Internal(e) = &self {
            tracing::error!(error = %e, "internal error");
        } else {
            tracing::debug!(error = code, status = status.as_u16(), "request refused");
        }
        match &self {
            Error::AuthorizePage(reason) => {
                let mut resp = (
                    status,
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    super::pages::error(reason),
                )
                    .into_response();
                resp.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                resp.extensions_mut().insert(ErrorKind(code));
                return resp;
            }
            Error::AuthorizeRedirect { location, .. } => {
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
        let mut body = serde_json::json!({"error": code, "error_description": self.description()});
        // An extension member (RFC 6749 §5.2 names three members without
        // forbidding others; §8.2): the id an operator searches the log and
        // the audit rows by.
        if let (Some(id), Some(m)) = (
            crate::support::request::current_request_id(),
            body.as_object_mut(),
        ) {
            m.insert("request_id".into(), id.into());
        }
        let mut resp = (status, axum::Json(body)).into_response();
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match &self {
            Error::InvalidClient => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"gatehouse\", charset=\"UTF-8\""),
                );
            }
            Error::AdminUnauthorized => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(
                        "Bearer realm=\"gatehouse-admin\", error=\"invalid_token\"",
                    ),
                );
            }
            Error::UseDpopNonce { nonce } => {
                if let Ok(v) = HeaderValue::from_str(nonce) {
                    h.insert("dpop-nonce", v);
                }
            }
            Error::RateLimited { retry_after } => {
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
    Some(e.code())
}
