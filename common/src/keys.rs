//! Signing-key selection over time, shared so origin and edge agree on rotation.
//!
//! Each key has four instants: `published_at` (enters the JWKS), `active_at`
//! (may sign), `retired_at` (stops signing) and `removed_at` (leaves the JWKS).
//! The signer at `t` is the newest key whose `active_at <= t` and that is not
//! retired (as kanidm's `active.range(..=now).next_back()`); the JWKS at `t`
//! holds every key published and not yet removed. [`RotationPolicy`] computes
//! the instants so that a key is published before it signs (longer than the
//! edge caches a JWKS) and stays published until every token it signed has expired.

use crate::UnixTime;

/// A key with its schedule. `K` is whatever the caller keeps: a private-key
/// handle at the origin, a [`crate::jwk::PublicJwk`] at the edge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduledKey<K> {
    /// The key id.
    pub kid: String,
    /// Enters the JWKS.
    pub published_at: UnixTime,
    /// May sign from this instant.
    pub active_at: UnixTime,
    /// Stops signing (still verifies) from this instant.
    pub retired_at: Option<UnixTime>,
    /// Leaves the JWKS from this instant.
    pub removed_at: Option<UnixTime>,
    /// The key itself.
    pub key: K,
}

/// Where a key is in its life at some instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyState {
    /// Not yet published.
    Pending,
    /// Published, not yet allowed to sign.
    Published,
    /// Allowed to sign (the signer is the newest such key).
    Active,
    /// Retired: no longer signs, still published for verification.
    Retained,
    /// Removed from the JWKS.
    Removed,
}

impl<K> ScheduledKey<K> {
    /// The key's state at `t`.
    #[must_use]
    pub fn state(&self, t: UnixTime) -> KeyState {
        if self.removed_at.is_some_and(|r| t >= r) {
            KeyState::Removed
        } else if t < self.published_at {
            KeyState::Pending
        } else if self.retired_at.is_some_and(|r| t >= r) {
            KeyState::Retained
        } else if t >= self.active_at {
            KeyState::Active
        } else {
            KeyState::Published
        }
    }

    /// Whether the key belongs in the JWKS at `t`.
    #[must_use]
    pub fn is_published(&self, t: UnixTime) -> bool {
        matches!(
            self.state(t),
            KeyState::Published | KeyState::Active | KeyState::Retained
        )
    }
}

/// The key that signs at `t`: the newest key (latest `active_at`, ties broken
/// by `kid`) that is active at `t`.
#[must_use]
pub fn signer_at<K>(keys: &[ScheduledKey<K>], t: UnixTime) -> Option<&ScheduledKey<K>> {
    keys.iter()
        .filter(|k| k.state(t) == KeyState::Active)
        .max_by(|a, b| {
            a.active_at
                .cmp(&b.active_at)
                .then_with(|| a.kid.cmp(&b.kid))
        })
}

/// The keys the JWKS must contain at `t`, in `keys` order.
#[must_use]
pub fn published_at<K>(keys: &[ScheduledKey<K>], t: UnixTime) -> Vec<&ScheduledKey<K>> {
    keys.iter().filter(|k| k.is_published(t)).collect()
}

/// The timing rules of rotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RotationPolicy {
    /// The longest the edge caches a JWKS; a new key is published this long
    /// before it signs.
    pub jwks_max_age_secs: i64,
    /// The longest-lived token a key signs (access tokens, revocation documents).
    pub token_lifetime_secs: i64,
    /// Clock skew allowance added before removal.
    pub leeway_secs: i64,
    /// How long a key signs before the next one takes over.
    pub rotate_every_secs: i64,
}

impl RotationPolicy {
    /// Schedules a key created at `now`: published now, active after the JWKS
    /// cache age, retired one rotation period later, removed once its last
    /// token has expired.
    #[must_use]
    pub fn schedule<K>(&self, kid: impl Into<String>, key: K, now: UnixTime) -> ScheduledKey<K> {
        let active_at = now.plus(self.jwks_max_age_secs.max(0));
        let retired_at = active_at.plus(self.rotate_every_secs.max(1));
        ScheduledKey {
            kid: kid.into(),
            published_at: now,
            active_at,
            retired_at: Some(retired_at),
            removed_at: Some(self.removal_after(retired_at)),
            key,
        }
    }

    /// When a key retired at `retired_at` may leave the JWKS.
    #[must_use]
    pub fn removal_after(&self, retired_at: UnixTime) -> UnixTime {
        retired_at
            .plus(self.token_lifetime_secs.max(0))
            .plus(self.leeway_secs.max(0))
    }

    /// When the successor of `current` must be created so that it is active
    /// exactly when `current` retires.
    #[must_use]
    pub fn next_key_due<K>(&self, current: &ScheduledKey<K>) -> Option<UnixTime> {
        current
            .retired_at
            .map(|r| r.plus(-self.jwks_max_age_secs.max(0)))
    }
}

/// The operator-facing timing of a key store that rotates on a schedule
/// (the origin's `GATEHOUSE_KEY_*` settings), for [`plan`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RotationSchedule {
    /// Seconds a new key is published before it signs (at least the edge's
    /// longest JWKS cache age).
    pub publish_lead_secs: i64,
    /// Seconds a key signs before its successor takes over.
    pub active_period_secs: i64,
    /// Seconds a retired key stays published after its last token expired.
    pub retention_secs: i64,
    /// The longest lifetime (plus leeway) of anything a key signed.
    pub max_token_lifetime_secs: i64,
}

/// What the schedule says to do at some instant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Create a key, published now, that signs from this instant.
    pub create_active_at: Option<UnixTime>,
    /// Keys to mark retired, with the instant their successor took over.
    pub retire: Vec<(String, UnixTime)>,
    /// Keys to remove from the JWKS (every token they signed has expired).
    pub remove: Vec<String>,
}

/// The pure rotation schedule at `now` over the keys not yet removed
/// (removed ones are ignored): bootstrap a signer when there is none;
/// publish the next key `publish_lead_secs` before the newest one's active
/// period ends; retire a key once a newer one is active; remove a retired
/// key once the longest-lived token it signed has expired, plus retention.
#[must_use]
pub fn plan<K>(keys: &[ScheduledKey<K>], s: &RotationSchedule, now: UnixTime) -> Plan {
    let mut out = Plan::default();
    let live: Vec<&ScheduledKey<K>> = keys.iter().filter(|k| k.removed_at.is_none()).collect();
    let order = |k: &ScheduledKey<K>| (k.active_at, k.kid.clone());
    match live.iter().max_by_key(|k| order(k)) {
        None => out.create_active_at = Some(now),
        Some(n) => {
            let period_end = n.active_at.plus(s.active_period_secs);
            if n.active_at <= now && now >= period_end.plus(-s.publish_lead_secs) {
                out.create_active_at = Some(period_end.max(now.plus(s.publish_lead_secs)));
            }
        }
    }
    for k in &live {
        let successor = live
            .iter()
            .filter(|o| order(o) > order(k) && o.active_at <= now)
            .map(|o| o.active_at)
            .min();
        if let (None, Some(at)) = (k.retired_at, successor) {
            out.retire.push((k.kid.clone(), at));
        }
        if let Some(at) = k.retired_at.or(successor) {
            if now >= at.plus(s.max_token_lifetime_secs).plus(s.retention_secs) {
                out.remove.push(k.kid.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RotationPolicy = RotationPolicy {
        jwks_max_age_secs: 600,
        token_lifetime_secs: 300,
        leeway_secs: 60,
        rotate_every_secs: 86_400,
    };

    fn t(s: i64) -> UnixTime {
        UnixTime(1_700_000_000 + s)
    }

    #[test]
    fn states_follow_the_schedule() {
        let k = POLICY.schedule("a", (), t(0));
        assert_eq!(k.state(t(-1)), KeyState::Pending);
        assert_eq!(k.state(t(0)), KeyState::Published);
        assert_eq!(k.state(t(600)), KeyState::Active);
        assert_eq!(k.state(t(600 + 86_400)), KeyState::Retained);
        assert_eq!(k.state(t(600 + 86_400 + 360)), KeyState::Removed);
    }

    #[test]
    fn rotation_hands_over_without_a_gap_or_an_unpublished_signer() {
        let a = POLICY.schedule("a", (), t(0));
        let due = POLICY.next_key_due(&a).unwrap();
        let b = POLICY.schedule("b", (), due);
        assert_eq!(b.active_at, a.retired_at.unwrap());
        let keys = vec![a, b];
        // Walk the clock across the whole rotation: there is always exactly one
        // signer, and it has been published for at least the JWKS cache age.
        let end = keys[1].retired_at.unwrap();
        for s in (0..200_000).step_by(50) {
            let now = t(s);
            if now >= end {
                assert!(signer_at(&keys, now).is_none(), "no successor scheduled");
                break;
            }
            if now < t(600) {
                assert!(signer_at(&keys, now).is_none());
                continue;
            }
            let signer = signer_at(&keys, now).unwrap();
            assert!(now.0 - signer.published_at.0 >= POLICY.jwks_max_age_secs);
            let jwks: Vec<_> = published_at(&keys, now)
                .iter()
                .map(|k| k.kid.as_str())
                .collect();
            assert!(jwks.contains(&signer.kid.as_str()));
        }
        assert_eq!(signer_at(&keys, due).unwrap().kid, "a");
        assert_eq!(signer_at(&keys, keys[1].active_at).unwrap().kid, "b");
        // Old key still verifies until its tokens expired.
        let handover = keys[1].active_at;
        assert!(keys[0].is_published(handover.plus(300 + 59)));
        assert!(!keys[0].is_published(handover.plus(300 + 60)));
    }

    #[test]
    fn newest_active_key_wins_and_retired_keys_never_sign() {
        let mk = |kid: &str, active: i64, retired: Option<i64>| ScheduledKey {
            kid: kid.into(),
            published_at: t(0),
            active_at: t(active),
            retired_at: retired.map(t),
            removed_at: None,
            key: (),
        };
        let keys = vec![
            mk("old", 10, None),
            mk("new", 20, None),
            mk("future", 30, None),
        ];
        assert_eq!(signer_at(&keys, t(25)).unwrap().kid, "new");
        assert_eq!(signer_at(&keys, t(15)).unwrap().kid, "old");
        let keys = vec![mk("old", 10, None), mk("new", 20, Some(22))];
        assert_eq!(signer_at(&keys, t(25)).unwrap().kid, "old");
        assert_eq!(published_at(&keys, t(25)).len(), 2);
    }

    #[test]
    fn plan_on_a_simulated_clock_always_has_a_published_signer() {
        let s = RotationSchedule {
            publish_lead_secs: 100,
            active_period_secs: 1000,
            retention_secs: 50,
            max_token_lifetime_secs: 330,
        };
        let mut keys: Vec<ScheduledKey<()>> = Vec::new();
        let mut created = 0;
        // The clock jumps forward in steps; nothing sleeps.
        for step in 0..1000 {
            let now = t(step * 10);
            let p = plan(&keys, &s, now);
            if let Some(active_at) = p.create_active_at {
                created += 1;
                keys.push(ScheduledKey {
                    kid: format!("k{created:03}"),
                    published_at: now,
                    active_at,
                    retired_at: None,
                    removed_at: None,
                    key: (),
                });
            }
            for (kid, at) in &p.retire {
                if let Some(k) = keys.iter_mut().find(|k| &k.kid == kid) {
                    k.retired_at = Some(*at);
                }
            }
            for kid in &p.remove {
                if let Some(k) = keys.iter_mut().find(|k| &k.kid == kid) {
                    k.removed_at = Some(now);
                }
            }
            let signer = signer_at(&keys, now).unwrap();
            assert!(signer.is_published(now));
            if signer.kid != "k001" {
                assert!(now.0 - signer.published_at.0 >= s.publish_lead_secs);
            }
            // A removed key signed nothing still valid.
            for k in keys.iter().filter(|k| k.removed_at.is_some()) {
                let retired = k.retired_at.unwrap();
                assert!(now.0 - retired.0 >= s.max_token_lifetime_secs + s.retention_secs);
            }
        }
        assert!(created >= 9, "rotated about every 1000 s");
        assert_eq!(
            plan(&[] as &[ScheduledKey<()>], &s, t(0)).create_active_at,
            Some(t(0))
        );
    }
}
