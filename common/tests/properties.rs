//! Property tests: no parser panics on arbitrary input, and encode/decode round trips.
#![cfg(all(feature = "testkit", not(target_arch = "wasm32")))]
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use gatehouse_common::access_token::UntrustedAccessToken;
use gatehouse_common::dpop::{DpopPolicy, UntrustedDpopProof};
use gatehouse_common::jwk::{JwkSet, PublicJwk};
use gatehouse_common::ratelimit::{check, GcraState, Quota};
use gatehouse_common::revocation::{
    RevocationDocument, RevocationEntry, RevocationKind, RevocationPolicy,
    UntrustedRevocationDocument,
};
use gatehouse_common::testkit::fixture;
use gatehouse_common::{b64, http, json, jws, policy, uri};
use proptest::prelude::*;

fn jws_like() -> impl Strategy<Value = String> {
    // Three segments of base64url-ish text, sometimes valid JSON.
    let seg = prop_oneof![
        "[A-Za-z0-9_-]{0,40}",
        any::<Vec<u8>>().prop_map(|b| b64::encode(&b)),
        "\\PC{0,40}".prop_map(|s| b64::encode(s.as_bytes())),
        Just(b64::encode(br#"{"alg":"ES256","typ":"at+jwt","kid":"k1"}"#)),
        Just(b64::encode(br#"{"alg":"ES256","typ":"dpop+jwt","jwk":{"kty":"EC","crv":"P-256","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"}}"#)),
    ];
    (seg.clone(), seg.clone(), seg).prop_map(|(a, b, c)| format!("{a}.{b}.{c}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn base64_round_trips(bytes in any::<Vec<u8>>()) {
        prop_assert_eq!(b64::decode(&b64::encode(&bytes)).unwrap(), bytes);
    }

    #[test]
    fn base64_decode_never_panics(s in "\\PC*") {
        let _ = b64::decode(&s);
    }

    #[test]
    fn json_parse_never_panics(bytes in any::<Vec<u8>>()) {
        let _ = json::parse_object(&bytes);
    }

    #[test]
    fn json_round_trips_objects(m in prop::collection::btree_map("[a-z]{1,8}", any::<i64>(), 0..8)) {
        let v = serde_json::to_string(&m).unwrap();
        let parsed = json::parse_object(v.as_bytes()).unwrap();
        prop_assert_eq!(parsed.len(), m.len());
    }

    #[test]
    fn jws_parse_never_panics(s in jws_like()) {
        let _ = jws::parse(&s, &jws::Limits::ACCESS_TOKEN);
        let _ = UntrustedAccessToken::parse(&s, &fixture::policy());
        let _ = UntrustedDpopProof::parse_one(&s, &DpopPolicy::default());
        let _ = UntrustedRevocationDocument::parse(&s, &RevocationPolicy::new(fixture::ISSUER));
    }

    #[test]
    fn token_parsers_never_panic_on_arbitrary_text(s in "\\PC{0,300}") {
        let _ = UntrustedAccessToken::parse(&s, &fixture::policy());
        let _ = UntrustedDpopProof::parse(&[&s], &DpopPolicy::default());
        let _ = http::authorization(&[&s]);
    }

    #[test]
    fn jwk_parsers_never_panic(bytes in any::<Vec<u8>>()) {
        let _ = PublicJwk::from_json(&bytes);
        let _ = JwkSet::from_json(&bytes);
    }

    #[test]
    fn jwk_round_trips(seed in "[a-z]{1,12}", kind in 0u8..3) {
        let k = match kind {
            0 => gatehouse_common::testkit::signer::TestKey::es256(&seed),
            1 => gatehouse_common::testkit::signer::TestKey::es384(&seed),
            _ => gatehouse_common::testkit::signer::TestKey::ed25519(&seed),
        };
        let jwk = k.public_jwk(Some(&seed)).unwrap();
        let again = PublicJwk::from_json(jwk.to_json().to_string().as_bytes()).unwrap();
        prop_assert_eq!(&again, &jwk);
        let set = JwkSet::from_keys(vec![jwk.clone()]);
        let set_again = JwkSet::from_json(set.to_json().to_string().as_bytes()).unwrap();
        prop_assert_eq!(set_again.keys(), set.keys());
    }

    #[test]
    fn uri_normalization_never_panics_and_is_idempotent(s in "\\PC{0,80}") {
        let _ = uri::normalize(&s);
        let candidate = format!("https://{s}");
        if let Ok(n) = uri::normalize(&candidate) {
            prop_assert_eq!(uri::normalize(&n.target).unwrap().target, n.target);
        }
    }

    #[test]
    fn route_lookup_never_panics(path in "\\PC{0,80}") {
        let p = policy::RoutePolicy::new(
            policy::DefaultAction::Deny,
            vec![policy::RouteRule::new("/api", &["read"], false)],
        ).unwrap();
        if let Ok(c) = policy::CanonicalPath::parse(&path) {
            let _ = p.route(&c);
        }
    }

    /// The canonical form is a fixed point (forwarding it and judging it
    /// again gives the same path and route), and decoding it once more
    /// (as an upstream does) can no longer yield `/`, `\`, `;` or `%`.
    #[test]
    fn canonical_paths_are_idempotent_and_unambiguous(
        path in "/[a-zA-Z0-9/._~%;\\:@!$&'()*+,=-]{0,60}",
    ) {
        if let Ok(c) = policy::CanonicalPath::parse(&path) {
            let again = policy::CanonicalPath::parse(c.as_str()).unwrap();
            prop_assert_eq!(again.as_str(), c.as_str());
            prop_assert!(!c.as_str().contains("//"));
            prop_assert!(!c.as_str().contains(';') && !c.as_str().contains('\\'));
            let upper = c.as_str().to_ascii_uppercase();
            for bad in ["%2F", "%5C", "%3B", "%25", "%00"] {
                prop_assert!(!upper.contains(bad), "{}", c);
            }
        }
    }

    #[test]
    fn revocation_documents_round_trip(
        version in any::<u64>(),
        entries in prop::collection::vec(
            (0u8..4, "[a-zA-Z0-9._-]{1,20}", 0i64..4_000_000_000, 0i64..4_000_000_000),
            0..20,
        ),
    ) {
        let doc = RevocationDocument {
            iss: fixture::ISSUER.into(),
            iat: fixture::NOW,
            version,
            entries: entries.into_iter().map(|(k, value, revoked_at, until)| RevocationEntry {
                kind: [RevocationKind::Jti, RevocationKind::Sid, RevocationKind::Sub, RevocationKind::ClientId][usize::from(k)],
                value,
                revoked_at,
                until,
            }).collect(),
        };
        let claims = fixture::map(&doc.to_claims());
        prop_assert_eq!(RevocationDocument::from_claims(&claims).unwrap(), doc);
    }

    #[test]
    fn gcra_never_allows_more_than_the_quota_in_a_window(
        limit in 1u32..50,
        window in 1u32..120,
        gaps in prop::collection::vec(0i64..500, 1..300),
    ) {
        let q = Quota::new("p", limit, window);
        let mut s = GcraState::default();
        let mut now = 1_700_000_000_000i64;
        let mut allowed: Vec<i64> = Vec::new();
        for g in gaps {
            now += g;
            let (d, next) = check(s, now, &q);
            s = next;
            if d.allowed {
                allowed.push(now);
            } else {
                prop_assert!(d.retry_after_ms > 0);
            }
        }
        // GCRA's guarantee: between any two allowed requests i < j, at most
        // `limit` (the burst) plus one per emission interval T elapsed.
        let t = (i64::from(window) * 1000 / i64::from(limit)).max(1);
        for i in 0..allowed.len() {
            for j in i..allowed.len() {
                let count = (j - i + 1) as i64;
                let budget = i64::from(limit) + (allowed[j] - allowed[i]) / t;
                prop_assert!(count <= budget, "{count} > {budget}");
            }
        }
    }
}
