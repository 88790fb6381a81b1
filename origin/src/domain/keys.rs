//! Signing keys: stored encrypted, published before they sign, retained
//! after they stop, and chosen by time.
//!
//! The signer at `t` is the newest key whose `active_at <= t`; a key is in
//! the JWKS from `published_at` until `removed_at`. [`plan`] is the pure
//! schedule; [`maintain`] applies it under a database lock so that exactly
//! one replica rotates.

use crate::config::KeySchedule;
use crate::store::db::{Db, StoreError};
use crate::store::keys::{self as rows, KeyMaintenance, KeyRow};
use crate::support::crypto::{CryptoError, SigningKey};
use crate::support::kek::{Kek, KekError};
use crate::support::secret::{random_id, RandomError};
use gatehouse_common::alg::Algorithm;
use gatehouse_common::jwk::JwkSet;
use gatehouse_common::keys::{published_at, signer_at, KeyState, RotationSchedule, ScheduledKey};
use gatehouse_common::UnixTime;
use serde::Serialize;
use std::sync::Arc;

/// A key's schedule as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyMeta {
    /// Key id.
    pub kid: String,
    /// Algorithm name.
    pub alg: String,
    /// Created.
    pub created_at: i64,
    /// In the JWKS from.
    pub published_at: i64,
    /// Signs from (until a newer key's `active_at`).
    pub active_at: i64,
    /// Stopped signing at.
    pub retired_at: Option<i64>,
    /// Left the JWKS at.
    pub removed_at: Option<i64>,
}

impl KeyMeta {
    /// The key's schedule as `common` sees it, carrying `key`: the one
    /// definition of signer and JWKS membership, shared with the edge.
    #[must_use]
    pub fn scheduled<K>(&self, key: K) -> ScheduledKey<K> {
        ScheduledKey {
            kid: self.kid.clone(),
            published_at: UnixTime(self.published_at),
            active_at: UnixTime(self.active_at),
            retired_at: self.retired_at.map(UnixTime),
            removed_at: self.removed_at.map(UnixTime),
            key,
        }
    }

    /// Whether the key is in the JWKS at `now` (`common`'s rule).
    #[must_use]
    pub fn published(&self, now: UnixTime) -> bool {
        self.scheduled(()).is_published(now)
    }

    /// The key's state at `now`, for operators: `common`'s [`KeyState`], with
    /// only the signer called `active` (an older key a newer one has replaced
    /// is `retired` even before maintenance records it).
    #[must_use]
    pub fn state(&self, now: UnixTime, signer_kid: Option<&str>) -> &'static str {
        match self.scheduled(()).state(now) {
            KeyState::Removed => "removed",
            KeyState::Pending => "pending",
            KeyState::Published => "published",
            KeyState::Active if signer_kid == Some(self.kid.as_str()) => "active",
            KeyState::Active | KeyState::Retained => "retired",
        }
    }
}

/// Key storage or use failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    /// Storage.
    #[error(transparent)]
    Db(#[from] StoreError),
    /// Crypto.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The KEK.
    #[error(transparent)]
    Kek(#[from] KekError),
    /// Randomness.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// There is no key that can sign now.
    #[error("no active signing key")]
    NoSigner,
    /// The in-memory key ring's lock was poisoned.
    #[error("the key ring lock is poisoned")]
    RingPoisoned,
}

impl From<KeyRow> for KeyMeta {
    fn from(r: KeyRow) -> Self {
        Self {
            kid: r.kid,
            alg: r.alg,
            created_at: r.created_at,
            published_at: r.published_at,
            active_at: r.active_at,
            retired_at: r.retired_at,
            removed_at: r.removed_at,
        }
    }
}

/// What the schedule says to do at `now`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Plan {
    /// Create a key published now and active at this time.
    pub create_active_at: Option<i64>,
    /// Keys to mark retired, with the time they stopped signing.
    pub retire: Vec<(String, i64)>,
    /// Keys to remove from the JWKS.
    pub remove: Vec<String>,
}

/// The pure schedule: which key to create, retire or remove at `now` —
/// `common::keys::plan` over the stored keys (one rule for origin and edge).
/// `max_token_ttl` is the longest lifetime (plus leeway) of a token a key may have signed.
#[must_use]
pub fn plan(keys: &[KeyMeta], schedule: &KeySchedule, max_token_ttl: i64, now: UnixTime) -> Plan {
    let scheduled: Vec<ScheduledKey<()>> = keys.iter().map(|k| k.scheduled(())).collect();
    let p = gatehouse_common::keys::plan(
        &scheduled,
        &RotationSchedule {
            publish_lead_secs: schedule.publish_lead,
            active_period_secs: schedule.active_period,
            retention_secs: schedule.retention,
            max_token_lifetime_secs: max_token_ttl,
        },
        now,
    );
    Plan {
        create_active_at: p.create_active_at.map(|t| t.0),
        retire: p.retire.into_iter().map(|(k, t)| (k, t.0)).collect(),
        remove: p.remove,
    }
}

/// A loaded key: its stored schedule and the decrypted key.
#[derive(Debug)]
pub struct LoadedKey {
    /// The stored schedule.
    pub meta: KeyMeta,
    /// The decrypted signing key.
    pub key: SigningKey,
}

/// The loaded, decrypted keys: who signs now and what is published, both
/// decided by `common::keys` (as at the edge).
#[derive(Debug, Default)]
pub struct KeyRing {
    keys: Vec<ScheduledKey<LoadedKey>>,
}

impl KeyRing {
    /// A ring of already decrypted keys.
    #[must_use]
    pub fn from_keys(keys: Vec<(KeyMeta, SigningKey)>) -> Self {
        Self {
            keys: keys
                .into_iter()
                .map(|(meta, key)| {
                    let scheduled = meta.scheduled(());
                    ScheduledKey {
                        kid: scheduled.kid,
                        published_at: scheduled.published_at,
                        active_at: scheduled.active_at,
                        retired_at: scheduled.retired_at,
                        removed_at: scheduled.removed_at,
                        key: LoadedKey { meta, key },
                    }
                })
                .collect(),
        }
    }

    /// The signer at `now`: `common::keys::signer_at` (the newest active,
    /// not retired, not removed key).
    #[must_use]
    pub fn signer(&self, now: UnixTime) -> Option<&SigningKey> {
        signer_at(&self.keys, now).map(|k| &k.key.key)
    }

    /// The stored schedule of the signer at `now` (for its age in metrics).
    #[must_use]
    pub fn signer_meta(&self, now: UnixTime) -> Option<&KeyMeta> {
        signer_at(&self.keys, now).map(|k| &k.key.meta)
    }

    /// The JWKS at `now`: `common::keys::published_at`.
    #[must_use]
    pub fn jwks(&self, now: UnixTime) -> JwkSet {
        JwkSet::from_keys(
            published_at(&self.keys, now)
                .into_iter()
                .map(|k| k.key.key.public().clone())
                .collect(),
        )
    }

    /// Metadata of the loaded keys.
    pub fn metas(&self) -> impl Iterator<Item = &KeyMeta> {
        self.keys.iter().map(|k| &k.key.meta)
    }
}

/// Every key's schedule, oldest first.
pub async fn list(db: &Db) -> Result<Vec<KeyMeta>, StoreError> {
    Ok(rows::list(db)
        .await?
        .into_iter()
        .map(KeyMeta::from)
        .collect())
}

/// A signing key and its state at some time, for operators.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyView {
    /// The schedule.
    #[serde(flatten)]
    pub meta: KeyMeta,
    /// `pending`, `published`, `active`, `retired` or `removed`.
    pub state: &'static str,
}

/// Every key with its state at `now` (`published`, `active`, `retired`, `removed`), for operators.
pub async fn describe(db: &Db, now: UnixTime) -> Result<Vec<KeyView>, StoreError> {
    let metas = list(db).await?;
    let scheduled: Vec<ScheduledKey<()>> = metas.iter().map(|m| m.scheduled(())).collect();
    let signer = signer_at(&scheduled, now).map(|k| k.kid.clone());
    Ok(metas
        .into_iter()
        .map(|m| {
            let state = m.state(now, signer.as_deref());
            KeyView { meta: m, state }
        })
        .collect())
}

/// Loads and decrypts every key not yet removed.
pub async fn load(db: &Db, kek: &Kek) -> Result<KeyRing, KeyStoreError> {
    let rows = rows::live(db).await?;
    let mut keys = Vec::with_capacity(rows.len());
    for (row, sealed) in rows {
        let meta = KeyMeta::from(row);
        let alg =
            Algorithm::from_name(&meta.alg).map_err(|_| StoreError::Corrupt { column: "alg" })?;
        let pkcs8 = kek.open(&meta.kid, &sealed)?;
        let key = SigningKey::from_pkcs8(alg, &meta.kid, &pkcs8)?;
        keys.push((meta, key));
    }
    Ok(KeyRing::from_keys(keys))
}

async fn insert_key(
    tx: &mut KeyMaintenance,
    kek: &Kek,
    alg: Algorithm,
    now: UnixTime,
    active_at: i64,
) -> Result<String, KeyStoreError> {
    let kid = random_id()?;
    let generated = SigningKey::generate(alg, &kid)?;
    let sealed = kek.seal(&kid, &generated.pkcs8)?;
    tx.insert(&kid, alg.name(), now.0, active_at, &sealed)
        .await?;
    Ok(kid)
}

/// What [`maintain`] changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Maintenance {
    /// The key created, if any.
    pub created: Option<String>,
    /// Keys retired.
    pub retired: Vec<String>,
    /// Keys removed.
    pub removed: Vec<String>,
}

/// Applies the schedule at `now` in one transaction. On PostgreSQL it holds a
/// transaction-scoped advisory lock, so with several replicas exactly one
/// acts and the others then see its result.
pub async fn maintain(
    db: &Db,
    kek: &Kek,
    alg: Algorithm,
    schedule: &KeySchedule,
    max_token_ttl: i64,
    now: UnixTime,
) -> Result<Maintenance, KeyStoreError> {
    let mut tx = db.begin_key_maintenance().await?;
    let metas: Vec<KeyMeta> = tx.all().await?.into_iter().map(KeyMeta::from).collect();
    let p = plan(&metas, schedule, max_token_ttl, now);
    let mut done = Maintenance::default();
    if let Some(active_at) = p.create_active_at {
        done.created = Some(insert_key(&mut tx, kek, alg, now, active_at).await?);
    }
    for (kid, at) in &p.retire {
        tx.retire(kid, *at).await?;
        done.retired.push(kid.clone());
    }
    for kid in &p.remove {
        tx.remove(kid, now.0).await?;
        done.removed.push(kid.clone());
    }
    tx.commit().await?;
    Ok(done)
}

/// Starts a rotation now: a new key published at once, signing after the
/// publish lead (or at once with `immediate`, for a compromised key).
pub async fn rotate(
    db: &Db,
    kek: &Kek,
    alg: Algorithm,
    schedule: &KeySchedule,
    immediate: bool,
    now: UnixTime,
) -> Result<KeyMeta, KeyStoreError> {
    let mut tx = db.begin_key_maintenance().await?;
    let active_at = if immediate {
        now.0
    } else {
        now.0.saturating_add(schedule.publish_lead)
    };
    let kid = insert_key(&mut tx, kek, alg, now, active_at).await?;
    let meta = KeyMeta::from(tx.get(&kid).await?);
    tx.commit().await?;
    Ok(meta)
}

/// What [`retire`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Retirement {
    /// The key retired.
    pub kid: String,
    /// It stopped signing at.
    pub retired_at: i64,
    /// It left the JWKS at (`now` with `--now`; otherwise maintenance
    /// removes it once the tokens it signed have expired).
    pub removed_at: Option<i64>,
    /// The key created to sign in its place, when it was the signer and no
    /// other key could sign at once.
    pub created: Option<String>,
    /// For the operator: what happens to the tokens it signed.
    pub warning: &'static str,
}

impl Retirement {
    /// Its audit event (the CLI and the admin API record the same).
    #[must_use]
    pub fn audit_event(&self, now: UnixTime) -> crate::store::audit::AuditEvent {
        crate::store::audit::AuditEvent::new("key_retired", now).detail(format!(
            "kid={} removed={} created={}",
            self.kid,
            self.removed_at.is_some(),
            self.created.as_deref().unwrap_or("-")
        ))
    }
}

/// The warning [`retire`] gives with `now`.
pub const RETIRE_NOW_WARNING: &str = "the key is no longer published: every token it signed is refused as soon as \
     verifiers refresh the JWKS (the edge: within its JWKS cache TTL); clients must obtain new tokens";
/// The warning [`retire`] gives without `now`.
pub const RETIRE_WARNING: &str =
    "the key no longer signs; it stays published until the tokens it signed have \
     expired (after a key leak use --now to unpublish it at once)";

/// Retires `kid` at `now` (after a leak): it never signs again, and with
/// `unpublish` it also leaves the JWKS at once and its private key is
/// destroyed (every token it signed dies once verifiers refresh their keys).
/// If it was the signer and no other key can sign now, a new key is created,
/// active at once. `None` when no such key exists. Under the key
/// maintenance lock, as [`maintain`] and [`rotate`].
pub async fn retire(
    db: &Db,
    kek: &Kek,
    alg: Algorithm,
    kid: &str,
    unpublish: bool,
    now: UnixTime,
) -> Result<Option<Retirement>, KeyStoreError> {
    let mut tx = db.begin_key_maintenance().await?;
    let mut metas: Vec<KeyMeta> = tx.all().await?.into_iter().map(KeyMeta::from).collect();
    let Some(meta) = metas.iter_mut().find(|m| m.kid == kid) else {
        tx.rollback().await?;
        return Ok(None);
    };
    let retired_at = meta.retired_at.map_or(now.0, |at| at.min(now.0));
    meta.retired_at = Some(retired_at);
    tx.retire(kid, retired_at).await?;
    if unpublish && meta.removed_at.is_none() {
        meta.removed_at = Some(now.0);
        tx.remove(kid, now.0).await?;
    }
    let removed_at = meta.removed_at;
    let scheduled: Vec<ScheduledKey<()>> = metas.iter().map(|m| m.scheduled(())).collect();
    let created = if signer_at(&scheduled, now).is_none() {
        Some(insert_key(&mut tx, kek, alg, now, now.0).await?)
    } else {
        None
    };
    tx.commit().await?;
    Ok(Some(Retirement {
        kid: kid.to_owned(),
        retired_at,
        removed_at,
        created,
        warning: if unpublish {
            RETIRE_NOW_WARNING
        } else {
            RETIRE_WARNING
        },
    }))
}

/// The shared, swappable key ring.
pub type SharedKeyRing = Arc<std::sync::RwLock<Arc<KeyRing>>>;

#[cfg(test)]
mod tests {
    use super::*;

    const S: KeySchedule = KeySchedule {
        publish_lead: 100,
        active_period: 1000,
        retention: 50,
    };

    fn meta(kid: &str, active_at: i64) -> KeyMeta {
        KeyMeta {
            kid: kid.into(),
            alg: "ES256".into(),
            created_at: active_at - 100,
            published_at: active_at - 100,
            active_at,
            retired_at: None,
            removed_at: None,
        }
    }

    #[test]
    fn ring_signer_is_commons_signer_and_skips_retired_keys() {
        let key = |kid: &str| SigningKey::generate(Algorithm::Es256, kid).unwrap().key;
        let mut a = meta("a", 0);
        a.retired_at = Some(50);
        let b = meta("b", 100);
        let ring = KeyRing::from_keys(vec![(a.clone(), key("a")), (b.clone(), key("b"))]);
        // Before: the origin signed with "a" past its retirement; the edge's
        // `signer_at` would not have.
        assert!(ring.signer(UnixTime(60)).is_none());
        assert_eq!(ring.signer(UnixTime(10)).map(SigningKey::kid), Some("a"));
        assert_eq!(ring.signer(UnixTime(100)).map(SigningKey::kid), Some("b"));
        // Retired but published: still in the JWKS.
        assert_eq!(ring.jwks(UnixTime(60)).keys().len(), 2);
        let scheduled = [a.scheduled(()), b.scheduled(())];
        for t in [-200, 0, 49, 50, 60, 99, 100, 5000] {
            let ours = ring.signer(UnixTime(t)).map(SigningKey::kid);
            let common = signer_at(&scheduled, UnixTime(t)).map(|k| k.kid.as_str());
            assert_eq!(ours, common, "t={t}");
        }
        assert_eq!(a.state(UnixTime(60), None), "retired");
    }

    #[test]
    fn simulated_clock_always_has_a_published_signer() {
        // Walk a clock across several rotations applying `plan` as
        // `maintain` does: from bootstrap on there is always exactly one
        // signer (by common's rule), published for at least the lead time.
        let mut keys: Vec<KeyMeta> = Vec::new();
        let mut n = 0;
        for t in (0..5_000).step_by(10) {
            let now = UnixTime(t);
            let p = plan(&keys, &S, 300, now);
            if let Some(active_at) = p.create_active_at {
                n += 1;
                keys.push(KeyMeta {
                    kid: format!("k{n}"),
                    alg: "ES256".into(),
                    created_at: t,
                    published_at: t,
                    active_at,
                    retired_at: None,
                    removed_at: None,
                });
            }
            for (kid, at) in &p.retire {
                if let Some(k) = keys.iter_mut().find(|k| &k.kid == kid) {
                    k.retired_at = Some(*at);
                }
            }
            for kid in &p.remove {
                if let Some(k) = keys.iter_mut().find(|k| &k.kid == kid) {
                    k.removed_at = Some(t);
                }
            }
            let scheduled: Vec<_> = keys.iter().map(|m| m.scheduled(())).collect();
            let signer = signer_at(&scheduled, now).expect("a signer at every instant");
            assert!(signer.is_published(now));
            if n > 1 && signer.kid != "k1" {
                assert!(now.0 - signer.published_at.0 >= S.publish_lead, "t={t}");
            }
        }
        assert!(n >= 5, "several rotations happened");
    }

    #[test]
    fn empty_store_bootstraps_an_active_key() {
        assert_eq!(plan(&[], &S, 300, UnixTime(5)).create_active_at, Some(5));
    }

    #[test]
    fn next_key_is_published_lead_time_before_it_signs() {
        let keys = [meta("a", 0)];
        assert_eq!(plan(&keys, &S, 300, UnixTime(899)), Plan::default());
        let p = plan(&keys, &S, 300, UnixTime(900));
        assert_eq!(p.create_active_at, Some(1000));
        // Once "b" exists and is pending, nothing more is created.
        let keys = [meta("a", 0), meta("b", 1000)];
        assert_eq!(plan(&keys, &S, 300, UnixTime(950)), Plan::default());
    }

    #[test]
    fn old_key_retires_then_is_removed_after_ttl_plus_retention() {
        let keys = [meta("a", 0), meta("b", 1000)];
        let p = plan(&keys, &S, 300, UnixTime(1001));
        assert_eq!(p.retire, vec![("a".to_owned(), 1000)]);
        assert!(p.remove.is_empty());
        let p = plan(&keys, &S, 300, UnixTime(1350));
        assert_eq!(p.remove, vec!["a".to_owned()]);
    }
}
