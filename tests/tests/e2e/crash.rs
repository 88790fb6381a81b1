//! `kill -9` of the origin in the middle of a mixed load — client_credentials
//! token requests, refresh-token rotations (families from the
//! authorization_code flow) and RFC 7009 revocations, all concurrent — then a
//! restart on the same database, more load, more kills. Afterwards:
//!
//! - nothing lost: every revocation answered 200 is in the database, makes
//!   introspection say inactive and is refused by the linked edge;
//! - no rotation lost or doubled: every refresh answered 200 is stored in its
//!   family, its access token is accepted by the edge unless the family was
//!   revoked, no refresh token was rotated twice, each family is one chain,
//!   and the chain's head the client holds still refreshes;
//! - the database passes its integrity checks (SQLite `integrity_check`,
//!   `foreign_key_check`; the consistency queries of [`crate::database`]).
//!
//! Runs on SQLite always, and on PostgreSQL when GATEHOUSE_TEST_DATABASE_URL
//! is set. `GATEHOUSE_CRASH_KILLS` sets the number of kills (default 3).

use crate::database::{self, Database};
use crate::harness::login::{authorize, create_user, CB, VERIFIER};
use crate::harness::{
    free_port, http, ClientCreds, Edge, Origin, Stack, StopOnPanic, TempDir, Upstream,
};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Access tokens live long enough to be checked at the edge at the end.
const ORIGIN_ENV: [(&str, &str); 2] = [
    ("GATEHOUSE_TOKEN_RATE", "1000000"),
    ("GATEHOUSE_ACCESS_TOKEN_TTL", "900"),
];
const EDGE_VARS: [(&str, &str); 3] = [
    ("RATE_LIMIT_IP", "1000000/60"),
    ("RATE_LIMIT_CLIENT", "1000000/60"),
    ("REVOCATION_TTL_SECS", "1"),
];
/// Load threads of each kind.
const TOKEN_THREADS: usize = 2;
const REVOKE_THREADS: usize = 2;
const REFRESH_FAMILIES: usize = 6;
/// Load between kills.
const LOAD_BETWEEN_KILLS: Duration = Duration::from_secs(3);

/// What one request came back with.
enum Outcome {
    /// 200 with this JSON body.
    Ok(Value),
    /// An HTTP answer other than 200.
    Refused(u16, Value),
    /// No answer (the origin died or was down): the effect is unknown.
    Unknown,
}

fn post_form(url: &str, client: &ClientCreds, form: &[(&str, &str)]) -> Outcome {
    let sent = http()
        .post(url)
        .basic_auth(&client.id, client.secret.as_deref())
        .form(form)
        .timeout(Duration::from_secs(20))
        .send();
    match sent {
        Err(_) => Outcome::Unknown,
        Ok(r) => {
            let status = r.status().as_u16();
            match r.text() {
                // The connection died while the body was read: unknown too.
                Err(_) => Outcome::Unknown,
                Ok(text) => {
                    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
                    if status == 200 {
                        Outcome::Ok(body)
                    } else {
                        Outcome::Refused(status, body)
                    }
                }
            }
        }
    }
}

/// Everything the load saw, for the checks afterwards.
#[derive(Default)]
struct Record {
    requests: usize,
    unknown: usize,
    /// Access tokens answered 200 by client_credentials (not revoked by us).
    issued: Vec<String>,
    /// Access tokens whose revocation was answered 200.
    revoked: Vec<String>,
    /// Refreshes answered 200: (family, presented token, new refresh token, new access token).
    rotations: Vec<Rotation>,
    /// Families ended by reuse detection after an unknown outcome.
    ended_by_reuse: HashSet<String>,
    /// Families whose last refresh had no answer when the load stopped.
    uncertain_at_stop: HashSet<String>,
    /// Answers that must not happen (5xx, or a refusal of a token the client still held as current).
    violations: Vec<String>,
}

struct Rotation {
    family: String,
    presented: String,
    refresh_token: String,
    access_token: String,
}

struct Setup {
    stack: Stack,
    env: Vec<(String, String)>,
    _db: Option<Database>,
}

fn start_sqlite() -> Setup {
    let edge_port = free_port();
    let edge_url = format!("http://127.0.0.1:{edge_port}");
    let data = TempDir::new("crash");
    let database_url = format!("sqlite://{}/gatehouse.db", data.path().display());
    start(edge_port, &edge_url, data, database_url, None)
}

fn start_postgres(base: &str) -> Setup {
    let db = database::fresh_database(base, "crash");
    let edge_port = free_port();
    let edge_url = format!("http://127.0.0.1:{edge_port}");
    let url = db.url.clone();
    start(
        edge_port,
        &edge_url,
        TempDir::new("crash-pg"),
        url,
        Some(db),
    )
}

fn start(
    edge_port: u16,
    edge_url: &str,
    data: TempDir,
    database_url: String,
    db: Option<Database>,
) -> Setup {
    let mut env: Vec<(String, String)> = vec![("GATEHOUSE_EDGE_URL".into(), edge_url.into())];
    env.extend(ORIGIN_ENV.iter().map(|(k, v)| ((*k).into(), (*v).into())));
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let origin = Origin::start_with(data, database_url, &pairs);
    let upstream = Upstream::start();
    let edge = Edge::start_on(edge_port, &origin, &upstream, &EDGE_VARS);
    Setup {
        stack: Stack {
            edge,
            upstream,
            origin,
        },
        env,
        _db: db,
    }
}

/// A new refresh family through login, consent and the code exchange;
/// `None` when the origin did not complete it (down, or killed meanwhile).
fn new_family(origin: &str, web: &ClientCreds, user: &str) -> Option<(String, String)> {
    let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        authorize(origin, &web.id, user)
    }))
    .ok()?;
    match post_form(
        &format!("{origin}/token"),
        web,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
            ("code_verifier", VERIFIER),
        ],
    ) {
        Outcome::Ok(t) => Some((
            t["refresh_token"].as_str()?.to_owned(),
            crate::revocation::sid_of(t["access_token"].as_str()?),
        )),
        _ => None,
    }
}

fn edge_status(edge: &Edge, token: &str) -> Option<u16> {
    http()
        .get(format!("{}/crash/probe", edge.url))
        .bearer_auth(token)
        .send()
        .ok()
        .map(|r| r.status().as_u16())
}

/// Runs the whole scenario on `setup`; returns a summary line.
fn kill_during_load(mut setup: Setup, backend: &str) -> String {
    let kills: usize = std::env::var("GATEHOUSE_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let stack = &setup.stack;
    let api = stack.client("read");
    let _ = create_user(&stack.origin, "crash-user");
    let web = stack.origin.create_client(
        "crash-web",
        "read",
        &stack.edge.url,
        &[
            "--grant",
            "authorization_code",
            "--grant",
            "refresh_token",
            "--redirect-uri",
            CB,
        ],
    );
    let token_url = format!("{}/token", stack.origin.url);
    let revoke_url = format!("{}/revoke", stack.origin.url);
    let families: Vec<(String, String)> = (0..REFRESH_FAMILIES)
        .map(|_| new_family(&stack.origin.url, &web, "crash-user").expect("a refresh family"))
        .collect();

    let record = Mutex::new(Record::default());
    let stop = AtomicBool::new(false);
    let up = AtomicBool::new(true);
    let kills_done = AtomicUsize::new(0);
    let env = setup.env.clone();
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let origin_url = stack.origin.url.clone();
    // The load threads use only URLs and credentials; the main thread owns
    // the origin and kills and restarts it.
    let origin = &mut setup.stack.origin;
    std::thread::scope(|s| {
        for _ in 0..TOKEN_THREADS {
            s.spawn(|| {
                let _stop = StopOnPanic(&stop);
                while !stop.load(Ordering::SeqCst) {
                    let o = post_form(&token_url, &api, &[("grant_type", "client_credentials")]);
                    let mut r = record.lock().unwrap();
                    r.requests += 1;
                    match o {
                        Outcome::Ok(t) => r
                            .issued
                            .push(t["access_token"].as_str().unwrap().to_owned()),
                        Outcome::Refused(st, b) => {
                            r.violations.push(format!("client_credentials: {st} {b}"))
                        }
                        Outcome::Unknown => {
                            r.unknown += 1;
                            drop(r);
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                }
            });
        }
        for _ in 0..REVOKE_THREADS {
            s.spawn(|| {
                let _stop = StopOnPanic(&stop);
                while !stop.load(Ordering::SeqCst) {
                    let o = post_form(&token_url, &api, &[("grant_type", "client_credentials")]);
                    let token = match o {
                        Outcome::Ok(t) => t["access_token"].as_str().unwrap().to_owned(),
                        Outcome::Refused(st, b) => {
                            record
                                .lock()
                                .unwrap()
                                .violations
                                .push(format!("client_credentials: {st} {b}"));
                            continue;
                        }
                        Outcome::Unknown => {
                            let mut r = record.lock().unwrap();
                            r.requests += 1;
                            r.unknown += 1;
                            drop(r);
                            std::thread::sleep(Duration::from_millis(50));
                            continue;
                        }
                    };
                    let o = post_form(
                        &revoke_url,
                        &api,
                        &[("token", &token), ("token_type_hint", "access_token")],
                    );
                    let mut r = record.lock().unwrap();
                    r.requests += 2;
                    match o {
                        Outcome::Ok(_) => r.revoked.push(token),
                        Outcome::Refused(st, b) => r.violations.push(format!("revoke: {st} {b}")),
                        Outcome::Unknown => {
                            r.unknown += 1;
                            drop(r);
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                }
            });
        }
        for (rt, sid) in families {
            let (web, token_url, origin_url) = (&web, &token_url, &origin_url);
            let (record, stop, up) = (&record, &stop, &up);
            s.spawn(move || {
                let _stop = StopOnPanic(stop);
                let (mut rt, mut sid) = (rt, sid);
                // Whether the last attempt with `rt` had no answer: then a
                // rotation may have committed, and presenting `rt` again is
                // a reuse that must revoke the family.
                let mut uncertain = false;
                while !stop.load(Ordering::SeqCst) {
                    let o = post_form(
                        token_url,
                        web,
                        &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
                    );
                    let mut r = record.lock().unwrap();
                    r.requests += 1;
                    match o {
                        Outcome::Ok(t) => {
                            let next = t["refresh_token"].as_str().unwrap().to_owned();
                            r.rotations.push(Rotation {
                                family: sid.clone(),
                                presented: rt.clone(),
                                refresh_token: next.clone(),
                                access_token: t["access_token"].as_str().unwrap().to_owned(),
                            });
                            rt = next;
                            uncertain = false;
                        }
                        Outcome::Refused(400, b) if uncertain && b["error"] == "invalid_grant" => {
                            // The unanswered rotation had committed: reuse
                            // detected. Start a new family.
                            r.ended_by_reuse.insert(sid.clone());
                            drop(r);
                            loop {
                                if stop.load(Ordering::SeqCst) {
                                    return;
                                }
                                if up.load(Ordering::SeqCst) {
                                    if let Some(f) = new_family(origin_url, web, "crash-user") {
                                        (rt, sid) = f;
                                        break;
                                    }
                                }
                                std::thread::sleep(Duration::from_millis(100));
                            }
                            uncertain = false;
                        }
                        Outcome::Refused(st, b) => {
                            r.violations
                                .push(format!("refresh of the current token: {st} {b}"));
                            return;
                        }
                        Outcome::Unknown => {
                            r.unknown += 1;
                            uncertain = true;
                            drop(r);
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                }
                if uncertain {
                    record.lock().unwrap().uncertain_at_stop.insert(sid);
                }
            });
        }

        // The main thread: load, kill -9, restart, … then load once more.
        let _stop = StopOnPanic(&stop);
        for _ in 0..kills {
            std::thread::sleep(LOAD_BETWEEN_KILLS);
            up.store(false, Ordering::SeqCst);
            origin.crash_and_restart(&pairs);
            up.store(true, Ordering::SeqCst);
            kills_done.fetch_add(1, Ordering::SeqCst);
        }
        std::thread::sleep(LOAD_BETWEEN_KILLS);
        stop.store(true, Ordering::SeqCst);
    });

    let record = record.into_inner().unwrap();
    let stack = &setup.stack;
    assert!(
        record.violations.is_empty(),
        "{backend}: wrong answers under crashes: {:#?}\norigin log:\n{}",
        record.violations,
        stack.origin.proc.log()
    );
    assert!(!record.revoked.is_empty() && !record.rotations.is_empty());
    let db_url = stack.origin.database_url.clone();

    // Revocations: every 200 is stored, …
    let stored: HashSet<String> =
        database::query(&db_url, "SELECT value FROM revocations WHERE kind = 'jti'")
            .into_iter()
            .map(|r| r[0].clone())
            .collect();
    let lost: Vec<&String> = record
        .revoked
        .iter()
        .filter(|t| !stored.contains(&jti_of(t)))
        .collect();
    assert!(
        lost.is_empty(),
        "{backend}: {} acknowledged revocations lost",
        lost.len()
    );
    // … introspection says inactive, …
    for t in &record.revoked {
        match post_form(
            &format!("{}/introspect", stack.origin.url),
            &api,
            &[("token", t)],
        ) {
            Outcome::Ok(v) => {
                assert_eq!(v["active"], false, "{backend}: a revoked token is active")
            }
            _ => panic!("{backend}: introspection failed"),
        }
    }
    // … and the edge refuses it (the pusher delivers what was pending at the crash).
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let accepted = record
            .revoked
            .iter()
            .filter(|t| edge_status(&stack.edge, t) != Some(401))
            .count();
        if accepted == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{backend}: {accepted} of {} revoked tokens still accepted by the edge; origin log:\n{}",
            record.revoked.len(),
            stack.origin.proc.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // Tokens answered 200 and not revoked work at the edge.
    for t in record.issued.iter().step_by(1 + record.issued.len() / 200) {
        assert_eq!(
            edge_status(&stack.edge, t),
            Some(200),
            "{backend}: an issued token is refused"
        );
    }

    // Rotations: none doubled, each stored in its family, …
    let mut presented = HashSet::new();
    for rot in &record.rotations {
        assert!(
            presented.insert(rot.presented.clone()),
            "{backend}: a refresh token was rotated twice successfully"
        );
    }
    let rows: HashMap<String, (String, bool, bool)> = database::query(
        &db_url,
        "SELECT token_hash, family_id, rotated_at IS NOT NULL, revoked_at IS NOT NULL FROM refresh_tokens",
    )
    .into_iter()
    .map(|r| {
        let truthy = |v: &str| v == "1" || v == "t" || v == "true";
        (
            r[0].clone(),
            (r[1].clone(), truthy(&r[2]), truthy(&r[3])),
        )
    })
    .collect();
    let revoked_families: HashSet<String> = rows
        .values()
        .filter(|(_, _, revoked)| *revoked)
        .map(|(f, _, _)| f.clone())
        .collect();
    let mut heads: HashMap<&str, &str> = HashMap::new();
    for rot in &record.rotations {
        let hash = gatehouse_common::dpop::ath(&rot.refresh_token);
        let (family, _, _) = rows
            .get(&hash)
            .unwrap_or_else(|| panic!("{backend}: a rotation answered 200 is not stored"));
        assert_eq!(
            family, &rot.family,
            "{backend}: a rotation landed in another family"
        );
        assert!(
            rows.get(&gatehouse_common::dpop::ath(&rot.presented))
                .is_some_and(|(_, rotated, _)| *rotated),
            "{backend}: a presented token is not marked rotated"
        );
        heads.insert(&rot.family, &rot.refresh_token);
    }
    // … its access token works unless the family was revoked, …
    for rot in record
        .rotations
        .iter()
        .step_by(1 + record.rotations.len() / 200)
    {
        let want = if revoked_families.contains(&rot.family) {
            401
        } else {
            200
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while edge_status(&stack.edge, &rot.access_token) != Some(want) {
            assert!(
                Instant::now() < deadline,
                "{backend}: a refreshed access token is not answered {want} at the edge"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    // … families ended by reuse are revoked, and every other chain's head refreshes.
    for f in &record.ended_by_reuse {
        assert!(
            revoked_families.contains(f),
            "{backend}: reuse did not revoke the family"
        );
    }
    let mut live_heads = 0;
    for (family, head) in &heads {
        if revoked_families.contains(*family) {
            continue;
        }
        match post_form(
            &format!("{}/token", stack.origin.url),
            &web,
            &[("grant_type", "refresh_token"), ("refresh_token", head)],
        ) {
            Outcome::Ok(_) => live_heads += 1,
            // The head's last refresh had no answer and did commit: reuse.
            Outcome::Refused(400, b)
                if record.uncertain_at_stop.contains(*family) && b["error"] == "invalid_grant" => {}
            Outcome::Refused(st, b) => {
                panic!("{backend}: the chain head does not refresh: {st} {b}")
            }
            Outcome::Unknown => panic!("{backend}: the origin does not answer"),
        }
    }

    let checks = database::assert_consistent(&db_url);
    let summary = format!(
        "crash ({backend}): {} kills, {} requests ({} unanswered), {} revocations checked (stored, inactive, refused at the edge), \
         {} rotations checked ({} families ended by reuse after an unanswered refresh, {} chain heads refreshed), \
         {} issued tokens, {checks} database checks passed",
        kills_done.load(Ordering::SeqCst),
        record.requests,
        record.unknown,
        record.revoked.len(),
        record.rotations.len(),
        record.ended_by_reuse.len(),
        live_heads,
        record.issued.len(),
    );
    eprintln!("{summary}");
    setup.stack.origin.proc.stop();
    summary
}

fn jti_of(token: &str) -> String {
    let payload = token.split('.').nth(1).expect("payload");
    let claims: Value =
        serde_json::from_slice(&gatehouse_common::b64::decode(payload).expect("b64"))
            .expect("claims");
    claims["jti"].as_str().expect("jti").to_owned()
}

#[test]
fn kill_9_during_mixed_load_loses_no_revocation_or_rotation_sqlite() {
    kill_during_load(start_sqlite(), "sqlite");
}

#[test]
fn kill_9_during_mixed_load_loses_no_revocation_or_rotation_postgres() {
    let Some(base) = database::postgres_url() else {
        return;
    };
    kill_during_load(start_postgres(&base), "postgres");
}
