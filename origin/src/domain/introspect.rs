//! Introspection (RFC 7662) and revocation (RFC 7009) of our own access
//! tokens, verified through `common` exactly as the edge verifies them.
//! Introspection answers only the token's own client or a resource server
//! of one of its audiences.

use crate::domain::clients::Client;
use crate::domain::error::Error;
use crate::domain::state::TokenPath;
use crate::domain::token::RequestContext;
use crate::store::audit::{self, AuditEvent};
use crate::store::revocation;
use crate::support::crypto::AwsLc;
use gatehouse_common::access_token::{AccessToken, AccessTokenError, UntrustedAccessToken};
use gatehouse_common::provider::SignatureVerifier as _;
use gatehouse_common::revocation::RevocationKind;
use gatehouse_common::UnixTime;
use serde_json::{json, Value};

/// The audiences a token of ours may carry: the default, plus those of the
/// client it names. Only that client's row is read (the unverified
/// `client_id` merely picks it; `common` then verifies the token, whose
/// signed `client_id` is the same bytes). A corrupt row is an error, never
/// silently skipped.
async fn audiences_for(tp: &TokenPath<'_>, raw: &str) -> Result<Vec<String>, Error> {
    let mut out = vec![tp.config.default_audience.clone()];
    let Some(client_id) = unverified_client_id(raw) else {
        return Ok(out);
    };
    if let Some(audiences) = crate::store::clients::audiences(tp.db, &client_id).await? {
        for a in audiences {
            if !out.contains(&a) {
                out.push(a);
            }
        }
    }
    Ok(out)
}

/// The `client_id` claim of a compact JWS, unverified: used only to pick
/// which client's audiences to load. `None` for anything malformed.
fn unverified_client_id(raw: &str) -> Option<String> {
    if raw.len() > 16 * 1024 {
        return None;
    }
    let mut parts = raw.split('.');
    let payload = parts.nth(1)?;
    let bytes = gatehouse_common::b64::decode(payload).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims
        .get("client_id")?
        .as_str()
        .filter(|c| !c.is_empty() && c.len() <= 256)
        .map(str::to_owned)
}

/// Verifies `raw` as an access token we issued, at `now`: `None` when it
/// is not one (malformed, unknown key, bad signature, expired, …).
pub async fn verify_own(
    tp: &TokenPath<'_>,
    raw: &str,
    now: UnixTime,
) -> Result<Option<AccessToken>, Error> {
    Ok(verify_own_checked(tp, raw, now).await?.ok())
}

/// [`verify_own`] with the reason a token is refused (for a protected
/// resource's `error_description` and `expires_at`, RFC 6750 §3): the outer
/// error is the server's (storage), the inner one the token's.
pub async fn verify_own_checked(
    tp: &TokenPath<'_>,
    raw: &str,
    now: UnixTime,
) -> Result<Result<AccessToken, AccessTokenError>, Error> {
    let policy = tp.config.token_policy(audiences_for(tp, raw).await?);
    let ring = &tp.keys;
    let jwks = ring.jwks(now);
    let verdict: Result<AccessToken, AccessTokenError> = (|| {
        let untrusted = UntrustedAccessToken::parse(raw, &policy)?;
        let key = jwks.select(untrusted.kid(), untrusted.header_alg())?;
        let ok = AwsLc.verify(
            key.jwk,
            key.alg,
            untrusted.signing_input(),
            untrusted.signature(),
        );
        untrusted.accept(ok, &policy, now)
    })();
    Ok(verdict)
}

/// Whether `caller` may learn about `token` (RFC 7662 §4: the server
/// decides which protected resources may query which tokens): its own
/// client, or a client registered as a resource server for one of its
/// audiences. Anyone else is answered `{"active": false}`, as for a token
/// that does not exist.
fn may_introspect(caller: &Client, token: &AccessToken) -> bool {
    token.client_id == caller.client_id || token.aud.iter().any(|a| caller.serves.contains(a))
}

/// The RFC 7662 answer for `raw`, asked by `caller`.
pub async fn introspect(
    tp: &TokenPath<'_>,
    caller: &Client,
    raw: &str,
    now: UnixTime,
) -> Result<Value, Error> {
    if caller.public {
        return Err(Error::UnauthorizedClient(
            "public clients may not introspect",
        ));
    }
    let Some(token) = verify_own(tp, raw, now).await? else {
        return Ok(json!({"active": false}));
    };
    if !may_introspect(caller, &token) {
        return Ok(json!({"active": false}));
    }
    if revocation::is_revoked(tp.db, &token, now).await? {
        return Ok(json!({"active": false}));
    }
    let mut out = json!({
        "active": true,
        "iss": token.iss,
        "sub": token.sub,
        "aud": token.aud,
        "exp": token.exp,
        "iat": token.iat,
        "jti": token.jti,
        "client_id": token.client_id,
        "scope": token.scope.join(" "),
        "token_type": if token.cnf_jkt.is_some() { "DPoP" } else { "Bearer" },
    });
    if let Some(m) = out.as_object_mut() {
        if let Some(nbf) = token.nbf {
            m.insert("nbf".into(), nbf.into());
        }
        if let Some(sid) = &token.sid {
            m.insert("sid".into(), sid.clone().into());
        }
        if let Some(jkt) = &token.cnf_jkt {
            m.insert("cnf".into(), json!({ "jkt": jkt }));
        }
    }
    Ok(out)
}

/// RFC 7009: revokes `raw` if it is a live access token issued to `caller`.
/// Unknown, foreign, expired or other clients' tokens are answered the same
/// way (200), so the endpoint reveals nothing.
pub async fn revoke_token(
    tp: &TokenPath<'_>,
    caller: &Client,
    raw: &str,
    ctx: RequestContext,
) -> Result<(), Error> {
    let Some(token) = verify_own(tp, raw, ctx.now).await? else {
        // A refresh token revokes its whole family (and, via sid, its access tokens).
        crate::domain::grants::revoke_refresh(tp, caller, raw, ctx.now).await?;
        return Ok(());
    };
    if token.client_id != caller.client_id {
        tp.failures
            .record(
                tp.db,
                AuditEvent::new("revocation_refused", ctx.now)
                    .client(&caller.client_id)
                    .jti(&token.jti)
                    .ip(ctx.ip)
                    .detail("token belongs to another client"),
            )
            .await?;
        return Ok(());
    }
    revocation::revoke(
        tp.db,
        RevocationKind::Jti,
        &token.jti,
        token.exp.saturating_add(tp.config.leeway_secs),
        &revocation::by_client("rfc7009", &caller.client_id),
        ctx.now,
    )
    .await?;
    audit::record(
        &tp.db.pool,
        &AuditEvent::new("token_revoked", ctx.now)
            .client(&caller.client_id)
            .subject(&token.sub)
            .jti(&token.jti)
            .ip(ctx.ip)
            .detail("rfc7009"),
    )
    .await?;
    Ok(())
}

/// Revokes every token naming `value` as `kind` issued up to `now` (admin,
/// CLI); a `sid`, `sub` or `client_id` also ends the grants it names, so
/// their refresh tokens and codes yield nothing new.
pub async fn revoke_identifier(
    db: &crate::store::db::Db,
    span: revocation::CoverSpan,
    kind: RevocationKind,
    value: &str,
    reason: &str,
    now: UnixTime,
) -> Result<revocation::Revocation, Error> {
    if value.is_empty() || value.len() > 256 {
        return Err(Error::InvalidRequest(
            "the revoked value must be 1-256 characters".into(),
        ));
    }
    // A sid, sub or client_id also ends the grants it names (refresh
    // families, outstanding codes): the entry refuses only tokens issued up
    // to `revoked_at`, and a refresh a second later would mint a valid one.
    let rev = match crate::domain::grants::GrantsOf::named_by(kind, value) {
        Some(grants) => {
            crate::domain::grants::end_and_revoke(db, span, grants, reason, now).await?
        }
        None => {
            let drop_after = now.0.saturating_add(span.secs());
            revocation::revoke(db, kind, value, drop_after, reason, now).await?
        }
    };
    let mut e = AuditEvent::new("token_revoked", now).detail(format!(
        "{}={} by {reason}",
        kind.name(),
        value
    ));
    match kind {
        RevocationKind::Jti => e = e.jti(value),
        RevocationKind::Sub => e = e.subject(value),
        RevocationKind::ClientId => e = e.client(value),
        _ => {}
    }
    audit::record(&db.pool, &e).await?;
    Ok(rev)
}
