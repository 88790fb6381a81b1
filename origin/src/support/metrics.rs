//! Prometheus metrics through `prometheus-client` (the official Prometheus
//! Rust client), rendered in the OpenMetrics text format at `/metrics`.
//!
//! Every label value is bounded: grant types, algorithms, token types,
//! revocation kinds and error codes come from fixed enums; client ids are
//! bounded by registration; routes are the router's matched path templates
//! (`unmatched` for anything else), never the raw request path.
//!
//! Counters move where the event happens; the gauges that describe state
//! (signing key age, the pusher's lag, the database pool) are set by the
//! `/metrics` handler just before it renders ([`Metrics::set_scrape`]).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Latency histogram bucket bounds, seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// The error codes that are DPoP failures (RFC 9449 §5, §8).
const DPOP_REASONS: [&str; 2] = ["invalid_dpop_proof", "use_dpop_nonce"];

/// The OpenMetrics text content type `/metrics` answers with.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    grant: String,
    alg: String,
    token_type: String,
    client: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    route: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClientLabels {
    client: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TriggerLabels {
    trigger: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    route: String,
    status: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// What the `/metrics` handler reads from the database and the key ring
/// just before rendering.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ScrapeState {
    /// Seconds the current signer has been signing (`None`: no signer).
    pub signing_key_age: Option<i64>,
    /// The configured active period of a signing key, seconds.
    pub signing_key_period: i64,
    /// Outbox rows not yet acknowledged by the receiver.
    pub pusher_pending: i64,
    /// Seconds since the oldest pending outbox row was written (0: none).
    pub pusher_oldest_pending_age: i64,
    /// The newest document version the receiver acknowledged.
    pub pusher_acked_version: i64,
    /// Seconds since the last acknowledgement (`None`: never).
    pub pusher_since_ack: Option<i64>,
    /// Consecutive failed pushes.
    pub pusher_failures: i64,
    /// Connections open in the database pool.
    pub db_pool_size: u32,
    /// Of which idle.
    pub db_pool_idle: usize,
}

/// The origin's metrics: one registry and handles on its families.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    tokens: Family<TokenLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    responses: Family<StatusLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    refresh_rotations: Family<ClientLabels, Counter>,
    reuse: Family<ClientLabels, Counter>,
    revocations: Family<KindLabels, Counter>,
    dpop_failures: Family<ReasonLabels, Counter>,
    logins: Family<ResultLabels, Counter>,
    rate_limited: Family<RouteLabels, Counter>,
    key_rotations: Family<TriggerLabels, Counter>,
    revocations_live: Gauge,
    revocations_left_out: Gauge,
    key_age: Gauge,
    key_period: Gauge,
    pusher_pending: Gauge,
    pusher_oldest_pending_age: Gauge,
    pusher_acked_version: Gauge,
    pusher_since_ack: Gauge,
    pusher_failures: Gauge,
    pool_size: Gauge,
    pool_idle: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let m = Self {
            registry: Registry::default(),
            tokens: Family::default(),
            errors: Family::default(),
            responses: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            refresh_rotations: Family::default(),
            reuse: Family::default(),
            revocations: Family::default(),
            dpop_failures: Family::default(),
            logins: Family::default(),
            rate_limited: Family::default(),
            key_rotations: Family::default(),
            revocations_live: Gauge::default(),
            revocations_left_out: Gauge::default(),
            key_age: Gauge::default(),
            key_period: Gauge::default(),
            pusher_pending: Gauge::default(),
            pusher_oldest_pending_age: Gauge::default(),
            pusher_acked_version: Gauge::default(),
            pusher_since_ack: Gauge::default(),
            pusher_failures: Gauge::default(),
            pool_size: Gauge::default(),
            pool_idle: Gauge::default(),
        };
        m.registered()
    }
}

impl Metrics {
    fn registered(mut self) -> Self {
        let r = &mut self.registry;
        r.register(
            "gatehouse_tokens_issued",
            "Access tokens issued, by grant, algorithm, token type and client",
            self.tokens.clone(),
        );
        r.register(
            "gatehouse_errors",
            "Refused or failed requests by route and error code",
            self.errors.clone(),
        );
        r.register(
            "gatehouse_http_responses",
            "Responses by route and status code",
            self.responses.clone(),
        );
        r.register(
            "gatehouse_request_duration_seconds",
            "Request latency by route (the matched route template)",
            self.latency.clone(),
        );
        r.register(
            "gatehouse_refresh_rotations",
            "Refresh tokens rotated, by client",
            self.refresh_rotations.clone(),
        );
        r.register(
            "gatehouse_refresh_reuse_detections",
            "Rotated refresh tokens presented again (the family is revoked), by client",
            self.reuse.clone(),
        );
        r.register(
            "gatehouse_revocations",
            "Revocations recorded, by kind (jti, sub, client_id, sid)",
            self.revocations.clone(),
        );
        r.register(
            "gatehouse_dpop_failures",
            "DPoP proofs refused, by error code",
            self.dpop_failures.clone(),
        );
        r.register(
            "gatehouse_logins",
            "Password logins, by result (ok, failed)",
            self.logins.clone(),
        );
        r.register(
            "gatehouse_rate_limited",
            "Requests refused by a rate limit (429), by route",
            self.rate_limited.clone(),
        );
        r.register(
            "gatehouse_key_rotations",
            "Signing keys created, by trigger (schedule, manual)",
            self.key_rotations.clone(),
        );
        r.register(
            "gatehouse_revocations_live",
            "Live revocations when the last document was built",
            self.revocations_live.clone(),
        );
        r.register(
            "gatehouse_revocations_left_out",
            "Live revocations the last document could not carry (over its entry cap)",
            self.revocations_left_out.clone(),
        );
        r.register(
            "gatehouse_signing_key_age_seconds",
            "Seconds the current signing key has been signing (-1: no signer)",
            self.key_age.clone(),
        );
        r.register(
            "gatehouse_signing_key_period_seconds",
            "The configured period a signing key signs before the next replaces it",
            self.key_period.clone(),
        );
        r.register(
            "gatehouse_revocation_pusher_pending",
            "Outbox rows not yet acknowledged by the revocation receiver",
            self.pusher_pending.clone(),
        );
        r.register(
            "gatehouse_revocation_pusher_oldest_pending_seconds",
            "Age of the oldest unacknowledged outbox row (0 when none)",
            self.pusher_oldest_pending_age.clone(),
        );
        r.register(
            "gatehouse_revocation_pusher_acked_version",
            "The newest revocation document version the receiver acknowledged",
            self.pusher_acked_version.clone(),
        );
        r.register(
            "gatehouse_revocation_pusher_since_ack_seconds",
            "Seconds since the receiver last acknowledged a document (-1: never)",
            self.pusher_since_ack.clone(),
        );
        r.register(
            "gatehouse_revocation_pusher_failures",
            "Consecutive failed pushes (0 after a success)",
            self.pusher_failures.clone(),
        );
        r.register(
            "gatehouse_db_pool_connections",
            "Connections open in the database pool",
            self.pool_size.clone(),
        );
        r.register(
            "gatehouse_db_pool_idle_connections",
            "Idle connections in the database pool",
            self.pool_idle.clone(),
        );
        // The fixed label sets start at zero, so `increase()` sees the
        // first event and dashboards show a line before anything happened.
        for result in ["ok", "failed"] {
            self.logins.get_or_create_owned(&ResultLabels {
                result: result.to_owned(),
            });
        }
        for reason in DPOP_REASONS {
            self.dpop_failures.get_or_create_owned(&ReasonLabels {
                reason: reason.to_owned(),
            });
        }
        for kind in ["jti", "sid", "sub", "client_id"] {
            self.revocations.get_or_create_owned(&KindLabels {
                kind: kind.to_owned(),
            });
        }
        for trigger in ["schedule", "manual"] {
            self.key_rotations.get_or_create_owned(&TriggerLabels {
                trigger: trigger.to_owned(),
            });
        }
        self
    }

    /// One token issued to `client`.
    pub fn token_issued(&self, grant: &str, alg: &str, token_type: &str, client: &str) {
        self.tokens
            .get_or_create(&TokenLabels {
                grant: grant.to_owned(),
                alg: alg.to_owned(),
                token_type: token_type.to_owned(),
                client: client.to_owned(),
            })
            .inc();
    }

    /// One request answered, on `route` (the matched template), in `secs`,
    /// with `status`, and the error code `error` if refused.
    pub fn request(&self, route: &str, secs: f64, status: u16, error: Option<&str>) {
        let labels = RouteLabels {
            route: route.to_owned(),
        };
        self.latency.get_or_create(&labels).observe(secs);
        self.responses
            .get_or_create(&StatusLabels {
                route: route.to_owned(),
                status: status.to_string(),
            })
            .inc();
        if status == 429 {
            self.rate_limited.get_or_create(&labels).inc();
        }
        if let Some(kind) = error {
            self.errors
                .get_or_create(&ErrorLabels {
                    route: route.to_owned(),
                    kind: kind.to_owned(),
                })
                .inc();
            if DPOP_REASONS.contains(&kind) {
                self.dpop_failures
                    .get_or_create(&ReasonLabels {
                        reason: kind.to_owned(),
                    })
                    .inc();
            }
        }
    }

    /// A refresh token of `client` rotated.
    pub fn refresh_rotated(&self, client: &str) {
        self.refresh_rotations
            .get_or_create(&ClientLabels {
                client: client.to_owned(),
            })
            .inc();
    }

    /// A rotated refresh token of `client` was presented again.
    pub fn refresh_reuse(&self, client: &str) {
        self.reuse
            .get_or_create(&ClientLabels {
                client: client.to_owned(),
            })
            .inc();
    }

    /// A revocation of `kind` recorded.
    pub fn revocation(&self, kind: &str) {
        self.revocations
            .get_or_create(&KindLabels {
                kind: kind.to_owned(),
            })
            .inc();
    }

    /// A password login, succeeded or not.
    pub fn login(&self, ok: bool) {
        self.logins
            .get_or_create(&ResultLabels {
                result: if ok { "ok" } else { "failed" }.to_owned(),
            })
            .inc();
    }

    /// A signing key created, by the schedule or by an operator.
    pub fn key_rotated(&self, manual: bool) {
        self.key_rotations
            .get_or_create(&TriggerLabels {
                trigger: if manual { "manual" } else { "schedule" }.to_owned(),
            })
            .inc();
    }

    /// The last revocation document built carried `carried` of `live`
    /// revocations (fewer only over the document's entry cap).
    pub fn revocation_document(&self, live: usize, carried: usize) {
        self.revocations_live
            .set(i64::try_from(live).unwrap_or(i64::MAX));
        self.revocations_left_out
            .set(i64::try_from(live.saturating_sub(carried)).unwrap_or(i64::MAX));
    }

    /// Sets the gauges read at scrape time.
    pub fn set_scrape(&self, s: &ScrapeState) {
        self.key_age.set(s.signing_key_age.unwrap_or(-1));
        self.key_period.set(s.signing_key_period);
        self.pusher_pending.set(s.pusher_pending);
        self.pusher_oldest_pending_age
            .set(s.pusher_oldest_pending_age);
        self.pusher_acked_version.set(s.pusher_acked_version);
        self.pusher_since_ack.set(s.pusher_since_ack.unwrap_or(-1));
        self.pusher_failures.set(s.pusher_failures);
        self.pool_size.set(i64::from(s.db_pool_size));
        self.pool_idle
            .set(i64::try_from(s.db_pool_idle).unwrap_or(i64::MAX));
    }

    /// The OpenMetrics text exposition (ends with `# EOF`).
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
