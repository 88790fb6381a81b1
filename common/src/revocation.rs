//! The signed, versioned revocation document the origin pushes to the edge.
//!
//! A compact JWS with `typ: gatehouse-revocations+jwt`, signed with the
//! origin's active key, whose claims are
//! `{"iss", "iat", "version", "entries": [{"kind", "value", "revoked_at", "until"}]}`.
//! `kind` is `jti`, `sid`, `sub` or `client_id`. `version` strictly increases
//! with every push; the edge refuses a document older than the one it holds
//! (no rollback). An entry can be dropped after `until` (every token it could
//! match has expired by then).
//!
//! Same flow as access tokens: [`UntrustedRevocationDocument::parse`] →
//! the caller verifies with the issuer's key → [`UntrustedRevocationDocument::accept`]
//! → [`RevocationList`] for lookups.

use crate::access_token::AccessToken;
use crate::alg::Algorithm;
use crate::claims::{self, ClaimError};
use crate::jws::{self, JwsError, Limits, UntrustedJws};
use crate::UnixTime;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// The JOSE `typ` of a revocation document.
pub const REVOCATIONS_TYP: &str = "gatehouse-revocations+jwt";
/// Most entries accepted in one document.
pub const MAX_ENTRIES: usize = 100_000;
/// Size caps for a revocation document.
pub const LIMITS: Limits = Limits {
    max_len: 16 * 1024 * 1024,
    max_header_len: 1024,
};

/// What a revocation entry names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RevocationKind {
    /// One access token, by `jti`.
    Jti,
    /// A grant / refresh family, by `sid`: its tokens issued up to `revoked_at`.
    Sid,
    /// A subject: its tokens issued up to `revoked_at`.
    Sub,
    /// A client: its tokens issued up to `revoked_at`.
    ClientId,
}

impl RevocationKind {
    /// The name used in the document.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Jti => "jti",
            Self::Sid => "sid",
            Self::Sub => "sub",
            Self::ClientId => "client_id",
        }
    }

    /// Reads a kind's name.
    #[must_use]
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "jti" => Self::Jti,
            "sid" => Self::Sid,
            "sub" => Self::Sub,
            "client_id" => Self::ClientId,
            _ => return None,
        })
    }
}

/// One revocation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RevocationEntry {
    /// What is revoked.
    pub kind: RevocationKind,
    /// The `jti`, `sid`, `sub` or `client_id` value.
    pub value: String,
    /// When it was revoked; `sid`/`sub`/`client_id` entries apply to tokens
    /// with `iat <= revoked_at`.
    pub revoked_at: i64,
    /// After this instant the entry can be dropped.
    pub until: i64,
}

/// The document's claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationDocument {
    /// The issuer (the origin's issuer identifier).
    pub iss: String,
    /// When the document was built.
    pub iat: i64,
    /// Strictly increasing version.
    pub version: u64,
    /// The revocations.
    pub entries: Vec<RevocationEntry>,
}

/// Why a revocation document was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RevocationError {
    /// The JWS was refused.
    #[error("revocation document: {0}")]
    Jws(JwsError),
    /// `typ` is not `gatehouse-revocations+jwt`.
    #[error("revocation document has the wrong typ")]
    WrongType,
    /// The header embeds a key.
    #[error("revocation document must not embed a key")]
    EmbeddedKey,
    /// The algorithm is not allowed.
    #[error("algorithm {alg} is not allowed")]
    AlgorithmNotAllowed {
        /// The algorithm named.
        alg: Algorithm,
    },
    /// `iss` is not the trusted issuer.
    #[error("revocation document issuer is not trusted")]
    UntrustedIssuer,
    /// The signature does not verify.
    #[error("revocation document signature is invalid")]
    InvalidSignature,
    /// A claim is missing or malformed.
    #[error("revocation document: {0}")]
    Claim(ClaimError),
    /// An entry is malformed (its position in `entries`).
    #[error("revocation entry {index} is invalid")]
    InvalidEntry {
        /// Index of the entry.
        index: usize,
    },
    /// More than [`MAX_ENTRIES`] entries.
    #[error("revocation document has too many entries")]
    TooManyEntries,
    /// The document is older than the one already held.
    #[error("revocation document version {offered} is older than the held {held}")]
    Rollback {
        /// The version held.
        held: u64,
        /// The version offered.
        offered: u64,
    },
    /// `iat` is in the future.
    #[error("revocation document is issued in the future")]
    IssuedInFuture,
    /// `version` is ahead of the clock ([`latest_version`]): a leaked key
    /// must not be able to raise the floor so far that no later genuine
    /// document is taken.
    #[error("revocation document version is ahead of the clock")]
    VersionAhead,
}

impl From<JwsError> for RevocationError {
    fn from(e: JwsError) -> Self {
        Self::Jws(e)
    }
}
impl From<ClaimError> for RevocationError {
    fn from(e: ClaimError) -> Self {
        Self::Claim(e)
    }
}

impl RevocationDocument {
    /// The JOSE header to sign with (`alg`, `typ`, `kid`).
    #[must_use]
    pub fn header(alg: Algorithm, kid: &str) -> Value {
        json!({"alg": alg.name(), "typ": REVOCATIONS_TYP, "kid": kid})
    }

    /// The claims as JSON, for the origin to sign.
    #[must_use]
    pub fn to_claims(&self) -> Value {
        json!({
            "iss": self.iss,
            "iat": self.iat,
            "version": self.version,
            "entries": self.entries.iter().map(|e| json!({
                "kind": e.kind.name(),
                "value": e.value,
                "revoked_at": e.revoked_at,
                "until": e.until,
            })).collect::<Vec<_>>(),
        })
    }

    /// Reads the claims (already duplicate-free JSON).
    pub fn from_claims(c: &Map<String, Value>) -> Result<Self, RevocationError> {
        let iss = claims::string(c, "iss")?;
        let iat = claims::numeric_date(c, "iat")?;
        let version = match c.get("version") {
            None => return Err(ClaimError::Missing { claim: "version" }.into()),
            Some(v) => v.as_u64().ok_or(ClaimError::Invalid { claim: "version" })?,
        };
        let raw = match c.get("entries") {
            None => return Err(ClaimError::Missing { claim: "entries" }.into()),
            Some(Value::Array(a)) => a,
            Some(_) => return Err(ClaimError::Invalid { claim: "entries" }.into()),
        };
        if raw.len() > MAX_ENTRIES {
            return Err(RevocationError::TooManyEntries);
        }
        let entries = raw
            .iter()
            .enumerate()
            .map(|(index, v)| entry(v).ok_or(RevocationError::InvalidEntry { index }))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            iss,
            iat,
            version,
            entries,
        })
    }
}

fn entry(v: &Value) -> Option<RevocationEntry> {
    let m = v.as_object()?;
    let kind = RevocationKind::from_name(m.get("kind")?.as_str()?)?;
    let value = claims::string(m, "value").ok()?;
    let revoked_at = claims::numeric_date(m, "revoked_at").ok()?;
    let until = claims::numeric_date(m, "until").ok()?;
    Some(RevocationEntry {
        kind,
        value,
        revoked_at,
        until,
    })
}

/// Whom the edge trusts for revocation documents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationPolicy {
    /// The issuer; `iss` must equal it.
    pub issuer: String,
    /// Allowed algorithms.
    pub algorithms: Vec<Algorithm>,
    /// Clock skew tolerated on `iat`.
    pub leeway_secs: i64,
}

impl RevocationPolicy {
    /// A policy for `issuer` with every asymmetric algorithm and 60 s leeway.
    #[must_use]
    pub fn new(issuer: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            algorithms: Algorithm::ALL.to_vec(),
            leeway_secs: 60,
        }
    }
}

/// The highest version accepted at `now`: `now + leeway_secs` in
/// milliseconds since the epoch. The origin numbers documents from the
/// current time in milliseconds up, so its versions stay below this, and a
/// version signed with a leaked key can hold later documents back for at
/// most the leeway.
#[must_use]
pub fn latest_version(now: UnixTime, leeway_secs: i64) -> u64 {
    u64::try_from(now.0.saturating_add(leeway_secs).saturating_mul(1000)).unwrap_or(0)
}

/// A revocation document whose signature is not yet checked.
#[derive(Clone, Debug)]
pub struct UntrustedRevocationDocument<'a> {
    jws: UntrustedJws<'a>,
    doc: RevocationDocument,
}

impl<'a> UntrustedRevocationDocument<'a> {
    /// Parses the compact JWS and its claims (no crypto yet).
    pub fn parse(raw: &'a str, policy: &RevocationPolicy) -> Result<Self, RevocationError> {
        let jws = jws::parse(raw, &LIMITS)?;
        if !jws::typ_is(jws.header.typ.as_deref(), REVOCATIONS_TYP) {
            return Err(RevocationError::WrongType);
        }
        if jws.header.jwk.is_some() {
            return Err(RevocationError::EmbeddedKey);
        }
        if !policy.algorithms.contains(&jws.header.alg) {
            return Err(RevocationError::AlgorithmNotAllowed {
                alg: jws.header.alg,
            });
        }
        let doc = RevocationDocument::from_claims(&jws.claims)?;
        if doc.iss != policy.issuer {
            return Err(RevocationError::UntrustedIssuer);
        }
        Ok(Self { jws, doc })
    }

    /// The header's `kid`: a lookup key only.
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.jws.header.kid.as_deref()
    }

    /// The header's `alg`, to be checked against the key's.
    #[must_use]
    pub fn header_alg(&self) -> Algorithm {
        self.jws.header.alg
    }

    /// The offered version (unverified; for logging and quick skips).
    #[must_use]
    pub fn version(&self) -> u64 {
        self.doc.version
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

    /// Accepts the document if the signature verified, it is not older than
    /// `held_version`, and it is not issued in the future; entries already
    /// past `until` are dropped.
    pub fn accept(
        self,
        signature_valid: bool,
        policy: &RevocationPolicy,
        held_version: Option<u64>,
        now: UnixTime,
    ) -> Result<RevocationList, RevocationError> {
        if !signature_valid {
            return Err(RevocationError::InvalidSignature);
        }
        if let Some(held) = held_version {
            if self.doc.version < held {
                return Err(RevocationError::Rollback {
                    held,
                    offered: self.doc.version,
                });
            }
        }
        if self.doc.iat > now.0.saturating_add(policy.leeway_secs) {
            return Err(RevocationError::IssuedInFuture);
        }
        if self.doc.version > latest_version(now, policy.leeway_secs) {
            return Err(RevocationError::VersionAhead);
        }
        Ok(RevocationList::from_document(self.doc, now))
    }
}

/// Why a token is revoked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RevocationHit {
    /// Which entry kind matched.
    pub kind: RevocationKind,
    /// When the entry was revoked.
    pub revoked_at: i64,
}

/// A lookup index over a verified document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RevocationList {
    version: u64,
    iat: i64,
    index: HashMap<(RevocationKind, String), (i64, i64)>,
}

impl RevocationList {
    /// Indexes `doc`'s entries that are still live at `now`.
    #[must_use]
    pub fn from_document(doc: RevocationDocument, now: UnixTime) -> Self {
        let mut index: HashMap<(RevocationKind, String), (i64, i64)> = HashMap::new();
        for e in doc.entries {
            if e.until <= now.0 {
                continue;
            }
            let slot = index
                .entry((e.kind, e.value))
                .or_insert((e.revoked_at, e.until));
            // Several entries for one value: the widest reach wins.
            slot.0 = slot.0.max(e.revoked_at);
            slot.1 = slot.1.max(e.until);
        }
        Self {
            version: doc.version,
            iat: doc.iat,
            index,
        }
    }

    /// The document version this list came from.
    #[must_use]
    pub fn version(&self) -> u64 {
        self.version
    }

    /// When the document was built.
    #[must_use]
    pub fn issued_at(&self) -> i64 {
        self.iat
    }

    /// Live entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// No live entries.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Drops entries past their `until`.
    pub fn prune(&mut self, now: UnixTime) {
        self.index.retain(|_, (_, until)| *until > now.0);
    }

    fn lookup(&self, kind: RevocationKind, value: &str, now: UnixTime) -> Option<i64> {
        self.index
            .get(&(kind, value.to_owned()))
            .filter(|(_, until)| *until > now.0)
            .map(|(revoked_at, _)| *revoked_at)
    }

    /// Whether `token` is revoked at `now`: its `jti` is listed, or one of
    /// its [`revocable_names`] (its own `sid`, `sub`, `client_id`, and those
    /// of every actor in its `act` chain) is listed with `revoked_at >= token.iat`.
    #[must_use]
    pub fn check(&self, token: &AccessToken, now: UnixTime) -> Option<RevocationHit> {
        if let Some(revoked_at) = self.lookup(RevocationKind::Jti, &token.jti, now) {
            return Some(RevocationHit {
                kind: RevocationKind::Jti,
                revoked_at,
            });
        }
        revocable_names(token)
            .into_iter()
            .filter(|(kind, _)| *kind != RevocationKind::Jti)
            .find_map(|(kind, value)| {
                let revoked_at = self.lookup(kind, value, now)?;
                (token.iat <= revoked_at).then_some(RevocationHit { kind, revoked_at })
            })
    }
}

/// Every name a revocation entry could match `token` by: its `jti`, `sid`,
/// `sub` and `client_id`, then for each actor of its RFC 8693 `act` chain
/// (the current actor first, then the nested prior ones) the actor's `sub`,
/// `client_id` and `sid` — revoking an actor reaches the tokens it obtained
/// by exchange. The walk is bounded by the JSON nesting limit
/// ([`crate::json::MAX_DEPTH`]), which no parsed token exceeds.
#[must_use]
pub fn revocable_names(token: &AccessToken) -> Vec<(RevocationKind, &str)> {
    let mut names = vec![(RevocationKind::Jti, token.jti.as_str())];
    if let Some(sid) = token.sid.as_deref() {
        names.push((RevocationKind::Sid, sid));
    }
    names.push((RevocationKind::Sub, token.sub.as_str()));
    names.push((RevocationKind::ClientId, token.client_id.as_str()));
    let mut actor = token.act.as_ref();
    for _ in 0..crate::json::MAX_DEPTH {
        let Some(a) = actor.and_then(Value::as_object) else {
            break;
        };
        for (kind, claim) in [
            (RevocationKind::Sub, "sub"),
            (RevocationKind::ClientId, "client_id"),
            (RevocationKind::Sid, "sid"),
        ] {
            if let Some(v) = a.get(claim).and_then(Value::as_str) {
                names.push((kind, v));
            }
        }
        actor = a.get("act");
    }
    names
}
