//! The storage half of a section cache: values with the instant they were
//! fetched, in a moka cache whose expiry is the hard limit. Freshness is
//! decided by the caller on the injected clock.
//!
//! Every section reads and writes through a [`Store`] (`peek_fresh`,
//! `find_fresh`, `insert_fresh`, `invalidate`, and `SectionCache`'s own
//! reads). Behind it, several replicas share sections through a
//! [`shared::SharedCache`] (the L2; [`shared::InProcess`], nothing shared,
//! is the default; [`redis::RedisSharedCache`] with the cargo feature
//! `redis`): `layer` is how a section cache loads through it. While a
//! section is shared, its L1 copies live at most
//! [`shared::SharedTiming::l1_ttl`], so a replica re-reads the shared value
//! soon after another replica changed it, even when an invalidation
//! message was lost.

use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use moka::Expiry;

use crate::clock::Clock;
use crate::error::SectionError;

mod batch_join;
pub(crate) mod layer;
use layer::Layer;
#[cfg(feature = "redis")]
pub mod redis;
pub mod shared;

use shared::{SharedCache, SharedMode};

/// Freshness and hard limit of a value, decided when it is stored.
pub(crate) type LifetimesFn<V> = Arc<dyn Fn(&V) -> (Duration, Duration) + Send + Sync>;

/// A cached value with its age and its last refresh error.
pub(crate) struct Stored<V> {
    pub value: V,
    pub fetched_at: DateTime<Utc>,
    pub fetched: Instant,
    pub ttl: Duration,
    pub hard_limit: Duration,
    pub error: Option<SectionError>,
    pub error_at: Option<Instant>,
    pub refreshing: AtomicBool,
    /// Unique and increasing across every store of the process (see
    /// `crate::version`): a replaced or re-stored value gets a new one.
    pub version: u64,
}

/// What a read of a stored value may be reused for, and until when
/// (`crate::warm`): while `mark` holds and before `keep_until`, the value
/// read is still the stored one, and still fresh (or, for a stale read,
/// still being refreshed). `None` when the clock
/// cannot count that far (such a read is never reused).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seal {
    pub mark: Mark,
    /// When the value stops being fresh (its `max_age` counts down to it).
    pub fresh_until: Option<Instant>,
    /// No later than `fresh_until` (a stale read: the hard limit, and only
    /// while its refresh runs), nor than the L1 copy's life while shared.
    pub keep_until: Option<Instant>,
}

/// The hard limit of a value, or, while its section is shared, the
/// shorter life of an L1 copy.
struct HardExpiry {
    l1: L1Cap,
}

/// Set once when the section becomes shared: the L1 copy's longest life
/// while the shared cache is in [`SharedMode::Shared`].
type L1Cap = Arc<OnceLock<(Duration, Arc<dyn SharedCache>)>>;

impl HardExpiry {
    fn expiry<V>(&self, value: &Stored<V>, now: Instant) -> Duration {
        let left = remaining(value, now);
        match self.l1.get() {
            Some((l1_ttl, shared)) if shared.mode() == SharedMode::Shared => left.min(*l1_ttl),
            _ => left,
        }
    }
}

impl<K, V> Expiry<K, Arc<Stored<V>>> for HardExpiry {
    fn expire_after_create(
        &self,
        _key: &K,
        value: &Arc<Stored<V>>,
        created_at: Instant,
    ) -> Option<Duration> {
        Some(self.expiry(value, created_at))
    }

    fn expire_after_update(
        &self,
        _key: &K,
        value: &Arc<Stored<V>>,
        updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(self.expiry(value, updated_at))
    }
}

fn remaining<V>(value: &Stored<V>, now: Instant) -> Duration {
    value
        .hard_limit
        .saturating_sub(now.saturating_duration_since(value.fetched))
}

/// Stripes of [`Writes`] (a write moves one; a warm card checks one per section).
const STRIPES: usize = 64;

/// A store's write counts, in stripes by key: every write (a value
/// stored, replaced or dropped) moves its key's stripe once it is done.
/// A reader that took a stripe's count ([`Writes::mark`]) before it read
/// a key knows, while the count holds, that nothing replaced what it read
/// (`crate::warm` keeps whole cards on that). Stripes, not keys: checking
/// one is an atomic load; a write to another key of the stripe only costs
/// a warm card one slow read.
pub(crate) struct Writes {
    hasher: RandomState,
    stripes: [AtomicU64; STRIPES],
}

/// A stripe of [`Writes`] and its count when taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mark {
    stripe: u8,
    count: u64,
}

impl Default for Writes {
    fn default() -> Self {
        Writes {
            hasher: RandomState::new(),
            stripes: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl Writes {
    fn stripe<K: Hash + ?Sized>(&self, key: &K) -> usize {
        (self.hasher.hash_one(key) % STRIPES as u64) as usize
    }

    /// The count of `key`'s stripe, to take before reading `key` (a
    /// `str` marks the stripe of the equal `String`).
    pub(crate) fn mark<K: Hash + ?Sized>(&self, key: &K) -> Mark {
        let stripe = self.stripe(key);
        Mark {
            stripe: stripe as u8,
            count: self.stripes[stripe].load(Ordering::Acquire),
        }
    }

    /// Whether no write to the stripe was done since `mark` was taken.
    pub(crate) fn holds(&self, mark: Mark) -> bool {
        self.stripes[usize::from(mark.stripe)].load(Ordering::Acquire) == mark.count
    }

    /// To call once a write of `key` is done (visible to readers).
    pub(crate) fn wrote<K: Hash>(&self, key: &K) {
        self.stripes[self.stripe(key)].fetch_add(1, Ordering::Release);
    }

    /// To call once every key was written (`invalidate_all`).
    pub(crate) fn wrote_all(&self) {
        for stripe in &self.stripes {
            stripe.fetch_add(1, Ordering::Release);
        }
    }
}

/// Moves `key`'s stripe when dropped, unless [`WriteGuard::done`] did:
/// a write that may end early (a background refresh cancelled at
/// shutdown, or one that panics) still ends what was read before it.
pub(crate) struct WriteGuard<K: Hash> {
    writes: Arc<Writes>,
    key: Option<K>,
}

impl<K: Hash> WriteGuard<K> {
    pub(crate) fn new(writes: Arc<Writes>, key: K) -> Self {
        WriteGuard {
            writes,
            key: Some(key),
        }
    }

    /// The write is visible: move the stripe now.
    pub(crate) fn done(mut self) {
        if let Some(key) = self.key.take() {
            self.writes.wrote(&key);
        }
    }
}

impl<K: Hash> Drop for WriteGuard<K> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.writes.wrote(&key);
        }
    }
}

/// The storage half of a section cache; cloning shares it. Loaders that
/// receive more than they were asked for (a services page) use it to warm the
/// cache for the other keys.
pub(crate) struct Store<K, V> {
    pub(crate) cache: moka::future::Cache<K, Arc<Stored<V>>>,
    lifetimes: LifetimesFn<V>,
    clock: Arc<dyn Clock>,
    l1: L1Cap,
    /// The shared L2 this section loads through, when it is shared (set once).
    layer: Arc<OnceLock<Arc<Layer<K, V>>>>,
    /// Moved by every write (see [`Writes`]).
    pub(crate) writes: Arc<Writes>,
}

/// The shared epoch a listing that warms a store started at (see
/// [`Store::warming`]).
pub(crate) struct Warming(Option<String>);

impl<K, V> Clone for Store<K, V> {
    fn clone(&self) -> Self {
        Store {
            cache: self.cache.clone(),
            lifetimes: Arc::clone(&self.lifetimes),
            clock: Arc::clone(&self.clock),
            l1: Arc::clone(&self.l1),
            layer: Arc::clone(&self.layer),
            writes: Arc::clone(&self.writes),
        }
    }
}

impl<K, V> Store<K, V>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// A store of at most `max_entries` values; `clock` decides freshness.
    pub(crate) fn new(max_entries: u64, lifetimes: LifetimesFn<V>, clock: Arc<dyn Clock>) -> Self {
        let l1 = L1Cap::default();
        Store {
            cache: moka::future::Cache::builder()
                .max_capacity(max_entries)
                .expire_after(HardExpiry {
                    l1: Arc::clone(&l1),
                })
                .build(),
            lifetimes,
            clock,
            l1,
            layer: Arc::default(),
            writes: Arc::default(),
        }
    }

    /// Loads through `layer` from now on (set once).
    pub(crate) fn share(&self, layer: Arc<Layer<K, V>>) {
        let _ = self.layer.set(layer);
    }

    /// The shared L2, when this section is shared.
    pub(crate) fn layer(&self) -> Option<Arc<Layer<K, V>>> {
        self.layer.get().cloned()
    }

    /// From now on, while `shared` shares, an L1 copy lives at most
    /// `l1_ttl` (set once).
    pub(crate) fn cap_l1(&self, l1_ttl: Duration, shared: Arc<dyn SharedCache>) {
        let _ = self.l1.set((l1_ttl, shared));
    }

    /// Freshness and hard limit of `value`.
    pub(crate) fn lifetimes(&self) -> LifetimesFn<V> {
        Arc::clone(&self.lifetimes)
    }

    /// A store whose values are fresh for `ttl` and served stale until `hard_limit`.
    pub(crate) fn with_ttl(
        max_entries: u64,
        ttl: Duration,
        hard_limit: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self::new(max_entries, Arc::new(move |_| (ttl, hard_limit)), clock)
    }

    pub(crate) fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Until when a read of `stored` (with `mark` taken before it) may be
    /// reused without reading again ([`Seal`]): while it is fresh, or, for
    /// a `stale` read, until its hard limit (the caller decides whether a
    /// stale read may be reused at all).
    pub(crate) fn seal(&self, mark: Mark, stored: &Stored<V>, stale: bool) -> Seal {
        let fresh_until = stored.fetched.checked_add(stored.ttl);
        let until = if stale {
            stored.fetched.checked_add(stored.hard_limit)
        } else {
            fresh_until
        };
        // While shared, an L1 copy is read again after `l1_ttl` (counted
        // here from the fetch, which is no later than the copy was made).
        let keep_until = match (until, self.l1.get()) {
            (Some(until), Some((l1_ttl, _))) => {
                stored.fetched.checked_add(*l1_ttl).map(|l1| until.min(l1))
            }
            (until, None) => until,
            (None, Some(_)) => None,
        };
        Seal {
            mark,
            fresh_until,
            keep_until,
        }
    }

    pub(crate) fn stored(&self, value: V) -> Arc<Stored<V>> {
        self.stored_at(value, None)
    }

    /// A value fetched at `fetched_at` (by another replica), or now: its
    /// age, and so its freshness, counts from that fetch.
    pub(crate) fn stored_at(&self, value: V, fetched_at: Option<DateTime<Utc>>) -> Arc<Stored<V>> {
        let (ttl, hard_limit) = (self.lifetimes)(&value);
        let now = self.now();
        let (fetched_at, fetched) = match fetched_at {
            Some(at) => {
                let age = (Utc::now() - at).to_std().unwrap_or_default();
                (at, now.checked_sub(age).unwrap_or(now))
            }
            None => (Utc::now(), now),
        };
        Arc::new(Stored {
            value,
            fetched_at,
            fetched,
            ttl,
            hard_limit: hard_limit.max(ttl),
            error: None,
            error_at: None,
            refreshing: AtomicBool::new(false),
            version: crate::version::next(),
        })
    }

    /// The value of `key` if it is cached and fresh (no counters, no refresh).
    pub(crate) async fn peek_fresh(&self, key: &K) -> Option<V> {
        let stored = self.cache.get(key).await?;
        let age = self.now().saturating_duration_since(stored.fetched);
        (age < stored.ttl).then(|| stored.value.clone())
    }

    /// The first `Some(f(value))` over the fresh values, in no particular
    /// order (no counters, no refresh).
    pub(crate) fn find_fresh<T>(&self, mut f: impl FnMut(&V) -> Option<T>) -> Option<T> {
        let now = self.now();
        self.cache.iter().find_map(|(_, stored)| {
            if now.saturating_duration_since(stored.fetched) < stored.ttl {
                f(&stored.value)
            } else {
                None
            }
        })
    }

    /// Drops the value of `key`.
    pub(crate) async fn invalidate(&self, key: &K) {
        self.cache.invalidate(key).await;
        self.writes.wrote(key);
    }

    /// Stores a freshly fetched value (used to warm the cache from list pages).
    pub(crate) async fn insert_fresh(&self, key: K, value: V) {
        let stored = self.stored(value);
        self.cache.insert(key.clone(), stored).await;
        self.writes.wrote(&key);
    }

    /// To call before a listing that warms this store reads its first page:
    /// the shared section's epoch then, so the pages are offered to the
    /// other replicas only if no invalidation came in between.
    pub(crate) async fn warming(&self) -> Warming {
        match self.layer() {
            Some(layer) => Warming(layer.epoch().await),
            None => Warming(None),
        }
    }

    /// Stores the values of one listed page here, then offers them to the
    /// other replicas (so they need not list the account too).
    pub(crate) async fn insert_listed(&self, warming: &Warming, items: Vec<(K, V)>) {
        for (key, value) in &items {
            self.insert_fresh(key.clone(), value.clone()).await;
        }
        self.offer_listed(warming, &items).await;
    }

    /// Offers values a listing read (already stored here) to the other
    /// replicas; nothing when the section is not shared.
    pub(crate) async fn offer_listed(&self, warming: &Warming, items: &[(K, V)]) {
        if let (Some(epoch), Some(layer)) = (&warming.0, self.layer()) {
            layer.offer(epoch, items).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{ManualClock, SystemClock};

    #[tokio::test]
    async fn a_stores_writes_move_the_stripe_of_their_key_only() {
        let store: Store<u32, u32> = Store::with_ttl(
            10,
            Duration::from_secs(20),
            Duration::from_secs(60),
            Arc::new(ManualClock::new()),
        );
        let mark = store.writes.mark(&1);
        assert!(store.writes.holds(mark));
        store.insert_fresh(1, 10).await;
        assert!(!store.writes.holds(mark), "an insert");
        let mark = store.writes.mark(&1);
        store.invalidate(&1).await;
        assert!(!store.writes.holds(mark), "an invalidation");
        let mark = store.writes.mark(&1);
        store.writes.wrote_all();
        assert!(!store.writes.holds(mark), "every key");
        // A key of another stripe is not moved.
        let mark = store.writes.mark(&1);
        let other = (2..)
            .find(|k| store.writes.stripe(k) != store.writes.stripe(&1))
            .unwrap();
        store.insert_fresh(other, 0).await;
        assert!(store.writes.holds(mark));
    }

    #[test]
    fn a_seal_ends_with_freshness_or_earlier_with_the_l1_copy() {
        let clock = Arc::new(ManualClock::new());
        let store: Store<u32, u32> = Store::with_ttl(
            10,
            Duration::from_secs(20),
            Duration::from_secs(60),
            Arc::clone(&clock) as _,
        );
        let stored = store.stored(7);
        let fresh_until = Some(stored.fetched + Duration::from_secs(20));
        let seal = store.seal(store.writes.mark(&7), &stored, false);
        assert_eq!(seal.fresh_until, fresh_until);
        assert_eq!(seal.keep_until, fresh_until);
        // A stale read: until the hard limit.
        let seal = store.seal(store.writes.mark(&7), &stored, true);
        assert_eq!(seal.fresh_until, fresh_until);
        assert_eq!(
            seal.keep_until,
            Some(stored.fetched + Duration::from_secs(60))
        );
        // While shared, an L1 copy lives 5 s: the seal ends then.
        store.cap_l1(
            Duration::from_secs(5),
            Arc::new(shared::InProcess::default()),
        );
        for stale in [false, true] {
            let seal = store.seal(store.writes.mark(&7), &stored, stale);
            assert_eq!(seal.fresh_until, fresh_until);
            assert_eq!(
                seal.keep_until,
                Some(stored.fetched + Duration::from_secs(5))
            );
        }
    }

    #[test]
    fn a_value_fetched_by_another_replica_keeps_its_age() {
        let store: Store<u32, u32> = Store::with_ttl(
            10,
            Duration::from_secs(20),
            Duration::from_secs(60),
            Arc::new(SystemClock),
        );
        let at = Utc::now() - chrono::Duration::seconds(5);
        let stored = store.stored_at(7, Some(at));
        assert_eq!(stored.fetched_at, at);
        let age = store.now().saturating_duration_since(stored.fetched);
        assert!(
            age >= Duration::from_secs(5) && age < Duration::from_secs(6),
            "{age:?}"
        );
        // From the future (clock skew between replicas): fetched now, not later.
        let skewed = store.stored_at(7, Some(Utc::now() + chrono::Duration::seconds(5)));
        assert!(store.now().saturating_duration_since(skewed.fetched) < Duration::from_secs(1));
    }
}
