//! Single flight within an isolate: one request at a time runs a refresh
//! (a JWKS fetch, a discovery document fetch) for one key; concurrent
//! requests of the isolate wait for it on timers of their own and then read
//! the result from isolate memory. They never await the running request's
//! future: workerd ties a promise to the request that created it, and a
//! request woken from another request's context is cancelled as hung.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;
use worker::Delay;

/// How often a waiting request looks whether the refresh finished.
const WAIT_STEP: Duration = Duration::from_millis(5);
/// How long it waits at most.
const WAIT_LIMIT: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Flight {
    /// A request of this isolate is running the refresh (cleared when it
    /// finishes or is dropped).
    in_flight: bool,
    /// Counts finished refreshes, so a waiter sees that "its" refresh ended.
    generation: u64,
}

thread_local! {
    /// Per (kind of refresh, key).
    static FLIGHTS: RefCell<HashMap<(&'static str, String), Flight>> = RefCell::new(HashMap::new());
}

fn with_flight<R>(kind: &'static str, key: &str, f: impl FnOnce(&mut Flight) -> R) -> R {
    FLIGHTS.with(|s| f(s.borrow_mut().entry((kind, key.to_owned())).or_default()))
}

/// Clears `in_flight` when the running request finishes or is cancelled.
struct Leader<'a> {
    kind: &'static str,
    key: &'a str,
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        with_flight(self.kind, self.key, |f| {
            f.in_flight = false;
            f.generation = f.generation.wrapping_add(1);
        });
    }
}

/// Runs `refresh` unless a request of this isolate is already running the
/// `kind` refresh for `key`; in that case waits until that one ends (at most
/// [`WAIT_LIMIT`]) without running `refresh`. Either way the caller then
/// reads the outcome from isolate memory, where `refresh` leaves it.
pub async fn run(kind: &'static str, key: &str, refresh: impl Future<Output = ()>) {
    let (leader, generation) = with_flight(kind, key, |f| {
        let leader = !f.in_flight;
        f.in_flight = true;
        (leader, f.generation)
    });
    if !leader {
        let mut waited = Duration::ZERO;
        while waited < WAIT_LIMIT
            && with_flight(kind, key, |f| f.in_flight && f.generation == generation)
        {
            Delay::from(WAIT_STEP).await;
            waited += WAIT_STEP;
        }
        return;
    }
    let _leader = Leader { kind, key };
    refresh.await;
}
