//! [`RedisSharedCache`]: the [`SharedCache`] of several replicas, in Redis
//! (cargo feature `redis`), on redis-rs's reconnecting, multiplexed
//! [`ConnectionManager`] for commands and one pub/sub connection for the
//! invalidations of the other replicas.
//!
//! Keys, per section entry (`{account}` is a Redis Cluster hash tag, so the
//! keys of one script share a slot, as in the shared rate budget):
//!
//! * `dutycard:v1:{<account>}:section:<section>:<id>`: the value,
//!   `<fetched_at ms>:<JSON>`, with a `PX` of the section's hard limit;
//! * `…:lease`: the loading replica's token (`SET NX PX` of the lease time,
//!   renewed by the holder while its load runs);
//! * `…:gen`: the generation, `INCR`ed by each invalidation (`PX` of the
//!   hard limit), compared by the store script so a load that started
//!   before an invalidation never stores its older answer;
//!
//! and per section, `dutycard:v1:{<account>}:epoch:<section>`, `INCR`ed by
//! every invalidation in the section: a listing's offered values (many
//! entries at once, no lease) are stored only when it has not moved since
//! the listing started. A batched section's collection has two more keys
//! (see `join`).
//!
//! Invalidations go out on the channel [`CHANNEL`] as JSON
//! ([`Invalidation`]) naming the replica they come from; each replica
//! ignores its own.
//!
//! **Failures.** Every call is bounded by the call timeout. The first
//! failure switches to [`SharedMode::Degraded`] (logged once); a probe then
//! pings every probe interval and, once Redis answers and the pub/sub
//! connection is subscribed again, switches back (logged once). The cache
//! starts degraded and shares as soon as both answer, so a replica starts
//! while Redis is down.

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use ::redis::aio::ConnectionManager;
use ::redis::{Client as RedisClient, RedisResult, Script};
use futures::StreamExt;
use futures::future::BoxFuture;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use super::shared::{
    Collect, Dropped, EntryKey, Fetched, Invalidation, JoinState, Offered, SharedCache,
    SharedError, SharedMode, SharedTiming, Wanted,
};

mod join;

/// The pub/sub channel of invalidations.
pub const CHANNEL: &str = "dutycard:v1:invalidate";

/// `KEYS`: value, generation, lease; `ARGV`: the oldest acceptable
/// `fetched_at` (ms), the lease token, the lease time (ms). Answers
/// `{1, value}`, `{2, generation}` (leased) or `{3, ''}` (busy).
const FETCH_OR_LEASE_LUA: &str = r"
local v = redis.call('GET', KEYS[1])
if v then
  local at = tonumber(string.match(v, '^(%-?%d+):'))
  if at and at >= tonumber(ARGV[1]) then return {1, v} end
end
if redis.call('SET', KEYS[3], ARGV[2], 'NX', 'PX', ARGV[3]) then
  return {2, redis.call('GET', KEYS[2]) or '0'}
end
return {3, ''}
";

/// `KEYS`: value, generation, lease; `ARGV`: the generation the load
/// started at, the value, its TTL (ms), the lease token.
const PUT_LUA: &str = r"
if (redis.call('GET', KEYS[2]) or '0') == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
if redis.call('GET', KEYS[3]) == ARGV[4] then redis.call('DEL', KEYS[3]) end
return 1
";

/// `KEYS`: lease; `ARGV`: the token.
const RELEASE_LUA: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
";

/// `KEYS`: value, generation, the section's epoch; `ARGV`: the
/// generation's and the epoch's TTL (ms).
const INVALIDATE_LUA: &str = r"
redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
redis.call('INCR', KEYS[3])
redis.call('PEXPIRE', KEYS[3], ARGV[1])
redis.call('DEL', KEYS[1])
return 1
";

/// `KEYS`: lease; `ARGV`: the token, the lease time (ms). Answers 1 when
/// the lease was this token's and is extended.
const RENEW_LUA: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
";

/// `KEYS`: the section's epoch, then the values; `ARGV`: the epoch the
/// listing started at, then per value its `<fetched_at>:<JSON>` and TTL
/// (ms). Sets only absent values (a leased load's is newer), and nothing
/// when an invalidation came after the listing started.
const OFFER_LUA: &str = r"
if (redis.call('GET', KEYS[1]) or '0') ~= ARGV[1] then return 0 end
for i = 2, #KEYS do
  redis.call('SET', KEYS[i], ARGV[2 * i - 2], 'NX', 'PX', ARGV[2 * i - 1])
end
return 1
";

/// How a [`RedisSharedCache`] waits and how long it trusts Redis.
#[derive(Debug, Clone)]
pub struct RedisSharedConfig {
    /// The waits and lifetimes of the shared sections.
    pub timing: SharedTiming,
    /// The most one Redis call may take before the cache goes local.
    pub call_timeout: Duration,
    /// How often a degraded cache asks Redis whether it is back.
    pub probe_interval: Duration,
    /// This replica's id in the invalidations it publishes (unique per process).
    pub replica: String,
}

/// The [`SharedCache`] in Redis; see the [module docs](self). Cheap to
/// clone (one `Arc`); one per process serves every account.
#[derive(Clone)]
pub struct RedisSharedCache {
    inner: Arc<Inner>,
}

struct Inner {
    conn: ConnectionManager,
    client: RedisClient,
    config: RedisSharedConfig,
    fetch: Script,
    put: Script,
    release: Script,
    invalidate: Script,
    renew: Script,
    offer: Script,
    join: join::Scripts,
    mode: watch::Sender<SharedMode>,
    probing: AtomicBool,
    subscribed: AtomicBool,
    invalidations: broadcast::Sender<Invalidation>,
    errors: AtomicU64,
    tokens: AtomicU64,
    stop: CancellationToken,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl fmt::Debug for RedisSharedCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No URL: it may hold a password.
        f.debug_struct("RedisSharedCache")
            .field("replica", &self.inner.config.replica)
            .field("mode", &self.mode())
            .finish_non_exhaustive()
    }
}

impl RedisSharedCache {
    /// A cache on `conn` (commands) and `redis_url` (its pub/sub
    /// connection, opened in the background). Connects nothing before it
    /// returns: it starts [`SharedMode::Degraded`] and shares once Redis
    /// answers. Needs a Tokio runtime. Errors never contain the URL.
    pub fn start(
        redis_url: &str,
        conn: ConnectionManager,
        config: RedisSharedConfig,
    ) -> Result<Self, SharedError> {
        let client = RedisClient::open(redis_url).map_err(|e| {
            SharedError(format!(
                "redis_url is not a usable Redis URL ({:?})",
                e.kind()
            ))
        })?;
        if config.call_timeout.is_zero() || config.probe_interval.is_zero() {
            return Err(SharedError(
                "the Redis call timeout and probe interval must be above zero".into(),
            ));
        }
        let inner = Arc::new(Inner {
            conn,
            client,
            config,
            fetch: Script::new(FETCH_OR_LEASE_LUA),
            put: Script::new(PUT_LUA),
            release: Script::new(RELEASE_LUA),
            invalidate: Script::new(INVALIDATE_LUA),
            renew: Script::new(RENEW_LUA),
            offer: Script::new(OFFER_LUA),
            join: join::Scripts::default(),
            mode: watch::Sender::new(SharedMode::Degraded),
            probing: AtomicBool::new(false),
            subscribed: AtomicBool::new(false),
            invalidations: broadcast::Sender::new(crate::changes::CHANGE_BUFFER),
            errors: AtomicU64::new(0),
            tokens: AtomicU64::new(0),
            stop: CancellationToken::new(),
        });
        tokio::spawn(subscriber(Arc::downgrade(&inner), inner.stop.clone()));
        inner.start_probe();
        Ok(RedisSharedCache { inner })
    }

    /// Redis calls that failed or timed out since start.
    pub fn errors(&self) -> u64 {
        self.inner.errors.load(Ordering::Relaxed)
    }
}

/// The Redis key of an entry's value.
fn value_key(account: &str, section: &str, id: &str) -> String {
    format!("dutycard:v1:{{{account}}}:section:{section}:{id}")
}

/// The Redis key of a section's invalidation epoch (outside the
/// `section:` names, so no entry id can collide with it).
fn epoch_key(account: &str, section: &str) -> String {
    format!("dutycard:v1:{{{account}}}:epoch:{section}")
}

/// The Redis keys of one entry: value, generation, lease.
fn keys(key: &EntryKey) -> [String; 3] {
    let value = value_key(&key.account, key.section, &key.id);
    [
        value.clone(),
        format!("{value}:gen"),
        format!("{value}:lease"),
    ]
}

/// A stored `<fetched_at ms>:<JSON>` split in its two halves.
fn split_stored(payload: &[u8]) -> Result<(i64, Vec<u8>), SharedError> {
    let split = payload.iter().position(|b| *b == b':');
    let at = split
        .and_then(|i| std::str::from_utf8(&payload[..i]).ok())
        .and_then(|s| s.parse::<i64>().ok());
    match (split, at) {
        (Some(i), Some(at)) => Ok((at, payload[i + 1..].to_vec())),
        _ => Err(SharedError("a shared value without its fetch time".into())),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl Inner {
    /// One Redis call, bounded; a failure degrades the cache.
    async fn call<T>(
        self: &Arc<Self>,
        what: &str,
        work: impl Future<Output = RedisResult<T>>,
    ) -> Result<T, SharedError> {
        let message = match tokio::time::timeout(self.config.call_timeout, work).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) => format!("{what}: Redis failed ({:?})", e.kind()),
            Err(_) => format!(
                "{what}: no answer from Redis within {} ms",
                self.config.call_timeout.as_millis()
            ),
        };
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.degrade(&message);
        Err(SharedError(message))
    }

    /// Redis failed: local until it answers (logged once per outage).
    fn degrade(self: &Arc<Self>, why: &str) {
        let changed = self.mode.send_if_modified(|m| {
            let was = *m;
            *m = SharedMode::Degraded;
            was != SharedMode::Degraded
        });
        if changed {
            tracing::warn!(
                why,
                "shared card cache: Redis unreachable or slow; cards are read from PagerDuty and cached in this replica until it answers again"
            );
        }
        self.start_probe();
    }

    fn start_probe(self: &Arc<Self>) {
        if self.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = Arc::downgrade(self);
        let interval = self.config.probe_interval;
        let stop = self.stop.clone();
        tokio::spawn(stop.clone().run_until_cancelled_owned(async move {
            loop {
                let Some(inner) = weak.upgrade() else { return };
                let mut conn = inner.conn.clone();
                let cmd = ::redis::cmd("PING");
                let ping = cmd.query_async::<String>(&mut conn);
                let answered = matches!(
                    tokio::time::timeout(inner.config.call_timeout, ping).await,
                    Ok(Ok(_))
                );
                if answered && inner.subscribed.load(Ordering::Acquire) {
                    inner.probing.store(false, Ordering::Release);
                    if inner.mode.send_replace(SharedMode::Shared) != SharedMode::Shared {
                        tracing::info!("shared card cache: Redis answers; sections are shared");
                    }
                    return;
                }
                drop(inner);
                tokio::time::sleep(interval).await;
            }
        }));
    }

    fn token(&self) -> String {
        let n = self.tokens.fetch_add(1, Ordering::Relaxed);
        let salt = RandomState::new().hash_one((n, std::time::SystemTime::now()));
        format!("{}-{n}-{salt:x}", self.config.replica)
    }
}

/// Holds the pub/sub connection: forwards the other replicas'
/// invalidations, reconnects after a loss (which degrades the cache: what
/// was published meanwhile is missed, and the L1 copies' short life bounds
/// what that costs).
async fn subscriber(weak: Weak<Inner>, stop: CancellationToken) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let timeout = inner.config.call_timeout;
        let interval = inner.config.probe_interval;
        let client = inner.client.clone();
        let replica = inner.config.replica.clone();
        let sender = inner.invalidations.clone();
        drop(inner);
        let connect = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(CHANNEL).await?;
            Ok::<_, ::redis::RedisError>(pubsub)
        };
        let connected = tokio::select! {
            () = stop.cancelled() => return,
            result = tokio::time::timeout(timeout * 5, connect) => result,
        };
        if let Ok(Ok(pubsub)) = connected {
            if let Some(inner) = weak.upgrade() {
                inner.subscribed.store(true, Ordering::Release);
                inner.start_probe();
            }
            let mut messages = pubsub.into_on_message();
            loop {
                let message = tokio::select! {
                    () = stop.cancelled() => return,
                    message = messages.next() => message,
                };
                let Some(message) = message else { break };
                let Ok(payload) = message.get_payload::<Vec<u8>>() else {
                    continue;
                };
                match serde_json::from_slice::<Invalidation>(&payload) {
                    Ok(invalidation) if invalidation.origin != replica => {
                        let _ = sender.send(invalidation);
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::debug!(%error, "shared card cache: unreadable invalidation ignored");
                    }
                }
            }
            // The connection ended: Redis went away.
            let Some(inner) = weak.upgrade() else { return };
            inner.subscribed.store(false, Ordering::Release);
            inner.degrade("the pub/sub connection to Redis was lost");
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

impl SharedCache for RedisSharedCache {
    fn mode(&self) -> SharedMode {
        *self.inner.mode.borrow()
    }

    fn watch_mode(&self) -> watch::Receiver<SharedMode> {
        self.inner.mode.subscribe()
    }

    fn timing(&self) -> SharedTiming {
        self.inner.config.timing
    }

    fn fetch_or_lease<'a>(
        &'a self,
        key: &'a EntryKey,
        fresh_since: i64,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Fetched, SharedError>> {
        Box::pin(async move {
            let inner = &self.inner;
            let [value, generation, lease_key] = keys(key);
            let token = inner.token();
            let mut conn = inner.conn.clone();
            let mut invocation = inner.fetch.prepare_invoke();
            invocation
                .key(&value)
                .key(&generation)
                .key(&lease_key)
                .arg(fresh_since)
                .arg(&token)
                .arg(millis(lease));
            let (state, payload): (i64, Vec<u8>) = inner
                .call("fetch", invocation.invoke_async(&mut conn))
                .await?;
            Ok(match state {
                1 => {
                    let (at, value) = split_stored(&payload)?;
                    Fetched::Value(at, value)
                }
                2 => Fetched::Leased {
                    generation: String::from_utf8_lossy(&payload).into_owned(),
                    token,
                },
                _ => Fetched::Busy,
            })
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a EntryKey,
        fetched_at: i64,
        value: Vec<u8>,
        ttl: Duration,
        generation: &'a str,
        token: &'a str,
    ) -> BoxFuture<'a, Result<(), SharedError>> {
        Box::pin(async move {
            let inner = &self.inner;
            let [value_key, generation_key, lease_key] = keys(key);
            let mut stored = format!("{fetched_at}:").into_bytes();
            stored.extend_from_slice(&value);
            let mut conn = inner.conn.clone();
            let mut invocation = inner.put.prepare_invoke();
            invocation
                .key(&value_key)
                .key(&generation_key)
                .key(&lease_key)
                .arg(generation)
                .arg(stored)
                .arg(millis(ttl))
                .arg(token);
            inner
                .call("store", invocation.invoke_async::<i64>(&mut conn))
                .await
                .map(drop)
        })
    }

    fn release<'a>(
        &'a self,
        key: &'a EntryKey,
        token: &'a str,
    ) -> BoxFuture<'a, Result<(), SharedError>> {
        Box::pin(async move {
            let inner = &self.inner;
            let [_, _, lease_key] = keys(key);
            let mut conn = inner.conn.clone();
            let mut invocation = inner.release.prepare_invoke();
            invocation.key(&lease_key).arg(token);
            inner
                .call("release", invocation.invoke_async::<i64>(&mut conn))
                .await
                .map(drop)
        })
    }

    fn renew<'a>(
        &'a self,
        key: &'a EntryKey,
        token: &'a str,
        lease: Duration,
    ) -> BoxFuture<'a, Result<bool, SharedError>> {
        Box::pin(async move {
            let inner = &self.inner;
            let [_, _, lease_key] = keys(key);
            let mut conn = inner.conn.clone();
            let mut invocation = inner.renew.prepare_invoke();
            invocation.key(&lease_key).arg(token).arg(millis(lease));
            inner
                .call("renew", invocation.invoke_async::<i64>(&mut conn))
                .await
                .map(|renewed| renewed == 1)
        })
    }

    fn epoch<'a>(
        &'a self,
        account: &'a str,
        section: &'static str,
    ) -> BoxFuture<'a, Result<String, SharedError>> {
        Box::pin(async move {
            let inner = &self.inner;
            let mut conn = inner.conn.clone();
            let mut cmd = ::redis::cmd("GET");
            cmd.arg(epoch_key(account, section));
            let epoch = cmd.query_async::<Option<String>>(&mut conn);
            let epoch = inner.call("epoch", epoch).await?;
            Ok(epoch.unwrap_or_else(|| "0".to_owned()))
        })
    }

    fn offer<'a>(
        &'a self,
        account: &'a str,
        section: &'static str,
        epoch: &'a str,
        entries: Vec<Offered>,
    ) -> BoxFuture<'a, Result<(), SharedError>> {
        Box::pin(async move {
            if entries.is_empty() {
                return Ok(());
            }
            let inner = &self.inner;
            let mut conn = inner.conn.clone();
            let mut invocation = inner.offer.prepare_invoke();
            invocation.key(epoch_key(account, section)).arg(epoch);
            for entry in entries {
                let mut stored = format!("{}:", entry.fetched_at).into_bytes();
                stored.extend_from_slice(&entry.value);
                invocation
                    .key(value_key(account, section, &entry.id))
                    .arg(stored)
                    .arg(millis(entry.ttl));
            }
            inner
                .call("offer", invocation.invoke_async::<i64>(&mut conn))
                .await
                .map(drop)
        })
    }

    fn collect_or_join<'a>(
        &'a self,
        account: &'a str,
        section: &'static str,
        wanted: Vec<Wanted>,
        hold: Duration,
        room: usize,
    ) -> BoxFuture<'a, Result<Collect, SharedError>> {
        Box::pin(
            self.inner
                .collect_or_join(account, section, wanted, hold, room),
        )
    }

    fn take_wanted<'a>(
        &'a self,
        account: &'a str,
        section: &'static str,
        collector: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Wanted>, SharedError>> {
        Box::pin(self.inner.take_wanted(account, section, collector))
    }

    fn joined<'a>(
        &'a self,
        entries: &'a [(EntryKey, String, i64)],
    ) -> BoxFuture<'a, Result<Vec<JoinState>, SharedError>> {
        Box::pin(self.inner.joined(entries))
    }

    fn invalidate<'a>(
        &'a self,
        key: &'a EntryKey,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), SharedError>> {
        Box::pin(async move {
            let inner = &self.inner;
            let [value_key, generation_key, _] = keys(key);
            let mut conn = inner.conn.clone();
            let mut invocation = inner.invalidate.prepare_invoke();
            invocation
                .key(&value_key)
                .key(&generation_key)
                .key(epoch_key(&key.account, key.section))
                .arg(millis(ttl));
            inner
                .call("invalidate", invocation.invoke_async::<i64>(&mut conn))
                .await
                .map(drop)
        })
    }

    fn publish(&self, account: &str, what: Dropped) -> BoxFuture<'_, Result<(), SharedError>> {
        let message = Invalidation {
            origin: self.inner.config.replica.clone(),
            account: account.to_owned(),
            what,
        };
        Box::pin(async move {
            let inner = &self.inner;
            let payload = serde_json::to_vec(&message)
                .map_err(|e| SharedError(format!("invalidation not serializable: {e}")))?;
            let mut conn = inner.conn.clone();
            let mut cmd = ::redis::cmd("PUBLISH");
            cmd.arg(CHANNEL).arg(payload);
            let publish = cmd.query_async::<i64>(&mut conn);
            inner.call("publish", publish).await.map(drop)
        })
    }

    fn subscribe(&self) -> broadcast::Receiver<Invalidation> {
        self.inner.invalidations.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_namespaced_versioned_and_tagged_by_account() {
        let key = EntryKey {
            account: "main".into(),
            section: "incidents",
            id: "PABC123".into(),
        };
        assert_eq!(
            keys(&key),
            [
                "dutycard:v1:{main}:section:incidents:PABC123".to_owned(),
                "dutycard:v1:{main}:section:incidents:PABC123:gen".to_owned(),
                "dutycard:v1:{main}:section:incidents:PABC123:lease".to_owned(),
            ]
        );
    }

    #[tokio::test]
    async fn a_bad_url_is_an_error_without_the_password_and_debug_hides_the_url() {
        let conn = pagerduty::budget::redis::connection_manager(
            "redis://:hunter2@127.0.0.1:1/",
            Duration::from_millis(50),
        )
        .unwrap();
        let config = RedisSharedConfig {
            timing: SharedTiming::default(),
            call_timeout: Duration::from_millis(50),
            probe_interval: Duration::from_millis(50),
            replica: "r1".into(),
        };
        let err = RedisSharedCache::start("rediss://:hunter2@[bad", conn.clone(), config.clone())
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
        let cache = RedisSharedCache::start("redis://:hunter2@127.0.0.1:1/", conn, config).unwrap();
        let debug = format!("{cache:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        // Nothing listens on port 1: the cache stays local, and says so.
        assert_eq!(cache.mode(), SharedMode::Degraded);
    }
}
