//! RFC 8693 token exchange through `oneshot`: the requesting client must be
//! a confidential resource server of the subject token's audience (Keycloak's
//! standard token exchange rule); audience and scope only narrow (scope also
//! to the client's own); the result never outlives the subject token; a
//! DPoP-bound subject token is exchanged only with a proof of its key and
//! stays bound; `act` names the exchanging client; refusals are audited.

use crate::support::*;
use axum::body::Body;
use gatehouse_common::testkit::signer::TestKey;
use gatehouse_origin::domain::clients::{self, NewClient};
use gatehouse_origin::domain::exchange::{ACCESS_TOKEN_TYPE, GRANT};
use gatehouse_origin::domain::state::AppState;
use serde_json::{json, Value};

/// The form fields naming `token` as the subject token of an exchange.
fn subject_token(token: &str) -> [(&str, &str); 2] {
    [
        ("subject_token", token),
        ("subject_token_type", ACCESS_TOKEN_TYPE),
    ]
}

/// A confidential client allowed token exchange, allowed `audiences`, and
/// serving `serves` as a resource server.
async fn exchanger(state: &AppState, audiences: &[&str], serves: &[&str]) -> Registered {
    exchanger_scoped(state, "read", audiences, serves).await
}

async fn exchanger_scoped(
    state: &AppState,
    scopes: &str,
    audiences: &[&str],
    serves: &[&str],
) -> Registered {
    let (c, s) = clients::create(
        &state.db,
        &NewClient {
            name: "gateway".into(),
            scopes: scopes.split(' ').map(str::to_owned).collect(),
            audiences: audiences.iter().map(|a| (*a).to_owned()).collect(),
            grant_types: vec![GRANT.into(), "client_credentials".into()],
            serves: serves.iter().map(|a| (*a).to_owned()).collect(),
            ..NewClient::default()
        },
        crate::support::now(),
    )
    .await
    .unwrap();
    Registered::new(c, s)
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&gatehouse_common::b64::decode(payload).unwrap()).unwrap()
}

fn exchange_body(params: &[(&str, &str)]) -> String {
    let mut f = form_urlencoded::Serializer::new(String::new());
    f.append_pair("grant_type", GRANT);
    for (k, v) in params {
        f.append_pair(k, v);
    }
    f.finish()
}

async fn exchange(state: &AppState, who: &Registered, params: &[(&str, &str)]) -> (u16, Value) {
    let (s, _, b) = token(state, who, &exchange_body(params)).await;
    (s, b)
}

fn proof(key: &TestKey) -> String {
    let now = crate::support::now().0;
    key.sign(
        &json!({"typ": "dpop+jwt", "alg": key.alg().name(), "jwk": key.public_jwk_json()}),
        &json!({"jti": gatehouse_origin::support::secret::random_id().unwrap(), "htm": "POST",
                "htu": "http://127.0.0.1:8080/token", "iat": now}),
    )
}

async fn exchange_with_proof(
    state: &AppState,
    who: &Registered,
    key: &TestKey,
    params: &[(&str, &str)],
) -> (u16, Value) {
    let (s, _, b) = send(
        state,
        form_post("/token", Some(&basic(&who.id, &who.secret)), "")
            .header("dpop", proof(key))
            .body(Body::from(exchange_body(params)))
            .unwrap(),
    )
    .await;
    (s, b)
}

/// A DPoP-bound client_credentials token for `c`, bound to `key`.
async fn bound_token(state: &AppState, c: &Registered, key: &TestKey) -> String {
    let (s, _, b) = send(
        state,
        form_post("/token", Some(&basic(&c.id, &c.secret)), "")
            .header("dpop", proof(key))
            .body(Body::from("grant_type=client_credentials"))
            .unwrap(),
    )
    .await;
    assert_eq!((s, b["token_type"].as_str()), (200, Some("DPoP")), "{b}");
    b["access_token"].as_str().unwrap().to_owned()
}

async fn cc_token(state: &AppState, c: &Registered) -> String {
    let (s, _, t) = token(state, c, "grant_type=client_credentials").await;
    assert_eq!(s, 200, "{t}");
    t["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn exchange_only_narrows_and_carries_the_actor() {
    for tdb in databases() {
        let state = state_with(
            gatehouse_origin::config::Config::for_tests(&tdb.url),
            tdb.open().await,
        )
        .await;
        let user = register(&state, "read write", false).await;
        let gw = exchanger(&state, &[AUD], &[AUD]).await;
        let subject = cc_token(&state, &user).await;
        let actor_tok = cc_token(&state, &gw).await;
        let base = subject_token(&subject);

        let (s, b) = exchange(&state, &gw, &[base[0], base[1], ("scope", "read")]).await;
        assert_eq!(s, 200, "{}: {b}", tdb.name);
        assert_eq!(b["issued_token_type"], ACCESS_TOKEN_TYPE);
        let c = claims(b["access_token"].as_str().unwrap());
        assert_eq!(c["sub"], user.id.as_str());
        assert_eq!(c["client_id"], gw.id.as_str());
        assert_eq!(c["scope"], "read");
        assert_eq!(c["aud"], AUD);
        assert_eq!(c["act"]["sub"], gw.id.as_str(), "act names the exchanger");
        assert_eq!(
            c["sid"],
            claims(&subject)["sid"],
            "revoking the grant reaches it"
        );

        let (s, b) = exchange(
            &state,
            &gw,
            &[
                base[0],
                base[1],
                ("actor_token", &actor_tok),
                ("actor_token_type", ACCESS_TOKEN_TYPE),
            ],
        )
        .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(
            claims(b["access_token"].as_str().unwrap())["act"]["sub"],
            gw.id.as_str()
        );

        // Widening is refused with the RFC's errors.
        let (s, b) = exchange(&state, &gw, &[base[0], base[1], ("scope", "read admin")]).await;
        assert_eq!((s, b["error"].as_str()), (400, Some("invalid_scope")));
        let (s, b) = exchange(
            &state,
            &gw,
            &[base[0], base[1], ("audience", "https://other.example")],
        )
        .await;
        assert_eq!((s, b["error"].as_str()), (400, Some("invalid_target")));
        let outsider = exchanger(&state, &["https://other.example"], &[AUD]).await;
        let (s, b) = exchange(&state, &outsider, &base).await;
        assert_eq!(
            (s, b["error"].as_str()),
            (400, Some("invalid_target")),
            "per-client policy"
        );
        let (s, b) = exchange(
            &state,
            &gw,
            &[
                base[0],
                base[1],
                (
                    "requested_token_type",
                    "urn:ietf:params:oauth:token-type:refresh_token",
                ),
            ],
        )
        .await;
        assert_eq!((s, b["error"].as_str()), (400, Some("invalid_request")));
        let (s, b) = exchange(&state, &gw, &[("subject_token", "garbage"), base[1]]).await;
        assert_eq!((s, b["error"].as_str()), (400, Some("invalid_grant")));
        // A client without the grant.
        let (s, b) = exchange(&state, &user, &base).await;
        assert_eq!((s, b["error"].as_str()), (400, Some("unauthorized_client")));
        // A revoked subject token cannot be exchanged.
        let req = form_post("/revoke", Some(&basic(&user.id, &user.secret)), "")
            .body(Body::from(format!("token={subject}")))
            .unwrap();
        assert_eq!(send(&state, req).await.0, 200);
        let (s, b) = exchange(&state, &gw, &base).await;
        assert_eq!(
            (s, b["error"].as_str()),
            (400, Some("invalid_grant")),
            "{}",
            tdb.name
        );
    }
}

/// The attack of issue 16.1: a client holding the exchange grant steals a
/// DPoP-bound token and exchanges it without the key, getting a Bearer token.
#[tokio::test]
async fn stolen_dpop_bound_token_cannot_be_laundered_into_a_bearer_token() {
    let state = sqlite_state().await;
    let victim = register(&state, "read", false).await;
    let key = TestKey::es256("victim-key");
    let stolen = bound_token(&state, &victim, &key).await;
    // Even a client that legitimately serves the token's audience.
    let thief = exchanger(&state, &[AUD], &[AUD]).await;
    let base = subject_token(&stolen);
    let (s, b) = exchange(&state, &thief, &base).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "no proof: {b}"
    );
    let (s, b) = exchange_with_proof(&state, &thief, &TestKey::es256("thief-key"), &base).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "a proof of another key: {b}"
    );
    // The key holder may exchange it; the result stays bound to that key.
    let (s, b) = exchange_with_proof(&state, &thief, &key, &base).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["token_type"], "DPoP");
    assert_eq!(
        claims(b["access_token"].as_str().unwrap())["cnf"],
        claims(&stolen)["cnf"]
    );
}

#[tokio::test]
async fn exchange_is_refused_to_clients_that_are_not_an_audience_of_the_subject() {
    let state = sqlite_state().await;
    let victim = register(&state, "read", false).await;
    let subject = cc_token(&state, &victim).await;
    // Allowed the audience as a client, but not serving it.
    let bystander = exchanger(&state, &[AUD], &["https://unrelated.example"]).await;
    let (s, b) = exchange(&state, &bystander, &subject_token(&subject)).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("invalid_grant")),
        "{b}"
    );
    // The refusal is audited (without the token).
    let events = gatehouse_origin::store::audit::list(
        &state.db,
        20,
        &gatehouse_origin::store::audit::AuditFilter::client(&bystander.id),
    )
    .await
    .unwrap();
    let shown = serde_json::to_string(&events).unwrap();
    assert!(shown.contains("token_exchange_refused"), "{shown}");
    assert!(!shown.contains(&subject), "no token in the audit log");
}

#[tokio::test]
async fn exchange_never_outlives_the_subject_and_scope_is_capped_by_the_client() {
    let state = sqlite_state().await;
    let user = register(&state, "read write", false).await;
    // The gateway itself may only hold `read`.
    let gw = exchanger_scoped(&state, "read", &[AUD], &[AUD]).await;
    let (_, _, t) = token(
        &state,
        &user,
        "grant_type=client_credentials&scope=read%20write",
    )
    .await;
    let subject = t["access_token"].as_str().unwrap().to_owned();
    let base = subject_token(&subject);
    let (s, b) = exchange(&state, &gw, &[base[0], base[1], ("scope", "read write")]).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("invalid_scope")),
        "the client's own scopes cap the result: {b}"
    );
    let (s, b) = exchange(&state, &gw, &base).await;
    assert_eq!(s, 200, "{b}");
    let first = b["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        claims(&first)["scope"],
        "read",
        "defaults to subject ∩ client"
    );
    assert!(claims(&first)["exp"].as_i64() <= claims(&subject)["exp"].as_i64());

    // A subject that expires soon: the exchanged token expires with it, and
    // chaining exchanges never renews it.
    let ring = state.key_ring().unwrap();
    let short = gatehouse_origin::domain::token::sign_access_token(
        ring.signer(crate::support::now()).unwrap(),
        "http://127.0.0.1:8080",
        20,
        &gatehouse_origin::domain::token::AccessTokenClaims {
            sub: "user-1",
            client_id: &user.id,
            aud: AUD,
            scopes: &["read".to_owned()],
            sid: "grant-1",
            jkt: None,
        },
        crate::support::now(),
    )
    .unwrap()
    .access_token;
    let mut current = short.clone();
    for _ in 0..3 {
        let (s, b) = exchange(&state, &gw, &subject_token(&current)).await;
        assert_eq!(s, 200, "{b}");
        assert!(b["expires_in"].as_i64().unwrap() <= 20, "{b}");
        current = b["access_token"].as_str().unwrap().to_owned();
        assert!(
            claims(&current)["exp"].as_i64() <= claims(&short)["exp"].as_i64(),
            "exchange must not extend the subject's lifetime"
        );
    }
}

#[tokio::test]
async fn public_client_holding_the_exchange_grant_is_refused() {
    let state = sqlite_state().await;
    let refused = clients::create(
        &state.db,
        &NewClient {
            name: "spa".into(),
            public: true,
            audiences: vec![AUD.into()],
            grant_types: vec![GRANT.into()],
            ..NewClient::default()
        },
        crate::support::now(),
    )
    .await;
    assert!(refused.is_err(), "registration refuses it");
    // A row registered before the rule: refused at the token endpoint.
    let (spa, _) = clients::create(
        &state.db,
        &NewClient {
            name: "spa".into(),
            public: true,
            scopes: vec!["read".into()],
            audiences: vec![AUD.into()],
            ..NewClient::default()
        },
        crate::support::now(),
    )
    .await
    .unwrap();
    sqlx::query("UPDATE clients SET grant_types = $1, serves = $2 WHERE client_id = $3")
        .bind(format!("[\"{GRANT}\"]"))
        .bind(format!("[\"{AUD}\"]"))
        .bind(&spa.client_id)
        .execute(&state.db.pool)
        .await
        .unwrap();
    let victim = register(&state, "read", false).await;
    let subject = cc_token(&state, &victim).await;
    let body = format!(
        "{}&client_id={}",
        exchange_body(&[
            ("subject_token", &subject),
            ("subject_token_type", ACCESS_TOKEN_TYPE)
        ]),
        spa.client_id
    );
    let (s, _, b) = send(
        &state,
        form_post("/token", None, "")
            .body(Body::from(body))
            .unwrap(),
    )
    .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("unauthorized_client")),
        "{b}"
    );
}

#[tokio::test]
async fn someone_elses_actor_token_cannot_be_named_as_actor() {
    let state = sqlite_state().await;
    let user = register(&state, "read", false).await;
    let other = register(&state, "read", false).await;
    let gw = exchanger(&state, &[AUD], &[AUD]).await;
    let subject = cc_token(&state, &user).await;
    let foreign_actor = cc_token(&state, &other).await;
    let (s, b) = exchange(
        &state,
        &gw,
        &[
            ("subject_token", &subject),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("actor_token", &foreign_actor),
            ("actor_token_type", ACCESS_TOKEN_TYPE),
        ],
    )
    .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("invalid_grant")),
        "{b}"
    );
}
