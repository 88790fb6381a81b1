//! Serves the browser demo (`demo/`: the page, its script and the wasm-pack
//! output of `gatehouse-browser` in `demo/pkg`) from an origin of its own, so
//! the page's calls to the origin and the edge are real cross-origin requests.
//!
//! Usage:
//! `gatehouse-demo-page --dir demo --listen 127.0.0.1:8070 --origin URL --edge URL --client-id ID`
//!
//! `GET /config.json` tells the page where the origin and the edge are and
//! which public client it is; the page's redirect URI and its post-logout
//! redirect URI are both `http://LISTEN/`.
//! Only files with a known type under `--dir` are served, by plain names
//! (no `..`, no hidden files); every answer carries a strict CSP that lets
//! the page connect only to itself, the origin and the edge.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;

struct Site {
    dir: PathBuf,
    config: Value,
    csp: HeaderValue,
}

const USAGE: &str =
    "usage: gatehouse-demo-page --dir DIR --listen ADDR --origin URL --edge URL --client-id ID";

/// The content type of a file we are willing to serve, by extension.
fn content_type(name: &str) -> Option<&'static str> {
    match name.rsplit_once('.')?.1 {
        "html" => Some("text/html; charset=utf-8"),
        "js" | "mjs" => Some("text/javascript; charset=utf-8"),
        "wasm" => Some("application/wasm"),
        "css" => Some("text/css; charset=utf-8"),
        "json" => Some("application/json"),
        _ => None,
    }
}

/// `path` as a file under `dir`, if every segment is a plain name.
fn file_for(dir: &std::path::Path, path: &str) -> Option<(PathBuf, &'static str)> {
    let rel = match path.trim_start_matches('/') {
        "" => "index.html",
        p => p,
    };
    let mut file = dir.to_path_buf();
    for seg in rel.split('/') {
        let plain = !seg.is_empty()
            && !seg.starts_with('.')
            && seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !plain {
            return None;
        }
        file.push(seg);
    }
    Some((file, content_type(rel)?))
}

fn with_headers(site: &Site, mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, site.csp.clone());
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // The page's URL carries the authorization code on return: never send it on.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

async fn serve(State(site): State<Arc<Site>>, uri: Uri) -> Response {
    let resp = if uri.path() == "/config.json" {
        Json(site.config.clone()).into_response()
    } else {
        match file_for(&site.dir, uri.path()) {
            Some((file, ctype)) => match tokio::fs::read(&file).await {
                Ok(bytes) => ([(header::CONTENT_TYPE, ctype)], bytes).into_response(),
                Err(_) => (StatusCode::NOT_FOUND, "not found\n").into_response(),
            },
            None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
        }
    };
    with_headers(&site, resp)
}

/// `--name value` pairs from the command line.
fn flags() -> Result<std::collections::HashMap<String, String>, String> {
    let mut out = std::collections::HashMap::new();
    let mut args = std::env::args().skip(1);
    while let Some(name) = args.next() {
        let key = name
            .strip_prefix("--")
            .filter(|k| ["dir", "listen", "origin", "edge", "client-id"].contains(k))
            .ok_or_else(|| format!("unknown argument `{name}`\n{USAGE}"))?;
        let value = args
            .next()
            .ok_or_else(|| format!("--{key} needs a value\n{USAGE}"))?;
        out.insert(key.to_owned(), value);
    }
    Ok(out)
}

fn http_origin(name: &str, url: &str) -> Result<String, String> {
    let url = url.trim_end_matches('/');
    let ok = (url.starts_with("http://") || url.starts_with("https://"))
        && !url.contains(|c: char| c.is_whitespace() || c == ';' || c == '\'' || c == '"');
    if ok {
        Ok(url.to_owned())
    } else {
        Err(format!("--{name} must be an http(s) URL"))
    }
}

async fn run() -> Result<(), String> {
    let f = flags()?;
    let get = |k: &str| {
        f.get(k)
            .cloned()
            .ok_or_else(|| format!("--{k} is required\n{USAGE}"))
    };
    let dir = PathBuf::from(get("dir")?);
    if !dir.join("index.html").is_file() || !dir.join("pkg/gatehouse_browser.js").is_file() {
        return Err(format!(
            "{} has no index.html or pkg/gatehouse_browser.js: run scripts/build-demo",
            dir.display()
        ));
    }
    let origin = http_origin("origin", &get("origin")?)?;
    let edge = http_origin("edge", &get("edge")?)?;
    let client_id = get("client-id")?;
    let listener = tokio::net::TcpListener::bind(get("listen")?)
        .await
        .map_err(|e| format!("cannot listen: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot listen: {e}"))?;
    // The browser-facing endpoints only; 'wasm-unsafe-eval' lets the page
    // compile its WebAssembly and nothing else.
    let csp = format!(
        "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
         connect-src 'self' {origin} {edge}; img-src 'self'; base-uri 'none'; \
         form-action 'none'; frame-ancestors 'none'"
    );
    let site = Site {
        dir,
        config: json!({
            "origin": origin,
            "edge": edge,
            "client_id": client_id,
            "redirect_uri": format!("http://{addr}/"),
            // Where the origin sends the browser after RP-initiated logout
            // (registered for the client as a post-logout redirect URI).
            "post_logout_redirect_uri": format!("http://{addr}/"),
        }),
        csp: HeaderValue::from_str(&csp).map_err(|_| "bad CSP value".to_owned())?,
    };
    eprintln!(
        "{}",
        json!({"event": "listening", "service": "demo-page", "addr": addr.to_string()})
    );
    let app = axum::Router::new()
        .fallback(serve)
        .with_state(Arc::new(site));
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| format!("server: {e}"))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gatehouse-demo-page: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
