//! The account-wide lists the Backstage routes serve: escalation policies,
//! teams, every service (with integrations, escalation policy and teams),
//! and one filtered page of services.
//!
//! Each is a section cache whose values are fresh for `list_ttl`, then
//! served stale while one refresh runs (up to `max_stale`, like the card
//! sections): a list that ran out used to make every reader wait for its
//! reload (a 90 ms stall of every connection of a busy picker, once a
//! `list_ttl`, the p99 tail of the list routes in BENCHMARKS.md);
//! concurrent misses share one read and errors are not cached. The full
//! services list warms the service section (one read serves the list and
//! every card); the integration key listing fills it in turn.

use std::sync::Arc;

use pagerduty::{EscalationPolicy, ListEscalationPolicies, ListServices, ListTeams, Service, Team};

use super::{Upstream, WarmPages, list_services};
use crate::build::{Builder, Load};
use crate::cache::SectionCache;
use crate::error::SectionError;
use crate::paging::{MAX_OFFSET, MAX_PAGES, PAGE_LIMIT, read_all};
use crate::stats::Counters;
use crate::store::Store;

/// Pages of the services list read at once after the first.
const LIST_CONCURRENCY: usize = 10;
/// Capacity of a one-key store (moka's admission policy may drop the only
/// entry of a store of capacity 1).
pub(crate) const SINGLE: u64 = 16;
/// Distinct filtered pages kept (team × query × limit).
const FILTERED_ENTRIES: u64 = 1_000;

/// A filtered services page: team id, name query, page size.
pub(crate) type FilterKey = (Option<String>, Option<String>, u32);

/// The list caches of one account.
pub(crate) struct Lists {
    pub policies: SectionCache<(), Arc<Vec<EscalationPolicy>>>,
    pub teams: SectionCache<(), Arc<Vec<Team>>>,
    pub services: SectionCache<(), Arc<Vec<Service>>>,
    pub filtered: SectionCache<FilterKey, Arc<Vec<Service>>>,
    /// The store behind `services` (the key listing fills it).
    pub services_store: Store<(), Arc<Vec<Service>>>,
    counters: Arc<Counters>,
}

impl Lists {
    /// `service_store` is the service section's: the services list warms it.
    pub(crate) fn new(
        build: &Builder<'_>,
        client: &pagerduty::Client,
        service_store: Store<String, Arc<Service>>,
    ) -> Self {
        let up = Upstream::new(client);
        let ttl = build.config.list_ttl;
        let hard = build.config.hard_limit(ttl);
        // One key each; a capacity of 1 would let moka's admission policy drop it.
        let services_store = build.store_with(SINGLE, ttl, hard);
        Lists {
            policies: build.direct(
                build.store_with(SINGLE, ttl, hard),
                &up.counters,
                PoliciesLoader(up.clone()),
            ),
            teams: build.direct(
                build.store_with(SINGLE, ttl, hard),
                &up.counters,
                TeamsLoader(up.clone()),
            ),
            services: build.direct(
                services_store.clone(),
                &up.counters,
                ServicesLoader {
                    up: up.clone(),
                    service_store,
                },
            ),
            filtered: build.direct(
                build.store_with(FILTERED_ENTRIES, ttl, hard),
                &up.counters,
                FilteredLoader(up.clone()),
            ),
            services_store,
            counters: up.counters,
        }
    }

    /// The counters of the four lists.
    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }
}

/// The error of a list past PagerDuty's 10 000 offset cap, as the client's
/// own paging reports it.
fn too_long() -> pagerduty::Error {
    pagerduty::Error::PaginationLimit {
        offset: MAX_OFFSET + PAGE_LIMIT,
        limit: PAGE_LIMIT,
    }
}

/// Every page of a list (as the client's own paging: past the offset cap
/// is an error, not a shorter list).
async fn every_page<T, F, Fut>(up: &Upstream, fetch: F) -> Result<Arc<Vec<T>>, SectionError>
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = pagerduty::Result<pagerduty::Page<T>>>,
{
    let (items, capped) = read_all(&up.counters, MAX_PAGES, fetch).await?;
    if capped {
        return Err(too_long().into());
    }
    Ok(Arc::new(items))
}

/// `GET /escalation_policies`, every page.
struct PoliciesLoader(Upstream);

impl Load<(), Arc<Vec<EscalationPolicy>>> for PoliciesLoader {
    async fn load(&self, (): ()) -> Result<Arc<Vec<EscalationPolicy>>, SectionError> {
        let client = &self.0.client;
        every_page(&self.0, |offset| {
            let q = ListEscalationPolicies {
                limit: Some(PAGE_LIMIT),
                offset: Some(offset),
                ..Default::default()
            };
            async move { client.list_escalation_policies(&q).await }
        })
        .await
    }
}

/// `GET /teams`, every page.
struct TeamsLoader(Upstream);

impl Load<(), Arc<Vec<Team>>> for TeamsLoader {
    async fn load(&self, (): ()) -> Result<Arc<Vec<Team>>, SectionError> {
        let client = &self.0.client;
        every_page(&self.0, |offset| {
            let q = ListTeams {
                limit: Some(PAGE_LIMIT),
                offset: Some(offset),
                ..Default::default()
            };
            async move { client.list_teams(&q).await }
        })
        .await
    }
}

/// `GET /services?include[]=escalation_policies&include[]=integrations&include[]=teams`,
/// every page (the first asks for the total, the others are read
/// [`LIST_CONCURRENCY`] at a time), in PagerDuty's order. Every service is
/// also stored in the service section.
struct ServicesLoader {
    up: Upstream,
    service_store: Store<String, Arc<Service>>,
}

impl Load<(), Arc<Vec<Service>>> for ServicesLoader {
    async fn load(&self, (): ()) -> Result<Arc<Vec<Service>>, SectionError> {
        let mut sink = WarmPages::new(&self.service_store).await;
        if list_services(&self.up, MAX_PAGES, LIST_CONCURRENCY, &mut sink).await? {
            return Err(too_long().into());
        }
        Ok(Arc::new(sink.into_services()))
    }
}

/// `GET /services?team_ids[]=…&query=…&limit=…`: one page, as PagerDuty
/// filters it (without includes: not stored in the service section).
struct FilteredLoader(Upstream);

impl Load<FilterKey, Arc<Vec<Service>>> for FilteredLoader {
    async fn load(
        &self,
        (team, query, limit): FilterKey,
    ) -> Result<Arc<Vec<Service>>, SectionError> {
        self.0.count();
        let page = self
            .0
            .client
            .list_services(&ListServices {
                query,
                team_ids: team.into_iter().collect(),
                limit: Some(limit),
                ..Default::default()
            })
            .await?;
        Ok(Arc::new(page.items))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::config::CardsConfig;
    use crate::loaders::testing::{client, sim};
    use crate::tasks::Tasks;

    struct Fixture {
        sim: sim::SimHandle,
        lists: Lists,
        service_store: Store<String, Arc<Service>>,
        clock: Arc<ManualClock>,
        config: CardsConfig,
    }

    async fn fixture(services: usize) -> Fixture {
        let sim = sim(services).await;
        let config = CardsConfig::default();
        let clock = Arc::new(ManualClock::new());
        let build = Builder {
            config: &config,
            clock: clock.clone() as Arc<dyn Clock>,
            tasks: Tasks::default(),
        };
        let service_store = build.store(config.service_ttl);
        let lists = Lists::new(&build, &client(&sim), service_store.clone());
        Fixture {
            sim,
            lists,
            service_store,
            clock,
            config,
        }
    }

    #[tokio::test]
    async fn the_services_list_is_in_order_coalesced_and_warms_the_service_section() {
        let f = fixture(250).await;
        let reads = futures::future::join_all((0..20).map(|_| f.lists.services.get(&()))).await;
        let want: Vec<String> = f
            .sim
            .account()
            .services
            .iter()
            .map(|s| s.id.clone())
            .collect();
        for read in reads {
            let ids: Vec<String> = read.unwrap().value.iter().map(|s| s.id.clone()).collect();
            assert_eq!(ids, want, "every service, in PagerDuty's order");
        }
        assert_eq!(
            f.sim.stats().count("GET", "/services"),
            3,
            "one read of 3 pages"
        );
        let stats = f.lists.counters().snapshot();
        assert_eq!(
            (stats.misses, stats.coalesced, stats.upstream_calls),
            (1, 19, 3)
        );
        for id in &want {
            let service = f.service_store.peek_fresh(id).await.expect("warmed");
            assert!(
                service.escalation_policy.is_some(),
                "read with its includes"
            );
        }
        // Fresh for list_ttl on the injected clock; then served stale at
        // once while one refresh reads it again (readers never wait on it).
        f.lists.services.get(&()).await.unwrap();
        assert_eq!(f.sim.stats().count("GET", "/services"), 3);
        f.clock.advance(f.config.list_ttl);
        let stale = f.lists.services.get(&()).await.unwrap();
        assert!(stale.stale, "served stale while it refreshes");
        assert_eq!(stale.value.len(), want.len());
        let fresh = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            loop {
                let read = f.lists.services.get(&()).await.unwrap();
                if !read.stale {
                    return read;
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the refresh lands within 10 s");
        assert!(
            fresh.version > stale.version,
            "the refreshed list replaced it"
        );
        assert_eq!(
            f.sim.stats().count("GET", "/services"),
            6,
            "one refresh of 3 pages, however many stale reads"
        );
    }

    #[tokio::test]
    async fn policies_teams_and_a_filtered_page() {
        let f = fixture(30).await;
        let account = f.sim.account();
        let policies = f.lists.policies.get(&()).await.unwrap().value;
        assert_eq!(policies.len(), account.escalation_policies.len());
        let teams = f.lists.teams.get(&()).await.unwrap().value;
        assert_eq!(teams.len(), account.teams.len());
        let team = account.teams[0].id.clone();
        let page = f
            .lists
            .filtered
            .get(&(Some(team.clone()), None, 5))
            .await
            .unwrap()
            .value;
        assert!(page.len() <= 5);
        for service in page.iter() {
            let teams = &account.service(&service.id).unwrap().team_ids;
            assert!(teams.contains(&team), "{} is not on {team}", service.id);
        }
        // The same filter is a hit; another is another read.
        f.lists
            .filtered
            .get(&(Some(team.clone()), None, 5))
            .await
            .unwrap();
        f.lists.filtered.get(&(Some(team), None, 6)).await.unwrap();
        assert_eq!(f.lists.counters().snapshot().hits, 1);
    }

    #[tokio::test]
    async fn errors_are_not_cached() {
        let f = fixture(5).await;
        f.sim.set_faults(sim::Faults {
            global: sim::FaultSpec {
                fail_next: 1,
                fail_status: 500,
                ..sim::FaultSpec::default()
            },
            ..sim::Faults::default()
        });
        let error = f.lists.teams.get(&()).await.unwrap_err();
        assert!(error.pagerduty().is_some(), "the typed cause");
        assert!(
            f.lists.teams.get(&()).await.is_ok(),
            "the next read tries again"
        );
    }
}
