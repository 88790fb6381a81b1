//! The token endpoint's client cache (issue 21.3) under attack: a record
//! cached on one replica must never outlive a change made anywhere — by
//! the admin API of another replica on the same database, or by an
//! operator's SQL — and a guessed secret must never be taken for a valid
//! one. "Two replicas" are two states, each with its own pool, cache and
//! group commit, on one database (one SQLite file, one PostgreSQL schema),
//! as two origin processes would be.

use crate::support::*;
use axum::body::Body;
use axum::http::Request;
use gatehouse_common::testkit::signer::TestKey;
use gatehouse_origin::config::Config;
use gatehouse_origin::domain::state::AppState;
use serde_json::{json, Value};
use sqlx::Row as _;

/// Two replicas on `tdb` (also used by `review21f`).
pub(crate) async fn two_replicas(tdb: &TestDb) -> (AppState, AppState) {
    let a = state_with(Config::for_tests(&tdb.url), tdb.open().await).await;
    let b = state_with(Config::for_tests(&tdb.url), tdb.open().await).await;
    (a, b)
}

fn admin(method: &str, uri: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(Body::empty())
        .unwrap()
}

/// Rotates `id`'s secret through `state`'s admin API with no grace
/// period; the new secret.
async fn rotate(state: &AppState, id: &str) -> String {
    let (s, _, b) = send(
        state,
        admin(
            "POST",
            &format!("/admin/clients/{id}/rotate-secret?grace=0"),
        ),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    b["client_secret"].as_str().unwrap().to_owned()
}

/// `POST /token` client_credentials with `id` and `secret`: status, body.
async fn cc(state: &AppState, id: &str, secret: &str, extra: &str) -> (u16, Value) {
    let c = Registered {
        id: id.to_owned(),
        secret: secret.to_owned(),
    };
    let (s, _, b) = token(state, &c, &format!("grant_type=client_credentials{extra}")).await;
    (s, b)
}

/// `token_issued` audit rows of `client_id`.
pub(crate) async fn issued(state: &AppState, client_id: &str) -> i64 {
    sqlx::query(
        "SELECT COUNT(*) AS n FROM audit_events WHERE event = 'token_issued' AND client_id = $1",
    )
    .bind(client_id)
    .fetch_one(&state.db.pool)
    .await
    .unwrap()
    .try_get("n")
    .unwrap()
}

/// A live refresh token `raw` (family `family`, scope `read`, a day left) of
/// `client_id` for `user_id`, written straight into the store (also used by
/// `review21f`).
pub(crate) async fn seed_refresh_token(
    state: &AppState,
    raw: &str,
    family: &str,
    client_id: &str,
    user_id: &str,
) {
    let hash = gatehouse_origin::support::secret::RefreshToken::new(raw.to_owned()).hash_b64();
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, family_id, client_id, user_id, scope, audience, \
         dpop_jkt, created_at, expires_at, family_expires_at, rotated_at, revoked_at) \
         VALUES ($1, $2, $3, $4, 'read', $5, NULL, $6, $7, $7, NULL, NULL)",
    )
    .bind(hash)
    .bind(family)
    .bind(client_id)
    .bind(user_id)
    .bind(AUD)
    .bind(now().0 - 1)
    .bind(now().0 + 86_400)
    .execute(&state.db.pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn a_rotated_secret_is_refused_on_the_very_next_request_on_every_replica() {
    for tdb in databases() {
        let db = tdb.name;
        let (a, b) = two_replicas(&tdb).await;
        let c = register(&a, "read", false).await;
        // Both replicas have the client cached (the second request of each
        // is served from its cache).
        for state in [&a, &b, &a, &b] {
            assert_eq!(cc(state, &c.id, &c.secret, "").await.0, 200, "{db}");
        }
        let new = rotate(&a, &c.id).await;
        for (name, state) in [("the other replica", &b), ("the rotating one", &a)] {
            assert_eq!(
                cc(state, &c.id, &c.secret, "").await.0,
                401,
                "{db}: {name} took the rotated-out secret"
            );
        }
        for state in [&b, &a, &b] {
            assert_eq!(cc(state, &c.id, &new, "").await.0, 200, "{db}: new secret");
        }
        assert_eq!(cc(&b, &c.id, &c.secret, "").await.0, 401, "{db}");
        // Exactly the tokens answered 200 were recorded: a write refused
        // for a changed client left no row behind.
        assert_eq!(issued(&a, &c.id).await, 7, "{db}");
    }
}

#[tokio::test]
async fn a_deleted_client_is_refused_at_once_on_every_replica() {
    for tdb in databases() {
        let db = tdb.name;
        let (a, b) = two_replicas(&tdb).await;
        let c = register(&a, "read", false).await;
        for state in [&a, &b, &a, &b] {
            assert_eq!(cc(state, &c.id, &c.secret, "").await.0, 200, "{db}");
        }
        let (s, _, body) = send(&a, admin("DELETE", &format!("/admin/clients/{}", c.id))).await;
        assert!((200..300).contains(&s), "{db}: delete: {s} {body}");
        assert_eq!(
            cc(&b, &c.id, &c.secret, "").await.0,
            401,
            "{db}: other replica"
        );
        assert_eq!(
            cc(&a, &c.id, &c.secret, "").await.0,
            401,
            "{db}: this replica"
        );
    }
}

#[tokio::test]
async fn a_wrong_secret_is_never_cached_as_valid() {
    let state = sqlite_state().await;
    let c = register(&state, "read", false).await;
    let mut wrong = c.secret.clone();
    // Same length, last character changed.
    let last = wrong.pop().unwrap();
    wrong.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(cc(&state, &c.id, &wrong, "").await.0, 401);
    assert!(
        state.client_cache.is_empty(),
        "a refused request cached its client"
    );
    assert_eq!(cc(&state, &c.id, &c.secret, "").await.0, 200);
    assert_eq!(state.client_cache.len(), 1);
    for _ in 0..3 {
        assert_eq!(
            cc(&state, &c.id, &wrong, "").await.0,
            401,
            "the wrong secret after the right one"
        );
        assert_eq!(cc(&state, &c.id, &c.secret, "").await.0, 200);
    }
    assert_eq!(cc(&state, &c.id, "", "").await.0, 401, "empty secret");
}

#[tokio::test]
async fn unknown_client_ids_and_guessed_secrets_do_not_grow_the_cache() {
    let state = sqlite_state().await;
    let c = register(&state, "read", false).await;
    for i in 0..300 {
        let unknown = format!("no-such-client-{i}");
        assert_eq!(cc(&state, &unknown, "guess", "").await.0, 401);
        assert_eq!(cc(&state, &c.id, &format!("guess-{i}"), "").await.0, 401);
    }
    assert!(state.client_cache.is_empty());
    assert_eq!(cc(&state, &c.id, &c.secret, "").await.0, 200);
    assert_eq!(state.client_cache.len(), 1);
}

#[tokio::test]
async fn scope_and_grant_changes_by_sql_take_effect_at_once_on_every_replica() {
    for tdb in databases() {
        let db = tdb.name;
        let (a, b) = two_replicas(&tdb).await;
        let c = register(&a, "read write", false).await;
        for _ in 0..2 {
            assert_eq!(cc(&b, &c.id, &c.secret, "&scope=read").await.0, 200, "{db}");
        }
        // An operator's SQL on the other replica's pool: no code of ours runs.
        sqlx::query("UPDATE clients SET scopes = '[\"write\"]' WHERE client_id = $1")
            .bind(&c.id)
            .execute(&a.db.pool)
            .await
            .unwrap();
        let (s, body) = cc(&b, &c.id, &c.secret, "&scope=read").await;
        assert_eq!(
            (s, body["error"].as_str()),
            (400, Some("invalid_scope")),
            "{db}: a removed scope"
        );
        let (s, body) = cc(&b, &c.id, &c.secret, "").await;
        assert_eq!((s, body["scope"].as_str()), (200, Some("write")), "{db}");
        sqlx::query("UPDATE clients SET grant_types = '[\"refresh_token\"]' WHERE client_id = $1")
            .bind(&c.id)
            .execute(&a.db.pool)
            .await
            .unwrap();
        let (s, body) = cc(&b, &c.id, &c.secret, "").await;
        assert_eq!(
            (s, body["error"].as_str()),
            (400, Some("unauthorized_client")),
            "{db}: a removed grant"
        );
        assert_eq!(
            issued(&a, &c.id).await,
            3,
            "{db}: refused requests wrote no row"
        );
    }
}

/// A refresh whose client's secret was rotated on another replica: the
/// old secret is refused and the refresh token it presented is left as it
/// was (the rotation's write was refused whole), so the client, with its
/// new secret, rotates it normally — no reuse detected, no family revoked.
#[tokio::test]
async fn a_refresh_with_a_rotated_out_secret_is_refused_and_spends_nothing() {
    for tdb in databases() {
        let db = tdb.name;
        let (a, b) = two_replicas(&tdb).await;
        let (client, secret) = web_client(&a.db, false, now()).await;
        let c = Registered::new(client, secret);
        let user = create_user(&a.db, "alice", now()).await;
        let raw = "refresh-token-presented-first";
        seed_refresh_token(&a, raw, "fam", &c.id, &user.user_id).await;
        let refresh = |state: &AppState, secret: String, rt: String| {
            let state = state.clone();
            let id = c.id.clone();
            async move {
                let c = Registered { id, secret };
                let (s, _, b) = token(
                    &state,
                    &c,
                    &format!("grant_type=refresh_token&refresh_token={rt}"),
                )
                .await;
                (s, b)
            }
        };
        let (s, t) = refresh(&b, c.secret.clone(), raw.into()).await;
        assert_eq!(s, 200, "{db}: {t}");
        let rt = t["refresh_token"].as_str().unwrap().to_owned();
        let new = rotate(&a, &c.id).await;
        let (s, _) = refresh(&b, c.secret.clone(), rt.clone()).await;
        assert_eq!(s, 401, "{db}: the rotated-out secret");
        let (s, t) = refresh(&b, new, rt).await;
        assert_eq!(s, 200, "{db}: the token was left unspent: {t}");
        let revoked: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM refresh_tokens WHERE family_id = 'fam' AND revoked_at IS NOT NULL",
        )
        .fetch_one(&a.db.pool)
        .await
        .unwrap()
        .try_get("n")
        .unwrap();
        assert_eq!(revoked, 0, "{db}: no reuse was detected");
    }
}

/// A DPoP request whose cached client changed (here only its name) before
/// the token's write is served once more from the database with the same
/// proof: its replay key was recorded once, by this request, and the
/// second attempt must not take it for a replay.
#[tokio::test]
async fn a_dpop_request_whose_client_changed_is_served_with_its_one_proof() {
    let state = sqlite_state().await;
    let c = register(&state, "read", false).await;
    let key = TestKey::es256("cache-dpop");
    let proof = || {
        key.sign(
            &json!({"typ": "dpop+jwt", "alg": key.alg().name(), "jwk": key.public_jwk_json()}),
            &json!({
                "jti": gatehouse_origin::support::secret::random_id().unwrap(),
                "htm": "POST",
                "htu": format!("{}/token", state.config.issuer),
                "iat": now().0,
            }),
        )
    };
    let post = |p: String| {
        let state = state.clone();
        let auth = basic(&c.id, &c.secret);
        async move {
            let (s, _, b) = send(
                &state,
                form_post("/token", Some(&auth), "")
                    .header("dpop", p)
                    .body(Body::from("grant_type=client_credentials"))
                    .unwrap(),
            )
            .await;
            (s, b)
        }
    };
    let (s, b) = post(proof()).await;
    assert_eq!((s, b["token_type"].as_str()), (200, Some("DPoP")), "{b}");
    sqlx::query("UPDATE clients SET name = 'renamed' WHERE client_id = $1")
        .bind(&c.id)
        .execute(&state.db.pool)
        .await
        .unwrap();
    let (s, b) = post(proof()).await;
    assert_eq!((s, b["token_type"].as_str()), (200, Some("DPoP")), "{b}");
    assert_eq!(issued(&state, &c.id).await, 2);
}
