//! [`CardService`]: the facade over the section caches: construction,
//! counters, invalidation, raw objects, lists and shutdown. Card assembly is
//! in `card`, the loaders in `loaders`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use pagerduty::{
    Client, EscalationPolicy, Incident, Oncall, Service, ServiceIncidentMetrics, ServiceStandards,
    Team,
};

use crate::build::Builder;
use crate::cache::{Lookup, SectionCache};
use crate::changes::{Changes, SectionChange};
use crate::clock::{Clock, SystemClock};
use crate::config::CardsConfig;
use crate::error::{CardError, SectionError, SectionErrorKind};
use crate::kept::{Kept, ServiceChangeEvents};
use crate::loaders::Upstream;
use crate::loaders::change_events::ChangeEvents;
use crate::loaders::incidents::{IncidentsLoader, OpenIncidents};
use crate::loaders::keys::{KeyId, KeyLoader, KeyScan, routing_key};
use crate::loaders::lists::Lists;
use crate::loaders::metrics::{MetricsLoader, MetricsValue};
use crate::loaders::oncall::OncallLoader;
use crate::loaders::service::ServiceLoader;
use crate::loaders::standards::StandardsLoader;
use crate::model::{Cached, ResolvedKey, RoutingKeyInfo, Section};
use crate::stats::{CardStats, Counters};
use crate::store::Store;
use crate::store::shared::{Dropped, InProcess, SharedCache, SharedMode};
use crate::tasks::Tasks;

/// Serves service cards, and the raw PagerDuty objects behind them, from
/// per-section caches fed by coalesced, batched PagerDuty calls.
///
/// Cheap to clone (an `Arc` inside); build one per PagerDuty account. Needs a
/// tokio runtime (batch flushes and background refreshes are tasks it owns;
/// [`CardService::shutdown`] stops them).
#[derive(Clone)]
pub struct CardService {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for CardService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardService")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub client: Client,
    pub config: CardsConfig,
    pub tasks: Tasks,
    pub services: SectionCache<String, Arc<Service>>,
    pub oncalls: SectionCache<String, Arc<Vec<Oncall>>>,
    pub incidents: SectionCache<String, Arc<OpenIncidents>>,
    pub change_events: ChangeEvents,
    pub standards: SectionCache<String, Arc<ServiceStandards>>,
    pub metrics: SectionCache<String, Arc<MetricsValue>>,
    pub keys: SectionCache<KeyId, Option<ResolvedKey>>,
    pub lists: Lists,
    /// Service ids PagerDuty answered 404 for, kept for
    /// `integration_key_miss_ttl`: a portal asking again and again for a
    /// deleted or mistyped service costs one call per period, not one per view.
    /// On the injected clock, like every other freshness decision.
    pub missing_services: Store<String, ()>,
    /// Whether `missing_services` was ever written: until then a read skips
    /// it (a cache read costs about half a microsecond, and every card and
    /// per-service read starts with one).
    pub any_missing: AtomicBool,
    /// Where the section caches report dropped and replaced entries.
    pub changes: Changes,
    /// The L2 the sections are shared through ([`InProcess`]: none).
    pub shared: Arc<dyn SharedCache>,
    /// The account name the shared entries and invalidations carry.
    pub account: String,
    /// Cards whose sections were all read fresh (`crate::warm`).
    pub warm: crate::warm::WarmCards,
}

/// How a [`CardService`] shares its sections with other replicas of the
/// server (see [`crate::store::shared`]).
#[derive(Debug, Clone)]
pub struct Sharing {
    /// The shared cache (one per process serves every account).
    pub cache: Arc<dyn SharedCache>,
    /// The account's name, the same on every replica (letters, digits,
    /// `-`, `_`, `.`: it names keys).
    pub account: String,
    /// How many replicas share the account (at least 1): each sees about
    /// its share of the cold services, so it lists the account after its
    /// share of the single reads that make one replica list it.
    pub replicas: u32,
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
        Self::build(client, config, clock, None)
    }

    /// Like [`CardService::new`], sharing the sections with the other
    /// replicas that use the same shared cache and account name: a section
    /// one replica loaded is a hit on the others, one replica at a time
    /// loads an entry (the others wait for its value, bounded), and an
    /// invalidation here drops the section on every replica (their
    /// [`CardService::subscribe_changes`] report it). While the shared
    /// cache fails, sections are read from PagerDuty and kept here.
    pub fn shared(client: Client, config: CardsConfig, sharing: Sharing) -> CardService {
        Self::build(client, config, Arc::new(SystemClock), Some(sharing))
    }

    fn build(
        client: Client,
        config: CardsConfig,
        clock: Arc<dyn Clock>,
        sharing: Option<Sharing>,
    ) -> CardService {
        let tasks = Tasks::default();
        let build = Builder {
            config: &config,
            clock: Arc::clone(&clock),
            tasks: tasks.clone(),
        };
        let section = || Upstream::new(&client);

        // Services: batched single reads, or the paged list for many at once.
        // One object serves the service and escalation policy sections.
        let service_up = section();
        let service_store = build.store(config.service_ttl.min(config.escalation_policy_ttl));
        let services = build.batched(
            service_store.clone(),
            &service_up.counters,
            ServiceLoader::new(
                service_up.clone(),
                service_store.clone(),
                tasks.clone(),
                Arc::clone(&clock),
                &config,
            )
            .shared_by(sharing.as_ref().map_or(1, |s| s.replicas)),
        );
        let lists = Lists::new(&build, &client, service_store.clone());

        let up = section();
        let oncalls = build.batched(
            build.store(config.oncall_ttl),
            &up.counters,
            OncallLoader(up.clone()),
        );
        let up = section();
        let incidents = build.batched(
            build.store(config.incidents_ttl),
            &up.counters,
            IncidentsLoader(up.clone()),
        );
        let up = section();
        let standards = build.batched(
            build.store(config.standards_ttl),
            &up.counters,
            StandardsLoader(up.clone()),
        );
        let up = section();
        let metrics = build.batched(
            build.store(config.metrics_ttl),
            &up.counters,
            MetricsLoader(up.clone()),
        );

        // Integration keys: long-lived mapping; a miss is a value with a short life.
        let up = section();
        let found_ttl = config.integration_key_ttl;
        let found_hard = config.hard_limit(found_ttl);
        let miss_ttl = config.integration_key_miss_ttl;
        let key_store: Store<KeyId, Option<ResolvedKey>> = Store::new(
            config.max_entries,
            Arc::new(move |v: &Option<ResolvedKey>| match v {
                Some(_) => (found_ttl, found_hard),
                None => (miss_ttl, miss_ttl),
            }),
            Arc::clone(&clock),
        );
        let keys = build.direct(
            key_store,
            &up.counters,
            KeyLoader {
                up: up.clone(),
                scan: KeyScan {
                    up: up.clone(),
                    services: service_store,
                    all_services: lists.services_store.clone(),
                    clock: Arc::clone(&clock),
                    ttl: miss_ttl,
                    last: tokio::sync::Mutex::new(None),
                },
            },
        );

        let missing_services = build.store_with(config.max_entries, miss_ttl, miss_ttl);
        let change_events = ChangeEvents::new(&build, &client);
        let changes = Changes::default();
        services.on_change(changes.notifier(Section::Service));
        oncalls.on_change(changes.notifier(Section::Oncall));
        incidents.on_change(changes.notifier(Section::Incidents));
        standards.on_change(changes.notifier(Section::Standards));
        metrics.on_change(changes.notifier(Section::Metrics));
        let Sharing {
            cache: shared,
            account,
            replicas,
        } = sharing.unwrap_or_else(|| Sharing {
            cache: Arc::new(InProcess::default()),
            account: String::new(),
            replicas: 1,
        });
        let listening = if shared.mode() != SharedMode::Off {
            let hard = |ttl| config.hard_limit(ttl);
            let id: fn(&String) -> String = String::clone;
            let service_ttl = config.service_ttl.min(config.escalation_policy_ttl);
            let cache = || Arc::clone(&shared);
            services.share(cache(), &account, "service", id, hard(service_ttl));
            oncalls.share(cache(), &account, "oncall", id, hard(config.oncall_ttl));
            incidents.share(
                cache(),
                &account,
                "incidents",
                id,
                hard(config.incidents_ttl),
            );
            standards.share(
                cache(),
                &account,
                "standards",
                id,
                hard(config.standards_ttl),
            );
            metrics.share(cache(), &account, "metrics", id, hard(config.metrics_ttl));
            change_events.share(cache(), &account, hard(config.change_events_ttl));
            if replicas > 1 {
                // Their loaders answer every key in the results (the
                // services' early answers could not be handed on).
                oncalls.join_batches(str::to_owned);
                incidents.join_batches(str::to_owned);
                standards.join_batches(str::to_owned);
                metrics.join_batches(str::to_owned);
            }
            Some(shared.subscribe())
        } else {
            None
        };
        let service = CardService {
            inner: Arc::new(Inner {
                client,
                config,
                tasks,
                services,
                oncalls,
                incidents,
                change_events,
                standards,
                metrics,
                keys,
                lists,
                missing_services,
                any_missing: AtomicBool::new(false),
                changes,
                shared,
                account,
                warm: Default::default(),
            }),
        };
        if let Some(invalidations) = listening {
            service.listen(invalidations);
        }
        service
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
            change_events: i.change_events.counters().snapshot(),
            standards: i.standards.counters().snapshot(),
            metrics: i.metrics.counters().snapshot(),
            integration_keys: i.keys.counters().snapshot(),
            lists: i.lists.counters().snapshot(),
        }
    }

    /// Stops the background work: no refresh or services listing starts any
    /// more, the running ones are cancelled, and the loads callers are
    /// waiting for are awaited, all within `section_timeout`. Idempotent.
    ///
    /// Reads still work afterwards: misses load inline in the caller's task,
    /// and an expired section is served stale (until `max_stale`) without
    /// a background refresh. Call it when the server stops.
    pub async fn shutdown(&self) {
        if !self
            .inner
            .tasks
            .shutdown(self.inner.config.section_timeout)
            .await
        {
            tracing::warn!("card service shut down with loads still running");
        }
    }

    /// The service id, unless PagerDuty said 404 for it recently.
    pub(crate) async fn known_service_id(&self, id: &str) -> Result<String, CardError> {
        let key = id.to_owned();
        if self.inner.any_missing.load(Ordering::Acquire)
            && self.inner.missing_services.peek_fresh(&key).await.is_some()
        {
            Counters::bump(&self.inner.services.counters().hits);
            return Err(CardError::not_found(format!("service {id}")));
        }
        Ok(key)
    }

    /// The service section; a 404 is remembered briefly.
    pub(crate) async fn service_lookup(
        &self,
        id: &String,
    ) -> Result<Lookup<Arc<Service>>, SectionError> {
        let result = self.inner.services.get(id).await;
        if let Err(error) = &result
            && error.kind == SectionErrorKind::NotFound
        {
            self.inner.any_missing.store(true, Ordering::Release);
            self.inner
                .missing_services
                .insert_fresh(id.clone(), ())
                .await;
        }
        result
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
        routing_key(&self.raw_service(service_id).await?.value)
    }

    /// Drops the given sections of a service, so the next read fetches them
    /// (after a trigger, or on a webhook). Change events are cached
    /// account-wide, so dropping them refreshes every service's change events.
    ///
    /// With a shared cache ([`CardService::shared`]) the shared copies are
    /// dropped too and every other replica is told, so it drops its own
    /// copy and reports the change to its listeners.
    pub async fn invalidate(&self, service_id: &str, sections: &[Section]) {
        let key = service_id.to_owned();
        let policy = if sections.contains(&Section::Oncall) {
            self.inner
                .services
                .peek(&key)
                .await
                .and_then(|service| service.escalation_policy.as_ref().map(|p| p.id.clone()))
        } else {
            None
        };
        self.drop_sections(&key, sections, policy.as_deref(), true)
            .await;
        self.publish(Dropped::Sections {
            service: key,
            sections: sections.to_vec(),
            escalation_policy: policy,
        })
        .await;
    }

    /// Drops sections here (`everywhere`: and in the shared cache).
    async fn drop_sections(
        &self,
        key: &String,
        sections: &[Section],
        policy: Option<&str>,
        everywhere: bool,
    ) {
        let i = &self.inner;
        for section in sections {
            match section {
                Section::Service | Section::EscalationPolicy => {
                    i.missing_services.invalidate(key).await;
                    drop_entry(&i.services, key, everywhere).await;
                }
                Section::Oncall => {
                    if let Some(policy) = policy {
                        drop_entry(&i.oncalls, &policy.to_owned(), everywhere).await;
                    }
                }
                Section::Incidents => drop_entry(&i.incidents, key, everywhere).await,
                Section::ChangeEvents => i.change_events.invalidate(key, everywhere).await,
                Section::Standards => drop_entry(&i.standards, key, everywhere).await,
                Section::Metrics => drop_entry(&i.metrics, key, everywhere).await,
            }
        }
    }

    /// Tells the other replicas (when sharing now; bounded by the shared
    /// cache's call timeout; a failure is the shared cache's to report).
    async fn publish(&self, what: Dropped) {
        let i = &self.inner;
        if i.shared.mode() == SharedMode::Shared {
            let _ = i.shared.publish(&i.account, what).await;
        }
    }

    /// Applies the other replicas' invalidations of this account here,
    /// until shutdown.
    fn listen(
        &self,
        mut invalidations: tokio::sync::broadcast::Receiver<crate::store::shared::Invalidation>,
    ) {
        use tokio::sync::broadcast::error::RecvError;
        // Weak: the task must not keep the service alive.
        let weak = Arc::downgrade(&self.inner);
        let _ = self.inner.tasks.background(async move {
            loop {
                let message = match invalidations.recv().await {
                    Ok(message) => message,
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(
                            missed = n,
                            "shared cache: missed invalidations from other replicas; their L1 copies expire within l1_ttl"
                        );
                        continue;
                    }
                    Err(RecvError::Closed) => return,
                };
                let Some(inner) = weak.upgrade() else { return };
                if message.account != inner.account {
                    continue;
                }
                let service = CardService { inner };
                match message.what {
                    Dropped::Sections {
                        service: id,
                        sections,
                        escalation_policy,
                    } => {
                        service
                            .drop_sections(&id, &sections, escalation_policy.as_deref(), false)
                            .await;
                    }
                    Dropped::ServiceLists => service.drop_service_lists(),
                }
            }
        });
    }

    /// Every change of a card section from now on: an entry dropped
    /// ([`CardService::invalidate`]) or replaced (a load or a background
    /// refresh), named by section and service (see [`SectionChange`]).
    /// Read the card again to see the change; a lagging receiver
    /// (`RecvError::Lagged`) should re-read every card it shows.
    pub fn subscribe_changes(&self) -> tokio::sync::broadcast::Receiver<SectionChange> {
        self.inner.changes.subscribe()
    }

    /// Whether the service section of `service_id` is cached (fresh or
    /// stale): a webhook about a service no card shows has nothing to drop.
    pub async fn has_cached_service(&self, service_id: &str) -> bool {
        self.inner
            .services
            .peek(&service_id.to_owned())
            .await
            .is_some()
    }

    /// A service was created, changed or deleted: drops the services lists
    /// (all and filtered) and the integration key mappings, so the next
    /// read sees the service as it is now. The service's own section is
    /// [`CardService::invalidate`]'s.
    ///
    /// With a shared cache, every other replica is told to do the same.
    pub fn invalidate_service_lists(&self) {
        self.drop_service_lists();
        if self.inner.shared.mode() == SharedMode::Shared {
            let service = self.clone();
            // Publishing is a bounded Redis call; this method does not wait for it.
            let _ = self.inner.tasks.background(async move {
                service.publish(Dropped::ServiceLists).await;
            });
        }
    }

    fn drop_service_lists(&self) {
        let i = &self.inner;
        i.lists.services.invalidate_all();
        i.lists.filtered.invalidate_all();
        i.keys.invalidate_all();
    }

    /// Whether the sections are shared with other replicas now
    /// ([`SharedMode::Off`] without a shared cache).
    pub fn shared_mode(&self) -> SharedMode {
        self.inner.shared.mode()
    }

    /// The service object (read with `include[]=escalation_policies,integrations,teams`),
    /// as cached (no copy).
    pub async fn raw_service(&self, service_id: &str) -> Result<Cached<Kept<Service>>, CardError> {
        let key = self.known_service_id(service_id).await?;
        raw(
            self.service_lookup(&key).await,
            || format!("service {service_id}"),
            Kept::whole,
        )
    }

    /// The service's open incidents (triggered and acknowledged, any age),
    /// newest first, as cached (no copy).
    pub async fn raw_open_incidents(
        &self,
        service_id: &str,
    ) -> Result<Cached<Kept<Vec<Incident>>>, CardError> {
        let lookup = self.inner.incidents.get(&service_id.to_owned()).await;
        raw(
            lookup,
            || format!("incidents of {service_id}"),
            Kept::incidents,
        )
    }

    /// The service's recent change events ([`ServiceChangeEvents::newest_first`]):
    /// picked out of the cached account-wide list only when read, so a
    /// caller that needs only the version copies nothing.
    pub async fn raw_change_events(
        &self,
        service_id: &str,
    ) -> Result<Cached<ServiceChangeEvents>, CardError> {
        let lookup = self
            .inner
            .change_events
            .shared(&service_id.to_owned())
            .await;
        raw(
            lookup,
            || format!("change events of {service_id}"),
            |of| ServiceChangeEvents::new(of, service_id),
        )
    }

    /// Who is on call now for an escalation policy (users included), as cached.
    pub async fn raw_oncalls(
        &self,
        escalation_policy_id: &str,
    ) -> Result<Cached<Kept<Vec<Oncall>>>, CardError> {
        let lookup = self
            .inner
            .oncalls
            .get(&escalation_policy_id.to_owned())
            .await;
        raw(
            lookup,
            || format!("on-calls of {escalation_policy_id}"),
            Kept::whole,
        )
    }

    /// The service's standards scores, as cached.
    pub async fn raw_standards(
        &self,
        service_id: &str,
    ) -> Result<Cached<Kept<ServiceStandards>>, CardError> {
        let lookup = self.inner.standards.get(&service_id.to_owned()).await;
        raw(lookup, || format!("standards of {service_id}"), Kept::whole)
    }

    /// The service's incident metrics over the last 30 days (empty when it
    /// had no incidents), as cached.
    pub async fn raw_metrics(
        &self,
        service_id: &str,
    ) -> Result<Cached<Kept<Vec<ServiceIncidentMetrics>>>, CardError> {
        let lookup = self.inner.metrics.get(&service_id.to_owned()).await;
        raw(lookup, || format!("metrics of {service_id}"), Kept::metrics)
    }

    /// Every escalation policy of the account, cached for `list_ttl`
    /// (concurrent misses share one read; errors are not cached).
    pub async fn escalation_policies(
        &self,
    ) -> Result<Arc<Vec<EscalationPolicy>>, Arc<pagerduty::Error>> {
        list(self.inner.lists.policies.get(&()).await)
    }

    /// Every team of the account, cached for `list_ttl`.
    pub async fn teams(&self) -> Result<Arc<Vec<Team>>, Arc<pagerduty::Error>> {
        list(self.inner.lists.teams.get(&()).await)
    }

    /// Every service of the account with its integrations, escalation policy
    /// and teams, in PagerDuty's order, cached for `list_ttl`. The listing
    /// also refreshes the service section of every service on it.
    pub async fn services(&self) -> Result<Arc<Vec<Service>>, Arc<pagerduty::Error>> {
        list(self.inner.lists.services.get(&()).await)
    }

    /// One page of at most `limit` (1 to 100) services of a team and/or
    /// whose name matches `query`, as PagerDuty filters them, cached for
    /// `list_ttl` per (team, query, limit).
    pub async fn filtered_services(
        &self,
        team_id: Option<String>,
        query: Option<String>,
        limit: u32,
    ) -> Result<Arc<Vec<Service>>, Arc<pagerduty::Error>> {
        list(
            self.inner
                .lists
                .filtered
                .get(&(team_id, query, limit))
                .await,
        )
    }
}

/// Drops `key` of `cache`: everywhere (the shared copy too), or here only.
async fn drop_entry<V>(cache: &SectionCache<String, V>, key: &String, everywhere: bool)
where
    V: Clone + Send + Sync + 'static,
{
    if everywhere {
        cache.invalidate(key).await;
    } else {
        cache.invalidate_local(key).await;
    }
}

/// A raw object from a section lookup; `what` names it in a failure.
fn raw<V, T>(
    lookup: Result<Lookup<V>, SectionError>,
    what: impl FnOnce() -> String,
    f: impl FnOnce(V) -> T,
) -> Result<Cached<T>, CardError> {
    let lookup = lookup.map_err(|e| CardError::from_section(&e, what()))?;
    Ok(Cached {
        value: f(lookup.value),
        fetched_at: lookup.fetched_at,
        stale: lookup.stale,
        version: lookup.version,
    })
}

/// A list from its cache, failing with PagerDuty's own error (the Backstage
/// routes word each kind of it).
pub(crate) fn list<T>(
    lookup: Result<Lookup<Arc<Vec<T>>>, SectionError>,
) -> Result<Arc<Vec<T>>, Arc<pagerduty::Error>> {
    match lookup {
        Ok(lookup) => Ok(lookup.value),
        Err(error) => Err(match error.cause {
            Some(cause) => cause.into_arc(),
            // Only a load that died (a panic) has no PagerDuty error.
            None => Arc::new(pagerduty::Error::Transport(pagerduty::TransportError::new(
                error.message,
            ))),
        }),
    }
}

#[cfg(test)]
mod tests;
