//! The one clock. The server holds one [`Clock`] (in `AppState`); a request
//! reads it once ([`Clock::now`]) and passes the [`Reading`] down, so its
//! seconds (token `iat`/`exp`, code and key schedules) and milliseconds
//! (rate limits, backoffs) are the same instant. Background tasks (key
//! maintenance, the revocation pusher) read the same clock. With the
//! `testkit` feature a [`SettableClock`] lets tests move time instead of
//! sleeping.

use gatehouse_common::UnixTime;
use std::sync::Arc;

/// One reading of the clock: whole seconds and milliseconds since the
/// epoch, from the same instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reading {
    millis: i64,
}

impl Reading {
    /// The reading `millis` milliseconds after the epoch.
    #[must_use]
    pub const fn from_millis(millis: i64) -> Self {
        Self { millis }
    }

    /// Whole seconds since the epoch.
    #[must_use]
    pub const fn secs(self) -> UnixTime {
        UnixTime(self.millis.div_euclid(1000))
    }

    /// Milliseconds since the epoch.
    #[must_use]
    pub const fn millis(self) -> i64 {
        self.millis
    }
}

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Reads the clock once.
    fn now(&self) -> Reading;
}

/// The shared clock of a server (or a command).
pub type SharedClock = Arc<dyn Clock>;

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Reading {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or_default();
        Reading::from_millis(millis)
    }
}

impl SystemClock {
    /// The system clock, shared.
    #[must_use]
    pub fn shared() -> SharedClock {
        Arc::new(Self)
    }
}

/// A clock that only moves when told (tests: a code's, token's or key's
/// lifetime passes without sleeping).
#[cfg(any(test, feature = "testkit"))]
#[derive(Debug)]
pub struct SettableClock {
    millis: std::sync::atomic::AtomicI64,
}

#[cfg(any(test, feature = "testkit"))]
impl SettableClock {
    /// A clock standing at the system clock's current reading.
    #[must_use]
    pub fn starting_now() -> Arc<Self> {
        Self::at_millis(SystemClock.now().millis())
    }

    /// A clock standing at `millis` since the epoch.
    #[must_use]
    pub fn at_millis(millis: i64) -> Arc<Self> {
        Arc::new(Self {
            millis: std::sync::atomic::AtomicI64::new(millis),
        })
    }

    /// Sets the clock to `t` (whole seconds).
    pub fn set(&self, t: UnixTime) {
        self.millis.store(
            t.0.saturating_mul(1000),
            std::sync::atomic::Ordering::SeqCst,
        );
    }

    /// Moves the clock `secs` seconds on (or back, if negative).
    pub fn advance_secs(&self, secs: i64) {
        self.advance_millis(secs.saturating_mul(1000));
    }

    /// Moves the clock `millis` milliseconds on (or back, if negative).
    pub fn advance_millis(&self, millis: i64) {
        self.millis
            .fetch_add(millis, std::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg(any(test, feature = "testkit"))]
impl Clock for SettableClock {
    fn now(&self) -> Reading {
        Reading::from_millis(self.millis.load(std::sync::atomic::Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_reading_gives_seconds_and_milliseconds_of_the_same_instant() {
        let r = Reading::from_millis(1_700_000_000_999);
        assert_eq!(
            (r.secs(), r.millis()),
            (UnixTime(1_700_000_000), 1_700_000_000_999)
        );
        assert_eq!(Reading::from_millis(-1).secs(), UnixTime(-1));
        let c = SettableClock::at_millis(5_500);
        c.advance_secs(60);
        assert_eq!(c.now().secs(), UnixTime(65));
        c.advance_millis(500);
        assert_eq!(c.now(), Reading::from_millis(66_000));
        c.set(UnixTime(10));
        assert_eq!(c.now().millis(), 10_000);
        let sys = SystemClock.now();
        assert!(sys.secs().0 > 1_600_000_000);
    }
}
