//! The Wycheproof vectors and the attack table as wasm32 in Node:
//! `cargo test -p gatehouse-common --target wasm32-unknown-unknown --features testkit --test wasm_node`.
//! The bodies are the shared testkit suites (see `wasm_shared`); vector files
//! are embedded with `include_str!` from `common/testdata/`.
#![cfg(all(target_arch = "wasm32", feature = "testkit"))]
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

mod wasm_shared;

use wasm_bindgen_test::wasm_bindgen_test;

#[wasm_bindgen_test]
async fn wycheproof_ecdsa_p256() {
    wasm_shared::wycheproof_file("ecdsa_secp256r1_sha256_p1363_test.json").await;
}

#[wasm_bindgen_test]
async fn wycheproof_ecdsa_p384() {
    wasm_shared::wycheproof_file("ecdsa_secp384r1_sha384_p1363_test.json").await;
}

#[wasm_bindgen_test]
async fn wycheproof_ed25519() {
    wasm_shared::wycheproof_file("ed25519_test.json").await;
}

#[wasm_bindgen_test]
async fn wycheproof_rsa_pkcs1() {
    wasm_shared::wycheproof_file("rsa_signature_2048_sha256_test.json").await;
}

#[wasm_bindgen_test]
async fn wycheproof_rsa_pss() {
    wasm_shared::wycheproof_file("rsa_pss_2048_sha256_mgf1_32_test.json").await;
}

#[wasm_bindgen_test]
async fn attack_table() {
    wasm_shared::attack_table().await;
}
