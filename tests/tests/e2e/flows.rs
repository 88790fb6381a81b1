//! Flows across origin and edge that no single component test can show.

use crate::harness::{http, Stack, ADMIN_TOKEN};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

fn kid_of(token: &str) -> String {
    let header = token.split('.').next().expect("header segment");
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("base64url"))
            .expect("JSON header");
    header["kid"].as_str().expect("kid").to_owned()
}

/// Keys rotate on the published schedule (publish lead 2 s, JWKS max-age 1 s)
/// while tokens are issued and used continuously: every valid request is
/// accepted, and the tokens really were signed by several keys.
#[test]
fn key_rotation_while_requests_flow_refuses_no_valid_request() {
    let stack = Stack::start_linked(
        &[
            ("GATEHOUSE_KEY_PUBLISH_LEAD", "2"),
            ("GATEHOUSE_JWKS_MAX_AGE", "1"),
            ("GATEHOUSE_TOKEN_RATE", "1000000"),
        ],
        &[
            ("JWKS_MIN_TTL_SECS", "1"),
            ("RATE_LIMIT_CLIENT", "1000000/60"),
        ],
    );
    let client = stack.client("read");
    let web = http();
    let mut kids = BTreeSet::new();
    let mut refused = Vec::new();
    let mut requests = 0u32;
    let started = Instant::now();
    let mut next_rotation = started + Duration::from_secs(1);
    let mut rotations = 0;
    while started.elapsed() < Duration::from_secs(14) {
        if Instant::now() >= next_rotation && rotations < 4 {
            let resp = web
                .post(format!("{}/admin/keys/rotate", stack.origin.url))
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .expect("rotate");
            assert!(
                resp.status().is_success(),
                "rotation refused: {}",
                resp.status()
            );
            rotations += 1;
            next_rotation += Duration::from_secs(3);
        }
        let tok = stack.origin.client_credentials(&client, &[]);
        let at = tok["access_token"].as_str().expect("access_token");
        kids.insert(kid_of(at));
        let resp = web
            .get(format!("{}/resource", stack.edge.url))
            .bearer_auth(at)
            .send()
            .expect("edge answers");
        requests += 1;
        if resp.status() != 200 {
            refused.push((
                kid_of(at),
                resp.status().as_u16(),
                resp.text().unwrap_or_default(),
            ));
        }
    }
    eprintln!(
        "{requests} requests, {rotations} rotations, {} signing keys used",
        kids.len()
    );
    assert!(
        refused.is_empty(),
        "valid requests refused during rotation: {refused:?}"
    );
    assert!(
        kids.len() >= 3,
        "the schedule should have switched signers: {kids:?}"
    );
}
