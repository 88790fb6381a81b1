//! JWT access tokens (RFC 9068): parse, then verify, then accept.
//!
//! [`UntrustedAccessToken::parse`] does every check that needs no key;
//! the caller looks the key up (the key decides the algorithm) and verifies
//! the signature with its provider; [`UntrustedAccessToken::accept`] then
//! validates the claims at the caller's `now`. The numbered steps of
//! RFC 9068 §4 are marked in the code.

use crate::alg::Algorithm;
use crate::claims::{self, ClaimError};
use crate::jwk::KeyError;
use crate::jws::{self, JwsError, Limits, UntrustedJws};
use crate::profile::TokenProfile;
use crate::UnixTime;
use serde_json::Value;

/// What a resource server accepts from one issuer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessTokenPolicy {
    /// The issuer identifier; `iss` must equal it exactly (RFC 9068 §4 step 3).
    pub issuer: String,
    /// Audiences this resource server answers to; `aud` must contain one (step 4).
    pub audiences: Vec<String>,
    /// Algorithms allowed for this issuer (a subset of what its keys say).
    pub algorithms: Vec<Algorithm>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    pub leeway_secs: i64,
    /// If set, tokens whose `iat` is older than this are refused.
    pub max_age_secs: Option<i64>,
    /// Where this issuer puts the client id, scopes and roles, which `typ`
    /// it uses and whether it sets `jti` (RFC 9068 by default). Never
    /// loosens the signature, `iss`, `aud`, time or algorithm checks.
    pub profile: TokenProfile,
}

impl AccessTokenPolicy {
    /// A policy with the default algorithms (all asymmetric ones), 30 s leeway and no maximum age.
    #[must_use]
    pub fn new(issuer: impl Into<String>, audiences: Vec<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audiences,
            algorithms: Algorithm::ALL.to_vec(),
            leeway_secs: 30,
            max_age_secs: None,
            profile: TokenProfile::rfc9068(),
        }
    }
}

/// Why an access token was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccessTokenError {
    /// The JWS structure or header was refused.
    #[error(transparent)]
    Jws(JwsError),
    /// Step 1: `typ` is not `at+jwt` / `application/at+jwt`.
    #[error("token typ is not at+jwt")]
    WrongType,
    /// The header embeds a key (`jwk`); access tokens are verified only with the issuer's keys.
    #[error("access tokens must not embed a key")]
    EmbeddedKey,
    /// The unverified `iss` names no trusted issuer (refused before any key lookup).
    #[error("token issuer is not trusted")]
    UntrustedIssuer,
    /// The header's algorithm is not allowed for this issuer.
    #[error("algorithm {alg} is not allowed")]
    AlgorithmNotAllowed {
        /// The algorithm named.
        alg: Algorithm,
    },
    /// No usable key.
    #[error(transparent)]
    Key(KeyError),
    /// Step 5: the signature does not verify.
    #[error("signature verification failed")]
    InvalidSignature,
    /// A claim is missing or malformed.
    #[error(transparent)]
    Claim(ClaimError),
    /// Step 4: `aud` does not contain our audience.
    #[error("token audience does not match")]
    AudienceMismatch,
    /// Step 6: the token has expired.
    #[error("the access token expired")]
    Expired {
        /// The token's `exp`.
        expired_at: i64,
    },
    /// `nbf` is in the future.
    #[error("the access token is not yet valid")]
    NotYetValid,
    /// `iat` is in the future.
    #[error("the access token was issued in the future")]
    IssuedInFuture,
    /// `iat` is older than the policy's maximum age.
    #[error("the access token is too old")]
    TooOld,
    /// `cnf` is present but holds no `jkt` we can check (e.g. mTLS `x5t#S256`).
    #[error("unsupported confirmation method")]
    UnsupportedConfirmation,
}

impl From<JwsError> for AccessTokenError {
    fn from(e: JwsError) -> Self {
        Self::Jws(e)
    }
}
impl From<KeyError> for AccessTokenError {
    fn from(e: KeyError) -> Self {
        Self::Key(e)
    }
}
impl From<ClaimError> for AccessTokenError {
    fn from(e: ClaimError) -> Self {
        Self::Claim(e)
    }
}

/// An access token whose structure passed, whose signature is not yet checked.
#[derive(Clone, Debug)]
pub struct UntrustedAccessToken<'a> {
    jws: UntrustedJws<'a>,
    policy_index: usize,
}

impl<'a> UntrustedAccessToken<'a> {
    /// Parses `raw` for one trusted issuer.
    pub fn parse(raw: &'a str, policy: &AccessTokenPolicy) -> Result<Self, AccessTokenError> {
        Self::parse_for(raw, std::slice::from_ref(policy))
    }

    /// Parses `raw` and picks, by exact unverified `iss`, which of `policies`
    /// applies ([`UntrustedAccessToken::policy_index`]). A token naming no
    /// listed issuer is refused here, before any key lookup or fetch.
    pub fn parse_for(
        raw: &'a str,
        policies: &[AccessTokenPolicy],
    ) -> Result<Self, AccessTokenError> {
        // Step 2: a JWE (five segments) is refused by the JWS parser.
        let jws = jws::parse(raw, &Limits::ACCESS_TOKEN)?;
        // Step 1: typ must be at+jwt or application/at+jwt (or, for an
        // issuer whose profile says so, its own `typ`): refused here when no
        // trusted issuer's profile accepts it, and below when its own does not.
        let typ = jws.header.typ.as_deref();
        if !policies.iter().any(|p| p.profile.accepts_typ(typ)) {
            return Err(AccessTokenError::WrongType);
        }
        if jws.header.jwk.is_some() {
            return Err(AccessTokenError::EmbeddedKey);
        }
        // Step 3 (first half): iss must exactly match a trusted issuer.
        let iss = claims::string(&jws.claims, "iss")?;
        let policy_index = policies
            .iter()
            .position(|p| p.issuer == iss)
            .ok_or(AccessTokenError::UntrustedIssuer)?;
        let policy = policies
            .get(policy_index)
            .ok_or(AccessTokenError::UntrustedIssuer)?;
        if !policy.profile.accepts_typ(jws.header.typ.as_deref()) {
            return Err(AccessTokenError::WrongType);
        }
        let untrusted = Self { jws, policy_index };
        untrusted.check_algorithm(policy)?;
        Ok(untrusted)
    }

    fn check_algorithm(&self, policy: &AccessTokenPolicy) -> Result<(), AccessTokenError> {
        let alg = self.jws.header.alg;
        if policy.algorithms.contains(&alg) {
            Ok(())
        } else {
            Err(AccessTokenError::AlgorithmNotAllowed { alg })
        }
    }

    /// Which of the policies given to [`UntrustedAccessToken::parse_for`] applies.
    #[must_use]
    pub fn policy_index(&self) -> usize {
        self.policy_index
    }

    /// The header's `kid`: a lookup key only.
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.jws.header.kid.as_deref()
    }

    /// The header's `alg`, to be checked against the key's (see [`crate::jwk::JwkSet::select`]).
    #[must_use]
    pub fn header_alg(&self) -> Algorithm {
        self.jws.header.alg
    }

    /// The bytes the signature covers.
    #[must_use]
    pub fn signing_input(&self) -> &'a [u8] {
        self.jws.signing_input()
    }

    /// The decoded signature.
    #[must_use]
    pub fn signature(&self) -> &[u8] {
        self.jws.signature()
    }

    /// Accepts the token if the caller's provider found the signature valid
    /// and the claims pass `policy` at `now`.
    pub fn accept(
        self,
        signature_valid: bool,
        policy: &AccessTokenPolicy,
        now: UnixTime,
    ) -> Result<AccessToken, AccessTokenError> {
        // Step 5: the signature, verified by the caller with the issuer's key.
        if !signature_valid {
            return Err(AccessTokenError::InvalidSignature);
        }
        self.check_algorithm(policy)?;
        let c = &self.jws.claims;
        // Step 3: iss exact match.
        let iss = claims::string(c, "iss")?;
        if iss != policy.issuer {
            return Err(AccessTokenError::UntrustedIssuer);
        }
        // Step 6: exp (required, RFC 9068 §2.2), then nbf/iat with leeway.
        let exp = claims::numeric_date(c, "exp")?;
        if now.0 >= exp.saturating_add(policy.leeway_secs) {
            return Err(AccessTokenError::Expired { expired_at: exp });
        }
        // Step 4: aud contains one of our audiences.
        let aud = claims::audiences(c)?;
        if !aud.iter().any(|a| policy.audiences.contains(a)) {
            return Err(AccessTokenError::AudienceMismatch);
        }
        let iat = claims::numeric_date(c, "iat")?;
        if iat > now.0.saturating_add(policy.leeway_secs) {
            return Err(AccessTokenError::IssuedInFuture);
        }
        if let Some(max_age) = policy.max_age_secs {
            if now.0.saturating_sub(iat) > max_age.saturating_add(policy.leeway_secs) {
                return Err(AccessTokenError::TooOld);
            }
        }
        let nbf = claims::opt_numeric_date(c, "nbf")?;
        if nbf.is_some_and(|nbf| nbf > now.0.saturating_add(policy.leeway_secs)) {
            return Err(AccessTokenError::NotYetValid);
        }
        // RFC 9068 §2.2: sub, client_id and jti are required too (the
        // issuer's profile says where its client id is, and whether it
        // sets jti at all).
        let profile = &policy.profile;
        if !profile.accepts_typ(self.jws.header.typ.as_deref()) {
            return Err(AccessTokenError::WrongType);
        }
        profile.check_required(c)?;
        let sub = claims::string(c, "sub")?;
        let client_id = profile.client_id(c)?;
        let jti = if profile.require_jti {
            claims::string(c, "jti")?
        } else {
            claims::opt_string(c, "jti")?.unwrap_or_default()
        };
        let scope = profile.scopes(c)?;
        let roles = profile.roles(c)?;
        let sid = claims::opt_string(c, "sid")?;
        let cnf_jkt = match c.get("cnf") {
            None => None,
            Some(Value::Object(cnf)) => match cnf.get("jkt") {
                Some(Value::String(j)) if !j.is_empty() && j.len() <= 64 => Some(j.clone()),
                Some(_) => return Err(ClaimError::Invalid { claim: "cnf" }.into()),
                None => return Err(AccessTokenError::UnsupportedConfirmation),
            },
            Some(_) => return Err(ClaimError::Invalid { claim: "cnf" }.into()),
        };
        let act = match c.get("act") {
            None => None,
            Some(v @ Value::Object(_)) => Some(v.clone()),
            Some(_) => return Err(ClaimError::Invalid { claim: "act" }.into()),
        };
        Ok(AccessToken {
            iss,
            sub,
            aud,
            exp,
            iat,
            nbf,
            jti,
            client_id,
            scope,
            roles,
            sid,
            cnf_jkt,
            act,
        })
    }
}

/// A verified access token.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct AccessToken {
    /// Issuer.
    pub iss: String,
    /// Subject (a user, or the client itself for client_credentials).
    pub sub: String,
    /// Audiences.
    pub aud: Vec<String>,
    /// Expiry.
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: Option<i64>,
    /// Token id (empty when the issuer's profile does not require one and
    /// the token has none).
    pub jti: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// Granted scopes.
    pub scope: Vec<String>,
    /// Roles, read where the issuer's profile says (none under RFC 9068).
    pub roles: Vec<String>,
    /// The grant / refresh family this token belongs to.
    pub sid: Option<String>,
    /// `cnf.jkt`: the DPoP key thumbprint the token is bound to.
    pub cnf_jkt: Option<String>,
    /// `act` (RFC 8693 §4.1): the acting party, for exchanged tokens.
    pub act: Option<Value>,
}

impl AccessToken {
    /// Whether every scope in `required` was granted.
    #[must_use]
    pub fn has_scopes(&self, required: &[String]) -> bool {
        required.iter().all(|r| self.scope.contains(r))
    }

    /// Whether every role in `required` was granted.
    #[must_use]
    pub fn has_roles(&self, required: &[String]) -> bool {
        required.iter().all(|r| self.roles.contains(r))
    }
}
