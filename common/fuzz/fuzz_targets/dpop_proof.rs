//! DPoP proof parsing and all §4.3 checks on arbitrary input: never panics.
#![no_main]

use gatehouse_common::dpop::{DpopPolicy, DpopRequest, UntrustedDpopProof};
use gatehouse_common::testkit::fixture;
use gatehouse_common::UnixTime;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else { return };
    let policy = DpopPolicy::default();
    if let Ok(p) = UntrustedDpopProof::parse(&[raw], &policy) {
        let request = DpopRequest {
            method: "GET",
            uri: fixture::URI,
            access_token: None,
            nonces: None,
        };
        let _ = p.accept(true, &policy, &request, UnixTime(fixture::NOW));
    }
    let _ = gatehouse_common::uri::normalize(raw);
});
