//! The user-facing grants through the real `gatehouse-origin` binary, on
//! SQLite and PostgreSQL: users from the CLI, login and consent pages
//! (posting the forms), authorization_code with PKCE, refresh rotation with
//! reuse detection, the refresh race, DPoP-bound public clients, and the
//! attack cases, each refused with the right RFC error.

use gatehouse_common::jwk::PublicJwk;
use gatehouse_common::testkit::signer::TestKey;
use reqwest::blocking::{Client as Http, Response};
use serde_json::{json, Value};
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse-origin");
const ISS: &str = "http://issuer.test";
const CB: &str = "https://app.example/cb";
const PASSWORD: &str = "correct horse battery staple";
/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

struct Server {
    base: String,
    env: Vec<(String, String)>,
    child: Child,
    http: Http,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(database_url: String) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "gh-origin-grants-{}",
            gatehouse_origin::support::secret::random_id().unwrap()
        ));
        let env = vec![
            ("GATEHOUSE_DATA_DIR".to_owned(), dir.display().to_string()),
            ("GATEHOUSE_DATABASE_URL".to_owned(), database_url),
            ("GATEHOUSE_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
            ("GATEHOUSE_ISSUER".to_owned(), ISS.to_owned()),
            (
                "GATEHOUSE_KEK".to_owned(),
                "Z3JhbnRzLXRlc3RzLWtlay0wMTIzNDU2Nzg5YWJjZGU".to_owned(),
            ),
        ];
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
                let v: Value = serde_json::from_str(&line).unwrap();
                break v["fields"]["address"].as_str().unwrap().to_owned();
            }
        };
        let http = Http::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Self {
            base: format!("http://{addr}"),
            env,
            child,
            http,
        }
    }

    fn cli(&self, args: &[&str], extra: &[(&str, &str)]) -> Value {
        let out = Command::new(BIN)
            .args(args)
            .envs(self.env.iter().cloned())
            .envs(extra.iter().map(|(k, v)| (*k, *v)))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn client(&self, public: bool) -> (String, Option<String>) {
        let mut args = vec![
            "client",
            "create",
            "--name",
            "web",
            "--scope",
            "read write",
            "--audience",
            "https://api.example",
            "--grant",
            "authorization_code",
            "--grant",
            "refresh_token",
            "--redirect-uri",
            CB,
        ];
        if public {
            args.push("--public");
        }
        let c = self.cli(&args, &[]);
        (
            c["client_id"].as_str().unwrap().to_owned(),
            c["client_secret"].as_str().map(str::to_owned),
        )
    }

    fn authorize_url(&self, client_id: &str, extra: &[(&str, &str)]) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", CB)
            .append_pair("scope", "read")
            .append_pair("state", "st-123")
            .append_pair("code_challenge", CHALLENGE)
            .append_pair("code_challenge_method", "S256");
        for (k, v) in extra {
            q.append_pair(k, v);
        }
        format!("{}/authorize?{}", self.base, q.finish())
    }
}

/// A browser: a cookie jar of name=value pairs.
#[derive(Default)]
struct Browser {
    cookies: Vec<(String, String)>,
    set_cookie_lines: Vec<String>,
}

impl Browser {
    fn header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
    fn absorb(&mut self, r: &Response) {
        for v in r.headers().get_all("set-cookie") {
            let line = v.to_str().unwrap().to_owned();
            let (kv, _) = line.split_once(';').unwrap();
            let (k, val) = kv.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != k);
            self.cookies.push((k.to_owned(), val.to_owned()));
            self.set_cookie_lines.push(line);
        }
    }
    fn get(&mut self, s: &Server, url: &str) -> (u16, String, Option<String>) {
        let r = s
            .http
            .get(url)
            .header("cookie", self.header())
            .send()
            .unwrap();
        self.absorb(&r);
        let status = r.status().as_u16();
        let loc = r
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, r.text().unwrap(), loc)
    }
    fn post(
        &mut self,
        s: &Server,
        path: &str,
        form: &[(&str, &str)],
    ) -> (u16, String, Option<String>) {
        let r = s
            .http
            .post(format!("{}{path}", s.base))
            .header("cookie", self.header())
            .form(form)
            .send()
            .unwrap();
        self.absorb(&r);
        let status = r.status().as_u16();
        let loc = r
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, r.text().unwrap(), loc)
    }
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end]
        .replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#39;", "'")
}

fn query_of(location: &str) -> Vec<(String, String)> {
    let q = location.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

fn param(location: &str, name: &str) -> Option<String> {
    query_of(location)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// Logs in and consents once; returns the browser (session + remembered consent).
fn login_and_consent(s: &Server, client_id: &str) -> (Browser, String) {
    let mut b = Browser::default();
    let (st, html, _) = b.get(s, &s.authorize_url(client_id, &[]));
    assert_eq!(st, 200, "{html}");
    let csrf = hidden(&html, "csrf");
    let request = hidden(&html, "request");
    // CSRF: a login post without the cookie (a cross-site form) is refused.
    let mut forged = Browser::default();
    let (st, _, _) = forged.post(
        s,
        "/authorize/login",
        &[
            ("request", &request),
            ("csrf", &csrf),
            ("username", "alice"),
            ("password", PASSWORD),
        ],
    );
    assert_eq!(st, 400, "login without the CSRF cookie");
    let (st, _, _) = b.post(
        s,
        "/authorize/login",
        &[
            ("request", &request),
            ("csrf", "x".repeat(43).as_str()),
            ("username", "alice"),
            ("password", PASSWORD),
        ],
    );
    assert_eq!(st, 400, "login with a wrong CSRF token");
    let (st, _, _) = b.post(
        s,
        "/authorize/login",
        &[
            ("request", &request),
            ("csrf", &csrf),
            ("username", "alice"),
            ("password", "wrong password"),
        ],
    );
    assert_eq!(st, 401);
    let (st, _, loc) = b.post(
        s,
        "/authorize/login",
        &[
            ("request", &request),
            ("csrf", &csrf),
            ("username", "alice"),
            ("password", PASSWORD),
        ],
    );
    assert_eq!(st, 303);
    let session = b
        .set_cookie_lines
        .iter()
        .find(|l| l.starts_with("__Host-gh_session="))
        .unwrap()
        .clone();
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Lax"),
        "{session}"
    );
    assert!(
        session.contains("Secure"),
        "issuer is not localhost: {session}"
    );
    let (st, html, _) = b.get(s, &format!("{}{}", s.base, loc.unwrap()));
    assert_eq!(st, 200, "consent page");
    assert!(html.contains("read"));
    let csrf = hidden(&html, "csrf");
    let request = hidden(&html, "request");
    let mut forged = Browser {
        cookies: b
            .cookies
            .iter()
            .filter(|(k, _)| k == "__Host-gh_session")
            .cloned()
            .collect(),
        ..Browser::default()
    };
    let (st, _, _) = forged.post(
        s,
        "/authorize/consent",
        &[
            ("request", &request),
            ("csrf", &csrf),
            ("decision", "approve"),
        ],
    );
    assert_eq!(st, 400, "consent without the CSRF cookie");
    let (st, _, loc) = b.post(
        s,
        "/authorize/consent",
        &[
            ("request", &request),
            ("csrf", &csrf),
            ("decision", "approve"),
        ],
    );
    assert_eq!(st, 303);
    let loc = loc.unwrap();
    assert!(loc.starts_with(CB), "{loc}");
    assert_eq!(param(&loc, "state").as_deref(), Some("st-123"));
    assert_eq!(param(&loc, "iss").as_deref(), Some(ISS));
    (b, param(&loc, "code").unwrap())
}

/// A fresh code for a public client: it always gets the consent page
/// (no silent codes to whatever listens on its redirect).
fn approved_code(s: &Server, b: &mut Browser, client_id: &str, extra: &[(&str, &str)]) -> String {
    let (st, html, loc) = b.get(s, &s.authorize_url(client_id, extra));
    assert_eq!(st, 200, "the consent page, not a silent code: {loc:?}");
    let (st, _, loc) = b.post(
        s,
        "/authorize/consent",
        &[
            ("request", &hidden(&html, "request")),
            ("csrf", &hidden(&html, "csrf")),
            ("decision", "approve"),
        ],
    );
    assert_eq!(st, 303);
    param(&loc.unwrap(), "code").unwrap()
}

/// A fresh code through the remembered consent (no pages).
fn code(s: &Server, b: &mut Browser, client_id: &str, extra: &[(&str, &str)]) -> String {
    let (st, body, loc) = b.get(s, &s.authorize_url(client_id, extra));
    assert_eq!(st, 303, "{body}");
    let loc = loc.unwrap();
    param(&loc, "code").unwrap_or_else(|| panic!("{loc}"))
}

fn token(
    s: &Server,
    id: &str,
    secret: Option<&str>,
    form: &[(&str, &str)],
    dpop: Option<&str>,
) -> (u16, Value) {
    let mut req = s.http.post(format!("{}/token", s.base));
    req = match secret {
        Some(sec) => req.basic_auth(id, Some(sec)),
        None => req,
    };
    let mut f: Vec<(&str, &str)> = form.to_vec();
    if secret.is_none() {
        f.push(("client_id", id));
    }
    if let Some(p) = dpop {
        req = req.header("DPoP", p);
    }
    let r = req.form(&f).send().unwrap();
    let st = r.status().as_u16();
    (st, r.json().unwrap_or(Value::Null))
}

fn introspect(s: &Server, id: &str, secret: &str, tok: &str) -> Value {
    s.http
        .post(format!("{}/introspect", s.base))
        .basic_auth(id, Some(secret))
        .form(&[("token", tok)])
        .send()
        .unwrap()
        .json()
        .unwrap()
}

fn redeem(
    s: &Server,
    id: &str,
    secret: Option<&str>,
    code: &str,
    verifier: &str,
    dpop: Option<&str>,
) -> (u16, Value) {
    token(
        s,
        id,
        secret,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CB),
            ("code_verifier", verifier),
        ],
        dpop,
    )
}

fn proof(key: &TestKey) -> String {
    let now = crate::support::now().0;
    key.sign(
        &json!({"typ": "dpop+jwt", "alg": key.alg().name(), "jwk": key.public_jwk_json()}),
        &json!({"jti": gatehouse_origin::support::secret::random_id().unwrap(), "htm": "POST", "htu": format!("{ISS}/token"), "iat": now}),
    )
}

fn flow(database_url: String) {
    let s = Server::start(database_url);
    let user = s.cli(
        &["user", "create", "alice"],
        &[("GATEHOUSE_USER_PASSWORD", PASSWORD)],
    );
    assert!(user["user_id"].is_string());
    assert_eq!(
        s.cli(&["user", "list"], &[])["users"][0]["username"],
        "alice"
    );
    let meta: Value = s
        .http
        .get(format!("{}/.well-known/oauth-authorization-server", s.base))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(meta["authorization_response_iss_parameter_supported"], true);

    let (id, secret) = s.client(false);
    let secret = secret.unwrap();
    let sec = Some(secret.as_str());
    let (mut b, first) = login_and_consent(&s, &id);

    // Authorization errors: untrusted redirect → page; trusted → redirect with state.
    let (st, _, loc) = b.get(
        &s,
        &s.authorize_url(&id, &[])
            .replace("app.example%2Fcb", "evil.example%2Fcb"),
    );
    assert_eq!(
        (st, loc),
        (400, None),
        "unregistered redirect_uri is never redirected to"
    );
    let plain = s.authorize_url(&id, &[]).replace("S256", "plain");
    let (st, _, loc) = b.get(&s, &plain);
    let loc = loc.unwrap();
    assert_eq!(st, 303);
    assert_eq!(
        param(&loc, "error").as_deref(),
        Some("invalid_request"),
        "{loc}"
    );
    assert_eq!(param(&loc, "state").as_deref(), Some("st-123"));
    let (_, _, loc) = b.get(
        &s,
        &s.authorize_url(&id, &[])
            .replace("response_type=code", "response_type=token"),
    );
    assert_eq!(
        param(&loc.unwrap(), "error").as_deref(),
        Some("unsupported_response_type")
    );
    let (_, _, loc) = b.get(
        &s,
        &s.authorize_url(&id, &[])
            .replace("scope=read", "scope=admin"),
    );
    assert_eq!(
        param(&loc.unwrap(), "error").as_deref(),
        Some("invalid_scope")
    );

    // The code: PKCE mismatch, redirect_uri mismatch, another client → invalid_grant.
    let c = code(&s, &mut b, &id, &[]);
    let (st, e) = redeem(&s, &id, sec, &c, &"a".repeat(43), None);
    assert_eq!(
        (st, e["error"].as_str()),
        (400, Some("invalid_grant")),
        "PKCE mismatch"
    );
    let c = code(&s, &mut b, &id, &[]);
    let (st, e) = token(
        &s,
        &id,
        sec,
        &[
            ("grant_type", "authorization_code"),
            ("code", &c),
            ("redirect_uri", "https://app.example/other"),
            ("code_verifier", VERIFIER),
        ],
        None,
    );
    assert_eq!(
        (st, e["error"].as_str()),
        (400, Some("invalid_grant")),
        "redirect_uri mismatch"
    );

    // Success, then replay: the replay fails and revokes what the code gave.
    let (st, t) = redeem(&s, &id, sec, &first, VERIFIER, None);
    assert_eq!(st, 200, "{t}");
    assert_eq!(t["token_type"], "Bearer");
    let at = t["access_token"].as_str().unwrap().to_owned();
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(rt.len(), 43);
    assert_eq!(introspect(&s, &id, &secret, &at)["active"], true);
    assert_eq!(introspect(&s, &id, &secret, &at)["sub"], user["user_id"]);
    let (st, e) = redeem(&s, &id, sec, &first, VERIFIER, None);
    assert_eq!(
        (st, e["error"].as_str()),
        (400, Some("invalid_grant")),
        "code replay"
    );
    assert_eq!(
        introspect(&s, &id, &secret, &at)["active"],
        false,
        "replay revoked the access token"
    );
    let (st, _) = token(
        &s,
        &id,
        sec,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
        None,
    );
    assert_eq!(st, 400, "replay revoked the refresh family");

    // Rotation and reuse detection.
    let c = code(&s, &mut b, &id, &[]);
    let (_, t) = redeem(&s, &id, sec, &c, VERIFIER, None);
    let (at1, rt1) = (
        t["access_token"].as_str().unwrap().to_owned(),
        t["refresh_token"].as_str().unwrap().to_owned(),
    );
    let (st, t2) = token(
        &s,
        &id,
        sec,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt1)],
        None,
    );
    assert_eq!(st, 200, "{t2}");
    let rt2 = t2["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2, "rotated");
    let (st, e) = token(
        &s,
        &id,
        sec,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt1),
            ("scope", "read write"),
        ],
        None,
    );
    assert_eq!((st, e["error"].as_str()), (400, Some("invalid_grant")));
    let (st, e) = token(
        &s,
        &id,
        sec,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt1)],
        None,
    );
    assert_eq!(
        (st, e["error"].as_str()),
        (400, Some("invalid_grant")),
        "reuse"
    );
    let (st, _) = token(
        &s,
        &id,
        sec,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt2)],
        None,
    );
    assert_eq!(st, 400, "reuse revoked the whole family");
    assert_eq!(
        introspect(&s, &id, &secret, &at1)["active"],
        false,
        "and its access tokens (sid)"
    );
    let revs = s.cli(&["revocations", "list"], &[]);
    assert!(revs.to_string().contains("\"sid\""), "{revs}");

    // Scope may only narrow on refresh.
    let c = code(&s, &mut b, &id, &[]);
    let (_, t) = redeem(&s, &id, sec, &c, VERIFIER, None);
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    let (st, e) = token(
        &s,
        &id,
        sec,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("scope", "read write"),
        ],
        None,
    );
    assert_eq!((st, e["error"].as_str()), (400, Some("invalid_scope")));

    // The race: two concurrent refreshes with one token → exactly one success.
    for _ in 0..3 {
        let c = code(&s, &mut b, &id, &[]);
        let (_, t) = redeem(&s, &id, sec, &c, VERIFIER, None);
        let rt = t["refresh_token"].as_str().unwrap().to_owned();
        let statuses: Vec<u16> = std::thread::scope(|scope| {
            let hs: Vec<_> = (0..2)
                .map(|_| {
                    scope.spawn(|| {
                        token(
                            &s,
                            &id,
                            sec,
                            &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
                            None,
                        )
                        .0
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "{statuses:?}"
        );
    }

    // A public client: refresh tokens only DPoP-bound; the key cannot be swapped.
    let (pid, _) = s.client(true);
    let mut pb = Browser {
        cookies: b.cookies.clone(),
        ..Browser::default()
    };
    let (st, html, _) = pb.get(&s, &s.authorize_url(&pid, &[]));
    assert_eq!(st, 200, "consent for the new client");
    let (_, _, loc) = pb.post(
        &s,
        "/authorize/consent",
        &[
            ("request", &hidden(&html, "request")),
            ("csrf", &hidden(&html, "csrf")),
            ("decision", "approve"),
        ],
    );
    let c = param(&loc.unwrap(), "code").unwrap();
    let (st, t) = redeem(&s, &pid, None, &c, VERIFIER, None);
    assert_eq!(st, 200, "{t}");
    assert!(
        t.get("refresh_token").is_none(),
        "no unbound refresh token for a public client"
    );
    let key = TestKey::es256("dpop-public");
    let other = TestKey::es256("dpop-other");
    let jkt = PublicJwk::from_json(key.public_jwk_json().to_string().as_bytes())
        .unwrap()
        .thumbprint()
        .to_owned();
    let c = approved_code(&s, &mut pb, &pid, &[("dpop_jkt", &jkt)]);
    let (st, e) = redeem(&s, &pid, None, &c, VERIFIER, Some(&proof(&other)));
    assert_eq!(
        (st, e["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "code bound to dpop_jkt"
    );
    let c = approved_code(&s, &mut pb, &pid, &[("dpop_jkt", &jkt)]);
    let (st, t) = redeem(&s, &pid, None, &c, VERIFIER, Some(&proof(&key)));
    assert_eq!(st, 200, "{t}");
    assert_eq!(t["token_type"], "DPoP");
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    let (st, e) = token(
        &s,
        &pid,
        None,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
        Some(&proof(&other)),
    );
    assert_eq!(
        (st, e["error"].as_str()),
        (400, Some("invalid_grant")),
        "DPoP key swap on refresh"
    );
    let (st, e) = token(
        &s,
        &pid,
        None,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
        None,
    );
    assert_eq!(
        (st, e["error"].as_str()),
        (400, Some("invalid_grant")),
        "no proof on refresh"
    );
    let (st, t) = token(
        &s,
        &pid,
        None,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
        Some(&proof(&key)),
    );
    assert_eq!(st, 200, "{t}");

    // Deleting the user revokes their tokens (sub) and ends the session.
    let c = code(&s, &mut b, &id, &[]);
    let (_, t) = redeem(&s, &id, sec, &c, VERIFIER, None);
    let at = t["access_token"].as_str().unwrap().to_owned();
    // RFC 8693: a gateway client exchanges the user's token (narrowing only).
    let gw = s.cli(
        &[
            "client",
            "create",
            "--name",
            "gw",
            "--scope",
            "read",
            "--audience",
            "https://api.example",
            "--grant",
            "urn:ietf:params:oauth:grant-type:token-exchange",
            "--serves",
            "https://api.example",
        ],
        &[],
    );
    let (gid, gsec) = (
        gw["client_id"].as_str().unwrap(),
        gw["client_secret"].as_str().unwrap(),
    );
    let tt = "urn:ietf:params:oauth:token-type:access_token";
    let (st, x) = token(
        &s,
        gid,
        Some(gsec),
        &[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", &at),
            ("subject_token_type", tt),
        ],
        None,
    );
    assert_eq!(st, 200, "{x}");
    assert_eq!(x["issued_token_type"], tt);
    let (st, x) = token(
        &s,
        gid,
        Some(gsec),
        &[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", &at),
            ("subject_token_type", tt),
            ("scope", "read write"),
        ],
        None,
    );
    assert_eq!(
        (st, x["error"].as_str()),
        (400, Some("invalid_scope")),
        "exchange cannot widen"
    );
    // private_key_jwt (RFC 7523) registered from the CLI with a JWKS file.
    let ckey = TestKey::es256("binary-pkjwt");
    let jwks_path = std::env::temp_dir().join(format!(
        "gh-jwks-{}.json",
        gatehouse_origin::support::secret::random_id().unwrap()
    ));
    std::fs::write(
        &jwks_path,
        json!({"keys": [ckey.public_jwk_json()]}).to_string(),
    )
    .unwrap();
    let pk = s.cli(
        &[
            "client",
            "create",
            "--name",
            "pk",
            "--scope",
            "read",
            "--audience",
            "https://api.example",
            "--jwks-file",
            jwks_path.to_str().unwrap(),
            // The assertion below names the token endpoint: allowed only
            // behind the per-client compatibility flag.
            "--legacy-assertion-audience",
        ],
        &[],
    );
    assert!(pk["client_secret"].is_null(), "{pk}");
    let pk_id = pk["client_id"].as_str().unwrap();
    let now = crate::support::now().0;
    let a = ckey.sign(
        &json!({"alg": "ES256", "typ": "JWT"}),
        &json!({"iss": pk_id, "sub": pk_id, "aud": format!("{ISS}/token"), "exp": now + 60, "jti": "binary-1"}),
    );
    let form = [
        ("grant_type", "client_credentials"),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", a.as_str()),
    ];
    let r = s
        .http
        .post(format!("{}/token", s.base))
        .form(&form)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = s
        .http
        .post(format!("{}/token", s.base))
        .form(&form)
        .send()
        .unwrap();
    assert_eq!(r.status(), 401, "assertion replay");
    let _ = std::fs::remove_file(jwks_path);

    s.cli(&["user", "delete", "alice"], &[]);
    assert_eq!(introspect(&s, &id, &secret, &at)["active"], false);
    let (st, _, _) = b.get(&s, &s.authorize_url(&id, &[]));
    assert_eq!(st, 200, "back to the login page");
}

#[test]
fn grants_through_the_binary_on_sqlite() {
    let dir = std::env::temp_dir().join(format!(
        "gh-origin-grantsdb-{}",
        gatehouse_origin::support::secret::random_id().unwrap()
    ));
    flow(format!("sqlite://{}", dir.join("g.db").display()));
}

#[test]
fn grants_through_the_binary_on_postgres() {
    if let Some(url) = crate::support::fresh_pg_database("gh_grants") {
        flow(url);
    }
}
