//! Building DPoP proofs (RFC 9449 §4.2) — the pure half.
//!
//! WebCrypto produces the key, the randomness and the signature; everything
//! else (the `htu`, the header and claims, the compact serialization, the
//! public JWK and its thumbprint) is computed here, so it is testable natively
//! and agrees with `gatehouse_common`, which the servers verify with.

use crate::error::BrowserError;
use gatehouse_common::jwk::{EcCurve, KeyMaterial, PublicJwk};
use gatehouse_common::{b64, dpop, uri};
use serde_json::{json, Map, Value};

/// The `htu` for a request URL: the absolute URL without query and fragment
/// (RFC 9449 §4.2). The URL must be one the servers can normalize.
pub fn htu(url: &str) -> Result<String, BrowserError> {
    uri::normalize(url).map_err(|_| BrowserError::InvalidUrl)?;
    let end = url.find(['?', '#']).unwrap_or(url.len());
    url.get(..end)
        .map(str::to_owned)
        .ok_or(BrowserError::InvalidUrl)
}

/// Checks that `method` is an RFC 9110 method token (`htm` is compared exactly).
pub fn check_method(method: &str) -> Result<(), BrowserError> {
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if method.is_empty() || method.len() > 32 || !method.bytes().all(tchar) {
        return Err(BrowserError::InvalidMethod);
    }
    Ok(())
}

/// Whether `nonce` is RFC 9449 `nonce = 1*NQCHAR` (`%x21 / %x23-5B / %x5D-7E`).
#[must_use]
pub fn is_valid_nonce(nonce: &str) -> bool {
    !nonce.is_empty()
        && nonce.len() <= 1024
        && nonce
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

/// A P-256 public key as a proof carries it, with its RFC 7638 thumbprint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProofKey {
    jwk: Value,
    jkt: String,
}

impl ProofKey {
    /// Reads the JSON of `crypto.subtle.exportKey("jwk", publicKey)`, keeps
    /// only `kty`, `crv`, `x`, `y`, and computes the thumbprint with
    /// `gatehouse_common` so it matches the servers' `cnf.jkt` exactly.
    pub fn from_exported_jwk(exported: &[u8]) -> Result<Self, BrowserError> {
        let v: Value =
            serde_json::from_slice(exported).map_err(|_| BrowserError::InvalidPublicKey)?;
        let obj = v.as_object().ok_or(BrowserError::InvalidPublicKey)?;
        if obj.contains_key("d") {
            return Err(BrowserError::InvalidPublicKey);
        }
        let mut public = Map::new();
        for member in ["kty", "crv", "x", "y"] {
            let value = obj.get(member).ok_or(BrowserError::InvalidPublicKey)?;
            public.insert(member.to_owned(), value.clone());
        }
        let text = Value::Object(public).to_string();
        let parsed =
            PublicJwk::from_json(text.as_bytes()).map_err(|_| BrowserError::InvalidPublicKey)?;
        let KeyMaterial::Ec {
            curve: EcCurve::P256,
            x,
            y,
        } = parsed.material()
        else {
            return Err(BrowserError::InvalidPublicKey);
        };
        Ok(Self {
            jwk: json!({ "kty": "EC", "crv": "P-256", "x": b64::encode(x), "y": b64::encode(y) }),
            jkt: parsed.thumbprint().to_owned(),
        })
    }

    /// The public JWK: exactly `kty`, `crv`, `x`, `y`.
    #[must_use]
    pub fn jwk(&self) -> &Value {
        &self.jwk
    }

    /// The RFC 7638 SHA-256 thumbprint, base64url (the `dpop_jkt` / `cnf.jkt`).
    #[must_use]
    pub fn jkt(&self) -> &str {
        &self.jkt
    }
}

/// What one proof asserts.
#[derive(Clone, Copy, Debug)]
pub struct ProofClaims<'a> {
    /// The HTTP method (`htm`), exactly as sent.
    pub method: &'a str,
    /// The request URL; its query and fragment are dropped for `htu`.
    pub url: &'a str,
    /// Seconds since the Unix epoch (`iat`).
    pub iat: i64,
    /// A fresh random identifier (`jti`).
    pub jti: &'a str,
    /// The server-provided nonce, if any.
    pub nonce: Option<&'a str>,
    /// The access token sent with the proof; its hash becomes `ath`.
    pub access_token: Option<&'a str>,
}

/// A proof's signing input, ready for ECDSA P-256 / SHA-256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsignedProof {
    signing_input: String,
}

impl UnsignedProof {
    /// Builds header `{typ, alg, jwk}` and claims `{jti, htm, htu, iat,
    /// nonce?, ath?}` and encodes them as `base64url(header).base64url(claims)`.
    pub fn new(key: &ProofKey, claims: &ProofClaims<'_>) -> Result<Self, BrowserError> {
        check_method(claims.method)?;
        let htu = htu(claims.url)?;
        let header = json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": key.jwk() });
        let mut body = Map::new();
        body.insert("jti".into(), claims.jti.into());
        body.insert("htm".into(), claims.method.into());
        body.insert("htu".into(), htu.into());
        body.insert("iat".into(), claims.iat.into());
        if let Some(nonce) = claims.nonce {
            if !is_valid_nonce(nonce) {
                return Err(BrowserError::InvalidNonce);
            }
            body.insert("nonce".into(), nonce.into());
        }
        if let Some(token) = claims.access_token {
            body.insert("ath".into(), dpop::ath(token).into());
        }
        let signing_input = format!(
            "{}.{}",
            b64::encode(header.to_string().as_bytes()),
            b64::encode(Value::Object(body).to_string().as_bytes())
        );
        Ok(Self { signing_input })
    }

    /// The bytes to sign.
    #[must_use]
    pub fn signing_input(&self) -> &[u8] {
        self.signing_input.as_bytes()
    }

    /// The compact JWS, given the IEEE P1363 (`r ‖ s`) signature WebCrypto returns.
    #[must_use]
    pub fn finish(self, signature: &[u8]) -> String {
        let mut out = self.signing_input;
        out.push('.');
        out.push_str(&b64::encode(signature));
        out
    }
}

/// A `jti` from 16 random bytes (128 bits), base64url.
#[must_use]
pub fn jti_from_random(bytes: &[u8; 16]) -> String {
    b64::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_common::dpop::UntrustedDpopProof;
    use gatehouse_common::dpop::{BoundAccessToken, DpopError, DpopPolicy, DpopRequest};
    use gatehouse_common::nonce::NonceIssuer;
    use gatehouse_common::provider::{RustCrypto, SignatureVerifier};
    use gatehouse_common::testkit::signer::TestKey;
    use gatehouse_common::UnixTime;

    fn key() -> (TestKey, ProofKey) {
        let k = TestKey::es256("browser-proof");
        let mut exported = k.public_jwk_json();
        // What WebCrypto adds to an exported public key.
        exported["ext"] = true.into();
        exported["key_ops"] = json!(["verify"]);
        let pk = ProofKey::from_exported_jwk(exported.to_string().as_bytes()).unwrap();
        (k, pk)
    }

    #[test]
    fn htu_drops_query_and_fragment() {
        assert_eq!(
            htu("https://api.example.com/a/b?x=1#f").unwrap(),
            "https://api.example.com/a/b"
        );
        assert_eq!(
            htu("https://h.example/p#frag").unwrap(),
            "https://h.example/p"
        );
        assert_eq!(
            htu("http://127.0.0.1:8787/").unwrap(),
            "http://127.0.0.1:8787/"
        );
        assert_eq!(htu("/relative"), Err(BrowserError::InvalidUrl));
        assert_eq!(htu("ftp://h/"), Err(BrowserError::InvalidUrl));
        assert_eq!(htu("https://u:p@h/"), Err(BrowserError::InvalidUrl));
    }

    #[test]
    fn methods_and_nonces_are_validated() {
        assert!(check_method("GET").is_ok());
        assert!(check_method("").is_err());
        assert!(check_method("GE T").is_err());
        assert!(is_valid_nonce("eyJ7S_zG.eyJH0-Z.HX4w-7v"));
        assert!(!is_valid_nonce(""));
        assert!(!is_valid_nonce("a\"b"));
        assert!(!is_valid_nonce("a\\b"));
        assert!(!is_valid_nonce("a b"));
    }

    #[test]
    fn public_jwk_is_public_part_only_and_thumbprint_matches_common() {
        let (k, pk) = key();
        let obj = pk.jwk().as_object().unwrap();
        let mut members: Vec<&str> = obj.keys().map(String::as_str).collect();
        members.sort_unstable();
        assert_eq!(members, ["crv", "kty", "x", "y"]);
        let common = k.public_jwk(None).unwrap();
        assert_eq!(pk.jkt(), common.thumbprint());
        let mut with_d = k.public_jwk_json();
        with_d["d"] = "AAAA".into();
        assert_eq!(
            ProofKey::from_exported_jwk(with_d.to_string().as_bytes()),
            Err(BrowserError::InvalidPublicKey)
        );
        let ed = TestKey::ed25519("x").public_jwk_json().to_string();
        assert!(ProofKey::from_exported_jwk(ed.as_bytes()).is_err());
    }

    fn sign(k: &TestKey, pk: &ProofKey, c: &ProofClaims<'_>) -> String {
        let unsigned = UnsignedProof::new(pk, c).unwrap();
        let sig = k.sign_bytes(unsigned.signing_input());
        unsigned.finish(&sig)
    }

    #[test]
    fn proof_verifies_under_common_with_ath_and_nonce() {
        let (k, pk) = key();
        let issuer = NonceIssuer::with_defaults(&[7u8; 32]).unwrap();
        let now = UnixTime(1_700_000_000);
        let nonce = issuer.issue(now);
        let token = "eyJhbGciOiJFUzI1NiJ9.e30.sig";
        let proof = sign(
            &k,
            &pk,
            &ProofClaims {
                method: "POST",
                url: "https://api.example.com/orders?page=2#x",
                iat: now.0,
                jti: &jti_from_random(&[9u8; 16]),
                nonce: Some(&nonce),
                access_token: Some(token),
            },
        );
        let policy = DpopPolicy::default();
        let request = DpopRequest {
            method: "POST",
            uri: "https://api.example.com/orders?page=3",
            access_token: Some(BoundAccessToken {
                raw: token,
                cnf_jkt: Some(pk.jkt()),
            }),
            nonces: Some(&issuer),
        };
        let verify = |proof: &str, req: &DpopRequest<'_>, at: UnixTime| {
            let u = UntrustedDpopProof::parse_one(proof, &policy)?;
            let ok = RustCrypto.verify(u.jwk(), u.alg(), u.signing_input(), u.signature());
            u.accept(ok, &policy, req, at)
        };
        let accepted = verify(&proof, &request, now).unwrap();
        assert_eq!(accepted.jkt, pk.jkt());
        assert_eq!(accepted.htu, "https://api.example.com/orders");
        assert_eq!(accepted.nonce.as_deref(), Some(nonce.as_str()));
        // ath binds the token.
        let other = DpopRequest {
            access_token: Some(BoundAccessToken {
                raw: "another.token.value",
                cnf_jkt: Some(pk.jkt()),
            }),
            ..request
        };
        assert_eq!(verify(&proof, &other, now), Err(DpopError::AthMismatch));
        // Wrong method, too old.
        let get = DpopRequest {
            method: "GET",
            ..request
        };
        assert_eq!(verify(&proof, &get, now), Err(DpopError::MethodMismatch));
        let no_nonces = DpopRequest {
            nonces: None,
            ..request
        };
        assert_eq!(
            verify(&proof, &no_nonces, now.plus(3600)),
            Err(DpopError::Stale)
        );
        // A tampered signature fails.
        let mut bad = proof.clone();
        bad.pop();
        bad.push(if proof.ends_with('A') { 'B' } else { 'A' });
        assert!(verify(&bad, &request, now).is_err());
    }

    #[test]
    fn proof_without_token_or_nonce_has_neither_claim() {
        let (k, pk) = key();
        let proof = sign(
            &k,
            &pk,
            &ProofClaims {
                method: "POST",
                url: "https://as.example/token",
                iat: 1_700_000_000,
                jti: "abc",
                nonce: None,
                access_token: None,
            },
        );
        let claims = proof.split('.').nth(1).unwrap();
        let claims: Value = serde_json::from_slice(&b64::decode(claims).unwrap()).unwrap();
        let obj = claims.as_object().unwrap();
        assert!(!obj.contains_key("ath") && !obj.contains_key("nonce"));
        assert_eq!(obj["htu"], "https://as.example/token");
        let header = proof.split('.').next().unwrap();
        let header: Value = serde_json::from_slice(&b64::decode(header).unwrap()).unwrap();
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], "ES256");
        assert_eq!(&header["jwk"], pk.jwk());
        assert_eq!(
            UnsignedProof::new(
                &pk,
                &ProofClaims {
                    method: "POST",
                    url: "https://as.example/token",
                    iat: 1,
                    jti: "abc",
                    nonce: Some("bad nonce"),
                    access_token: None,
                }
            ),
            Err(BrowserError::InvalidNonce)
        );
    }
}
