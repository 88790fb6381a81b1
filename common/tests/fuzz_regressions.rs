//! Fuzzing regressions, run natively on stable in `scripts/test`: every
//! input of the committed cargo-fuzz corpus (`common/fuzz/corpus/<target>/`)
//! and every saved finding (`common/fuzz/regressions/<target>/`) replayed
//! through the same code as the fuzz target, plus the boundary inputs the
//! long runs are meant to hit (size and depth caps, one byte either side).
//!
//! The bodies here mirror `common/fuzz/fuzz_targets/*.rs` line for line; a
//! change to a target belongs in both places.
#![cfg(all(feature = "testkit", not(target_arch = "wasm32")))]
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use gatehouse_common::access_token::UntrustedAccessToken;
use gatehouse_common::dpop::{DpopPolicy, DpopRequest, UntrustedDpopProof};
use gatehouse_common::jwk::{JwkSet, PublicJwk};
use gatehouse_common::revocation::{
    RevocationDocument, RevocationPolicy, UntrustedRevocationDocument,
};
use gatehouse_common::testkit::fixture;
use gatehouse_common::{b64, UnixTime};
use std::path::{Path, PathBuf};

fn access_token(data: &[u8]) {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let policy = fixture::policy();
    if let Ok(t) = UntrustedAccessToken::parse(raw, &policy) {
        let _ = (t.kid(), t.header_alg(), t.signing_input(), t.signature());
        let _ = t.accept(true, &policy, UnixTime(fixture::NOW));
    }
    let _ = gatehouse_common::http::authorization(&[raw]);
}

fn dpop_proof(data: &[u8]) {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
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
}

fn jwks(data: &[u8]) {
    if let Ok(set) = JwkSet::from_json(data) {
        let again = JwkSet::from_json(set.to_json().to_string().as_bytes());
        assert_eq!(
            again.map(|s| s.keys().to_vec()).ok(),
            Some(set.keys().to_vec())
        );
    }
    let _ = PublicJwk::from_json(data);
}

fn revocation_list(data: &[u8]) {
    if let Ok(map) = gatehouse_common::json::parse_object(data) {
        if let Ok(doc) = RevocationDocument::from_claims(&map) {
            let again = RevocationDocument::from_claims(&fixture::map(&doc.to_claims()));
            assert_eq!(again.ok(), Some(doc));
        }
    }
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let policy = RevocationPolicy::new(fixture::ISSUER);
    if let Ok(u) = UntrustedRevocationDocument::parse(raw, &policy) {
        let _ = u.accept(true, &policy, Some(1), UnixTime(fixture::NOW));
    }
}

/// One fuzz target's body.
type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 4] = [
    ("access_token", access_token),
    ("dpop_proof", dpop_proof),
    ("jwks", jwks),
    ("revocation_list", revocation_list),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// Every file under `dir` (none if it does not exist).
fn inputs(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn committed_corpus_and_findings_replay_without_panics() {
    let mut total = 0;
    for (name, run) in TARGETS {
        for sub in ["corpus", "regressions"] {
            for (path, bytes) in inputs(&fuzz_dir().join(sub).join(name)) {
                let outcome = std::panic::catch_unwind(|| run(&bytes));
                assert!(outcome.is_ok(), "{name} panicked on {}", path.display());
                total += 1;
            }
        }
    }
    // The corpus is committed: an empty replay means it went missing.
    assert!(total > 100, "only {total} corpus inputs found");
}

/// The same input through every target (the targets overlap: a token is
/// also a candidate JWKS, a proof is also a URI).
fn all_targets(data: &[u8]) {
    for (_, run) in TARGETS {
        run(data);
    }
}

fn jws_text(header: &str, claims: &str) -> String {
    format!(
        "{}.{}.{}",
        b64::encode(header.as_bytes()),
        b64::encode(claims.as_bytes()),
        b64::encode(&[0u8; 64])
    )
}

#[test]
fn nesting_at_and_beyond_the_depth_cap() {
    let depth = gatehouse_common::json::MAX_DEPTH;
    for d in [depth - 1, depth, depth + 1, 10 * depth, 100_000] {
        let arrays = format!("{}{}", "[".repeat(d), "]".repeat(d));
        let objects = format!("{}1{}", r#"{"a":"#.repeat(d), "}".repeat(d));
        for v in [&arrays, &objects] {
            let doc = format!(r#"{{"keys":[],"x":{v}}}"#);
            all_targets(doc.as_bytes());
            all_targets(jws_text(r#"{"alg":"ES256","typ":"at+jwt","kid":"k1"}"#, &doc).as_bytes());
            all_targets(jws_text(&format!(r#"{{"alg":"ES256","x":{v}}}"#), "{}").as_bytes());
        }
    }
}

#[test]
fn sizes_at_and_beyond_the_caps() {
    let auth = gatehouse_common::http::MAX_AUTHORIZATION_LEN;
    let kid = gatehouse_common::jwk::MAX_KID_LEN;
    let claim = gatehouse_common::claims::MAX_STRING_CLAIM;
    for n in [auth - 1, auth, auth + 1, 4 * auth] {
        all_targets("a".repeat(n).as_bytes());
        all_targets(format!("Bearer {}", "a".repeat(n)).as_bytes());
    }
    for n in [kid - 1, kid, kid + 1] {
        let h = format!(
            r#"{{"alg":"ES256","typ":"at+jwt","kid":"{}"}}"#,
            "k".repeat(n)
        );
        all_targets(jws_text(&h, "{}").as_bytes());
        let jwk = format!(
            r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"{}"}}]}}"#,
            "k".repeat(n)
        );
        all_targets(jwk.as_bytes());
    }
    for n in [claim - 1, claim, claim + 1] {
        let c = format!(
            r#"{{"sub":"{}","jti":"{}","htu":"https://a/{}"}}"#,
            "s".repeat(n),
            "j".repeat(n),
            "p".repeat(n)
        );
        all_targets(jws_text(r#"{"alg":"ES256","typ":"at+jwt","kid":"k1"}"#, &c).as_bytes());
        all_targets(jws_text(r#"{"alg":"ES256","typ":"dpop+jwt"}"#, &c).as_bytes());
    }
}

#[test]
fn numeric_extremes_in_every_time_claim() {
    let extremes = [
        "0",
        "-0",
        "-1",
        "1e308",
        "-1e308",
        "1e400",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775809",
        "18446744073709551616",
        "1.5",
        "0.0000001",
        "1E3",
        "-9223372036854775808",
    ];
    for claim in ["exp", "iat", "nbf", "version", "until", "revoked_at"] {
        for v in extremes {
            let c = format!(
                r#"{{"iss":"{}","aud":"{}","sub":"s","client_id":"c","jti":"j","htm":"GET","htu":"{}","iat":{},"exp":{},"{claim}":{v},"version":1,"entries":[{{"kind":"jti","value":"x","revoked_at":1,"until":2,"{claim}":{v}}}]}}"#,
                fixture::ISSUER,
                fixture::AUDIENCE,
                fixture::URI,
                fixture::NOW,
                fixture::NOW + 10,
            );
            all_targets(c.as_bytes());
            for typ in ["at+jwt", "dpop+jwt", "gatehouse-revocations+jwt"] {
                let h = format!(
                    r#"{{"alg":"ES256","typ":"{typ}","kid":"k1","jwk":{{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}}}}"#
                );
                all_targets(jws_text(&h, &c).as_bytes());
            }
        }
    }
}

#[test]
fn hostile_uris_in_htu() {
    for u in [
        "https://api.example:65536/",
        "https://api.example:99999999999999999999/",
        "https://[::1/",
        "https://[::1]:443/%zz",
        "HTTPS://API.EXAMPLE:443/v1/../../../things",
        "https://api.example/\u{0}",
        "https://user@api.example/",
        "https://api.example/%",
        "https://api.example/%c0%af",
        "https:///",
        "://",
        "https://ａｐｉ.example/",
        "https://api.example:/x",
        "https://api.example#",
        "https://api.example?",
    ] {
        all_targets(u.as_bytes());
        let c = format!(
            r#"{{"jti":"j","htm":"GET","htu":"{}","iat":{}}}"#,
            u.replace('"', ""),
            fixture::NOW
        );
        all_targets(jws_text(r#"{"alg":"ES256","typ":"dpop+jwt","jwk":{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}}"#, &c).as_bytes());
    }
}
