//! One way to build a section cache from a loader.
//!
//! A loader is a value implementing [`BatchLoad`] (many keys per call: the
//! section gets two batchers, one for misses with the short `batch_window`,
//! one for background refreshes with the long `refresh_batch_window`) or
//! [`Load`] (one key per call). [`Builder`] turns it into a
//! [`SectionCache`] whose freshness is decided on the injected clock and
//! whose hard limit is `max_stale`; every section is wired the same way.

use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use crate::batcher::{BatchLoadFn, BatchResults, BatchSettings, Batcher, Early, MissingFn};
use crate::cache::{LoadFn, SectionCache};
use crate::clock::Clock;
use crate::config::CardsConfig;
use crate::error::SectionError;
use crate::stats::Counters;
use crate::store::Store;
use crate::tasks::Tasks;

/// Loads many keys of a section with one upstream call.
pub(crate) trait BatchLoad<K, V>: Send + Sync + 'static {
    /// Loads `keys` (at most `batch_max_size`); may answer some early.
    fn load(
        &self,
        keys: Vec<K>,
        early: Early<K, V>,
    ) -> impl Future<Output = Result<BatchResults<K, V>, SectionError>> + Send;

    /// The answer for a key the load did not mention.
    fn missing(&self, key: &K) -> Result<V, SectionError>;
}

/// Loads one key of a section.
pub(crate) trait Load<K, V>: Send + Sync + 'static {
    /// Loads `key`.
    fn load(&self, key: K) -> impl Future<Output = Result<V, SectionError>> + Send;
}

/// Builds the section caches of one [`CardService`](crate::CardService).
pub(crate) struct Builder<'a> {
    pub config: &'a CardsConfig,
    pub clock: Arc<dyn Clock>,
    pub tasks: Tasks,
}

impl Builder<'_> {
    /// A store whose values are fresh for `ttl` and served stale until `max_stale`.
    pub(crate) fn store<K, V>(&self, ttl: Duration) -> Store<K, V>
    where
        K: Eq + Hash + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        self.store_with(self.config.max_entries, ttl, self.config.hard_limit(ttl))
    }

    /// A store of `max_entries` values fresh for `ttl`, dropped at `hard_limit`.
    pub(crate) fn store_with<K, V>(
        &self,
        max_entries: u64,
        ttl: Duration,
        hard_limit: Duration,
    ) -> Store<K, V>
    where
        K: Eq + Hash + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        Store::with_ttl(max_entries, ttl, hard_limit, Arc::clone(&self.clock))
    }

    /// A section cache whose misses and refreshes go through two batchers
    /// around `loader`.
    pub(crate) fn batched<K, V, L>(
        &self,
        store: Store<K, V>,
        counters: &Arc<Counters>,
        loader: L,
    ) -> SectionCache<K, V>
    where
        K: Eq + Hash + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        L: BatchLoad<K, V>,
    {
        let loader = Arc::new(loader);
        let load: BatchLoadFn<K, V> = {
            let loader = Arc::clone(&loader);
            Arc::new(move |keys, early| {
                let loader = Arc::clone(&loader);
                Box::pin(async move { loader.load(keys, early).await })
            })
        };
        let missing: MissingFn<K, V> = Arc::new(move |key| loader.missing(key));
        let max_size = self.config.batch_max_size.clamp(1, 100);
        let sections = store.clone();
        let batcher = |window, background| {
            let settings = BatchSettings {
                window,
                max_size,
                min_interval: self.config.min_batch_interval,
                timeout: self.config.load_timeout,
                background,
            };
            via(Batcher::new(
                settings,
                Arc::clone(counters),
                joined(&sections, &load, &missing, window, max_size),
                Arc::clone(&missing),
                self.tasks.clone(),
            ))
        };
        SectionCache::new(
            store,
            batcher(self.config.batch_window, false),
            batcher(self.config.refresh_batch_window, true),
            Arc::clone(counters),
            self.tasks.clone(),
        )
    }

    /// A section cache whose misses and refreshes call `loader` directly.
    pub(crate) fn direct<K, V, L>(
        &self,
        store: Store<K, V>,
        counters: &Arc<Counters>,
        loader: L,
    ) -> SectionCache<K, V>
    where
        K: Eq + Hash + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        L: Load<K, V>,
    {
        let loader = Arc::new(loader);
        let load: LoadFn<K, V> = Arc::new(move |key| {
            let loader = Arc::clone(&loader);
            Box::pin(async move { loader.load(key).await })
        });
        SectionCache::new(
            store,
            Arc::clone(&load),
            load,
            Arc::clone(counters),
            self.tasks.clone(),
        )
    }
}

/// `load` joined with the other replicas' batch loads while the section
/// joins and is shared (see `store::batch_join`), a collector holding its
/// batch open for the batcher's `window` (at most half the shared wait, so
/// the replicas that joined it are answered within theirs).
fn joined<K, V>(
    store: &Store<K, V>,
    load: &BatchLoadFn<K, V>,
    missing: &MissingFn<K, V>,
    window: Duration,
    max_size: usize,
) -> BatchLoadFn<K, V>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    let (store, load, missing) = (store.clone(), Arc::clone(load), Arc::clone(missing));
    Arc::new(move |keys, early| match store.layer() {
        Some(layer) => {
            let (load, missing) = (Arc::clone(&load), Arc::clone(&missing));
            Box::pin(async move {
                let hold = window.min(layer.cache.timing().wait / 2);
                layer
                    .batch(keys, early, hold, max_size, &load, &missing)
                    .await
            })
        }
        None => load(keys, early),
    })
}

fn via<K, V>(batcher: Batcher<K, V>) -> LoadFn<K, V>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + 'static,
{
    Arc::new(move |key| {
        let batcher = batcher.clone();
        Box::pin(async move { batcher.load(key).await })
    })
}
