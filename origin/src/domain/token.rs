//! The token service: client authentication and access token issuance.
//! Handlers call these with the request's `now`; nothing here reads a clock.

use crate::domain::clients::{self, Client};
use crate::domain::error::Error;
use crate::domain::state::{AuthFailures, TokenPath};
use crate::store::audit::AuditEvent;
use crate::store::group_commit::Write;
use crate::support::crypto::{timed_claims, SigningKey};
use crate::support::secret::{random_id, ClientSecret};
use gatehouse_common::UnixTime;
use serde::Serialize;
use std::net::IpAddr;

/// Client credentials as presented (RFC 6749 §2.3.1).
#[derive(Debug, PartialEq, Eq)]
pub enum PresentedClient {
    /// `client_secret_basic` or `client_secret_post`.
    Secret {
        /// The client id.
        client_id: String,
        /// The secret.
        secret: ClientSecret,
    },
    /// `none`: a public client identifying itself by `client_id`.
    Public {
        /// The client id.
        client_id: String,
    },
    /// `private_key_jwt` (RFC 7523 §2.2): a signed assertion; the client id
    /// is its unverified `sub` (or the form's `client_id`, which must agree).
    Assertion {
        /// The claimed client id.
        client_id: String,
        /// The compact JWS.
        assertion: String,
    },
}

impl PresentedClient {
    /// The claimed client id.
    #[must_use]
    pub fn client_id(&self) -> &str {
        match self {
            Self::Secret { client_id, .. }
            | Self::Public { client_id }
            | Self::Assertion { client_id, .. } => client_id,
        }
    }
}

/// Where [`authenticate`] reads the client's registration from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientSource {
    /// The database, on every request.
    Database,
    /// The client cache ([`crate::domain::client_cache`]) when it holds a
    /// record not known stale, else the database (then cached). For the
    /// grants whose issuing write is made as of [`Authenticated::as_of`]:
    /// client_credentials and refresh_token.
    Cache,
}

/// An authenticated client. `as_of` is the `client_generation` of a cached
/// record: the write that issues the token must be made as of it
/// ([`crate::store::group_commit::GroupCommit::write_as_of`]), which fails
/// with [`Error::ClientChanged`] when the client may have changed since.
/// `None` for a record just read from the database (as exact as a read at
/// the start of the request).
#[derive(Clone, Debug)]
pub struct Authenticated {
    /// The client.
    pub client: std::sync::Arc<Client>,
    /// The generation a cached record was read at.
    pub as_of: Option<i64>,
}

impl std::ops::Deref for Authenticated {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

/// Authenticates the client at the token, introspection or revocation endpoint.
/// Failures are audited and answered with `invalid_client` (401).
pub async fn authenticate(
    tp: &TokenPath<'_>,
    failures: AuthFailures<'_>,
    presented: &PresentedClient,
    ip: Option<IpAddr>,
    now: UnixTime,
    source: ClientSource,
) -> Result<Authenticated, Error> {
    // No client id holds a control character; an assertion's unverified
    // `sub` may (a NUL fails PostgreSQL's lookup): such a caller is unknown.
    let named = !has_control(presented.client_id());
    // A secret or a public client's id is checked against the cached
    // record; a refusal is decided again from the database (the record may
    // predate a rotation made elsewhere). An assertion's `jti` is recorded
    // as it is verified, so it is verified once, on the stored record.
    let cacheable = source == ClientSource::Cache
        && named
        && !matches!(presented, PresentedClient::Assertion { .. });
    if cacheable {
        let seen = tp.db.client_generation.get();
        if let Some(hit) = tp.clients.get(presented.client_id(), seen) {
            if secret_or_public_ok(&hit.client, presented, now) {
                return Ok(Authenticated {
                    client: hit.client,
                    as_of: Some(hit.generation),
                });
            }
        }
    }
    let found = if named {
        clients::get_with_generation(tp.db, presented.client_id()).await?
    } else {
        None
    };
    let client = found.as_ref().map(|(c, _)| c);
    let ok = match (client, presented) {
        (Some(c), PresentedClient::Assertion { assertion, .. }) => {
            use crate::domain::client_assertion::{verify, VerifyError};
            let verdict = verify(
                tp.db,
                c,
                &tp.config.issuer,
                assertion,
                tp.config.leeway_secs,
                now,
            )
            .await;
            match verdict {
                Ok(()) => !c.public,
                Err(VerifyError::Refused(e)) => {
                    tracing::debug!(reason = %e, "client assertion refused");
                    false
                }
                Err(VerifyError::Store(e)) => return Err(e.into()),
            }
        }
        (Some(c), _) => secret_or_public_ok(c, presented, now),
        (None, PresentedClient::Secret { secret, .. }) => {
            // Same work as for a known client, so timing does not reveal which ids exist.
            let _ = crate::support::secret::ct_eq(&secret.hash(), &[0u8; 32]);
            false
        }
        (None, _) => false,
    };
    match found {
        Some((c, generation)) if ok => {
            let client = std::sync::Arc::new(c);
            if cacheable {
                tp.clients.put(std::sync::Arc::clone(&client), generation);
            }
            Ok(Authenticated {
                client,
                as_of: None,
            })
        }
        _ => {
            audit_failure(tp, failures, presented.client_id(), ip, now).await?;
            Err(Error::InvalidClient)
        }
    }
}

/// Whether a client record cached at `as_of` is still the database's
/// (`None`: read from the database for this request, nothing to check):
/// [`Error::ClientChanged`] when a client changed since, so that the
/// token endpoint decides again from the database. For decisions made on
/// the record that no issuing write re-checks — a refusal (a grant or
/// scope added elsewhere must not stay refused on a replica that read
/// nothing newer), and a refresh reuse, which revokes a grant.
pub async fn confirm_cached(tp: &TokenPath<'_>, as_of: Option<i64>) -> Result<(), Error> {
    let Some(as_of) = as_of else {
        return Ok(());
    };
    if crate::store::client_generation::current(tp.db).await? == as_of {
        Ok(())
    } else {
        Err(Error::ClientChanged)
    }
}

/// A secret (`client_secret_basic`/`_post`) or a public client's id
/// (`none`) checked against `c`; an assertion is never accepted here.
fn secret_or_public_ok(c: &Client, presented: &PresentedClient, now: UnixTime) -> bool {
    match presented {
        PresentedClient::Secret { secret, .. } => {
            !c.public && c.jwks.is_none() && c.secret_matches(secret, now)
        }
        PresentedClient::Public { .. } => c.public,
        PresentedClient::Assertion { .. } => false,
    }
}

/// Audits a failed authentication through the bounded failure audit
/// ([`AuthFailures::record`]).
async fn audit_failure(
    tp: &TokenPath<'_>,
    failures: AuthFailures<'_>,
    client_id: &str,
    ip: Option<IpAddr>,
    now: UnixTime,
) -> Result<(), Error> {
    let mut e = AuditEvent::new("authentication_failed", now).ip(ip);
    // The presented id is the caller's text: kept only when it could name a
    // client (no control character reaches the log or an operator's terminal).
    if client_id.len() <= 128 && !has_control(client_id) {
        e = e.client(client_id);
    }
    failures.record(tp.db, e).await
}

fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}

/// The scopes to grant: the requested ones if all are allowed, else all the client's.
pub fn grant_scopes(client: &Client, requested: Option<&str>) -> Result<Vec<String>, Error> {
    let Some(requested) = requested else {
        return Ok(client.scopes.clone());
    };
    let mut out: Vec<String> = Vec::new();
    for s in requested.split(' ').filter(|s| !s.is_empty()) {
        if !clients::is_scope_token(s) {
            return Err(Error::InvalidScope("malformed scope"));
        }
        if !client.scopes.iter().any(|c| c == s) {
            return Err(Error::InvalidScope(
                "a requested scope is not allowed for this client",
            ));
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    Ok(out)
}

/// The audience: `resource` (RFC 8707) or `audience`, one of the client's;
/// by default the client's first.
pub fn choose_audience(
    client: &Client,
    audience: Option<&str>,
    resource: Option<&str>,
) -> Result<String, Error> {
    let wanted = match (audience, resource) {
        (Some(a), Some(r)) if a != r => {
            return Err(Error::InvalidTarget("audience and resource disagree"))
        }
        (Some(a), _) | (None, Some(a)) => Some(a),
        (None, None) => None,
    };
    match wanted {
        Some(a) => client
            .audiences
            .iter()
            .find(|c| *c == a)
            .cloned()
            .ok_or(Error::InvalidTarget(
                "the audience is not allowed for this client",
            )),
        None => client
            .audiences
            .first()
            .cloned()
            .ok_or(Error::InvalidTarget("the client has no audience")),
    }
}

/// What the token endpoint answers (RFC 6749 §5.1). `Debug` redacts the token.
#[derive(Clone, Serialize)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: String,
    /// `Bearer` or `DPoP`.
    pub token_type: &'static str,
    /// Lifetime in seconds.
    pub expires_in: i64,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// A rotating refresh token (authorization_code and refresh_token grants).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// OpenID Connect `id_token` (authorization code and refresh grants of
    /// an `openid` request).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// RFC 8693 §2.2.1 `issued_token_type` (token exchange only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
    /// Token id (not serialized).
    #[serde(skip)]
    pub jti: String,
    /// The signing algorithm (not serialized).
    #[serde(skip)]
    pub alg: gatehouse_common::alg::Algorithm,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[redacted]")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("id_token", &self.id_token.as_ref().map(|_| "[redacted]"))
            .field("jti", &self.jti)
            .field("alg", &self.alg)
            .finish()
    }
}

/// The claims of one access token to issue.
#[derive(Clone, Debug)]
pub struct AccessTokenClaims<'a> {
    /// Subject.
    pub sub: &'a str,
    /// Client.
    pub client_id: &'a str,
    /// Audience.
    pub aud: &'a str,
    /// Scopes.
    pub scopes: &'a [String],
    /// Grant / family id.
    pub sid: &'a str,
    /// DPoP key thumbprint, if bound.
    pub jkt: Option<&'a str>,
}

/// An access token's claims other than its times (RFC 9068 §2.2), in the
/// order they are written; jwt-compact's `Claims` adds `exp`, `nbf`, `iat`.
#[derive(Serialize)]
struct AccessTokenBody<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    jti: &'a str,
    client_id: &'a str,
    scope: &'a str,
    sid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cnf: Option<Confirmation<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    act: Option<&'a serde_json::Value>,
}

/// RFC 9449 §6.1 `cnf`: the DPoP key's thumbprint.
#[derive(Serialize)]
struct Confirmation<'a> {
    jkt: &'a str,
}

/// Signs an RFC 9068 access token at `now`.
pub fn sign_access_token(
    signer: &SigningKey,
    issuer: &str,
    ttl: i64,
    c: &AccessTokenClaims<'_>,
    now: UnixTime,
) -> Result<TokenResponse, Error> {
    sign_access_token_acting(signer, issuer, ttl, c, None, now)
}

/// [`sign_access_token`] with an RFC 8693 §4.1 `act` (actor) claim.
pub fn sign_access_token_acting(
    signer: &SigningKey,
    issuer: &str,
    ttl: i64,
    c: &AccessTokenClaims<'_>,
    act: Option<&serde_json::Value>,
    now: UnixTime,
) -> Result<TokenResponse, Error> {
    let jti = random_id()?;
    let scope = c.scopes.join(" ");
    let body = AccessTokenBody {
        iss: issuer,
        sub: c.sub,
        aud: c.aud,
        jti: &jti,
        client_id: c.client_id,
        scope: &scope,
        sid: c.sid,
        cnf: c.jkt.map(|jkt| Confirmation { jkt }),
        act,
    };
    let access_token = signer.sign_claims("at+jwt", &timed_claims(body, ttl, now)?)?;
    Ok(TokenResponse {
        access_token,
        token_type: if c.jkt.is_some() { "DPoP" } else { "Bearer" },
        expires_in: ttl,
        scope,
        refresh_token: None,
        id_token: None,
        issued_token_type: None,
        jti,
        alg: signer.alg(),
    })
}

/// The parameters of a client_credentials request.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientCredentialsRequest<'a> {
    /// `scope`.
    pub scope: Option<&'a str>,
    /// `audience`.
    pub audience: Option<&'a str>,
    /// `resource` (RFC 8707).
    pub resource: Option<&'a str>,
    /// The thumbprint of a verified DPoP proof's key.
    pub jkt: Option<&'a str>,
}

/// Where and when a request happens.
#[derive(Clone, Copy, Debug)]
pub struct RequestContext {
    /// The caller's IP address.
    pub ip: Option<IpAddr>,
    /// The request's time, read once.
    pub now: UnixTime,
    /// The `client_generation` of the cached client record the request was
    /// authenticated with ([`Authenticated::as_of`]); the issuing write is
    /// made as of it. `None` for a record read from the database.
    pub client_as_of: Option<i64>,
}

/// The client_credentials grant (RFC 6749 §4.4) for an authenticated client.
pub async fn client_credentials(
    tp: &TokenPath<'_>,
    client: &Client,
    req: ClientCredentialsRequest<'_>,
    ctx: RequestContext,
) -> Result<TokenResponse, Error> {
    let ClientCredentialsRequest {
        scope,
        audience,
        resource,
        jkt,
    } = req;
    let RequestContext {
        ip,
        now,
        client_as_of,
    } = ctx;
    if !client
        .grant_types
        .contains(&crate::domain::grant_type::GrantType::ClientCredentials)
        || client.public
    {
        return Err(Error::UnauthorizedClient(
            "the client may not use client_credentials",
        ));
    }
    if client.dpop_required && jkt.is_none() {
        return Err(Error::InvalidDpopProof(
            "this client requires a DPoP proof".into(),
        ));
    }
    let scopes = grant_scopes(client, scope)?;
    let aud = choose_audience(client, audience, resource)?;
    let ring = &tp.keys;
    let signer = ring
        .signer(now)
        .ok_or(crate::domain::keys::KeyStoreError::NoSigner)?;
    let sid = random_id()?;
    let resp = sign_access_token(
        signer,
        &tp.config.issuer,
        tp.config.access_token_ttl,
        &AccessTokenClaims {
            sub: &client.client_id,
            client_id: &client.client_id,
            aud: &aud,
            scopes: &scopes,
            sid: &sid,
            jkt,
        },
        now,
    )?;
    tp.db
        .group
        .write_as_of(
            Write::Audit(
                AuditEvent::new("token_issued", now)
                    .client(&client.client_id)
                    .subject(&client.client_id)
                    .jti(&resp.jti)
                    .ip(ip)
                    .detail(format!(
                        "grant=client_credentials alg={} token_type={}",
                        signer.alg(),
                        resp.token_type
                    )),
            ),
            client_as_of,
        )
        .await?;
    Ok(resp)
}
