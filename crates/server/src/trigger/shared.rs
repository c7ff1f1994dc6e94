//! [`SharedTrigger`]: the trigger's idempotency entries and rate limits kept
//! in Redis, so that several replicas behind one load balancer act as one
//! (issue 17). The in-process [`IdempotencyStore`](super::idempotency) and
//! [`RateLimits`](super::limits::RateLimits) stay the defaults; a
//! [`TriggerService`](super::TriggerService) uses this only when given one
//! with [`TriggerService::with_shared`](super::TriggerService::with_shared).
//!
//! * **Idempotency**: a request claims its key with `SET NX PX` (an
//!   in-flight entry: a random token and the request's fingerprint, living
//!   `trigger.deadline_ms` plus a margin, so a replica that dies holding it
//!   frees it by itself). A final answer (accepted, or rejected as invalid by
//!   PagerDuty) replaces it for `trigger.idempotency_window_secs`; a failure
//!   that created nothing, or a dropped claim, deletes it only if it is
//!   still ours (compare-and-delete in Lua). A request that meets another
//!   replica's in-flight entry polls it (with backoff, bounded by its
//!   deadline) until it turns into an answer (replayed) or vanishes (it
//!   then claims the key itself). Stored answers are [`StoredAnswer`]s:
//!   the 202 body or PagerDuty's rejection, never a routing key.
//! * **Limits**: a GCRA per caller and per routing key in one Lua script on
//!   Redis `TIME` (as `pagerduty::budget::redis`), the same rate and burst
//!   as the local `governor` limiters, each key with a TTL.
//! * **Keys**: `<prefix>:idem:<h>`, `<prefix>:limit:caller:<h>` and
//!   `<prefix>:limit:key:<h>`, `<h>` the first 128 bits of a SHA-256 of
//!   what the local store keys by (account, caller and `Idempotency-Key`;
//!   the caller; the routing key's hash), so no caller name, key or routing
//!   key is readable in Redis.
//! * **Redis down or slow**: every call is bounded by
//!   [`SharedSettings::call_timeout`]. On a failure the trigger logs once,
//!   counts it ([`SharedTrigger::fallbacks`]), and answers from the local
//!   store and limits ([`SharedMode::Local`]). A watch pings Redis every
//!   [`SharedSettings::probe_interval`] from the start, in both modes
//!   ([`monitor`]): the trigger starts local and shares once Redis answers,
//!   goes local when a ping fails even if no trigger is asked meanwhile
//!   (so `/readyz` tells the truth while Redis is down), and goes back to
//!   [`SharedMode::Shared`] when it answers. A trigger is never refused or
//!   held because Redis is away: at worst a retry on another replica is sent
//!   again, with the same dedup_key (derived from the `Idempotency-Key`), so
//!   PagerDuty merges it into the same alert.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use redis::Script;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio::time::Instant;

use super::{Answer, TriggerAccepted, TriggerError};

mod monitor;

/// The default key prefix: every key of the trigger lives under it.
pub const DEFAULT_KEY_PREFIX: &str = "dutycard:v1:trigger";

/// Claim: `KEYS[1]`; `ARGV[1]` the in-flight entry, `ARGV[2]` its TTL (ms).
/// Answers `{1, ''}` claimed, or `{0, <the entry in force>}`.
const CLAIM_LUA: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, ''}
end
return {0, redis.call('GET', KEYS[1]) or ''}
";

/// Final answer: `KEYS[1]`; `ARGV[1]` our in-flight entry, `ARGV[2]` the
/// answer entry, `ARGV[3]` the window (ms). Written over our own entry, or
/// when it expired and nobody claimed the key since; never over another's.
const FINISH_LUA: &str = r"
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] or not v then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
";

/// Compare-and-delete: `KEYS[1]`, `ARGV[1]` our in-flight entry.
const RELEASE_LUA: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// GCRA: `KEYS[1]` the theoretical arrival time (µs, Redis clock); `ARGV[1]`
/// the emission interval (µs), `ARGV[2]` the burst. `{0, 0}` allowed, or
/// `{1, wait_ms}`.
const GCRA_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = interval * (tonumber(ARGV[2]) - 1)
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < now then tat = now end
local wait = tat - now - tolerance
if wait > 0 then
  return {1, math.ceil(wait / 1000)}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return {0, 0}
";

/// Where a [`SharedTrigger`] keeps its keys and how long it trusts Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedSettings {
    /// Every key starts with this (default [`DEFAULT_KEY_PREFIX`]); replicas
    /// that must act as one use the same prefix on the same Redis.
    pub key_prefix: String,
    /// The most one Redis call may take before the trigger answers locally.
    pub call_timeout: Duration,
    /// How often Redis is pinged, in both modes: how soon the mode follows
    /// Redis going away or coming back when no trigger is asked.
    pub probe_interval: Duration,
}

impl Default for SharedSettings {
    /// [`DEFAULT_KEY_PREFIX`], a 100 ms call timeout, a probe every second.
    fn default() -> Self {
        SharedSettings {
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            call_timeout: Duration::from_millis(100),
            probe_interval: Duration::from_secs(1),
        }
    }
}

/// Whether the trigger's idempotency and limits are shared right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedMode {
    /// Through Redis: one store and one set of limits for every replica.
    Shared,
    /// Redis did not answer in time: this replica's own store and limits,
    /// until Redis answers again.
    Local,
}

impl SharedMode {
    /// `shared` or `local`, for readiness and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            SharedMode::Shared => "shared",
            SharedMode::Local => "local",
        }
    }
}

/// A final answer as kept in Redis: what a replay on any replica answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StoredAnswer {
    /// PagerDuty accepted the event: the 202 body.
    Accepted(TriggerAccepted),
    /// PagerDuty rejected the event as invalid (400).
    Rejected {
        message: String,
        errors: Vec<String>,
    },
}

impl StoredAnswer {
    /// The answer to keep for the window, if `answer` is a final one.
    pub fn of(answer: &Answer) -> Option<StoredAnswer> {
        match answer {
            Ok(accepted) => Some(StoredAnswer::Accepted(accepted.clone())),
            Err(TriggerError::Rejected { message, errors }) => Some(StoredAnswer::Rejected {
                message: message.clone(),
                errors: errors.clone(),
            }),
            Err(_) => None,
        }
    }

    /// Back to the answer it was made from.
    pub fn into_answer(self) -> Answer {
        match self {
            StoredAnswer::Accepted(accepted) => Ok(accepted),
            StoredAnswer::Rejected { message, errors } => {
                Err(TriggerError::Rejected { message, errors })
            }
        }
    }
}

/// The value of an idempotency key in Redis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum Entry {
    InFlight {
        token: String,
        fingerprint: u64,
    },
    Done {
        fingerprint: u64,
        answer: StoredAnswer,
    },
}

/// What [`SharedTrigger::claim`] found.
#[derive(Debug)]
pub enum RemoteBegin {
    /// The key is ours: send, then [`RemoteClaim::finish`].
    Leader(RemoteClaim),
    /// The answer of the same request, kept by some replica.
    Done(StoredAnswer),
    /// The key holds a different request (in flight or answered).
    Mismatch,
    /// The same request is still in flight elsewhere past our wait.
    Busy,
    /// Redis failed or was too slow: answer locally.
    Unavailable,
}

/// Trigger idempotency and limits in Redis; see the [module docs](self).
/// Cheap to clone (one `Arc`): the server may keep one for readiness.
#[derive(Clone)]
pub struct SharedTrigger {
    inner: Arc<Inner>,
}

struct Inner {
    conn: ConnectionManager,
    settings: SharedSettings,
    claim: Script,
    finish: Script,
    release: Script,
    gcra: Script,
    mode: watch::Sender<SharedMode>,
    /// True once the [`monitor`] runs (it runs for the trigger's life).
    monitoring: AtomicBool,
    fallbacks: AtomicU64,
}

impl std::fmt::Debug for SharedTrigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No connection details: the URL may hold a password.
        f.debug_struct("SharedTrigger")
            .field("settings", &self.inner.settings)
            .field("mode", &self.mode())
            .finish_non_exhaustive()
    }
}

/// The first 128 bits of SHA-256 of `text`, in hex.
fn digest(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A redis call, bounded: `None` on an error or a timeout.
async fn bounded<T>(
    limit: Duration,
    call: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Option<T> {
    match tokio::time::timeout(limit, call).await {
        Ok(Ok(value)) => Some(value),
        Ok(Err(e)) => {
            tracing::debug!(error_kind = ?e.kind(), "shared trigger: Redis call failed");
            None
        }
        Err(_) => None,
    }
}

impl SharedTrigger {
    /// Idempotency and limits on `conn` (e.g. from
    /// `pagerduty::budget::redis::connection_manager`: lazy, so a replica
    /// starts while Redis is down), under `settings.key_prefix`. A zero
    /// timeout or probe interval is taken as the default's.
    pub fn new(conn: ConnectionManager, settings: SharedSettings) -> Self {
        let defaults = SharedSettings::default();
        let settings = SharedSettings {
            key_prefix: settings.key_prefix.trim_end_matches(':').to_owned(),
            call_timeout: Some(settings.call_timeout)
                .filter(|d| !d.is_zero())
                .unwrap_or(defaults.call_timeout),
            probe_interval: Some(settings.probe_interval)
                .filter(|d| !d.is_zero())
                .unwrap_or(defaults.probe_interval),
        };
        let shared = SharedTrigger {
            inner: Arc::new(Inner {
                conn,
                settings,
                claim: Script::new(CLAIM_LUA),
                finish: Script::new(FINISH_LUA),
                release: Script::new(RELEASE_LUA),
                gcra: Script::new(GCRA_LUA),
                // Local until Redis first answers (the monitor's first
                // ping, at once): readiness never says shared before that.
                mode: watch::Sender::new(SharedMode::Local),
                monitoring: AtomicBool::new(false),
                fallbacks: AtomicU64::new(0),
            }),
        };
        monitor::start(&shared.inner);
        shared
    }

    /// The mode in force now.
    pub fn mode(&self) -> SharedMode {
        *self.inner.mode.borrow()
    }

    /// Follows the mode as it changes (Redis lost, Redis back).
    pub fn watch_mode(&self) -> watch::Receiver<SharedMode> {
        self.inner.mode.subscribe()
    }

    /// How many checks were answered locally because Redis failed or was
    /// away (for metrics).
    pub fn fallbacks(&self) -> u64 {
        self.inner.fallbacks.load(Ordering::Relaxed)
    }

    /// The settings in force.
    pub fn settings(&self) -> &SharedSettings {
        &self.inner.settings
    }

    /// The Redis key of the local idempotency key `key`.
    pub fn idempotency_key(&self, key: &str) -> String {
        format!("{}:idem:{}", self.inner.settings.key_prefix, digest(key))
    }

    /// True when Redis should be asked; counts a fallback otherwise.
    fn usable(&self) -> bool {
        if *self.inner.mode.borrow() == SharedMode::Local {
            self.inner.fallbacks.fetch_add(1, Ordering::Relaxed);
            // Created outside a runtime, the monitor starts here.
            monitor::start(&self.inner);
            return false;
        }
        true
    }

    /// Redis failed: count it, go local (logged once per outage).
    fn fail(&self) {
        self.inner.fallbacks.fetch_add(1, Ordering::Relaxed);
        self.inner.degrade();
    }

    /// The kept answer for local key `key` and a request with
    /// `fingerprint`, if any (no claim is made). `None` too when Redis is
    /// away: the caller then relies on the local store.
    pub async fn answer(&self, key: &str, fingerprint: u64) -> Option<StoredAnswer> {
        if !self.usable() {
            return None;
        }
        match self.get(&self.idempotency_key(key)).await {
            Err(()) => {
                self.fail();
                None
            }
            Ok(Some(Entry::Done {
                fingerprint: f,
                answer,
            })) if f == fingerprint => Some(answer),
            Ok(_) => None,
        }
    }

    async fn get(&self, redis_key: &str) -> Result<Option<Entry>, ()> {
        let mut conn = self.inner.conn.clone();
        let mut cmd = redis::cmd("GET");
        cmd.arg(redis_key);
        let get = cmd.query_async::<Option<String>>(&mut conn);
        match bounded(self.inner.settings.call_timeout, get).await {
            None => Err(()),
            // An entry we cannot read (another version wrote it) is no entry.
            Some(value) => Ok(value.and_then(|v| serde_json::from_str(&v).ok())),
        }
    }

    /// Claim local key `key` for a request with `fingerprint`; its
    /// in-flight entry lives `in_flight_ttl`. Another replica's entry for
    /// the same request is waited for until `until` (polled with backoff).
    pub async fn claim(
        &self,
        key: &str,
        fingerprint: u64,
        in_flight_ttl: Duration,
        until: Instant,
    ) -> RemoteBegin {
        if !self.usable() {
            return RemoteBegin::Unavailable;
        }
        let redis_key = self.idempotency_key(key);
        let mine = Entry::InFlight {
            token: uuid::Uuid::new_v4().simple().to_string(),
            fingerprint,
        };
        let mine = serde_json::to_string(&mine).unwrap_or_default();
        let ttl_ms = in_flight_ttl.as_millis().max(1) as u64;
        let mut pause = Duration::from_millis(10);
        loop {
            let mut conn = self.inner.conn.clone();
            let mut invocation = self.inner.claim.prepare_invoke();
            invocation.key(&redis_key).arg(&mine).arg(ttl_ms);
            let call = invocation.invoke_async::<(i64, String)>(&mut conn);
            let Some((claimed, current)) = bounded(self.inner.settings.call_timeout, call).await
            else {
                self.fail();
                return RemoteBegin::Unavailable;
            };
            if claimed == 1 {
                return RemoteBegin::Leader(RemoteClaim {
                    shared: self.clone(),
                    redis_key,
                    entry: mine,
                    settled: false,
                });
            }
            match serde_json::from_str::<Entry>(&current) {
                Ok(Entry::Done {
                    fingerprint: f,
                    answer,
                }) => {
                    return if f == fingerprint {
                        RemoteBegin::Done(answer)
                    } else {
                        RemoteBegin::Mismatch
                    };
                }
                Ok(Entry::InFlight { fingerprint: f, .. }) if f != fingerprint => {
                    return RemoteBegin::Mismatch;
                }
                // The same request in flight elsewhere (or an entry we
                // cannot read, left to expire): wait, then look again.
                _ => {}
            }
            let now = Instant::now();
            if now + pause > until {
                return RemoteBegin::Busy;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }

    /// One request from `caller`'s shared budget of `per_minute`: `None`
    /// when Redis is away (use the local limit).
    pub async fn check_caller(
        &self,
        caller: &str,
        per_minute: u32,
    ) -> Option<Result<(), Duration>> {
        let key = format!(
            "{}:limit:caller:{}",
            self.inner.settings.key_prefix,
            digest(caller)
        );
        self.check(&key, per_minute).await
    }

    /// One request from the shared budget of the routing key with hash
    /// `key_hash`: `None` when Redis is away.
    pub async fn check_routing_key(
        &self,
        key_hash: u64,
        per_minute: u32,
    ) -> Option<Result<(), Duration>> {
        let key = format!(
            "{}:limit:key:{}",
            self.inner.settings.key_prefix,
            digest(&format!("{key_hash:016x}"))
        );
        self.check(&key, per_minute).await
    }

    async fn check(&self, redis_key: &str, per_minute: u32) -> Option<Result<(), Duration>> {
        if !self.usable() {
            return None;
        }
        let per_minute = u64::from(per_minute.max(1));
        let mut conn = self.inner.conn.clone();
        let mut invocation = self.inner.gcra.prepare_invoke();
        // Like `governor`'s `Quota::per_minute(n)`: one every 60/n s, bursts of n.
        invocation
            .key(redis_key)
            .arg((60_000_000 / per_minute).max(1))
            .arg(per_minute);
        let call = invocation.invoke_async::<(i64, i64)>(&mut conn);
        match bounded(self.inner.settings.call_timeout, call).await {
            None => {
                self.fail();
                None
            }
            Some((0, _)) => Some(Ok(())),
            Some((_, wait_ms)) => Some(Err(Duration::from_millis(wait_ms.max(1) as u64))),
        }
    }
}

impl Inner {
    /// Redis failed or did not answer: local (logged once per outage)
    /// until the monitor's ping is answered.
    fn degrade(self: &Arc<Self>) {
        let changed = self.mode.send_if_modified(|m| {
            let was = *m;
            *m = SharedMode::Local;
            was != SharedMode::Local
        });
        if changed {
            tracing::warn!(
                prefix = %self.settings.key_prefix,
                "shared trigger idempotency and limits: Redis unreachable or slow; using this replica's own until it answers again"
            );
        }
        monitor::start(self);
    }

    /// Redis answered: shared (logged once per recovery).
    fn share(&self) {
        if self.mode.send_replace(SharedMode::Shared) != SharedMode::Shared {
            tracing::info!(
                prefix = %self.settings.key_prefix,
                "shared trigger idempotency and limits: Redis answers; shared"
            );
        }
    }
}

/// This replica's in-flight entry for a key. Dropping it without
/// [`RemoteClaim::finish`] deletes the entry (if still ours) in a task, so
/// another replica may send at once.
pub struct RemoteClaim {
    shared: SharedTrigger,
    redis_key: String,
    /// Our in-flight entry, exactly as written (compared by the scripts).
    entry: String,
    settled: bool,
}

impl std::fmt::Debug for RemoteClaim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteClaim")
            .field("redis_key", &self.redis_key)
            .finish_non_exhaustive()
    }
}

impl RemoteClaim {
    /// Keep `answer` for `window` on every replica, or, with `None`, free
    /// the key (nothing was created: a retry may send). Bounded; a Redis
    /// failure leaves the in-flight entry to expire.
    pub async fn finish(mut self, answer: Option<&StoredAnswer>, window: Duration) {
        self.settled = true;
        let ok = match answer {
            Some(answer) => {
                let fingerprint = match serde_json::from_str(&self.entry) {
                    Ok(Entry::InFlight { fingerprint, .. }) => fingerprint,
                    _ => 0,
                };
                let done = Entry::Done {
                    fingerprint,
                    answer: answer.clone(),
                };
                let done = serde_json::to_string(&done).unwrap_or_default();
                let mut conn = self.shared.inner.conn.clone();
                let mut invocation = self.shared.inner.finish.prepare_invoke();
                invocation
                    .key(&self.redis_key)
                    .arg(&self.entry)
                    .arg(done)
                    .arg(window.as_millis().max(1) as u64);
                let call = invocation.invoke_async::<i64>(&mut conn);
                bounded(self.shared.inner.settings.call_timeout, call)
                    .await
                    .is_some()
            }
            None => release(&self.shared, &self.redis_key, &self.entry).await,
        };
        if !ok {
            self.shared.fail();
        }
    }
}

async fn release(shared: &SharedTrigger, redis_key: &str, entry: &str) -> bool {
    let mut conn = shared.inner.conn.clone();
    let mut invocation = shared.inner.release.prepare_invoke();
    invocation.key(redis_key).arg(entry);
    let call = invocation.invoke_async::<i64>(&mut conn);
    bounded(shared.inner.settings.call_timeout, call)
        .await
        .is_some()
}

impl Drop for RemoteClaim {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (shared, key, entry) = (
            self.shared.clone(),
            std::mem::take(&mut self.redis_key),
            std::mem::take(&mut self.entry),
        );
        runtime.spawn(async move {
            if !release(&shared, &key, &entry).await {
                shared.fail();
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_answers_round_trip_and_only_final_answers_are_kept() {
        let accepted = TriggerAccepted {
            status: "success".into(),
            dedup_key: "dutycard-1".into(),
            message: "Event processed".into(),
            service_id: Some("PABC123".into()),
            created: Some(true),
        };
        let stored = StoredAnswer::of(&Ok(accepted.clone())).unwrap();
        let json = serde_json::to_string(&Entry::Done {
            fingerprint: u64::MAX,
            answer: stored,
        })
        .unwrap();
        let back: Entry = serde_json::from_str(&json).unwrap();
        let Entry::Done {
            fingerprint,
            answer,
        } = back
        else {
            panic!("{json}")
        };
        assert_eq!(fingerprint, u64::MAX, "a u64 survives JSON: {json}");
        assert_eq!(answer.into_answer().unwrap(), accepted);

        let rejected = Err(TriggerError::Rejected {
            message: "bad".into(),
            errors: vec!["summary".into()],
        });
        let stored = StoredAnswer::of(&rejected).unwrap();
        assert!(matches!(
            stored.into_answer(),
            Err(TriggerError::Rejected { message, errors }) if message == "bad" && errors == ["summary"]
        ));
        assert!(StoredAnswer::of(&Err(TriggerError::InProgress)).is_none());
    }

    #[test]
    fn redis_keys_show_no_caller_or_key() {
        let digest = digest("idem\0default\0alice\0my-key");
        assert_eq!(digest.len(), 32);
        assert!(digest.chars().all(|c| c.is_ascii_hexdigit()));
        assert!(!digest.contains("alice"));
    }
}
