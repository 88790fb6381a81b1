//! `GET`/`POST /logout`: the OpenID Connect RP-Initiated Logout 1.0
//! `end_session_endpoint`, and the user's own "Sign out" (a plain
//! `GET /logout`). The rules are in `domain::logout`; the pages in
//! `http::pages`; the CSRF protection is the sign-in pages' (signed double
//! submit bound to the session, see `http::authorize`).
//!
//! A logout request ends the session at once only when it proves it comes
//! from the RP the user is signed in to (an `id_token_hint` whose `sid` is
//! the browser's session); otherwise the user confirms on a page, so a
//! cross-site link or form cannot sign them out. A `POST` carrying `csrf`
//! is that page's answer; any other `POST` is a logout request sent as a
//! form (§2 allows both methods) — without the session cookie, which a
//! cross-site `POST` does not carry, it moves to a `GET` of this endpoint.

use crate::domain::error::Error;
use crate::domain::logout::{self, LogoutParams, LogoutRequest};
use crate::domain::state::AppState;
use crate::domain::users;
use crate::http::authorize::{check_csrf, page_csp, session_of, with_csrf};
use crate::http::cookies::{self, SESSION as SESSION_COOKIE};
use crate::http::form::{ClientIp, OAuthForm};
use crate::http::pages::{self, LogoutFields};
use crate::store::sessions::Session;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use gatehouse_common::UnixTime;

/// The revocation reason of grants ended by a logout.
const REASON: &str = "logout";

/// `GET /logout`.
#[utoipa::path(
    get,
    path = "/logout",
    tag = "authorize",
    summary = "End-session endpoint (OpenID Connect RP-Initiated Logout 1.0)",
    description = "Ends the browser session and revokes its online grants (offline grants stay). \
                   Without an id_token_hint naming the browser's session, a confirmation page is \
                   shown first. After logout: a 303 to the registered post_logout_redirect_uri \
                   with state, or the signed-out page.",
    params(super::schema::LogoutQuery),
    responses(
        (status = 200, description = "The confirmation page, or the signed-out page", body = String, content_type = "text/html"),
        (status = 303, description = "To the registered post_logout_redirect_uri, with `state`"),
        (status = 400, description = "An error page (a bad hint, an unregistered URI: never a redirect)", body = String, content_type = "text/html"),
        (status = 429, description = "Too many requests from this address", body = String, content_type = "text/html"),
    )
)]
pub async fn logout_get(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, Error> {
    let reading = state.clock.now();
    super::limit_ip(&state, ip, reading.millis())?;
    let q = OAuthForm::parse(query.unwrap_or_default().as_bytes())
        .map_err(|_| Error::AuthorizePage("the request is malformed"))?;
    request(&state, &headers, &q, reading.secs()).await
}

/// `POST /logout`.
#[utoipa::path(
    post,
    path = "/logout",
    tag = "authorize",
    summary = "End-session endpoint, form-encoded; also the confirmation page's answer",
    description = "With `csrf`: the confirmation (CSRF-checked); `decision=logout` signs out. \
                   Without: a logout request with the parameters of GET /logout; sent without the \
                   session cookie (a cross-site form: SameSite=Lax), it is validated and answered \
                   with a 303 to GET /logout carrying them, a navigation that carries the cookie.",
    request_body(content = super::schema::LogoutConfirmForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The confirmation page, the signed-out or still-signed-in page", body = String, content_type = "text/html"),
        (status = 303, description = "To the registered post_logout_redirect_uri, with `state`; or to GET /logout with the request's parameters"),
        (status = 400, description = "An error page", body = String, content_type = "text/html"),
        (status = 429, description = "Too many requests from this address", body = String, content_type = "text/html"),
    )
)]
pub async fn logout_post(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    form: OAuthForm,
) -> Result<Response, Error> {
    let reading = state.clock.now();
    super::limit_ip(&state, ip, reading.millis())?;
    let now = reading.secs();
    if form.get("csrf").is_none() {
        // A logout request sent as a cross-site form carries no session
        // cookie (`SameSite=Lax`): "nothing to end" would send the user back
        // to the RP as signed out while the session lives on. Validated,
        // it moves to a `GET` of this endpoint — a top-level navigation,
        // which carries the cookie.
        if cookies::get(&headers, SESSION_COOKIE)?.is_none() {
            validate(&state, &params(&form), now).await?;
            return Ok(as_get(&form));
        }
        return request(&state, &headers, &form, now).await;
    }
    check_csrf(&state, &headers, &form)?;
    // The page carried the request as validated; validated again (the
    // client's registration may have changed meanwhile).
    let req = validate(
        &state,
        &LogoutParams {
            id_token_hint: None,
            client_id: form.get("client_id"),
            post_logout_redirect_uri: form.get("post_logout_redirect_uri"),
            state: form.get("state"),
            logout_hint: None,
        },
        now,
    )
    .await?;
    if form.get("decision") != Some("logout") {
        return Ok(html(pages::still_signed_in()));
    }
    let session = session_of(&state, &headers, now).await?;
    finish(&state, &req, session.as_ref(), now).await
}

async fn validate(
    state: &AppState,
    p: &LogoutParams<'_>,
    now: UnixTime,
) -> Result<LogoutRequest, Error> {
    let ring = state.key_ring()?;
    logout::validate(&state.db, &ring, &state.config.issuer, *p, now).await
}

/// The logout request parameters (§2) of `q`.
fn params(q: &OAuthForm) -> LogoutParams<'_> {
    LogoutParams {
        id_token_hint: q.get("id_token_hint"),
        client_id: q.get("client_id"),
        post_logout_redirect_uri: q.get("post_logout_redirect_uri"),
        state: q.get("state"),
        logout_hint: q.get("logout_hint"),
    }
}

/// A 303 to `GET /logout` with the logout request parameters of `form`
/// (only those: nothing else is carried).
fn as_get(form: &OAuthForm) -> Response {
    let p = params(form);
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in [
        ("id_token_hint", p.id_token_hint),
        ("client_id", p.client_id),
        ("post_logout_redirect_uri", p.post_logout_redirect_uri),
        ("state", p.state),
        ("logout_hint", p.logout_hint),
    ] {
        if let Some(v) = value {
            query.append_pair(name, v);
        }
    }
    let mut resp = StatusCode::SEE_OTHER.into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("/logout?{}", query.finish())) {
        h.insert(header::LOCATION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A logout request (§2): ends the session when the request proves it
/// comes from the RP, else asks the user.
async fn request(
    state: &AppState,
    headers: &HeaderMap,
    q: &OAuthForm,
    now: UnixTime,
) -> Result<Response, Error> {
    let req = validate(state, &params(q), now).await?;
    let Some(session) = session_of(state, headers, now).await? else {
        // Nothing to end (signed out already, or another browser).
        return finish(state, &req, None, now).await;
    };
    if req.proves_session(&session.user_id, &session.sid)
        && hint_names(state, &req, &session).await?
    {
        return finish(state, &req, Some(&session), now).await;
    }
    let client_name = req.client.as_ref().map(|c| c.name.clone());
    let fields = LogoutFields {
        client_id: req.client.as_ref().map(|c| c.client_id.as_str()),
        post_logout_redirect_uri: req.redirect.as_deref(),
        state: req.state.as_deref(),
    };
    let csp_target = req.redirect.clone().unwrap_or_default();
    with_csrf(state, headers, &csp_target, |csrf| {
        pages::logout_confirm(csrf, client_name.as_deref(), &fields)
    })
}

/// Whether `logout_hint`, when sent, names the session's user (by username
/// or id); a hint naming someone else means the user confirms.
async fn hint_names(
    state: &AppState,
    req: &LogoutRequest,
    session: &Session,
) -> Result<bool, Error> {
    let Some(h) = &req.logout_hint else {
        return Ok(true);
    };
    if *h == session.user_id {
        return Ok(true);
    }
    Ok(users::get(&state.db, &session.user_id)
        .await?
        .is_some_and(|u| u.username == *h))
}

/// Ends `session` (if any) and answers: the redirect to the registered
/// post-logout URI, or the signed-out page; the session cookie cleared.
async fn finish(
    state: &AppState,
    req: &LogoutRequest,
    session: Option<&Session>,
    now: UnixTime,
) -> Result<Response, Error> {
    if let Some(s) = session {
        logout::end_session(&state.db, &state.config, &s.user_id, &s.sid, REASON, now).await?;
    }
    let resp = match req.redirect_location() {
        Some(location) => {
            let mut resp = StatusCode::SEE_OTHER.into_response();
            let h = resp.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&location) {
                h.insert(header::LOCATION, v);
            }
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        None => html(pages::signed_out()),
    };
    let cleared = cookies::set(SESSION_COOKIE, String::new(), 0);
    Ok((cleared, resp).into_response())
}

/// An HTML page, not cached, not framed, with no script.
fn html(body: String) -> Response {
    let mut resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    if let Ok(v) = HeaderValue::from_str(&page_csp("")) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    resp
}
