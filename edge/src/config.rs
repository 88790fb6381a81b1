//! The edge's configuration, read from `wrangler.toml` `[vars]` (and secrets)
//! once per isolate into a validated [`EdgeConfig`]. Every error names the
//! variable and the problem, never the value (values may be secrets).

use crate::assertion::AssertionSigner;
use crate::issuers::{IssuerFile, JwksSource, Preset};
use crate::jwks_cache::CacheSeal;
pub use crate::revocation_rules::RevocationFail;
use crate::route_limits::{RouteLimit, RouteLimits};
use gatehouse_common::access_token::AccessTokenPolicy;
use gatehouse_common::alg::Algorithm;
use gatehouse_common::dpop::DpopPolicy;
use gatehouse_common::nonce::NonceIssuer;
use gatehouse_common::policy::{DefaultAction, RoutePolicy, RouteRule};
use gatehouse_common::ratelimit::Quota;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;

/// One trusted token issuer.
#[derive(Clone, Debug)]
pub struct IssuerConfig {
    /// What its tokens must satisfy (issuer, audiences, algorithms, leeway,
    /// and the profile saying where its claims are).
    pub policy: AccessTokenPolicy,
    /// Where it publishes its keys: a JWKS URL, or its metadata document.
    pub jwks: JwksSource,
    /// The preset its profile started from.
    pub preset: Preset,
}

/// Which requests get a JSON log line (`REQUEST_LOG`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestLog {
    /// Every request (the default).
    All,
    /// Only refusals, errors and rate-limited requests: forwarded requests
    /// are left to the platform's own request logs.
    Refused,
    /// None (configuration errors and failures of the edge's own parts are
    /// still logged).
    Off,
}

/// What happens when the rate-limit Durable Object cannot be reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailMode {
    /// Let the request through (availability first; logged).
    Open,
    /// Refuse with 503 (protection first).
    Closed,
}

/// Cross-origin settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CorsConfig {
    /// Allowed origins; `*` allows any. Empty: CORS headers are never sent.
    pub allow_origins: Vec<String>,
}

impl CorsConfig {
    /// The `Access-Control-Allow-Origin` value for a request's `Origin`, if allowed.
    #[must_use]
    pub fn allow(&self, origin: &str) -> Option<String> {
        if self.allow_origins.iter().any(|o| o == "*") {
            Some("*".to_owned())
        } else if self.allow_origins.iter().any(|o| o == origin) {
            Some(origin.to_owned())
        } else {
            None
        }
    }
}

/// The secret that unlocks the health endpoint's details
/// (`HEALTH_ADMIN_TOKEN`); kept as its SHA-256, compared in constant time.
#[derive(Clone)]
pub struct HealthToken {
    digest: [u8; 32],
}

impl fmt::Debug for HealthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HealthToken([redacted])")
    }
}

impl HealthToken {
    /// The least token length, bytes.
    pub const MIN_BYTES: usize = 32;

    fn new(token: &str) -> Option<Self> {
        (token.len() >= Self::MIN_BYTES).then(|| Self {
            digest: Sha256::digest(token.as_bytes()).into(),
        })
    }

    /// Whether an `Authorization` header value is `Bearer <this token>`
    /// (digests compared in constant time, so neither content nor length leaks).
    #[must_use]
    pub fn admits(&self, authorization: Option<&str>) -> bool {
        let Some(presented) = authorization.and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        }) else {
            return false;
        };
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        bool::from(digest.ct_eq(&self.digest))
    }
}

/// Validated edge configuration.
#[derive(Clone, Debug)]
pub struct EdgeConfig {
    /// Trusted issuers, in configuration order (at least one).
    pub issuers: Vec<IssuerConfig>,
    /// Their access-token policies, in the same order (built once, for `parse_for`).
    policies: Vec<AccessTokenPolicy>,
    /// Where verified requests go (scheme, host, optional port; no path).
    pub upstream_url: String,
    /// Shortest time a fetched JWKS is trusted without refetching, seconds.
    pub jwks_min_ttl_secs: i64,
    /// Longest time a fetched JWKS is trusted without refetching, seconds.
    pub jwks_max_ttl_secs: i64,
    /// How long past its TTL a JWKS stays in use while the issuer is unreachable.
    pub jwks_max_stale_secs: i64,
    /// Least time between two refetches triggered by unknown `kid`s.
    pub jwks_refresh_cooldown_secs: i64,
    /// What DPoP proofs must satisfy.
    pub dpop: DpopPolicy,
    /// `Some` when DPoP nonces are required (`DPOP_NONCE=required`).
    pub nonces: Option<NonceIssuer>,
    /// Path rules and the default.
    pub routes: RoutePolicy,
    /// The rules' own rate limits (`ROUTES` entries' `rate_limits`).
    pub route_limits: RouteLimits,
    /// Per caller quota for authenticated callers: one bucket per subject
    /// of a client of an issuer (`RATE_LIMIT_CLIENT`).
    pub client_quota: Quota,
    /// Optional quota for all subjects of a client together
    /// (`RATE_LIMIT_CLIENT_TOTAL`; off by default).
    pub client_total_quota: Option<Quota>,
    /// Per IP quota for unauthenticated and failed attempts.
    pub ip_quota: Quota,
    /// Per IP quota for the revocation ingest route (only refused documents are charged).
    pub ingest_quota: Quota,
    /// Behaviour when the rate-limit Durable Object is unreachable.
    pub rate_limit_fail: FailMode,
    /// Most admissions one lease from the rate limiter holds (1: ask every time).
    pub rate_limit_lease_max: u32,
    /// Behaviour when an issuer's revocation list cannot be read or verified.
    pub revocation_fail: RevocationFail,
    /// How long an isolate trusts its revocation list before re-reading KV.
    pub revocation_ttl_secs: i64,
    /// The regional revocation replicas (`REVOCATION_REPLICAS`; empty: the
    /// fast path is off and KV alone carries revocations).
    pub revocation_replicas: Vec<&'static str>,
    /// At most one replica read per isolate and issuer per this many seconds
    /// (`REVOCATION_REFRESH_SECS`).
    pub revocation_refresh_secs: i64,
    /// Whether the isolate that took a pushed document uses it at once
    /// (`REVOCATION_ADOPT_ON_INGEST`; off in tests and the bench, so that
    /// isolate learns of it like every other: through a replica or KV).
    pub revocation_adopt_on_ingest: bool,
    /// Whether `Authorization` and `DPoP` are removed before forwarding.
    pub strip_credentials: bool,
    /// Cross-origin settings.
    pub cors: CorsConfig,
    /// `Some` when forwarded requests carry a signed `Gatehouse-Assertion`
    /// (`IDENTITY_SIGNING_KEY`, audience `UPSTREAM_URL`).
    pub identity_assertion: Option<AssertionSigner>,
    /// Which requests get a log line.
    pub request_log: RequestLog,
    /// The Workers Analytics Engine binding each request's data point is
    /// written to (`METRICS_BINDING`, default `METRICS`; `off`: none). A
    /// name with no binding behind it writes nothing.
    pub metrics_binding: Option<String>,
    /// Binds shared JWKS cache entries to this deployment
    /// (`JWKS_CACHE_SECRET`); `None`: the shared cache is not used.
    pub jwks_cache_seal: Option<CacheSeal>,
    /// Unlocks the health endpoint's details (`HEALTH_ADMIN_TOKEN`); `None`:
    /// the health endpoint only ever shows its status.
    pub health_token: Option<HealthToken>,
}

/// A configuration error: which variable, and what is wrong with it (no values echoed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The variable's name.
    pub var: &'static str,
    /// What is wrong.
    pub problem: &'static str,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "configuration variable {}: {}", self.var, self.problem)
    }
}

fn err(var: &'static str, problem: &'static str) -> ConfigError {
    ConfigError { var, problem }
}

/// `ROUTES` entries as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteFile {
    prefix: String,
    #[serde(default)]
    public: bool,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    dpop: bool,
    #[serde(default)]
    rate_limits: Vec<RouteLimitFile>,
}

/// A route's rate limit as written: `{"key": "subject", "quota": "5/60"}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteLimitFile {
    key: String,
    quota: String,
}

fn is_url(v: &str) -> bool {
    v.starts_with("https://") || v.starts_with("http://")
}

fn algorithms(var: &'static str, names: &[String]) -> Result<Vec<Algorithm>, ConfigError> {
    names
        .iter()
        .map(|s| Algorithm::from_name(s.trim()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| err(var, "names an algorithm that is not supported"))
}

fn list(v: &str) -> Vec<String> {
    v.split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `limit/window_secs`, e.g. `600/60`.
fn quota(var: &'static str, name: &str, v: &str) -> Result<Quota, ConfigError> {
    let bad = || {
        err(
            var,
            "must be LIMIT/WINDOW_SECS with both at least 1, e.g. 600/60",
        )
    };
    let (l, w) = v.trim().split_once('/').ok_or_else(bad)?;
    let limit: u32 = l.trim().parse().map_err(|_| bad())?;
    let window: u32 = w.trim().parse().map_err(|_| bad())?;
    if limit == 0 || window == 0 {
        return Err(bad());
    }
    Ok(Quota::new(name, limit, window))
}

impl EdgeConfig {
    /// Builds the configuration from a variable lookup (`env.var`, then `env.secret`).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |var: &str| get(var).filter(|v| !v.trim().is_empty());
        let url = |var: &'static str, v: String| -> Result<String, ConfigError> {
            if is_url(&v) {
                Ok(v.trim_end_matches('/').to_owned())
            } else {
                Err(err(var, "must be an http(s) URL"))
            }
        };
        let secs = |var: &'static str, default: i64| -> Result<i64, ConfigError> {
            match get(var) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or(err(var, "must be a non-negative whole number of seconds")),
            }
        };
        let flag = |var: &'static str, default: bool| -> Result<bool, ConfigError> {
            match get(var).as_deref().map(str::trim) {
                None => Ok(default),
                Some("true" | "1" | "yes") => Ok(true),
                Some("false" | "0" | "no") => Ok(false),
                Some(_) => Err(err(var, "must be true or false")),
            }
        };
        let default_algs = match get("ALGORITHMS") {
            None => Algorithm::ALL.to_vec(),
            Some(v) => algorithms("ALGORITHMS", &list(&v))?,
        };
        let leeway = secs("LEEWAY_SECS", 30)?;
        let max_age = get("MAX_TOKEN_AGE_SECS")
            .map(|_| secs("MAX_TOKEN_AGE_SECS", 0))
            .transpose()?;
        let make_policy = |issuer: String, audiences: Vec<String>, algs: Vec<Algorithm>| {
            let mut p = AccessTokenPolicy::new(issuer, audiences);
            p.algorithms = algs;
            p.leeway_secs = leeway;
            p.max_age_secs = max_age;
            p
        };

        // Issuers: the simple single-issuer form, then TRUSTED_ISSUERS.
        let mut issuers = Vec::new();
        if let Some(issuer) = get("ISSUER") {
            let audiences = list(&get("AUDIENCE").ok_or(err("AUDIENCE", "is required"))?);
            if audiences.is_empty() {
                return Err(err("AUDIENCE", "is required"));
            }
            let jwks_url = url(
                "JWKS_URL",
                get("JWKS_URL").ok_or(err("JWKS_URL", "is required"))?,
            )?;
            issuers.push(IssuerConfig {
                policy: make_policy(issuer, audiences, default_algs.clone()),
                jwks: JwksSource::Url(jwks_url),
                preset: Preset::Rfc9068,
            });
        }
        if let Some(json) = get("TRUSTED_ISSUERS") {
            let files: Vec<IssuerFile> = serde_json::from_str(&json).map_err(|_| {
                err(
                    "TRUSTED_ISSUERS",
                    "must be a JSON array of {issuer, audiences, preset?, jwks_url? | discovery?, algorithms?, typ?, client_id_claims?, scope_claims?, role_claims?, require_jti?, required_claims?, leeway_secs?}",
                )
            })?;
            for f in files {
                let r = f.resolve().map_err(|p| err("TRUSTED_ISSUERS", p))?;
                let algs = match &r.algorithms {
                    None => r.preset.algorithms(&default_algs),
                    Some(a) => algorithms("TRUSTED_ISSUERS", a)?,
                };
                if algs.is_empty() {
                    return Err(err("TRUSTED_ISSUERS", "an issuer allows no algorithm"));
                }
                let mut policy = make_policy(f.issuer, f.audiences, algs);
                policy.profile = r.profile;
                if let Some(l) = r.leeway_secs {
                    policy.leeway_secs = l;
                }
                issuers.push(IssuerConfig {
                    policy,
                    jwks: r.jwks,
                    preset: r.preset,
                });
            }
        }
        if issuers.is_empty() {
            return Err(err("ISSUER", "is required (or TRUSTED_ISSUERS)"));
        }
        for (i, a) in issuers.iter().enumerate() {
            if issuers
                .iter()
                .skip(i + 1)
                .any(|b| b.policy.issuer == a.policy.issuer)
            {
                return Err(err("TRUSTED_ISSUERS", "an issuer is listed twice"));
            }
        }

        // DPoP.
        let mut dpop = DpopPolicy::default();
        if let Some(v) = get("DPOP_ALGORITHMS") {
            dpop.algorithms = algorithms("DPOP_ALGORITHMS", &list(&v))?;
        }
        dpop.max_age_secs = secs("DPOP_MAX_AGE_SECS", dpop.max_age_secs)?;
        dpop.leeway_secs = secs("DPOP_LEEWAY_SECS", dpop.leeway_secs)?;
        let nonces = match get("DPOP_NONCE").as_deref().map(str::trim) {
            None | Some("off") => None,
            Some("required") => {
                let secret = get("DPOP_NONCE_SECRET").ok_or(err(
                    "DPOP_NONCE_SECRET",
                    "is required when DPOP_NONCE=required",
                ))?;
                let step = secs("DPOP_NONCE_STEP_SECS", NonceIssuer::DEFAULT_STEP_SECS)?;
                Some(
                    NonceIssuer::new(secret.as_bytes(), step, NonceIssuer::DEFAULT_WINDOW_STEPS)
                        .map_err(|_| err("DPOP_NONCE_SECRET", "must be at least 32 bytes"))?,
                )
            }
            Some(_) => return Err(err("DPOP_NONCE", "must be off or required")),
        };

        // Route policy.
        let default = match get("DEFAULT_ROUTE").as_deref().map(str::trim) {
            None | Some("allow-authenticated") => DefaultAction::AllowAuthenticated,
            Some("deny") => DefaultAction::Deny,
            Some(_) => return Err(err("DEFAULT_ROUTE", "must be deny or allow-authenticated")),
        };
        let mut route_limits = RouteLimits::default();
        let rules = match get("ROUTES") {
            None => Vec::new(),
            Some(json) => {
                let files: Vec<RouteFile> = serde_json::from_str(&json).map_err(|_| {
                    err(
                        "ROUTES",
                        "must be a JSON array of {prefix, public?, scopes?, roles?, dpop?, rate_limits?}",
                    )
                })?;
                let mut rules = Vec::with_capacity(files.len());
                for f in files {
                    if f.public && (!f.rate_limits.is_empty() || !f.roles.is_empty()) {
                        return Err(err(
                            "ROUTES",
                            "a public route has no caller to check roles or limits for",
                        ));
                    }
                    let limits = f
                        .rate_limits
                        .iter()
                        .map(|l| {
                            let q = quota("ROUTES", "route", &l.quota)?;
                            RouteLimit::new(&l.key, q).ok_or(err(
                                "ROUTES",
                                "a rate limit key must be client, subject, ip or a combination such as client+subject",
                            ))
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    route_limits.add(&f.prefix, limits);
                    rules.push(RouteRule {
                        prefix: f.prefix,
                        public: f.public,
                        scopes: f.scopes,
                        roles: f.roles,
                        dpop_required: f.dpop,
                    });
                }
                rules
            }
        };
        let routes = RoutePolicy::new(default, rules)
            .map_err(|_| err("ROUTES", "has an invalid or repeated prefix"))?;

        // Rate limits.
        let client_quota = quota(
            "RATE_LIMIT_CLIENT",
            "client",
            &get("RATE_LIMIT_CLIENT").unwrap_or_else(|| "600/60".to_owned()),
        )?;
        let ip_quota = quota(
            "RATE_LIMIT_IP",
            "ip",
            &get("RATE_LIMIT_IP").unwrap_or_else(|| "60/60".to_owned()),
        )?;
        let ingest_quota = quota(
            "RATE_LIMIT_INGEST",
            "ingest",
            &get("RATE_LIMIT_INGEST").unwrap_or_else(|| "120/60".to_owned()),
        )?;
        let client_total_quota = get("RATE_LIMIT_CLIENT_TOTAL")
            .map(|v| quota("RATE_LIMIT_CLIENT_TOTAL", "client_total", &v))
            .transpose()?;
        let rate_limit_fail = match get("RATE_LIMIT_FAIL").as_deref().map(str::trim) {
            None | Some("open") => FailMode::Open,
            Some("closed") => FailMode::Closed,
            Some(_) => return Err(err("RATE_LIMIT_FAIL", "must be open or closed")),
        };

        let rate_limit_lease_max = match get("RATE_LIMIT_LEASE_MAX") {
            None => 16,
            Some(v) => v
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or(err(
                    "RATE_LIMIT_LEASE_MAX",
                    "must be a whole number from 1 to 1000",
                ))?,
        };

        let request_log = match get("REQUEST_LOG").as_deref().map(str::trim) {
            None | Some("all") => RequestLog::All,
            Some("refused") => RequestLog::Refused,
            Some("off") => RequestLog::Off,
            Some(_) => return Err(err("REQUEST_LOG", "must be all, refused or off")),
        };

        let metrics_binding = match get("METRICS_BINDING").as_deref().map(str::trim) {
            None => Some("METRICS".to_owned()),
            Some("off") => None,
            Some(name)
                if name.len() <= 64
                    && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                Some(name.to_owned())
            }
            Some(_) => {
                return Err(err(
                    "METRICS_BINDING",
                    "must be a binding name ([A-Za-z_][A-Za-z0-9_]*) or off",
                ))
            }
        };

        let revocation_fail = match get("REVOCATION_FAIL").as_deref().map(str::trim) {
            None | Some("closed") => RevocationFail::Closed,
            Some("open") => RevocationFail::Open,
            Some(_) => return Err(err("REVOCATION_FAIL", "must be open or closed")),
        };

        let jwks_cache_seal = get("JWKS_CACHE_SECRET")
            .map(|v| {
                CacheSeal::new(v.as_bytes())
                    .ok_or(err("JWKS_CACHE_SECRET", "must be at least 32 bytes"))
            })
            .transpose()?;
        let health_token = get("HEALTH_ADMIN_TOKEN")
            .map(|v| {
                HealthToken::new(v.trim())
                    .ok_or(err("HEALTH_ADMIN_TOKEN", "must be at least 32 bytes"))
            })
            .transpose()?;
        let upstream_url = url(
            "UPSTREAM_URL",
            get("UPSTREAM_URL").ok_or(err("UPSTREAM_URL", "is required"))?,
        )?;
        let identity_assertion = get("IDENTITY_SIGNING_KEY")
            .map(|jwk| AssertionSigner::from_jwk(&jwk, &upstream_url))
            .transpose()
            .map_err(|_| {
                err(
                    "IDENTITY_SIGNING_KEY",
                    "must be a private P-256 or Ed25519 JWK (with d)",
                )
            })?;

        let cfg = Self {
            identity_assertion,
            policies: issuers.iter().map(|i| i.policy.clone()).collect(),
            issuers,
            upstream_url,
            jwks_min_ttl_secs: secs("JWKS_MIN_TTL_SECS", 30)?,
            jwks_max_ttl_secs: secs("JWKS_MAX_TTL_SECS", 600)?,
            jwks_max_stale_secs: secs("JWKS_MAX_STALE_SECS", 3600)?,
            jwks_refresh_cooldown_secs: secs("JWKS_REFRESH_COOLDOWN_SECS", 10)?,
            dpop,
            nonces,
            routes,
            route_limits,
            client_quota,
            client_total_quota,
            ip_quota,
            ingest_quota,
            rate_limit_fail,
            rate_limit_lease_max,
            request_log,
            metrics_binding,
            revocation_fail,
            revocation_ttl_secs: secs("REVOCATION_TTL_SECS", 5)?,
            revocation_replicas: crate::replica_rules::parse_regions(
                get("REVOCATION_REPLICAS").as_deref(),
            )
            .map_err(|_| {
                err(
                    "REVOCATION_REPLICAS",
                    "must be off or a comma-separated list of Durable Object location hints",
                )
            })?,
            revocation_refresh_secs: secs("REVOCATION_REFRESH_SECS", 2)?,
            revocation_adopt_on_ingest: flag("REVOCATION_ADOPT_ON_INGEST", true)?,
            strip_credentials: flag("STRIP_CREDENTIALS", true)?,
            cors: CorsConfig {
                allow_origins: get("CORS_ALLOW_ORIGINS")
                    .map(|v| list(&v))
                    .unwrap_or_default(),
            },
            jwks_cache_seal,
            health_token,
        };
        if cfg.jwks_min_ttl_secs > cfg.jwks_max_ttl_secs {
            return Err(err(
                "JWKS_MIN_TTL_SECS",
                "must not exceed JWKS_MAX_TTL_SECS",
            ));
        }
        Ok(cfg)
    }

    /// The access-token policies, in issuer order (for `parse_for`).
    #[must_use]
    pub fn policies(&self) -> &[AccessTokenPolicy] {
        &self.policies
    }

    /// The issuer named `iss`, if trusted.
    #[must_use]
    pub fn issuer(&self, iss: &str) -> Option<&IssuerConfig> {
        self.issuers.iter().find(|i| i.policy.issuer == iss)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| m.get(k).cloned()
    }

    const BASE: [(&str, &str); 4] = [
        ("ISSUER", "http://127.0.0.1:8080"),
        ("AUDIENCE", "http://127.0.0.1:8787, https://api.example"),
        ("JWKS_URL", "http://127.0.0.1:8080/.well-known/jwks.json"),
        ("UPSTREAM_URL", "http://127.0.0.1:8090/"),
    ];

    fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut v = BASE.to_vec();
        v.extend_from_slice(extra);
        v
    }

    #[test]
    fn reads_a_complete_configuration() {
        let cfg = EdgeConfig::from_vars(vars(&BASE)).unwrap();
        let p = &cfg.issuers[0].policy;
        assert_eq!(
            p.audiences,
            vec!["http://127.0.0.1:8787", "https://api.example"]
        );
        assert_eq!(cfg.upstream_url, "http://127.0.0.1:8090");
        assert_eq!(p.algorithms, Algorithm::ALL.to_vec());
        assert!(cfg.nonces.is_none());
        assert_eq!(cfg.rate_limit_fail, FailMode::Open);
        assert_eq!(cfg.revocation_fail, RevocationFail::Closed, "fails closed");
        assert_eq!(cfg.revocation_replicas.len(), 9, "every region by default");
        assert_eq!(cfg.revocation_refresh_secs, 2);
        assert!(cfg.revocation_adopt_on_ingest);
        assert_eq!(cfg.client_quota.limit, 600);
        assert_eq!(cfg.ingest_quota.limit, 120);
        assert!(cfg.strip_credentials);
    }

    #[test]
    fn several_trusted_issuers() {
        let v = with(&[(
            "TRUSTED_ISSUERS",
            r#"[{"issuer":"https://kc.example/realms/a","jwks_url":"https://kc.example/certs","audiences":["api"],"algorithms":["RS256"]}]"#,
        )]);
        let cfg = EdgeConfig::from_vars(vars(&v)).unwrap();
        assert_eq!(cfg.issuers.len(), 2);
        assert_eq!(cfg.policies()[1].algorithms, vec![Algorithm::Rs256]);
        assert!(cfg.issuer("https://kc.example/realms/a").is_some());
        // Only TRUSTED_ISSUERS: the simple form is optional then.
        let only: Vec<_> = v
            .iter()
            .filter(|(k, _)| !matches!(*k, "ISSUER" | "AUDIENCE" | "JWKS_URL"))
            .cloned()
            .collect();
        assert_eq!(EdgeConfig::from_vars(vars(&only)).unwrap().issuers.len(), 1);
        let dup = with(&[(
            "TRUSTED_ISSUERS",
            r#"[{"issuer":"http://127.0.0.1:8080","jwks_url":"https://x/","audiences":["a"]}]"#,
        )]);
        assert_eq!(
            EdgeConfig::from_vars(vars(&dup)).unwrap_err().var,
            "TRUSTED_ISSUERS"
        );
        let unknown_field = with(&[(
            "TRUSTED_ISSUERS",
            r#"[{"issuer":"x","jwks_url":"https://x/","audiences":["a"],"secret":"s"}]"#,
        )]);
        assert!(EdgeConfig::from_vars(vars(&unknown_field)).is_err());
    }

    #[test]
    fn dpop_nonce_routes_and_limits() {
        let v = with(&[
            ("DPOP_NONCE", "required"),
            ("DPOP_NONCE_SECRET", "0123456789abcdef0123456789abcdef"),
            (
                "ROUTES",
                r#"[{"prefix":"/admin","scopes":["admin"],"dpop":true},{"prefix":"/pub","public":true}]"#,
            ),
            ("DEFAULT_ROUTE", "deny"),
            ("RATE_LIMIT_CLIENT", "3/60"),
            ("RATE_LIMIT_FAIL", "closed"),
            ("REVOCATION_FAIL", "open"),
            ("CORS_ALLOW_ORIGINS", "https://app.example"),
        ]);
        let cfg = EdgeConfig::from_vars(vars(&v)).unwrap();
        assert!(cfg.nonces.is_some());
        let route = |p: &str| {
            cfg.routes
                .route(&gatehouse_common::policy::CanonicalPath::parse(p).unwrap())
        };
        assert!(!route("/pub/x").needs_token());
        assert_eq!(route("/other"), gatehouse_common::policy::Route::Deny);
        assert_eq!(
            (cfg.client_quota.limit, cfg.client_quota.window_secs),
            (3, 60)
        );
        assert_eq!(cfg.rate_limit_fail, FailMode::Closed);
        assert_eq!(cfg.revocation_fail, RevocationFail::Open);
        assert_eq!(
            cfg.cors.allow("https://app.example").as_deref(),
            Some("https://app.example")
        );
        assert_eq!(cfg.cors.allow("https://evil.example"), None);
    }

    /// Issue 15.4: the health details are for the admin token only, and
    /// without one configured, for nobody.
    #[test]
    fn only_the_health_admin_token_unlocks_the_health_details() {
        let cfg = EdgeConfig::from_vars(vars(&BASE)).unwrap();
        assert!(cfg.health_token.is_none(), "off by default");
        assert!(
            cfg.jwks_cache_seal.is_none(),
            "shared JWKS cache off by default"
        );
        assert!(cfg.client_total_quota.is_none());
        let token = "health-admin-token-0123456789abcdef0123";
        let v = with(&[("HEALTH_ADMIN_TOKEN", token)]);
        let cfg = EdgeConfig::from_vars(vars(&v)).unwrap();
        let t = cfg.health_token.as_ref().unwrap();
        assert!(t.admits(Some(&format!("Bearer {token}"))));
        assert!(t.admits(Some(&format!("bearer  {token}"))));
        assert!(!t.admits(None));
        assert!(!t.admits(Some(token)), "no scheme");
        assert!(!t.admits(Some(&format!("Basic {token}"))));
        assert!(!t.admits(Some(&format!("Bearer {token}x"))));
        assert!(!t.admits(Some("Bearer ")));
        assert!(!format!("{cfg:?}").contains(token), "never in Debug");
    }

    #[test]
    fn names_the_bad_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("ALGORITHMS", "ES256,HS256")], "ALGORITHMS"),
            (&[("LEEWAY_SECS", "-3")], "LEEWAY_SECS"),
            (&[("DPOP_NONCE", "required")], "DPOP_NONCE_SECRET"),
            (
                &[("DPOP_NONCE", "required"), ("DPOP_NONCE_SECRET", "short")],
                "DPOP_NONCE_SECRET",
            ),
            (&[("DPOP_NONCE", "sometimes")], "DPOP_NONCE"),
            (&[("ROUTES", r#"[{"prefix":"admin"}]"#)], "ROUTES"),
            (&[("ROUTES", "not json")], "ROUTES"),
            (&[("RATE_LIMIT_IP", "0/60")], "RATE_LIMIT_IP"),
            (&[("RATE_LIMIT_CLIENT", "ten")], "RATE_LIMIT_CLIENT"),
            (&[("RATE_LIMIT_INGEST", "1/0")], "RATE_LIMIT_INGEST"),
            (&[("RATE_LIMIT_FAIL", "maybe")], "RATE_LIMIT_FAIL"),
            (&[("RATE_LIMIT_LEASE_MAX", "0")], "RATE_LIMIT_LEASE_MAX"),
            (&[("REQUEST_LOG", "verbose")], "REQUEST_LOG"),
            (&[("METRICS_BINDING", "env.X; y")], "METRICS_BINDING"),
            (&[("METRICS_BINDING", "1ABC")], "METRICS_BINDING"),
            (&[("RATE_LIMIT_LEASE_MAX", "many")], "RATE_LIMIT_LEASE_MAX"),
            (&[("REVOCATION_FAIL", "sometimes")], "REVOCATION_FAIL"),
            (
                &[("REVOCATION_REPLICAS", "weur,mars")],
                "REVOCATION_REPLICAS",
            ),
            (
                &[("REVOCATION_REFRESH_SECS", "-1")],
                "REVOCATION_REFRESH_SECS",
            ),
            (
                &[("REVOCATION_ADOPT_ON_INGEST", "maybe")],
                "REVOCATION_ADOPT_ON_INGEST",
            ),
            (&[("STRIP_CREDENTIALS", "perhaps")], "STRIP_CREDENTIALS"),
            (&[("TRUSTED_ISSUERS", "{}")], "TRUSTED_ISSUERS"),
            (&[("JWKS_CACHE_SECRET", "short")], "JWKS_CACHE_SECRET"),
            (&[("HEALTH_ADMIN_TOKEN", "short")], "HEALTH_ADMIN_TOKEN"),
            (
                &[("RATE_LIMIT_CLIENT_TOTAL", "0/60")],
                "RATE_LIMIT_CLIENT_TOTAL",
            ),
            (
                &[("IDENTITY_SIGNING_KEY", r#"{"kty":"oct","k":"c2VjcmV0"}"#)],
                "IDENTITY_SIGNING_KEY",
            ),
        ];
        for (extra, var) in cases {
            let v = with(extra);
            assert_eq!(
                EdgeConfig::from_vars(vars(&v)).unwrap_err().var,
                *var,
                "{extra:?}"
            );
        }
        let mut v = BASE.to_vec();
        v.retain(|(k, _)| *k != "ISSUER");
        assert_eq!(EdgeConfig::from_vars(vars(&v)).unwrap_err().var, "ISSUER");
        let mut v = BASE.to_vec();
        v[3] = ("UPSTREAM_URL", "ftp://x");
        assert_eq!(
            EdgeConfig::from_vars(vars(&v)).unwrap_err().var,
            "UPSTREAM_URL"
        );
    }
}
