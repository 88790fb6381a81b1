//! Request ids: the W3C Trace Context `traceparent` (level 1, version `00`)
//! and the `Gatehouse-Request-Id` an operator searches logs and audit rows
//! by, shared with the edge.
//!
//! - An inbound `traceparent` is kept only when it is exactly version `00`
//!   with a non-zero lowercase-hex trace-id and parent-id; anything else, or
//!   more than one such header, is ignored and a new trace is started.
//! - An inbound `Gatehouse-Request-Id` is kept only when it is 1–64
//!   characters of `[A-Za-z0-9._:-]` (and sent once): nothing a client
//!   chooses can carry a space, a quote, a control character or a line
//!   break into a log line, a header or an audit row.
//! - The request id is the accepted `Gatehouse-Request-Id`, else the
//!   trace-id (32 hex).
//!
//! The id of the request being served is a task-local ([`scope`]), set by
//! the HTTP middleware around the handler: [`current_request_id`] is how
//! the audit log (`store::audit::AuditEvent::new`) and the error bodies
//! find it without every function passing it along.

use crate::support::secret::random_bytes;
use std::fmt::Write as _;
use std::future::Future;

/// The request id header, in both directions.
pub const REQUEST_ID_HEADER: &str = "gatehouse-request-id";
/// The W3C Trace Context header.
pub const TRACEPARENT_HEADER: &str = "traceparent";
/// Longest accepted `Gatehouse-Request-Id`.
pub const MAX_REQUEST_ID_LEN: usize = 64;

/// A W3C `traceparent` (version `00`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceParent {
    /// 32 lowercase hex digits, not all zero.
    pub trace_id: String,
    /// 16 lowercase hex digits, not all zero: the caller's span.
    pub parent_id: String,
    /// The trace flags (bit 0: sampled).
    pub flags: u8,
}

impl TraceParent {
    /// Parses a header value: `00-<trace-id>-<parent-id>-<flags>`, exactly
    /// 55 characters, lowercase hex, neither id all zero.
    #[must_use]
    pub fn parse(value: &[u8]) -> Option<Self> {
        if value.len() != 55 || !value.starts_with(b"00-") {
            return None;
        }
        let text = std::str::from_utf8(value).ok()?;
        let mut parts = text.split('-');
        let (_, trace, parent, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let ok = |s: &str, n: usize| {
            s.len() == n
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        let nonzero = |s: &str| s.bytes().any(|b| b != b'0');
        if !(ok(trace, 32) && ok(parent, 16) && ok(flags, 2) && nonzero(trace) && nonzero(parent)) {
            return None;
        }
        Some(Self {
            trace_id: trace.to_owned(),
            parent_id: parent.to_owned(),
            flags: u8::from_str_radix(flags, 16).ok()?,
        })
    }

    /// A new trace (random trace-id and parent-id, sampled).
    #[must_use]
    pub fn new_root() -> Self {
        Self {
            trace_id: random_hex::<16>(),
            parent_id: random_hex::<8>(),
            flags: 1,
        }
    }

    /// The header value.
    #[must_use]
    pub fn header_value(&self) -> String {
        format!("00-{}-{}-{:02x}", self.trace_id, self.parent_id, self.flags)
    }
}

/// Whether `value` is an acceptable `Gatehouse-Request-Id`.
#[must_use]
pub fn valid_request_id(value: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&value.len())
        && value
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// The ids of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestIds {
    /// The id in the response header, the log line and the audit rows.
    pub request_id: String,
    /// The trace: the caller's when it sent a valid `traceparent`, else new.
    pub trace: TraceParent,
    /// This server's span in the trace (16 hex).
    pub span_id: String,
}

impl RequestIds {
    /// The ids of an inbound request with these header values (every
    /// occurrence of each header, in order).
    #[must_use]
    pub fn inbound(traceparents: &[&[u8]], request_ids: &[&[u8]]) -> Self {
        let trace = match traceparents {
            [one] => TraceParent::parse(one),
            _ => None,
        }
        .unwrap_or_else(TraceParent::new_root);
        let request_id = match request_ids {
            [one] if valid_request_id(one) => String::from_utf8_lossy(one).into_owned(),
            _ => trace.trace_id.clone(),
        };
        Self {
            request_id,
            trace,
            span_id: random_hex::<8>(),
        }
    }

    /// The ids of an outbound call this server starts (the revocation
    /// pusher's): a new trace, and `request_id` (which must be valid).
    #[must_use]
    pub fn outbound(request_id: String) -> Self {
        let trace = TraceParent::new_root();
        Self {
            span_id: trace.parent_id.clone(),
            request_id,
            trace,
        }
    }

    /// The `traceparent` to send on a call made as this span.
    #[must_use]
    pub fn traceparent(&self) -> String {
        TraceParent {
            trace_id: self.trace.trace_id.clone(),
            parent_id: self.span_id.clone(),
            flags: self.trace.flags,
        }
        .header_value()
    }
}

tokio::task_local! {
    static CURRENT: RequestIds;
}

/// Runs `f` as the serving of the request `ids`.
pub async fn scope<F: Future>(ids: RequestIds, f: F) -> F::Output {
    CURRENT.scope(ids, f).await
}

/// The id of the request this task serves, if any.
#[must_use]
pub fn current_request_id() -> Option<String> {
    CURRENT.try_with(|ids| ids.request_id.clone()).ok()
}

/// `N` random bytes as lowercase hex, never all zero (W3C Trace Context
/// forbids an all-zero id). From the system CSPRNG; should it fail, from
/// the clock and a process counter (an id must not stop a request).
#[must_use]
pub fn random_hex<const N: usize>() -> String {
    static FALLBACK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let bytes = random_bytes::<N>().unwrap_or_else(|_| {
        let n = FALLBACK.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let seed = (u128::from(n) << 64) ^ t;
        let mut b = [0u8; N];
        for (i, byte) in b.iter_mut().enumerate() {
            *byte = seed.to_le_bytes().get(i % 16).copied().unwrap_or(0);
        }
        b
    });
    let mut s = String::with_capacity(2 * N);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    if s.bytes().all(|b| b == b'0') {
        s.pop();
        s.push('1');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_is_kept_and_names_the_request() {
        let ids = RequestIds::inbound(&[TP.as_bytes()], &[]);
        assert_eq!(ids.trace.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ids.trace.parent_id, "00f067aa0ba902b7");
        assert_eq!(ids.request_id, ids.trace.trace_id);
        assert_ne!(ids.span_id, ids.trace.parent_id);
        assert!(ids
            .traceparent()
            .starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
    }

    #[test]
    fn malformed_traceparents_are_ignored() {
        let bad = [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7\r\n1",
            "00-4bf92f3577b34da6a3ce929d0e0e47é-00f067aa0ba902b7-01",
        ];
        for b in bad {
            assert_eq!(TraceParent::parse(b.as_bytes()), None, "{b:?}");
            let ids = RequestIds::inbound(&[b.as_bytes()], &[]);
            assert_ne!(ids.trace.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
            assert_eq!(ids.request_id.len(), 32);
        }
        let huge = format!("{TP}{}", "0".repeat(10_000));
        assert_eq!(TraceParent::parse(huge.as_bytes()), None);
    }

    #[test]
    fn two_traceparents_are_ignored() {
        let ids = RequestIds::inbound(&[TP.as_bytes(), TP.as_bytes()], &[]);
        assert_ne!(ids.trace.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn request_ids_are_checked() {
        for good in ["a", "req-1", "A.b_c:d-e", &"x".repeat(64)] {
            let ids = RequestIds::inbound(&[], &[good.as_bytes()]);
            assert_eq!(ids.request_id, good);
        }
        for bad in [
            "",
            &"x".repeat(65),
            "a b",
            "a\r\nx-injected: 1",
            "a\"b",
            "{\"x\":1}",
            "é",
            "a\u{0}b",
            "a/b",
        ] {
            let ids = RequestIds::inbound(&[], &[bad.as_bytes()]);
            assert_eq!(ids.request_id, ids.trace.trace_id, "{bad:?}");
        }
        let two = RequestIds::inbound(&[], &[b"a", b"b"]);
        assert_eq!(two.request_id, two.trace.trace_id);
    }

    #[test]
    fn new_ids_are_random_hex() {
        let (a, b) = (TraceParent::new_root(), TraceParent::new_root());
        assert_ne!(a.trace_id, b.trace_id);
        assert!(TraceParent::parse(a.header_value().as_bytes()).is_some());
    }

    #[tokio::test]
    async fn the_current_id_is_the_scopes() {
        assert_eq!(current_request_id(), None);
        let ids = RequestIds::inbound(&[], &[b"abc"]);
        let seen = scope(ids, async { current_request_id() }).await;
        assert_eq!(seen.as_deref(), Some("abc"));
    }
}
