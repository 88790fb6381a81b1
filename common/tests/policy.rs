//! Route policy decisions on real verified tokens.
#![cfg(all(feature = "testkit", not(target_arch = "wasm32")))]
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use gatehouse_common::policy::*;
use gatehouse_common::provider::RustCrypto;
use gatehouse_common::rejection::{ErrorCode, Scheme};
use gatehouse_common::testkit::fixture::{self, NOW};
use serde_json::json;

fn path(p: &str) -> CanonicalPath {
    CanonicalPath::parse(p).unwrap()
}

fn policy() -> RoutePolicy {
    RoutePolicy::new(
        DefaultAction::Deny,
        vec![
            RouteRule::new("/api", &["read"], false),
            RouteRule::new("/api/admin", &["admin"], true),
            RouteRule::public("/health"),
        ],
    )
    .unwrap()
}

#[test]
fn scopes_dpop_and_default_deny() {
    let p = policy();
    let bearer =
        fixture::verify_token(&fixture::mint(&fixture::claims()), &RustCrypto, NOW).unwrap();
    p.route(&path("/api/things"))
        .authorize(&bearer, Scheme::Bearer)
        .unwrap();
    let err = p
        .route(&path("/api/admin/x"))
        .authorize(&bearer, Scheme::Bearer)
        .unwrap_err();
    assert_eq!(
        (err.code, err.scheme),
        (Some(ErrorCode::InvalidToken), Scheme::DPoP)
    );
    let bound = fixture::verify_token(
        &fixture::mint(&fixture::set(
            fixture::claims(),
            "cnf",
            json!({"jkt": "abc"}),
        )),
        &RustCrypto,
        NOW,
    )
    .unwrap();
    let err = p
        .route(&path("/api/admin/x"))
        .authorize(&bound, Scheme::DPoP)
        .unwrap_err();
    assert_eq!(err.code, Some(ErrorCode::InsufficientScope));
    assert_eq!(err.status(), 403);
    assert_eq!(err.scope.as_deref(), Some("admin"));
    let admin = fixture::verify_token(
        &fixture::mint(&fixture::set(
            fixture::set(fixture::claims(), "cnf", json!({"jkt": "abc"})),
            "scope",
            json!("read admin"),
        )),
        &RustCrypto,
        NOW,
    )
    .unwrap();
    p.route(&path("/api/admin/x"))
        .authorize(&admin, Scheme::DPoP)
        .unwrap();
    let err = p
        .route(&path("/apix"))
        .authorize(&admin, Scheme::DPoP)
        .unwrap_err();
    assert_eq!(
        (err.code, err.status()),
        (Some(ErrorCode::AccessDenied), 403)
    );
    assert!(!p.route(&path("/health")).needs_token());
}
