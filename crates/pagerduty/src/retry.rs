//! The [`RetryPolicy`] and its waits.
//!
//! Every call of the [`Client`](crate::Client) goes through one loop,
//! bounded by [`RetryPolicy`]:
//!
//! * **429**: wait `ratelimit-reset` seconds (or a numeric `Retry-After`; at
//!   least 1 s, as PagerDuty counts whole seconds and `0` means "later this
//!   second"; capped at [`RetryPolicy::max_delay`] minus
//!   [`RetryPolicy::base_delay`]), plus up to [`RetryPolicy::base_delay`] of
//!   jitter, then retry. Without the header, back off exponentially. The
//!   limit is account-wide, so a REST 429 with a reset pauses every REST call
//!   of the client until the reset (plus jitter); a call whose deadline ends
//!   before that fails with [`Error::RateLimited`](crate::Error::RateLimited) without being sent.
//! * **5xx, 408, connection errors and timeouts** on idempotent requests
//!   (every call this crate makes: reads, the analytics query, and Events
//!   enqueues, which PagerDuty de-duplicates by `dedup_key`): exponential
//!   backoff `base_delay · 2^(attempt-1)`, capped at `max_delay`, with
//!   "equal jitter" (half fixed, half random).
//! * **OAuth token endpoint unreachable or 5xx** (no usable token): retried
//!   like a 5xx, but never before the token manager's back-off after the
//!   failed fetch ends (at least 1 s; see [`crate::auth`]), so a retry
//!   reaches the endpoint instead of getting the remembered error again; a
//!   call whose deadline ends before that fails at once.
//! * **401 with OAuth**: renew the token once and retry once (this retry does
//!   not count against `max_attempts`). With an API token, 401 is final.
//! * **Any other 4xx** (400, 402, 403, 404, ...): never retried.
//! * At most [`RetryPolicy::max_attempts`] attempts, and no wait that would
//!   end after [`RetryPolicy::deadline`] (counted from the first attempt);
//!   each attempt's timeout is also clipped to the time left.
//!
//! When the policy gives up, the last error is returned (e.g.
//! [`Error::RateLimited`](crate::Error::RateLimited) with the reset time,
//! or [`Error::Upstream`](crate::Error::Upstream)).
//!
//! [`EventsClient::enqueue_within`](crate::EventsClient::enqueue_within)
//! runs its own loop, bounded by a time budget instead of `max_attempts`
//! and `deadline`, with the same [`RetryPolicy::backoff`].

use std::time::Duration;

use rand::Rng;

/// Bounds on retrying a call; see the [module docs](self) for the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, including the first (1 = never retry).
    pub max_attempts: u32,
    /// First backoff step; also the jitter added to a 429 wait.
    pub base_delay: Duration,
    /// Cap on any single wait, including the `ratelimit-reset` wait of a 429.
    pub max_delay: Duration,
    /// No retry wait may end later than this after the first attempt.
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    /// 3 attempts, 200 ms base, 10 s cap, 20 s deadline.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            deadline: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..Default::default()
        }
    }

    /// The wait before retrying after failed attempt number `attempt` (1
    /// for the first): `base_delay · 2^(attempt-1)`, capped at `max_delay`,
    /// with "equal jitter" (half of it fixed, half random), so callers that
    /// failed together do not all retry at the same instant. Every retry
    /// loop of this crate waits this long (the REST/Events loop, and
    /// [`EventsClient::enqueue_within`](crate::EventsClient::enqueue_within)).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.max_delay);
        let half = exp / 2;
        half + jitter(exp - half)
    }

    /// How long a 429 with this reset pauses the account's REST calls: at
    /// least [`MIN_RATE_LIMIT_RESET`] (PagerDuty counts whole seconds, so
    /// `0` means "later this second"), at most `max_delay`.
    pub(crate) fn rate_limit_pause(&self, reset: Duration) -> Duration {
        reset.max(MIN_RATE_LIMIT_RESET).min(self.max_delay)
    }

    /// The wait before retrying a 429: the pause for the reset (above),
    /// capped at `max_delay - base_delay`,
    /// plus up to `base_delay` of jitter, so the jitter survives the cap
    /// (callers capped at `max_delay` do not all retry at the same instant).
    pub(crate) fn rate_limit_wait(&self, reset: Option<Duration>, attempt: u32) -> Duration {
        match reset {
            Some(r) => {
                let spread = self.base_delay.min(self.max_delay);
                self.rate_limit_pause(r).min(self.max_delay - spread) + jitter(spread)
            }
            None => self.backoff(attempt),
        }
    }
}

/// The shortest wait after a 429 with a `ratelimit-reset`, whatever it says.
const MIN_RATE_LIMIT_RESET: Duration = Duration::from_secs(1);

/// A random duration from zero to `max` (whole milliseconds).
pub(crate) fn jitter(max: Duration) -> Duration {
    let ms = max.as_millis() as u64;
    if ms == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(rand::rng().random_range(0..=ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_equal_jitter_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
            deadline: Duration::from_secs(5),
        };
        for _ in 0..200 {
            let d1 = p.backoff(1);
            assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
            let d2 = p.backoff(2);
            assert!(d2 >= Duration::from_millis(100) && d2 <= Duration::from_millis(200));
            let d4 = p.backoff(4); // 800 ms capped at 350
            assert!(d4 >= Duration::from_millis(175) && d4 <= Duration::from_millis(350));
            assert!(p.backoff(40) <= Duration::from_millis(350));
        }
    }

    #[test]
    fn rate_limit_wait_honours_reset_up_to_the_cap() {
        let p = RetryPolicy {
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(10),
            ..Default::default()
        };
        let mut capped = std::collections::HashSet::new();
        for _ in 0..100 {
            let w = p.rate_limit_wait(Some(Duration::from_secs(2)), 1);
            assert!(w >= Duration::from_secs(2) && w <= Duration::from_millis(2010));
            // Capped, and still jittered below the cap.
            let w = p.rate_limit_wait(Some(Duration::from_secs(60)), 1);
            assert!(
                w >= Duration::from_millis(9990) && w <= Duration::from_secs(10),
                "{w:?}"
            );
            capped.insert(w);
            // `ratelimit-reset: 0` waits a second, not nothing.
            let w = p.rate_limit_wait(Some(Duration::ZERO), 1);
            assert!(w >= Duration::from_secs(1) && w <= Duration::from_millis(1010));
        }
        assert!(capped.len() > 1, "the jitter survives the cap");
        assert_eq!(p.rate_limit_pause(Duration::ZERO), Duration::from_secs(1));
        assert_eq!(
            p.rate_limit_pause(Duration::from_secs(60)),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn rate_limit_wait_never_exceeds_a_small_cap() {
        let p = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(50),
            ..Default::default()
        };
        for _ in 0..100 {
            let w = p.rate_limit_wait(Some(Duration::ZERO), 1);
            assert!(w <= Duration::from_millis(50), "{w:?}");
        }
    }
}
