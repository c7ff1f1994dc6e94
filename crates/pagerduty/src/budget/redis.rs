//! [`RedisRateBudget`]: one PagerDuty rate budget for several replicas of
//! a service that share an account, kept in Redis (cargo feature `redis`).
//!
//! * **The pace** is a GCRA (generic cell rate algorithm) in one atomic Lua
//!   script that reads the clock with Redis `TIME`, so every replica counts
//!   against one theoretical arrival time whatever its own clock says. It
//!   allows the same rate and burst as [`LocalRateBudget`]: `n` a minute,
//!   bursts of `n/60` (at least 1). The script only ever grants a permit
//!   *now* or answers how long to wait; it never books a future slot, so a
//!   caller that gives up while waiting leaks nothing (guarantee 5 of
//!   [`RateBudget`]).
//! * **A 429 pauses every replica**: the pause is a key set with `PX` by a
//!   second script that never shortens a longer pause already in force, and
//!   the GCRA script answers "paused" while it exists. It carries the raw
//!   body of PagerDuty's 429 (no secret: PagerDuty's error text), so a call
//!   denied on another replica fails with the same error. PagerDuty's
//!   `ratelimit-remaining: 0` with a `ratelimit-reset` pauses every replica
//!   the same way until the reset, before anyone earns that 429.
//! * **Redis down or slow**: every Redis call is bounded by
//!   [`RedisBudgetConfig::call_timeout`] (and by the call's deadline). On the
//!   first failure the budget logs once and switches to a local
//!   [`LocalRateBudget`] at `1/replicas` of the rate, so the replicas
//!   together still stay near the account's limit; a background probe pings
//!   Redis every [`RedisBudgetConfig::probe_interval`] and switches back
//!   (logged once too) when it answers. [`RedisRateBudget::mode`] and
//!   [`RedisRateBudget::watch_mode`] tell which mode is in force (for
//!   readiness and metrics).
//!
//! Keys are `dutycard:v1:budget:{<account>}:gcra` and `…:pause`, both with a
//! TTL (the GCRA key lives only while it holds future state; the pause key
//! as long as the pause). The braces make the account a Redis Cluster hash
//! tag, so both keys of one script live on one slot.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client as RedisClient, Script};
use futures::future::BoxFuture;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{LocalRateBudget, PermitDenied, PermitRequest, RateBudget, RateLimitHeaders};
use crate::error::{Error, PdErrorBody, Result};
use crate::retry::jitter;

/// The GCRA: `KEYS[1]` the theoretical arrival time (µs, Redis clock),
/// `KEYS[2]` the 429 pause; `ARGV[1]` the emission interval (µs),
/// `ARGV[2]` the burst. Answers `{0}` granted, `{1, wait_ms}` not yet, or
/// `{2, pause_ms, body}` paused.
const GCRA_LUA: &str = r"
local pause = redis.call('PTTL', KEYS[2])
if pause > 0 then
  return {2, pause, redis.call('GET', KEYS[2]) or ''}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = interval * (tonumber(ARGV[2]) - 1)
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < now then tat = now end
local wait = tat - now - tolerance
if wait > 0 then
  return {1, math.ceil(wait / 1000), ''}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return {0, 0, ''}
";

/// A 429 pause: `KEYS[1]` the pause key; `ARGV[1]` its length (ms),
/// `ARGV[2]` PagerDuty's body. A longer pause in force is kept.
const PAUSE_LUA: &str = r"
local left = redis.call('PTTL', KEYS[1])
if left < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[1])
  return 1
end
return 0
";

/// How a [`RedisRateBudget`] is paced and how long it trusts Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisBudgetConfig {
    /// REST requests a minute for the whole account, all replicas together.
    pub per_minute: u32,
    /// How many replicas share the account: without Redis each one keeps
    /// to `per_minute / replicas` (at least 1 a minute).
    pub replicas: u32,
    /// The most one Redis call may take before the budget goes local.
    pub call_timeout: Duration,
    /// How often a degraded budget asks Redis whether it is back.
    pub probe_interval: Duration,
}

impl RedisBudgetConfig {
    /// `per_minute` shared by `replicas`, with a 100 ms Redis timeout and a
    /// probe every second.
    pub fn new(per_minute: u32, replicas: u32) -> Self {
        RedisBudgetConfig {
            per_minute,
            replicas,
            call_timeout: Duration::from_millis(100),
            probe_interval: Duration::from_secs(1),
        }
    }
}

/// Whether a [`RedisRateBudget`] currently shares its budget through Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetMode {
    /// Permits come from Redis: one budget for every replica.
    Shared,
    /// Redis did not answer in time: permits come from this replica's share
    /// of the rate until Redis answers again.
    Degraded,
}

/// A [`RateBudget`] shared by every replica that uses the same Redis and
/// account name; see the [module docs](self).
///
/// Cheap to clone (one `Arc`); give it to
/// [`ClientBuilder::rate_budget`](crate::ClientBuilder::rate_budget).
#[derive(Clone)]
pub struct RedisRateBudget {
    inner: Arc<Inner>,
}

struct Inner {
    conn: ConnectionManager,
    gcra: Script,
    pause: Script,
    gcra_key: String,
    pause_key: String,
    /// Microseconds between two permits at the configured rate.
    emission_us: u64,
    burst: u64,
    config: RedisBudgetConfig,
    /// This replica's share of the rate, used while degraded; it also holds
    /// the pauses of the 429s this replica saw, in force at once in both
    /// modes (before Redis has them).
    local: LocalRateBudget,
    mode: watch::Sender<BudgetMode>,
    probing: AtomicBool,
    /// Pause notifications still being written to Redis.
    in_flight: watch::Sender<usize>,
    /// Redis calls that failed or timed out (for metrics).
    errors: AtomicU64,
}

impl fmt::Debug for RedisRateBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No URL: it may hold a password.
        f.debug_struct("RedisRateBudget")
            .field("key", &self.inner.gcra_key)
            .field("config", &self.inner.config)
            .field("mode", &self.mode())
            .finish_non_exhaustive()
    }
}

/// A [`ConnectionManager`] (multiplexed, reconnecting by itself) for
/// `redis_url`, created without connecting: the first call connects, so a
/// replica starts while Redis is down. One manager can serve the budgets of
/// every account. Its connect and response timeouts are `call_timeout`.
/// Must be called within a Tokio runtime. Errors never contain the URL
/// (it may hold a password).
pub fn connection_manager(redis_url: &str, call_timeout: Duration) -> Result<ConnectionManager> {
    let client = RedisClient::open(redis_url).map_err(|e| Error::Config {
        field: "redis_url".into(),
        message: format!("not a usable Redis URL ({:?})", e.kind()),
    })?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(call_timeout))
        .set_response_timeout(Some(call_timeout))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_secs(1));
    ConnectionManager::new_lazy_with_config(client, config).map_err(|e| Error::Config {
        field: "redis_url".into(),
        message: format!("cannot set up the Redis connection ({:?})", e.kind()),
    })
}

impl RedisRateBudget {
    /// The budget of `account` (a name every replica agrees on, e.g. the
    /// account's config name: letters, digits, `-`, `_`, `.`) on `conn`.
    /// Fails with [`Error::Config`] on a zero rate or replica count, a zero
    /// timeout, or an unusable account name.
    pub fn new(conn: ConnectionManager, account: &str, config: RedisBudgetConfig) -> Result<Self> {
        let config_error = |field: &str, message: &str| Error::Config {
            field: field.into(),
            message: message.into(),
        };
        if account.is_empty()
            || !account
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(config_error(
                "account",
                "must be letters, digits, '-', '_' or '.' (it names Redis keys)",
            ));
        }
        if config.per_minute == 0 {
            return Err(config_error("rate_limit_per_minute", "must be at least 1"));
        }
        if config.replicas == 0 {
            return Err(config_error("replicas", "must be at least 1"));
        }
        if config.call_timeout.is_zero() || config.probe_interval.is_zero() {
            return Err(config_error(
                "call_timeout",
                "the Redis timeout and probe interval must be above zero",
            ));
        }
        let share = (config.per_minute / config.replicas).max(1);
        let prefix = format!("dutycard:v1:budget:{{{account}}}");
        Ok(RedisRateBudget {
            inner: Arc::new(Inner {
                conn,
                gcra: Script::new(GCRA_LUA),
                pause: Script::new(PAUSE_LUA),
                gcra_key: format!("{prefix}:gcra"),
                pause_key: format!("{prefix}:pause"),
                emission_us: (60_000_000 / u64::from(config.per_minute)).max(1),
                burst: u64::from((config.per_minute / 60).max(1)),
                config,
                local: LocalRateBudget::new(Some(share))?,
                mode: watch::Sender::new(BudgetMode::Shared),
                probing: AtomicBool::new(false),
                in_flight: watch::Sender::new(0),
                errors: AtomicU64::new(0),
            }),
        })
    }

    /// The mode in force now.
    pub fn mode(&self) -> BudgetMode {
        *self.inner.mode.borrow()
    }

    /// Follows the mode as it changes (Redis lost, Redis back).
    pub fn watch_mode(&self) -> watch::Receiver<BudgetMode> {
        self.inner.mode.subscribe()
    }

    /// Redis calls of this budget (permits, pauses) that failed or timed
    /// out since start: each switched it to the local share (for metrics).
    pub fn errors(&self) -> u64 {
        self.inner.errors.load(Ordering::Relaxed)
    }

    /// Waits until every 429 pause reported so far has been written to
    /// Redis (or given up after the call timeout): for a graceful shutdown,
    /// and for tests. Bounded, as every Redis call is.
    pub async fn flush(&self) {
        let mut rx = self.inner.in_flight.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

/// What the GCRA script answered.
enum Verdict {
    Granted,
    Wait(Duration),
    Paused(Duration, PdErrorBody),
}

impl Inner {
    /// One run of the GCRA script, bounded by `limit`; `None` when Redis
    /// failed or did not answer in time.
    async fn check(&self, limit: Duration) -> Option<std::result::Result<Verdict, ()>> {
        let mut conn = self.conn.clone();
        let mut invocation = self.gcra.prepare_invoke();
        invocation
            .key(&self.gcra_key)
            .key(&self.pause_key)
            .arg(self.emission_us)
            .arg(self.burst);
        let answer: (i64, i64, String) = match tokio::time::timeout(
            limit,
            invocation.invoke_async(&mut conn),
        )
        .await
        {
            Err(_) => return None,
            Ok(Err(e)) => {
                tracing::debug!(error_kind = ?e.kind(), "shared rate budget: Redis call failed");
                return Some(Err(()));
            }
            Ok(Ok(a)) => a,
        };
        let ms = Duration::from_millis(answer.1.max(0) as u64);
        Some(Ok(match answer.0 {
            0 => Verdict::Granted,
            1 => Verdict::Wait(ms),
            _ => {
                // "<status>|<body>", as `publish_pause` writes it.
                let (status, text) = answer.2.split_once('|').unwrap_or(("", &answer.2));
                Verdict::Paused(
                    ms,
                    PdErrorBody {
                        status: status.parse().ok(),
                        ..PdErrorBody::parse(text.as_bytes())
                    },
                )
            }
        }))
    }

    /// Redis failed: go local (logged once per outage) and start the probe.
    fn degrade(self: &Arc<Self>) {
        let changed = self.mode.send_if_modified(|m| {
            let was = *m;
            *m = BudgetMode::Degraded;
            was != BudgetMode::Degraded
        });
        if changed {
            tracing::warn!(
                key = %self.gcra_key,
                local_per_minute = (self.config.per_minute / self.config.replicas).max(1),
                "shared PagerDuty rate budget: Redis unreachable or slow; using this replica's share of the rate until it answers again"
            );
        }
        self.start_probe();
    }

    fn start_probe(self: &Arc<Self>) {
        if self.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak: Weak<Inner> = Arc::downgrade(self);
        let interval = self.config.probe_interval;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                // The budget was dropped: nothing to probe for.
                let Some(inner) = weak.upgrade() else { return };
                let mut conn = inner.conn.clone();
                let cmd = ::redis::cmd("PING");
                let ping = cmd.query_async::<String>(&mut conn);
                if let Ok(Ok(_)) = tokio::time::timeout(inner.config.call_timeout, ping).await {
                    inner.probing.store(false, Ordering::Release);
                    inner.mode.send_replace(BudgetMode::Shared);
                    tracing::info!(key = %inner.gcra_key, "shared PagerDuty rate budget: Redis answers again; budget shared");
                    return;
                }
            }
        });
    }

    async fn acquire(self: &Arc<Self>, request: PermitRequest) -> Result<(), PermitDenied> {
        loop {
            // A 429 this replica saw is in force at once, in both modes.
            self.local.wait_for_pause(&request).await?;
            if *self.mode.borrow() == BudgetMode::Degraded {
                self.start_probe();
                return self.local.wait_for_bucket(&request).await;
            }
            let left = request.deadline.saturating_duration_since(Instant::now());
            let limit = self.config.call_timeout.min(left);
            let verdict = match self.check(limit).await {
                Some(Ok(v)) => v,
                // The deadline, not Redis, cut the call short: answer from
                // the local share now rather than call Redis unavailable.
                None if limit < self.config.call_timeout => {
                    return self.local.wait_for_bucket(&request).await;
                }
                None | Some(Err(())) => {
                    self.errors.fetch_add(1, Ordering::Relaxed);
                    self.degrade();
                    continue;
                }
            };
            let left = request.deadline.saturating_duration_since(Instant::now());
            match verdict {
                Verdict::Granted => return Ok(()),
                Verdict::Wait(wait) => {
                    if wait >= left {
                        return Err(PermitDenied {
                            retry_after: wait,
                            body: PdErrorBody {
                                message: Some(
                                    "the shared rate budget of the account (rate_limit_per_minute) would delay the call past its deadline; it was not sent"
                                        .into(),
                                ),
                                ..Default::default()
                            },
                        });
                    }
                    // Other replicas may take the next permit first: ask again.
                    tokio::time::sleep(wait).await;
                }
                Verdict::Paused(pause, body) => {
                    let wait = pause + jitter(request.resume_jitter);
                    if wait >= left {
                        return Err(PermitDenied {
                            retry_after: pause,
                            body,
                        });
                    }
                    tracing::debug!(
                        endpoint = request.endpoint,
                        wait_ms = wait.as_millis() as u64,
                        "PagerDuty rate limit in force for the account (shared); waiting for its reset"
                    );
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

/// Decrements the in-flight count when a publish task ends, however it ends.
struct InFlight(Arc<Inner>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl RateBudget for RedisRateBudget {
    fn acquire(&self, request: PermitRequest) -> BoxFuture<'_, Result<(), PermitDenied>> {
        Box::pin(self.inner.acquire(request))
    }

    fn on_rate_limited(&self, pause: Duration, body: &PdErrorBody) {
        self.publish_pause(pause, body);
    }

    /// `ratelimit-remaining: 0` with a reset: the account's next call would
    /// earn a 429, so every replica pauses until the reset (at most a
    /// minute, PagerDuty's window) instead.
    fn on_headers(&self, headers: &RateLimitHeaders) {
        if let (Some(0), Some(reset)) = (headers.remaining, headers.reset)
            && !reset.is_zero()
        {
            let body = PdErrorBody {
                message: Some(
                    "PagerDuty's ratelimit-remaining reached 0 for the account; calls wait for its ratelimit-reset"
                        .into(),
                ),
                ..Default::default()
            };
            self.publish_pause(reset.min(Duration::from_secs(60)), &body);
        }
    }
}

impl RedisRateBudget {
    /// Applies a pause here at once and publishes it to every replica.
    fn publish_pause(&self, pause: Duration, body: &PdErrorBody) {
        self.inner.local.on_rate_limited(pause, body);
        // Publishing must not block the request path: a spawned task,
        // bounded by the call timeout.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        // "<status>|<body>": PagerDuty's raw body, or our message as JSON
        // (so the other replicas parse the same `message` back).
        let text = body
            .raw
            .clone()
            .unwrap_or_else(|| serde_json::json!({ "message": body.message }).to_string());
        let status = body.status.map(|s| s.to_string()).unwrap_or_default();
        let raw = format!("{status}|{text}");
        let pause_ms = pause.as_millis().max(1) as u64;
        self.inner.in_flight.send_modify(|n| *n += 1);
        let guard = InFlight(Arc::clone(&self.inner));
        runtime.spawn(async move {
            let inner = &guard.0;
            let mut conn = inner.conn.clone();
            let mut invocation = inner.pause.prepare_invoke();
            invocation.key(&inner.pause_key).arg(pause_ms).arg(raw);
            let write = invocation.invoke_async::<i64>(&mut conn);
            match tokio::time::timeout(inner.config.call_timeout, write).await {
                Ok(Ok(_)) => {}
                Ok(Err(_)) | Err(_) => {
                    tracing::debug!(
                        key = %inner.pause_key,
                        "shared rate budget: could not publish a pause to Redis; it holds on this replica"
                    );
                    inner.errors.fetch_add(1, Ordering::Relaxed);
                    inner.degrade();
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manager() -> ConnectionManager {
        // Nothing listens on port 1: the manager is lazy and never connects.
        connection_manager("redis://127.0.0.1:1/", Duration::from_millis(50)).unwrap()
    }

    #[tokio::test]
    async fn bad_settings_are_config_errors_naming_the_field() {
        for (account, config, field) in [
            ("a b", RedisBudgetConfig::new(600, 2), "account"),
            ("", RedisBudgetConfig::new(600, 2), "account"),
            ("x{y}", RedisBudgetConfig::new(600, 2), "account"),
            (
                "main",
                RedisBudgetConfig::new(0, 2),
                "rate_limit_per_minute",
            ),
            ("main", RedisBudgetConfig::new(600, 0), "replicas"),
        ] {
            let err = RedisRateBudget::new(manager(), account, config).unwrap_err();
            assert!(
                matches!(&err, Error::Config { field: f, .. } if f == field),
                "{account:?} {config:?}: {err:?}"
            );
        }
        let err = connection_manager("http://nope", Duration::from_millis(50)).unwrap_err();
        assert!(
            matches!(&err, Error::Config { field, .. } if field == "redis_url"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn errors_and_debug_never_show_the_url_password() {
        let err = connection_manager("rediss://:hunter2@[bad", Duration::from_millis(50))
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
        let conn =
            connection_manager("redis://:hunter2@127.0.0.1:1/", Duration::from_millis(50)).unwrap();
        let budget = RedisRateBudget::new(conn, "main", RedisBudgetConfig::new(600, 2)).unwrap();
        let debug = format!("{budget:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("dutycard:v1:budget:{main}:gcra"), "{debug}");
    }
}
