//! The edge's configuration, read from `wrangler.toml` `[vars]` once per isolate.

use gatehouse_common::access_token::AccessTokenPolicy;
use gatehouse_common::alg::Algorithm;
use std::fmt;

/// Validated edge configuration.
#[derive(Clone, Debug)]
pub struct EdgeConfig {
    /// What tokens from our issuer must satisfy.
    pub policy: AccessTokenPolicy,
    /// Where the issuer publishes its keys.
    pub jwks_url: String,
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

impl EdgeConfig {
    /// Builds the configuration from a variable lookup (`env.var` in the worker).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |var: &'static str| {
            get(var)
                .filter(|v| !v.trim().is_empty())
                .ok_or(ConfigError { var, problem: "is required" })
        };
        let url = |var: &'static str| -> Result<String, ConfigError> {
            let v = required(var)?;
            if v.starts_with("https://") || v.starts_with("http://") {
                Ok(v.trim_end_matches('/').to_owned())
            } else {
                Err(ConfigError { var, problem: "must be an http(s) URL" })
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
                    .ok_or(ConfigError { var, problem: "must be a non-negative whole number of seconds" }),
            }
        };
        let issuer = required("ISSUER")?;
        let audiences: Vec<String> = required("AUDIENCE")?
            .split(',')
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty())
            .collect();
        let algorithms = match get("ALGORITHMS") {
            None => Algorithm::ALL.to_vec(),
            Some(list) => list
                .split([',', ' '])
                .filter(|s| !s.is_empty())
                .map(|s| Algorithm::from_name(s.trim()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| ConfigError { var: "ALGORITHMS", problem: "names an algorithm that is not supported" })?,
        };
        let mut policy = AccessTokenPolicy::new(issuer, audiences);
        policy.algorithms = algorithms;
        policy.leeway_secs = secs("LEEWAY_SECS", 30)?;
        policy.max_age_secs = get("MAX_TOKEN_AGE_SECS").map(|_| secs("MAX_TOKEN_AGE_SECS", 0)).transpose()?;
        let cfg = Self {
            policy,
            jwks_url: url("JWKS_URL")?,
            upstream_url: url("UPSTREAM_URL")?,
            jwks_min_ttl_secs: secs("JWKS_MIN_TTL_SECS", 30)?,
            jwks_max_ttl_secs: secs("JWKS_MAX_TTL_SECS", 600)?,
            jwks_max_stale_secs: secs("JWKS_MAX_STALE_SECS", 3600)?,
            jwks_refresh_cooldown_secs: secs("JWKS_REFRESH_COOLDOWN_SECS", 10)?,
        };
        if cfg.jwks_min_ttl_secs > cfg.jwks_max_ttl_secs {
            return Err(ConfigError { var: "JWKS_MIN_TTL_SECS", problem: "must not exceed JWKS_MAX_TTL_SECS" });
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |k| m.get(k).cloned()
    }

    const BASE: [(&str, &str); 4] = [
        ("ISSUER", "http://127.0.0.1:8080"),
        ("AUDIENCE", "http://127.0.0.1:8787, https://api.example"),
        ("JWKS_URL", "http://127.0.0.1:8080/.well-known/jwks.json"),
        ("UPSTREAM_URL", "http://127.0.0.1:8090/"),
    ];

    #[test]
    fn reads_a_complete_configuration() {
        let cfg = EdgeConfig::from_vars(vars(&BASE)).unwrap();
        assert_eq!(cfg.policy.audiences, vec!["http://127.0.0.1:8787", "https://api.example"]);
        assert_eq!(cfg.upstream_url, "http://127.0.0.1:8090");
        assert_eq!(cfg.policy.algorithms, Algorithm::ALL.to_vec());
    }

    #[test]
    fn names_the_bad_variable() {
        let mut v = BASE.to_vec();
        v.retain(|(k, _)| *k != "ISSUER");
        assert_eq!(EdgeConfig::from_vars(vars(&v)).unwrap_err().var, "ISSUER");
        let mut v = BASE.to_vec();
        v.push(("ALGORITHMS", "ES256,HS256"));
        assert_eq!(EdgeConfig::from_vars(vars(&v)).unwrap_err().var, "ALGORITHMS");
        let mut v = BASE.to_vec();
        v.push(("LEEWAY_SECS", "-3"));
        assert_eq!(EdgeConfig::from_vars(vars(&v)).unwrap_err().var, "LEEWAY_SECS");
        let mut v = BASE.to_vec();
        v[3] = ("UPSTREAM_URL", "ftp://x");
        assert_eq!(EdgeConfig::from_vars(vars(&v)).unwrap_err().var, "UPSTREAM_URL");
    }
}
