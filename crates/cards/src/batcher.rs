//! A generic request batcher (the "data loader" pattern).
//!
//! Callers ask for one key each; keys that arrive within `window` of the first
//! one (or until `max_size` distinct keys are waiting) are handed to ONE loader
//! call, whose per-key results are sent back through oneshot channels.
//!
//! * Two batch loads start at least `min_interval` apart: under a stream of
//!   cold keys the window stretches, so a busy section costs a bounded number
//!   of calls per second; an idle section waits only `window`.
//! * A key that several callers want is loaded once (they share the result).
//! * A key the loader does not answer gets the `missing` result (for example
//!   "no incidents" or "not found"): no caller ever waits for an answer that
//!   will not come.
//! * The flush runs in a task of the service's [`Tasks`], so a caller that
//!   gives up (its HTTP client went away) does not cancel the batch for the
//!   others; a refresh batcher's (`background`) flushes are cancelled at
//!   shutdown, a miss batcher's are waited for. After shutdown the flush
//!   runs inline in the caller that starts it.
//! * Every wait is bounded by `timeout`.
//! * A loader may answer some keys before it ends ([`Early`]): a services
//!   listing hands each wanted service to its waiters when the page that holds
//!   it arrives, not after the last page.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::clock::later;
use crate::error::SectionError;
use crate::stats::Counters;
use crate::tasks::Tasks;

/// Per-key results of one batch load.
pub(crate) type BatchResults<K, V> = HashMap<K, Result<V, SectionError>>;

/// Loads many keys at once. An `Err` fails every key of the batch that
/// [`Early`] did not answer yet.
pub(crate) type BatchLoadFn<K, V> = Arc<
    dyn Fn(Vec<K>, Early<K, V>) -> BoxFuture<'static, Result<BatchResults<K, V>, SectionError>>
        + Send
        + Sync,
>;

/// The answer for a key the loader did not mention.
pub(crate) type MissingFn<K, V> = Arc<dyn Fn(&K) -> Result<V, SectionError> + Send + Sync>;

/// Timing and size settings of a [`Batcher`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchSettings {
    pub window: Duration,
    pub max_size: usize,
    pub min_interval: Duration,
    pub timeout: Duration,
    /// Nobody waits for these loads but background refreshes: shutdown
    /// cancels their flushes instead of waiting for them.
    pub background: bool,
}

type Waiters<V> = Vec<oneshot::Sender<Result<V, SectionError>>>;

/// Answers keys of a running batch before its load ends. Cloning shares it;
/// answering a key twice, or after the batch ended, does nothing.
pub(crate) struct Early<K, V> {
    waiters: Arc<Mutex<HashMap<K, Waiters<V>>>>,
}

impl<K, V> Clone for Early<K, V> {
    fn clone(&self) -> Self {
        Early {
            waiters: Arc::clone(&self.waiters),
        }
    }
}

impl<K: Eq + Hash, V: Clone> Early<K, V> {
    pub(crate) fn new(waiters: HashMap<K, Waiters<V>>) -> Self {
        Early {
            waiters: Arc::new(Mutex::new(waiters)),
        }
    }

    /// Sends `result` to every waiter of `key` now.
    pub(crate) fn send(&self, key: &K, result: Result<V, SectionError>) {
        let senders = self
            .waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
        for tx in senders.unwrap_or_default() {
            let _ = tx.send(result.clone());
        }
    }

    /// Takes the waiters of every key not answered yet.
    fn take_rest(&self) -> HashMap<K, Waiters<V>> {
        std::mem::take(&mut *self.waiters.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

struct State<K, V> {
    order: Vec<K>,
    waiters: HashMap<K, Waiters<V>>,
    generation: u64,
    last_flush: Option<Instant>,
}

struct Inner<K, V> {
    settings: BatchSettings,
    load: BatchLoadFn<K, V>,
    missing: MissingFn<K, V>,
    counters: Arc<Counters>,
    tasks: Tasks,
    state: Mutex<State<K, V>>,
}

/// Merges concurrent single-key requests into batch loads.
pub(crate) struct Batcher<K, V> {
    inner: Arc<Inner<K, V>>,
}

impl<K, V> Clone for Batcher<K, V> {
    fn clone(&self) -> Self {
        Batcher {
            inner: Arc::clone(&self.inner),
        }
    }
}

struct Batch<K, V> {
    keys: Vec<K>,
    waiters: HashMap<K, Waiters<V>>,
}

impl<K, V> Batcher<K, V>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + 'static,
{
    /// A batcher calling `load` with at most `settings.max_size` distinct keys.
    pub(crate) fn new(
        settings: BatchSettings,
        counters: Arc<Counters>,
        load: BatchLoadFn<K, V>,
        missing: MissingFn<K, V>,
        tasks: Tasks,
    ) -> Self {
        Batcher {
            inner: Arc::new(Inner {
                settings: BatchSettings {
                    max_size: settings.max_size.max(1),
                    ..settings
                },
                load,
                missing,
                counters,
                tasks,
                state: Mutex::new(State {
                    order: Vec::new(),
                    waiters: HashMap::new(),
                    generation: 0,
                    last_flush: None,
                }),
            }),
        }
    }

    /// Loads one key as part of the next batch.
    pub(crate) async fn load(&self, key: K) -> Result<V, SectionError> {
        let (tx, rx) = oneshot::channel();
        let mut flush_now = None;
        let mut schedule = None;
        {
            let mut state = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
            let is_new_key = !state.waiters.contains_key(&key);
            if is_new_key {
                state.order.push(key.clone());
            }
            state.waiters.entry(key).or_default().push(tx);
            if state.order.len() >= self.inner.settings.max_size {
                flush_now = Some(take_batch(&mut state));
            } else if is_new_key && state.order.len() == 1 {
                // First key of a new batch: it decides when the batch flushes.
                let now = Instant::now();
                let mut deadline = later_tokio(now, self.inner.settings.window);
                if let Some(last) = state.last_flush {
                    deadline = deadline.max(later_tokio(last, self.inner.settings.min_interval));
                }
                schedule = Some((state.generation, deadline));
            }
        }
        let flush = match (flush_now, schedule) {
            (Some(batch), _) => Some(Arc::clone(&self.inner).run(batch).boxed()),
            (None, Some((generation, deadline))) => {
                let inner = Arc::clone(&self.inner);
                Some(
                    async move {
                        tokio::time::sleep_until(deadline).await;
                        let batch = {
                            let mut state = inner.state.lock().unwrap_or_else(|e| e.into_inner());
                            if state.generation != generation || state.order.is_empty() {
                                // Already flushed because it reached `max_size`.
                                return;
                            }
                            take_batch(&mut state)
                        };
                        inner.run(batch).await;
                    }
                    .boxed(),
                )
            }
            (None, None) => None,
        };
        // The flush runs in its own task; after shutdown, here, alongside the wait.
        let inline = flush.and_then(|flush| self.spawn(flush));
        let answer = async {
            let (_, answer) = tokio::join!(
                async {
                    if let Some(flush) = inline {
                        flush.await;
                    }
                },
                rx
            );
            answer
        };
        match tokio::time::timeout(self.inner.settings.timeout, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(SectionError::unavailable(
                "the batch load ended without an answer",
            )),
            Err(_) => Err(SectionError::timeout(format!(
                "no answer from PagerDuty within {} s",
                self.inner.settings.timeout.as_secs_f64()
            ))),
        }
    }

    /// Spawns a flush on the service's tasks; hands it back after shutdown.
    fn spawn(&self, flush: BoxFuture<'static, ()>) -> Option<BoxFuture<'static, ()>> {
        let tasks = &self.inner.tasks;
        if self.inner.settings.background {
            tasks.background(flush).err()
        } else {
            tasks.spawn(flush).err()
        }
    }
}

/// [`later`] on tokio's clock (batch windows are waits, not freshness).
fn later_tokio(at: Instant, delay: Duration) -> Instant {
    Instant::from_std(later(at.into_std(), delay))
}

fn take_batch<K, V>(state: &mut State<K, V>) -> Batch<K, V> {
    state.generation += 1;
    state.last_flush = Some(Instant::now());
    Batch {
        keys: std::mem::take(&mut state.order),
        waiters: std::mem::take(&mut state.waiters),
    }
}

impl<K, V> Inner<K, V>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + 'static,
{
    async fn run(self: Arc<Self>, batch: Batch<K, V>) {
        Counters::bump(&self.counters.batched_calls);
        Counters::add(&self.counters.batched_keys, batch.keys.len() as u64);
        let Batch { keys, waiters } = batch;
        let early = Early::new(waiters);
        let outcome = (self.load)(keys.clone(), early.clone()).await;
        // Keys answered early have no waiters left here.
        let mut waiters = early.take_rest();
        match outcome {
            Ok(mut results) => {
                for key in keys {
                    let Some(senders) = waiters.remove(&key) else {
                        continue;
                    };
                    let result = results.remove(&key).unwrap_or_else(|| (self.missing)(&key));
                    for tx in senders {
                        let _ = tx.send(result.clone());
                    }
                }
            }
            Err(error) => {
                for (_, senders) in waiters.drain() {
                    for tx in senders {
                        let _ = tx.send(Err(error.clone()));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn settings(window_ms: u64, max_size: usize) -> BatchSettings {
        BatchSettings {
            window: Duration::from_millis(window_ms),
            max_size,
            min_interval: Duration::ZERO,
            timeout: Duration::from_secs(5),
            background: false,
        }
    }

    /// A loader that doubles known keys, omits key 0 and records batch sizes.
    fn doubling(calls: Arc<Mutex<Vec<usize>>>) -> BatchLoadFn<u32, u32> {
        Arc::new(move |keys: Vec<u32>, _early| {
            calls.lock().unwrap().push(keys.len());
            Box::pin(async move {
                Ok(keys
                    .into_iter()
                    .filter(|k| *k != 0)
                    .map(|k| (k, Ok(k * 2)))
                    .collect())
            })
        })
    }

    fn not_found() -> MissingFn<u32, u32> {
        Arc::new(|k: &u32| Err(SectionError::not_found(format!("key {k}"))))
    }

    #[tokio::test]
    async fn concurrent_keys_share_one_load_and_missing_keys_get_an_answer() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let batcher = Batcher::new(
            settings(50, 100),
            Arc::default(),
            doubling(calls.clone()),
            not_found(),
            Tasks::default(),
        );
        let results =
            futures::future::join_all((0..20u32).chain(1..5).map(|k| batcher.load(k))).await;
        assert_eq!(
            *calls.lock().unwrap(),
            vec![20],
            "one load of 20 distinct keys"
        );
        assert!(
            results[0].is_err(),
            "key 0 is answered with the missing result"
        );
        assert_eq!(results[7], Ok(14));
        assert_eq!(results[21], Ok(4), "a duplicate key shares the result");
    }

    #[tokio::test]
    async fn max_size_splits_batches() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let batcher = Batcher::new(
            settings(50, 10),
            Arc::default(),
            doubling(calls.clone()),
            not_found(),
            Tasks::default(),
        );
        let results = futures::future::join_all((1..=25u32).map(|k| batcher.load(k))).await;
        assert!(results.iter().all(Result::is_ok));
        let mut sizes = calls.lock().unwrap().clone();
        sizes.sort_unstable();
        assert_eq!(sizes, vec![5, 10, 10]);
    }

    #[tokio::test]
    async fn a_failed_load_fails_every_waiter() {
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        let load: BatchLoadFn<u32, u32> = Arc::new(move |_keys, _early| {
            c.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Err(SectionError::unavailable("boom")) })
        });
        let batcher = Batcher::new(
            settings(20, 100),
            Arc::default(),
            load,
            not_found(),
            Tasks::default(),
        );
        let results = futures::future::join_all((1..=3u32).map(|k| batcher.load(k))).await;
        assert_eq!(count.load(Ordering::SeqCst), 1);
        assert!(
            results
                .iter()
                .all(|r| r.as_ref().unwrap_err().message == "boom")
        );
    }

    #[tokio::test]
    async fn a_hanging_load_times_out() {
        let load: BatchLoadFn<u32, u32> =
            Arc::new(|_keys, _early| Box::pin(futures::future::pending()));
        let batcher = Batcher::new(
            BatchSettings {
                timeout: Duration::from_millis(50),
                ..settings(1, 10)
            },
            Arc::default(),
            load,
            not_found(),
            Tasks::default(),
        );
        let error = batcher.load(1).await.unwrap_err();
        assert_eq!(error.kind, crate::error::SectionErrorKind::Timeout);
    }

    #[tokio::test]
    async fn min_interval_merges_a_stream_of_keys() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let batcher = Batcher::new(
            BatchSettings {
                min_interval: Duration::from_millis(300),
                ..settings(1, 100)
            },
            Arc::default(),
            doubling(calls.clone()),
            not_found(),
            Tasks::default(),
        );
        assert_eq!(batcher.load(1).await, Ok(2));
        // The next keys arrive right after a flush: they wait for the interval
        // and meet in one batch.
        let results = futures::future::join_all((2..=6u32).map(|k| {
            let b = batcher.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(u64::from(k) * 10)).await;
                b.load(k).await
            }
        }))
        .await;
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(*calls.lock().unwrap(), vec![1, 5]);
    }

    #[tokio::test]
    async fn early_answers_do_not_wait_for_the_end_of_the_load() {
        let gate = Arc::new(tokio::sync::Notify::new());
        let load: BatchLoadFn<u32, u32> = {
            let gate = Arc::clone(&gate);
            Arc::new(move |keys: Vec<u32>, early: Early<u32, u32>| {
                let gate = Arc::clone(&gate);
                Box::pin(async move {
                    early.send(&1, Ok(10));
                    early.send(&1, Ok(99)); // a second answer is ignored
                    // The load ends only after key 1's caller got its answer.
                    gate.notified().await;
                    Ok(keys.into_iter().map(|k| (k, Ok(k * 100))).collect())
                })
            })
        };
        let batcher = Batcher::new(
            settings(20, 100),
            Arc::default(),
            load,
            not_found(),
            Tasks::default(),
        );
        let (first, second) = tokio::join!(
            async {
                let result = batcher.load(1).await;
                gate.notify_one();
                result
            },
            batcher.load(2)
        );
        assert_eq!(first, Ok(10), "answered early, before the load ended");
        assert_eq!(second, Ok(200));
    }
}
