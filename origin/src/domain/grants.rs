//! The user-facing grants: single-use authorization codes (PKCE S256,
//! optionally DPoP-bound, RFC 9449 §10) and rotating refresh tokens with
//! reuse detection. Nothing here reads a clock: `now` comes from the request.

use crate::config::Config;
use crate::domain::clients::Client;
use crate::domain::error::Error;
use crate::domain::keys::KeyStoreError;
use crate::domain::oidc::{self, IdTokenClaims};
use crate::domain::state::TokenPath;
use crate::domain::token::{sign_access_token, AccessTokenClaims, RequestContext, TokenResponse};
use crate::store::audit::AuditEvent;
use crate::store::auth_codes::{self, CodeSession, NewCode, Redemption};
use crate::store::db::Db;
use crate::store::group_commit::Write;
use crate::store::refresh_tokens::{self, RefreshRow, Rotation};
use crate::store::revocation;
use crate::store::sessions::{self, GrantSession};
use crate::support::secret::{ct_eq, random_id, AuthCode, RefreshToken};
use gatehouse_common::b64;
use gatehouse_common::UnixTime;
use sha2::{Digest as _, Sha256};

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
    /// The browser session the user approved in.
    pub session: ApprovingSession,
    /// OpenID Connect `nonce` from the authorization request, if any.
    pub nonce: Option<String>,
}

/// The browser session a code is approved in: what its id_token says about
/// the user's authentication, and what logout finds the grant by.
#[derive(Clone, Debug)]
pub struct ApprovingSession {
    /// The session's public id (the id_token's `sid`).
    pub sid: String,
    /// When the user authenticated.
    pub auth_time: i64,
    /// How (`amr`, space-separated).
    pub amr: String,
}

/// Stores a fresh single-use code for `grant`; returns it (shown once, in the redirect).
pub async fn issue_code(db: &Db, grant: &CodeGrant, now: UnixTime) -> Result<AuthCode, Error> {
    let code = AuthCode::generate()?;
    let scope = grant.scopes.join(" ");
    let sid = random_id()?;
    let inserted = auth_codes::insert(
        db,
        &NewCode {
            code_hash: &code.hash_b64(),
            client_id: &grant.client_id,
            user_id: &grant.user_id,
            redirect_uri: &grant.redirect_uri,
            scope: &scope,
            audience: &grant.audience,
            code_challenge: &grant.code_challenge,
            dpop_jkt: grant.dpop_jkt.as_deref(),
            sid: &sid,
            session: Some(CodeSession {
                sid: &grant.session.sid,
                auth_time: grant.session.auth_time,
                amr: &grant.session.amr,
            }),
            nonce: grant.nonce.as_deref(),
            created_at: now.0,
            expires_at: now.0.saturating_add(CODE_TTL_SECS),
        },
    )
    .await?;
    // The session ended (a logout) after the approval read it: no code.
    if !inserted {
        return Err(Error::AuthorizePage(
            "your session has ended; start again from the application",
        ));
    }
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

pub use crate::store::grants::{end_and_revoke, end_grants, GrantsOf};

/// Revokes a grant: every refresh token of the family, its code, and through
/// `sid` every access token issued from it (to the edge, via the outbox), in
/// one transaction.
pub async fn revoke_family(
    db: &Db,
    config: &Config,
    family_id: &str,
    reason: &str,
    now: UnixTime,
) -> Result<(), Error> {
    let span = revocation::cover_span(db, config).await?;
    end_and_revoke(db, span, GrantsOf::Family(family_id), reason, now).await?;
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
    tp: &TokenPath<'_>,
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
    let row = auth_codes::lookup(tp.db, &hash)
        .await?
        .ok_or(Error::InvalidGrant("the authorization code is invalid"))?;
    let sid = row.sid.as_str();
    if row.client_id != client.client_id {
        return Err(Error::InvalidGrant(
            "the authorization code was issued to another client",
        ));
    }
    if req.redirect_uri != Some(row.redirect_uri.as_str()) {
        return Err(Error::InvalidGrant(
            "redirect_uri does not match the authorization request",
        ));
    }
    match req.code_verifier {
        Some(v) if valid_verifier(v) && pkce_matches(v, &row.code_challenge) => {}
        Some(_) => return Err(Error::InvalidGrant("PKCE verification failed")),
        None => return Err(Error::InvalidRequest("code_verifier is required".into())),
    }
    if let Some(bound) = &row.dpop_jkt {
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
    if !row.user_exists {
        return Err(Error::InvalidGrant("the authorization code is invalid"));
    }
    // A `sid`, `sub` or `client_id` revocation recorded at or after the code
    // was issued ended its grant: the revocation marks the codes it can see
    // used, but one whose INSERT committed after that UPDATE (an
    // `/authorize` that read the session just before) escaped it.
    if row.ended {
        return Err(Error::InvalidGrant("the authorization code was revoked"));
    }
    let user_id = row.user_id.as_str();
    let scope = row.scope.as_str();
    let audience = row.audience.as_str();
    let scopes: Vec<String> = scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    // Signed (and the refresh token drawn) before the write, so that the
    // code's consumption, the refresh row and the audit row commit in one
    // transaction; a token signed for a redemption that loses is never
    // handed out.
    let mut resp = sign(tp, client, user_id, audience, &scopes, sid, req.jkt, now)?;
    // Public clients get refresh tokens only when DPoP-bound (OAuth 2.1 §4.3.1).
    let wants_refresh = client
        .grant_types
        .contains(&crate::domain::grant_type::GrantType::RefreshToken)
        && (!client.public || req.jkt.is_some());
    // An offline grant (OpenID Connect Core §11; `/authorize` kept the scope
    // only where consent was shown): its family lives up to the offline
    // lifetime with no idle limit, and logout of its session leaves it.
    let offline = wants_refresh && oidc::is_offline(&scopes);
    let family_ttl = if offline {
        tp.config.offline_refresh_ttl
    } else {
        tp.config.refresh_token_ttl
    };
    // The browser session the code was approved in (codes from before
    // sessions had a public id carry none, and get no id_token).
    let session = match (&row.session_sid, row.auth_time, &row.amr) {
        (Some(session_sid), Some(auth_time), Some(amr)) => Some(GrantSession {
            family_id: sid.to_owned(),
            session_sid: session_sid.clone(),
            user_id: user_id.to_owned(),
            client_id: client.client_id.clone(),
            auth_time,
            amr: amr.clone(),
            created_at: now.0,
            expires_at: now
                .0
                .saturating_add(family_ttl.max(0))
                .saturating_add(tp.config.access_token_ttl),
            offline,
        }),
        _ => None,
    };
    if let (true, Some(g)) = (oidc::is_openid(&scopes), &session) {
        resp.id_token = Some(id_token(
            tp,
            client,
            g,
            true,
            row.nonce.as_deref(),
            &resp,
            now,
        )?);
    }
    let mut refresh_row = None;
    if wants_refresh {
        let refresh = RefreshToken::generate()?;
        let family_expires_at = now.0.saturating_add(family_ttl);
        refresh_row = Some(
            NewRefresh {
                family_id: sid,
                client_id: &client.client_id,
                user_id,
                scope,
                audience,
                jkt: req.jkt,
                family_expires_at,
            }
            .row(&refresh, idle_ttl(tp.config, offline), now),
        );
        resp.refresh_token = Some(refresh.expose().to_owned());
    }
    let issued = AuditEvent::new("token_issued", now)
        .client(&client.client_id)
        .subject(user_id)
        .jti(&resp.jti)
        .ip(ctx.ip)
        .detail(format!("grant=authorization_code sid={sid}"));
    match auth_codes::redeem(
        tp.db,
        &hash,
        row.expires_at,
        now.0,
        refresh_row.as_ref(),
        session.as_ref(),
        &issued,
    )
    .await?
    {
        Redemption::Redeemed => Ok(resp),
        Redemption::AlreadyUsed => {
            // A replayed code: revoke everything issued from it (RFC 6749 §4.1.2).
            revoke_family(
                tp.db,
                tp.config,
                sid,
                &revocation::by_client("authorization code replayed", &client.client_id),
                now,
            )
            .await?;
            tp.failures
                .record(
                    tp.db,
                    AuditEvent::new("code_replayed", now)
                        .client(&client.client_id)
                        .subject(user_id)
                        .ip(ctx.ip)
                        .detail(format!("sid={sid}")),
                )
                .await?;
            Err(Error::InvalidGrant(
                "the authorization code was already used",
            ))
        }
        Redemption::Expired => Err(Error::InvalidGrant("the authorization code has expired")),
    }
}

/// How long a refresh token may go unused: the configured idle limit, or
/// for an offline family none but its absolute lifetime.
fn idle_ttl(config: &Config, offline: bool) -> i64 {
    if offline {
        config.offline_refresh_ttl
    } else {
        config.refresh_idle_ttl
    }
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

#[allow(clippy::too_many_arguments)]
fn sign(
    tp: &TokenPath<'_>,
    client: &Client,
    sub: &str,
    aud: &str,
    scopes: &[String],
    sid: &str,
    jkt: Option<&str>,
    now: UnixTime,
) -> Result<TokenResponse, Error> {
    let ring = &tp.keys;
    let signer = ring.signer(now).ok_or(KeyStoreError::NoSigner)?;
    sign_access_token(
        signer,
        &tp.config.issuer,
        tp.config.access_token_ttl,
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

/// The id_token (OpenID Connect Core §3.1.3.6) that goes with `resp`'s
/// access token, signed by the same key, valid as long as it.
fn id_token(
    tp: &TokenPath<'_>,
    client: &Client,
    g: &GrantSession,
    live_session: bool,
    nonce: Option<&str>,
    resp: &TokenResponse,
    now: UnixTime,
) -> Result<String, Error> {
    let signer = tp.keys.signer(now).ok_or(KeyStoreError::NoSigner)?;
    oidc::sign_id_token(
        signer,
        &tp.config.issuer,
        tp.config.access_token_ttl,
        &IdTokenClaims {
            sub: &g.user_id,
            client_id: &client.client_id,
            session_sid: live_session.then_some(g.session_sid.as_str()),
            auth_time: g.auth_time,
            amr: &g.amr,
            nonce,
        },
        &resp.access_token,
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
    tp: &TokenPath<'_>,
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
    let row = refresh_tokens::lookup(tp.db, &hash)
        .await?
        .ok_or(Error::InvalidGrant("the refresh token is invalid"))?;
    let family_id = row.family_id.as_str();
    if row.client_id != client.client_id {
        return Err(Error::InvalidGrant("the refresh token is invalid"));
    }
    if row.revoked_at.is_some() || row.ended || !row.user_exists {
        return Err(Error::InvalidGrant("the refresh token was revoked"));
    }
    // The key before reuse: a DPoP-bound token presented without its key
    // proves nothing, and a leaked bound token must not end the grant.
    let bound = row.dpop_jkt.as_deref();
    if let Some(bound) = bound {
        if req.jkt != Some(bound) {
            return Err(Error::InvalidGrant(
                "the refresh token is bound to another DPoP key",
            ));
        }
    }
    if row.rotated_at.is_some() {
        return Err(reuse(tp, client, family_id, &row.user_id, ctx).await?);
    }
    let family_expires_at = row.family_expires_at;
    if now.0 >= row.expires_at || now.0 >= family_expires_at {
        return Err(Error::InvalidGrant("the refresh token has expired"));
    }
    let scope = row.scope.as_str();
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
    let user_id = row.user_id.as_str();
    let audience = row.audience.as_str();
    // Rotation: exactly one request consumes this token (conditional UPDATE).
    let next = RefreshToken::generate()?;
    // Signed before the write so that the audit row goes into the rotation's
    // transaction (a token signed for a rotation that loses or fails to
    // commit is never handed out).
    let mut resp = sign(
        tp, client, user_id, audience, &scopes, family_id, req.jkt, now,
    )?;
    resp.refresh_token = Some(next.expose().to_owned());
    // An `openid` grant keeps issuing id_tokens for the session it was
    // approved in (same `auth_time`, `amr`; no `nonce`, §12.2), naming its
    // `sid` while that browser session lasts: an offline grant refreshed
    // after logout gets an id_token without `sid`.
    if oidc::is_openid(&scopes) {
        if let Some(g) = sessions::grant_session(tp.db, family_id).await? {
            if g.user_id == user_id && g.client_id == client.client_id {
                let live = sessions::is_live(tp.db, &g.session_sid, now.0).await?;
                resp.id_token = Some(id_token(tp, client, &g, live, None, &resp, now)?);
            }
        }
    }
    let successor = NewRefresh {
        family_id,
        client_id: &client.client_id,
        user_id,
        scope,
        audience,
        jkt: bound,
        family_expires_at,
    }
    .row(
        &next,
        idle_ttl(tp.config, family_scopes.contains(&oidc::OFFLINE_ACCESS)),
        now,
    );
    // Rotation: exactly one request consumes this token (conditional UPDATE),
    // committed together with other requests' rotations (group commit).
    // Made as of the cached client record, if the request used one.
    let won = tp
        .db
        .group
        .write_as_of(
            Write::Rotate(Box::new(Rotation {
                presented_hash: hash.clone(),
                successor,
                audit: AuditEvent::new("token_refreshed", now)
                    .client(&client.client_id)
                    .subject(user_id)
                    .jti(&resp.jti)
                    .ip(ctx.ip)
                    .detail(format!("sid={family_id}")),
            })),
            ctx.client_as_of,
        )
        .await?;
    if !won {
        return Err(reuse(tp, client, family_id, user_id, ctx).await?);
    }
    Ok(resp)
}

/// A rotated refresh token was presented again: revoke the family.
async fn reuse(
    tp: &TokenPath<'_>,
    client: &Client,
    family_id: &str,
    user_id: &str,
    ctx: RequestContext,
) -> Result<Error, Error> {
    // The revocation is this request's only write: made on a cached client
    // record only if it is still current (a secret rotated out elsewhere
    // must not end grants on a replica that cached it).
    crate::domain::token::confirm_cached(tp, ctx.client_as_of).await?;
    revoke_family(
        tp.db,
        tp.config,
        family_id,
        &revocation::by_client("refresh token reuse", &client.client_id),
        ctx.now,
    )
    .await?;
    tp.db.metrics.refresh_reuse(&client.client_id);
    tp.failures
        .record(
            tp.db,
            AuditEvent::new("refresh_reuse", ctx.now)
                .client(&client.client_id)
                .subject(user_id)
                .ip(ctx.ip)
                .detail(format!("sid={family_id} revoked")),
        )
        .await?;
    Ok(Error::InvalidGrant("the refresh token was already used"))
}

/// RFC 7009 for refresh tokens: revokes the family of `raw` if it belongs to
/// `client`. `false` if `raw` is not one of our refresh tokens.
pub async fn revoke_refresh(
    tp: &TokenPath<'_>,
    client: &Client,
    raw: &str,
    now: UnixTime,
) -> Result<bool, Error> {
    let hash = RefreshToken::new(raw.to_owned()).hash_b64();
    let Some((family, owner)) = refresh_tokens::family_of(tp.db, &hash).await? else {
        return Ok(false);
    };
    if owner == client.client_id {
        revoke_family(
            tp.db,
            tp.config,
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
/// tokens past their family's absolute lifetime, expired pushed
/// authorization requests. Returns rows deleted.
pub async fn prune(db: &Db, config: &Config, now: UnixTime) -> Result<u64, Error> {
    Ok(crate::store::grants::prune(
        db,
        now.0.saturating_sub(3600),
        now.0,
        now.0.saturating_sub(config.leeway_secs),
    )
    .await?)
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
