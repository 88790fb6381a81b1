//! Pushed authorization requests (RFC 9126): `POST /par`, and the one place
//! where `/authorize` (and its login and consent forms, which post the same
//! query back) turns `client_id` + `request_uri` into the pushed parameters.
//!
//! - `/par` authenticates the client exactly as `/token` does (secret,
//!   private_key_jwt, `none` for a public client), then runs the same
//!   [`authorize::validate`] `/authorize` runs, so nothing one accepts is
//!   refused by the other; refusals are JSON (RFC 9126 §2.3), never a redirect.
//! - At `/authorize` a `request_uri` is used with the pushed parameters
//!   ONLY: every other front-channel parameter but `client_id` is ignored
//!   (RFC 9126 §4). An unknown, expired, used or other client's
//!   `request_uri` is an error page: no redirect URI has been verified.
//! - A client registered with `require_pushed_authorization_requests` (or
//!   every client, with `GATEHOUSE_REQUIRE_PAR`) is refused at `/authorize`
//!   without a `request_uri`, with an error page, before anything else.

use crate::domain::error::Error;
use crate::domain::par;
use crate::domain::state::AppState;
use crate::http::authorize::{self, AuthzRequest};
use crate::http::form::{ClientIp, OAuthForm};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Client authentication parameters: used at `/par`, never stored with the request.
const CLIENT_AUTH_PARAMS: [&str; 4] = [
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
];

/// The authorization request `/authorize` (and the login and consent forms)
/// acts on: the pushed one when `q` names a `request_uri`, else `q` itself
/// (unless the client must push).
pub async fn authorization_request(state: &AppState, q: &OAuthForm) -> Result<AuthzRequest, Error> {
    let Some(request_uri) = q.get("request_uri") else {
        if state.config.require_pushed_authorization_requests {
            return Err(Error::AuthorizePage(
                "this server accepts only pushed authorization requests (request_uri from /par)",
            ));
        }
        if let Some(id) = q.get("client_id") {
            if crate::domain::clients::get(&state.db, id)
                .await?
                .is_some_and(|c| c.require_pushed_authorization_requests)
            {
                return Err(Error::AuthorizePage(
                    "this client must push its authorization requests (request_uri from /par)",
                ));
            }
        }
        return authorize::validate(state, q).await;
    };
    let client_id = q
        .get("client_id")
        .ok_or(Error::AuthorizePage("client_id is missing"))?;
    let now = state.clock.now().secs();
    let opened = par::open(&state.db, client_id, request_uri, now)
        .await?
        .ok_or(Error::AuthorizePage(
            "the request_uri is unknown, expired or already used, or was pushed by another client; start again from the application",
        ))?;
    let pushed = OAuthForm::parse(opened.params.as_bytes())
        .map_err(|_| Error::AuthorizePage("the pushed request is malformed"))?;
    let mut req = authorize::validate(state, &pushed).await?;
    req.pushed = Some(opened.handle_hash);
    req.opened_at = Some(opened.opened_at);
    Ok(req)
}

/// `/authorize`'s refusal as `/par` answers it (RFC 9126 §2.3): the same
/// code and description as JSON, never a page or a redirect.
fn as_json(e: Error) -> Error {
    match e {
        Error::AuthorizePage(d) => Error::InvalidRequest(d.into()),
        Error::AuthorizeRedirect { location, code } => {
            // The description is the last one `authorize::redirect_error`
            // appended (a registered redirect URI may carry its own).
            let description = url::Url::parse(&location)
                .ok()
                .and_then(|u| {
                    u.query_pairs()
                        .filter(|(k, _)| k == "error_description")
                        .last()
                        .map(|(_, v)| v.into_owned())
                })
                .unwrap_or_else(|| "the authorization request was refused".to_owned());
            Error::AuthorizationRequest {
                code,
                description: description.into(),
            }
        }
        other => other,
    }
}

/// `POST /par` (RFC 9126 §2).
#[utoipa::path(
    post,
    path = "/par",
    tag = "oauth",
    summary = "Pushed authorization request endpoint (RFC 9126)",
    description = "The client authenticates as at /token (client_secret_basic/post, private_key_jwt, or `none` for a public client) \
                   and pushes the authorization request's parameters; they are validated as /authorize validates them. \
                   The answer's request_uri is used once at /authorize with client_id, within expires_in (60) seconds; \
                   other front-channel parameters are then ignored. `request_uri` and `request` (request objects) are refused. \
                   A DPoP proof binds the code to its key (RFC 9449 §10.1).",
    params(("DPoP" = Option<String>, Header, description = "A DPoP proof JWT (RFC 9449 §10.1) for POST /par: its key's thumbprint becomes dpop_jkt")),
    request_body(content = super::schema::PushedAuthorizationRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 201, description = "Stored (`Cache-Control: no-store`)", body = super::schema::PushedAuthorizationResponse),
        (status = 400, description = "invalid_request, unauthorized_client, invalid_scope, invalid_target, unsupported_response_type, request_not_supported, invalid_dpop_proof or use_dpop_nonce", body = super::schema::OAuthError),
        (status = 401, description = "invalid_client (`WWW-Authenticate: Basic`)", body = super::schema::OAuthError),
        (status = 413, description = "The body is over 16 KiB", body = super::schema::OAuthError),
        (status = 415, description = "Not application/x-www-form-urlencoded", body = super::schema::OAuthError),
        (status = 429, description = "Rate limited (`Retry-After`)", body = super::schema::OAuthError),
    ),
    security(("client_secret_basic" = []), ())
)]
pub async fn pushed_authorization_request(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    form: OAuthForm,
) -> Result<Response, Error> {
    let reading = state.clock.now();
    let (now, now_ms) = (reading.secs(), reading.millis());
    let (tp, client) =
        super::client_from_database(&state, ip, &headers, &form, now, now_ms).await?;
    // RFC 9126 §2.1: a pushed request cannot point at another one.
    if form.get("request_uri").is_some() {
        return Err(Error::InvalidRequest(
            "request_uri must not be pushed (RFC 9126 §2.1)".into(),
        ));
    }
    let proof = {
        let dpop: Vec<&[u8]> = headers
            .get_all("dpop")
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        crate::domain::dpop::token_endpoint_proof(&tp, &dpop, "/par", now).await?
    };
    let dpop_jkt = match (&proof, form.get("dpop_jkt")) {
        (Some(p), Some(j)) if p.jkt != j => {
            return Err(Error::InvalidDpopProof(
                "dpop_jkt does not match the DPoP proof's key".into(),
            ))
        }
        (Some(p), _) => Some(p.jkt.as_str()),
        (None, j) => j,
    };
    // The request as pushed, minus client authentication, naming the
    // authenticated client; `validate` re-reads it from this string exactly
    // as `/authorize` will from the store.
    let params = {
        let mut p = form_urlencoded::Serializer::new(String::new());
        p.append_pair("client_id", &client.client_id);
        for (k, v) in form.pairs() {
            if !CLIENT_AUTH_PARAMS.contains(&k) && k != "dpop_jkt" {
                p.append_pair(k, v);
            }
        }
        if let Some(j) = dpop_jkt {
            p.append_pair("dpop_jkt", j);
        }
        p.finish()
    };
    let parsed = OAuthForm::parse(params.as_bytes())?;
    authorize::validate(&state, &parsed)
        .await
        .map_err(as_json)?;
    let pushed = par::push(&state.db, &client.client_id, &params, now).await?;
    let mut resp = super::no_store(Json(json!({
        "request_uri": pushed.request_uri,
        "expires_in": pushed.expires_in,
    })));
    *resp.status_mut() = StatusCode::CREATED;
    Ok(resp.into_response())
}
