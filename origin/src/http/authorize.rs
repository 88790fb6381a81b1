//! `GET /authorize` (OAuth 2.1 authorization code with PKCE S256) and its
//! server-rendered login and consent pages (`http::pages`; cookies in
//! `http::cookies`).
//!
//! CSRF: a random value in a `__Host-` cookie and, in a hidden form field,
//! an HMAC (keyed from the KEK) of that value and the login session, compared
//! in constant time (signed double submit bound to the session: a pair
//! planted from another session does not verify; Lax keeps the cookie off
//! cross-site POSTs). Both cookies are `__Host-` (Secure, Path=/, no Domain:
//! a sibling subdomain cannot set them), HttpOnly and SameSite=Lax; a cookie
//! sent twice is refused rather than guessed at. Browsers treat loopback
//! (`http://127.0.0.1`, `http://localhost`) as secure, so this holds in development too.
//!
//! Logins run argon2id in a few slots at once and back off per username
//! after repeated failures; public clients always get the consent page.

use crate::domain::clients::{self, Client};
use crate::domain::error::Error;
use crate::domain::grants::{self, ApprovingSession, CodeGrant};
use crate::domain::oidc::{self, Prompt, PromptError};
use crate::domain::state::AppState;
use crate::domain::token::{choose_audience, grant_scopes};
use crate::domain::users;
use crate::http::cookies::{self, CSRF as CSRF_COOKIE, SESSION as SESSION_COOKIE};
use crate::http::form::{ClientIp, OAuthForm};
use crate::http::pages;
use crate::store::sessions::{self, NewSession, Session};
use crate::support::secret::{ct_eq, random_id, CsrfToken, Password, SessionId};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use gatehouse_common::UnixTime;

/// How a password login authenticates (OpenID Connect `amr`, RFC 8176).
const AMR_PASSWORD: &str = "pwd";
/// Browser session lifetime, seconds.
pub const SESSION_TTL_SECS: i64 = 8 * 3600;
/// How long a login waits for a password-hash slot before it is refused (429).
const HASH_SLOT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// A validated authorization request.
#[derive(Clone, Debug)]
pub struct AuthzRequest {
    /// The stored pushed request (RFC 9126) this came from, consumed when
    /// the code is issued (`http::par`).
    pub pushed: Option<String>,
    /// When `/authorize` first opened that pushed request: a login since
    /// then satisfies its `prompt=login` or `max_age=0`
    /// ([`oidc::session_serves`]).
    pub opened_at: Option<i64>,
    /// The client.
    pub client: Client,
    /// The exact registered redirect URI.
    pub redirect_uri: String,
    /// `state`, returned unchanged.
    pub state: Option<String>,
    /// Granted scopes (within the client's).
    pub scopes: Vec<String>,
    /// The audience.
    pub audience: String,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// RFC 9449 §10 `dpop_jkt`.
    pub dpop_jkt: Option<String>,
    /// OpenID Connect `nonce`, echoed in the id_token.
    pub nonce: Option<String>,
    /// OpenID Connect `prompt`.
    pub prompt: Prompt,
    /// OpenID Connect `max_age`, seconds.
    pub max_age: Option<i64>,
    /// OpenID Connect `login_hint` (pre-fills the username; a value too
    /// long or with control characters is ignored).
    pub login_hint: Option<String>,
    /// The `sub` of OpenID Connect `id_token_hint`: the only user a
    /// session may serve this request for.
    pub hint_sub: Option<String>,
}

/// The redirect to the client: the registered `uri` with `params` plus
/// `iss` (RFC 9207) added to its query, the query it has kept
/// (RFC 6749 §3.1.2), encoded by the `url` crate.
fn redirect_to(uri: &str, params: &[(&str, &str)], issuer: &str) -> Result<String, Error> {
    let mut url = redirect_target(uri)?;
    url.query_pairs_mut()
        .extend_pairs(params)
        .append_pair("iss", issuer);
    Ok(url.into())
}

/// `uri` as a URL the client can be sent back to: absolute, with a
/// hierarchical path and no fragment (RFC 6749 §3.1.2). Registration
/// refuses others; this holds for rows from before that check too.
fn redirect_target(uri: &str) -> Result<url::Url, Error> {
    match url::Url::parse(uri) {
        Ok(u) if u.fragment().is_none() && !u.cannot_be_a_base() => Ok(u),
        _ => Err(Error::AuthorizePage(
            "the redirect_uri cannot be used: it must be absolute, without a fragment",
        )),
    }
}

fn redirect_error(
    req_uri: &str,
    state: Option<&str>,
    issuer: &str,
    code: &'static str,
    desc: &str,
) -> Error {
    let mut params = vec![("error", code), ("error_description", desc)];
    if let Some(s) = state {
        params.push(("state", s));
    }
    match redirect_to(req_uri, &params, issuer) {
        Ok(location) => Error::AuthorizeRedirect { location, code },
        Err(e) => e,
    }
}

/// Validates an authorization request (RFC 6749 §4.1.1, RFC 7636, OAuth 2.1).
/// Errors before the redirect URI is verified are pages; after, redirects.
pub async fn validate(state: &AppState, q: &OAuthForm) -> Result<AuthzRequest, Error> {
    let client_id = q
        .get("client_id")
        .ok_or(Error::AuthorizePage("client_id is missing"))?;
    let client = clients::get(&state.db, client_id)
        .await?
        .ok_or(Error::AuthorizePage("unknown client"))?;
    let redirect_uri = match q.get("redirect_uri") {
        Some(r) if client.redirect_uris.iter().any(|u| u == r) => r.to_owned(),
        Some(_) => {
            return Err(Error::AuthorizePage(
                "redirect_uri is not registered for this client",
            ))
        }
        None => match client.redirect_uris.as_slice() {
            [only] => only.clone(),
            _ => return Err(Error::AuthorizePage("redirect_uri is required")),
        },
    };
    redirect_target(&redirect_uri)?;
    let st = q.get("state");
    let iss = &state.config.issuer;
    let fail = |code, desc: &str| redirect_error(&redirect_uri, st, iss, code, desc);
    // Not supported yet, and never silently ignored (RFC 9101 §6.1, §10.3;
    // OpenID Connect Core §3.1.2.1).
    if q.get("request").is_some() {
        return Err(fail(
            "request_not_supported",
            "request objects are not supported",
        ));
    }
    if q.get("request_uri").is_some() {
        return Err(fail(
            "request_uri_not_supported",
            "request_uri is not supported",
        ));
    }
    if q.get("response_mode").is_some_and(|m| m != "query") {
        return Err(fail(
            "invalid_request",
            "only response_mode=query is supported",
        ));
    }
    // OpenID Connect Core §3.1.2.1. An unsupported prompt value (one not in
    // prompt_values_supported, e.g. select_account) is invalid_request
    // (OpenID Connect Prompt Create §4.1).
    let prompt = Prompt::parse(q.get("prompt")).map_err(|e| match e {
        PromptError::SelectAccount => {
            fail("invalid_request", "prompt=select_account is not supported")
        }
        PromptError::Invalid => fail(
            "invalid_request",
            "prompt must be none, or any of login and consent",
        ),
    })?;
    let max_age = oidc::parse_max_age(q.get("max_age"))
        .map_err(|_| fail("invalid_request", "max_age is malformed"))?;
    let nonce = match q.get("nonce") {
        Some(n) if oidc::valid_nonce(n) => Some(n.to_owned()),
        Some(_) => return Err(fail("invalid_request", "nonce is malformed or too long")),
        None => None,
    };
    let hint_sub = q
        .get("id_token_hint")
        .map(oidc::hint_subject)
        .transpose()
        .map_err(|_| fail("invalid_request", "id_token_hint is malformed"))?;
    let login_hint = q
        .get("login_hint")
        .filter(|h| h.len() <= oidc::MAX_LOGIN_HINT_LEN && !h.chars().any(char::is_control))
        .map(str::to_owned);
    if q.get("response_type") != Some("code") {
        return Err(fail(
            "unsupported_response_type",
            "only response_type=code is supported",
        ));
    }
    if !client
        .grant_types
        .contains(&crate::domain::grant_type::GrantType::AuthorizationCode)
    {
        return Err(fail(
            "unauthorized_client",
            "the client may not use authorization_code",
        ));
    }
    let challenge = match (q.get("code_challenge"), q.get("code_challenge_method")) {
        (Some(c), Some("S256"))
            if c.len() == 43
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            c.to_owned()
        }
        (Some(_), Some("S256")) => {
            return Err(fail("invalid_request", "code_challenge is malformed"))
        }
        (Some(_), _) => {
            return Err(fail(
                "invalid_request",
                "code_challenge_method must be S256 (plain is not supported)",
            ))
        }
        (None, _) => return Err(fail("invalid_request", "PKCE code_challenge is required")),
    };
    let scopes = grant_scopes(&client, q.get("scope")).map_err(|_| {
        fail(
            "invalid_scope",
            "a requested scope is not allowed for this client",
        )
    })?;
    // OpenID Connect Core §11: `offline_access` only where consent is shown
    // and a refresh token can follow; otherwise ignored.
    let scopes = oidc::offline_access_scopes(
        scopes,
        client
            .grant_types
            .contains(&crate::domain::grant_type::GrantType::RefreshToken),
        prompt,
    );
    let audience =
        choose_audience(&client, q.get("audience"), q.get("resource")).map_err(|_| {
            fail(
                "invalid_target",
                "the audience is not allowed for this client",
            )
        })?;
    let dpop_jkt = match q.get("dpop_jkt") {
        Some(j)
            if j.len() == 43
                && j.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Some(j.to_owned())
        }
        Some(_) => return Err(fail("invalid_request", "dpop_jkt is malformed")),
        None => None,
    };
    Ok(AuthzRequest {
        pushed: None,
        opened_at: None,
        redirect_uri,
        state: st.map(str::to_owned),
        scopes,
        audience,
        code_challenge: challenge,
        dpop_jkt,
        nonce,
        prompt,
        max_age,
        login_hint,
        hint_sub,
        client,
    })
}

/// The form token for CSRF cookie value `cookie` in the login session
/// `session` (the raw session cookie, if any): HMAC-SHA256 under a key
/// derived from the KEK, so it cannot be made without the server and is
/// valid only with this cookie and this session.
fn csrf_token(state: &AppState, cookie: &str, session: Option<&str>) -> String {
    let mut ctx = aws_lc_rs::hmac::Context::with_key(&state.csrf_key);
    ctx.update(cookie.as_bytes());
    ctx.update(&[0]);
    if let Some(s) = session {
        ctx.update(SessionId::new(s.to_owned()).hash_b64().as_bytes());
    }
    gatehouse_common::b64::encode(ctx.sign().as_ref())
}

/// Whether `session` may serve `req` at `now` without a new login: it is
/// the user `id_token_hint` names, if any, and fresh enough
/// (`prompt=login`, `max_age`; [`oidc::session_serves`]).
fn serves(req: &AuthzRequest, session: &Session, now: UnixTime) -> bool {
    req.hint_sub.as_ref().is_none_or(|h| *h == session.user_id)
        && oidc::session_serves(
            session.auth_time,
            req.prompt.login,
            req.max_age,
            req.opened_at,
            now,
        )
}

/// The browser's live session, if any.
pub(crate) async fn session_of(
    state: &AppState,
    headers: &HeaderMap,
    now: UnixTime,
) -> Result<Option<Session>, Error> {
    let Some(raw) = cookies::get(headers, SESSION_COOKIE)? else {
        return Ok(None);
    };
    Ok(sessions::live(&state.db, &SessionId::new(raw).hash_b64(), now.0).await?)
}

/// What a consent covers: the scopes and the audience (a newline, which no
/// scope token contains, separates them; consent rows from before the
/// audience was part of the key match nothing and are asked again).
fn consent_key(req: &AuthzRequest) -> String {
    let mut s = req.scopes.clone();
    s.sort();
    format!("{}\n{}", s.join(" "), req.audience)
}

async fn has_consent(state: &AppState, user: &str, req: &AuthzRequest) -> Result<bool, Error> {
    Ok(sessions::has_consent(&state.db, user, &req.client.client_id, &consent_key(req)).await?)
}

/// Issues the code and redirects with `code`, `state`, `iss`.
async fn approve(
    state: &AppState,
    session: &Session,
    req: &AuthzRequest,
    now: UnixTime,
) -> Result<Response, Error> {
    // One code per pushed request, however many approvals race (RFC 9126 §4).
    if let Some(pushed) = &req.pushed {
        if !crate::domain::par::consume(&state.db, pushed, now).await? {
            return Err(Error::AuthorizePage(
                "this authorization request was already used or has expired; start again from the application",
            ));
        }
    }
    let code = grants::issue_code(
        &state.db,
        &CodeGrant {
            client_id: req.client.client_id.clone(),
            user_id: session.user_id.clone(),
            redirect_uri: req.redirect_uri.clone(),
            scopes: req.scopes.clone(),
            audience: req.audience.clone(),
            code_challenge: req.code_challenge.clone(),
            dpop_jkt: req.dpop_jkt.clone(),
            session: ApprovingSession {
                sid: session.sid.clone(),
                auth_time: session.auth_time,
                amr: session.amr.clone(),
            },
            nonce: req.nonce.clone(),
        },
        now,
    )
    .await?;
    let mut params = vec![("code", code.expose())];
    if let Some(s) = &req.state {
        params.push(("state", s.as_str()));
    }
    let location = redirect_to(&req.redirect_uri, &params, &state.config.issuer)?;
    let mut resp = StatusCode::SEE_OTHER.into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&location) {
        h.insert(header::LOCATION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// The Content-Security-Policy of the login and consent pages.
///
/// `form-action` also names the origin of the client's (registered, exactly
/// matched) redirect URI: browsers apply `form-action` to every redirect
/// that follows a form submission (CSP3 §6.2.1.2), and approving consent —
/// or logging in with consent already given — ends in a 303 to the client.
/// With `'self'` alone Chromium blocks that redirect and the user never gets
/// back to the app. A URI whose origin cannot be written safely as a CSP
/// source gets `'self'` only.
#[must_use]
pub fn page_csp(redirect_uri: &str) -> String {
    let target = reqwest::Url::parse(redirect_uri)
        .ok()
        .map(|u| {
            let origin = u.origin();
            if origin.is_tuple() {
                origin.ascii_serialization()
            } else {
                // A private-use scheme (native apps, RFC 8252 §7.1): a scheme-source.
                format!("{}:", u.scheme())
            }
        })
        .filter(|src| {
            src.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.:/[]".contains(&b))
        });
    let form_action = match target {
        Some(src) => format!("'self' {src}"),
        None => "'self'".to_owned(),
    };
    format!("default-src 'none'; form-action {form_action}; frame-ancestors 'none'")
}

/// Renders `body` with a CSRF token (for the request's CSRF cookie, or a
/// new one, and its login session), for a request that returns to `redirect_uri`.
pub(crate) fn with_csrf(
    state: &AppState,
    headers: &HeaderMap,
    redirect_uri: &str,
    render: impl FnOnce(&str) -> String,
) -> Result<Response, Error> {
    let (value, fresh) = match cookies::get(headers, CSRF_COOKIE)? {
        Some(t) if t.len() == 43 => (t, false),
        _ => (CsrfToken::generate()?.expose().to_owned(), true),
    };
    let session = cookies::get(headers, SESSION_COOKIE)?;
    let token = csrf_token(state, &value, session.as_deref());
    let mut resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        render(&token),
    )
        .into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    let csp = HeaderValue::from_str(&page_csp(redirect_uri)).unwrap_or_else(|_| {
        HeaderValue::from_static("default-src 'none'; form-action 'self'; frame-ancestors 'none'")
    });
    h.insert(header::CONTENT_SECURITY_POLICY, csp);
    if fresh {
        return Ok((cookies::set(CSRF_COOKIE, value, SESSION_TTL_SECS), resp).into_response());
    }
    Ok(resp)
}

/// `GET /authorize`.
#[utoipa::path(
    get,
    path = "/authorize",
    tag = "authorize",
    summary = "Authorization endpoint (OAuth 2.1 §4.1.1)",
    description = "response_type=code with PKCE S256; shows the login or consent page, or redirects to the client with code, state and iss (RFC 9207) or an error.",
    params(super::schema::AuthorizeQuery),
    responses(
        (status = 200, description = "The login or consent page", body = String, content_type = "text/html"),
        (status = 303, description = "To the client's redirect URI with `code` or `error`, `state` and `iss`"),
        (status = 400, description = "An error page (the redirect URI cannot be trusted)", body = String, content_type = "text/html"),
        (status = 429, description = "Too many requests from this address", body = String, content_type = "text/html"),
    )
)]
pub async fn authorize(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, Error> {
    let reading = state.clock.now();
    let now = reading.secs();
    super::limit_ip(&state, ip, reading.millis())?;
    let query = query.unwrap_or_default();
    let q = OAuthForm::parse(query.as_bytes())
        .map_err(|_| Error::AuthorizePage("the request is malformed"))?;
    let req = super::par::authorization_request(&state, &q).await?;
    let fail = |code, desc: &str| {
        redirect_error(
            &req.redirect_uri,
            req.state.as_deref(),
            &state.config.issuer,
            code,
            desc,
        )
    };
    // A session counts unless the client asks for a fresh login
    // (`prompt=login`, `max_age=0`: one made in this interaction) or it
    // authenticated longer ago than `max_age`.
    let session = session_of(&state, &headers, now)
        .await?
        .filter(|s| serves(&req, s, now));
    let Some(session) = session else {
        if req.prompt.none {
            return Err(fail("login_required", "the user must sign in"));
        }
        return with_csrf(&state, &headers, &req.redirect_uri, |csrf| {
            pages::login(&query, csrf, None, req.login_hint.as_deref())
        });
    };
    // A public client cannot prove the redirect reaches it (any local
    // process may listen on a loopback port, RFC 8252 §8.6): the user
    // approves every code (RFC 6749 §10.2) — so `prompt=none` from a public
    // client is always `consent_required`.
    // Offline access is never approved from a remembered consent: the user
    // sees the consent page for it every time (OpenID Connect Core §11).
    if !req.client.public
        && !req.prompt.consent
        && !oidc::is_offline(&req.scopes)
        && has_consent(&state, &session.user_id, &req).await?
    {
        return approve(&state, &session, &req, now).await;
    }
    if req.prompt.none {
        return Err(fail(
            "consent_required",
            "the user must approve this request",
        ));
    }
    with_csrf(&state, &headers, &req.redirect_uri, |csrf| {
        pages::consent(&query, csrf, &req.client.name, &req.audience, &req.scopes)
    })
}

pub(crate) fn check_csrf(
    state: &AppState,
    headers: &HeaderMap,
    form: &OAuthForm,
) -> Result<(), Error> {
    let session = cookies::get(headers, SESSION_COOKIE)?;
    match (cookies::get(headers, CSRF_COOKIE)?, form.get("csrf")) {
        (Some(c), Some(f))
            if ct_eq(
                csrf_token(state, &c, session.as_deref()).as_bytes(),
                f.as_bytes(),
            ) =>
        {
            Ok(())
        }
        _ => Err(Error::AuthorizePage(
            "the form expired or was not sent by this site (CSRF check failed); start again",
        )),
    }
}

/// The login throttle's key for a client address: IPv4 as is, IPv6 by its
/// /64 (one subscriber's addresses).
fn address_key(ip: Option<std::net::IpAddr>) -> String {
    match ip {
        Some(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let [a, b, c, d, ..] = v6.segments();
            format!("{a:x}:{b:x}:{c:x}:{d:x}::/64")
        }
        Some(ip) => ip.to_canonical().to_string(),
        None => "unknown".to_owned(),
    }
}

/// The login page again, refused with 429 and `Retry-After`.
fn login_refused(
    state: &AppState,
    headers: &HeaderMap,
    req: &AuthzRequest,
    query: &str,
    message: &str,
    retry_after: u64,
) -> Result<Response, Error> {
    let mut resp = with_csrf(state, headers, &req.redirect_uri, |csrf| {
        pages::login(query, csrf, Some(message), req.login_hint.as_deref())
    })?;
    *resp.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    Ok(resp)
}

/// `POST /authorize/login`: checks CSRF and the password, starts a session,
/// and returns to `/authorize` with the original request.
#[utoipa::path(
    post,
    path = "/authorize/login",
    tag = "authorize",
    summary = "The login form (CSRF-protected)",
    request_body(content = super::schema::LoginForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Back to /authorize with a session cookie"),
        (status = 401, description = "The login page again, with an error", body = String, content_type = "text/html"),
        (status = 400, description = "An error page", body = String, content_type = "text/html"),
        (status = 429, description = "Too many attempts", body = String, content_type = "text/html"),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    form: OAuthForm,
) -> Result<Response, Error> {
    let reading = state.clock.now();
    let now = reading.secs();
    // Password guessing is limited per IP like every credential check.
    let now_ms = reading.millis();
    super::limit_ip(&state, ip, now_ms)?;
    check_csrf(&state, &headers, &form)?;
    let query = form.get("request").unwrap_or_default().to_owned();
    let q = OAuthForm::parse(query.as_bytes())
        .map_err(|_| Error::AuthorizePage("the request is malformed"))?;
    let req = super::par::authorization_request(&state, &q).await?;
    let username = form.get("username").unwrap_or_default();
    let password = Password::new(form.get("password").unwrap_or_default().to_owned());
    // Guessing a password backs off per username (known or not: the same
    // answer and no hash either way) at the caller's address (an IPv6 /64),
    // strictly, so a stranger's wrong guesses do not lock the user out; and
    // per username from anywhere, more loosely, against guessing spread over
    // many addresses, except at addresses the user signed in from before.
    // Each attempt is counted before the hash (taken back on success), so
    // concurrent guesses cannot all pass the check.
    let user_key: String = username.chars().take(64).collect();
    let pair_key = format!("{}\n{user_key}", address_key(ip));
    let known = state.login_known.knows(&pair_key, now_ms);
    let throttled = state
        .login_failures
        .attempt(&pair_key, now_ms)
        .and_then(|()| {
            if known {
                Ok(())
            } else {
                // Refused here: not an attempt at this address either.
                state
                    .login_user_failures
                    .attempt(&user_key, now_ms)
                    .inspect_err(|_| state.login_failures.forgive(&pair_key))
            }
        });
    if let Err(retry) = throttled {
        return login_refused(
            &state,
            &headers,
            &req,
            &query,
            "Too many failed sign-ins for this username; wait and try again.",
            retry,
        );
    }
    // Each hash holds 19 MiB: a few at a time; the rest wait briefly.
    let slot = match tokio::time::timeout(
        HASH_SLOT_WAIT,
        std::sync::Arc::clone(&state.password_hashes).acquire_owned(),
    )
    .await
    {
        Ok(Ok(slot)) => slot,
        Ok(Err(_)) | Err(_) => {
            // Not checked, so not a failure.
            state.login_failures.forgive(&pair_key);
            if !known {
                state.login_user_failures.forgive(&user_key);
            }
            return login_refused(
                &state,
                &headers,
                &req,
                &query,
                "The server is busy; try again in a moment.",
                1,
            );
        }
    };
    let verified = users::verify(&state.db, username, &password, slot).await?;
    if verified.is_some() {
        state.login_failures.succeeded(&pair_key);
        if !known {
            state.login_user_failures.forgive(&user_key);
        }
        state.login_known.remember(&pair_key, now_ms);
    }
    let Some(user) = verified else {
        // Audited at a bounded rate per IP, like client authentication failures.
        state
            .audit_login_failure(username, &req.client.client_id, ip, now)
            .await?;
        let mut resp = with_csrf(&state, &headers, &req.redirect_uri, |csrf| {
            pages::login(
                &query,
                csrf,
                Some("Wrong username or password."),
                req.login_hint.as_deref(),
            )
        })?;
        *resp.status_mut() = StatusCode::UNAUTHORIZED;
        return Ok(resp);
    };
    // The application asked for one account (`id_token_hint`): another
    // one signing in would only be sent back here.
    if req.hint_sub.as_ref().is_some_and(|h| *h != user.user_id) {
        let mut resp = with_csrf(&state, &headers, &req.redirect_uri, |csrf| {
            pages::login(
                &query,
                csrf,
                Some("The application asked for another account; sign in as that user."),
                req.login_hint.as_deref(),
            )
        })?;
        *resp.status_mut() = StatusCode::UNAUTHORIZED;
        return Ok(resp);
    }
    // Another user's live session in this browser loses its cookie to this
    // login, so no logout here could reach it again: it ends now, as at a
    // logout (its online grants revoked; offline ones stay).
    if let Some(replaced) = session_of(&state, &headers, now).await? {
        if replaced.user_id != user.user_id {
            crate::domain::logout::end_session(
                &state.db,
                &state.config,
                &replaced.user_id,
                &replaced.sid,
                "another user signed in in this browser",
                now,
            )
            .await?;
        }
    }
    // A new cookie at every login (no fixation); the same user signing in
    // again in this browser keeps the session's public `sid`.
    let cookie = SessionId::generate()?;
    let previous =
        cookies::get(&headers, SESSION_COOKIE)?.map(|raw| SessionId::new(raw).hash_b64());
    sessions::login(
        &state.db,
        previous.as_deref(),
        &NewSession {
            id_hash: &cookie.hash_b64(),
            sid: &random_id()?,
            user_id: &user.user_id,
            amr: AMR_PASSWORD,
            now: now.0,
            expires_at: now.0.saturating_add(SESSION_TTL_SECS),
        },
    )
    .await?;
    let mut resp = StatusCode::SEE_OTHER.into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&back_to_authorize(&after_login(&query))) {
        h.insert(header::LOCATION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let session = cookies::set(SESSION_COOKIE, cookie.expose().to_owned(), SESSION_TTL_SECS);
    Ok((session, resp).into_response())
}

/// The WHATWG URL query percent-encode set (controls, space, `"`, `#`,
/// `<`, `>`), which the `url` crate applies to a query it is given.
const QUERY: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>');

/// The request to return to after a login: the original one without
/// `prompt=login` and `max_age=0`, which that login has just satisfied
/// (kept, they would ask for it again, forever). Any other `max_age` holds
/// for the fresh session by itself. Every other parameter stays as sent.
fn after_login(query: &str) -> String {
    let mut kept: Vec<String> = Vec::new();
    // Segment by segment: every other parameter stays exactly as sent.
    for segment in query.split('&') {
        let Some((k, v)) = form_urlencoded::parse(segment.as_bytes()).next() else {
            kept.push(segment.to_owned());
            continue;
        };
        match k.as_ref() {
            "prompt" => {
                let rest: Vec<&str> = v
                    .split(' ')
                    .filter(|p| !p.is_empty() && *p != "login")
                    .collect();
                if !rest.is_empty() {
                    kept.push(
                        form_urlencoded::Serializer::new(String::new())
                            .append_pair("prompt", &rest.join(" "))
                            .finish(),
                    );
                }
            }
            // `0` however written (`00` parses as zero too).
            "max_age" if oidc::parse_max_age(Some(&v)) == Ok(Some(0)) => {}
            _ => kept.push(segment.to_owned()),
        }
    }
    kept.join("&")
}

/// `/authorize` with the original request's query, encoded as the `url`
/// crate would (a `#` in it cannot start a fragment).
fn back_to_authorize(query: &str) -> String {
    format!(
        "/authorize?{}",
        percent_encoding::utf8_percent_encode(query, QUERY)
    )
}

/// `POST /authorize/consent`: checks CSRF and the session; approve remembers
/// the consent and redirects with a code, deny redirects with `access_denied`.
#[utoipa::path(
    post,
    path = "/authorize/consent",
    tag = "authorize",
    summary = "The consent form (CSRF-protected)",
    request_body(content = super::schema::ConsentForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "To the client with a code, or with `access_denied`"),
        (status = 400, description = "An error page", body = String, content_type = "text/html"),
    )
)]
pub async fn consent(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    form: OAuthForm,
) -> Result<Response, Error> {
    let reading = state.clock.now();
    let now = reading.secs();
    super::limit_ip(&state, ip, reading.millis())?;
    check_csrf(&state, &headers, &form)?;
    let query = form.get("request").unwrap_or_default();
    let q = OAuthForm::parse(query.as_bytes())
        .map_err(|_| Error::AuthorizePage("the request is malformed"))?;
    let req = super::par::authorization_request(&state, &q).await?;
    let Some(session) = session_of(&state, &headers, now).await? else {
        return Err(Error::AuthorizePage("your session has ended; start again"));
    };
    // The page may have waited: a `max_age` the session has outgrown since
    // is not approved with the old authentication; nor is a request that
    // asks for a login (`prompt=login`, `max_age=0`) not made in this
    // interaction, or for another user (`id_token_hint`) — the login page's
    // own `request` and `csrf` posted here would otherwise skip it.
    if !serves(&req, &session, now) {
        return Err(Error::AuthorizePage(
            "your sign-in does not fit this request (it is too old, or another account's); start again",
        ));
    }
    match form.get("decision") {
        Some("approve") => {
            sessions::insert_consent(
                &state.db,
                &session.user_id,
                &req.client.client_id,
                &consent_key(&req),
                now.0,
            )
            .await?;
            approve(&state, &session, &req, now).await
        }
        _ => Err(redirect_error(
            &req.redirect_uri,
            req.state.as_deref(),
            &state.config.issuer,
            "access_denied",
            "the user denied the request",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::{back_to_authorize, page_csp, redirect_to};

    /// RFC 6749 §3.1.2: the redirect URI's query is retained when parameters
    /// are added; it has no fragment.
    #[test]
    fn the_redirect_keeps_the_registered_query_and_refuses_fragments() {
        let to = |uri| {
            redirect_to(
                uri,
                &[("code", "c/+="), ("state", "a b&c")],
                "https://iss.example",
            )
        };
        assert_eq!(
            to("https://app.example/cb").unwrap(),
            "https://app.example/cb?code=c%2F%2B%3D&state=a+b%26c&iss=https%3A%2F%2Fiss.example"
        );
        assert_eq!(
            to("https://app.example/cb?x=1&y=%7E").unwrap(),
            "https://app.example/cb?x=1&y=%7E&code=c%2F%2B%3D&state=a+b%26c&iss=https%3A%2F%2Fiss.example"
        );
        assert_eq!(
            to("https://app.example/cb?").unwrap(),
            "https://app.example/cb?code=c%2F%2B%3D&state=a+b%26c&iss=https%3A%2F%2Fiss.example"
        );
        for bad in [
            "https://app.example/cb#f",
            "https://app.example/cb?x#",
            "/cb",
            "mailto:a@b",
        ] {
            assert!(to(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn after_login_drops_only_what_the_login_satisfied() {
        use super::after_login;
        assert_eq!(after_login("a=1&state=x%20y#z"), "a=1&state=x%20y#z");
        assert_eq!(after_login("a=1&prompt=login&b=2"), "a=1&b=2");
        assert_eq!(
            after_login("prompt=login%20consent&max_age=0"),
            "prompt=consent"
        );
        assert_eq!(
            after_login("prompt=consent+login&max_age=10"),
            "prompt=consent&max_age=10"
        );
        assert_eq!(after_login("prompt=none"), "prompt=none");
        assert_eq!(after_login("a=1&max_age=000"), "a=1");
        assert_eq!(after_login("max_age=010"), "max_age=010");
    }

    #[test]
    fn the_return_to_authorize_cannot_gain_a_fragment() {
        assert_eq!(back_to_authorize("a=1&b=%20"), "/authorize?a=1&b=%20");
        assert_eq!(
            back_to_authorize("a=1#x \"<>"),
            "/authorize?a=1%23x%20%22%3C%3E"
        );
    }

    #[test]
    fn form_action_allows_the_redirect_uris_origin_and_nothing_more() {
        assert_eq!(
            page_csp("https://app.example/cb?x=1"),
            "default-src 'none'; form-action 'self' https://app.example; frame-ancestors 'none'"
        );
        assert_eq!(
            page_csp("http://127.0.0.1:8070/"),
            "default-src 'none'; form-action 'self' http://127.0.0.1:8070; frame-ancestors 'none'"
        );
        // Native apps' private-use schemes (RFC 8252 §7.1): a scheme-source.
        assert_eq!(
            page_csp("com.example.app:/oauth2redirect"),
            "default-src 'none'; form-action 'self' com.example.app:; frame-ancestors 'none'"
        );
        // Nothing that could end the directive or add a source gets through.
        for hostile in [
            "https://a.example;script-src *",
            "https://a'b.example/",
            "not a url",
        ] {
            let csp = page_csp(hostile);
            assert_eq!(
                csp, "default-src 'none'; form-action 'self'; frame-ancestors 'none'",
                "{hostile}"
            );
        }
    }
}
