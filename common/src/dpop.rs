//! DPoP proofs (RFC 9449): parse, then verify with the proof's own key, then accept.
//!
//! ```text
//! let untrusted = UntrustedDpopProof::parse(&dpop_header_values, &policy)?; // checks 1–5, 7
//! let ok = provider.verify(untrusted.jwk(), untrusted.alg(),
//!                          untrusted.signing_input(), untrusted.signature());  // check 6
//! let proof = untrusted.accept(ok, &policy, &request, now)?;                  // checks 6, 8–12
//! store.insert_if_absent(proof.replay_key, proof.replay_until)?;              // jti replay
//! ```
//!
//! Each numbered check of RFC 9449 §4.3 is quoted above the code that does it.

use crate::access_token::AccessToken;
use crate::alg::Algorithm;
use crate::claims::{self, ClaimError};
use crate::jwk::{JwkError, PublicJwk};
use crate::jws::{self, JwsError, Limits, UntrustedJws};
use crate::nonce::NonceIssuer;
use crate::rejection::{ErrorCode, Rejection, Scheme};
use crate::{b64, uri, UnixTime};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a server accepts in DPoP proofs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DpopPolicy {
    /// Asymmetric algorithms accepted for proofs (check 5).
    pub algorithms: Vec<Algorithm>,
    /// How old a proof's `iat` may be, in seconds (check 11).
    pub max_age_secs: i64,
    /// Clock skew tolerated both ways on `iat`, in seconds (check 11).
    pub leeway_secs: i64,
}

impl Default for DpopPolicy {
    /// Every asymmetric algorithm, 60 s maximum age, 5 s skew either way.
    fn default() -> Self {
        Self {
            algorithms: Algorithm::ALL.to_vec(),
            max_age_secs: 60,
            leeway_secs: 5,
        }
    }
}

/// The request a proof must match.
#[derive(Clone, Copy, Debug)]
pub struct DpopRequest<'a> {
    /// The HTTP method, as received (`GET`, `POST`, …).
    pub method: &'a str,
    /// The absolute request URI; its query and fragment are ignored.
    pub uri: &'a str,
    /// At a protected resource: the access token presented with the proof
    /// (already verified), whose `ath` and `cnf.jkt` the proof must match.
    pub access_token: Option<BoundAccessToken<'a>>,
    /// If the server requires nonces, the issuer that checks them.
    pub nonces: Option<&'a NonceIssuer>,
}

/// An access token presented together with a proof (check 12).
#[derive(Clone, Copy, Debug)]
pub struct BoundAccessToken<'a> {
    /// The token exactly as presented in `Authorization: DPoP …`.
    pub raw: &'a str,
    /// The verified token's `cnf.jkt`, if any.
    pub cnf_jkt: Option<&'a str>,
}

impl<'a> BoundAccessToken<'a> {
    /// The raw token and the `cnf.jkt` of its verified claims.
    #[must_use]
    pub fn new(raw: &'a str, token: &'a AccessToken) -> Self {
        Self {
            raw,
            cnf_jkt: token.cnf_jkt.as_deref(),
        }
    }
}

/// Why a DPoP proof was refused. The check number of RFC 9449 §4.3 is given.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DpopError {
    /// No `DPoP` header where one is required.
    #[error("DPoP proof missing")]
    Missing,
    /// Check 1: more than one `DPoP` header.
    #[error("more than one DPoP proof")]
    MultipleProofs,
    /// Check 2 (and 5 for `none`/`HS*`): not a single well-formed JWT.
    #[error("DPoP proof: {0}")]
    Jws(JwsError),
    /// Check 3: a required claim is missing or malformed.
    #[error("DPoP proof: {0}")]
    Claim(ClaimError),
    /// Check 4: `typ` is not `dpop+jwt`.
    #[error("DPoP proof typ is not dpop+jwt")]
    WrongType,
    /// Check 5: the algorithm is not allowed by local policy.
    #[error("DPoP proof algorithm {alg} is not allowed")]
    AlgorithmNotAllowed {
        /// The algorithm named.
        alg: Algorithm,
    },
    /// Check 6/7: the header has no `jwk`.
    #[error("DPoP proof has no jwk")]
    MissingKey,
    /// Check 7: the `jwk` contains a private key.
    #[error("DPoP proof jwk contains a private key")]
    PrivateKey,
    /// Check 6: the `jwk` is not a usable public key.
    #[error("DPoP proof {0}")]
    InvalidKey(JwkError),
    /// Check 5/6: `alg` does not match the `jwk`'s type and curve.
    #[error("DPoP proof alg does not match its jwk")]
    AlgorithmKeyMismatch,
    /// Check 6: the signature does not verify with the `jwk`.
    #[error("DPoP proof signature is invalid")]
    InvalidSignature,
    /// Check 8: `htm` is not the request method.
    #[error("DPoP proof htm does not match the request")]
    MethodMismatch,
    /// Check 9: `htu` is not a valid absolute URI, or carries a query or fragment.
    #[error("DPoP proof htu is invalid")]
    InvalidHtu,
    /// Check 9: `htu` is not the request URI.
    #[error("DPoP proof htu does not match the request")]
    UriMismatch,
    /// Check 10: the server requires a nonce and the proof has none.
    #[error("a DPoP nonce is required")]
    NonceRequired,
    /// Check 10: the proof's nonce is not one the server issued recently.
    #[error("the DPoP nonce is invalid or stale")]
    NonceInvalid,
    /// Check 11: `iat` is older than the window.
    #[error("DPoP proof is too old")]
    Stale,
    /// Check 11: `iat` is in the future beyond the skew.
    #[error("DPoP proof is issued in the future")]
    IssuedInFuture,
    /// Check 12: an access token was presented but the proof has no `ath`.
    #[error("DPoP proof lacks ath")]
    MissingAth,
    /// Check 12: `ath` is not the hash of the presented access token.
    #[error("DPoP proof ath does not match the access token")]
    AthMismatch,
    /// Check 12: the access token is not DPoP-bound (no `cnf.jkt`).
    #[error("access token is not DPoP-bound")]
    TokenNotBound,
    /// Check 12: the token's `cnf.jkt` is not the proof key's thumbprint.
    #[error("access token is bound to another key")]
    JktMismatch,
    /// RFC 9449 §7.2: a DPoP-bound token was presented with the Bearer scheme.
    #[error("DPoP-bound token presented as Bearer")]
    BoundTokenAsBearer,
}

impl From<JwsError> for DpopError {
    fn from(e: JwsError) -> Self {
        Self::Jws(e)
    }
}
impl From<ClaimError> for DpopError {
    fn from(e: ClaimError) -> Self {
        Self::Claim(e)
    }
}

impl DpopError {
    /// The RFC 9449 §7.1 error code: `use_dpop_nonce` for nonce problems,
    /// `invalid_token` when the access token is not bound to the proof's key,
    /// `invalid_dpop_proof` otherwise.
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NonceRequired | Self::NonceInvalid => ErrorCode::UseDpopNonce,
            Self::TokenNotBound | Self::JktMismatch | Self::BoundTokenAsBearer => {
                ErrorCode::InvalidToken
            }
            _ => ErrorCode::InvalidDpopProof,
        }
    }

    /// The refusal to send. For nonce errors pass the issuer so the response
    /// carries a fresh `DPoP-Nonce` (RFC 9449 §9).
    #[must_use]
    pub fn rejection(&self, nonces: Option<&NonceIssuer>, now: UnixTime) -> Rejection {
        let scheme = match self {
            Self::BoundTokenAsBearer => Scheme::Bearer,
            _ => Scheme::DPoP,
        };
        let mut r = Rejection::new(self.code(), scheme, self.to_string());
        if self.code() == ErrorCode::UseDpopNonce {
            r.dpop_nonce = nonces.map(|n| n.issue(now));
        }
        r
    }
}

/// `ath` for an access token: base64url(SHA-256(ASCII(token))) (RFC 9449 §4.2).
#[must_use]
pub fn ath(access_token: &str) -> String {
    b64::encode(&Sha256::digest(access_token.as_bytes()))
}

/// A proof whose structure and key passed, whose signature is not yet checked.
#[derive(Clone, Debug)]
pub struct UntrustedDpopProof<'a> {
    jws: UntrustedJws<'a>,
    jwk: PublicJwk,
    alg: Algorithm,
}

impl<'a> UntrustedDpopProof<'a> {
    /// Parses the request's `DPoP` header values (checks 1–5 and 7).
    pub fn parse(values: &[&'a str], policy: &DpopPolicy) -> Result<Self, DpopError> {
        // Check 1: "that there is not more than one DPoP HTTP request header field,"
        let raw = match values {
            [] => return Err(DpopError::Missing),
            [one] => *one,
            _ => return Err(DpopError::MultipleProofs),
        };
        Self::parse_one(raw, policy)
    }

    /// Parses one proof (checks 2–5 and 7).
    pub fn parse_one(raw: &'a str, policy: &DpopPolicy) -> Result<Self, DpopError> {
        // Check 2: "the DPoP HTTP request header field value is a single and
        // well-formed JWT," — compact JWS, size-capped, strict JSON, no crit.
        let jws = jws::parse(raw, &Limits::DPOP_PROOF)?;
        // Check 4: "the typ JOSE Header Parameter has the value dpop+jwt,"
        if !jws::typ_is(jws.header.typ.as_deref(), "dpop+jwt") {
            return Err(DpopError::WrongType);
        }
        // Check 5: "the alg JOSE Header Parameter indicates a registered
        // asymmetric digital signature algorithm, is not none, is supported by
        // the application, and is acceptable per local policy," — `none` and
        // HS* never parse (jws::parse); the allow-list is checked here.
        let header_alg = jws.header.alg;
        if !policy.algorithms.contains(&header_alg) {
            return Err(DpopError::AlgorithmNotAllowed { alg: header_alg });
        }
        // Check 7: "the jwk JOSE Header Parameter does not contain a private key,"
        let jwk_map = jws.header.jwk.as_ref().ok_or(DpopError::MissingKey)?;
        let jwk = PublicJwk::from_map(jwk_map).map_err(|e| match e {
            JwkError::PrivateKeyMaterial => DpopError::PrivateKey,
            JwkError::AlgorithmKeyMismatch => DpopError::AlgorithmKeyMismatch,
            other => DpopError::InvalidKey(other),
        })?;
        // Check 6 (preparation): the key decides the algorithm; the header must agree.
        let alg = jwk
            .algorithm_for(header_alg)
            .map_err(|_| DpopError::AlgorithmKeyMismatch)?;
        // Check 3: "all required claims per Section 4.2 are contained in the
        // JWT," — jti, htm, htu, iat (ath and nonce are checked with 12 and 10).
        for claim in ["jti", "htm", "htu"] {
            let claim: &'static str = claim;
            claims::string(&jws.claims, claim)?;
        }
        claims::numeric_date(&jws.claims, "iat")?;
        claims::opt_string(&jws.claims, "ath")?;
        claims::opt_string(&jws.claims, "nonce")?;
        Ok(Self { jws, jwk, alg })
    }

    /// The proof's public key (verify the signature with it).
    #[must_use]
    pub fn jwk(&self) -> &PublicJwk {
        &self.jwk
    }

    /// The algorithm to verify with, decided by the key.
    #[must_use]
    pub fn alg(&self) -> Algorithm {
        self.alg
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

    /// Accepts the proof for `request` at `now` if the caller's provider
    /// found the signature valid (checks 6 and 8–12).
    pub fn accept(
        self,
        signature_valid: bool,
        policy: &DpopPolicy,
        request: &DpopRequest<'_>,
        now: UnixTime,
    ) -> Result<DpopProof, DpopError> {
        // Check 6: "the JWT signature verifies with the public key contained
        // in the jwk JOSE Header Parameter,"
        if !signature_valid {
            return Err(DpopError::InvalidSignature);
        }
        let c = &self.jws.claims;
        // Check 8: "the htm claim matches the HTTP method of the current
        // request," — methods are case-sensitive (RFC 9110 §9.1).
        let htm = claims::string(c, "htm")?;
        if htm != request.method {
            return Err(DpopError::MethodMismatch);
        }
        // Check 9: "the htu claim matches the HTTP URI value for the HTTP
        // request in which the JWT was received, ignoring any query and
        // fragment parts," — both normalized per RFC 3986 §6.2.2–6.2.3; the
        // proof's htu itself must carry no query or fragment (§4.2).
        let htu = claims::string(c, "htu")?;
        let htu = uri::normalize(&htu).map_err(|_| DpopError::InvalidHtu)?;
        if htu.had_query_or_fragment {
            return Err(DpopError::InvalidHtu);
        }
        let target = uri::normalize(request.uri).map_err(|_| DpopError::UriMismatch)?;
        if htu.target != target.target {
            return Err(DpopError::UriMismatch);
        }
        // Check 11: "the creation time of the JWT, as determined by either the
        // iat claim or a server managed timestamp via the nonce claim, is
        // within an acceptable window (see Section 11.1),"
        let iat = claims::numeric_date(c, "iat")?;
        if iat > now.0.saturating_add(policy.leeway_secs) {
            return Err(DpopError::IssuedInFuture);
        }
        if now.0.saturating_sub(iat) > policy.max_age_secs.saturating_add(policy.leeway_secs) {
            return Err(DpopError::Stale);
        }
        // Check 12: "if presented to a protected resource in conjunction with
        // an access token, ensure that the value of the ath claim equals the
        // hash of that access token, and confirm that the public key to which
        // the access token is bound matches the public key from the DPoP proof."
        if let Some(token) = request.access_token {
            let proof_ath = claims::opt_string(c, "ath")?.ok_or(DpopError::MissingAth)?;
            if !bool::from(proof_ath.as_bytes().ct_eq(ath(token.raw).as_bytes())) {
                return Err(DpopError::AthMismatch);
            }
            let jkt = token.cnf_jkt.ok_or(DpopError::TokenNotBound)?;
            if !bool::from(jkt.as_bytes().ct_eq(self.jwk.thumbprint().as_bytes())) {
                return Err(DpopError::JktMismatch);
            }
        }
        // Check 10: "if the server provided a nonce value to the client, the
        // nonce claim matches the server-provided nonce value," — checked
        // last, so a nonce refusal means the proof is otherwise acceptable
        // now: signed by the token's key, for this request and token, and
        // fresh. (The edge charges such a refusal to the token's subject; a
        // captured stale proof must not count as the holder's.)
        let nonce = claims::opt_string(c, "nonce")?;
        if let Some(issuer) = request.nonces {
            match &nonce {
                None => return Err(DpopError::NonceRequired),
                Some(n) if !issuer.is_valid(n, now) => return Err(DpopError::NonceInvalid),
                Some(_) => {}
            }
        }
        let jti = claims::string(c, "jti")?;
        let replay_key = replay_key(&jti, &htu.target);
        Ok(DpopProof {
            jkt: self.jwk.thumbprint().to_owned(),
            jwk: self.jwk,
            jti,
            htm,
            htu: htu.target,
            iat,
            nonce,
            replay_key,
            // The proof is accepted while now <= iat + max_age + leeway, so its
            // key must be remembered while now < replay_until (exclusive bound).
            replay_until: UnixTime(iat)
                .plus(policy.max_age_secs)
                .plus(policy.leeway_secs)
                .plus(1),
        })
    }
}

/// The replay-store key for a proof: base64url(SHA-256(jti ‖ 0x00 ‖ htu)).
#[must_use]
pub fn replay_key(jti: &str, normalized_htu: &str) -> String {
    let mut h = Sha256::new();
    h.update(jti.as_bytes());
    h.update([0u8]);
    h.update(normalized_htu.as_bytes());
    b64::encode(&h.finalize())
}

/// A verified DPoP proof.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DpopProof {
    /// The proof key's RFC 7638 thumbprint (what `cnf.jkt` binds to).
    pub jkt: String,
    /// The proof's public key.
    pub jwk: PublicJwk,
    /// `jti`.
    pub jti: String,
    /// `htm`.
    pub htm: String,
    /// `htu`, normalized.
    pub htu: String,
    /// `iat`.
    pub iat: i64,
    /// `nonce`, if the proof carried one.
    pub nonce: Option<String>,
    /// Key for the caller's replay store (hash of `jti` and `htu`).
    pub replay_key: String,
    /// The replay key must be remembered while `now < replay_until`; from
    /// then on the proof is refused as stale anyway (exclusive bound).
    pub replay_until: UnixTime,
}

/// RFC 9449 §7.2: a DPoP-bound token must be presented with the DPoP scheme
/// (no downgrade to Bearer), and a DPoP-scheme token must be bound.
pub fn check_scheme(token: &AccessToken, scheme: Scheme) -> Result<(), DpopError> {
    match (scheme, token.cnf_jkt.is_some()) {
        (Scheme::Bearer, true) => Err(DpopError::BoundTokenAsBearer),
        (Scheme::DPoP, false) => Err(DpopError::TokenNotBound),
        _ => Ok(()),
    }
}
