//! What one request came to: the JSON log line (event `request`) and the
//! Workers Analytics Engine data point, both built from one record, kept
//! apart from the I/O so their shape is tested natively (issue 22 item 2).
//!
//! The data point's field order is a contract with the operator's SQL
//! (docs/operations.md §7.3); append new fields, never reorder:
//!
//! - `index1`: the client id of a verified token, else `ip:<address>` (the
//!   caller's address, IPv6 by /64): the sampling key, at most 96 bytes.
//! - blobs: `blob1` outcome, `blob2` error code, `blob3` reason (the
//!   refusal's description), `blob4` route, `blob5` iss, `blob6` request
//!   id, `blob7` trace-id, `blob8` jti, `blob9` location (the isolate's
//!   region), `blob10` method, `blob11` client id.
//! - doubles: `double1` 1 (a count), `double2` latency ms, `double3` status,
//!   `double4` revocation list version held for `iss` (-1: none),
//!   `double5` its age in seconds (now − its `iat`; -1: none), `double6`
//!   JWKS refreshes and `double7` JWKS refresh failures of the isolate
//!   since its previous data point, `double8` 1 when a DPoP proof was
//!   replayed, `double9` the document version ingested (-1: not an ingest).
//!
//! `sub` is in the log line only (it names a person; the dataset keeps
//! three months of points and is queried by more people than read logs).

use crate::trace::RequestIds;
use gatehouse_common::access_token::AccessToken;
use gatehouse_common::rejection::Rejection;

/// Analytics Engine's limit on the index, in bytes.
pub const MAX_INDEX_BYTES: usize = 96;
/// The longest text put in one blob (blobs share a 16 KiB budget per point).
pub const MAX_BLOB_BYTES: usize = 512;

/// What one request came to.
#[derive(Default)]
pub struct RequestRecord {
    /// `forwarded`, `public`, `refused`, `rate_limited`, `outage`,
    /// `preflight`, `health`, `ingested`, `ingest_refused`, `ingest_failed`
    /// or `error` (empty: `unknown`).
    pub outcome: &'static str,
    /// The refusal's error code (`invalid_token`, …).
    pub error: Option<&'static str>,
    /// The refusal's description, or why the request failed.
    pub reason: Option<String>,
    /// The route: the matching rule's prefix, `default`, `deny`, or the
    /// edge's own (`health`, `ingest`, `preflight`, `invalid_path`).
    pub route: Option<String>,
    /// The verified token's client id.
    pub client_id: Option<String>,
    /// The verified token's issuer (the pushed document's, for an ingest).
    pub iss: Option<String>,
    /// The verified token's subject (log line only).
    pub sub: Option<String>,
    /// The verified token's id (never the token).
    pub jti: Option<String>,
    /// The request's ids.
    pub ids: Option<RequestIds>,
    /// The caller's address key (the index of anonymous callers).
    pub address: String,
    /// A DPoP proof was refused as replayed.
    pub replay_hit: bool,
    /// The document version ingested.
    pub ingested_version: Option<u64>,
    /// Headers the response still needs (rate-limit answers, a fresh DPoP
    /// nonce): added with the request id and CORS in one rebuild of the
    /// response, never one rebuild each.
    pub response_headers: Vec<(String, String)>,
}

/// What the record is completed with when the response is known.
pub struct Completion<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub latency_ms: u64,
    /// The revocation list held for the record's issuer: (version, `iat`).
    pub revocations: Option<(u64, i64)>,
    /// Now (Unix seconds), for the list's age.
    pub now: i64,
    /// JWKS refreshes and failures of the isolate since its previous record.
    pub jwks: (u32, u32),
    /// The isolate's region (`None`: unknown, e.g. under `wrangler dev`).
    pub location: Option<&'static str>,
}

impl RequestRecord {
    /// Notes the verified token's identity (its id, never the token).
    pub fn verified(&mut self, token: &AccessToken) {
        self.client_id = Some(token.client_id.clone());
        self.iss = Some(token.iss.clone());
        self.sub = Some(token.sub.clone());
        self.jti = (!token.jti.is_empty()).then(|| token.jti.clone());
    }

    /// Notes a refusal: its error code and description.
    pub fn refused(&mut self, r: &Rejection) {
        self.outcome = "refused";
        self.error = r.code.map(|c| c.as_str());
        self.reason = Some(r.description.to_string());
    }

    fn outcome(&self) -> &'static str {
        if self.outcome.is_empty() {
            "unknown"
        } else {
            self.outcome
        }
    }

    /// The request id (empty before the ids are read).
    #[must_use]
    pub fn request_id(&self) -> &str {
        self.ids.as_ref().map_or("", |i| i.request_id.as_str())
    }

    fn trace_id(&self) -> &str {
        self.ids.as_ref().map_or("", |i| i.trace_id.as_str())
    }

    fn revocation_age(c: &Completion<'_>) -> Option<i64> {
        c.revocations
            .map(|(_, iat)| c.now.saturating_sub(iat).max(0))
    }

    /// The JSON log line (one object; every value escaped by serde_json).
    #[must_use]
    pub fn log_line(&self, c: &Completion<'_>) -> serde_json::Value {
        serde_json::json!({
            "event": "request", "method": c.method, "path": c.path, "status": c.status,
            "outcome": self.outcome(),
            "error": self.error, "reason": self.reason,
            "request_id": self.request_id(), "trace_id": self.trace_id(),
            "route": self.route,
            "client_id": self.client_id, "iss": self.iss,
            "sub": self.sub, "jti": self.jti,
            "latency_ms": c.latency_ms,
            "location": c.location,
            "revocation_version": c.revocations.map(|(v, _)| v),
            "revocation_age_s": Self::revocation_age(c),
            "jwks_refreshes": c.jwks.0, "jwks_failures": c.jwks.1,
            "replay_hit": self.replay_hit,
            "ingested_version": self.ingested_version,
        })
    }

    /// The Analytics Engine data point (`{indexes, blobs, doubles}`), in
    /// the field order of the module's documentation.
    #[must_use]
    pub fn data_point(&self, c: &Completion<'_>) -> serde_json::Value {
        let index = match &self.client_id {
            Some(client) => truncate(client, MAX_INDEX_BYTES),
            None => truncate(&format!("ip:{}", self.address), MAX_INDEX_BYTES),
        };
        let blob = |v: Option<&str>| truncate(v.unwrap_or(""), MAX_BLOB_BYTES);
        let blobs = [
            blob(Some(self.outcome())),
            blob(self.error),
            blob(self.reason.as_deref()),
            blob(self.route.as_deref()),
            blob(self.iss.as_deref()),
            blob(Some(self.request_id())),
            blob(Some(self.trace_id())),
            blob(self.jti.as_deref()),
            blob(c.location),
            blob(Some(c.method)),
            blob(self.client_id.as_deref()),
        ];
        let or_minus_one = |v: Option<f64>| v.unwrap_or(-1.0);
        #[allow(clippy::cast_precision_loss)] // versions, ages and counts are far below 2^53
        let doubles = [
            1.0,
            c.latency_ms as f64,
            f64::from(c.status),
            or_minus_one(c.revocations.map(|(v, _)| v as f64)),
            or_minus_one(Self::revocation_age(c).map(|a| a as f64)),
            f64::from(c.jwks.0),
            f64::from(c.jwks.1),
            if self.replay_hit { 1.0 } else { 0.0 },
            or_minus_one(self.ingested_version.map(|v| v as f64)),
        ];
        serde_json::json!({ "indexes": [index], "blobs": blobs, "doubles": doubles })
    }
}

/// `s` cut to at most `max` bytes at a character boundary.
fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completion() -> Completion<'static> {
        Completion {
            method: "GET",
            path: "/api/x",
            status: 401,
            latency_ms: 7,
            revocations: Some((12, 1_000)),
            now: 1_030,
            jwks: (1, 0),
            location: Some("weur"),
        }
    }

    fn refused() -> RequestRecord {
        RequestRecord {
            outcome: "refused",
            error: Some("invalid_token"),
            reason: Some("the access token has been revoked".into()),
            route: Some("/api".into()),
            client_id: Some("c1".into()),
            iss: Some("https://issuer".into()),
            sub: Some("alice".into()),
            jti: Some("J1".into()),
            ids: Some(crate::trace::request_ids(None, Some("R1"), &[7; 24])),
            address: "203.0.113.9".into(),
            replay_hit: false,
            ingested_version: None,
            response_headers: Vec::new(),
        }
    }

    #[test]
    fn the_data_point_keeps_its_documented_field_order() {
        let p = refused().data_point(&completion());
        assert_eq!(p["indexes"], serde_json::json!(["c1"]));
        let trace = "07070707070707070707070707070707";
        assert_eq!(
            p["blobs"],
            serde_json::json!([
                "refused",
                "invalid_token",
                "the access token has been revoked",
                "/api",
                "https://issuer",
                "R1",
                trace,
                "J1",
                "weur",
                "GET",
                "c1"
            ])
        );
        assert_eq!(
            p["doubles"],
            serde_json::json!([1.0, 7.0, 401.0, 12.0, 30.0, 1.0, 0.0, 0.0, -1.0])
        );
    }

    #[test]
    fn anonymous_callers_are_indexed_by_address_and_unknowns_are_minus_one() {
        let r = RequestRecord {
            outcome: "rate_limited",
            address: "2001:db8::/64".into(),
            ..RequestRecord::default()
        };
        let c = Completion {
            revocations: None,
            location: None,
            ..completion()
        };
        let p = r.data_point(&c);
        assert_eq!(p["indexes"], serde_json::json!(["ip:2001:db8::/64"]));
        assert_eq!(p["blobs"][0], "rate_limited");
        assert_eq!(p["blobs"][8], "");
        assert_eq!(p["doubles"][3], -1.0);
        assert_eq!(p["doubles"][4], -1.0);
        let line = r.log_line(&c);
        assert_eq!(line["outcome"], "rate_limited");
        assert!(line["revocation_version"].is_null());
    }

    #[test]
    fn the_index_and_blobs_are_bounded() {
        let r = RequestRecord {
            client_id: Some("é".repeat(100)),
            reason: Some("x".repeat(10_000)),
            ..refused()
        };
        let p = r.data_point(&completion());
        let index = p["indexes"][0].as_str().unwrap();
        assert!(index.len() <= MAX_INDEX_BYTES && index.len() >= MAX_INDEX_BYTES - 1);
        assert_eq!(p["blobs"][2].as_str().unwrap().len(), MAX_BLOB_BYTES);
    }

    #[test]
    fn the_log_line_is_one_object_with_the_ids_and_never_a_token() {
        let r = RequestRecord {
            reason: Some("a\"b\r\n{\"event\":\"forged\"}".into()),
            ..refused()
        };
        let line = r.log_line(&completion()).to_string();
        assert!(!line.contains('\n') && !line.contains('\r'), "{line}");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["event"], "request");
        assert_eq!(v["request_id"], "R1");
        assert_eq!(v["trace_id"], "07070707070707070707070707070707");
        assert_eq!(v["jti"], "J1");
        assert_eq!(v["sub"], "alice");
        assert_eq!(v["revocation_version"], 12);
        assert_eq!(v["revocation_age_s"], 30);
        assert_eq!(v["jwks_refreshes"], 1);
    }
}
