//! The WebCrypto provider against the Wycheproof vectors (`common/testdata/wycheproof`)
//! in headless Chromium, whose `crypto.subtle` is the API workerd exposes:
//! `cd edge && CHROMEDRIVER=/usr/bin/chromedriver WASM_BINDGEN_TEST_TIMEOUT=300 cargo test -p gatehouse-edge --target wasm32-unknown-unknown --features browser-test --test webcrypto_browser`
//! (from `edge/` so `webdriver.json` is found). The `browser-test` feature
//! leaves the worker's `#[event]` exports and Durable Object classes out of
//! the library, so the test module loads in a plain browser. WebCrypto
//! verification is async, so this is an async runner over common's case
//! list and report.
//!
//! Every algorithm takes a WebCrypto path (none falls back to Rust crypto):
//! ES256 → `ECDSA` P-256/SHA-256, ES384 → `ECDSA` P-384/SHA-384 (both with
//! IEEE P1363 `r‖s` signatures, as JWS uses), EdDSA → `Ed25519`, RS256 →
//! `RSASSA-PKCS1-v1_5`/SHA-256, PS256 → `RSA-PSS`/SHA-256 with a 32-byte salt.
//! Keys are imported as JWK once per thumbprint and algorithm.
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

/// Every case of every file, in one pass: none is left out and none is wrong.
#[wasm_bindgen_test]
async fn wycheproof_every_vector() {
    let (cases, unreadable) = wycheproof::cases(&wycheproof::VectorFiles::embedded());
    assert!(unreadable.is_empty(), "{unreadable:?}");
    let mut report = wycheproof::Report::default();
    for case in &cases {
        let accepted = match &case.key {
            Some(k) => webcrypto::verify(k, case.alg, &case.msg, &case.sig).await,
            None => false,
        };
        report.record(case, accepted);
    }
    assert_eq!(report.total, cases.len());
    assert!(report.total > 1000, "only {} cases", report.total);
    assert!(
        report.is_success(),
        "{} of {} wrong: {:?}",
        report.failures.len(),
        report.total,
        report.failures.iter().take(10).collect::<Vec<_>>()
    );
    wasm_bindgen_test::console_log!(
        "wycheproof through WebCrypto: {} cases, {} valid accepted, {} invalid refused, {} acceptable accepted, {} acceptable refused, 0 failures",
        report.total,
        report.valid_accepted,
        report.invalid_refused,
        report.acceptable_accepted,
        report.acceptable_refused
    );
}
