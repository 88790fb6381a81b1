//! The fetch handler: authentication, refusal rendering, health, logging.

use crate::config::{ConfigError, EdgeConfig};
use crate::{jwks, proxy, webcrypto};
use gatehouse_common::access_token::{AccessToken, AccessTokenError, UntrustedAccessToken};
use gatehouse_common::jwk::KeyError;
use gatehouse_common::rejection::{Challenge, ErrorCode, Rejection, Scheme};
use gatehouse_common::{alg, http, UnixTime};
use std::cell::OnceCell;
use worker::{console_error, console_log, event, Context, Date, Env, Request, Response, Result};

thread_local! {
    static CONFIG: OnceCell<std::result::Result<EdgeConfig, ConfigError>> = const { OnceCell::new() };
}

fn config(env: &Env) -> std::result::Result<EdgeConfig, ConfigError> {
    CONFIG.with(|c| {
        c.get_or_init(|| EdgeConfig::from_vars(|name| env.var(name).ok().map(|v| v.to_string())))
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

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let started = Date::now().as_millis();
    let cfg = match config(&env) {
        Ok(cfg) => cfg,
        Err(e) => {
            console_error!(r#"{{"event":"config_error","error":{}}}"#, json_str(&e.to_string()));
            let r = Rejection::new(ErrorCode::ServerError, Scheme::Bearer, "the edge is misconfigured");
            return render(&r, None);
        }
    };
    let now = now_secs();
    if req.path() == "/.gatehouse/health" {
        return health(&cfg, now);
    }
    let (response, outcome) = match authenticate(&req, &cfg, now).await {
        Ok(token) => {
            let resp = proxy::forward(req, &cfg, &token).await;
            (resp, Outcome::Forwarded { client_id: token.client_id })
        }
        Err(rejection) => {
            let resp = render(&rejection, Some(&cfg));
            (resp, Outcome::Refused(rejection))
        }
    };
    log_request(&outcome, response.as_ref().map(Response::status_code).unwrap_or(502), started);
    response
}

enum Outcome {
    Forwarded { client_id: String },
    Refused(Rejection),
}

fn json_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

fn log_request(outcome: &Outcome, status: u16, started: u64) {
    let latency_ms = Date::now().as_millis().saturating_sub(started);
    let line = match outcome {
        Outcome::Forwarded { client_id } => serde_json::json!({
            "event": "request", "outcome": "forwarded", "status": status,
            "client_id": client_id, "latency_ms": latency_ms,
        }),
        Outcome::Refused(r) => serde_json::json!({
            "event": "request", "outcome": "refused", "status": status,
            "error": r.code.map(|c| c.as_str()), "reason": r.description, "latency_ms": latency_ms,
        }),
    };
    console_log!("{}", line);
}

async fn authenticate(req: &Request, cfg: &EdgeConfig, now: UnixTime) -> std::result::Result<AccessToken, Rejection> {
    let header = req.headers().get("authorization").ok().flatten();
    let values: Vec<&str> = header.as_deref().into_iter().collect();
    let creds = http::authorization(&values)?.ok_or_else(Rejection::missing_credentials)?;
    if creds.scheme == Scheme::DPoP {
        return Err(Rejection::new(
            ErrorCode::InvalidRequest,
            Scheme::DPoP,
            "DPoP-bound tokens are not accepted by this deployment",
        ));
    }
    let reject = |e: AccessTokenError| Rejection::from_access_token(&e, creds.scheme);
    let untrusted = UntrustedAccessToken::parse(creds.token, &cfg.policy).map_err(reject)?;
    let unavailable = |_| Rejection::new(ErrorCode::ServerError, creds.scheme, "signing keys are unavailable");
    let mut keys = jwks::keys(cfg, now).await.map_err(unavailable)?;
    if matches!(keys.select(untrusted.kid(), untrusted.header_alg()), Err(KeyError::UnknownKid)) {
        keys = jwks::keys_after_unknown_kid(cfg, now).await.map_err(unavailable)?;
    }
    let key = keys
        .select(untrusted.kid(), untrusted.header_alg())
        .map_err(|e| reject(AccessTokenError::Key(e)))?;
    let valid = webcrypto::verify(key.jwk, key.alg, untrusted.signing_input(), untrusted.signature()).await;
    let token = untrusted.accept(valid, &cfg.policy, now).map_err(reject)?;
    if token.cnf_jkt.is_some() {
        // RFC 9449 §7.2: a DPoP-bound token must not be accepted as a bearer token.
        return Err(Rejection::new(
            ErrorCode::InvalidToken,
            creds.scheme,
            "a DPoP-bound token must be presented with the DPoP scheme",
        ));
    }
    Ok(token)
}

fn render(r: &Rejection, cfg: Option<&EdgeConfig>) -> Result<Response> {
    let algs = cfg.map(|c| c.policy.algorithms.as_slice()).unwrap_or(&[]);
    let offer = Challenge { realm: None, bearer: true, dpop_algs: &[] };
    let _ = algs;
    let mut resp = Response::ok(r.body())?.with_status(r.status());
    let h = resp.headers_mut();
    h.set("content-type", "application/json")?;
    h.set("cache-control", "no-store")?;
    for challenge in r.www_authenticate(&offer) {
        h.append("www-authenticate", &challenge)?;
    }
    if let Some(secs) = r.retry_after {
        h.set("retry-after", &secs.to_string())?;
    }
    Ok(resp)
}

fn health(cfg: &EdgeConfig, now: UnixTime) -> Result<Response> {
    let (age, kids) = jwks::summary(now);
    let body = serde_json::json!({
        "status": "ok",
        "jwks": { "age_secs": age, "kids": kids },
        "config": {
            "issuer": cfg.policy.issuer,
            "audiences": cfg.policy.audiences,
            "algorithms": alg::names(&cfg.policy.algorithms),
            "jwks_url": cfg.jwks_url,
            "upstream_url": cfg.upstream_url,
        }
    });
    let mut resp = Response::ok(body.to_string())?;
    resp.headers_mut().set("content-type", "application/json")?;
    resp.headers_mut().set("cache-control", "no-store")?;
    Ok(resp)
}
