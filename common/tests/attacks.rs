//! The attack table (RFC 8725, RFC 9449 §11, CVEs) through the RustCrypto
//! provider. The cases live in `gatehouse_common::testkit::attacks` so the
//! same table runs in wasm (Node, Chromium) and against other providers.
#![cfg(all(feature = "testkit", not(target_arch = "wasm32")))]
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use gatehouse_common::provider::RustCrypto;
use gatehouse_common::testkit::attacks;

#[test]
fn every_attack_is_refused_with_the_right_error() {
    let failures = attacks::run_all(&RustCrypto);
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn the_table_has_at_least_sixty_attacks_with_sources() {
    let all = attacks::all();
    let attacks: Vec<_> = all
        .iter()
        .filter(|a| !a.name.starts_with("control"))
        .collect();
    assert!(attacks.len() >= 60, "only {}", attacks.len());
    assert!(all.iter().all(|a| !a.source.is_empty()));
    let mut names: Vec<_> = all.iter().map(|a| a.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), all.len(), "names are unique");
}

/// A provider that accepts every signature: the table must catch it.
struct AcceptsEverything;

impl gatehouse_common::provider::SignatureVerifier for AcceptsEverything {
    fn verify(
        &self,
        _: &gatehouse_common::jwk::PublicJwk,
        _: gatehouse_common::alg::Algorithm,
        _: &[u8],
        _: &[u8],
    ) -> bool {
        true
    }
}

#[test]
fn a_broken_provider_fails_the_table() {
    let failures = attacks::run_all(&AcceptsEverything);
    let names: Vec<_> = failures.iter().map(|(n, _)| *n).collect();
    assert!(names.contains(&"psychic signature r = s = 0"), "{names:?}");
    assert!(names.contains(&"proof signed by a key other than its jwk"));
    assert!(names.contains(&"revocation document forged by another key"));
}
