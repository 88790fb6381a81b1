//! Route policy: which paths need which scopes, and whether DPoP is required.
//!
//! Rules are path prefixes matched on segment boundaries (`/api` matches
//! `/api` and `/api/x`, never `/apix`), case-insensitively, against a
//! [`CanonicalPath`]: the one form of the request path that the edge both
//! judges and forwards, so an upstream that decodes, merges slashes or
//! strips `;` parameters never routes a path other than the one judged.
//! The longest matching prefix wins; a path no rule matches gets the
//! default: deny, or allow any authenticated caller. The query string is
//! never part of the match.

use crate::access_token::AccessToken;
use crate::rejection::{ErrorCode, Rejection, Scheme};
use std::fmt;

/// Longest request path accepted, in bytes.
pub const MAX_PATH_LEN: usize = 8 * 1024;

/// Why a request path has no safe canonical form (the edge answers 400).
/// The message is [`PathError::description`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.description())]
#[non_exhaustive]
pub enum PathError {
    /// Empty, or not starting with `/`.
    NotAbsolute,
    /// Longer than [`MAX_PATH_LEN`].
    TooLong,
    /// A raw byte that is not printable ASCII (the URL parser encodes the rest).
    InvalidByte,
    /// A `\`, raw or encoded: some servers treat it as a separator.
    Backslash,
    /// A `;` (path parameter), raw or encoded: Tomcat, Spring and Jetty cut
    /// `;…` out of a segment before routing, so `/api;x/admin` is `/api/admin` there.
    PathParameter,
    /// An encoded `/`: a separator to upstreams that decode before routing.
    EncodedSlash,
    /// An encoded `%` (double encoding), `?` or `#`: a second decoding, or a
    /// proxy that re-parses, would see a different path.
    EncodedDelimiter,
    /// An encoded control character (NUL, CR, LF, …) or DEL.
    EncodedControl,
    /// `%` not followed by two hex digits.
    BadPercentEncoding,
    /// Percent-encoded bytes that are not UTF-8 (e.g. the overlong `%C0%AF`,
    /// which lenient decoders read as `/`).
    NotUtf8,
    /// A segment of only dots and spaces other than `.` and `..` (`...`,
    /// `..%20`, `%20`): an upstream that trims trailing dots and spaces
    /// (Windows, IIS) reads it as `..`, `.` or an empty segment, so
    /// `/x/..%20/api/admin` is `/api/admin` there.
    DotsAndSpaces,
}

impl PathError {
    /// A fixed description, fit for an `error_description`.
    #[must_use]
    pub fn description(&self) -> &'static str {
        match self {
            Self::NotAbsolute => "the request path is not absolute",
            Self::TooLong => "the request path is too long",
            Self::InvalidByte => "the request path has an invalid character",
            Self::Backslash => "the request path has a backslash",
            Self::PathParameter => "the request path has a `;` path parameter",
            Self::EncodedSlash => "the request path has an encoded slash",
            Self::EncodedDelimiter => "the request path has an encoded `%`, `?` or `#`",
            Self::EncodedControl => "the request path has an encoded control character",
            Self::BadPercentEncoding => "the request path has a bad percent-encoding",
            Self::NotUtf8 => "the request path's percent-encoding is not UTF-8",
            Self::DotsAndSpaces => "the request path has a segment of only dots and spaces",
        }
    }
}

/// A request path in its one canonical form: percent-encodings of
/// unreserved characters decoded and the rest upper-cased (RFC 3986
/// §6.2.2.1–2), dot segments removed (§6.2.2.3), empty segments (`//`)
/// merged; a trailing `/` is kept. Paths whose meaning depends on how an
/// upstream decodes them are refused instead ([`PathError`]): encoded `/`,
/// `\`, `%`, `?`, `#`, control characters, `;` parameters, and
/// percent-encoded bytes that are not UTF-8.
///
/// [`CanonicalPath::as_str`] is what the edge forwards; route rules are
/// matched against the decoded, case-folded form of the same segments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CanonicalPath {
    forward: String,
    /// The decoded segments as each kind of upstream compares them,
    /// indexed by [`Fold`]: exact, case folded, trailing dots and spaces
    /// trimmed, and both.
    keys: [String; 4],
}

impl CanonicalPath {
    /// Canonicalizes a request path (without query or fragment).
    pub fn parse(path: &str) -> Result<Self, PathError> {
        if !path.starts_with('/') {
            return Err(PathError::NotAbsolute);
        }
        if path.len() > MAX_PATH_LEN {
            return Err(PathError::TooLong);
        }
        if path.bytes().any(|b| !(0x21..=0x7e).contains(&b)) {
            return Err(PathError::InvalidByte);
        }
        let raw: Vec<&str> = path.split('/').skip(1).collect();
        let last = raw.len().saturating_sub(1);
        // (forward form, decoded form) of each kept segment.
        let mut out: Vec<(String, String)> = Vec::with_capacity(raw.len());
        let mut trailing_slash = false;
        for (i, seg) in raw.iter().enumerate() {
            let (forward, decoded) = segment(seg)?;
            match decoded.as_str() {
                "" | "." => trailing_slash = i == last,
                d if d.bytes().all(|b| b == b'.' || b == b' ') && d != ".." => {
                    return Err(PathError::DotsAndSpaces);
                }
                ".." => {
                    out.pop();
                    trailing_slash = i == last;
                }
                _ => {
                    out.push((forward, decoded));
                    trailing_slash = false;
                }
            }
        }
        let mut forward = String::with_capacity(path.len());
        let mut keys: [String; 4] = Default::default();
        for (f, d) in &out {
            forward.push('/');
            forward.push_str(f);
            for (key, how) in keys.iter_mut().zip(FOLDS) {
                key.push('/');
                key.push_str(&fold(d, how));
            }
        }
        if trailing_slash || out.is_empty() {
            forward.push('/');
            for key in &mut keys {
                key.push('/');
            }
        }
        Ok(Self { forward, keys })
    }

    /// The path to forward (percent-encoded, case kept).
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.forward
    }
}

impl fmt::Display for CanonicalPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.forward)
    }
}

/// The comparison form of one decoded segment, as lenient upstreams read
/// it: trailing `.` and spaces dropped (Windows and IIS strip them, so
/// `admin.` is `admin` there), then upper- and lower-cased per character,
/// as Java's `equalsIgnoreCase` compares, so `ı` (dotless i), `İ` (dotted
/// capital I), `ſ` (long s) and `K` (Kelvin sign) fold onto `i`, `i`, `s`
/// and `k`. The lower case taken is the simple one (`İ` → `i`, where the
/// full lower case adds a combining dot), as Java's is. Folding more than
/// an upstream does only ever adds requirements: [`RoutePolicy::route`]
/// also applies the rules the exact spelling and each half of the fold
/// alone (`how`: fold case, trim) match.
/// Which halves of [`fold`] an upstream may apply: (fold case, trim
/// trailing dots and spaces). An upstream may do either without the other
/// (Java's `equalsIgnoreCase` keeps `admin.`; a case-sensitive server on a
/// Windows share drops the dot), so every combination is matched.
type Fold = (bool, bool);

/// The four readings, in [`CanonicalPath`]'s `keys` order.
const FOLDS: [Fold; 4] = [(false, false), (true, false), (false, true), (true, true)];

fn fold(s: &str, (case, trim): Fold) -> String {
    let trimmed = s.trim_end_matches(['.', ' ']);
    let s = if !trim || trimmed.is_empty() {
        s
    } else {
        trimmed
    };
    if !case {
        return s.to_owned();
    }
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    s.chars()
        .flat_map(char::to_uppercase)
        .filter_map(|c| c.to_lowercase().next())
        .collect()
}

/// One segment's forward form and decoded text, or why it is refused.
fn segment(seg: &str) -> Result<(String, String), PathError> {
    let mut forward = String::with_capacity(seg.len());
    let mut decoded: Vec<u8> = Vec::with_capacity(seg.len());
    let mut bytes = seg.bytes();
    while let Some(b) = bytes.next() {
        let v = if b == b'%' {
            let hi = bytes.next().and_then(|c| char::from(c).to_digit(16));
            let lo = bytes.next().and_then(|c| char::from(c).to_digit(16));
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(PathError::BadPercentEncoding);
            };
            u8::try_from(hi * 16 + lo).map_err(|_| PathError::BadPercentEncoding)?
        } else {
            b
        };
        match v {
            b'\\' => return Err(PathError::Backslash),
            b';' => return Err(PathError::PathParameter),
            b'/' => return Err(PathError::EncodedSlash),
            b'%' | b'?' | b'#' => return Err(PathError::EncodedDelimiter),
            0..=0x1f | 0x7f => return Err(PathError::EncodedControl),
            _ => {}
        }
        let unreserved = v.is_ascii_alphanumeric() || matches!(v, b'-' | b'.' | b'_' | b'~');
        if b != b'%' || unreserved {
            forward.push(char::from(v));
        } else {
            forward.push_str(&format!("%{v:02X}"));
        }
        decoded.push(v);
    }
    let decoded = String::from_utf8(decoded).map_err(|_| PathError::NotUtf8)?;
    Ok((forward, decoded))
}

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
    /// Roles the token must all carry (read where its issuer's profile says).
    pub roles: Vec<String>,
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
            roles: Vec::new(),
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
            roles: Vec::new(),
            dpop_required: false,
        }
    }
}

/// A configuration error in the rules.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A prefix does not start with `/` or is not a valid path.
    #[error("route prefix `{prefix}` is invalid")]
    InvalidPrefix {
        /// The offending prefix.
        prefix: String,
    },
    /// Two rules have the same prefix.
    #[error("route prefix `{prefix}` is repeated")]
    DuplicatePrefix {
        /// The repeated prefix.
        prefix: String,
    },
}

/// The rule (or default) that governs a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route<'a> {
    /// A rule matched.
    Rule(&'a RouteRule),
    /// No rule matched; any authenticated caller may pass.
    DefaultAllow,
    /// No rule matched: refuse.
    Deny,
    /// Different non-public rules matched under different readings of the
    /// path (exact, case folded, dots trimmed, both; see [`fold`]): the
    /// token must satisfy every one (at least two are `Some`).
    Both([Option<&'a RouteRule>; 4]),
}

impl<'a> Route<'a> {
    /// Whether a token is needed at all.
    #[must_use]
    pub fn needs_token(&self) -> bool {
        !matches!(self, Route::Rule(r) if r.public)
    }

    /// The routes each reading of the path gets (see [`fold`]), combined:
    /// whatever any requires is required, so a variant spelling of a public
    /// or laxer prefix (`/PUBLIC/x`, `/FILES/SHARED./x`) is not let through
    /// on the strength of the laxer rule one reading reaches.
    fn all(routes: [Route<'a>; 4]) -> Route<'a> {
        let mut rules: [Option<&'a RouteRule>; 4] = [None; 4];
        let mut public = None;
        let mut default_allow = false;
        for route in routes {
            match route {
                Route::Deny => return Route::Deny,
                Route::DefaultAllow => default_allow = true,
                Route::Rule(r) if r.public => public = public.or(Some(r)),
                Route::Rule(r) => {
                    for slot in &mut rules {
                        match slot {
                            Some(seen) if *seen == r => break,
                            Some(_) => {}
                            None => {
                                *slot = Some(r);
                                break;
                            }
                        }
                    }
                }
                // `Both` is never a single reading's route.
                Route::Both(_) => return Route::Deny,
            }
        }
        let mut found = rules.iter().flatten();
        match (found.next(), found.next(), public) {
            (None, _, Some(r)) if !default_allow => Route::Rule(r),
            (None, _, _) => Route::DefaultAllow,
            (Some(r), None, _) => Route::Rule(r),
            (Some(_), Some(_), _) => Route::Both(rules),
        }
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
            Route::Rule(rule) => authorize_rule(rule, token, scheme),
            Route::Both(rules) => rules
                .iter()
                .flatten()
                .try_for_each(|rule| authorize_rule(rule, token, scheme)),
        }
    }
}

/// Checks `token` against one rule.
fn authorize_rule(rule: &RouteRule, token: &AccessToken, scheme: Scheme) -> Result<(), Rejection> {
    if rule.public {
        return Ok(());
    }
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
    // Roles are not scopes (RFC 6750 §3.1's insufficient_scope would ask
    // the client to request a scope that cannot help): 403 access_denied.
    if !token.has_roles(&rule.roles) {
        return Err(Rejection::new(
            ErrorCode::AccessDenied,
            scheme,
            "the access token lacks a required role",
        ));
    }
    Ok(())
}

/// The rules and the default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutePolicy {
    /// (the prefix under each reading, in [`CanonicalPath`]'s `keys` order; rule).
    rules: Vec<([String; 4], RouteRule)>,
    default: DefaultAction,
}

impl RoutePolicy {
    /// Validates and stores `rules`.
    pub fn new(default: DefaultAction, rules: Vec<RouteRule>) -> Result<Self, PolicyError> {
        let mut out: Vec<([String; 4], RouteRule)> = Vec::with_capacity(rules.len());
        for rule in rules {
            let invalid = || PolicyError::InvalidPrefix {
                prefix: rule.prefix.clone(),
            };
            let canonical = CanonicalPath::parse(&rule.prefix).map_err(|_| invalid())?;
            let keys = canonical.keys.clone().map(|k| trim_slash(&k).to_owned());
            // Rules the full fold cannot tell apart are one rule twice.
            if out.iter().any(|(k, _)| k[3] == keys[3]) {
                return Err(PolicyError::DuplicatePrefix {
                    prefix: rule.prefix,
                });
            }
            out.push((keys, rule));
        }
        Ok(Self {
            rules: out,
            default,
        })
    }

    /// The route for a canonical request path: the longest prefix matched
    /// under each reading of the path (exact, case folded, trailing dots and
    /// spaces trimmed, both), combined (see [`Route::Both`]).
    #[must_use]
    pub fn route(&self, path: &CanonicalPath) -> Route<'_> {
        Route::all(std::array::from_fn(|i| {
            let best = path.keys.get(i).and_then(|path_key| {
                self.rules
                    .iter()
                    .filter_map(|(keys, rule)| Some((keys.get(i)?, rule)))
                    .filter(|(key, _)| segment_prefix(key, path_key))
                    .max_by_key(|(key, _)| key.len())
                    .map(|(_, rule)| rule)
            });
            self.or_default(best)
        }))
    }

    fn or_default<'a>(&self, best: Option<&'a RouteRule>) -> Route<'a> {
        match (best, self.default) {
            (Some(rule), _) => Route::Rule(rule),
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

    fn prefixes<'a>(rules: &[Option<&'a RouteRule>]) -> Vec<&'a str> {
        let mut v: Vec<&str> = rules.iter().flatten().map(|r| r.prefix.as_str()).collect();
        v.sort_unstable();
        v
    }

    fn prefix_of(r: Route<'_>) -> Option<&str> {
        match r {
            Route::Rule(rule) => Some(rule.prefix.as_str()),
            _ => None,
        }
    }

    fn route<'a>(p: &'a RoutePolicy, path: &str) -> Route<'a> {
        p.route(&CanonicalPath::parse(path).unwrap())
    }

    fn canonical(path: &str) -> Result<String, PathError> {
        CanonicalPath::parse(path).map(|c| c.as_str().to_owned())
    }

    #[test]
    fn trailing_dot_space_and_dotted_capital_i_fold_onto_the_rule() {
        let p = policy(DefaultAction::AllowAuthenticated);
        for path in [
            "/api/admin./users",
            "/api/admin%20/users",
            "/api/admin..%20/users",
            "/api%20/admin./x",
            "/api/ADM%C4%B0N/users",
            "/api/adm%C4%B0n",
        ] {
            let admin = match route(&p, path) {
                Route::Rule(r) => r.prefix == "/api/admin/",
                Route::Both(rules) => rules.iter().flatten().any(|r| r.prefix == "/api/admin/"),
                _ => false,
            };
            assert!(admin, "{path}");
        }
        // Only for matching: the forwarded path is as sent.
        assert_eq!(canonical("/api/admin./x").unwrap(), "/api/admin./x");
        // A segment of only dots and spaces is not emptied.
        assert_eq!(fold("...", (true, true)), "...");
        assert_eq!(fold("%", (true, true)), "%");
    }

    #[test]
    fn half_folded_spellings_keep_the_rule_a_half_lenient_upstream_reads() {
        // An upstream that folds case but keeps trailing dots reads
        // `/FILES/SHARED./x` as a file under `/files` (segment `shared.`);
        // one that trims dots but keeps case reads `/a/b./C/x` under `/a/b`.
        // The full fold reaches the public share and the exact spelling no
        // rule, which alone gave the default: any token, no scope.
        let p = RoutePolicy::new(
            DefaultAction::AllowAuthenticated,
            vec![
                RouteRule::new("/files", &["files"], false),
                RouteRule::public("/files/shared"),
                RouteRule::new("/a/b", &["ab"], false),
                RouteRule::public("/a/b/c"),
            ],
        )
        .unwrap();
        assert_eq!(prefix_of(route(&p, "/FILES/SHARED./x")), Some("/files"));
        assert_eq!(prefix_of(route(&p, "/FILES/SHARED%20/x")), Some("/files"));
        assert_eq!(prefix_of(route(&p, "/a/b./C/x")), Some("/a/b"));
        // The plain spellings are unchanged.
        assert!(!route(&p, "/files/shared/x").needs_token());
        assert!(!route(&p, "/a/b/c/x").needs_token());
    }

    #[test]
    fn case_variant_of_laxer_prefix_needs_the_exact_spellings_rule_too() {
        let p = RoutePolicy::new(
            DefaultAction::AllowAuthenticated,
            vec![
                RouteRule::new("/files", &["files"], false),
                RouteRule::public("/files/shared"),
                RouteRule::new("/api", &["read"], false),
                RouteRule::new("/api/docs", &["docs"], false),
            ],
        )
        .unwrap();
        // A case-sensitive upstream reads `/files/SHARED/x` as a file
        // under `/files`, not as the public share.
        assert_eq!(prefix_of(route(&p, "/files/SHARED/x")), Some("/files"));
        assert_eq!(
            prefix_of(route(&p, "/files/shared/x")),
            Some("/files/shared")
        );
        assert!(!route(&p, "/files/shared/x").needs_token());
        // Two non-public rules: both apply.
        match route(&p, "/api/DOCS/x") {
            Route::Both(rules) => assert_eq!(prefixes(&rules), ["/api", "/api/docs"]),
            other => panic!("{other:?}"),
        }
        // A public prefix's case variant outside every exact rule gets the default.
        let q = RoutePolicy::new(DefaultAction::Deny, vec![RouteRule::public("/pub")]).unwrap();
        assert_eq!(route(&q, "/PUB/x"), Route::Deny);
        assert_eq!(prefix_of(route(&q, "/pub/x")), Some("/pub"));
        let q = RoutePolicy::new(
            DefaultAction::AllowAuthenticated,
            vec![RouteRule::public("/pub")],
        )
        .unwrap();
        assert_eq!(route(&q, "/PUB/x"), Route::DefaultAllow);
    }

    #[test]
    fn longest_prefix_wins_on_segment_boundaries() {
        let p = policy(DefaultAction::Deny);
        assert_eq!(prefix_of(route(&p, "/api")), Some("/api"));
        assert_eq!(prefix_of(route(&p, "/api/")), Some("/api"));
        assert_eq!(prefix_of(route(&p, "/api/things")), Some("/api"));
        assert_eq!(prefix_of(route(&p, "/api/admin")), Some("/api/admin/"));
        assert_eq!(
            prefix_of(route(&p, "/api/admin/users")),
            Some("/api/admin/")
        );
        assert_eq!(prefix_of(route(&p, "/api/administrator")), Some("/api"));
        assert_eq!(prefix_of(route(&p, "/api/adminx")), Some("/api"));
        assert_eq!(route(&p, "/apix"), Route::Deny);
        assert_eq!(route(&p, "/"), Route::Deny);
        assert!(!route(&p, "/health").needs_token());
        assert_eq!(
            route(&policy(DefaultAction::AllowAuthenticated), "/other"),
            Route::DefaultAllow
        );
    }

    #[test]
    fn paths_are_normalized_before_matching() {
        let p = policy(DefaultAction::Deny);
        for path in [
            "/health/../api/admin/x",
            "/%61pi/admin",
            "/api/./admin",
            "/api/%2E%2E/api/admin",
            "/api/admin/%2e",
        ] {
            assert_eq!(prefix_of(route(&p, path)), Some("/api/admin/"), "{path}");
        }
    }

    #[test]
    fn double_slash_path_cannot_bypass_route_policy() {
        let p = policy(DefaultAction::AllowAuthenticated);
        for path in [
            "//api/admin/users",
            "///api/admin/users",
            "/api//admin/users",
            "/api/admin//users",
            "//api//admin//",
            "/.//api/admin",
        ] {
            assert_eq!(prefix_of(route(&p, path)), Some("/api/admin/"), "{path}");
        }
        assert_eq!(canonical("//api/admin//users").unwrap(), "/api/admin/users");
        assert_eq!(canonical("/api/x//").unwrap(), "/api/x/");
        assert_eq!(canonical("//").unwrap(), "/");
        assert_eq!(canonical("/a/b/..").unwrap(), "/a/");
    }

    #[test]
    fn rule_prefixes_match_case_insensitively() {
        let p = policy(DefaultAction::AllowAuthenticated);
        for path in [
            "/API/ADMIN/users",
            "/Api/Admin",
            "/api/%41dmin/x",
            "/api/adm%C4%B1n",
        ] {
            // The admin rule applies (with `/api`'s too where the exact
            // case matches `/api`: both must allow).
            let admin = match route(&p, path) {
                Route::Rule(r) => r.prefix == "/api/admin/",
                Route::Both(rules) => prefixes(&rules) == ["/api", "/api/admin/"],
                _ => false,
            };
            assert!(admin, "{path}");
        }
        // The forwarded path keeps the caller's case.
        assert_eq!(canonical("/API/Admin").unwrap(), "/API/Admin");
        // The long s (U+017F) folds onto `s`, the Kelvin sign onto `k`.
        let p = RoutePolicy::new(
            DefaultAction::AllowAuthenticated,
            vec![RouteRule::new("/secret/keys", &["admin"], false)],
        )
        .unwrap();
        assert_eq!(
            prefix_of(route(&p, "/%C5%BFecret/%E2%84%AAeys")),
            Some("/secret/keys")
        );
    }

    #[test]
    fn ambiguous_spellings_are_refused() {
        for (path, why) in [
            ("/api%2Fadmin/users", PathError::EncodedSlash),
            ("/api%2fadmin", PathError::EncodedSlash),
            ("/api;x/admin/users", PathError::PathParameter),
            ("/api/admin;/users", PathError::PathParameter),
            ("/api/admin;jsessionid=1", PathError::PathParameter),
            ("/api%3Bx/admin", PathError::PathParameter),
            ("/api\\admin", PathError::Backslash),
            ("/api%5Cadmin", PathError::Backslash),
            ("/api/admin%00", PathError::EncodedControl),
            ("/api/admin%0A", PathError::EncodedControl),
            ("/api/admin%7F", PathError::EncodedControl),
            ("/api%252Fadmin", PathError::EncodedDelimiter),
            ("/api/%2561dmin", PathError::EncodedDelimiter),
            ("/api/admin%3F/x", PathError::EncodedDelimiter),
            ("/api/admin%23/x", PathError::EncodedDelimiter),
            ("/api/%C0%AFadmin", PathError::NotUtf8),
            ("/api/%zz", PathError::BadPercentEncoding),
            ("/api/%4", PathError::BadPercentEncoding),
            ("api/admin", PathError::NotAbsolute),
            ("", PathError::NotAbsolute),
            ("/api admin", PathError::InvalidByte),
            // Upstreams that trim trailing dots and spaces read these as
            // `..`, `.` or an empty (merged) segment.
            ("/x/..%20/api/admin/users", PathError::DotsAndSpaces),
            ("/x/.../api/admin/users", PathError::DotsAndSpaces),
            ("/api/.%20/admin/users", PathError::DotsAndSpaces),
            ("/api/%20/admin/users", PathError::DotsAndSpaces),
            ("/api/%20%20./admin", PathError::DotsAndSpaces),
        ] {
            assert_eq!(CanonicalPath::parse(path), Err(why), "{path}");
        }
        assert_eq!(
            CanonicalPath::parse(&format!("/{}", "a".repeat(MAX_PATH_LEN))),
            Err(PathError::TooLong)
        );
    }

    #[test]
    fn other_encodings_are_kept_upper_cased() {
        assert_eq!(canonical("/caf%c3%a9/%7e%20x").unwrap(), "/caf%C3%A9/~%20x");
        assert_eq!(canonical("/a:b@c!$&'()*+,=").unwrap(), "/a:b@c!$&'()*+,=");
    }

    #[test]
    fn root_rule_matches_everything() {
        let p =
            RoutePolicy::new(DefaultAction::Deny, vec![RouteRule::new("/", &[], false)]).unwrap();
        assert!(matches!(route(&p, "/anything/at/all"), Route::Rule(_)));
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
                vec![RouteRule::new("/a;b", &[], false)]
            ),
            Err(PolicyError::InvalidPrefix { .. })
        ));
        for dup in ["/a/", "/A", "//a"] {
            assert!(
                matches!(
                    RoutePolicy::new(
                        DefaultAction::Deny,
                        vec![
                            RouteRule::new("/a", &[], false),
                            RouteRule::new(dup, &[], true)
                        ]
                    ),
                    Err(PolicyError::DuplicatePrefix { .. })
                ),
                "{dup}"
            );
        }
    }
}
