//! Integration keys and routing keys: which service an integration key sends
//! to, and which Events API v2 key triggers a service.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pagerduty::{Integration, ListServices, Service, ServiceInclude};

use super::{Upstream, WarmPages, list_services};
use crate::build::Load;
use crate::clock::Clock;
use crate::error::{CardError, SectionError};
use crate::model::{ResolvedKey, RoutingKeyInfo};
use crate::paging::{MAX_PAGES, PAGE_LIMIT, Pager};
use crate::store::Store;

/// The Backstage vendor id; its integration is preferred for triggers.
const BACKSTAGE_VENDOR: &str = "PRO19CT";
/// Pages of a key listing read at once.
const KEY_SCAN_CONCURRENCY: usize = 10;

/// Cache key of an integration key: `Debug` never prints the key.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct KeyId(pub String);

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyId(<redacted>)")
    }
}

/// The service that owns an integration key: `GET /services?query=KEY`,
/// trusting only an exact `integrations[].integration_key` match, page after
/// page; then [`KeyScan`]. An unknown key is `None` (cached briefly as a
/// value). The key is never logged.
pub(crate) struct KeyLoader {
    pub up: Upstream,
    pub scan: KeyScan,
}

impl Load<KeyId, Option<ResolvedKey>> for KeyLoader {
    async fn load(&self, key: KeyId) -> Result<Option<ResolvedKey>, SectionError> {
        match self.query(&key.0).await? {
            Some(found) => Ok(Some(found)),
            None => self.scan.find(&key.0).await,
        }
    }
}

impl KeyLoader {
    async fn query(&self, key: &str) -> Result<Option<ResolvedKey>, pagerduty::Error> {
        let mut pager = Pager::new(MAX_PAGES);
        while let Some(offset) = pager.next_offset() {
            let q = ListServices {
                query: Some(key.to_owned()),
                include: vec![ServiceInclude::Integrations],
                limit: Some(PAGE_LIMIT),
                offset: Some(offset),
                ..Default::default()
            };
            let page = pager
                .read(&self.up.counters, self.up.client.list_services(&q))
                .await?;
            if let Some(found) = page.items.iter().find_map(|s| resolved_key(s, key)) {
                return Ok(Some(found));
            }
        }
        Ok(None)
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
/// warms the services cache and, when it read the whole account, the
/// Backstage services list. Keys are never logged.
pub(crate) struct KeyScan {
    pub up: Upstream,
    pub services: Store<String, Arc<Service>>,
    pub all_services: Store<(), Arc<Vec<Service>>>,
    pub clock: Arc<dyn Clock>,
    pub ttl: Duration,
    pub last: tokio::sync::Mutex<Option<KeyIndex>>,
}

/// The outcome of one listing: integration key → what it belongs to.
pub(crate) struct KeyIndex {
    /// When the listing ended (on the injected clock).
    finished: Instant,
    keys: Result<Arc<HashMap<String, ResolvedKey>>, SectionError>,
}

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
    /// indexing its integration keys, [`KEY_SCAN_CONCURRENCY`] pages at a
    /// time once the first page told the total.
    async fn list(&self) -> Result<HashMap<String, ResolvedKey>, pagerduty::Error> {
        let mut sink = WarmPages::new(&self.services).await;
        let capped = list_services(&self.up, MAX_PAGES, KEY_SCAN_CONCURRENCY, &mut sink).await?;
        let services = sink.into_services();
        let mut index = HashMap::new();
        for service in &services {
            for integration in &service.integrations {
                if let Some(key) = &integration.integration_key {
                    index.insert(key.clone(), resolved(service, integration));
                }
            }
        }
        if !capped {
            // The whole account: the Backstage services list too.
            self.all_services.insert_fresh((), Arc::new(services)).await;
        }
        Ok(index)
    }
}

/// The service's Events API v2 routing key, preferring the Backstage vendor
/// (`PRO19CT`) integration.
pub(crate) fn routing_key(service: &Service) -> Result<RoutingKeyInfo, CardError> {
    let mut candidates: Vec<_> = service
        .integrations
        .iter()
        .filter(|i| is_events_v2(&i.kind) && i.integration_key.is_some())
        .collect();
    candidates.sort_by_key(|i| !is_backstage(i.vendor.as_ref().map(|v| v.id.as_str())));
    let integration = candidates
        .first()
        .ok_or_else(|| CardError::NoEventsIntegration {
            service_id: service.id.clone(),
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

fn resolved(service: &Service, integration: &Integration) -> ResolvedKey {
    ResolvedKey {
        service_id: service.id.clone(),
        integration_id: Some(integration.id.clone()),
        integration_type: Some(integration.kind.clone()),
        vendor_id: integration.vendor.as_ref().map(|v| v.id.clone()),
        events_v2: is_events_v2(&integration.kind),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::loaders::testing::{sim, upstream};

    fn loader(sim: &sim::SimHandle, clock: &Arc<ManualClock>) -> KeyLoader {
        let clock: Arc<dyn Clock> = clock.clone();
        let ttl = Duration::from_secs(30);
        KeyLoader {
            up: upstream(sim),
            scan: KeyScan {
                up: upstream(sim),
                services: Store::with_ttl(1000, ttl, ttl, Arc::clone(&clock)),
                all_services: Store::with_ttl(16, ttl, ttl, Arc::clone(&clock)),
                clock,
                ttl,
                last: tokio::sync::Mutex::new(None),
            },
        }
    }

    #[tokio::test]
    async fn a_key_is_resolved_and_an_unknown_one_lists_the_account_once_per_period() {
        let sim = sim(150).await;
        let account = sim.account();
        let (service, key) = account
            .services
            .iter()
            .find_map(|s| {
                s.integrations
                    .iter()
                    .find_map(|i| i.integration_key.clone().map(|k| (s, k)))
            })
            .expect("a service with a key");
        let clock = Arc::new(ManualClock::new());
        let loader = loader(&sim, &clock);
        let found = loader.load(KeyId(key)).await.unwrap().expect("resolved");
        assert_eq!(found.service_id, service.id);

        let before = sim.stats().count("GET", "/services");
        for unknown in ["a".repeat(32), "b".repeat(32)] {
            assert_eq!(loader.load(KeyId(unknown)).await.unwrap(), None);
        }
        // Two query calls, one listing of 2 pages shared by both keys.
        assert_eq!(sim.stats().count("GET", "/services") - before, 2 + 2);
        let all = loader
            .scan
            .all_services
            .peek_fresh(&())
            .await
            .expect("the whole account");
        let ids: Vec<&str> = all.iter().map(|s| s.id.as_str()).collect();
        let want: Vec<&str> = account.services.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, want, "in PagerDuty's order");
        clock.advance(Duration::from_secs(31));
        assert_eq!(loader.load(KeyId("c".repeat(32))).await.unwrap(), None);
        assert_eq!(
            sim.stats().count("GET", "/services") - before,
            2 + 2 + 1 + 2
        );
    }

    #[test]
    fn the_backstage_integration_is_preferred_for_triggers() {
        let service: Service = serde_json::from_value(serde_json::json!({
            "id": "PS1", "type": "service", "summary": "s", "name": "s",
            "integrations": [
                {"id": "PI1", "type": "generic_events_api_inbound_integration", "integration_key": "k0"},
                {"id": "PI2", "type": "events_api_v2_inbound_integration", "integration_key": "k1"},
                {"id": "PI3", "type": "events_api_v2_inbound_integration", "integration_key": "k2",
                 "vendor": {"id": "PRO19CT", "type": "vendor_reference"}}
            ]
        }))
        .unwrap();
        let info = routing_key(&service).unwrap();
        assert_eq!(info.integration_id, "PI3");
        assert!(info.backstage_vendor);
        let none: Service = serde_json::from_value(
            serde_json::json!({"id": "PS2", "type": "service", "name": "t"}),
        )
        .unwrap();
        assert!(matches!(
            routing_key(&none),
            Err(CardError::NoEventsIntegration { .. })
        ));
    }
}
