//! OpenID Connect UserInfo (OpenID Connect Core 1.0 §5.3): the claims of
//! the user an access token of ours names, by the token's scopes.
//!
//! The token is verified exactly as introspection verifies it
//! ([`introspect::verify_own_checked`], `common`'s RFC 9068 checks with the
//! published keys), must not be revoked, and must carry `openid`. A
//! DPoP-bound token is accepted only with `Authorization: DPoP` and a proof
//! for this request, its key and this token ([`dpop::check`]; the proof's
//! `jti` recorded once the request is otherwise accepted); presented as
//! `Bearer` it is refused (RFC 9449 §7.1). Refusals are `common`'s
//! [`Rejection`]: RFC 6750 §3 / RFC 9449 §7.1 status, challenge and fixed
//! descriptions, never the token.

use crate::domain::dpop::{self, ProofTarget};
use crate::domain::error::Error;
use crate::domain::introspect;
use crate::domain::state::TokenPath;
use crate::domain::users;
use crate::store::revocation;
use gatehouse_common::dpop::{check_scheme, BoundAccessToken, DpopError};
use gatehouse_common::rejection::{ErrorCode, Rejection, Scheme};
use gatehouse_common::UnixTime;
use serde_json::{Map, Value};

/// The endpoint's path on the issuer (the `htu` of DPoP proofs sent to it).
pub const PATH: &str = "/userinfo";

/// The scope a token needs here (OpenID Connect Core 1.0 §5.3).
pub const OPENID: &str = crate::domain::oidc::OPENID;

/// The scope releasing `name`, `preferred_username`, `updated_at` (§5.4).
pub const PROFILE: &str = "profile";

/// The scope releasing `email`, `email_verified` (§5.4).
pub const EMAIL: &str = "email";

/// The claims UserInfo may release (besides `sub`).
pub const CLAIMS: [&str; 5] = [
    "name",
    "preferred_username",
    "updated_at",
    "email",
    "email_verified",
];

/// One UserInfo request, as received.
#[derive(Clone, Copy, Debug)]
pub struct UserinfoRequest<'a> {
    /// `GET`, `HEAD` or `POST`, as received (a proof's `htm` must match it).
    pub method: &'a str,
    /// The `Authorization` header values, each as sent.
    pub authorization: &'a [&'a [u8]],
    /// The `DPoP` header values, each as sent.
    pub dpop: &'a [&'a [u8]],
}

/// Why a UserInfo request got no claims.
#[derive(Debug)]
pub enum Refusal {
    /// The credentials: an RFC 6750 / RFC 9449 refusal for the client.
    Rejected(Rejection),
    /// The server failed (storage): a 500.
    Failed(Error),
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Self {
        Self::Failed(e)
    }
}

impl From<crate::store::StoreError> for Refusal {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Failed(e.into())
    }
}

impl From<Rejection> for Refusal {
    fn from(r: Rejection) -> Self {
        Self::Rejected(r)
    }
}

fn dpop_refusal(e: &DpopError, tp: &TokenPath<'_>, now: UnixTime) -> Refusal {
    Refusal::Rejected(e.rejection(tp.dpop_nonces, now))
}

/// The UserInfo claims for the request's access token at `now`: `sub`
/// always; with `profile`, `name` (if set), `preferred_username` and
/// `updated_at`; with `email`, `email` and `email_verified` (if an address
/// is set).
pub async fn userinfo(
    tp: &TokenPath<'_>,
    req: &UserinfoRequest<'_>,
    now: UnixTime,
) -> Result<Value, Refusal> {
    let authorization: Vec<&str> = req
        .authorization
        .iter()
        .map(|v| std::str::from_utf8(v))
        .collect::<Result<_, _>>()
        .map_err(|_| {
            Rejection::new(
                ErrorCode::InvalidRequest,
                Scheme::Bearer,
                "malformed Authorization header",
            )
        })?;
    let credentials = gatehouse_common::http::authorization(&authorization)?
        .ok_or_else(Rejection::missing_credentials)?;
    let (scheme, raw) = (credentials.scheme, credentials.token);
    let token = introspect::verify_own_checked(tp, raw, now)
        .await?
        .map_err(|e| Rejection::from_access_token(&e, scheme))?;
    // RFC 9449 §7.1: a bound token only with the DPoP scheme, and the
    // DPoP scheme only with a bound token.
    check_scheme(&token, scheme).map_err(|e| dpop_refusal(&e, tp, now))?;
    let proof = if scheme == Scheme::DPoP {
        let values = dpop::ascii_values(req.dpop).ok_or_else(|| {
            Rejection::new(
                ErrorCode::InvalidDpopProof,
                Scheme::DPoP,
                "the DPoP header is not ASCII",
            )
        })?;
        let target = ProofTarget {
            method: req.method,
            path: PATH,
            access_token: Some(BoundAccessToken::new(raw, &token)),
        };
        Some(dpop::check(tp, &values, &target, now).map_err(|e| dpop_refusal(&e, tp, now))?)
    } else {
        None
    };
    if revocation::is_revoked(tp.db, &token, now).await? {
        return Err(Rejection::new(
            ErrorCode::InvalidToken,
            scheme,
            "the access token was revoked",
        )
        .into());
    }
    if !token.scope.iter().any(|s| s == OPENID) {
        let mut r = Rejection::new(
            ErrorCode::InsufficientScope,
            scheme,
            "the access token lacks the openid scope",
        );
        r.scope = Some(OPENID.to_owned());
        return Err(r.into());
    }
    // A client's own token (client_credentials) names no user; a deleted
    // user's tokens are revoked too, and answered the same way.
    let Some(user) = users::get(tp.db, &token.sub).await? else {
        return Err(Rejection::new(
            ErrorCode::InvalidToken,
            scheme,
            "the access token names no user",
        )
        .into());
    };
    if let Some(proof) = &proof {
        if !dpop::remember(tp, proof).await? {
            return Err(Rejection::new(
                ErrorCode::InvalidDpopProof,
                Scheme::DPoP,
                "the DPoP proof was already used",
            )
            .into());
        }
    }
    Ok(claims(&user, &token.scope))
}

/// The claims `scopes` release of `user` (OpenID Connect Core 1.0 §5.4);
/// absent values are omitted, not `null`.
#[must_use]
pub fn claims(user: &users::User, scopes: &[String]) -> Value {
    let has = |s: &str| scopes.iter().any(|x| x == s);
    let mut m = Map::new();
    m.insert("sub".into(), user.user_id.clone().into());
    if has(PROFILE) {
        if let Some(name) = &user.name {
            m.insert("name".into(), name.clone().into());
        }
        m.insert("preferred_username".into(), user.username.clone().into());
        m.insert("updated_at".into(), user.updated_at.into());
    }
    if has(EMAIL) {
        if let Some(email) = &user.email {
            m.insert("email".into(), email.clone().into());
            m.insert("email_verified".into(), user.email_verified.into());
        }
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::claims;
    use crate::domain::users::User;

    fn alice(name: Option<&str>, email: Option<&str>) -> User {
        User {
            user_id: "u1".into(),
            username: "alice".into(),
            created_at: 10,
            name: name.map(str::to_owned),
            email: email.map(str::to_owned),
            email_verified: email.is_some(),
            updated_at: 20,
        }
    }

    fn scopes(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn claims_follow_the_scopes_and_omit_absent_values() {
        let full = alice(Some("Alice A."), Some("alice@example.com"));
        assert_eq!(
            claims(&full, &scopes("openid")),
            serde_json::json!({"sub": "u1"})
        );
        assert_eq!(
            claims(&full, &scopes("openid profile")),
            serde_json::json!({"sub": "u1", "name": "Alice A.", "preferred_username": "alice", "updated_at": 20})
        );
        assert_eq!(
            claims(&full, &scopes("openid email")),
            serde_json::json!({"sub": "u1", "email": "alice@example.com", "email_verified": true})
        );
        let bare = alice(None, None);
        assert_eq!(
            claims(&bare, &scopes("openid profile email")),
            serde_json::json!({"sub": "u1", "preferred_username": "alice", "updated_at": 20})
        );
    }
}
