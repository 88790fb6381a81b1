//! Review of issue 21 (client cache): attacks on the token endpoint's
//! cached client records (docs/security.md, "Review of issue 21 (client
//! cache)"). "Two replicas" are two states on one database, each with its
//! own pool, cache and group commit, as two origin processes would be.

use crate::client_cache::{issued, seed_refresh_token, two_replicas};
use crate::support::*;
use gatehouse_origin::config::Config;
use gatehouse_origin::domain::state::AppState;
use serde_json::Value;
use sqlx::Row as _;

async fn cc(state: &AppState, c: &Registered, extra: &str) -> (u16, Value) {
    let (s, _, b) = token(state, c, &format!("grant_type=client_credentials{extra}")).await;
    (s, b)
}

async fn sql(state: &AppState, q: &str, id: &str) {
    sqlx::query(q)
        .bind(id)
        .execute(&state.db.pool)
        .await
        .unwrap();
}

/// A refusal decided on a cached record (a grant, a scope the record does
/// not allow) must not outlive the change that allows it: before the fix
/// the replica that cached the record kept refusing for as long as it
/// read no newer `client_generation` — forever on a replica where this
/// client was the only traffic, since a refused request writes nothing
/// and so never re-reads the counter.
#[tokio::test]
async fn a_grant_or_scope_added_elsewhere_is_honoured_at_once_by_a_replica_that_cached_the_refusing_record(
) {
    for tdb in databases() {
        let db = tdb.name;
        let (a, b) = two_replicas(&tdb).await;
        let c = register(&a, "read", false).await;
        // `b` caches the record (the second request is a hit).
        for _ in 0..2 {
            assert_eq!(cc(&b, &c, "").await.0, 200, "{db}");
        }
        let (s, body) = cc(&b, &c, "&scope=write").await;
        assert_eq!(
            (s, body["error"].as_str()),
            (400, Some("invalid_scope")),
            "{db}"
        );
        // The operator grants the scope (another replica, plain SQL).
        sql(
            &a,
            "UPDATE clients SET scopes = '[\"read\",\"write\"]' WHERE client_id = $1",
            &c.id,
        )
        .await;
        for attempt in 0..3 {
            let (s, body) = cc(&b, &c, "&scope=write").await;
            assert_eq!(
                (s, body["scope"].as_str()),
                (200, Some("write")),
                "{db}: attempt {attempt} refused on the cached record: {body}"
            );
        }
        // Grants likewise: taken away (refused at once, the cache's own
        // test), then given back.
        sql(
            &a,
            "UPDATE clients SET grant_types = '[\"refresh_token\"]' WHERE client_id = $1",
            &c.id,
        )
        .await;
        let (s, body) = cc(&b, &c, "").await;
        assert_eq!(
            (s, body["error"].as_str()),
            (400, Some("unauthorized_client")),
            "{db}"
        );
        let (s, _) = cc(&b, &c, "").await;
        assert_eq!(s, 400, "{db}");
        sql(
            &a,
            "UPDATE clients SET grant_types = '[\"client_credentials\"]' WHERE client_id = $1",
            &c.id,
        )
        .await;
        let (s, body) = cc(&b, &c, "").await;
        assert_eq!(
            s, 200,
            "{db}: a grant given back was refused on the cached record: {body}"
        );
        assert_eq!(issued(&a, &c.id).await, 6, "{db}");
    }
}

/// `POST /token` refresh_token as `id` with `secret`: status, body.
async fn refresh(state: &AppState, id: &str, secret: &str, rt: &str) -> (u16, Value) {
    let c = Registered {
        id: id.to_owned(),
        secret: secret.to_owned(),
    };
    let (s, _, b) = token(
        state,
        &c,
        &format!("grant_type=refresh_token&refresh_token={rt}"),
    )
    .await;
    (s, b)
}

/// A refresh reuse revokes the grant: a write made on the authenticated
/// client that no issuing write re-checks. Before the fix, a secret
/// rotated out on one replica (say, because it leaked) still
/// authenticated on a replica holding the old record, and with a used
/// refresh token of the client ended the whole grant; it must be refused
/// (401) and leave the family alone.
#[tokio::test]
async fn a_rotated_out_secret_cannot_end_a_grant_through_reuse_on_a_replica_that_cached_it() {
    for tdb in databases() {
        let db = tdb.name;
        let (a, b) = two_replicas(&tdb).await;
        let (client, secret) = web_client(&a.db, false, now()).await;
        let c = Registered::new(client, secret);
        let user = create_user(&a.db, "alice", now()).await;
        let first = "refresh-token-review21f";
        seed_refresh_token(&a, first, "fam21f", &c.id, &user.user_id).await;
        // Two rotations on `b`: the second authenticates from its cache.
        let (s, t) = refresh(&b, &c.id, &c.secret, first).await;
        assert_eq!(s, 200, "{db}: {t}");
        let second = t["refresh_token"].as_str().unwrap().to_owned();
        let (s, t) = refresh(&b, &c.id, &c.secret, &second).await;
        assert_eq!(s, 200, "{db}: {t}");
        let live = t["refresh_token"].as_str().unwrap().to_owned();
        // The secret is rotated out on `a` (plain SQL: no code of ours runs on `b`).
        let new = "a-new-secret-for-review21f";
        let new_hash = gatehouse_origin::support::secret::ClientSecret::new(new.to_owned()).hash();
        sqlx::query(
            "UPDATE clients SET secret_hash = $1, previous_secret_hash = NULL WHERE client_id = $2",
        )
        .bind(new_hash.to_vec())
        .bind(&c.id)
        .execute(&a.db.pool)
        .await
        .unwrap();
        let (s, body) = refresh(&b, &c.id, &c.secret, first).await;
        assert_eq!(s, 401, "{db}: the rotated-out secret was taken: {body}");
        let revoked: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM refresh_tokens WHERE family_id = 'fam21f' AND revoked_at IS NOT NULL",
        )
        .fetch_one(&a.db.pool)
        .await
        .unwrap()
        .try_get("n")
        .unwrap();
        assert_eq!(revoked, 0, "{db}: a rotated-out secret ended the grant");
        let (s, t) = refresh(&b, &c.id, new, &live).await;
        assert_eq!(s, 200, "{db}: the grant lives on: {t}");
    }
}

/// The PostgreSQL trigger bumps the counter of the schema whose `clients`
/// changed, not whichever `client_generation` the writer's `search_path`
/// finds first: before the fix an operator's schema-qualified UPDATE, run
/// from a session on the default path, moved another installation's
/// counter (here the one in `public`) and left the changed schema's
/// replicas issuing on the record they had cached.
#[tokio::test]
async fn an_operators_schema_qualified_sql_moves_the_counter_of_that_schema() {
    let Some(url) = tokio::task::spawn_blocking(|| fresh_pg_database("rv21f"))
        .await
        .unwrap()
    else {
        return;
    };
    // One installation in the default schema, one in `tenant`.
    let public = gatehouse_origin::store::db::Db::connect(&url)
        .await
        .unwrap();
    public.migrate().await.unwrap();
    let tenant = TestDb {
        name: "postgres",
        url: url.clone(),
        schema: Some("tenant".into()),
    };
    let state = state_with(Config::for_tests(&url), tenant.open().await).await;
    let c = register(&state, "read", false).await;
    for _ in 0..2 {
        assert_eq!(cc(&state, &c, "").await.0, 200);
    }
    // The operator's session: default search_path, qualified table.
    sqlx::query(
        "UPDATE tenant.clients SET grant_types = '[\"refresh_token\"]' WHERE client_id = $1",
    )
    .bind(&c.id)
    .execute(&public.pool)
    .await
    .unwrap();
    let (s, body) = cc(&state, &c, "").await;
    assert_eq!(
        (s, body["error"].as_str()),
        (400, Some("unauthorized_client")),
        "a token was issued on the record cached before the grant was removed"
    );
}
