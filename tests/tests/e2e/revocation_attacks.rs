//! Attacks on revocation and key retirement through the real binaries:
//! rolling the edge's list back with an older genuine document after the
//! Cloudflare-KV pusher wrote a newer one, wedging it with a version far in
//! the future, holding the origin's pushes back by flooding the ingest route
//! from its address, escaping an actor's revocation through token exchange,
//! and recovering from a leaked signing key (`keys retire KID --now`).

use crate::harness::{http, now, serve_jwks, Edge, Origin, Stack, Upstream, ADMIN_TOKEN};
use gatehouse_common::b64;
use gatehouse_common::revocation::{
    RevocationDocument, RevocationEntry, RevocationKind, REVOCATIONS_TYP,
};
use gatehouse_common::testkit::signer::TestKey;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const KID: &str = "rv-k1";

/// An issuer whose JWKS a thread here serves, so the test signs genuine
/// revocation documents and tokens (as the origin's pusher would).
pub(crate) struct Issuer {
    pub(crate) url: String,
    key: TestKey,
}

impl Issuer {
    pub(crate) fn start() -> Self {
        let key = TestKey::es256("gatehouse-e2e-revocation-attacks");
        let mut jwk = key.public_jwk_json();
        jwk["kid"] = KID.into();
        jwk["alg"] = "ES256".into();
        let body = json!({ "keys": [jwk] }).to_string();
        let url = serve_jwks(body);
        Self { url, key }
    }

    pub(crate) fn trusted_issuers_var(&self) -> String {
        json!([{
            "issuer": self.url,
            "jwks_url": format!("{}/jwks.json", self.url),
            "audiences": ["{EDGE}"],
            "algorithms": ["ES256"],
        }])
        .to_string()
    }

    pub(crate) fn token(&self, aud: &str, sub: &str) -> String {
        let t = now();
        self.key.sign(
            &json!({"alg": "ES256", "typ": "at+jwt", "kid": KID}),
            &json!({
                "iss": self.url, "aud": aud, "sub": sub, "client_id": "c",
                "jti": format!("{sub}-{t}"), "iat": t - 5, "nbf": t - 5, "exp": t + 300,
                "scope": "read",
            }),
        )
    }

    /// A genuine document issued at `iat`, revoking the subjects `subs`.
    pub(crate) fn document(&self, version: u64, iat: i64, subs: &[&str]) -> String {
        let doc = RevocationDocument {
            iss: self.url.clone(),
            iat,
            version,
            entries: subs
                .iter()
                .map(|s| RevocationEntry {
                    kind: RevocationKind::Sub,
                    value: (*s).to_owned(),
                    revoked_at: now(),
                    until: now() + 3600,
                })
                .collect(),
        };
        self.key.sign(
            &json!({"alg": "ES256", "typ": REVOCATIONS_TYP, "kid": KID}),
            &doc.to_claims(),
        )
    }
}

pub(crate) fn ingest(edge: &Edge, body: &str) -> u16 {
    http()
        .post(format!("{}/.gatehouse/revocations", edge.url))
        .body(body.to_owned())
        .send()
        .unwrap()
        .status()
        .as_u16()
}

pub(crate) fn edge_status(edge: &Edge, token: &str) -> u16 {
    http()
        .get(format!("{}/orders/7", edge.url))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .unwrap()
        .status()
        .as_u16()
}

fn version_of(doc: &str) -> u64 {
    let payload = doc.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&b64::decode(payload).unwrap()).unwrap();
    claims["version"].as_u64().unwrap()
}

fn header_of(jwt: &str) -> Value {
    serde_json::from_slice(&b64::decode(jwt.split('.').next().unwrap()).unwrap()).unwrap()
}

/// Waits (up to `secs`) until `f` holds; panics with `what` otherwise.
fn until(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let started = Instant::now();
    while !f() {
        assert!(started.elapsed() < Duration::from_secs(secs), "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn issuer_edge(issuer: &Issuer) -> (Origin, Upstream, Edge) {
    let origin = Origin::start();
    let upstream = Upstream::start();
    let edge = Edge::start_retrying(
        &origin,
        &upstream,
        &[
            ("TRUSTED_ISSUERS", &issuer.trusted_issuers_var()),
            ("REVOCATION_TTL_SECS", "1"),
            ("RATE_LIMIT_IP", "100000/60"),
            ("RATE_LIMIT_CLIENT", "100000/60"),
        ],
    );
    (origin, upstream, edge)
}

/// Issue 16.6. In Cloudflare-KV push mode the origin writes KV directly,
/// past the ingest store, whose own floor stayed at what it last took: an
/// older genuine document posted to the ingest route rolled the list back
/// (un-revoking a subject). The store's floor now includes KV's version.
#[test]
fn an_older_genuine_document_cannot_roll_back_what_the_cloudflare_pusher_wrote() {
    let issuer = Issuer::start();
    let (_origin, _upstream, edge) = issuer_edge(&issuer);
    let kv_key = format!("revocations/{}", issuer.url);
    let victim = issuer.token(&edge.url, "victim");
    assert_eq!(edge_status(&edge, &victim), 200);

    // Once through the ingest route (the store records version 1)...
    assert_eq!(ingest(&edge, &issuer.document(1, now(), &["early"])), 204);
    // ...then the origin switched to Cloudflare mode: version 3, revoking
    // the victim, written straight into KV.
    edge.kv_put(
        "REVOCATIONS",
        &kv_key,
        &issuer.document(3, now(), &["early", "victim"]),
    );

    // At once (before any isolate re-read KV), the attacker posts the
    // genuine version 2, which never revoked the victim.
    let status = ingest(&edge, &issuer.document(2, now(), &["early"]));
    let kv = edge
        .kv_get("REVOCATIONS", &kv_key)
        .expect("a document in KV");
    assert_eq!(
        (status, version_of(&kv)),
        (409, 3),
        "an older genuine document was taken: KV rolled back"
    );
    until(15, "the victim is not revoked at the edge", || {
        edge_status(&edge, &victim) == 401
    });
    // The next genuine document is taken.
    assert_eq!(
        ingest(&edge, &issuer.document(4, now(), &["early", "victim"])),
        204
    );
}

/// Issue 16.6, the other half: a document signed with a leaked key and
/// version `u64::MAX` (or far ahead of the clock) raised the floor past
/// anything the origin would ever send, wedging every later push; and a
/// genuine document kept from long ago could be replayed whenever the
/// store's floor was stale. Versions ahead of the clock and documents
/// older than the ingest window are refused.
#[test]
fn a_version_ahead_of_the_clock_or_a_stale_replay_is_refused() {
    let issuer = Issuer::start();
    let (_origin, _upstream, edge) = issuer_edge(&issuer);
    let kv_key = format!("revocations/{}", issuer.url);
    let ahead = u64::try_from((now() + 3_600) * 1_000).unwrap();
    for (name, version) in [("u64::MAX", u64::MAX), ("an hour ahead", ahead)] {
        let status = ingest(&edge, &issuer.document(version, now(), &["x"]));
        assert_eq!(status, 400, "version {name} was taken");
    }
    // A genuine document signed an hour ago, replayed.
    let stale = issuer.document(5, now() - 3_600, &[]);
    assert_eq!(ingest(&edge, &stale), 409, "a stale document was taken");
    assert!(edge.kv_get("REVOCATIONS", &kv_key).is_none());
    // Not wedged: the origin's next document (milliseconds since the epoch) is taken.
    let current = u64::try_from(now() * 1_000).unwrap();
    assert_eq!(ingest(&edge, &issuer.document(current, now(), &["x"])), 204);
}

/// Issue 17.12. The ingest route charged the caller's address before
/// checking the document, so garbage posted from an address the origin
/// shares (here 127.0.0.1) made the origin's valid pushes answer 429 and
/// held a revocation back for the whole window. Only refused documents are
/// charged now.
#[test]
fn garbage_from_the_pushers_address_cannot_hold_back_a_real_revocation() {
    let stack = Stack::start_linked(&[], &[("RATE_LIMIT_INGEST", "3/600")]);
    let client = stack.client("read");
    let token = stack.origin.client_credentials(&client, &[])["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(edge_status(&stack.edge, &token), 200);
    let statuses: Vec<u16> = (0..10).map(|_| ingest(&stack.edge, "garbage")).collect();
    assert!(
        statuses.contains(&429),
        "the flood was not limited: {statuses:?}"
    );

    admin_revoke(&stack.origin, "client_id", &client.id);
    let started = Instant::now();
    while edge_status(&stack.edge, &token) != 401 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the revocation never reached the edge; origin log:\n{}",
            stack.origin.proc.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn admin_revoke(origin: &Origin, kind: &str, value: &str) {
    let r = http()
        .post(format!("{}/admin/revocations", origin.url))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"kind": kind, "value": value}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().unwrap_or_default());
}

fn token_of(origin: &Origin, client: &crate::harness::ClientCreds) -> String {
    origin.client_credentials(client, &[])["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Issue 17.18. A token obtained by token exchange names its actor only in
/// `act`; revoking the actor (here its client) did not reach it, at the
/// edge or at the origin. The check now walks the `act` chain.
#[test]
fn revoking_an_actor_reaches_tokens_it_obtained_by_exchange() {
    let stack = Stack::start_linked(&[], &[]);
    let aud = stack.edge.url.clone();
    let svc = stack.origin.create_client("svc", "read", &aud, &[]);
    let gateway = stack.origin.create_client(
        "gateway",
        "read",
        &aud,
        &[
            "--grant",
            "client_credentials",
            "--grant",
            "urn:ietf:params:oauth:grant-type:token-exchange",
            // It must serve the subject token's audience (merged r1's rule).
            "--serves",
            &aud,
        ],
    );
    let subject = token_of(&stack.origin, &svc);
    // The actor token must be the exchanging client's own (merged r1's rule).
    let actor = token_of(&stack.origin, &gateway);
    let r = http()
        .post(format!("{}/token", stack.origin.url))
        .basic_auth(&gateway.id, gateway.secret.as_deref())
        .form(&[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", subject.as_str()),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
            ("actor_token", actor.as_str()),
            (
                "actor_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
            ("audience", aud.as_str()),
        ])
        .send()
        .unwrap();
    let t: Value = r.json().unwrap();
    let exchanged = t["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("exchange refused: {t}"))
        .to_owned();
    let claims: Value =
        serde_json::from_slice(&b64::decode(exchanged.split('.').nth(1).unwrap()).unwrap())
            .unwrap();
    assert_eq!(claims["act"]["sub"], gateway.id.as_str(), "{claims}");
    assert_ne!(claims["sub"], gateway.id.as_str(), "{claims}");
    assert_eq!(edge_status(&stack.edge, &exchanged), 200);

    // Revoking the actor as a subject: only `act.sub` names it.
    admin_revoke(&stack.origin, "sub", &gateway.id);
    until(
        20,
        "the edge still accepts a token the revoked actor obtained",
        || edge_status(&stack.edge, &exchanged) == 401,
    );
    let r = http()
        .post(format!("{}/introspect", stack.origin.url))
        .basic_auth(&gateway.id, gateway.secret.as_deref())
        .form(&[("token", exchanged.as_str())])
        .send()
        .unwrap();
    let body: Value = r.json().unwrap();
    assert_eq!(body["active"], json!(false), "origin: {body}");
    // Nothing else was caught: the subject's own token still works.
    assert_eq!(edge_status(&stack.edge, &subject), 200);
}

fn jwks_kids(origin: &Origin) -> Vec<String> {
    let jwks: Value = http()
        .get(format!("{}/.well-known/jwks.json", origin.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// Issue 16.11. After a signing key leaked there was no way to stop
/// publishing it before its scheduled removal, so tokens forged with it were
/// accepted for as long. `keys retire KID --now` (and the admin API's
/// `POST /admin/keys/{kid}/retire?now=true`) unpublishes it at once; a new
/// key signs; the edge refuses the key's tokens once its JWKS cache expires
/// (here its TTL is 1-2 s: `JWKS_MIN_TTL_SECS`/`JWKS_MAX_TTL_SECS`).
#[test]
fn a_retired_leaked_key_leaves_the_jwks_and_its_tokens_die_at_the_edge() {
    let stack = Stack::start_linked(
        &[("GATEHOUSE_KEY_CHECK_SECS", "1")],
        &[("JWKS_MIN_TTL_SECS", "1"), ("JWKS_MAX_TTL_SECS", "2")],
    );
    let client = stack.client("read");
    let leaked_token = token_of(&stack.origin, &client);
    let leaked = header_of(&leaked_token)["kid"].as_str().unwrap().to_owned();
    assert_eq!(edge_status(&stack.edge, &leaked_token), 200);

    // The CLI (the running origin picks it up within GATEHOUSE_KEY_CHECK_SECS).
    let out: Value = serde_json::from_str(
        stack
            .origin
            .cli(&["keys", "retire", &leaked, "--now"])
            .trim(),
    )
    .unwrap();
    assert_eq!(out["kid"], leaked.as_str(), "{out}");
    assert!(out["removed_at"].is_i64(), "{out}");
    assert!(out["created"].is_string(), "a new signer: {out}");
    assert!(
        out["warning"].as_str().unwrap().contains("refused"),
        "{out}"
    );
    until(10, "the retired key is still published", || {
        !jwks_kids(&stack.origin).contains(&leaked)
    });
    let fresh = token_of(&stack.origin, &client);
    let second = header_of(&fresh)["kid"].as_str().unwrap().to_owned();
    assert_ne!(second, leaked, "the retired key signed again");
    until(15, "the edge still accepts the retired key's token", || {
        edge_status(&stack.edge, &leaked_token) == 401
    });
    assert_eq!(edge_status(&stack.edge, &fresh), 200);

    // The admin API twin acts at once on this server.
    let retire = |kid: &str| {
        http()
            .post(format!(
                "{}/admin/keys/{kid}/retire?now=true",
                stack.origin.url
            ))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .unwrap()
    };
    assert_eq!(retire("no-such-kid").status(), 404);
    let r = retire(&second);
    assert_eq!(r.status(), 200);
    assert!(!jwks_kids(&stack.origin).contains(&second));
    let third = token_of(&stack.origin, &client);
    assert_ne!(header_of(&third)["kid"].as_str().unwrap(), second);
    until(15, "the edge still accepts the second key's token", || {
        edge_status(&stack.edge, &fresh) == 401
    });
    assert_eq!(edge_status(&stack.edge, &third), 200);
}

/// Review of 3c24e0c: once the ingest route charged only refused documents,
/// a document naming a key the issuer's JWKS lacks answered 503 ("not in
/// the JWKS yet", an outage here) and was never charged: a flood of them,
/// each read up to 8 MiB and each asking for a JWKS refetch, had no limit
/// at all. An unknown key is what the caller sent, so it is charged (the
/// answer stays 503, so the origin's pusher retries after a rotation).
#[test]
fn a_flood_of_documents_with_unknown_keys_is_charged_to_the_caller() {
    let stack = Stack::start_linked(&[], &[("RATE_LIMIT_INGEST", "3/600")]);
    let key = TestKey::es256("gatehouse-e2e-unknown-kid");
    let t = now();
    let statuses: Vec<u16> = (0..10)
        .map(|n| {
            let doc = RevocationDocument {
                iss: stack.origin.url.clone(),
                iat: t,
                version: (t as u64) * 1000 + n,
                entries: Vec::new(),
            };
            let raw = key.sign(
                &json!({"alg": "ES256", "typ": REVOCATIONS_TYP, "kid": format!("nobody-{n}")}),
                &doc.to_claims(),
            );
            ingest(&stack.edge, &raw)
        })
        .collect();
    assert!(
        statuses.contains(&429),
        "documents with unknown keys were never limited: {statuses:?}"
    );
}
