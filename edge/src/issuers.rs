//! Trusted issuers as configured in `TRUSTED_ISSUERS`: token profiles and
//! their vendor presets, and discovery (the issuer's metadata document
//! names its `jwks_uri`). Pure: the fetching is in `discovery` (wasm32).
//!
//! A preset fills in a [`TokenProfile`] (where the client id, scopes and
//! roles are, which header `typ` values, whether `jti` is set) and, for
//! some vendors, narrows the algorithms. Every field can be overridden.
//! No preset and no override touches the checks that make a token
//! trustworthy: the signature with the issuer's own keys, `iss` equal to
//! the configured issuer, `aud` containing a configured audience, `exp`,
//! `nbf`, `iat`, and an asymmetric algorithm allowed for the issuer.
//!
//! The vendors' documented access-token formats the presets follow:
//!
//! - RFC 9068 §2 (<https://www.rfc-editor.org/rfc/rfc9068#section-2>):
//!   header `typ: at+jwt`; `iss`, `exp`, `aud`, `sub`, `client_id`, `iat`,
//!   `jti` required; `scope` space-separated.
//! - Keycloak 26 (server administration guide,
//!   <https://www.keycloak.org/docs/latest/server_admin/index.html>, client
//!   "Advanced settings" and "Using lightweight access token",
//!   <https://www.keycloak.org/docs/latest/server_admin/index.html#_using_lightweight_access_token>;
//!   the claims of a Keycloak 26 token read one by one in
//!   <https://phasetwo.io/tutorials/getting-started/your-first-token/>):
//!   header `typ: JWT` (`at+jwt` when the client's "Use 'at+jwt' as access
//!   token header type" option is on), `alg: RS256` by default; the client
//!   in `azp` (service-account tokens also carry `client_id`); `jti`
//!   always; payload `typ: "Bearer"` (ID tokens say `"ID"`); `scope`
//!   space-separated; realm roles in `realm_access.roles`, client roles in
//!   `resource_access.<client-id>.roles`; `aud` only through an audience
//!   mapper (`account` by default). A lightweight access token ("Always
//!   use lightweight access token") keeps `iss`, `exp`, `iat`, `jti`,
//!   `typ`, `azp`, `sid`, `scope`, and `sub` (the `basic` scope's mapper);
//!   roles and `aud` only from mappers with "Add to lightweight access
//!   token" on.
//! - Auth0 (<https://auth0.com/docs/secure/tokens/access-tokens/access-token-profiles>,
//!   <https://auth0.com/docs/get-started/apis/configure-access-token-profile>):
//!   the default "Auth0" profile has header `typ: JWT`, the client in
//!   `azp`, no `jti`, `gty` for some grants, `aud` an array (the API and
//!   `…/userinfo`); the "RFC 9068" profile has `typ: at+jwt`, `client_id`
//!   and `jti`. RBAC adds a `permissions` array; roles only through an
//!   Action's namespaced custom claim
//!   (<https://auth0.com/docs/secure/tokens/json-web-tokens/create-custom-claims>).
//! - Microsoft Entra ID (<https://learn.microsoft.com/en-us/entra/identity-platform/access-token-claims-reference>):
//!   header `typ` "always JWT", `alg: RS256`; v1.0 tokens: `iss`
//!   `https://sts.windows.net/{tid}/`, client in `appid`, `ver: "1.0"`;
//!   v2.0 tokens: `iss` `https://login.microsoftonline.com/{tid}/v2.0`,
//!   client in `azp`, `ver: "2.0"`; delegated scopes in `scp`
//!   (space-separated), app roles in `roles` (array); no `jti` (`uti` is
//!   opaque). Discovery: `{issuer}/.well-known/openid-configuration`
//!   (<https://learn.microsoft.com/en-us/entra/identity-platform/v2-protocols-oidc#find-your-apps-openid-configuration-document-uri>).

use gatehouse_common::alg::Algorithm;
use gatehouse_common::profile::TokenProfile;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Longest clock leeway an issuer may be given, seconds.
pub const MAX_LEEWAY_SECS: i64 = 300;

/// Largest discovery document read, bytes.
pub const MAX_DISCOVERY_BYTES: usize = 64 * 1024;

/// Claims only ID tokens carry (OpenID Connect Core 1.0 §2: `nonce`,
/// `at_hash`; §3.3.2.11: `c_hash`). Auth0's and Entra ID's ID tokens share
/// the access tokens' keys and header `typ` ("JWT") and have no payload
/// `typ` to tell them apart (unlike Keycloak's `"typ": "ID"`); their access
/// tokens carry none of these (Auth0 and Entra access-token claim references
/// cited above), so a token holding one is refused under those presets.
const ID_TOKEN_CLAIMS: &[&str] = &["nonce", "at_hash", "c_hash"];

/// A named preset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// RFC 9068 exactly (the default).
    Rfc9068,
    /// Keycloak 26.
    Keycloak,
    /// Auth0 (either access token profile).
    Auth0,
    /// Microsoft Entra ID, v1.0 and v2.0 tokens.
    Entra,
}

impl Preset {
    /// Reads a preset name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name.trim() {
            "rfc9068" => Some(Self::Rfc9068),
            "keycloak" => Some(Self::Keycloak),
            "auth0" => Some(Self::Auth0),
            "entra" => Some(Self::Entra),
            _ => None,
        }
    }

    /// The preset's name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Rfc9068 => "rfc9068",
            Self::Keycloak => "keycloak",
            Self::Auth0 => "auth0",
            Self::Entra => "entra",
        }
    }

    /// The profile for an issuer whose resource server answers to `audiences`.
    #[must_use]
    pub fn profile(self, audiences: &[String]) -> TokenProfile {
        let names = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let mut p = TokenProfile::rfc9068();
        match self {
            Self::Rfc9068 => {}
            Self::Keycloak => {
                p.typ = names(&["JWT", "at+jwt"]);
                p.client_id_claims = names(&["azp", "client_id"]);
                p.role_claims = std::iter::once("/realm_access/roles".to_owned())
                    .chain(
                        audiences
                            .iter()
                            .map(|a| format!("/resource_access/{}/roles", pointer_escape(a))),
                    )
                    .collect();
                // Keycloak's ID tokens (typ "ID") are signed by the same
                // keys and may name the API's client as `aud`.
                p.required_claims = vec![("typ".to_owned(), "Bearer".to_owned())];
            }
            Self::Auth0 => {
                p.refused_claims = names(ID_TOKEN_CLAIMS);
                p.typ = names(&["JWT", "at+jwt"]);
                p.client_id_claims = names(&["azp", "client_id"]);
                p.scope_claims = names(&["scope", "permissions"]);
                p.require_jti = false;
            }
            Self::Entra => {
                p.refused_claims = names(ID_TOKEN_CLAIMS);
                p.typ = names(&["JWT"]);
                p.client_id_claims = names(&["azp", "appid"]);
                p.scope_claims = names(&["scp"]);
                p.role_claims = names(&["roles"]);
                p.require_jti = false;
            }
        }
        p
    }

    /// The preset's algorithms: `default` (the edge's `ALGORITHMS`)
    /// narrowed to what the vendor signs with; never widened.
    #[must_use]
    pub fn algorithms(self, default: &[Algorithm]) -> Vec<Algorithm> {
        let only = |allowed: &[Algorithm]| {
            default
                .iter()
                .copied()
                .filter(|a| allowed.contains(a))
                .collect()
        };
        match self {
            Self::Rfc9068 | Self::Keycloak => default.to_vec(),
            Self::Auth0 => only(&[Algorithm::Rs256, Algorithm::Ps256]),
            Self::Entra => only(&[Algorithm::Rs256]),
        }
    }
}

/// Escapes a JSON Pointer reference token (RFC 6901 §3).
#[must_use]
pub fn pointer_escape(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// Where an issuer's keys are found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JwksSource {
    /// A configured JWKS URL.
    Url(String),
    /// The `jwks_uri` of the metadata document at this URL.
    Discovery(String),
}

impl JwksSource {
    /// The configured URL (JWKS or discovery document).
    #[must_use]
    pub fn url(&self) -> &str {
        match self {
            Self::Url(u) | Self::Discovery(u) => u,
        }
    }
}

/// One `TRUSTED_ISSUERS` entry as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerFile {
    /// The issuer identifier (`iss`).
    pub issuer: String,
    /// The audiences this edge answers to for the issuer.
    pub audiences: Vec<String>,
    /// The JWKS URL; without it, discovery.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// `openid-configuration` (default), `oauth-authorization-server`, or
    /// the metadata document's URL.
    #[serde(default)]
    pub discovery: Option<String>,
    /// `rfc9068` (default), `keycloak`, `auth0` or `entra`.
    #[serde(default)]
    pub preset: Option<String>,
    /// Overrides the preset's algorithms.
    #[serde(default)]
    pub algorithms: Option<Vec<String>>,
    /// Overrides the accepted header `typ` values.
    #[serde(default)]
    pub typ: Option<Vec<String>>,
    /// Overrides where the client id is.
    #[serde(default)]
    pub client_id_claims: Option<Vec<String>>,
    /// Overrides where the scopes are.
    #[serde(default)]
    pub scope_claims: Option<Vec<String>>,
    /// Overrides where the roles are.
    #[serde(default)]
    pub role_claims: Option<Vec<String>>,
    /// Overrides whether `jti` is required.
    #[serde(default)]
    pub require_jti: Option<bool>,
    /// Overrides the claims that must have a given string value.
    #[serde(default)]
    pub required_claims: Option<BTreeMap<String, String>>,
    /// Overrides the clock leeway (at most [`MAX_LEEWAY_SECS`]).
    #[serde(default)]
    pub leeway_secs: Option<i64>,
}

/// An issuer entry, resolved: its profile, algorithms, leeway and keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedIssuer {
    /// The preset it started from.
    pub preset: Preset,
    /// The profile, overrides applied.
    pub profile: TokenProfile,
    /// Allowed algorithms (`None`: the preset's from the edge's default).
    pub algorithms: Option<Vec<String>>,
    /// Clock leeway override.
    pub leeway_secs: Option<i64>,
    /// Where its keys are.
    pub jwks: JwksSource,
}

fn is_http_url(v: &str) -> bool {
    let v = v.trim();
    (v.starts_with("https://") || v.starts_with("http://")) && !v.contains(char::is_whitespace)
}

/// Whether fetching `url` for `issuer` would step down from https to
/// plain http (where a network attacker could substitute the metadata or
/// the keys; the document's own https check cannot catch an http document
/// naming the attacker's https `jwks_uri`).
fn downgrades(issuer: &str, url: &str) -> bool {
    issuer.trim().starts_with("https://") && !url.trim().starts_with("https://")
}

/// The problem with one entry (no values echoed).
pub type Problem = &'static str;

impl IssuerFile {
    /// Applies the preset and the overrides.
    pub fn resolve(&self) -> Result<ResolvedIssuer, Problem> {
        if self.issuer.trim().is_empty() || self.audiences.iter().all(|a| a.trim().is_empty()) {
            return Err("every issuer needs a non-empty issuer and audiences");
        }
        let preset = match &self.preset {
            None => Preset::Rfc9068,
            Some(name) => {
                Preset::from_name(name).ok_or("preset must be rfc9068, keycloak, auth0 or entra")?
            }
        };
        let mut profile = preset.profile(&self.audiences);
        let nonempty = |v: &Vec<String>| !v.is_empty() && v.iter().all(|s| !s.trim().is_empty());
        if let Some(typ) = &self.typ {
            if !nonempty(typ) {
                return Err("typ must list at least one value");
            }
            profile.typ.clone_from(typ);
        }
        if let Some(c) = &self.client_id_claims {
            if !nonempty(c) {
                return Err("client_id_claims must name at least one claim");
            }
            profile.client_id_claims.clone_from(c);
        }
        if let Some(s) = &self.scope_claims {
            if !s.iter().all(|s| !s.trim().is_empty()) {
                return Err("scope_claims has an empty name");
            }
            profile.scope_claims.clone_from(s);
        }
        if let Some(r) = &self.role_claims {
            if !r.iter().all(|s| !s.trim().is_empty()) {
                return Err("role_claims has an empty name");
            }
            profile.role_claims.clone_from(r);
        }
        if let Some(j) = self.require_jti {
            profile.require_jti = j;
        }
        // Added to the preset's own requirements, never replacing them: the
        // Keycloak preset's `typ: "Bearer"` is what keeps its ID tokens out.
        if let Some(req) = &self.required_claims {
            for (k, v) in req {
                match profile.required_claims.iter().find(|(name, _)| name == k) {
                    Some((_, want)) if want == v => {}
                    Some(_) => {
                        return Err("required_claims may add claims but not change the preset's")
                    }
                    None => profile.required_claims.push((k.clone(), v.clone())),
                }
            }
        }
        if let Some(l) = self.leeway_secs {
            if !(0..=MAX_LEEWAY_SECS).contains(&l) {
                return Err("leeway_secs must be from 0 to 300");
            }
        }
        let jwks = match (&self.jwks_url, &self.discovery) {
            (Some(_), Some(_)) => return Err("give jwks_url or discovery, not both"),
            (Some(u), None) => {
                if !is_http_url(u) {
                    return Err("jwks_url must be an http(s) URL");
                }
                if downgrades(&self.issuer, u) {
                    return Err("an https issuer's jwks_url must be https");
                }
                JwksSource::Url(u.trim().trim_end_matches('/').to_owned())
            }
            (None, d) => JwksSource::Discovery(discovery_url(&self.issuer, d.as_deref())?),
        };
        Ok(ResolvedIssuer {
            preset,
            profile,
            algorithms: self.algorithms.clone(),
            leeway_secs: self.leeway_secs,
            jwks,
        })
    }
}

/// The metadata document's URL for `issuer`: OpenID Connect Discovery 1.0
/// §4 (`{issuer}/.well-known/openid-configuration`, the issuer's trailing
/// `/` removed), RFC 8414 §3.1 (`.well-known/oauth-authorization-server`
/// inserted between the host and the issuer's path), or a URL given as is.
pub fn discovery_url(issuer: &str, how: Option<&str>) -> Result<String, Problem> {
    let issuer = issuer.trim();
    if !is_http_url(issuer) || issuer.contains(['?', '#']) {
        return Err(
            "an issuer configured by discovery must be an http(s) URL without query or fragment",
        );
    }
    match how.map(str::trim) {
        None | Some("openid-configuration") => Ok(format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        )),
        Some("oauth-authorization-server") => {
            let scheme_end = issuer.find("://").map_or(0, |i| i + 3);
            let (origin, path) = match issuer.get(scheme_end..).and_then(|rest| rest.find('/')) {
                Some(i) => issuer
                    .split_at_checked(scheme_end + i)
                    .ok_or("the issuer is not a valid URL")?,
                None => (issuer, ""),
            };
            Ok(format!(
                "{origin}/.well-known/oauth-authorization-server{}",
                path.trim_end_matches('/')
            ))
        }
        Some(url) if is_http_url(url) => {
            if downgrades(issuer, url) {
                return Err("an https issuer's discovery URL must be https");
            }
            Ok(url.to_owned())
        }
        Some(_) => {
            Err("discovery must be openid-configuration, oauth-authorization-server or a URL")
        }
    }
}

/// What the edge takes from a metadata document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discovered {
    /// The issuer's JWKS URL.
    pub jwks_uri: String,
}

/// Why a metadata document was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiscoveryError {
    /// Not a JSON object, or too large.
    NotJson,
    /// `issuer` differs from the configured issuer (OpenID Connect
    /// Discovery §4.3, RFC 8414 §3.3: it MUST be identical).
    IssuerMismatch,
    /// `jwks_uri` is missing, not an http(s) URL, or plain http for an
    /// https issuer.
    BadJwksUri,
}

/// Reads a metadata document fetched for `issuer`.
pub fn read_discovery(issuer: &str, body: &[u8]) -> Result<Discovered, DiscoveryError> {
    if body.len() > MAX_DISCOVERY_BYTES {
        return Err(DiscoveryError::NotJson);
    }
    // Duplicate member names are refused (RFC 8259 §4 leaves them to the
    // parser; serde_json keeps the last): no two readings of `issuer` or
    // `jwks_uri`.
    let doc = gatehouse_common::json::parse_object(body).map_err(|_| DiscoveryError::NotJson)?;
    if doc.get("issuer").and_then(|v| v.as_str()) != Some(issuer) {
        return Err(DiscoveryError::IssuerMismatch);
    }
    let jwks_uri = doc
        .get("jwks_uri")
        .and_then(|v| v.as_str())
        .filter(|u| is_http_url(u) && u.len() <= 2048)
        .ok_or(DiscoveryError::BadJwksUri)?;
    // An https issuer's keys are never fetched over plain http.
    if issuer.starts_with("https://") && !jwks_uri.starts_with("https://") {
        return Err(DiscoveryError::BadJwksUri);
    }
    Ok(Discovered {
        jwks_uri: jwks_uri.to_owned(),
    })
}

#[cfg(test)]
mod tests;
