//! `GET` and `POST /userinfo` (OpenID Connect Core 1.0 §5.3): thin
//! handlers around [`crate::domain::userinfo`], which verifies the token
//! (and its DPoP proof) and picks the claims. Here: the per-IP limit, the
//! refusal of a token anywhere but the `Authorization` header (RFC 6750
//! §2.2 form body, §2.3 query: URLs and bodies reach logs), and the
//! rendering of `common`'s [`Rejection`] (status, `WWW-Authenticate` for
//! Bearer and DPoP with its algorithms, `Cache-Control: no-store`).

use crate::domain::error::Error;
use crate::domain::state::AppState;
use crate::domain::userinfo::{self, Refusal, UserinfoRequest};
use crate::http::error::ErrorKind;
use crate::http::form::ClientIp;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use gatehouse_common::rejection::{Challenge, ErrorCode, Rejection, Scheme};

use super::schema;

/// Where a token may not travel: `access_token` as a query parameter or
/// form member. A request carrying one is refused whatever else it holds.
fn token_elsewhere(text: &[u8]) -> bool {
    form_urlencoded::parse(text).any(|(k, _)| k == "access_token")
}

/// 400 `invalid_request` for a token sent outside the header, saying where.
fn refuse_elsewhere(place: &'static str) -> Response {
    render(&Rejection::new(
        ErrorCode::InvalidRequest,
        Scheme::Bearer,
        place,
    ))
}

/// Renders a refusal: its status, a challenge per offered scheme (Bearer,
/// and DPoP with the proof algorithms `/token` accepts), `DPoP-Nonce` when
/// a nonce is required, the JSON body; never the token.
fn render(r: &Rejection) -> Response {
    let algs = crate::domain::dpop::policy().algorithms;
    let offer = Challenge {
        realm: None,
        bearer: true,
        dpop_algs: &algs,
    };
    let status = StatusCode::from_u16(r.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let mut resp = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        r.body(),
    )
        .into_response();
    let h = resp.headers_mut();
    for (name, value) in r.headers(&offer) {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            h.append(n, v);
        }
    }
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    let code = r.code.map_or("invalid_token", ErrorCode::as_str);
    tracing::debug!(error = code, status = status.as_u16(), "userinfo refused");
    resp.extensions_mut().insert(ErrorKind(code));
    resp
}

/// One UserInfo request: the per-address limit, then the token's places
/// (`body` is the POST body, empty for GET), then the domain's answer.
async fn answer(
    state: &AppState,
    ip: Option<std::net::IpAddr>,
    method: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, Error> {
    let reading = state.clock.now();
    let (now, now_ms) = (reading.secs(), reading.millis());
    super::limit_ip(state, ip, now_ms)?;
    if uri.query().is_some_and(|q| token_elsewhere(q.as_bytes())) {
        return Ok(refuse_elsewhere(
            "send the access token in the Authorization header, not in the URL",
        ));
    }
    if token_elsewhere(body) {
        return Ok(refuse_elsewhere(
            "send the access token in the Authorization header, not in the request body",
        ));
    }
    let tp = state.token_path()?;
    let authorization: Vec<&[u8]> = headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    let dpop: Vec<&[u8]> = headers
        .get_all("dpop")
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    let req = UserinfoRequest {
        method,
        authorization: &authorization,
        dpop: &dpop,
    };
    match userinfo::userinfo(&tp, &req, now).await {
        Ok(claims) => Ok(super::no_store(Json(claims))),
        Err(Refusal::Rejected(r)) => Ok(render(&r)),
        Err(Refusal::Failed(e)) => Err(e),
    }
}

/// `GET /userinfo` (OpenID Connect Core 1.0 §5.3.1), and `HEAD` (a proof
/// for it names `HEAD`).
#[utoipa::path(
    get,
    path = "/userinfo",
    tag = "oauth",
    summary = "OpenID Connect UserInfo",
    description = "The claims of the access token's user by its scopes (`openid` required; \
                   `profile`: name, preferred_username, updated_at; `email`: email, \
                   email_verified). `Authorization: Bearer`, or `Authorization: DPoP` with a \
                   `DPoP` proof for a DPoP-bound token (RFC 9449 §7.1). A token in the query \
                   string is refused.",
    params(("DPoP" = Option<String>, Header, description = "A DPoP proof JWT (RFC 9449 §4) for this request, with `ath`, when the token is DPoP-bound")),
    responses(
        (status = 200, description = "The claims (`Cache-Control: no-store`)", body = schema::UserInfo),
        (status = 400, description = "invalid_request: a malformed or repeated Authorization header, or a token in the URL", body = schema::BearerError),
        (status = 401, description = "No token, or invalid_token / invalid_dpop_proof / use_dpop_nonce (`WWW-Authenticate: Bearer` and `DPoP algs=…`)", body = schema::BearerError),
        (status = 403, description = "insufficient_scope: the token lacks `openid`", body = schema::BearerError),
        (status = 429, description = "Rate limited (`Retry-After`)", body = schema::OAuthError),
    ),
    security(("access_token" = []))
)]
pub async fn userinfo_get(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, Error> {
    // axum answers `HEAD` here too: a proof's `htm` is checked against the
    // method received (RFC 9449 §4.3 check 8), so a proof signed for `GET`
    // is not spent by a `HEAD`.
    answer(&state, ip, method.as_str(), &uri, &headers, &[]).await
}

/// `POST /userinfo` (OpenID Connect Core 1.0 §5.3.1): the token in the
/// `Authorization` header, as for `GET`.
#[utoipa::path(
    post,
    path = "/userinfo",
    tag = "oauth",
    summary = "OpenID Connect UserInfo (POST)",
    description = "As GET. The token must be in the Authorization header: a form body carrying \
                   `access_token` (RFC 6750 §2.2) is refused with invalid_request.",
    params(("DPoP" = Option<String>, Header, description = "A DPoP proof JWT (RFC 9449 §4) for this request (`htm` POST), with `ath`, when the token is DPoP-bound")),
    responses(
        (status = 200, description = "The claims (`Cache-Control: no-store`)", body = schema::UserInfo),
        (status = 400, description = "invalid_request: a malformed or repeated Authorization header, or a token in the URL or the body", body = schema::BearerError),
        (status = 401, description = "No token, or invalid_token / invalid_dpop_proof / use_dpop_nonce (`WWW-Authenticate: Bearer` and `DPoP algs=…`)", body = schema::BearerError),
        (status = 403, description = "insufficient_scope: the token lacks `openid`", body = schema::BearerError),
        (status = 413, description = "The body is over 64 KiB", body = schema::OAuthError),
        (status = 429, description = "Rate limited (`Retry-After`)", body = schema::OAuthError),
    ),
    security(("access_token" = []))
)]
pub async fn userinfo_post(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Error> {
    answer(&state, ip, "POST", &uri, &headers, &body).await
}
