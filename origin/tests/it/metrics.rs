//! `/metrics` moves with real traffic (issue 22): tokens by grant and
//! client, refresh rotations and reuse detections, revocations by kind,
//! logins ok/failed, rate limits, the pusher's lag gauges and the signing
//! key's age on the server's settable clock; the route label is the matched
//! template, never a raw path; and every metric the dashboard
//! (`ops/grafana/gatehouse.json`) and the alert rules
//! (`ops/prometheus/alerts.yml`) name is one the origin exports.

use crate::support::*;
use axum::body::Body;
use axum::http::Request;
use gatehouse_origin::domain::grants::{self, CodeGrant};
use gatehouse_origin::domain::state::AppState;
use gatehouse_origin::support::clock::SettableClock;
use http_body_util::BodyExt as _;
use std::collections::{BTreeMap, BTreeSet};
use tower::ServiceExt as _;

/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// The scrape: content type and body.
async fn scrape(state: &AppState) -> (String, String) {
    let resp = gatehouse_origin::http::router(state.clone())
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let ct = resp
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (ct, String::from_utf8(bytes.to_vec()).unwrap())
}

/// The samples of a scrape: `name{labels}` → value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

async fn value(state: &AppState, series: &str) -> f64 {
    samples(&scrape(state).await.1)
        .get(series)
        .copied()
        .unwrap_or(0.0)
}

/// Every sample name the scrape can carry: from each `# TYPE` line, with
/// the suffixes its type gives its samples.
fn exported_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for l in text.lines() {
        let Some(rest) = l.strip_prefix("# TYPE ") else {
            continue;
        };
        let (name, kind) = rest.split_once(' ').unwrap();
        match kind {
            "counter" => {
                out.insert(format!("{name}_total"));
            }
            "histogram" => {
                for s in ["_bucket", "_sum", "_count"] {
                    out.insert(format!("{name}{s}"));
                }
            }
            _ => {
                out.insert(name.to_owned());
            }
        }
    }
    out
}

/// The `gatehouse_…` metric names in `expr`.
fn names_in(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("gatehouse_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    out
}

async fn code_for(state: &AppState, client_id: &str, user_id: &str) -> String {
    grants::issue_code(
        &state.db,
        &CodeGrant {
            client_id: client_id.to_owned(),
            user_id: user_id.to_owned(),
            redirect_uri: CB.into(),
            scopes: vec!["read".into()],
            audience: AUD.into(),
            code_challenge: CHALLENGE.into(),
            dpop_jkt: None,
            session: grants::ApprovingSession {
                sid: crate::support::live_session(&state.db, user_id).await,
                auth_time: 1,
                amr: "pwd".into(),
            },
            nonce: None,
        },
        state.clock.now().secs(),
    )
    .await
    .unwrap()
    .expose()
    .to_owned()
}

#[tokio::test]
async fn metrics_are_openmetrics_and_a_token_counts_once_with_grant_and_client() {
    let state = sqlite_state().await;
    let (ct, _) = scrape(&state).await;
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    let c = register(&state, "read", false).await;
    let series = format!(
        "gatehouse_tokens_issued_total{{grant=\"client_credentials\",alg=\"ES256\",token_type=\"Bearer\",client=\"{}\"}}",
        c.id
    );
    assert_eq!(value(&state, &series).await, 0.0);
    let (s, _, t) = token(&state, &c, "grant_type=client_credentials").await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(value(&state, &series).await, 1.0);
    let (_, text) = scrape(&state).await;
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
    assert!(
        text.contains("gatehouse_request_duration_seconds_count{route=\"/token\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("gatehouse_http_responses_total{route=\"/token\",status=\"200\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn odd_paths_do_not_make_new_route_labels() {
    let state = sqlite_state().await;
    for p in [
        "/no/such/path",
        "/admin/clients/x%2F..%2F..",
        "/token/../../etc",
        "/.well-known/anything-else",
    ] {
        let _ = send(&state, Request::get(p).body(Body::empty()).unwrap()).await;
    }
    let (_, text) = scrape(&state).await;
    let routes: BTreeSet<&str> = text
        .lines()
        .filter(|l| l.starts_with("gatehouse_request_duration_seconds_count"))
        .filter_map(|l| l.split("route=\"").nth(1)?.split('"').next())
        .collect();
    assert!(
        routes
            .iter()
            .all(|r| !r.contains("no/such") && !r.contains("..") && !r.contains("anything-else")),
        "a raw path became a label: {routes:?}"
    );
    assert!(routes.contains("unmatched"), "{routes:?}");
}

/// A code redeemed, its refresh token rotated, then presented again: the
/// counters checked at each step. Returns nothing; the state keeps the counts.
async fn refresh_then_reuse(state: &AppState, clock: &SettableClock) {
    let t0 = state.clock.now().secs();
    let (client, secret) = web_client(&state.db, false, t0).await;
    let c = Registered {
        id: client.client_id.clone(),
        secret: secret.unwrap().expose().to_owned(),
    };
    let user = create_user(&state.db, "alice", t0).await;
    let code = code_for(state, &c.id, &user.user_id).await;
    clock.advance_secs(1);
    let (s, _, t) = token(
        state,
        &c,
        &format!(
            "grant_type=authorization_code&code={code}&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&code_verifier={VERIFIER}"
        ),
    )
    .await;
    assert_eq!(s, 200, "{t}");
    let first = t["refresh_token"].as_str().unwrap().to_owned();
    let rotations = format!("gatehouse_refresh_rotations_total{{client=\"{}\"}}", c.id);
    let reuse = format!(
        "gatehouse_refresh_reuse_detections_total{{client=\"{}\"}}",
        c.id
    );
    let sid = "gatehouse_revocations_total{kind=\"sid\"}";
    assert_eq!(value(state, &rotations).await, 0.0);
    clock.advance_secs(5);
    let (s, _, t) = token(
        state,
        &c,
        &format!("grant_type=refresh_token&refresh_token={first}"),
    )
    .await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(value(state, &rotations).await, 1.0);
    assert_eq!(value(state, &reuse).await, 0.0);
    assert_eq!(value(state, sid).await, 0.0);
    // The rotated token again: reuse, the family revoked through its sid.
    clock.advance_secs(5);
    let (s, _, e) = token(
        state,
        &c,
        &format!("grant_type=refresh_token&refresh_token={first}"),
    )
    .await;
    assert_eq!(
        (s, e["error"].as_str()),
        (400, Some("invalid_grant")),
        "{e}"
    );
    assert_eq!(value(state, &reuse).await, 1.0);
    assert_eq!(value(state, sid).await, 1.0);
    assert_eq!(value(state, &rotations).await, 1.0);
}

#[tokio::test]
async fn a_refresh_rotates_and_a_reuse_is_detected_and_revokes_by_sid() {
    let (state, clock) = sqlite_state_on_settable_clock(|_| {}).await;
    refresh_then_reuse(&state, &clock).await;
    // A revocation means a pending outbox row (no pusher runs here): the
    // lag gauges show it, aged by the server's clock.
    clock.advance_secs(40);
    let got = samples(&scrape(&state).await.1);
    assert!(got["gatehouse_revocation_pusher_pending"] >= 1.0, "{got:?}");
    assert_eq!(
        got["gatehouse_revocation_pusher_oldest_pending_seconds"], 40.0,
        "{got:?}"
    );
    assert_eq!(got["gatehouse_revocation_pusher_acked_version"], 0.0);
    assert_eq!(
        got["gatehouse_revocation_pusher_since_ack_seconds"], -1.0,
        "never acknowledged"
    );
}

#[tokio::test]
async fn the_signing_key_age_follows_the_servers_clock() {
    let (state, clock) = sqlite_state_on_settable_clock(|_| {}).await;
    let got = samples(&scrape(&state).await.1);
    let age0 = got["gatehouse_signing_key_age_seconds"];
    assert!(age0 >= 0.0, "a signer exists: {got:?}");
    #[allow(clippy::cast_precision_loss)]
    let period = state.config.key_schedule.active_period as f64;
    assert_eq!(got["gatehouse_signing_key_period_seconds"], period);
    clock.advance_secs(100);
    let got = samples(&scrape(&state).await.1);
    assert_eq!(got["gatehouse_signing_key_age_seconds"], age0 + 100.0);
    assert!(got["gatehouse_db_pool_connections"] >= 1.0, "{got:?}");
    assert!(got.contains_key("gatehouse_db_pool_idle_connections"));
}

/// A minimal browser: the cookies it holds.
#[derive(Default)]
struct Browser {
    cookies: BTreeMap<String, String>,
}

impl Browser {
    async fn call(
        &mut self,
        state: &AppState,
        req: axum::http::request::Builder,
        body: Body,
    ) -> (u16, String) {
        let mut req = req;
        if !self.cookies.is_empty() {
            let h = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            req = req.header("cookie", h);
        }
        let resp = gatehouse_origin::http::router(state.clone())
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = resp.status().as_u16();
        for c in resp.headers().get_all("set-cookie") {
            let pair = c.to_str().unwrap().split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            self.cookies.insert(k.to_owned(), v.to_owned());
        }
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap() + marker.len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end]
        .replace("&amp;", "&")
        .replace("&quot;", "\"")
}

#[tokio::test]
async fn logins_count_ok_and_failed() {
    let state = sqlite_state().await;
    let (client, _) = web_client(&state.db, true, now()).await;
    create_user(&state.db, "alice", now()).await;
    let q = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", client.client_id.as_str()),
            ("redirect_uri", CB),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("scope", "read"),
            ("state", "st"),
        ])
        .finish();
    let mut b = Browser::default();
    let (s, page) = b
        .call(
            &state,
            Request::get(format!("/authorize?{q}")),
            Body::empty(),
        )
        .await;
    assert_eq!(s, 200, "{page}");
    let login = |password: &'static str| {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("request", hidden(&page, "request").as_str()),
                ("csrf", hidden(&page, "csrf").as_str()),
                ("username", "alice"),
                ("password", password),
            ])
            .finish()
    };
    let post = || {
        Request::post("/authorize/login")
            .header("content-type", "application/x-www-form-urlencoded")
    };
    let (s, _) = b
        .call(&state, post(), Body::from(login("wrong password")))
        .await;
    assert_eq!(s, 401);
    let got = samples(&scrape(&state).await.1);
    assert_eq!(
        got.get("gatehouse_logins_total{result=\"failed\"}"),
        Some(&1.0)
    );
    assert_eq!(got.get("gatehouse_logins_total{result=\"ok\"}"), Some(&0.0));
    let (s, body) = b
        .call(&state, post(), Body::from(login("correct horse battery")))
        .await;
    assert_eq!(s, 303, "{body}");
    let got = samples(&scrape(&state).await.1);
    assert_eq!(got.get("gatehouse_logins_total{result=\"ok\"}"), Some(&1.0));
    assert_eq!(
        got.get("gatehouse_logins_total{result=\"failed\"}"),
        Some(&1.0)
    );
}

#[tokio::test]
async fn rate_limited_requests_count_by_route() {
    let state = sqlite_state_with(|c| c.token_rate_per_minute = 2).await;
    let c = register(&state, "read", false).await;
    let mut limited = 0;
    for _ in 0..5 {
        let (s, _, _) = token(&state, &c, "grant_type=client_credentials").await;
        if s == 429 {
            limited += 1;
        }
    }
    assert!(limited >= 1, "the limit never applied");
    assert_eq!(
        value(&state, "gatehouse_rate_limited_total{route=\"/token\"}").await,
        f64::from(limited)
    );
}

/// The dashboard is valid JSON, every panel queries something, and every
/// metric it and the alert rules name is one the origin exports.
#[tokio::test]
async fn the_dashboard_and_alerts_name_only_exported_metrics() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // Traffic that moves every family: tokens, a rotation and a reuse (a
    // refusal, a revocation), then a rate limit.
    let (state, clock) = sqlite_state_on_settable_clock(|c| c.token_rate_per_minute = 4).await;
    refresh_then_reuse(&state, &clock).await;
    let c = register(&state, "read", false).await;
    for _ in 0..5 {
        token(&state, &c, "grant_type=client_credentials").await;
    }
    let exported = exported_names(&scrape(&state).await.1);

    let dash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("ops/grafana/gatehouse.json")).unwrap(),
    )
    .expect("the dashboard is valid JSON");
    let panels = dash["panels"].as_array().expect("panels");
    assert!(panels.len() >= 8, "{} panels", panels.len());
    let mut problems = Vec::new();
    for p in panels {
        let title = p["title"].as_str().unwrap_or("?");
        if p["type"] == "row" {
            continue;
        }
        let exprs: Vec<&str> = p["targets"]
            .as_array()
            .map(|t| t.iter().filter_map(|t| t["expr"].as_str()).collect())
            .unwrap_or_default();
        if exprs.is_empty() {
            problems.push(format!("panel {title:?} has no query"));
        }
        for e in exprs {
            let names = names_in(e);
            if names.is_empty() && !e.contains("up{") {
                problems.push(format!("panel {title:?}: {e} names no origin metric"));
            }
            for n in names {
                if !exported.contains(&n) {
                    problems.push(format!("panel {title:?}: {n} is not exported"));
                }
            }
        }
    }
    let alerts = std::fs::read_to_string(root.join("ops/prometheus/alerts.yml")).unwrap();
    for n in names_in(&alerts) {
        if !exported.contains(&n) {
            problems.push(format!("alerts.yml: {n} is not exported"));
        }
    }
    assert!(
        problems.is_empty(),
        "{problems:#?}\nexported: {exported:#?}"
    );
}

/// The pusher's gauges through a failed push, then an acknowledged one, on
/// the server's clock: pending rows, consecutive failures, the acknowledged
/// version and the seconds since it.
#[tokio::test]
async fn the_pusher_gauges_follow_failure_and_acknowledgement() {
    use gatehouse_common::revocation::RevocationKind;
    use gatehouse_origin::config::PushTarget;
    use gatehouse_origin::domain::revocation_push::{self, Cycle, PushClient, PushSchedule};

    let (state, clock) = sqlite_state_on_settable_clock(|_| {}).await;
    let client_to =
        |url: String| PushClient::new(PushTarget::Edge { url }, &PushSchedule::default()).unwrap();
    // A receiver that acknowledges anything, and a port nothing listens on.
    let app = axum::Router::new().route(
        "/.gatehouse/revocations",
        axum::routing::post(|| async { axum::http::StatusCode::NO_CONTENT }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ok_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dead_url = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };

    let t = state.clock.now().secs();
    gatehouse_origin::store::revocation::revoke(
        &state.db,
        RevocationKind::Jti,
        "j1",
        t.0 + 300,
        "test",
        t,
    )
    .await
    .unwrap();
    let got = samples(&scrape(&state).await.1);
    assert_eq!(got["gatehouse_revocations_total{kind=\"jti\"}"], 1.0);
    assert_eq!(got["gatehouse_revocation_pusher_pending"], 1.0);

    clock.advance_secs(3);
    let t = state.clock.now().secs();
    let e = revocation_push::push_pending(&state.pusher(), &client_to(dead_url), t)
        .await
        .unwrap_err();
    revocation_push::record_failure(&state.db, &e, t)
        .await
        .unwrap();
    let got = samples(&scrape(&state).await.1);
    assert_eq!(got["gatehouse_revocation_pusher_failures"], 1.0);
    assert_eq!(got["gatehouse_revocation_pusher_pending"], 1.0);
    assert_eq!(
        got["gatehouse_revocation_pusher_oldest_pending_seconds"],
        3.0
    );
    assert_eq!(got["gatehouse_revocation_pusher_since_ack_seconds"], -1.0);

    let done = revocation_push::push_pending(&state.pusher(), &client_to(ok_url), t)
        .await
        .unwrap();
    let Cycle::Delivered { version, .. } = done else {
        panic!("not delivered: {done:?}");
    };
    clock.advance_secs(7);
    let got = samples(&scrape(&state).await.1);
    assert_eq!(got["gatehouse_revocation_pusher_pending"], 0.0);
    assert_eq!(
        got["gatehouse_revocation_pusher_oldest_pending_seconds"],
        0.0
    );
    assert_eq!(got["gatehouse_revocation_pusher_failures"], 0.0);
    #[allow(clippy::cast_precision_loss)]
    let version = version as f64;
    assert_eq!(got["gatehouse_revocation_pusher_acked_version"], version);
    assert_eq!(got["gatehouse_revocation_pusher_since_ack_seconds"], 7.0);
    assert_eq!(got["gatehouse_revocations_live"], 1.0);
}

/// A malformed DPoP proof counts as a DPoP failure by its error code; a
/// key rotated through the admin API counts as a manual rotation, the
/// first key at start-up as a scheduled one.
#[tokio::test]
async fn dpop_failures_and_key_rotations_count() {
    let state = sqlite_state().await;
    let c = register(&state, "read", false).await;
    let (s, _, e) = send(
        &state,
        form_post("/token", Some(&basic(&c.id, &c.secret)), "")
            .header("dpop", "not.a.proof")
            .body(Body::from("grant_type=client_credentials"))
            .unwrap(),
    )
    .await;
    assert_eq!(
        (s, e["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "{e}"
    );
    let got = samples(&scrape(&state).await.1);
    assert_eq!(
        got["gatehouse_dpop_failures_total{reason=\"invalid_dpop_proof\"}"],
        1.0
    );
    assert_eq!(
        got["gatehouse_dpop_failures_total{reason=\"use_dpop_nonce\"}"],
        0.0
    );
    assert_eq!(
        got["gatehouse_key_rotations_total{trigger=\"schedule\"}"],
        1.0
    );
    assert_eq!(
        got["gatehouse_key_rotations_total{trigger=\"manual\"}"],
        0.0
    );
    let (s, _, k) = send(
        &state,
        Request::post("/admin/keys/rotate")
            .header("authorization", format!("Bearer {ADMIN}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{k}");
    let got = samples(&scrape(&state).await.1);
    assert_eq!(
        got["gatehouse_key_rotations_total{trigger=\"manual\"}"],
        1.0
    );
}
