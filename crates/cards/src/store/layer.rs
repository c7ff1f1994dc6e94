//! How one section cache reads through a [`SharedCache`]: a load (a miss
//! or a background refresh) first takes the shared value, else the lease
//! (then it loads from PagerDuty, renewing the lease while the load runs,
//! and stores the value for the others), else waits for the holder's
//! value, bounded. A listing offers what it read for many entries at once
//! ([`Layer::offer`]). Any error of the shared cache sends the load to
//! PagerDuty: it never fails a card.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::LifetimesFn;
use super::batch_join::Joining;
use super::shared::{EntryKey, Fetched, Offered, SharedCache, SharedMode};
use crate::error::SectionError;
use crate::stats::Counters;

/// The longest pause between two asks of a waiting load.
pub(super) const MAX_POLL: Duration = Duration::from_millis(100);

/// A value a section shares: serialized as JSON.
pub(crate) trait SharedValue: Sized {
    fn encode(&self) -> serde_json::Result<Vec<u8>>;
    fn decode(bytes: &[u8]) -> serde_json::Result<Self>;
}

impl<T: Serialize + DeserializeOwned> SharedValue for Arc<T> {
    fn encode(&self) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec(&**self)
    }

    fn decode(bytes: &[u8]) -> serde_json::Result<Self> {
        serde_json::from_slice(bytes).map(Arc::new)
    }
}

/// Why a section loads.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Purpose {
    /// Nothing in L1: any shared value within its hard limit serves (a
    /// stale one is refreshed in the background).
    Miss,
    /// The L1 value is past `ttl`: only a fresh shared value serves.
    Refresh { ttl: Duration },
}

/// One section's view of the shared cache.
pub(crate) struct Layer<K, V> {
    pub cache: Arc<dyn SharedCache>,
    pub account: String,
    pub section: &'static str,
    pub id: fn(&K) -> String,
    pub encode: fn(&V) -> serde_json::Result<Vec<u8>>,
    pub decode: fn(&[u8]) -> serde_json::Result<V>,
    pub lifetimes: LifetimesFn<V>,
    /// How long an invalidation's generation is kept (the section's hard limit).
    pub hard_limit: Duration,
    pub counters: Arc<Counters>,
    /// Whether (and how) its batch loads join the other replicas'.
    pub joining: Joining<K>,
}

impl<K, V> Layer<K, V> {
    /// The shared entry of `key`, unless its id cannot name a Redis key
    /// safely (then the section stays local for it).
    pub(super) fn entry(&self, key: &K) -> Option<EntryKey> {
        let id = (self.id)(key);
        let safe = !id.is_empty()
            && id.len() <= 128
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        safe.then(|| EntryKey {
            account: self.account.clone(),
            section: self.section,
            id,
        })
    }

    pub(super) fn shared(&self) -> bool {
        self.cache.mode() == SharedMode::Shared
    }

    pub(super) fn error(&self) {
        Counters::bump(&self.counters.shared_errors);
    }

    /// Loads `key` through the shared cache: `(value, Some(fetched_at))`
    /// from another replica, or `(value, None)` loaded here by `upstream`.
    pub(crate) async fn load<F, Fut>(
        &self,
        key: &K,
        purpose: Purpose,
        upstream: F,
    ) -> Result<(V, Option<DateTime<Utc>>), SectionError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, SectionError>>,
    {
        let entry = match self.entry(key) {
            Some(entry) if self.shared() => entry,
            _ => return upstream().await.map(|v| (v, None)),
        };
        let timing = self.cache.timing();
        let fresh_since = match purpose {
            Purpose::Miss => 0,
            Purpose::Refresh { ttl } => {
                Utc::now().timestamp_millis() - i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
            }
        };
        let waited_until = tokio::time::Instant::now() + timing.wait;
        // Polls start at `timing.poll` and back off: a holder's load queued
        // in the shared budget may take seconds, and many entries may wait.
        let mut poll = timing.poll;
        loop {
            match self
                .cache
                .fetch_or_lease(&entry, fresh_since, timing.lease)
                .await
            {
                Ok(Fetched::Value(at, bytes)) => match (self.decode)(&bytes) {
                    Ok(value) => {
                        Counters::bump(&self.counters.shared_hits);
                        let at = DateTime::from_timestamp_millis(at).unwrap_or_else(Utc::now);
                        return Ok((value, Some(at)));
                    }
                    Err(error) => {
                        // Another version's format, or a damaged value:
                        // PagerDuty's answer replaces it.
                        tracing::debug!(section = self.section, %error, "shared section value unreadable");
                        self.error();
                        return upstream().await.map(|v| (v, None));
                    }
                },
                Ok(Fetched::Leased { generation, token }) => {
                    self.joining
                        .held(&entry.id, &generation, &token, fresh_since);
                    let result = self.renewing(&entry, &token, upstream()).await;
                    let answered = self.joining.ended(&entry.id, &token);
                    match (&result, answered) {
                        // Another replica's batch loaded and stored it.
                        (Ok(_), Some(at)) => {
                            let at = DateTime::from_timestamp_millis(at).unwrap_or_else(Utc::now);
                            return result.map(|v| (v, Some(at)));
                        }
                        (Ok(value), None) => {
                            self.store(&entry, value, &generation, &token).await;
                        }
                        (Err(_), _) => self.release(&entry, &token).await,
                    }
                    return result.map(|v| (v, None));
                }
                Ok(Fetched::Busy) if tokio::time::Instant::now() < waited_until => {
                    tokio::time::sleep(poll.min(waited_until - tokio::time::Instant::now())).await;
                    poll = (poll * 2).min(MAX_POLL.max(timing.poll));
                }
                // The holder is slow (or died holding it): load here, and
                // leave the entry to the holder.
                Ok(Fetched::Busy) => return upstream().await.map(|v| (v, None)),
                Err(_) => {
                    self.error();
                    return upstream().await.map(|v| (v, None));
                }
            }
        }
    }

    /// Runs `load` while renewing the lease `token` every third of the
    /// lease time, so the replicas waiting for this load keep waiting
    /// while it lives (and take over within a lease time if this replica
    /// dies). Renewing stops when the lease is no longer ours.
    async fn renewing<T>(&self, entry: &EntryKey, token: &str, load: impl Future<Output = T>) -> T {
        let lease = self.cache.timing().lease;
        let every = (lease / 3).max(Duration::from_millis(1));
        let renew = async {
            loop {
                tokio::time::sleep(every).await;
                match self.cache.renew(entry, token, lease).await {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(_) => {
                        self.error();
                        break;
                    }
                }
            }
            std::future::pending::<()>().await;
        };
        tokio::pin!(load);
        tokio::select! {
            biased;
            value = &mut load => value,
            () = renew => unreachable!("renewing never ends by itself"),
        }
    }

    /// The section's invalidation epoch, read before a listing's first
    /// page (`None`: not shared now, or the shared cache failed; then the
    /// listing offers nothing).
    pub(crate) async fn epoch(&self) -> Option<String> {
        if !self.shared() {
            return None;
        }
        match self.cache.epoch(&self.account, self.section).await {
            Ok(epoch) => Some(epoch),
            Err(_) => {
                self.error();
                None
            }
        }
    }

    /// Offers a listing's values to the other replicas (stored where no
    /// value is, unless the section was invalidated since `epoch`).
    pub(crate) async fn offer(&self, epoch: &str, items: &[(K, V)]) {
        if !self.shared() {
            return;
        }
        let fetched_at = Utc::now().timestamp_millis();
        let mut entries = Vec::with_capacity(items.len());
        for (key, value) in items {
            let Some(entry) = self.entry(key) else {
                continue;
            };
            let Ok(bytes) = (self.encode)(value) else {
                self.error();
                continue;
            };
            entries.push(Offered {
                id: entry.id,
                fetched_at,
                value: bytes,
                ttl: (self.lifetimes)(value).1,
            });
        }
        if self
            .cache
            .offer(&self.account, self.section, epoch, entries)
            .await
            .is_err()
        {
            self.error();
        }
    }

    /// Releases the lease `token` of `entry` (its load failed).
    pub(super) async fn release(&self, entry: &EntryKey, token: &str) {
        if self.cache.release(entry, token).await.is_err() {
            self.error();
        }
    }

    pub(super) async fn store(&self, entry: &EntryKey, value: &V, generation: &str, token: &str) {
        let (_, hard_limit) = (self.lifetimes)(value);
        let bytes = match (self.encode)(value) {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::debug!(section = self.section, %error, "section value not serializable");
                self.error();
                let _ = self.cache.release(entry, token).await;
                return;
            }
        };
        let at = Utc::now().timestamp_millis();
        if self
            .cache
            .put(entry, at, bytes, hard_limit, generation, token)
            .await
            .is_err()
        {
            self.error();
        }
    }

    /// Drops the shared value of `key` (and refuses the answers of loads
    /// that started before).
    pub(crate) async fn invalidate(&self, key: &K) {
        if let Some(entry) = self.entry(key)
            && self.shared()
            && self
                .cache
                .invalidate(&entry, self.hard_limit)
                .await
                .is_err()
        {
            self.error();
        }
    }
}
