//! The clock that decides freshness.
//!
//! moka's own timers follow the system clock and tokio's paused clock does not
//! move them, so section freshness (TTL, stale-while-revalidate, retry
//! backoff) is decided with this clock instead. Production uses
//! [`SystemClock`]; tests and simulations can use [`ManualClock`] to expire
//! every cached section at a chosen moment, independently of how long the
//! test itself takes. (moka's hard limit, `max_stale`, stays on system time.)
//!
//! Every freshness decision uses the injected clock: section TTLs, retry
//! backoffs, the remembered 404s and unknown keys, the change events
//! fallback period and the pause of services listings. Waits (a card's
//! `section_timeout`, batch windows, a batch's single-read wait) are timers
//! on tokio's clock, computed with `deadline`: a manual clock cannot make
//! a wait end sooner.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A source of the current instant.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Now.
    fn now(&self) -> Instant;
}

/// The system's monotonic clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that follows the system clock plus an offset that only grows
/// when [`ManualClock::advance`] is called.
#[derive(Debug)]
pub struct ManualClock {
    offset: Mutex<Duration>,
}

impl ManualClock {
    /// A clock equal to the system clock until advanced.
    pub fn new() -> Self {
        ManualClock {
            offset: Mutex::new(Duration::ZERO),
        }
    }

    /// Moves this clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        *self.offset.lock().unwrap_or_else(|e| e.into_inner()) += by;
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        Instant::now() + *self.offset.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `at + delay`, or a year later when that is past what the clock can
/// hold (settings are capped by [`CardsConfig::validate`](crate::CardsConfig::validate);
/// this never panics).
pub(crate) fn later(at: Instant, delay: Duration) -> Instant {
    at.checked_add(delay)
        .or_else(|| at.checked_add(Duration::from_secs(365 * 86_400)))
        .unwrap_or(at)
}

/// The tokio instant `delay` from now, for a bounded wait; `None` (no
/// bound) when it is past what the clock can hold.
pub(crate) fn deadline(delay: Duration) -> Option<tokio::time::Instant> {
    tokio::time::Instant::now().checked_add(delay)
}

/// Awaits `work` until `deadline` (no bound for `None`); `Err(())` past it.
pub(crate) async fn until<T>(
    deadline: Option<tokio::time::Instant>,
    work: impl std::future::Future<Output = T>,
) -> Result<T, ()> {
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, work)
            .await
            .map_err(|_| ()),
        None => Ok(work.await),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_never_overflows() {
        let now = Instant::now();
        assert_eq!(
            later(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        assert!(later(now, Duration::MAX) > now);
        assert!(deadline(Duration::MAX).is_none());
    }

    #[tokio::test]
    async fn until_bounds_a_wait() {
        let soon = deadline(Duration::from_millis(10));
        assert_eq!(until(soon, futures::future::pending::<()>()).await, Err(()));
        assert_eq!(until(None, async { 3 }).await, Ok(3));
    }

    #[test]
    fn a_manual_clock_moves_forward_when_advanced() {
        let clock = ManualClock::new();
        let before = clock.now();
        clock.advance(Duration::from_secs(60));
        assert!(clock.now() >= before + Duration::from_secs(60));
    }
}
