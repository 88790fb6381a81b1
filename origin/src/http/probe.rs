//! `GET /readyz`: the readiness probe. `/healthz` answers whenever the process
//! serves HTTP (liveness: restart it only when that stops); `/readyz` answers
//! 200 only when this replica can issue tokens — its database answers and a
//! signing key is loaded — and 503 with a JSON reason otherwise, so a load
//! balancer or a Kubernetes readiness probe takes it out of rotation without
//! restarting it.

use crate::domain::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::time::Duration;

/// How long the database may take to answer the probe's query. Well under
/// the usual probe timeouts (Kubernetes: 1 s by default, load balancers 2–5 s),
/// so a slow database is reported as not ready rather than as a timed-out probe.
pub const DATABASE_TIMEOUT: Duration = Duration::from_millis(800);

/// Why the replica is not ready (the `reason` member of the 503 body).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotReady {
    /// The database did not answer `SELECT 1` within [`DATABASE_TIMEOUT`].
    DatabaseUnavailable,
    /// No key in the loaded ring signs at this instant.
    NoSigningKey,
}

impl NotReady {
    /// The reason as sent.
    #[must_use]
    pub const fn reason(self) -> &'static str {
        match self {
            Self::DatabaseUnavailable => "database_unavailable",
            Self::NoSigningKey => "no_signing_key",
        }
    }
}

/// Checks the database, then the key ring.
pub async fn check(state: &AppState) -> Result<(), NotReady> {
    let ping = state.db.ping();
    match tokio::time::timeout(DATABASE_TIMEOUT, ping).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: the database did not answer");
            return Err(NotReady::DatabaseUnavailable);
        }
        Err(_) => {
            tracing::warn!(
                timeout_ms = DATABASE_TIMEOUT.as_millis(),
                "readiness: the database did not answer in time"
            );
            return Err(NotReady::DatabaseUnavailable);
        }
    }
    let ring = state.key_ring().map_err(|_| NotReady::NoSigningKey)?;
    if ring.signer(state.clock.now().secs()).is_none() {
        return Err(NotReady::NoSigningKey);
    }
    Ok(())
}

/// `GET /readyz`: `200 {"status":"ready"}` or
/// `503 {"status":"not_ready","reason":…}`, never cached.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    summary = "Readiness: the database answers and a signing key is loaded",
    responses(
        (status = 200, description = "Ready", body = super::schema::Readiness),
        (status = 503, description = "Not ready, and why", body = super::schema::Readiness),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let mut resp = match check(&state).await {
        Ok(()) => (StatusCode::OK, Json(json!({"status": "ready"}))).into_response(),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready", "reason": why.reason()})),
        )
            .into_response(),
    };
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
