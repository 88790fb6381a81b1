//! JWK and JWKS parsing on arbitrary bytes: never panics; accepted keys round-trip.
#![no_main]

use gatehouse_common::jwk::{JwkSet, PublicJwk};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(set) = JwkSet::from_json(data) {
        let again = JwkSet::from_json(set.to_json().to_string().as_bytes());
        assert_eq!(again.map(|s| s.keys().to_vec()).ok(), Some(set.keys().to_vec()));
    }
    let _ = PublicJwk::from_json(data);
});
