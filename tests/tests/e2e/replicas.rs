//! Two origin replicas on one PostgreSQL database, both pushing revocations
//! to one edge: revocations made concurrently through both all reach the
//! edge, and the revocation-list version the edge holds never goes backwards.
//! Skipped, with a printed reason, when GATEHOUSE_TEST_DATABASE_URL is unset
//! (`.ci/run` sets it).

use crate::harness::{free_port, http, ClientCreds, Edge, Origin, TempDir, Upstream, ADMIN_TOKEN};
use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};

const ISSUER: &str = "https://issuer.replicas.test";
/// Both replicas must decrypt each other's signing keys: one explicit KEK.
const KEK: &str = "cmVwbGljYXMtc2hhcmUtb25lLWtlay0wMTIzNDU2Nzg";

/// Drops the test's database once everything using it has stopped.
struct Database {
    admin_url: String,
    name: String,
    url: String,
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .arg(&self.admin_url)
            .args([
                "-qc",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .output();
    }
}

fn fresh_database(base_url: &str) -> Database {
    let name = format!("gh_replicas_{}_{}", std::process::id(), free_port());
    let out = Command::new("psql")
        .arg(base_url)
        .args([
            "-v",
            "ON_ERROR_STOP=1",
            "-qc",
            &format!("CREATE DATABASE {name}"),
        ])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "CREATE DATABASE failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let base = base_url.rsplit_once('/').map_or(base_url, |(b, _)| b);
    let url = format!("{base}/{name}");
    Database {
        admin_url: base_url.to_owned(),
        name,
        url,
    }
}

fn edge_version(edge: &Edge) -> Option<u64> {
    let health: Value = http()
        .get(format!("{}/.gatehouse/health", edge.url))
        .send()
        .ok()?
        .json()
        .ok()?;
    health["issuers"][0]["revocations"]["version"].as_u64()
}

#[test]
fn two_replicas_on_postgres_revoking_concurrently_reach_the_edge_in_order() {
    let Ok(pg) = std::env::var("GATEHOUSE_TEST_DATABASE_URL") else {
        eprintln!("skipped: GATEHOUSE_TEST_DATABASE_URL is not set (PostgreSQL replicas test)");
        return;
    };
    let database = fresh_database(&pg);
    let edge_port = free_port();
    let edge_url = format!("http://127.0.0.1:{edge_port}");
    let env = [
        ("GATEHOUSE_ISSUER", ISSUER),
        ("GATEHOUSE_KEK", KEK),
        ("GATEHOUSE_EDGE_URL", edge_url.as_str()),
        ("GATEHOUSE_TOKEN_RATE", "100000"),
    ];
    let a = Origin::start_with(TempDir::new("replica-a"), database.url.clone(), &env);
    let b = Origin::start_with(TempDir::new("replica-b"), database.url.clone(), &env);
    let upstream = Upstream::start();
    let jwks_url = format!("{}/.well-known/jwks.json", a.url);
    let edge = Edge::start_on(
        edge_port,
        &a,
        &upstream,
        &[
            ("ISSUER", ISSUER),
            ("JWKS_URL", jwks_url.as_str()),
            ("RATE_LIMIT_IP", "100000/60"),
        ],
    );

    // One client, registered through replica A's admin API.
    let created: Value = http()
        .post(format!("{}/admin/clients", a.url))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "replicas", "scope": "read", "audiences": [edge.url]}))
        .send()
        .expect("create client")
        .json()
        .expect("JSON");
    let client = ClientCreds {
        id: created["client_id"].as_str().expect("client_id").to_owned(),
        secret: created["client_secret"].as_str().map(str::to_owned),
    };

    // Tokens from both replicas, all accepted by the edge.
    let tokens: Vec<String> = (0..20)
        .map(|i| {
            let origin = if i % 2 == 0 { &a } else { &b };
            origin.client_credentials(&client, &[])["access_token"]
                .as_str()
                .expect("token")
                .to_owned()
        })
        .collect();
    for t in &tokens {
        let r = http()
            .get(format!("{}/x", edge.url))
            .bearer_auth(t)
            .send()
            .expect("edge");
        assert_eq!(r.status(), 200, "{}", r.text().unwrap_or_default());
    }

    // Revoke them concurrently: even-indexed through A, odd through B, while
    // a third thread samples the version the edge holds.
    let done = std::sync::atomic::AtomicBool::new(false);
    let mut versions = Vec::new();
    std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            let mut seen = Vec::new();
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                seen.extend(edge_version(&edge));
                std::thread::sleep(Duration::from_millis(10));
            }
            seen
        });
        let mut revokers = Vec::new();
        for (origin, parity) in [(&a, 0), (&b, 1)] {
            let mine: Vec<&String> = tokens.iter().skip(parity).step_by(2).collect();
            let client = &client;
            revokers.push(s.spawn(move || {
                for t in mine {
                    let r = http()
                        .post(format!("{}/revoke", origin.url))
                        .basic_auth(&client.id, client.secret.as_deref())
                        .form(&[("token", t.as_str())])
                        .send()
                        .expect("revoke");
                    assert_eq!(r.status(), 200);
                }
            }));
        }
        for r in revokers {
            r.join().expect("revoker");
        }
        std::thread::sleep(Duration::from_millis(500));
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        versions = sampler.join().expect("sampler");
    });

    // The edge ends up refusing every one, and its version only increases.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = edge_version(&edge) {
            versions.push(v);
        }
        let still_accepted = tokens
            .iter()
            .filter(|t| {
                http()
                    .get(format!("{}/x", edge.url))
                    .bearer_auth(t)
                    .send()
                    .map(|r| r.status() == 200)
                    .unwrap_or(true)
            })
            .count();
        if still_accepted == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{still_accepted} revoked tokens still accepted by the edge"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        versions.windows(2).all(|w| w[0] <= w[1]),
        "the edge's revocation version went backwards: {versions:?}"
    );
    let distinct = versions.windows(2).filter(|w| w[0] != w[1]).count() + 1;
    eprintln!(
        "{} samples, {distinct} distinct edge revocation versions, last {:?}",
        versions.len(),
        versions.last()
    );
}
