//! Request ids and W3C Trace Context (level 1), kept apart from the I/O so
//! the parsing is tested natively (issue 22 item 1).
//!
//! An inbound `traceparent` is accepted only in its version-`00` form:
//! exactly `00-<32 lowercase hex trace-id>-<16 lowercase hex parent-id>-<2
//! lowercase hex flags>`, neither id all zero. Anything else — another
//! version, upper-case hex, surrounding junk, or two `traceparent` headers
//! (which `Headers.get` joins with `, `) — is ignored and a new trace is
//! started. An inbound `Gatehouse-Request-Id` is accepted when it is 1–64
//! characters of `[A-Za-z0-9._:-]` (so it can never break a header, a JSON
//! log line or an SQL blob), else ignored. The request id is the accepted
//! `Gatehouse-Request-Id`, else the trace-id.
//!
//! Upstream gets `traceparent: 00-<trace-id>-<a new span-id of the
//! edge>-<flags>` (flags kept, `00` for a new trace) and
//! `Gatehouse-Request-Id: <id>`; the caller's copies never pass through.

/// The request id header (sent upstream and on every response).
pub const REQUEST_ID_HEADER: &str = "Gatehouse-Request-Id";
/// The W3C Trace Context header.
pub const TRACEPARENT: &str = "traceparent";
/// Its companion, forwarded only with an accepted `traceparent`.
pub const TRACESTATE: &str = "tracestate";
/// The longest request id accepted.
pub const MAX_REQUEST_ID: usize = 64;
/// Random bytes [`RequestIds::new`] takes: a trace-id (16) and a span-id (8).
pub const RANDOM_BYTES: usize = 24;

/// The ids of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestIds {
    /// The request id: the caller's accepted `Gatehouse-Request-Id`, else `trace_id`.
    pub request_id: String,
    /// 32 lowercase hex digits, never all zero.
    pub trace_id: String,
    /// The edge's own span (16 lowercase hex digits, never all zero): the
    /// parent-id of the `traceparent` sent upstream.
    pub span_id: String,
    /// The trace flags (2 lowercase hex digits), kept from the caller.
    pub flags: String,
    /// Whether the caller's `traceparent` was accepted (its `tracestate`
    /// may then be forwarded; otherwise it is dropped with it).
    pub continued: bool,
}

impl RequestIds {
    /// The ids for a request with these `traceparent` and
    /// `Gatehouse-Request-Id` header values (as `Headers.get` returns them),
    /// `random` supplying a new trace-id (bytes 0..16, used only when the
    /// caller's `traceparent` is not accepted) and the edge's span-id (16..24).
    #[must_use]
    pub fn new(
        traceparent: Option<&str>,
        request_id: Option<&str>,
        random: &[u8; RANDOM_BYTES],
    ) -> Self {
        let (trace_id, flags, continued) = match traceparent.and_then(parse_traceparent) {
            Some((trace, flags)) => (trace.to_owned(), flags.to_owned(), true),
            None => (
                nonzero_hex(random.get(..16).unwrap_or_default()),
                "00".to_owned(),
                false,
            ),
        };
        let span_id = nonzero_hex(random.get(16..).unwrap_or_default());
        let request_id = request_id
            .filter(|id| valid_request_id(id))
            .map_or_else(|| trace_id.clone(), str::to_owned);
        Self {
            request_id,
            trace_id,
            span_id,
            flags,
            continued,
        }
    }

    /// The `traceparent` sent upstream: this trace, the edge's span.
    #[must_use]
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-{}", self.trace_id, self.span_id, self.flags)
    }
}

/// The trace-id and flags of a valid version-`00` `traceparent`.
#[must_use]
pub fn parse_traceparent(value: &str) -> Option<(&str, &str)> {
    let mut parts = value.split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let lower_hex = |s: &str, len: usize| {
        s.len() == len && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
    };
    let all_zero = |s: &str| s.bytes().all(|c| c == b'0');
    (parts.next().is_none()
        && version == "00"
        && lower_hex(trace, 32)
        && lower_hex(parent, 16)
        && lower_hex(flags, 2)
        && !all_zero(trace)
        && !all_zero(parent))
    .then_some((trace, flags))
}

/// Whether `id` is an acceptable request id: 1–64 characters of `[A-Za-z0-9._:-]`.
#[must_use]
pub fn valid_request_id(id: &str) -> bool {
    (1..=MAX_REQUEST_ID).contains(&id.len())
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'-'))
}

/// `bytes` as lowercase hex, its last digit forced non-zero when every
/// byte is zero (an all-zero id is invalid in Trace Context).
fn nonzero_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    if bytes.iter().all(|b| *b == 0) {
        out.pop();
        out.push('1');
    }
    out
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

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const PARENT: &str = "00f067aa0ba902b7";

    fn random() -> [u8; RANDOM_BYTES] {
        let mut r = [0u8; RANDOM_BYTES];
        for (i, b) in r.iter_mut().enumerate() {
            *b = 0xa0 + i as u8;
        }
        r
    }

    #[test]
    fn a_valid_traceparent_is_continued_with_a_new_span() {
        let tp = format!("00-{TRACE}-{PARENT}-01");
        let ids = RequestIds::new(Some(&tp), None, &random());
        assert_eq!(ids.trace_id, TRACE);
        assert_eq!(ids.flags, "01");
        assert!(ids.continued);
        assert_eq!(ids.span_id, "b0b1b2b3b4b5b6b7");
        assert_ne!(ids.span_id, PARENT);
        assert_eq!(ids.request_id, TRACE);
        assert_eq!(ids.traceparent(), format!("00-{TRACE}-b0b1b2b3b4b5b6b7-01"));
    }

    #[test]
    fn without_a_traceparent_a_new_trace_starts() {
        let ids = RequestIds::new(None, None, &random());
        assert_eq!(ids.trace_id, "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
        assert_eq!(ids.flags, "00");
        assert!(!ids.continued);
        assert_eq!(ids.request_id, ids.trace_id);
        assert_eq!(
            ids.traceparent(),
            "00-a0a1a2a3a4a5a6a7a8a9aaabacadaeaf-b0b1b2b3b4b5b6b7-00"
        );
    }

    #[test]
    fn all_zero_random_still_gives_valid_ids() {
        let ids = RequestIds::new(None, None, &[0; RANDOM_BYTES]);
        assert!(parse_traceparent(&ids.traceparent()).is_some(), "{ids:?}");
    }

    #[test]
    fn malformed_traceparents_are_ignored() {
        let bad = [
            String::new(),
            format!("01-{TRACE}-{PARENT}-01"), // another version
            format!("ff-{TRACE}-{PARENT}-01"), // the invalid version
            format!("00-{}-{PARENT}-01", "0".repeat(32)), // zero trace-id
            format!("00-{TRACE}-{}-01", "0".repeat(16)), // zero parent-id
            format!("00-{}-{PARENT}-01", TRACE.to_uppercase()), // upper-case hex
            format!("00-{TRACE}-{PARENT}-1"),  // short flags
            format!("00-{TRACE}-{PARENT}-01-"), // trailing junk
            format!("00-{TRACE}-{PARENT}-01 "),
            format!(" 00-{TRACE}-{PARENT}-01"),
            format!("00_{TRACE}_{PARENT}_01"),
            format!("00-{TRACE}-{PARENT}-0g"),
            format!("00-{TRACE}x-{PARENT}-01"),
            format!("00-{TRACE}-{PARENT}-01, 00-{TRACE}-{PARENT}-01"), // two headers
            format!("00-{TRACE}-{PARENT}-01\r\nx: y"),
            format!("00-{}-{PARENT}-01", "%41".repeat(10) + "00"),
            "00-".to_owned() + &"a".repeat(100_000),
            "00-4bf92f3577b34da6a3ce929d0e0e473é-00f067aa0ba902b7-01".to_owned(),
        ];
        for tp in bad {
            assert_eq!(parse_traceparent(&tp), None, "{tp:?}");
            let ids = RequestIds::new(Some(&tp), None, &random());
            assert!(!ids.continued);
            assert_ne!(ids.trace_id, TRACE);
        }
    }

    #[test]
    fn request_ids_are_accepted_only_in_the_safe_alphabet() {
        for ok in ["a", "R1", "req-1.2_3:4", &"x".repeat(64), "0"] {
            let ids = RequestIds::new(None, Some(ok), &random());
            assert_eq!(ids.request_id, ok);
        }
        for bad in [
            "",
            &"x".repeat(65),
            "a b",
            "a,b",
            "a, b", // two headers, joined
            "a\r\nb",
            "a\"b",
            "a\\b",
            "a/b",
            "%41",
            "é",
            "a\u{0}",
            "{\"x\":1}",
        ] {
            let ids = RequestIds::new(None, Some(bad), &random());
            assert_eq!(ids.request_id, ids.trace_id, "{bad:?}");
        }
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
