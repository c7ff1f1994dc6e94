//! The clock that decides freshness.
//!
//! moka's own timers follow the system clock and tokio's paused clock does not
//! move them, so section freshness (TTL, stale-while-revalidate, retry
//! backoff) is decided with this clock instead. Production uses
//! [`SystemClock`]; tests and simulations can use [`ManualClock`] to expire
//! every cached section at a chosen moment, independently of how long the
//! test itself takes. (moka's hard limit, `max_stale`, stays on system time.)

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_forward_when_advanced() {
        let clock = ManualClock::new();
        let before = clock.now();
        clock.advance(Duration::from_secs(60));
        assert!(clock.now() >= before + Duration::from_secs(60));
    }
}
