//! Revocation-document parsing on arbitrary input: never panics; decoded
//! claims re-encode to the same document.
#![no_main]

use gatehouse_common::revocation::{RevocationDocument, RevocationPolicy, UntrustedRevocationDocument};
use gatehouse_common::testkit::fixture;
use gatehouse_common::UnixTime;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(map) = gatehouse_common::json::parse_object(data) {
        if let Ok(doc) = RevocationDocument::from_claims(&map) {
            let again = RevocationDocument::from_claims(&fixture::map(&doc.to_claims()));
            assert_eq!(again.ok(), Some(doc));
        }
    }
    let Ok(raw) = std::str::from_utf8(data) else { return };
    let policy = RevocationPolicy::new(fixture::ISSUER);
    if let Ok(u) = UntrustedRevocationDocument::parse(raw, &policy) {
        let _ = u.accept(true, &policy, Some(1), UnixTime(fixture::NOW));
    }
});
