//! `/readyz` is the readiness probe (a load balancer or Kubernetes takes the
//! origin out of rotation on 503), `/healthz` stays liveness (restart only
//! when the process itself is stuck): a database outage or a missing signing
//! key must make the origin not ready, and never look alive-and-ready.

use crate::support::*;
use axum::body::Body;
use axum::http::Request;
use gatehouse_origin::domain::keys::KeyRing;
use std::sync::Arc;

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn readyz_is_200_when_the_database_answers_and_a_key_signs() {
    let state = sqlite_state().await;
    let (status, headers, body) = send(&state, get("/readyz")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(headers["cache-control"], "no-store");
}

#[tokio::test]
async fn readyz_is_503_when_the_database_is_unreachable() {
    let state = sqlite_state().await;
    state.db.pool.close().await;
    let (status, headers, body) = send(&state, get("/readyz")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["reason"], "database_unavailable");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["cache-control"], "no-store");
    // Liveness is not readiness: the process itself is fine.
    let (status, _, _) = send(&state, get("/healthz")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn readyz_is_503_without_a_loaded_signing_key() {
    let state = sqlite_state().await;
    *state.keys.write().unwrap() = Arc::new(KeyRing::default());
    let (status, _, body) = send(&state, get("/readyz")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["reason"], "no_signing_key");
    let (status, _, _) = send(&state, get("/healthz")).await;
    assert_eq!(status, 200);
}
