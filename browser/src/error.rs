//! The one error type of the browser client.
//!
//! Variants name the failed step only: no token, proof, nonce value or key
//! material ever appears in an error (they reach page scripts and consoles).

use std::fmt;

/// Why a client operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BrowserError {
    /// The URL is not an absolute `http(s)` URL (after resolving against the page).
    InvalidUrl,
    /// The HTTP method is not an RFC 9110 token.
    InvalidMethod,
    /// A nonce is not RFC 9449 `1*NQCHAR`.
    InvalidNonce,
    /// The app id is empty or too long.
    InvalidAppId,
    /// The exported public key is not a P-256 EC JWK.
    InvalidPublicKey,
    /// This environment has no `crypto.subtle`, `indexedDB` or `fetch`.
    Unsupported {
        /// The missing global.
        what: &'static str,
    },
    /// A WebCrypto operation failed.
    WebCrypto {
        /// The operation (`generateKey`, `sign`, …).
        op: &'static str,
    },
    /// An IndexedDB operation failed.
    Storage {
        /// The operation (`open`, `get`, `add`, …).
        op: &'static str,
    },
    /// The stored key pair is not a usable pair of `CryptoKey`s.
    CorruptKeyPair,
    /// Building the request failed or the transport did not return a `Response`.
    Fetch,
}

impl fmt::Display for BrowserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUrl => f.write_str("not an absolute http(s) URL"),
            Self::InvalidMethod => f.write_str("invalid HTTP method"),
            Self::InvalidNonce => f.write_str("invalid DPoP nonce"),
            Self::InvalidAppId => f.write_str("app id must be 1 to 200 characters"),
            Self::InvalidPublicKey => f.write_str("public key is not a P-256 EC JWK"),
            Self::Unsupported { what } => write!(f, "{what} is not available here"),
            Self::WebCrypto { op } => write!(f, "WebCrypto {op} failed"),
            Self::Storage { op } => write!(f, "IndexedDB {op} failed"),
            Self::CorruptKeyPair => f.write_str("stored DPoP key pair is unusable"),
            Self::Fetch => f.write_str("fetch failed"),
        }
    }
}

impl std::error::Error for BrowserError {}

#[cfg(target_arch = "wasm32")]
impl From<BrowserError> for wasm_bindgen::JsValue {
    fn from(e: BrowserError) -> Self {
        js_sys::Error::new(&e.to_string()).into()
    }
}
