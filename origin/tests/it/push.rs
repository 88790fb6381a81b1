//! The revocation pusher against local HTTP receivers: a fake edge that
//! verifies the document like the worker (signature against the JWKS, no
//! rollback, 409 for older versions) and can fail on demand, and a fake
//! Cloudflare KV API that checks the documented request shape.

use crate::support::now;
use crate::support::*;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{post, put};
use axum::{Json, Router};
use gatehouse_common::jwk::JwkSet;
use gatehouse_common::provider::SignatureVerifier as _;
use gatehouse_common::revocation::{
    RevocationKind, RevocationList, RevocationPolicy, UntrustedRevocationDocument,
};
use gatehouse_common::UnixTime;
use gatehouse_origin::config::{CloudflareKv, Config, PushTarget};
use gatehouse_origin::domain::revocation_push::{self, Cycle, PushClient, PushError, PushSchedule};
use gatehouse_origin::domain::state::AppState;
use gatehouse_origin::store::revocation;
use gatehouse_origin::support::crypto::AwsLc;
use gatehouse_origin::support::secret::CloudflareApiToken;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ISSUER: &str = "http://127.0.0.1:8080";

#[derive(Default)]
struct Edge {
    jwks: Option<JwkSet>,
    fail_next: usize,
    held: Option<RevocationList>,
    /// Versions accepted, in arrival order.
    accepted: Vec<u64>,
    refused: usize,
    content_types: Vec<String>,
    /// Each call's (`traceparent`, `Gatehouse-Request-Id`).
    trace_headers: Vec<(String, String)>,
    last_raw: String,
}

type Shared = Arc<Mutex<Edge>>;

async fn ingest(State(edge): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mut e = edge.lock().unwrap();
    e.content_types.push(
        headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
    );
    let header = |name: &str| {
        let all: Vec<_> = headers.get_all(name).iter().collect();
        assert_eq!(all.len(), 1, "one {name}");
        all[0].to_str().unwrap().to_owned()
    };
    let trace = (header("traceparent"), header("gatehouse-request-id"));
    e.trace_headers.push(trace);
    if e.fail_next > 0 {
        e.fail_next -= 1;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let raw = std::str::from_utf8(&body).unwrap();
    let policy = RevocationPolicy::new(ISSUER);
    let Ok(doc) = UntrustedRevocationDocument::parse(raw, &policy) else {
        return StatusCode::BAD_REQUEST;
    };
    let jwks = e.jwks.clone().unwrap();
    let key = jwks.select(doc.kid(), doc.header_alg()).unwrap();
    let ok = AwsLc.verify(key.jwk, key.alg, doc.signing_input(), doc.signature());
    let held = e.held.as_ref().map(RevocationList::version);
    match doc.accept(ok, &policy, held, now()) {
        Ok(list) => {
            e.accepted.push(list.version());
            e.last_raw = raw.to_owned();
            e.held = Some(list);
            StatusCode::NO_CONTENT
        }
        Err(gatehouse_common::revocation::RevocationError::Rollback { .. }) => {
            e.refused += 1;
            StatusCode::CONFLICT
        }
        Err(_) => StatusCode::UNAUTHORIZED,
    }
}

async fn start_edge(edge: Shared) -> String {
    // The worker's own cap is 8 MiB; axum's default (2 MB) would be lower.
    let app = Router::new()
        .route("/.gatehouse/revocations", post(ingest))
        .layer(axum::extract::DefaultBodyLimit::max(16 * 1024 * 1024))
        .with_state(edge);
    serve(app).await
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn fast() -> PushSchedule {
    PushSchedule {
        poll: Duration::from_millis(100),
        backoff_base: Duration::from_millis(20),
        backoff_cap: Duration::from_millis(200),
        request_timeout: Duration::from_secs(5),
    }
}

fn edge_client(url: &str) -> PushClient {
    PushClient::new(
        PushTarget::Edge {
            url: url.to_owned(),
        },
        &fast(),
    )
    .unwrap()
}

async fn new_edge(state: &AppState) -> (Shared, String) {
    let edge: Shared = Arc::default();
    edge.lock().unwrap().jwks = Some(state.key_ring().unwrap().jwks(now()));
    let url = start_edge(edge.clone()).await;
    (edge, url)
}

async fn state_on(url: &str, schema: Option<&str>) -> AppState {
    let db = gatehouse_origin::store::db::Db::connect_in_schema(url, schema)
        .await
        .unwrap();
    db.migrate().await.unwrap();
    state_with(Config::for_tests(url), db).await
}

/// A port nothing listens on.
fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

#[tokio::test]
async fn outbox_is_delivered_only_after_the_edge_acknowledges() {
    for tdb in databases() {
        let state = state_on(&tdb.url, tdb.schema.as_deref()).await;
        let (edge, url) = new_edge(&state).await;
        let client = edge_client(&url);
        let t = now();
        assert_eq!(
            revocation_push::push_pending(&state.pusher(), &client, t)
                .await
                .unwrap(),
            Cycle::Idle
        );
        revocation::revoke(&state.db, RevocationKind::Jti, "j1", t.0 + 300, "test", t)
            .await
            .unwrap();
        revocation::revoke(&state.db, RevocationKind::Sid, "s1", t.0 + 330, "test", t)
            .await
            .unwrap();
        // An entry whose tokens have all expired is not carried.
        revocation::revoke(
            &state.db,
            RevocationKind::Jti,
            "old",
            t.0 - 1_000,
            "test",
            UnixTime(t.0 - 2_000),
        )
        .await
        .unwrap();
        edge.lock().unwrap().fail_next = 3;
        for attempt in 1..=3 {
            let e = revocation_push::push_pending(&state.pusher(), &client, t)
                .await
                .unwrap_err();
            assert!(
                matches!(e, PushError::Refused { status: 503, .. }),
                "{}: {e}",
                tdb.name
            );
            revocation_push::record_failure(&state.db, &e, t)
                .await
                .unwrap();
            assert_eq!(
                revocation::pending_outbox(&state.db).await.unwrap().len(),
                3
            );
            let s = revocation_push::status(
                &state.db,
                gatehouse_origin::store::revocation::CoverSpan {
                    max_token_ttl: 300,
                    leeway_secs: 30,
                },
                t,
            )
            .await
            .unwrap();
            assert_eq!(
                (s.pending, s.delivered_version, s.failures),
                (3, 0, attempt)
            );
            assert!(s.last_error.unwrap().contains("503"));
        }
        let done = revocation_push::push_pending(&state.pusher(), &client, t)
            .await
            .unwrap();
        // Every attempt reserved a version: the acknowledged one is the 4th
        // above the floor (milliseconds since the epoch).
        let fourth = u64::try_from(revocation_push::version_floor(t)).unwrap() + 3;
        assert_eq!(
            done,
            Cycle::Delivered {
                version: fourth,
                rows: 3,
                entries: 2
            },
            "{}",
            tdb.name
        );
        assert!(revocation::pending_outbox(&state.db)
            .await
            .unwrap()
            .is_empty());
        let s = revocation_push::status(
            &state.db,
            gatehouse_origin::store::revocation::CoverSpan {
                max_token_ttl: 300,
                leeway_secs: 30,
            },
            t,
        )
        .await
        .unwrap();
        assert_eq!(
            (s.latest_version, s.delivered_version, s.pending, s.failures),
            (fourth as i64, fourth as i64, 0, 0)
        );
        assert_eq!(s.last_error, None);
        {
            let e = edge.lock().unwrap();
            assert_eq!(e.accepted, vec![fourth]);
            assert!(e.content_types.iter().all(|c| c == "application/jwt"));
            let held = e.held.as_ref().unwrap();
            assert_eq!(held.len(), 2);
            // Each attempt carried a fresh trace and a request id naming
            // its document's version (what the pusher's log line names).
            assert_eq!(e.trace_headers.len(), 4);
            let floor = fourth - 3;
            for (i, (tp, rid)) in e.trace_headers.iter().enumerate() {
                let parsed = gatehouse_origin::support::request::TraceParent::parse(tp.as_bytes());
                assert!(parsed.is_some(), "{tp}");
                let prefix = format!("push-{}-", floor + i as u64);
                assert!(rid.starts_with(&prefix), "{rid} / {prefix}");
                assert!(gatehouse_origin::support::request::valid_request_id(
                    rid.as_bytes()
                ));
            }
            let mut traces: Vec<_> = e.trace_headers.iter().map(|(t, _)| &t[3..35]).collect();
            traces.dedup();
            assert_eq!(traces.len(), 4, "a new trace per push");
        }
        // Nothing new: nothing sent.
        assert_eq!(
            revocation_push::push_pending(&state.pusher(), &client, t)
                .await
                .unwrap(),
            Cycle::Idle
        );
    }
}

#[tokio::test]
async fn the_document_is_republished_periodically_and_after_rotation() {
    for tdb in databases() {
        let mut config = Config::for_tests(&tdb.url);
        config.republish_secs = 300;
        let state = state_with(config, tdb.open().await).await;
        let (edge, url) = new_edge(&state).await;
        let client = edge_client(&url);
        let t = now();
        revocation::revoke(&state.db, RevocationKind::Jti, "j1", t.0 + 300, "test", t)
            .await
            .unwrap();
        let first = revocation_push::push_pending(&state.pusher(), &client, t)
            .await
            .unwrap();
        assert!(
            matches!(first, Cycle::Delivered { rows: 1, .. }),
            "{}: {first:?}",
            tdb.name
        );
        let span = revocation::cover_span(&state.db, &state.config)
            .await
            .unwrap();
        let s = revocation_push::status(&state.db, span, t).await.unwrap();
        assert_eq!(s.mode.as_deref(), Some("edge"), "{}", tdb.name);
        // Fresh: nothing to do.
        assert_eq!(
            revocation_push::push_pending(&state.pusher(), &client, t)
                .await
                .unwrap(),
            Cycle::Idle
        );
        // 300 s later (the clock is simulated by ageing the delivery): an
        // edge whose KV lost the document heals.
        sqlx::query("UPDATE revocation_push SET delivered_at = delivered_at - 300")
            .execute(&state.db.pool)
            .await
            .unwrap();
        let again = revocation_push::push_pending(&state.pusher(), &client, t)
            .await
            .unwrap();
        assert!(
            matches!(
                again,
                Cycle::Delivered {
                    rows: 0,
                    entries: 1,
                    ..
                }
            ),
            "{}: {again:?}",
            tdb.name
        );
        // A rotation makes a new signer: re-signed at once. (The first key
        // is aged so the new one is strictly newer within this second.)
        sqlx::query(
            "UPDATE signing_keys SET active_at = active_at - 10, published_at = published_at - 10",
        )
        .execute(&state.db.pool)
        .await
        .unwrap();
        let c = &state.config;
        let rotated = gatehouse_origin::domain::keys::rotate(
            &state.db,
            &state.kek,
            c.signing_alg,
            &c.key_schedule,
            true,
            t,
        )
        .await
        .unwrap();
        state.reload_keys().await.unwrap();
        edge.lock().unwrap().jwks = Some(state.key_ring().unwrap().jwks(t));
        let resigned = revocation_push::push_pending(&state.pusher(), &client, t)
            .await
            .unwrap();
        assert!(
            matches!(resigned, Cycle::Delivered { rows: 0, .. }),
            "{}: {resigned:?}",
            tdb.name
        );
        let s = revocation_push::status(&state.db, span, t).await.unwrap();
        assert_eq!(
            s.signed_kid.as_deref(),
            Some(rotated.kid.as_str()),
            "{}",
            tdb.name
        );
        assert_eq!(edge.lock().unwrap().accepted.len(), 3, "{}", tdb.name);
    }
}

#[tokio::test]
async fn a_restarted_origin_pushes_what_a_dead_one_committed() {
    for tdb in databases() {
        // First life: the edge is unreachable; the revocation is committed.
        {
            let state = state_on(&tdb.url, tdb.schema.as_deref()).await;
            let client = edge_client(&dead_url());
            let t = now();
            revocation::revoke(
                &state.db,
                RevocationKind::ClientId,
                "c1",
                t.0 + 330,
                "test",
                t,
            )
            .await
            .unwrap();
            let e = revocation_push::push_pending(&state.pusher(), &client, t)
                .await
                .unwrap_err();
            assert!(matches!(e, PushError::Transport { .. }), "{e}");
            state.db.pool.close().await;
        }
        // Second life: a new process (pool) with the right URL, running the loop.
        let state = state_on(&tdb.url, tdb.schema.as_deref()).await;
        let (edge, url) = new_edge(&state).await;
        let task = tokio::spawn(revocation_push::run(
            state.pusher(),
            edge_client(&url),
            fast(),
        ));
        wait_for(|| !edge.lock().unwrap().accepted.is_empty()).await;
        // A revocation in this process wakes the pusher at once.
        let t = now();
        revocation::revoke(
            &state.db,
            RevocationKind::Sub,
            "alice",
            t.0 + 330,
            "test",
            t,
        )
        .await
        .unwrap();
        wait_for(|| {
            edge.lock()
                .unwrap()
                .held
                .as_ref()
                .is_some_and(|l| l.len() == 2)
        })
        .await;
        // The outbox is marked right after the acknowledgement.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !revocation::pending_outbox(&state.db)
            .await
            .unwrap()
            .is_empty()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "{}: still pending",
                tdb.name
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        task.abort();
    }
}

async fn wait_for(mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(std::time::Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn two_pushers_on_one_postgres_never_send_versions_backwards() {
    let Some(url) = pg_url() else { return };
    let schema = format!("t_push_{}", std::process::id());
    let a = state_on(&url, Some(&schema)).await;
    let b = state_on(&url, Some(&schema)).await;
    let (edge, edge_url) = new_edge(&a).await;
    let ta = tokio::spawn(revocation_push::run(
        a.pusher(),
        edge_client(&edge_url),
        fast(),
    ));
    let tb = tokio::spawn(revocation_push::run(
        b.pusher(),
        edge_client(&edge_url),
        fast(),
    ));
    let mut writers = Vec::new();
    for (n, st) in [a.clone(), b.clone()].into_iter().enumerate() {
        writers.push(tokio::spawn(async move {
            for i in 0..40 {
                let t = now();
                revocation::revoke(
                    &st.db,
                    RevocationKind::Jti,
                    &format!("r{n}-{i}"),
                    t.0 + 300,
                    "test",
                    t,
                )
                .await
                .unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    wait_for(|| {
        edge.lock()
            .unwrap()
            .held
            .as_ref()
            .is_some_and(|l| l.len() == 80)
    })
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !revocation::pending_outbox(&a.db).await.unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "still pending");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ta.abort();
    tb.abort();
    let e = edge.lock().unwrap();
    assert!(
        e.accepted.windows(2).all(|w| w[0] < w[1]),
        "versions went backwards: {:?}",
        e.accepted
    );
    assert_eq!(e.refused, 0, "the push lock keeps pushes in version order");
    let values = entry_values(&e.last_raw);
    for n in 0..2 {
        for i in 0..40 {
            let jti = format!("r{n}-{i}");
            assert!(values.contains(&jti), "{jti} missing");
        }
    }
}

/// The `value`s of the entries in a signed document (its payload decoded).
fn entry_values(raw: &str) -> Vec<String> {
    use base64::Engine as _;
    let payload = raw.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    claims["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["value"].as_str().unwrap().to_owned())
        .collect()
}

#[derive(Default)]
struct FakeCloudflare {
    seen: Vec<(String, String, String, String)>,
}

async fn kv_put(
    State(cf): State<Arc<Mutex<FakeCloudflare>>>,
    Path((account, namespace, key)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<serde_json::Value>) {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if auth != "Bearer cf-test-token" {
        // As documented for a bad token.
        return (
            StatusCode::FORBIDDEN,
            Json(
                serde_json::json!({"success": false, "errors": [{"code": 10000, "message": "Authentication error"}], "messages": [], "result": null}),
            ),
        );
    }
    cf.lock().unwrap().seen.push((
        format!("{account}/{namespace}/{key}"),
        auth,
        String::from_utf8(body.to_vec()).unwrap(),
        headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
    ));
    (
        StatusCode::OK,
        Json(serde_json::json!({"success": true, "errors": [], "messages": [], "result": null})),
    )
}

fn kv(base: &str, token: &str) -> PushTarget {
    PushTarget::Cloudflare(CloudflareKv {
        api_base: base.to_owned(),
        account_id: "acc123".into(),
        namespace_id: "ns456".into(),
        key: format!("revocations/{ISSUER}"),
        api_token: CloudflareApiToken::new(token.into()),
    })
}

#[tokio::test]
async fn the_cloudflare_kv_client_sends_the_documented_request() {
    let cf: Arc<Mutex<FakeCloudflare>> = Arc::default();
    let app = Router::new()
        .route(
            "/client/v4/accounts/{account}/storage/kv/namespaces/{namespace}/values/{key}",
            put(kv_put),
        )
        .with_state(cf.clone());
    let base = format!("{}/client/v4", serve(app).await);
    let state = sqlite_state().await;
    let t = now();
    revocation::revoke(&state.db, RevocationKind::Sub, "bob", t.0 + 330, "test", t)
        .await
        .unwrap();
    // A wrong token is refused and nothing is marked delivered.
    let bad = PushClient::new(kv(&base, "wrong"), &fast()).unwrap();
    let e = revocation_push::push_pending(&state.pusher(), &bad, t)
        .await
        .unwrap_err();
    assert!(matches!(e, PushError::Refused { status: 403, .. }), "{e}");
    assert!(!format!("{e:?}").contains("wrong"));
    assert_eq!(
        revocation::pending_outbox(&state.db).await.unwrap().len(),
        1
    );
    let good = PushClient::new(kv(&base, "cf-test-token"), &fast()).unwrap();
    assert!(!format!("{good:?}").contains("cf-test-token"));
    let done = revocation_push::push_pending(&state.pusher(), &good, t)
        .await
        .unwrap();
    assert!(
        matches!(
            done,
            Cycle::Delivered {
                rows: 1,
                entries: 1,
                ..
            }
        ),
        "{done:?}"
    );
    let seen = cf.lock().unwrap().seen.clone();
    assert_eq!(seen.len(), 1);
    let (path, auth, body, content_type) = &seen[0];
    // The worker's key, percent-encoded in the path and decoded by the server.
    assert_eq!(path, "acc123/ns456/revocations/http://127.0.0.1:8080");
    assert_eq!(auth, "Bearer cf-test-token");
    assert_eq!(content_type, "text/plain");
    // The value is the signed document itself, as the edge reads it from KV.
    let doc = UntrustedRevocationDocument::parse(body, &RevocationPolicy::new(ISSUER)).unwrap();
    // The refused attempt reserved the first version.
    assert_eq!(
        doc.version(),
        u64::try_from(revocation_push::version_floor(t)).unwrap() + 1
    );
}

#[tokio::test]
async fn cloudflare_without_success_true_is_not_an_acknowledgement() {
    let app = Router::new().route(
        "/accounts/{a}/storage/kv/namespaces/{n}/values/{k}",
        put(|| async {
            Json(serde_json::json!({"success": false, "errors": [{"code": 10001, "message": "x"}], "messages": [], "result": null}))
        }),
    );
    let base = serve(app).await;
    let state = sqlite_state().await;
    let t = now();
    revocation::revoke(&state.db, RevocationKind::Jti, "j", t.0 + 330, "test", t)
        .await
        .unwrap();
    let c = PushClient::new(kv(&base, "t"), &fast()).unwrap();
    let e = revocation_push::push_pending(&state.pusher(), &c, t)
        .await
        .unwrap_err();
    assert!(matches!(e, PushError::NotAcknowledged), "{e}");
    assert_eq!(
        revocation::pending_outbox(&state.db).await.unwrap().len(),
        1
    );
}

fn raw_len(edge: &Shared) -> usize {
    edge.lock().unwrap().last_raw.len()
}

/// Writes `count` live `jti` revocations (`flood-0`, `flood-1`, …) directly,
/// in one transaction.
async fn insert_jti_flood(
    db: &gatehouse_origin::store::db::Db,
    count: usize,
    revoked_at: i64,
    drop_after: i64,
    reason: &str,
) {
    let mut tx = db.pool.begin().await.unwrap();
    let rows: Vec<usize> = (0..count).collect();
    for chunk in rows.chunks(1_000) {
        let values = (0..chunk.len())
            .map(|i| format!("(${}, 'jti', $1, $2, $3)", i + 4))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO revocations (value, kind, revoked_at, drop_after, reason) VALUES {values}"
        );
        let mut q = sqlx::query(&sql)
            .bind(revoked_at)
            .bind(drop_after)
            .bind(reason);
        for n in chunk {
            q = q.bind(format!("flood-{n}"));
        }
        q.execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
}

/// Issue 17.5: any client can fill the revocation table with `jti` entries
/// by revoking its own tokens (RFC 7009). Once more were live than one
/// document may carry, `claim` failed with `TooManyEntries` and nothing —
/// not even an operator's emergency `sub` revocation — reached the edge.
/// Now the document keeps operator revocations first, leaves out the
/// excess single-token entries, and says so in `/metrics`.
#[tokio::test]
async fn an_admin_sub_revocation_is_pushed_even_over_the_entry_cap() {
    use gatehouse_common::revocation::MAX_ENTRIES;
    for tdb in databases() {
        let state = state_with(Config::for_tests(&tdb.url), tdb.open().await).await;
        let (edge, url) = new_edge(&state).await;
        let client = edge_client(&url);
        let t = now();
        // The flood, written directly: MAX_ENTRIES + 50 live `jti` entries
        // from RFC 7009 revocations.
        insert_jti_flood(&state.db, MAX_ENTRIES + 50, t.0, t.0 + 300, "rfc7009").await;
        // The operator's emergency revocation of a subject.
        let span = revocation::cover_span(&state.db, &state.config)
            .await
            .unwrap();
        gatehouse_origin::domain::introspect::revoke_identifier(
            &state.db,
            span,
            RevocationKind::Sub,
            "compromised-user",
            "admin api",
            t,
        )
        .await
        .unwrap();
        let done = revocation_push::push_pending(&state.pusher(), &client, t).await;
        // As many as fit in the edge's 8 MiB (fewer than MAX_ENTRIES here).
        assert!(
            matches!(done, Ok(Cycle::Delivered { entries, .. }) if entries > 60_000 && entries <= MAX_ENTRIES),
            "{}: {done:?}",
            tdb.name
        );
        assert!(raw_len(&edge) <= 8 * 1024 * 1024, "{}", tdb.name);
        let raw = edge.lock().unwrap().last_raw.clone();
        let payload = raw.split('.').nth(1).unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&gatehouse_common::b64::decode(payload).unwrap()).unwrap();
        let entries = claims["entries"].as_array().unwrap();
        assert!(
            entries
                .iter()
                .any(|e| e["kind"] == "sub" && e["value"] == "compromised-user"),
            "{}: the admin revocation was left out",
            tdb.name
        );
        let metrics = state.metrics.render();
        let left_out: usize = metrics
            .lines()
            .find_map(|l| l.strip_prefix("gatehouse_revocations_left_out "))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(
            left_out >= 51
                && metrics.contains(&format!("gatehouse_revocations_live {}", MAX_ENTRIES + 51)),
            "{}: {metrics}",
            tdb.name
        );
    }
}

/// Review of 3c24e0c: over the caps the document kept the newest entries of
/// a priority first, so a client that revokes its own tokens (RFC 7009) in
/// bulk pushed another client's older `jti` revocation out of the document
/// and the edge accepted that revoked token again. Entries of one priority
/// are now shared out per revoking client (round robin), so a flood only
/// ever displaces the flooder's own entries.
#[tokio::test]
async fn a_flood_of_own_revocations_cannot_push_out_another_clients_revocation() {
    use gatehouse_common::revocation::MAX_ENTRIES;
    for tdb in databases() {
        let state = state_with(Config::for_tests(&tdb.url), tdb.open().await).await;
        let (edge, url) = new_edge(&state).await;
        let client = edge_client(&url);
        let victim = register(&state, "read", false).await;
        let attacker = register(&state, "read", false).await;
        let mut jtis = Vec::new();
        for who in [&victim, &attacker] {
            let (s, _, b) = token(&state, who, "grant_type=client_credentials&scope=read").await;
            assert_eq!(s, 200, "{}: {b}", tdb.name);
            let at = b["access_token"].as_str().unwrap().to_owned();
            let payload = at.split('.').nth(1).unwrap();
            let claims: serde_json::Value =
                serde_json::from_slice(&gatehouse_common::b64::decode(payload).unwrap()).unwrap();
            jtis.push(claims["jti"].as_str().unwrap().to_owned());
            let req = form_post("/revoke", Some(&basic(&who.id, &who.secret)), "")
                .body(axum::body::Body::from(format!("token={at}")))
                .unwrap();
            assert_eq!(send(&state, req).await.0, 200, "{}", tdb.name);
        }
        // The attacker's flood: copies of its own (real) revocation row,
        // newer than the victim's, more than one document can carry.
        let row = sqlx::query(
            "SELECT drop_after, reason FROM revocations WHERE kind = 'jti' AND value = $1",
        )
        .bind(jtis[1].clone())
        .fetch_one(&state.db.pool)
        .await
        .unwrap();
        let drop_after: i64 = sqlx::Row::try_get(&row, "drop_after").unwrap();
        let reason: String = sqlx::Row::try_get(&row, "reason").unwrap();
        let t = now();
        insert_jti_flood(&state.db, MAX_ENTRIES + 50, t.0 + 1, drop_after, &reason).await;
        let done = revocation_push::push_pending(&state.pusher(), &client, UnixTime(t.0 + 1)).await;
        assert!(
            matches!(done, Ok(Cycle::Delivered { .. })),
            "{}: {done:?}",
            tdb.name
        );
        let values = entry_values(&edge.lock().unwrap().last_raw);
        assert!(
            values.contains(&jtis[0]),
            "{}: the victim's revoked token is valid again at the edge",
            tdb.name
        );
    }
}
