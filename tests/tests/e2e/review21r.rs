//! Review of issue 21 item 4 (the fast revocation path), attacker's view,
//! through the real binaries: nothing a client sends reaches a replica's
//! write path or picks the replica, the public health answer tells nothing
//! of the replicas, and an equal-version document (equivocation) through
//! KV does not replace the one a replica brought.

use crate::harness::{http, now, Edge, Origin, Upstream};
use crate::revocation_attacks::{edge_status, ingest, Issuer};
use serde_json::Value;
use std::time::{Duration, Instant};

/// `REVOCATION_REFRESH_SECS` here.
const N: u64 = 1;

fn issuer_edge(issuer: &Issuer, ttl: &'static str) -> (Origin, Upstream, Edge) {
    let origin = Origin::start();
    let upstream = Upstream::start();
    let trusted = issuer.trusted_issuers_var();
    let vars: Vec<(&str, &str)> = vec![
        ("TRUSTED_ISSUERS", trusted.as_str()),
        ("REVOCATION_REFRESH_SECS", "1"),
        ("REVOCATION_TTL_SECS", ttl),
        ("REVOCATION_ADOPT_ON_INGEST", "false"),
        ("RATE_LIMIT_IP", "1000000/60"),
        ("RATE_LIMIT_CLIENT", "1000000/60"),
    ];
    let edge = Edge::start_retrying(&origin, &upstream, &vars);
    (origin, upstream, edge)
}

fn refused_within(edge: &Edge, token: &str, limit: Duration) -> bool {
    let started = Instant::now();
    loop {
        match edge_status(edge, token) {
            401 => return true,
            200 => {}
            s => panic!("unexpected edge status {s}"),
        }
        if started.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn revocations(edge: &Edge, iss: &str) -> Value {
    let h = edge.health().expect("health details");
    h["issuers"]
        .as_array()
        .expect("issuers")
        .iter()
        .find(|i| i["issuer"] == iss)
        .expect("the issuer")["revocations"]
        .clone()
}

fn counter(r: &Value, name: &str) -> u64 {
    r["replica"][name].as_u64().unwrap_or_default()
}

/// Every way a client might reach a replica's `PUT`/`GET` (the internal
/// URL's path, doubled and encoded slashes, the replica's own headers, the
/// ingest route with other methods and spellings) plants nothing: a
/// planted version 99 would make the replica refuse the genuine version 3
/// (409) and serve a document the isolate refuses. Afterwards version 3 still
/// arrives through the replica within N + 1 s and nothing was refused; and
/// headers naming a region (`cf-*`, Miniflare's `MF-CF-Blob`) do not move
/// the isolate to another replica.
#[test]
fn no_client_request_reaches_or_steers_a_replica() {
    let issuer = Issuer::start();
    let (_origin, _upstream, edge) = issuer_edge(&issuer, "3600");
    let victim = issuer.token(&edge.url, "victim");
    let second = issuer.token(&edge.url, "second");
    assert_eq!(edge_status(&edge, &victim), 200);
    assert_eq!(ingest(&edge, &issuer.document(2, now(), &["victim"])), 204);
    assert!(
        refused_within(&edge, &victim, Duration::from_secs(N + 2)),
        "version 2 never arrived through the replica"
    );
    let before = revocations(&edge, &issuer.url);
    let region = before["replica"]["region"].clone();
    assert!(region.is_string(), "{before}");

    let garbage = "planted.by.attacker";
    let paths = [
        "/doc",
        "//doc",
        "/revocation-replica/doc",
        "//revocation-replica/doc",
        "/__replica",
        "/__replica/doc",
        "/.gatehouse/replica",
        "/.gatehouse/replicas/weur",
        "//.gatehouse/revocations",
        "/.gatehouse//revocations",
        "/.gatehouse/revocations/",
        "/.gatehouse%2Frevocations",
        "/%2Egatehouse/revocations",
        "/.GATEHOUSE/revocations",
        "/.gatehouse/revocations?replica=weur",
    ];
    let client = http();
    for path in paths {
        for method in ["PUT", "POST", "GET"] {
            let status = client
                .request(
                    reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
                    format!("{}{path}", edge.url),
                )
                .header("gatehouse-iss", issuer.url.as_str())
                .header("gatehouse-version", "99")
                .header("gatehouse-have", "2")
                .header("host", "revocation-replica")
                .header("cf-ipcontinent", "OC")
                .header("cf-ipcountry", "AU")
                .header(
                    "MF-CF-Blob",
                    r#"{"continent":"OC","country":"AU","longitude":"151.2"}"#,
                )
                .body(garbage)
                .send()
                .expect("request")
                .status()
                .as_u16();
            assert!(
                status != 204 && status != 409 && status != 304,
                "{method} {path} answered like a replica ({status})"
            );
        }
    }
    // The genuine version 3 still reaches the isolate through the replica.
    assert_eq!(
        ingest(&edge, &issuer.document(3, now(), &["victim", "second"])),
        204
    );
    assert!(
        refused_within(&edge, &second, Duration::from_secs(N + 2)),
        "version 3 did not arrive through the replica after the attempts"
    );
    let after = revocations(&edge, &issuer.url);
    assert_eq!(after["version"], 3, "{after}");
    assert_eq!(
        counter(&after, "refused"),
        0,
        "something was planted: {after}"
    );
    assert_eq!(
        after["replica"]["region"], region,
        "the region moved: {after}"
    );
}

/// The public health answer is `{"status":"ok"}` and nothing else, whatever
/// the credentials offered (none, a wrong token, a prefix of the right one,
/// the right one with another scheme).
#[test]
fn the_public_health_answer_tells_nothing_of_the_replicas() {
    let issuer = Issuer::start();
    let (_origin, _upstream, edge) = issuer_edge(&issuer, "3600");
    let token = issuer.token(&edge.url, "someone");
    assert_eq!(edge_status(&edge, &token), 200);
    let details = edge.health().expect("details with the admin token");
    assert!(
        details["issuers"][0]["revocations"]["replica"].is_object(),
        "{details}"
    );
    let right = crate::harness::HEALTH_TOKEN;
    let offered = [
        None,
        Some("Bearer wrong".to_owned()),
        Some(format!("Bearer {}", &right[..right.len() - 1])),
        Some(format!("Basic {right}")),
        Some(format!("Bearer {right}x")),
        Some(right.to_owned()),
    ];
    for auth in offered {
        let mut req = http().get(format!("{}/.gatehouse/health", edge.url));
        if let Some(a) = &auth {
            req = req.header("authorization", a.as_str());
        }
        let resp = req.send().expect("health");
        assert_eq!(resp.status(), 200);
        let body = resp.text().expect("body");
        assert_eq!(body, r#"{"status":"ok"}"#, "with {auth:?}");
    }
}

/// Equivocation: two genuine documents with the same version but different
/// entries. The isolate took the first (revoking the victim) from the
/// replica; KV then shows the other one (an operator's `wrangler kv key
/// put`, or a second writer). Equal is not newer: the isolate keeps the
/// list it holds, through several KV re-reads, and the victim stays refused.
#[test]
fn an_equal_version_with_other_content_does_not_replace_the_held_list() {
    let issuer = Issuer::start();
    let (_origin, _upstream, edge) = issuer_edge(&issuer, "1");
    let victim = issuer.token(&edge.url, "victim");
    assert_eq!(edge_status(&edge, &victim), 200);
    assert_eq!(ingest(&edge, &issuer.document(5, now(), &["victim"])), 204);
    assert!(
        refused_within(&edge, &victim, Duration::from_secs(N + 2)),
        "version 5 never arrived"
    );
    edge.kv_put(
        "REVOCATIONS",
        &format!("revocations/{}", issuer.url),
        &issuer.document(5, now(), &["nobody"]),
    );
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        assert_eq!(
            edge_status(&edge, &victim),
            401,
            "the equal version replaced the list"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = revocations(&edge, &issuer.url);
    assert_eq!(r["version"], 5, "{r}");
}

/// A document near the 8 MiB ingest cap (any client can grow the list by
/// revoking its own tokens: `jti` entries) still reaches the isolate through
/// the replica within N + 1 s, the request that reads it included.
#[test]
fn a_document_near_the_size_cap_still_travels_the_fast_path() {
    let issuer = Issuer::start();
    let (_origin, _upstream, edge) = issuer_edge(&issuer, "3600");
    let victim = issuer.token(&edge.url, "victim");
    assert_eq!(edge_status(&edge, &victim), 200);
    let padding: Vec<String> = (0..34_000).map(|i| format!("{i:0>100}")).collect();
    let mut subs: Vec<&str> = padding.iter().map(String::as_str).collect();
    subs.push("victim");
    let doc = issuer.document(2, now(), &subs);
    println!("document: {} bytes", doc.len());
    assert!(doc.len() > 7 * 1024 * 1024 && doc.len() < 8 * 1024 * 1024);
    assert_eq!(ingest(&edge, &doc), 204);
    let started = Instant::now();
    let arrived = refused_within(&edge, &victim, Duration::from_secs(N + 1));
    let r = revocations(&edge, &issuer.url);
    println!("after {:?}: {r}", started.elapsed());
    assert!(arrived, "not refused within N + 1 s: {r}");
    assert!(counter(&r, "taken") >= 1, "{r}");
}
