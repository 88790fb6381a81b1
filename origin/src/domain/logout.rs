//! OpenID Connect RP-Initiated Logout 1.0 and the sessions an operator sees
//! and ends. Nothing here reads a clock: `now` comes from the request.
//!
//! Choices (see docs/security.md):
//! - `id_token_hint` must be an id_token this origin issued: header
//!   `typ: JWT` (never an access token, `at+jwt`), signed by a key of the
//!   origin's published key set, `iss` this issuer. Its `exp` is not
//!   checked (§2: the OP should accept an expired hint — the RP's id_token
//!   has usually expired by the time the user logs out).
//! - A `post_logout_redirect_uri` must exactly match one registered for the
//!   client (named by `client_id`, or by the hint's `aud`); anything else is
//!   an error page, never a redirect (§3: no open redirector).
//! - The user confirms on a CSRF-protected page unless the request proves it
//!   comes from the RP the user is signed in to (§2, §6): a valid hint whose
//!   `sid` is the browser's session and whose `sub` is its user. Without
//!   that, a cross-site link cannot log the user out.
//! - Logout ends the browser session (row deleted, cookie cleared) and
//!   revokes every online grant approved in it — refresh families and codes
//!   not yet redeemed — through the family revocation that reaches the edge
//!   (a `sid` revocation of each family). Offline grants (OpenID Connect
//!   Core §11) survive it; the operator ends them with `revoke-session`.

use crate::config::Config;
use crate::domain::clients::{self, Client};
use crate::domain::error::Error;
use crate::domain::grants;
use crate::domain::keys::KeyRing;
use crate::store::audit::{self, AuditEvent};
use crate::store::db::Db;
use crate::store::sessions;
use crate::support::crypto::AwsLc;
use gatehouse_common::jws::{self, Limits};
use gatehouse_common::provider::SignatureVerifier as _;
use gatehouse_common::UnixTime;
use serde::Serialize;
use serde_json::Value;

/// The longest `state` echoed to a post-logout redirect URI, bytes.
pub const MAX_STATE_LEN: usize = 1024;

/// The longest `logout_hint` considered, bytes (a longer one is ignored).
pub const MAX_LOGOUT_HINT_LEN: usize = 128;

/// What a verified `id_token_hint` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdTokenHint {
    /// `sub`: the user.
    pub sub: String,
    /// `aud`: the clients it was issued to.
    pub aud: Vec<String>,
    /// `sid`: the browser session it was issued in, if it names one.
    pub sid: Option<String>,
}

/// Why an `id_token_hint` was refused (the reason stays in the log; the
/// page says only that the hint is not ours).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HintError {
    /// Not a compact JWS within the size limits, or not `typ: JWT`.
    #[error("not an id_token")]
    Malformed,
    /// No published key of ours verifies it.
    #[error("not signed by a key of this issuer")]
    Signature,
    /// Its `iss` is not this issuer, or `sub`/`aud` are missing.
    #[error("not an id_token of this issuer")]
    Claims,
}

/// Verifies `raw` as an id_token this issuer signed with a key of `ring`
/// published at `now`. Expired hints are accepted (see the module notes).
pub fn verify_id_token_hint(
    ring: &KeyRing,
    issuer: &str,
    raw: &str,
    now: UnixTime,
) -> Result<IdTokenHint, HintError> {
    let jws = jws::parse(raw, &Limits::ACCESS_TOKEN).map_err(|_| HintError::Malformed)?;
    if !jws::typ_is(jws.header.typ.as_deref(), "jwt") || jws.header.jwk.is_some() {
        return Err(HintError::Malformed);
    }
    let jwks = ring.jwks(now);
    let key = jwks
        .select(jws.header.kid.as_deref(), jws.header.alg)
        .map_err(|_| HintError::Signature)?;
    if !AwsLc.verify(key.jwk, key.alg, jws.signing_input(), jws.signature()) {
        return Err(HintError::Signature);
    }
    let c = &jws.claims;
    if c.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err(HintError::Claims);
    }
    let sub = c
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(HintError::Claims)?;
    let aud: Vec<String> = match c.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(list)) => list
            .iter()
            .map(|a| a.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or(HintError::Claims)?,
        _ => return Err(HintError::Claims),
    };
    if aud.is_empty() {
        return Err(HintError::Claims);
    }
    let sid = match c.get("sid") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(HintError::Claims),
    };
    Ok(IdTokenHint {
        sub: sub.to_owned(),
        aud,
        sid,
    })
}

/// The parameters of a logout request (§2), as sent.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogoutParams<'a> {
    /// `id_token_hint`.
    pub id_token_hint: Option<&'a str>,
    /// `client_id`.
    pub client_id: Option<&'a str>,
    /// `post_logout_redirect_uri`.
    pub post_logout_redirect_uri: Option<&'a str>,
    /// `state`.
    pub state: Option<&'a str>,
    /// `logout_hint`.
    pub logout_hint: Option<&'a str>,
}

/// A validated logout request.
#[derive(Clone, Debug, Default)]
pub struct LogoutRequest {
    /// The verified `id_token_hint`.
    pub hint: Option<IdTokenHint>,
    /// The client the request names (by `client_id` or the hint's `aud`).
    pub client: Option<Client>,
    /// The registered post-logout redirect URI to send the user to.
    pub redirect: Option<String>,
    /// `state`, echoed on that redirect.
    pub state: Option<String>,
    /// `logout_hint`, if short and printable.
    pub logout_hint: Option<String>,
}

/// Validates a logout request (§2–§3). Every error is an error page, never
/// a redirect: a request that fails a check cannot be trusted with one.
pub async fn validate(
    db: &Db,
    ring: &KeyRing,
    issuer: &str,
    p: LogoutParams<'_>,
    now: UnixTime,
) -> Result<LogoutRequest, Error> {
    let hint = match p.id_token_hint {
        Some(raw) => Some(verify_id_token_hint(ring, issuer, raw, now).map_err(|e| {
            tracing::info!(reason = %e, "id_token_hint refused");
            Error::AuthorizePage("id_token_hint is not an ID token issued by this server")
        })?),
        None => None,
    };
    let client_id = match (p.client_id, &hint) {
        (Some(c), Some(h)) if !h.aud.iter().any(|a| a == c) => {
            return Err(Error::AuthorizePage(
                "client_id is not the audience of id_token_hint",
            ))
        }
        (Some(c), _) => Some(c.to_owned()),
        (None, Some(h)) => h.aud.first().cloned(),
        (None, None) => None,
    };
    let client = match &client_id {
        Some(id) => match clients::get(db, id).await? {
            Some(c) => Some(c),
            // A hint for a client deleted since still logs the user out;
            // an unknown `client_id` sent as such is an error.
            None if p.client_id.is_none() => None,
            None => return Err(Error::AuthorizePage("unknown client")),
        },
        None => None,
    };
    let redirect = match p.post_logout_redirect_uri {
        None => None,
        Some(uri) => {
            let Some(c) = &client else {
                return Err(Error::AuthorizePage(
                    "post_logout_redirect_uri needs client_id or id_token_hint",
                ));
            };
            if !c.post_logout_redirect_uris.iter().any(|u| u == uri) {
                return Err(Error::AuthorizePage(
                    "post_logout_redirect_uri is not registered for this client",
                ));
            }
            match url::Url::parse(uri) {
                Ok(u) if u.fragment().is_none() && !u.cannot_be_a_base() => Some(uri.to_owned()),
                _ => {
                    return Err(Error::AuthorizePage(
                        "post_logout_redirect_uri cannot be used",
                    ))
                }
            }
        }
    };
    if p.state.is_some_and(|s| s.len() > MAX_STATE_LEN) {
        return Err(Error::AuthorizePage("state is too long"));
    }
    let logout_hint = p
        .logout_hint
        .filter(|h| h.len() <= MAX_LOGOUT_HINT_LEN && !h.chars().any(char::is_control))
        .map(str::to_owned);
    Ok(LogoutRequest {
        hint,
        client,
        redirect,
        state: p.state.map(str::to_owned),
        logout_hint,
    })
}

impl LogoutRequest {
    /// Whether the request proves it comes from the RP the user is signed
    /// in to in the session `sid` of `user_id` (so no confirmation is
    /// asked): a verified hint naming that session and that user.
    #[must_use]
    pub fn proves_session(&self, user_id: &str, sid: &str) -> bool {
        self.hint
            .as_ref()
            .is_some_and(|h| h.sub == user_id && h.sid.as_deref() == Some(sid))
    }

    /// Where to send the user after logout: the registered URI with
    /// `state` added to its query; `None` without a registered URI.
    #[must_use]
    pub fn redirect_location(&self) -> Option<String> {
        let mut url = url::Url::parse(self.redirect.as_deref()?).ok()?;
        if let Some(s) = &self.state {
            url.query_pairs_mut().append_pair("state", s);
        }
        Some(url.into())
    }
}

/// What ending a session did.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Ended {
    /// Whether a live browser session was ended.
    pub session_ended: bool,
    /// The grants revoked (refresh families, and codes not yet redeemed).
    pub grants_revoked: Vec<String>,
}

/// Ends `user_id`'s browser session `sid` and revokes its online grants
/// (each through [`grants::revoke_family`], so the edge refuses their
/// access tokens); offline grants stay. `reason` goes into the revocation
/// entries and the `session_ended` audit row.
pub async fn end_session(
    db: &Db,
    config: &Config,
    user_id: &str,
    sid: &str,
    reason: &str,
    now: UnixTime,
) -> Result<Ended, Error> {
    // The grants first, while the session row stands: if a revocation
    // fails, the session is still there and a second logout (or the
    // operator) finds everything again. Then the row: from there on no code
    // can be issued in it (`store::auth_codes::insert`). Then what it
    // approved between the two.
    let mut grants_revoked = Vec::new();
    revoke_online_grants(db, config, user_id, sid, reason, now, &mut grants_revoked).await?;
    let session_ended = sessions::delete_session(db, user_id, sid).await?;
    revoke_online_grants(db, config, user_id, sid, reason, now, &mut grants_revoked).await?;
    audit::record(
        &db.pool,
        &AuditEvent::new("session_ended", now)
            .subject(user_id)
            .detail(format!(
                "session={sid} grants_revoked={} ({reason})",
                grants_revoked.len()
            )),
    )
    .await?;
    Ok(Ended {
        session_ended,
        grants_revoked,
    })
}

/// Revokes the online grants of `user_id`'s session `sid` not yet in
/// `done`, and adds them to it.
async fn revoke_online_grants(
    db: &Db,
    config: &Config,
    user_id: &str,
    sid: &str,
    reason: &str,
    now: UnixTime,
    done: &mut Vec<String>,
) -> Result<(), Error> {
    for family in sessions::online_grants_of_session(db, user_id, sid, now.0).await? {
        if !done.contains(&family) {
            grants::revoke_family(db, config, &family, reason, now).await?;
            done.push(family);
        }
    }
    Ok(())
}
