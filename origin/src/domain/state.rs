//! Shared server state: configuration, database, keys. A struct of `Arc`s,
//! built once and passed to the router (no globals).

use crate::config::Config;
use crate::domain::client_cache::ClientCache;
use crate::domain::error::Error;
use crate::domain::keys::{self, KeyRing, KeyStoreError, Maintenance};
use crate::domain::ratelimit::{FailureBackoff, KnownKeys, RateLimiter};
use crate::store::db::Db;
use crate::support::clock::SharedClock;
use crate::support::kek::Kek;
use crate::support::metrics::Metrics;
use gatehouse_common::nonce::NonceIssuer;
use gatehouse_common::UnixTime;
use std::sync::{Arc, RwLock};

/// Authentication failures per IP and minute written to the audit log; more
/// are aggregated into a count, so anonymous traffic cannot grow the table
/// without bound.
pub const AUDITED_AUTH_FAILURES_PER_MINUTE: u32 = 10;

/// Everything handlers need, behind one `Arc`: axum hands every request
/// (and every middleware layer) its own clone of the state, which is then
/// one reference count instead of one per field. `Debug` names no secret
/// (config redacts its own).
#[derive(Clone)]
pub struct AppState(Arc<AppStateInner>);

impl std::ops::Deref for AppState {
    type Target = AppStateInner;
    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

/// The fields of [`AppState`].
pub struct AppStateInner {
    /// Validated configuration.
    pub config: Arc<Config>,
    /// Storage.
    pub db: Db,
    /// The key-encryption key.
    pub kek: Arc<Kek>,
    /// The current key ring, swapped after maintenance.
    pub keys: Arc<RwLock<Arc<KeyRing>>>,
    /// HMAC key for the authorization form's CSRF tokens (derived from the KEK).
    pub csrf_key: Arc<aws_lc_rs::hmac::Key>,
    /// HMAC key for the usernames in failed-login audit rows (derived from
    /// the KEK): rows for one name match, without the name itself.
    pub audit_name_key: Arc<aws_lc_rs::hmac::Key>,
    /// DPoP nonce issuer (keyed from the KEK; used when `dpop_nonce` is on).
    pub dpop_nonces: Option<Arc<NonceIssuer>>,
    /// Client registrations for the token endpoint, kept exact by the
    /// database's `client_generation` ([`crate::domain::client_cache`]).
    pub client_cache: ClientCache,
    /// Token endpoint limit per client.
    pub client_limiter: Arc<RateLimiter>,
    /// Token endpoint limit per IP.
    pub ip_limiter: Arc<RateLimiter>,
    /// Audited authentication failures per IP (beyond it they are only counted).
    pub auth_failure_audit: Arc<RateLimiter>,
    /// Authentication failures not written to the audit log since the last
    /// one that was (reported in that next row's detail).
    pub unaudited_failures: Arc<std::sync::atomic::AtomicU64>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Password hashes allowed at once (argon2id holds 19 MiB each).
    pub password_hashes: Arc<tokio::sync::Semaphore>,
    /// Failed logins per username at one client address, with backoff.
    pub login_failures: Arc<FailureBackoff>,
    /// Failed logins per username from any address: a looser backoff
    /// against distributed guessing, which addresses in [`Self::login_known`] skip.
    pub login_user_failures: Arc<FailureBackoff>,
    /// Usernames at the addresses they signed in from (30 days).
    pub login_known: Arc<KnownKeys>,
    /// Failed admin-token attempts per client address, with backoff.
    pub admin_failures: Arc<FailureBackoff>,
    /// The one clock: read once per request (in the handler) and by the
    /// background tasks; settable in tests (`SettableClock`, `testkit`).
    pub clock: SharedClock,
}

/// What the token path's operations (client authentication, the grants,
/// exchange, introspection, revocation, DPoP at `/token`) need, instead of
/// the whole [`AppState`]: storage, configuration, the key ring as it stands
/// for this request, and the DPoP nonce issuer when nonces are on.
#[derive(Clone)]
pub struct TokenPath<'a> {
    /// Storage.
    pub db: &'a Db,
    /// Validated configuration.
    pub config: &'a Config,
    /// The client cache ([`crate::domain::token::ClientSource::Cache`]).
    pub clients: &'a ClientCache,
    /// The key ring, read once for the request.
    pub keys: Arc<KeyRing>,
    /// The DPoP nonce issuer, when `dpop_nonce` is on.
    pub dpop_nonces: Option<&'a NonceIssuer>,
    /// The bounded audit of refusals (failed authentication, refused
    /// exchange, code replay, refresh reuse).
    pub failures: AuthFailures<'a>,
}

/// The bounded audit of failed client authentications (see
/// [`AUDITED_AUTH_FAILURES_PER_MINUTE`]).
#[derive(Clone, Copy)]
pub struct AuthFailures<'a> {
    /// Audited failures per IP.
    pub audited: &'a RateLimiter,
    /// Failures not audited since the last one that was.
    pub unaudited: &'a std::sync::atomic::AtomicU64,
}

impl AuthFailures<'_> {
    /// Records the security-relevant failure `event`: at most
    /// [`AUDITED_AUTH_FAILURES_PER_MINUTE`] rows per address (an IPv6 /64)
    /// and minute over the refusals anyone can cause, and as many again for
    /// each kind that needs a credential ([`audit_budget`]), so a flood cannot grow
    /// the table without bound; the rest are counted, and the count goes
    /// into the detail of the next row written.
    pub async fn record(
        self,
        db: &Db,
        mut event: crate::store::audit::AuditEvent,
    ) -> Result<(), Error> {
        use std::sync::atomic::Ordering;
        let key = audit_budget(&event);
        if !self
            .audited
            .check(&key, event.at.saturating_mul(1000))
            .allowed
        {
            self.unaudited.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let skipped = self.unaudited.swap(0, Ordering::Relaxed);
        if skipped > 0 {
            let note = format!(
                "{skipped} earlier failures (from any address) over the per-address audit rate were not recorded"
            );
            event.detail = Some(match event.detail.take() {
                Some(d) => format!("{d}; {note}"),
                None => note,
            });
        }
        crate::store::audit::record(&db.pool, &event).await?;
        Ok(())
    }
}

/// The refusal kinds only a caller holding a credential reaches (a used
/// code, a rotated refresh token, an authenticated client's exchange, a
/// live token of another client): each has its own budget per address, so
/// refusals that cost nothing (an unknown client id, a wrong admin token)
/// cannot spend it first and hide a stolen token's use.
const CREDENTIAL_KINDS: [&str; 4] = [
    "code_replayed",
    "refresh_reuse",
    "token_exchange_refused",
    "revocation_refused",
];

/// The audit budget `event` is charged to: its source address, an IPv6
/// address by its /64 ([`crate::domain::ratelimit::address_key`]), and
/// each of [`CREDENTIAL_KINDS`] apart.
fn audit_budget(event: &crate::store::audit::AuditEvent) -> String {
    let address = match event
        .source_ip
        .as_deref()
        .map(str::parse::<std::net::IpAddr>)
    {
        Some(Ok(ip)) => crate::domain::ratelimit::address_key(ip),
        Some(Err(_)) | None => "unknown".to_owned(),
    };
    if CREDENTIAL_KINDS.contains(&event.event.as_str()) {
        format!("{} {address}", event.event)
    } else {
        address
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.config)
            .field("db", &self.db.backend)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Builds the state around `clock`: runs key maintenance once at the
    /// clock's time (creating the first key if needed) and loads the key ring.
    pub async fn new(
        config: Config,
        db: Db,
        kek: Kek,
        clock: SharedClock,
    ) -> Result<Self, KeyStoreError> {
        let now = clock.now().secs();
        let state = Self(Arc::new(AppStateInner {
            clock,
            csrf_key: Arc::new(aws_lc_rs::hmac::Key::new(
                aws_lc_rs::hmac::HMAC_SHA256,
                &kek.derive(b"gatehouse authorize csrf v1"),
            )),
            audit_name_key: Arc::new(aws_lc_rs::hmac::Key::new(
                aws_lc_rs::hmac::HMAC_SHA256,
                &kek.derive(b"gatehouse audit username v1"),
            )),
            dpop_nonces: crate::domain::dpop::nonce_issuer(&kek).map(Arc::new),
            client_cache: ClientCache::default(),
            client_limiter: Arc::new(RateLimiter::per_minute(
                "client",
                config.token_rate_per_minute,
            )),
            ip_limiter: Arc::new(RateLimiter::per_minute("ip", config.token_rate_per_minute)),
            auth_failure_audit: Arc::new(RateLimiter::per_minute(
                "auth-failure-audit",
                AUDITED_AUTH_FAILURES_PER_MINUTE,
            )),
            unaudited_failures: Arc::default(),
            metrics: Arc::clone(&db.metrics),
            password_hashes: Arc::new(tokio::sync::Semaphore::new(config.login_concurrency)),
            login_failures: Arc::default(),
            // 20 free failures an hour from anywhere, then 30 s doubling up to 15 minutes.
            login_user_failures: Arc::new(FailureBackoff::new(20, 30_000, 15 * 60 * 1_000)),
            login_known: Arc::new(KnownKeys::new(30 * 24 * 3600 * 1_000)),
            admin_failures: Arc::default(),
            config: Arc::new(config),
            db,
            kek: Arc::new(kek),
            keys: Arc::new(RwLock::new(Arc::new(KeyRing::default()))),
        }));
        // Persist this TTL before any token is issued under it.
        crate::store::revocation::record_token_ttl(&state.db, state.config.access_token_ttl)
            .await?;
        state.maintain_keys(now).await?;
        Ok(state)
    }

    /// Applies the key schedule and reloads the ring.
    pub async fn maintain_keys(&self, now: UnixTime) -> Result<Maintenance, KeyStoreError> {
        let c = &self.config;
        // A key stays published until the longest-lived token it may have
        // signed (under any TTL ever configured) has expired.
        let span = crate::store::revocation::cover_span(&self.db, c).await?;
        let done = keys::maintain(
            &self.db,
            &self.kek,
            c.signing_alg,
            &c.key_schedule,
            span.secs(),
            now,
        )
        .await?;
        if done.created.is_some() {
            self.metrics.key_rotated(false);
        }
        self.reload_keys().await?;
        Ok(done)
    }

    /// Reloads the ring from the database.
    pub async fn reload_keys(&self) -> Result<(), KeyStoreError> {
        let ring = keys::load(&self.db, &self.kek).await?;
        if let Ok(mut slot) = self.keys.write() {
            *slot = Arc::new(ring);
        }
        Ok(())
    }

    /// The token path's inputs, with the key ring as it stands now.
    pub fn token_path(&self) -> Result<TokenPath<'_>, Error> {
        Ok(TokenPath {
            db: &self.db,
            config: &self.config,
            clients: &self.client_cache,
            keys: self.key_ring()?,
            dpop_nonces: self
                .dpop_nonces
                .as_deref()
                .filter(|_| self.config.dpop_nonce),
            failures: self.auth_failures(),
        })
    }

    /// The revocation pusher's inputs.
    #[must_use]
    pub fn pusher(&self) -> crate::domain::revocation_push::Pusher {
        crate::domain::revocation_push::Pusher {
            db: self.db.clone(),
            settings: crate::domain::revocation_push::PushSettings::from_config(&self.config),
            keys: Arc::clone(&self.keys),
            metrics: Arc::clone(&self.metrics),
            clock: Arc::clone(&self.clock),
        }
    }

    /// The keyed hash of `username` written in failed-login audit rows
    /// (`user=` + 16 bytes of HMAC-SHA256, base64url): the same name gives
    /// the same value, and the name cannot be read back from the table.
    #[must_use]
    pub fn audit_username(&self, username: &str) -> String {
        let tag = aws_lc_rs::hmac::sign(&self.audit_name_key, username.as_bytes());
        let bytes = tag.as_ref();
        gatehouse_common::b64::encode(bytes.get(..16).unwrap_or(bytes))
    }

    /// Audits a failed login at `/authorize` (bounded like every failure,
    /// [`AuthFailures::record`]): the client, the caller's address and the
    /// username's keyed hash ([`Self::audit_username`]), never the password.
    pub async fn audit_login_failure(
        &self,
        username: &str,
        client_id: &str,
        ip: Option<std::net::IpAddr>,
        now: UnixTime,
    ) -> Result<(), Error> {
        let event = crate::store::audit::AuditEvent::new("login_failed", now)
            .client(client_id)
            .ip(ip)
            .detail(format!("user={}", self.audit_username(username)));
        self.auth_failures().record(&self.db, event).await
    }

    /// Audits a refused admin token (bounded like every failure,
    /// [`AuthFailures::record`]): the caller's address, never what it sent.
    pub async fn audit_admin_failure(
        &self,
        ip: Option<std::net::IpAddr>,
        now: UnixTime,
    ) -> Result<(), Error> {
        let event = crate::store::audit::AuditEvent::new("admin_auth_failed", now).ip(ip);
        self.auth_failures().record(&self.db, event).await
    }

    /// The failed-authentication audit's limiter and counter.
    #[must_use]
    pub fn auth_failures(&self) -> AuthFailures<'_> {
        AuthFailures {
            audited: &self.auth_failure_audit,
            unaudited: &self.unaudited_failures,
        }
    }

    /// The current ring.
    pub fn key_ring(&self) -> Result<Arc<KeyRing>, Error> {
        self.keys
            .read()
            .map(|r| Arc::clone(&r))
            .map_err(|_| Error::from(KeyStoreError::RingPoisoned))
    }
}
