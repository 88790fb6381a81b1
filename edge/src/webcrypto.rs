//! Signature verification through the runtime's WebCrypto (`crypto.subtle`).
//!
//! In workerd, WebCrypto is native code and verifies ES256 in ~0.1 ms where
//! pure-Rust curve arithmetic inside wasm takes ~2 ms, so Rust keeps to
//! parsing and checks and every algorithm goes through `crypto.subtle`:
//! ES256/ES384 as `ECDSA`, EdDSA as `Ed25519`, RS256 as `RSASSA-PKCS1-v1_5`,
//! PS256 as `RSA-PSS` with a 32-byte salt. Imported `CryptoKey`s are cached
//! per key thumbprint and algorithm, so each key crosses the wasm↔JS boundary
//! once; a verification then passes only the signing input and signature.

use gatehouse_common::alg::Algorithm;
use gatehouse_common::jwk::PublicJwk;
use js_sys::{Array, Object, Reflect};
use std::cell::RefCell;
use std::collections::HashMap;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CryptoKey, SubtleCrypto};

/// Most imported keys kept per isolate.
const MAX_CACHED_KEYS: usize = 256;

thread_local! {
    static KEYS: RefCell<HashMap<(String, Algorithm), CryptoKey>> = RefCell::new(HashMap::new());
    /// `crypto.subtle` and each algorithm's verify parameters, looked up and
    /// built once per isolate (plain JS values, not tied to a request).
    static SUBTLE: RefCell<Option<SubtleCrypto>> = const { RefCell::new(None) };
    static VERIFY_PARAMS: RefCell<HashMap<Algorithm, Object>> = RefCell::new(HashMap::new());
}

fn subtle() -> Result<SubtleCrypto, JsValue> {
    if let Some(s) = SUBTLE.with(|c| c.borrow().clone()) {
        return Ok(s);
    }
    let crypto = Reflect::get(&js_sys::global(), &JsValue::from_str("crypto"))?;
    let subtle = Reflect::get(&crypto, &JsValue::from_str("subtle"))?.dyn_into::<SubtleCrypto>()?;
    SUBTLE.with(|c| *c.borrow_mut() = Some(subtle.clone()));
    Ok(subtle)
}

fn cached_verify_params(alg: Algorithm) -> Result<Object, JsValue> {
    if let Some(p) = VERIFY_PARAMS.with(|c| c.borrow().get(&alg).cloned()) {
        return Ok(p);
    }
    let p = verify_params(alg)?;
    VERIFY_PARAMS.with(|c| c.borrow_mut().insert(alg, p.clone()));
    Ok(p)
}

fn object(pairs: &[(&str, JsValue)]) -> Result<Object, JsValue> {
    let o = Object::new();
    for (k, v) in pairs {
        Reflect::set(&o, &JsValue::from_str(k), v)?;
    }
    Ok(o)
}

fn import_params(alg: Algorithm) -> Result<Object, JsValue> {
    let s = JsValue::from_str;
    match alg {
        Algorithm::Es256 => object(&[("name", s("ECDSA")), ("namedCurve", s("P-256"))]),
        Algorithm::Es384 => object(&[("name", s("ECDSA")), ("namedCurve", s("P-384"))]),
        Algorithm::EdDsa => object(&[("name", s("Ed25519"))]),
        Algorithm::Rs256 => object(&[("name", s("RSASSA-PKCS1-v1_5")), ("hash", s("SHA-256"))]),
        Algorithm::Ps256 => object(&[("name", s("RSA-PSS")), ("hash", s("SHA-256"))]),
        _ => Err(JsValue::from_str("unsupported algorithm")),
    }
}

fn verify_params(alg: Algorithm) -> Result<Object, JsValue> {
    let s = JsValue::from_str;
    match alg {
        Algorithm::Es256 => object(&[("name", s("ECDSA")), ("hash", s("SHA-256"))]),
        Algorithm::Es384 => object(&[("name", s("ECDSA")), ("hash", s("SHA-384"))]),
        Algorithm::EdDsa => object(&[("name", s("Ed25519"))]),
        Algorithm::Rs256 => object(&[("name", s("RSASSA-PKCS1-v1_5"))]),
        Algorithm::Ps256 => object(&[
            ("name", s("RSA-PSS")),
            ("saltLength", JsValue::from_f64(32.0)),
        ]),
        _ => Err(JsValue::from_str("unsupported algorithm")),
    }
}

/// The key as a JWK object for `importKey`, with `alg` set to the algorithm
/// the key decided (WebCrypto checks it against the import parameters).
fn jwk_object(key: &PublicJwk, alg: Algorithm) -> Result<Object, JsValue> {
    let mut json = key.to_json();
    if let Some(m) = json.as_object_mut() {
        m.remove("kid");
        m.remove("use");
        m.insert("alg".into(), alg.name().into());
        m.insert("ext".into(), true.into());
    }
    js_sys::JSON::parse(&json.to_string())?.dyn_into::<Object>()
}

async fn imported(key: &PublicJwk, alg: Algorithm) -> Result<CryptoKey, JsValue> {
    let cache_key = (key.thumbprint().to_owned(), alg);
    if let Some(k) = KEYS.with(|c| c.borrow().get(&cache_key).cloned()) {
        return Ok(k);
    }
    let usages = Array::of1(&JsValue::from_str("verify"));
    let promise = subtle()?.import_key_with_object(
        "jwk",
        &jwk_object(key, alg)?,
        &import_params(alg)?,
        false,
        &usages,
    )?;
    let crypto_key: CryptoKey = JsFuture::from(promise).await?.dyn_into()?;
    KEYS.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= MAX_CACHED_KEYS {
            c.clear();
        }
        c.insert(cache_key, crypto_key.clone());
    });
    Ok(crypto_key)
}

/// Verifies `signature` over `signing_input` with `key` under `alg` (the key's
/// algorithm). Any failure — import, malformed signature — is `false`.
pub async fn verify(
    key: &PublicJwk,
    alg: Algorithm,
    signing_input: &[u8],
    signature: &[u8],
) -> bool {
    async fn run(
        key: &PublicJwk,
        alg: Algorithm,
        data: &[u8],
        sig: &[u8],
    ) -> Result<bool, JsValue> {
        let crypto_key = imported(key, alg).await?;
        let promise = subtle()?.verify_with_object_and_u8_array_and_u8_array(
            &cached_verify_params(alg)?,
            &crypto_key,
            sig,
            data,
        )?;
        Ok(JsFuture::from(promise).await?.as_bool().unwrap_or(false))
    }
    if !key.algorithms().contains(&alg) {
        return false;
    }
    run(key, alg, signing_input, signature)
        .await
        .unwrap_or(false)
}

thread_local! {
    /// The identity-assertion signing key, imported once per isolate (the
    /// configuration, and so the key, is fixed for the isolate's life).
    static SIGNING_KEY: RefCell<Option<CryptoKey>> = const { RefCell::new(None) };
}

/// Signs `data` with the private JWK `private_jwk` (JSON) under `alg`
/// (ES256 or EdDSA); the JWS signature bytes (P1363 for ECDSA).
pub async fn sign(private_jwk: &str, alg: Algorithm, data: &[u8]) -> Result<Vec<u8>, JsValue> {
    let key = match SIGNING_KEY.with(|c| c.borrow().clone()) {
        Some(k) => k,
        None => {
            let jwk = js_sys::JSON::parse(private_jwk)?.dyn_into::<Object>()?;
            let usages = Array::of1(&JsValue::from_str("sign"));
            let promise = subtle()?.import_key_with_object(
                "jwk",
                &jwk,
                &import_params(alg)?,
                false,
                &usages,
            )?;
            let k: CryptoKey = JsFuture::from(promise).await?.dyn_into()?;
            SIGNING_KEY.with(|c| *c.borrow_mut() = Some(k.clone()));
            k
        }
    };
    let promise =
        subtle()?.sign_with_object_and_u8_array(&cached_verify_params(alg)?, &key, data)?;
    let sig = JsFuture::from(promise).await?;
    Ok(js_sys::Uint8Array::new(&sig).to_vec())
}

thread_local! {
    /// `crypto`, looked up once per isolate (a request asks it for the
    /// trace's random bytes: three calls into JS saved each time).
    static CRYPTO: RefCell<Option<web_sys::Crypto>> = const { RefCell::new(None) };
}

/// `N` bytes from the runtime's CSPRNG (`crypto.getRandomValues`).
pub fn random_bytes<const N: usize>() -> Result<[u8; N], JsValue> {
    let crypto = match CRYPTO.with(|c| c.borrow().clone()) {
        Some(c) => c,
        None => {
            let c = Reflect::get(&js_sys::global(), &JsValue::from_str("crypto"))?
                .dyn_into::<web_sys::Crypto>()?;
            CRYPTO.with(|slot| *slot.borrow_mut() = Some(c.clone()));
            c
        }
    };
    let mut out = [0u8; N];
    crypto.get_random_values_with_u8_array(&mut out)?;
    Ok(out)
}
