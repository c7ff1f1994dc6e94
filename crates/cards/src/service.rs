//! [`CardService`]: the caches, their loaders, and card assembly.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use pagerduty::{
    ChangeEvent, Client, Incident, IncidentMetricsQuery, IncidentStatus, ListChangeEvents,
    ListIncidents, ListOncalls, ListServices, Oncall, Page, Service, ServiceIncidentMetrics,
    ServiceInclude, ServiceStandards,
};

use crate::batcher::{BatchLoadFn, BatchResults, BatchSettings, Batcher, Early, MissingFn};
use crate::cache::{LoadFn, Lookup, SectionCache, Store};
use crate::clock::{Clock, SystemClock};
use crate::config::CardsConfig;
use crate::error::{CardError, SectionError, SectionErrorKind};
use crate::model::{
    Cached, CardOptions, EscalationPolicySection, OncallSection, ResolvedKey, RoutingKeyInfo,
    Section, SectionResult, ServiceCard, ServiceRef,
};
use crate::sections;
use crate::stats::{CardStats, Counters};

/// Every service read asks for these, so one cached object serves the
/// service, escalation policy and routing-key lookups.
const SERVICE_INCLUDES: [ServiceInclude; 3] = [
    ServiceInclude::EscalationPolicies,
    ServiceInclude::Integrations,
    ServiceInclude::Teams,
];
/// PagerDuty's largest page.
const PAGE_LIMIT: u32 = 100;
/// PagerDuty refuses `offset + limit > 10 000`.
const MAX_OFFSET: u32 = 10_000 - PAGE_LIMIT;
/// Pages of the account-wide change events list read per refresh (newest 300 events).
const CHANGE_EVENT_PAGES: u32 = 3;
/// Pages of open incidents read per batch (1 000 incidents): during an alert
/// storm a batch stops there and its services' incident sections say
/// `truncated` (their counts are then lower bounds).
const INCIDENT_PAGES: u32 = 10;
/// Change events kept per service in the per-service fallback (the largest card limit).
const SERVICE_CHANGE_EVENTS: u32 = crate::model::MAX_ITEM_LIMIT as u32;
/// The Backstage vendor id; its integration is preferred for triggers.
const BACKSTAGE_VENDOR: &str = "PRO19CT";
/// Metrics cover the last 30 days.
const METRICS_DAYS: i64 = 30;

/// Metrics rows with the period they cover.
#[derive(Debug, Clone)]
struct MetricsValue {
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    rows: Vec<ServiceIncidentMetrics>,
}

/// A service's open incidents, and whether the batch that read them was cut
/// short by [`INCIDENT_PAGES`].
#[derive(Debug, Clone, Default)]
struct OpenIncidents {
    items: Vec<Incident>,
    truncated: bool,
}

/// Cache key of an integration key: `Debug` never prints the key.
#[derive(Clone, PartialEq, Eq, Hash)]
struct KeyId(String);

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyId(<redacted>)")
    }
}

/// Serves service cards, and the raw PagerDuty objects behind them, from
/// per-section caches fed by coalesced, batched PagerDuty calls.
///
/// Cheap to clone (an `Arc` inside); build one per PagerDuty account. Needs a
/// tokio runtime (batch flushes and background refreshes are spawned tasks).
#[derive(Clone)]
pub struct CardService {
    inner: Arc<Inner>,
}

impl fmt::Debug for CardService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardService")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

struct Inner {
    client: Client,
    config: CardsConfig,
    services: SectionCache<String, Arc<Service>>,
    oncalls: SectionCache<String, Arc<Vec<Oncall>>>,
    incidents: SectionCache<String, Arc<OpenIncidents>>,
    account_change_events: SectionCache<(), Arc<Vec<ChangeEvent>>>,
    service_change_events: SectionCache<String, Arc<Vec<ChangeEvent>>>,
    standards: SectionCache<String, Arc<ServiceStandards>>,
    metrics: SectionCache<String, Arc<MetricsValue>>,
    keys: SectionCache<KeyId, Option<ResolvedKey>>,
    /// Service ids PagerDuty answered 404 for, kept for
    /// `integration_key_miss_ttl`: a portal asking again and again for a
    /// deleted or mistyped service costs one call per period, not one per view.
    /// On the injected clock, like every other freshness decision.
    missing_services: Store<String, ()>,
    /// Until when change events are read per service (the token lacks `change_events.read`).
    change_events_fallback_until: Mutex<Option<Instant>>,
    change_events_counters: Arc<Counters>,
}

/// Wraps a batch loader into the miss loader (short window) and the refresh
/// loader (long window) of a section cache.
fn batched<K, V>(
    config: &CardsConfig,
    counters: &Arc<Counters>,
    store: Store<K, V>,
    load: BatchLoadFn<K, V>,
    missing: MissingFn<K, V>,
) -> SectionCache<K, V>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    let settings = |window| BatchSettings {
        window,
        max_size: config.batch_max_size.clamp(1, 100),
        min_interval: config.min_batch_interval,
        timeout: config.load_timeout,
    };
    let fg = Batcher::new(
        settings(config.batch_window),
        Arc::clone(counters),
        Arc::clone(&load),
        Arc::clone(&missing),
    );
    let bg = Batcher::new(
        settings(config.refresh_batch_window),
        Arc::clone(counters),
        load,
        missing,
    );
    SectionCache::new(store, via(fg), via(bg), Arc::clone(counters))
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

/// Reads every page of a list call (at most `max_pages`), counting each request.
async fn all_pages<T, F, Fut>(
    counters: &Counters,
    max_pages: u32,
    mut fetch: F,
) -> Result<(Vec<T>, bool), pagerduty::Error>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = pagerduty::Result<Page<T>>>,
{
    let mut items = Vec::new();
    let mut offset = 0;
    for _ in 0..max_pages {
        Counters::bump(&counters.upstream_calls);
        let page = fetch(offset).await?;
        let next = page.next_offset();
        items.extend(page.items);
        match next {
            Some(next) if next <= MAX_OFFSET => offset = next,
            Some(_) => return Ok((items, true)),
            None => return Ok((items, false)),
        }
    }
    Ok((items, true))
}

/// The account's newest change events (at most [`CHANGE_EVENT_PAGES`] pages).
///
/// The pages the last read found events on are read at once (one round
/// trip, not one per page); when the last of them says there are more (the
/// first read, or the account grew), the remaining pages are read at once
/// after them: at most two round trips.
async fn account_change_events(
    client: &Client,
    counters: &Counters,
    pages_wanted: &AtomicU32,
) -> Result<Vec<ChangeEvent>, pagerduty::Error> {
    let page = |offset: u32| {
        Counters::bump(&counters.upstream_calls);
        let q = ListChangeEvents {
            limit: Some(PAGE_LIMIT),
            offset: Some(offset),
            ..Default::default()
        };
        async move { client.list_change_events(&q).await }
    };
    let at_once = pages_wanted
        .load(Ordering::Relaxed)
        .clamp(1, CHANGE_EVENT_PAGES);
    let mut pages =
        futures::future::try_join_all((0..at_once).map(|n| page(n * PAGE_LIMIT))).await?;
    let read = pages.len() as u32;
    if read < CHANGE_EVENT_PAGES && pages.last().and_then(Page::next_offset).is_some() {
        // More than last time: the remaining pages at once.
        let rest =
            futures::future::try_join_all((read..CHANGE_EVENT_PAGES).map(|n| page(n * PAGE_LIMIT)))
                .await?;
        pages.extend(rest);
    }
    let used = pages.iter().filter(|p| !p.items.is_empty()).count() as u32;
    pages_wanted.store(used.max(1), Ordering::Relaxed);
    // Pages read at once may overlap when events arrive meanwhile.
    let mut seen = std::collections::HashSet::new();
    Ok(pages
        .into_iter()
        .flat_map(|p| p.items)
        .filter(|e| e.id.as_ref().is_none_or(|id| seen.insert(id.clone())))
        .collect())
}

/// The service that owns an integration key: `GET /services?query=KEY`,
/// trusting only an exact `integrations[].integration_key` match, page after
/// page (each page counted). The key is never logged.
async fn find_by_integration_key(
    client: &Client,
    counters: &Counters,
    key: &str,
) -> Result<Option<Service>, pagerduty::Error> {
    let mut offset = 0;
    loop {
        Counters::bump(&counters.upstream_calls);
        let page = client
            .list_services(&ListServices {
                query: Some(key.to_owned()),
                include: vec![ServiceInclude::Integrations],
                limit: Some(PAGE_LIMIT),
                offset: Some(offset),
                ..Default::default()
            })
            .await?;
        let next = page.next_offset();
        let found = page.items.into_iter().find(|s| {
            s.integrations
                .iter()
                .any(|i| i.integration_key.as_deref() == Some(key))
        });
        if found.is_some() {
            return Ok(found);
        }
        match next {
            Some(next) if next <= MAX_OFFSET => offset = next,
            _ => return Ok(None),
        }
    }
}

/// The fallback of an integration key lookup when `GET /services?query=KEY`
/// finds no exact match (PagerDuty documents `query` as a name filter): the
/// fresh services already cached (read with their integrations), then an
/// index of every integration key built from ONE services listing
/// (`GET /services?include[]=…`, every page up to PagerDuty's 10 000 offset
/// cap, each page counted). The index is shared by every key and kept for
/// `integration_key_miss_ttl`: however many unknown keys are asked for, the
/// account is listed at most once per period, and lookups that miss while a
/// listing runs wait for it instead of starting another. The listing also
/// warms the services cache. Keys are never logged.
struct KeyScan {
    client: Client,
    counters: Arc<Counters>,
    services: Store<String, Arc<Service>>,
    clock: Arc<dyn Clock>,
    ttl: Duration,
    last: tokio::sync::Mutex<Option<KeyIndex>>,
}

/// The outcome of one listing: integration key → what it belongs to.
struct KeyIndex {
    /// When the listing ended (on the injected clock).
    finished: Instant,
    keys: Result<Arc<HashMap<String, ResolvedKey>>, SectionError>,
}

/// Pages of a key listing read at once.
const KEY_SCAN_CONCURRENCY: usize = 10;

impl KeyScan {
    async fn find(&self, key: &str) -> Result<Option<ResolvedKey>, SectionError> {
        if let Some(found) = self.services.find_fresh(|s| resolved_key(s, key)) {
            return Ok(Some(found));
        }
        let asked = self.clock.now();
        let mut last = self.last.lock().await;
        let reusable = last.as_ref().is_some_and(|index| {
            // A listing that ended after this lookup began covers it (even
            // when it failed: its waiters share its error); a successful one
            // serves every lookup for `ttl`.
            index.finished >= asked
                || (index.keys.is_ok()
                    && self.clock.now().saturating_duration_since(index.finished) < self.ttl)
        });
        if !reusable {
            let keys = self.list().await.map(Arc::new).map_err(SectionError::from);
            *last = Some(KeyIndex {
                finished: self.clock.now(),
                keys,
            });
        }
        match last.as_ref().map(|index| &index.keys) {
            Some(Ok(keys)) => Ok(keys.get(key).cloned()),
            Some(Err(error)) => Err(error.clone()),
            None => Ok(None),
        }
    }

    /// Lists every service (up to the offset cap), storing each one and
    /// indexing its integration keys. The first page asks for PagerDuty's
    /// `total`; with it the other pages are read [`KEY_SCAN_CONCURRENCY`] at
    /// a time, without it one after another.
    async fn list(&self) -> Result<HashMap<String, ResolvedKey>, pagerduty::Error> {
        let query = |offset: u32, total: bool| ListServices {
            include: SERVICE_INCLUDES.to_vec(),
            limit: Some(PAGE_LIMIT),
            offset: Some(offset),
            total,
            ..Default::default()
        };
        let mut index = HashMap::new();
        Counters::bump(&self.counters.upstream_calls);
        let first = self.client.list_services(&query(0, true)).await?;
        let (next, total) = (first.next_offset(), first.total);
        self.add(&mut index, first.items).await;
        let Some(mut offset) = next else {
            return Ok(index);
        };
        if let Some(total) = total {
            let offsets: Vec<u32> = (1..=MAX_OFFSET / PAGE_LIMIT)
                .map(|n| n * PAGE_LIMIT)
                .take_while(|o| u64::from(*o) < total)
                .collect();
            let mut pages = futures::StreamExt::buffer_unordered(
                futures::stream::iter(offsets.into_iter().map(|offset| {
                    Counters::bump(&self.counters.upstream_calls);
                    let client = self.client.clone();
                    let q = query(offset, false);
                    async move { client.list_services(&q).await }
                })),
                KEY_SCAN_CONCURRENCY,
            );
            while let Some(page) = futures::StreamExt::next(&mut pages).await {
                self.add(&mut index, page?.items).await;
            }
            return Ok(index);
        }
        while offset <= MAX_OFFSET {
            Counters::bump(&self.counters.upstream_calls);
            let page = self.client.list_services(&query(offset, false)).await?;
            let next = page.next_offset();
            self.add(&mut index, page.items).await;
            match next {
                Some(next) => offset = next,
                None => break,
            }
        }
        Ok(index)
    }

    /// Indexes the integration keys of `services` and stores the services.
    async fn add(&self, index: &mut HashMap<String, ResolvedKey>, services: Vec<Service>) {
        for service in services {
            for integration in &service.integrations {
                if let Some(key) = &integration.integration_key {
                    index.insert(key.clone(), resolved(&service, integration));
                }
            }
            self.services
                .insert_fresh(service.id.clone(), Arc::new(service))
                .await;
        }
    }
}

/// Splits list results per key; keys without items get an empty list.
fn group_by<T: Clone, F>(
    keys: &[String],
    items: Vec<T>,
    owners_of: F,
) -> BatchResults<String, Arc<Vec<T>>>
where
    F: Fn(&T) -> Vec<String>,
{
    let mut groups: HashMap<String, Vec<T>> =
        keys.iter().map(|k| (k.clone(), Vec::new())).collect();
    for item in items {
        for owner in owners_of(&item) {
            if let Some(group) = groups.get_mut(&owner) {
                group.push(item.clone());
            }
        }
    }
    groups
        .into_iter()
        .map(|(k, v)| (k, Ok(Arc::new(v))))
        .collect()
}

impl CardService {
    /// Builds the caches and loaders (freshness on the system clock). `client` should carry the account's
    /// token bucket (`ClientBuilder::rate_limit_per_minute`): cards relies on
    /// it to queue bursts instead of earning 429s. Check `config` with
    /// [`CardsConfig::validate`] first (at startup); out-of-range batch sizes
    /// are clamped here rather than panicking.
    pub fn new(client: Client, config: CardsConfig) -> CardService {
        Self::with_clock(client, config, Arc::new(SystemClock))
    }

    /// Like [`CardService::new`], with the clock that decides freshness
    /// (a [`ManualClock`](crate::clock::ManualClock) lets tests and
    /// simulations expire sections at will).
    pub fn with_clock(client: Client, config: CardsConfig, clock: Arc<dyn Clock>) -> CardService {
        let hard = |ttl| config.hard_limit(ttl);
        let service_ttl = config.service_ttl.min(config.escalation_policy_ttl);

        // Services: batched single reads, or the paged list for many at once.
        let service_counters = Arc::new(Counters::default());
        let service_store = Store::with_ttl(
            config.max_entries,
            service_ttl,
            hard(service_ttl),
            Arc::clone(&clock),
        );
        let key_services = service_store.clone();
        let services = {
            let loader = ServiceLoader {
                client: client.clone(),
                store: service_store.clone(),
                counters: Arc::clone(&service_counters),
                threshold: config.service_list_threshold,
                max_pages: config.service_list_max_pages,
                singles_since_list: Arc::new(AtomicUsize::new(0)),
                listing: Arc::new(Mutex::new(None)),
                list_disabled_until: Arc::new(Mutex::new(None)),
                list_retry: config.max_stale,
                single_wait: config.section_timeout / 2,
            };
            let load: BatchLoadFn<String, Arc<Service>> = Arc::new(move |keys, early| {
                let loader = loader.clone();
                Box::pin(async move { Ok(loader.load(keys, early).await) })
            });
            let missing: MissingFn<String, Arc<Service>> =
                Arc::new(|id| Err(SectionError::not_found(format!("service {id} not found"))));
            batched(&config, &service_counters, service_store, load, missing)
        };

        // On-calls: by escalation policy ids.
        let oncall_counters = Arc::new(Counters::default());
        let oncalls = {
            let client = client.clone();
            let counters = Arc::clone(&oncall_counters);
            let load: BatchLoadFn<String, Arc<Vec<Oncall>>> =
                Arc::new(move |keys: Vec<String>, _early| {
                    let client = client.clone();
                    let counters = Arc::clone(&counters);
                    Box::pin(async move {
                        let (items, _) = all_pages(&counters, u32::MAX, |offset| {
                            let q = ListOncalls {
                                escalation_policy_ids: keys.clone(),
                                include_users: true,
                                earliest: true,
                                time_zone: Some("UTC".into()),
                                limit: Some(PAGE_LIMIT),
                                offset: Some(offset),
                                ..Default::default()
                            };
                            let client = client.clone();
                            async move { client.list_oncalls(&q).await }
                        })
                        .await
                        .map_err(SectionError::from)?;
                        Ok(group_by(&keys, items, |o: &Oncall| {
                            vec![o.escalation_policy.id.clone()]
                        }))
                    })
                });
            batched(
                &config,
                &oncall_counters,
                Store::with_ttl(
                    config.max_entries,
                    config.oncall_ttl,
                    hard(config.oncall_ttl),
                    Arc::clone(&clock),
                ),
                load,
                Arc::new(|_| Ok(Arc::new(Vec::new()))),
            )
        };

        // Incidents: open ones (any age) by service ids.
        let incident_counters = Arc::new(Counters::default());
        let incidents = {
            let client = client.clone();
            let counters = Arc::clone(&incident_counters);
            let load: BatchLoadFn<String, Arc<OpenIncidents>> =
                Arc::new(move |keys: Vec<String>, _early| {
                    let client = client.clone();
                    let counters = Arc::clone(&counters);
                    Box::pin(async move {
                        let (items, truncated) = all_pages(&counters, INCIDENT_PAGES, |offset| {
                            {
                                let q = ListIncidents {
                                    service_ids: keys.clone(),
                                    statuses: vec![
                                        IncidentStatus::Triggered,
                                        IncidentStatus::Acknowledged,
                                    ],
                                    // Open incidents older than PagerDuty's default 30-day window too.
                                    date_range_all: true,
                                    sort_by: Some("created_at:desc".into()),
                                    limit: Some(PAGE_LIMIT),
                                    offset: Some(offset),
                                    ..Default::default()
                                };
                                let client = client.clone();
                                async move { client.list_incidents(&q).await }
                            }
                        })
                        .await
                        .map_err(SectionError::from)?;
                        let groups = group_by(&keys, items, |i: &Incident| {
                            i.service.iter().map(|s| s.id.clone()).collect()
                        });
                        Ok(groups
                            .into_iter()
                            .map(|(k, v)| {
                                let v = v.map(|items| {
                                    Arc::new(OpenIncidents {
                                        items: Arc::unwrap_or_clone(items),
                                        truncated,
                                    })
                                });
                                (k, v)
                            })
                            .collect())
                    })
                });
            batched(
                &config,
                &incident_counters,
                Store::with_ttl(
                    config.max_entries,
                    config.incidents_ttl,
                    hard(config.incidents_ttl),
                    Arc::clone(&clock),
                ),
                load,
                Arc::new(|_| Ok(Arc::new(OpenIncidents::default()))),
            )
        };

        // Change events: one account-wide list; per service when that is forbidden.
        let change_counters = Arc::new(Counters::default());
        let account_change_events = {
            let client = client.clone();
            let counters = Arc::clone(&change_counters);
            // Pages read at once: as many as the last read found events on.
            let pages_wanted = Arc::new(AtomicU32::new(1));
            let load: LoadFn<(), Arc<Vec<ChangeEvent>>> = Arc::new(move |()| {
                let client = client.clone();
                let counters = Arc::clone(&counters);
                let pages_wanted = Arc::clone(&pages_wanted);
                Box::pin(async move {
                    let items = account_change_events(&client, &counters, &pages_wanted)
                        .await
                        .map_err(SectionError::from)?;
                    Ok(Arc::new(items))
                })
            });
            SectionCache::new(
                // One key; a capacity of 1 would let moka's admission policy drop it.
                Store::with_ttl(
                    16,
                    config.change_events_ttl,
                    hard(config.change_events_ttl),
                    Arc::clone(&clock),
                ),
                Arc::clone(&load),
                load,
                Arc::clone(&change_counters),
            )
        };
        let service_change_events = {
            let client = client.clone();
            let counters = Arc::clone(&change_counters);
            let load: BatchLoadFn<String, Arc<Vec<ChangeEvent>>> =
                Arc::new(move |keys: Vec<String>, _early| {
                    let client = client.clone();
                    let counters = Arc::clone(&counters);
                    Box::pin(async move {
                        // PagerDuty has no id-list filter here: one call per service, in parallel.
                        let calls = keys.iter().map(|id| {
                            Counters::bump(&counters.upstream_calls);
                            let q = ListChangeEvents {
                                limit: Some(SERVICE_CHANGE_EVENTS),
                                ..Default::default()
                            };
                            let client = client.clone();
                            async move {
                                let result = client.list_service_change_events(id, &q).await;
                                (
                                    id.clone(),
                                    result
                                        .map(|page| Arc::new(page.items))
                                        .map_err(SectionError::from),
                                )
                            }
                        });
                        Ok(futures::future::join_all(calls).await.into_iter().collect())
                    })
                });
            batched(
                &config,
                &change_counters,
                Store::with_ttl(
                    config.max_entries,
                    config.change_events_ttl,
                    hard(config.change_events_ttl),
                    Arc::clone(&clock),
                ),
                load,
                Arc::new(|_| Ok(Arc::new(Vec::new()))),
            )
        };

        // Standards: the many-services call.
        let standards_counters = Arc::new(Counters::default());
        let standards = {
            let client = client.clone();
            let counters = Arc::clone(&standards_counters);
            let load: BatchLoadFn<String, Arc<ServiceStandards>> =
                Arc::new(move |keys: Vec<String>, _early| {
                    let client = client.clone();
                    let counters = Arc::clone(&counters);
                    Box::pin(async move {
                        Counters::bump(&counters.upstream_calls);
                        let items = client
                            .services_standards(&keys)
                            .await
                            .map_err(SectionError::from)?;
                        Ok(items
                            .into_iter()
                            .map(|s| (s.resource_id.clone(), Ok(Arc::new(s))))
                            .collect())
                    })
                });
            batched(
                &config,
                &standards_counters,
                Store::with_ttl(
                    config.max_entries,
                    config.standards_ttl,
                    hard(config.standards_ttl),
                    Arc::clone(&clock),
                ),
                load,
                Arc::new(|id| {
                    Err(SectionError::not_found(format!(
                        "no standards scores for service {id}"
                    )))
                }),
            )
        };

        // Metrics: one analytics call for many services.
        let metrics_counters = Arc::new(Counters::default());
        let metrics = {
            let client = client.clone();
            let counters = Arc::clone(&metrics_counters);
            let load: BatchLoadFn<String, Arc<MetricsValue>> =
                Arc::new(move |keys: Vec<String>, _early| {
                    let client = client.clone();
                    let counters = Arc::clone(&counters);
                    Box::pin(async move {
                        let until = Utc::now();
                        let since = until - chrono::Duration::days(METRICS_DAYS);
                        Counters::bump(&counters.upstream_calls);
                        let rows = client
                            .incident_metrics_by_service(&IncidentMetricsQuery {
                                service_ids: keys.clone(),
                                created_at_start: since,
                                created_at_end: until,
                                aggregate_unit: None,
                                time_zone: Some("Etc/UTC".into()),
                            })
                            .await
                            .map_err(SectionError::from)?;
                        let mut per: HashMap<String, Vec<ServiceIncidentMetrics>> =
                            keys.iter().map(|k| (k.clone(), Vec::new())).collect();
                        for row in rows {
                            if let Some(group) = per.get_mut(&row.service_id) {
                                group.push(row);
                            }
                        }
                        Ok(per
                            .into_iter()
                            .map(|(k, rows)| (k, Ok(Arc::new(MetricsValue { since, until, rows }))))
                            .collect())
                    })
                });
            batched(
                &config,
                &metrics_counters,
                Store::with_ttl(
                    config.max_entries,
                    config.metrics_ttl,
                    hard(config.metrics_ttl),
                    Arc::clone(&clock),
                ),
                load,
                Arc::new(|id| {
                    Err(SectionError::not_found(format!(
                        "no metrics for service {id}"
                    )))
                }),
            )
        };

        // Integration keys: long-lived mapping; a miss is a value with a short life.
        let key_counters = Arc::new(Counters::default());
        let keys = {
            let found_ttl = config.integration_key_ttl;
            let found_hard = hard(found_ttl);
            let miss_ttl = config.integration_key_miss_ttl;
            let store: Store<KeyId, Option<ResolvedKey>> = Store::new(
                config.max_entries,
                Arc::new(move |v: &Option<ResolvedKey>| match v {
                    Some(_) => (found_ttl, found_hard),
                    None => (miss_ttl, miss_ttl),
                }),
                Arc::clone(&clock),
            );
            let client = client.clone();
            let counters = Arc::clone(&key_counters);
            let scan = Arc::new(KeyScan {
                client: client.clone(),
                counters: Arc::clone(&key_counters),
                services: key_services,
                clock: Arc::clone(&clock),
                ttl: miss_ttl,
                last: tokio::sync::Mutex::new(None),
            });
            let load: LoadFn<KeyId, Option<ResolvedKey>> = Arc::new(move |key: KeyId| {
                let client = client.clone();
                let counters = Arc::clone(&counters);
                let scan = Arc::clone(&scan);
                Box::pin(async move {
                    let service = find_by_integration_key(&client, &counters, &key.0)
                        .await
                        .map_err(SectionError::from)?;
                    match service.and_then(|s| resolved_key(&s, &key.0)) {
                        Some(found) => Ok(Some(found)),
                        None => scan.find(&key.0).await,
                    }
                })
            });
            SectionCache::new(store, Arc::clone(&load), load, Arc::clone(&key_counters))
        };

        let missing_services = Store::with_ttl(
            config.max_entries,
            config.integration_key_miss_ttl,
            config.integration_key_miss_ttl,
            Arc::clone(&clock),
        );
        CardService {
            inner: Arc::new(Inner {
                client,
                config,
                services,
                oncalls,
                incidents,
                account_change_events,
                service_change_events,
                standards,
                metrics,
                keys,
                missing_services,
                change_events_fallback_until: Mutex::new(None),
                change_events_counters: change_counters,
            }),
        }
    }

    /// The PagerDuty client this service reads with.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// The settings.
    pub fn config(&self) -> &CardsConfig {
        &self.inner.config
    }

    /// Counters per cache (monotonic since start).
    pub fn stats(&self) -> CardStats {
        let i = &self.inner;
        CardStats {
            service: i.services.counters().snapshot(),
            oncall: i.oncalls.counters().snapshot(),
            incidents: i.incidents.counters().snapshot(),
            change_events: i.change_events_counters.snapshot(),
            standards: i.standards.counters().snapshot(),
            metrics: i.metrics.counters().snapshot(),
            integration_keys: i.keys.counters().snapshot(),
        }
    }

    /// Builds the card of one service.
    ///
    /// Sections are fetched in parallel; only the service section can fail
    /// the whole card (not found, or no data and no stale copy). The on-call
    /// section needs the escalation policy id from the service, so a cold
    /// card costs the service read plus the on-call read on that path; every
    /// other section runs alongside.
    pub async fn card(
        &self,
        service: ServiceRef,
        options: &CardOptions,
    ) -> Result<ServiceCard, CardError> {
        let id = match service {
            ServiceRef::Id(id) => id,
            ServiceRef::IntegrationKey(key) => {
                self.resolve_integration_key(key.expose()).await?.service_id
            }
        };
        self.card_by_id(&id, options, false).await
    }

    /// Builds many cards at once (same order as `service_ids`); their misses share batches.
    pub async fn cards(
        &self,
        service_ids: &[String],
        options: &CardOptions,
    ) -> Vec<Result<ServiceCard, CardError>> {
        futures::future::join_all(
            service_ids
                .iter()
                .map(|id| self.card_by_id(id, options, true)),
        )
        .await
    }

    /// `bound_service`: whether the service section's wait also ends at
    /// `section_timeout` (failing the card with [`CardError::Timeout`]). A
    /// lone card leaves that to its caller: without the service there is
    /// nothing to answer anyway.
    async fn card_by_id(
        &self,
        id: &str,
        options: &CardOptions,
        bound_service: bool,
    ) -> Result<ServiceCard, CardError> {
        if id.is_empty() {
            return Err(CardError::not_found("service (empty id)"));
        }
        let key = id.to_owned();
        let i = &self.inner;
        if i.missing_services.peek_fresh(&key).await.is_some() {
            Counters::bump(&i.services.counters().hits);
            return Err(CardError::not_found(format!("service {id}")));
        }
        // Every section wait ends at the card's deadline; a section still
        // loading then reports a timeout (its load goes on and fills the cache).
        // (No deadline if the setting is too large for the clock.)
        let deadline = tokio::time::Instant::now().checked_add(i.config.section_timeout);
        // One service lookup per card, shared with the on-call path (which
        // needs the escalation policy id), so counters see one lookup.
        let service_fut = futures::FutureExt::shared(Box::pin(within(
            deadline.filter(|_| bound_service),
            "service",
            self.service_lookup(&key),
        )));
        let oncall_fut = self.oncall_section(service_fut.clone(), deadline);
        let incidents_fut = async {
            section(
                within(deadline, "incidents", i.incidents.get(&key)).await,
                |open| {
                    sections::incidents_section(
                        &open.items,
                        open.truncated,
                        options.incident_limit(),
                    )
                },
            )
        };
        let changes_fut = async {
            section(
                within(deadline, "change events", self.change_events_of(&key)).await,
                |events| sections::change_events_section(events, options.change_event_limit()),
            )
        };
        let standards_fut = async {
            if options.include_standards {
                Some(section(
                    within(deadline, "standards", i.standards.get(&key)).await,
                    |s| sections::standards_section(s),
                ))
            } else {
                None
            }
        };
        let metrics_fut = async {
            if options.include_metrics {
                Some(section(
                    within(deadline, "metrics", i.metrics.get(&key)).await,
                    |m| sections::metrics_section(&m.rows, m.since, m.until),
                ))
            } else {
                None
            }
        };
        let (service, oncall, incidents, change_events, standards, metrics) = tokio::join!(
            service_fut,
            oncall_fut,
            incidents_fut,
            changes_fut,
            standards_fut,
            metrics_fut
        );
        let service = service.map_err(|e| CardError::from_section(&e, format!("service {id}")))?;
        let escalation_policy = escalation_policy_result(&service);
        Ok(ServiceCard {
            service: SectionResult::ok(
                sections::service_section(&service.value),
                service.fetched_at,
                service.stale,
                service.error.clone(),
                service.max_age,
            ),
            escalation_policy,
            oncall,
            incidents,
            change_events,
            standards,
            metrics,
            generated_at: Utc::now(),
        })
    }

    /// The service section; a 404 is remembered briefly.
    async fn service_lookup(&self, id: &String) -> Result<Lookup<Arc<Service>>, SectionError> {
        let result = self.inner.services.get(id).await;
        if let Err(error) = &result
            && error.kind == SectionErrorKind::NotFound
        {
            self.inner
                .missing_services
                .insert_fresh(id.clone(), ())
                .await;
        }
        result
    }

    async fn oncall_section(
        &self,
        service: impl Future<Output = Result<Lookup<Arc<Service>>, SectionError>>,
        deadline: Option<tokio::time::Instant>,
    ) -> SectionResult<OncallSection> {
        let service = match service.await {
            Ok(service) => service,
            Err(error) => return SectionResult::failed(error),
        };
        let Some(policy) = service.value.escalation_policy.as_ref() else {
            return SectionResult::failed(SectionError::not_found(
                "the service has no escalation policy",
            ));
        };
        let levels = policy.escalation_rules.len();
        section(
            within(deadline, "on-call", self.inner.oncalls.get(&policy.id)).await,
            |oncalls| sections::oncall_section(&policy.id, levels, oncalls),
        )
    }

    /// The service's change events: from the account-wide list, or per service
    /// while that list is forbidden.
    async fn change_events_of(
        &self,
        service_id: &String,
    ) -> Result<Lookup<Arc<Vec<ChangeEvent>>>, SectionError> {
        let i = &self.inner;
        let fallback = {
            let until = i
                .change_events_fallback_until
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            until.is_some_and(|until| Instant::now() < until)
        };
        if !fallback {
            match i.account_change_events.get(&()).await {
                Ok(lookup)
                    if lookup.error.as_ref().map(|e| e.kind)
                        != Some(SectionErrorKind::Forbidden) =>
                {
                    let mine: Vec<ChangeEvent> = lookup
                        .value
                        .iter()
                        .filter(|e| e.services.iter().any(|s| &s.id == service_id))
                        .cloned()
                        .collect();
                    return Ok(Lookup {
                        value: Arc::new(mine),
                        fetched_at: lookup.fetched_at,
                        stale: lookup.stale,
                        error: lookup.error,
                        max_age: lookup.max_age,
                    });
                }
                Ok(_) => self.start_change_events_fallback(),
                Err(error) if error.kind == SectionErrorKind::Forbidden => {
                    self.start_change_events_fallback()
                }
                Err(error) => return Err(error),
            }
        }
        i.service_change_events.get(service_id).await
    }

    fn start_change_events_fallback(&self) {
        let i = &self.inner;
        tracing::info!(
            "GET /change_events is forbidden (no change_events.read): reading change events per service"
        );
        *i.change_events_fallback_until
            .lock()
            .unwrap_or_else(|e| e.into_inner()) =
            Some(later(Instant::now(), i.config.change_events_fallback_ttl));
    }

    /// Maps an integration key to its service (cached long; an unknown key is
    /// cached briefly as not found).
    pub async fn resolve_integration_key(&self, key: &str) -> Result<ResolvedKey, CardError> {
        if key.trim().is_empty() {
            return Err(CardError::not_found("integration key (empty)"));
        }
        let lookup = self
            .inner
            .keys
            .get(&KeyId(key.to_owned()))
            .await
            .map_err(|e| CardError::from_section(&e, "integration key"))?;
        lookup
            .value
            .ok_or_else(|| CardError::not_found("integration key"))
    }

    /// The service's Events API v2 routing key, preferring the Backstage
    /// vendor (`PRO19CT`) integration, for the trigger proxy.
    pub async fn routing_key_for_service(
        &self,
        service_id: &str,
    ) -> Result<RoutingKeyInfo, CardError> {
        let service = self.raw_service(service_id).await?.value;
        let mut candidates: Vec<_> = service
            .integrations
            .iter()
            .filter(|i| is_events_v2(&i.kind) && i.integration_key.is_some())
            .collect();
        candidates.sort_by_key(|i| !is_backstage(i.vendor.as_ref().map(|v| v.id.as_str())));
        let integration = candidates
            .first()
            .ok_or_else(|| CardError::NoEventsIntegration {
                service_id: service_id.to_owned(),
            })?;
        let vendor_id = integration.vendor.as_ref().map(|v| v.id.clone());
        Ok(RoutingKeyInfo {
            service_id: service.id.clone(),
            integration_id: integration.id.clone(),
            integration_name: integration
                .name
                .clone()
                .or_else(|| integration.summary.clone()),
            backstage_vendor: is_backstage(vendor_id.as_deref()),
            vendor_id,
            routing_key: pagerduty::RoutingKey::new(
                integration.integration_key.clone().unwrap_or_default(),
            ),
        })
    }

    /// Drops the given sections of a service, so the next read fetches them
    /// (after a trigger, or on a webhook). Change events are cached
    /// account-wide, so dropping them refreshes every service's change events.
    pub async fn invalidate(&self, service_id: &str, sections: &[Section]) {
        let i = &self.inner;
        let key = service_id.to_owned();
        for section in sections {
            match section {
                Section::Service | Section::EscalationPolicy => {
                    i.missing_services.invalidate(&key).await;
                    i.services.invalidate(&key).await;
                }
                Section::Oncall => {
                    if let Some(service) = i.services.peek(&key).await
                        && let Some(policy) = &service.escalation_policy
                    {
                        i.oncalls.invalidate(&policy.id).await;
                    }
                }
                Section::Incidents => i.incidents.invalidate(&key).await,
                Section::ChangeEvents => {
                    i.account_change_events.invalidate(&()).await;
                    i.service_change_events.invalidate(&key).await;
                }
                Section::Standards => i.standards.invalidate(&key).await,
                Section::Metrics => i.metrics.invalidate(&key).await,
            }
        }
    }

    /// The service object (read with `include[]=escalation_policies,integrations,teams`).
    pub async fn raw_service(&self, service_id: &str) -> Result<Cached<Service>, CardError> {
        let key = service_id.to_owned();
        if self.inner.missing_services.peek_fresh(&key).await.is_some() {
            Counters::bump(&self.inner.services.counters().hits);
            return Err(CardError::not_found(format!("service {service_id}")));
        }
        let lookup = self
            .service_lookup(&key)
            .await
            .map_err(|e| CardError::from_section(&e, format!("service {service_id}")))?;
        Ok(cached(lookup, |s| Service::clone(s)))
    }

    /// The service's open incidents (triggered and acknowledged, any age), newest first.
    pub async fn raw_open_incidents(
        &self,
        service_id: &str,
    ) -> Result<Cached<Vec<Incident>>, CardError> {
        let lookup = self
            .inner
            .incidents
            .get(&service_id.to_owned())
            .await
            .map_err(|e| CardError::from_section(&e, format!("incidents of {service_id}")))?;
        Ok(cached(lookup, |v| v.items.clone()))
    }

    /// The service's recent change events, newest first.
    pub async fn raw_change_events(
        &self,
        service_id: &str,
    ) -> Result<Cached<Vec<ChangeEvent>>, CardError> {
        let lookup = self
            .change_events_of(&service_id.to_owned())
            .await
            .map_err(|e| CardError::from_section(&e, format!("change events of {service_id}")))?;
        Ok(cached(lookup, |v| {
            let mut events = Vec::clone(v);
            events.sort_by_key(|e| std::cmp::Reverse(e.timestamp));
            events
        }))
    }

    /// Who is on call now for an escalation policy (users included).
    pub async fn raw_oncalls(
        &self,
        escalation_policy_id: &str,
    ) -> Result<Cached<Vec<Oncall>>, CardError> {
        let lookup = self
            .inner
            .oncalls
            .get(&escalation_policy_id.to_owned())
            .await
            .map_err(|e| {
                CardError::from_section(&e, format!("on-calls of {escalation_policy_id}"))
            })?;
        Ok(cached(lookup, |v| Vec::clone(v)))
    }

    /// The service's standards scores.
    pub async fn raw_standards(
        &self,
        service_id: &str,
    ) -> Result<Cached<ServiceStandards>, CardError> {
        let lookup = self
            .inner
            .standards
            .get(&service_id.to_owned())
            .await
            .map_err(|e| CardError::from_section(&e, format!("standards of {service_id}")))?;
        Ok(cached(lookup, |v| ServiceStandards::clone(v)))
    }

    /// The service's incident metrics over the last 30 days (empty when it had no incidents).
    pub async fn raw_metrics(
        &self,
        service_id: &str,
    ) -> Result<Cached<Vec<ServiceIncidentMetrics>>, CardError> {
        let lookup = self
            .inner
            .metrics
            .get(&service_id.to_owned())
            .await
            .map_err(|e| CardError::from_section(&e, format!("metrics of {service_id}")))?;
        Ok(cached(lookup, |v| v.rows.clone()))
    }
}

/// `now + delay`, or a year from now when that is past what the clock can
/// hold (settings are capped by [`CardsConfig::validate`]; this never panics).
pub(crate) fn later(now: Instant, delay: Duration) -> Instant {
    now.checked_add(delay)
        .or_else(|| now.checked_add(Duration::from_secs(365 * 86_400)))
        .unwrap_or(now)
}

/// Waits for a section until `deadline`; past it the section is a `timeout` error.
async fn within<V>(
    deadline: Option<tokio::time::Instant>,
    what: &str,
    lookup: impl Future<Output = Result<Lookup<V>, SectionError>>,
) -> Result<Lookup<V>, SectionError> {
    let Some(deadline) = deadline else {
        return lookup.await;
    };
    match tokio::time::timeout_at(deadline, lookup).await {
        Ok(result) => result,
        Err(_) => Err(SectionError::timeout(format!(
            "the {what} section did not load in time; it is still loading and will be served from the cache"
        ))),
    }
}

fn cached<V, T>(lookup: Lookup<V>, f: impl FnOnce(&V) -> T) -> Cached<T> {
    Cached {
        value: f(&lookup.value),
        fetched_at: lookup.fetched_at,
        stale: lookup.stale,
    }
}

fn section<V, T>(
    lookup: Result<Lookup<V>, SectionError>,
    f: impl FnOnce(&V) -> T,
) -> SectionResult<T> {
    match lookup {
        Ok(lookup) => SectionResult::ok(
            f(&lookup.value),
            lookup.fetched_at,
            lookup.stale,
            lookup.error,
            lookup.max_age,
        ),
        Err(error) => SectionResult::failed(error),
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
        None => SectionResult::failed(SectionError::not_found(
            "the service has no escalation policy",
        )),
    }
}

fn is_events_v2(kind: &str) -> bool {
    kind.starts_with("events_api_v2_inbound_integration")
}

fn is_backstage(vendor_id: Option<&str>) -> bool {
    vendor_id == Some(BACKSTAGE_VENDOR)
}

fn resolved_key(service: &Service, key: &str) -> Option<ResolvedKey> {
    let integration = service
        .integrations
        .iter()
        .find(|i| i.integration_key.as_deref() == Some(key))?;
    Some(resolved(service, integration))
}

fn resolved(service: &Service, integration: &pagerduty::Integration) -> ResolvedKey {
    ResolvedKey {
        service_id: service.id.clone(),
        integration_id: Some(integration.id.clone()),
        integration_type: Some(integration.kind.clone()),
        vendor_id: integration.vendor.as_ref().map(|v| v.id.clone()),
        events_v2: is_events_v2(&integration.kind),
    }
}

/// How far the running services listing got.
#[derive(Debug, Clone, Copy, Default)]
struct ListingProgress {
    /// Pages read and stored so far.
    pages: u32,
    /// The listing ended (read every page, hit the cap, or failed).
    done: bool,
}

/// Loads services: single reads in parallel, or the paged list when many
/// services are cold at once (which also warms the cache for every service
/// on the pages read).
#[derive(Clone)]
struct ServiceLoader {
    client: Client,
    store: Store<String, Arc<Service>>,
    counters: Arc<Counters>,
    threshold: usize,
    max_pages: u32,
    /// Single reads since the last listing: a steady trickle of cold services
    /// (users browsing many services one by one) also switches to the list.
    singles_since_list: Arc<AtomicUsize>,
    /// The running (or last) listing: one at a time. It runs in its own task
    /// and stores every service of every page as the page arrives; batches
    /// that want a listing while one runs follow it instead of starting one.
    listing: Arc<Mutex<Option<tokio::sync::watch::Receiver<ListingProgress>>>>,
    /// Set when the account has more services than one listing reads:
    /// listing then costs more than it saves, so it pauses for `list_retry`.
    list_disabled_until: Arc<Mutex<Option<Instant>>>,
    list_retry: Duration,
    /// How long a batch waits for its single reads: a read still running
    /// then answers `timeout` for its own service only (the other services
    /// of the batch are delivered) and stores its service when it finishes.
    single_wait: Duration,
}

impl ServiceLoader {
    /// Answers each wanted service as soon as it is known: from the store,
    /// from the page of a listing that holds it (the rest of the listing goes
    /// on in its own task and warms the store), or from a single read.
    async fn load(
        &self,
        keys: Vec<String>,
        early: Early<String, Arc<Service>>,
    ) -> BatchResults<String, Arc<Service>> {
        let mut pending: Vec<String> = keys;
        // A listing may have stored some of these since their miss was queued.
        self.deliver_stored(&mut pending, &early).await;
        if let Some(mut progress) = self.follow_or_start_listing(pending.len()) {
            loop {
                let done = progress.borrow_and_update().done;
                self.deliver_stored(&mut pending, &early).await;
                if pending.is_empty() || done {
                    break;
                }
                if progress.changed().await.is_err() {
                    // The listing task is gone (it cannot be, short of a panic).
                    break;
                }
            }
        }
        let mut results: BatchResults<String, Arc<Service>> = HashMap::new();
        self.singles_since_list
            .fetch_add(pending.len(), Ordering::Relaxed);
        let reads: Vec<_> = pending
            .into_iter()
            .map(|id| {
                Counters::bump(&self.counters.upstream_calls);
                let client = self.client.clone();
                let store = self.store.clone();
                let key = id.clone();
                let read = tokio::spawn(async move {
                    let result = client.get_service(&key, &SERVICE_INCLUDES).await;
                    let result = result.map(Arc::new).map_err(SectionError::from);
                    if let Ok(service) = &result {
                        // Also serves a caller that stopped waiting for this read.
                        store.insert_fresh(key, Arc::clone(service)).await;
                    }
                    result
                });
                (id, read)
            })
            .collect();
        // A lone read has nobody else to deliver: it is waited for in full
        // (the caller's own bound applies).
        let wait = if reads.len() > 1 {
            self.single_wait
        } else {
            Duration::MAX
        };
        let deadline = tokio::time::Instant::now().checked_add(wait);
        for (id, read) in reads {
            let bounded = async {
                match deadline {
                    Some(deadline) => tokio::time::timeout_at(deadline, read).await,
                    None => Ok(read.await),
                }
            };
            let result = match bounded.await {
                Ok(Ok(result)) => result,
                Ok(Err(join_error)) => Err(SectionError::unavailable(format!(
                    "the service read failed: {join_error}"
                ))),
                Err(_) => Err(SectionError::timeout(format!(
                    "service {id} did not load in time; it is still loading"
                ))),
            };
            results.insert(id, result);
        }
        results
    }

    /// Answers the fresh stored services among `pending` and drops them from it.
    async fn deliver_stored(&self, pending: &mut Vec<String>, early: &Early<String, Arc<Service>>) {
        let mut rest = Vec::with_capacity(pending.len());
        for key in pending.drain(..) {
            match self.store.peek_fresh(&key).await {
                Some(service) => early.send(&key, Ok(service)),
                None => rest.push(key),
            }
        }
        *pending = rest;
    }

    /// The progress of the listing this batch waits on: the running one, or
    /// a new one when `cold` services call for it; `None` to read one by one.
    fn follow_or_start_listing(
        &self,
        cold: usize,
    ) -> Option<tokio::sync::watch::Receiver<ListingProgress>> {
        if !self.list_allowed() || !self.wants_list(cold) {
            return None;
        }
        let mut current = self.listing.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(progress) = current.as_ref()
            && !progress.borrow().done
        {
            return Some(progress.clone());
        }
        self.singles_since_list.store(0, Ordering::Relaxed);
        let (tx, rx) = tokio::sync::watch::channel(ListingProgress::default());
        *current = Some(rx.clone());
        let loader = self.clone();
        tokio::spawn(async move { loader.run_listing(tx).await });
        Some(rx)
    }

    /// Many cold services at once, or many single reads since the last listing.
    fn wants_list(&self, cold: usize) -> bool {
        cold > 0
            && (cold >= self.threshold
                || self.singles_since_list.load(Ordering::Relaxed) >= self.threshold)
    }

    /// False for a while after a listing could not read the whole account.
    fn list_allowed(&self) -> bool {
        self.list_disabled_until
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none_or(|until| Instant::now() >= until)
    }

    /// Runs one listing to its end, then marks it done.
    async fn run_listing(&self, progress: tokio::sync::watch::Sender<ListingProgress>) {
        match self.list(&progress).await {
            Ok(true) => {
                tracing::info!(
                    max_pages = self.max_pages,
                    "the account has more services than one listing reads: reading services one by one"
                );
                *self
                    .list_disabled_until
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) =
                    Some(later(Instant::now(), self.list_retry));
            }
            Ok(false) => {}
            Err(error) => {
                tracing::debug!(%error, "services listing failed; reading services one by one");
            }
        }
        progress.send_modify(|p| p.done = true);
    }

    /// Reads every service page (up to the page cap) and stores every
    /// service as its page arrives, telling the waiting batches after each
    /// page. The first page asks for PagerDuty's `total`; with it the other
    /// pages are read at once (every service within two round trips, and
    /// exactly the pages the account fills); without it, one after another.
    /// True when the cap cut the listing short.
    async fn list(
        &self,
        progress: &tokio::sync::watch::Sender<ListingProgress>,
    ) -> Result<bool, pagerduty::Error> {
        let query = |offset: u32, total: bool| ListServices {
            include: SERVICE_INCLUDES.to_vec(),
            limit: Some(PAGE_LIMIT),
            offset: Some(offset),
            total,
            ..Default::default()
        };
        Counters::bump(&self.counters.upstream_calls);
        let first = self.client.list_services(&query(0, true)).await?;
        let (next, total) = (first.next_offset(), first.total);
        self.store_page(first.items, progress).await;
        let Some(mut offset) = next else {
            return Ok(false);
        };
        if let Some(total) = total {
            let pages = total.div_ceil(u64::from(PAGE_LIMIT));
            let read = pages.min(u64::from(self.max_pages)) as u32;
            let offsets: Vec<u32> = (1..read)
                .map(|n| n * PAGE_LIMIT)
                .take_while(|o| *o <= MAX_OFFSET)
                .collect();
            let covered = (offsets.len() as u64 + 1) * u64::from(PAGE_LIMIT);
            let mut reads: futures::stream::FuturesUnordered<_> = offsets
                .into_iter()
                .map(|offset| {
                    Counters::bump(&self.counters.upstream_calls);
                    let client = self.client.clone();
                    let q = query(offset, false);
                    async move { client.list_services(&q).await }
                })
                .collect();
            while let Some(page) = futures::StreamExt::next(&mut reads).await {
                self.store_page(page?.items, progress).await;
            }
            return Ok(total > covered);
        }
        for _ in 1..self.max_pages {
            Counters::bump(&self.counters.upstream_calls);
            let page = self.client.list_services(&query(offset, false)).await?;
            let next = page.next_offset();
            self.store_page(page.items, progress).await;
            match next {
                Some(next) if next <= MAX_OFFSET => offset = next,
                Some(_) => return Ok(true),
                None => return Ok(false),
            }
        }
        Ok(true)
    }

    /// Stores a page of services, then tells the batches following the listing.
    async fn store_page(
        &self,
        services: Vec<Service>,
        progress: &tokio::sync::watch::Sender<ListingProgress>,
    ) {
        for service in services {
            self.store
                .insert_fresh(service.id.clone(), Arc::new(service))
                .await;
        }
        progress.send_modify(|p| p.pages += 1);
    }
}
