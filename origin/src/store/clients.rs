//! The `clients` table: registered clients as stored rows (secrets only as
//! SHA-256 hashes; lists as JSON text), and deleting a client together with
//! the revocation of every token issued to it.

use crate::store::db::{flag, json_list, to_json_list, Db, StoreError};
use crate::store::revocation::{self, CoverSpan};
use gatehouse_common::revocation::RevocationKind;
use gatehouse_common::UnixTime;
use sqlx::any::AnyRow;
use sqlx::Row as _;

/// A `clients` row. Grant types are their wire names (the domain parses
/// them into `GrantType`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientRow {
    /// `client_id`.
    pub client_id: String,
    /// `name`.
    pub name: String,
    /// `is_public`.
    pub public: bool,
    /// `secret_hash`.
    pub secret_hash: Option<Vec<u8>>,
    /// `previous_secret_hash`.
    pub previous_secret_hash: Option<Vec<u8>>,
    /// `previous_secret_expires_at`.
    pub previous_secret_expires_at: Option<i64>,
    /// `redirect_uris`.
    pub redirect_uris: Vec<String>,
    /// `grant_types` (wire names).
    pub grant_types: Vec<String>,
    /// `scopes`.
    pub scopes: Vec<String>,
    /// `audiences`.
    pub audiences: Vec<String>,
    /// `dpop_required`.
    pub dpop_required: bool,
    /// `jwks`.
    pub jwks: Option<String>,
    /// `serves`.
    pub serves: Vec<String>,
    /// `legacy_assertion_audience`.
    pub legacy_assertion_audience: bool,
    /// `post_logout_redirect_uris`.
    pub post_logout_redirect_uris: Vec<String>,
    /// `require_pushed_authorization_requests`.
    pub require_pushed_authorization_requests: bool,
    /// `created_at`.
    pub created_at: i64,
    /// `updated_at`.
    pub updated_at: i64,
}

fn from_row(row: &AnyRow) -> Result<ClientRow, StoreError> {
    Ok(ClientRow {
        client_id: row.try_get("client_id")?,
        name: row.try_get("name")?,
        public: flag(row, "is_public")?,
        secret_hash: row.try_get("secret_hash")?,
        previous_secret_hash: row.try_get("previous_secret_hash")?,
        previous_secret_expires_at: row.try_get("previous_secret_expires_at")?,
        redirect_uris: json_list(row, "redirect_uris")?,
        grant_types: json_list(row, "grant_types")?,
        scopes: json_list(row, "scopes")?,
        audiences: json_list(row, "audiences")?,
        dpop_required: flag(row, "dpop_required")?,
        jwks: row.try_get("jwks")?,
        serves: json_list(row, "serves")?,
        legacy_assertion_audience: flag(row, "legacy_assertion_audience")?,
        post_logout_redirect_uris: json_list(row, "post_logout_redirect_uris")?,
        require_pushed_authorization_requests: flag(row, "require_pushed_authorization_requests")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const COLUMNS: &str = "client_id, name, is_public, secret_hash, previous_secret_hash, \
     previous_secret_expires_at, redirect_uris, grant_types, scopes, audiences, \
     dpop_required, jwks, serves, legacy_assertion_audience, created_at, updated_at, \
     require_pushed_authorization_requests, post_logout_redirect_uris";

/// Inserts a new client row.
pub async fn insert(db: &Db, client: &ClientRow) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO clients ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
    ))
    .bind(&client.client_id)
    .bind(&client.name)
    .bind(i64::from(client.public))
    .bind(client.secret_hash.clone())
    .bind(client.previous_secret_hash.clone())
    .bind(client.previous_secret_expires_at)
    .bind(to_json_list(&client.redirect_uris))
    .bind(to_json_list(&client.grant_types))
    .bind(to_json_list(&client.scopes))
    .bind(to_json_list(&client.audiences))
    .bind(i64::from(client.dpop_required))
    .bind(client.jwks.clone())
    .bind(to_json_list(&client.serves))
    .bind(i64::from(client.legacy_assertion_audience))
    .bind(client.created_at)
    .bind(client.updated_at)
    .bind(i64::from(client.require_pushed_authorization_requests))
    .bind(to_json_list(&client.post_logout_redirect_uris))
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// The row of `client_id`.
pub async fn get(db: &Db, client_id: &str) -> Result<Option<ClientRow>, StoreError> {
    static SQL: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| format!("SELECT {COLUMNS} FROM clients WHERE client_id = $1"));
    let row = sqlx::query(SQL.as_str())
        .bind(client_id)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The row of `client_id` with the `client_generation` it is current at,
/// read in one statement (one snapshot), for the client cache; the
/// generation is noted in [`Db::client_generation`].
pub async fn get_with_generation(
    db: &Db,
    client_id: &str,
) -> Result<Option<(ClientRow, i64)>, StoreError> {
    // Built once: every token request that misses the cache reads its client.
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT {COLUMNS}, (SELECT n FROM client_generation WHERE id = 1) AS generation \
             FROM clients WHERE client_id = $1"
        )
    });
    let row = sqlx::query(SQL.as_str())
        .bind(client_id)
        .fetch_optional(&db.pool)
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let generation: i64 = row.try_get("generation")?;
    db.client_generation.observe(generation);
    Ok(Some((from_row(&row)?, generation)))
}

/// Every row, oldest first.
pub async fn list(db: &Db) -> Result<Vec<ClientRow>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM clients ORDER BY created_at, client_id"
    ))
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(from_row).collect()
}

/// The audiences `client_id` may ask for (`None`: no such client); a
/// corrupt row is an error.
pub async fn audiences(db: &Db, client_id: &str) -> Result<Option<Vec<String>>, StoreError> {
    let row = sqlx::query("SELECT audiences FROM clients WHERE client_id = $1")
        .bind(client_id)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(|r| json_list(r, "audiences")).transpose()
}

/// Deletes a client and, in the same transaction, records a `client_id`
/// revocation (with its outbox row) covering every token issued to it.
/// `false` if it did not exist.
pub async fn delete_and_revoke(
    db: &Db,
    client_id: &str,
    span: CoverSpan,
    reason: &str,
    now: UnixTime,
) -> Result<bool, StoreError> {
    let mut tx = db.pool.begin().await?;
    let r = sqlx::query("DELETE FROM clients WHERE client_id = $1")
        .bind(client_id)
        .execute(&mut *tx)
        .await?;
    if r.rows_affected() == 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    revocation::revoke_in(
        &mut tx,
        RevocationKind::ClientId,
        client_id,
        now.0.saturating_add(span.secs()),
        reason,
        now,
    )
    .await?;
    tx.commit().await?;
    db.metrics.revocation(RevocationKind::ClientId.name());
    db.outbox_notify.notify_one();
    Ok(true)
}

/// What [`rotate_secret`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretRotation {
    /// The new hash is current, the old one the previous.
    Rotated,
    /// The client is public (it has no secret); nothing changed.
    Public,
    /// No such client.
    Missing,
}

/// Moves the current secret hash to the previous slot (valid until
/// `previous_expires_at`) and stores `new_hash`, in one atomic UPDATE, so
/// concurrent rotations never lose a secret they handed out.
pub async fn rotate_secret(
    db: &Db,
    client_id: &str,
    new_hash: &[u8],
    previous_expires_at: i64,
    now: UnixTime,
) -> Result<SecretRotation, StoreError> {
    let mut tx = db.pool.begin().await?;
    let r = sqlx::query(
        "UPDATE clients SET previous_secret_hash = secret_hash, secret_hash = $1, \
         previous_secret_expires_at = $2, updated_at = $3 WHERE client_id = $4 AND is_public = 0",
    )
    .bind(new_hash.to_vec())
    .bind(previous_expires_at)
    .bind(now.0)
    .bind(client_id)
    .execute(&mut *tx)
    .await?;
    if r.rows_affected() > 0 {
        tx.commit().await?;
        return Ok(SecretRotation::Rotated);
    }
    let exists = sqlx::query("SELECT client_id FROM clients WHERE client_id = $1")
        .bind(client_id)
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
    tx.rollback().await?;
    Ok(if exists {
        SecretRotation::Public
    } else {
        SecretRotation::Missing
    })
}
