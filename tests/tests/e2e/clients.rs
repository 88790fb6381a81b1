//! Independent client libraries drive the real origin and edge: npm
//! `openid-client` (`tests/clients/openid-client.mjs`) with a confidential
//! client, and Python's Authlib (`tests/clients/authlib_flow.py`, in the
//! `.venv` scripts/setup installs from `tests/requirements.txt`) with a
//! public one. Each driver does discovery, authorization code + PKCE + DPoP
//! through the origin's real login and consent forms, calls the edge,
//! refreshes with rotation and reuse detection, introspects and revokes;
//! OpenID Connect steps (id_token, userinfo, PAR, RP-initiated logout) run
//! as soon as the origin's discovery advertises them. A driver prints one `ok:` line per proven
//! step; the test fails if it exits non-zero, prints a failure, or does not
//! finish.

use crate::harness::login::{create_user, PASSWORD};
use crate::harness::{http, repo_root, web_client_args, Stack};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const REDIRECT_URI: &str = "https://app.example/cb";
/// The openid-client driver's registered post-logout redirect URI.
const POST_LOGOUT_REDIRECT_URI: &str = "https://app.example/signed-out";
/// The drivers ask for `read`, and for `openid read` once the origin
/// advertises the `openid` scope.
const SCOPES: &str = "openid read";

/// Runs `program args…` in the repository root with `envs`, killing it after
/// `limit`; returns whether it succeeded and its output.
fn run_driver(
    program: &str,
    args: &[&str],
    envs: &[(&str, &str)],
    limit: Duration,
) -> (bool, String) {
    let root = repo_root();
    let out_path = std::env::temp_dir().join(format!(
        "gatehouse-client-{}-{}.out",
        std::process::id(),
        crate::harness::unique("driver")
    ));
    let out = std::fs::File::create(&out_path).expect("output file");
    let mut child = Command::new(program)
        .args(args)
        .current_dir(&root)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("output file"))
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e} (scripts/setup installs it)"));
    let deadline = Instant::now() + limit;
    let ok = loop {
        if let Some(status) = child.try_wait().expect("wait for the driver") {
            break status.success();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break false;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = std::fs::read_to_string(&out_path).unwrap_or_default();
    let _ = std::fs::remove_file(&out_path);
    (ok, text)
}

/// The steps a driver must prove for what the origin's discovery advertises
/// (OpenID Connect, userinfo, PAR, RP-initiated logout): a driver skips them
/// only while absent. `par_too`, `logout_too`: the driver implements those.
fn advertised_steps(stack: &Stack, par_too: bool, logout_too: bool) -> Vec<&'static str> {
    let mut steps = Vec::new();
    let rfc8414: Value = http()
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            stack.origin.url
        ))
        .send()
        .expect("RFC 8414 metadata")
        .json()
        .expect("JSON metadata");
    if par_too && rfc8414["pushed_authorization_request_endpoint"].is_string() {
        steps.push("PAR (RFC 9126)");
    }
    let resp = http()
        .get(format!(
            "{}/.well-known/openid-configuration",
            stack.origin.url
        ))
        .send()
        .expect("origin answers");
    if resp.status() != 200 {
        return steps;
    }
    let oidc: Value = resp.json().expect("JSON OpenID configuration");
    let openid = oidc["scopes_supported"]
        .as_array()
        .is_some_and(|s| s.contains(&"openid".into()));
    if openid {
        steps.extend(["id_token validated", "a new id_token for the same sid"]);
    }
    if oidc["userinfo_endpoint"].is_string() {
        steps.push("userinfo");
    }
    if logout_too && openid && oidc["end_session_endpoint"].is_string() {
        steps.push("RP-initiated logout");
    }
    steps
}

/// Asserts that a driver's run succeeded and proved every step in `required`.
fn assert_proved(stack: &Stack, name: &str, ok: bool, output: &str, required: &[&str]) {
    println!("{output}");
    let failed = output
        .lines()
        .any(|l| l.contains("AssertionError") || l.contains("FAILED") || l.contains("Traceback"));
    assert!(
        ok && !failed,
        "{name} failed:\n{output}\n---- origin log ----\n{}\n---- edge log ----\n{}",
        stack.origin.proc.log(),
        stack.edge.proc.log()
    );
    assert!(
        output.contains(&format!("{name}: all steps passed")),
        "{name} did not finish:\n{output}"
    );
    for step in required {
        assert!(
            output
                .lines()
                .any(|l| l.starts_with(&format!("{name}: ok: ")) && l.contains(step)),
            "{name} did not prove `{step}`:\n{output}"
        );
    }
}

#[test]
fn openid_client_completes_code_dpop_refresh_introspection_revocation_and_exchange() {
    let stack = Stack::start_linked(&[], &[]);
    let sub = create_user(&stack.origin, "olivia");
    let mut args = web_client_args(REDIRECT_URI);
    args.extend_from_slice(&[
        "--post-logout-redirect-uri",
        POST_LOGOUT_REDIRECT_URI,
        "--grant",
        "client_credentials",
        "--grant",
        "urn:ietf:params:oauth:grant-type:token-exchange",
        // It introspects and exchanges tokens for the edge's audience.
        "--serves",
        &stack.edge.url,
    ]);
    let client = stack
        .origin
        .create_client("openid-client", SCOPES, &stack.edge.url, &args);
    let secret = client.secret.clone().expect("a confidential client");
    let script = repo_root().join("tests/clients/openid-client.mjs");
    let (ok, output) = run_driver(
        "node",
        &[script.to_str().expect("utf-8 path")],
        &[
            ("GH_ISSUER", stack.origin.url.as_str()),
            ("GH_EDGE", stack.edge.url.as_str()),
            ("GH_CLIENT_ID", client.id.as_str()),
            ("GH_CLIENT_SECRET", secret.as_str()),
            ("GH_REDIRECT_URI", REDIRECT_URI),
            ("GH_USER", "olivia"),
            ("GH_PASSWORD", PASSWORD),
            ("GH_SUB", sub.as_str()),
            ("GH_POST_LOGOUT_REDIRECT_URI", POST_LOGOUT_REDIRECT_URI),
        ],
        Duration::from_secs(60),
    );
    assert_proved(
        &stack,
        "openid-client",
        ok,
        &output,
        &[
            "discovery",
            "authorization code + PKCE S256 + DPoP",
            "edge: fetchProtectedResource with a DPoP proof → 200",
            "without its proof",
            "introspection (RFC 7662)",
            "refreshTokenGrant",
            "reuse of the old refresh token → invalid_grant",
            "reuse revoked the family",
            "token exchange (RFC 8693",
            "tokenRevocation (RFC 7009)",
            "clientCredentialsGrant",
            "without DPoP: a Bearer token the edge accepts",
        ]
        .into_iter()
        .chain(advertised_steps(&stack, true, true))
        .collect::<Vec<_>>(),
    );
}

#[test]
fn authlib_completes_code_dpop_refresh_introspection_and_revocation_as_a_public_client() {
    let python = repo_root().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: scripts/setup installs tests/requirements.txt into .venv",
        python.display()
    );
    // Authlib's OpenIDProviderMetadata requires RS256 among the id_token
    // algorithms (OpenID Connect Discovery §3); the origin advertises only
    // what its keys sign with, so this origin signs with RS256.
    let stack = Stack::start_linked(&[("GATEHOUSE_SIGNING_ALG", "RS256")], &[]);
    let sub = create_user(&stack.origin, "paula");
    let mut args = vec!["--public", "--dpop-required"];
    args.extend(web_client_args(REDIRECT_URI));
    let client = stack
        .origin
        .create_client("authlib", SCOPES, &stack.edge.url, &args);
    assert!(client.secret.is_none(), "a public client has no secret");
    // The resource server: it introspects tokens for the edge's audience.
    let rs = stack.origin.create_client(
        "authlib resource server",
        "",
        &stack.edge.url,
        &["--serves", &stack.edge.url],
    );
    let rs_secret = rs.secret.clone().expect("a confidential client");
    let script = repo_root().join("tests/clients/authlib_flow.py");
    let (ok, output) = run_driver(
        python.to_str().expect("utf-8 path"),
        &[script.to_str().expect("utf-8 path")],
        &[
            ("GH_ISSUER", stack.origin.url.as_str()),
            ("GH_EDGE", stack.edge.url.as_str()),
            ("GH_CLIENT_ID", client.id.as_str()),
            ("GH_REDIRECT_URI", REDIRECT_URI),
            ("GH_RS_ID", rs.id.as_str()),
            ("GH_RS_SECRET", rs_secret.as_str()),
            ("GH_USER", "paula"),
            ("GH_PASSWORD", PASSWORD),
            ("GH_SUB", sub.as_str()),
            ("PYTHONDONTWRITEBYTECODE", "1"),
        ],
        Duration::from_secs(60),
    );
    assert_proved(
        &stack,
        "authlib",
        ok,
        &output,
        &[
            "discovery",
            "authorization code + PKCE S256 + DPoP (public client",
            "edge: the DPoP-bound token with a proof → 200",
            "without its proof → 401",
            "introspection (RFC 7662",
            "refresh_token (DPoP-bound public client)",
            "another key → invalid_grant",
            "reuse of the old refresh token → invalid_grant",
            "reuse revoked the family",
            "revoke_token (RFC 7009)",
            "revoke_token of the refresh token",
        ]
        .into_iter()
        .chain(advertised_steps(&stack, false, false))
        .collect::<Vec<_>>(),
    );
}
