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
use crate::forward_headers::{is_identity_header, joined, merge_list, parse_request_fields};
use crate::trace::{RequestIds, REQUEST_ID_HEADER, TRACEPARENT, TRACESTATE};
use gatehouse_common::access_token::AccessToken;
use gatehouse_common::policy::CanonicalPath;
use gatehouse_common::UnixTime;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use worker::{Result, Url};

// Each call between wasm and JS costs a string copy each way and glue on
// both sides; made per header (a `get`, a `set`, a `delete`, an iterator
// step) they were part of the edge's CPU above a JS worker's (issue 21).
// So the request is read in one call, the upstream request built and sent
// in one, and the response rebuilt in one: the strings cross joined by NUL,
// which no header name or value, method or URL can hold (the runtime
// refuses it in a header value; the edge refuses to send one and checks
// the count of what it reads, see `forward_headers`). What is stripped,
// set and kept is decided here in Rust; the JS only applies the lists.
#[wasm_bindgen(inline_js = r#"
export function ghRead(request) {
  let s = "", n = 0;
  for (const [k, v] of request.headers) (s += "\0" + k + "\0" + v), n++;
  return n + "\0" + request.method + "\0" + request.url + s;
}
export function ghForward(request, target, method, remove, set) {
  const h = new Headers(request.headers);
  if (remove) for (const n of remove.split("\0")) h.delete(n);
  const kv = set.split("\0");
  for (let i = 0; i + 1 < kv.length; i += 2) h.set(kv[i], kv[i + 1]);
  return fetch(target, { method, headers: h, body: request.body, redirect: "manual" });
}
export function ghWithHeaders(inner, set, append) {
  const h = new Headers(inner.headers);
  let kv = set ? set.split("\0") : [];
  for (let i = 0; i + 1 < kv.length; i += 2) h.set(kv[i], kv[i + 1]);
  kv = append ? append.split("\0") : [];
  for (let i = 0; i + 1 < kv.length; i += 2) h.append(kv[i], kv[i + 1]);
  const init = { status: inner.status, headers: h };
  const text = inner.statusText;
  if (/^[\x20-\x7e]*$/.test(text)) init.statusText = text;
  const ws = inner.webSocket;
  if (ws !== null && ws !== undefined) init.webSocket = ws;
  return new Response(inner.body, init);
}
"#)]
extern "C" {
    /// The number of headers, the method, the URL and every header (`name`,
    /// `value`, names lower-case as the runtime iterates them), NUL-separated.
    #[wasm_bindgen(js_name = ghRead)]
    fn read_request(request: &web_sys::Request) -> String;

    /// `fetch(target, {method, headers, body, redirect: "manual"})` with
    /// `request`'s headers less the NUL-separated names in `remove`, then
    /// the NUL-separated name/value pairs in `set` set, and its body
    /// (streamed).
    #[wasm_bindgen(catch, js_name = ghForward)]
    fn fetch_upstream(
        request: &web_sys::Request,
        target: &str,
        method: &str,
        remove: &str,
        set: &str,
    ) -> std::result::Result<js_sys::Promise, JsValue>;

    /// A new response with `inner`'s status, headers (plus the pairs in
    /// `set` set and those in `append` appended), body and WebSocket, and
    /// its reason phrase when plainly printable.
    #[wasm_bindgen(catch, js_name = ghWithHeaders)]
    fn rebuild_response(
        inner: &web_sys::Response,
        set: &str,
        append: &str,
    ) -> std::result::Result<web_sys::Response, JsValue>;
}

/// The incoming request as the handler reads it: the runtime's JS object
/// and its method, URL and headers, read in one call. (worker-rs's
/// `Request` wrapper also reads `request.cf` on every request, a JSON
/// object workerd builds on access: 3 % of the isolate's CPU in a profile.)
pub struct Incoming {
    raw: web_sys::Request,
    /// `(name, value)`, names lower-case, in the runtime's order.
    headers: Vec<(String, String)>,
    /// The request method, as sent (never mapped onto a known one: an
    /// unknown method is checked against a proof's `htm` and forwarded as is).
    pub method: String,
    /// The request URL.
    pub url: Url,
}

impl Incoming {
    /// Reads `raw`'s method, URL and headers.
    pub fn new(raw: web_sys::Request) -> Result<Self> {
        let all = read_request(&raw);
        let fields = parse_request_fields(&all)
            .ok_or_else(|| worker::Error::RustError("the request headers are unreadable".into()))?;
        let url = Url::parse(fields.url)
            .map_err(|_| worker::Error::RustError("the request URL is unreadable".into()))?;
        let method = fields.method.to_owned();
        let headers = fields.headers;
        Ok(Self {
            headers,
            method,
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
        let mut values = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str());
        let first = values.next()?;
        Some(values.fold(first.to_owned(), |mut all, v| {
            all.push_str(", ");
            all.push_str(v);
            all
        }))
    }

    /// Whether the header is present.
    pub fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
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

/// [`joined`], or the error a header value holding a NUL is.
fn joined_or_err<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<String> {
    joined(items).ok_or_else(|| worker::Error::RustError("a header value holds a NUL byte".into()))
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
    let remove = joined_or_err(
        req.headers
            .iter()
            .map(|(name, _)| name.as_str())
            .filter(|name| {
                is_identity_header(name)
                    || (cfg.strip_credentials && (*name == "authorization" || *name == "dpop"))
                    || (*name == TRACESTATE && !ids.continued)
            }),
    )?;
    // The trace continues through the edge's own span; the caller's
    // `traceparent` (replaced here) and `Gatehouse-Request-Id` (removed with
    // the identity headers) never pass through as sent.
    let mut set: Vec<(&str, String)> = vec![
        (TRACEPARENT, ids.traceparent()),
        (REQUEST_ID_HEADER, ids.request_id.clone()),
    ];
    if let Some(token) = token {
        set.push(("gatehouse-sub", token.sub.clone()));
        set.push(("gatehouse-client-id", token.client_id.clone()));
        set.push(("gatehouse-scope", token.scope.join(" ")));
        // Empty when the issuer's profile does not require `jti` and the
        // token has none (Auth0's default profile, Entra ID): not sent then.
        if !token.jti.is_empty() {
            set.push(("gatehouse-token-id", token.jti.clone()));
        }
        set.push(("gatehouse-issuer", token.iss.clone()));
        if !token.roles.is_empty() {
            set.push((
                "gatehouse-roles",
                crate::forward_headers::roles_value(&token.roles),
            ));
        }
        if let Some(jkt) = &token.cnf_jkt {
            set.push(("gatehouse-jkt", jkt.clone()));
        }
        // RFC 8693 §4.1: the outermost `act` is the current actor (for
        // exchanged tokens); the upstream learns who acts for `sub`.
        if let Some(actor) = token
            .act
            .as_ref()
            .and_then(|act| act.get("sub"))
            .and_then(|sub| sub.as_str())
        {
            set.push(("gatehouse-act", actor.to_owned()));
        }
    }
    if let Some(signer) = &cfg.identity_assertion {
        let jws = assertion::sign(signer, &req.method, path.as_str(), token, now)
            .await
            .map_err(|_| {
                worker::Error::RustError("the identity assertion could not be signed".into())
            })?;
        set.push((assertion::HEADER, jws));
    }
    let set = joined_or_err(set.iter().flat_map(|(k, v)| [*k, v.as_str()]))?;
    // fetch(url, init) directly, as a JS worker would: no Request object.
    let promise = fetch_upstream(&req.raw, &target, &req.method, &remove, &set)?;
    let resp = JsFuture::from(promise).await?;
    Ok(resp.into())
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

/// `resp` with `extra` headers added (`WWW-Authenticate` appended, the
/// others set). Upstream responses have immutable headers, so the status,
/// headers, (streamed) body and WebSocket move into a new response, built in
/// one call into JS.
///
/// The upstream's reason phrase is kept only when plainly printable (SP
/// and VCHAR): workerd refuses others ("Invalid statusText"), HTAB too
/// although RFC 9110 §15 allows it, which turned the upstream's answer
/// into a 500. A phrase carries no meaning (HTTP/2 has none), so an odd one
/// is dropped. A
/// WebSocket the upstream accepted (101) moves into the new response with
/// the socket: workerd builds a 101 only with its `webSocket` (else a
/// RangeError, and the upgrade the upstream accepted becomes a 500).
pub fn with_headers(
    inner: web_sys::Response,
    extra: &[(String, String)],
) -> Result<web_sys::Response> {
    if extra.is_empty() {
        return Ok(inner);
    }
    let (append, set): (Vec<_>, Vec<_>) = extra
        .iter()
        .partition(|(k, _)| k.eq_ignore_ascii_case("www-authenticate"));
    let set = joined_or_err(set.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]))?;
    let append = joined_or_err(append.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]))?;
    Ok(rebuild_response(&inner, &set, &append)?)
}
