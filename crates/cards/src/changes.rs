//! Change notifications: a section cache tells its listeners when an entry
//! is dropped (an invalidation: a webhook, a trigger) or replaced (a miss
//! load kept, a background refresh), so a live view (the server's card
//! streams) re-reads the card instead of polling it.
//!
//! A notification says only *which* entry changed, never the new value: a
//! listener reads the card again through the caches, so what it shows went
//! through the same freshness, coalescing and batching as every other read
//! (after an invalidation that read is the refetch, shared by every
//! listener). Delivery is a [`tokio::sync::broadcast`]: sending never
//! blocks a cache, and a listener that falls behind learns it lagged
//! (`RecvError::Lagged`) and should re-read everything it shows.

use std::sync::{Arc, OnceLock};

use tokio::sync::broadcast;

use crate::model::Section;

/// Notifications buffered per listener before it counts as lagging.
pub const CHANGE_BUFFER: usize = 1024;

/// What happened to a cache entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Dropped: the next read fetches it from PagerDuty.
    Invalidated,
    /// A new value was stored (a miss load that was kept, or a background
    /// refresh, successful or failed).
    Replaced,
}

/// One section entry of one service changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionChange {
    /// The section. [`Section::Service`] also stands for the escalation
    /// policy (one cached object). Change events are cached account-wide
    /// and are not reported.
    pub section: Section,
    /// The service id; for [`Section::Oncall`] the escalation policy id
    /// (on-call is cached per policy, shared by its services).
    pub id: String,
    /// Dropped or replaced.
    pub kind: ChangeKind,
}

/// The sending half, shared by the section caches of one `CardService`.
#[derive(Clone)]
pub(crate) struct Changes {
    sender: broadcast::Sender<SectionChange>,
}

impl Default for Changes {
    fn default() -> Self {
        Changes {
            sender: broadcast::Sender::new(CHANGE_BUFFER),
        }
    }
}

impl Changes {
    /// A new listener (sees the changes from now on).
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<SectionChange> {
        self.sender.subscribe()
    }

    /// A notifier for the cache of `section` whose keys are `K`.
    pub(crate) fn notifier<K: ToString>(&self, section: Section) -> Notify<K> {
        let sender = self.sender.clone();
        Arc::new(move |key: &K, kind| {
            // No listener is not an error: nothing is watching.
            let _ = sender.send(SectionChange {
                section,
                id: key.to_string(),
                kind,
            });
        })
    }
}

/// What a section cache calls when an entry changes.
pub(crate) type Notify<K> = Arc<dyn Fn(&K, ChangeKind) + Send + Sync>;

/// A section cache's notifier, set once after construction (caches that
/// nobody watches have none).
pub(crate) struct NotifySlot<K>(OnceLock<Notify<K>>);

impl<K> Default for NotifySlot<K> {
    fn default() -> Self {
        NotifySlot(OnceLock::new())
    }
}

impl<K> NotifySlot<K> {
    pub(crate) fn set(&self, notify: Notify<K>) {
        let _ = self.0.set(notify);
    }

    pub(crate) fn send(&self, key: &K, kind: ChangeKind) {
        if let Some(notify) = self.0.get() {
            notify(key, kind);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_notifier_names_the_section_key_and_kind() {
        let changes = Changes::default();
        let mut rx = changes.subscribe();
        let slot = NotifySlot::<String>::default();
        slot.send(&"PNONE".to_owned(), ChangeKind::Replaced); // no notifier yet
        slot.set(changes.notifier(Section::Incidents));
        slot.send(&"PABC123".to_owned(), ChangeKind::Invalidated);
        assert_eq!(
            rx.recv().await.unwrap(),
            SectionChange {
                section: Section::Incidents,
                id: "PABC123".into(),
                kind: ChangeKind::Invalidated,
            }
        );
        assert!(
            rx.try_recv().is_err(),
            "nothing before the notifier was set"
        );
    }
}
