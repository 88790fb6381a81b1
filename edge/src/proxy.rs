//! Forwarding verified requests upstream.
//!
//! The request goes to the upstream at its [`CanonicalPath`] — exactly the
//! path the route policy judged — with its method as sent. Incoming
//! `Gatehouse-*` headers are removed first, also when spelled with `_` for
//! `-` (`Gatehouse_Sub`, which CGI, WSGI and Rack read as
//! `HTTP_GATEHOUSE_SUB`), so a caller can never forge identity;
//! `Authorization` and `DPoP` are removed too unless `STRIP_CREDENTIALS=false`
//! (the upstream trusts the edge, not the token). The verified identity is
//! then added, with a signed `Gatehouse-Assertion` when
//! `IDENTITY_SIGNING_KEY` is set (see [`crate::assertion`]), and the body
//! streams through untouched, as does the upstream's response.
//!
//! Requests and responses stay `web_sys` objects from the upstream `fetch`
//! to the handler's return: worker-rs's `Response` wrapper would rebuild the
//! JS `Response` on each conversion (twice per forwarded request), which
//! BENCHMARKS.md measured as part of the edge's per-request cost.

use crate::assertion;
use crate::config::EdgeConfig;
use crate::forward_headers::{is_identity_header, merge_list};
use crate::trace::{RequestIds, REQUEST_ID_HEADER, TRACEPARENT, TRACESTATE};
use gatehouse_common::access_token::AccessToken;
use gatehouse_common::policy::CanonicalPath;
use gatehouse_common::UnixTime;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use worker::{Result, Url};

/// The incoming request as the handler reads it: the runtime's JS object,
/// its headers, method and parsed URL, each read once. (worker-rs's
/// `Request` wrapper also reads `request.cf` on every request, a JSON
/// object workerd builds on access: 3 % of the isolate's CPU in a profile.)
pub struct Incoming {
    raw: web_sys::Request,
    headers: web_sys::Headers,
    /// The request method, as sent (never mapped onto a known one: an
    /// unknown method is checked against a proof's `htm` and forwarded as is).
    pub method: String,
    /// The request URL.
    pub url: Url,
}

impl Incoming {
    /// Reads `raw`'s method, headers and URL.
    pub fn new(raw: web_sys::Request) -> Result<Self> {
        let url = Url::parse(&raw.url())
            .map_err(|_| worker::Error::RustError("the request URL is unreadable".into()))?;
        Ok(Self {
            headers: raw.headers(),
            method: raw.method(),
            url,
            raw,
        })
    }

    /// The URL's path.
    pub fn path(&self) -> &str {
        self.url.path()
    }

    /// A header's value (several values joined by `, `, as `Headers.get` does).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).ok().flatten()
    }

    /// Whether the header is present.
    pub fn has_header(&self, name: &str) -> bool {
        self.headers.has(name).unwrap_or(false)
    }

    /// The caller's address (`CF-Connecting-IP`; "local" under `wrangler dev`
    /// without it), the key of its rate limits.
    pub fn client_ip(&self) -> String {
        self.header("cf-connecting-ip")
            .unwrap_or_else(|| "local".to_owned())
    }

    /// worker-rs's wrapper, for the rare route that needs its body helpers.
    pub fn into_worker_request(self) -> worker::Request {
        worker::Request::from(self.raw)
    }
}

/// Forwards `req` to the upstream at `path` (the canonical form of its
/// path, the one the route policy judged) with `token`'s identity attached
/// (none for public routes).
pub async fn forward(
    req: Incoming,
    path: &CanonicalPath,
    cfg: &EdgeConfig,
    token: Option<&AccessToken>,
    ids: &RequestIds,
    now: UnixTime,
) -> Result<web_sys::Response> {
    let url = &req.url;
    let mut target = format!("{}{}", cfg.upstream_url, path.as_str());
    if let Some(q) = url.query() {
        target.push('?');
        target.push_str(q);
    }
    let headers = web_sys::Headers::new_with_headers(&req.headers)?;
    let mut names = Vec::new();
    for name in req.headers.keys() {
        if let Some(name) = name?.as_string() {
            names.push(name);
        }
    }
    for name in names {
        let lower = name.to_ascii_lowercase();
        if is_identity_header(&lower)
            || (cfg.strip_credentials && (lower == "authorization" || lower == "dpop"))
            || (lower == TRACESTATE && !ids.continued)
        {
            headers.delete(&name)?;
        }
    }
    // The trace continues through the edge's own span; the caller's
    // `traceparent` (replaced here) and `Gatehouse-Request-Id` (removed with
    // the identity headers) never pass through as sent.
    headers.set(TRACEPARENT, &ids.traceparent())?;
    headers.set(REQUEST_ID_HEADER, &ids.request_id)?;
    if let Some(token) = token {
        headers.set("gatehouse-sub", &token.sub)?;
        headers.set("gatehouse-client-id", &token.client_id)?;
        headers.set("gatehouse-scope", &token.scope.join(" "))?;
        // Empty when the issuer's profile does not require `jti` and the
        // token has none (Auth0's default profile, Entra ID): not sent then.
        if !token.jti.is_empty() {
            headers.set("gatehouse-token-id", &token.jti)?;
        }
        headers.set("gatehouse-issuer", &token.iss)?;
        if !token.roles.is_empty() {
            headers.set(
                "gatehouse-roles",
                &crate::forward_headers::roles_value(&token.roles),
            )?;
        }
        if let Some(jkt) = &token.cnf_jkt {
            headers.set("gatehouse-jkt", jkt)?;
        }
        // RFC 8693 §4.1: the outermost `act` is the current actor (for
        // exchanged tokens); the upstream learns who acts for `sub`.
        if let Some(actor) = token
            .act
            .as_ref()
            .and_then(|act| act.get("sub"))
            .and_then(|sub| sub.as_str())
        {
            headers.set("gatehouse-act", actor)?;
        }
    }
    if let Some(signer) = &cfg.identity_assertion {
        let jws = assertion::sign(signer, &req.method, path.as_str(), token, now)
            .await
            .map_err(|_| {
                worker::Error::RustError("the identity assertion could not be signed".into())
            })?;
        headers.set(assertion::HEADER, &jws)?;
    }
    let init = web_sys::RequestInit::new();
    init.set_method(&req.method);
    init.set_headers(&headers);
    if let Some(body) = req.raw.body() {
        init.set_body(&JsValue::from(body));
    }
    init.set_redirect(web_sys::RequestRedirect::Manual);
    // fetch(url, init) directly, as a JS worker would: no Request object.
    let scope: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    let resp = JsFuture::from(scope.fetch_with_str_and_init(&target, &init)).await?;
    Ok(resp.unchecked_into())
}

/// The CORS answer for an allowed `origin` (`allow` is the
/// `Access-Control-Allow-Origin` value) merged into `inner`'s headers: `Vary`
/// gains `Origin` (its other members kept), the expose list gains the
/// edge's headers, and an upstream's own `Access-Control-Allow-Origin` is
/// kept (the upstream decided). Returned as headers to add with
/// [`with_headers`] (together with any other, in one rebuild).
pub fn cors_headers(inner: &web_sys::Response, allow: &str) -> Vec<(String, String)> {
    const EXPOSE: [&str; 6] = [
        "WWW-Authenticate",
        "DPoP-Nonce",
        "Retry-After",
        "RateLimit",
        "RateLimit-Policy",
        "Gatehouse-Request-Id", // REQUEST_ID_HEADER, as browsers document it
    ];
    let h = inner.headers();
    let get = |name: &str| h.get(name).ok().flatten();
    let mut extra: Vec<(String, String)> = Vec::new();
    if get("access-control-allow-origin").is_none() {
        extra.push(("access-control-allow-origin".into(), allow.to_owned()));
    }
    let expose = merge_list(get("access-control-expose-headers"), &EXPOSE);
    extra.push(("access-control-expose-headers".into(), expose));
    let vary = get("vary");
    if !vary.as_deref().is_some_and(|v| {
        v.split(',')
            .map(str::trim)
            .any(|m| m == "*" || m.eq_ignore_ascii_case("origin"))
    }) {
        extra.push(("vary".into(), merge_list(vary, &["Origin"])));
    }
    extra
}

/// `resp` with `extra` headers added. Upstream responses have immutable
/// headers, so the status, headers, (streamed) body and WebSocket move into
/// a new response (the reason phrase too, when printable ASCII).
pub fn with_headers(
    inner: web_sys::Response,
    extra: &[(String, String)],
) -> Result<web_sys::Response> {
    if extra.is_empty() {
        return Ok(inner);
    }
    let headers = web_sys::Headers::new_with_headers(&inner.headers())?;
    for (k, v) in extra {
        if k.eq_ignore_ascii_case("www-authenticate") {
            headers.append(k, v)?;
        } else {
            headers.set(k, v)?;
        }
    }
    let init = web_sys::ResponseInit::new();
    init.set_status(inner.status());
    // The upstream's reason phrase is kept only when plainly printable
    // (RFC 9110 §15: HTAB, SP, VCHAR): workerd refuses others ("Invalid
    // statusText"), which turned the upstream's answer into a 500. A phrase
    // carries no meaning (HTTP/2 has none), so an odd one is dropped.
    let text = inner.status_text();
    if text
        .bytes()
        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
    {
        init.set_status_text(&text);
    }
    init.set_headers(&headers);
    // A WebSocket the upstream accepted (101) moves into the new response
    // with the socket: workerd builds a 101 only with its `webSocket` (else
    // a RangeError, and the upgrade the upstream accepted becomes a 500).
    let socket = js_sys::Reflect::get(&inner, &JsValue::from_str("webSocket"))?;
    if !socket.is_null() && !socket.is_undefined() {
        js_sys::Reflect::set(&init, &JsValue::from_str("webSocket"), &socket)?;
    }
    let body = inner.body();
    Ok(web_sys::Response::new_with_opt_readable_stream_and_init(
        body.as_ref(),
        &init,
    )?)
}
