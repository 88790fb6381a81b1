//! RFC 8693 token exchange for our own access tokens: the subject token (and
//! an optional actor token, giving an `act` claim) validated by `common`
//! exactly as at the edge and not revoked; audience, resource and scope may
//! only narrow. The new token keeps the subject's `sub` and `sid` (revoking
//! the grant reaches exchanged tokens too) and is issued to the caller.

use crate::audit::{self, AuditEvent};
use crate::clients::Client;
use crate::error::Error;
use crate::introspect::verify_own;
use crate::keys::KeyStoreError;
use crate::revocation;
use crate::state::AppState;
use crate::token::{sign_access_token_acting, AccessTokenClaims, RequestContext, TokenResponse};
use gatehouse_common::access_token::AccessToken;
use serde_json::json;

/// The grant type.
pub const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The only token type we accept and issue.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// A token-exchange request.
#[derive(Clone, Copy, Debug)]
pub struct ExchangeRequest<'a> {
    /// `subject_token`.
    pub subject_token: &'a str,
    /// `subject_token_type`.
    pub subject_token_type: Option<&'a str>,
    /// `actor_token`.
    pub actor_token: Option<&'a str>,
    /// `actor_token_type`.
    pub actor_token_type: Option<&'a str>,
    /// `requested_token_type`.
    pub requested_token_type: Option<&'a str>,
    /// `audience`.
    pub audience: Option<&'a str>,
    /// `resource`.
    pub resource: Option<&'a str>,
    /// `scope`.
    pub scope: Option<&'a str>,
    /// The verified DPoP proof's key thumbprint.
    pub jkt: Option<&'a str>,
}

async fn live_token(
    state: &AppState,
    raw: &str,
    ctx: RequestContext,
) -> Result<AccessToken, Error> {
    let token = verify_own(state, raw, ctx.now)
        .await?
        .map_err(|_| Error::InvalidGrant("the token is not a valid access token of this issuer"))?;
    if revocation::is_revoked(&state.db, &token, ctx.now).await? {
        return Err(Error::InvalidGrant("the token was revoked"));
    }
    Ok(token)
}

/// The exchange (RFC 8693 §2.1-2.2).
pub async fn exchange(
    state: &AppState,
    client: &Client,
    req: ExchangeRequest<'_>,
    ctx: RequestContext,
) -> Result<TokenResponse, Error> {
    if !client.grant_types.iter().any(|g| g == GRANT) {
        return Err(Error::UnauthorizedClient(
            "the client may not use token exchange",
        ));
    }
    if req.subject_token_type != Some(ACCESS_TOKEN_TYPE) {
        return Err(Error::InvalidRequest(
            "subject_token_type must be urn:ietf:params:oauth:token-type:access_token".into(),
        ));
    }
    if req
        .requested_token_type
        .is_some_and(|t| t != ACCESS_TOKEN_TYPE)
    {
        return Err(Error::InvalidRequest(
            "only access tokens can be requested".into(),
        ));
    }
    let subject = live_token(state, req.subject_token, ctx).await?;
    let act = match (req.actor_token, req.actor_token_type) {
        (None, None) => None,
        (Some(raw), Some(ACCESS_TOKEN_TYPE)) => {
            let actor = live_token(state, raw, ctx).await?;
            // RFC 8693 §4.1: the current actor, with any prior chain nested.
            let mut act = json!({ "sub": actor.sub, "client_id": actor.client_id });
            if let (Some(prior), Some(m)) = (&subject.act, act.as_object_mut()) {
                m.insert("act".into(), prior.clone());
            }
            Some(act)
        }
        _ => {
            return Err(Error::InvalidRequest(
                "actor_token and actor_token_type (access_token) go together".into(),
            ))
        }
    };
    // Audience narrows: one of the subject token's audiences, and one this
    // client's exchange policy (its audiences) allows.
    let wanted = match (req.audience, req.resource) {
        (Some(a), Some(r)) if a != r => {
            return Err(Error::InvalidTarget("audience and resource disagree"))
        }
        (Some(a), _) | (None, Some(a)) => Some(a),
        (None, None) => None,
    };
    let allowed = |a: &String| client.audiences.contains(a);
    let aud = match wanted {
        Some(w) => subject
            .aud
            .iter()
            .find(|a| a.as_str() == w && allowed(a))
            .ok_or(Error::InvalidTarget(
                "the audience would widen the subject token or is not allowed for this client",
            ))?,
        None => subject
            .aud
            .iter()
            .find(|a| allowed(a))
            .ok_or(Error::InvalidTarget(
                "the client may not exchange into the subject token's audience",
            ))?,
    }
    .clone();
    // Scope narrows: a subset of the subject token's.
    let scopes: Vec<String> = match req.scope {
        None => subject.scope.clone(),
        Some(asked) => {
            let mut out: Vec<String> = Vec::new();
            for s in asked.split(' ').filter(|s| !s.is_empty()) {
                if !subject.scope.iter().any(|x| x == s) {
                    return Err(Error::InvalidScope(
                        "a requested scope exceeds the subject token's",
                    ));
                }
                if !out.iter().any(|o| o == s) {
                    out.push(s.to_owned());
                }
            }
            out
        }
    };
    if client.dpop_required && req.jkt.is_none() {
        return Err(Error::InvalidDpopProof(
            "this client requires a DPoP proof".into(),
        ));
    }
    let ring = state.key_ring()?;
    let signer = ring.signer(ctx.now).ok_or(KeyStoreError::NoSigner)?;
    let sid = subject.sid.clone().unwrap_or_default();
    let mut resp = sign_access_token_acting(
        signer,
        &state.config.issuer,
        state.config.access_token_ttl,
        &AccessTokenClaims {
            sub: &subject.sub,
            client_id: &client.client_id,
            aud: &aud,
            scopes: &scopes,
            sid: &sid,
            jkt: req.jkt,
        },
        act.as_ref(),
        ctx.now,
    )?;
    resp.issued_token_type = Some(ACCESS_TOKEN_TYPE);
    audit::record(
        &state.db.pool,
        &AuditEvent::new("token_issued", ctx.now)
            .client(&client.client_id)
            .subject(&subject.sub)
            .jti(&resp.jti)
            .ip(ctx.ip)
            .detail(format!("grant=token-exchange subject_jti={}", subject.jti)),
    )
    .await?;
    Ok(resp)
}
