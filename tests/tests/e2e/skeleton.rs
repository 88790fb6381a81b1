//! The thinnest slice: a token from the origin accepted by the edge, and refusals.

use crate::harness::{http, Stack};
use serde_json::Value;

fn call(stack: &Stack, path: &str, auth: Option<&str>) -> (u16, Option<String>, Value) {
    let mut req = http().get(format!("{}{path}", stack.edge.url));
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = req
        .header("gatehouse-sub", "forged-admin")
        .send()
        .expect("edge answers");
    let status = resp.status().as_u16();
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().expect("ascii").to_owned());
    let body: Value = resp.json().expect("JSON body");
    (status, challenge, body)
}

#[test]
fn origin_token_is_accepted_by_the_edge_and_bad_ones_are_refused() {
    let stack = Stack::start();
    let client = stack.client("read write");
    let tok = stack
        .origin
        .client_credentials(&client, &[("scope", "read")]);
    assert_eq!(tok["token_type"], "Bearer");
    let at = tok["access_token"].as_str().expect("access_token");

    // Accepted: forwarded with the verified identity; forged identity and credentials stripped.
    let (status, _, body) = call(
        &stack,
        "/orders/7?expand=items",
        Some(&format!("Bearer {at}")),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["path"], "/orders/7");
    assert_eq!(body["query"], "expand=items");
    assert_eq!(body["identity"]["gatehouse-sub"], client.id.as_str());
    assert_eq!(body["identity"]["gatehouse-client-id"], client.id.as_str());
    assert_eq!(body["identity"]["gatehouse-scope"], "read");
    assert!(body["identity"]["gatehouse-token-id"]
        .as_str()
        .is_some_and(|j| !j.is_empty()));
    assert_eq!(body["received_authorization"], false);

    // No token: 401 with a bare Bearer challenge (RFC 6750 §3.1).
    let (status, challenge, body) = call(&stack, "/orders/7", None);
    assert_eq!(status, 401);
    assert!(
        challenge
            .as_deref()
            .is_some_and(|c| c.starts_with("Bearer")),
        "{challenge:?}"
    );
    assert_eq!(body["error"], "invalid_token");

    // A tampered signature: 401 invalid_token, and the token text is not echoed.
    let mut tampered = at.to_owned();
    let last = tampered.pop().expect("non-empty");
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let (status, challenge, body) = call(&stack, "/orders/7", Some(&format!("Bearer {tampered}")));
    assert_eq!(status, 401, "{body}");
    let challenge = challenge.expect("WWW-Authenticate");
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );
    assert!(!body.to_string().contains(&tampered[..20]));

    // Garbage: 401 invalid_token, never a 5xx.
    let (status, challenge, _) = call(&stack, "/", Some("Bearer not-a-jwt"));
    assert_eq!(status, 401);
    assert!(challenge.expect("challenge").contains("invalid_token"));
}

#[test]
fn a_token_for_another_audience_is_refused() {
    let stack = Stack::start();
    let client = stack
        .origin
        .create_client("other-api", "read", "https://other.example", &[]);
    let tok = stack.origin.client_credentials(&client, &[]);
    let at = tok["access_token"].as_str().expect("access_token");
    let (status, challenge, body) = call(&stack, "/x", Some(&format!("Bearer {at}")));
    assert_eq!(status, 401, "{body}");
    assert!(challenge.expect("challenge").contains("audience"));
}
