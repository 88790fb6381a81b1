//! The audit log: who did what, when, from where — never a token or secret value.

use crate::store::db::{Db, MultiRow, StoreError};
use gatehouse_common::UnixTime;
use serde::Serialize;
use sqlx::Row as _;

/// One audit event to record.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct AuditEvent {
    /// Row id (0 before insertion).
    pub id: i64,
    /// When.
    pub at: i64,
    /// `token_issued`, `authentication_failed`, `token_revoked`, `key_rotated`, `client_created`, …
    pub event: String,
    /// The client concerned.
    pub client_id: Option<String>,
    /// The subject concerned.
    pub subject: Option<String>,
    /// The token id concerned (an identifier, not the token).
    pub jti: Option<String>,
    /// The caller's IP address.
    pub source_ip: Option<String>,
    /// A short, non-secret note.
    pub detail: Option<String>,
    /// The request this row came from (`Gatehouse-Request-Id`), when known.
    pub request_id: Option<String>,
}

impl AuditEvent {
    /// A new event of `kind` at `now`, of the request this task serves
    /// (`support::request::current_request_id`), if any.
    #[must_use]
    pub fn new(kind: &str, now: UnixTime) -> Self {
        Self {
            event: kind.to_owned(),
            at: now.0,
            request_id: crate::support::request::current_request_id(),
            ..Self::default()
        }
    }
    /// Sets the client.
    #[must_use]
    pub fn client(mut self, c: &str) -> Self {
        self.client_id = Some(c.to_owned());
        self
    }
    /// Sets the subject.
    #[must_use]
    pub fn subject(mut self, s: &str) -> Self {
        self.subject = Some(s.to_owned());
        self
    }
    /// Sets the token id.
    #[must_use]
    pub fn jti(mut self, j: &str) -> Self {
        self.jti = Some(j.to_owned());
        self
    }
    /// Sets the source IP.
    #[must_use]
    pub fn ip(mut self, ip: Option<std::net::IpAddr>) -> Self {
        self.source_ip = ip.map(|i| i.to_string());
        self
    }
    /// Sets the detail.
    #[must_use]
    pub fn detail(mut self, d: impl Into<String>) -> Self {
        self.detail = Some(d.into());
        self
    }
}

/// Records an event.
pub async fn record<'c, E>(exec: E, e: &AuditEvent) -> Result<(), StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO audit_events (at, event, client_id, subject, jti, source_ip, detail, request_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(e.at)
    .bind(&e.event)
    .bind(e.client_id.clone())
    .bind(e.subject.clone())
    .bind(e.jti.clone())
    .bind(e.source_ip.clone())
    .bind(e.detail.clone())
    .bind(e.request_id.clone())
    .execute(exec)
    .await?;
    Ok(())
}

/// Records `events` in order, in as few statements as it can (multi-row
/// INSERTs): for the group commit, where each statement is a round trip to
/// the database (a thread hop to SQLite's worker, a network round trip to
/// PostgreSQL).
pub async fn record_many(
    conn: &mut sqlx::AnyConnection,
    events: &[&AuditEvent],
) -> Result<(), StoreError> {
    static INSERT: MultiRow = MultiRow::new(
        "INSERT INTO audit_events (at, event, client_id, subject, jti, source_ip, detail, request_id) VALUES",
        8,
        "",
    );
    for (chunk, sql) in INSERT.chunks(events) {
        let mut query = sqlx::query(&sql);
        for e in chunk {
            query = query
                .bind(e.at)
                .bind(e.event.clone())
                .bind(e.client_id.clone())
                .bind(e.subject.clone())
                .bind(e.jti.clone())
                .bind(e.source_ip.clone())
                .bind(e.detail.clone())
                .bind(e.request_id.clone());
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Which audit rows to list: every set field must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// The event kind (`login_failed`, `token_issued`, …).
    pub kind: Option<String>,
    /// The client concerned.
    pub client_id: Option<String>,
    /// The subject concerned.
    pub subject: Option<String>,
    /// At or after this time (Unix seconds).
    pub since: Option<i64>,
    /// At or before this time (Unix seconds).
    pub until: Option<i64>,
    /// The request the row came from.
    pub request_id: Option<String>,
    /// The token id concerned (the `jti` an edge log line names).
    pub jti: Option<String>,
}

impl AuditFilter {
    /// Only `client_id`'s events.
    #[must_use]
    pub fn client(client_id: &str) -> Self {
        Self {
            client_id: Some(client_id.to_owned()),
            ..Self::default()
        }
    }
}

/// The newest `limit` events matching `filter`, newest first.
pub async fn list(
    db: &Db,
    limit: i64,
    filter: &AuditFilter,
) -> Result<Vec<AuditEvent>, StoreError> {
    let mut sql = String::from(
        "SELECT id, at, event, client_id, subject, jti, source_ip, detail, request_id \
         FROM audit_events WHERE 1 = 1",
    );
    let mut texts: Vec<String> = Vec::new();
    let mut n = 0usize;
    for (column, value) in [
        ("event", &filter.kind),
        ("client_id", &filter.client_id),
        ("subject", &filter.subject),
        ("request_id", &filter.request_id),
        ("jti", &filter.jti),
    ] {
        if let Some(v) = value {
            n += 1;
            sql.push_str(&format!(" AND {column} = ${n}"));
            texts.push(v.clone());
        }
    }
    let mut times: Vec<i64> = Vec::new();
    for (op, value) in [(">=", filter.since), ("<=", filter.until)] {
        if let Some(t) = value {
            n += 1;
            sql.push_str(&format!(" AND at {op} ${n}"));
            times.push(t);
        }
    }
    n += 1;
    sql.push_str(&format!(" ORDER BY id DESC LIMIT ${n}"));
    let mut query = sqlx::query(&sql);
    for t in texts {
        query = query.bind(t);
    }
    for t in times {
        query = query.bind(t);
    }
    let rows = query.bind(limit).fetch_all(&db.pool).await?;
    rows.iter()
        .map(|r| {
            Ok(AuditEvent {
                id: r.try_get("id")?,
                at: r.try_get("at")?,
                event: r.try_get("event")?,
                client_id: r.try_get("client_id")?,
                subject: r.try_get("subject")?,
                jti: r.try_get("jti")?,
                source_ip: r.try_get("source_ip")?,
                detail: r.try_get("detail")?,
                request_id: r.try_get("request_id")?,
            })
        })
        .collect()
}
