//! Access-token parsing and acceptance on arbitrary input: never panics.
#![no_main]

use gatehouse_common::access_token::UntrustedAccessToken;
use gatehouse_common::testkit::fixture;
use gatehouse_common::UnixTime;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else { return };
    let policy = fixture::policy();
    if let Ok(t) = UntrustedAccessToken::parse(raw, &policy) {
        let _ = (t.kid(), t.header_alg(), t.signing_input(), t.signature());
        // Exercise claim validation as if the signature had verified.
        let _ = t.accept(true, &policy, UnixTime(fixture::NOW));
    }
    let _ = gatehouse_common::http::authorization(&[raw]);
});
