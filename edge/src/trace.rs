//! Request ids and W3C Trace Context at the edge: the rules (which
//! `traceparent` and `Gatehouse-Request-Id` are accepted, the request id,
//! the `traceparent` sent upstream) are `gatehouse_common::trace`, shared
//! with the origin; this module adds what only the edge does.
//!
//! `Headers.get` joins two `traceparent` (or `Gatehouse-Request-Id`)
//! headers with `, `, which the shared rules refuse, so the edge passes the
//! one joined value on. Upstream gets `traceparent: 00-<trace-id>-<a new
//! span-id of the edge>-<flags>` (flags kept, `00` for a new trace) and
//! `Gatehouse-Request-Id: <id>`; the caller's copies never pass through.

pub use gatehouse_common::trace::{
    RequestIds, RANDOM_BYTES, REQUEST_ID_HEADER, TRACEPARENT_HEADER as TRACEPARENT,
    TRACESTATE_HEADER as TRACESTATE,
};

/// The ids for a request with these `traceparent` and
/// `Gatehouse-Request-Id` header values (as `Headers.get` returns them).
#[must_use]
pub fn request_ids(
    traceparent: Option<&str>,
    request_id: Option<&str>,
    random: &[u8; RANDOM_BYTES],
) -> RequestIds {
    let traceparents: Vec<&[u8]> = traceparent.map(str::as_bytes).into_iter().collect();
    let request_ids: Vec<&[u8]> = request_id.map(str::as_bytes).into_iter().collect();
    RequestIds::inbound(&traceparents, &request_ids, random)
}

/// A refusal's JSON object body with `"request_id": id` added last (the
/// body is one the edge rendered: a JSON object).
#[must_use]
pub fn body_with_request_id(body: &str, id: &str) -> String {
    let id = serde_json::Value::from(id).to_string();
    match body.trim_end().strip_suffix('}') {
        Some(open) if open.trim_end().ends_with('{') => format!("{open}\"request_id\":{id}}}"),
        Some(open) => format!("{open},\"request_id\":{id}}}"),
        None => body.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn header_values_reach_the_shared_rules() {
        let ids = request_ids(Some(TP), Some("R1"), &[7; RANDOM_BYTES]);
        assert!(ids.continued);
        assert_eq!(ids.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ids.request_id, "R1");
        // Two headers, as `Headers.get` joins them: both refused.
        let two = format!("{TP}, {TP}");
        let ids = request_ids(Some(&two), Some("a, b"), &[7; RANDOM_BYTES]);
        assert!(!ids.continued);
        assert_eq!(ids.request_id, ids.trace_id);
        let none = request_ids(None, None, &[7; RANDOM_BYTES]);
        assert_eq!(
            none.traceparent(),
            format!("00-{0}-{1}-00", "07".repeat(16), "07".repeat(8))
        );
    }

    #[test]
    fn the_request_id_joins_a_refusal_body() {
        let body = r#"{"error":"invalid_token","error_description":"x"}"#;
        let out = body_with_request_id(body, "R1");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["request_id"], "R1");
        assert_eq!(v["error"], "invalid_token");
        assert_eq!(body_with_request_id("{}", "R1"), r#"{"request_id":"R1"}"#);
        assert_eq!(body_with_request_id("not json", "R1"), "not json");
    }
}
