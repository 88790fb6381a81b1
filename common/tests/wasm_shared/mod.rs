//! Bodies shared by `wasm_node.rs` and `wasm_browser.rs`: the testkit suites,
//! run in slices with a macrotask yield in between so a headless browser's
//! WebDriver polling is never starved by one long synchronous loop.

use gatehouse_common::provider::RustCrypto;
use gatehouse_common::testkit::{attacks, wycheproof};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(f: &js_sys::Function, ms: i32);
}

/// Lets the event loop run (a `setTimeout(0)` round trip).
pub async fn yield_now() {
    let promise = js_sys::Promise::new(&mut |resolve, _reject| set_timeout(&resolve, 0));
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// Every Wycheproof vector of one file (by file name) through RustCrypto.
pub async fn wycheproof_file(file: &str) {
    let (cases, unreadable) = wycheproof::cases(&wycheproof::VectorFiles::embedded());
    assert!(unreadable.is_empty(), "{unreadable:?}");
    let mut report = wycheproof::Report::default();
    for (i, case) in cases.iter().filter(|c| c.file == file).enumerate() {
        let accepted = case.key.as_ref().is_some_and(|k| {
            gatehouse_common::provider::SignatureVerifier::verify(
                &RustCrypto,
                k,
                case.alg,
                &case.msg,
                &case.sig,
            )
        });
        report.record(case, accepted);
        if i % 16 == 15 {
            yield_now().await;
        }
    }
    assert!(report.total > 0, "no cases for {file}");
    assert!(report.failures.is_empty(), "{file}: {:?}", report.failures);
}

/// The whole attack table through RustCrypto.
pub async fn attack_table() {
    let all = attacks::all();
    assert!(all.len() >= 60);
    let mut failures = Vec::new();
    for (i, a) in all.iter().enumerate() {
        if let Err(e) = (a.check)(&RustCrypto) {
            failures.push((a.name, e));
        }
        if i % 8 == 7 {
            yield_now().await;
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}
