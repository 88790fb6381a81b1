//! Group commit for the token path's small independent writes — the
//! `token_issued` audit row, a DPoP proof's replay key, a refresh token's
//! rotation — so that concurrent requests share one transaction and one
//! commit (on SQLite, one WAL fsync) instead of each taking the database's
//! write lock in turn. Writes apply in arrival order inside the batch, so
//! two rotations of one refresh token decide exactly as two transactions
//! would: the first wins, the second finds the token rotated.
//!
//! Durability is unchanged: a request waits until the transaction holding
//! its row has committed, and only then answers. What changes is the number
//! of commits. Before this, every token issued on SQLite was a write
//! transaction of its own and concurrent writers queued on SQLite's lock
//! through `busy_timeout` sleeps (p99 739 ms at 16 connections; see
//! BENCHMARKS.md). PostgreSQL groups commits itself, but the batch still
//! saves a round trip and a commit per row.
//!
//! One task owns the batching: it waits for a first write, takes whatever
//! else is queued (up to [`MAX_BATCH`]), and commits them together, so a
//! lone request is written at once and batches grow only under load. If the
//! batch's transaction fails, each write is retried on its own, so one bad
//! row cannot fail the others and each caller gets its own answer.

use crate::store::audit::{self, AuditEvent};
use crate::store::client_generation::{self, Seen};
use crate::store::db::{MultiRow, StoreError};
use crate::store::refresh_tokens::{self, Rotation};
use sqlx::{AnyPool, Row as _};
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Most writes committed together.
pub const MAX_BATCH: usize = 256;
/// Writes waiting beyond this make callers wait to enqueue (backpressure).
const QUEUE: usize = 4 * MAX_BATCH;

/// One single-row write.
#[derive(Clone, Debug)]
pub enum Write {
    /// An audit event.
    Audit(AuditEvent),
    /// A refresh token's rotation; the write reports whether this request
    /// won it (`false`: the token was rotated or revoked before).
    Rotate(Box<Rotation>),
    /// A DPoP proof's replay key, unique while the proof is fresh; the write
    /// reports whether it was new (`false`: the proof was used before).
    ProofJti {
        /// The proof's replay key.
        key: String,
        /// Until when the key is kept (the proof's freshness bound).
        until: i64,
    },
}

type Reply = oneshot::Sender<Result<bool, StoreError>>;

/// A queued write: the write, the `client_generation` it is made as of
/// (`None`: unconditional), and where its answer goes.
type Queued = (Write, Option<i64>, Reply);

/// The handle requests write through; cheap to clone.
#[derive(Clone, Debug)]
pub struct GroupCommit {
    queue: mpsc::Sender<Queued>,
}

impl GroupCommit {
    /// Starts the committing task. It ends when the last handle is dropped.
    /// The `client_generation` values its transactions read are noted in
    /// `seen`.
    ///
    /// With `own_thread` (SQLite), on a thread of its own with a
    /// single-threaded runtime: each statement is a hop to the connection's
    /// worker thread and back, and the wake-up from that thread would
    /// otherwise wait in the request runtime's global queue behind the
    /// requests being served — the commit every waiting request needs would
    /// be the last to run. Otherwise (PostgreSQL, whose sockets belong to
    /// the request runtime's I/O driver) on the current runtime.
    #[must_use]
    pub fn start(pool: AnyPool, seen: Arc<Seen>, own_thread: bool) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        if own_thread {
            let thread = std::thread::Builder::new()
                .name("group-commit".into())
                .spawn(move || {
                    match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt.block_on(run(pool, seen, rx)),
                        Err(e) => {
                            tracing::error!(error = %e, "group commit runtime failed to start")
                        }
                    }
                });
            if let Err(e) = thread {
                // Writes then fail with `WriterStopped` (the queue's receiver is gone).
                tracing::error!(error = %e, "group commit thread failed to start");
            }
        } else {
            tokio::spawn(run(pool, seen, rx));
        }
        Self { queue }
    }

    /// Writes `write` and returns once it is committed: `true` when a row
    /// was inserted (always, for audit events).
    ///
    /// # Errors
    /// The database's error for this write, or [`StoreError::WriterStopped`]
    /// when the committing task is gone (its runtime shut down).
    pub async fn write(&self, write: Write) -> Result<bool, StoreError> {
        self.write_as_of(write, None).await
    }

    /// [`Self::write`], made on a client record read at `client_generation`
    /// (`None`: unconditional): the transaction that would commit it reads
    /// the counter after its writes (on SQLite, under the write lock it then
    /// holds, so the value stands until the commit) and, when it moved,
    /// rolls back and commits the batch without this write, which fails
    /// with [`StoreError::ClientChanged`] having written nothing.
    ///
    /// # Errors
    /// As [`Self::write`], and [`StoreError::ClientChanged`].
    pub async fn write_as_of(
        &self,
        write: Write,
        client_generation: Option<i64>,
    ) -> Result<bool, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((write, client_generation, reply))
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }
}

async fn run(pool: AnyPool, seen: Arc<Seen>, mut rx: mpsc::Receiver<Queued>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        match commit(&pool, &seen, &batch).await {
            Ok(done) => {
                for ((_, _, reply), done) in batch.drain(..).zip(done) {
                    let _ = reply.send(done);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, rows = batch.len(), "group commit failed; writing the rows one by one");
                for (write, as_of, reply) in batch.drain(..) {
                    let _ = reply.send(alone(&pool, &seen, &write, as_of).await);
                }
            }
        }
    }
}

/// Commits `batch` in one transaction; one answer per write, in order. A
/// write made as of a `client_generation` that is no longer current is
/// answered [`StoreError::ClientChanged`]: the transaction is rolled back
/// and the batch applied again without it (rare: a client changed).
async fn commit(
    pool: &AnyPool,
    seen: &Seen,
    batch: &[Queued],
) -> Result<Vec<Result<bool, StoreError>>, StoreError> {
    let mut changed = vec![false; batch.len()];
    loop {
        let live: Vec<&Write> = batch
            .iter()
            .zip(&changed)
            .filter(|(_, c)| !**c)
            .map(|((w, _, _), _)| w)
            .collect();
        if live.is_empty() {
            return Ok(batch
                .iter()
                .map(|_| Err(StoreError::ClientChanged))
                .collect());
        }
        let mut tx = pool.begin().await?;
        let mut inserted = apply_all(&mut tx, &live).await?.into_iter();
        let expected = || {
            batch
                .iter()
                .zip(&changed)
                .filter(|(_, c)| !**c)
                .filter_map(|((_, as_of, _), _)| *as_of)
        };
        if expected().next().is_some() {
            // After the writes: on SQLite the write lock is held from the
            // first one until the commit, so no client changes in between.
            let current = client_generation::read(&mut tx).await?;
            seen.observe(current);
            let mut stale = false;
            for ((_, as_of, _), c) in batch.iter().zip(changed.iter_mut()) {
                if !*c && as_of.is_some_and(|g| g != current) {
                    *c = true;
                    stale = true;
                }
            }
            if stale {
                tx.rollback().await?;
                continue;
            }
        }
        tx.commit().await?;
        return Ok(changed
            .iter()
            .map(|c| {
                if *c {
                    Err(StoreError::ClientChanged)
                } else {
                    Ok(inserted.next().unwrap_or(false))
                }
            })
            .collect());
    }
}

/// Applies `batch` on `conn` (inside a transaction): one `bool` per write.
async fn apply_all(
    conn: &mut sqlx::AnyConnection,
    batch: &[&Write],
) -> Result<Vec<bool>, StoreError> {
    // The audit rows first, in a few multi-row INSERTs (each statement is a
    // round trip); nothing else in a batch depends on them.
    let audits: Vec<&AuditEvent> = batch
        .iter()
        .filter_map(|w| match w {
            Write::Audit(e) => Some(e),
            _ => None,
        })
        .collect();
    audit::record_many(&mut *conn, &audits).await?;
    // The proof keys likewise; a key is new for the first write naming it
    // that the database inserted (a repeat in the same batch is a replay).
    let keys: Vec<(&str, i64)> = batch
        .iter()
        .filter_map(|w| match w {
            Write::ProofJti { key, until } => Some((key.as_str(), *until)),
            _ => None,
        })
        .collect();
    let mut new_keys = record_proof_keys(&mut *conn, &keys).await?;
    // Refresh rotations, together (first in the batch wins, as one by one).
    let rotations: Vec<&Rotation> = batch
        .iter()
        .filter_map(|w| match w {
            Write::Rotate(r) => Some(&**r),
            _ => None,
        })
        .collect();
    let mut won = refresh_tokens::apply_rotations(&mut *conn, &rotations)
        .await?
        .into_iter();
    let mut inserted = Vec::with_capacity(batch.len());
    for write in batch {
        inserted.push(match write {
            Write::Audit(_) => true,
            Write::ProofJti { key, .. } => new_keys.remove(key.as_str()),
            Write::Rotate(_) => won.next().unwrap_or(false),
        });
    }
    Ok(inserted)
}

/// Inserts the proof keys not yet recorded, in multi-row statements; returns
/// those it inserted.
async fn record_proof_keys(
    conn: &mut sqlx::AnyConnection,
    keys: &[(&str, i64)],
) -> Result<HashSet<String>, StoreError> {
    static INSERT: MultiRow = MultiRow::new(
        "INSERT INTO dpop_jtis (jti, expires_at) VALUES",
        2,
        " ON CONFLICT (jti) DO NOTHING RETURNING jti",
    );
    let mut inserted = HashSet::with_capacity(keys.len());
    for (chunk, sql) in INSERT.chunks(keys) {
        let mut query = sqlx::query(&sql);
        for (key, until) in chunk {
            query = query.bind(*key).bind(*until);
        }
        for row in query.fetch_all(&mut *conn).await? {
            inserted.insert(row.try_get::<String, _>("jti")?);
        }
    }
    Ok(inserted)
}

/// One write in a transaction of its own (after a batch failed), checked
/// against the `client_generation` like a batch.
async fn alone(
    pool: &AnyPool,
    seen: &Seen,
    write: &Write,
    as_of: Option<i64>,
) -> Result<bool, StoreError> {
    let mut tx = pool.begin().await?;
    let done = apply(&mut tx, write).await?;
    if let Some(expected) = as_of {
        let current = client_generation::read(&mut tx).await?;
        seen.observe(current);
        if current != expected {
            tx.rollback().await?;
            return Err(StoreError::ClientChanged);
        }
    }
    tx.commit().await?;
    Ok(done)
}

async fn apply(conn: &mut sqlx::AnyConnection, write: &Write) -> Result<bool, StoreError> {
    match write {
        Write::Audit(event) => {
            audit::record(&mut *conn, event).await?;
            Ok(true)
        }
        Write::Rotate(rotation) => rotation.apply(conn).await,
        Write::ProofJti { key, until } => {
            let done = sqlx::query(
                "INSERT INTO dpop_jtis (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING",
            )
            .bind(key)
            .bind(*until)
            .execute(&mut *conn)
            .await?;
            Ok(done.rows_affected() == 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::db::Db;
    use gatehouse_common::UnixTime;

    /// A fresh SQLite file (WAL, several connections, as in production).
    async fn sqlite() -> (Scratch, Db) {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "gh-group-commit-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        let url = format!("sqlite://{}/g.db", dir.display());
        let db = Db::open(&url).await.expect("open");
        (Scratch(dir), db)
    }

    struct Scratch(std::path::PathBuf);
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_are_all_committed_and_each_replay_key_is_new_once() {
        let (_dir, db) = sqlite().await;
        let mut tasks = Vec::new();
        for i in 0..400 {
            let g = db.group.clone();
            tasks.push(tokio::spawn(async move {
                let audit = g
                    .write(Write::Audit(
                        AuditEvent::new("token_issued", UnixTime(1)).jti(&format!("j{i}")),
                    ))
                    .await
                    .expect("audit write");
                // 200 distinct keys, each presented twice.
                let proof = g
                    .write(Write::ProofJti {
                        key: format!("k{}", i % 200),
                        until: 10,
                    })
                    .await
                    .expect("jti write");
                (audit, proof)
            }));
        }
        let mut new_keys = 0;
        for t in tasks {
            let (audit, proof) = t.await.expect("task");
            assert!(audit);
            new_keys += usize::from(proof);
        }
        assert_eq!(new_keys, 200, "each key is new exactly once");
        let audited = count(
            &db,
            "SELECT COUNT(*) AS n FROM audit_events WHERE event = 'token_issued'",
        )
        .await;
        assert_eq!(audited, 400);
        let keys = count(&db, "SELECT COUNT(*) AS n FROM dpop_jtis").await;
        assert_eq!(keys, 200);
    }

    #[tokio::test]
    async fn audit_rows_of_a_batch_go_in_multi_row_inserts_in_order_with_every_field() {
        let (_dir, db) = sqlite().await;
        // 100 rows: chunks of 64, 32 and 4.
        let events: Vec<AuditEvent> = (0..100)
            .map(|i| {
                let e = AuditEvent::new("token_issued", UnixTime(1_000 + i))
                    .client(&format!("c{i}"))
                    .jti(&format!("j{i}"));
                if i % 2 == 0 {
                    e.detail(format!("d{i}"))
                } else {
                    e
                }
            })
            .collect();
        let refs: Vec<&AuditEvent> = events.iter().collect();
        let mut conn = db.pool.acquire().await.expect("conn");
        audit::record_many(&mut conn, &refs).await.expect("insert");
        let rows = sqlx::query("SELECT at, client_id, jti, detail FROM audit_events ORDER BY id")
            .fetch_all(&db.pool)
            .await
            .expect("rows");
        assert_eq!(rows.len(), 100);
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(r.try_get::<i64, _>("at").expect("at"), 1_000 + i as i64);
            assert_eq!(
                r.try_get::<String, _>("client_id").expect("c"),
                format!("c{i}")
            );
            assert_eq!(r.try_get::<String, _>("jti").expect("j"), format!("j{i}"));
            let detail: Option<String> = r.try_get("detail").expect("d");
            assert_eq!(detail, (i % 2 == 0).then(|| format!("d{i}")));
        }
    }

    /// A fresh PostgreSQL database when `GATEHOUSE_TEST_DATABASE_URL` is set;
    /// otherwise the PostgreSQL case is reported skipped (a `SKIPPED:` line
    /// scripts/test counts), or fails under `CI=true`.
    async fn postgres() -> Option<Db> {
        let Some(url) = std::env::var("GATEHOUSE_TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
        else {
            use std::io::Write as _;
            let thread = std::thread::current();
            let test = thread.name().unwrap_or("unnamed test");
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{test}: GATEHOUSE_TEST_DATABASE_URL is unset and CI=true"
            );
            let line =
                format!("\nSKIPPED: {test} [postgres case]: GATEHOUSE_TEST_DATABASE_URL unset\n");
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
            return None;
        };
        sqlx::any::install_default_drivers();
        let name = format!(
            "gh_group_commit_{}",
            crate::support::secret::random_id()
                .expect("id")
                .to_lowercase()
                .replace(['-', '_'], "x")
        );
        let admin = sqlx::AnyPool::connect(&url).await.expect("connect");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .expect("create database");
        admin.close().await;
        let base = url.rsplit_once('/').map_or(url.as_str(), |(b, _)| b);
        Some(Db::open(&format!("{base}/{name}")).await.expect("open"))
    }

    async fn replay_keys_in_one_batch(db: &Db) {
        sqlx::query("INSERT INTO dpop_jtis (jti, expires_at) VALUES ('old', 10)")
            .execute(&db.pool)
            .await
            .expect("seed");
        let key = |k: &str| Write::ProofJti {
            key: k.into(),
            until: 10,
        };
        let batch: Vec<Queued> = [
            key("a"),
            key("old"),
            key("a"),
            Write::Audit(AuditEvent::new("token_issued", UnixTime(1))),
            key("b"),
        ]
        .into_iter()
        .map(unconditional)
        .collect();
        let inserted = commit_all(db, &batch).await;
        assert_eq!(inserted, [true, false, false, true, true]);
    }

    async fn rotations_in_one_batch(db: &Db) {
        use crate::store::refresh_tokens::{insert_row, RefreshRow};
        for (hash, t) in [("p1", 100), ("p2", 100), ("p3", 100)] {
            insert_row(&db.pool, &RefreshRow::for_test(hash, "f", t))
                .await
                .expect("seed");
        }
        sqlx::query("UPDATE refresh_tokens SET revoked_at = 150 WHERE token_hash = 'p3'")
            .execute(&db.pool)
            .await
            .expect("revoke p3");
        let rotate = |presented: &str, successor: &str, at: i64| {
            Write::Rotate(Box::new(Rotation {
                presented_hash: presented.into(),
                successor: RefreshRow::for_test(successor, "f", at),
                audit: AuditEvent::new("refresh_rotated", UnixTime(at)).jti(successor),
            }))
        };
        let batch: Vec<Queued> = [
            rotate("p1", "s1", 201),
            rotate("p2", "s2", 202),
            rotate("p1", "s3", 203),   // the same token again: loses
            rotate("p3", "s4", 204),   // revoked: loses
            rotate("nope", "s5", 205), // unknown: loses
            Write::Audit(AuditEvent::new("token_issued", UnixTime(1))),
        ]
        .into_iter()
        .map(unconditional)
        .collect();
        let won = commit_all(db, &batch).await;
        assert_eq!(won, [true, true, false, false, false, true]);
        let rows =
            sqlx::query("SELECT token_hash, rotated_at FROM refresh_tokens ORDER BY token_hash")
                .fetch_all(&db.pool)
                .await
                .expect("rows");
        let got: Vec<(String, Option<i64>)> = rows
            .iter()
            .map(|r| {
                (
                    r.try_get("token_hash").expect("h"),
                    r.try_get("rotated_at").expect("r"),
                )
            })
            .collect();
        let want: Vec<(String, Option<i64>)> = [
            ("p1", Some(201)),
            ("p2", Some(202)),
            ("p3", None),
            ("s1", None),
            ("s2", None),
        ]
        .iter()
        .map(|(h, r)| ((*h).to_owned(), *r))
        .collect();
        assert_eq!(
            got, want,
            "winners rotated at their own time, successors of losers absent"
        );
        let audited = count(db, "SELECT COUNT(*) AS n FROM audit_events WHERE event = 'refresh_rotated' AND jti IN ('s1', 's2')").await;
        let all = count(
            db,
            "SELECT COUNT(*) AS n FROM audit_events WHERE event = 'refresh_rotated'",
        )
        .await;
        assert_eq!((audited, all), (2, 2), "only the winners are audited");
    }

    /// A batch whose COMMIT reached the database but whose acknowledgement
    /// was lost (a dropped connection): the fallback re-applies each write
    /// alone, and a rotation then finds its token rotated — by itself.
    async fn rotation_retried_after_a_lost_acknowledgement(db: &Db) {
        use crate::store::refresh_tokens::{insert_row, RefreshRow};
        insert_row(&db.pool, &RefreshRow::for_test("p1", "f", 100))
            .await
            .expect("seed");
        let rotate = |successor: &str, at: i64| {
            Write::Rotate(Box::new(Rotation {
                presented_hash: "p1".into(),
                successor: RefreshRow::for_test(successor, "f", at),
                audit: AuditEvent::new("refresh_rotated", UnixTime(at)).jti(successor),
            }))
        };
        let batch: Vec<Queued> = vec![unconditional(rotate("s1", 201))];
        assert_eq!(commit_all(db, &batch).await, [true]);
        // The fallback, as after `tx.commit()` failed.
        let seen = Seen::default();
        let retried = alone(&db.pool, &seen, &rotate("s1", 201), None)
            .await
            .expect("alone");
        assert!(
            retried,
            "the fallback took its own committed rotation for a reuse (which revokes the family)"
        );
        // Another presentation of the rotated token is still a loss.
        let other = alone(&db.pool, &seen, &rotate("s2", 202), None)
            .await
            .expect("alone");
        assert!(!other, "a second presentation still loses");
        let live = count(
            db,
            "SELECT COUNT(*) AS n FROM refresh_tokens WHERE token_hash IN ('s1', 's2')",
        )
        .await;
        assert_eq!(live, 1, "the successor exists once, the loser's not at all");
    }

    #[tokio::test]
    async fn a_batch_committed_but_unacknowledged_is_not_mistaken_for_refresh_reuse() {
        on_each_database(rotation_retried_after_a_lost_acknowledgement).await;
    }

    /// Runs `check` on a fresh SQLite file, then on a fresh PostgreSQL
    /// database when one is configured.
    async fn on_each_database(check: impl AsyncFn(&Db)) {
        let (_dir, db) = sqlite().await;
        check(&db).await;
        if let Some(pg) = postgres().await {
            check(&pg).await;
        }
    }

    /// A write made unconditionally, its answer dropped.
    fn unconditional(w: Write) -> Queued {
        (w, None, oneshot::channel().0)
    }

    /// Commits `batch`, every write of which must succeed; their answers.
    async fn commit_all(db: &Db, batch: &[Queued]) -> Vec<bool> {
        commit(&db.pool, &Seen::default(), batch)
            .await
            .expect("commit")
            .into_iter()
            .map(|r| r.expect("written"))
            .collect()
    }

    /// `SELECT COUNT(*) AS n …`'s answer.
    async fn count(db: &Db, sql: &str) -> i64 {
        sqlx::query(sql)
            .fetch_one(&db.pool)
            .await
            .expect("count")
            .try_get("n")
            .expect("n")
    }

    #[tokio::test]
    async fn rotations_in_one_batch_first_presentation_wins_and_losers_write_nothing() {
        on_each_database(rotations_in_one_batch).await;
    }

    /// The counter as the pool sees it now.
    async fn generation(db: &Db) -> i64 {
        let mut conn = db.pool.acquire().await.expect("conn");
        client_generation::read(&mut conn)
            .await
            .expect("generation")
    }

    /// Writes made as of a generation that has moved are refused and leave
    /// nothing behind, in a batch and alone; the others in the batch commit.
    async fn writes_as_of_a_moved_generation(db: &Db) {
        let before = generation(db).await;
        sqlx::query(
            "INSERT INTO clients (client_id, name, is_public, redirect_uris, grant_types, \
             scopes, audiences, dpop_required, created_at, updated_at) \
             VALUES ('c1', 'c', 0, '[]', '[]', '[]', '[]', 0, 1, 1)",
        )
        .execute(&db.pool)
        .await
        .expect("insert client");
        let after = generation(db).await;
        assert!(after > before, "an INSERT moves the counter");
        let audit = |jti: &str| Write::Audit(AuditEvent::new("token_issued", UnixTime(1)).jti(jti));
        let batch: Vec<Queued> = vec![
            (audit("stale"), Some(before), oneshot::channel().0),
            (audit("current"), Some(after), oneshot::channel().0),
            (audit("unconditional"), None, oneshot::channel().0),
            (
                Write::ProofJti {
                    key: "k".into(),
                    until: 10,
                },
                Some(before),
                oneshot::channel().0,
            ),
        ];
        let seen = Seen::default();
        let done = commit(&db.pool, &seen, &batch).await.expect("commit");
        let shape: Vec<Option<bool>> = done
            .iter()
            .map(|r| match r {
                Ok(b) => Some(*b),
                Err(StoreError::ClientChanged) => None,
                Err(e) => panic!("unexpected {e}"),
            })
            .collect();
        assert_eq!(shape, [None, Some(true), Some(true), None]);
        assert_eq!(seen.get(), after, "the batch noted the generation it read");
        let audited = count(
            db,
            "SELECT COUNT(*) AS n FROM audit_events WHERE jti IN ('current', 'unconditional')",
        )
        .await;
        let all = count(db, "SELECT COUNT(*) AS n FROM audit_events").await;
        assert_eq!(
            (audited, all),
            (2, 2),
            "the stale audit row was rolled back"
        );
        assert_eq!(count(db, "SELECT COUNT(*) AS n FROM dpop_jtis").await, 0);
        // Alone (the fallback after a failed batch), likewise.
        let alone_stale = alone(&db.pool, &seen, &audit("alone-stale"), Some(before)).await;
        assert!(matches!(alone_stale, Err(StoreError::ClientChanged)));
        assert!(alone(&db.pool, &seen, &audit("alone-current"), Some(after))
            .await
            .expect("alone"));
        let alone_rows = count(
            db,
            "SELECT COUNT(*) AS n FROM audit_events WHERE jti LIKE 'alone-%'",
        )
        .await;
        assert_eq!(alone_rows, 1);
        // An UPDATE and a DELETE move it too; a batch of only stale writes
        // writes nothing.
        sqlx::query("UPDATE clients SET scopes = '[\"x\"]' WHERE client_id = 'c1'")
            .execute(&db.pool)
            .await
            .expect("update");
        let updated = generation(db).await;
        assert!(updated > after, "an UPDATE moves the counter");
        sqlx::query("DELETE FROM clients WHERE client_id = 'c1'")
            .execute(&db.pool)
            .await
            .expect("delete");
        let deleted = generation(db).await;
        assert!(deleted > updated, "a DELETE moves the counter");
        let batch: Vec<Queued> = vec![(audit("late"), Some(updated), oneshot::channel().0)];
        let done = commit(&db.pool, &seen, &batch).await.expect("commit");
        assert!(matches!(done.as_slice(), [Err(StoreError::ClientChanged)]));
        assert_eq!(
            count(
                db,
                "SELECT COUNT(*) AS n FROM audit_events WHERE jti = 'late'"
            )
            .await,
            0
        );
    }

    #[tokio::test]
    async fn a_write_as_of_a_moved_client_generation_is_refused_and_writes_nothing() {
        on_each_database(writes_as_of_a_moved_generation).await;
    }

    #[tokio::test]
    async fn in_one_batch_a_key_is_new_once_and_a_recorded_key_is_a_replay() {
        on_each_database(replay_keys_in_one_batch).await;
    }

    #[tokio::test]
    async fn a_failing_batch_falls_back_to_single_writes_and_reports_each_error() {
        let (_dir, db) = sqlite().await;
        // Without its table the jti row fails, and with it the batch.
        sqlx::query("DROP TABLE dpop_jtis")
            .execute(&db.pool)
            .await
            .expect("drop");
        let good = Write::ProofJti {
            key: "fine".into(),
            until: 1,
        };
        let (tx1, rx1) = oneshot::channel();
        let (tx2, rx2) = oneshot::channel();
        let (queue, rx) = mpsc::channel(8);
        queue
            .send((
                Write::Audit(AuditEvent::new("probe", UnixTime(1))),
                None,
                tx1,
            ))
            .await
            .expect("send");
        queue.send((good, None, tx2)).await.expect("send");
        drop(queue);
        run(db.pool.clone(), Arc::default(), rx).await;
        assert!(
            rx1.await
                .expect("answered")
                .expect("the audit row commits alone"),
            "the audit row is written"
        );
        assert!(rx2.await.expect("answered").is_err(), "the jti row fails");
        let audited = count(
            &db,
            "SELECT COUNT(*) AS n FROM audit_events WHERE event = 'probe'",
        )
        .await;
        assert_eq!(audited, 1, "written once, not lost with the failed batch");
    }
}
