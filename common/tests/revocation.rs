//! The signed, versioned revocation document: encode → sign → parse → verify →
//! accept, lookups by jti/sid/sub/client_id, expiry of entries, rollback refusal.
#![cfg(all(feature = "testkit", not(target_arch = "wasm32")))]
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use gatehouse_common::access_token::AccessToken;
use gatehouse_common::provider::{RustCrypto, SignatureVerifier};
use gatehouse_common::revocation::*;
use gatehouse_common::testkit::fixture::{self, NOW};
use gatehouse_common::UnixTime;
use serde_json::json;

fn entry(kind: RevocationKind, value: &str, revoked_at: i64, until: i64) -> RevocationEntry {
    RevocationEntry {
        kind,
        value: value.into(),
        revoked_at,
        until,
    }
}

fn doc(version: u64, entries: Vec<RevocationEntry>) -> RevocationDocument {
    RevocationDocument {
        iss: fixture::ISSUER.into(),
        iat: NOW,
        version,
        entries,
    }
}

fn sign(d: &RevocationDocument) -> String {
    let k = fixture::issuer_key();
    k.sign(
        &RevocationDocument::header(k.alg(), fixture::KID),
        &d.to_claims(),
    )
}

fn decode(raw: &str, held: Option<u64>, now: i64) -> Result<RevocationList, RevocationError> {
    let policy = RevocationPolicy::new(fixture::ISSUER);
    let keys = fixture::jwks();
    let u = UntrustedRevocationDocument::parse(raw, &policy)?;
    let key = keys.select(u.kid(), u.header_alg()).unwrap();
    let ok = RustCrypto.verify(key.jwk, key.alg, u.signing_input(), u.signature());
    u.accept(ok, &policy, held, UnixTime(now))
}

fn token(claims: serde_json::Value) -> AccessToken {
    fixture::verify_token(&fixture::mint(&claims), &RustCrypto, NOW).unwrap()
}

#[test]
fn encode_decode_round_trip() {
    let d = doc(
        7,
        vec![
            entry(RevocationKind::Jti, "a", NOW - 10, NOW + 300),
            entry(RevocationKind::ClientId, "c", NOW - 5, NOW + 600),
        ],
    );
    let claims = fixture::map(&d.to_claims());
    assert_eq!(RevocationDocument::from_claims(&claims).unwrap(), d);
    let list = decode(&sign(&d), None, NOW).unwrap();
    assert_eq!(list.version(), 7);
    assert_eq!(list.len(), 2);
}

#[test]
fn lookups_by_each_kind() {
    let base = fixture::claims();
    let t = token(base.clone());
    let by = |kind, value: &str| {
        decode(
            &sign(&doc(1, vec![entry(kind, value, NOW, NOW + 300)])),
            None,
            NOW,
        )
        .unwrap()
    };
    for (kind, value) in [
        (RevocationKind::Jti, "tok-1"),
        (RevocationKind::Sid, "grant-1"),
        (RevocationKind::Sub, "user-1"),
        (RevocationKind::ClientId, "client-1"),
    ] {
        let hit = by(kind, value).check(&t, UnixTime(NOW)).unwrap();
        assert_eq!(hit.kind, kind);
        assert_eq!(by(kind, "someone-else").check(&t, UnixTime(NOW)), None);
    }
}

#[test]
fn sub_and_client_revocations_reach_only_older_tokens() {
    let list = decode(
        &sign(&doc(
            1,
            vec![entry(RevocationKind::Sub, "user-1", NOW - 1, NOW + 300)],
        )),
        None,
        NOW,
    )
    .unwrap();
    let newer = token(fixture::claims());
    assert_eq!(
        list.check(&newer, UnixTime(NOW)),
        None,
        "issued after the revocation"
    );
    let older = token(fixture::set(fixture::claims(), "iat", json!(NOW - 2)));
    assert!(list.check(&older, UnixTime(NOW)).is_some());
    // A jti revocation applies regardless of iat.
    let list = decode(
        &sign(&doc(
            1,
            vec![entry(RevocationKind::Jti, "tok-1", NOW - 100, NOW + 300)],
        )),
        None,
        NOW,
    )
    .unwrap();
    assert!(list.check(&newer, UnixTime(NOW)).is_some());
}

#[test]
fn entries_are_dropped_after_until() {
    let d = doc(
        1,
        vec![
            entry(RevocationKind::Jti, "gone", NOW - 100, NOW - 1),
            entry(RevocationKind::Jti, "tok-1", NOW, NOW + 10),
        ],
    );
    let mut list = decode(&sign(&d), None, NOW).unwrap();
    assert_eq!(list.len(), 1);
    let t = token(fixture::claims());
    assert!(list.check(&t, UnixTime(NOW + 9)).is_some());
    assert_eq!(list.check(&t, UnixTime(NOW + 10)), None);
    list.prune(UnixTime(NOW + 10));
    assert!(list.is_empty());
}

#[test]
fn lower_versions_are_refused_and_equal_ones_accepted() {
    let raw = sign(&doc(5, vec![]));
    assert_eq!(
        decode(&raw, Some(6), NOW).unwrap_err(),
        RevocationError::Rollback {
            held: 6,
            offered: 5
        }
    );
    assert_eq!(decode(&raw, Some(5), NOW).unwrap().version(), 5);
    assert_eq!(decode(&raw, Some(4), NOW).unwrap().version(), 5);
}

#[test]
fn forged_wrong_typ_and_wrong_issuer_documents_are_refused() {
    let d = doc(1, vec![]);
    let forger = gatehouse_common::testkit::signer::TestKey::es256("forger");
    let raw = forger.sign(
        &RevocationDocument::header(forger.alg(), fixture::KID),
        &d.to_claims(),
    );
    assert_eq!(
        decode(&raw, None, NOW).unwrap_err(),
        RevocationError::InvalidSignature
    );
    let raw = fixture::issuer_key().sign(&fixture::header(), &d.to_claims());
    assert_eq!(
        decode(&raw, None, NOW).unwrap_err(),
        RevocationError::WrongType
    );
    let mut other = d.clone();
    other.iss = "https://evil.example".into();
    assert_eq!(
        decode(&sign(&other), None, NOW).unwrap_err(),
        RevocationError::UntrustedIssuer
    );
    let bad = fixture::set(
        d.to_claims(),
        "entries",
        json!([{"kind": "email", "value": "x", "revoked_at": 1, "until": 2}]),
    );
    let raw = fixture::issuer_key().sign(
        &RevocationDocument::header(gatehouse_common::alg::Algorithm::Es256, fixture::KID),
        &bad,
    );
    assert_eq!(
        decode(&raw, None, NOW).unwrap_err(),
        RevocationError::InvalidEntry { index: 0 }
    );
    let bad = fixture::set(d.to_claims(), "version", json!(-1));
    let raw = fixture::issuer_key().sign(
        &RevocationDocument::header(gatehouse_common::alg::Algorithm::Es256, fixture::KID),
        &bad,
    );
    assert!(matches!(
        decode(&raw, None, NOW).unwrap_err(),
        RevocationError::Claim(_)
    ));
    let future = RevocationDocument {
        iat: NOW + 3600,
        ..d
    };
    assert_eq!(
        decode(&sign(&future), None, NOW).unwrap_err(),
        RevocationError::IssuedInFuture
    );
}

/// Issue 17.18: a token obtained by token exchange carries its actor in
/// `act` (RFC 8693 §4.1), nested for a chain of actors. Revoking the actor
/// (its `sub`, `client_id` or `sid`) must reach such tokens too, at every
/// depth of the chain, and only those issued up to the revocation.
#[test]
fn revoking_an_actor_reaches_the_tokens_it_obtained_by_exchange() {
    let exchanged = token(fixture::set(
        fixture::claims(),
        "act",
        json!({
            "sub": "actor-svc", "client_id": "actor-client",
            "act": { "sub": "first-actor", "client_id": "first-client", "sid": "first-sid" }
        }),
    ));
    let list_of = |kind, value: &str, revoked_at: i64| {
        decode(
            &sign(&doc(1, vec![entry(kind, value, revoked_at, NOW + 300)])),
            None,
            NOW,
        )
        .unwrap()
    };
    for (kind, value) in [
        (RevocationKind::Sub, "actor-svc"),
        (RevocationKind::ClientId, "actor-client"),
        (RevocationKind::Sub, "first-actor"),
        (RevocationKind::ClientId, "first-client"),
        (RevocationKind::Sid, "first-sid"),
    ] {
        let hit = list_of(kind, value, NOW).check(&exchanged, UnixTime(NOW));
        assert_eq!(
            hit.map(|h| h.kind),
            Some(kind),
            "revoking the actor's {kind:?} {value} missed the exchanged token"
        );
        // Issued after the actor was revoked: not covered.
        assert_eq!(
            list_of(kind, value, NOW - 1).check(&exchanged, UnixTime(NOW)),
            None
        );
    }
    // An actor's jti names the actor token, not the exchanged one.
    let jti_list = list_of(RevocationKind::Jti, "actor-svc", NOW);
    assert_eq!(jti_list.check(&exchanged, UnixTime(NOW)), None);
}
