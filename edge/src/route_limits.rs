//! Per-route rate limits (`ROUTES` entries' `rate_limits`), pure: which
//! buckets a verified request to a route is charged to. Each limit names
//! what its bucket is keyed by — the client, the subject, the caller's
//! address, or a combination — and has its own quota, so one user of a
//! shared public client cannot use up the route for every other user.
//!
//! Keys are JSON arrays (no `client_id` or `sub` can make two callers'
//! keys equal) and name the rule's prefix and the limit's position, so
//! every limit has buckets of its own. Client and subject are always
//! qualified by the issuer: a `sub` is only unique within its issuer
//! (OpenID Connect Core §2).

use crate::rate_lease::address_key;
use gatehouse_common::access_token::AccessToken;
use gatehouse_common::policy::{Route, RouteRule};
use gatehouse_common::ratelimit::Quota;
use serde_json::{json, Value};

/// What a route limit's bucket is keyed by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeyPart {
    /// The token's client (issuer and client id).
    Client,
    /// The token's subject (issuer and `sub`), across the issuer's clients.
    Subject,
    /// The caller's address (an IPv6 address by its /64).
    Ip,
}

/// One limit of a route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteLimit {
    /// What the bucket is keyed by (sorted, no repeats, at least one).
    pub parts: Vec<KeyPart>,
    /// Its quota.
    pub quota: Quota,
}

impl RouteLimit {
    /// Reads `key` (`client`, `subject`, `ip`, or a combination joined by
    /// `+`, e.g. `client+subject`) and a quota.
    pub fn new(key: &str, quota: Quota) -> Option<Self> {
        let mut parts = key
            .split('+')
            .map(|p| match p.trim() {
                "client" => Some(KeyPart::Client),
                "subject" => Some(KeyPart::Subject),
                "ip" => Some(KeyPart::Ip),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()?;
        parts.sort_unstable();
        parts.dedup();
        (!parts.is_empty()).then_some(Self { parts, quota })
    }

    /// The limit's name (`client+subject`), for headers and logs.
    #[must_use]
    pub fn name(&self) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                KeyPart::Client => "client",
                KeyPart::Subject => "subject",
                KeyPart::Ip => "ip",
            })
            .collect::<Vec<_>>()
            .join("+")
    }
}

/// Every route's limits, by the rule's prefix as configured.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteLimits {
    by_prefix: Vec<(String, Vec<RouteLimit>)>,
}

impl RouteLimits {
    /// Adds `limits` for the rule with `prefix`.
    pub fn add(&mut self, prefix: &str, limits: Vec<RouteLimit>) {
        if !limits.is_empty() {
            self.by_prefix.push((prefix.to_owned(), limits));
        }
    }

    /// Whether no route has a limit.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_prefix.is_empty()
    }

    /// The buckets (key, quota) a request on `route` by `token` from
    /// `client_ip` is charged to: every limit of every rule the route
    /// applies (all of them when different readings of the path reach
    /// different rules).
    #[must_use]
    pub fn buckets<'a>(
        &'a self,
        route: &Route<'_>,
        token: &AccessToken,
        client_ip: &str,
    ) -> Vec<(String, &'a Quota)> {
        let rules: Vec<&RouteRule> = match route {
            Route::Rule(r) => vec![*r],
            Route::Both(rs) => rs.iter().flatten().copied().collect(),
            Route::DefaultAllow | Route::Deny => Vec::new(),
        };
        let mut out = Vec::new();
        for rule in rules {
            let Some((prefix, limits)) = self.by_prefix.iter().find(|(p, _)| *p == rule.prefix)
            else {
                continue;
            };
            for (i, limit) in limits.iter().enumerate() {
                let mut key: Vec<Value> = vec![json!(prefix), json!(i)];
                for part in &limit.parts {
                    key.push(match part {
                        KeyPart::Client => json!(["client", token.iss, token.client_id]),
                        KeyPart::Subject => json!(["subject", token.iss, token.sub]),
                        KeyPart::Ip => json!(["ip", address_key(client_ip)]),
                    });
                }
                out.push((format!("route:{}", Value::Array(key)), &limit.quota));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_common::policy::{CanonicalPath, DefaultAction, RoutePolicy};
    use gatehouse_common::testkit::fixture;

    fn token(sub: &str, client: &str) -> AccessToken {
        let c = fixture::set(
            fixture::set(fixture::claims(), "sub", sub.into()),
            "client_id",
            client.into(),
        );
        fixture::verify_token(
            &fixture::mint(&c),
            &gatehouse_common::provider::RustCrypto,
            fixture::NOW,
        )
        .unwrap()
    }

    #[test]
    fn keys_combine_and_separate_what_they_say() {
        let policy = RoutePolicy::new(
            DefaultAction::AllowAuthenticated,
            vec![gatehouse_common::policy::RouteRule::new("/api", &[], false)],
        )
        .unwrap();
        let path = CanonicalPath::parse("/api/x").unwrap();
        let route = policy.route(&path);
        let mut limits = RouteLimits::default();
        let q = Quota::new("route", 5, 60);
        limits.add(
            "/api",
            vec![
                RouteLimit::new("subject", q.clone()).unwrap(),
                RouteLimit::new("subject+client", q.clone()).unwrap(),
                RouteLimit::new("ip", q.clone()).unwrap(),
                RouteLimit::new("client", q.clone()).unwrap(),
            ],
        );
        let alice = token("alice", "app");
        let bob = token("bob", "app");
        let a = limits.buckets(&route, &alice, "192.0.2.1");
        let b = limits.buckets(&route, &bob, "192.0.2.1");
        assert_eq!(a.len(), 4);
        assert_ne!(a[0].0, b[0].0, "per subject");
        assert_ne!(a[1].0, b[1].0, "per client and subject");
        assert_eq!(a[2].0, b[2].0, "same address");
        assert_eq!(a[3].0, b[3].0, "same client");
        assert_ne!(a[0].0, a[3].0);
        let other_ip = limits.buckets(&route, &alice, "2001:db8::1");
        assert_ne!(a[2].0, other_ip[2].0);
        assert_eq!(
            RouteLimit::new("client+subject", q.clone()).unwrap().name(),
            "client+subject"
        );
        assert!(RouteLimit::new("user", q.clone()).is_none());
        assert!(RouteLimit::new("", q).is_none());
        // The default route has no rule, so no route limits.
        let other = CanonicalPath::parse("/other").unwrap();
        assert!(limits
            .buckets(&policy.route(&other), &alice, "x")
            .is_empty());
    }
}
