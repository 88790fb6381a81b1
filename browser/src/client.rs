//! The JS-facing client: key lifecycle, proofs, and `fetch` with DPoP.

use crate::error::BrowserError;
use crate::nonce_retry::{needs_body, retry_decision, NonceResponse, NonceStore, Retry};
use crate::proof::{jti_from_random, ProofClaims, ProofKey, UnsignedProof};
use crate::{keystore, webcrypto};
use js_sys::{Function, Object, Promise, Reflect};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, JsFuture};
use web_sys::{CryptoKey, Headers, Request, RequestInit, Response, Url};

const MAX_APP_ID_LEN: usize = 200;

struct Inner {
    private_key: CryptoKey,
    key: ProofKey,
    nonces: RefCell<NonceStore>,
}

/// A DPoP client bound to one non-extractable P-256 key kept in IndexedDB.
///
/// ```js
/// const client = await DpopClient.load_or_create("my-app");
/// const proof = await client.proof("GET", "https://api.example/x", accessToken);
/// const res = await client.fetch("https://api.example/x", "GET", accessToken);
/// ```
#[wasm_bindgen]
#[derive(Clone)]
pub struct DpopClient {
    inner: Rc<Inner>,
}

/// The current time in whole seconds since the Unix epoch.
fn now_secs() -> i64 {
    // f64 milliseconds to i64 seconds: `as` saturates, no panic.
    (js_sys::Date::now() / 1000.0).floor() as i64
}

/// Resolves `url` against the page's location (when there is one).
fn absolute_url(url: &str) -> Result<String, BrowserError> {
    let base = Reflect::get(&webcrypto::global(), &JsValue::from_str("location"))
        .ok()
        .filter(|l| !l.is_undefined())
        .and_then(|l| Reflect::get(&l, &JsValue::from_str("href")).ok())
        .and_then(|h| h.as_string());
    let parsed = match base {
        Some(base) => Url::new_with_base(url, &base),
        None => Url::new(url),
    };
    parsed
        .map(|u| u.href())
        .map_err(|_| BrowserError::InvalidUrl)
}

impl DpopClient {
    /// Loads the key pair stored for `app_id`, or generates and stores one.
    /// Two tabs racing on first use end up with the same stored key.
    pub async fn load_or_create_key(app_id: &str) -> Result<Self, BrowserError> {
        if app_id.is_empty() || app_id.len() > MAX_APP_ID_LEN {
            return Err(BrowserError::InvalidAppId);
        }
        let pair = match keystore::load(app_id).await? {
            Some(pair) => pair,
            None => {
                let fresh = webcrypto::generate_key_pair().await?;
                if keystore::add(app_id, &fresh).await? {
                    fresh.into()
                } else {
                    keystore::load(app_id)
                        .await?
                        .ok_or(BrowserError::Storage { op: "add" })?
                }
            }
        };
        let (private_key, public_key) = webcrypto::split_pair(&pair)?;
        let exported = webcrypto::export_public_jwk(&public_key).await?;
        let key = ProofKey::from_exported_jwk(exported.as_bytes())?;
        Ok(Self {
            inner: Rc::new(Inner {
                private_key,
                key,
                nonces: RefCell::new(NonceStore::default()),
            }),
        })
    }

    /// Removes the key pair stored for `app_id` (the next `load_or_create`
    /// makes a new key, so tokens bound to the old one stop working).
    pub async fn delete_key(app_id: &str) -> Result<(), BrowserError> {
        keystore::delete(app_id).await
    }

    /// A DPoP proof for `method` and `url`. Without an explicit `nonce`, the
    /// latest nonce remembered for the URL's origin is used.
    pub async fn create_proof(
        &self,
        method: &str,
        url: &str,
        access_token: Option<&str>,
        nonce: Option<&str>,
    ) -> Result<String, BrowserError> {
        let url = absolute_url(url)?;
        let remembered = self.inner.nonces.borrow().get(&url).map(str::to_owned);
        let nonce = nonce.map(str::to_owned).or(remembered);
        let jti = jti_from_random(&webcrypto::random_16()?);
        let unsigned = UnsignedProof::new(
            &self.inner.key,
            &ProofClaims {
                method,
                url: &url,
                iat: now_secs(),
                jti: &jti,
                nonce: nonce.as_deref(),
                access_token,
            },
        )?;
        let signature =
            webcrypto::sign_es256(&self.inner.private_key, unsigned.signing_input()).await?;
        Ok(unsigned.finish(&signature))
    }

    /// Sends a request with a fresh proof (and `Authorization: DPoP <token>`
    /// when `access_token` is given) through `transport`, a function
    /// `(Request) => Promise<Response>` such as `fetch`. Remembers every
    /// `DPoP-Nonce` it sees per origin; when the server asks for a nonce
    /// (401 `use_dpop_nonce` challenge, or 400 `use_dpop_nonce` body) it
    /// retries once with the new nonce.
    pub async fn fetch_via(
        &self,
        transport: &Function,
        url: &str,
        method: &str,
        access_token: Option<&str>,
        body: Option<&str>,
        headers: Option<&Object>,
    ) -> Result<Response, BrowserError> {
        let url = absolute_url(url)?;
        let mut nonce = self.inner.nonces.borrow().get(&url).map(str::to_owned);
        let mut retried = false;
        loop {
            let proof = self
                .create_proof(method, &url, access_token, nonce.as_deref())
                .await?;
            let request = build_request(&url, method, &proof, access_token, body, headers)?;
            let promise = transport
                .call1(&webcrypto::global(), &request)
                .ok()
                .and_then(|p| p.dyn_into::<Promise>().ok())
                .ok_or(BrowserError::Fetch)?;
            let response = JsFuture::from(promise)
                .await
                .ok()
                .and_then(|r| r.dyn_into::<Response>().ok())
                .ok_or(BrowserError::Fetch)?;
            let status = response.status();
            let new_nonce = response.headers().get("DPoP-Nonce").ok().flatten();
            if let Some(n) = &new_nonce {
                self.inner.nonces.borrow_mut().remember(&url, n);
            }
            if retried {
                return Ok(response);
            }
            let text = if needs_body(status, new_nonce.as_deref()) {
                read_text(&response).await
            } else {
                None
            };
            let www_authenticate = response.headers().get("WWW-Authenticate").ok().flatten();
            let decision = retry_decision(
                &NonceResponse {
                    status,
                    www_authenticate: www_authenticate.as_deref(),
                    dpop_nonce: new_nonce.as_deref(),
                    body: text.as_deref(),
                },
                nonce.as_deref(),
            );
            match decision {
                Retry::No => return Ok(response),
                Retry::WithNonce(n) => {
                    nonce = Some(n);
                    retried = true;
                }
            }
        }
    }
}

/// The body of a clone of `response` as text (the original stays unread).
async fn read_text(response: &Response) -> Option<String> {
    let promise = response.clone().ok()?.text().ok()?;
    JsFuture::from(promise).await.ok()?.as_string()
}

fn build_request(
    url: &str,
    method: &str,
    proof: &str,
    access_token: Option<&str>,
    body: Option<&str>,
    headers: Option<&Object>,
) -> Result<Request, BrowserError> {
    const E: BrowserError = BrowserError::Fetch;
    let h = match headers {
        Some(record) => Headers::new_with_record_from_str_to_str(record).map_err(|_| E)?,
        None => Headers::new().map_err(|_| E)?,
    };
    h.set("DPoP", proof).map_err(|_| E)?;
    if let Some(token) = access_token {
        h.set("Authorization", &format!("DPoP {token}"))
            .map_err(|_| E)?;
    }
    let init = RequestInit::new();
    init.set_method(method);
    init.set_headers_headers(&h);
    if let Some(body) = body {
        init.set_body(&JsValue::from_str(body));
    }
    Request::new_with_str_and_init(url, &init).map_err(|_| E)
}

fn promise<F>(f: F) -> Promise
where
    F: std::future::Future<Output = Result<JsValue, BrowserError>> + 'static,
{
    future_to_promise(async move { f.await.map_err(JsValue::from) })
}

#[wasm_bindgen]
impl DpopClient {
    /// Loads this origin's key pair for `app_id` from IndexedDB, or creates a
    /// non-extractable ECDSA P-256 pair and stores it there.
    #[wasm_bindgen(unchecked_return_type = "Promise<DpopClient>")]
    pub fn load_or_create(app_id: String) -> Promise {
        promise(async move { Self::load_or_create_key(&app_id).await.map(JsValue::from) })
    }

    /// Deletes the key pair stored for `app_id` in this origin.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn delete(app_id: String) -> Promise {
        promise(async move { Self::delete_key(&app_id).await.map(|()| JsValue::UNDEFINED) })
    }

    /// The key's RFC 7638 thumbprint (send it as `dpop_jkt`; tokens carry it as `cnf.jkt`).
    pub fn jkt(&self) -> String {
        self.inner.key.jkt().to_owned()
    }

    /// The public key as a JWK object with exactly `kty`, `crv`, `x`, `y`.
    pub fn public_jwk(&self) -> Result<JsValue, JsValue> {
        js_sys::JSON::parse(&self.inner.key.jwk().to_string())
    }

    /// The private `CryptoKey` handle (non-extractable: usable only to sign).
    pub fn private_key(&self) -> CryptoKey {
        self.inner.private_key.clone()
    }

    /// A DPoP proof (compact JWS) for `method` and `url` (query and fragment
    /// are dropped for `htu`). With `access_token`, the proof carries its
    /// `ath`. Without `nonce`, the last nonce seen from the URL's origin is used.
    #[wasm_bindgen(unchecked_return_type = "Promise<string>")]
    pub fn proof(
        &self,
        method: String,
        url: String,
        access_token: Option<String>,
        nonce: Option<String>,
    ) -> Promise {
        let this = self.clone();
        promise(async move {
            this.create_proof(&method, &url, access_token.as_deref(), nonce.as_deref())
                .await
                .map(JsValue::from)
        })
    }

    /// `fetch(url)` with a fresh DPoP proof, `Authorization: DPoP <token>`
    /// when `access_token` is given, an optional string `body` and extra
    /// `headers` (a plain object). Retries once on a `use_dpop_nonce` refusal
    /// and remembers the latest `DPoP-Nonce` per origin.
    #[wasm_bindgen(unchecked_return_type = "Promise<Response>")]
    pub fn fetch(
        &self,
        url: String,
        method: String,
        access_token: Option<String>,
        body: Option<String>,
        headers: Option<Object>,
    ) -> Promise {
        let this = self.clone();
        promise(async move {
            let fetch = Reflect::get(&webcrypto::global(), &JsValue::from_str("fetch"))
                .ok()
                .and_then(|f| f.dyn_into::<Function>().ok())
                .ok_or(BrowserError::Unsupported { what: "fetch" })?;
            this.fetch_via(
                &fetch,
                &url,
                &method,
                access_token.as_deref(),
                body.as_deref(),
                headers.as_ref(),
            )
            .await
            .map(JsValue::from)
        })
    }

    /// The nonce remembered for `url`'s origin, if any.
    pub fn nonce_for(&self, url: String) -> Option<String> {
        let url = absolute_url(&url).ok()?;
        self.inner.nonces.borrow().get(&url).map(str::to_owned)
    }

    /// Remembers a `DPoP-Nonce` an app received through its own requests.
    pub fn remember_nonce(&self, url: String, nonce: String) {
        if let Ok(url) = absolute_url(&url) {
            self.inner.nonces.borrow_mut().remember(&url, &nonce);
        }
    }
}
