//! Registered clients: the repository and the rules of client authentication.

use crate::domain::grant_type::GrantType;
use crate::store::clients::{self as rows, ClientRow, SecretRotation};
use crate::store::db::{Db, StoreError};
use crate::support::secret::{ct_eq, random_id, ClientSecret, RandomError};
use gatehouse_common::UnixTime;
use serde::Serialize;

/// A registered client as stored (secrets only as SHA-256 hashes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Client {
    /// The client identifier.
    pub client_id: String,
    /// A human-readable name.
    pub name: String,
    /// Public clients have no secret (`token_endpoint_auth_method: none`).
    pub public: bool,
    /// SHA-256 of the current secret (confidential clients).
    pub secret_hash: Option<Vec<u8>>,
    /// SHA-256 of the previous secret, valid until `previous_secret_expires_at`.
    pub previous_secret_hash: Option<Vec<u8>>,
    /// End of the previous secret's grace period.
    pub previous_secret_expires_at: Option<i64>,
    /// Registered redirect URIs (exact match).
    pub redirect_uris: Vec<String>,
    /// Allowed grant types.
    pub grant_types: Vec<GrantType>,
    /// Allowed scopes.
    pub scopes: Vec<String>,
    /// Allowed audiences; the first is the default.
    pub audiences: Vec<String>,
    /// Whether every token must be DPoP-bound.
    pub dpop_required: bool,
    /// private_key_jwt (RFC 7523): the registered public keys, as a JWK set.
    pub jwks: Option<String>,
    /// The audiences this client serves as a resource server: it may
    /// introspect tokens for them and exchange tokens naming them.
    pub serves: Vec<String>,
    /// private_key_jwt compatibility: also accept the token endpoint URL as
    /// an assertion's `aud` (off by default; draft-ietf-oauth-rfc7523bis).
    pub legacy_assertion_audience: bool,
    /// Where RP-initiated logout may send the user back (exact match;
    /// OpenID Connect RP-Initiated Logout 1.0 §3).
    pub post_logout_redirect_uris: Vec<String>,
    /// RFC 9126 §6: authorization requests must be pushed (`/par`); a
    /// front-channel `/authorize` without `request_uri` is refused.
    pub require_pushed_authorization_requests: bool,
    /// Creation time.
    pub created_at: i64,
    /// Last update.
    pub updated_at: i64,
}

/// What an operator sees of a client: never a secret or its hash.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ClientView {
    /// The client identifier.
    pub client_id: String,
    /// Name.
    pub name: String,
    /// Whether the client is public.
    pub public: bool,
    /// `client_secret_basic`/`client_secret_post` or `none`.
    pub token_endpoint_auth_method: &'static str,
    /// Allowed scopes, space-separated.
    pub scope: String,
    /// Allowed audiences.
    pub audiences: Vec<String>,
    /// Allowed grant types.
    pub grant_types: Vec<GrantType>,
    /// Redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Whether DPoP is required.
    pub dpop_required: bool,
    /// The audiences this client serves as a resource server.
    pub serves: Vec<String>,
    /// Whether a private_key_jwt assertion may name the token endpoint.
    pub legacy_assertion_audience: bool,
    /// Post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
    /// Whether authorization requests must be pushed (RFC 9126 §6).
    pub require_pushed_authorization_requests: bool,
    /// When a rotated-out secret stops working, if one is in its grace period.
    pub previous_secret_expires_at: Option<i64>,
    /// Creation time.
    pub created_at: i64,
    /// Last update.
    pub updated_at: i64,
}

impl Client {
    /// The operator's view.
    #[must_use]
    pub fn view(&self) -> ClientView {
        ClientView {
            client_id: self.client_id.clone(),
            name: self.name.clone(),
            public: self.public,
            token_endpoint_auth_method: if self.public {
                "none"
            } else if self.jwks.is_some() {
                "private_key_jwt"
            } else {
                "client_secret_basic"
            },
            scope: self.scopes.join(" "),
            audiences: self.audiences.clone(),
            grant_types: self.grant_types.clone(),
            redirect_uris: self.redirect_uris.clone(),
            dpop_required: self.dpop_required,
            serves: self.serves.clone(),
            legacy_assertion_audience: self.legacy_assertion_audience,
            post_logout_redirect_uris: self.post_logout_redirect_uris.clone(),
            require_pushed_authorization_requests: self.require_pushed_authorization_requests,
            previous_secret_expires_at: self.previous_secret_expires_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    /// Whether `secret` is this client's current secret, or its previous one
    /// within the grace period. Both comparisons always run (constant time).
    #[must_use]
    pub fn secret_matches(&self, secret: &ClientSecret, now: UnixTime) -> bool {
        let presented = secret.hash();
        let current = self
            .secret_hash
            .as_deref()
            .is_some_and(|h| ct_eq(h, &presented));
        let previous = self
            .previous_secret_hash
            .as_deref()
            .is_some_and(|h| ct_eq(h, &presented))
            && self.previous_secret_expires_at.is_some_and(|t| now.0 < t);
        current | previous
    }
}

/// What an operator asks for when registering a client.
#[derive(Clone, Debug, Default)]
pub struct NewClient {
    /// Name.
    pub name: String,
    /// Public (no secret).
    pub public: bool,
    /// Allowed scopes.
    pub scopes: Vec<String>,
    /// Allowed audiences (first is the default).
    pub audiences: Vec<String>,
    /// Allowed grants, as the operator wrote them (`validate` refuses a
    /// name that is not a [`GrantType`]).
    pub grant_types: Vec<String>,
    /// Redirect URIs.
    pub redirect_uris: Vec<String>,
    /// DPoP required.
    pub dpop_required: bool,
    /// A JWK set (JSON): the client authenticates with private_key_jwt and gets no secret.
    pub jwks: Option<String>,
    /// Audiences the client serves as a resource server (introspection, token exchange).
    pub serves: Vec<String>,
    /// Accept the token endpoint URL as a private_key_jwt `aud` (compatibility).
    pub legacy_assertion_audience: bool,
    /// Post-logout redirect URIs (same rules as redirect URIs).
    pub post_logout_redirect_uris: Vec<String>,
    /// Authorization requests must be pushed (RFC 9126 §6).
    pub require_pushed_authorization_requests: bool,
}

/// Why a client registration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A field is invalid.
    #[error("invalid client {field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] StoreError),
    /// Randomness failed.
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
#[must_use]
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

fn is_absolute_uri(s: &str) -> bool {
    (s.starts_with("https://") || s.starts_with("http://"))
        && s.len() <= 2048
        && !s.contains(['#', ' '])
        && s.split("://").nth(1).is_some_and(|rest| !rest.is_empty())
}

/// A redirect URI a client may register: an absolute URI without fragment,
/// `https`, or `http` only on the loopback interface (RFC 8252 §7.3 and
/// §8.3, OAuth 2.1 §2.3.1: `127.0.0.1`, `[::1]` or `localhost`). Anything
/// else would send codes over cleartext across the network.
///
/// The string is judged as written: only RFC 3986 characters (the WHATWG
/// parser would silently drop tabs and newlines, read `\\` as `/` and
/// IDNA-map non-ASCII hosts, so the string stored, matched at `/authorize`
/// and sent in `Location` would differ from the one checked), and an http
/// host must be spelled as the loopback literal it parses to (not
/// `0x7f.1`, `2130706433` or `127.1`).
#[must_use]
pub fn is_registrable_redirect_uri(s: &str) -> bool {
    if !is_absolute_uri(s) || !s.bytes().all(is_uri_char) {
        return false;
    }
    let Ok(url) = url::Url::parse(s) else {
        return false;
    };
    if !url.username().is_empty() || url.password().is_some() {
        return false;
    }
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => loopback && host_as_written(s, &url),
        _ => false,
    }
}

/// RFC 3986 §2: unreserved, reserved and `%` (percent-encoding).
fn is_uri_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=%".contains(&b)
}

/// Whether `raw`'s authority spells the host exactly as `url` serializes
/// it (ASCII case aside), followed by a port, a path, a query or nothing.
fn host_as_written(raw: &str, url: &url::Url) -> bool {
    let (Some(rest), Some(host)) = (raw.split_once("://").map(|(_, r)| r), url.host_str()) else {
        return false;
    };
    rest.get(..host.len())
        .is_some_and(|h| h.eq_ignore_ascii_case(host))
        && rest
            .get(host.len()..)
            .is_some_and(|after| after.is_empty() || after.starts_with([':', '/', '?']))
}

impl NewClient {
    fn validate(&self) -> Result<(), ClientError> {
        let bad = |field, reason| Err(ClientError::Invalid { field, reason });
        if self.name.trim().is_empty() || self.name.len() > 200 {
            return bad("name", "must be 1-200 characters");
        }
        if !self.scopes.iter().all(|s| is_scope_token(s)) {
            return bad(
                "scope",
                "scope tokens must be printable ASCII without spaces, quotes or backslashes",
            );
        }
        if self.audiences.is_empty() {
            return bad("audience", "at least one audience is required");
        }
        if !self.audiences.iter().all(|a| is_absolute_uri(a)) {
            return bad("audience", "audiences must be absolute http(s) URIs");
        }
        if !self
            .redirect_uris
            .iter()
            .all(|a| is_registrable_redirect_uri(a))
        {
            return bad(
                "redirect_uri",
                "redirect URIs must be absolute https URIs without fragment (http only on loopback: 127.0.0.1, [::1], localhost)",
            );
        }
        if self.post_logout_redirect_uris.len() > 32
            || !self
                .post_logout_redirect_uris
                .iter()
                .all(|a| is_registrable_redirect_uri(a))
        {
            return bad(
                "post_logout_redirect_uri",
                "post-logout redirect URIs must be at most 32 absolute https URIs without fragment (http only on loopback: 127.0.0.1, [::1], localhost)",
            );
        }
        if self.serves.len() > 32 || !self.serves.iter().all(|a| is_absolute_uri(a)) {
            return bad(
                "serves",
                "served audiences must be at most 32 absolute http(s) URIs",
            );
        }
        if self.public && !self.serves.is_empty() {
            return bad("serves", "a public client cannot act as a resource server");
        }
        if self.public
            && self
                .grant_types
                .iter()
                .any(|g| g == GrantType::TokenExchange.as_str())
        {
            return bad(
                "grant",
                "token exchange needs a confidential client (RFC 8693 §2.1)",
            );
        }
        if self.legacy_assertion_audience && self.jwks.is_none() {
            return bad(
                "legacy_assertion_audience",
                "applies only to private_key_jwt clients (jwks)",
            );
        }
        if !self
            .grant_types
            .iter()
            .all(|g| GrantType::from_name(g).is_some())
        {
            return bad(
                "grant",
                "unknown grant type (supported: client_credentials, authorization_code, refresh_token, urn:ietf:params:oauth:grant-type:token-exchange)",
            );
        }
        if self
            .grant_types
            .iter()
            .any(|g| g == GrantType::AuthorizationCode.as_str())
            && self.redirect_uris.is_empty()
        {
            return bad(
                "redirect_uri",
                "authorization_code needs at least one redirect URI",
            );
        }
        if let Some(j) = &self.jwks {
            let ok = j.len() <= 64 * 1024
                && gatehouse_common::jwk::JwkSet::from_json(j.as_bytes())
                    .is_ok_and(|set| !set.keys().is_empty());
            if !ok {
                return bad(
                    "jwks",
                    "must be a JWK set with at least one usable public key",
                );
            }
            if self.public {
                return bad("jwks", "a public client cannot use private_key_jwt");
            }
        }
        if self.public
            && self
                .grant_types
                .iter()
                .any(|g| g == GrantType::ClientCredentials.as_str())
        {
            return bad(
                "grant",
                "client_credentials needs a confidential client (RFC 6749 §4.4)",
            );
        }
        Ok(())
    }
}

impl TryFrom<ClientRow> for Client {
    type Error = StoreError;

    /// A stored row; an unknown grant type is a corrupt row, never dropped.
    fn try_from(r: ClientRow) -> Result<Self, StoreError> {
        let grant_types = r
            .grant_types
            .iter()
            .map(|g| GrantType::from_name(g))
            .collect::<Option<Vec<_>>>()
            .ok_or(StoreError::Corrupt {
                column: "grant_types",
            })?;
        Ok(Self {
            client_id: r.client_id,
            name: r.name,
            public: r.public,
            secret_hash: r.secret_hash,
            previous_secret_hash: r.previous_secret_hash,
            previous_secret_expires_at: r.previous_secret_expires_at,
            redirect_uris: r.redirect_uris,
            grant_types,
            scopes: r.scopes,
            audiences: r.audiences,
            dpop_required: r.dpop_required,
            jwks: r.jwks,
            serves: r.serves,
            legacy_assertion_audience: r.legacy_assertion_audience,
            post_logout_redirect_uris: r.post_logout_redirect_uris,
            require_pushed_authorization_requests: r.require_pushed_authorization_requests,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

impl From<&Client> for ClientRow {
    fn from(c: &Client) -> Self {
        Self {
            client_id: c.client_id.clone(),
            name: c.name.clone(),
            public: c.public,
            secret_hash: c.secret_hash.clone(),
            previous_secret_hash: c.previous_secret_hash.clone(),
            previous_secret_expires_at: c.previous_secret_expires_at,
            redirect_uris: c.redirect_uris.clone(),
            grant_types: c
                .grant_types
                .iter()
                .map(|g| g.as_str().to_owned())
                .collect(),
            scopes: c.scopes.clone(),
            audiences: c.audiences.clone(),
            dpop_required: c.dpop_required,
            jwks: c.jwks.clone(),
            serves: c.serves.clone(),
            legacy_assertion_audience: c.legacy_assertion_audience,
            post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
            require_pushed_authorization_requests: c.require_pushed_authorization_requests,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// Registers a client; returns it and, for confidential clients, its secret (shown once).
pub async fn create(
    db: &Db,
    new: &NewClient,
    now: UnixTime,
) -> Result<(Client, Option<ClientSecret>), ClientError> {
    new.validate()?;
    let secret = if new.public || new.jwks.is_some() {
        None
    } else {
        Some(ClientSecret::generate()?)
    };
    let client = Client {
        client_id: random_id()?,
        name: new.name.trim().to_owned(),
        public: new.public,
        secret_hash: secret.as_ref().map(|s| s.hash().to_vec()),
        previous_secret_hash: None,
        previous_secret_expires_at: None,
        redirect_uris: new.redirect_uris.clone(),
        grant_types: new
            .grant_types
            .iter()
            .filter_map(|g| GrantType::from_name(g))
            .collect(),
        scopes: new.scopes.clone(),
        audiences: new.audiences.clone(),
        dpop_required: new.dpop_required,
        jwks: new.jwks.clone(),
        serves: new.serves.clone(),
        legacy_assertion_audience: new.legacy_assertion_audience,
        post_logout_redirect_uris: new.post_logout_redirect_uris.clone(),
        require_pushed_authorization_requests: new.require_pushed_authorization_requests,
        created_at: now.0,
        updated_at: now.0,
    };
    rows::insert(db, &ClientRow::from(&client)).await?;
    Ok((client, secret))
}

/// Looks a client up.
pub async fn get(db: &Db, client_id: &str) -> Result<Option<Client>, StoreError> {
    rows::get(db, client_id)
        .await?
        .map(Client::try_from)
        .transpose()
}

/// Looks a client up with the `client_generation` its record is current at
/// (see [`crate::domain::client_cache`]).
pub async fn get_with_generation(
    db: &Db,
    client_id: &str,
) -> Result<Option<(Client, i64)>, StoreError> {
    rows::get_with_generation(db, client_id)
        .await?
        .map(|(row, generation)| Ok((Client::try_from(row)?, generation)))
        .transpose()
}

/// Every client, oldest first.
pub async fn list(db: &Db) -> Result<Vec<Client>, StoreError> {
    rows::list(db)
        .await?
        .into_iter()
        .map(Client::try_from)
        .collect()
}

/// Deletes a client and, in the same transaction, revokes every token
/// issued to it (a `client_id` revocation with its outbox row, so the edge
/// learns it). `false` if it did not exist.
pub async fn delete(
    db: &Db,
    client_id: &str,
    span: crate::store::revocation::CoverSpan,
    reason: &str,
    now: UnixTime,
) -> Result<bool, StoreError> {
    rows::delete_and_revoke(db, client_id, span, reason, now).await
}

/// Gives a confidential client a new secret; the old one keeps working for
/// `grace_secs`. Returns the new secret (shown once), or `None` if the client
/// does not exist or is public. One atomic UPDATE moves the current secret
/// to the previous slot, so concurrent rotations never lose a secret they
/// handed out.
pub async fn rotate_secret(
    db: &Db,
    client_id: &str,
    grace_secs: i64,
    now: UnixTime,
) -> Result<Option<ClientSecret>, ClientError> {
    let secret = ClientSecret::generate()?;
    match rows::rotate_secret(
        db,
        client_id,
        &secret.hash(),
        now.0.saturating_add(grace_secs),
        now,
    )
    .await?
    {
        SecretRotation::Rotated => Ok(Some(secret)),
        SecretRotation::Public => Err(ClientError::Invalid {
            field: "client",
            reason: "public clients have no secret",
        }),
        SecretRotation::Missing => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::is_registrable_redirect_uri as ok;

    #[test]
    fn http_redirect_uris_only_on_loopback() {
        for good in [
            "https://app.example/cb",
            "http://127.0.0.1:8070/",
            "http://[::1]:9000/cb",
            "http://localhost/cb",
            "http://LOCALHOST:3000/cb",
        ] {
            assert!(ok(good), "{good}");
        }
        for bad in [
            "http://app.example/cb",
            "http://10.0.0.1/cb",
            "http://localhost.attacker.example/cb",
            "http://127.0.0.1.nip.io/cb",
            "http://[::ffff:8.8.8.8]/cb",
            "http://user:pw@127.0.0.1/cb",
            "https://app.example/cb#frag",
            "ftp://127.0.0.1/cb",
        ] {
            assert!(!ok(bad), "{bad}");
        }
    }
}
