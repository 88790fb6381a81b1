//! A small upstream for demos and end-to-end tests: it answers every request
//! with JSON describing what it received — method, path, query, the
//! `Gatehouse-*` identity headers the edge attached, whether any credential
//! headers leaked through, and the body's length.
//!
//! Usage: `gatehouse-demo-upstream [ADDR]` (default `127.0.0.1:8090`).

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use axum::Json;
use serde_json::{json, Map, Value};

async fn echo(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Json<Value> {
    let identity: Map<String, Value> = headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("gatehouse-"))
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                Value::from(value.to_str().unwrap_or("")),
            )
        })
        .collect();
    Json(json!({
        "method": method.as_str(),
        "path": uri.path(),
        "query": uri.query(),
        "identity": identity,
        "received_authorization": headers.contains_key("authorization"),
        "received_dpop": headers.contains_key("dpop"),
        "body_bytes": body.len(),
    }))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8090".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!(
        "{}",
        json!({"event": "listening", "service": "demo-upstream", "addr": listener.local_addr()?.to_string()})
    );
    let app = axum::Router::new().fallback(echo);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}
