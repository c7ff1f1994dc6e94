//! [`CardParts`]: what a card is built from (its cached sections, with
//! their versions), apart from building it, so the server can keep the
//! bytes it rendered from a card and reuse them while the versions hold.

use std::any::Any;
use std::sync::{Arc, OnceLock};

use chrono::Utc;
use pagerduty::{Oncall, Service, ServiceStandards};

use crate::cache::Lookup;
use crate::card::no_policy;
use crate::error::SectionError;
use crate::loaders::change_events::EventsOf;
use crate::loaders::incidents::OpenIncidents;
use crate::loaders::metrics::MetricsValue;
use crate::model::{CardOptions, EscalationPolicySection, SectionResult, ServiceCard};
use crate::sections;

/// The cached sections of one card, read by
/// [`CardService::card_parts`](crate::CardService::card_parts) (with the
/// same counters and background refreshes as a card read), not yet built.
#[derive(Clone)]
pub struct CardParts {
    pub(crate) service_id: String,
    pub(crate) options: CardOptions,
    pub(crate) service: Lookup<Arc<Service>>,
    pub(crate) oncall: Result<Lookup<Arc<Vec<Oncall>>>, SectionError>,
    pub(crate) incidents: Result<Lookup<Arc<OpenIncidents>>, SectionError>,
    pub(crate) change_events: Result<Lookup<EventsOf>, SectionError>,
    pub(crate) standards: Option<Result<Lookup<Arc<ServiceStandards>>, SectionError>>,
    pub(crate) metrics: Option<Result<Lookup<Arc<MetricsValue>>, SectionError>>,
    /// The stripe of the service's id in `missing_services`, taken before
    /// it was checked (`crate::warm`: a 404 remembered since ends reuse).
    pub(crate) missing: crate::store::Mark,
    /// Shared by every copy of these parts (see [`Memo`]).
    pub(crate) memo: Memo,
}

/// A slot that travels with a card's parts, for what a caller derives
/// from them (the server keeps its rendered template there).
///
/// The warm path (`crate::warm`) hands out copies of the parts it kept,
/// and every copy shares one memo: a read of a warm card finds what an
/// earlier read of the same kept parts left here, without a lookup of its
/// own (a batch of twenty warm cards saves twenty). Parts read through the
/// section caches start with an empty memo, so nothing derived from older
/// sections is ever found here. The memo is filled once; the copies may be
/// read with other [`CardOptions`] than the first, so what is kept should
/// say what it was made from, and a caller should check that before use.
#[derive(Clone, Default)]
pub struct Memo(Arc<OnceLock<Arc<dyn Any + Send + Sync>>>);

impl Memo {
    /// What was kept, if it is a `T`.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.0.get()?.downcast_ref()
    }

    /// Keeps `value` unless something was kept before (the first stays).
    pub fn set(&self, value: Arc<dyn Any + Send + Sync>) {
        let _ = self.0.set(value);
    }
}

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memo")
            .field("kept", &self.0.get().is_some())
            .finish()
    }
}

impl std::fmt::Debug for CardParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardParts")
            .field("service_id", &self.service_id)
            .field("versions", &self.versions())
            .finish_non_exhaustive()
    }
}

/// What a built card depends on besides the clock: each section's stored
/// version and whether it is served stale, in card order (service and
/// escalation policy share one entry; absent optional sections are `None`).
/// Equal versions (for the same service and options) build the same card
/// except `generated_at` and the `max_age_secs` of each section (see
/// [`CardParts::max_age_secs`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CardVersions([Option<(u64, bool)>; 6]);

impl CardParts {
    /// The service id of the card.
    pub fn service_id(&self) -> &str {
        &self.service_id
    }

    /// The memo these parts share with every copy the warm path gives out.
    pub fn memo(&self) -> &Memo {
        &self.memo
    }

    /// The sections' versions, or `None` when a section failed (its error,
    /// e.g. a timeout, is not stored, so such a card is built every time).
    pub fn versions(&self) -> Option<CardVersions> {
        fn v<V>(lookup: &Lookup<V>) -> (u64, bool) {
            (lookup.version, lookup.stale)
        }
        fn ok<V>(lookup: &Result<Lookup<V>, SectionError>) -> Option<(u64, bool)> {
            lookup.as_ref().ok().map(v)
        }
        let optional = |section: Option<Option<(u64, bool)>>| match section {
            None => Some(None),
            Some(Some(version)) => Some(Some(version)),
            Some(None) => None,
        };
        Some(CardVersions([
            Some(v(&self.service)),
            Some(ok(&self.oncall)?),
            Some(ok(&self.incidents)?),
            Some(ok(&self.change_events)?),
            optional(self.standards.as_ref().map(ok))?,
            optional(self.metrics.as_ref().map(ok))?,
        ]))
    }

    /// Each section's `max_age_secs` as [`CardParts::build`] would write
    /// it now, in card order (`service`, `escalation_policy`, `oncall`,
    /// `incidents`, `change_events`, `standards`, `metrics`; `None` for an
    /// optional section not asked for).
    pub fn max_age_secs(&self) -> [Option<u64>; 7] {
        fn age<V>(lookup: &Lookup<V>) -> u64 {
            if lookup.stale {
                0
            } else {
                lookup.max_age.as_secs()
            }
        }
        fn of<V>(lookup: &Result<Lookup<V>, SectionError>) -> u64 {
            lookup.as_ref().map_or(0, age)
        }
        let policy = if self.service.value.escalation_policy.is_some() {
            age(&self.service)
        } else {
            0
        };
        [
            Some(age(&self.service)),
            Some(policy),
            Some(of(&self.oncall)),
            Some(of(&self.incidents)),
            Some(of(&self.change_events)),
            self.standards.as_ref().map(of),
            self.metrics.as_ref().map(of),
        ]
    }

    /// The card (what [`CardService::card`](crate::CardService::card)
    /// answers), generated now.
    pub fn build(&self) -> ServiceCard {
        let options = &self.options;
        let service = &self.service;
        let oncall = match (&self.oncall, &service.value.escalation_policy) {
            (Ok(lookup), Some(policy)) => section(Ok(lookup), |oncalls| {
                sections::oncall_section(&policy.id, policy.escalation_rules.len(), oncalls)
            }),
            (Err(error), _) => SectionResult::failed(error.clone()),
            (Ok(_), None) => SectionResult::failed(no_policy()),
        };
        let incidents = section(self.incidents.as_ref(), |open| {
            sections::incidents_section(&open.items, open.truncated, options.incident_limit())
        });
        let change_events = section(self.change_events.as_ref(), |events| {
            let limit = options.change_event_limit();
            if events.account_wide {
                sections::change_events_section(
                    events
                        .events
                        .iter()
                        .filter(|e| e.services.iter().any(|s| s.id == self.service_id)),
                    limit,
                )
            } else {
                sections::change_events_section(events.events.iter(), limit)
            }
        });
        let standards = self
            .standards
            .as_ref()
            .map(|standards| section(standards.as_ref(), |s| sections::standards_section(s)));
        let metrics = self.metrics.as_ref().map(|metrics| {
            section(metrics.as_ref(), |m| {
                sections::metrics_section(&m.rows, m.since, m.until)
            })
        });
        ServiceCard {
            service: SectionResult::ok(
                sections::service_section(&service.value),
                service.fetched_at,
                service.stale,
                service.error.clone(),
                service.max_age,
            ),
            escalation_policy: escalation_policy_result(service),
            oncall,
            incidents,
            change_events,
            standards,
            metrics,
            generated_at: Utc::now(),
        }
    }
}

fn section<V, T>(
    lookup: Result<&Lookup<V>, &SectionError>,
    f: impl FnOnce(&V) -> T,
) -> SectionResult<T> {
    match lookup {
        Ok(lookup) => SectionResult::ok(
            f(&lookup.value),
            lookup.fetched_at,
            lookup.stale,
            lookup.error.clone(),
            lookup.max_age,
        ),
        Err(error) => SectionResult::failed(error.clone()),
    }
}

fn escalation_policy_result(
    service: &Lookup<Arc<Service>>,
) -> SectionResult<EscalationPolicySection> {
    match &service.value.escalation_policy {
        Some(policy) => SectionResult::ok(
            sections::escalation_policy_section(policy),
            service.fetched_at,
            service.stale,
            service.error.clone(),
            service.max_age,
        ),
        None => SectionResult::failed(no_policy()),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::CardsConfig;
    use crate::loaders::testing::{client, sim};
    use crate::model::{CardOptions, Section, ServiceId, ServiceRef};
    use crate::service::CardService;

    fn max_ages(card: &crate::ServiceCard) -> [Option<u64>; 7] {
        [
            Some(card.service.max_age_secs),
            Some(card.escalation_policy.max_age_secs),
            Some(card.oncall.max_age_secs),
            Some(card.incidents.max_age_secs),
            Some(card.change_events.max_age_secs),
            card.standards.as_ref().map(|s| s.max_age_secs),
            card.metrics.as_ref().map(|s| s.max_age_secs),
        ]
    }

    #[tokio::test]
    async fn versions_hold_while_the_sections_do_and_change_when_one_is_replaced() {
        let sim = sim(3).await;
        let id: ServiceId = sim.account().services[0].id.parse().unwrap();
        // Freshness on a still clock: `max_age_secs` does not tick between reads.
        let clock = std::sync::Arc::new(crate::clock::ManualClock::new());
        let cards = CardService::with_clock(client(&sim), CardsConfig::default(), clock);
        let options = CardOptions {
            include_standards: true,
            include_metrics: true,
            ..CardOptions::default()
        };
        let read = || cards.card_parts(ServiceRef::Id(id.clone()), &options);
        let first = read().await.unwrap();
        let versions = first.versions().expect("every section loaded");
        let again = read().await.unwrap();
        assert_eq!(
            again.versions(),
            Some(versions),
            "same entries, same versions"
        );
        // The parts build what `card` answers, and say its max ages.
        let built = again.build();
        let card = cards
            .card(ServiceRef::Id(id.clone()), &options)
            .await
            .unwrap();
        assert_eq!(
            crate::ServiceCard {
                generated_at: card.generated_at,
                ..built.clone()
            },
            card
        );
        assert_eq!(again.max_age_secs(), max_ages(&built));
        // Every section's invalidation gives a new version.
        for section in [
            Section::Incidents,
            Section::Oncall,
            Section::Service,
            Section::ChangeEvents,
            Section::Standards,
            Section::Metrics,
        ] {
            let before = read().await.unwrap().versions().unwrap();
            cards.invalidate(id.as_str(), &[section]).await;
            let after = read().await.unwrap().versions().unwrap();
            assert_ne!(before, after, "{section:?}");
        }
    }
}
