//! The WebCrypto provider against the Wycheproof vectors (`../shared/testdata`)
//! in headless Chromium, whose `crypto.subtle` is the API workerd exposes:
//! `WASM_BINDGEN_TEST_TIMEOUT=600 CHROMEDRIVER=/usr/bin/chromedriver cargo test -p gatehouse-edge --target wasm32-unknown-unknown --features browser-test --test webcrypto_browser`
//! (run from `edge/` so `webdriver.json` is found). WebCrypto verification is
//! async, so this is an async runner over common's case list and report.
#![cfg(all(target_arch = "wasm32", feature = "browser-test"))]
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use gatehouse_common::testkit::wycheproof;
use gatehouse_edge::webcrypto;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

async fn run_file(file: &str) {
    let (cases, unreadable) = wycheproof::cases(&wycheproof::VectorFiles::embedded());
    assert!(unreadable.is_empty(), "{unreadable:?}");
    let mut report = wycheproof::Report::default();
    for case in cases.iter().filter(|c| c.file == file) {
        let accepted = match &case.key {
            Some(k) => webcrypto::verify(k, case.alg, &case.msg, &case.sig).await,
            None => false,
        };
        report.record(case, accepted);
    }
    assert!(report.total > 0, "{file}: no cases");
    assert!(
        report.failures.is_empty(),
        "{file}: {} of {} wrong: {:?}",
        report.failures.len(),
        report.total,
        report.failures.iter().take(10).collect::<Vec<_>>()
    );
}

#[wasm_bindgen_test]
async fn wycheproof_ecdsa_p256() {
    run_file("ecdsa_secp256r1_sha256_p1363_test.json").await;
}

#[wasm_bindgen_test]
async fn wycheproof_ecdsa_p384() {
    run_file("ecdsa_secp384r1_sha384_p1363_test.json").await;
}

#[wasm_bindgen_test]
async fn wycheproof_ed25519() {
    run_file("ed25519_test.json").await;
}

#[wasm_bindgen_test]
async fn wycheproof_rsa_pkcs1() {
    run_file("rsa_signature_2048_sha256_test.json").await;
}

#[wasm_bindgen_test]
async fn wycheproof_rsa_pss() {
    run_file("rsa_pss_2048_sha256_mgf1_32_test.json").await;
}
