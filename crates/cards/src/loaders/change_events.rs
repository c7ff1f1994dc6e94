//! The change events section: the account's newest change events, split per
//! service; per service while the account-wide call is forbidden.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pagerduty::{ChangeEvent, ListChangeEvents, Page};

use super::Upstream;
use crate::batcher::{BatchResults, Early};
use crate::build::{BatchLoad, Builder, Load};
use crate::cache::{Lookup, SectionCache};
use crate::clock::{Clock, later};
use crate::error::{SectionError, SectionErrorKind};
use crate::paging::PAGE_LIMIT;
use crate::stats::Counters;

/// Pages of the account-wide change events list read per refresh (newest 300 events).
const CHANGE_EVENT_PAGES: u32 = 3;
/// Change events kept per service in the per-service fallback (the largest card limit).
const SERVICE_CHANGE_EVENTS: u32 = crate::model::MAX_ITEM_LIMIT as u32;

/// The account's newest change events (at most [`CHANGE_EVENT_PAGES`] pages).
///
/// The pages the last read found events on are read at once (one round
/// trip, not one per page); when the last of them says there are more (the
/// first read, or the account grew), the remaining pages are read at once
/// after them: at most two round trips.
pub(crate) struct AccountLoader {
    up: Upstream,
    /// Pages read at once: as many as the last read found events on.
    pages_wanted: AtomicU32,
}

impl Load<(), Arc<Vec<ChangeEvent>>> for AccountLoader {
    async fn load(&self, (): ()) -> Result<Arc<Vec<ChangeEvent>>, SectionError> {
        let page = |n: u32| {
            self.up.count();
            let q = ListChangeEvents {
                limit: Some(PAGE_LIMIT),
                offset: Some(n * PAGE_LIMIT),
                ..Default::default()
            };
            async move { self.up.client.list_change_events(&q).await }
        };
        let at_once = self
            .pages_wanted
            .load(Ordering::Relaxed)
            .clamp(1, CHANGE_EVENT_PAGES);
        let mut pages = futures::future::try_join_all((0..at_once).map(page)).await?;
        let read = pages.len() as u32;
        if read < CHANGE_EVENT_PAGES && pages.last().and_then(Page::next_offset).is_some() {
            // More than last time: the remaining pages at once.
            let rest = futures::future::try_join_all((read..CHANGE_EVENT_PAGES).map(page)).await?;
            pages.extend(rest);
        }
        let used = pages.iter().filter(|p| !p.items.is_empty()).count() as u32;
        self.pages_wanted.store(used.max(1), Ordering::Relaxed);
        // Pages read at once may overlap when events arrive meanwhile.
        let mut seen = HashSet::new();
        Ok(Arc::new(
            pages
                .into_iter()
                .flat_map(|p| p.items)
                .filter(|e| e.id.as_ref().is_none_or(|id| seen.insert(id.clone())))
                .collect(),
        ))
    }
}

/// `GET /services/{id}/change_events` per service (PagerDuty has no id-list
/// filter there): one call per service of the batch, in parallel.
pub(crate) struct PerServiceLoader(Upstream);

impl BatchLoad<String, Arc<Vec<ChangeEvent>>> for PerServiceLoader {
    async fn load(
        &self,
        keys: Vec<String>,
        _early: Early<String, Arc<Vec<ChangeEvent>>>,
    ) -> Result<BatchResults<String, Arc<Vec<ChangeEvent>>>, SectionError> {
        let calls = keys.iter().map(|id| {
            self.0.count();
            let q = ListChangeEvents {
                limit: Some(SERVICE_CHANGE_EVENTS),
                ..Default::default()
            };
            async move {
                let result = self.0.client.list_service_change_events(id, &q).await;
                (
                    id.clone(),
                    result
                        .map(|page| Arc::new(page.items))
                        .map_err(SectionError::from),
                )
            }
        });
        Ok(futures::future::join_all(calls).await.into_iter().collect())
    }

    fn missing(&self, _service: &String) -> Result<Arc<Vec<ChangeEvent>>, SectionError> {
        Ok(Arc::new(Vec::new()))
    }
}

/// Change events as cached: the account's newest (every service's) or one
/// service's own.
#[derive(Clone)]
pub(crate) struct EventsOf {
    pub events: Arc<Vec<ChangeEvent>>,
    /// True for the account's list (to be filtered by service).
    pub account_wide: bool,
}

impl EventsOf {
    /// The events of `service_id` (the tests' view; readers use
    /// [`crate::ServiceChangeEvents`], which copies only when read).
    #[cfg(test)]
    pub(crate) fn of_service(self, service_id: &str) -> Arc<Vec<ChangeEvent>> {
        if !self.account_wide {
            return self.events;
        }
        Arc::new(
            self.events
                .iter()
                .filter(|e| e.services.iter().any(|s| s.id == service_id))
                .cloned()
                .collect(),
        )
    }
}

/// The change events of one service: from the account-wide list, or per
/// service for `change_events_fallback_ttl` after that list was refused
/// (403: the token lacks `change_events.read`). Both caches count in one set
/// of counters.
pub(crate) struct ChangeEvents {
    account: SectionCache<(), Arc<Vec<ChangeEvent>>>,
    per_service: SectionCache<String, Arc<Vec<ChangeEvent>>>,
    /// Until when change events are read per service (on the injected clock).
    fallback_until: Mutex<Option<Instant>>,
    fallback_ttl: Duration,
    clock: Arc<dyn Clock>,
    counters: Arc<Counters>,
}

impl ChangeEvents {
    pub(crate) fn new(build: &Builder<'_>, client: &pagerduty::Client) -> Self {
        let up = Upstream::new(client);
        let ttl = build.config.change_events_ttl;
        let account = build.direct(
            // One key; a capacity of 1 would let moka's admission policy drop it.
            build.store_with(super::lists::SINGLE, ttl, build.config.hard_limit(ttl)),
            &up.counters,
            AccountLoader {
                up: up.clone(),
                pages_wanted: AtomicU32::new(1),
            },
        );
        let per_service =
            build.batched(build.store(ttl), &up.counters, PerServiceLoader(up.clone()));
        ChangeEvents {
            account,
            per_service,
            fallback_until: Mutex::new(None),
            fallback_ttl: build.config.change_events_fallback_ttl,
            clock: Arc::clone(&build.clock),
            counters: up.counters,
        }
    }

    /// The counters of both caches.
    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The write counts of the cache a [`ChangeEvents::shared`] read came
    /// from (the account's list, or the service's own).
    pub(crate) fn writes(&self, account_wide: bool) -> &crate::store::Writes {
        if account_wide {
            self.account.writes()
        } else {
            self.per_service.writes()
        }
    }

    /// The change events of `service_id` (newest 300 of the account, or its own).
    #[cfg(test)]
    pub(crate) async fn of(
        &self,
        service_id: &String,
    ) -> Result<Lookup<Arc<Vec<ChangeEvent>>>, SectionError> {
        Ok(self
            .shared(service_id)
            .await?
            .map(|events| events.of_service(service_id)))
    }

    /// What [`ChangeEvents::of`] reads, before it picks the service's
    /// events out of the account's list: a card whose rendering is cached
    /// needs only the version, not the copy.
    pub(crate) async fn shared(
        &self,
        service_id: &String,
    ) -> Result<Lookup<EventsOf>, SectionError> {
        if !self.in_fallback() {
            match self.account.get(&()).await {
                Ok(lookup)
                    if lookup.error.as_ref().map(|e| e.kind)
                        != Some(SectionErrorKind::Forbidden) =>
                {
                    return Ok(lookup.map(|events| EventsOf {
                        events,
                        account_wide: true,
                    }));
                }
                Ok(_) => self.start_fallback(),
                Err(error) if error.kind == SectionErrorKind::Forbidden => self.start_fallback(),
                Err(error) => return Err(error),
            }
        }
        let mut lookup = self.per_service.get(service_id).await?;
        // Reused (`crate::warm`) only while the fallback lasts: after it a
        // read goes back to the account's list.
        let until = *self
            .fallback_until
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        lookup.seal.keep_until = match (lookup.seal.keep_until, until) {
            (Some(keep), Some(until)) => Some(keep.min(until)),
            _ => None,
        };
        Ok(lookup.map(|events| EventsOf {
            events,
            account_wide: false,
        }))
    }

    /// Drops the account-wide list (every service's change events) and the
    /// service's own.
    /// (`everywhere`: the shared copies too; else this process's only.)
    pub(crate) async fn invalidate(&self, service_id: &String, everywhere: bool) {
        if everywhere {
            self.account.invalidate(&()).await;
            self.per_service.invalidate(service_id).await;
        } else {
            self.account.invalidate_local(&()).await;
            self.per_service.invalidate_local(service_id).await;
        }
    }

    /// Shares both caches through `cache` (see `SectionCache::share`).
    pub(crate) fn share(
        &self,
        cache: Arc<dyn crate::store::shared::SharedCache>,
        account: &str,
        hard_limit: Duration,
    ) {
        self.account.share(
            Arc::clone(&cache),
            account,
            "change_events",
            |()| "all".to_owned(),
            hard_limit,
        );
        self.per_service.share(
            cache,
            account,
            "service_change_events",
            String::clone,
            hard_limit,
        );
    }

    fn in_fallback(&self) -> bool {
        let until = self
            .fallback_until
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        until.is_some_and(|until| self.clock.now() < until)
    }

    fn start_fallback(&self) {
        tracing::info!(
            "GET /change_events is forbidden (no change_events.read): reading change events per service"
        );
        *self
            .fallback_until
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(later(self.clock.now(), self.fallback_ttl));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::config::CardsConfig;
    use crate::loaders::testing::{client, sim};
    use crate::tasks::Tasks;

    fn builder<'a>(config: &'a CardsConfig, clock: &Arc<ManualClock>) -> Builder<'a> {
        Builder {
            config,
            clock: Arc::clone(clock) as Arc<dyn Clock>,
            tasks: Tasks::default(),
        }
    }

    #[tokio::test]
    async fn the_account_list_serves_every_service_with_one_call() {
        let sim = sim(20).await;
        let account = sim.account();
        let config = CardsConfig::default();
        let clock = Arc::new(ManualClock::new());
        let events = ChangeEvents::new(&builder(&config, &clock), &client(&sim));
        for service in &account.services {
            let mine = events.of(&service.id).await.unwrap();
            assert!(
                mine.value
                    .iter()
                    .all(|e| e.services.iter().any(|s| s.id == service.id))
            );
        }
        assert_eq!(sim.stats().count("GET", "/change_events"), 1);
        assert_eq!(events.counters().snapshot().upstream_calls, 1);
    }

    #[tokio::test]
    async fn a_forbidden_account_list_switches_to_per_service_reads_until_the_clock_says() {
        use wiremock::matchers::{method, path, path_regex};
        use wiremock::{Mock, MockServer, ResponseTemplate};
        let pd = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/change_events"))
            .respond_with(ResponseTemplate::new(403).set_body_json(
                serde_json::json!({"error": {"message": "Forbidden", "code": 2010}}),
            ))
            .mount(&pd)
            .await;
        Mock::given(method("GET"))
            .and(path_regex(r"^/services/[^/]+/change_events$"))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                serde_json::json!({"change_events": [], "limit": 25, "offset": 0, "more": false}),
            ))
            .mount(&pd)
            .await;
        let client = pagerduty::Client::builder(pagerduty::Credentials::ApiToken(
            pagerduty::SecretString::from("t".to_owned()),
        ))
        .api_base_url(pd.uri())
        .retry_policy(pagerduty::RetryPolicy::none())
        .build()
        .unwrap();
        // Fresher than the fallback is long (see the reuse check below).
        let config = CardsConfig {
            change_events_ttl: Duration::from_secs(900),
            ..CardsConfig::default()
        };
        let clock = Arc::new(ManualClock::new());
        let events = ChangeEvents::new(&builder(&config, &clock), &client);
        let calls = || async {
            let requests = pd.received_requests().await.unwrap_or_default();
            let account = requests
                .iter()
                .filter(|r| r.url.path() == "/change_events")
                .count();
            (account, requests.len() - account)
        };
        for id in ["PA", "PB"] {
            assert!(events.of(&id.to_owned()).await.unwrap().value.is_empty());
        }
        assert_eq!(calls().await, (1, 2), "asked once, then per service");
        // A per-service read is reused (`crate::warm`) no longer than the
        // fallback lasts, even when its own freshness lasts longer.
        let read = events.shared(&"PA".to_owned()).await.unwrap();
        assert!(!read.value.account_wide);
        let fallback_ends = clock.now() + config.change_events_fallback_ttl;
        assert!(
            read.seal
                .keep_until
                .is_some_and(|until| until <= fallback_ends)
        );
        assert!(read.seal.fresh_until > Some(fallback_ends));
        // The fallback period ends on the injected clock: the account-wide
        // call is tried again.
        clock.advance(config.change_events_fallback_ttl + Duration::from_secs(1));
        events.of(&"PC".to_owned()).await.unwrap();
        assert_eq!(calls().await, (2, 3));
        assert_eq!(events.counters().snapshot().upstream_calls, 5);
    }
}
