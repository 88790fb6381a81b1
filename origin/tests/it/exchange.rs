//! RFC 8693 token exchange through `oneshot`: narrowing only, `act`, the
//! per-client audience policy, revoked subjects.

use crate::support::*;
use axum::body::Body;
use gatehouse_origin::clients::{self, NewClient};
use gatehouse_origin::exchange::{ACCESS_TOKEN_TYPE, GRANT};
use serde_json::Value;

async fn exchanger(state: &gatehouse_origin::state::AppState, audiences: &[&str]) -> Registered {
    let (c, s) = clients::create(
        &state.db,
        &NewClient {
            name: "gateway".into(),
            scopes: vec!["read".into()],
            audiences: audiences.iter().map(|a| (*a).to_owned()).collect(),
            grant_types: vec![GRANT.into()],
            ..NewClient::default()
        },
        gatehouse_origin::state::now(),
    )
    .await
    .unwrap();
    Registered {
        id: c.client_id,
        secret: s.unwrap().expose().to_owned(),
    }
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&gatehouse_common::b64::decode(payload).unwrap()).unwrap()
}

async fn exchange(
    state: &gatehouse_origin::state::AppState,
    who: &Registered,
    params: &[(&str, &str)],
) -> (u16, Value) {
    let mut f = form_urlencoded::Serializer::new(String::new());
    f.append_pair("grant_type", GRANT);
    for (k, v) in params {
        f.append_pair(k, v);
    }
    let body = f.finish();
    let (s, _, b) = token(state, who, &body).await;
    (s, b)
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
        let actor = register(&state, "read", false).await;
        let gw = exchanger(&state, &[AUD]).await;
        let (_, _, t) = token(&state, &user, "grant_type=client_credentials").await;
        let subject = t["access_token"].as_str().unwrap().to_owned();
        let (_, _, t) = token(&state, &actor, "grant_type=client_credentials").await;
        let actor_tok = t["access_token"].as_str().unwrap().to_owned();
        let base = [
            ("subject_token", subject.as_str()),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
        ];

        let (s, b) = exchange(&state, &gw, &[base[0], base[1], ("scope", "read")]).await;
        assert_eq!(s, 200, "{}: {b}", tdb.name);
        assert_eq!(b["issued_token_type"], ACCESS_TOKEN_TYPE);
        let c = claims(b["access_token"].as_str().unwrap());
        assert_eq!(c["sub"], user.id.as_str());
        assert_eq!(c["client_id"], gw.id.as_str());
        assert_eq!(c["scope"], "read");
        assert_eq!(c["aud"], AUD);
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
            actor.id.as_str()
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
        let outsider = exchanger(&state, &["https://other.example"]).await;
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
