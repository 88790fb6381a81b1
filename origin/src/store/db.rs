//! Storage: one sqlx `Any` pool over SQLite or PostgreSQL, from one code path.
//!
//! Queries use `$1` placeholders (both drivers accept them), integers are
//! `BIGINT`/`i64`, booleans are stored as 0/1, lists as JSON text — the
//! subset of types the `Any` driver maps identically on both backends.

pub use crate::store::error::StoreError;
use crate::store::group_commit::GroupCommit;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor as _, Row as _};
use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::Notify;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Which database is behind the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite (WAL).
    Sqlite,
    /// PostgreSQL (several replicas may share it).
    Postgres,
}

/// A database handle: cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    /// The pool.
    pub pool: AnyPool,
    /// The backend.
    pub backend: Backend,
    /// Group commit for the token path's single-row writes (audit rows,
    /// DPoP replay keys): see [`crate::store::group_commit`].
    pub group: GroupCommit,
    /// Woken after every committed outbox row, so this process's revocation
    /// pusher starts at once (rows from other processes are found by polling).
    pub outbox_notify: Arc<Notify>,
    /// The process's metrics: writes that count (revocations, logins,
    /// refresh reuse) count where they are made; `AppState` shares it.
    pub metrics: Arc<crate::support::metrics::Metrics>,
    /// The highest `client_generation` read by this process (the group
    /// commit and client reads note it; the client cache compares to it).
    pub client_generation: Arc<crate::store::client_generation::Seen>,
}

impl Db {
    /// Connects (creating a SQLite file and its directory if needed).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with_schema(url, None).await
    }

    /// Connects with every PostgreSQL connection's `search_path` set to `schema`
    /// (created if absent): tests use this to get a schema of their own. Only
    /// with the `testkit` feature.
    #[cfg(any(test, feature = "testkit"))]
    pub async fn connect_in_schema(url: &str, schema: Option<&str>) -> Result<Self, StoreError> {
        Self::connect_with_schema(url, schema).await
    }

    async fn connect_with_schema(url: &str, schema: Option<&str>) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let mut url = url.to_owned();
        let mut max = 10;
        if backend == Backend::Sqlite {
            if let Some(path) = sqlite_file(&url) {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|source| StoreError::Directory {
                        path: dir.display().to_string(),
                        source,
                    })?;
                }
                if !url.contains("mode=") {
                    url.push(if url.contains('?') { '&' } else { '?' });
                    url.push_str("mode=rwc");
                }
            } else {
                max = 1;
            }
        }
        if let (Backend::Postgres, Some(schema)) = (backend, schema) {
            let admin = AnyPoolOptions::new()
                .max_connections(1)
                .connect(&url)
                .await?;
            admin
                .execute(format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"").as_str())
                .await?;
            admin.close().await;
        }
        let set_path = schema.map(|s| format!("SET search_path TO \"{s}\""));
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            // A SQLite connection is a file handle in this process: it does not
            // go stale, so the liveness ping sqlx sends on every acquire (a
            // round trip to the connection's worker thread, about a third of
            // the token endpoint's thread hops) buys nothing there.
            .test_before_acquire(backend == Backend::Postgres)
            .after_connect(move |conn, _meta| {
                let set_path = set_path.clone();
                Box::pin(async move {
                    match backend {
                        Backend::Sqlite => {
                            conn.execute("PRAGMA busy_timeout = 5000").await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                        }
                        Backend::Postgres => {
                            if let Some(sql) = &set_path {
                                conn.execute(sql.as_str()).await?;
                            }
                        }
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        if backend == Backend::Sqlite && max > 1 {
            pool.execute("PRAGMA journal_mode = WAL").await?;
        }
        let client_generation = Arc::default();
        Ok(Self {
            group: GroupCommit::start(
                pool.clone(),
                Arc::clone(&client_generation),
                backend == Backend::Sqlite,
            ),
            client_generation,
            pool,
            backend,
            outbox_notify: Arc::new(Notify::new()),
            metrics: Arc::default(),
        })
    }

    /// Applies pending migrations for this backend.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await?,
        }
        Ok(())
    }

    /// One round trip (`SELECT 1`), for readiness.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Connects and migrates.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let db = Self::connect(url).await?;
        db.migrate().await?;
        Ok(db)
    }
}

/// The file a `sqlite:` URL names (`None`: not SQLite, or in memory).
#[must_use]
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite:")?.trim_start_matches("//");
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| Path::new(path).to_path_buf())
}

/// A multi-row statement (the group commit's batches) in a few shapes:
/// chunk sizes are powers of two (at most 128 rows), so a connection's
/// statement cache holds a few shapes per statement, not one per batch size.
pub struct MultiRow {
    head: &'static str,
    cols: usize,
    tail: &'static str,
    shapes: [std::sync::OnceLock<String>; 8],
}

impl MultiRow {
    /// `head` + `n` rows of `cols` placeholders (`$1`…, which SQLite and
    /// PostgreSQL both take) + `tail`.
    pub const fn new(head: &'static str, cols: usize, tail: &'static str) -> Self {
        Self {
            head,
            cols,
            tail,
            shapes: [const { std::sync::OnceLock::new() }; 8],
        }
    }

    /// `items` in chunks, each with its statement: chunk lengths are powers
    /// of two, at most [`MultiRow::max_rows`] (about 500 parameters).
    pub fn chunks<'a, T>(
        &'a self,
        items: &'a [T],
    ) -> impl Iterator<Item = (&'a [T], Cow<'a, str>)> {
        power_of_two_chunks(items, self.max_rows()).map(|c| (c, self.sql(c.len())))
    }

    /// The most rows in one statement: the largest power of two keeping it
    /// within 512 parameters, at most 128.
    pub fn max_rows(&self) -> usize {
        max_rows_for(self.cols)
    }

    /// The statement for `n` rows.
    fn sql(&self, n: usize) -> Cow<'_, str> {
        let build = || {
            let rows: Vec<String> = (0..n)
                .map(|r| {
                    let cells: Vec<String> = (1..=self.cols)
                        .map(|c| format!("${}", r * self.cols + c))
                        .collect();
                    format!("({})", cells.join(", "))
                })
                .collect();
            format!("{} {}{}", self.head, rows.join(", "), self.tail)
        };
        match self.shapes.get(n.trailing_zeros() as usize) {
            Some(cell) if n.is_power_of_two() => Cow::Borrowed(cell.get_or_init(build)),
            _ => Cow::Owned(build()),
        }
    }
}

/// [`MultiRow::max_rows`] for statements with `params` parameters per row.
pub fn max_rows_for(params: usize) -> usize {
    let n = (512 / params.max(1)).max(1);
    (1usize << (usize::BITS - 1 - n.leading_zeros())).min(128)
}

/// `items` cut into runs whose lengths are powers of two, at most `max`
/// (a power of two), longest first: few statement shapes per batch size.
pub fn power_of_two_chunks<T>(items: &[T], max: usize) -> impl Iterator<Item = &[T]> {
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let p = 1usize << (usize::BITS - 1 - rest.len().leading_zeros());
        let (chunk, tail) = rest.split_at(p.min(max));
        rest = tail;
        Some(chunk)
    })
}

/// Reads a JSON list-of-strings column.
pub fn json_list(row: &AnyRow, column: &'static str) -> Result<Vec<String>, StoreError> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|_| StoreError::Corrupt { column })
}

/// Encodes a list of strings for a JSON list column.
#[must_use]
pub fn to_json_list(items: &[String]) -> String {
    serde_json::Value::from(items.to_vec()).to_string()
}

/// Reads a JSON list column of values with their own serde names.
pub fn json_values<T: serde::de::DeserializeOwned>(
    row: &AnyRow,
    column: &'static str,
) -> Result<Vec<T>, StoreError> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|_| StoreError::Corrupt { column })
}

/// Encodes a list for a JSON list column (as [`to_json_list`] does for strings).
#[must_use]
pub fn to_json_values<T: serde::Serialize>(items: &[T]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned())
}

/// Reads a 0/1 column.
pub fn flag(row: &AnyRow, column: &'static str) -> Result<bool, StoreError> {
    Ok(row.try_get::<i64, _>(column)? != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_powers_of_two_longest_first_within_the_parameter_budget() {
        let items: Vec<u32> = (0..100).collect();
        let lens: Vec<usize> = power_of_two_chunks(&items, 64).map(<[u32]>::len).collect();
        assert_eq!(lens, [64, 32, 4]);
        assert_eq!(power_of_two_chunks::<u32>(&[], 64).count(), 0);
        assert_eq!(
            (max_rows_for(7), max_rows_for(10), max_rows_for(2)),
            (64, 32, 128)
        );
        let insert = MultiRow::new("INSERT INTO t (a, b) VALUES", 2, " RETURNING a");
        let (chunk, sql) = insert.chunks(&items[..3]).next().expect("a chunk");
        assert_eq!(chunk, [0, 1]);
        assert_eq!(
            sql,
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) RETURNING a"
        );
    }
}
