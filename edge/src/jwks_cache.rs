//! When to (re)fetch the issuer's JWKS — pure decisions, time injected.
//!
//! Honours the issuer's `Cache-Control: max-age` clamped between a floor and
//! a ceiling; refetches on an unknown `kid` at most once per cooldown (so
//! random `kid`s cannot cause refetch storms); and keeps serving the last
//! good key set up to a maximum stale age when the issuer is unreachable or
//! answers garbage (stale-if-error).

use gatehouse_common::jwk::JwkSet;
use gatehouse_common::{b64, UnixTime};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use std::rc::Rc;

/// Limits for the cache, from configuration.
#[derive(Clone, Copy, Debug)]
pub struct CachePolicy {
    /// Floor for the TTL, seconds.
    pub min_ttl: i64,
    /// Ceiling for the TTL, seconds.
    pub max_ttl: i64,
    /// How long past expiry the last good set may still be used on fetch failure.
    pub max_stale: i64,
    /// Least time between `kid`-triggered refetches.
    pub cooldown: i64,
}

/// The cached key set (or, for an issuer configured by discovery, its
/// discovery document: `T`) and its timing.
#[derive(Clone, Debug)]
pub struct JwksState<T = JwkSet> {
    /// The last good key set (shared: each request holds it without a copy).
    pub keys: Option<Rc<T>>,
    /// When it was fetched.
    pub fetched_at: Option<UnixTime>,
    /// When it stops being fresh.
    pub fresh_until: Option<UnixTime>,
    /// Last fetch attempt (success or failure).
    pub last_attempt: Option<UnixTime>,
    /// Last failed fetch, cleared by a success: starts the cooldown during
    /// which the issuer is not asked again (stale-if-error, negative cache).
    pub last_failure: Option<UnixTime>,
    /// Last refetch triggered by an unknown `kid`: at most one per cooldown,
    /// so random `kid`s cannot cause refetch storms. Ordinary TTL refreshes
    /// do not count, so they never delay picking up a newly published key.
    pub last_kid_refetch: Option<UnixTime>,
}

/// What the caller should do before looking a key up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Use the cached set as is.
    UseCached,
    /// Fetch now (nothing usable is cached, or the set is stale).
    Fetch,
    /// Nothing was ever fetched and the last attempt failed within the
    /// cooldown: answer "unavailable" without asking the issuer again
    /// (negative cache, so a cold isolate does not fetch on every request).
    Unavailable,
}

impl<T> Default for JwksState<T> {
    fn default() -> Self {
        Self {
            keys: None,
            fetched_at: None,
            fresh_until: None,
            last_attempt: None,
            last_failure: None,
            last_kid_refetch: None,
        }
    }
}

impl<T> JwksState<T> {
    /// Whether the set must be (re)fetched before use at `now`. Fetches after a
    /// failure wait for the cooldown, serving the stale set meanwhile.
    #[must_use]
    pub fn before_lookup(&self, now: UnixTime, policy: &CachePolicy) -> Action {
        match (self.keys.is_some(), self.fresh_until) {
            (true, Some(fresh)) if now < fresh => Action::UseCached,
            _ if self.failure_cooldown(now, policy) && self.usable(now, policy) => {
                Action::UseCached
            }
            _ if self.failure_cooldown(now, policy) && !self.usable(now, policy) => {
                Action::Unavailable
            }
            _ => Action::Fetch,
        }
    }

    /// Whether an unknown `kid` may trigger a refetch at `now`; when it may,
    /// the refetch is recorded so the next one waits for the cooldown.
    pub fn may_refetch_for_unknown_kid(&mut self, now: UnixTime, policy: &CachePolicy) -> bool {
        let within =
            |t: Option<UnixTime>| t.is_some_and(|t| now.0 < t.0.saturating_add(policy.cooldown));
        if within(self.last_kid_refetch) || within(self.last_failure) {
            return false;
        }
        self.last_kid_refetch = Some(now);
        true
    }

    fn failure_cooldown(&self, now: UnixTime, policy: &CachePolicy) -> bool {
        self.last_failure
            .is_some_and(|t| now.0 < t.0.saturating_add(policy.cooldown))
    }

    /// Whether the cached set may still be used at `now` (fresh, or stale within the limit).
    #[must_use]
    pub fn usable(&self, now: UnixTime, policy: &CachePolicy) -> bool {
        self.keys.is_some()
            && self
                .fresh_until
                .is_some_and(|f| now.0 < f.0.saturating_add(policy.max_stale))
    }

    /// Records a successful fetch with the response's `max-age`, if any.
    pub fn fetched(&mut self, keys: T, max_age: Option<i64>, now: UnixTime, policy: &CachePolicy) {
        let ttl = ttl(max_age, policy);
        self.keys = Some(Rc::new(keys));
        self.fetched_at = Some(now);
        self.fresh_until = Some(now.plus(ttl));
        self.last_attempt = Some(now);
        self.last_failure = None;
    }

    /// Records a set found in the shared cache, fetched from the issuer at
    /// `entry.fetched_at`: it is fresh only for the entry's remaining
    /// lifetime, never a new full TTL from now.
    pub fn fetched_shared(&mut self, keys: T, entry: SharedEntry, now: UnixTime) {
        self.keys = Some(Rc::new(keys));
        self.fetched_at = Some(UnixTime(entry.fetched_at));
        self.fresh_until = Some(UnixTime(entry.fetched_at.saturating_add(entry.ttl)));
        self.last_attempt = Some(now);
        self.last_failure = None;
    }

    /// Records a failed fetch: the last good set stays, the cooldown starts.
    pub fn failed(&mut self, now: UnixTime) {
        self.last_attempt = Some(now);
        self.last_failure = Some(now);
    }
}

/// The TTL of a freshly fetched set: the issuer's `max-age` clamped to
/// `[min_ttl, max_ttl]` (the floor when it gave none). Used both in isolate
/// memory and for the shared Cache API entry.
#[must_use]
pub fn ttl(max_age: Option<i64>, policy: &CachePolicy) -> i64 {
    max_age
        .unwrap_or(policy.min_ttl)
        .clamp(policy.min_ttl, policy.max_ttl)
}

/// The header on a shared Cache API entry recording when (unix seconds) the
/// set was fetched from the issuer and its clamped TTL: `<fetched_at>/<ttl>`.
pub const SHARED_ENTRY_HEADER: &str = "gatehouse-jwks-fetched";

/// When a shared entry was fetched and for how long it is fresh.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharedEntry {
    /// Unix seconds of the fetch from the issuer.
    pub fetched_at: i64,
    /// Clamped TTL, seconds.
    pub ttl: i64,
}

impl SharedEntry {
    /// The header value.
    #[must_use]
    pub fn header_value(&self) -> String {
        format!("{}/{}", self.fetched_at, self.ttl)
    }

    /// Parses the header value; `None` when absent or malformed.
    #[must_use]
    pub fn parse(v: &str) -> Option<Self> {
        let (a, b) = v.trim().split_once('/')?;
        Some(Self {
            fetched_at: a.parse().ok()?,
            ttl: b.parse().ok().filter(|t: &i64| *t >= 0)?,
        })
    }

    /// Seconds of freshness left at `now` (positive), or `None` when the
    /// entry is no longer fresh (or claims a fetch in the future, or its
    /// numbers overflow).
    #[must_use]
    pub fn remaining(&self, now: UnixTime) -> Option<i64> {
        if self.fetched_at > now.0 {
            return None;
        }
        self.fetched_at
            .checked_add(self.ttl)?
            .checked_sub(now.0)
            .filter(|r| *r > 0)
    }

    /// The entry with its TTL clamped to `[0, max_ttl]`: an entry never
    /// makes a set fresh for longer than this edge's own ceiling.
    #[must_use]
    pub fn clamped(self, policy: &CachePolicy) -> Self {
        Self {
            fetched_at: self.fetched_at,
            ttl: self.ttl.min(policy.max_ttl).max(0),
        }
    }
}

/// The header on a shared Cache API entry carrying its seal (see [`CacheSeal`]).
pub const SEAL_HEADER: &str = "gatehouse-jwks-seal";

/// Binds the shared Cache API entries to this deployment (`JWKS_CACHE_SECRET`).
///
/// `caches.default` is shared by every Worker of a zone, so an entry found
/// there may have been put by another Worker. An entry is trusted only when
/// it sits under a cache key derived from the secret (another Worker cannot
/// compute it) and carries an HMAC-SHA256, under the secret, over the JWKS
/// URL, its fetch time and TTL, and its body (another Worker cannot forge
/// it). Without a secret, the edge neither reads nor writes the shared cache.
#[derive(Clone)]
pub struct CacheSeal {
    secret: Vec<u8>,
}

impl fmt::Debug for CacheSeal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CacheSeal([redacted])")
    }
}

impl CacheSeal {
    /// The least secret length, bytes.
    pub const MIN_SECRET_BYTES: usize = 32;

    /// A seal keyed with `secret`; `None` when it is shorter than [`Self::MIN_SECRET_BYTES`].
    #[must_use]
    pub fn new(secret: &[u8]) -> Option<Self> {
        (secret.len() >= Self::MIN_SECRET_BYTES).then(|| Self {
            secret: secret.to_vec(),
        })
    }

    fn mac(&self, label: &[u8], parts: &[&[u8]]) -> Option<Hmac<Sha256>> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).ok()?;
        mac.update(label);
        for p in parts {
            // Length-prefixed, so no two different inputs share an encoding.
            mac.update(&(p.len() as u64).to_be_bytes());
            mac.update(p);
        }
        Some(mac)
    }

    /// The Cache API key for `jwks_url`: the URL with a tag only holders of
    /// the secret can compute.
    #[must_use]
    pub fn cache_key(&self, jwks_url: &str) -> String {
        let tag = self
            .mac(b"gatehouse/jwks-cache-key/v1\0", &[jwks_url.as_bytes()])
            .map(|m| b64::encode(&m.finalize().into_bytes()))
            .unwrap_or_default();
        let sep = if jwks_url.contains('?') { '&' } else { '?' };
        format!("{jwks_url}{sep}gatehouse-jwks-cache={tag}")
    }

    fn entry_mac(&self, jwks_url: &str, entry: &SharedEntry, body: &[u8]) -> Option<Hmac<Sha256>> {
        self.mac(
            b"gatehouse/jwks-cache-entry/v1\0",
            &[
                jwks_url.as_bytes(),
                &entry.fetched_at.to_be_bytes(),
                &entry.ttl.to_be_bytes(),
                body,
            ],
        )
    }

    /// The [`SEAL_HEADER`] value for an entry of `jwks_url` with `body`.
    #[must_use]
    pub fn seal(&self, jwks_url: &str, entry: &SharedEntry, body: &[u8]) -> String {
        self.entry_mac(jwks_url, entry, body)
            .map(|m| b64::encode(&m.finalize().into_bytes()))
            .unwrap_or_default()
    }

    /// Whether `seal` is this deployment's seal over the entry (constant-time).
    #[must_use]
    pub fn verify(&self, jwks_url: &str, entry: &SharedEntry, body: &[u8], seal: &str) -> bool {
        let Ok(tag) = b64::decode(seal.trim()) else {
            return false;
        };
        self.entry_mac(jwks_url, entry, body)
            .is_some_and(|m| m.verify_slice(&tag).is_ok())
    }
}

/// Whether a shared Cache API entry found under `seal`'s key for `jwks_url`
/// may be used at `now`, and as what: its entry header must parse, its seal
/// verify over the entry and `body`, and it must still be fresh once its TTL
/// is clamped to `policy`. `None` without a seal (the shared cache is off).
#[must_use]
pub fn trusted_shared_entry(
    seal: Option<&CacheSeal>,
    jwks_url: &str,
    entry_header: Option<&str>,
    seal_header: Option<&str>,
    body: &[u8],
    now: UnixTime,
    policy: &CachePolicy,
) -> Option<SharedEntry> {
    let seal = seal?;
    let entry = SharedEntry::parse(entry_header?)?;
    if !seal.verify(jwks_url, &entry, body, seal_header?) {
        return None;
    }
    let entry = entry.clamped(policy);
    entry.remaining(now).map(|_| entry)
}

/// `max-age` from a `Cache-Control` value (RFC 9111 §5.2.2.1); `no-store`/`no-cache` → 0.
#[must_use]
pub fn max_age(cache_control: &str) -> Option<i64> {
    let mut out = None;
    for directive in cache_control.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(0);
        }
        if let Some(v) = lower.strip_prefix("max-age=") {
            out = v.trim_matches('"').parse::<i64>().ok().filter(|n| *n >= 0);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: CachePolicy = CachePolicy {
        min_ttl: 30,
        max_ttl: 600,
        max_stale: 3600,
        cooldown: 10,
    };

    #[test]
    fn fresh_then_stale_then_refetch() {
        let mut s = JwksState::<JwkSet>::default();
        assert_eq!(s.before_lookup(UnixTime(0), &P), Action::Fetch);
        s.fetched(JwkSet::default(), Some(100), UnixTime(0), &P);
        assert_eq!(s.before_lookup(UnixTime(99), &P), Action::UseCached);
        assert_eq!(s.before_lookup(UnixTime(100), &P), Action::Fetch);
    }

    #[test]
    fn ttl_is_clamped() {
        let mut s = JwksState::<JwkSet>::default();
        s.fetched(JwkSet::default(), Some(1), UnixTime(0), &P);
        assert_eq!(s.fresh_until, Some(UnixTime(30)));
        s.fetched(JwkSet::default(), Some(86_400), UnixTime(0), &P);
        assert_eq!(s.fresh_until, Some(UnixTime(600)));
        s.fetched(JwkSet::default(), None, UnixTime(0), &P);
        assert_eq!(s.fresh_until, Some(UnixTime(30)));
    }

    #[test]
    fn stale_if_error_with_cooldown_and_a_limit() {
        let mut s = JwksState::<JwkSet>::default();
        s.fetched(JwkSet::default(), Some(60), UnixTime(0), &P);
        s.failed(UnixTime(70));
        assert_eq!(
            s.before_lookup(UnixTime(75), &P),
            Action::UseCached,
            "cooldown after failure"
        );
        assert!(s.usable(UnixTime(75), &P));
        assert_eq!(s.before_lookup(UnixTime(80), &P), Action::Fetch);
        assert!(!s.usable(UnixTime(60 + 3600), &P), "too stale");
    }

    #[test]
    fn unknown_kid_refetch_is_rate_limited() {
        let mut s = JwksState::<JwkSet>::default();
        s.fetched(JwkSet::default(), Some(300), UnixTime(0), &P);
        assert!(
            s.may_refetch_for_unknown_kid(UnixTime(1), &P),
            "a success does not start the kid cooldown"
        );
        assert!(
            !s.may_refetch_for_unknown_kid(UnixTime(5), &P),
            "one kid refetch per cooldown"
        );
        assert!(s.may_refetch_for_unknown_kid(UnixTime(11), &P));
        s.failed(UnixTime(30));
        assert!(
            !s.may_refetch_for_unknown_kid(UnixTime(35), &P),
            "no kid refetch right after a failure"
        );
    }

    /// Regression: a successful refresh must not start a cooldown that keeps a
    /// stale set in use past its TTL — otherwise a key published `lead`
    /// seconds before it signs is missed whenever the cooldown exceeds the lead.
    #[test]
    fn ttl_refresh_is_not_delayed_by_the_cooldown() {
        let short = CachePolicy {
            min_ttl: 1,
            max_ttl: 600,
            max_stale: 3600,
            cooldown: 10,
        };
        let mut s = JwksState::<JwkSet>::default();
        s.fetched(JwkSet::default(), Some(1), UnixTime(0), &short);
        assert_eq!(s.before_lookup(UnixTime(0), &short), Action::UseCached);
        assert_eq!(s.before_lookup(UnixTime(1), &short), Action::Fetch);
    }

    #[test]
    fn never_fetched_and_failing_waits_for_the_cooldown() {
        let mut s = JwksState::<JwkSet>::default();
        s.failed(UnixTime(100));
        assert_eq!(s.before_lookup(UnixTime(100), &P), Action::Unavailable);
        assert_eq!(s.before_lookup(UnixTime(109), &P), Action::Unavailable);
        assert_eq!(s.before_lookup(UnixTime(110), &P), Action::Fetch);
    }

    #[test]
    fn shared_entries_are_clamped_and_age() {
        // The issuer says a day; the ceiling is 600 s.
        let e = SharedEntry {
            fetched_at: 1000,
            ttl: ttl(Some(86_400), &P),
        };
        assert_eq!(e.ttl, 600);
        assert_eq!(SharedEntry::parse(&e.header_value()), Some(e));
        assert_eq!(e.remaining(UnixTime(1000)), Some(600));
        assert_eq!(e.remaining(UnixTime(1500)), Some(100));
        assert_eq!(e.remaining(UnixTime(1600)), None);
        assert_eq!(e.remaining(UnixTime(999)), None, "from the future");
        // A hit keeps only the remaining lifetime, not a new TTL from now.
        let mut s = JwksState::<JwkSet>::default();
        s.fetched_shared(JwkSet::default(), e, UnixTime(1500));
        assert_eq!(s.fresh_until, Some(UnixTime(1600)));
        assert_eq!(s.before_lookup(UnixTime(1600), &P), Action::Fetch);
        assert_eq!(SharedEntry::parse("garbage"), None);
        assert_eq!(SharedEntry::parse("5/-1"), None);
    }

    const URL: &str = "https://issuer.example/jwks.json";

    fn sealed(seal: &CacheSeal, entry: &SharedEntry, body: &[u8]) -> String {
        seal.seal(URL, entry, body)
    }

    /// Issue 17.15: another Worker of the zone can put any entry under the
    /// JWKS URL in `caches.default`; only entries sealed with this edge's
    /// secret are trusted, and only for this edge's own TTL ceiling.
    #[test]
    fn a_planted_shared_entry_is_not_trusted() {
        let ours = CacheSeal::new(b"0123456789abcdef0123456789abcdef-ours").unwrap();
        let theirs = CacheSeal::new(b"0123456789abcdef0123456789abcdef-theirs").unwrap();
        let body = br#"{"keys":[]}"#;
        let entry = SharedEntry {
            fetched_at: 1000,
            ttl: 300,
        };
        let now = UnixTime(1100);
        let header = entry.header_value();
        let good = sealed(&ours, &entry, body);
        let accept = |seal: Option<&CacheSeal>, h: Option<&str>, s: Option<&str>, b: &[u8]| {
            trusted_shared_entry(seal, URL, h, s, b, now, &P)
        };
        assert_eq!(
            accept(Some(&ours), Some(&header), Some(&good), body),
            Some(entry)
        );
        // The entry header alone (as before the fix) is not enough.
        assert_eq!(accept(Some(&ours), Some(&header), None, body), None);
        // A seal under another secret, over other keys, or another lifetime.
        let forged = sealed(&theirs, &entry, body);
        assert_eq!(
            accept(Some(&ours), Some(&header), Some(&forged), body),
            None
        );
        let planted = br#"{"keys":[{"kty":"EC"}]}"#;
        assert_eq!(
            accept(Some(&ours), Some(&header), Some(&good), planted),
            None
        );
        let longer = SharedEntry {
            fetched_at: 1000,
            ttl: 86_400,
        }
        .header_value();
        assert_eq!(accept(Some(&ours), Some(&longer), Some(&good), body), None);
        assert_eq!(
            accept(Some(&ours), Some(&header), Some("garbage!"), body),
            None
        );
        // The same entry for another JWKS URL.
        assert!(!ours.verify("https://other.example/jwks.json", &entry, body, &good));
        // No secret configured: the shared cache is never trusted.
        assert_eq!(accept(None, Some(&header), Some(&good), body), None);
        // The cache key depends on the secret (another Worker cannot find ours).
        assert_ne!(ours.cache_key(URL), theirs.cache_key(URL));
        assert!(ours.cache_key(URL).starts_with(URL));
        assert!(CacheSeal::new(b"short").is_none());
        assert_eq!(format!("{ours:?}"), "CacheSeal([redacted])");
    }

    /// Issue 17.15: a sealed entry's TTL is clamped to this edge's ceiling
    /// on read, and extreme numbers neither overflow nor make it fresh.
    #[test]
    fn shared_entry_ttls_are_clamped_on_read_and_never_overflow() {
        let ours = CacheSeal::new(b"0123456789abcdef0123456789abcdef-ours").unwrap();
        let body = b"{}";
        let day = SharedEntry {
            fetched_at: 1000,
            ttl: 86_400,
        };
        let seal = sealed(&ours, &day, body);
        let got = trusted_shared_entry(
            Some(&ours),
            URL,
            Some(&day.header_value()),
            Some(&seal),
            body,
            UnixTime(1100),
            &P,
        );
        assert_eq!(
            got,
            Some(SharedEntry {
                fetched_at: 1000,
                ttl: 600
            })
        );
        assert_eq!(
            trusted_shared_entry(
                Some(&ours),
                URL,
                Some(&day.header_value()),
                Some(&seal),
                body,
                UnixTime(1700),
                &P,
            ),
            None,
            "past the ceiling, whatever the entry says"
        );
        let extreme = SharedEntry {
            fetched_at: i64::MIN,
            ttl: 0,
        };
        assert_eq!(extreme.remaining(UnixTime(1)), None);
        assert_eq!(extreme.remaining(UnixTime(i64::MAX)), None);
        let far = SharedEntry {
            fetched_at: i64::MAX - 1,
            ttl: i64::MAX,
        };
        assert_eq!(far.remaining(UnixTime(i64::MAX)), None);
        assert_eq!(far.clamped(&P).ttl, 600);
    }

    #[test]
    fn reads_max_age() {
        assert_eq!(max_age("public, max-age=300"), Some(300));
        assert_eq!(max_age("no-store"), Some(0));
        assert_eq!(max_age("public"), None);
        assert_eq!(max_age("max-age=-1"), None);
    }
}
