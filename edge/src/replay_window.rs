//! Pure rules of the DPoP replay guard (time injected): when a stored proof
//! key still counts as seen, and when its entry may be pruned.
//!
//! `common`'s `DpopProof::replay_until` is an exclusive bound: the key must
//! be remembered while `now < replay_until`. The edge reads its clock once per
//! request and sends that instant (`now_edge`) with the check, so the guard
//! decides with the same clock the proof was accepted with; pruning uses the
//! guard's own clock minus a margin, so a skew between the two clocks can
//! never drop an entry the edge still needs.

/// Seconds an expired entry is kept past its bound before it is pruned.
pub const PRUNE_MARGIN_SECS: i64 = 5;

/// Whether an entry stored with bound `exp` means "already seen" for a
/// request the edge stamped `now_edge`.
#[must_use]
pub fn is_replayed(stored_exp: Option<i64>, now_edge: i64) -> bool {
    stored_exp.is_some_and(|exp| now_edge < exp)
}

/// Whether an entry with bound `exp` may be deleted at the guard's `now`.
#[must_use]
pub fn is_prunable(exp: i64, now: i64) -> bool {
    exp <= now.saturating_sub(PRUNE_MARGIN_SECS)
}

/// The bound to store when a key is recorded: never lower than one already
/// stored (a re-put can only extend how long the key is remembered).
#[must_use]
pub fn bound_to_store(stored_exp: Option<i64>, offered: i64) -> i64 {
    stored_exp.map_or(offered, |s| s.max(offered))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_until_the_exclusive_bound() {
        // A proof accepted in its last second (now = until - 1) is a replay
        // at until - 1; at until itself common refuses it as too old anyway.
        assert!(is_replayed(Some(100), 99));
        assert!(!is_replayed(Some(100), 100));
        assert!(!is_replayed(None, 0));
    }

    #[test]
    fn pruned_only_past_the_margin() {
        assert!(!is_prunable(100, 100));
        assert!(!is_prunable(100, 104));
        assert!(is_prunable(100, 105));
    }

    #[test]
    fn a_re_put_never_shortens_the_bound() {
        assert_eq!(bound_to_store(None, 50), 50);
        assert_eq!(bound_to_store(Some(80), 50), 80);
        assert_eq!(bound_to_store(Some(40), 50), 50);
    }
}
