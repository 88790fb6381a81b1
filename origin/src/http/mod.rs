//! The HTTP surface: one [`router`] constructor, thin handlers.

pub mod form;

use crate::error::Error;
use crate::state::{now, AppState};
use crate::token;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use form::{presented_client, ClientIp, OAuthForm};

/// Largest request body accepted anywhere (forms have their own, smaller cap).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Every route of the origin.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/token", post(token_endpoint))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/healthz", get(health))
        .fallback(not_found)
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            MAX_BODY_BYTES,
        ))
        .with_state(state)
}

async fn not_found() -> Error {
    Error::NotFound
}

async fn health() -> &'static str {
    "ok"
}

/// `POST /token` (RFC 6749 §3.2).
async fn token_endpoint(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    form: OAuthForm,
) -> Result<Response, Error> {
    let now = now();
    let grant_type = form.require("grant_type")?;
    let presented = presented_client(&headers, &form)?;
    let client = token::authenticate(&state, &presented, ip, now).await?;
    let issued = match grant_type {
        "client_credentials" => {
            let req = token::ClientCredentialsRequest {
                scope: form.get("scope"),
                audience: form.get("audience"),
                resource: form.get("resource"),
                jkt: None,
            };
            token::client_credentials(&state, &client, req, token::RequestContext { ip, now })
                .await?
        }
        _ => return Err(Error::UnsupportedGrantType),
    };
    Ok(no_store(Json(issued)))
}

/// `GET /.well-known/jwks.json`: the published keys.
async fn jwks(State(state): State<AppState>) -> Result<Response, Error> {
    let now = now();
    let ring = state.key_ring()?;
    let mut resp = Json(ring.jwks(now).to_json()).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={}", state.config.jwks_max_age))
    {
        resp.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    Ok(resp)
}

fn no_store(body: impl IntoResponse) -> Response {
    let mut resp = body.into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}
