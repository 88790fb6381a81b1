//! CORS (Fetch standard, "CORS protocol") for browser apps served from
//! another origin: only the endpoints a public browser client calls, and only
//! for the exact origins in `GATEHOUSE_CORS_ALLOW_ORIGINS`.
//!
//! - No wildcard and no `Access-Control-Allow-Credentials`: these endpoints
//!   authenticate with form fields, `Authorization` and DPoP, never cookies.
//! - An origin that is not listed gets no `Access-Control-*` header at all;
//!   its preflight falls through to the router (405), so the browser refuses
//!   the request.
//! - `DPoP-Nonce` and `WWW-Authenticate` are exposed so a page can follow a
//!   `use_dpop_nonce` refusal (RFC 9449 §8), `Retry-After` for 429, and
//!   `Gatehouse-Request-Id` so a page can report which request failed.
//! - `/authorize` is a top-level navigation and `/introspect` and `/admin`
//!   are for servers: none of them gets CORS headers.

use crate::domain::state::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The cross-origin endpoints and the methods each serves.
pub const CORS_ROUTES: [(&str, &str); 6] = [
    ("/token", "POST"),
    ("/revoke", "POST"),
    ("/userinfo", "GET, POST"),
    ("/.well-known/oauth-authorization-server", "GET"),
    ("/.well-known/openid-configuration", "GET"),
    ("/.well-known/jwks.json", "GET"),
];

/// Request headers a page may send (`DPoP` proofs, `Authorization` for
/// client authentication, `Content-Type` for the form body, and the trace
/// headers a page may name its requests with).
pub const ALLOW_HEADERS: &str =
    "Authorization, Content-Type, DPoP, traceparent, Gatehouse-Request-Id";

/// Response headers a page may read.
pub const EXPOSE_HEADERS: &str = "DPoP-Nonce, WWW-Authenticate, Retry-After, Gatehouse-Request-Id";

/// How long a browser may cache a preflight answer, seconds.
pub const MAX_AGE_SECS: &str = "600";

/// The request's `Origin` when it is one of `allowed` (exact match).
fn allowed_origin<'a>(headers: &'a HeaderMap, allowed: &[String]) -> Option<&'a HeaderValue> {
    let origin = headers.get(header::ORIGIN)?;
    let text = origin.to_str().ok()?;
    allowed.iter().any(|a| a == text).then_some(origin)
}

/// Answers preflights and adds CORS headers to the responses of
/// [`CORS_ROUTES`] for allowed origins.
pub async fn cors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let allowed = &state.config.cors_allow_origins;
    let route = CORS_ROUTES
        .into_iter()
        .find(|(path, _)| *path == req.uri().path());
    let (Some((_, route_method)), false) = (route, allowed.is_empty()) else {
        return next.run(req).await;
    };
    let origin = allowed_origin(req.headers(), allowed).cloned();
    let is_preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if let (true, Some(origin)) = (is_preflight, &origin) {
        let mut resp = StatusCode::NO_CONTENT.into_response();
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(route_method),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOW_HEADERS),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(MAX_AGE_SECS),
        );
        h.append(header::VARY, HeaderValue::from_static("Origin"));
        return resp;
    }
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    // The answer differs per Origin (cacheable ones like the JWKS included).
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = origin {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSE_HEADERS),
        );
    }
    resp
}
