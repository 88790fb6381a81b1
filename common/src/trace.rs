//! Request ids and W3C Trace Context (level 1): the rules the edge and the
//! origin share, with no I/O and no randomness of their own (the caller
//! passes [`RANDOM_BYTES`] random bytes in).
//!
//! - An inbound `traceparent` is accepted only in its version-`00` form:
//!   exactly `00-<32 lowercase hex trace-id>-<16 lowercase hex
//!   parent-id>-<2 lowercase hex flags>`, neither id all zero, and sent
//!   once. Anything else — another version, upper-case hex, surrounding
//!   junk, two `traceparent` headers (or the edge's `Headers.get` joining
//!   them with `, `) — is ignored and a new trace is started.
//! - An inbound `Gatehouse-Request-Id` is accepted when it is 1–64
//!   characters of `[A-Za-z0-9._:-]` and sent once (so nothing a client
//!   chooses can carry a space, a quote, a control character or a line
//!   break into a header, a JSON log line or an audit row), else ignored.
//! - The request id is the accepted `Gatehouse-Request-Id`, else the
//!   trace-id.
//! - The `traceparent` sent on is `00-<trace-id>-<a new span-id>-<flags>`:
//!   the caller's flags kept, `00` for a new trace.

use std::fmt::Write as _;

/// The request id header, in both directions (lowercase, as HTTP/2 sends it
/// and `http::HeaderName::from_static` requires; names are case-insensitive).
pub const REQUEST_ID_HEADER: &str = "gatehouse-request-id";
/// The W3C Trace Context header.
pub const TRACEPARENT_HEADER: &str = "traceparent";
/// Its companion, forwarded only with an accepted `traceparent`.
pub const TRACESTATE_HEADER: &str = "tracestate";
/// The longest request id accepted.
pub const MAX_REQUEST_ID_LEN: usize = 64;
/// Random bytes [`RequestIds`] takes: a trace-id (bytes 0..16, used only
/// for a new trace) and this hop's span-id (16..24).
pub const RANDOM_BYTES: usize = 24;

/// A valid version-`00` `traceparent`, borrowed from the header value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceParent<'a> {
    /// 32 lowercase hex digits, not all zero.
    pub trace_id: &'a str,
    /// 16 lowercase hex digits, not all zero: the caller's span.
    pub parent_id: &'a str,
    /// The trace flags, 2 lowercase hex digits.
    pub flags: &'a str,
}

impl<'a> TraceParent<'a> {
    /// Parses a header value: `00-<trace-id>-<parent-id>-<flags>`, exactly
    /// 55 bytes, lowercase hex, neither id all zero.
    #[must_use]
    pub fn parse(value: &'a [u8]) -> Option<Self> {
        if value.len() != 55 {
            return None;
        }
        let text = std::str::from_utf8(value).ok()?;
        let mut parts = text.split('-');
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
        .then_some(Self {
            trace_id: trace,
            parent_id: parent,
            flags,
        })
    }
}

/// Whether `id` is an acceptable request id: 1–64 characters of `[A-Za-z0-9._:-]`.
#[must_use]
pub fn valid_request_id(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&id.len())
        && id
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'-'))
}

/// The ids of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestIds {
    /// The request id: the caller's accepted `Gatehouse-Request-Id`, else `trace_id`.
    pub request_id: String,
    /// 32 lowercase hex digits, never all zero: the caller's trace, else new.
    pub trace_id: String,
    /// This hop's own span (16 lowercase hex digits, never all zero): the
    /// parent-id of the `traceparent` it sends on.
    pub span_id: String,
    /// The trace flags (2 lowercase hex digits), kept from the caller, `00`
    /// for a new trace.
    pub flags: String,
    /// Whether the caller's `traceparent` was accepted (its `tracestate`
    /// may then be forwarded; otherwise it is dropped with it).
    pub continued: bool,
}

impl RequestIds {
    /// The ids of an inbound request with these header values (every
    /// occurrence of each header, in order: more than one is refused),
    /// `random` supplying a new trace-id (bytes 0..16, used only when the
    /// caller's `traceparent` is not accepted) and this hop's span-id (16..24).
    #[must_use]
    pub fn inbound(
        traceparents: &[&[u8]],
        request_ids: &[&[u8]],
        random: &[u8; RANDOM_BYTES],
    ) -> Self {
        let caller = match traceparents {
            [one] => TraceParent::parse(one),
            _ => None,
        };
        let (trace_id, flags, continued) = match caller {
            Some(tp) => (tp.trace_id.to_owned(), tp.flags.to_owned(), true),
            None => (
                nonzero_hex(random.get(..16).unwrap_or_default()),
                "00".to_owned(),
                false,
            ),
        };
        let request_id = match request_ids {
            [one] if valid_request_id(one) => String::from_utf8_lossy(one).into_owned(),
            _ => trace_id.clone(),
        };
        Self {
            request_id,
            trace_id,
            span_id: nonzero_hex(random.get(16..).unwrap_or_default()),
            flags,
            continued,
        }
    }

    /// The ids of a call this hop starts on its own (no inbound request): a
    /// new trace named `request_id` (the caller makes it valid).
    #[must_use]
    pub fn outbound(request_id: String, random: &[u8; RANDOM_BYTES]) -> Self {
        Self {
            request_id,
            ..Self::inbound(&[], &[], random)
        }
    }

    /// The `traceparent` to send on: this trace, this hop's span.
    #[must_use]
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-{}", self.trace_id, self.span_id, self.flags)
    }
}

/// `bytes` as lowercase hex, its last digit forced non-zero when every
/// byte is zero (an all-zero id is invalid in Trace Context).
#[must_use]
pub fn nonzero_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    if bytes.iter().all(|b| *b == 0) {
        out.pop();
        out.push('1');
    }
    out
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

    fn one(value: &str) -> Vec<&[u8]> {
        vec![value.as_bytes()]
    }

    #[test]
    fn a_valid_traceparent_is_continued_with_a_new_span() {
        let tp = format!("00-{TRACE}-{PARENT}-01");
        let ids = RequestIds::inbound(&one(&tp), &[], &random());
        assert_eq!(ids.trace_id, TRACE);
        assert_eq!(ids.flags, "01");
        assert!(ids.continued);
        assert_eq!(ids.span_id, "b0b1b2b3b4b5b6b7");
        assert_ne!(ids.span_id, PARENT);
        assert_eq!(ids.request_id, TRACE);
        assert_eq!(ids.traceparent(), format!("00-{TRACE}-b0b1b2b3b4b5b6b7-01"));
        assert_eq!(
            TraceParent::parse(tp.as_bytes()),
            Some(TraceParent {
                trace_id: TRACE,
                parent_id: PARENT,
                flags: "01"
            })
        );
    }

    #[test]
    fn without_a_traceparent_a_new_trace_starts() {
        let ids = RequestIds::inbound(&[], &[], &random());
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
    fn an_outbound_call_starts_a_new_trace_under_its_name() {
        let ids = RequestIds::outbound("push-7-ab".into(), &random());
        assert_eq!(ids.request_id, "push-7-ab");
        assert_eq!(ids.trace_id, "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
        assert!(!ids.continued);
        assert!(TraceParent::parse(ids.traceparent().as_bytes()).is_some());
    }

    #[test]
    fn all_zero_random_still_gives_valid_ids() {
        let ids = RequestIds::inbound(&[], &[], &[0; RANDOM_BYTES]);
        assert!(
            TraceParent::parse(ids.traceparent().as_bytes()).is_some(),
            "{ids:?}"
        );
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
            format!("00-{TRACE}-{}-01", PARENT.to_uppercase()),
            format!("00-{TRACE}-{PARENT}-1"),   // short flags
            format!("00-{TRACE}-{PARENT}-0A"),  // upper-case flags
            format!("00-{TRACE}-{PARENT}-01-"), // trailing junk
            format!("00-{TRACE}-{PARENT}-01 "),
            format!(" 00-{TRACE}-{PARENT}-01"),
            format!("00_{TRACE}_{PARENT}_01"),
            format!("00-{TRACE}-{PARENT}-0g"),
            format!("00-{TRACE}x-{PARENT}-01"),
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01".to_owned(),
            format!("00-{TRACE}-{PARENT}-01, 00-{TRACE}-{PARENT}-01"), // two, joined
            format!("00-{TRACE}-{PARENT}-01\r\nx: y"),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7\r\n1".to_owned(),
            format!("00-{}-{PARENT}-01", "%41".repeat(10) + "00"),
            "00-".to_owned() + &"a".repeat(100_000),
            format!("00-{TRACE}-{PARENT}-01{}", "0".repeat(10_000)),
            "00-4bf92f3577b34da6a3ce929d0e0e473é-00f067aa0ba902b7-01".to_owned(),
            "00-4bf92f3577b34da6a3ce929d0e0e47é-00f067aa0ba902b7-01".to_owned(),
        ];
        for tp in bad {
            assert_eq!(TraceParent::parse(tp.as_bytes()), None, "{tp:?}");
            let ids = RequestIds::inbound(&one(&tp), &[], &random());
            assert!(!ids.continued);
            assert_ne!(ids.trace_id, TRACE);
            assert_eq!(ids.request_id.len(), 32);
        }
        // Not UTF-8.
        let latin1 = b"00-4bf92f3577b34da6a3ce929d0e0e473\xe9-00f067aa0ba902b7-01";
        assert_eq!(TraceParent::parse(latin1), None);
    }

    #[test]
    fn two_traceparents_are_ignored() {
        let tp = format!("00-{TRACE}-{PARENT}-01");
        let ids = RequestIds::inbound(&[tp.as_bytes(), tp.as_bytes()], &[], &random());
        assert!(!ids.continued);
        assert_ne!(ids.trace_id, TRACE);
    }

    #[test]
    fn request_ids_are_accepted_only_in_the_safe_alphabet() {
        for ok in [
            "a",
            "R1",
            "req-1",
            "A.b_c:d-e",
            "req-1.2_3:4",
            &"x".repeat(64),
            "0",
        ] {
            let ids = RequestIds::inbound(&[], &one(ok), &random());
            assert_eq!(ids.request_id, ok);
        }
        for bad in [
            "",
            &"x".repeat(65),
            "a b",
            "a,b",
            "a, b", // two headers, joined
            "a\r\nb",
            "a\r\nx-injected: 1",
            "a\"b",
            "a\\b",
            "a/b",
            "%41",
            "é",
            "a\u{0}",
            "a\u{0}b",
            "{\"x\":1}",
        ] {
            let ids = RequestIds::inbound(&[], &one(bad), &random());
            assert_eq!(ids.request_id, ids.trace_id, "{bad:?}");
        }
        assert!(!valid_request_id(b"a\xe9"));
        let two = RequestIds::inbound(&[], &[b"a", b"b"], &random());
        assert_eq!(two.request_id, two.trace_id);
    }

    #[test]
    fn an_accepted_request_id_names_a_continued_trace() {
        let tp = format!("00-{TRACE}-{PARENT}-01");
        let ids = RequestIds::inbound(&one(&tp), &one("R-both"), &random());
        assert_eq!(ids.request_id, "R-both");
        assert_eq!(ids.trace_id, TRACE);
    }
}
