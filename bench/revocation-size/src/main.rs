//! How big the revocation document gets and what it costs the edge, at 1k,
//! 10k and 100k entries: encode (build + sign) size and time, decode-and-index
//! (parse + verify + accept into a `RevocationList`) time, and lookup cost.
//! A measurement, not a check: prints a Markdown table for BENCHMARKS.md.
//! `cargo run --release -p gatehouse-bench --bin gatehouse-revocation-size`
//! (scripts/bench runs it).

use gatehouse_common::access_token::{AccessToken, AccessTokenPolicy, UntrustedAccessToken};
use gatehouse_common::alg::Algorithm;
use gatehouse_common::jwk::JwkSet;
use gatehouse_common::provider::SignatureVerifier as _;
use gatehouse_common::revocation::{
    RevocationDocument, RevocationEntry, RevocationKind, RevocationPolicy,
    UntrustedRevocationDocument,
};
use gatehouse_common::UnixTime;
use gatehouse_origin::support::crypto::{AwsLc, SigningKey};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const ISSUER: &str = "https://issuer.example";
/// A fixed instant, so runs are comparable.
const NOW: i64 = 1_700_000_000;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// A token as the edge holds it after verification: minted with `key`,
/// then parsed, verified and accepted the way the edge does.
fn token(key: &SigningKey, jwks: &JwkSet, jti: String) -> Result<AccessToken, String> {
    let aud = "https://api.example";
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": "user-1", "aud": aud, "exp": NOW + 300, "iat": NOW - 10,
        "jti": jti, "client_id": "client-1", "scope": "read", "sid": "family-not-revoked",
    });
    let raw = key
        .sign_jws("at+jwt", &claims)
        .map_err(|e| format!("signing a token: {e}"))?;
    let policy = AccessTokenPolicy::new(ISSUER, vec![aud.into()]);
    let u = UntrustedAccessToken::parse(&raw, &policy).map_err(|e| format!("token: {e}"))?;
    let k = jwks
        .select(u.kid(), u.header_alg())
        .map_err(|e| format!("key: {e}"))?;
    let ok = AwsLc.verify(k.jwk, k.alg, u.signing_input(), u.signature());
    u.accept(ok, &policy, UnixTime(NOW))
        .map_err(|e| format!("token: {e}"))
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("revocation-size: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let now = UnixTime(NOW);
    let key = SigningKey::generate(Algorithm::Es256, "k1")
        .map_err(|e| format!("key generation: {e}"))?
        .key;
    let jwks = JwkSet::from_keys(vec![key.public().clone()]);
    let policy = RevocationPolicy::new(ISSUER);
    // Tokens to look up: half revoked by jti, half not.
    let lookups = (0..2_000)
        .map(|i| {
            let jti = if i % 2 == 0 { i / 2 } else { 10_000_000 + i };
            token(&key, &jwks, format!("{jti:022}"))
        })
        .collect::<Result<Vec<AccessToken>, String>>()?;
    println!("| entries | document bytes | bytes/entry | encode+sign | decode+verify+index | lookup (ns) |");
    println!("|--------:|---------------:|------------:|------------:|--------------------:|------------:|");
    for n in [1_000usize, 10_000, 100_000] {
        // 90% jti (22-character ids like ours), 10% sid.
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
                .map_err(|e| format!("signing: {e}"))?;
            enc.push(t.elapsed());
        }
        let mut dec = Vec::new();
        let mut list = None;
        for _ in 0..5 {
            let t = Instant::now();
            let u = UntrustedRevocationDocument::parse(&raw, &policy)
                .map_err(|e| format!("parse: {e}"))?;
            let k = jwks
                .select(u.kid(), u.header_alg())
                .map_err(|e| format!("key: {e}"))?;
            let ok = AwsLc.verify(k.jwk, k.alg, u.signing_input(), u.signature());
            list = Some(
                u.accept(ok, &policy, Some(6), now)
                    .map_err(|e| format!("accept: {e}"))?,
            );
            dec.push(t.elapsed());
        }
        let list = list.ok_or("no list")?;
        if list.len() != n {
            return Err(format!("the list holds {} entries, not {n}", list.len()));
        }
        let rounds = 50;
        let t = Instant::now();
        let mut hits = 0usize;
        for _ in 0..rounds {
            for tok in &lookups {
                hits += usize::from(list.check(std::hint::black_box(tok), now).is_some());
            }
        }
        let per = t.elapsed().as_nanos() as f64 / (rounds * lookups.len()) as f64;
        // Even lookups carry jti i/2 < 1,000 ≤ n, revoked unless that entry
        // is a sid entry (every tenth); odd ones are never revoked: 900 hits.
        if hits != rounds * 900 {
            return Err(format!("{hits} hits, expected {}", rounds * 900));
        }
        println!(
            "| {n:>7} | {:>14} | {:>11.1} | {:>8.1} ms | {:>16.1} ms | {:>11.0} |",
            raw.len(),
            raw.len() as f64 / n as f64,
            median(enc).as_secs_f64() * 1e3,
            median(dec).as_secs_f64() * 1e3,
            per
        );
    }
    Ok(())
}
