//! Request ids: the W3C Trace Context `traceparent` (level 1, version `00`)
//! and the `Gatehouse-Request-Id` an operator searches logs and audit rows
//! by. The rules — which inbound values are accepted, the request id, the
//! `traceparent` sent on — are `gatehouse_common::trace`, shared with the
//! edge; this module supplies their random bytes and the request's scope.
//!
//! The id of the request being served is a task-local ([`scope`]), set by
//! the HTTP middleware around the handler: [`current_request_id`] is how
//! the audit log (`store::audit::AuditEvent::new`) and the error bodies
//! find it without every function passing it along.

use crate::support::secret::random_bytes;
use gatehouse_common::trace::{nonzero_hex, RANDOM_BYTES};
use std::future::Future;

pub use gatehouse_common::trace::{
    valid_request_id, RequestIds, TraceParent, MAX_REQUEST_ID_LEN, REQUEST_ID_HEADER,
    TRACEPARENT_HEADER,
};

/// The ids of an inbound request with these header values (every
/// occurrence of each header, in order).
#[must_use]
pub fn inbound(traceparents: &[&[u8]], request_ids: &[&[u8]]) -> RequestIds {
    RequestIds::inbound(traceparents, request_ids, &random::<RANDOM_BYTES>())
}

/// The ids of an outbound call this server starts (the revocation
/// pusher's): a new trace, and `request_id` (which must be valid).
#[must_use]
pub fn outbound(request_id: String) -> RequestIds {
    RequestIds::outbound(request_id, &random::<RANDOM_BYTES>())
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
/// forbids an all-zero id).
#[must_use]
pub fn random_hex<const N: usize>() -> String {
    nonzero_hex(&random::<N>())
}

/// `N` random bytes from the system CSPRNG; should it fail, from the clock
/// and a process counter (an id must not stop a request).
fn random<const N: usize>() -> [u8; N] {
    static FALLBACK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    random_bytes::<N>().unwrap_or_else(|_| {
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn header_values_reach_the_shared_rules_with_random_ids() {
        let ids = inbound(&[TP.as_bytes()], &[b"R1"]);
        assert_eq!(ids.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ids.request_id, "R1");
        assert_ne!(ids.span_id, "00f067aa0ba902b7");
        let two = inbound(&[TP.as_bytes(), TP.as_bytes()], &[b"a", b"b"]);
        assert_ne!(two.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(two.request_id, two.trace_id);
        let (a, b) = (inbound(&[], &[]), inbound(&[], &[]));
        assert_ne!(a.trace_id, b.trace_id);
        assert_ne!(a.span_id, b.span_id);
        assert!(TraceParent::parse(a.traceparent().as_bytes()).is_some());
    }

    #[test]
    fn outbound_ids_start_a_new_trace() {
        let (a, b) = (outbound("push-1-x".into()), outbound("push-1-y".into()));
        assert_eq!(a.request_id, "push-1-x");
        assert_ne!(a.trace_id, b.trace_id);
        assert!(TraceParent::parse(a.traceparent().as_bytes()).is_some());
        assert_eq!(random_hex::<8>().len(), 16);
    }

    #[tokio::test]
    async fn the_current_id_is_the_scopes() {
        assert_eq!(current_request_id(), None);
        let ids = inbound(&[], &[b"abc"]);
        let seen = scope(ids, async { current_request_id() }).await;
        assert_eq!(seen.as_deref(), Some("abc"));
    }
}
