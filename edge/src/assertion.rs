//! The identity assertion: a short-lived JWS the edge signs for every
//! forwarded request when `IDENTITY_SIGNING_KEY` is set, sent to the upstream
//! as `Gatehouse-Assertion` (the header is under the identity prefix, so a
//! caller's own copy is stripped). It binds the verified identity to the
//! request — method and forwarded path — so an upstream reachable by other
//! routes than the edge can tell the edge's requests from forged ones (as
//! Ory Oathkeeper's `id_token` mutator does).
//!
//! The key is asymmetric (ES256 on P-256, or EdDSA on Ed25519): the edge
//! holds the private JWK as a secret; upstreams get only the public JWK and
//! so can verify but never mint an assertion. Signing uses WebCrypto with the
//! key imported once per isolate; with no key configured nothing is signed.
//!
//! Header `{"alg", "typ": "gatehouse-assertion+jwt", "kid"?}`; claims
//! `iss` ([`ISSUER`]), `aud` (the upstream URL), `iat`, `exp` (`iat` +
//! [`TTL_SECS`]), `jti`, `htm` (method as sent), `path` (the canonical path
//! forwarded, no query) and, on authenticated routes, `sub`, `client_id`,
//! `scope` (space-separated), `token_iss` and `act` (the acting party of an
//! exchanged token).

use gatehouse_common::access_token::AccessToken;
use gatehouse_common::alg::Algorithm;
use gatehouse_common::jwk::PublicJwk;
use gatehouse_common::{b64, json, UnixTime};
use serde_json::{json, Map, Value};
use std::fmt;

/// The request header carrying the assertion.
pub const HEADER: &str = "gatehouse-assertion";
/// The assertion's `typ` (explicit typing, RFC 8725 §3.11).
pub const TYP: &str = "gatehouse-assertion+jwt";
/// The assertion's `iss`.
pub const ISSUER: &str = "gatehouse-edge";
/// How long an assertion is valid, seconds.
pub const TTL_SECS: i64 = 60;

/// Why `IDENTITY_SIGNING_KEY` was refused (no key material is ever echoed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignerError {
    /// Not a JSON object.
    NotJson,
    /// No private part (`d`).
    NotPrivate,
    /// Not a P-256 (ES256) or Ed25519 (EdDSA) key.
    Unsupported,
}

/// The edge's signing key and the assertion's audience.
#[derive(Clone)]
pub struct AssertionSigner {
    alg: Algorithm,
    kid: Option<String>,
    /// The private JWK as JSON, for WebCrypto's `importKey` (secret).
    private_jwk: String,
    audience: String,
}

impl fmt::Debug for AssertionSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssertionSigner")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("private_jwk", &"[redacted]")
            .field("audience", &self.audience)
            .finish()
    }
}

impl AssertionSigner {
    /// Reads a private JWK (P-256 or Ed25519) for assertions to `audience`.
    pub fn from_jwk(text: &str, audience: &str) -> Result<Self, SignerError> {
        let mut m = json::parse_object(text.trim().as_bytes()).map_err(|_| SignerError::NotJson)?;
        if !matches!(m.get("d"), Some(Value::String(d)) if !d.is_empty()) {
            return Err(SignerError::NotPrivate);
        }
        let mut public = m.clone();
        public.remove("d");
        let key = PublicJwk::from_map(&public).map_err(|_| SignerError::Unsupported)?;
        let alg = match key.algorithms() {
            [Algorithm::Es256] => Algorithm::Es256,
            [Algorithm::EdDsa] => Algorithm::EdDsa,
            _ => return Err(SignerError::Unsupported),
        };
        let kid = key.kid().map(str::to_owned);
        for drop in ["kid", "use", "key_ops", "alg", "ext"] {
            m.remove(drop);
        }
        m.insert("alg".into(), alg.name().into());
        Ok(Self {
            alg,
            kid,
            private_jwk: Value::Object(m).to_string(),
            audience: audience.to_owned(),
        })
    }

    /// The signing algorithm (decided by the key).
    #[must_use]
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The private JWK's JSON (for the key import only).
    #[must_use]
    pub fn private_jwk(&self) -> &str {
        &self.private_jwk
    }

    /// `BASE64URL(header) '.' BASE64URL(claims)` for one forwarded request.
    #[must_use]
    pub fn signing_input(
        &self,
        method: &str,
        path: &str,
        token: Option<&AccessToken>,
        now: UnixTime,
        jti: &str,
    ) -> String {
        let mut header = Map::new();
        header.insert("alg".into(), self.alg.name().into());
        header.insert("typ".into(), TYP.into());
        if let Some(kid) = &self.kid {
            header.insert("kid".into(), kid.as_str().into());
        }
        let mut claims = json!({
            "iss": ISSUER, "aud": self.audience, "iat": now.0, "exp": now.0 + TTL_SECS,
            "jti": jti, "htm": method, "path": path,
        });
        if let (Some(t), Some(c)) = (token, claims.as_object_mut()) {
            c.insert("sub".into(), t.sub.as_str().into());
            c.insert("client_id".into(), t.client_id.as_str().into());
            c.insert("scope".into(), t.scope.join(" ").into());
            c.insert("token_iss".into(), t.iss.as_str().into());
            if !t.roles.is_empty() {
                c.insert("roles".into(), t.roles.clone().into());
            }
            if let Some(actor) = t
                .act
                .as_ref()
                .and_then(|a| a.get("sub"))
                .and_then(Value::as_str)
            {
                c.insert("act".into(), actor.into());
            }
        }
        format!(
            "{}.{}",
            b64::encode(Value::Object(header).to_string().as_bytes()),
            b64::encode(claims.to_string().as_bytes())
        )
    }
}

/// Signs the assertion for one forwarded request (WebCrypto; the key is
/// imported once per isolate).
#[cfg(all(target_arch = "wasm32", not(feature = "browser-test")))]
pub async fn sign(
    signer: &AssertionSigner,
    method: &str,
    path: &str,
    token: Option<&AccessToken>,
    now: UnixTime,
) -> Result<String, wasm_bindgen::JsValue> {
    let jti = b64::encode(&crate::webcrypto::random_bytes::<16>()?);
    let input = signer.signing_input(method, path, token, now, &jti);
    let sig = crate::webcrypto::sign(signer.private_jwk(), signer.alg(), input.as_bytes()).await?;
    Ok(format!("{input}.{}", b64::encode(&sig)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_common::jws;
    use gatehouse_common::provider::{RustCrypto, SignatureVerifier};
    use gatehouse_common::testkit::signer::TestKey;

    #[test]
    fn only_private_p256_or_ed25519_keys_are_accepted() {
        let es = TestKey::es256("edge-assertion");
        let mut jwk = es.private_jwk_json();
        jwk["kid"] = "edge-1".into();
        let s = AssertionSigner::from_jwk(&jwk.to_string(), "http://up").unwrap();
        assert_eq!(s.alg(), Algorithm::Es256);
        assert!(!format!("{s:?}").contains(jwk["d"].as_str().unwrap()));
        let ed = TestKey::ed25519("edge-assertion");
        let s = AssertionSigner::from_jwk(&ed.private_jwk_json().to_string(), "http://up").unwrap();
        assert_eq!(s.alg(), Algorithm::EdDsa);
        assert_eq!(
            AssertionSigner::from_jwk(&es.public_jwk_json().to_string(), "a").unwrap_err(),
            SignerError::NotPrivate
        );
        assert_eq!(
            AssertionSigner::from_jwk("nope", "a").unwrap_err(),
            SignerError::NotJson
        );
        let es384 = TestKey::es384("edge-assertion");
        assert_eq!(
            AssertionSigner::from_jwk(&es384.private_jwk_json().to_string(), "a").unwrap_err(),
            SignerError::Unsupported
        );
    }

    #[test]
    fn the_signing_input_binds_method_path_and_identity() {
        let key = TestKey::es256("edge-assertion");
        let mut jwk = key.private_jwk_json();
        jwk["kid"] = "edge-1".into();
        let s = AssertionSigner::from_jwk(&jwk.to_string(), "http://up").unwrap();
        let input = s.signing_input("PROPFIND", "/api/x", None, UnixTime(1000), "j1");
        let compact = format!("{input}.{}", b64::encode(&key.sign_bytes(input.as_bytes())));
        let parsed = jws::parse(&compact, &jws::Limits::ACCESS_TOKEN).unwrap();
        assert!(jws::typ_is(parsed.header.typ.as_deref(), TYP));
        assert_eq!(parsed.header.kid.as_deref(), Some("edge-1"));
        let public = key.public_jwk(None).unwrap();
        assert!(RustCrypto.verify(
            &public,
            Algorithm::Es256,
            parsed.signing_input(),
            parsed.signature()
        ));
        let c = &parsed.claims;
        assert_eq!(c["htm"], "PROPFIND");
        assert_eq!(c["path"], "/api/x");
        assert_eq!(c["aud"], "http://up");
        assert_eq!(c["exp"], 1000 + TTL_SECS);
        assert!(c.get("sub").is_none());
    }
}
