//! The idempotency store: the first answer to a request, by key, for a window.
//!
//! A key is claimed *before* the event is sent (an in-flight entry), so a
//! concurrent duplicate waits for the first request's answer instead of
//! sending a second event. Only final answers are kept for the window
//! (accepted, or rejected by PagerDuty as invalid); a failure (nothing was
//! created) releases the key so a retry sends again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::validate::{Prepared, Target, generated_dedup_key, hash64};
use crate::auth::Caller;

/// What a caller of [`IdempotencyStore::begin`] must do.
pub enum Begin<T> {
    /// Nobody holds the key: do the work, then [`Claim::finish`].
    Leader(Claim<T>),
    /// The same request is in flight: wait on the receiver for its answer
    /// (`None` until then; the sender is dropped if the leader gives up).
    Follower(watch::Receiver<Option<T>>),
    /// The answer of an earlier request with this key.
    Done(T),
    /// The key was used for a different request within the window.
    Mismatch,
}

struct Entry<T> {
    fingerprint: u64,
    /// Set when the answer is final; `None` while in flight.
    done_at: Option<Instant>,
    rx: watch::Receiver<Option<T>>,
}

struct Inner<T> {
    window: Duration,
    entries: Mutex<HashMap<String, Entry<T>>>,
}

/// In-memory, per-process store: one replica's clicks. Several replicas
/// also share their entries through Redis ([`super::shared`]); this store
/// still coalesces one replica's concurrent duplicates first, and answers
/// alone while Redis is away (PagerDuty's dedup_key, the same on every
/// replica, then merges a retry that reaches another replica).
pub struct IdempotencyStore<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for IdempotencyStore<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

/// The right (and duty) to answer for a key. Dropping it without
/// [`Claim::finish`] releases the key and wakes followers with no answer.
pub struct Claim<T> {
    store: Arc<Inner<T>>,
    key: String,
    tx: Option<watch::Sender<Option<T>>>,
}

impl<T: Clone> IdempotencyStore<T> {
    /// Answers are kept for `window`.
    pub fn new(window: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                window,
                entries: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Claim `key` for a request with `fingerprint` (a hash of its content),
    /// or learn its answer.
    pub fn begin(&self, key: &str, fingerprint: u64) -> Begin<T> {
        self.begin_at(key, fingerprint, Instant::now())
    }

    fn begin_at(&self, key: &str, fingerprint: u64, now: Instant) -> Begin<T> {
        let mut entries = self.inner.lock();
        let window = self.inner.window;
        if entries.len() > 1024 {
            entries.retain(|_, e| e.done_at.is_none_or(|at| now.duration_since(at) < window));
        }
        if let Some(entry) = entries.get(key) {
            let live = entry
                .done_at
                .is_none_or(|at| now.duration_since(at) < window);
            if live {
                if entry.fingerprint != fingerprint {
                    return Begin::Mismatch;
                }
                return match entry.rx.borrow().clone() {
                    Some(answer) => Begin::Done(answer),
                    None => Begin::Follower(entry.rx.clone()),
                };
            }
        }
        let (tx, rx) = watch::channel(None);
        entries.insert(
            key.to_owned(),
            Entry {
                fingerprint,
                done_at: None,
                rx,
            },
        );
        Begin::Leader(Claim {
            store: self.inner.clone(),
            key: key.to_owned(),
            tx: Some(tx),
        })
    }

    /// The kept answer for `key`, if there is one within the window for a
    /// request with this `fingerprint` (no claim is made; in-flight, other
    /// or expired entries give `None`).
    pub fn answer(&self, key: &str, fingerprint: u64) -> Option<T> {
        let entries = self.inner.lock();
        let entry = entries.get(key)?;
        let at = entry.done_at?;
        if entry.fingerprint != fingerprint || at.elapsed() >= self.inner.window {
            return None;
        }
        entry.rx.borrow().clone()
    }

    /// Entries held (in flight or answered, expired ones included until purged).
    pub fn len(&self) -> usize {
        self.inner.lock().len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Inner<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry<T>>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T: Clone> Claim<T> {
    /// Publish the answer to waiting followers; keep it for the window when
    /// `keep`, else release the key.
    pub fn finish(mut self, answer: T, keep: bool) {
        let Some(tx) = self.tx.take() else { return };
        {
            let mut entries = self.store.lock();
            if keep {
                if let Some(entry) = entries.get_mut(&self.key) {
                    entry.done_at = Some(Instant::now());
                }
            } else {
                entries.remove(&self.key);
            }
        }
        // Followers hold receivers; a send error only means none is waiting.
        let _ = tx.send(Some(answer));
    }
}

impl<T> Drop for Claim<T> {
    fn drop(&mut self) {
        if self.tx.is_some() {
            self.store.lock().remove(&self.key);
        }
    }
}

/// The generated dedup_keys of recent triggers that had neither a
/// `dedup_key` nor an `Idempotency-Key`, by a hash of what identifies a
/// repeat (account, caller, service or key, summary), each kept for a window.
pub struct RecentTriggers {
    window: Duration,
    keys: Mutex<HashMap<u64, (String, Instant)>>,
}

impl RecentTriggers {
    /// Keys are reused for `window`.
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            keys: Mutex::default(),
        }
    }

    /// The dedup_key given to the same (account, caller, target, summary)
    /// within the window, else a new one.
    pub(super) fn dedup_key(&self, account: &str, caller: &Caller, prepared: &Prepared) -> String {
        let mut bytes = Vec::new();
        for part in [
            account,
            &caller.name,
            match &prepared.target {
                Target::Service(id) => id.as_str(),
                Target::Key(key) => key.as_str(),
            },
            prepared
                .event
                .payload
                .as_ref()
                .map_or("", |p| p.summary.as_str()),
        ] {
            bytes.extend_from_slice(part.as_bytes());
            bytes.push(0);
        }
        let hash = hash64(&bytes);
        let now = Instant::now();
        let mut recent = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() > 1024 {
            recent.retain(|_, (_, at)| now.duration_since(*at) < self.window);
        }
        match recent.get(&hash) {
            Some((key, at)) if now.duration_since(*at) < self.window => key.clone(),
            _ => {
                let key = generated_dedup_key(caller, None);
                recent.insert(hash, (key.clone(), now));
                key
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_request_waits_then_replays_the_first_answer() {
        let store = IdempotencyStore::<u32>::new(Duration::from_secs(60));
        let Begin::Leader(claim) = store.begin("k", 1) else {
            panic!("first request leads")
        };
        let Begin::Follower(rx) = store.begin("k", 1) else {
            panic!("concurrent duplicate follows")
        };
        claim.finish(7, true);
        assert_eq!(*rx.borrow(), Some(7));
        assert!(matches!(store.begin("k", 1), Begin::Done(7)));
        assert!(matches!(store.begin("k", 2), Begin::Mismatch));
        assert_eq!(store.answer("k", 1), Some(7));
        assert_eq!(store.answer("k", 2), None, "another request");
        assert_eq!(store.answer("other", 1), None);
    }

    #[test]
    fn failures_and_abandoned_claims_release_the_key() {
        let store = IdempotencyStore::<u32>::new(Duration::from_secs(60));
        let Begin::Leader(claim) = store.begin("k", 1) else {
            panic!()
        };
        claim.finish(503, false);
        let Begin::Leader(claim) = store.begin("k", 1) else {
            panic!("a failed request does not block a retry")
        };
        let Begin::Follower(rx) = store.begin("k", 1) else {
            panic!()
        };
        drop(claim);
        assert!(rx.has_changed().is_err(), "followers see the sender gone");
        assert!(matches!(store.begin("k", 1), Begin::Leader(_)));
    }

    #[test]
    fn answers_expire_after_the_window() {
        let store = IdempotencyStore::<u32>::new(Duration::from_secs(60));
        let Begin::Leader(claim) = store.begin("k", 1) else {
            panic!()
        };
        claim.finish(1, true);
        let later = Instant::now() + Duration::from_secs(61);
        assert!(matches!(store.begin_at("k", 1, later), Begin::Leader(_)));
    }
}
