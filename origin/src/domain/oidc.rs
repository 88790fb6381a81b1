//! OpenID Connect Core 1.0 on the authorization code flow: the id_token
//! (§2, §3.1.3.6–3.1.3.7) and the authorization request parameters the
//! origin honours (§3.1.2.1: `nonce`, `prompt`, `max_age`, `login_hint`).
//! Nothing here reads a clock or the database.
//!
//! Choices (see docs/security.md):
//! - the id_token is signed by the same key ring as access tokens, with
//!   header `typ: JWT` — never `at+jwt`, so no access token validator of
//!   ours (edge, introspection) accepts one;
//! - it lives as long as an access token (`access_token_ttl`);
//! - `acr` is omitted (no `acr_values` are supported, and `"0"` would say
//!   nothing), `amr` is `["pwd"]`;
//! - `at_hash` hashes with the hash of the signing algorithm (SHA-256 for
//!   ES256, RS256, PS256; SHA-384 for ES384) and, for EdDSA (Ed25519),
//!   SHA-512 — the convention of Ed25519's own hash that Authlib and other
//!   OpenID providers follow (OpenID Connect Core defines no EdDSA hash).

use crate::domain::error::Error;
use crate::support::crypto::{CryptoError, SigningKey};
use gatehouse_common::alg::Algorithm;
use gatehouse_common::{b64, UnixTime};
use sha2::{Digest as _, Sha256, Sha384, Sha512};

/// The scope that makes a request an OpenID Connect request.
pub const OPENID: &str = "openid";

/// The scope asking for a refresh token that outlives the browser
/// session (OpenID Connect Core §11).
pub const OFFLINE_ACCESS: &str = "offline_access";

/// The longest `nonce` accepted, bytes.
pub const MAX_NONCE_LEN: usize = 255;

/// The longest `login_hint` accepted, bytes (a longer one is ignored).
pub const MAX_LOGIN_HINT_LEN: usize = 128;

/// The claims an id_token of ours may carry (`claims_supported`).
pub const CLAIMS_SUPPORTED: [&str; 11] = [
    "iss",
    "sub",
    "aud",
    "azp",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "sid",
    "amr",
];

/// The `prompt` values honoured (`prompt_values_supported`).
pub const PROMPT_VALUES: [&str; 3] = ["none", "login", "consent"];

/// Whether `scopes` make this an OpenID Connect request.
#[must_use]
pub fn is_openid(scopes: &[String]) -> bool {
    scopes.iter().any(|s| s == OPENID)
}

/// Whether `scopes` ask for offline access.
#[must_use]
pub fn is_offline(scopes: &[String]) -> bool {
    scopes.iter().any(|s| s == OFFLINE_ACCESS)
}

/// The scopes of an authorization request after OpenID Connect Core §11:
/// `offline_access` is kept only in an OpenID Connect request (`openid`)
/// whose client may use refresh tokens (the only response that could carry
/// one) and which may show the consent page (not `prompt=none`: consent
/// cannot be asked, so the request is served without offline access).
/// Elsewhere it is ignored (dropped), as §11 requires. That the client is
/// registered for the scope at all is checked before, like any scope.
#[must_use]
pub fn offline_access_scopes(
    mut scopes: Vec<String>,
    client_refreshes: bool,
    prompt: Prompt,
) -> Vec<String> {
    if is_offline(&scopes) && !(is_openid(&scopes) && client_refreshes && !prompt.none) {
        scopes.retain(|s| s != OFFLINE_ACCESS);
    }
    scopes
}

/// `at_hash` (§3.1.3.6): the base64url left half of the hash of the
/// access token's ASCII, with the hash of `alg` (see the module notes for
/// EdDSA); `None` for an algorithm with no hash defined here.
#[must_use]
pub fn at_hash(alg: Algorithm, access_token: &str) -> Option<String> {
    let bytes = access_token.as_bytes();
    let digest: Vec<u8> = match alg {
        Algorithm::Es256 | Algorithm::Rs256 | Algorithm::Ps256 => Sha256::digest(bytes).to_vec(),
        Algorithm::Es384 => Sha384::digest(bytes).to_vec(),
        Algorithm::EdDsa => Sha512::digest(bytes).to_vec(),
        _ => return None,
    };
    let half = digest.get(..digest.len() / 2)?;
    Some(b64::encode(half))
}

/// What an id_token says about the user's authentication and the request.
#[derive(Clone, Copy, Debug)]
pub struct IdTokenClaims<'a> {
    /// `sub`: the user id.
    pub sub: &'a str,
    /// `aud` and `azp`: the client.
    pub client_id: &'a str,
    /// `sid`: the browser session's public id, while that session lasts
    /// (an offline grant refreshed after logout names none: no RP may take
    /// its id_token for a session that has ended).
    pub session_sid: Option<&'a str>,
    /// `auth_time`.
    pub auth_time: i64,
    /// `amr` values, space-separated.
    pub amr: &'a str,
    /// `nonce`, echoed (only in the code's token response).
    pub nonce: Option<&'a str>,
}

/// The claims of an id_token as signed (OpenID Connect Core §2).
#[derive(serde::Serialize)]
struct IdTokenBody<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    azp: &'a str,
    exp: i64,
    iat: i64,
    auth_time: i64,
    at_hash: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<&'a str>,
    amr: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
}

/// Signs an id_token for the access token `access_token`, valid for `ttl`
/// seconds from `now`.
pub fn sign_id_token(
    signer: &SigningKey,
    issuer: &str,
    ttl: i64,
    c: &IdTokenClaims<'_>,
    access_token: &str,
    now: UnixTime,
) -> Result<String, Error> {
    let amr: Vec<&str> = c.amr.split(' ').filter(|a| !a.is_empty()).collect();
    let at_hash = at_hash(signer.alg(), access_token)
        .ok_or(CryptoError::UnsupportedAlgorithm(signer.alg()))?;
    let claims = IdTokenBody {
        iss: issuer,
        sub: c.sub,
        aud: c.client_id,
        azp: c.client_id,
        exp: now.0.saturating_add(ttl),
        iat: now.0,
        auth_time: c.auth_time,
        at_hash: &at_hash,
        sid: c.session_sid,
        amr,
        nonce: c.nonce,
    };
    Ok(signer.sign_jws("JWT", &claims)?)
}

/// A `nonce` as accepted: 1 to [`MAX_NONCE_LEN`] bytes, no control
/// characters.
#[must_use]
pub fn valid_nonce(n: &str) -> bool {
    !n.is_empty() && n.len() <= MAX_NONCE_LEN && !n.chars().any(char::is_control)
}

/// The longest `id_token_hint` accepted, bytes.
pub const MAX_ID_TOKEN_HINT_LEN: usize = 8192;

/// An `id_token_hint` that is not a compact JWT whose payload names a `sub`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("id_token_hint is not an id_token")]
pub struct MalformedHint;

/// The `sub` an `id_token_hint` (§3.1.2.1) names: the only user a session
/// may serve the request for. Its signature, issuer and expiry are not
/// checked: the hint only narrows which signed-in user is served (a forged
/// one can only bring a login page or `login_required`), never widens it.
pub fn hint_subject(raw: &str) -> Result<String, MalformedHint> {
    if raw.len() > MAX_ID_TOKEN_HINT_LEN {
        return Err(MalformedHint);
    }
    let mut parts = raw.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(MalformedHint);
    };
    let bytes = b64::decode(payload).map_err(|_| MalformedHint)?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| MalformedHint)?;
    match claims.get("sub").and_then(serde_json::Value::as_str) {
        Some(sub) if !sub.is_empty() => Ok(sub.to_owned()),
        _ => Err(MalformedHint),
    }
}

/// The parsed `prompt` (§3.1.2.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Prompt {
    /// `none`: no page may be shown.
    pub none: bool,
    /// `login`: authenticate again even with a session.
    pub login: bool,
    /// `consent`: ask for consent even when remembered.
    pub consent: bool,
}

/// Why a `prompt` was refused (the error codes of §3.1.2.6 / RFC 6749 §4.1.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PromptError {
    /// Malformed, an unknown value, or `none` with another value.
    #[error("prompt is malformed, unknown, or combines none with another value")]
    Invalid,
    /// `select_account`: there is no account chooser.
    #[error("prompt=select_account is not supported")]
    SelectAccount,
}

impl Prompt {
    /// Parses a space-separated `prompt`.
    pub fn parse(raw: Option<&str>) -> Result<Self, PromptError> {
        let mut p = Self::default();
        let Some(raw) = raw else {
            return Ok(p);
        };
        let mut any = false;
        for v in raw.split(' ').filter(|v| !v.is_empty()) {
            any = true;
            match v {
                "none" => p.none = true,
                "login" => p.login = true,
                "consent" => p.consent = true,
                "select_account" => return Err(PromptError::SelectAccount),
                _ => return Err(PromptError::Invalid),
            }
        }
        if !any || (p.none && (p.login || p.consent)) {
            return Err(PromptError::Invalid);
        }
        Ok(p)
    }
}

/// A `max_age` that is not a non-negative decimal of at most ten digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("max_age must be a non-negative number of seconds")]
pub struct MalformedMaxAge;

/// `max_age` (§3.1.2.1): non-negative decimal seconds, at most ten digits.
pub fn parse_max_age(raw: Option<&str>) -> Result<Option<i64>, MalformedMaxAge> {
    match raw {
        None => Ok(None),
        Some(s) if !s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse::<i64>().map(Some).map_err(|_| MalformedMaxAge)
        }
        Some(_) => Err(MalformedMaxAge),
    }
}

/// Whether a session authenticated at `auth_time` is too old for
/// `max_age` at `now` (`max_age=0`: always, like `prompt=login`).
#[must_use]
pub fn too_old(auth_time: i64, max_age: Option<i64>, now: UnixTime) -> bool {
    max_age.is_some_and(|m| m == 0 || now.0.saturating_sub(auth_time) > m)
}

/// How much earlier than the opening of a pushed request a login may be
/// and still count as made in its interaction: the clocks of the replicas
/// that read the two times may differ by this much.
pub const FRESH_LOGIN_SKEW_SECS: i64 = 5;

/// Whether a session authenticated at `auth_time` may serve a request with
/// `prompt=login` (`login`) and `max_age` at `now`.
///
/// A request asking for a fresh login (`prompt=login`, or `max_age=0`) is
/// served only by a login made during this interaction: at or after
/// `fresh_since`, when `/authorize` first opened the pushed request
/// (RFC 9126), less [`FRESH_LOGIN_SKEW_SECS`] (replicas' clocks: the
/// opening and the login may be read on different ones). A front-channel request has no such time (`None`): its
/// login form returns to `/authorize` without `prompt=login` and
/// `max_age=0`, so while it still carries them no session serves it. Any
/// other `max_age` is measured from `auth_time` ([`too_old`]).
#[must_use]
pub fn session_serves(
    auth_time: i64,
    login: bool,
    max_age: Option<i64>,
    fresh_since: Option<i64>,
    now: UnixTime,
) -> bool {
    let fresh_login = login || max_age == Some(0);
    if fresh_login
        && fresh_since.is_none_or(|t| auth_time < t.saturating_sub(FRESH_LOGIN_SKEW_SECS))
    {
        return false;
    }
    !max_age.is_some_and(|m| m > 0 && too_old(auth_time, Some(m), now))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// OpenID Connect Core §A.3-style check: the hash's left half, base64url.
    #[test]
    fn at_hash_is_the_left_half_of_the_algs_hash() {
        let t = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
        let full = Sha256::digest(t.as_bytes());
        assert_eq!(at_hash(Algorithm::Es256, t), Some(b64::encode(&full[..16])));
        assert_eq!(at_hash(Algorithm::Rs256, t).map(|h| h.len()), Some(22));
        assert_eq!(at_hash(Algorithm::Es384, t).map(|h| h.len()), Some(32));
        let full = Sha512::digest(t.as_bytes());
        assert_eq!(at_hash(Algorithm::EdDsa, t), Some(b64::encode(&full[..32])));
    }

    #[test]
    fn prompt_values() {
        assert_eq!(Prompt::parse(None), Ok(Prompt::default()));
        assert!(Prompt::parse(Some("none")).unwrap().none);
        let p = Prompt::parse(Some("login consent")).unwrap();
        assert!(p.login && p.consent && !p.none);
        for bad in ["", " ", "none login", "consent none", "bogus", "LOGIN"] {
            assert_eq!(
                Prompt::parse(Some(bad)),
                Err(PromptError::Invalid),
                "{bad:?}"
            );
        }
        assert_eq!(
            Prompt::parse(Some("select_account")),
            Err(PromptError::SelectAccount)
        );
    }

    #[test]
    fn offline_access_only_where_consent_and_a_refresh_token_can_follow() {
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<String>>();
        let none = Prompt {
            none: true,
            ..Prompt::default()
        };
        let asked = s(&["openid", "offline_access", "read"]);
        assert_eq!(
            offline_access_scopes(asked.clone(), true, Prompt::default()),
            asked
        );
        assert_eq!(
            offline_access_scopes(asked.clone(), false, Prompt::default()),
            s(&["openid", "read"])
        );
        assert_eq!(
            offline_access_scopes(asked, true, none),
            s(&["openid", "read"])
        );
        assert_eq!(
            offline_access_scopes(s(&["offline_access", "read"]), true, Prompt::default()),
            s(&["read"])
        );
    }

    #[test]
    fn max_age_and_nonce_bounds() {
        assert_eq!(parse_max_age(Some("0")), Ok(Some(0)));
        assert_eq!(parse_max_age(Some("3600")), Ok(Some(3600)));
        for bad in ["", "-1", "1e3", " 1", "99999999999"] {
            assert!(parse_max_age(Some(bad)).is_err(), "{bad:?}");
        }
        assert!(too_old(100, Some(0), UnixTime(100)));
        assert!(!too_old(100, Some(10), UnixTime(110)));
        assert!(too_old(100, Some(10), UnixTime(111)));
        assert!(!too_old(100, None, UnixTime(1_000_000)));
        // A fresh login: only one made since the pushed request was opened.
        assert!(!session_serves(100, true, None, None, UnixTime(100)));
        assert!(!session_serves(94, true, None, Some(100), UnixTime(100)));
        assert!(session_serves(95, true, None, Some(100), UnixTime(100)));
        assert!(session_serves(100, true, None, Some(100), UnixTime(500)));
        assert!(!session_serves(
            94,
            false,
            Some(0),
            Some(100),
            UnixTime(100)
        ));
        assert!(session_serves(
            100,
            false,
            Some(0),
            Some(100),
            UnixTime(100)
        ));
        // Any other max_age still counts from auth_time.
        assert!(!session_serves(
            100,
            true,
            Some(10),
            Some(100),
            UnixTime(111)
        ));
        assert!(session_serves(100, false, Some(10), None, UnixTime(110)));
        assert!(!session_serves(100, false, Some(10), None, UnixTime(111)));
        assert!(session_serves(1, false, None, None, UnixTime(1_000_000)));
        let hint = |json: &str| format!("e30.{}.sig", b64::encode(json.as_bytes()));
        assert_eq!(hint_subject(&hint(r#"{"sub":"u1"}"#)), Ok("u1".into()));
        for bad in [
            hint(r#"{"sub":""}"#),
            hint(r#"{"sub":1}"#),
            hint("[]"),
            "a.b".into(),
            "a.b.c.d".into(),
            "e30.!!!.x".into(),
            format!("{}.x", hint(r#"{"sub":"u1"}"#)),
            "a".repeat(MAX_ID_TOKEN_HINT_LEN + 1),
        ] {
            assert_eq!(hint_subject(&bad), Err(MalformedHint), "{bad}");
        }
        assert!(valid_nonce("n-0S6_WzA2Mj"));
        assert!(!valid_nonce(""));
        assert!(!valid_nonce(&"a".repeat(256)));
        assert!(!valid_nonce("a\nb"));
    }
}
