//! The fast revocation path (docs/architecture.md, "Revocation"): regional
//! `RevocationReplica` Durable Objects, one per location hint in
//! `REVOCATION_REPLICAS`, each holding every issuer's latest signed
//! document as the ingest store handed it over. The store writes them
//! ([`put_all`]); an isolate reads its nearest one ([`read`]) at most every
//! `REVOCATION_REFRESH_SECS` and verifies what it gets exactly as it
//! verifies KV's document (`crate::revocations`). A replica is a cache,
//! never an authority: it checks no signature, and whatever it serves is
//! verified, version-checked (no rollback) or ignored by the reader.

use crate::replica_rules::{self, chunks, pick, region_for, replica_put, unchanged, ReplicaPut};
use futures_util::future::{join_all, select, Either};
use futures_util::lock::Mutex;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;
use wasm_bindgen::JsValue;
use worker::{
    durable_object, DurableObject, Env, Method, Request, RequestInit, Response, State, Stub,
};

/// The Durable Object binding of the replicas.
pub const BINDING: &str = "REVOCATION_REPLICA";

/// How long the ingest store waits for one replica's acknowledgement.
pub const PUT_DEADLINE: Duration = Duration::from_secs(2);
/// How long a request that starts a replica read waits for it at most.
pub const READ_DEADLINE: Duration = Duration::from_millis(250);

const ISS_HEADER: &str = "gatehouse-iss";
const VERSION_HEADER: &str = "gatehouse-version";
const HAVE_HEADER: &str = "gatehouse-have";

thread_local! {
    /// The isolate's own region, from the first request whose `request.cf`
    /// told it (`None` until then: a request that tells nothing pins nothing).
    static NATURAL: Cell<Option<&'static str>> = const { Cell::new(None) };
}

fn cf_field(cf: &JsValue, name: &str) -> Option<String> {
    js_sys::Reflect::get(cf, &JsValue::from_str(name))
        .ok()
        .and_then(|v| v.as_string().or_else(|| v.as_f64().map(|f| f.to_string())))
}

/// Notes the isolate's region from `request.cf` (kept once known: an
/// isolate runs in one colo; see [`replica_rules::settle`]).
pub fn note_location(raw: &web_sys::Request) {
    if NATURAL.with(Cell::get).is_some() {
        return;
    }
    let cf = js_sys::Reflect::get(raw, &JsValue::from_str("cf")).unwrap_or(JsValue::UNDEFINED);
    let seen = if cf.is_object() {
        region_for(
            cf_field(&cf, "continent").as_deref(),
            cf_field(&cf, "country").as_deref(),
            cf_field(&cf, "longitude").and_then(|l| l.trim().parse::<f64>().ok()),
        )
    } else {
        None
    };
    NATURAL.with(|n| n.set(replica_rules::settle(n.get(), seen)));
}

/// The isolate's own region as seen in `request.cf` (`None` until known,
/// and under `wrangler dev`): the location of its data points.
#[must_use]
pub fn natural_region() -> Option<&'static str> {
    NATURAL.with(Cell::get)
}

/// The replica this isolate reads, among the configured ones (`None`: the
/// fast path is off).
#[must_use]
pub fn region(configured: &[&'static str]) -> Option<&'static str> {
    pick(NATURAL.with(Cell::get), configured)
}

fn stub(env: &Env, region: &str) -> worker::Result<Stub> {
    env.durable_object(BINDING)?
        .id_from_name(&format!("replica:{region}"))?
        .get_stub_with_location_hint(region)
}

/// `work`, or `None` when it takes longer than `limit`.
async fn bounded<T>(work: impl std::future::Future<Output = T>, limit: Duration) -> Option<T> {
    let work = pin!(work);
    let deadline = pin!(worker::Delay::from(limit));
    match select(work, deadline).await {
        Either::Left((out, _)) => Some(out),
        Either::Right(_) => None,
    }
}

async fn put_one(env: &Env, region: &str, iss: &str, version: u64, raw: &str) -> bool {
    let attempt = async {
        let mut init = RequestInit::new();
        init.with_method(Method::Put)
            .with_body(Some(JsValue::from_str(raw)));
        let mut req = Request::new_with_init("https://revocation-replica/doc", &init)?;
        let h = req.headers_mut()?;
        h.set(ISS_HEADER, iss)?;
        h.set(VERSION_HEADER, &version.to_string())?;
        let resp = stub(env, region)?.fetch_with_request(req).await?;
        // 409: the replica already holds a newer version, which covers this one.
        Ok::<bool, worker::Error>(matches!(resp.status_code(), 204 | 409))
    };
    matches!(bounded(attempt, PUT_DEADLINE).await, Some(Ok(true)))
}

/// Writes `raw` (version `version` of `iss`) to every replica in `regions`
/// in parallel; returns the regions that did not acknowledge.
pub async fn put_all(
    env: &Env,
    regions: &[&'static str],
    iss: &str,
    version: u64,
    raw: &str,
) -> Vec<&'static str> {
    let acks = join_all(regions.iter().map(|r| put_one(env, r, iss, version, raw))).await;
    regions
        .iter()
        .zip(acks)
        .filter(|(_, ok)| !ok)
        .map(|(r, _)| *r)
        .collect()
}

/// A replica's answer to a read.
pub enum Answer {
    /// It holds exactly the version the reader last received from it.
    Unchanged,
    /// It holds nothing for this issuer.
    Empty,
    /// Its document (not verified: the reader verifies it).
    Document(String),
}

/// Reads `iss`'s document from the replica of `region`, telling it the
/// version last received from it. `Err` when it is unreachable, failed or
/// slower than [`READ_DEADLINE`].
pub async fn read(env: &Env, region: &str, iss: &str, have: Option<u64>) -> Result<Answer, ()> {
    let attempt = async {
        let mut req = Request::new("https://revocation-replica/doc", Method::Get)?;
        let h = req.headers_mut()?;
        h.set(ISS_HEADER, iss)?;
        if let Some(v) = have {
            h.set(HAVE_HEADER, &v.to_string())?;
        }
        let mut resp = stub(env, region)?.fetch_with_request(req).await?;
        Ok::<Option<Answer>, worker::Error>(match resp.status_code() {
            304 => Some(Answer::Unchanged),
            404 => Some(Answer::Empty),
            200 => Some(Answer::Document(resp.text().await?)),
            _ => None,
        })
    };
    match bounded(attempt, READ_DEADLINE).await {
        Some(Ok(Some(answer))) => Ok(answer),
        _ => Err(()),
    }
}

/// One issuer's document as a replica holds it.
struct Held {
    version: u64,
    raw: Rc<str>,
}

/// Durable Object (one per region, created there with a location hint): the
/// latest signed revocation document of every issuer, as the ingest store
/// handed it over, served to the isolates of its region.
#[durable_object]
pub struct RevocationReplica {
    state: State,
    /// Per issuer, once read from storage (`None`: storage holds nothing).
    held: RefCell<HashMap<String, Option<Rc<Held>>>>,
    /// One write at a time.
    lock: Mutex<()>,
}

fn version_key(iss: &str) -> String {
    format!("v/{iss}")
}
fn count_key(iss: &str) -> String {
    format!("n/{iss}")
}
fn chunk_key(iss: &str, i: usize) -> String {
    format!("c/{iss}/{i}")
}

impl RevocationReplica {
    /// What the replica holds for `iss` (read from storage once).
    async fn load(&self, iss: &str) -> worker::Result<Option<Rc<Held>>> {
        if let Some(h) = self.held.borrow().get(iss) {
            return Ok(h.clone());
        }
        let storage = self.state.storage();
        let version: Option<String> = storage.get(&version_key(iss)).await?;
        let count: Option<usize> = storage.get(&count_key(iss)).await?;
        let loaded = match (version.and_then(|v| v.parse::<u64>().ok()), count) {
            (Some(version), Some(count)) => {
                let mut raw = String::new();
                for i in 0..count {
                    let part: Option<String> = storage.get(&chunk_key(iss, i)).await?;
                    raw.push_str(&part.ok_or("a revocation chunk is missing")?);
                }
                Some(Rc::new(Held {
                    version,
                    raw: raw.into(),
                }))
            }
            _ => None,
        };
        self.held
            .borrow_mut()
            .insert(iss.to_owned(), loaded.clone());
        Ok(loaded)
    }

    async fn put(&self, iss: &str, version: u64, raw: String) -> worker::Result<u16> {
        let _one_at_a_time = self.lock.lock().await;
        let held = self.load(iss).await?;
        match replica_put(held.as_ref().map(|h| h.version), version) {
            ReplicaPut::Same => return Ok(204),
            ReplicaPut::Older => return Ok(409),
            ReplicaPut::Take => {}
        }
        let parts = chunks(&raw);
        let entries = js_sys::Object::new();
        for (i, part) in parts.iter().enumerate() {
            js_sys::Reflect::set(
                &entries,
                &JsValue::from_str(&chunk_key(iss, i)),
                &JsValue::from_str(part),
            )?;
        }
        js_sys::Reflect::set(
            &entries,
            &JsValue::from_str(&count_key(iss)),
            &JsValue::from_f64(f64::from(u32::try_from(parts.len()).unwrap_or(u32::MAX))),
        )?;
        js_sys::Reflect::set(
            &entries,
            &JsValue::from_str(&version_key(iss)),
            &JsValue::from_str(&version.to_string()),
        )?;
        // One atomic write: chunks, count and version together.
        self.state.storage().put_multiple_raw(entries).await?;
        self.held.borrow_mut().insert(
            iss.to_owned(),
            Some(Rc::new(Held {
                version,
                raw: raw.into(),
            })),
        );
        Ok(204)
    }
}

impl DurableObject for RevocationReplica {
    fn new(state: State, _env: Env) -> Self {
        Self {
            state,
            held: RefCell::new(HashMap::new()),
            lock: Mutex::new(()),
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let header = |name: &str| req.headers().get(name).ok().flatten();
        let Some(iss) = header(ISS_HEADER) else {
            return Response::error("bad request", 400);
        };
        let method = req.method();
        let outcome = match method {
            Method::Get => {
                let have = header(HAVE_HEADER).and_then(|v| v.parse::<u64>().ok());
                match self.load(&iss).await {
                    Ok(None) => Response::empty().map(|r| r.with_status(404)),
                    Ok(Some(h)) if unchanged(have, h.version) => {
                        Response::empty().map(|r| r.with_status(304))
                    }
                    Ok(Some(h)) => Response::ok(h.raw.to_string()),
                    Err(e) => Err(e),
                }
            }
            Method::Put => {
                let Some(version) = header(VERSION_HEADER).and_then(|v| v.parse::<u64>().ok())
                else {
                    return Response::error("bad request", 400);
                };
                let raw = req.text().await?;
                match self.put(&iss, version, raw).await {
                    Ok(status) => Response::empty().map(|r| r.with_status(status)),
                    Err(e) => Err(e),
                }
            }
            _ => return Response::error("method not allowed", 405),
        };
        outcome.or_else(|e| {
            worker::console_error!(
                r#"{{"event":"revocation_replica_failed","error":{}}}"#,
                serde_json::Value::from(e.to_string())
            );
            Response::error("unavailable", 503)
        })
    }
}

/// The replicas the ingest store writes to (`REVOCATION_REPLICAS` as the
/// worker's configuration reads it; a value the configuration refuses
/// never reaches the store).
#[must_use]
pub fn configured(env: &Env) -> Vec<&'static str> {
    let value = env.var("REVOCATION_REPLICAS").ok().map(|v| v.to_string());
    replica_rules::parse_regions(value.as_deref()).unwrap_or_default()
}
