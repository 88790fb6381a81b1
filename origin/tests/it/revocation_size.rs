//! How big the revocation document gets and what it costs the edge, at 1k,
//! 10k and 100k entries: encode (build + sign) size and time, decode-and-index
//! (parse + verify + accept into a `RevocationList`) time, and lookup cost.
//! A measurement, not a check: `#[ignore]`d and printing a table. Run with
//! `cargo test --release -p gatehouse-origin --test it revocation_size -- --ignored --nocapture`.

use gatehouse_common::provider::SignatureVerifier as _;
use gatehouse_common::revocation::{
    RevocationDocument, RevocationEntry, RevocationKind, RevocationPolicy,
    UntrustedRevocationDocument,
};
use gatehouse_common::testkit::fixture;
use gatehouse_common::UnixTime;
use gatehouse_origin::crypto::{AwsLc, SigningKey};
use std::time::{Duration, Instant};

const ISSUER: &str = "https://issuer.example";

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[test]
#[ignore = "measurement: run with --ignored --nocapture (in release for real figures)"]
fn revocation_document_size_and_costs() {
    let now = UnixTime(fixture::NOW);
    let key = SigningKey::generate(gatehouse_common::alg::Algorithm::Es256, "k1")
        .unwrap()
        .key;
    let jwks = gatehouse_common::jwk::JwkSet::from_keys(vec![key.public().clone()]);
    let policy = RevocationPolicy::new(ISSUER);
    // Tokens to look up: half revoked by jti, half not.
    let lookups: Vec<_> = (0..2_000)
        .map(|i| {
            let claims = fixture::set(
                fixture::claims(),
                "jti",
                serde_json::json!(format!(
                    "{:022}",
                    if i % 2 == 0 { i / 2 } else { 10_000_000 + i }
                )),
            );
            fixture::verify_token(&fixture::mint(&claims), &AwsLc, fixture::NOW).unwrap()
        })
        .collect();
    println!();
    println!("| entries | document bytes | bytes/entry | encode+sign | decode+verify+index | lookup (ns) |");
    println!("|--------:|---------------:|------------:|------------:|--------------------:|------------:|");
    for n in [1_000usize, 10_000, 100_000] {
        // 90% jti (22-character ids like ours), 10% sid/sub/client_id.
        let entries: Vec<RevocationEntry> = (0..n)
            .map(|i| RevocationEntry {
                kind: match i % 10 {
                    0 => RevocationKind::Sid,
                    _ => RevocationKind::Jti,
                },
                value: format!("{i:022}"),
                revoked_at: now.0 - 10,
                until: now.0 + 330,
            })
            .collect();
        let doc = RevocationDocument {
            iss: ISSUER.into(),
            iat: now.0,
            version: 7,
            entries,
        };
        let mut enc = Vec::new();
        let mut raw = String::new();
        for _ in 0..5 {
            let t = Instant::now();
            raw = key
                .sign_jws("gatehouse-revocations+jwt", &doc.to_claims())
                .unwrap();
            enc.push(t.elapsed());
        }
        let mut dec = Vec::new();
        let mut list = None;
        for _ in 0..5 {
            let t = Instant::now();
            let u = UntrustedRevocationDocument::parse(&raw, &policy).unwrap();
            let k = jwks.select(u.kid(), u.header_alg()).unwrap();
            let ok = AwsLc.verify(k.jwk, k.alg, u.signing_input(), u.signature());
            list = Some(u.accept(ok, &policy, Some(6), now).unwrap());
            dec.push(t.elapsed());
        }
        let list = list.unwrap();
        assert_eq!(list.len(), n);
        let rounds = 50;
        let t = Instant::now();
        let mut hits = 0usize;
        for _ in 0..rounds {
            for tok in &lookups {
                hits += usize::from(list.check(std::hint::black_box(tok), now).is_some());
            }
        }
        let per = t.elapsed().as_nanos() as f64 / (rounds * lookups.len()) as f64;
        assert!(hits > 0);
        println!(
            "| {n:>7} | {:>14} | {:>11.1} | {:>8.1} ms | {:>16.1} ms | {:>11.0} |",
            raw.len(),
            raw.len() as f64 / n as f64,
            median(enc).as_secs_f64() * 1e3,
            median(dec).as_secs_f64() * 1e3,
            per
        );
    }
}
