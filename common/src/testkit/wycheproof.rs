//! Project Wycheproof signature vectors (<https://github.com/C2SP/wycheproof>,
//! `testvectors_v1/`, Apache-2.0; unmodified copies in `common/testdata/wycheproof/`,
//! provenance in `common/testdata/README.md`).
//!
//! Files covered: `ecdsa_secp256r1_sha256_p1363_test.json` (ES256),
//! `ecdsa_secp384r1_sha384_p1363_test.json` (ES384), `ed25519_test.json`
//! (EdDSA), `rsa_signature_2048_sha256_test.json` (RS256) and
//! `rsa_pss_2048_sha256_mgf1_32_test.json` (PS256).
//!
//! Each test group's key is read through [`PublicJwk`] — from the group's
//! JWK (`publicKeyJwk` / `keyJwk`) when it has one, otherwise from its raw
//! key fields converted to a JWK — so the vectors exercise our key parsing too.
//!
//! Results: `valid` must be accepted, `invalid` must be refused. `acceptable`
//! marks encodings a verifier may accept or refuse (in these files: a
//! PKCS #1 v1.5 `DigestInfo` without the `NULL` parameter, RFC 8017 §9.2
//! note 2). Either outcome passes; what the provider did is counted in
//! [`Report::acceptable_accepted`] / [`Report::acceptable_refused`] so a
//! provider's choice is visible. A group whose key our JWK rules refuse counts
//! its `valid` cases as failures and its `invalid` cases as passes.

use super::hex;
use crate::alg::Algorithm;
use crate::b64;
use crate::jwk::PublicJwk;
use crate::provider::SignatureVerifier;
use serde_json::{Map, Value};

/// The five vector files, as text.
#[derive(Clone, Copy, Debug)]
pub struct VectorFiles<'a> {
    /// `ecdsa_secp256r1_sha256_p1363_test.json`.
    pub ecdsa_p256: &'a str,
    /// `ecdsa_secp384r1_sha384_p1363_test.json`.
    pub ecdsa_p384: &'a str,
    /// `ed25519_test.json`.
    pub ed25519: &'a str,
    /// `rsa_signature_2048_sha256_test.json`.
    pub rsa_pkcs1: &'a str,
    /// `rsa_pss_2048_sha256_mgf1_32_test.json`.
    pub rsa_pss: &'a str,
}

impl VectorFiles<'static> {
    /// The files from `common/testdata/wycheproof`, embedded at compile time.
    #[must_use]
    pub fn embedded() -> Self {
        Self {
            ecdsa_p256: include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/testdata/wycheproof/ecdsa_secp256r1_sha256_p1363_test.json"
            )),
            ecdsa_p384: include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/testdata/wycheproof/ecdsa_secp384r1_sha384_p1363_test.json"
            )),
            ed25519: include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/testdata/wycheproof/ed25519_test.json"
            )),
            rsa_pkcs1: include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/testdata/wycheproof/rsa_signature_2048_sha256_test.json"
            )),
            rsa_pss: include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/testdata/wycheproof/rsa_pss_2048_sha256_mgf1_32_test.json"
            )),
        }
    }
}

/// What a vector expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    /// Must verify.
    Valid,
    /// Must not verify.
    Invalid,
    /// Either outcome is allowed.
    Acceptable,
}

/// One vector, ready for any provider (including asynchronous ones).
#[derive(Clone, Debug)]
pub struct Case {
    /// Which file (`ed25519_test.json`, …).
    pub file: &'static str,
    /// Wycheproof's test case id.
    pub tc_id: u64,
    /// Wycheproof's comment.
    pub comment: String,
    /// The algorithm the file is about.
    pub alg: Algorithm,
    /// The key, or `None` when our JWK rules refuse it.
    pub key: Option<PublicJwk>,
    /// The message.
    pub msg: Vec<u8>,
    /// The signature, raw.
    pub sig: Vec<u8>,
    /// The expected outcome.
    pub expected: Expected,
}

/// A vector the provider got wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Which file.
    pub file: &'static str,
    /// Test case id.
    pub tc_id: u64,
    /// Wycheproof's comment.
    pub comment: String,
    /// Whether the provider accepted the signature.
    pub accepted: bool,
}

/// The outcome of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Cases run.
    pub total: usize,
    /// `valid` cases accepted.
    pub valid_accepted: usize,
    /// `invalid` cases refused.
    pub invalid_refused: usize,
    /// `acceptable` cases the provider accepted.
    pub acceptable_accepted: usize,
    /// `acceptable` cases the provider refused.
    pub acceptable_refused: usize,
    /// Cases whose result was wrong.
    pub failures: Vec<Failure>,
    /// Files that could not be read as Wycheproof JSON.
    pub unreadable_files: Vec<&'static str>,
}

impl Report {
    /// Records what a provider did with `case`.
    pub fn record(&mut self, case: &Case, accepted: bool) {
        self.total += 1;
        match (case.expected, accepted) {
            (Expected::Valid, true) => self.valid_accepted += 1,
            (Expected::Invalid, false) => self.invalid_refused += 1,
            (Expected::Acceptable, true) => self.acceptable_accepted += 1,
            (Expected::Acceptable, false) => self.acceptable_refused += 1,
            _ => self.failures.push(Failure {
                file: case.file,
                tc_id: case.tc_id,
                comment: case.comment.clone(),
                accepted,
            }),
        }
    }

    /// No failures, no unreadable files, and at least one case per file.
    #[must_use]
    pub fn is_success(&self) -> bool {
        self.failures.is_empty() && self.unreadable_files.is_empty() && self.total > 0
    }
}

/// Reads every case of every file. Files that cannot be read are listed in
/// the second element.
#[must_use]
pub fn cases(files: &VectorFiles<'_>) -> (Vec<Case>, Vec<&'static str>) {
    let mut out = Vec::new();
    let mut unreadable = Vec::new();
    for (name, text) in [
        ("ecdsa_secp256r1_sha256_p1363_test.json", files.ecdsa_p256),
        ("ecdsa_secp384r1_sha384_p1363_test.json", files.ecdsa_p384),
        ("ed25519_test.json", files.ed25519),
        ("rsa_signature_2048_sha256_test.json", files.rsa_pkcs1),
        ("rsa_pss_2048_sha256_mgf1_32_test.json", files.rsa_pss),
    ] {
        match file_cases(name, text) {
            Some(c) if !c.is_empty() => out.extend(c),
            _ => unreadable.push(name),
        }
    }
    (out, unreadable)
}

/// Runs every case through `verifier`.
#[must_use]
pub fn run_all(verifier: &impl SignatureVerifier, files: &VectorFiles<'_>) -> Report {
    let (cases, unreadable_files) = cases(files);
    let mut report = Report {
        unreadable_files,
        ..Report::default()
    };
    for case in &cases {
        let accepted = case
            .key
            .as_ref()
            .is_some_and(|k| verifier.verify(k, case.alg, &case.msg, &case.sig));
        report.record(case, accepted);
    }
    report
}

fn file_cases(name: &'static str, text: &str) -> Option<Vec<Case>> {
    let doc: Value = serde_json::from_str(text).ok()?;
    let mut out = Vec::new();
    for group in doc.get("testGroups")?.as_array()? {
        let group = group.as_object()?;
        let alg = group_algorithm(group)?;
        let key = group_key(group, alg);
        for t in group.get("tests")?.as_array()? {
            let expected = match t.get("result")?.as_str()? {
                "valid" => Expected::Valid,
                "invalid" => Expected::Invalid,
                "acceptable" => Expected::Acceptable,
                _ => return None,
            };
            out.push(Case {
                file: name,
                tc_id: t.get("tcId")?.as_u64()?,
                comment: t.get("comment")?.as_str()?.to_owned(),
                alg,
                key: key.clone(),
                msg: hex(t.get("msg")?.as_str()?)?,
                sig: hex(t.get("sig")?.as_str()?)?,
                expected,
            });
        }
    }
    Some(out)
}

fn group_algorithm(g: &Map<String, Value>) -> Option<Algorithm> {
    let sha = g.get("sha").and_then(Value::as_str);
    Some(match (g.get("type")?.as_str()?, sha) {
        ("EcdsaP1363Verify", Some("SHA-256")) => Algorithm::Es256,
        ("EcdsaP1363Verify", Some("SHA-384")) => Algorithm::Es384,
        ("EddsaVerify", _) => Algorithm::EdDsa,
        ("RsassaPkcs1Verify", Some("SHA-256")) => Algorithm::Rs256,
        ("RsassaPssVerify", Some("SHA-256")) => {
            let salt = g.get("sLen")?.as_u64()?;
            let mgf = g.get("mgfSha")?.as_str()?;
            if salt != 32 || mgf != "SHA-256" {
                return None;
            }
            Algorithm::Ps256
        }
        _ => return None,
    })
}

/// The group's key as a [`PublicJwk`], from its JWK or from its raw fields.
fn group_key(g: &Map<String, Value>, alg: Algorithm) -> Option<PublicJwk> {
    if let Some(Value::Object(jwk)) = g.get("publicKeyJwk").or_else(|| g.get("keyJwk")) {
        return PublicJwk::from_map(jwk).ok();
    }
    let pk = g.get("publicKey")?;
    let mut m = Map::new();
    match alg {
        Algorithm::Es256 | Algorithm::Es384 => {
            let (crv, len) = if alg == Algorithm::Es256 {
                ("P-256", 32)
            } else {
                ("P-384", 48)
            };
            m.insert("kty".into(), "EC".into());
            m.insert("crv".into(), crv.into());
            m.insert("x".into(), fixed(pk.get("wx")?.as_str()?, len)?.into());
            m.insert("y".into(), fixed(pk.get("wy")?.as_str()?, len)?.into());
        }
        Algorithm::EdDsa => {
            m.insert("kty".into(), "OKP".into());
            m.insert("crv".into(), "Ed25519".into());
            m.insert(
                "x".into(),
                b64::encode(&hex(pk.get("pk")?.as_str()?)?).into(),
            );
        }
        Algorithm::Rs256 | Algorithm::Ps256 => {
            m.insert("kty".into(), "RSA".into());
            m.insert("n".into(), unsigned(pk.get("modulus")?.as_str()?)?.into());
            m.insert(
                "e".into(),
                unsigned(pk.get("publicExponent")?.as_str()?)?.into(),
            );
        }
    }
    PublicJwk::from_map(&m).ok()
}

/// A big-endian hex integer as base64url of exactly `len` bytes.
fn fixed(h: &str, len: usize) -> Option<String> {
    let bytes = hex(h)?;
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    let digits = bytes.get(first..)?;
    if digits.len() > len {
        return None;
    }
    let mut out = vec![0u8; len - digits.len()];
    out.extend_from_slice(digits);
    Some(b64::encode(&out))
}

/// A big-endian hex integer as base64url without leading zero bytes.
fn unsigned(h: &str) -> Option<String> {
    let bytes = hex(h)?;
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    Some(b64::encode(bytes.get(first..)?))
}
