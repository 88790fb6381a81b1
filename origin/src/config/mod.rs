//! Configuration: an optional `gatehouse.toml` overlaid by `GATEHOUSE_*`
//! environment variables, validated once into [`Config`].
//!
//! [`FileConfig`] is what users write (unknown keys are refused); [`Config`]
//! is what the server runs with. Loading never panics and never prints: it
//! returns a [`ConfigError`] the CLI reports.

use crate::support::secret::AdminToken;
use gatehouse_common::alg::Algorithm;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The file format of `gatehouse.toml`. Every key is optional.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `GATEHOUSE_LISTEN`: socket address to listen on.
    pub listen: Option<String>,
    /// `GATEHOUSE_ISSUER`: the issuer identifier (`iss`), an http(s) URL.
    pub issuer: Option<String>,
    /// `GATEHOUSE_DATABASE_URL`: `sqlite://…` or `postgres://…`.
    pub database_url: Option<String>,
    /// `GATEHOUSE_DATA_DIR`: where the SQLite file and the development KEK live.
    pub data_dir: Option<String>,
    /// `GATEHOUSE_ACCESS_TOKEN_TTL`: access token lifetime in seconds.
    pub access_token_ttl: Option<i64>,
    /// `GATEHOUSE_LEEWAY_SECS`: clock skew tolerated on our own tokens
    /// (introspection, revocation `until`s), default 30. Edges must not be
    /// configured with a larger `LEEWAY_SECS` than the origin, or the edge
    /// would accept tokens the revocation list has already forgotten.
    pub leeway_secs: Option<i64>,
    /// `GATEHOUSE_REFRESH_TOKEN_TTL`: absolute lifetime of a refresh-token
    /// family, seconds (default 30 days).
    pub refresh_token_ttl: Option<i64>,
    /// `GATEHOUSE_REFRESH_IDLE_TTL`: a refresh token unused this long expires
    /// (default 1 day).
    pub refresh_idle_ttl: Option<i64>,
    /// `GATEHOUSE_OFFLINE_REFRESH_TTL`: absolute lifetime of an offline
    /// refresh family (`scope=offline_access`, OpenID Connect Core §11),
    /// seconds (default 90 days). No idle limit applies to it, and logging
    /// out of the browser session it came from does not end it.
    pub offline_refresh_ttl: Option<i64>,
    /// `GATEHOUSE_REPUBLISH_SECS`: the pusher re-publishes the revocation
    /// document this often even with nothing pending (default 300).
    pub republish_secs: Option<i64>,
    /// `GATEHOUSE_ADMIN_TOKEN`: bearer token for `/admin` (admin API off when absent).
    pub admin_token: Option<String>,
    /// `GATEHOUSE_LOG`: tracing filter (e.g. `info`, `gatehouse_origin=debug`).
    pub log: Option<String>,
    /// `GATEHOUSE_KEK`: base64url of the 32-byte key-encryption key.
    pub kek: Option<String>,
    /// `GATEHOUSE_DEFAULT_AUDIENCE`: audience given to clients created without one.
    pub default_audience: Option<String>,
    /// `GATEHOUSE_SIGNING_ALG`: algorithm of new signing keys (ES256, EdDSA, RS256, PS256).
    pub signing_alg: Option<String>,
    /// `GATEHOUSE_KEY_PUBLISH_LEAD`: seconds a new key is in the JWKS before it signs.
    pub key_publish_lead: Option<i64>,
    /// `GATEHOUSE_KEY_ACTIVE_PERIOD`: seconds a key signs before the next one takes over.
    pub key_active_period: Option<i64>,
    /// `GATEHOUSE_KEY_RETENTION`: seconds a retired key stays published (beyond the token TTL).
    pub key_retention: Option<i64>,
    /// `GATEHOUSE_KEY_CHECK_SECS`: how often each replica applies the key
    /// schedule and reloads other replicas' keys (default 30, 1–3600).
    pub key_check_secs: Option<i64>,
    /// `GATEHOUSE_JWKS_MAX_AGE`: `Cache-Control: max-age` of the JWKS, seconds.
    pub jwks_max_age: Option<i64>,
    /// `GATEHOUSE_DPOP_NONCE`: require server-issued DPoP nonces at `/token`.
    pub dpop_nonce: Option<bool>,
    /// `GATEHOUSE_REQUIRE_PAR`: every client must push its authorization
    /// requests (RFC 9126 §6 `require_pushed_authorization_requests`).
    pub require_pushed_authorization_requests: Option<bool>,
    /// `GATEHOUSE_SECRET_GRACE`: seconds an old client secret keeps working after rotation.
    pub secret_grace: Option<i64>,
    /// `GATEHOUSE_TOKEN_RATE`: token requests per minute allowed per client and per IP (bursts up to the same number).
    pub token_rate_per_minute: Option<u32>,
    /// `GATEHOUSE_REVOCATION_PUSH`: `edge`, `cloudflare` or `off` (default:
    /// `edge` when an edge URL is set, else `off`).
    pub revocation_push: Option<String>,
    /// `GATEHOUSE_EDGE_URL`: the worker's base URL; documents go to
    /// `POST {edge_url}/.gatehouse/revocations`.
    pub edge_url: Option<String>,
    /// `GATEHOUSE_CLOUDFLARE_ACCOUNT_ID`: account of the KV namespace (push mode `cloudflare`).
    pub cloudflare_account_id: Option<String>,
    /// `GATEHOUSE_CLOUDFLARE_NAMESPACE_ID`: the KV namespace id (push mode `cloudflare`).
    pub cloudflare_namespace_id: Option<String>,
    /// `GATEHOUSE_CLOUDFLARE_KV_KEY`: the KV key the edge reads (default
    /// `revocations/{issuer}`, the worker's key).
    pub cloudflare_kv_key: Option<String>,
    /// `GATEHOUSE_CLOUDFLARE_API_BASE`: API base URL (default
    /// `https://api.cloudflare.com/client/v4`; tests point it at a local server).
    pub cloudflare_api_base: Option<String>,
    /// `GATEHOUSE_CORS_ALLOW_ORIGINS` (comma or space separated; a list in the
    /// file): exact browser origins (`https://app.example`) that may call
    /// `/token`, `/revoke` and the `.well-known` documents cross-origin.
    pub cors_allow_origins: Option<Vec<String>>,
    /// `GATEHOUSE_TRUSTED_PROXIES` (comma or space separated; a list in the
    /// file): CIDRs of reverse proxies whose `Forwarded` / `X-Forwarded-For`
    /// give the client address for rate limits and audit. Empty: the TCP peer.
    pub trusted_proxies: Option<Vec<String>>,
    /// `GATEHOUSE_LOGIN_CONCURRENCY`: password hashes (argon2id, 19 MiB each)
    /// run at once; default the number of CPUs. Logins beyond it wait briefly, then get 429.
    pub login_concurrency: Option<usize>,
}

/// The validated configuration the origin runs with.
#[derive(Clone)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// Issuer identifier, without a trailing slash.
    pub issuer: String,
    /// Database URL.
    pub database_url: String,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Access token lifetime, seconds.
    pub access_token_ttl: i64,
    /// Clock skew tolerated on our own tokens, seconds (at least the edge's).
    pub leeway_secs: i64,
    /// Seconds between re-publications of the revocation document.
    pub republish_secs: i64,
    /// Absolute lifetime of a refresh-token family, seconds.
    pub refresh_token_ttl: i64,
    /// Idle lifetime of a refresh token, seconds.
    pub refresh_idle_ttl: i64,
    /// Absolute lifetime of an offline refresh family, seconds (no idle limit).
    pub offline_refresh_ttl: i64,
    /// Admin bearer token, if the admin API is enabled.
    pub admin_token: Option<AdminToken>,
    /// Tracing filter.
    pub log: String,
    /// Key-encryption key source.
    pub kek: Option<crate::support::kek::Kek>,
    /// Audience for clients created without `--audience`.
    pub default_audience: String,
    /// Algorithm of newly generated signing keys.
    pub signing_alg: Algorithm,
    /// Key schedule.
    pub key_schedule: KeySchedule,
    /// Seconds between key-schedule checks (and reloads of the ring).
    pub key_check_secs: u64,
    /// JWKS `Cache-Control: max-age`, seconds.
    pub jwks_max_age: i64,
    /// Whether `/token` requires DPoP nonces.
    pub dpop_nonce: bool,
    /// Whether every client must use pushed authorization requests (RFC 9126 §6).
    pub require_pushed_authorization_requests: bool,
    /// Grace period of a rotated client secret, seconds.
    pub secret_grace: i64,
    /// Token endpoint rate: requests per minute per client and per IP.
    pub token_rate_per_minute: u32,
    /// Where revocation documents are pushed.
    pub revocation_push: PushTarget,
    /// Exact origins allowed to call the browser-facing endpoints
    /// cross-origin, normalized as browsers send them (`scheme://host[:port]`,
    /// lower case, no default port). Empty: no CORS headers at all.
    pub cors_allow_origins: Vec<String>,
    /// Reverse proxies trusted to name the client address (`Forwarded`, `X-Forwarded-For`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Password hashes run at once (each holds 19 MiB).
    pub login_concurrency: usize,
}

/// `url` with any password in its authority replaced by `[redacted]`
/// (database URLs may carry credentials).
#[must_use]
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            let redacted = if userinfo.contains(':') {
                format!("{user}:[redacted]")
            } else {
                user.to_owned()
            };
            format!("{scheme}://{redacted}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

const REDACTED: &str = "[redacted]";

impl std::fmt::Debug for FileConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let present = |o: &Option<String>| o.as_ref().map(|_| REDACTED);
        f.debug_struct("FileConfig")
            .field("listen", &self.listen)
            .field("issuer", &self.issuer)
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url),
            )
            .field("data_dir", &self.data_dir)
            .field("access_token_ttl", &self.access_token_ttl)
            .field("leeway_secs", &self.leeway_secs)
            .field("admin_token", &present(&self.admin_token))
            .field("kek", &present(&self.kek))
            .field("revocation_push", &self.revocation_push)
            .field("edge_url", &self.edge_url)
            .field("cors_allow_origins", &self.cors_allow_origins)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("issuer", &self.issuer)
            .field("database_url", &redact_url(&self.database_url))
            .field("data_dir", &self.data_dir)
            .field("access_token_ttl", &self.access_token_ttl)
            .field("leeway_secs", &self.leeway_secs)
            .field("republish_secs", &self.republish_secs)
            .field("admin_token", &self.admin_token)
            .field("log", &self.log)
            .field("kek", &self.kek)
            .field("default_audience", &self.default_audience)
            .field("signing_alg", &self.signing_alg)
            .field("key_schedule", &self.key_schedule)
            .field("key_check_secs", &self.key_check_secs)
            .field("jwks_max_age", &self.jwks_max_age)
            .field("dpop_nonce", &self.dpop_nonce)
            .field(
                "require_pushed_authorization_requests",
                &self.require_pushed_authorization_requests,
            )
            .field("secret_grace", &self.secret_grace)
            .field("token_rate_per_minute", &self.token_rate_per_minute)
            .field("revocation_push", &self.revocation_push)
            .field("cors_allow_origins", &self.cors_allow_origins)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("login_concurrency", &self.login_concurrency)
            .finish()
    }
}

/// Where the revocation pusher writes the signed document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushTarget {
    /// No pusher runs; revocations wait in the outbox.
    Off,
    /// `POST {url}/.gatehouse/revocations` on the worker.
    Edge {
        /// The worker's base URL, without a trailing slash.
        url: String,
    },
    /// The Cloudflare KV REST API.
    Cloudflare(CloudflareKv),
}

impl PushTarget {
    /// `off`, `edge` or `cloudflare`.
    #[must_use]
    pub fn mode(&self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Edge { .. } => "edge",
            Self::Cloudflare(_) => "cloudflare",
        }
    }
}

/// Cloudflare KV REST API coordinates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudflareKv {
    /// API base URL, without a trailing slash.
    pub api_base: String,
    /// Account id.
    pub account_id: String,
    /// KV namespace id.
    pub namespace_id: String,
    /// The key the document is written under (default `revocations/{issuer}`,
    /// where the worker reads it).
    pub key: String,
    /// `CLOUDFLARE_API_TOKEN` (needs KV write permission).
    pub api_token: crate::support::secret::CloudflareApiToken,
}

/// When signing keys are published, become active, retire and disappear.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeySchedule {
    /// Seconds between publication in the JWKS and first signature
    /// (at least the edge's maximum JWKS cache age).
    pub publish_lead: i64,
    /// Seconds a key is the signer.
    pub active_period: i64,
    /// Seconds a retired key stays in the JWKS after its last token expired.
    pub retention: i64,
}

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for [`FileConfig`] (includes unknown keys).
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The TOML error.
        message: String,
    },
    /// A value is invalid.
    #[error("invalid {key}: {reason}")]
    Invalid {
        /// The setting (env var name).
        key: &'static str,
        /// Why.
        reason: String,
    },
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

impl FileConfig {
    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.message().to_owned(),
        })
    }

    /// Overlays `GATEHOUSE_*` variables from `env`.
    pub fn overlay_env(&mut self, env: &HashMap<String, String>) -> Result<(), ConfigError> {
        fn s(env: &HashMap<String, String>, k: &str, slot: &mut Option<String>) {
            if let Some(v) = env.get(k) {
                *slot = Some(v.clone());
            }
        }
        fn n<T: std::str::FromStr>(
            env: &HashMap<String, String>,
            k: &'static str,
            slot: &mut Option<T>,
        ) -> Result<(), ConfigError> {
            if let Some(v) = env.get(k) {
                *slot = Some(
                    v.trim()
                        .parse()
                        .map_err(|_| invalid(k, format!("`{v}` is not a valid value")))?,
                );
            }
            Ok(())
        }
        s(env, "GATEHOUSE_LISTEN", &mut self.listen);
        s(env, "GATEHOUSE_ISSUER", &mut self.issuer);
        s(env, "GATEHOUSE_DATABASE_URL", &mut self.database_url);
        s(env, "GATEHOUSE_DATA_DIR", &mut self.data_dir);
        n(
            env,
            "GATEHOUSE_ACCESS_TOKEN_TTL",
            &mut self.access_token_ttl,
        )?;
        n(env, "GATEHOUSE_LEEWAY_SECS", &mut self.leeway_secs)?;
        n(env, "GATEHOUSE_REPUBLISH_SECS", &mut self.republish_secs)?;
        n(
            env,
            "GATEHOUSE_REFRESH_TOKEN_TTL",
            &mut self.refresh_token_ttl,
        )?;
        n(
            env,
            "GATEHOUSE_REFRESH_IDLE_TTL",
            &mut self.refresh_idle_ttl,
        )?;
        n(
            env,
            "GATEHOUSE_OFFLINE_REFRESH_TTL",
            &mut self.offline_refresh_ttl,
        )?;
        s(env, "GATEHOUSE_ADMIN_TOKEN", &mut self.admin_token);
        s(env, "GATEHOUSE_LOG", &mut self.log);
        s(env, "GATEHOUSE_KEK", &mut self.kek);
        s(
            env,
            "GATEHOUSE_DEFAULT_AUDIENCE",
            &mut self.default_audience,
        );
        s(env, "GATEHOUSE_SIGNING_ALG", &mut self.signing_alg);
        n(
            env,
            "GATEHOUSE_KEY_PUBLISH_LEAD",
            &mut self.key_publish_lead,
        )?;
        n(
            env,
            "GATEHOUSE_KEY_ACTIVE_PERIOD",
            &mut self.key_active_period,
        )?;
        n(env, "GATEHOUSE_KEY_RETENTION", &mut self.key_retention)?;
        n(env, "GATEHOUSE_KEY_CHECK_SECS", &mut self.key_check_secs)?;
        n(env, "GATEHOUSE_JWKS_MAX_AGE", &mut self.jwks_max_age)?;
        n(env, "GATEHOUSE_DPOP_NONCE", &mut self.dpop_nonce)?;
        n(
            env,
            "GATEHOUSE_REQUIRE_PAR",
            &mut self.require_pushed_authorization_requests,
        )?;
        n(env, "GATEHOUSE_SECRET_GRACE", &mut self.secret_grace)?;
        n(env, "GATEHOUSE_TOKEN_RATE", &mut self.token_rate_per_minute)?;
        s(env, "GATEHOUSE_REVOCATION_PUSH", &mut self.revocation_push);
        s(env, "GATEHOUSE_EDGE_URL", &mut self.edge_url);
        s(
            env,
            "GATEHOUSE_CLOUDFLARE_ACCOUNT_ID",
            &mut self.cloudflare_account_id,
        );
        s(
            env,
            "GATEHOUSE_CLOUDFLARE_NAMESPACE_ID",
            &mut self.cloudflare_namespace_id,
        );
        s(
            env,
            "GATEHOUSE_CLOUDFLARE_KV_KEY",
            &mut self.cloudflare_kv_key,
        );
        s(
            env,
            "GATEHOUSE_CLOUDFLARE_API_BASE",
            &mut self.cloudflare_api_base,
        );
        if let Some(v) = env.get("GATEHOUSE_CORS_ALLOW_ORIGINS") {
            self.cors_allow_origins = Some(
                v.split([',', ' ', '\t', '\n'])
                    .filter(|o| !o.is_empty())
                    .map(str::to_owned)
                    .collect(),
            );
        }
        if let Some(v) = env.get("GATEHOUSE_TRUSTED_PROXIES") {
            self.trusted_proxies = Some(
                v.split([',', ' ', '\t', '\n'])
                    .filter(|o| !o.is_empty())
                    .map(str::to_owned)
                    .collect(),
            );
        }
        n(
            env,
            "GATEHOUSE_LOGIN_CONCURRENCY",
            &mut self.login_concurrency,
        )?;
        Ok(())
    }

    /// Validates into a [`Config`], filling defaults. `api_token` is
    /// `CLOUDFLARE_API_TOKEN` (never read from the file).
    pub fn validate(self) -> Result<Config, ConfigError> {
        self.validate_with_token(None)
    }

    fn push_target(&self, api_token: Option<String>) -> Result<PushTarget, ConfigError> {
        fn http_url(key: &'static str, v: &str) -> Result<String, ConfigError> {
            let v = v.trim().trim_end_matches('/');
            if !(v.starts_with("https://") || v.starts_with("http://"))
                || v.contains(['?', '#', ' '])
            {
                return Err(invalid(
                    key,
                    "must be an http(s) URL without query or fragment",
                ));
            }
            Ok(v.to_owned())
        }
        fn id(key: &'static str, v: Option<&String>) -> Result<String, ConfigError> {
            match v {
                Some(v)
                    if !v.is_empty()
                        && v.len() <= 256
                        && v.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) =>
                {
                    Ok(v.clone())
                }
                Some(_) => Err(invalid(key, "must be letters, digits, '-', '_' or '.'")),
                None => Err(invalid(
                    key,
                    "is required when GATEHOUSE_REVOCATION_PUSH=cloudflare",
                )),
            }
        }
        let edge_url = self.edge_url.as_deref().filter(|u| !u.is_empty());
        let mode = match self.revocation_push.as_deref() {
            None | Some("") => {
                if edge_url.is_some() {
                    "edge"
                } else {
                    "off"
                }
            }
            Some(m) => m,
        };
        match mode {
            "off" => Ok(PushTarget::Off),
            "edge" => match edge_url {
                Some(u) => Ok(PushTarget::Edge {
                    url: http_url("GATEHOUSE_EDGE_URL", u)?,
                }),
                None => Err(invalid(
                    "GATEHOUSE_EDGE_URL",
                    "is required when GATEHOUSE_REVOCATION_PUSH=edge",
                )),
            },
            "cloudflare" => Ok(PushTarget::Cloudflare(CloudflareKv {
                api_base: http_url(
                    "GATEHOUSE_CLOUDFLARE_API_BASE",
                    self.cloudflare_api_base
                        .as_deref()
                        .unwrap_or("https://api.cloudflare.com/client/v4"),
                )?,
                account_id: id(
                    "GATEHOUSE_CLOUDFLARE_ACCOUNT_ID",
                    self.cloudflare_account_id.as_ref(),
                )?,
                namespace_id: id(
                    "GATEHOUSE_CLOUDFLARE_NAMESPACE_ID",
                    self.cloudflare_namespace_id.as_ref(),
                )?,
                // Filled with the edge's key for this issuer by `validate_with_token`.
                key: match self.cloudflare_kv_key.as_deref() {
                    None | Some("") => String::new(),
                    Some(k) if k.len() <= 512 && !k.chars().any(char::is_control) => k.to_owned(),
                    Some(_) => {
                        return Err(invalid(
                            "GATEHOUSE_CLOUDFLARE_KV_KEY",
                            "must be at most 512 characters without control characters",
                        ))
                    }
                },
                api_token: match api_token.filter(|t| !t.is_empty()) {
                    Some(t) => crate::support::secret::CloudflareApiToken::new(t),
                    None => {
                        return Err(invalid(
                            "CLOUDFLARE_API_TOKEN",
                            "is required when GATEHOUSE_REVOCATION_PUSH=cloudflare",
                        ))
                    }
                },
            })),
            _ => Err(invalid(
                "GATEHOUSE_REVOCATION_PUSH",
                "must be edge, cloudflare or off",
            )),
        }
    }

    /// Validates into a [`Config`] with the Cloudflare API token from the environment.
    pub fn validate_with_token(self, api_token: Option<String>) -> Result<Config, ConfigError> {
        let mut revocation_push = self.push_target(api_token)?;
        let listen_text = self.listen.unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            invalid(
                "GATEHOUSE_LISTEN",
                format!("`{listen_text}` is not host:port"),
            )
        })?;
        let issuer = self
            .issuer
            .unwrap_or_else(|| "http://127.0.0.1:8080".into());
        if !(issuer.starts_with("https://") || issuer.starts_with("http://"))
            || issuer.ends_with('/')
            || issuer.contains(['?', '#', ' '])
        {
            return Err(invalid(
                "GATEHOUSE_ISSUER",
                "must be an http(s) URL without query, fragment or trailing slash",
            ));
        }
        if let PushTarget::Cloudflare(kv) = &mut revocation_push {
            if kv.key.is_empty() {
                kv.key = format!("revocations/{issuer}");
            }
        }
        let data_dir = PathBuf::from(self.data_dir.unwrap_or_else(|| "./data".into()));
        let database_url = self
            .database_url
            .unwrap_or_else(|| "sqlite://./data/gatehouse.db".into());
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "GATEHOUSE_DATABASE_URL",
                "must start with sqlite: or postgres://",
            ));
        }
        let access_token_ttl = self.access_token_ttl.unwrap_or(300);
        if !(10..=86_400).contains(&access_token_ttl) {
            return Err(invalid(
                "GATEHOUSE_ACCESS_TOKEN_TTL",
                "must be between 10 and 86400 seconds",
            ));
        }
        let leeway_secs = self.leeway_secs.unwrap_or(30);
        if !(0..=300).contains(&leeway_secs) {
            return Err(invalid(
                "GATEHOUSE_LEEWAY_SECS",
                "must be between 0 and 300 seconds",
            ));
        }
        let republish_secs = self.republish_secs.unwrap_or(300);
        if !(1..=86_400).contains(&republish_secs) {
            return Err(invalid(
                "GATEHOUSE_REPUBLISH_SECS",
                "must be between 1 and 86400 seconds",
            ));
        }
        let refresh_token_ttl = self.refresh_token_ttl.unwrap_or(30 * 86_400);
        let refresh_idle_ttl = self.refresh_idle_ttl.unwrap_or(86_400);
        if !(60..=365 * 86_400).contains(&refresh_token_ttl)
            || !(60..=refresh_token_ttl).contains(&refresh_idle_ttl)
        {
            return Err(invalid(
                "GATEHOUSE_REFRESH_IDLE_TTL",
                "refresh lifetimes must be 60 s to 1 year, idle at most the absolute lifetime",
            ));
        }
        let offline_refresh_ttl = self.offline_refresh_ttl.unwrap_or(90 * 86_400);
        if !(60..=3 * 365 * 86_400).contains(&offline_refresh_ttl) {
            return Err(invalid(
                "GATEHOUSE_OFFLINE_REFRESH_TTL",
                "must be between 60 seconds and 3 years",
            ));
        }
        let admin_token = match self.admin_token {
            None => None,
            Some(t) if t.is_empty() => None,
            Some(t) if t.len() < 16 => {
                return Err(invalid(
                    "GATEHOUSE_ADMIN_TOKEN",
                    "must be at least 16 characters",
                ))
            }
            Some(t) => Some(AdminToken::new(t)),
        };
        let kek = match self.kek {
            None => None,
            Some(k) if k.is_empty() => None,
            Some(k) => Some(
                crate::support::kek::Kek::from_base64url(k.trim())
                    .map_err(|_| invalid("GATEHOUSE_KEK", "must be base64url of 32 bytes"))?,
            ),
        };
        let signing_alg = match self.signing_alg.as_deref() {
            None => Algorithm::Es256,
            Some(name) => match Algorithm::from_name(name) {
                Ok(
                    a @ (Algorithm::Es256 | Algorithm::EdDsa | Algorithm::Rs256 | Algorithm::Ps256),
                ) => a,
                _ => {
                    return Err(invalid(
                        "GATEHOUSE_SIGNING_ALG",
                        "must be one of ES256, EdDSA, RS256, PS256",
                    ))
                }
            },
        };
        let jwks_max_age = self.jwks_max_age.unwrap_or(300);
        if !(0..=86_400).contains(&jwks_max_age) {
            return Err(invalid(
                "GATEHOUSE_JWKS_MAX_AGE",
                "must be between 0 and 86400",
            ));
        }
        let key_schedule = KeySchedule {
            publish_lead: self.key_publish_lead.unwrap_or(3_600),
            active_period: self.key_active_period.unwrap_or(30 * 86_400),
            retention: self.key_retention.unwrap_or(3_600),
        };
        if key_schedule.publish_lead < jwks_max_age {
            return Err(invalid(
                "GATEHOUSE_KEY_PUBLISH_LEAD",
                "must be at least GATEHOUSE_JWKS_MAX_AGE so caches see a key before it signs",
            ));
        }
        if key_schedule.active_period < 60 || key_schedule.retention < 0 {
            return Err(invalid(
                "GATEHOUSE_KEY_ACTIVE_PERIOD",
                "must be at least 60 seconds (and retention non-negative)",
            ));
        }
        let key_check_secs = self.key_check_secs.unwrap_or(30);
        if !(1..=3_600).contains(&key_check_secs) {
            return Err(invalid(
                "GATEHOUSE_KEY_CHECK_SECS",
                "must be between 1 and 3600",
            ));
        }
        let key_check_secs = key_check_secs.unsigned_abs();
        let secret_grace = self.secret_grace.unwrap_or(86_400);
        if !(0..=30 * 86_400).contains(&secret_grace) {
            return Err(invalid(
                "GATEHOUSE_SECRET_GRACE",
                "must be between 0 and 2592000",
            ));
        }
        let token_rate_per_minute = self.token_rate_per_minute.unwrap_or(600);
        if token_rate_per_minute == 0 {
            return Err(invalid("GATEHOUSE_TOKEN_RATE", "must be positive"));
        }
        let mut cors_allow_origins = Vec::new();
        for o in self.cors_allow_origins.unwrap_or_default() {
            let o = cors_origin(&o)
                .map_err(|reason| invalid("GATEHOUSE_CORS_ALLOW_ORIGINS", reason))?;
            if !cors_allow_origins.contains(&o) {
                cors_allow_origins.push(o);
            }
        }
        let mut trusted_proxies = Vec::new();
        for p in self.trusted_proxies.unwrap_or_default() {
            trusted_proxies.push(trusted_proxy(&p)?);
        }
        let login_concurrency = match self.login_concurrency {
            Some(0) => {
                return Err(invalid("GATEHOUSE_LOGIN_CONCURRENCY", "must be positive"));
            }
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get),
        };
        Ok(Config {
            listen,
            issuer,
            database_url,
            data_dir,
            access_token_ttl,
            leeway_secs,
            republish_secs,
            refresh_token_ttl,
            refresh_idle_ttl,
            offline_refresh_ttl,
            admin_token,
            log: self.log.unwrap_or_else(|| "info".into()),
            kek,
            default_audience: self
                .default_audience
                .unwrap_or_else(|| "http://127.0.0.1:8787".into()),
            signing_alg,
            key_schedule,
            key_check_secs,
            jwks_max_age,
            dpop_nonce: self.dpop_nonce.unwrap_or(false),
            require_pushed_authorization_requests: self
                .require_pushed_authorization_requests
                .unwrap_or(false),
            secret_grace,
            token_rate_per_minute,
            revocation_push,
            cors_allow_origins,
            trusted_proxies,
            login_concurrency,
        })
    }
}

/// One `GATEHOUSE_TRUSTED_PROXIES` entry: a CIDR (`10.0.0.0/8`, `::1/128`)
/// or a single address.
/// A `/0` trusts every address, so every client could name its own address
/// with `X-Forwarded-For`: refused.
fn trusted_proxy(text: &str) -> Result<ipnet::IpNet, ConfigError> {
    let net = text
        .parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| {
            invalid(
                "GATEHOUSE_TRUSTED_PROXIES",
                format!("`{text}` is not an IP address or CIDR"),
            )
        })?;
    if net.prefix_len() == 0 {
        return Err(invalid(
            "GATEHOUSE_TRUSTED_PROXIES",
            format!("`{text}` trusts every address (any client could choose its own)"),
        ));
    }
    Ok(net)
}

/// `host[:port]`: a DNS name or IPv4 address, or a bracketed IPv6 address,
/// and an optional non-zero port.
fn authority_ok(authority: &str) -> bool {
    let (host_ok, port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((addr, rest)) => (
                !addr.is_empty() && addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':'),
                if rest.is_empty() {
                    None
                } else {
                    match rest.strip_prefix(':') {
                        Some(p) => Some(p),
                        None => return false,
                    }
                },
            ),
            None => return false,
        },
        None => {
            let (host, port) = match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            };
            (
                !host.is_empty()
                    && host
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'),
                port,
            )
        }
    };
    let port_ok = port.is_none_or(|p| {
        p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok_and(|n| n > 0)
    });
    host_ok && port_ok
}

/// One allowed CORS origin, normalized to the form browsers send in `Origin`
/// (RFC 6454 §6.1): `scheme://host[:port]`, lower case, default port
/// dropped. Wildcards, `null`, paths, queries and credentials are refused.
fn cors_origin(text: &str) -> Result<String, String> {
    let lower = text.trim().to_ascii_lowercase();
    if lower == "*" {
        return Err("`*` is not allowed: list exact origins such as https://app.example".into());
    }
    let (scheme, authority, default_port) = if let Some(a) = lower.strip_prefix("https://") {
        ("https", a, ":443")
    } else if let Some(a) = lower.strip_prefix("http://") {
        ("http", a, ":80")
    } else {
        return Err(format!("`{text}` is not an http(s) origin"));
    };
    let authority = authority.strip_suffix('/').unwrap_or(authority);
    if !authority_ok(authority) {
        return Err(format!(
            "`{text}` must be scheme://host[:port] without path, query, credentials or wildcards"
        ));
    }
    let authority = authority.strip_suffix(default_port).unwrap_or(authority);
    Ok(format!("{scheme}://{authority}"))
}

impl Config {
    /// Loads the file (if any) and the process environment.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("GATEHOUSE_") || k == "CLOUDFLARE_API_TOKEN")
            .collect();
        Self::load_from(path, &env)
    }

    /// Loads the file (if any) overlaid by `env`.
    pub fn load_from(
        path: Option<&Path>,
        env: &HashMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let mut file = match path {
            Some(p) => FileConfig::from_file(p)?,
            None => FileConfig::default(),
        };
        file.overlay_env(env)?;
        file.validate_with_token(env.get("CLOUDFLARE_API_TOKEN").cloned())
    }

    /// The policy our own access tokens are checked with (introspection,
    /// RFC 7009): issuer, `audiences`, every algorithm `common` verifies (a
    /// key of any configured algorithm may still be published), the
    /// configured leeway and no maximum age — the edge's defaults, with the
    /// one leeway every origin computation uses.
    #[must_use]
    pub fn token_policy(
        &self,
        audiences: Vec<String>,
    ) -> gatehouse_common::access_token::AccessTokenPolicy {
        let mut p =
            gatehouse_common::access_token::AccessTokenPolicy::new(self.issuer.clone(), audiences);
        p.algorithms = Algorithm::ALL.to_vec();
        p.leeway_secs = self.leeway_secs;
        p.max_age_secs = None;
        p
    }

    /// A configuration for tests: the defaults, a fixed KEK and admin token.
    /// Only with the `testkit` feature (the integration tests turn it on).
    #[cfg(any(test, feature = "testkit"))]
    #[must_use]
    pub fn for_tests(database_url: &str) -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            issuer: "http://127.0.0.1:8080".into(),
            database_url: database_url.to_owned(),
            data_dir: std::env::temp_dir(),
            access_token_ttl: 300,
            leeway_secs: 30,
            republish_secs: 300,
            refresh_token_ttl: 30 * 86_400,
            refresh_idle_ttl: 86_400,
            offline_refresh_ttl: 90 * 86_400,
            admin_token: Some(AdminToken::new("test-admin-token-0123456789".into())),
            log: "info".into(),
            kek: Some(crate::support::kek::Kek::from_bytes([7; 32])),
            default_audience: "http://127.0.0.1:8787".into(),
            signing_alg: Algorithm::Es256,
            key_schedule: KeySchedule {
                publish_lead: 3_600,
                active_period: 30 * 86_400,
                retention: 3_600,
            },
            key_check_secs: 30,
            jwks_max_age: 300,
            dpop_nonce: false,
            require_pushed_authorization_requests: false,
            secret_grace: 86_400,
            token_rate_per_minute: 600,
            revocation_push: PushTarget::Off,
            cors_allow_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            login_concurrency: 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_need_no_file() {
        let c = Config::load_from(None, &env(&[])).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.issuer, "http://127.0.0.1:8080");
        assert_eq!(c.database_url, "sqlite://./data/gatehouse.db");
        assert_eq!(c.access_token_ttl, 300);
        assert!(c.admin_token.is_none());
    }

    #[test]
    fn trusting_every_address_as_a_proxy_is_refused() {
        for bad in ["0.0.0.0/0", "::/0", "10.0.0.0/8, 0.0.0.0/0"] {
            let e =
                Config::load_from(None, &env(&[("GATEHOUSE_TRUSTED_PROXIES", bad)])).unwrap_err();
            assert!(e.to_string().contains("trusts every address"), "{bad}: {e}");
        }
        let c =
            Config::load_from(None, &env(&[("GATEHOUSE_TRUSTED_PROXIES", "10.0.0.0/8")])).unwrap();
        assert_eq!(c.trusted_proxies.len(), 1);
    }

    #[test]
    fn key_check_interval_defaults_to_30_s_and_is_bounded() {
        let c = Config::load_from(None, &env(&[])).unwrap();
        assert_eq!(c.key_check_secs, 30);
        let c = Config::load_from(None, &env(&[("GATEHOUSE_KEY_CHECK_SECS", "1")])).unwrap();
        assert_eq!(c.key_check_secs, 1);
        for bad in ["0", "-5", "3601", "soon"] {
            let e =
                Config::load_from(None, &env(&[("GATEHOUSE_KEY_CHECK_SECS", bad)])).unwrap_err();
            assert!(
                e.to_string().contains("GATEHOUSE_KEY_CHECK_SECS"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn env_overrides_file_and_unknown_keys_are_refused() {
        let dir = std::env::temp_dir().join(format!("gh-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("g.toml");
        std::fs::write(
            &p,
            "issuer = \"https://a.example\"\naccess_token_ttl = 60\n",
        )
        .unwrap();
        let c =
            Config::load_from(Some(&p), &env(&[("GATEHOUSE_ACCESS_TOKEN_TTL", "120")])).unwrap();
        assert_eq!(c.issuer, "https://a.example");
        assert_eq!(c.access_token_ttl, 120);
        std::fs::write(&p, "isuer = \"https://a.example\"\n").unwrap();
        let e = Config::load_from(Some(&p), &env(&[])).unwrap_err();
        assert!(e.to_string().contains("isuer"), "{e}");
    }

    #[test]
    fn debug_never_shows_credentials() {
        assert_eq!(
            redact_url("postgres://gh:s3cret@db:5432/x?sslmode=require"),
            "postgres://gh:[redacted]@db:5432/x?sslmode=require"
        );
        assert_eq!(redact_url("sqlite://./data/g.db"), "sqlite://./data/g.db");
        let e = env(&[
            ("GATEHOUSE_DATABASE_URL", "postgres://gh:s3cret@db/x"),
            ("GATEHOUSE_ADMIN_TOKEN", "admin-token-0123456789"),
        ]);
        let mut file = FileConfig::default();
        file.overlay_env(&e).unwrap();
        let shown = format!("{file:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("admin-token-0123"),
            "{shown}"
        );
        let c = file.validate().unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("admin-token-0123"),
            "{shown}"
        );
    }

    #[test]
    fn cors_origins_are_exact_and_normalized() {
        let c = Config::load_from(None, &env(&[])).unwrap();
        assert!(c.cors_allow_origins.is_empty());
        let c = Config::load_from(
            None,
            &env(&[(
                "GATEHOUSE_CORS_ALLOW_ORIGINS",
                "https://App.Example:443, http://127.0.0.1:8070/ http://127.0.0.1:8070 http://[::1]:80",
            )]),
        )
        .unwrap();
        assert_eq!(
            c.cors_allow_origins,
            [
                "https://app.example",
                "http://127.0.0.1:8070",
                "http://[::1]"
            ]
        );
        for bad in [
            "*",
            "null",
            "app.example",
            "https://app.example/cb",
            "https://app.example?x",
            "https://user@app.example",
            "https://*.example",
            "https://",
            "https://app.example:",
            "https://app.example:99999",
            "https://[::1",
        ] {
            let e = Config::load_from(None, &env(&[("GATEHOUSE_CORS_ALLOW_ORIGINS", bad)]))
                .unwrap_err();
            assert!(
                e.to_string().contains("GATEHOUSE_CORS_ALLOW_ORIGINS"),
                "{bad}: {e}"
            );
        }
        let dir = std::env::temp_dir().join(format!("gh-cfg-cors-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("g.toml");
        std::fs::write(&p, "cors_allow_origins = [\"https://app.example\"]\n").unwrap();
        let c = Config::load_from(Some(&p), &env(&[])).unwrap();
        assert_eq!(c.cors_allow_origins, ["https://app.example"]);
    }

    #[test]
    fn leeway_is_one_configured_value() {
        let c = Config::load_from(None, &env(&[])).unwrap();
        assert_eq!(c.leeway_secs, 30);
        let c = Config::load_from(None, &env(&[("GATEHOUSE_LEEWAY_SECS", "5")])).unwrap();
        assert_eq!(c.leeway_secs, 5);
        assert_eq!(c.token_policy(vec![]).leeway_secs, 5);
    }

    #[test]
    fn bad_values_are_clear_errors() {
        for (k, v) in [
            ("GATEHOUSE_LISTEN", "nope"),
            ("GATEHOUSE_ISSUER", "https://a.example/"),
            ("GATEHOUSE_ACCESS_TOKEN_TTL", "abc"),
            ("GATEHOUSE_ACCESS_TOKEN_TTL", "0"),
            ("GATEHOUSE_DATABASE_URL", "mysql://x"),
            ("GATEHOUSE_KEK", "short"),
            ("GATEHOUSE_SIGNING_ALG", "HS256"),
            ("GATEHOUSE_ADMIN_TOKEN", "short"),
            ("GATEHOUSE_LEEWAY_SECS", "-1"),
            ("GATEHOUSE_LEEWAY_SECS", "301"),
            ("GATEHOUSE_REPUBLISH_SECS", "0"),
        ] {
            let e = Config::load_from(None, &env(&[(k, v)])).unwrap_err();
            assert!(e.to_string().contains(k), "{k}: {e}");
        }
    }

    #[test]
    fn push_mode_defaults_to_edge_with_an_edge_url_and_validates_cloudflare() {
        let c = Config::load_from(None, &env(&[])).unwrap();
        assert_eq!(c.revocation_push, PushTarget::Off);
        let c = Config::load_from(
            None,
            &env(&[("GATEHOUSE_EDGE_URL", "http://127.0.0.1:8787/")]),
        )
        .unwrap();
        assert_eq!(
            c.revocation_push,
            PushTarget::Edge {
                url: "http://127.0.0.1:8787".into()
            }
        );
        let e =
            Config::load_from(None, &env(&[("GATEHOUSE_REVOCATION_PUSH", "edge")])).unwrap_err();
        assert!(e.to_string().contains("GATEHOUSE_EDGE_URL"), "{e}");
        let cf = [
            ("GATEHOUSE_REVOCATION_PUSH", "cloudflare"),
            ("GATEHOUSE_CLOUDFLARE_ACCOUNT_ID", "acc"),
            ("GATEHOUSE_CLOUDFLARE_NAMESPACE_ID", "ns"),
        ];
        let e = Config::load_from(None, &env(&cf)).unwrap_err();
        assert!(e.to_string().contains("CLOUDFLARE_API_TOKEN"), "{e}");
        let mut with_token = cf.to_vec();
        with_token.push(("CLOUDFLARE_API_TOKEN", "tok-secret"));
        let c = Config::load_from(None, &env(&with_token)).unwrap();
        let PushTarget::Cloudflare(kv) = &c.revocation_push else {
            panic!("not cloudflare")
        };
        assert_eq!(kv.api_base, "https://api.cloudflare.com/client/v4");
        assert_eq!(kv.key, "revocations/http://127.0.0.1:8080");
        assert!(!format!("{c:?}").contains("tok-secret"));
        let mut bad = with_token.clone();
        bad.push(("GATEHOUSE_CLOUDFLARE_NAMESPACE_ID", "ns/../x"));
        assert!(Config::load_from(None, &env(&bad)).is_err());
        let e = Config::load_from(None, &env(&[("GATEHOUSE_REVOCATION_PUSH", "s3")])).unwrap_err();
        assert!(e.to_string().contains("GATEHOUSE_REVOCATION_PUSH"), "{e}");
    }
}
