//! Repositories on SQLite and (when configured) PostgreSQL, through one code path.

use crate::support::*;
use gatehouse_common::revocation::RevocationKind;
use gatehouse_common::UnixTime;
use gatehouse_origin::config::KeySchedule;
use gatehouse_origin::domain::clients::{self, NewClient};
use gatehouse_origin::domain::keys;
use gatehouse_origin::store::audit;
use gatehouse_origin::store::revocation;
use gatehouse_origin::support::kek::Kek;
use gatehouse_origin::support::secret::ClientSecret;

const SCHEDULE: KeySchedule = KeySchedule {
    publish_lead: 100,
    active_period: 1000,
    retention: 50,
};

#[tokio::test]
async fn clients_round_trip_and_rotate_with_grace() {
    for tdb in databases() {
        let db = tdb.open().await;
        db.migrate().await.unwrap(); // idempotent
        let new = NewClient {
            name: "svc".into(),
            scopes: vec!["read".into(), "write".into()],
            audiences: vec![AUD.into()],
            grant_types: vec!["client_credentials".into()],
            redirect_uris: vec!["https://app.example/cb".into()],
            dpop_required: true,
            ..NewClient::default()
        };
        let (c, secret) = clients::create(&db, &new, T0).await.unwrap();
        let secret = secret.unwrap();
        let got = clients::get(&db, &c.client_id).await.unwrap().unwrap();
        assert_eq!(got, c, "{}", tdb.name);
        assert!(got.secret_matches(&secret, T0));
        assert!(!got.secret_matches(&ClientSecret::new("x".into()), T0));
        let new_secret = clients::rotate_secret(&db, &c.client_id, 60, T0)
            .await
            .unwrap()
            .unwrap();
        let got = clients::get(&db, &c.client_id).await.unwrap().unwrap();
        assert!(got.secret_matches(&new_secret, T0));
        assert!(
            got.secret_matches(&secret, T0.plus(59)),
            "{}: old secret in grace",
            tdb.name
        );
        assert!(
            !got.secret_matches(&secret, T0.plus(60)),
            "{}: grace over",
            tdb.name
        );
        let public = NewClient {
            name: "spa".into(),
            public: true,
            audiences: vec![AUD.into()],
            ..NewClient::default()
        };
        let (p, s) = clients::create(&db, &public, T0).await.unwrap();
        assert!(s.is_none() && p.public && p.secret_hash.is_none());
        assert!(clients::rotate_secret(&db, &p.client_id, 60, T0)
            .await
            .is_err());
        let bad = NewClient {
            name: "x".into(),
            public: true,
            audiences: vec![AUD.into()],
            grant_types: vec!["client_credentials".into()],
            ..NewClient::default()
        };
        assert!(
            clients::create(&db, &bad, T0).await.is_err(),
            "public clients cannot use client_credentials"
        );
        assert_eq!(clients::list(&db).await.unwrap().len(), 2);
        let span = gatehouse_origin::store::revocation::CoverSpan {
            max_token_ttl: 300,
            leeway_secs: 30,
        };
        assert!(clients::delete(&db, &c.client_id, span, "test", T0)
            .await
            .unwrap());
        assert!(!clients::delete(&db, &c.client_id, span, "test", T0)
            .await
            .unwrap());
        assert!(clients::get(&db, &c.client_id).await.unwrap().is_none());
    }
}

#[tokio::test]
async fn keys_are_encrypted_scheduled_and_rotated() {
    for tdb in databases() {
        let db = tdb.open().await;
        let kek = Kek::from_bytes([9; 32]);
        let alg = gatehouse_common::alg::Algorithm::Es256;
        let first = keys::maintain(&db, &kek, alg, &SCHEDULE, 300, T0)
            .await
            .unwrap();
        assert!(first.created.is_some(), "{}", tdb.name);
        assert_eq!(
            keys::maintain(&db, &kek, alg, &SCHEDULE, 300, T0.plus(10))
                .await
                .unwrap(),
            Default::default()
        );
        // Before the period ends the next key is published, then it takes over.
        let next = keys::maintain(&db, &kek, alg, &SCHEDULE, 300, T0.plus(900))
            .await
            .unwrap();
        let next_kid = next.created.unwrap();
        let ring = keys::load(&db, &kek).await.unwrap();
        assert_eq!(ring.jwks(T0.plus(900)).keys().len(), 2);
        assert_eq!(
            ring.signer(T0.plus(999)).unwrap().kid(),
            first.created.as_deref().unwrap()
        );
        assert_eq!(ring.signer(T0.plus(1000)).unwrap().kid(), next_kid);
        let done = keys::maintain(&db, &kek, alg, &SCHEDULE, 300, T0.plus(1000))
            .await
            .unwrap();
        assert_eq!(done.retired, vec![first.created.clone().unwrap()]);
        let done = keys::maintain(&db, &kek, alg, &SCHEDULE, 300, T0.plus(1350))
            .await
            .unwrap();
        assert_eq!(done.removed, vec![first.created.clone().unwrap()]);
        let ring = keys::load(&db, &kek).await.unwrap();
        assert_eq!(ring.jwks(T0.plus(1350)).keys().len(), 1);
        // A wrong KEK cannot load the keys.
        assert!(keys::load(&db, &Kek::from_bytes([1; 32])).await.is_err());
        let rotated = keys::rotate(
            &db,
            &kek,
            gatehouse_common::alg::Algorithm::EdDsa,
            &SCHEDULE,
            false,
            T0.plus(1400),
        )
        .await
        .unwrap();
        assert_eq!(rotated.active_at, T0.0 + 1500);
        assert_eq!(keys::list(&db).await.unwrap().len(), 3);
    }
}

#[tokio::test]
async fn exactly_one_replica_rotates_on_postgres() {
    let Some(url) = pg_url() else { return };
    let schema = format!(
        "t_race_{}",
        gatehouse_origin::support::secret::random_id()
            .unwrap()
            .to_lowercase()
            .replace(['-', '_'], "x")
    );
    let a = gatehouse_origin::store::db::Db::connect_in_schema(&url, Some(&schema))
        .await
        .unwrap();
    a.migrate().await.unwrap();
    let b = gatehouse_origin::store::db::Db::connect_in_schema(&url, Some(&schema))
        .await
        .unwrap();
    let kek = Kek::from_bytes([9; 32]);
    let alg = gatehouse_common::alg::Algorithm::Es256;
    let (ra, rb) = tokio::join!(
        keys::maintain(&a, &kek, alg, &SCHEDULE, 300, T0),
        keys::maintain(&b, &kek, alg, &SCHEDULE, 300, T0)
    );
    let created = [ra.unwrap().created, rb.unwrap().created]
        .iter()
        .filter(|c| c.is_some())
        .count();
    assert_eq!(created, 1);
    assert_eq!(keys::list(&a).await.unwrap().len(), 1);
}

#[tokio::test]
async fn revocations_outbox_and_audit() {
    for tdb in databases() {
        let db = tdb.open().await;
        let r = revocation::revoke(&db, RevocationKind::Sub, "alice", T0.0 + 400, "test", T0)
            .await
            .unwrap();
        assert_eq!(r.kind, "sub");
        // Revoking again keeps one row and the later drop time.
        revocation::revoke(
            &db,
            RevocationKind::Sub,
            "alice",
            T0.0 + 300,
            "test",
            T0.plus(5),
        )
        .await
        .unwrap();
        let list = revocation::list(&db, T0.plus(10)).await.unwrap();
        assert_eq!(list.len(), 1, "{}", tdb.name);
        assert_eq!(
            (list[0].revoked_at, list[0].drop_after),
            (T0.0 + 5, T0.0 + 400)
        );
        assert!(revocation::list(&db, UnixTime(T0.0 + 400))
            .await
            .unwrap()
            .is_empty());
        assert_eq!(revocation::pending_outbox(&db).await.unwrap().len(), 2);
        audit::record(
            &db.pool,
            &audit::AuditEvent::new("token_issued", T0)
                .client("c")
                .jti("j"),
        )
        .await
        .unwrap();
        audit::record(
            &db.pool,
            &audit::AuditEvent::new("token_issued", T0).client("d"),
        )
        .await
        .unwrap();
        assert_eq!(
            audit::list(&db, 10, &audit::AuditFilter::client("c"))
                .await
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            audit::list(&db, 10, &audit::AuditFilter::default())
                .await
                .unwrap()[0]
                .client_id
                .as_deref(),
            Some("d")
        );
    }
}

#[tokio::test]
async fn the_token_endpoint_works_on_every_backend() {
    for tdb in databases() {
        let mut config = gatehouse_origin::config::Config::for_tests(&tdb.url);
        config.signing_alg = gatehouse_common::alg::Algorithm::Ps256;
        let state = state_with(config, tdb.open().await).await;
        let c = register(&state, "read", false).await;
        let (s, _, b) = token(&state, &c, "grant_type=client_credentials").await;
        assert_eq!(s, 200, "{}: {b}", tdb.name);
        let header = jsonwebtoken::decode_header(b["access_token"].as_str().unwrap()).unwrap();
        assert_eq!(header.alg, jsonwebtoken::Algorithm::PS256);
        let at = b["access_token"].as_str().unwrap();
        let (_, _, i) = send(
            &state,
            form_post("/introspect", Some(&basic(&c.id, &c.secret)), "")
                .body(axum::body::Body::from(format!("token={at}")))
                .unwrap(),
        )
        .await;
        assert_eq!(i["active"], true, "{}", tdb.name);
    }
}

/// Ending a user's or a client's grants (`revoke --sub`, `--client-id`,
/// deleting a user) looks up refresh tokens and codes by owner; each of
/// those lookups must use an index, not scan the tables (a revocation
/// during an incident must not be slowed by the size of the token tables).
#[tokio::test]
async fn ending_grants_by_owner_uses_an_index_not_a_table_scan() {
    use gatehouse_origin::store::db::Backend;
    use sqlx::Row;
    let lookups = [
        ("refresh_tokens", "user_id", "refresh_tokens_user"),
        ("refresh_tokens", "client_id", "refresh_tokens_client"),
        ("auth_codes", "sid", "auth_codes_sid"),
        ("auth_codes", "user_id", "auth_codes_user"),
        ("auth_codes", "client_id", "auth_codes_client"),
    ];
    for tdb in databases() {
        let db = tdb.open().await;
        for (table, column, index) in lookups {
            match db.backend {
                Backend::Sqlite => {
                    let plan = sqlx::query(&format!(
                        "EXPLAIN QUERY PLAN SELECT 1 FROM {table} WHERE {column} = 'x'"
                    ))
                    .fetch_all(&db.pool)
                    .await
                    .unwrap();
                    let details: Vec<String> =
                        plan.iter().map(|r| r.get::<String, _>("detail")).collect();
                    assert!(
                        details.iter().any(|d| d.contains(index)),
                        "{}: {table}.{column} is looked up by {details:?}, not by {index}",
                        tdb.name
                    );
                }
                Backend::Postgres => {
                    let n: i64 = sqlx::query(
                        "SELECT COUNT(*) AS n FROM pg_indexes \
                         WHERE schemaname = current_schema() AND tablename = $1 AND indexname = $2",
                    )
                    .bind(table)
                    .bind(index)
                    .fetch_one(&db.pool)
                    .await
                    .unwrap()
                    .get("n");
                    assert_eq!(n, 1, "{}: index {index} on {table}.{column}", tdb.name);
                }
            }
        }
    }
}
