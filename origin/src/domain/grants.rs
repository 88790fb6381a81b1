//! The user-facing grants: single-use authorization codes (PKCE S256,
//! optionally DPoP-bound, RFC 9449 §10) and rotating refresh tokens with
//! reuse detection. Nothing here reads a clock: `now` comes from the request.

use crate::domain::clients::Client;
use crate::domain::error::Error;
use crate::domain::keys::KeyStoreError;
use crate::domain::state::AppState;
use crate::domain::token::{sign_access_token, AccessTokenClaims, RequestContext, TokenResponse};
use crate::store::audit::{self, AuditEvent};
use crate::store::db::DbError;
use crate::store::group_commit::Write;
use crate::store::refresh_tokens::{insert_row, RefreshRow, Rotation};
use crate::store::revocation;
use crate::support::secret::{ct_eq, random_id, AuthCode, RefreshToken};
use gatehouse_common::b64;
use gatehouse_common::revocation::RevocationKind;
use gatehouse_common::UnixTime;
use sha2::{Digest as _, Sha256};
use sqlx::Row as _;

/// How long an authorization code is valid, seconds.
pub const CODE_TTL_SECS: i64 = 60;

/// What a user approved at `/authorize`, to be bound into a code.
#[derive(Clone, Debug)]
pub struct CodeGrant {
    /// The client.
    pub client_id: String,
    /// The user (the tokens' `sub`).
    pub user_id: String,
    /// The exact redirect URI used.
    pub redirect_uri: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// The audience of the tokens.
    pub audience: String,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// `dpop_jkt` from the authorization request, if any.
    pub dpop_jkt: Option<String>,
}

/// Stores a fresh single-use code for `grant`; returns it (shown once, in the redirect).
pub async fn issue_code(
    state: &AppState,
    grant: &CodeGrant,
    now: UnixTime,
) -> Result<AuthCode, Error> {
    let code = AuthCode::generate()?;
    sqlx::query(
        "INSERT INTO auth_codes (code_hash, client_id, user_id, redirect_uri, scope, audience, \
         code_challenge, dpop_jkt, sid, created_at, expires_at, used_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL)",
    )
    .bind(code.hash_b64())
    .bind(&grant.client_id)
    .bind(&grant.user_id)
    .bind(&grant.redirect_uri)
    .bind(grant.scopes.join(" "))
    .bind(&grant.audience)
    .bind(&grant.code_challenge)
    .bind(grant.dpop_jkt.clone())
    .bind(random_id()?)
    .bind(now.0)
    .bind(now.0.saturating_add(CODE_TTL_SECS))
    .execute(&state.db.pool)
    .await?;
    Ok(code)
}

/// RFC 7636 §4.1: `code_verifier = 43*128unreserved`.
fn valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// RFC 7636 §4.6: `BASE64URL(SHA256(ASCII(code_verifier))) == code_challenge`.
fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let computed = b64::encode(&Sha256::digest(verifier.as_bytes()));
    ct_eq(computed.as_bytes(), challenge.as_bytes())
}

/// The `authorization_code` request at `/token`.
#[derive(Clone, Copy, Debug)]
pub struct CodeRedemption<'a> {
    /// `code`.
    pub code: &'a str,
    /// `redirect_uri`.
    pub redirect_uri: Option<&'a str>,
    /// `code_verifier`.
    pub code_verifier: Option<&'a str>,
    /// The verified DPoP proof's key thumbprint.
    pub jkt: Option<&'a str>,
}

/// Whose grants to end (see [`end_grants`]).
#[derive(Clone, Copy, Debug)]
pub enum GrantsOf<'a> {
    /// One grant: the refresh family and the code it came from (`sid`).
    Family(&'a str),
    /// Every grant of a user (`sub`).
    User(&'a str),
    /// Every grant to a client (`client_id`).
    Client(&'a str),
}

impl<'a> GrantsOf<'a> {
    /// The grants a `sid`, `sub` or `client_id` revocation of `value` names
    /// (`None` for a `jti`, which names one access token).
    #[must_use]
    pub fn named_by(kind: RevocationKind, value: &'a str) -> Option<Self> {
        match kind {
            RevocationKind::Sid => Some(Self::Family(value)),
            RevocationKind::Sub => Some(Self::User(value)),
            RevocationKind::ClientId => Some(Self::Client(value)),
            RevocationKind::Jti => None,
        }
    }

    /// The revocation entry that covers these grants' access tokens.
    #[must_use]
    pub fn kind(self) -> RevocationKind {
        match self {
            Self::Family(_) => RevocationKind::Sid,
            Self::User(_) => RevocationKind::Sub,
            Self::Client(_) => RevocationKind::ClientId,
        }
    }

    /// The identifier.
    #[must_use]
    pub fn value(self) -> &'a str {
        match self {
            Self::Family(v) | Self::User(v) | Self::Client(v) => v,
        }
    }

    /// The column naming the owner, in `refresh_tokens` and in `auth_codes`.
    fn columns(self) -> (&'static str, &'static str) {
        match self {
            Self::Family(_) => ("family_id", "sid"),
            Self::User(_) => ("user_id", "user_id"),
            Self::Client(_) => ("client_id", "client_id"),
        }
    }
}

/// Ends grants inside the caller's transaction: a user's browser sessions
/// are ended, their outstanding codes are marked used (a later redemption
/// is refused as a replay) and every refresh token of theirs is revoked.
/// Returns the latest time a token was issued from them, at least `now`:
/// the `revoked_at` whose revocation entry covers every access token they
/// gave.
///
/// Codes come first: a redemption in flight holds its code's row until it
/// commits together with its refresh token (see [`redeem_code`]), so once
/// the code UPDATE has waited for it, the passes below see that token.
pub async fn end_grants(
    conn: &mut sqlx::AnyConnection,
    of: GrantsOf<'_>,
    now: UnixTime,
) -> Result<UnixTime, DbError> {
    let (refresh_col, code_col) = of.columns();
    let value = of.value();
    // A user's browser sessions would hand out new codes without a
    // password: ending the user's grants logs them out (an `/authorize`
    // that read a session just before inserts a code that the revocation
    // entry refuses at redemption).
    if let GrantsOf::User(user_id) = of {
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query(&format!(
        "UPDATE auth_codes SET used_at = $1 WHERE {code_col} = $2 AND used_at IS NULL"
    ))
    .bind(now.0)
    .bind(value)
    .execute(&mut *conn)
    .await?;
    // Until a pass finds nothing: under PostgreSQL's READ COMMITTED, a
    // rotation that commits while this UPDATE waits for its row lock has
    // inserted a successor that the statement's snapshot cannot see, and
    // that token would stay usable in a revoked grant. Each pass revokes
    // what the last one could not see; a revoked token cannot be rotated,
    // so the passes end.
    let revoke = format!(
        "UPDATE refresh_tokens SET revoked_at = $1 WHERE {refresh_col} = $2 AND revoked_at IS NULL"
    );
    loop {
        let revoked = sqlx::query(&revoke)
            .bind(now.0)
            .bind(value)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        if revoked == 0 {
            break;
        }
    }
    // A rotation or redemption that committed just before may have issued
    // an access token with a later `iat` than this request's clock.
    let newest = format!(
        "SELECT (SELECT MAX(created_at) FROM refresh_tokens WHERE {refresh_col} = $1) AS refreshed, \
         (SELECT MAX(used_at) FROM auth_codes WHERE {code_col} = $1) AS redeemed"
    );
    let row = sqlx::query(&newest)
        .bind(value)
        .fetch_one(&mut *conn)
        .await?;
    let refreshed: Option<i64> = row.try_get("refreshed")?;
    let redeemed: Option<i64> = row.try_get("redeemed")?;
    Ok(UnixTime(
        now.0
            .max(refreshed.unwrap_or(now.0))
            .max(redeemed.unwrap_or(now.0)),
    ))
}

/// Ends grants ([`end_grants`]) and, in the same transaction, records the
/// `sid`/`sub`/`client_id` revocation that refuses every access token they
/// gave (carried to the edge through the outbox).
pub async fn end_and_revoke(
    db: &crate::store::db::Db,
    span: revocation::CoverSpan,
    of: GrantsOf<'_>,
    reason: &str,
    now: UnixTime,
) -> Result<revocation::Revocation, DbError> {
    let mut tx = db.pool.begin().await?;
    let revoked_at = end_grants(&mut tx, of, now).await?;
    let rev = revocation::revoke_in(
        &mut tx,
        of.kind(),
        of.value(),
        revoked_at.0.saturating_add(span.secs()),
        reason,
        revoked_at,
    )
    .await?;
    tx.commit().await?;
    db.outbox_notify.notify_one();
    Ok(rev)
}

/// Revokes a grant: every refresh token of the family, its code, and through
/// `sid` every access token issued from it (to the edge, via the outbox), in
/// one transaction.
pub async fn revoke_family(
    state: &AppState,
    family_id: &str,
    reason: &str,
    now: UnixTime,
) -> Result<(), Error> {
    let span = revocation::cover_span(&state.db, &state.config).await?;
    end_and_revoke(&state.db, span, GrantsOf::Family(family_id), reason, now).await?;
    Ok(())
}

/// The authorization_code grant (RFC 6749 §4.1.3, RFC 7636 §4.5-4.6).
///
/// Every check that needs nothing but the request comes before the code is
/// consumed, so a request that fails one (another client presenting the
/// code, a wrong verifier, redirect URI or DPoP key) neither burns the code
/// nor revokes its grant. The code is then marked used and its refresh
/// token inserted in one transaction: a replay waits on the code's row and
/// then revokes a family that holds that token.
pub async fn redeem_code(
    state: &AppState,
    client: &Client,
    req: CodeRedemption<'_>,
    ctx: RequestContext,
) -> Result<TokenResponse, Error> {
    let now = ctx.now;
    if !client
        .grant_types
        .contains(&crate::domain::grant_type::GrantType::AuthorizationCode)
    {
        return Err(Error::UnauthorizedClient(
            "the client may not use authorization_code",
        ));
    }
    let hash = AuthCode::new(req.code.to_owned()).hash_b64();
    let row = sqlx::query(
        "SELECT c.client_id, c.user_id, c.redirect_uri, c.scope, c.audience, c.code_challenge, \
         c.dpop_jkt, c.sid, c.expires_at, \
         (SELECT COUNT(*) FROM users u WHERE u.user_id = c.user_id) AS user_exists, \
         (SELECT COUNT(*) FROM revocations v WHERE v.revoked_at >= c.created_at AND \
          ((v.kind = 'sid' AND v.value = c.sid) OR (v.kind = 'sub' AND v.value = c.user_id) \
           OR (v.kind = 'client_id' AND v.value = c.client_id))) AS ended \
         FROM auth_codes c WHERE c.code_hash = $1",
    )
    .bind(&hash)
    .fetch_optional(&state.db.pool)
    .await?
    .ok_or(Error::InvalidGrant("the authorization code is invalid"))?;
    let sid: String = row.try_get("sid")?;
    let code_client: String = row.try_get("client_id")?;
    if code_client != client.client_id {
        return Err(Error::InvalidGrant(
            "the authorization code was issued to another client",
        ));
    }
    let redirect_uri: String = row.try_get("redirect_uri")?;
    if req.redirect_uri != Some(redirect_uri.as_str()) {
        return Err(Error::InvalidGrant(
            "redirect_uri does not match the authorization request",
        ));
    }
    let challenge: String = row.try_get("code_challenge")?;
    match req.code_verifier {
        Some(v) if valid_verifier(v) && pkce_matches(v, &challenge) => {}
        Some(_) => return Err(Error::InvalidGrant("PKCE verification failed")),
        None => return Err(Error::InvalidRequest("code_verifier is required".into())),
    }
    let bound: Option<String> = row.try_get("dpop_jkt")?;
    if let Some(bound) = &bound {
        if req.jkt != Some(bound.as_str()) {
            return Err(Error::InvalidDpopProof(
                "the DPoP key is not the one bound to the authorization code".into(),
            ));
        }
    }
    if client.dpop_required && req.jkt.is_none() {
        return Err(Error::InvalidDpopProof(
            "this client requires a DPoP proof".into(),
        ));
    }
    // The user was deleted (their codes go with them; this covers a code
    // read just before).
    if row.try_get::<i64, _>("user_exists")? == 0 {
        return Err(Error::InvalidGrant("the authorization code is invalid"));
    }
    // A `sid`, `sub` or `client_id` revocation recorded at or after the code
    // was issued ended its grant: the revocation marks the codes it can see
    // used, but one whose INSERT committed after that UPDATE (an
    // `/authorize` that read the session just before) escaped it.
    if row.try_get::<i64, _>("ended")? > 0 {
        return Err(Error::InvalidGrant("the authorization code was revoked"));
    }
    let mut tx = state.db.pool.begin().await?;
    // Single use: exactly one redemption consumes the code.
    let consumed =
        sqlx::query("UPDATE auth_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL")
            .bind(now.0)
            .bind(&hash)
            .execute(&mut *tx)
            .await?;
    if consumed.rows_affected() == 0 {
        tx.rollback().await?;
        // A replayed code: revoke everything issued from it (RFC 6749 §4.1.2).
        revoke_family(
            state,
            &sid,
            &revocation::by_client("authorization code replayed", &client.client_id),
            now,
        )
        .await?;
        audit::record(
            &state.db.pool,
            &AuditEvent::new("code_replayed", now)
                .client(&client.client_id)
                .ip(ctx.ip)
                .detail(format!("sid={sid}")),
        )
        .await?;
        return Err(Error::InvalidGrant(
            "the authorization code was already used",
        ));
    }
    let expires_at: i64 = row.try_get("expires_at")?;
    if now.0 >= expires_at {
        tx.rollback().await?;
        return Err(Error::InvalidGrant("the authorization code has expired"));
    }
    let user_id: String = row.try_get("user_id")?;
    let scope: String = row.try_get("scope")?;
    let audience: String = row.try_get("audience")?;
    let scopes: Vec<String> = scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let mut resp = sign(
        state, client, &user_id, &audience, &scopes, &sid, req.jkt, now,
    )?;
    // Public clients get refresh tokens only when DPoP-bound (OAuth 2.1 §4.3.1).
    let wants_refresh = client
        .grant_types
        .contains(&crate::domain::grant_type::GrantType::RefreshToken);
    if wants_refresh && (!client.public || req.jkt.is_some()) {
        let refresh = RefreshToken::generate()?;
        let family_expires_at = now.0.saturating_add(state.config.refresh_token_ttl);
        insert_refresh(
            &mut *tx,
            &refresh,
            &NewRefresh {
                family_id: &sid,
                client_id: &client.client_id,
                user_id: &user_id,
                scope: &scope,
                audience: &audience,
                jkt: req.jkt,
                family_expires_at,
            },
            state.config.refresh_idle_ttl,
            now,
        )
        .await?;
        resp.refresh_token = Some(refresh.expose().to_owned());
    }
    audit::record(
        &mut *tx,
        &AuditEvent::new("token_issued", now)
            .client(&client.client_id)
            .subject(&user_id)
            .jti(&resp.jti)
            .ip(ctx.ip)
            .detail(format!("grant=authorization_code sid={sid}")),
    )
    .await?;
    tx.commit().await?;
    Ok(resp)
}

struct NewRefresh<'a> {
    family_id: &'a str,
    client_id: &'a str,
    user_id: &'a str,
    scope: &'a str,
    audience: &'a str,
    jkt: Option<&'a str>,
    family_expires_at: i64,
}

impl NewRefresh<'_> {
    /// The row for `token`, issued at `now`, idle for at most `idle` seconds.
    fn row(&self, token: &RefreshToken, idle: i64, now: UnixTime) -> RefreshRow {
        RefreshRow {
            token_hash: token.hash_b64(),
            family_id: self.family_id.to_owned(),
            client_id: self.client_id.to_owned(),
            user_id: self.user_id.to_owned(),
            scope: self.scope.to_owned(),
            audience: self.audience.to_owned(),
            jkt: self.jkt.map(str::to_owned),
            created_at: now.0,
            expires_at: now.0.saturating_add(idle).min(self.family_expires_at),
            family_expires_at: self.family_expires_at,
        }
    }
}

async fn insert_refresh<'c, E>(
    exec: E,
    token: &RefreshToken,
    r: &NewRefresh<'_>,
    idle: i64,
    now: UnixTime,
) -> Result<(), Error>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    insert_row(exec, &r.row(token, idle, now)).await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn sign(
    state: &AppState,
    client: &Client,
    sub: &str,
    aud: &str,
    scopes: &[String],
    sid: &str,
    jkt: Option<&str>,
    now: UnixTime,
) -> Result<TokenResponse, Error> {
    let ring = state.key_ring()?;
    let signer = ring.signer(now).ok_or(KeyStoreError::NoSigner)?;
    sign_access_token(
        signer,
        &state.config.issuer,
        state.config.access_token_ttl,
        &AccessTokenClaims {
            sub,
            client_id: &client.client_id,
            aud,
            scopes,
            sid,
            jkt,
        },
        now,
    )
}

/// The `refresh_token` request at `/token`.
#[derive(Clone, Copy, Debug)]
pub struct Refresh<'a> {
    /// `refresh_token`.
    pub refresh_token: &'a str,
    /// `scope` (may only narrow).
    pub scope: Option<&'a str>,
    /// The verified DPoP proof's key thumbprint.
    pub jkt: Option<&'a str>,
}

/// The refresh_token grant (RFC 6749 §6): rotation on every use; a rotated
/// token presented again revokes the whole family (and its access tokens).
pub async fn refresh(
    state: &AppState,
    client: &Client,
    req: Refresh<'_>,
    ctx: RequestContext,
) -> Result<TokenResponse, Error> {
    let now = ctx.now;
    if !client
        .grant_types
        .contains(&crate::domain::grant_type::GrantType::RefreshToken)
    {
        return Err(Error::UnauthorizedClient(
            "the client may not use refresh_token",
        ));
    }
    let hash = RefreshToken::new(req.refresh_token.to_owned()).hash_b64();
    // With the token: whether its user still exists, and whether a `sid`,
    // `sub` or `client_id` revocation was recorded at or after it was issued
    // (the grant was ended, even if a token of it escaped the UPDATE).
    let row = sqlx::query(
        "SELECT r.family_id, r.client_id, r.user_id, r.scope, r.audience, r.dpop_jkt, \
         r.expires_at, r.family_expires_at, r.rotated_at, r.revoked_at, \
         (SELECT COUNT(*) FROM users u WHERE u.user_id = r.user_id) AS user_exists, \
         (SELECT COUNT(*) FROM revocations v WHERE v.revoked_at >= r.created_at AND \
          ((v.kind = 'sid' AND v.value = r.family_id) OR (v.kind = 'sub' AND v.value = r.user_id) \
           OR (v.kind = 'client_id' AND v.value = r.client_id))) AS ended \
         FROM refresh_tokens r WHERE r.token_hash = $1",
    )
    .bind(&hash)
    .fetch_optional(&state.db.pool)
    .await?
    .ok_or(Error::InvalidGrant("the refresh token is invalid"))?;
    let family_id: String = row.try_get("family_id")?;
    let owner: String = row.try_get("client_id")?;
    if owner != client.client_id {
        return Err(Error::InvalidGrant("the refresh token is invalid"));
    }
    let revoked_at: Option<i64> = row.try_get("revoked_at")?;
    let ended: i64 = row.try_get("ended")?;
    let user_exists: i64 = row.try_get("user_exists")?;
    if revoked_at.is_some() || ended > 0 || user_exists == 0 {
        return Err(Error::InvalidGrant("the refresh token was revoked"));
    }
    // The key before reuse: a DPoP-bound token presented without its key
    // proves nothing, and a leaked bound token must not end the grant.
    let bound: Option<String> = row.try_get("dpop_jkt")?;
    if let Some(bound) = &bound {
        if req.jkt != Some(bound.as_str()) {
            return Err(Error::InvalidGrant(
                "the refresh token is bound to another DPoP key",
            ));
        }
    }
    let rotated_at: Option<i64> = row.try_get("rotated_at")?;
    if rotated_at.is_some() {
        return Err(reuse(state, client, &family_id, ctx).await?);
    }
    let expires_at: i64 = row.try_get("expires_at")?;
    let family_expires_at: i64 = row.try_get("family_expires_at")?;
    if now.0 >= expires_at || now.0 >= family_expires_at {
        return Err(Error::InvalidGrant("the refresh token has expired"));
    }
    let scope: String = row.try_get("scope")?;
    let family_scopes: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
    let scopes: Vec<String> = match req.scope {
        None => family_scopes.iter().map(|s| (*s).to_owned()).collect(),
        Some(asked) => {
            let mut out: Vec<String> = Vec::new();
            for s in asked.split(' ').filter(|s| !s.is_empty()) {
                if !family_scopes.contains(&s) {
                    return Err(Error::InvalidScope(
                        "a requested scope exceeds the original grant",
                    ));
                }
                if !out.iter().any(|o| o == s) {
                    out.push(s.to_owned());
                }
            }
            out
        }
    };
    let user_id: String = row.try_get("user_id")?;
    let audience: String = row.try_get("audience")?;
    // Rotation: exactly one request consumes this token (conditional UPDATE).
    let next = RefreshToken::generate()?;
    // Signed before the write so that the audit row goes into the rotation's
    // transaction (a token signed for a rotation that loses or fails to
    // commit is never handed out).
    let mut resp = sign(
        state, client, &user_id, &audience, &scopes, &family_id, req.jkt, now,
    )?;
    resp.refresh_token = Some(next.expose().to_owned());
    let successor = NewRefresh {
        family_id: &family_id,
        client_id: &client.client_id,
        user_id: &user_id,
        scope: &scope,
        audience: &audience,
        jkt: bound.as_deref(),
        family_expires_at,
    }
    .row(&next, state.config.refresh_idle_ttl, now);
    // Rotation: exactly one request consumes this token (conditional UPDATE),
    // committed together with other requests' rotations (group commit).
    let won = state
        .db
        .group
        .write(Write::Rotate(Box::new(Rotation {
            presented_hash: hash.clone(),
            successor,
            audit: AuditEvent::new("token_refreshed", now)
                .client(&client.client_id)
                .subject(&user_id)
                .jti(&resp.jti)
                .ip(ctx.ip)
                .detail(format!("sid={family_id}")),
        })))
        .await?;
    if !won {
        return Err(reuse(state, client, &family_id, ctx).await?);
    }
    Ok(resp)
}

/// A rotated refresh token was presented again: revoke the family.
async fn reuse(
    state: &AppState,
    client: &Client,
    family_id: &str,
    ctx: RequestContext,
) -> Result<Error, Error> {
    revoke_family(
        state,
        family_id,
        &revocation::by_client("refresh token reuse", &client.client_id),
        ctx.now,
    )
    .await?;
    audit::record(
        &state.db.pool,
        &AuditEvent::new("refresh_reuse", ctx.now)
            .client(&client.client_id)
            .ip(ctx.ip)
            .detail(format!("sid={family_id} revoked")),
    )
    .await?;
    Ok(Error::InvalidGrant("the refresh token was already used"))
}

/// RFC 7009 for refresh tokens: revokes the family of `raw` if it belongs to
/// `client`. `false` if `raw` is not one of our refresh tokens.
pub async fn revoke_refresh(
    state: &AppState,
    client: &Client,
    raw: &str,
    now: UnixTime,
) -> Result<bool, Error> {
    let hash = RefreshToken::new(raw.to_owned()).hash_b64();
    let row = sqlx::query("SELECT family_id, client_id FROM refresh_tokens WHERE token_hash = $1")
        .bind(hash)
        .fetch_optional(&state.db.pool)
        .await?;
    let Some(row) = row else {
        return Ok(false);
    };
    let owner: String = row.try_get("client_id")?;
    if owner == client.client_id {
        let family: String = row.try_get("family_id")?;
        revoke_family(
            state,
            &family,
            &revocation::by_client("rfc7009", &client.client_id),
            now,
        )
        .await?;
    }
    Ok(true)
}

/// Forgets what can no longer be used: codes an hour past expiry (a replay
/// inside that hour still revokes the grant), ended sessions, and refresh
/// tokens past their family's absolute lifetime. Returns rows deleted.
pub async fn prune(state: &AppState, now: UnixTime) -> Result<u64, Error> {
    let mut n = 0u64;
    for (sql, before) in [
        (
            "DELETE FROM auth_codes WHERE expires_at < $1",
            now.0.saturating_sub(3600),
        ),
        ("DELETE FROM sessions WHERE expires_at < $1", now.0),
        (
            "DELETE FROM refresh_tokens WHERE family_expires_at < $1",
            now.0.saturating_sub(state.config.leeway_secs),
        ),
    ] {
        n = n.saturating_add(
            sqlx::query(sql)
                .bind(before)
                .execute(&state.db.pool)
                .await?
                .rows_affected(),
        );
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(valid_verifier(verifier));
        assert!(pkce_matches(
            verifier,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!pkce_matches(
            verifier,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"
        ));
        assert!(!valid_verifier("short"));
    }
}
