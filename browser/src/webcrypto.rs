//! The WebCrypto calls: key generation, signing, public-key export, randomness.

use crate::error::BrowserError;
use js_sys::{Array, Object, Reflect, JSON};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Crypto, CryptoKey, SubtleCrypto};

/// `globalThis` (a window or a worker).
pub(crate) fn global() -> Object {
    js_sys::global()
}

fn crypto() -> Result<Crypto, BrowserError> {
    Reflect::get(&global(), &JsValue::from_str("crypto"))
        .ok()
        .and_then(|c| c.dyn_into::<Crypto>().ok())
        .ok_or(BrowserError::Unsupported { what: "crypto" })
}

fn subtle() -> Result<SubtleCrypto, BrowserError> {
    Ok(crypto()?.subtle())
}

fn object(members: &[(&str, &str)]) -> Result<Object, BrowserError> {
    let o = Object::new();
    for (k, v) in members {
        Reflect::set(&o, &JsValue::from_str(k), &JsValue::from_str(v))
            .map_err(|_| BrowserError::WebCrypto { op: "algorithm" })?;
    }
    Ok(o)
}

/// 16 bytes from `crypto.getRandomValues`.
pub(crate) fn random_16() -> Result<[u8; 16], BrowserError> {
    let mut buf = [0u8; 16];
    crypto()?
        .get_random_values_with_u8_array(&mut buf)
        .map_err(|_| BrowserError::WebCrypto {
            op: "getRandomValues",
        })?;
    Ok(buf)
}

/// A new ECDSA P-256 key pair whose private key is **not extractable**;
/// returns the `CryptoKeyPair` object (structured-cloneable into IndexedDB).
pub(crate) async fn generate_key_pair() -> Result<Object, BrowserError> {
    const OP: BrowserError = BrowserError::WebCrypto { op: "generateKey" };
    let alg = object(&[("name", "ECDSA"), ("namedCurve", "P-256")])?;
    let usages = Array::of2(&JsValue::from_str("sign"), &JsValue::from_str("verify"));
    let promise = subtle()?
        .generate_key_with_object(&alg, false, &usages)
        .map_err(|_| OP)?;
    let pair = JsFuture::from(promise).await.map_err(|_| OP)?;
    pair.dyn_into::<Object>().map_err(|_| OP)
}

/// The `privateKey` and `publicKey` of a `CryptoKeyPair`-shaped object.
pub(crate) fn split_pair(pair: &JsValue) -> Result<(CryptoKey, CryptoKey), BrowserError> {
    let get = |name: &str| {
        Reflect::get(pair, &JsValue::from_str(name))
            .ok()
            .and_then(|k| k.dyn_into::<CryptoKey>().ok())
            .ok_or(BrowserError::CorruptKeyPair)
    };
    Ok((get("privateKey")?, get("publicKey")?))
}

/// `exportKey("jwk", publicKey)` as JSON text.
pub(crate) async fn export_public_jwk(public_key: &CryptoKey) -> Result<String, BrowserError> {
    const OP: BrowserError = BrowserError::WebCrypto { op: "exportKey" };
    let promise = subtle()?.export_key("jwk", public_key).map_err(|_| OP)?;
    let jwk = JsFuture::from(promise).await.map_err(|_| OP)?;
    JSON::stringify(&jwk)
        .ok()
        .and_then(|s| s.as_string())
        .ok_or(OP)
}

/// ECDSA P-256 with SHA-256; WebCrypto returns IEEE P1363 `r ‖ s`, as JWS wants.
pub(crate) async fn sign_es256(
    private_key: &CryptoKey,
    data: &[u8],
) -> Result<Vec<u8>, BrowserError> {
    const OP: BrowserError = BrowserError::WebCrypto { op: "sign" };
    let alg = object(&[("name", "ECDSA"), ("hash", "SHA-256")])?;
    let promise = subtle()?
        .sign_with_object_and_u8_array(&alg, private_key, data)
        .map_err(|_| OP)?;
    let sig = JsFuture::from(promise).await.map_err(|_| OP)?;
    Ok(js_sys::Uint8Array::new(&sig).to_vec())
}
