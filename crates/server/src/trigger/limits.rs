//! Trigger rate limits: one GCRA limiter (`governor`) per caller and one per
//! routing key. PagerDuty throttles about 120 events a minute per key; ours
//! answers 429 with `Retry-After` before PagerDuty has to.
//!
//! With a [`SharedTrigger`] ([`RateLimits::with_shared`]) the same budgets
//! are counted in Redis for every replica; the local limiters answer while
//! Redis is away.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::shared::SharedTrigger;

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitScope {
    /// `trigger.per_caller_per_minute`.
    Caller,
    /// `trigger.per_routing_key_per_minute`.
    RoutingKey,
}

impl LimitScope {
    /// The name used in error bodies and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitScope::Caller => "caller",
            LimitScope::RoutingKey => "routing_key",
        }
    }
}

/// The keyed limiters.
pub struct RateLimits {
    per_caller: DefaultKeyedRateLimiter<String>,
    /// Keyed by a 64-bit hash of the routing key, never the key itself.
    per_key: DefaultKeyedRateLimiter<u64>,
    clock: DefaultClock,
    per_caller_per_minute: u32,
    per_routing_key_per_minute: u32,
    /// The budgets every replica shares, when configured.
    shared: Option<SharedTrigger>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits").finish_non_exhaustive()
    }
}

/// A quota of `per_minute` requests a minute, bursting up to all of them.
fn quota(per_minute: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN))
}

impl RateLimits {
    /// Limits from `trigger.per_caller_per_minute` and
    /// `trigger.per_routing_key_per_minute` (validated to be at least 1).
    pub fn new(per_caller_per_minute: u32, per_routing_key_per_minute: u32) -> Self {
        RateLimits {
            per_caller: RateLimiter::keyed(quota(per_caller_per_minute)),
            per_key: RateLimiter::keyed(quota(per_routing_key_per_minute)),
            clock: DefaultClock::default(),
            per_caller_per_minute,
            per_routing_key_per_minute,
            shared: None,
        }
    }

    /// Count in Redis, shared by every replica; the local limiters only
    /// answer while Redis is away.
    pub fn with_shared(mut self, shared: SharedTrigger) -> Self {
        self.shared = Some(shared);
        self
    }

    /// [`RateLimits::check_caller`] against the shared budget when there is
    /// one and Redis answers, else the local one.
    pub async fn caller(&self, caller: &str) -> Result<(), Duration> {
        if let Some(shared) = &self.shared
            && let Some(verdict) = shared
                .check_caller(caller, self.per_caller_per_minute)
                .await
        {
            return verdict;
        }
        self.check_caller(caller)
    }

    /// [`RateLimits::check_routing_key`], shared like [`RateLimits::caller`].
    pub async fn routing_key(&self, key_hash: u64) -> Result<(), Duration> {
        if let Some(shared) = &self.shared
            && let Some(verdict) = shared
                .check_routing_key(key_hash, self.per_routing_key_per_minute)
                .await
        {
            return verdict;
        }
        self.check_routing_key(key_hash)
    }

    /// Take one request from `caller`'s budget, or say how long to wait.
    pub fn check_caller(&self, caller: &str) -> Result<(), Duration> {
        self.housekeeping();
        self.per_caller
            .check_key(&caller.to_owned())
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Take one request from the routing key's budget (by its hash).
    pub fn check_routing_key(&self, key_hash: u64) -> Result<(), Duration> {
        self.per_key
            .check_key(&key_hash)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Keep memory bounded: forget keys whose budget is full again.
    fn housekeeping(&self) {
        if self.per_caller.len() > 10_000 {
            self.per_caller.retain_recent();
        }
        if self.per_key.len() > 10_000 {
            self.per_key.retain_recent();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callers_and_keys_have_separate_budgets() {
        let limits = RateLimits::new(2, 1);
        assert!(limits.check_caller("a").is_ok());
        assert!(limits.check_caller("a").is_ok());
        let wait = limits.check_caller("a").unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(30));
        assert!(limits.check_caller("b").is_ok(), "another caller");
        assert!(limits.check_routing_key(1).is_ok());
        assert!(limits.check_routing_key(1).is_err());
        assert!(limits.check_routing_key(2).is_ok());
    }

    #[tokio::test]
    async fn without_redis_the_shared_limits_are_the_local_ones() {
        use crate::trigger::shared::{SharedMode, SharedSettings, SharedTrigger};
        // Nothing listens on port 1: every Redis call fails at once.
        let client = redis::Client::open("redis://127.0.0.1:1/").unwrap();
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(50)))
            .set_number_of_retries(0);
        let conn = redis::aio::ConnectionManager::new_lazy_with_config(client, config).unwrap();
        let shared = SharedTrigger::new(
            conn,
            SharedSettings {
                call_timeout: Duration::from_millis(50),
                ..SharedSettings::default()
            },
        );
        let limits = RateLimits::new(2, 1).with_shared(shared.clone());
        assert!(limits.caller("a").await.is_ok());
        assert_eq!(shared.mode(), SharedMode::Local);
        assert!(limits.caller("a").await.is_ok());
        assert!(limits.caller("a").await.is_err(), "the local budget");
        assert!(limits.routing_key(1).await.is_ok());
        assert!(limits.routing_key(1).await.is_err());
        assert!(shared.fallbacks() >= 5, "{}", shared.fallbacks());
    }
}
