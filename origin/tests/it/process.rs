//! The real `gatehouse-origin` binary: `client create`, `serve` on port 0,
//! a token over HTTP, the JWKS, `keys list`, `revoke`, `audit`, SIGTERM.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse-origin");
/// A KEK for the servers these tests start (`serve` refuses to start without one unless `--dev`).
const KEK: &str = "cHJvY2Vzcy10ZXN0cy1rZWstMDEyMzQ1Njc4OWFiY2Q";

fn cli(env: &[(String, String)], args: &[&str]) -> serde_json::Value {
    let out = Command::new(BIN)
        .args(args)
        .envs(env.iter().cloned())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn run(database_url: String) {
    let dir = std::env::temp_dir().join(format!(
        "gh-origin-proc-{}",
        gatehouse_origin::support::secret::random_id().unwrap()
    ));
    let env = vec![
        ("GATEHOUSE_DATA_DIR".to_owned(), dir.display().to_string()),
        ("GATEHOUSE_DATABASE_URL".to_owned(), database_url),
        ("GATEHOUSE_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
        (
            "GATEHOUSE_ISSUER".to_owned(),
            "http://issuer.test".to_owned(),
        ),
        ("GATEHOUSE_KEK".to_owned(), KEK.to_owned()),
    ];
    let created = cli(
        &env,
        &[
            "client",
            "create",
            "--name",
            "demo",
            "--scope",
            "read write",
            "--audience",
            "https://api.example",
        ],
    );
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 43);

    let mut child = Command::new(BIN)
        .arg("serve")
        .envs(env.iter().cloned())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("server did not log listening");
        if line.contains("\"listening") {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            break v["fields"]["address"].as_str().unwrap().to_owned();
        }
    };
    let base = format!("http://{addr}");
    let http = reqwest::blocking::Client::new();
    let resp = http
        .post(format!("{base}/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials"), ("scope", "read")])
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: serde_json::Value = resp.json().unwrap();
    let at = body["access_token"].as_str().unwrap();
    let jwks: serde_json::Value = http
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let k = &jwks["keys"][0];
    let key = jsonwebtoken::DecodingKey::from_ec_components(
        k["x"].as_str().unwrap(),
        k["y"].as_str().unwrap(),
    )
    .unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.set_audience(&["https://api.example"]);
    v.set_issuer(&["http://issuer.test"]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(at, &key, &v)
        .unwrap()
        .claims;
    let bad = http
        .post(format!("{base}/token"))
        .basic_auth(&id, Some("nope"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .unwrap();
    assert_eq!(bad.status(), 401);

    // The CLI works against the same database while the server runs.
    let keys = cli(&env, &["keys", "list"]);
    assert_eq!(keys["keys"][0]["state"], "active");
    let rev = cli(&env, &["revoke", "--jti", claims["jti"].as_str().unwrap()]);
    assert_eq!(rev["kind"], "jti");
    let intro: serde_json::Value = http
        .post(format!("{base}/introspect"))
        .basic_auth(&id, Some(&secret))
        .form(&[("token", at)])
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(intro["active"], false);
    let audit = Command::new(BIN)
        .args(["audit", "--limit", "10"])
        .envs(env.iter().cloned())
        .output()
        .unwrap();
    assert!(audit.status.success());
    let text = String::from_utf8(audit.stdout).unwrap();
    for line in text.lines() {
        let _: serde_json::Value = serde_json::from_str(line).unwrap();
    }
    assert!(text.contains("token_issued") && !text.contains(&secret) && !text.contains(at));

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "no graceful shutdown");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(code.success(), "{code:?}");
    let logs: Vec<String> = rx.try_iter().collect();
    assert!(
        logs.iter().all(|l| !l.contains(&secret) && !l.contains(at)),
        "no secrets in logs"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn binary_on_sqlite() {
    let dir = std::env::temp_dir().join(format!(
        "gh-origin-procdb-{}",
        gatehouse_origin::support::secret::random_id().unwrap()
    ));
    run(format!("sqlite://{}", dir.join("g.db").display()));
}

#[test]
fn binary_on_postgres() {
    if let Some(url) = crate::support::fresh_pg_database("gh_proc") {
        run(url);
    }
}

/// The binary with `args` and `env`, with `GATEHOUSE_KEK` and
/// `GATEHOUSE_CONFIG` removed from the inherited environment; its stderr piped.
fn serve_without_kek(args: &[&str], env: &[(&str, String)]) -> std::process::Child {
    Command::new(BIN)
        .args(args)
        .envs(env.iter().cloned())
        .env_remove("GATEHOUSE_KEK")
        .env_remove("GATEHOUSE_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Issue 16.13: `serve` without `GATEHOUSE_KEK` silently generated a KEK
/// next to the database (protecting nothing against a stolen disk). It now
/// refuses to start unless `--dev` says this is development.
#[test]
fn serve_without_a_kek_refuses_to_start_unless_dev() {
    let dir = std::env::temp_dir().join(format!(
        "gh-origin-nokek-{}",
        gatehouse_origin::support::secret::random_id().unwrap()
    ));
    let env = [
        ("GATEHOUSE_DATA_DIR", dir.display().to_string()),
        (
            "GATEHOUSE_DATABASE_URL",
            format!("sqlite://{}", dir.join("g.db").display()),
        ),
        ("GATEHOUSE_LISTEN", "127.0.0.1:0".to_owned()),
        ("GATEHOUSE_ISSUER", "http://issuer.test".to_owned()),
    ];
    let mut child = serve_without_kek(&["serve"], &env);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr);
    let status = status.expect("serve without GATEHOUSE_KEK kept running");
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("GATEHOUSE_KEK") && stderr.contains("--dev"),
        "{stderr}"
    );
    assert!(!dir.join("kek").exists(), "a development KEK was written");

    // `--dev` starts with a development KEK.
    let mut child = serve_without_kek(&["serve", "--dev"], &env);
    let stderr = child.stderr.take().unwrap();
    let listening = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("\"listening"));
    let _ = child.kill();
    let _ = child.wait();
    assert!(listening, "serve --dev did not start");
    let _ = std::fs::remove_dir_all(dir);
}
