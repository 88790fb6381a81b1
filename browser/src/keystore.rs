//! The key pair's home: one IndexedDB object store, one entry per app id.
//!
//! IndexedDB is per browser origin, so `(origin, app id)` names a key. The
//! stored value is the `CryptoKeyPair` itself (structured clone): the
//! non-extractable private key never exists outside the browser's key store.

use crate::error::BrowserError;
use crate::webcrypto::global;
use js_sys::{Object, Promise, Reflect};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbDatabase, IdbFactory, IdbRequest, IdbTransaction, IdbTransactionMode};

const DB_NAME: &str = "gatehouse-dpop";
const DB_VERSION: u32 = 1;
const STORE: &str = "keypairs";

/// Waits for `req` to succeed and returns its result.
async fn settle(req: &IdbRequest, op: &'static str) -> Result<JsValue, BrowserError> {
    let promise = Promise::new(&mut |resolve, reject| {
        req.set_onsuccess(Some(&resolve));
        req.set_onerror(Some(&reject));
    });
    let outcome = JsFuture::from(promise).await;
    req.set_onsuccess(None);
    req.set_onerror(None);
    outcome.map_err(|_| BrowserError::Storage { op })?;
    req.result().map_err(|_| BrowserError::Storage { op })
}

/// Resolves when a read-write transaction commits, rejects if it aborts.
/// Call it before awaiting any request of `tx`, so no event is missed.
fn committed(tx: &IdbTransaction) -> JsFuture {
    JsFuture::from(Promise::new(&mut |resolve, reject| {
        tx.set_oncomplete(Some(&resolve));
        tx.set_onerror(Some(&reject));
        tx.set_onabort(Some(&reject));
    }))
}

async fn open() -> Result<IdbDatabase, BrowserError> {
    const UNSUPPORTED: BrowserError = BrowserError::Unsupported { what: "indexedDB" };
    let factory = Reflect::get(&global(), &JsValue::from_str("indexedDB"))
        .ok()
        .and_then(|f| f.dyn_into::<IdbFactory>().ok())
        .ok_or(UNSUPPORTED)?;
    let req = factory
        .open_with_u32(DB_NAME, DB_VERSION)
        .map_err(|_| BrowserError::Storage { op: "open" })?;
    let upgrade_req = req.clone();
    // Runs before `success` on first use: create the object store.
    let on_upgrade = Closure::<dyn FnMut(JsValue)>::new(move |_event: JsValue| {
        if let Some(db) = upgrade_req
            .result()
            .ok()
            .and_then(|r| r.dyn_into::<IdbDatabase>().ok())
        {
            if !db.object_store_names().contains(STORE) {
                // A failure here aborts the upgrade, which fails `open` below.
                let _ = db.create_object_store(STORE);
            }
        }
    });
    req.set_onupgradeneeded(Some(on_upgrade.as_ref().unchecked_ref()));
    let result = settle(&req, "open").await;
    req.set_onupgradeneeded(None);
    drop(on_upgrade);
    result?
        .dyn_into::<IdbDatabase>()
        .map_err(|_| BrowserError::Storage { op: "open" })
}

/// The stored key pair for `name`, if any.
pub(crate) async fn load(name: &str) -> Result<Option<JsValue>, BrowserError> {
    const OP: BrowserError = BrowserError::Storage { op: "get" };
    let db = open().await?;
    let tx = db
        .transaction_with_str_and_mode(STORE, IdbTransactionMode::Readonly)
        .map_err(|_| OP)?;
    let store = tx.object_store(STORE).map_err(|_| OP)?;
    let req = store.get(&JsValue::from_str(name)).map_err(|_| OP)?;
    let value = settle(&req, "get").await;
    db.close();
    let value = value?;
    Ok(if value.is_undefined() || value.is_null() {
        None
    } else {
        Some(value)
    })
}

/// Stores `pair` under `name` unless an entry exists (another tab may have
/// won the race); `false` if one did.
pub(crate) async fn add(name: &str, pair: &Object) -> Result<bool, BrowserError> {
    const OP: BrowserError = BrowserError::Storage { op: "add" };
    let db = open().await?;
    let tx = db
        .transaction_with_str_and_mode(STORE, IdbTransactionMode::Readwrite)
        .map_err(|_| OP)?;
    let store = tx.object_store(STORE).map_err(|_| OP)?;
    let done = committed(&tx);
    let req = store
        .add_with_key(pair, &JsValue::from_str(name))
        .map_err(|_| OP)?;
    let added = settle(&req, "add").await.is_ok();
    let done = done.await;
    db.close();
    if added {
        done.map_err(|_| OP)?;
    }
    Ok(added)
}

/// Deletes the key pair stored under `name` (a no-op if there is none).
pub(crate) async fn delete(name: &str) -> Result<(), BrowserError> {
    const OP: BrowserError = BrowserError::Storage { op: "delete" };
    let db = open().await?;
    let tx = db
        .transaction_with_str_and_mode(STORE, IdbTransactionMode::Readwrite)
        .map_err(|_| OP)?;
    let store = tx.object_store(STORE).map_err(|_| OP)?;
    let done = committed(&tx);
    let req = store.delete(&JsValue::from_str(name)).map_err(|_| OP)?;
    let deleted = settle(&req, "delete").await;
    let done = done.await;
    db.close();
    deleted?;
    done.map(|_| ()).map_err(|_| OP)
}
