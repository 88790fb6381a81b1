//! The browser demo end to end, in a real browser: Debian's headless
//! Chromium, driven by `tests/browser/demo.mjs` (npm `playwright-core`),
//! opens the demo page on an origin of its own, signs in on the origin's
//! login and consent pages (authorization code + PKCE S256, `dpop_jkt`),
//! redeems the code cross-origin for a DPoP-bound token (with the origin's
//! nonce challenge) and an id_token (`scope=openid profile`, a `nonce`),
//! checks the id_token claims and the userinfo answer the page shows, calls
//! the edge twice with fresh proofs (with the edge's nonce challenge), and
//! checks the identity the upstream received. Then it signs out through the
//! origin's `end_session_endpoint` (RP-initiated logout back to the page),
//! checks the page's signed-out state and that the edge refuses the old
//! access token within 2 s; a forged sign-out return and an id_token for
//! another nonce are refused by the page. The screenshots are kept in
//! `test-artifacts/demo.png` and `demo-signed-out.png`.

use crate::harness::login::{create_user, PASSWORD};
use crate::harness::{free_port, repo_root, DemoPage, Stack};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const USER: &str = "alice";
const CHROMIUM: &str = "/usr/bin/chromium";

/// Width and height from a PNG's IHDR chunk (PNG spec §11.2.2).
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.get(12..16) == Some(b"IHDR"),
        "not a PNG"
    );
    let be = |r: std::ops::Range<usize>| u32::from_be_bytes(bytes[r].try_into().expect("4 bytes"));
    (be(16..20), be(20..24))
}

/// Runs `node tests/browser/demo.mjs`, killing it after `limit`.
fn run_browser(envs: &[(&str, &str)], limit: Duration) -> (bool, String) {
    let root = repo_root();
    let out_path = std::env::temp_dir().join(format!("gatehouse-demo-{}.out", std::process::id()));
    let out = std::fs::File::create(&out_path).expect("output file");
    let mut child = Command::new("node")
        .arg(root.join("tests/browser/demo.mjs"))
        .current_dir(&root)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("output file"))
        .stderr(out)
        .spawn()
        .expect("node is installed (scripts/setup)");
    let deadline = Instant::now() + limit;
    let ok = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break status.success();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = std::fs::read_to_string(&out_path).unwrap_or_default();
    let _ = std::fs::remove_file(&out_path);
    (ok, text)
}

#[test]
fn the_demo_page_signs_in_with_dpop_and_shows_the_identity_the_upstream_received() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: scripts/setup installs Debian's chromium"
    );
    // The page's origin is chosen first: the origin and the edge allow it
    // (CORS) and the client registers it as its redirect URI.
    let page_port = free_port();
    let page_origin = format!("http://127.0.0.1:{page_port}");
    let stack = Stack::start_linked(
        &[
            ("GATEHOUSE_CORS_ALLOW_ORIGINS", page_origin.as_str()),
            ("GATEHOUSE_DPOP_NONCE", "true"),
        ],
        &[
            ("CORS_ALLOW_ORIGINS", page_origin.as_str()),
            ("DPOP_NONCE", "required"),
            (
                "DPOP_NONCE_SECRET",
                "e2e-demo-nonce-secret-0123456789abcdef",
            ),
        ],
    );
    let sub = create_user(&stack.origin, USER);
    // The page is both the redirect URI and the post-logout redirect URI.
    let redirect_uri = format!("{page_origin}/");
    let client = stack.origin.create_client(
        "Gatehouse demo page",
        "read openid profile",
        &stack.edge.url,
        &[
            "--public",
            "--dpop-required",
            "--grant",
            "authorization_code",
            "--redirect-uri",
            &redirect_uri,
            "--post-logout-redirect-uri",
            &redirect_uri,
        ],
    );
    assert!(client.secret.is_none(), "a public client has no secret");
    let page = DemoPage::start_on(page_port, &stack.origin, &stack.edge, &client.id);

    let screenshot = repo_root().join("test-artifacts/demo.png");
    let _ = std::fs::remove_file(&screenshot);
    let _ = std::fs::remove_file(screenshot.with_file_name("demo-failure.png"));
    let _ = std::fs::remove_file(screenshot.with_file_name("demo-signed-out.png"));
    let screenshot_text = screenshot.display().to_string();
    let (ok, output) = run_browser(
        &[
            ("DEMO_URL", page.url.as_str()),
            ("DEMO_USER", USER),
            ("DEMO_PASSWORD", PASSWORD),
            ("DEMO_SUB", sub.as_str()),
            ("DEMO_CLIENT_ID", client.id.as_str()),
            ("DEMO_ISSUER", stack.origin.url.as_str()),
            ("DEMO_SCREENSHOT", screenshot_text.as_str()),
            ("DEMO_EDGE_NONCE", "required"),
            ("CHROMIUM", CHROMIUM),
        ],
        Duration::from_secs(240),
    );
    assert!(
        ok,
        "the browser run failed:\n{output}\n---- origin log ----\n{}\n---- edge log ----\n{}\n---- page log ----\n{}",
        stack.origin.proc.log(),
        stack.edge.proc.log(),
        page.proc.log()
    );
    // A fresh user: the consent page was shown and approved in the browser.
    assert!(
        output.contains("demo: consent shown and given")
            && output.contains("demo: id_token claims and userinfo shown")
            && output.contains("demo: verified identity shown")
            && output.contains("demo: signed out; the edge refused the old token")
            && output.contains(
                "demo: a forged sign-out return and an id_token for another nonce were refused"
            ),
        "{output}"
    );

    // The screenshot is a real, full-page PNG of the page (1100 px wide),
    // not an empty or error capture.
    let png = std::fs::read(&screenshot).expect("the screenshot was saved");
    let (width, height) = png_size(&png);
    assert_eq!(width, 1100, "viewport width");
    assert!(height >= 700, "a full page, {height} px high");
    assert!(png.len() > 30_000, "{} bytes: an empty page?", png.len());
    assert!(
        screenshot.with_file_name("demo-signed-out.png").is_file(),
        "the signed-out page was captured"
    );

    // Behind the page: the sign-out ended the origin session the id_token
    // named and revoked its grant (the audit trail says so).
    let audit = Command::new(crate::harness::origin_binary())
        .args(["audit", "--limit", "200"])
        .env("GATEHOUSE_ISSUER", &stack.origin.url)
        .env("GATEHOUSE_DATABASE_URL", &stack.origin.database_url)
        .env("GATEHOUSE_DATA_DIR", stack.origin.data.path())
        .env_remove("GATEHOUSE_CONFIG")
        .output()
        .expect("run gatehouse-origin audit");
    // JSON lines: one event per line, newest first.
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&audit.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit prints JSON lines"))
        .collect();
    let audit = serde_json::Value::from(events.clone());
    let ended = events
        .iter()
        .find(|e| e["event"] == "session_ended" && e["subject"] == sub.as_str())
        .unwrap_or_else(|| panic!("no session_ended event for {sub}:\n{audit}"));
    let detail = ended["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("grants_revoked=") && !detail.contains("grants_revoked=0"),
        "the sign-out revoked no grant: {detail}"
    );

    // Behind the page: the origin issued a DPoP-bound token through the
    // authorization_code grant.
    let metrics = crate::harness::http()
        .get(format!("{}/metrics", stack.origin.url))
        .send()
        .expect("metrics")
        .text()
        .expect("metrics text");
    assert!(
        metrics
            .lines()
            .any(|l| l.contains("authorization_code") && l.contains("DPoP") && !l.starts_with('#')),
        "no DPoP authorization_code issuance in the metrics:\n{metrics}"
    );
}
