//! Route policy: which paths need which scopes, and whether DPoP is required.
//!
//! Rules are path prefixes matched on segment boundaries (`/api` matches
//! `/api` and `/api/x`, never `/apix`), after the request path is normalized
//! (percent-encoding and dot segments, RFC 3986 §6.2.2) so `/pub/../admin`
//! cannot borrow `/pub`'s rule. The longest matching prefix wins; a path no
//! rule matches gets the default: deny, or allow any authenticated caller.

use crate::access_token::AccessToken;
use crate::rejection::{ErrorCode, Rejection, Scheme};
use crate::uri;
use std::fmt;

/// What happens to a path no rule matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultAction {
    /// Refuse (403 `access_denied`).
    Deny,
    /// Allow any caller with a valid token, with no scope requirement.
    AllowAuthenticated,
}

/// One rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteRule {
    /// Path prefix, starting with `/` (a trailing `/` is ignored).
    pub prefix: String,
    /// No token needed at all (health checks, public assets).
    pub public: bool,
    /// Scopes the token must all carry.
    pub scopes: Vec<String>,
    /// The token must be DPoP-bound and presented with a proof.
    pub dpop_required: bool,
}

impl RouteRule {
    /// A rule requiring `scopes` under `prefix`.
    #[must_use]
    pub fn new(prefix: impl Into<String>, scopes: &[&str], dpop_required: bool) -> Self {
        Self {
            prefix: prefix.into(),
            public: false,
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            dpop_required,
        }
    }

    /// A rule letting anyone through under `prefix`.
    #[must_use]
    pub fn public(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            public: true,
            scopes: Vec::new(),
            dpop_required: false,
        }
    }
}

/// A configuration error in the rules.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyError {
    /// A prefix does not start with `/` or is not a valid path.
    InvalidPrefix {
        /// The offending prefix.
        prefix: String,
    },
    /// Two rules have the same prefix.
    DuplicatePrefix {
        /// The repeated prefix.
        prefix: String,
    },
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidPrefix { prefix } => write!(f, "route prefix `{prefix}` is invalid"),
            Self::DuplicatePrefix { prefix } => write!(f, "route prefix `{prefix}` is repeated"),
        }
    }
}

impl std::error::Error for PolicyError {}

/// The rule (or default) that governs a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route<'a> {
    /// A rule matched.
    Rule(&'a RouteRule),
    /// No rule matched; any authenticated caller may pass.
    DefaultAllow,
    /// No rule matched, or the path could not be normalized: refuse.
    Deny,
}

impl Route<'_> {
    /// Whether a token is needed at all.
    #[must_use]
    pub fn needs_token(&self) -> bool {
        !matches!(self, Route::Rule(r) if r.public)
    }

    /// Checks a verified token presented with `scheme` against this route.
    pub fn authorize(&self, token: &AccessToken, scheme: Scheme) -> Result<(), Rejection> {
        match self {
            Route::Deny => Err(Rejection::new(
                ErrorCode::AccessDenied,
                scheme,
                "no route allows this path",
            )),
            Route::DefaultAllow => Ok(()),
            Route::Rule(rule) if rule.public => Ok(()),
            Route::Rule(rule) => {
                if rule.dpop_required && (scheme != Scheme::DPoP || token.cnf_jkt.is_none()) {
                    return Err(Rejection::new(
                        ErrorCode::InvalidToken,
                        Scheme::DPoP,
                        "this resource requires a DPoP-bound access token",
                    ));
                }
                if !token.has_scopes(&rule.scopes) {
                    let mut r = Rejection::new(
                        ErrorCode::InsufficientScope,
                        scheme,
                        "the access token lacks a required scope",
                    );
                    r.scope = Some(rule.scopes.join(" "));
                    return Err(r);
                }
                Ok(())
            }
        }
    }
}

/// The rules and the default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutePolicy {
    rules: Vec<(String, RouteRule)>,
    default: DefaultAction,
}

impl RoutePolicy {
    /// Validates and stores `rules`.
    pub fn new(default: DefaultAction, rules: Vec<RouteRule>) -> Result<Self, PolicyError> {
        let mut out: Vec<(String, RouteRule)> = Vec::with_capacity(rules.len());
        for rule in rules {
            let invalid = || PolicyError::InvalidPrefix {
                prefix: rule.prefix.clone(),
            };
            if !rule.prefix.starts_with('/') {
                return Err(invalid());
            }
            let normalized = uri::normalize_path(&rule.prefix).map_err(|_| invalid())?;
            let key = trim_slash(&normalized).to_owned();
            if out.iter().any(|(k, _)| *k == key) {
                return Err(PolicyError::DuplicatePrefix {
                    prefix: rule.prefix,
                });
            }
            out.push((key, rule));
        }
        Ok(Self {
            rules: out,
            default,
        })
    }

    /// The route for a request path (query, if any, is ignored).
    #[must_use]
    pub fn route(&self, path: &str) -> Route<'_> {
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let Ok(path) = uri::normalize_path(path) else {
            return Route::Deny;
        };
        let best = self
            .rules
            .iter()
            .filter(|(prefix, _)| segment_prefix(prefix, &path))
            .max_by_key(|(prefix, _)| prefix.len());
        match (best, self.default) {
            (Some((_, rule)), _) => Route::Rule(rule),
            (None, DefaultAction::AllowAuthenticated) => Route::DefaultAllow,
            (None, DefaultAction::Deny) => Route::Deny,
        }
    }
}

fn trim_slash(p: &str) -> &str {
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        ""
    } else {
        t
    }
}

/// `prefix` (without trailing slash; "" for the root) matches `path` on a segment boundary.
fn segment_prefix(prefix: &str, path: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(default: DefaultAction) -> RoutePolicy {
        RoutePolicy::new(
            default,
            vec![
                RouteRule::new("/api", &["read"], false),
                RouteRule::new("/api/admin/", &["admin"], true),
                RouteRule::public("/health"),
            ],
        )
        .unwrap()
    }

    fn prefix_of(r: Route<'_>) -> Option<&str> {
        match r {
            Route::Rule(rule) => Some(rule.prefix.as_str()),
            _ => None,
        }
    }

    #[test]
    fn longest_prefix_wins_on_segment_boundaries() {
        let p = policy(DefaultAction::Deny);
        assert_eq!(prefix_of(p.route("/api")), Some("/api"));
        assert_eq!(prefix_of(p.route("/api/")), Some("/api"));
        assert_eq!(prefix_of(p.route("/api/things?x=1")), Some("/api"));
        assert_eq!(prefix_of(p.route("/api/admin")), Some("/api/admin/"));
        assert_eq!(prefix_of(p.route("/api/admin/users")), Some("/api/admin/"));
        assert_eq!(prefix_of(p.route("/api/administrator")), Some("/api"));
        assert_eq!(p.route("/apix"), Route::Deny);
        assert_eq!(p.route("/"), Route::Deny);
        assert!(!p.route("/health").needs_token());
        assert_eq!(
            policy(DefaultAction::AllowAuthenticated).route("/other"),
            Route::DefaultAllow
        );
    }

    #[test]
    fn paths_are_normalized_before_matching() {
        let p = policy(DefaultAction::Deny);
        assert_eq!(
            prefix_of(p.route("/health/../api/admin/x")),
            Some("/api/admin/")
        );
        assert_eq!(prefix_of(p.route("/%61pi/admin")), Some("/api/admin/"));
        assert_eq!(prefix_of(p.route("/api/./admin")), Some("/api/admin/"));
        assert_eq!(
            p.route("/api%2Fadmin"),
            Route::Deny,
            "encoded slash is not a separator"
        );
        assert_eq!(p.route("/api/%zz"), Route::Deny);
    }

    #[test]
    fn root_rule_matches_everything() {
        let p =
            RoutePolicy::new(DefaultAction::Deny, vec![RouteRule::new("/", &[], false)]).unwrap();
        assert!(matches!(p.route("/anything/at/all"), Route::Rule(_)));
    }

    #[test]
    fn bad_and_duplicate_prefixes_are_configuration_errors() {
        assert!(matches!(
            RoutePolicy::new(DefaultAction::Deny, vec![RouteRule::new("api", &[], false)]),
            Err(PolicyError::InvalidPrefix { .. })
        ));
        assert!(matches!(
            RoutePolicy::new(
                DefaultAction::Deny,
                vec![
                    RouteRule::new("/a", &[], false),
                    RouteRule::new("/a/", &[], true)
                ]
            ),
            Err(PolicyError::DuplicatePrefix { .. })
        ));
    }
}
