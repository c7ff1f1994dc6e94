//! The upstream loaders, one module per section: what each one asks
//! PagerDuty, how its answer is split per key, and what a key the answer
//! does not mention gets. [`crate::build::Builder`] turns each into a
//! section cache; [`crate::CardService`] only wires them.

use std::collections::HashMap;
use std::sync::Arc;

use pagerduty::{Client, ListServices, Service, ServiceInclude};

use crate::batcher::BatchResults;
use crate::paging::{PAGE_LIMIT, PageSink, read_listing};
use crate::stats::Counters;
use crate::store::{Store, Warming};

pub(crate) mod change_events;
pub(crate) mod incidents;
pub(crate) mod keys;
pub(crate) mod lists;
pub(crate) mod metrics;
pub(crate) mod oncall;
pub(crate) mod service;
pub(crate) mod standards;

/// Every service read asks for these, so one cached object serves the
/// service, escalation policy and routing-key lookups (and the Backstage
/// services list).
pub(crate) const SERVICE_INCLUDES: [ServiceInclude; 3] = [
    ServiceInclude::EscalationPolicies,
    ServiceInclude::Integrations,
    ServiceInclude::Teams,
];

/// The client and the counters of one section: what a loader calls
/// PagerDuty with (each request counted in `upstream_calls`).
#[derive(Clone)]
pub(crate) struct Upstream {
    pub client: Client,
    pub counters: Arc<Counters>,
}

impl Upstream {
    /// A section's upstream with fresh counters.
    pub(crate) fn new(client: &Client) -> Self {
        Upstream {
            client: client.clone(),
            counters: Arc::default(),
        }
    }

    /// Counts one request.
    pub(crate) fn count(&self) {
        Counters::bump(&self.counters.upstream_calls);
    }
}

/// Lists every service with [`SERVICE_INCLUDES`] (the first page asks for
/// the total, then up to `max_pages` pages are read `concurrency` at a
/// time), handing each page to `sink`. True when the caps left services
/// unread. The service section's listing, the integration key listing and
/// the Backstage services list all read the account this way.
pub(crate) async fn list_services(
    up: &Upstream,
    max_pages: u32,
    concurrency: usize,
    sink: &mut impl PageSink<Service>,
) -> pagerduty::Result<bool> {
    let client = &up.client;
    read_listing(
        &up.counters,
        max_pages,
        concurrency,
        |offset, total| {
            let q = ListServices {
                include: SERVICE_INCLUDES.to_vec(),
                limit: Some(PAGE_LIMIT),
                offset: Some(offset),
                total,
                ..Default::default()
            };
            async move { client.list_services(&q).await }
        },
        sink,
    )
    .await
}

/// Stores each listed service in the service section and keeps the pages
/// to give the whole list back in PagerDuty's order.
pub(crate) struct WarmPages<'a> {
    store: &'a Store<String, Arc<Service>>,
    pages: Vec<(u32, Vec<Service>)>,
    warming: Warming,
}

impl<'a> WarmPages<'a> {
    /// A sink into `store`, started before the listing's first page.
    pub(crate) async fn new(store: &'a Store<String, Arc<Service>>) -> Self {
        WarmPages {
            store,
            pages: Vec::new(),
            warming: store.warming().await,
        }
    }

    /// Every service read, in PagerDuty's order.
    pub(crate) fn into_services(mut self) -> Vec<Service> {
        self.pages.sort_by_key(|(offset, _)| *offset);
        self.pages.into_iter().flat_map(|(_, page)| page).collect()
    }
}

impl PageSink<Service> for WarmPages<'_> {
    async fn page(&mut self, offset: u32, services: Vec<Service>) {
        let items: Vec<_> = services
            .iter()
            .map(|service| (service.id.clone(), Arc::new(service.clone())))
            .collect();
        self.store.insert_listed(&self.warming, items).await;
        self.pages.push((offset, services));
    }
}

/// Splits list results per key; keys without items get an empty list.
pub(crate) fn group_by<T: Clone, F>(
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

#[cfg(test)]
pub(crate) mod testing {
    //! The simulator behind the loaders' unit tests.

    use pagerduty::{Client, Credentials, RetryPolicy, SecretString};
    use sim::{Sim, SimConfig, SimHandle};

    use super::Upstream;
    use crate::batcher::Early;

    /// A simulated account of `services` services.
    pub(crate) async fn sim(services: usize) -> SimHandle {
        Sim::start(SimConfig {
            services,
            ..SimConfig::default()
        })
        .await
        .expect("simulator starts")
    }

    /// A client of the simulator (no retries: every request counts once).
    pub(crate) fn client(sim: &SimHandle) -> Client {
        Client::builder(Credentials::ApiToken(SecretString::from(sim.api_token())))
            .api_base_url(sim.base_url())
            .retry_policy(RetryPolicy::none())
            .build()
            .expect("client")
    }

    /// A section's upstream on the simulator.
    pub(crate) fn upstream(sim: &SimHandle) -> Upstream {
        Upstream::new(&client(sim))
    }

    /// An early-answer handle with nobody waiting.
    pub(crate) fn nobody<K: Eq + std::hash::Hash, V: Clone>() -> Early<K, V> {
        Early::new(Default::default())
    }
}
