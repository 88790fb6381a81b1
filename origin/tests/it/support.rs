//! Shared test fixtures: databases per test, app state, request helpers.

use axum::body::Body;
use axum::http::{Request, Response};
use gatehouse_common::UnixTime;
use gatehouse_origin::config::Config;
use gatehouse_origin::domain::clients::{self, NewClient};
use gatehouse_origin::domain::state::AppState;
use gatehouse_origin::store::db::Db;
use gatehouse_origin::support::clock::{Clock as _, SettableClock, SharedClock, SystemClock};
use gatehouse_origin::support::kek::Kek;
use http_body_util::BodyExt as _;
use std::sync::Arc;
use tower::ServiceExt as _;

pub const ADMIN: &str = "test-admin-token-0123456789";
pub const AUD: &str = "https://api.example";

/// A database for one test: a fresh SQLite file, or a fresh PostgreSQL schema.
pub struct TestDb {
    pub name: &'static str,
    pub url: String,
    pub schema: Option<String>,
}

fn unique() -> String {
    gatehouse_origin::support::secret::random_id()
        .unwrap()
        .to_lowercase()
        .replace(['-', '_'], "x")
}

/// The PostgreSQL server for a test that runs only on PostgreSQL
/// (`GATEHOUSE_TEST_DATABASE_URL`). Unset, the test is skipped and says so
/// (see [`report_postgres_skip`]); under `CI=true` it fails instead.
pub fn pg_url() -> Option<String> {
    postgres_or_skip("")
}

/// `GATEHOUSE_TEST_DATABASE_URL`, or `None` after reporting the skip. A
/// missing database is never a silent pass: the test prints a `SKIPPED:` line
/// that scripts/test counts (and subtracts from the passed tests), and under
/// `CI=true` (CI machines have PostgreSQL at 127.0.0.1:5432) it panics.
/// `part` is empty when the whole test is skipped, or names the skipped part.
fn postgres_or_skip(part: &str) -> Option<String> {
    if let Ok(url) = std::env::var("GATEHOUSE_TEST_DATABASE_URL") {
        if !url.is_empty() {
            return Some(url);
        }
    }
    report_postgres_skip(part);
    None
}

/// Reports a PostgreSQL test (or part) skipped because
/// `GATEHOUSE_TEST_DATABASE_URL` is unset; panics under `CI=true`.
pub fn report_postgres_skip(part: &str) {
    use std::io::Write as _;
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("unnamed test");
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: GATEHOUSE_TEST_DATABASE_URL is unset and CI=true: CI must run the \
         PostgreSQL tests (e.g. GATEHOUSE_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test)"
    );
    // Straight to stderr, past libtest's capture of passing tests' output.
    let line = format!("\nSKIPPED: {test}{part}: GATEHOUSE_TEST_DATABASE_URL unset\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// A PostgreSQL database of its own (so a binary's default schema is clean),
/// created on the configured server; `None` (with the skip printed) when
/// PostgreSQL is not configured. Returns its URL.
pub fn fresh_pg_database(prefix: &str) -> Option<String> {
    let url = pg_url()?;
    let name = format!("{prefix}_{}", unique());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use sqlx::Executor as _;
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        pool.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        pool.close().await;
    });
    let base = url.rsplit_once('/').map_or(url.as_str(), |(b, _)| b);
    Some(format!("{base}/{name}"))
}

/// A fresh SQLite database.
pub fn sqlite_db() -> TestDb {
    let dir = std::env::temp_dir().join(format!("gh-origin-test-{}", unique()));
    TestDb {
        name: "sqlite",
        url: format!("sqlite://{}", dir.join("t.db").display()),
        schema: None,
    }
}

/// SQLite always; PostgreSQL when configured (else its case is reported
/// skipped, or fails under `CI=true`).
pub fn databases() -> Vec<TestDb> {
    let mut out = vec![sqlite_db()];
    if let Some(url) = postgres_or_skip(" [postgres case]") {
        out.push(TestDb {
            name: "postgres",
            url,
            schema: Some(format!("t_{}", unique())),
        });
    }
    out
}

impl TestDb {
    pub async fn open(&self) -> Db {
        let db = Db::connect_in_schema(&self.url, self.schema.as_deref())
            .await
            .unwrap();
        db.migrate().await.unwrap();
        db
    }
}

pub const T0: UnixTime = UnixTime(1_800_000_000);

/// The system clock's current time (for fixtures; the server reads its own clock).
pub fn now() -> UnixTime {
    SystemClock.now().secs()
}

/// A state on the system clock.
pub async fn state_with(config: Config, db: Db) -> AppState {
    state_on_clock(config, db, SystemClock::shared()).await
}

/// A state on `clock` (a [`SettableClock`] moves time without sleeping).
pub async fn state_on_clock(config: Config, db: Db, clock: SharedClock) -> AppState {
    AppState::new(config, db, Kek::from_bytes([7; 32]), clock)
        .await
        .unwrap()
}

/// A SQLite state on a settable clock standing at the system clock's time.
pub async fn sqlite_state_on_settable_clock(
    f: impl FnOnce(&mut Config),
) -> (AppState, Arc<SettableClock>) {
    let tdb = sqlite_db();
    let mut config = Config::for_tests(&tdb.url);
    f(&mut config);
    let clock = SettableClock::starting_now();
    let state = state_on_clock(config, tdb.open().await, clock.clone()).await;
    (state, clock)
}

pub async fn sqlite_state() -> AppState {
    sqlite_state_with(|_| {}).await
}

pub async fn sqlite_state_with(f: impl FnOnce(&mut Config)) -> AppState {
    let tdb = sqlite_db();
    let mut config = Config::for_tests(&tdb.url);
    f(&mut config);
    state_with(config, tdb.open().await).await
}

pub struct Registered {
    pub id: String,
    pub secret: String,
}

impl Registered {
    /// A confidential client as [`clients::create`] returned it.
    pub fn new(
        client: clients::Client,
        secret: Option<gatehouse_origin::support::secret::ClientSecret>,
    ) -> Self {
        Self {
            id: client.client_id,
            secret: secret.unwrap().expose().to_owned(),
        }
    }
}

/// The redirect URI of the web clients registered by [`web_client`].
pub const CB: &str = "https://app.example/cb";

/// A web client (`read` on [`AUD`], authorization code and refresh token,
/// redirect URI [`CB`]), public or confidential.
pub async fn web_client(
    db: &Db,
    public: bool,
    now: UnixTime,
) -> (
    clients::Client,
    Option<gatehouse_origin::support::secret::ClientSecret>,
) {
    clients::create(
        db,
        &NewClient {
            name: "web".into(),
            public,
            scopes: vec!["read".into()],
            audiences: vec![AUD.into()],
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            redirect_uris: vec![CB.into()],
            ..NewClient::default()
        },
        now,
    )
    .await
    .unwrap()
}

/// A user `username` with the password `correct horse battery`.
pub async fn create_user(
    db: &Db,
    username: &str,
    now: UnixTime,
) -> gatehouse_origin::domain::users::User {
    gatehouse_origin::domain::users::create(
        db,
        username,
        &gatehouse_origin::support::secret::Password::new("correct horse battery".into()),
        now,
    )
    .await
    .unwrap()
}

pub async fn register(state: &AppState, scopes: &str, dpop_required: bool) -> Registered {
    let (c, s) = clients::create(
        &state.db,
        &NewClient {
            name: "t".into(),
            scopes: scopes
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            audiences: vec![AUD.into(), "https://other.example".into()],
            grant_types: vec!["client_credentials".into()],
            dpop_required,
            ..NewClient::default()
        },
        crate::support::now(),
    )
    .await
    .unwrap();
    Registered::new(c, s)
}

/// A confidential client that serves `serves` as a resource server (it may
/// introspect tokens for that audience).
pub async fn register_resource_server(state: &AppState, serves: &str) -> Registered {
    let (c, s) = clients::create(
        &state.db,
        &NewClient {
            name: "rs".into(),
            audiences: vec![AUD.into()],
            grant_types: vec!["client_credentials".into()],
            serves: vec![serves.into()],
            ..NewClient::default()
        },
        crate::support::now(),
    )
    .await
    .unwrap();
    Registered::new(c, s)
}

pub fn basic(id: &str, secret: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

pub async fn send(
    state: &AppState,
    req: Request<Body>,
) -> (u16, axum::http::HeaderMap, serde_json::Value) {
    let resp: Response<Body> = gatehouse_origin::http::router(state.clone())
        .oneshot(req)
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, headers, json)
}

pub fn form_post(path: &str, auth: Option<&str>, body: &str) -> axum::http::request::Builder {
    let mut b = Request::post(path).header("content-type", "application/x-www-form-urlencoded");
    if let Some(a) = auth {
        b = b.header("authorization", a);
    }
    let _ = body;
    b
}

pub async fn token(
    state: &AppState,
    c: &Registered,
    body: &str,
) -> (u16, axum::http::HeaderMap, serde_json::Value) {
    send(
        state,
        form_post("/token", Some(&basic(&c.id, &c.secret)), body)
            .body(Body::from(body.to_owned()))
            .unwrap(),
    )
    .await
}

/// `POST /token` of the client credentials grant authenticated by the
/// private_key_jwt `assertion` alone (RFC 7523).
pub async fn post_assertion(state: &AppState, assertion: &str) -> (u16, serde_json::Value) {
    let body = format!(
        "grant_type=client_credentials&client_assertion_type={}&client_assertion={assertion}",
        "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
    );
    let (s, _, b) = send(
        state,
        form_post("/token", None, "")
            .body(Body::from(body))
            .unwrap(),
    )
    .await;
    (s, b)
}

/// Starts a live browser session of `user_id` and returns its public
/// `sid`: a code approved "in" a session is issued only while its row
/// exists (`store::auth_codes::insert`), so tests that issue codes directly
/// need one.
pub async fn live_session(db: &gatehouse_origin::store::db::Db, user_id: &str) -> String {
    let sid = gatehouse_origin::support::secret::random_id().unwrap();
    let at = now().0;
    gatehouse_origin::store::sessions::login(
        db,
        None,
        &gatehouse_origin::store::sessions::NewSession {
            id_hash: &format!("test-{sid}"),
            sid: &sid,
            user_id,
            amr: "pwd",
            now: at,
            expires_at: at + 86_400,
        },
    )
    .await
    .unwrap()
}
