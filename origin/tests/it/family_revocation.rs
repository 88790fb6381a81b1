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
use gatehouse_origin::domain::grants;
use gatehouse_origin::store::db::Backend;
use sqlx::Row as _;
use std::time::Duration;

async fn insert(db: &gatehouse_origin::store::db::Db, hash: &str, family: &str, created_at: i64) {
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

/// The legitimate client's rotation of `h1` into `h2`, not yet committed:
/// `h1` marked rotated and its successor inserted, a second after `now`.
async fn begin_rotation(
    db: &gatehouse_origin::store::db::Db,
    now: UnixTime,
) -> sqlx::Transaction<'static, sqlx::Any> {
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
    rotation
}

/// The hashes of the refresh tokens of family `fam` not revoked.
async fn live_tokens(db: &gatehouse_origin::store::db::Db) -> Vec<String> {
    sqlx::query(
        "SELECT token_hash FROM refresh_tokens WHERE family_id = 'fam' AND revoked_at IS NULL",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap()
    .iter()
    .map(|r| r.try_get("token_hash").unwrap())
    .collect()
}

/// Waits until some statement waits for a lock (PostgreSQL), or a moment (SQLite).
async fn until_blocked(db: &gatehouse_origin::store::db::Db) {
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

/// [`until_blocked`], or until `task` ended without waiting for any lock.
async fn until_blocked_or_done<T>(
    db: &gatehouse_origin::store::db::Db,
    task: &tokio::task::JoinHandle<T>,
) {
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
        if waiting > 0 || task.is_finished() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the task neither ended nor waited for a lock");
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
        let rotation = begin_rotation(&db, now).await;

        // Reuse detected elsewhere: the family is revoked meanwhile.
        let revoking = {
            let state = state.clone();
            tokio::spawn(async move {
                grants::revoke_family(&state.db, &state.config, "fam", "refresh token reuse", now)
                    .await
            })
        };
        until_blocked(&db).await;
        rotation.commit().await.unwrap();
        revoking.await.unwrap().unwrap();

        let live = live_tokens(&db).await;
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

/// What ends grants: deleting the user, or revoking their `sub`, the
/// client's `client_id`, or the family's `sid`.
#[derive(Clone, Copy, Debug)]
enum Ender {
    DeleteUser,
    Sub,
    ClientId,
    Sid,
}

async fn end(
    state: &gatehouse_origin::domain::state::AppState,
    how: Ender,
    now: UnixTime,
) -> Result<(), String> {
    use gatehouse_common::revocation::RevocationKind;
    let span = gatehouse_origin::store::revocation::cover_span(&state.db, &state.config)
        .await
        .unwrap();
    let (kind, value) = match how {
        Ender::DeleteUser => {
            let deleted = gatehouse_origin::domain::users::delete(&state.db, "alice", span, now)
                .await
                .map_err(|e| e.to_string())?;
            assert!(deleted.is_some(), "the user existed");
            return Ok(());
        }
        Ender::Sub => (RevocationKind::Sub, "u"),
        Ender::ClientId => (RevocationKind::ClientId, "c"),
        Ender::Sid => (RevocationKind::Sid, "fam"),
    };
    gatehouse_origin::domain::introspect::revoke_identifier(
        &state.db, span, kind, value, "test", now,
    )
    .await
    .map(|_| ())
    .map_err(|e| e.to_string())
}

/// Found by review of 3c24e0c: revoking a `sid`, `sub` or `client_id` left
/// every refresh token usable (the entry refuses only access tokens with
/// `iat <= revoked_at`, so a refresh a second later minted a valid one), and
/// deleting a user revoked their refresh tokens with one UPDATE that, on
/// PostgreSQL, missed the successor of a rotation in flight. Each must end
/// the family, successor included, and its `revoked_at` must cover the
/// rotation's access token.
#[tokio::test]
async fn ending_grants_by_user_sub_client_or_sid_during_a_rotation_revokes_the_successor_too() {
    let mut problems = Vec::new();
    for how in [Ender::DeleteUser, Ender::Sub, Ender::ClientId, Ender::Sid] {
        for tdb in databases() {
            let db = tdb.open().await;
            let state = state_with(Config::for_tests(&tdb.url), db.clone()).await;
            let now = T0;
            sqlx::query(
                "INSERT INTO users (user_id, username, password_hash, created_at) \
                 VALUES ('u', 'alice', 'x', 1)",
            )
            .execute(&db.pool)
            .await
            .unwrap();
            insert(&db, "h1", "fam", now.0).await;

            let rotation = begin_rotation(&db, now).await;

            let ending = {
                let state = state.clone();
                tokio::spawn(async move { end(&state, how, now).await })
            };
            until_blocked_or_done(&db, &ending).await;
            rotation.commit().await.unwrap();
            if let Err(e) = ending.await.unwrap() {
                problems.push(format!("{how:?} on {}: failed: {e}", tdb.name));
                continue;
            }

            let live = live_tokens(&db).await;
            if !live.is_empty() {
                problems.push(format!(
                    "{how:?} on {}: tokens of an ended grant still live: {live:?}",
                    tdb.name
                ));
            }
            let revoked_at: i64 = sqlx::query(
                "SELECT MAX(revoked_at) AS r FROM revocations WHERE kind IN ('sid', 'sub', 'client_id')",
            )
            .fetch_one(&db.pool)
            .await
            .unwrap()
            .try_get("r")
            .unwrap();
            if revoked_at < now.0 + 1 {
                problems.push(format!(
                    "{how:?} on {}: the entry does not cover the rotation's access token",
                    tdb.name
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// Inserts the user `u` (alice) and issues her a code for `client_id`
/// (redirect URI [`CB`], PKCE [`CHALLENGE`]); the raw code.
async fn alice_code(
    state: &gatehouse_origin::domain::state::AppState,
    client_id: &str,
    now: UnixTime,
) -> String {
    sqlx::query(
        "INSERT INTO users (user_id, username, password_hash, created_at) VALUES ('u', 'alice', 'x', 1)",
    )
    .execute(&state.db.pool)
    .await
    .unwrap();
    let code = grants::issue_code(
        &state.db,
        &grants::CodeGrant {
            client_id: client_id.to_owned(),
            user_id: "u".into(),
            redirect_uri: CB.into(),
            scopes: vec!["read".into()],
            audience: AUD.into(),
            code_challenge: CHALLENGE.into(),
            dpop_jkt: None,
            session: grants::ApprovingSession {
                sid: crate::support::live_session(&state.db, "u").await,
                auth_time: 1,
                amr: "pwd".into(),
            },
            nonce: None,
        },
        now,
    )
    .await
    .unwrap();
    code.expose().to_owned()
}

/// Refreshes `rt` for `client` now.
async fn refresh(
    state: &gatehouse_origin::domain::state::AppState,
    client: &gatehouse_origin::domain::clients::Client,
    rt: &str,
) -> Result<gatehouse_origin::domain::token::TokenResponse, gatehouse_origin::domain::error::Error>
{
    grants::refresh(
        &state.token_path().unwrap(),
        client,
        grants::Refresh {
            refresh_token: rt,
            scope: None,
            jkt: None,
        },
        gatehouse_origin::domain::token::RequestContext {
            ip: None,
            now: crate::support::now(),
            client_as_of: None,
        },
    )
    .await
}

async fn redeem(
    state: &gatehouse_origin::domain::state::AppState,
    client: &gatehouse_origin::domain::clients::Client,
    code: &str,
) -> Result<gatehouse_origin::domain::token::TokenResponse, gatehouse_origin::domain::error::Error>
{
    grants::redeem_code(
        &state.token_path().unwrap(),
        client,
        grants::CodeRedemption {
            code,
            redirect_uri: Some(CB),
            code_verifier: Some(VERIFIER),
            jkt: None,
        },
        gatehouse_origin::domain::token::RequestContext {
            ip: None,
            now: crate::support::now(),
            client_as_of: None,
        },
    )
    .await
}

/// Found by review of 3c24e0c: the code was marked used in one statement and
/// its refresh token inserted by another. A replay landing between them
/// revoked the (still empty) family and wrote its `sid` entry; the first
/// redemption's refresh token then went in live, and refresh never read the
/// revocations, so the replayed grant lived for the refresh lifetime.
/// PostgreSQL only: a trigger holds the refresh token's INSERT on an
/// advisory lock the test owns, i.e. between the two statements.
#[tokio::test]
async fn a_code_replayed_while_its_first_redemption_is_in_flight_ends_the_refresh_token_it_gave() {
    let Some(tdb) = databases().into_iter().find(|d| d.name == "postgres") else {
        return;
    };
    let db = tdb.open().await;
    let state = state_with(Config::for_tests(&tdb.url), db.clone()).await;
    let now = crate::support::now();
    let (client, secret) = web_client(&db, false, now).await;
    assert!(secret.is_some());
    let code = alice_code(&state, &client.client_id, now).await;

    // The hook: an INSERT into refresh_tokens waits while the test holds `key`.
    let key: i64 = i64::from(rand_key());
    sqlx::query(&format!(
        "CREATE FUNCTION hold_refresh_insert() RETURNS trigger AS $$ BEGIN \
         PERFORM pg_advisory_lock_shared({key}); PERFORM pg_advisory_unlock_shared({key}); \
         RETURN NEW; END $$ LANGUAGE plpgsql"
    ))
    .execute(&db.pool)
    .await
    .unwrap();
    sqlx::query(
        "CREATE TRIGGER hold_refresh_insert BEFORE INSERT ON refresh_tokens \
         FOR EACH ROW EXECUTE FUNCTION hold_refresh_insert()",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let mut holder = db.pool.acquire().await.unwrap();
    sqlx::query(&format!("SELECT pg_advisory_lock({key})"))
        .execute(&mut *holder)
        .await
        .unwrap();

    let first = {
        let (state, client, code) = (state.clone(), client.clone(), code.clone());
        tokio::spawn(async move { redeem(&state, &client, &code).await })
    };
    // Wait until the first redemption is held at the refresh token's INSERT.
    let mut held = false;
    for _ in 0..200 {
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM pg_locks WHERE locktype = 'advisory' \
             AND objid::bigint = $1 AND NOT granted",
        )
        .bind(key)
        .fetch_one(&db.pool)
        .await
        .unwrap()
        .try_get("n")
        .unwrap();
        if n > 0 {
            held = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        held,
        "the first redemption never reached the refresh INSERT"
    );
    // The replay (an attacker holding the code and verifier) meanwhile.
    let replay = {
        let (state, client, code) = (state.clone(), client.clone(), code.clone());
        tokio::spawn(async move { redeem(&state, &client, &code).await })
    };
    tokio::time::sleep(Duration::from_millis(1000)).await;
    sqlx::query(&format!("SELECT pg_advisory_unlock({key})"))
        .execute(&mut *holder)
        .await
        .unwrap();
    drop(holder);
    let first = first.await.unwrap().expect("the first redemption succeeds");
    let replayed = replay.await.unwrap();
    assert!(
        matches!(
            replayed,
            Err(gatehouse_origin::domain::error::Error::InvalidGrant(_))
        ),
        "the replay is refused: {replayed:?}"
    );
    let rt = first.refresh_token.expect("a refresh token");
    let refreshed = refresh(&state, &client, &rt).await;
    assert!(
        matches!(
            refreshed,
            Err(gatehouse_origin::domain::error::Error::InvalidGrant(_))
        ),
        "the replayed grant's refresh token still works: {refreshed:?}"
    );
}

/// An advisory lock key of this test's own (the server is shared).
fn rand_key() -> u32 {
    let id = gatehouse_origin::support::secret::random_id().unwrap();
    id.bytes()
        .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
        & 0x7fff_ffff
}

/// A TCP relay to PostgreSQL that, once armed, passes the next `COMMIT` on
/// and then drops the connection before the answer comes back: the
/// transaction commits, the client sees only a broken connection.
async fn commit_dropping_relay(
    upstream: std::net::SocketAddr,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let armed = std::sync::Arc::new(AtomicBool::new(false));
    let arm = armed.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let armed = armed.clone();
            tokio::spawn(async move {
                let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let (mut a, mut b) = (vec![0u8; 65_536], vec![0u8; 65_536]);
                loop {
                    tokio::select! {
                        n = client.read(&mut a) => {
                            let Ok(n) = n else { return };
                            if n == 0 || server.write_all(&a[..n]).await.is_err() {
                                return;
                            }
                            let commit = a[..n].windows(6).any(|w| w == b"COMMIT");
                            if commit && armed.swap(false, Ordering::SeqCst) {
                                // Let the server commit, then drop both ends
                                // unanswered.
                                tokio::time::sleep(Duration::from_millis(300)).await;
                                return;
                            }
                        }
                        n = server.read(&mut b) => {
                            let Ok(n) = n else { return };
                            if n == 0 || client.write_all(&b[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    (addr, arm)
}

/// Found by review of 3c24e0c (was unverified): when a group commit's
/// COMMIT succeeded on PostgreSQL but its acknowledgement was lost, the
/// fallback re-applied each rotation alone, found the token rotated (by
/// itself) and answered the legitimate client as a reuse — revoking its
/// family. Reproduced through a relay that drops the connection after
/// passing the COMMIT on.
#[tokio::test]
async fn a_lost_commit_acknowledgement_does_not_revoke_an_innocent_family() {
    let Some(url) = pg_url() else {
        return;
    };
    use std::sync::atomic::Ordering;
    let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
    let host_port = rest
        .split_once('@')
        .map_or(rest, |(_, h)| h)
        .split('/')
        .next()
        .unwrap();
    let upstream = tokio::net::lookup_host(host_port)
        .await
        .unwrap()
        .next()
        .unwrap();
    let (relay, armed) = commit_dropping_relay(upstream).await;
    let relayed = url.replacen(host_port, &relay.to_string(), 1);
    let schema = format!("t_lostack_{}", rand_key());
    let db = gatehouse_origin::store::db::Db::connect_in_schema(&relayed, Some(&schema))
        .await
        .unwrap();
    db.migrate().await.unwrap();
    let state = state_with(Config::for_tests(&relayed), db.clone()).await;
    let now = crate::support::now();
    let (client, _) = web_client(&db, false, now).await;
    let code = alice_code(&state, &client.client_id, now).await;
    let first = redeem(&state, &client, &code).await.unwrap();
    let rt = first.refresh_token.expect("a refresh token");

    armed.store(true, Ordering::SeqCst);
    let refreshed = refresh(&state, &client, &rt).await;
    assert!(
        !armed.load(Ordering::SeqCst),
        "the relay dropped a COMMIT's acknowledgement"
    );
    let revoked: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM refresh_tokens WHERE revoked_at IS NOT NULL")
            .fetch_one(&db.pool)
            .await
            .unwrap()
            .try_get("n")
            .unwrap();
    assert!(
        refreshed.is_ok() && revoked == 0,
        "the legitimate refresh was taken for a reuse: {refreshed:?}, {revoked} tokens revoked"
    );
}
