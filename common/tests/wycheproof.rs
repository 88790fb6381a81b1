//! Project Wycheproof signature vectors through the RustCrypto provider.
//!
//! Source: Project Wycheproof, <https://github.com/C2SP/wycheproof>
//! (`testvectors_v1/`, Apache-2.0), copied to `common/testdata/wycheproof/`.
//! `valid` must verify and `invalid` must not; `acceptable` cases (a PKCS #1
//! v1.5 DigestInfo without its NULL parameter) may go either way — the
//! RustCrypto provider refuses them, which this test pins down. The runner
//! lives in `gatehouse_common::testkit::wycheproof` so the edge's WebCrypto
//! and the origin's native providers run the very same cases.
#![cfg(all(feature = "testkit", not(target_arch = "wasm32")))]
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use gatehouse_common::provider::RustCrypto;
use gatehouse_common::testkit::wycheproof::{self, Expected, VectorFiles};

fn read(name: &str) -> String {
    let path = format!("{}/testdata/wycheproof/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn rustcrypto_passes_every_wycheproof_vector() {
    let texts = [
        read("ecdsa_secp256r1_sha256_p1363_test.json"),
        read("ecdsa_secp384r1_sha384_p1363_test.json"),
        read("ed25519_test.json"),
        read("rsa_signature_2048_sha256_test.json"),
        read("rsa_pss_2048_sha256_mgf1_32_test.json"),
    ];
    let files = VectorFiles {
        ecdsa_p256: &texts[0],
        ecdsa_p384: &texts[1],
        ed25519: &texts[2],
        rsa_pkcs1: &texts[3],
        rsa_pss: &texts[4],
    };
    let report = wycheproof::run_all(&RustCrypto, &files);
    assert!(report.unreadable_files.is_empty(), "{report:?}");
    assert!(
        report.failures.is_empty(),
        "failures: {:#?}",
        report.failures
    );
    // 262 + 280 + 151 + 259 + 108 vectors.
    assert_eq!(report.total, 1060);
    assert_eq!(
        report.valid_accepted
            + report.invalid_refused
            + report.acceptable_accepted
            + report.acceptable_refused,
        report.total
    );
    // The one `acceptable` case (missing NULL in DigestInfo) is refused: we
    // accept only the DER encoding RFC 8017 §9.2 produces.
    assert_eq!(
        (report.acceptable_accepted, report.acceptable_refused),
        (0, 1)
    );
}

#[test]
fn every_file_contributes_cases_and_keys_parse() {
    let (cases, unreadable) = wycheproof::cases(&VectorFiles::embedded());
    assert!(unreadable.is_empty());
    for file in [
        "ecdsa_secp256r1_sha256_p1363_test.json",
        "ecdsa_secp384r1_sha384_p1363_test.json",
        "ed25519_test.json",
        "rsa_signature_2048_sha256_test.json",
        "rsa_pss_2048_sha256_mgf1_32_test.json",
    ] {
        let of_file: Vec<_> = cases.iter().filter(|c| c.file == file).collect();
        assert!(
            of_file.iter().any(|c| c.expected == Expected::Valid),
            "{file}"
        );
        assert!(
            of_file.iter().any(|c| c.expected == Expected::Invalid),
            "{file}"
        );
        // Every group's key is usable by our JWK rules (valid vectors need it).
        assert!(
            of_file
                .iter()
                .filter(|c| c.expected == Expected::Valid)
                .all(|c| c.key.is_some()),
            "{file}"
        );
    }
}
