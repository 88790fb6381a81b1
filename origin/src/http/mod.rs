//! The HTTP surface: one [`router`] constructor, thin handlers.

pub mod admin;
pub mod authorize;
pub mod cookies;
pub mod cors;
pub mod error;
pub mod form;
pub mod logout;
pub mod openapi;
pub mod pages;
pub mod par;
pub mod probe;
pub mod schema;
pub mod userinfo;

use crate::domain::clients::Client;
use crate::domain::error::Error;
use crate::domain::grant_type::GrantType;
use crate::domain::introspect;
use crate::domain::state::AppState;
use crate::domain::token::{self, Authenticated, ClientSource, RequestContext};
use crate::http::error::ErrorKind;
use crate::support::request;
use axum::extract::{Extension, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use form::{presented_client, ClientIp, OAuthForm};
use gatehouse_common::alg::Algorithm;
use serde_json::json;
use std::sync::Arc;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Largest request body accepted anywhere (forms have their own, smaller cap).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Grant types `/token` serves.
pub const GRANT_TYPES: [GrantType; 4] = GrantType::ALL;

/// Every route of the origin with its documentation: a handler's
/// `#[utoipa::path]` gives both its route and its OpenAPI operation, so the
/// two cannot drift ([`openapi`]). Add routes only here, with `routes!`.
pub fn routes(state: &AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(token_endpoint))
        .routes(routes!(authorize::authorize))
        .routes(routes!(authorize::login))
        .routes(routes!(authorize::consent))
        .routes(routes!(logout::logout_get, logout::logout_post))
        .routes(routes!(par::pushed_authorization_request))
        .routes(routes!(introspect_endpoint))
        .routes(routes!(revoke_endpoint))
        .routes(routes!(userinfo::userinfo_get, userinfo::userinfo_post))
        .routes(routes!(jwks))
        .routes(routes!(metadata))
        .routes(routes!(openid_configuration))
        .routes(routes!(openapi::document))
        .routes(routes!(metrics))
        .routes(routes!(health))
        .routes(routes!(probe::readyz))
        .nest("/admin", admin::routes(state.clone()))
}

/// The origin: [`routes`], the document they describe at `/openapi.json`,
/// and the middleware around them.
pub fn router(state: AppState) -> Router {
    let (routes, doc) = routes(&state).split_for_parts();
    let doc = openapi::Document(Arc::new(openapi::finish(doc, &state.config.issuer)));
    routes
        .layer(Extension(doc))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            MAX_BODY_BYTES,
        ))
        .layer(middleware::from_fn(body_limit_as_oauth_error))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(middleware::from_fn(timeout_as_oauth_error))
        .layer(middleware::from_fn(limit_header_size))
        // Around the limits, so their 413, 408 and 431 are counted too.
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        // Outermost, so every answer of a CORS route (413, 431, 408 included)
        // is readable by an allowed page.
        .layer(middleware::from_fn_with_state(state.clone(), cors::cors))
        // Outermost: every answer, preflights and 431s included, carries
        // its request id, and every request is logged once.
        .layer(middleware::from_fn(trace_request))
        .with_state(state)
}

/// Largest total size of a request's header fields (names and values). Room
/// for an 8 KiB access token and an 8 KiB DPoP proof with ordinary headers;
/// hyper's own limit (~400 KiB) is far too generous for an OAuth server.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// How long one request may take, body included: a client that announces a
/// body and stalls is answered 408 and its connection freed (slowloris).
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Refuses requests whose header fields exceed [`MAX_HEADER_BYTES`] with 431.
async fn limit_header_size(req: Request, next: Next) -> Response {
    let size: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if size > MAX_HEADER_BYTES {
        return Error::HeadersTooLarge.into_response();
    }
    next.run(req).await
}

/// `TimeoutLayer` answers 408 with an empty body; render it through [`Error`].
async fn timeout_as_oauth_error(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    if resp.status() == axum::http::StatusCode::REQUEST_TIMEOUT
        && resp.extensions().get::<ErrorKind>().is_none()
    {
        return Error::RequestTimeout.into_response();
    }
    resp
}

/// `RequestBodyLimitLayer` answers 413 with a plain-text body of its own;
/// render it through [`Error`] like every other refusal.
async fn body_limit_as_oauth_error(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    if resp.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE
        && resp.extensions().get::<ErrorKind>().is_none()
    {
        return Error::PayloadTooLarge.into_response();
    }
    resp
}

/// The per-IP limit every client-authenticated endpoint applies before
/// authenticating (brute force and anonymous floods).
pub(crate) fn limit_ip(
    state: &AppState,
    ip: Option<std::net::IpAddr>,
    now_ms: i64,
) -> Result<(), Error> {
    if let Some(ip) = ip {
        let d = state.ip_limiter.check(&ip.to_string(), now_ms);
        if !d.allowed {
            return Err(Error::RateLimited {
                retry_after: d.retry_after_secs(),
            });
        }
    }
    Ok(())
}

/// The per-client limit, after authentication.
fn limit_client(state: &AppState, client_id: &str, now_ms: i64) -> Result<(), Error> {
    let d = state.client_limiter.check(client_id, now_ms);
    if d.allowed {
        Ok(())
    } else {
        Err(Error::RateLimited {
            retry_after: d.retry_after_secs(),
        })
    }
}

async fn not_found() -> Error {
    Error::NotFound
}

async fn method_not_allowed() -> Response {
    let mut r = Error::InvalidRequest("method not allowed".into()).into_response();
    *r.status_mut() = axum::http::StatusCode::METHOD_NOT_ALLOWED;
    r
}

/// Liveness: the process serves HTTP.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "`ok`", body = String, content_type = "text/plain")))]
async fn health() -> &'static str {
    "ok"
}

/// Names the request ([`RequestIds`]: the caller's valid `traceparent` and
/// `Gatehouse-Request-Id`, or new ones), serves it within that name's
/// scope (the audit rows and error bodies it writes carry the id), answers
/// `Gatehouse-Request-Id`, and writes the request's one log line: ids,
/// method, route template, status, error code, latency — never the path's
/// values, the query, a header or a body.
async fn trace_request(req: Request, next: Next) -> Response {
    let ids = {
        let h = req.headers();
        let all = |name: &str| -> Vec<&[u8]> {
            h.get_all(name).iter().map(HeaderValue::as_bytes).collect()
        };
        request::inbound(
            &all(request::TRACEPARENT_HEADER),
            &all(request::REQUEST_ID_HEADER),
        )
    };
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let method = req.method().clone();
    let started = std::time::Instant::now();
    let mut resp = request::scope(ids.clone(), next.run(req)).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let status = resp.status().as_u16();
    let error = resp.extensions().get::<ErrorKind>().map(|k| k.0);
    tracing::info!(
        request_id = %ids.request_id,
        trace_id = %ids.trace_id,
        span_id = %ids.span_id,
        method = %method,
        route = %route,
        status,
        error,
        latency_ms,
        "request"
    );
    // Checked on the way in: 1-64 characters of [A-Za-z0-9._:-] or hex.
    if let Ok(v) = HeaderValue::from_str(&ids.request_id) {
        resp.headers_mut().insert(request::REQUEST_ID_HEADER, v);
    }
    resp
}

/// Records latency and error kinds per route.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let started = std::time::Instant::now();
    let resp = next.run(req).await;
    let kind = resp.extensions().get::<ErrorKind>().map(|k| k.0);
    state.metrics.request(
        &route,
        started.elapsed().as_secs_f64(),
        resp.status().as_u16(),
        kind,
    );
    resp
}

/// `POST /token` (RFC 6749 §3.2, RFC 9449 §5).
#[utoipa::path(
    post,
    path = "/token",
    tag = "oauth",
    summary = "Token endpoint",
    description = "RFC 6749 §3.2: authorization_code with PKCE, refresh_token with rotation, \
                   client_credentials, token exchange (RFC 8693); DPoP-bound tokens (RFC 9449 §5).",
    params(("DPoP" = Option<String>, Header, description = "A DPoP proof JWT (RFC 9449 §4) for POST /token: the token is bound to its key")),
    request_body(content = schema::TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Issued (`Cache-Control: no-store`)", body = schema::TokenResponse,
            headers(("DPoP-Nonce" = String, description = "The nonce the next proof must carry, when nonces are on"))),
        (status = 400, description = "invalid_request, invalid_grant, unauthorized_client, unsupported_grant_type, invalid_scope, invalid_target, invalid_dpop_proof or use_dpop_nonce", body = schema::OAuthError),
        (status = 401, description = "invalid_client (`WWW-Authenticate: Basic`)", body = schema::OAuthError),
        (status = 413, description = "The body is over 16 KiB", body = schema::OAuthError),
        (status = 415, description = "Not application/x-www-form-urlencoded", body = schema::OAuthError),
        (status = 429, description = "Rate limited (`Retry-After`)", body = schema::OAuthError),
    ),
    security(("client_secret_basic" = []), ())
)]
async fn token_endpoint(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    form: OAuthForm,
) -> Result<Response, Error> {
    let reading = state.clock.now();
    let (now, now_ms) = (reading.secs(), reading.millis());
    limit_ip(&state, ip, now_ms)?;
    let grant_type = GrantType::from_name(form.require("grant_type")?)
        .filter(|g| GRANT_TYPES.contains(g))
        .ok_or(Error::UnsupportedGrantType)?;
    let tp = state.token_path()?;
    // client_credentials and refresh_token issue through a write made as of
    // the client record (the group commit re-checks the record's
    // generation), so they may take it from the cache.
    let source = match grant_type {
        GrantType::ClientCredentials | GrantType::RefreshToken => ClientSource::Cache,
        GrantType::AuthorizationCode | GrantType::TokenExchange => ClientSource::Database,
    };
    let presented = presented_client(&headers, &form)?;
    let client = authenticated_client(&state, &tp, ip, &presented, now, now_ms, source).await?;
    if client.public {
        limit_public_grant(&state, &client, grant_type, &form, now_ms).await?;
    }
    let proof = {
        let dpop: Vec<&[u8]> = headers
            .get_all("dpop")
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        crate::domain::dpop::token_endpoint_proof(&tp, &dpop, "/token", now).await?
    };
    let jkt = proof.as_ref().map(|p| p.jkt.as_str());
    let ctx = RequestContext {
        ip,
        now,
        client_as_of: client.as_of,
    };
    let first = match issue(&tp, &client, grant_type, &form, jkt, ctx).await {
        // A refusal decided on a cached record (nothing written) stands only
        // if the record is still current; else it is decided again below.
        Err(
            e @ (Error::UnauthorizedClient(_)
            | Error::InvalidScope(_)
            | Error::InvalidTarget(_)
            | Error::InvalidDpopProof(_)),
        ) => match token::confirm_cached(&tp, client.as_of).await {
            Ok(()) => Err(e),
            Err(changed) => Err(changed),
        },
        other => other,
    };
    let (client, issued) = match first {
        // The cached record was older than a client change committed before
        // the token's write: nothing was written. Authenticate again from
        // the database (the proof stays spent and bound) and issue once more.
        Err(Error::ClientChanged) => {
            let fresh = token::authenticate(
                &tp,
                state.auth_failures(),
                &presented,
                ip,
                now,
                ClientSource::Database,
            )
            .await?;
            let ctx = RequestContext {
                client_as_of: None,
                ..ctx
            };
            let issued = issue(&tp, &fresh, grant_type, &form, jkt, ctx).await?;
            (fresh, issued)
        }
        other => (client, other?),
    };
    state.metrics.token_issued(
        grant_type.as_str(),
        issued.alg.name(),
        issued.token_type,
        &client.client_id,
    );
    if grant_type == GrantType::RefreshToken {
        state.metrics.refresh_rotated(&client.client_id);
    }
    let mut resp = no_store(Json(issued));
    if let (true, Some(n)) = (state.config.dpop_nonce, &state.dpop_nonces) {
        if let Ok(v) = HeaderValue::from_str(&n.issue(now)) {
            resp.headers_mut().insert("dpop-nonce", v);
        }
    }
    Ok(resp)
}

/// The token endpoint's dispatch: `grant_type`'s flow for the
/// authenticated `client`.
async fn issue(
    tp: &crate::domain::state::TokenPath<'_>,
    client: &Client,
    grant_type: GrantType,
    form: &OAuthForm,
    jkt: Option<&str>,
    ctx: RequestContext,
) -> Result<crate::domain::token::TokenResponse, Error> {
    Ok(match grant_type {
        GrantType::AuthorizationCode => {
            let req = crate::domain::grants::CodeRedemption {
                code: form.require("code")?,
                redirect_uri: form.get("redirect_uri"),
                code_verifier: form.get("code_verifier"),
                jkt,
            };
            crate::domain::grants::redeem_code(tp, client, req, ctx).await?
        }
        GrantType::TokenExchange => {
            let req = crate::domain::exchange::ExchangeRequest {
                subject_token: form.require("subject_token")?,
                subject_token_type: form.get("subject_token_type"),
                actor_token: form.get("actor_token"),
                actor_token_type: form.get("actor_token_type"),
                requested_token_type: form.get("requested_token_type"),
                audience: form.get("audience"),
                resource: form.get("resource"),
                scope: form.get("scope"),
                jkt,
            };
            crate::domain::exchange::exchange(tp, client, req, ctx).await?
        }
        GrantType::RefreshToken => {
            let req = crate::domain::grants::Refresh {
                refresh_token: form.require("refresh_token")?,
                scope: form.get("scope"),
                jkt,
            };
            crate::domain::grants::refresh(tp, client, req, ctx).await?
        }
        GrantType::ClientCredentials => {
            let req = token::ClientCredentialsRequest {
                scope: form.get("scope"),
                audience: form.get("audience"),
                resource: form.get("resource"),
                jkt,
            };
            token::client_credentials(tp, client, req, ctx).await?
        }
    })
}

/// The caller of `/introspect`, `/revoke` and `/par`: the address limit,
/// then the client authenticated from the database (these endpoints never
/// use the token endpoint's client cache), with the token path it used.
pub(crate) async fn client_from_database<'s>(
    state: &'s AppState,
    ip: Option<std::net::IpAddr>,
    headers: &HeaderMap,
    form: &OAuthForm,
    now: gatehouse_common::UnixTime,
    now_ms: i64,
) -> Result<(crate::domain::state::TokenPath<'s>, Authenticated), Error> {
    limit_ip(state, ip, now_ms)?;
    let tp = state.token_path()?;
    let presented = presented_client(headers, form)?;
    let caller = authenticated_client(
        state,
        &tp,
        ip,
        &presented,
        now,
        now_ms,
        ClientSource::Database,
    )
    .await?;
    Ok((tp, caller))
}

/// Authenticates the calling client (RFC 6749 §2.3) and applies its rate
/// limit; the per-IP limit comes first, in each endpoint. A public client
/// is named, not authenticated: anyone may send its `client_id`, so its
/// requests are not charged to one bucket all its users share (the caller's
/// address already paid; see [`limit_public_grant`] for its grants).
pub(crate) async fn authenticated_client(
    state: &AppState,
    tp: &crate::domain::state::TokenPath<'_>,
    ip: Option<std::net::IpAddr>,
    presented: &token::PresentedClient,
    now: gatehouse_common::UnixTime,
    now_ms: i64,
    source: ClientSource,
) -> Result<Authenticated, Error> {
    let client = token::authenticate(tp, state.auth_failures(), presented, ip, now, source).await?;
    if !client.public {
        limit_client(state, &client.client_id, now_ms)?;
    }
    Ok(client)
}

/// A public client's grant is charged to the user's session it continues
/// (the authorization code's or refresh family's `sid`), not to the client:
/// garbage naming the client finds no session and costs only the caller's
/// own address.
async fn limit_public_grant(
    state: &AppState,
    client: &crate::domain::clients::Client,
    grant_type: GrantType,
    form: &OAuthForm,
    now_ms: i64,
) -> Result<(), Error> {
    use crate::store::grant_lookup::{sid_of, Presented};
    use crate::support::secret::{AuthCode, RefreshToken};
    let presented = match (grant_type, form.get("code"), form.get("refresh_token")) {
        (GrantType::AuthorizationCode, Some(code), _) => {
            Presented::Code(AuthCode::new(code.to_owned()).hash_b64())
        }
        (GrantType::RefreshToken, _, Some(rt)) => {
            Presented::Refresh(RefreshToken::new(rt.to_owned()).hash_b64())
        }
        _ => return Ok(()),
    };
    let Some(sid) = sid_of(&state.db, &presented, &client.client_id).await? else {
        return Ok(());
    };
    limit_client(state, &format!("{}\u{0}{sid}", client.client_id), now_ms)
}

/// `POST /introspect` (RFC 7662).
#[utoipa::path(
    post,
    path = "/introspect",
    tag = "oauth",
    summary = "Token introspection (RFC 7662)",
    description = "For a confidential client the token was issued to, or a resource server it serves; `{\"active\": false}` otherwise.",
    request_body(content = schema::TokenRequestByClient, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The token's claims, or `{\"active\": false}`", body = schema::Introspection),
        (status = 400, description = "invalid_request or unauthorized_client (a public client)", body = schema::OAuthError),
        (status = 401, description = "invalid_client", body = schema::OAuthError),
        (status = 415, description = "Not application/x-www-form-urlencoded", body = schema::OAuthError),
        (status = 429, description = "Rate limited", body = schema::OAuthError),
    ),
    security(("client_secret_basic" = []), ())
)]
async fn introspect_endpoint(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    form: OAuthForm,
) -> Result<Response, Error> {
    let reading = state.clock.now();
    let (now, now_ms) = (reading.secs(), reading.millis());
    let (tp, caller) = client_from_database(&state, ip, &headers, &form, now, now_ms).await?;
    let raw = form.require("token")?;
    let answer = introspect::introspect(&tp, &caller, raw, now).await?;
    Ok(no_store(Json(answer)))
}

/// `POST /revoke` (RFC 7009).
#[utoipa::path(
    post,
    path = "/revoke",
    tag = "oauth",
    summary = "Token revocation (RFC 7009)",
    description = "An access token, or a refresh token with its whole family. Unknown and foreign tokens are answered 200 too.",
    request_body(content = schema::TokenRequestByClient, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Revoked, or nothing to revoke (empty body)"),
        (status = 400, description = "invalid_request", body = schema::OAuthError),
        (status = 401, description = "invalid_client", body = schema::OAuthError),
        (status = 415, description = "Not application/x-www-form-urlencoded", body = schema::OAuthError),
        (status = 429, description = "Rate limited", body = schema::OAuthError),
    ),
    security(("client_secret_basic" = []), ())
)]
async fn revoke_endpoint(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    form: OAuthForm,
) -> Result<Response, Error> {
    let reading = state.clock.now();
    let (now, now_ms) = (reading.secs(), reading.millis());
    let (tp, caller) = client_from_database(&state, ip, &headers, &form, now, now_ms).await?;
    let raw = form.require("token")?;
    let ctx = RequestContext {
        ip,
        now,
        client_as_of: None,
    };
    introspect::revoke_token(&tp, &caller, raw, ctx).await?;
    Ok(no_store(()))
}

/// `GET /.well-known/jwks.json`: the published keys.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "discovery",
    summary = "Published signing keys (RFC 7517)",
    responses((status = 200, description = "The JWK set (`Cache-Control: public, max-age`)", body = schema::Jwks)))]
async fn jwks(State(state): State<AppState>) -> Result<Response, Error> {
    let now = state.clock.now().secs();
    let ring = state.key_ring()?;
    let mut resp = Json(ring.jwks(now).to_json()).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={}", state.config.jwks_max_age))
    {
        resp.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    Ok(resp)
}

/// The signing algorithms of the published keys.
fn published_algs(
    state: &AppState,
    now: gatehouse_common::UnixTime,
) -> Result<Vec<&'static str>, Error> {
    let ring = state.key_ring()?;
    let mut algs: Vec<&'static str> = ring
        .jwks(now)
        .keys()
        .iter()
        .flat_map(|k| k.algorithms().iter().map(|a| a.name()))
        .collect();
    let configured = state.config.signing_alg.name();
    if !algs.contains(&configured) {
        algs.push(configured);
    }
    algs.dedup();
    Ok(algs)
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414): only what is served.
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "discovery",
    summary = "Authorization server metadata (RFC 8414)",
    responses((status = 200, description = "The metadata", body = schema::Metadata)))]
async fn metadata(State(state): State<AppState>) -> Result<Response, Error> {
    Ok(discovery_answer(server_metadata(&state)?))
}

/// `GET /.well-known/openid-configuration` (OpenID Connect Discovery 1.0
/// §3): the RFC 8414 document ([`server_metadata`], the one builder of
/// both, so they cannot drift) with the OpenID Provider fields added.
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "discovery",
    summary = "OpenID Provider metadata (OpenID Connect Discovery 1.0)",
    description = "The authorization server metadata plus what an OpenID Connect client needs: subject types, id_token algorithms, claims and prompt values.",
    responses((status = 200, description = "The metadata", body = schema::OpenIdConfiguration)))]
async fn openid_configuration(State(state): State<AppState>) -> Result<Response, Error> {
    let mut doc = server_metadata(&state)?;
    let algs = published_algs(&state, state.clock.now().secs())?;
    if let Some(m) = doc.as_object_mut() {
        // id_tokens are signed by the access tokens' key ring.
        m.insert("id_token_signing_alg_values_supported".into(), json!(algs));
        m.insert("subject_types_supported".into(), json!(["public"]));
        m.insert(
            "claims_supported".into(),
            json!(crate::domain::oidc::CLAIMS_SUPPORTED
                .iter()
                .chain(crate::domain::userinfo::CLAIMS.iter())
                .collect::<Vec<_>>()),
        );
        m.insert(
            "prompt_values_supported".into(),
            json!(crate::domain::oidc::PROMPT_VALUES),
        );
        m.insert("claims_parameter_supported".into(), json!(false));
        m.insert("claim_types_supported".into(), json!(["normal"]));
        // OpenID Connect RP-Initiated Logout 1.0 §2.1.
        m.insert(
            "end_session_endpoint".into(),
            json!(format!("{}/logout", state.config.issuer)),
        );
    }
    Ok(discovery_answer(doc))
}

/// A discovery document's answer: JSON, cacheable for five minutes.
fn discovery_answer(doc: serde_json::Value) -> Response {
    let mut resp = Json(doc).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    resp
}

/// The RFC 8414 metadata: only what is served. The OpenID Provider
/// document ([`openid_configuration`]) extends it.
fn server_metadata(state: &AppState) -> Result<serde_json::Value, Error> {
    let iss = &state.config.issuer;
    // Public clients authenticate with `none` at /token (authorization_code,
    // refresh_token) and /revoke; they may not introspect.
    let auth_methods = [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "none",
    ];
    let introspection_auth_methods = [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    ];
    let assertion_algs: Vec<&str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
    let revocation_auth_methods = auth_methods;
    // Exactly what `dpop::token_endpoint_proof` accepts.
    let dpop_algs: Vec<&str> = crate::domain::dpop::policy()
        .algorithms
        .iter()
        .map(|a| a.name())
        .collect();
    let doc = json!({
        "issuer": iss,
        "token_endpoint": format!("{iss}/token"),
        "jwks_uri": format!("{iss}/.well-known/jwks.json"),
        "introspection_endpoint": format!("{iss}/introspect"),
        "revocation_endpoint": format!("{iss}/revoke"),
        // OpenID Connect Core 1.0 §5.3 (carried into the OIDC discovery
        // document, which names it among its members).
        "userinfo_endpoint": format!("{iss}{}", crate::domain::userinfo::PATH),
        "authorization_endpoint": format!("{iss}/authorize"),
        // RFC 9126 §5: a request_uri from /par works whatever
        // request_uri_parameter_supported says (that concerns RFC 9101
        // request_uri values hosted elsewhere, which are refused).
        "pushed_authorization_request_endpoint": format!("{iss}/par"),
        "require_pushed_authorization_requests": state.config.require_pushed_authorization_requests,
        "grant_types_supported": GRANT_TYPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        // RFC 9101 request objects are refused (request_not_supported).
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "token_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": assertion_algs,
        // RFC 8414 §2: required where private_key_jwt is advertised; the
        // same client authentication serves all three endpoints.
        "introspection_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "revocation_endpoint_auth_signing_alg_values_supported": assertion_algs,
        "introspection_endpoint_auth_methods_supported": introspection_auth_methods,
        "revocation_endpoint_auth_methods_supported": revocation_auth_methods,
        "dpop_signing_alg_values_supported": dpop_algs,
        "access_token_signing_alg_values_supported": published_algs(state, state.clock.now().secs())?,
        "service_documentation": format!("{iss}/openapi.json"),
        "scopes_supported": scopes_supported(),
    });
    Ok(doc)
}

/// `scopes_supported`: the OpenID Connect scopes the origin acts on
/// (`openid` for id_tokens; `profile` and `email` for UserInfo's claims;
/// `offline_access` for clients registered for it). Every other scope
/// token is the clients' own vocabulary (registered per client, RFC 8414
/// §2 allows listing only some).
fn scopes_supported() -> [&'static str; 4] {
    [
        crate::domain::oidc::OPENID,
        crate::domain::userinfo::PROFILE,
        crate::domain::userinfo::EMAIL,
        crate::domain::oidc::OFFLINE_ACCESS,
    ]
}

/// `GET /metrics`: OpenMetrics text. The gauges describing state (signing
/// key age, the revocation pusher's lag, the database pool) are read now;
/// a database that does not answer leaves the pusher's gauges as they were
/// (and the scrape still succeeds: the counters matter most then).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "OpenMetrics text exposition format 1.0.0", body = String,
        content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8")))]
async fn metrics(State(state): State<AppState>) -> Response {
    state.metrics.set_scrape(&scrape_state(&state).await);
    (
        [(header::CONTENT_TYPE, crate::support::metrics::CONTENT_TYPE)],
        state.metrics.render(),
    )
        .into_response()
}

/// The state `/metrics` reports at this instant.
async fn scrape_state(state: &AppState) -> crate::support::metrics::ScrapeState {
    let now = state.clock.now().secs();
    let mut s = crate::support::metrics::ScrapeState {
        signing_key_period: state.config.key_schedule.active_period,
        db_pool_size: state.db.pool.size(),
        db_pool_idle: state.db.pool.num_idle(),
        ..Default::default()
    };
    if let Ok(ring) = state.key_ring() {
        s.signing_key_age = ring
            .signer_meta(now)
            .map(|m| now.0.saturating_sub(m.active_at));
    }
    let status = match crate::store::revocation::cover_span(&state.db, &state.config).await {
        Ok(span) => crate::domain::revocation_push::status(&state.db, span, now).await,
        Err(e) => Err(e),
    };
    match status {
        Ok(p) => {
            s.pusher_pending = p.pending;
            s.pusher_oldest_pending_age = p
                .oldest_pending_at
                .map_or(0, |at| now.0.saturating_sub(at).max(0));
            s.pusher_acked_version = p.delivered_version;
            s.pusher_since_ack = p.delivered_at.map(|at| now.0.saturating_sub(at).max(0));
            s.pusher_failures = p.failures;
        }
        Err(e) => tracing::warn!(error = %e, "metrics: reading the pusher's state failed"),
    }
    s
}

pub(crate) fn no_store(body: impl IntoResponse) -> Response {
    let mut resp = body.into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}
