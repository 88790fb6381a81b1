//! The token endpoint's cache of client registrations (issue 21.3): reading
//! the client was one database round trip per token, the largest share of
//! a client_credentials request's cost on SQLite (a hop to the
//! connection's worker thread and back).
//!
//! A record is cached with the `client_generation` it was read at (one
//! statement reads both), and stays usable only as long as that counter
//! has not moved: the database bumps it, by trigger, in the same
//! transaction as any change to a client (migration 0015). The token's
//! issuing write (its audit row, or its refresh rotation) re-reads the
//! counter in the transaction that commits it and is refused when it
//! moved, so no token leaves on a record older than the database's at
//! commit time, whichever replica or tool changed the client; the token
//! endpoint then authenticates once more from the database
//! (docs/security.md, "Client cache").
//!
//! What is cached is the record, never a verdict: a presented secret is
//! compared with the cached hash on every request, and a refusal by a
//! cached record is decided again from the database (a secret rotated
//! elsewhere works at once). Only records that just authenticated a
//! request go in, so unknown ids and guessed secrets add nothing, and the
//! map holds at most [`CAPACITY`] clients.

use crate::domain::clients::Client;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Most clients held; beyond it an arbitrary one makes room (a client that
/// misses costs one read, as without the cache).
pub const CAPACITY: usize = 4096;

/// A cached record and the `client_generation` it was read at.
#[derive(Clone, Debug)]
pub struct Cached {
    /// The client as stored at `generation`.
    pub client: Arc<Client>,
    /// The `client_generation` the record was read at.
    pub generation: i64,
}

/// Client id → record. A poisoned lock is a miss, never a panic.
#[derive(Debug, Default)]
pub struct ClientCache {
    entries: RwLock<HashMap<String, Cached>>,
}

impl ClientCache {
    /// The record of `client_id`, unless it was read before `seen` (the
    /// highest generation this process has read: such a record is stale).
    #[must_use]
    pub fn get(&self, client_id: &str, seen: i64) -> Option<Cached> {
        let entries = self.entries.read().ok()?;
        entries
            .get(client_id)
            .filter(|c| c.generation >= seen)
            .cloned()
    }

    /// Keeps `client` as read at `generation`. When full, records older
    /// than it (stale: the counter only grows) go first, then an arbitrary one.
    pub fn put(&self, client: Arc<Client>, generation: i64) {
        let Ok(mut entries) = self.entries.write() else {
            return;
        };
        if entries.len() >= CAPACITY && !entries.contains_key(&client.client_id) {
            entries.retain(|_, c| c.generation >= generation);
            if entries.len() >= CAPACITY {
                if let Some(victim) = entries.keys().next().cloned() {
                    entries.remove(&victim);
                }
            }
        }
        let id = client.client_id.clone();
        entries.insert(id, Cached { client, generation });
    }

    /// How many records are held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.read().map_or(0, |e| e.len())
    }

    /// Whether no record is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(id: &str) -> Arc<Client> {
        Arc::new(Client {
            client_id: id.to_owned(),
            name: "c".into(),
            public: false,
            secret_hash: None,
            previous_secret_hash: None,
            previous_secret_expires_at: None,
            redirect_uris: vec![],
            grant_types: vec![],
            scopes: vec![],
            audiences: vec![],
            dpop_required: false,
            jwks: None,
            serves: vec![],
            legacy_assertion_audience: false,
            post_logout_redirect_uris: vec![],
            require_pushed_authorization_requests: false,
            created_at: 0,
            updated_at: 0,
        })
    }

    #[test]
    fn a_record_read_before_the_generation_seen_is_a_miss() {
        let cache = ClientCache::default();
        cache.put(client("a"), 5);
        assert_eq!(cache.get("a", 5).map(|c| c.generation), Some(5));
        assert!(cache.get("a", 6).is_none(), "stale once 6 was seen");
        assert!(cache.get("b", 0).is_none());
    }

    #[test]
    fn the_cache_never_holds_more_than_its_capacity() {
        let cache = ClientCache::default();
        for i in 0..CAPACITY * 3 {
            cache.put(client(&format!("c{i}")), 1);
        }
        assert_eq!(cache.len(), CAPACITY);
        // Stale records make room first.
        cache.put(client("new"), 2);
        assert_eq!(cache.len(), 1, "every record read at 1 is stale at 2");
        assert!(cache.get("new", 2).is_some());
    }
}
