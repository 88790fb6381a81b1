//! Issue 21.5: a new isolate starts the caller's limiter objects while the
//! token is verified (a warm-up read before the signature is checked). The
//! warm-up is driven by an unverified token, so these are its attacks: it
//! must never charge anyone (a flood of forged tokens naming a victim leaves
//! the victim's budget whole), must not loosen a limit (a caller at quota 1
//! is refused on its second request, the first of a new isolate included),
//! and `RATE_LIMIT_FAIL` decides as before when the limiter is unreachable.
//! Every test starts its own `wrangler dev`, so its first request is a new
//! isolate's.

use crate::harness::{http, now, serve_jwks, unique, Edge, Origin, Upstream};
use gatehouse_common::testkit::signer::TestKey;
use serde_json::{json, Value};

const KID: &str = "cold-k1";

/// An issuer run by the test (its JWKS served by a thread) and an edge
/// trusting it, with `vars` added and `edit` applied to `wrangler.toml`
/// (also used by `review21e`).
pub(crate) struct Setup {
    pub(crate) issuer: String,
    pub(crate) key: TestKey,
    pub(crate) edge: Edge,
    _upstream: Upstream,
    _origin: Origin,
}

impl Setup {
    pub(crate) fn start(vars: &[(&str, &str)], edit: &dyn Fn(&mut toml::Table)) -> Self {
        Self::start_with_jwks(vars, None, edit)
    }

    /// Like [`Setup::start`], the issuer's keys at `jwks_url` if given.
    pub(crate) fn start_with_jwks(
        vars: &[(&str, &str)],
        jwks_url: Option<String>,
        edit: &dyn Fn(&mut toml::Table),
    ) -> Self {
        let key = TestKey::es256(&unique("cold-issuer"));
        let mut jwk = key.public_jwk_json();
        jwk["kid"] = KID.into();
        let issuer = serve_jwks(json!({ "keys": [jwk] }).to_string());
        let jwks_url = jwks_url.unwrap_or_else(|| format!("{issuer}/jwks.json"));
        let trusted = json!([{
            "issuer": issuer,
            "jwks_url": jwks_url,
            "audiences": ["{EDGE}"],
            "algorithms": ["ES256"],
        }])
        .to_string();
        let origin = Origin::start();
        let upstream = Upstream::start();
        let mut all: Vec<(&str, &str)> = vec![("TRUSTED_ISSUERS", trusted.as_str())];
        all.extend_from_slice(vars);
        let edge = Edge::start_edited(crate::harness::free_port(), &origin, &upstream, &all, edit);
        Self {
            issuer,
            key,
            edge,
            _upstream: upstream,
            _origin: origin,
        }
    }

    /// A token for `sub` of `client_id`, signed by `key` (the issuer's own
    /// key, or another one for a forgery naming the same caller).
    pub(crate) fn token(&self, key: &TestKey, sub: &str, client_id: &str) -> String {
        let t = now();
        let claims = json!({
            "iss": self.issuer, "aud": self.edge.url, "sub": sub, "client_id": client_id,
            "jti": unique("jti"), "iat": t, "nbf": t, "exp": t + 600, "scope": "read",
        });
        key.sign(
            &json!({"alg": "ES256", "typ": "at+jwt", "kid": KID}),
            &claims,
        )
    }

    /// `GET /cold` with `Bearer token`: status and body.
    pub(crate) fn call(&self, token: &str) -> (u16, Value) {
        let resp = http()
            .get(format!("{}/cold", self.edge.url))
            .header("authorization", format!("Bearer {token}"))
            .send()
            .expect("the edge answers");
        let status = resp.status().as_u16();
        let text = resp.text().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

pub(crate) fn unchanged(_: &mut toml::Table) {}

/// Without the `RATE_LIMITER` binding the limiter is unreachable (for the
/// warm-up and the charge alike).
fn no_rate_limiter(cfg: &mut toml::Table) {
    let bindings = cfg
        .get_mut("durable_objects")
        .and_then(|d| d.get_mut("bindings"))
        .and_then(toml::Value::as_array_mut)
        .expect("wrangler.toml binds Durable Objects");
    let before = bindings.len();
    bindings.retain(|b| b.get("name").and_then(toml::Value::as_str) != Some("RATE_LIMITER"));
    assert_eq!(
        bindings.len() + 1,
        before,
        "wrangler.toml binds RATE_LIMITER"
    );
}

/// The warm-up charges nothing and loosens nothing: at quota 1 the first
/// request of a new isolate is admitted and the next refused, and a second
/// caller's own first request (a key the isolate has not met) is admitted
/// beside it.
#[test]
fn a_caller_at_quota_one_is_refused_on_its_second_request_of_a_new_isolate() {
    let s = Setup::start(
        &[("RATE_LIMIT_CLIENT", "1/60"), ("RATE_LIMIT_IP", "1000/60")],
        &unchanged,
    );
    let alice = s.token(&s.key, "alice", "app");
    let (first, body) = s.call(&alice);
    assert_eq!(first, 200, "the first request is admitted: {body}");
    let (second, body) = s.call(&alice);
    assert_eq!(second, 429, "quota 1: the second is refused: {body}");
    // A new token of the same caller is the same key: still refused.
    let again = s.token(&s.key, "alice", "app");
    assert_eq!(s.call(&again).0, 429);
    let bob = s.token(&s.key, "bob", "app");
    assert_eq!(s.call(&bob).0, 200, "another caller's own budget");
    assert_eq!(s.call(&bob).0, 429);
}

/// A forged token (right claims, wrong signature) drives a warm-up of the
/// caller it names, before the signature is checked: a flood of them must
/// not charge that caller's budget, nor its client's.
#[test]
fn forged_tokens_naming_a_victim_never_charge_its_budget() {
    let s = Setup::start(
        &[
            ("RATE_LIMIT_CLIENT", "1/60"),
            ("RATE_LIMIT_CLIENT_TOTAL", "2/60"),
            ("RATE_LIMIT_IP", "1000/60"),
        ],
        &unchanged,
    );
    let forger = TestKey::es256(&unique("forger"));
    for i in 0..12 {
        let forged = s.token(&forger, "victim", "victim-app");
        let (status, body) = s.call(&forged);
        assert_eq!(status, 401, "forged token {i} is refused: {body}");
        assert_eq!(body["error"], "invalid_token", "{body}");
    }
    let victim = s.token(&s.key, "victim", "victim-app");
    let (status, body) = s.call(&victim);
    assert_eq!(
        status, 200,
        "the victim's budget is whole after the flood: {body}"
    );
    assert_eq!(s.call(&victim).0, 429, "and its limit still holds");
    // The client's shared budget (2) was not charged by the flood either:
    // one more subject of the client is admitted, the next refused.
    let other = s.token(&s.key, "other", "victim-app");
    assert_eq!(s.call(&other).0, 200, "client_total: one left");
    let third = s.token(&s.key, "third", "victim-app");
    assert_eq!(s.call(&third).0, 429, "client_total: spent");
}

/// A forged token's failed attempt is still charged to the address: once
/// the address is over its budget it is refused (429), forged tokens naming
/// new callers included.
#[test]
fn forged_tokens_naming_new_callers_are_still_charged_to_the_address() {
    let s = Setup::start(
        &[("RATE_LIMIT_CLIENT", "100/60"), ("RATE_LIMIT_IP", "3/60")],
        &unchanged,
    );
    let forger = TestKey::es256(&unique("forger"));
    let statuses: Vec<u16> = (0..5)
        .map(|i| s.call(&s.token(&forger, &format!("caller-{i}"), "app")).0)
        .collect();
    assert_eq!(statuses, [401, 401, 401, 429, 429]);
}

/// `RATE_LIMIT_FAIL=closed` with the limiter unreachable refuses valid
/// callers with 503 (the warm-up's failure changes nothing), as does a
/// failed attempt; `open` admits.
#[test]
fn an_unreachable_limiter_still_fails_closed_or_open_as_configured() {
    let closed = Setup::start(&[("RATE_LIMIT_FAIL", "closed")], &no_rate_limiter);
    let t = closed.token(&closed.key, "alice", "app");
    for _ in 0..2 {
        let (status, body) = closed.call(&t);
        assert_eq!(status, 503, "closed: {body}");
        assert_eq!(
            body["error_description"], "the rate limiter is unavailable",
            "{body}"
        );
    }
    let forged = closed.token(&TestKey::es256(&unique("forger")), "alice", "app");
    assert_eq!(closed.call(&forged).0, 503, "a failed attempt too");
    drop(closed);

    let open = Setup::start(&[("RATE_LIMIT_FAIL", "open")], &no_rate_limiter);
    let t = open.token(&open.key, "alice", "app");
    for _ in 0..2 {
        let (status, body) = open.call(&t);
        assert_eq!(status, 200, "open: {body}");
    }
}
