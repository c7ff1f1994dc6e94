//! One section cache: freshness TTL, stale-while-revalidate, stale-if-error,
//! coalescing, and a hard age limit.
//!
//! Each value is stored with the instant it was fetched. moka's own expiry is
//! the *hard* limit (`max_stale`, counted from the fetch, via [`moka::Expiry`]),
//! so nothing older is ever served and memory stays bounded by `max_entries`.
//! Freshness (the section TTL) is checked here on every read:
//!
//! * fresh → returned (a hit);
//! * expired but within the hard limit → returned at once with `stale: true`,
//!   and ONE background refresh per key is started (a per-entry flag); the
//!   refresh goes through the section's background loader, i.e. its batcher,
//!   so refreshes of many keys merge. If it fails, the old value stays and is
//!   served with `stale: true` and the error (stale-if-error); the next retry
//!   waits for the error's backoff so a failing upstream is not hammered;
//! * absent → loaded through moka's entry API: concurrent misses of one key
//!   run one load (coalescing); errors are returned to every waiter and are
//!   not cached.
//!
//! A refresh only replaces the exact entry it started from (`and_compute_with`),
//! so it never resurrects an entry that was invalidated meanwhile. A miss
//! load that is running when its key is invalidated (it may have read
//! upstream before the change that caused the invalidation) still answers
//! the callers waiting for it, but is not kept: the next read loads again.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use moka::ops::compute::Op;

use crate::changes::{ChangeKind, Notify, NotifySlot};
use crate::error::{SectionError, SectionErrorKind};
use crate::stats::Counters;
use crate::store::layer::{Layer, Purpose, SharedValue};
use crate::store::shared::SharedCache;
use crate::store::{Mark, Seal, Store, Stored, WriteGuard};
use crate::tasks::{TaskFailed, Tasks};

/// Loads one key (through a batcher or directly).
pub(crate) type LoadFn<K, V> =
    Arc<dyn Fn(K) -> BoxFuture<'static, Result<V, SectionError>> + Send + Sync>;

/// What a lookup returns.
#[derive(Debug, Clone)]
pub(crate) struct Lookup<V> {
    pub value: V,
    pub fetched_at: DateTime<Utc>,
    pub stale: bool,
    pub error: Option<SectionError>,
    /// Time until the value is due for refresh (zero when stale).
    pub max_age: Duration,
    /// The stored entry's version (`crate::version`): equal versions mean
    /// the same value and error.
    pub version: u64,
    /// What the read may be reused for (`crate::warm`).
    pub seal: Seal,
}

impl<V> Lookup<V> {
    /// The same lookup of a value derived from this one.
    pub(crate) fn map<T>(self, f: impl FnOnce(V) -> T) -> Lookup<T> {
        Lookup {
            value: f(self.value),
            fetched_at: self.fetched_at,
            stale: self.stale,
            error: self.error,
            max_age: self.max_age,
            version: self.version,
            seal: self.seal,
        }
    }
}

/// A cache of one section, with its loaders and counters.
pub(crate) struct SectionCache<K, V> {
    store: Store<K, V>,
    load: LoadFn<K, V>,
    refresh: LoadFn<K, V>,
    counters: Arc<Counters>,
    tasks: Tasks,
    /// Miss loads running now, with a flag `invalidate` raises: a load that
    /// was running when its key was invalidated is not kept.
    inflight: Arc<Mutex<HashMap<K, Arc<AtomicBool>>>>,
    /// Told when an entry is dropped or replaced (see `crate::changes`).
    notify: Arc<NotifySlot<K>>,
}

/// Why a miss load produced no entry to keep.
enum InitError<V> {
    /// The load failed (every waiter gets the error).
    Failed(SectionError),
    /// The key was invalidated while loading: the waiters get the value,
    /// the cache does not keep it.
    Invalidated(Arc<Stored<V>>),
}

impl<K, V> SectionCache<K, V>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// `load` serves misses (short batch window), `refresh` serves background refreshes.
    pub(crate) fn new(
        store: Store<K, V>,
        load: LoadFn<K, V>,
        refresh: LoadFn<K, V>,
        counters: Arc<Counters>,
        tasks: Tasks,
    ) -> Self {
        SectionCache {
            store,
            load,
            refresh,
            counters,
            tasks,
            inflight: Arc::default(),
            notify: Arc::default(),
        }
    }

    /// Reports every dropped or replaced entry to `notify` from now on
    /// (set once; later calls are ignored).
    pub(crate) fn on_change(&self, notify: Notify<K>) {
        self.notify.set(notify);
    }

    /// The counters of this cache.
    pub(crate) fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// The value for `key`: fresh, stale (refreshing in the background) or loaded now.
    pub(crate) async fn get(&self, key: &K) -> Result<Lookup<V>, SectionError> {
        // Taken before the read: a write from now on moves it.
        let mark = self.store.writes.mark(key);
        if let Some(stored) = self.store.cache.get(key).await {
            let now = self.store.now();
            let age = now.saturating_duration_since(stored.fetched);
            if age < stored.ttl {
                Counters::bump(&self.counters.hits);
                return Ok(self.lookup(&stored, false, now, mark));
            }
            if age < stored.hard_limit {
                Counters::bump(&self.counters.stale_served);
                self.maybe_refresh(key, &stored, now);
                return Ok(self.lookup(&stored, true, now, mark));
            }
            // Past the hard limit but not yet evicted by moka: drop it.
            self.store.cache.invalidate(key).await;
            self.store.writes.wrote(key);
        }
        // A caller that arrives after the key was invalidated while a load
        // was running must not take that load's (older) answer: it waits for
        // it to end, then loads again (with the others in the same case).
        let mut after_invalidation = lock(&self.inflight)
            .get(key)
            .is_some_and(|f| f.load(Ordering::Acquire));
        loop {
            let stored = match self.load_once(key).await {
                Ok(Ok(stored)) => stored,
                Ok(Err(error)) => match &*error {
                    InitError::Failed(error) => return Err(SectionError::clone(error)),
                    InitError::Invalidated(_) if after_invalidation => {
                        after_invalidation = false;
                        continue;
                    }
                    InitError::Invalidated(stored) => Arc::clone(stored),
                },
                Err(TaskFailed(why)) => {
                    return Err(SectionError::unavailable(format!(
                        "the section load failed: {why}"
                    )));
                }
            };
            let now = self.store.now();
            let stale = now.saturating_duration_since(stored.fetched) >= stored.ttl;
            if stale {
                // A stale value another replica stored: refreshed like one of ours.
                self.maybe_refresh(key, &stored, now);
            }
            return Ok(self.lookup(&stored, stale, now, mark));
        }
    }

    /// One miss load of `key`, coalesced with the other callers (moka's entry API).
    async fn load_once(
        &self,
        key: &K,
    ) -> Result<Result<Arc<Stored<V>>, Arc<InitError<V>>>, TaskFailed> {
        let ran = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicBool::new(false));
        let init = {
            let ran = Arc::clone(&ran);
            let dropped = Arc::clone(&dropped);
            let inflight = Arc::clone(&self.inflight);
            let load = Arc::clone(&self.load);
            let store = self.store.clone();
            let shared = self.store.layer();
            let key = key.clone();
            async move {
                ran.store(true, Ordering::Relaxed);
                // Registered before the upstream read starts: an invalidation
                // from now on may postdate what the read sees.
                lock(&inflight).insert(key.clone(), Arc::clone(&dropped));
                match through(shared.as_deref(), &load, key, Purpose::Miss).await {
                    Ok((value, at)) if dropped.load(Ordering::Acquire) => {
                        Err(InitError::Invalidated(store.stored_at(value, at)))
                    }
                    Ok((value, at)) => Ok(store.stored_at(value, at)),
                    Err(error) => Err(InitError::Failed(error)),
                }
            }
        };
        // The load runs in its own task: a caller that stops waiting (the
        // card's section timeout, a client that went away) does not cancel
        // it, so it still fills the cache for the next reader.
        // The counters are bumped there too, so an abandoned wait is counted.
        // (After shutdown it runs inline, in this caller.)
        {
            let cache = self.store.cache.clone();
            let counters = Arc::clone(&self.counters);
            let inflight = Arc::clone(&self.inflight);
            let notify = Arc::clone(&self.notify);
            let writes = Arc::clone(&self.store.writes);
            let key = key.clone();
            self.tasks.start(async move {
                let result = cache
                    .entry(key.clone())
                    .or_try_insert_with(init)
                    .await
                    .map(|entry| entry.into_value());
                let ran = ran.load(Ordering::Relaxed);
                if ran && result.is_ok() {
                    writes.wrote(&key);
                }
                if ran {
                    {
                        let mut inflight = lock(&inflight);
                        if inflight.get(&key).is_some_and(|f| Arc::ptr_eq(f, &dropped)) {
                            inflight.remove(&key);
                        }
                    }
                    // Invalidated between the end of the load and its insertion:
                    // drop what was just inserted (only that exact entry).
                    if let Ok(stored) = &result
                        && dropped.load(Ordering::Acquire)
                    {
                        let ours = Arc::clone(stored);
                        cache
                            .entry(key.clone())
                            .and_compute_with(|current| {
                                let op = match current {
                                    Some(entry) if Arc::ptr_eq(entry.value(), &ours) => Op::Remove,
                                    _ => Op::Nop,
                                };
                                std::future::ready(op)
                            })
                            .await;
                        writes.wrote(&key);
                    } else if result.is_ok() {
                        notify.send(&key, ChangeKind::Replaced);
                    }
                }
                Counters::bump(if ran {
                    &counters.misses
                } else {
                    &counters.coalesced
                });
                if ran && matches!(&result, Err(e) if matches!(**e, InitError::Failed(_))) {
                    Counters::bump(&counters.errors);
                }
                result
            })
        }
        .await
    }

    /// The cached value of `key` if there is one (no load, no refresh, no counters).
    pub(crate) async fn peek(&self, key: &K) -> Option<V> {
        self.store.cache.get(key).await.map(|s| s.value.clone())
    }

    /// Drops the cached value of `key`; a miss load of `key` running now
    /// answers its waiters but is not kept.
    pub(crate) async fn invalidate(&self, key: &K) {
        // The shared value first: a replica that hears of this drop and
        // reads again must not find the old value there.
        if let Some(shared) = self.store.layer() {
            shared.invalidate(key).await;
        }
        self.invalidate_local(key).await;
    }

    /// Drops this process's copy of `key` only (another replica dropped
    /// the shared one and said so), reported like [`SectionCache::invalidate`].
    pub(crate) async fn invalidate_local(&self, key: &K) {
        if let Some(dropped) = lock(&self.inflight).get(key) {
            dropped.store(true, Ordering::Release);
        }
        self.store.cache.invalidate(key).await;
        self.store.writes.wrote(key);
        self.notify.send(key, ChangeKind::Invalidated);
    }

    /// Drops every entry (a running miss load is still kept; callers use
    /// this for lists, where a slightly early answer is harmless). Not
    /// reported to the change listener.
    pub(crate) fn invalidate_all(&self) {
        self.store.cache.invalidate_all();
        self.store.writes.wrote_all();
    }

    /// The write counts of this cache's store (see `crate::warm`).
    pub(crate) fn writes(&self) -> &crate::store::Writes {
        &self.store.writes
    }

    /// Now, on the clock that decides this cache's freshness.
    pub(crate) fn now(&self) -> Instant {
        self.store.now()
    }

    fn lookup(&self, stored: &Stored<V>, stale: bool, now: Instant, mark: Mark) -> Lookup<V> {
        let mut seal = self.store.seal(mark, stored, stale);
        // A stale read may be reused only while its refresh runs: the
        // refresh ends with a write (its value, its error, or nothing
        // landed), which ends the reuse; a read now would only have found
        // the refresh running. Not with an error: the next read may have
        // to retry the refresh, or (change events) to change course.
        if stale && (stored.error.is_some() || !stored.refreshing.load(Ordering::Acquire)) {
            seal.keep_until = None;
        }
        lookup(stored, stale, now, seal)
    }

    fn maybe_refresh(&self, key: &K, stored: &Arc<Stored<V>>, now: Instant) {
        if self.tasks.is_shut_down() {
            // No background work after shutdown: the stale value is served
            // until `max_stale`, then loaded inline as a miss.
            return;
        }
        if let (Some(error), Some(at)) = (&stored.error, stored.error_at)
            && now.saturating_duration_since(at) < retry_backoff(error, stored.ttl)
        {
            return;
        }
        if stored
            .refreshing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        Counters::bump(&self.counters.refreshes);
        let refresh = Arc::clone(&self.refresh);
        let store = self.store.clone();
        let counters = Arc::clone(&self.counters);
        let origin = Arc::clone(stored);
        let key = key.clone();
        let flag = Arc::clone(&origin);
        let notify = Arc::clone(&self.notify);
        let shared = self.store.layer();
        let ttl = stored.ttl;
        // However the refresh ends (done, failed, nothing landed, never
        // run because of shutdown, cancelled, panicked) the stripe moves:
        // a stale read kept while it ran (`crate::warm`) ends then.
        let wrote = WriteGuard::new(Arc::clone(&self.store.writes), key.clone());
        let refresh = async move {
            let purpose = Purpose::Refresh { ttl };
            let replacement = match through(shared.as_deref(), &refresh, key.clone(), purpose).await
            {
                Ok((value, at)) => store.stored_at(value, at),
                Err(error) => {
                    Counters::bump(&counters.errors);
                    tracing::debug!(error = %error, "background refresh failed; serving the stale value");
                    Arc::new(Stored {
                        value: origin.value.clone(),
                        fetched_at: origin.fetched_at,
                        fetched: origin.fetched,
                        ttl: origin.ttl,
                        hard_limit: origin.hard_limit,
                        error: Some(error),
                        error_at: Some(store.now()),
                        refreshing: AtomicBool::new(false),
                        // The error is part of what a stale read shows.
                        version: crate::version::next(),
                    })
                }
            };
            let result = store
                .cache
                .entry(key.clone())
                .and_compute_with(|current| {
                    let op = match current {
                        Some(entry) if Arc::ptr_eq(entry.value(), &origin) => Op::Put(replacement),
                        // Invalidated or replaced meanwhile: keep what is there.
                        _ => Op::Nop,
                    };
                    std::future::ready(op)
                })
                .await;
            // Before the notification: a listener that reads again must
            // not find the card kept before the refresh.
            wrote.done();
            if matches!(result, moka::ops::compute::CompResult::ReplacedWith(_)) {
                notify.send(&key, ChangeKind::Replaced);
            }
        };
        if self.tasks.background(refresh).is_err() {
            // Shut down meanwhile: the next refresh may try again (none will).
            // (The refresh was dropped unrun: its guard moved the stripe.)
            flag.refreshing.store(false, Ordering::Release);
        }
    }
}

impl<K, V> SectionCache<K, V>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: SharedValue + Clone + Send + Sync + 'static,
{
    /// Shares this section with the other replicas through `cache` (as
    /// `section`, entry ids from `id`), from now on; set once. Its L1
    /// copies then live at most the shared cache's `l1_ttl`.
    pub(crate) fn share(
        &self,
        cache: Arc<dyn SharedCache>,
        account: &str,
        section: &'static str,
        id: fn(&K) -> String,
        hard_limit: std::time::Duration,
    ) {
        self.store.cap_l1(cache.timing().l1_ttl, Arc::clone(&cache));
        self.store.share(Arc::new(Layer {
            cache,
            account: account.to_owned(),
            section,
            id,
            encode: V::encode,
            decode: V::decode,
            lifetimes: self.store.lifetimes(),
            hard_limit,
            counters: Arc::clone(&self.counters),
            joining: Default::default(),
        }));
    }
}

impl<K, V> SectionCache<K, V>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// From now on (when shared), this section's batch loads join the
    /// other replicas' (see `store::batch_join`); `key_of` turns a shared
    /// entry id back into a key. Only for a section whose loader answers
    /// every key in its results.
    pub(crate) fn join_batches(&self, key_of: fn(&str) -> K) {
        if let Some(layer) = self.store.layer() {
            layer.joining.enable(key_of);
        }
    }
}

/// A load of `key` by `load`, through the shared cache when the section is shared.
async fn through<K, V>(
    shared: Option<&Layer<K, V>>,
    load: &LoadFn<K, V>,
    key: K,
    purpose: Purpose,
) -> Result<(V, Option<DateTime<Utc>>), SectionError>
where
    K: Clone,
{
    match shared {
        Some(layer) => {
            let upstream = || load(key.clone());
            layer.load(&key, purpose, upstream).await
        }
        None => load(key).await.map(|v| (v, None)),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// How long to wait after a failed refresh before trying again.
fn retry_backoff(error: &SectionError, ttl: Duration) -> Duration {
    match (error.kind, error.retry_after_secs) {
        (SectionErrorKind::RateLimited, Some(secs)) => Duration::from_secs(secs),
        _ => ttl.min(Duration::from_secs(10)),
    }
}

fn lookup<V: Clone>(stored: &Stored<V>, stale: bool, now: Instant, seal: Seal) -> Lookup<V> {
    Lookup {
        value: stored.value.clone(),
        fetched_at: stored.fetched_at,
        stale,
        error: if stale { stored.error.clone() } else { None },
        max_age: stored
            .ttl
            .saturating_sub(now.saturating_duration_since(stored.fetched)),
        version: stored.version,
        seal,
    }
}

#[cfg(test)]
mod tests;
