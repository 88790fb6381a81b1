#![allow(dead_code)]
//! Starts the real parts on free ports — the `gatehouse-origin` binary, the
//! demo upstream, and `wrangler dev` (workerd) running the built edge — and
//! stops them again when the [`Stack`] is dropped, also when a test fails.
//!
//! Prerequisites (done by `scripts/test`): `cargo build --bins` for the origin
//! and upstream, and `scripts/build-edge` for the worker bundle.
//!
//! Helpers that more than one test module uses live here too: [`login`]
//! (a user's login and consent through the origin's pages) and [`forge`]
//! (forged tokens and DPoP proofs).

pub mod fake_issuer;
pub mod forge;
pub mod login;

use serde_json::Value;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_gatehouse-demo-upstream"))
        .parent()
        .expect("bin dir")
        .to_path_buf()
}

/// A port for a server this test process starts.
///
/// Ports come from below the kernel's ephemeral range (32768–60999 on
/// Linux): a port taken from that range with `bind(0)` and released can be
/// reused a moment later as the source port of any outgoing connection (the
/// tests make thousands), and then workerd fails with "Address already in
/// use". Each port is handed out once per process, and only if it binds now.
pub fn free_port() -> u16 {
    use std::sync::atomic::AtomicU32;
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Start somewhere that depends on the process, so concurrent runs differ.
    let _ = NEXT.compare_exchange(
        0,
        1 + std::process::id().wrapping_mul(7919) % SPAN,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let port = u16::try_from(LOW + n % SPAN).expect("port in range");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port below the ephemeral range");
}

/// A scratch directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "gatehouse-e2e-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process (and its process group) killed on drop.
pub struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(name: &'static str, mut cmd: Command, log: PathBuf) -> Self {
        use std::os::unix::process::CommandExt;
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Self { name, child, log }
    }

    /// The process id (for reading /proc).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's output so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the whole process group: SIGTERM, then SIGKILL after a grace period.
    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let pgid = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-TERM", "--", &pgid])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &pgid])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }

    /// Kills the whole process group at once (as a crash would).
    pub fn kill9(&mut self) {
        let pgid = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &pgid])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("---- {} log ----\n{}", self.name, self.log());
        }
    }
}

pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

fn wait_until_up(url: &str, proc: &mut Proc, timeout: Duration) {
    let client = http();
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(r) = client.get(url).send() {
            if r.status().is_success() {
                return;
            }
        }
        if let Ok(Some(status)) = proc.child.try_wait() {
            panic!(
                "{} exited ({status}) before answering {url}:\n{}",
                proc.name,
                proc.log()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{} did not answer {url} in time:\n{}",
            proc.name,
            proc.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The origin binary with its own data directory and database.
pub struct Origin {
    pub url: String,
    pub port: u16,
    pub data: TempDir,
    pub database_url: String,
    pub proc: Proc,
    /// The PostgreSQL database this origin owns, dropped after the process stops.
    pg: Option<crate::database::Database>,
}

/// The database the suite's origins use: SQLite in the origin's directory,
/// or, when `GATEHOUSE_E2E_DATABASE=postgres` (scripts/test's second e2e
/// pass), a fresh PostgreSQL database on `GATEHOUSE_TEST_DATABASE_URL`'s server.
fn suite_database(data: &TempDir) -> (String, Option<crate::database::Database>) {
    match std::env::var("GATEHOUSE_E2E_DATABASE").as_deref() {
        Ok("postgres") => {
            let base = std::env::var("GATEHOUSE_TEST_DATABASE_URL").expect(
                "GATEHOUSE_E2E_DATABASE=postgres needs GATEHOUSE_TEST_DATABASE_URL (the server to use)",
            );
            let db = crate::database::fresh_database(&base, "e2e");
            (db.url.clone(), Some(db))
        }
        Ok("sqlite") | Err(_) => (
            format!("sqlite://{}/gatehouse.db", data.path().display()),
            None,
        ),
        Ok(other) => panic!("GATEHOUSE_E2E_DATABASE={other}: expected sqlite or postgres"),
    }
}

pub fn origin_binary() -> PathBuf {
    let bin = bin_dir().join("gatehouse-origin");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p gatehouse-origin` (scripts/test does)",
        bin.display()
    );
    bin
}

impl Origin {
    /// Starts `gatehouse-origin serve` in a fresh directory on the suite's
    /// database (SQLite, or PostgreSQL on the suite's PostgreSQL pass).
    pub fn start() -> Self {
        Self::start_on_suite_database(&[])
    }

    /// [`Origin::start`] with `extra_env`.
    pub fn start_on_suite_database(extra_env: &[(&str, &str)]) -> Self {
        let data = TempDir::new("origin");
        let (database_url, pg) = suite_database(&data);
        let mut origin = Self::start_with(data, database_url, extra_env);
        origin.pg = pg;
        origin
    }

    pub fn start_with(data: TempDir, database_url: String, extra_env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let mut cmd = Command::new(origin_binary());
        cmd.arg("serve");
        Self::env(&mut cmd, &url, port, data.path(), &database_url);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut proc = Proc::spawn("origin", cmd, data.path().join("origin.log"));
        wait_until_up(
            &format!("{url}/.well-known/jwks.json"),
            &mut proc,
            Duration::from_secs(60),
        );
        Self {
            url,
            port,
            data,
            database_url,
            proc,
            pg: None,
        }
    }

    fn env(cmd: &mut Command, url: &str, port: u16, dir: &Path, database_url: &str) {
        cmd.env("GATEHOUSE_LISTEN", format!("127.0.0.1:{port}"))
            .env("GATEHOUSE_ISSUER", url)
            .env("GATEHOUSE_DATABASE_URL", database_url)
            .env("GATEHOUSE_DATA_DIR", dir)
            .env("GATEHOUSE_ADMIN_TOKEN", ADMIN_TOKEN)
            // `serve` refuses to start without a KEK (or `--dev`).
            .env("GATEHOUSE_KEK", E2E_KEK)
            .env_remove("GATEHOUSE_CONFIG");
    }

    /// Kills the origin at once (`kill -9`, as a crash) and starts it again
    /// on the same port, data directory and database with `extra_env`.
    pub fn crash_and_restart(&mut self, extra_env: &[(&str, &str)]) {
        self.proc.kill9();
        let mut cmd = Command::new(origin_binary());
        cmd.arg("serve");
        Self::env(
            &mut cmd,
            &self.url,
            self.port,
            self.data.path(),
            &self.database_url,
        );
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut proc = Proc::spawn(
            "origin (restarted)",
            cmd,
            self.data.path().join("origin-restarted.log"),
        );
        wait_until_up(
            &format!("{}/.well-known/jwks.json", self.url),
            &mut proc,
            Duration::from_secs(60),
        );
        self.proc = proc;
    }

    /// Runs a CLI command against this origin's database and returns its stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut cmd = Command::new(origin_binary());
        cmd.args(args);
        Self::env(
            &mut cmd,
            &self.url,
            self.port,
            self.data.path(),
            &self.database_url,
        );
        let out = cmd.output().expect("run gatehouse-origin");
        assert!(
            out.status.success(),
            "gatehouse-origin {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// Registers a confidential client and returns its credentials.
    pub fn create_client(
        &self,
        name: &str,
        scope: &str,
        audience: &str,
        extra: &[&str],
    ) -> ClientCreds {
        let mut args = vec![
            "client",
            "create",
            "--name",
            name,
            "--scope",
            scope,
            "--audience",
            audience,
        ];
        args.extend_from_slice(extra);
        let out: Value =
            serde_json::from_str(self.cli(&args).trim()).expect("client create prints JSON");
        ClientCreds {
            id: out["client_id"].as_str().expect("client_id").to_owned(),
            secret: out["client_secret"].as_str().map(str::to_owned),
        }
    }

    /// client_credentials with client_secret_basic; returns the token response.
    pub fn client_credentials(&self, client: &ClientCreds, extra: &[(&str, &str)]) -> Value {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend_from_slice(extra);
        let resp = http()
            .post(format!("{}/token", self.url))
            .basic_auth(&client.id, client.secret.as_deref())
            .form(&form)
            .send()
            .expect("POST /token");
        let status = resp.status();
        let body: Value = resp.json().expect("token response is JSON");
        assert_eq!(status, 200, "token request failed: {body}");
        body
    }
}

/// The key-encryption key of the suite's origins (base64url of 32 bytes).
pub const E2E_KEK: &str = "ZTJlLWhhcm5lc3Mta2VrLTAxMjM0NTY3ODlhYmNkZWY";

pub const ADMIN_TOKEN: &str = "e2e-admin-token-0123456789abcdef0123456789abcdef";

/// The edge's `HEALTH_ADMIN_TOKEN` in every test edge: the health endpoint
/// shows its details (keys, revocation versions, configuration) only to it.
pub const HEALTH_TOKEN: &str = "e2e-health-token-0123456789abcdef0123456789abcdef";

#[derive(Clone, Debug)]
pub struct ClientCreds {
    pub id: String,
    pub secret: Option<String>,
}

/// The demo upstream.
pub struct Upstream {
    pub url: String,
    pub proc: Proc,
    _dir: TempDir,
}

impl Upstream {
    pub fn start() -> Self {
        Self::start_with_env(&[])
    }

    /// [`Upstream::start`] with `env` (e.g. `GATEHOUSE_ASSERTION_JWK`).
    pub fn start_with_env(env: &[(&str, &str)]) -> Self {
        let dir = TempDir::new("upstream");
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse-demo-upstream"));
        cmd.arg(format!("127.0.0.1:{port}"));
        cmd.envs(env.iter().copied());
        let mut proc = Proc::spawn("upstream", cmd, dir.path().join("upstream.log"));
        let url = format!("http://127.0.0.1:{port}");
        wait_until_up(&format!("{url}/ready"), &mut proc, Duration::from_secs(30));
        Self {
            url,
            proc,
            _dir: dir,
        }
    }
}

/// The worker name of the Analytics Engine stand-in ([`Edge::start_with_metrics_stub`]).
const METRICS_STUB: &str = "gatehouse-metrics-stub";

/// `wrangler dev` running the prebuilt edge with a generated config.
pub struct Edge {
    pub url: String,
    pub proc: Proc,
    pub dir: TempDir,
}

impl Edge {
    /// The health endpoint's details (asked with [`HEALTH_TOKEN`]).
    pub fn health(&self) -> Option<Value> {
        http()
            .get(format!("{}/.gatehouse/health", self.url))
            .bearer_auth(HEALTH_TOKEN)
            .send()
            .ok()?
            .json()
            .ok()
    }

    /// `wrangler kv <args>` against this edge's local KV (its config and
    /// persisted state), as an operator would run it.
    pub fn wrangler_kv(&self, args: &[&str]) -> Command {
        let root = repo_root();
        let mut cmd = Command::new(root.join("node_modules/.bin/wrangler"));
        cmd.current_dir(&root)
            .arg("kv")
            .args(args)
            .arg("--config")
            .arg(self.dir.path().join("wrangler.toml"))
            .arg("--persist-to")
            .arg(self.dir.path().join("state"))
            .env("CI", "true")
            .env("WRANGLER_SEND_METRICS", "false")
            .env("WRANGLER_SEND_ERROR_REPORTS", "false");
        cmd
    }

    /// Writes `value` under `key` in this edge's local KV `binding`, as an
    /// operator with `wrangler kv key put` would (the running edge reads it).
    pub fn kv_put(&self, binding: &str, key: &str, value: &str) {
        let status = self
            .wrangler_kv(&["key", "put", "--binding", binding, "--local", key, value])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("wrangler kv key put");
        assert!(status.success(), "wrangler kv key put {key} failed");
    }

    /// Reads `key` from this edge's local KV `binding` (`None` when absent).
    pub fn kv_get(&self, binding: &str, key: &str) -> Option<String> {
        let out = self
            .wrangler_kv(&["key", "get", "--binding", binding, "--local", key])
            .stderr(Stdio::null())
            .output()
            .expect("wrangler kv key get");
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (out.status.success() && text.split('.').count() == 3).then_some(text)
    }

    /// Starts the edge for `origin`'s issuer, forwarding to `upstream`;
    /// `vars` override or add `[vars]`.
    pub fn start(origin: &Origin, upstream: &Upstream, vars: &[(&str, &str)]) -> Self {
        Self::start_on(free_port(), origin, upstream, vars)
    }

    /// Like [`Edge::start`], on a port chosen beforehand (so the origin can be told it).
    pub fn start_on(
        port: u16,
        origin: &Origin,
        upstream: &Upstream,
        vars: &[(&str, &str)],
    ) -> Self {
        Self::start_edited(port, origin, upstream, vars, &|_| {})
    }

    /// Like [`Edge::start_on`], with `edit` applied to the generated
    /// `wrangler.toml` last (e.g. to remove a binding).
    pub fn start_edited(
        port: u16,
        origin: &Origin,
        upstream: &Upstream,
        vars: &[(&str, &str)],
        edit: &dyn Fn(&mut toml::Table),
    ) -> Self {
        Self::start_full(port, origin, upstream, vars, edit, false)
    }

    /// Like [`Edge::start`], with the Analytics Engine stand-in
    /// (tests/fixtures/metrics-stub) run beside the edge in the same
    /// `wrangler dev` and bound as `METRICS` instead of the dataset (which
    /// drops writes locally): every data point the edge writes is a
    /// `{"event":"analytics_engine_point",...}` line of the edge's log
    /// ([`Edge::data_points`]).
    pub fn start_with_metrics_stub(
        port: u16,
        origin: &Origin,
        upstream: &Upstream,
        vars: &[(&str, &str)],
    ) -> Self {
        let edit = |cfg: &mut toml::Table| {
            cfg.remove("analytics_engine_datasets");
            let mut binding = toml::Table::new();
            binding.insert("binding".into(), "METRICS".into());
            binding.insert("service".into(), METRICS_STUB.into());
            binding.insert("entrypoint".into(), "Dataset".into());
            cfg.insert(
                "services".into(),
                toml::Value::Array(vec![toml::Value::Table(binding)]),
            );
        };
        Self::start_full(port, origin, upstream, vars, &edit, true)
    }

    /// The data points the edge wrote to the stub so far, oldest first.
    pub fn data_points(&self) -> Vec<Value> {
        self.proc
            .log()
            .lines()
            .filter_map(|l| {
                let start = l.find("{\"event\":\"analytics_engine_point\"")?;
                serde_json::from_str::<Value>(&l[start..]).ok()
            })
            .map(|v| v["point"].clone())
            .collect()
    }

    /// The edge's `request` log lines so far, oldest first.
    pub fn request_lines(&self) -> Vec<Value> {
        self.proc
            .log()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(&l[l.find('{')?..]).ok())
            .filter(|v| v["event"] == "request")
            .collect()
    }

    fn start_full(
        port: u16,
        origin: &Origin,
        upstream: &Upstream,
        vars: &[(&str, &str)],
        edit: &dyn Fn(&mut toml::Table),
        metrics_stub: bool,
    ) -> Self {
        let root = repo_root();
        let shim = root.join("edge/build/worker/shim.mjs");
        assert!(
            shim.exists(),
            "{} is missing: run scripts/build-edge (scripts/test does)",
            shim.display()
        );
        let url = format!("http://127.0.0.1:{port}");
        let dir = TempDir::new("edge");
        let mut cfg: toml::Table = std::fs::read_to_string(root.join("wrangler.toml"))
            .expect("wrangler.toml")
            .parse()
            .expect("wrangler.toml parses");
        cfg.remove("build");
        cfg.insert(
            "main".into(),
            toml::Value::String(shim.display().to_string()),
        );
        let mut v = toml::Table::new();
        v.insert("ISSUER".into(), origin.url.clone().into());
        v.insert("AUDIENCE".into(), url.clone().into());
        v.insert(
            "JWKS_URL".into(),
            format!("{}/.well-known/jwks.json", origin.url).into(),
        );
        v.insert("UPSTREAM_URL".into(), upstream.url.clone().into());
        v.insert("HEALTH_ADMIN_TOKEN".into(), HEALTH_TOKEN.into());
        for (k, val) in vars {
            // `{EDGE}` in a value stands for this edge's own URL (e.g. an audience).
            v.insert((*k).into(), val.replace("{EDGE}", &url).into());
        }
        cfg.insert("vars".into(), toml::Value::Table(v));
        edit(&mut cfg);
        let config_path = dir.path().join("wrangler.toml");
        std::fs::write(&config_path, toml::to_string(&cfg).expect("serialize"))
            .expect("write config");
        let stub_config = dir.path().join("metrics-stub.toml");
        if metrics_stub {
            let mut stub = toml::Table::new();
            stub.insert("name".into(), METRICS_STUB.into());
            stub.insert(
                "main".into(),
                root.join("tests/fixtures/metrics-stub/worker.mjs")
                    .display()
                    .to_string()
                    .into(),
            );
            stub.insert(
                "compatibility_date".into(),
                cfg["compatibility_date"].clone(),
            );
            std::fs::write(&stub_config, toml::to_string(&stub).expect("serialize"))
                .expect("write stub config");
        }
        let mut cmd = Command::new(root.join("node_modules/.bin/wrangler"));
        cmd.current_dir(&root)
            .args([
                "dev",
                "--local",
                "--ip",
                "127.0.0.1",
                "--show-interactive-dev-session=false",
            ])
            .arg("--config")
            .arg(&config_path);
        if metrics_stub {
            // The first config is the edge (served on --port); the stub runs
            // beside it, reachable only through the service binding.
            cmd.arg("--config").arg(&stub_config);
        }
        cmd.args([
            "--port",
            &port.to_string(),
            "--inspector-port",
            &free_port().to_string(),
        ])
        .arg("--persist-to")
        .arg(dir.path().join("state"))
        .env("CI", "true")
        .env("WRANGLER_SEND_METRICS", "false")
        .env("WRANGLER_SEND_ERROR_REPORTS", "false")
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
        .env("WRANGLER_LOG_PATH", dir.path().join("wrangler-logs"));
        let mut proc = Proc::spawn("wrangler dev", cmd, dir.path().join("wrangler.log"));
        wait_until_up(
            &format!("{url}/.gatehouse/health"),
            &mut proc,
            Duration::from_secs(120),
        );
        Self { url, proc, dir }
    }
}

/// Origin + upstream + edge, started together.
pub struct Stack {
    pub edge: Edge,
    pub upstream: Upstream,
    pub origin: Origin,
}

impl Stack {
    pub fn start() -> Self {
        Self::start_with_edge_vars(&[])
    }

    pub fn start_with_edge_vars(vars: &[(&str, &str)]) -> Self {
        let origin = Origin::start();
        let upstream = Upstream::start();
        let edge = Edge::start_retrying(&origin, &upstream, vars);
        Self {
            edge,
            upstream,
            origin,
        }
    }

    /// A confidential client whose tokens are for this edge.
    pub fn client(&self, scope: &str) -> ClientCreds {
        self.origin.create_client("e2e", scope, &self.edge.url, &[])
    }
}

impl Stack {
    /// Origin + upstream + edge where the origin pushes revocations to the
    /// edge (`GATEHOUSE_EDGE_URL`): the edge's port is chosen first.
    pub fn start_linked(origin_env: &[(&str, &str)], edge_vars: &[(&str, &str)]) -> Self {
        let edge_port = free_port();
        let edge_url = format!("http://127.0.0.1:{edge_port}");
        let mut env: Vec<(&str, &str)> = vec![("GATEHOUSE_EDGE_URL", edge_url.as_str())];
        env.extend_from_slice(origin_env);
        let origin = Origin::start_on_suite_database(&env);
        let upstream = Upstream::start();
        let edge = Edge::start_on(edge_port, &origin, &upstream, edge_vars);
        Self {
            edge,
            upstream,
            origin,
        }
    }
}

impl Edge {
    /// Like [`Edge::start`], tried once more on fresh ports when `wrangler
    /// dev` fails to start: a port `free_port` picked can be taken by a
    /// parallel test before workerd binds it ("Address already in use").
    pub fn start_retrying(origin: &Origin, upstream: &Upstream, vars: &[(&str, &str)]) -> Self {
        let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Self::start(origin, upstream, vars)
        }));
        first.unwrap_or_else(|_| Self::start(origin, upstream, vars))
    }
}

/// The browser demo page (`gatehouse-demo-page` serving `demo/`, with the
/// wasm-pack output that `scripts/build-demo` puts in `demo/pkg`) on an
/// origin of its own, configured for `origin`, `edge` and a public client.
pub struct DemoPage {
    pub url: String,
    pub proc: Proc,
    _dir: TempDir,
}

impl DemoPage {
    /// Starts the page server on `port` (chosen first, so the origin's and
    /// the edge's CORS settings and the client's redirect URI can name it).
    pub fn start_on(port: u16, origin: &Origin, edge: &Edge, client_id: &str) -> Self {
        let root = repo_root();
        let pkg = root.join("demo/pkg/gatehouse_browser.js");
        assert!(
            pkg.exists(),
            "{} is missing: run scripts/build-demo (scripts/test does)",
            pkg.display()
        );
        let dir = TempDir::new("demo-page");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse-demo-page"));
        cmd.arg("--dir")
            .arg(root.join("demo"))
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--origin", &origin.url, "--edge", &edge.url])
            .args(["--client-id", client_id]);
        let mut proc = Proc::spawn("demo page", cmd, dir.path().join("demo-page.log"));
        let url = format!("http://127.0.0.1:{port}/");
        wait_until_up(&url, &mut proc, Duration::from_secs(30));
        Self {
            url,
            proc,
            _dir: dir,
        }
    }
}

/// Seconds since the Unix epoch, for `iat`/`exp` of tokens signed in tests.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// `tag` made unique within this test run (process id and a counter).
pub fn unique(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// The claims of a JWS, read without checking its signature.
pub fn jwt_claims(jwt: &str) -> Value {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).expect("a JWS");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// Serves `body` as a JWKS (JSON, `max-age=60`) on every path from a std
/// thread, answering after one read of the request; returns its base URL.
pub fn serve_jwks(body: String) -> String {
    use std::io::{Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "http://127.0.0.1:{}",
        listener.local_addr().expect("addr").port()
    );
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncache-control: max-age=60\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
                body.len(),
                body
            );
            let _ = stream.write_all(resp.as_bytes());
        }
    });
    url
}

/// The `client create` arguments of a web client: the authorization code
/// and refresh token grants, and `redirect_uri`.
pub fn web_client_args(redirect_uri: &str) -> Vec<&str> {
    vec![
        "--grant",
        "authorization_code",
        "--grant",
        "refresh_token",
        "--redirect-uri",
        redirect_uri,
    ]
}

/// Sets the flag when dropped during a panic, so that the other load
/// threads of a scope stop and the scope can end (and report the panic).
pub(crate) struct StopOnPanic<'a>(pub(crate) &'a AtomicBool);

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::SeqCst);
        }
    }
}
