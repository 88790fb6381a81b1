//! The fetch handler: routing of the edge's own endpoints, authentication
//! (access token, DPoP proof), revocations, the caller's rate limit, route
//! policy, the replay guard, CORS, forwarding, refusal rendering and one
//! JSON log line per request. The order puts the work without I/O first
//! and charges every refusal to a bucket: failed attempts (a revoked token
//! included) to the caller's address, refusals of a verified caller to its
//! own limit, which is asked before any Durable Object write.

use crate::config::{ConfigError, EdgeConfig, IssuerConfig, RequestLog, RevocationFail};
use crate::proxy::Incoming;
use crate::rate_lease::{address_key, client_key, subject_key};
use crate::ratelimit::Limit;
use crate::replay_window::Verdict;
use crate::request_record::{Completion, RequestRecord};
use crate::revocations::IngestError;
use crate::trace::{self, RequestIds};
use crate::{jwks, metrics, proxy, ratelimit, replay, revocations, webcrypto};
use gatehouse_common::access_token::{AccessToken, AccessTokenError, UntrustedAccessToken};
use gatehouse_common::dpop::{
    self, BoundAccessToken, DpopError, DpopProof, DpopRequest, UntrustedDpopProof,
};
use gatehouse_common::jwk::KeyError;
use gatehouse_common::policy::CanonicalPath;
use gatehouse_common::ratelimit::{Decision, Quota};
use gatehouse_common::rejection::{Challenge, ErrorCode, Rejection, Scheme};
use gatehouse_common::{alg, http, UnixTime};
use std::cell::OnceCell;
use std::rc::Rc;
use worker::{console_error, console_log, event, Context, Date, Env, Response, Result};

thread_local! {
    static CONFIG: OnceCell<std::result::Result<Rc<EdgeConfig>, ConfigError>> = const { OnceCell::new() };
}

const HEALTH_PATH: &str = "/.gatehouse/health";
const INGEST_PATH: &str = "/.gatehouse/revocations";
/// The refusal when an issuer's revocation list cannot be had (answered 503).
const REVOCATIONS_UNAVAILABLE: &str = "the revocation list is unavailable";
/// The refusal when the DPoP replay guard cannot be asked.
const REPLAY_GUARD_UNAVAILABLE: &str = "the replay guard is unavailable";
/// The refusal of a replayed DPoP proof (a replay hit in the data point).
const REPLAYED_PROOF: &str = "the DPoP proof was already used";

fn config(env: &Env) -> std::result::Result<Rc<EdgeConfig>, ConfigError> {
    CONFIG.with(|c| {
        c.get_or_init(|| {
            EdgeConfig::from_vars(|name| {
                env.var(name)
                    .ok()
                    .map(|v| v.to_string())
                    .or_else(|| env.secret(name).ok().map(|v| v.to_string()))
            })
            .map(Rc::new)
        })
        .clone()
    })
}

fn now_secs() -> UnixTime {
    UnixTime((Date::now().as_millis() / 1000) as i64)
}

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// What one request came to: the log line's and the data point's record.
type LogLine = RequestRecord;

/// The JS `Response` handed back to the runtime (see `proxy`: forwarded
/// responses are never re-wrapped by worker-rs).
type RawResponse = web_sys::Response;

/// The request's ids from its `traceparent` and `Gatehouse-Request-Id`
/// (one `getRandomValues` call for the new trace and span ids).
fn request_ids(req: &Incoming) -> Result<RequestIds> {
    let random = webcrypto::random_bytes::<{ trace::RANDOM_BYTES }>()
        .map_err(|_| worker::Error::RustError("no random bytes for the request id".into()))?;
    Ok(trace::request_ids(
        req.header(trace::TRACEPARENT).as_deref(),
        req.header(trace::REQUEST_ID_HEADER).as_deref(),
        &random,
    ))
}

#[event(fetch)]
async fn fetch(raw: web_sys::Request, env: Env, ctx: Context) -> Result<RawResponse> {
    let started = Date::now().as_millis();
    crate::revocation_replica::note_location(&raw);
    let req = Incoming::new(raw)?;
    let ids = request_ids(&req)?;
    let cfg = match config(&env) {
        Ok(cfg) => cfg,
        Err(e) => {
            console_error!(
                r#"{{"event":"config_error","error":{},"request_id":{}}}"#,
                json_str(&e.to_string()),
                json_str(&ids.request_id)
            );
            let r = Rejection::new(
                ErrorCode::ServerError,
                Scheme::Bearer,
                "the edge is misconfigured",
            );
            let mut resp = render(&r, None, &ids.request_id)?;
            resp.headers_mut()
                .set(trace::REQUEST_ID_HEADER, &ids.request_id)?;
            return Ok(resp.into());
        }
    };
    let now = now_secs();
    let method = req.method.clone();
    let path = req.path().to_owned();
    let cors = req.header("origin").and_then(|o| cfg.cors.allow(&o));
    let mut log = LogLine {
        address: address_key(&req.client_ip()),
        ids: Some(ids),
        ..LogLine::default()
    };
    let response = if method.as_str() == "OPTIONS"
        && cors.is_some()
        && req.has_header("access-control-request-method")
    {
        log.outcome = "preflight";
        log.route = Some("preflight".into());
        preflight().map(Into::into)
    } else if path == HEALTH_PATH && method == "GET" {
        log.outcome = "health";
        log.route = Some("health".into());
        let details = cfg
            .health_token
            .as_ref()
            .is_some_and(|t| t.admits(req.header("authorization").as_deref()));
        health(&cfg, now, details).map(Into::into)
    } else if path == INGEST_PATH && method == "POST" {
        log.route = Some("ingest".into());
        let ip = log.address.clone();
        ingest(req.into_worker_request(), &ip, &cfg, &env, now, &mut log)
            .await
            .map(Into::into)
    } else {
        handle(req, &cfg, &env, now, &mut log).await
    };
    // One rebuild of the response adds what it still needs: the request
    // id, the limiter's and nonce headers, the CORS answer.
    let response = response.and_then(|resp| {
        let mut extra = std::mem::take(&mut log.response_headers);
        extra.push((
            trace::REQUEST_ID_HEADER.to_owned(),
            log.request_id().to_owned(),
        ));
        if let Some(allow) = &cors {
            extra.extend(proxy::cors_headers(&resp, allow));
        }
        proxy::with_headers(resp, &extra)
    });
    let status = response.as_ref().map(RawResponse::status).unwrap_or(502);
    if let Err(e) = &response {
        log.outcome = "error";
        log.reason = Some(e.to_string());
    }
    record(&log, &cfg, &env, &ctx, &method, &path, status, started, now);
    response
}

/// The request's log line (as `REQUEST_LOG` says) and data point (when
/// the metrics binding exists).
#[allow(clippy::too_many_arguments)]
fn record(
    log: &LogLine,
    cfg: &EdgeConfig,
    env: &Env,
    ctx: &Context,
    method: &str,
    path: &str,
    status: u16,
    started: u64,
    now: UnixTime,
) {
    let logged = match cfg.request_log {
        RequestLog::All => true,
        RequestLog::Refused => {
            !matches!(log.outcome, "forwarded" | "public" | "preflight" | "health")
        }
        RequestLog::Off => false,
    };
    if !logged && cfg.metrics_binding.is_none() {
        return;
    }
    // The list held for the token's (or pushed document's) issuer, else
    // the first configured one: every point says how old the list is here.
    let iss = log
        .iss
        .as_deref()
        .or_else(|| cfg.issuers.first().map(|i| i.policy.issuer.as_str()));
    let completion = Completion {
        method,
        path,
        status,
        latency_ms: Date::now().as_millis().saturating_sub(started),
        revocations: iss.and_then(revocations::held_info),
        now: now.0,
        jwks: jwks::take_fetch_counts(),
        location: crate::revocation_replica::natural_region(),
    };
    if logged {
        console_log!("{}", log.log_line(&completion));
    }
    if let Some(binding) = &cfg.metrics_binding {
        metrics::write(env, ctx, binding, || log.data_point(&completion));
    }
}

fn preflight() -> Result<Response> {
    let mut resp = Response::empty()?.with_status(204);
    let h = resp.headers_mut();
    h.set(
        "access-control-allow-methods",
        "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS",
    )?;
    h.set(
        "access-control-allow-headers",
        "Authorization, DPoP, Content-Type, Gatehouse-Request-Id, traceparent, tracestate",
    )?;
    h.set("access-control-max-age", "600")?;
    Ok(resp)
}

fn json_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// A caller whose access token (and DPoP proof) verified. The revocation
/// list is asked next (before the caller's limit, so a revoked token is a
/// failed attempt charged to the presenting address); the replay guard's
/// answer (asked during the proof's signature check) is applied after the
/// caller's limit.
struct Verified {
    token: AccessToken,
    scheme: Scheme,
    /// The accepted DPoP proof (DPoP scheme only).
    proof: Option<DpopProof>,
    /// The replay guard's answer for `proof`, asked while its signature was
    /// verified; applied only where the guard was asked before (after the
    /// revocation list, the caller's limit and the route), so who pays for a
    /// replayed proof is unchanged. `None`: not asked yet.
    replay: Option<std::result::Result<(), Refused>>,
}

/// Why authentication produced no caller, and whose budget pays for it.
enum Refused {
    /// A failed attempt (no, bad or unverifiable credentials): charged to
    /// the caller's address, the brute-force budget.
    Attempt(Rejection),
    /// The edge's own failure (signing keys, replay guard or revocation
    /// list unavailable): not the caller's doing, so charged to no one —
    /// an outage must not turn into 429s for valid callers, nor use up the
    /// brute-force budget of everyone behind one address.
    Outage(Rejection),
    /// The token verified and the proof is signed by the key it is bound
    /// to, but lacks the current nonce: charged to the token's own limit,
    /// never to its address, so neighbours failing from the same address
    /// cannot keep the client from learning a nonce.
    Nonce(Rejection, Box<AccessToken>),
}

async fn handle(
    req: Incoming,
    cfg: &EdgeConfig,
    env: &Env,
    now: UnixTime,
    log: &mut LogLine,
) -> Result<RawResponse> {
    // The path is judged and forwarded in one canonical form; a path
    // without a safe one is refused before anything else.
    let path = match CanonicalPath::parse(req.path()) {
        Ok(p) => p,
        Err(e) => {
            let r = Rejection::new(ErrorCode::InvalidRequest, Scheme::Bearer, e.description());
            log.refused(&r);
            log.route = Some("invalid_path".into());
            return render(&r, None, log.request_id()).map(Into::into);
        }
    };
    let route = cfg.routes.route(&path);
    log.route = Some(route_name(&route).to_owned());
    if !route.needs_token() {
        log.outcome = "public";
        return forward(req, &path, cfg, None, now, log).await;
    }
    let verified = match verify(&req, cfg, env, &route, now).await {
        Ok(v) => v,
        Err(Refused::Outage(r)) => return outage(&r, cfg, log).map(Into::into),
        Err(Refused::Attempt(rejection)) => {
            return charge_address(&req, env, cfg, &rejection, now, log).await;
        }
        Err(Refused::Nonce(rejection, token)) => {
            log.verified(&token);
            if let Err(refused) = check_revocations(cfg, env, &token, Scheme::DPoP, now).await {
                return refused_before_limit(refused, &req, env, cfg, now, log).await;
            }
            let resp = match charge_caller(env, cfg, &token, now, log).await? {
                Err(limited) => limited,
                Ok(_) => {
                    log.refused(&rejection);
                    render(&rejection, Some(cfg), log.request_id())?
                }
            };
            return Ok(resp.into());
        }
    };
    let Verified {
        token,
        scheme,
        proof,
        replay: replay_verdict,
    } = verified;
    log.verified(&token);

    // A revoked token is a failed attempt, charged to the address that
    // presents it: charging its subject would let whoever holds a leaked,
    // revoked token go on using up the legitimate holder's limit. (The
    // list is read from isolate memory, from KV at most once per TTL.)
    if let Err(refused) = check_revocations(cfg, env, &token, scheme, now).await {
        return refused_before_limit(refused, &req, env, cfg, now, log).await;
    }
    // The caller's limits come before any further work: route refusals are
    // charged too. (The replay guard was asked already, during the proof's
    // signature check, only if this isolate's leases for the caller's and
    // the route's limits admitted the request: an over-limit caller costs a
    // replay-guard write only in the race where the lease admits locally
    // and the limiter then refuses, `replay_may_overlap`.)
    let mut extra = match charge_caller(env, cfg, &token, now, log).await? {
        Ok(headers) => headers,
        Err(limited) => return Ok(limited.into()),
    };
    if let Err(r) = route.authorize(&token, scheme) {
        log.refused(&r);
        return render(&r, Some(cfg), log.request_id()).map(Into::into);
    }
    // The route's own limits (per client, subject, address or a mix).
    if let Err(limited) = charge_route(env, cfg, &route, &token, &req, now, log).await? {
        return Ok(limited.into());
    }
    if let Some(proof) = &proof {
        let verdict = match replay_verdict {
            Some(v) => v,
            None => check_replay(env, cfg, proof).await,
        };
        if let Err(refused) = verdict {
            log.replay_hit =
                matches!(&refused, Refused::Attempt(r) if r.description == REPLAYED_PROOF);
            return refused_after_limit(refused, cfg, log);
        }
        if let Some(n) = cfg.nonces.as_ref() {
            let current = n.issue(now);
            if proof.nonce.as_deref() != Some(current.as_str()) {
                extra.push(("DPoP-Nonce".to_owned(), current));
            }
        }
    }
    log.outcome = "forwarded";
    log.response_headers.extend(extra);
    forward(req, &path, cfg, Some(&token), now, log).await
}

/// Forwards upstream with the request's ids.
async fn forward(
    req: Incoming,
    path: &CanonicalPath,
    cfg: &EdgeConfig,
    token: Option<&AccessToken>,
    now: UnixTime,
    log: &LogLine,
) -> Result<RawResponse> {
    match &log.ids {
        Some(ids) => proxy::forward(req, path, cfg, token, ids, now).await,
        None => Err(worker::Error::RustError("the request has no ids".into())),
    }
}

/// The route's name in the data point: the matching rule's prefix (bounded
/// by the configuration, never the request's path), `default` or `deny`.
fn route_name<'a>(route: &gatehouse_common::policy::Route<'a>) -> &'a str {
    use gatehouse_common::policy::Route;
    match route {
        Route::Rule(rule) => &rule.prefix,
        Route::DefaultAllow => "default",
        Route::Deny => "deny",
        Route::Both(rules) => rules
            .iter()
            .flatten()
            .next()
            .map_or("default", |r| r.prefix.as_str()),
    }
}

/// A failed attempt (not the edge's outage): charged to the caller's
/// address (its /64 for IPv6), answered 429 once that is over its limit.
async fn charge_address(
    req: &Incoming,
    env: &Env,
    cfg: &EdgeConfig,
    rejection: &Rejection,
    now: UnixTime,
    log: &mut LogLine,
) -> Result<RawResponse> {
    let key = format!("ip:{}", address_key(&req.client_ip()));
    let resp = match ratelimit::charge(env, cfg, &key, &cfg.ip_quota).await {
        Limit::Decided(d) if !d.allowed => {
            too_many(&d, &cfg.ip_quota, nonce_for_429(cfg, now), log)
        }
        Limit::FailedClosed => unavailable(log),
        _ => {
            log.refused(rejection);
            render(rejection, Some(cfg), log.request_id())
        }
    };
    resp.map(Into::into)
}

/// A refusal of a verified token before its caller's limit is charged
/// (revoked): charged to the address; an outage to no one.
async fn refused_before_limit(
    refused: Refused,
    req: &Incoming,
    env: &Env,
    cfg: &EdgeConfig,
    now: UnixTime,
    log: &mut LogLine,
) -> Result<RawResponse> {
    match refused {
        Refused::Outage(r) => outage(&r, cfg, log).map(Into::into),
        Refused::Attempt(r) | Refused::Nonce(r, _) => {
            charge_address(req, env, cfg, &r, now, log).await
        }
    }
}

/// A refusal after the caller's limit was charged: an outage is answered as
/// such; anything else is the caller's (already charged).
fn refused_after_limit(
    refused: Refused,
    cfg: &EdgeConfig,
    log: &mut LogLine,
) -> Result<RawResponse> {
    match refused {
        Refused::Outage(r) => outage(&r, cfg, log).map(Into::into),
        Refused::Attempt(r) | Refused::Nonce(r, _) => {
            log.refused(&r);
            render(&r, Some(cfg), log.request_id()).map(Into::into)
        }
    }
}

/// The edge's own failure: 503 for an unavailable revocation list, the
/// rejection's status (500) otherwise; charged to no one.
fn outage(r: &Rejection, cfg: &EdgeConfig, log: &mut LogLine) -> Result<Response> {
    log.refused(r);
    log.outcome = "outage";
    let resp = render(r, Some(cfg), log.request_id())?;
    Ok(if r.description == REVOCATIONS_UNAVAILABLE {
        resp.with_status(503)
    } else {
        resp
    })
}

/// Charges a verified caller: its own bucket (one per subject of a client
/// of an issuer, `RATE_LIMIT_CLIENT`), then, if configured, the client's
/// bucket shared by all its subjects (`RATE_LIMIT_CLIENT_TOTAL`). Returns
/// the `RateLimit` headers to add, or the 429 (or 503) to answer.
async fn charge_caller(
    env: &Env,
    cfg: &EdgeConfig,
    token: &AccessToken,
    now: UnixTime,
    log: &mut LogLine,
) -> Result<std::result::Result<Vec<(String, String)>, Response>> {
    let mut headers = Vec::new();
    let subject = subject_key(&token.iss, &token.client_id, &token.sub);
    let total = cfg
        .client_total_quota
        .as_ref()
        .map(|q| (client_key(&token.iss, &token.client_id), q));
    for (key, quota) in std::iter::once((subject, &cfg.client_quota)).chain(total) {
        match ratelimit::charge(env, cfg, &key, quota).await {
            Limit::Decided(d) if !d.allowed => {
                return Ok(Err(too_many(&d, quota, nonce_for_429(cfg, now), log)?));
            }
            Limit::Decided(d) => {
                if headers.is_empty() {
                    headers.extend(d.headers(quota).into_iter().map(|(k, v)| (k.to_owned(), v)));
                }
            }
            Limit::FailedOpen => {}
            Limit::FailedClosed => return Ok(Err(unavailable(log)?)),
        }
    }
    Ok(Ok(headers))
}

/// Charges an authorized caller to the route's own limits (`ROUTES`
/// `rate_limits`); the 429 (or 503) to answer when one is exhausted.
async fn charge_route(
    env: &Env,
    cfg: &EdgeConfig,
    route: &gatehouse_common::policy::Route<'_>,
    token: &AccessToken,
    req: &Incoming,
    now: UnixTime,
    log: &mut LogLine,
) -> Result<std::result::Result<(), Response>> {
    if cfg.route_limits.is_empty() {
        return Ok(Ok(()));
    }
    for (key, quota) in cfg.route_limits.buckets(route, token, &req.client_ip()) {
        match ratelimit::charge(env, cfg, &key, quota).await {
            Limit::Decided(d) if !d.allowed => {
                return Ok(Err(too_many(&d, quota, nonce_for_429(cfg, now), log)?));
            }
            Limit::FailedClosed => return Ok(Err(unavailable(log)?)),
            Limit::Decided(_) | Limit::FailedOpen => {}
        }
    }
    Ok(Ok(()))
}

/// RFC 9449 §8: a nonce may be supplied in any response; every 429 of an
/// edge that requires nonces carries one, so a limit never hides it.
fn nonce_for_429(cfg: &EdgeConfig, now: UnixTime) -> Option<String> {
    cfg.nonces.as_ref().map(|n| n.issue(now))
}

fn too_many(
    d: &Decision,
    quota: &Quota,
    nonce: Option<String>,
    log: &mut LogLine,
) -> Result<Response> {
    let mut r = d.rejection();
    r.dpop_nonce = nonce;
    log.refused(&r);
    log.outcome = "rate_limited";
    let mut resp = render(&r, None, log.request_id())?;
    let h = resp.headers_mut();
    for (k, v) in d.headers(quota) {
        h.set(k, &v)?;
    }
    Ok(resp)
}

fn unavailable(log: &mut LogLine) -> Result<Response> {
    let r = Rejection::new(
        ErrorCode::ServerError,
        Scheme::Bearer,
        "the rate limiter is unavailable",
    );
    log.refused(&r);
    log.outcome = "outage";
    Ok(render(&r, None, log.request_id())?.with_status(503))
}

fn server_error(scheme: Scheme, what: &'static str) -> Rejection {
    Rejection::new(ErrorCode::ServerError, scheme, what)
}

/// Verifies the access token and, for the DPoP scheme, the proof. For a
/// proof that passes every check but its signature's, the replay guard is
/// asked while WebCrypto verifies the signature (the Durable Object hop
/// overlaps the crypto); its answer is applied by the caller, after the
/// revocation list and the caller's limit.
async fn verify(
    req: &Incoming,
    cfg: &EdgeConfig,
    env: &Env,
    route: &gatehouse_common::policy::Route<'_>,
    now: UnixTime,
) -> std::result::Result<Verified, Refused> {
    let header = req.header("authorization");
    let values: Vec<&str> = header.as_deref().into_iter().collect();
    let creds = http::authorization(&values)
        .map_err(Refused::Attempt)?
        .ok_or_else(|| Refused::Attempt(Rejection::missing_credentials()))?;
    let scheme = creds.scheme;
    let reject = |e: AccessTokenError| Refused::Attempt(Rejection::from_access_token(&e, scheme));

    // Parse; an untrusted `iss` is refused here, before any key lookup.
    let policies = cfg.policies();
    let untrusted = UntrustedAccessToken::parse_for(creds.token, policies).map_err(reject)?;
    let issuer = cfg
        .issuers
        .get(untrusted.policy_index())
        .ok_or_else(|| reject(AccessTokenError::UntrustedIssuer))?;

    // The issuer's key (refetched once on an unknown kid), then WebCrypto.
    // Keys being unavailable is the edge's outage, not a failed attempt.
    let unavailable = |_| Refused::Outage(server_error(scheme, "signing keys are unavailable"));
    // Decided before the key fetch starts: only while this isolate has never
    // held the issuer's keys (see `warm_up_limits`).
    let warm_keys = warm_up_limits(req, cfg, issuer, creds.token, now);
    let signature_valid = async {
        // The revocation list's reads run beside the key fetch (issue 21.5).
        let keys = revocations::beside(jwks::keys(cfg, issuer, now), cfg, issuer, env, now).await;
        let mut keys = keys.map_err(unavailable)?;
        if matches!(
            keys.select(untrusted.kid(), untrusted.header_alg()),
            Err(KeyError::UnknownKid)
        ) {
            keys = jwks::keys_after_unknown_kid(cfg, issuer, now)
                .await
                .map_err(unavailable)?;
        }
        let key = keys
            .select(untrusted.kid(), untrusted.header_alg())
            .map_err(|e| reject(AccessTokenError::Key(e)))?;
        Ok(webcrypto::verify(
            key.jwk,
            key.alg,
            untrusted.signing_input(),
            untrusted.signature(),
        )
        .await)
    };
    // The caller's limiter objects are started meanwhile (issue 21.5).
    let warm_up = ratelimit::warm_up(env, &warm_keys);
    let (valid, ()) = futures_util::future::join(signature_valid, warm_up).await;
    let token = untrusted
        .accept(valid?, &issuer.policy, now)
        .map_err(reject)?;

    // RFC 9449 §7.2: no Bearer downgrade of a bound token; DPoP needs a bound token.
    let nonces = cfg.nonces.as_ref();
    let dpop_reject = |e: DpopError| Refused::Attempt(e.rejection(nonces, now));
    dpop::check_scheme(&token, scheme).map_err(dpop_reject)?;
    if scheme != Scheme::DPoP {
        return Ok(Verified {
            token,
            scheme,
            proof: None,
            replay: None,
        });
    }
    let proof_header = req.header("dpop");
    let proof_values: Vec<&str> = proof_header.as_deref().into_iter().collect();
    let proof = UntrustedDpopProof::parse(&proof_values, &cfg.dpop).map_err(dpop_reject)?;
    // Whether the proof is signed by the key the token is bound to (decides
    // who pays for a missing nonce).
    let by_token_key = token.cnf_jkt.as_deref() == Some(proof.jwk().thumbprint());
    let request = DpopRequest {
        method: &req.method,
        uri: req.url.as_str(),
        access_token: Some(BoundAccessToken::new(creds.token, &token)),
        nonces,
    };
    // What the signature check needs, kept before `accept` consumes the proof.
    let (jwk, alg, signing_input, signature) = (
        proof.jwk().clone(),
        proof.alg(),
        proof.signing_input(),
        proof.signature().to_vec(),
    );
    // Checks 8–12 first, as if the signature were valid (`accept` checks the
    // signature first and nothing else depends on it); the real verdict on
    // check 6 is applied below, before any other, so every refusal is the
    // one the sequential order gives.
    let provisional = proof.accept(true, &cfg.dpop, &request, now);
    // The proof's key is imported through the bounded CryptoKey cache (by thumbprint).
    let signature_check = webcrypto::verify(&jwk, alg, signing_input, &signature);
    let (proof_valid, replay) = match &provisional {
        // Every check but the signature passed: the token is verified and
        // the proof's key is the one it is bound to (check 12), so the
        // guard is asked only about that key's own shard, while WebCrypto
        // verifies. If the signature then fails, the jti stays recorded
        // until the proof would be stale anyway; that costs its holder
        // nothing: a proof's jti is the holder's random choice, so whoever
        // can send a proof with it (forged or not) has seen the holder's
        // proof and could replay that one instead (docs/security.md).
        //
        // Only when the caller's limit will admit the request from this
        // isolate's lease and its address is not being refused: an
        // over-limit caller, or an address over its failed-attempt budget,
        // still costs no replay-guard write (issue 17.13); those requests
        // take the sequential path (`handle` asks the guard last).
        Ok(p) if replay_may_overlap(req, cfg, route, &token, scheme) => {
            let (valid, replay) =
                futures_util::future::join(signature_check, check_replay(env, cfg, p)).await;
            (valid, Some(replay))
        }
        _ => (signature_check.await, None),
    };
    // Check 6 comes first, as in `accept`.
    if !proof_valid {
        return Err(dpop_reject(DpopError::InvalidSignature));
    }
    match provisional {
        Ok(proof) => Ok(Verified {
            token,
            scheme,
            proof: Some(proof),
            replay,
        }),
        // Check 6 passed (the signature is verified before the nonce is
        // looked at) and the key is the token's: its holder only lacks the
        // current nonce.
        Err(e @ (DpopError::NonceRequired | DpopError::NonceInvalid)) if by_token_key => {
            Err(Refused::Nonce(e.rejection(nonces, now), Box::new(token)))
        }
        Err(e) => Err(dpop_reject(e)),
    }
}

/// The limiter objects to start, without charging them, while an access
/// token is verified: those the caller it names will be charged to (its own
/// and, if configured, its client's). A new isolate otherwise met each
/// object for the first time after the signature check, on the critical
/// path (issue 21.5, BENCHMARKS.md §5). The token is not verified yet, so
/// whoever sends one can name any caller: the warm-up writes nothing and
/// charges no one (a forged token naming a victim costs the victim nothing),
/// and it is bounded — only for a token that parses and names a configured
/// issuer, only while this isolate has never held that issuer's keys (the
/// new isolate the warm-up is for: the key fetch it overlaps is then on the
/// critical path anyway; once keys are held a forged token would start
/// objects for names it chose, for nothing, and its answer's latency would
/// tell whether they were running — review 21e), only for keys this isolate
/// has never asked about, never for an address whose failed attempts are
/// being refused, and at most `rate_lease::MAX_WARM_UPS` keys in the
/// isolate's life (an issuer whose keys cannot be fetched leaves the first
/// rule open). Nothing is recorded, so it cannot fill the lease table.
/// Route limits are keyed by the verified token and left to the charge.
fn warm_up_limits(
    req: &Incoming,
    cfg: &EdgeConfig,
    issuer: &IssuerConfig,
    raw: &str,
    now: UnixTime,
) -> Vec<String> {
    if jwks::summary(&issuer.policy.issuer, now).0.is_some() {
        return Vec::new();
    }
    let address = format!("ip:{}", address_key(&req.client_ip()));
    if ratelimit::refused_locally(&address, &cfg.ip_quota) {
        return Vec::new();
    }
    let Some((iss, client_id, sub)) =
        crate::rate_lease::unverified_caller(raw, &issuer.policy.profile)
    else {
        return Vec::new();
    };
    let subject = (subject_key(&iss, &client_id, &sub), &cfg.client_quota);
    let total = cfg
        .client_total_quota
        .as_ref()
        .map(|q| (client_key(&iss, &client_id), q));
    std::iter::once(subject)
        .chain(total)
        .filter(|(key, quota)| !ratelimit::tracked(key, quota))
        .map(|(key, _)| key)
        .collect()
}

/// Whether the replay guard may be asked before the caller's limit is
/// charged: every bucket `charge_caller` and `charge_route` will charge
/// admits the request from this isolate's lease (nothing is spent here), the
/// route's policy admits the token, and no refusal of the presenting address
/// is remembered. (Review of issue 21: the route's own limits and policy
/// were not looked at, so a caller over a route's limit, or refused by it,
/// still cost a replay-guard write per request and burnt its proof.)
fn replay_may_overlap(
    req: &Incoming,
    cfg: &EdgeConfig,
    route: &gatehouse_common::policy::Route<'_>,
    token: &AccessToken,
    scheme: Scheme,
) -> bool {
    let subject = subject_key(&token.iss, &token.client_id, &token.sub);
    if !ratelimit::admits_locally(&subject, &cfg.client_quota) {
        return false;
    }
    if let Some(q) = &cfg.client_total_quota {
        if !ratelimit::admits_locally(&client_key(&token.iss, &token.client_id), q) {
            return false;
        }
    }
    if route.authorize(token, scheme).is_err() {
        return false;
    }
    if !cfg.route_limits.is_empty()
        && !cfg
            .route_limits
            .buckets(route, token, &req.client_ip())
            .iter()
            .all(|(key, quota)| ratelimit::admits_locally(key, quota))
    {
        return false;
    }
    let address = format!("ip:{}", address_key(&req.client_ip()));
    !ratelimit::refused_locally(&address, &cfg.ip_quota)
}

/// Revocations (the issuer's signed list). "No document" is nothing
/// revoked; an unreadable or unverifiable one refuses (REVOCATION_FAIL).
async fn check_revocations(
    cfg: &EdgeConfig,
    env: &Env,
    token: &AccessToken,
    scheme: Scheme,
    now: UnixTime,
) -> std::result::Result<(), Refused> {
    let Some(issuer) = cfg.issuer(&token.iss) else {
        return Err(Refused::Outage(server_error(
            scheme,
            REVOCATIONS_UNAVAILABLE,
        )));
    };
    let list = match revocations::current(cfg, issuer, env, now).await {
        Ok(list) => list,
        Err(revocations::Unavailable) => match cfg.revocation_fail {
            RevocationFail::Closed => {
                return Err(Refused::Outage(server_error(
                    scheme,
                    REVOCATIONS_UNAVAILABLE,
                )));
            }
            RevocationFail::Open => revocations::held(&issuer.policy.issuer),
        },
    };
    if list.is_some_and(|l| l.check(token, now).is_some()) {
        return Err(Refused::Attempt(Rejection::new(
            ErrorCode::InvalidToken,
            scheme,
            "the access token has been revoked",
        )));
    }
    Ok(())
}

/// The replay guard, sharded by `jkt`; unreachable means refuse (fail
/// closed). The clock is read again here, after the waits since the
/// request's start (key fetch): the proof must still be acceptable now (the
/// guard records it until `replay_until`, after which `accept` refuses it as
/// stale, so a record made before then covers every later replay), and the
/// guard is told this instant, which it refuses when older than its own
/// clock minus its pruning margin.
async fn check_replay(
    env: &Env,
    cfg: &EdgeConfig,
    proof: &DpopProof,
) -> std::result::Result<(), Refused> {
    let checked_at = now_secs();
    if checked_at >= proof.replay_until {
        return Err(Refused::Attempt(
            DpopError::Stale.rejection(cfg.nonces.as_ref(), checked_at),
        ));
    }
    let outage = || Refused::Outage(server_error(Scheme::DPoP, REPLAY_GUARD_UNAVAILABLE));
    match replay::seen_before(
        env,
        &proof.jkt,
        &proof.replay_key,
        proof.replay_until.0,
        checked_at.0,
    )
    .await
    {
        Ok(Verdict::Fresh) => Ok(()),
        Ok(Verdict::Replayed) => Err(Refused::Attempt(Rejection::new(
            ErrorCode::InvalidDpopProof,
            Scheme::DPoP,
            REPLAYED_PROOF,
        ))),
        Ok(Verdict::StaleClock) => {
            console_error!(r#"{{"event":"replay_guard_stale_clock"}}"#);
            Err(outage())
        }
        Err(e) => {
            console_error!(
                r#"{{"event":"replay_guard_unreachable","error":{}}}"#,
                json_str(&e.to_string())
            );
            Err(outage())
        }
    }
}

async fn ingest(
    mut req: worker::Request,
    ip: &str,
    cfg: &EdgeConfig,
    env: &Env,
    now: UnixTime,
    log: &mut LogLine,
) -> Result<Response> {
    // Unauthenticated route, but verified before anything is charged: only
    // a refused document is charged to the caller's address (in its own
    // bucket), so garbage posted from an address the origin shares never
    // throttles the origin's valid pushes. The checks are cheap first
    // (size, UTF-8, header, issuer, key) and the signature last.
    let (refused, response) = take_document(&mut req, cfg, env, now, log).await;
    if refused {
        let key = format!("ingest:{ip}");
        match ratelimit::charge(env, cfg, &key, &cfg.ingest_quota).await {
            Limit::Decided(d) if !d.allowed => return too_many(&d, &cfg.ingest_quota, None, log),
            Limit::FailedClosed => return unavailable(log),
            _ => {}
        }
    }
    response
}

/// Reads and ingests a pushed document; the flag says whether it was
/// refused for what the caller sent (charged), not for an outage here.
async fn take_document(
    req: &mut worker::Request,
    cfg: &EdgeConfig,
    env: &Env,
    now: UnixTime,
    log: &mut LogLine,
) -> (bool, Result<Response>) {
    let too_large = req
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > revocations::MAX_DOCUMENT_BYTES);
    let body = if too_large {
        None
    } else {
        match req.stream() {
            Ok(stream) => crate::body::read_capped(stream, revocations::MAX_DOCUMENT_BYTES).await,
            Err(_) => Some(Vec::new()), // no body
        }
    };
    let Some(body) = body else {
        log.outcome = "ingest_refused";
        return (
            true,
            plain_error(413, "invalid_request", "the document is too large", log),
        );
    };
    let Ok(body) = String::from_utf8(body) else {
        log.outcome = "ingest_refused";
        return (
            true,
            plain_error(400, "invalid_request", "the document is not UTF-8", log),
        );
    };
    match revocations::ingest(body.trim(), cfg, env, now).await {
        Ok((iss, version)) => {
            log.outcome = "ingested";
            log.iss = Some(iss);
            log.reason = Some(format!("version {version}"));
            log.ingested_version = Some(version);
            (false, Response::empty().map(|r| r.with_status(204)))
        }
        Err(IngestError::Invalid(e)) => {
            log.outcome = "ingest_refused";
            log.reason = Some(e.to_string());
            (
                true,
                plain_error(400, "invalid_request", &e.to_string(), log),
            )
        }
        Err(IngestError::Rollback) => {
            log.outcome = "ingest_refused";
            log.reason = Some("not newer than the held version".into());
            (
                true,
                plain_error(
                    409,
                    "conflict",
                    "the document is not newer than the one already held",
                    log,
                ),
            )
        }
        Err(IngestError::Unavailable(why)) => {
            log.outcome = "ingest_failed";
            log.reason = Some(why.into());
            (false, plain_error(503, "temporarily_unavailable", why, log))
        }
        // Still 503 (the pusher retries after a rotation), but charged: a
        // key the issuer never published is what the caller sent.
        Err(IngestError::UnknownKey) => {
            log.outcome = "ingest_refused";
            log.reason = Some(revocations::UNKNOWN_KEY.into());
            (
                true,
                plain_error(
                    503,
                    "temporarily_unavailable",
                    revocations::UNKNOWN_KEY,
                    log,
                ),
            )
        }
    }
}

fn plain_error(
    status: u16,
    error: &'static str,
    description: &str,
    log: &mut LogLine,
) -> Result<Response> {
    log.error = Some(error);
    let body = serde_json::json!({
        "error": error, "error_description": description, "request_id": log.request_id(),
    });
    let mut resp = Response::ok(body.to_string())?.with_status(status);
    resp.headers_mut().set("content-type", "application/json")?;
    resp.headers_mut().set("cache-control", "no-store")?;
    Ok(resp)
}

/// A refusal: its status, challenges and JSON body (with the request id).
fn render(r: &Rejection, cfg: Option<&EdgeConfig>, request_id: &str) -> Result<Response> {
    let offer = Challenge {
        realm: None,
        bearer: true,
        dpop_algs: cfg.map(|c| c.dpop.algorithms.as_slice()).unwrap_or(&[]),
    };
    let body = trace::body_with_request_id(&r.body(), request_id);
    let mut resp = Response::ok(body)?.with_status(r.status());
    let h = resp.headers_mut();
    h.set("content-type", "application/json")?;
    let mut headers = r.headers(&offer);
    // The challenge for the scheme the client used comes first.
    headers.sort_by_key(|(k, v)| !(*k == "WWW-Authenticate" && v.starts_with(r.scheme.name())));
    for (k, v) in headers {
        if k == "WWW-Authenticate" {
            h.append(k, &v)?;
        } else {
            h.set(k, &v)?;
        }
    }
    Ok(resp)
}

/// The health endpoint: only `{"status":"ok"}` for anyone; the issuers'
/// key ids and revocation versions and the configuration only with
/// `Authorization: Bearer <HEALTH_ADMIN_TOKEN>` (the endpoint is public).
fn health(cfg: &EdgeConfig, now: UnixTime, details: bool) -> Result<Response> {
    if !details {
        let mut resp = Response::ok(r#"{"status":"ok"}"#)?;
        resp.headers_mut().set("content-type", "application/json")?;
        resp.headers_mut().set("cache-control", "no-store")?;
        return Ok(resp);
    }
    let issuers: Vec<serde_json::Value> = cfg
        .issuers
        .iter()
        .map(|i| {
            let (age, kids) = jwks::summary(&i.policy.issuer, now);
            serde_json::json!({
                "issuer": i.policy.issuer,
                "audiences": i.policy.audiences,
                "algorithms": alg::names(&i.policy.algorithms),
                "preset": i.preset.name(),
                "jwks_url": match &i.jwks {
                    crate::issuers::JwksSource::Url(u) => Some(u.clone()),
                    crate::issuers::JwksSource::Discovery(_) => crate::discovery::held(&i.policy.issuer),
                },
                "discovery_url": match &i.jwks {
                    crate::issuers::JwksSource::Discovery(u) => Some(u.as_str()),
                    crate::issuers::JwksSource::Url(_) => None,
                },
                "jwks": { "age_secs": age, "kids": kids },
                "revocations": {
                    "version": revocations::held_version(&i.policy.issuer),
                    "replica": {
                        "region": crate::revocation_replica::region(&cfg.revocation_replicas),
                        "reads": revocations::replica_reads(&i.policy.issuer).reads,
                        "taken": revocations::replica_reads(&i.policy.issuer).taken,
                        "refused": revocations::replica_reads(&i.policy.issuer).refused,
                        "failed": revocations::replica_reads(&i.policy.issuer).failed,
                    },
                },
            })
        })
        .collect();
    let body = serde_json::json!({
        "status": "ok",
        "issuers": issuers,
        "config": {
            "upstream_url": cfg.upstream_url,
            "dpop": {
                "algorithms": alg::names(&cfg.dpop.algorithms),
                "max_age_secs": cfg.dpop.max_age_secs,
                "nonce": if cfg.nonces.is_some() { "required" } else { "off" },
            },
            "rate_limits": {
                "client": cfg.client_quota.policy_header(),
                "client_total": cfg.client_total_quota.as_ref().map(Quota::policy_header),
                "ip": cfg.ip_quota.policy_header(),
                "ingest": cfg.ingest_quota.policy_header(),
                "fail": format!("{:?}", cfg.rate_limit_fail).to_lowercase(),
            },
            "jwks_ttl_secs": [cfg.jwks_min_ttl_secs, cfg.jwks_max_ttl_secs],
            "jwks_max_stale_secs": cfg.jwks_max_stale_secs,
            "jwks_shared_cache": cfg.jwks_cache_seal.is_some(),
            "revocation_ttl_secs": cfg.revocation_ttl_secs,
            "revocation_replicas": cfg.revocation_replicas,
            "revocation_refresh_secs": cfg.revocation_refresh_secs,
            "revocation_adopt_on_ingest": cfg.revocation_adopt_on_ingest,
            "strip_credentials": cfg.strip_credentials,
            "cors_allow_origins": cfg.cors.allow_origins,
        }
    });
    let mut resp = Response::ok(body.to_string())?;
    resp.headers_mut().set("content-type", "application/json")?;
    resp.headers_mut().set("cache-control", "no-store")?;
    Ok(resp)
}
