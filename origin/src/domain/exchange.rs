//! RFC 8693 token exchange for our own access tokens, following Keycloak's
//! standard token exchange rules:
//!
//! - only confidential clients allowed the grant may exchange;
//! - the requesting client must be one of the subject token's audiences
//!   (it registers the audience URIs it serves as a resource server,
//!   [`Client::serves`]): a client cannot exchange a token that was never
//!   meant for it;
//! - audience and resource only narrow (one of the subject's audiences, and
//!   one of the client's own); scope only narrows, to the subject's scopes
//!   that the client itself may hold;
//! - the new token never outlives the subject (or actor) token, so chained
//!   exchanges cannot renew a token past its grant's limits;
//! - a DPoP-bound subject (or actor) token is exchanged only with a DPoP
//!   proof of the same key (RFC 9449 §6 `cnf.jkt`), and the result stays
//!   bound to it: a stolen bound token cannot be laundered into a Bearer
//!   token usable without the key;
//! - `act` (RFC 8693 §4.1) names the exchanging client, with any prior
//!   chain nested (at most [`MAX_ACT_CHAIN`] actors, within what verifiers
//!   accept); an actor token must have been issued to that client and not
//!   be itself delegated (a token with `act` names the party it was
//!   exchanged for, who did not act);
//! - every exchange, refused or granted, is audited (never the token).
//!
//! The new token keeps the subject's `sub` and `sid` (revoking the grant
//! reaches exchanged tokens too) and is issued to the caller.

use crate::domain::clients::Client;
use crate::domain::error::Error;
use crate::domain::grant_type::GrantType;
use crate::domain::introspect::verify_own;
use crate::domain::keys::KeyStoreError;
use crate::domain::state::TokenPath;
use crate::domain::token::{
    sign_access_token_acting, AccessTokenClaims, RequestContext, TokenResponse,
};
use crate::store::audit::{self, AuditEvent};
use crate::store::revocation;
use gatehouse_common::access_token::AccessToken;
use serde_json::json;

/// The grant type.
pub const GRANT: &str = GrantType::TokenExchange.as_str();
/// The only token type we accept and issue.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// The longest delegation chain (`act`, nested) an exchanged token may
/// carry. Each exchange nests the prior chain one level deeper; past
/// `common`'s JSON depth limit the origin would sign tokens that no
/// verifier (introspection, the edge) accepts.
pub const MAX_ACT_CHAIN: usize = 8;
// The claim set is one level, each actor one more.
const _: () = assert!(MAX_ACT_CHAIN < gatehouse_common::json::MAX_DEPTH);

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
    tp: &TokenPath<'_>,
    raw: &str,
    ctx: RequestContext,
) -> Result<AccessToken, Error> {
    let token = verify_own(tp, raw, ctx.now)
        .await?
        .ok_or(Error::InvalidGrant(
            "the token is not a valid access token of this issuer",
        ))?;
    if revocation::is_revoked(tp.db, &token, ctx.now).await? {
        return Err(Error::InvalidGrant("the token was revoked"));
    }
    Ok(token)
}

/// RFC 9449 §6: a token bound to a key (`cnf.jkt`) is presented only with a
/// proof of that key — at the token endpoint as at a resource server.
fn holder_of_key(token: &AccessToken, jkt: Option<&str>, what: &'static str) -> Result<(), Error> {
    match (&token.cnf_jkt, jkt) {
        (None, _) => Ok(()),
        (Some(bound), Some(presented)) if bound == presented => Ok(()),
        (Some(_), _) => Err(Error::InvalidDpopProof(what.into())),
    }
}

/// The exchange (RFC 8693 §2.1-2.2). A refusal is audited before it is
/// returned; internal errors are not (they are logged once by the HTTP layer).
pub async fn exchange(
    tp: &TokenPath<'_>,
    client: &Client,
    req: ExchangeRequest<'_>,
    ctx: RequestContext,
) -> Result<TokenResponse, Error> {
    match exchange_checked(tp, client, req, ctx).await {
        Ok(resp) => Ok(resp),
        Err(Error::Internal(e)) => Err(Error::Internal(e)),
        Err(refused) => {
            tp.failures
                .record(
                    tp.db,
                    AuditEvent::new("token_exchange_refused", ctx.now)
                        .client(&client.client_id)
                        .ip(ctx.ip)
                        .detail(format!("grant=token-exchange {refused}")),
                )
                .await?;
            Err(refused)
        }
    }
}

async fn exchange_checked(
    tp: &TokenPath<'_>,
    client: &Client,
    req: ExchangeRequest<'_>,
    ctx: RequestContext,
) -> Result<TokenResponse, Error> {
    if !client.grant_types.contains(&GrantType::TokenExchange) {
        return Err(Error::UnauthorizedClient(
            "the client may not use token exchange",
        ));
    }
    // Rows registered before public clients were refused the grant.
    if client.public {
        return Err(Error::UnauthorizedClient(
            "public clients may not use token exchange",
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
    let subject = live_token(tp, req.subject_token, ctx).await?;
    // Keycloak's rule: the requesting client is an audience of the subject token.
    if !subject.aud.iter().any(|a| client.serves.contains(a)) {
        return Err(Error::InvalidGrant(
            "the client is not an audience of the subject token",
        ));
    }
    holder_of_key(
        &subject,
        req.jkt,
        "the subject token is DPoP-bound: a DPoP proof of its key is required",
    )?;
    let actor = match (req.actor_token, req.actor_token_type) {
        (None, None) => None,
        (Some(raw), Some(ACCESS_TOKEN_TYPE)) => {
            let actor = live_token(tp, raw, ctx).await?;
            if actor.client_id != client.client_id {
                return Err(Error::InvalidGrant(
                    "the actor token was not issued to this client",
                ));
            }
            // A delegated token's `sub` is the party it was exchanged for,
            // not one that acted: as the actor it would name that party in
            // `act` and drop the real actor (this client) from the chain.
            if actor.act.is_some() {
                return Err(Error::InvalidGrant(
                    "a delegated token (with act) cannot be the actor token",
                ));
            }
            holder_of_key(
                &actor,
                req.jkt,
                "the actor token is DPoP-bound: a DPoP proof of its key is required",
            )?;
            Some(actor)
        }
        _ => {
            return Err(Error::InvalidRequest(
                "actor_token and actor_token_type (access_token) go together".into(),
            ))
        }
    };
    // RFC 8693 §4.1: the current actor (the exchanging client, or the actor
    // token's subject, which that client holds), with any prior chain nested.
    let mut act = json!({
        "sub": actor.as_ref().map_or(client.client_id.as_str(), |a| a.sub.as_str()),
        "client_id": client.client_id,
    });
    if act_chain_len(subject.act.as_ref()) >= MAX_ACT_CHAIN {
        return Err(Error::InvalidGrant(
            "the subject token's delegation chain is too long to extend",
        ));
    }
    if let (Some(prior), Some(m)) = (&subject.act, act.as_object_mut()) {
        m.insert("act".into(), prior.clone());
    }
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
    let scopes = narrowed_scopes(&subject.scope, &client.scopes, req.scope)?;
    // The subject's binding is kept (checked equal to the proof's above); an
    // unbound subject may be bound by the caller's proof.
    let jkt = subject.cnf_jkt.as_deref().or(req.jkt);
    if client.dpop_required && jkt.is_none() {
        return Err(Error::InvalidDpopProof(
            "this client requires a DPoP proof".into(),
        ));
    }
    // Never later than the subject (or actor) token: chained exchanges
    // cannot extend a token past its grant.
    let not_after = actor
        .as_ref()
        .map_or(subject.exp, |a| a.exp.min(subject.exp));
    let ttl = tp
        .config
        .access_token_ttl
        .min(not_after.saturating_sub(ctx.now.0));
    if ttl <= 0 {
        return Err(Error::InvalidGrant("the subject token has expired"));
    }
    let ring = &tp.keys;
    let signer = ring.signer(ctx.now).ok_or(KeyStoreError::NoSigner)?;
    let sid = subject.sid.clone().unwrap_or_default();
    let mut resp = sign_access_token_acting(
        signer,
        &tp.config.issuer,
        ttl,
        &AccessTokenClaims {
            sub: &subject.sub,
            client_id: &client.client_id,
            aud: &aud,
            scopes: &scopes,
            sid: &sid,
            jkt,
        },
        Some(&act),
        ctx.now,
    )?;
    resp.issued_token_type = Some(ACCESS_TOKEN_TYPE);
    audit::record(
        &tp.db.pool,
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

/// How many actors an `act` claim names (it and each nested `act`).
fn act_chain_len(act: Option<&serde_json::Value>) -> usize {
    std::iter::successors(act, |a| a.get("act")).count()
}

/// Scope only narrows: to the subject token's scopes that the exchanging
/// client may itself hold; a request beyond that is `invalid_scope`, no
/// request yields all of it.
fn narrowed_scopes(
    subject: &[String],
    client: &[String],
    asked: Option<&str>,
) -> Result<Vec<String>, Error> {
    let permitted = |s: &str| subject.iter().any(|x| x == s) && client.iter().any(|x| x == s);
    let Some(asked) = asked else {
        return Ok(subject.iter().filter(|s| permitted(s)).cloned().collect());
    };
    let mut out: Vec<String> = Vec::new();
    for s in asked.split(' ').filter(|s| !s.is_empty()) {
        if !permitted(s) {
            return Err(Error::InvalidScope(
                "a requested scope exceeds the subject token's or the client's",
            ));
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{act_chain_len, narrowed_scopes};
    use serde_json::json;

    #[test]
    fn act_chain_len_counts_nested_actors() {
        assert_eq!(act_chain_len(None), 0);
        assert_eq!(act_chain_len(Some(&json!({"sub": "a"}))), 1);
        let two = json!({"sub": "a", "act": {"sub": "b"}});
        assert_eq!(act_chain_len(Some(&two)), 2);
    }

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn scope_is_the_subjects_within_the_clients_own() {
        let subject = v(&["read", "write"]);
        let client = v(&["read", "admin"]);
        assert_eq!(
            narrowed_scopes(&subject, &client, None).ok(),
            Some(v(&["read"]))
        );
        assert_eq!(
            narrowed_scopes(&subject, &client, Some("read read")).ok(),
            Some(v(&["read"]))
        );
        assert!(narrowed_scopes(&subject, &client, Some("write")).is_err());
        assert!(narrowed_scopes(&subject, &client, Some("admin")).is_err());
    }
}
