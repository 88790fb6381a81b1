//! How one issuer's access tokens look: which header `typ` values it uses,
//! where it puts the client id, the scopes and the roles, and whether it
//! sets `jti`. A [`TokenProfile`] only says where to *read* claims; it never
//! touches the checks that make a token trustworthy — the signature, `iss`,
//! `aud`, `exp`/`nbf`/`iat` and the algorithm stay as strict under every
//! profile ([`crate::access_token::UntrustedAccessToken::accept`]).
//!
//! [`TokenProfile::rfc9068`] (the default) is RFC 9068 §2 exactly. Vendor
//! presets (Keycloak, Auth0, Entra ID) are built by the edge's configuration
//! from these fields.

use crate::claims::{ClaimError, MAX_STRING_CLAIM};
use serde_json::{Map, Value};

/// Most roles or scopes read from one token (a bound on work and header size).
pub const MAX_ENTRIES: usize = 256;

/// Claim-reading options for one issuer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenProfile {
    /// Accepted header `typ` values, compared case-insensitively with an
    /// optional `application/` prefix (RFC 7515 §4.1.9). A token without
    /// `typ` is never accepted.
    pub typ: Vec<String>,
    /// Claims holding the client id, tried in order; the first present one
    /// is the client id (`client_id` in RFC 9068, `azp` in OpenID Connect,
    /// `appid` in Entra ID v1). At least one must be present.
    pub client_id_claims: Vec<String>,
    /// Claims holding granted scopes: a space-separated string (RFC 6749
    /// §3.3 `scope`, Entra `scp`) or an array of strings (Auth0
    /// `permissions`); their union is the token's scope.
    pub scope_claims: Vec<String>,
    /// Where roles are: a top-level claim name (`roles`), or, starting with
    /// `/`, a JSON Pointer (RFC 6901) into the claims
    /// (`/realm_access/roles`). Each must be an array of strings when
    /// present; their union is the token's roles.
    pub role_claims: Vec<String>,
    /// Whether `jti` is required (RFC 9068 §2.2). When not required and
    /// absent, the token's id is empty.
    pub require_jti: bool,
    /// Claims that must be present with exactly this string value (e.g.
    /// Keycloak's `"typ": "Bearer"`, which its ID tokens do not carry).
    pub required_claims: Vec<(String, String)>,
    /// Claims whose mere presence marks another kind of token: an ID
    /// token's `nonce`, `at_hash`, `c_hash` (OpenID Connect Core §2,
    /// §3.1.3.6, §3.3.2.11) for vendors whose ID tokens are signed by the
    /// same keys, share the `typ` and may name the API as `aud`.
    pub refused_claims: Vec<String>,
}

impl Default for TokenProfile {
    fn default() -> Self {
        Self::rfc9068()
    }
}

impl TokenProfile {
    /// RFC 9068 §2: `typ` `at+jwt`, `client_id` and `jti` required, scopes
    /// in `scope`, no roles.
    #[must_use]
    pub fn rfc9068() -> Self {
        Self {
            typ: vec!["at+jwt".to_owned()],
            client_id_claims: vec!["client_id".to_owned()],
            scope_claims: vec!["scope".to_owned()],
            role_claims: Vec::new(),
            require_jti: true,
            required_claims: Vec::new(),
            refused_claims: Vec::new(),
        }
    }

    /// Whether a header `typ` is accepted.
    #[must_use]
    pub fn accepts_typ(&self, typ: Option<&str>) -> bool {
        self.typ.iter().any(|t| {
            let t = t.to_ascii_lowercase();
            crate::jws::typ_is(typ, t.strip_prefix("application/").unwrap_or(&t))
        })
    }

    /// The client id: the first of [`Self::client_id_claims`] present;
    /// every other one present must be a string naming the same client
    /// (Keycloak's service-account tokens carry `azp` and `client_id`
    /// alike), else the token is ambiguous and refused.
    pub fn client_id(&self, c: &Map<String, Value>) -> Result<String, ClaimError> {
        let mut found: Option<String> = None;
        for name in &self.client_id_claims {
            if c.contains_key(name.as_str()) {
                let claim = static_name(name, "client_id");
                let v = crate::claims::string(c, claim)?;
                match &found {
                    None => found = Some(v),
                    Some(first) if *first == v => {}
                    Some(_) => return Err(ClaimError::Invalid { claim }),
                }
            }
        }
        if let Some(v) = found {
            return Ok(v);
        }
        Err(ClaimError::Missing {
            claim: static_name(
                self.client_id_claims
                    .first()
                    .map_or("client_id", String::as_str),
                "client_id",
            ),
        })
    }

    /// The union of the scope claims (absent claims add nothing).
    pub fn scopes(&self, c: &Map<String, Value>) -> Result<Vec<String>, ClaimError> {
        let mut out: Vec<String> = Vec::new();
        for name in &self.scope_claims {
            let invalid = ClaimError::Invalid {
                claim: static_name(name, "scope"),
            };
            let found = match c.get(name.as_str()) {
                None => continue,
                Some(Value::String(s)) => {
                    let mut one = Map::new();
                    one.insert("scope".to_owned(), Value::String(s.clone()));
                    crate::claims::scopes(&one).map_err(|_| invalid.clone())?
                }
                // `scope` is a space-separated string (RFC 9068 §2.2.3 by
                // RFC 8693 §4.2); other claims (Auth0 `permissions`) may be arrays.
                Some(Value::Array(a)) if name != "scope" => strings(a).ok_or(invalid.clone())?,
                Some(_) => return Err(invalid),
            };
            // Array entries (Auth0 `permissions`) are scopes too: each an
            // RFC 6749 §3.3 scope-token, as the space-separated form is, so
            // no tab, CR/LF, quote or non-ASCII byte reaches Gatehouse-Scope
            // or splits into another scope upstream.
            if !found.iter().all(|s| crate::claims::is_scope_token(s)) {
                return Err(invalid);
            }
            merge(&mut out, found).ok_or(invalid)?;
        }
        Ok(out)
    }

    /// The union of the role claims (absent claims add nothing).
    pub fn roles(&self, c: &Map<String, Value>) -> Result<Vec<String>, ClaimError> {
        let invalid = ClaimError::Invalid { claim: "roles" };
        let claims = Value::Object(c.clone());
        let mut out: Vec<String> = Vec::new();
        for path in &self.role_claims {
            let found = if path.starts_with('/') {
                claims.pointer(path)
            } else {
                c.get(path.as_str())
            };
            match found {
                None => {}
                Some(Value::Array(a)) => {
                    merge(&mut out, strings(a).ok_or(invalid.clone())?).ok_or(invalid.clone())?;
                }
                Some(_) => return Err(invalid),
            }
        }
        Ok(out)
    }

    /// Checks [`Self::required_claims`] and [`Self::refused_claims`].
    pub fn check_required(&self, c: &Map<String, Value>) -> Result<(), ClaimError> {
        if let Some(name) = self
            .refused_claims
            .iter()
            .find(|n| c.contains_key(n.as_str()))
        {
            return Err(ClaimError::Invalid {
                claim: static_name(name, "ID token claim"),
            });
        }
        for (name, want) in &self.required_claims {
            let claim = static_name(name, "required claim");
            match c.get(name.as_str()) {
                None => return Err(ClaimError::Missing { claim }),
                Some(Value::String(s)) if s == want => {}
                Some(_) => return Err(ClaimError::Invalid { claim }),
            }
        }
        Ok(())
    }
}

/// A claim name for an error: the well-known ones by name, others as `fallback`.
fn static_name(name: &str, fallback: &'static str) -> &'static str {
    const KNOWN: [&str; 14] = [
        "client_id",
        "azp",
        "appid",
        "scope",
        "scp",
        "permissions",
        "roles",
        "typ",
        "ver",
        "jti",
        "gty",
        "nonce",
        "at_hash",
        "c_hash",
    ];
    KNOWN.into_iter().find(|k| *k == name).unwrap_or(fallback)
}

/// Every element a non-empty string of at most [`MAX_STRING_CLAIM`] bytes.
fn strings(a: &[Value]) -> Option<Vec<String>> {
    if a.len() > MAX_ENTRIES {
        return None;
    }
    a.iter()
        .map(|v| match v {
            Value::String(s) if !s.is_empty() && s.len() <= MAX_STRING_CLAIM => Some(s.clone()),
            _ => None,
        })
        .collect()
}

/// Adds the new entries of `more` to `out`; `None` past [`MAX_ENTRIES`].
fn merge(out: &mut Vec<String>, more: Vec<String>) -> Option<()> {
    for s in more {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    (out.len() <= MAX_ENTRIES).then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn typ_client_id_scopes_and_roles() {
        let mut p = TokenProfile::rfc9068();
        assert!(p.accepts_typ(Some("at+jwt")));
        assert!(p.accepts_typ(Some("application/AT+JWT")));
        assert!(!p.accepts_typ(Some("JWT")));
        assert!(!p.accepts_typ(None));
        p.typ = vec!["JWT".into()];
        assert!(p.accepts_typ(Some("jwt")));

        let c = obj(
            json!({"azp": "app", "appid": "other", "scp": "a b", "permissions": ["b", "c"],
            "realm_access": {"roles": ["admin"]}, "resource_access": {"api": {"roles": ["r"]}, "x": {"roles": ["no"]}}}),
        );
        p.client_id_claims = vec!["client_id".into(), "azp".into(), "appid".into()];
        assert!(
            p.client_id(&c).is_err(),
            "azp and appid naming different clients are ambiguous"
        );
        p.client_id_claims = vec!["client_id".into(), "azp".into()];
        assert_eq!(p.client_id(&c).unwrap(), "app", "the one present");
        p.client_id_claims = vec!["client_id".into()];
        assert_eq!(
            p.client_id(&c),
            Err(ClaimError::Missing { claim: "client_id" })
        );
        p.scope_claims = vec!["scp".into(), "permissions".into()];
        assert_eq!(p.scopes(&c).unwrap(), ["a", "b", "c"]);
        p.role_claims = vec![
            "/realm_access/roles".into(),
            "/resource_access/api/roles".into(),
            "roles".into(),
        ];
        assert_eq!(p.roles(&c).unwrap(), ["admin", "r"]);
    }

    #[test]
    fn wrong_types_are_errors_not_absence() {
        let mut p = TokenProfile::rfc9068();
        p.role_claims = vec!["roles".into()];
        assert!(p.roles(&obj(json!({"roles": "admin"}))).is_err());
        assert!(p.roles(&obj(json!({"roles": ["admin", 1]}))).is_err());
        assert!(p.roles(&obj(json!({"roles": [""]}))).is_err());
        p.scope_claims = vec!["scp".into()];
        assert!(p.scopes(&obj(json!({"scp": 5}))).is_err());
        assert!(p.scopes(&obj(json!({"scp": ["a b"]}))).is_err());
        assert!(p.client_id(&obj(json!({"client_id": 7}))).is_err());
        p.required_claims = vec![("typ".into(), "Bearer".into())];
        assert!(p.check_required(&obj(json!({"typ": "ID"}))).is_err());
        assert!(p.check_required(&obj(json!({}))).is_err());
        assert!(p.check_required(&obj(json!({"typ": "Bearer"}))).is_ok());
        p.refused_claims = vec!["nonce".into()];
        assert!(p
            .check_required(&obj(json!({"typ": "Bearer", "nonce": "n"})))
            .is_err());
        // Review of issue 20: two client-id claims that disagree are
        // ambiguous, not "the first one wins" (an upstream reading the other
        // would see another client); `scope` itself is a string (RFC 9068
        // §2.2.3 by RFC 8693 §4.2), even though other scope claims may be arrays.
        p.client_id_claims = vec!["azp".into(), "client_id".into()];
        assert!(p
            .client_id(&obj(json!({"azp": "app", "client_id": "admin-cli"})))
            .is_err());
        assert_eq!(
            p.client_id(&obj(json!({"azp": "app", "client_id": "app"})))
                .unwrap(),
            "app"
        );
        assert!(p
            .client_id(&obj(json!({"azp": "app", "client_id": 5})))
            .is_err());
        p.scope_claims = vec!["scope".into()];
        assert!(p.scopes(&obj(json!({"scope": ["admin"]}))).is_err());
        p.scope_claims = vec!["permissions".into()];
        assert!(p.scopes(&obj(json!({"permissions": ["a\tb"]}))).is_err());
        assert!(p.scopes(&obj(json!({"permissions": ["a\"b"]}))).is_err());
        let many: Vec<String> = (0..=MAX_ENTRIES).map(|i| format!("r{i}")).collect();
        assert!(p.roles(&obj(json!({ "roles": many }))).is_err());
    }
}
