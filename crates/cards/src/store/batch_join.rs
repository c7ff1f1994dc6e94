//! Batch loads joined across replicas.
//!
//! The lease is per entry, but the upstream call is per batch: three
//! replicas that each leased a third of a window's stale entries would send
//! three batched calls where one replica sends one. So, in a section that
//! joins, a batch load about to run first asks the shared cache
//! ([`SharedCache::collect_or_join`]):
//!
//! * nobody collects the section now: this replica becomes the collector,
//!   holds its batch open for `hold` (the batcher's own window), takes what
//!   the others handed it, loads it all in one call and stores the others'
//!   values under their leases (or releases a lease whose load failed);
//! * another replica collects, with room: this replica hands it the entries
//!   it holds the lease of, keeps renewing those leases, and waits for their
//!   values (bounded by [`SharedTiming::wait`](super::shared::SharedTiming));
//!   an entry whose lease ends without a value, or that the wait outlives,
//!   is loaded here after all. Entries it holds no lease of load here at
//!   once;
//! * no room: this replica loads alone, as before.
//!
//! A value that came from another replica's batch is not stored again: the
//! layer takes its `fetched_at` (see [`Layer::load`]). Only sections whose
//! loader answers every key in its results (no early answers) join.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::layer::{Layer, MAX_POLL};
use super::shared::{Collect, EntryKey, JoinState, Wanted};
use crate::batcher::{BatchLoadFn, BatchResults, Early, MissingFn};
use crate::error::SectionError;
use crate::stats::Counters;

/// A lease this replica holds while its load runs.
#[derive(Debug, Clone)]
struct Lease {
    generation: String,
    token: String,
    fresh_since: i64,
    /// Set when another replica's batch answered it (its `fetched_at`).
    answered_at: Option<i64>,
}

/// What a section needs to join batches: how an entry id maps back to its
/// key (set once, when the section joins), and the leases held now.
pub(crate) struct Joining<K> {
    key_of: OnceLock<fn(&str) -> K>,
    leases: Mutex<HashMap<String, Lease>>,
}

impl<K> Default for Joining<K> {
    fn default() -> Self {
        Joining {
            key_of: OnceLock::new(),
            leases: Mutex::default(),
        }
    }
}

impl<K> Joining<K> {
    /// From now on the section's batch loads join across replicas; `key_of`
    /// turns an entry id back into the section's key.
    pub(crate) fn enable(&self, key_of: fn(&str) -> K) {
        let _ = self.key_of.set(key_of);
    }

    fn enabled(&self) -> bool {
        self.key_of.get().is_some()
    }

    /// The lease `token` of entry `id` is held while its load runs.
    pub(crate) fn held(&self, id: &str, generation: &str, token: &str, fresh_since: i64) {
        if self.enabled() {
            lock(&self.leases).insert(
                id.to_owned(),
                Lease {
                    generation: generation.to_owned(),
                    token: token.to_owned(),
                    fresh_since,
                    answered_at: None,
                },
            );
        }
    }

    /// The load under lease `token` of `id` ended: `Some(fetched_at)` when
    /// another replica's batch answered it (its value is stored already).
    pub(crate) fn ended(&self, id: &str, token: &str) -> Option<i64> {
        if !self.enabled() {
            return None;
        }
        let mut leases = lock(&self.leases);
        match leases.get(id) {
            Some(lease) if lease.token == token => leases.remove(id)?.answered_at,
            _ => None,
        }
    }

    fn answered(&self, id: &str, token: &str, at: i64) {
        if let Some(lease) = lock(&self.leases).get_mut(id)
            && lease.token == token
        {
            lease.answered_at = Some(at);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// One entry this replica holds the lease of, in a batch.
struct Held<K> {
    key: K,
    entry: EntryKey,
    lease: Lease,
}

impl<K, V> Layer<K, V>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + 'static,
{
    /// Runs the batch load of `keys` by `load`, joined with the other
    /// replicas' when the section joins and is shared now (see the
    /// [module docs](self)). `hold` is how long a collector waits for
    /// them; `max` the section's largest batch.
    pub(crate) async fn batch(
        &self,
        keys: Vec<K>,
        early: Early<K, V>,
        hold: Duration,
        max: usize,
        load: &BatchLoadFn<K, V>,
        missing: &MissingFn<K, V>,
    ) -> Result<BatchResults<K, V>, SectionError> {
        let Some(&key_of) = self.joining.key_of.get() else {
            return load(keys, early).await;
        };
        let held = self.held_in(&keys);
        if held.is_empty() || !self.shared() {
            return load(keys, early).await;
        }
        let room = max.saturating_sub(keys.len());
        let wanted = held
            .iter()
            .map(|h| Wanted {
                id: h.entry.id.clone(),
                generation: h.lease.generation.clone(),
                token: h.lease.token.clone(),
            })
            .collect();
        let asked = self
            .cache
            .collect_or_join(&self.account, self.section, wanted, hold, room)
            .await;
        match asked {
            Ok(Collect::Collecting(token)) => {
                tokio::time::sleep(hold).await;
                self.collected(keys, early, &token, room, key_of, load, missing)
                    .await
            }
            Ok(Collect::Joined) => self.handed(keys, held, early, load).await,
            Ok(Collect::Alone) => load(keys, early).await,
            Err(_) => {
                self.error();
                load(keys, early).await
            }
        }
    }

    /// The entries of `keys` this replica holds the lease of now.
    fn held_in(&self, keys: &[K]) -> Vec<Held<K>> {
        let leases = lock(&self.joining.leases);
        keys.iter()
            .filter_map(|key| {
                let entry = self.entry(key)?;
                let lease = leases.get(&entry.id)?.clone();
                Some(Held {
                    key: key.clone(),
                    entry,
                    lease,
                })
            })
            .collect()
    }

    /// The collector's load: its own `keys` and what the others handed it
    /// (at most `room`), their values stored under their leases.
    #[allow(clippy::too_many_arguments)]
    async fn collected(
        &self,
        mut keys: Vec<K>,
        early: Early<K, V>,
        token: &str,
        room: usize,
        key_of: fn(&str) -> K,
        load: &BatchLoadFn<K, V>,
        missing: &MissingFn<K, V>,
    ) -> Result<BatchResults<K, V>, SectionError> {
        let taken = match self
            .cache
            .take_wanted(&self.account, self.section, token)
            .await
        {
            Ok(taken) => taken,
            Err(_) => {
                self.error();
                Vec::new()
            }
        };
        let mut theirs = Vec::with_capacity(taken.len());
        for want in taken {
            let key = key_of(&want.id);
            let Some(entry) = self.entry(&key) else {
                continue;
            };
            if theirs.len() >= room {
                // More than was room for (a dead collector's leftovers):
                // their holders load them, at once.
                self.release(&entry, &want.token).await;
                continue;
            }
            if !keys.contains(&key) {
                keys.push(key.clone());
            }
            theirs.push((key, entry, want));
        }
        Counters::add(&self.counters.shared_batch_taken, theirs.len() as u64);
        let outcome = load(keys, early).await;
        let stores = theirs.iter().map(|(key, entry, want)| {
            let result = match &outcome {
                Ok(results) => results.get(key).cloned().unwrap_or_else(|| missing(key)),
                Err(error) => Err(error.clone()),
            };
            async move {
                match result {
                    Ok(value) => {
                        self.store(entry, &value, &want.generation, &want.token)
                            .await
                    }
                    Err(_) => self.release(entry, &want.token).await,
                }
            }
        });
        futures::future::join_all(stores).await;
        outcome
    }

    /// A joiner's load: `held` handed to another replica's batch, waited
    /// for; the rest of `keys` (and what the wait did not answer) loaded
    /// here.
    async fn handed(
        &self,
        keys: Vec<K>,
        held: Vec<Held<K>>,
        early: Early<K, V>,
        load: &BatchLoadFn<K, V>,
    ) -> Result<BatchResults<K, V>, SectionError> {
        let rest: Vec<K> = keys
            .into_iter()
            .filter(|key| !held.iter().any(|h| h.key == *key))
            .collect();
        let here = async {
            if rest.is_empty() {
                BatchResults::new()
            } else {
                per_key(rest.clone(), load(rest, early.clone()).await)
            }
        };
        let (mut results, (answered, unanswered)) = tokio::join!(here, self.wait_for(held));
        Counters::add(&self.counters.shared_batch_handed, answered.len() as u64);
        results.extend(answered);
        if !unanswered.is_empty() {
            results.extend(per_key(unanswered.clone(), load(unanswered, early).await));
        }
        Ok(results)
    }

    /// Waits for the values of `held` (bounded by the shared timing's
    /// wait): the answered ones, and the keys to load here.
    async fn wait_for(&self, mut pending: Vec<Held<K>>) -> (BatchResults<K, V>, Vec<K>) {
        let timing = self.cache.timing();
        let until = tokio::time::Instant::now() + timing.wait;
        let mut poll = timing.poll;
        let mut answered = BatchResults::new();
        let mut unanswered = Vec::new();
        while !pending.is_empty() {
            let now = tokio::time::Instant::now();
            if now >= until {
                unanswered.extend(pending.drain(..).map(|h| h.key));
                break;
            }
            tokio::time::sleep(poll.min(until - now)).await;
            poll = (poll * 2).min(MAX_POLL.max(timing.poll));
            let asks: Vec<_> = pending
                .iter()
                .map(|h| (h.entry.clone(), h.lease.token.clone(), h.lease.fresh_since))
                .collect();
            let states = match self.cache.joined(&asks).await {
                Ok(states) if states.len() == pending.len() => states,
                _ => {
                    self.error();
                    unanswered.extend(pending.drain(..).map(|h| h.key));
                    break;
                }
            };
            let mut waiting = Vec::new();
            for (held, state) in pending.into_iter().zip(states) {
                match state {
                    JoinState::Waiting => waiting.push(held),
                    JoinState::Value(at, bytes) => match (self.decode)(&bytes) {
                        Ok(value) => {
                            self.joining.answered(&held.entry.id, &held.lease.token, at);
                            answered.insert(held.key, Ok(value));
                        }
                        Err(_) => {
                            self.error();
                            unanswered.push(held.key);
                        }
                    },
                    JoinState::Gone => unanswered.push(held.key),
                }
            }
            pending = waiting;
        }
        (answered, unanswered)
    }
}

/// A batch load's outcome for each of `keys`: a failed load fails each
/// (the batcher would answer a key missing from the results as "none").
fn per_key<K: Eq + Hash, V>(
    keys: Vec<K>,
    outcome: Result<BatchResults<K, V>, SectionError>,
) -> BatchResults<K, V> {
    match outcome {
        Ok(results) => results,
        Err(error) => keys.into_iter().map(|k| (k, Err(error.clone()))).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_tracked_only_while_joining_and_only_its_own_token_ends_it() {
        let joining: Joining<String> = Joining::default();
        joining.held("P1", "0", "t1", 0);
        assert!(
            lock(&joining.leases).is_empty(),
            "not joining: nothing kept"
        );

        joining.enable(str::to_owned);
        joining.held("P1", "3", "t1", 5);
        joining.answered("P1", "another-token", 9);
        assert_eq!(joining.ended("P1", "another-token"), None);
        joining.answered("P1", "t1", 7);
        assert_eq!(joining.ended("P1", "t1"), Some(7), "answered by a batch");
        assert!(lock(&joining.leases).is_empty());
        joining.held("P2", "0", "t2", 0);
        assert_eq!(joining.ended("P2", "t2"), None, "loaded here");
    }

    #[test]
    fn a_failed_load_fails_each_of_its_keys() {
        let failed: Result<BatchResults<u32, u32>, _> = Err(SectionError::unavailable("down"));
        let results = per_key(vec![1, 2], failed);
        assert_eq!(results.len(), 2);
        assert!(results.values().all(Result::is_err));
        let loaded = per_key(vec![1, 2], Ok(BatchResults::from([(1, Ok(10))])));
        assert_eq!(
            loaded.len(),
            1,
            "a key not mentioned is the batcher's to answer"
        );
    }
}
