//! Revoking a refresh family while one of its tokens is being rotated
//! (reuse detection racing the legitimate client): nothing of the family may
//! survive. Regression test: on PostgreSQL (READ COMMITTED) the revoking
//! UPDATE waited for the rotating transaction's row lock and then could not
//! see the successor that transaction had inserted, which stayed usable —
//! and an access token issued with a later clock than the revoking request
//! escaped the `sid` entry.

use crate::support::*;
use gatehouse_common::UnixTime;
use gatehouse_origin::config::Config;
use gatehouse_origin::db::Backend;
use gatehouse_origin::grants;
use sqlx::Row as _;
use std::time::Duration;

async fn insert(db: &gatehouse_origin::db::Db, hash: &str, family: &str, created_at: i64) {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, family_id, client_id, user_id, scope, audience, \
         dpop_jkt, created_at, expires_at, family_expires_at, rotated_at, revoked_at) \
         VALUES ($1, $2, 'c', 'u', 'read', 'https://api.example', NULL, $3, $4, $4, NULL, NULL)",
    )
    .bind(hash)
    .bind(family)
    .bind(created_at)
    .bind(created_at + 86_400)
    .execute(&db.pool)
    .await
    .unwrap();
}

/// Waits until some statement waits for a lock (PostgreSQL), or a moment (SQLite).
async fn until_blocked(db: &gatehouse_origin::db::Db) {
    if db.backend == Backend::Sqlite {
        tokio::time::sleep(Duration::from_millis(300)).await;
        return;
    }
    for _ in 0..200 {
        let waiting: i64 = sqlx::query("SELECT COUNT(*) AS n FROM pg_locks WHERE NOT granted")
            .fetch_one(&db.pool)
            .await
            .unwrap()
            .try_get("n")
            .unwrap();
        if waiting > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the revocation never waited for the rotation's lock");
}

#[tokio::test]
async fn revoking_a_family_during_a_rotation_revokes_the_successor_too() {
    let mut problems = Vec::new();
    for tdb in databases() {
        let db = tdb.open().await;
        let state = state_with(Config::for_tests(&tdb.url), db.clone()).await;
        let now = T0;
        insert(&db, "h1", "fam", now.0).await;

        // The legitimate client's rotation, not yet committed; its clock is
        // a second ahead of the revoking request's.
        let mut rotation = db.pool.begin().await.unwrap();
        sqlx::query("UPDATE refresh_tokens SET rotated_at = $1 WHERE token_hash = 'h1' AND rotated_at IS NULL AND revoked_at IS NULL")
            .bind(now.0 + 1)
            .execute(&mut *rotation)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, family_id, client_id, user_id, scope, audience, \
             dpop_jkt, created_at, expires_at, family_expires_at, rotated_at, revoked_at) \
             VALUES ('h2', 'fam', 'c', 'u', 'read', 'https://api.example', NULL, $1, $2, $2, NULL, NULL)",
        )
        .bind(now.0 + 1)
        .bind(now.0 + 86_400)
        .execute(&mut *rotation)
        .await
        .unwrap();

        // Reuse detected elsewhere: the family is revoked meanwhile.
        let revoking = {
            let state = state.clone();
            tokio::spawn(async move {
                grants::revoke_family(&state, "fam", "refresh token reuse", now).await
            })
        };
        until_blocked(&db).await;
        rotation.commit().await.unwrap();
        revoking.await.unwrap().unwrap();

        let live: Vec<String> = sqlx::query(
            "SELECT token_hash FROM refresh_tokens WHERE family_id = 'fam' AND revoked_at IS NULL",
        )
        .fetch_all(&db.pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get("token_hash").unwrap())
        .collect();
        if !live.is_empty() {
            problems.push(format!(
                "{}: tokens of a revoked family still live: {live:?}",
                tdb.name
            ));
        }
        let revoked_at: i64 =
            sqlx::query("SELECT revoked_at FROM revocations WHERE kind = 'sid' AND value = 'fam'")
                .fetch_one(&db.pool)
                .await
                .unwrap()
                .try_get("revoked_at")
                .unwrap();
        if UnixTime(revoked_at) < UnixTime(now.0 + 1) {
            problems.push(format!(
                "{}: the sid entry does not cover the access token issued with the rotation",
                tdb.name
            ));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}
