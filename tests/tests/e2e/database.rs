//! Direct access to an origin's database from tests, through the database's
//! own client (`sqlite3`, `psql`): a fresh PostgreSQL database per test,
//! queries for assertions, and integrity checks after crashes.

use crate::harness::free_port;
use std::process::Command;

/// The PostgreSQL server for a PostgreSQL-only test
/// (`GATEHOUSE_TEST_DATABASE_URL`). Unset, the caller skips and this reports
/// it: a `SKIPPED: <test>: …` line straight to stderr (past libtest's capture)
/// that scripts/test counts and subtracts from the passed tests. Under
/// `CI=true` (CI machines have PostgreSQL at 127.0.0.1:5432) it panics: a
/// missing database there is a failure, not a skip.
pub fn postgres_url() -> Option<String> {
    use std::io::Write as _;
    if let Some(url) = std::env::var("GATEHOUSE_TEST_DATABASE_URL")
        .ok()
        .filter(|v| !v.is_empty())
    {
        return Some(url);
    }
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("unnamed test");
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: GATEHOUSE_TEST_DATABASE_URL is unset and CI=true: CI must run the \
         PostgreSQL tests (e.g. GATEHOUSE_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test)"
    );
    let line = format!("\nSKIPPED: {test}: GATEHOUSE_TEST_DATABASE_URL unset\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
    None
}

/// A PostgreSQL database of the test's own, dropped once everything using it
/// has stopped.
pub struct Database {
    admin_url: String,
    name: String,
    /// Its URL.
    pub url: String,
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .arg(&self.admin_url)
            .args([
                "-qc",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .output();
    }
}

/// Creates a fresh database on the server at `base_url`; `tag` goes into its name.
pub fn fresh_database(base_url: &str, tag: &str) -> Database {
    let name = format!("gh_{tag}_{}_{}", std::process::id(), free_port());
    let out = Command::new("psql")
        .arg(base_url)
        .args([
            "-v",
            "ON_ERROR_STOP=1",
            "-qc",
            &format!("CREATE DATABASE {name}"),
        ])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "CREATE DATABASE failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let base = base_url.rsplit_once('/').map_or(base_url, |(b, _)| b);
    let url = format!("{base}/{name}");
    Database {
        admin_url: base_url.to_owned(),
        name,
        url,
    }
}

/// Runs `sql` against the origin database at `database_url` (`sqlite://…`
/// or `postgres://…`) and returns its rows, columns split on `|`.
pub fn query(database_url: &str, sql: &str) -> Vec<Vec<String>> {
    let out = if let Some(rest) = database_url.strip_prefix("sqlite:") {
        let path = rest.trim_start_matches("//");
        let path = path.split('?').next().unwrap_or_default();
        Command::new("sqlite3")
            .args(["-batch", "-bail", "-cmd", ".timeout 10000", path, sql])
            .output()
            .expect("run sqlite3")
    } else {
        Command::new("psql")
            .arg(database_url)
            .args(["-v", "ON_ERROR_STOP=1", "-qAt", "-F", "|", "-c", sql])
            .output()
            .expect("run psql")
    };
    assert!(
        out.status.success(),
        "query {sql:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split('|').map(str::to_owned).collect())
        .collect()
}

/// One number from `sql`.
pub fn count(database_url: &str, sql: &str) -> i64 {
    let rows = query(database_url, sql);
    rows.first()
        .and_then(|r| r.first())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{sql:?} gave no number: {rows:?}"))
}

/// Consistency rules of the origin's schema that must hold after any crash,
/// each a query returning the offending rows; the name says what is wrong.
const CONSISTENCY: &[(&str, &str)] = &[
    (
        "a delivered outbox row without the version that carried it",
        "SELECT id FROM outbox WHERE delivered_at IS NOT NULL AND version IS NULL",
    ),
    (
        "an outbox row delivered by a version the pusher never assigned or acknowledged",
        "SELECT o.id FROM outbox o, revocation_push p WHERE o.version IS NOT NULL \
         AND (o.version > p.version OR o.version > p.delivered_version)",
    ),
    (
        "an acknowledged version above the last assigned one",
        "SELECT id FROM revocation_push WHERE delivered_version > version",
    ),
    (
        "a revocation without its outbox row",
        "SELECT r.id FROM revocations r WHERE NOT EXISTS (SELECT 1 FROM outbox o \
         WHERE o.topic = 'revocation' AND o.payload LIKE '%\"value\":\"' || r.value || '\"%')",
    ),
    (
        "two live refresh tokens in one family (a fork of the chain)",
        "SELECT family_id FROM refresh_tokens WHERE rotated_at IS NULL AND revoked_at IS NULL \
         GROUP BY family_id HAVING COUNT(*) > 1",
    ),
    (
        "a family whose rotations do not form one chain (rows != rotated rows + 1)",
        "SELECT family_id FROM refresh_tokens GROUP BY family_id \
         HAVING COUNT(*) <> 1 + SUM(CASE WHEN rotated_at IS NULL THEN 0 ELSE 1 END)",
    ),
    (
        "a refresh family revoked only in part",
        "SELECT family_id FROM refresh_tokens GROUP BY family_id \
         HAVING SUM(CASE WHEN revoked_at IS NULL THEN 0 ELSE 1 END) > 0 \
         AND SUM(CASE WHEN revoked_at IS NULL AND rotated_at IS NULL THEN 1 ELSE 0 END) > 0",
    ),
    (
        "a revoked refresh family without its sid revocation",
        "SELECT DISTINCT t.family_id FROM refresh_tokens t WHERE t.revoked_at IS NOT NULL \
         AND NOT EXISTS (SELECT 1 FROM revocations r WHERE r.kind = 'sid' AND r.value = t.family_id)",
    ),
    (
        "more than one key signing from the same instant",
        "SELECT active_at FROM signing_keys WHERE removed_at IS NULL GROUP BY active_at HAVING COUNT(*) > 1",
    ),
];

/// Checks the database: SQLite's own `integrity_check` and
/// `foreign_key_check`, then [`CONSISTENCY`] on either backend. Returns
/// the checks run; panics naming every violation.
pub fn assert_consistent(database_url: &str) -> usize {
    let mut problems = Vec::new();
    let mut checks = 0;
    if database_url.starts_with("sqlite:") {
        let integrity = query(database_url, "PRAGMA integrity_check");
        checks += 1;
        if integrity != vec![vec!["ok".to_owned()]] {
            problems.push(format!("PRAGMA integrity_check: {integrity:?}"));
        }
        let fk = query(database_url, "PRAGMA foreign_key_check");
        checks += 1;
        if !fk.is_empty() {
            problems.push(format!("PRAGMA foreign_key_check: {fk:?}"));
        }
    }
    for (what, sql) in CONSISTENCY {
        let rows = query(database_url, sql);
        checks += 1;
        if !rows.is_empty() {
            problems.push(format!("{what}: {rows:?}"));
        }
    }
    assert!(problems.is_empty(), "database inconsistent:\n{problems:#?}");
    checks
}
