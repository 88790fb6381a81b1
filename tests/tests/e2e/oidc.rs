//! OpenID Connect through the real binaries: an id_token is never an access
//! token (the edge refuses it, introspection calls it inactive), and an
//! independent implementation — Python's Authlib, pinned in
//! tests/requirements.txt and installed by scripts/setup into `.venv` —
//! validates the origin's discovery document and a real id_token (`iss`,
//! `aud`, signature, `nonce`, `at_hash`, `auth_time`).

use crate::harness::login::{create_user, login_with, CB, VERIFIER};
use crate::harness::{http, jwt_claims, repo_root, web_client_args, Origin, Stack};
use serde_json::{json, Value};
use std::io::Write as _;
use std::process::{Command, Stdio};

fn token(origin: &Origin, id: &str, secret: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = http()
        .post(format!("{}/token", origin.url))
        .basic_auth(id, Some(secret))
        .form(form)
        .send()
        .expect("POST /token");
    let s = r.status().as_u16();
    (s, r.json().unwrap_or(Value::Null))
}

/// Logs `user` in for `client` with `scope=openid read` and `nonce`, and
/// redeems the code; returns the token response.
fn openid_tokens(origin: &Origin, id: &str, secret: &str, user: &str, nonce: &str) -> Value {
    let (code, _) = login_with(
        &origin.url,
        &origin.url,
        id,
        user,
        &[("scope", "openid read"), ("nonce", nonce)],
    );
    let (s, tok) = token(
        origin,
        id,
        secret,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
            ("code_verifier", VERIFIER),
        ],
    );
    assert_eq!(s, 200, "{tok}");
    tok
}

#[test]
fn an_id_token_is_refused_by_the_edge_and_inactive_at_introspection() {
    let stack = Stack::start();
    let origin = &stack.origin;
    create_user(origin, "alice");
    let web = origin.create_client("rp", "openid read", &stack.edge.url, &web_client_args(CB));
    let secret = web.secret.clone().expect("confidential");
    let tok = openid_tokens(origin, &web.id, &secret, "alice", "e2e-nonce");
    let at = tok["access_token"].as_str().expect("access_token");
    let id_token = tok["id_token"].as_str().expect("id_token");
    assert_eq!(jwt_claims(id_token)["nonce"], "e2e-nonce");
    let edge = |t: &str| {
        http()
            .get(format!("{}/orders/1", stack.edge.url))
            .header("authorization", format!("Bearer {t}"))
            .send()
            .expect("edge answers")
    };
    assert_eq!(edge(at).status(), 200, "the access token works");
    let refused = edge(id_token);
    assert_eq!(refused.status(), 401, "an id_token is not an access token");
    let challenge = refused.headers()["www-authenticate"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(challenge.contains("invalid_token"), "{challenge}");
    // Introspection by the resource server: the id_token is inactive.
    let rs = origin.create_client(
        "rs",
        "read",
        &stack.edge.url,
        &["--serves", &stack.edge.url],
    );
    let introspect = |t: &str| -> Value {
        http()
            .post(format!("{}/introspect", origin.url))
            .basic_auth(&rs.id, rs.secret.as_deref())
            .form(&[("token", t)])
            .send()
            .expect("POST /introspect")
            .json()
            .expect("JSON")
    };
    assert_eq!(introspect(at)["active"], true);
    assert_eq!(introspect(id_token), json!({"active": false}));
}

/// Runs `script` with the `.venv` Python scripts/setup installs, `input` on
/// stdin; returns stdout (the script's JSON verdict).
fn authlib(script: &str, input: &Value) -> Value {
    let python = repo_root().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup (it installs tests/requirements.txt)",
        python.display()
    );
    let mut child = Command::new(python)
        .args(["-W", "ignore", "-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.to_string().as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("python exits");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "python printed no JSON: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Authlib's checks: `OpenIDProviderMetadata.validate()` on the document;
/// `CodeIDToken` on the id_token (signature against the JWKS, `iss`, `aud`,
/// `exp`, `iat`, `nonce`, `at_hash` of the access token, `auth_time`);
/// then the same id_token with a wrong nonce and another access token,
/// which must fail (the validator really checks).
const AUTHLIB: &str = r#"
import json, sys
from authlib.oidc.discovery import OpenIDProviderMetadata
from authlib.oidc.core import CodeIDToken
from authlib.jose import jwt, JsonWebKey

inp = json.load(sys.stdin)
out = {}
try:
    OpenIDProviderMetadata(inp["doc"]).validate()
    out["metadata"] = "valid"
except Exception as e:
    out["metadata"] = "invalid: %s" % e

keys = JsonWebKey.import_key_set(inp["jwks"])
def check(nonce, access_token):
    try:
        claims = jwt.decode(
            inp["id_token"], keys,
            claims_cls=CodeIDToken,
            claims_options={"iss": {"essential": True, "value": inp["issuer"]},
                            "aud": {"essential": True, "value": inp["client_id"]}},
            claims_params={"nonce": nonce, "client_id": inp["client_id"],
                           "access_token": access_token},
        )
        claims.validate(leeway=5)
        return "valid"
    except Exception as e:
        return "invalid: %s: %s" % (type(e).__name__, e)

out["id_token"] = check(inp["nonce"], inp["access_token"])
out["wrong_nonce"] = check("another-nonce", inp["access_token"])
out["wrong_access_token"] = check(inp["nonce"], inp["access_token"] + "x")
print(json.dumps(out))
"#;

#[test]
fn authlib_validates_the_discovery_document_and_a_real_id_token() {
    // OpenID Connect Discovery §3 requires RS256 among the id_token
    // algorithms; the origin advertises only what its keys sign with, so
    // this origin signs with RS256.
    let origin = Origin::start_on_suite_database(&[("GATEHOUSE_SIGNING_ALG", "RS256")]);
    create_user(&origin, "alice");
    let web = origin.create_client(
        "rp",
        "openid read",
        "https://api.example",
        &web_client_args(CB),
    );
    let secret = web.secret.clone().expect("confidential");
    let get = |path: &str| -> Value {
        http()
            .get(format!("{}{path}", origin.url))
            .send()
            .expect("GET")
            .json()
            .expect("JSON")
    };
    let doc = get("/.well-known/openid-configuration");
    let jwks = get("/.well-known/jwks.json");
    let nonce = "n-0S6_WzA2Mj";
    let tok = openid_tokens(&origin, &web.id, &secret, "alice", nonce);
    let verdict = authlib(
        AUTHLIB,
        &json!({
            "doc": doc,
            "jwks": jwks,
            "issuer": origin.url,
            "client_id": web.id,
            "nonce": nonce,
            "id_token": tok["id_token"],
            "access_token": tok["access_token"],
        }),
    );
    assert_eq!(verdict["metadata"], "valid", "{verdict}");
    assert_eq!(verdict["id_token"], "valid", "{verdict}");
    assert!(
        verdict["wrong_nonce"]
            .as_str()
            .is_some_and(|v| v.starts_with("invalid")),
        "{verdict}"
    );
    assert!(
        verdict["wrong_access_token"]
            .as_str()
            .is_some_and(|v| v.starts_with("invalid")),
        "{verdict}"
    );
}
