//! Pure decisions behind the edge's revocation handling (time and I/O
//! results injected), so they are tested natively: what a request does when
//! the list cannot be had, when a re-read of KV changed nothing, and the
//! ingest store's compare-and-set on versions.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

/// What happens when an issuer's revocation list cannot be read or verified
/// (`REVOCATION_FAIL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevocationFail {
    /// Refuse with 503 (default): a revoked token is never forwarded.
    Closed,
    /// Decide with the list the isolate holds, if any (logged).
    Open,
}

/// A cheap fingerprint of a document's raw text: a re-read that returns the
/// same text is recognised without parsing or verifying it again.
#[must_use]
pub fn fingerprint(raw: &str) -> (usize, u64) {
    let mut h = DefaultHasher::new();
    raw.hash(&mut h);
    (raw.len(), h.finish())
}

/// The ingest store's compare-and-set: a document is taken only when its
/// version is strictly higher than the one held (equal versions are refused
/// too, so a slow retry of an already-written document never lands twice).
#[must_use]
pub fn takes_version(held: Option<u64>, offered: u64) -> bool {
    held.is_none_or(|h| offered > h)
}

/// The ingest store's floor: the higher of the version it recorded and the
/// version of the document KV holds (either may be missing).
#[must_use]
pub fn floor(stored: Option<u64>, in_kv: Option<u64>) -> Option<u64> {
    stored.max(in_kv)
}

/// How old a pushed document may be at ingest, in seconds: the pusher signs
/// every document (retries and republications included) when it sends it,
/// so an older one is a replay of a document someone kept.
pub const INGEST_MAX_AGE_SECS: i64 = 300;

/// Whether a document issued at `iat` may still be ingested at `now`.
#[must_use]
pub fn fresh_for_ingest(iat: i64, now: i64) -> bool {
    iat >= now.saturating_sub(INGEST_MAX_AGE_SECS)
}

/// Whether a list held since `checked_at` must be re-read from KV at `now`.
#[must_use]
pub fn needs_reread(checked_at: i64, ttl_secs: i64, now: i64) -> bool {
    now >= checked_at.saturating_add(ttl_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_and_set_refuses_equal_and_older() {
        assert!(takes_version(None, 1));
        assert!(takes_version(Some(4), 5));
        assert!(!takes_version(Some(5), 5), "equal is refused");
        assert!(!takes_version(Some(6), 5), "older is refused");
    }

    #[test]
    fn the_floor_is_the_higher_of_the_store_and_kv() {
        // Cloudflare-KV push mode: KV moved on past the object's record.
        assert_eq!(floor(Some(3), Some(9)), Some(9));
        assert!(!takes_version(floor(Some(3), Some(9)), 5));
        assert_eq!(floor(Some(9), Some(3)), Some(9));
        assert_eq!(floor(None, Some(4)), Some(4));
        assert_eq!(floor(Some(4), None), Some(4));
        assert_eq!(floor(None, None), None);
    }

    #[test]
    fn documents_older_than_the_ingest_window_are_replays() {
        assert!(fresh_for_ingest(1_000, 1_000));
        assert!(fresh_for_ingest(1_000 - INGEST_MAX_AGE_SECS, 1_000));
        assert!(!fresh_for_ingest(999 - INGEST_MAX_AGE_SECS, 1_000));
    }

    #[test]
    fn the_same_text_has_the_same_fingerprint() {
        let a = "h.c.s";
        assert_eq!(fingerprint(a), fingerprint(String::from(a).as_str()));
        assert_ne!(fingerprint(a), fingerprint("h.c.t"));
        assert_ne!(fingerprint(a), fingerprint("h.c.ss"));
    }

    #[test]
    fn reread_after_the_ttl() {
        assert!(!needs_reread(100, 5, 104));
        assert!(needs_reread(100, 5, 105));
        assert!(needs_reread(100, 0, 100));
    }
}
