//! Cached PagerDuty objects handed out without copying them.
//!
//! The Backstage routes answer a body rendered once per version of the
//! section it came from; a warm read only needs that version. Copying the
//! cached object first (a `Vec<Incident>` is dozens of strings per
//! incident) was most of what such a read cost beyond `/healthz`, so the
//! `raw_*` reads of [`crate::CardService`] hand out the cache's own value
//! (or the part of it asked for) behind an `Arc`.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use pagerduty::{ChangeEvent, Incident, ServiceIncidentMetrics};
use serde::{Serialize, Serializer};

use crate::loaders::change_events::EventsOf;
use crate::loaders::incidents::OpenIncidents;
use crate::loaders::metrics::MetricsValue;

/// A cached PagerDuty object (or the part of a cached value that was asked
/// for), shared with the cache rather than copied. Derefs to `T`; compare,
/// print and serialize it like a `T`.
pub struct Kept<T: 'static> {
    owner: Arc<dyn Part<T>>,
}

/// What a cached value lends out: itself, or one of its fields.
trait Part<T>: Send + Sync {
    fn part(&self) -> &T;
}

impl<T: Send + Sync> Part<T> for T {
    fn part(&self) -> &T {
        self
    }
}

impl Part<Vec<Incident>> for OpenIncidents {
    fn part(&self) -> &Vec<Incident> {
        &self.items
    }
}

impl Part<Vec<ServiceIncidentMetrics>> for MetricsValue {
    fn part(&self) -> &Vec<ServiceIncidentMetrics> {
        &self.rows
    }
}

impl<T: Send + Sync + 'static> Kept<T> {
    /// The whole cached value.
    pub(crate) fn whole(value: Arc<T>) -> Self {
        Kept { owner: value }
    }
}

impl<T: 'static> Kept<T> {
    /// A part of a cached value (the value stays alive while this does).
    fn part_of<V: Part<T> + 'static>(value: Arc<V>) -> Self {
        Kept { owner: value }
    }
}

impl Kept<Vec<Incident>> {
    pub(crate) fn incidents(value: Arc<OpenIncidents>) -> Self {
        Self::part_of(value)
    }
}

impl Kept<Vec<ServiceIncidentMetrics>> {
    pub(crate) fn metrics(value: Arc<MetricsValue>) -> Self {
        Self::part_of(value)
    }
}

impl<T> Deref for Kept<T> {
    type Target = T;

    fn deref(&self) -> &T {
        Part::<T>::part(&*self.owner)
    }
}

impl<T> Clone for Kept<T> {
    fn clone(&self) -> Self {
        Kept {
            owner: Arc::clone(&self.owner),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Kept<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        T::fmt(self, f)
    }
}

impl<T: PartialEq> PartialEq for Kept<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: Serialize> Serialize for Kept<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        T::serialize(self, serializer)
    }
}

/// A service's change events as cached: the service's own list, or the
/// account's newest events of which this service's are picked out when
/// read ([`ServiceChangeEvents::newest_first`]), so a caller that needs
/// only the version (a rendered body that is still current) copies nothing.
#[derive(Clone)]
pub struct ServiceChangeEvents {
    events: Arc<Vec<ChangeEvent>>,
    /// `Some` when `events` is the account's list, to be filtered.
    service_id: Option<Arc<str>>,
}

impl ServiceChangeEvents {
    pub(crate) fn new(of: EventsOf, service_id: &str) -> Self {
        ServiceChangeEvents {
            events: of.events,
            service_id: of.account_wide.then(|| Arc::from(service_id)),
        }
    }

    /// The service's events, newest first.
    pub fn newest_first(&self) -> Vec<&ChangeEvent> {
        let mut events: Vec<&ChangeEvent> = match &self.service_id {
            None => self.events.iter().collect(),
            Some(id) => self
                .events
                .iter()
                .filter(|e| e.services.iter().any(|s| s.id == **id))
                .collect(),
        };
        events.sort_by_key(|e| std::cmp::Reverse(e.timestamp));
        events
    }
}

impl fmt::Debug for ServiceChangeEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.newest_first()).finish()
    }
}

impl PartialEq for ServiceChangeEvents {
    fn eq(&self, other: &Self) -> bool {
        self.newest_first() == other.newest_first()
    }
}

impl Serialize for ServiceChangeEvents {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.newest_first())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, service: &str, at: i64) -> ChangeEvent {
        serde_json::from_value(serde_json::json!({
            "id": id,
            "summary": id,
            "timestamp": chrono::DateTime::from_timestamp(at, 0).unwrap(),
            "services": [{"id": service, "type": "service_reference"}],
        }))
        .unwrap()
    }

    #[test]
    fn a_kept_part_reads_the_cached_value_in_place() {
        let open = Arc::new(OpenIncidents::default());
        let kept = Kept::incidents(Arc::clone(&open));
        assert!(std::ptr::eq(&*kept, &open.items), "no copy");
        assert_eq!(Arc::strong_count(&open), 2, "the kept part holds the value");
        drop(kept);
        assert_eq!(Arc::strong_count(&open), 1);
    }

    #[test]
    fn an_accounts_events_are_picked_for_the_service_newest_first() {
        let account = EventsOf {
            events: Arc::new(vec![
                event("a", "PONE", 10),
                event("b", "PTWO", 20),
                event("c", "PONE", 30),
            ]),
            account_wide: true,
        };
        let of = ServiceChangeEvents::new(account.clone(), "PONE");
        let ids: Vec<_> = of.newest_first().iter().map(|e| e.id.clone()).collect();
        assert_eq!(ids, [Some("c".to_owned()), Some("a".to_owned())]);
        // A service's own list is taken as it is (and still sorted).
        let own = ServiceChangeEvents::new(
            EventsOf {
                account_wide: false,
                ..account
            },
            "PONE",
        );
        assert_eq!(own.newest_first().len(), 3);
        assert_eq!(own.newest_first()[0].id.as_deref(), Some("c"));
        assert_eq!(
            serde_json::to_value(&of).unwrap()[0]["id"],
            serde_json::json!("c")
        );
    }
}
