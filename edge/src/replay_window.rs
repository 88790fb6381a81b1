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

/// What the guard answers one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not seen (or expired): recorded now, the proof may be used.
    Fresh,
    /// Seen and not expired: a replay.
    Replayed,
    /// The edge's instant is older than the guard's clock minus
    /// [`PRUNE_MARGIN_SECS`]: an entry the edge would still count as seen
    /// may have been pruned already, so the guard cannot answer "fresh".
    /// Nothing is recorded; the edge refuses (fails closed).
    StaleClock,
}

/// The guard's decision for a key stored with bound `stored_exp` (if any),
/// checked by the edge at `now_edge`, at the guard's own clock `own_now`.
///
/// Pruning deletes entries with `exp <= prune_time - PRUNE_MARGIN_SECS`;
/// such an entry still means "seen" to a check stamped `now_edge < exp`,
/// which is only possible when `now_edge < own_now - PRUNE_MARGIN_SECS`:
/// exactly the checks refused here.
#[must_use]
pub fn decide(stored_exp: Option<i64>, now_edge: i64, own_now: i64) -> Verdict {
    if now_edge < own_now.saturating_sub(PRUNE_MARGIN_SECS) {
        Verdict::StaleClock
    } else if is_replayed(stored_exp, now_edge) {
        Verdict::Replayed
    } else {
        Verdict::Fresh
    }
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

    /// Issue 17.14: an edge instant taken before a long wait must not be
    /// answered "fresh" by a guard that may have pruned the entry since.
    #[test]
    fn a_check_stamped_before_the_pruning_horizon_is_refused() {
        let exp = 100;
        // The entry is pruned once the guard's clock reaches exp + margin.
        let pruned_at = exp + PRUNE_MARGIN_SECS;
        assert!(is_prunable(exp, pruned_at));
        // A check stamped before exp that arrives after the pruning: without
        // the clock rule it would find nothing and answer "fresh".
        assert_eq!(decide(None, exp - 1, pruned_at), Verdict::StaleClock);
        assert_eq!(decide(None, 0, pruned_at + 1000), Verdict::StaleClock);
        // Within the margin the entry is still there and decides.
        assert_eq!(decide(Some(exp), exp - 1, exp + 4), Verdict::Replayed);
        assert_eq!(decide(Some(exp), pruned_at, pruned_at), Verdict::Fresh);
        assert_eq!(decide(None, pruned_at, pruned_at), Verdict::Fresh);
        // The edge's clock ahead of the guard's is fine.
        assert_eq!(decide(Some(exp), exp - 1, exp - 30), Verdict::Replayed);
        assert_eq!(decide(None, i64::MIN, i64::MIN), Verdict::Fresh);
    }

    /// Whatever the two clocks, a stored, unexpired entry is never answered
    /// "fresh": it is a replay or the check is refused.
    #[test]
    fn a_stored_unexpired_entry_is_never_fresh() {
        for now_edge in 90..110 {
            for own_now in 80..130 {
                let v = decide(Some(100), now_edge, own_now);
                if now_edge < 100 {
                    assert_ne!(v, Verdict::Fresh, "{now_edge} {own_now}");
                }
            }
        }
    }

    #[test]
    fn a_re_put_never_shortens_the_bound() {
        assert_eq!(bound_to_store(None, 50), 50);
        assert_eq!(bound_to_store(Some(80), 50), 80);
        assert_eq!(bound_to_store(Some(40), 50), 50);
    }
}
