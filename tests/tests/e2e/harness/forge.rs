//! Forged and hand-built tokens and DPoP proofs: a valid token from a test
//! key and every access-token case of the core's attack table, each one
//! modification away from valid (used by the hostile, faults and forwarding
//! tests).

use super::{now, unique};
use base64::Engine as _;
use gatehouse_common::b64;
use gatehouse_common::dpop::ath;
use gatehouse_common::revocation::REVOCATIONS_TYP;
use gatehouse_common::testkit::signer::TestKey;
use serde_json::{json, Value};

pub(crate) const AUD: &str = "https://api.hostile.example";

/// P-256 group order n, big-endian (the r = s = n case).
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// `base` with `key` set to `value`, or removed when `value` is null.
pub(crate) fn set(mut base: Value, key: &str, value: Value) -> Value {
    if value.is_null() {
        base.as_object_mut().unwrap().remove(key);
    } else {
        base[key] = value;
    }
    base
}

/// JSON text of `v` with `member` (`"name":value`) written first, so a
/// member already in `v` appears twice.
pub(crate) fn with_duplicate(v: &Value, member: &str) -> String {
    let text = v.to_string();
    format!("{{{member},{}", &text[1..])
}

pub(crate) fn sig_of(token: &str) -> Vec<u8> {
    b64::decode(token.rsplit_once('.').unwrap().1).unwrap()
}

/// `token` with its signature replaced by `sig`.
pub(crate) fn resign(token: &str, sig: &[u8]) -> String {
    let (input, _) = token.rsplit_once('.').unwrap();
    format!("{input}.{}", b64::encode(sig))
}

/// `token` with its header (or claims) segment replaced, signature kept.
pub(crate) fn replace_segment(token: &str, index: usize, json_text: &str) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[index] = b64::encode(json_text.as_bytes());
    parts.join(".")
}

/// A P1363 ECDSA signature (r || s) as ASN.1 DER.
pub(crate) fn der(sig: &[u8]) -> Vec<u8> {
    let int = |x: &[u8]| {
        let mut v: Vec<u8> = x.iter().copied().skip_while(|b| *b == 0).collect();
        if v.first().is_none_or(|b| *b >= 0x80) {
            v.insert(0, 0);
        }
        let mut out = vec![0x02, v.len() as u8];
        out.extend(v);
        out
    };
    let (r, s) = sig.split_at(sig.len() / 2);
    let body = [int(r), int(s)].concat();
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    out
}

/// Builds the attack tokens for one issuer, audience and key id: a valid
/// token from `key`, and every case of the attack table that applies to an
/// access token, each one modification away from valid.
pub(crate) struct Forge {
    pub(crate) iss: String,
    pub(crate) aud: String,
    pub(crate) kid: String,
    pub(crate) key: TestKey,
}

impl Forge {
    pub(crate) fn header(&self) -> Value {
        json!({"alg": self.key.alg().name(), "typ": "at+jwt", "kid": self.kid})
    }

    pub(crate) fn claims(&self) -> Value {
        let t = now();
        json!({
            "iss": self.iss, "aud": self.aud, "sub": "user-h", "client_id": "client-h",
            "jti": unique("at"), "iat": t, "nbf": t, "exp": t + 300, "scope": "read",
        })
    }

    pub(crate) fn sign(&self, header: &Value, claims: &Value) -> String {
        self.key.sign(header, claims)
    }

    pub(crate) fn valid(&self) -> String {
        self.sign(&self.header(), &self.claims())
    }

    pub(crate) fn claim(&self, name: &str, value: Value) -> String {
        self.sign(&self.header(), &set(self.claims(), name, value))
    }

    pub(crate) fn head(&self, name: &str, value: Value) -> String {
        self.sign(&set(self.header(), name, value), &self.claims())
    }

    fn text(&self, header: &str, claims: &str) -> String {
        self.key.sign_text(header, claims)
    }

    /// A token bound to `jkt` (RFC 9449 §6.1).
    pub(crate) fn bound(&self, jkt: &str) -> String {
        self.claim("cnf", json!({ "jkt": jkt }))
    }

    /// Every access-token case of the attack table, named as there.
    #[allow(clippy::too_many_lines)]
    pub(crate) fn token_attacks(&self) -> Vec<(&'static str, String)> {
        let attacker = TestKey::es256("hostile-attacker");
        let h = self.header();
        let c = self.claims();
        let valid = self.valid();
        let sig = sig_of(&valid);
        let enc = |v: &Value| b64::encode(v.to_string().as_bytes());
        let nested = {
            let mut v = json!(1);
            for _ in 0..200 {
                v = json!([v]);
            }
            v
        };
        let hs256_header = set(h.clone(), "alg", json!("HS256"));
        vec![
            (
                "alg none, empty signature",
                format!(
                    "{}.{}.",
                    enc(&set(h.clone(), "alg", json!("none"))),
                    enc(&c)
                ),
            ),
            ("alg none with a signature", self.head("alg", json!("none"))),
            ("alg None (case variant)", self.head("alg", json!("None"))),
            ("alg nOnE (case variant)", self.head("alg", json!("nOnE"))),
            (
                // The HMAC key a vulnerable library would use is the public
                // JWK; any MAC must be refused before it is computed.
                "HS256 keyed with the issuer's public JWK",
                format!(
                    "{}.{}.{}",
                    enc(&hs256_header),
                    enc(&c),
                    b64::encode(&[7u8; 32])
                ),
            ),
            (
                "HS384 algorithm confusion",
                self.head("alg", json!("HS384")),
            ),
            (
                "HS512 algorithm confusion",
                self.head("alg", json!("HS512")),
            ),
            ("lower-case es256", self.head("alg", json!("es256"))),
            (
                "alg with trailing NUL",
                self.head("alg", json!("ES256\u{0}")),
            ),
            ("alg missing", self.head("alg", Value::Null)),
            ("alg as array", self.head("alg", json!(["ES256"]))),
            (
                "RS256 header on an EC key",
                self.head("alg", json!("RS256")),
            ),
            (
                "EdDSA header on an EC key",
                self.head("alg", json!("EdDSA")),
            ),
            ("ES384 header with a 96-byte signature on a P-256 key", {
                let t = self.head("alg", json!("ES384"));
                let s = sig_of(&t);
                resign(&t, &[s.clone(), s[..32].to_vec()].concat())
            }),
            (
                "embedded jwk (attacker's key) in an access token",
                attacker.sign(&set(h.clone(), "jwk", attacker.public_jwk_json()), &c),
            ),
            (
                "jku pointing at the attacker, signed by the attacker",
                attacker.sign(
                    &set(h.clone(), "jku", json!("https://attacker.example/jwks")),
                    &c,
                ),
            ),
            (
                "x5u pointing at the attacker",
                attacker.sign(
                    &set(h.clone(), "x5u", json!("https://attacker.example/c")),
                    &c,
                ),
            ),
            (
                "x5c with the attacker's certificate",
                attacker.sign(&set(h.clone(), "x5c", json!(["MIIBszCCAVmgAwIBAgIU"])), &c),
            ),
            (
                "kid path traversal",
                self.head("kid", json!("../../../../dev/null")),
            ),
            ("kid SQL injection", self.head("kid", json!("' OR '1'='1"))),
            ("kid too long", self.head("kid", json!("k".repeat(2000)))),
            ("kid not a string", self.head("kid", json!(1))),
            (
                "forged with an unknown key under the issuer's kid",
                attacker.sign(&h, &c),
            ),
            (
                "Ed25519 forgery under the issuer's kid",
                TestKey::ed25519("hostile-ed").sign(&set(h.clone(), "alg", json!("EdDSA")), &c),
            ),
            ("psychic signature r = s = 0", resign(&valid, &[0u8; 64])),
            (
                "r = s = n (group order)",
                resign(&valid, &[P256_N, P256_N].concat()),
            ),
            (
                "r = 0 with the real s",
                resign(&valid, &[vec![0u8; 32], sig[32..].to_vec()].concat()),
            ),
            ("DER-encoded ECDSA signature", resign(&valid, &der(&sig))),
            ("truncated signature", resign(&valid, &sig[..63])),
            ("signature stripped", resign(&valid, &[])),
            (
                "payload changed after signing (scope escalation)",
                replace_segment(
                    &valid,
                    1,
                    &set(c.clone(), "scope", json!("read admin")).to_string(),
                ),
            ),
            (
                "header changed after signing (typ/kid rewrite)",
                replace_segment(
                    &valid,
                    0,
                    &set(h.clone(), "kid", json!("other")).to_string(),
                ),
            ),
            (
                "oversized token",
                self.claim("pad", json!("x".repeat(20_000))),
            ),
            (
                "oversized header",
                self.head("pad", json!("x".repeat(5_000))),
            ),
            ("deeply nested claims", self.claim("deep", nested)),
            ("JWE (five segments)", format!("{valid}.AAAA.BBBB")),
            ("four segments", format!("{valid}.AAAA")),
            ("padded base64url", {
                let (hd, rest) = valid.split_once('.').unwrap();
                format!("{hd}==.{rest}")
            }),
            ("standard base64 alphabet", {
                // Claims whose encoding needs '+' and '/' in the standard alphabet.
                let claims = set(c.clone(), "x", json!("\u{fb}\u{ff}\u{fe}>>>???"));
                let std = base64::engine::general_purpose::STANDARD_NO_PAD;
                let input = format!("{}.{}", enc(&h), std.encode(claims.to_string()));
                format!(
                    "{input}.{}",
                    b64::encode(&self.key.sign_bytes(input.as_bytes()))
                )
            }),
            (
                "payload is a JSON array",
                self.text(&h.to_string(), &json!([c.clone()]).to_string()),
            ),
            (
                "trailing garbage after the claims",
                self.text(&h.to_string(), &format!("{c}garbage")),
            ),
            (
                "duplicate sub claim",
                self.text(&h.to_string(), &with_duplicate(&c, r#""sub":"admin""#)),
            ),
            (
                "duplicate exp claim",
                self.text(&h.to_string(), &with_duplicate(&c, r#""exp":99999999999"#)),
            ),
            (
                "duplicate alg header",
                self.text(&with_duplicate(&h, r#""alg":"none""#), &c.to_string()),
            ),
            (
                "duplicate nested cnf.jkt",
                self.text(
                    &h.to_string(),
                    &with_duplicate(&c, r#""cnf":{"jkt":"a","jkt":"b"}"#),
                ),
            ),
            (
                "exp as a string",
                self.claim("exp", json!((now() + 300).to_string())),
            ),
            ("exp missing", self.claim("exp", Value::Null)),
            ("exp as a boolean", self.claim("exp", json!(true))),
            ("exp negative", self.claim("exp", json!(-1))),
            ("exp 1e300", self.claim("exp", json!(1e300))),
            (
                "iat as a string",
                self.claim("iat", json!(now().to_string())),
            ),
            (
                "nbf as a string",
                self.claim("nbf", json!(now().to_string())),
            ),
            ("aud as a number", self.claim("aud", json!(42))),
            (
                "aud for another resource",
                self.claim("aud", json!("https://other.example")),
            ),
            (
                "aud array without us",
                self.claim("aud", json!(["https://a.example", "b"])),
            ),
            (
                "aud prefix of ours",
                self.claim("aud", json!(&self.aud[..self.aud.len() - 3])),
            ),
            (
                "iss of another issuer",
                self.claim("iss", json!("https://evil.example")),
            ),
            (
                "iss with a trailing slash",
                self.claim("iss", json!(format!("{}/", self.iss))),
            ),
            ("iss as an array", self.claim("iss", json!([self.iss]))),
            ("expired token", {
                let t = now() - 3600;
                self.sign(
                    &h,
                    &set(
                        set(set(c.clone(), "iat", json!(t)), "nbf", json!(t)),
                        "exp",
                        json!(t + 300),
                    ),
                )
            }),
            (
                "not yet valid (nbf)",
                self.claim("nbf", json!(now() + 3600)),
            ),
            (
                "issued in the future",
                self.claim("iat", json!(now() + 3600)),
            ),
            ("sub missing", self.claim("sub", Value::Null)),
            ("client_id missing", self.claim("client_id", Value::Null)),
            ("jti missing", self.claim("jti", Value::Null)),
            ("sub empty", self.claim("sub", json!(""))),
            (
                "scope with a quote (header injection)",
                self.claim("scope", json!("read\" admin")),
            ),
            ("cnf as a string", self.claim("cnf", json!("jkt"))),
            (
                "cnf with only x5t#S256 (mTLS binding)",
                self.claim(
                    "cnf",
                    json!({"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}),
                ),
            ),
            ("crit naming exp", self.head("crit", json!(["exp"]))),
            ("empty crit", self.head("crit", json!([]))),
            (
                "b64 false (unencoded payload)",
                self.head("b64", json!(false)),
            ),
            ("zip DEF", self.head("zip", json!("DEF"))),
            ("nested JWT (cty JWT)", self.head("cty", json!("JWT"))),
            (
                "nested JWT (cty application/jwt)",
                self.head("cty", json!("application/jwt")),
            ),
            (
                "DPoP proof presented as access token",
                self.head("typ", json!("dpop+jwt")),
            ),
            (
                "typ JWT (ID token as access token)",
                self.head("typ", json!("JWT")),
            ),
            ("typ missing", self.head("typ", Value::Null)),
            (
                "revocation document presented as access token",
                self.head("typ", json!(REVOCATIONS_TYP)),
            ),
            ("empty token", String::new()),
            ("not a JWT at all", "not-a-jwt".to_owned()),
        ]
    }
}

/// A DPoP proof's claims for `method url`, with `ath` of `token`.
pub(crate) fn proof_claims(method: &str, url: &str, token: Option<&str>) -> Value {
    let mut c = json!({"jti": unique("proof"), "htm": method, "htu": url, "iat": now()});
    if let Some(t) = token {
        c["ath"] = ath(t).into();
    }
    c
}

pub(crate) fn proof_header(key: &TestKey) -> Value {
    json!({"typ": "dpop+jwt", "alg": key.alg().name(), "jwk": key.public_jwk_json()})
}

/// A DPoP proof by `key` for `method url`: `ath` of `token` and the
/// server's `nonce` when given, a fresh `jti`, `iat` now.
pub(crate) fn dpop_proof(
    key: &TestKey,
    method: &str,
    url: &str,
    token: Option<&str>,
    nonce: Option<&str>,
) -> String {
    let mut claims = proof_claims(method, url, token);
    if let Some(n) = nonce {
        claims["nonce"] = n.into();
    }
    key.sign(&proof_header(key), &claims)
}
