//! A small upstream for demos and end-to-end tests: it answers every request
//! with JSON describing what it received — method, the raw request target
//! (exactly as it arrived on the wire), path, query, every header, the
//! `Gatehouse-*` identity headers the edge attached, whether any credential
//! headers leaked through, the body's length and, when given the edge's
//! public key, whether the edge's signed `Gatehouse-Assertion` verified.
//! A request may ask for response headers to be set (tests of how the edge
//! merges them): `x-upstream-response-headers: {"vary": "Accept-Encoding"}`.
//!
//! Usage: `gatehouse-demo-upstream [ADDR]` (default `127.0.0.1:8090`).
//! Environment:
//! - `GATEHOUSE_ASSERTION_JWK`: the public JWK matching the edge's
//!   `IDENTITY_SIGNING_KEY`; assertions are then verified and reported.
//! - `GATEHOUSE_ASSERTION_AUDIENCE`: the `aud` to expect (the edge's
//!   `UPSTREAM_URL`; default `http://ADDR`).
//! - `GATEHOUSE_ASSERTION_REQUIRED=true`: refuse (401) a request without a
//!   valid assertion instead of only reporting it (`/ready` excepted).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use gatehouse_common::jwk::PublicJwk;
use gatehouse_common::jws;
use gatehouse_common::provider::{RustCrypto, SignatureVerifier};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// How the upstream checks the edge's identity assertion.
struct AssertionCheck {
    key: PublicJwk,
    audience: String,
    required: bool,
    /// `jti`s seen, with their `exp`: an assertion is good for one request.
    seen: Mutex<HashMap<String, i64>>,
}

type Checks = Arc<Option<AssertionCheck>>;

/// Clock skew tolerated on `iat` and `exp`, seconds.
const LEEWAY_SECS: i64 = 5;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Verifies a `Gatehouse-Assertion` for this request: signature by the
/// edge's key (the key decides the algorithm), `typ`, `iss`, `aud`, time,
/// single use, and that it was made for this method and path.
fn verify(
    check: &AssertionCheck,
    header: Option<&str>,
    method: &str,
    path: &str,
) -> Result<Map<String, Value>, &'static str> {
    let raw = header.ok_or("missing")?;
    let jws = jws::parse(raw, &jws::Limits::ACCESS_TOKEN).map_err(|_| "malformed")?;
    if !jws::typ_is(jws.header.typ.as_deref(), "gatehouse-assertion+jwt") {
        return Err("wrong typ");
    }
    let alg = check
        .key
        .algorithm_for(jws.header.alg)
        .map_err(|_| "wrong algorithm")?;
    if !RustCrypto.verify(&check.key, alg, jws.signing_input(), jws.signature()) {
        return Err("bad signature");
    }
    let c = jws.claims;
    let t = now();
    let int = |k: &str| c.get(k).and_then(Value::as_i64);
    let text = |k: &str| c.get(k).and_then(Value::as_str);
    if text("iss") != Some("gatehouse-edge") || text("aud") != Some(check.audience.as_str()) {
        return Err("wrong issuer or audience");
    }
    match (int("iat"), int("exp")) {
        (Some(iat), Some(exp)) if iat <= t + LEEWAY_SECS && t < exp + LEEWAY_SECS => {}
        _ => return Err("expired or not yet valid"),
    }
    if text("htm") != Some(method) || text("path") != Some(path) {
        return Err("made for another request");
    }
    let jti = text("jti").ok_or("no jti")?.to_owned();
    let mut seen = check.seen.lock().map_err(|_| "replay cache poisoned")?;
    seen.retain(|_, exp| *exp + LEEWAY_SECS > t);
    if seen.insert(jti, int("exp").unwrap_or(t)).is_some() {
        return Err("replayed");
    }
    Ok(c)
}

async fn echo(
    State(checks): State<Checks>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let identity: Map<String, Value> = headers
        .iter()
        // The request id is the edge's tracing header, not an identity.
        .filter(|(name, _)| {
            name.as_str().starts_with("gatehouse-") && name.as_str() != "gatehouse-request-id"
        })
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                Value::from(value.to_str().unwrap_or("")),
            )
        })
        .collect();
    let mut all: Map<String, Value> = Map::new();
    for (name, value) in &headers {
        let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match all.get_mut(name.as_str()) {
            Some(Value::String(s)) => {
                s.push_str(", ");
                s.push_str(&v);
            }
            _ => {
                all.insert(name.as_str().to_owned(), Value::from(v));
            }
        }
    }
    let assertion = checks.as_ref().as_ref().map(|check| {
        let header = headers
            .get("gatehouse-assertion")
            .and_then(|v| v.to_str().ok());
        (
            check.required,
            verify(check, header, method.as_str(), uri.path()),
        )
    });
    let report = match &assertion {
        None => Value::Null,
        Some((_, Ok(claims))) => json!({"valid": true, "claims": claims}),
        Some((_, Err(why))) => json!({"valid": false, "error": why}),
    };
    // `/ready` (the harness's liveness probe) is answered regardless.
    if let (Some((true, Err(why))), false) = (assertion, uri.path() == "/ready") {
        let body = json!({"error": "invalid_assertion", "error_description": why});
        return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    }
    let mut resp = Json(json!({
        "method": method.as_str(),
        "target": uri.to_string(),
        "path": uri.path(),
        "query": uri.query(),
        "headers": all,
        "identity": identity,
        "assertion": report,
        "received_authorization": headers.contains_key("authorization"),
        "received_dpop": headers.contains_key("dpop"),
        "body_bytes": body.len(),
    }))
    .into_response();
    // Tests ask for response headers (e.g. the upstream's own `Vary` or
    // CORS answer) with `x-upstream-response-headers: {"name": "value"}`.
    let wanted = headers
        .get("x-upstream-response-headers")
        .and_then(|v| serde_json::from_slice::<Map<String, Value>>(v.as_bytes()).ok());
    for (name, value) in wanted.iter().flatten() {
        let name = HeaderName::from_bytes(name.as_bytes());
        let value = value.as_str().map(HeaderValue::from_str);
        if let (Ok(name), Some(Ok(value))) = (name, value) {
            resp.headers_mut().insert(name, value);
        }
    }
    resp
}

fn assertion_check(addr: &str) -> std::io::Result<Option<AssertionCheck>> {
    let Some(jwk) = std::env::var("GATEHOUSE_ASSERTION_JWK")
        .ok()
        .filter(|v| !v.trim().is_empty())
    else {
        return Ok(None);
    };
    let key = PublicJwk::from_json(jwk.as_bytes()).map_err(|_| {
        std::io::Error::other("GATEHOUSE_ASSERTION_JWK must be a public JWK (ES256 or EdDSA)")
    })?;
    let audience = std::env::var("GATEHOUSE_ASSERTION_AUDIENCE")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| format!("http://{addr}"));
    let required = std::env::var("GATEHOUSE_ASSERTION_REQUIRED").as_deref() == Ok("true");
    Ok(Some(AssertionCheck {
        key,
        audience,
        required,
        seen: Mutex::new(HashMap::new()),
    }))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8090".to_owned());
    let checks: Checks = Arc::new(assertion_check(&addr)?);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!(
        "{}",
        json!({"event": "listening", "service": "demo-upstream", "addr": listener.local_addr()?.to_string(), "assertion": checks.is_some()})
    );
    let app = axum::Router::new().fallback(echo).with_state(checks);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}
