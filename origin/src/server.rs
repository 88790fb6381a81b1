//! `gatehouse-origin serve`: open storage, load keys, listen, maintain keys,
//! shut down gracefully on SIGTERM/SIGINT.

use crate::config::{Config, PushTarget};
use crate::domain::revocation_push::{PushClient, PushSchedule};
use crate::domain::state::AppState;
use crate::store::db::Db;
use crate::support::clock::SystemClock;
use crate::support::kek::Kek;
use std::net::SocketAddr;
use std::time::Duration;

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Storage.
    #[error(transparent)]
    Db(#[from] crate::store::StoreError),
    /// Keys.
    #[error(transparent)]
    Keys(#[from] crate::domain::keys::KeyStoreError),
    /// The KEK.
    #[error(transparent)]
    Kek(#[from] crate::support::kek::KekError),
    /// Listening.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The revocation pusher could not start.
    #[error(transparent)]
    Push(#[from] crate::domain::revocation_push::PushError),
    /// No `GATEHOUSE_KEK` outside development.
    #[error("GATEHOUSE_KEK is not set: set it (base64url of 32 random bytes) or, for development only, run `serve --dev`")]
    NoKek,
    /// Serving.
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

/// The configured KEK, or the development one (with a loud warning).
pub fn resolve_kek(config: &Config) -> Result<Kek, crate::support::kek::KekError> {
    match &config.kek {
        Some(k) => Ok(k.clone()),
        None => Kek::development(&config.data_dir),
    }
}

/// Runs the server until a shutdown signal. Without a configured KEK it
/// starts only in development (`dev`), with [`Kek::development`].
pub async fn serve(config: Config, dev: bool) -> Result<(), ServeError> {
    if config.kek.is_none() && !dev {
        return Err(ServeError::NoKek);
    }
    let db = Db::open(&config.database_url).await?;
    let kek = resolve_kek(&config)?;
    let listen = config.listen;
    let state = AppState::new(config, db, kek, SystemClock::shared()).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: listen,
            source,
        })?;
    let addr = listener.local_addr()?;
    let maintenance = tokio::spawn(maintain_keys(state.clone()));
    let pusher = spawn_pusher(&state)?;
    tracing::info!(address = %addr, issuer = %state.config.issuer, "listening on http://{addr}");
    let app = crate::http::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await;
    maintenance.abort();
    if let Some(p) = pusher {
        p.abort();
    }
    tracing::info!("stopped");
    Ok(result?)
}

/// Starts the revocation pusher unless pushing is off.
fn spawn_pusher(state: &AppState) -> Result<Option<tokio::task::JoinHandle<()>>, ServeError> {
    let target = state.config.revocation_push.clone();
    if target == PushTarget::Off {
        tracing::warn!("revocation push is off (set GATEHOUSE_EDGE_URL or GATEHOUSE_REVOCATION_PUSH): revocations wait in the outbox");
        return Ok(None);
    }
    let schedule = PushSchedule::default();
    let client = PushClient::new(target, &schedule)?;
    Ok(Some(tokio::spawn(crate::domain::revocation_push::run(
        state.pusher(),
        client,
        schedule,
    ))))
}

/// Every `GATEHOUSE_KEY_CHECK_SECS` (default 30): applies the key schedule
/// (and picks up other replicas' keys), forgets stale DPoP replay entries and
/// expired grants.
async fn maintain_keys(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(state.config.key_check_secs));
    tick.tick().await;
    loop {
        tick.tick().await;
        let now = state.clock.now().secs();
        match state.maintain_keys(now).await {
            Ok(done)
                if done.created.is_some()
                    || !done.retired.is_empty()
                    || !done.removed.is_empty() =>
            {
                tracing::info!(created = ?done.created, retired = ?done.retired, removed = ?done.removed, "key schedule applied");
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "key maintenance failed"),
        }
        if let Err(e) = crate::domain::dpop::prune_replay(&state.db, now).await {
            tracing::warn!(error = %e, "pruning DPoP replay entries failed");
        }
        if let Err(e) = crate::domain::grants::prune(&state.db, &state.config, now).await {
            tracing::warn!(error = %e, "pruning expired codes, sessions and refresh tokens failed");
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received, draining connections");
}
