//! `GET /mapping/entity`'s rows: every PagerDuty service with the entity it
//! is mapped to, in the Node backend's shape.
//!
//! Status, as the Node backend computes it (`buildEntityMappingsResponse`),
//! from the stored row and the catalog's annotated entities
//! ([`CatalogIndex`]: `pagerduty.com/service-id`, or an
//! `pagerduty.com/integration-key` that is one of the service's keys):
//!
//! - `InSync`: the annotated entity is the stored row's entity, or there is
//!   no row and an entity is annotated with the service (then that entity
//!   is the row's);
//! - `OutOfSync`: a stored row whose entity is not the annotated one (or no
//!   entity is annotated with the service);
//! - `NotMapped`: neither.
//!
//! Without a catalog (none configured, or it failed: [`Listing::catalog_error`])
//! the store alone decides: a row is `InSync`, no row `NotMapped`.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use store::Mapping;
use utoipa::ToSchema;

use super::{MappingError, MappingService};
use crate::catalog::CatalogEntity;
use crate::keys::KeyAliases;

/// Which entity the catalog's annotations give each service.
#[derive(Debug, Default)]
pub struct CatalogIndex {
    by_service: HashMap<String, String>,
}

impl CatalogIndex {
    /// `entities`' annotations resolved against the services of every
    /// account: a service id annotation as it is, an integration key
    /// through the service that has it. The first entity naming a service
    /// wins.
    pub fn new(entities: &[CatalogEntity], accounts: &[(&str, &[pagerduty::Service])]) -> Self {
        let mut by_key: HashMap<&str, &str> = HashMap::new();
        for (_, services) in accounts {
            for service in services.iter() {
                for integration in &service.integrations {
                    if let Some(key) = &integration.integration_key {
                        by_key.entry(key.as_str()).or_insert(service.id.as_str());
                    }
                }
            }
        }
        let mut by_service = HashMap::new();
        for entity in entities {
            let service = entity.service_id.as_deref().or_else(|| {
                entity
                    .integration_key
                    .as_deref()
                    .and_then(|k| by_key.get(k).copied())
            });
            if let Some(service) = service {
                by_service
                    .entry(service.to_owned())
                    .or_insert_with(|| entity.entity_ref());
            }
        }
        CatalogIndex { by_service }
    }

    /// The entity annotated with `service_id`.
    pub fn entity_of(&self, service_id: &str) -> Option<&str> {
        self.by_service.get(service_id).map(String::as_str)
    }
}

/// What `GET /mapping/entity`'s rows are made of ([`Listing::rows`]
/// borrows from it, so a row copies no string but its shown key).
#[derive(Debug)]
pub struct Listing {
    /// The stored rows, shared with [`KeptRows`] while the store's
    /// mappings revision holds.
    mappings: Arc<Vec<Mapping>>,
    index: Option<CatalogIndex>,
    /// Why the catalog could not be read (the statuses then come from the
    /// store alone); `None` when it was read or none is configured.
    pub catalog_error: Option<String>,
    fingerprint: u64,
}

impl Listing {
    /// What the rows are built from besides the services lists, hashed: the
    /// store's mappings revision (it moves with every committed write of
    /// any replica, so it stands for the rows) and the catalog's entities
    /// and error. Equal fingerprints over the same services lists give the
    /// same rows, so the HTTP layer may answer the body it rendered before
    /// (the revision is read on every request, so a write on another
    /// replica shows at once).
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// The rows of every service of `accounts` (the lists the listing was
    /// read for), sorted (see [`service_rows`]).
    pub fn rows<'a>(
        &'a self,
        accounts: &[(&'a str, &'a [pagerduty::Service])],
        keys: &KeyAliases,
    ) -> Vec<ServiceMappingRow<'a>> {
        service_rows(accounts, &self.mappings, keys, self.index.as_ref())
    }
}

/// The stored rows the last listing read, with the mappings revision read
/// just before them: while the store's revision is still that one, no row
/// changed (on any replica) and the listing reuses them instead of reading
/// every row again.
#[derive(Debug, Default)]
pub(super) struct KeptRows(Mutex<Option<(i64, Arc<Vec<Mapping>>)>>);

impl KeptRows {
    /// The rows kept under `revision`, if those are the kept ones.
    fn at(&self, revision: i64) -> Option<Arc<Vec<Mapping>>> {
        let kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        kept.as_ref()
            .filter(|(at, _)| *at == revision)
            .map(|(_, rows)| Arc::clone(rows))
    }

    /// Keeps `rows`, read after the store's revision was `revision`. They
    /// may be newer than it (a write committed between the two reads):
    /// then the next revision read differs and they are read again, so
    /// nothing is missed. Equality, not order, decides reuse, so a database
    /// restored to an older revision is read again too.
    fn keep(&self, revision: i64, rows: Arc<Vec<Mapping>>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((revision, rows));
    }
}

impl MappingService {
    /// Every service of `accounts` with its mapping: the store's mappings
    /// revision (the rows themselves only when it moved since the last
    /// listing) and the catalog's annotated entities, read at once. A
    /// catalog that fails does not fail the listing (see
    /// [`Listing::catalog_error`]).
    pub async fn service_listing(
        &self,
        accounts: &[(&str, &[pagerduty::Service])],
    ) -> Result<Listing, MappingError> {
        let catalog = async {
            match self.catalog() {
                // Read on every listing, as before: the catalog client keeps
                // nothing, and its entities are part of the fingerprint.
                Some(catalog) => Some(catalog.annotated_entities().await),
                None => None,
            }
        };
        let (rows, entities) = tokio::join!(self.current_rows(), catalog);
        let (revision, mappings) = rows?;
        let mut hasher = std::hash::DefaultHasher::new();
        revision.hash(&mut hasher);
        let (index, catalog_error) = match entities {
            Some(Ok(entities)) => {
                for e in &entities {
                    (&e.kind, &e.namespace, &e.name, &e.uid).hash(&mut hasher);
                    (&e.service_id, &e.integration_key, &e.account).hash(&mut hasher);
                    // system, owner and lifecycle are shown by POST
                    // /mapping/entities only, not in these rows.
                }
                (Some(CatalogIndex::new(&entities, accounts)), None)
            }
            Some(Err(e)) => (None, Some(e.to_string())),
            None => (None, None),
        };
        catalog_error.hash(&mut hasher);
        Ok(Listing {
            mappings,
            index,
            catalog_error,
            fingerprint: hasher.finish(),
        })
    }

    /// The store's mappings revision and the rows at (at least) it: the
    /// kept ones while the revision holds, else every row, read after the
    /// revision (see [`KeptRows::keep`]) and kept.
    async fn current_rows(&self) -> Result<(i64, Arc<Vec<Mapping>>), MappingError> {
        let revision = self.store.mappings_revision().await?;
        if let Some(rows) = self.kept_rows.at(revision) {
            return Ok((revision, rows));
        }
        let rows = Arc::new(self.store.mappings().await?);
        self.kept_rows.keep(revision, Arc::clone(&rows));
        Ok((revision, rows))
    }
}

/// A service's mapping status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub enum MappingStatus {
    InSync,
    OutOfSync,
    NotMapped,
}

// Borrowed from the services list and the stored rows: building 2,000 rows
// copies no string but the shown keys.
/// One service and its mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceMappingRow<'a> {
    /// `kind:namespace/name`, `""` when not mapped.
    pub entity_ref: &'a str,
    /// The name part of `entityRef`.
    pub entity_name: &'a str,
    pub service_id: &'a str,
    /// The stored key, else the service's Backstage integration key, shown
    /// by `backstage.integration_keys` (`""` when omitted or none).
    pub integration_key: String,
    pub status: MappingStatus,
    pub service_name: &'a str,
    /// The service's first team.
    pub team: &'a str,
    pub escalation_policy: &'a str,
    pub service_url: &'a str,
    pub account: &'a str,
}

/// The rows of every service of every `(account, services)` pair, sorted by
/// service name (case-insensitive), then account; the statuses with the
/// catalog's `index` when there is one (see the module docs).
pub fn service_rows<'a>(
    accounts: &[(&'a str, &'a [pagerduty::Service])],
    mappings: &'a [Mapping],
    keys: &KeyAliases,
    index: Option<&'a CatalogIndex>,
) -> Vec<ServiceMappingRow<'a>> {
    let by_service: HashMap<&str, &Mapping> = mappings
        .iter()
        .map(|m| (m.service_id.as_str(), m))
        .collect();
    let by_service = &by_service;
    // Sorted before the rows are built (each name lower-cased once).
    let mut services: Vec<(String, &'a str, &'a pagerduty::Service)> = accounts
        .iter()
        .flat_map(|(account, services)| {
            services
                .iter()
                .map(move |s| (s.name.to_lowercase(), *account, s))
        })
        .collect();
    services.sort_unstable_by(|a, b| (&a.0, a.1, &a.2.id).cmp(&(&b.0, b.1, &b.2.id)));
    services
        .into_iter()
        .map(|(_, account, service)| {
            let mapping = by_service
                .get(service.id.as_str())
                .filter(|m| !m.entity_ref.is_empty());
            let key = mapping
                .and_then(|m| m.integration_key.as_ref().map(|k| k.expose()))
                .or_else(|| backstage_key(service));
            let annotated = index.and_then(|i| i.entity_of(&service.id));
            let (entity_ref, status) = match (mapping, index) {
                (Some(m), None) => (m.entity_ref.as_str(), MappingStatus::InSync),
                (Some(m), Some(_)) if annotated == Some(m.entity_ref.as_str()) => {
                    (m.entity_ref.as_str(), MappingStatus::InSync)
                }
                (Some(m), Some(_)) => (m.entity_ref.as_str(), MappingStatus::OutOfSync),
                (None, _) => match annotated {
                    Some(entity) => (entity, MappingStatus::InSync),
                    None => ("", MappingStatus::NotMapped),
                },
            };
            ServiceMappingRow {
                entity_name: entity_name(entity_ref),
                entity_ref,
                service_id: &service.id,
                integration_key: key.and_then(|k| keys.shown(account, k)).unwrap_or_default(),
                status,
                service_name: &service.name,
                team: service
                    .teams
                    .first()
                    .and_then(|t| t.summary.as_deref().or(t.name.as_deref()))
                    .unwrap_or_default(),
                escalation_policy: service
                    .escalation_policy
                    .as_ref()
                    .and_then(|p| p.summary.as_deref().or(p.name.as_deref()))
                    .unwrap_or_default(),
                service_url: service.html_url.as_deref().unwrap_or_default(),
                account,
            }
        })
        .collect()
}

/// [`super::service_key`] without the copy.
fn backstage_key(service: &pagerduty::Service) -> Option<&str> {
    let keyed = || {
        service
            .integrations
            .iter()
            .filter_map(|i| Some((i, i.integration_key.as_deref()?)))
    };
    keyed()
        .find(|(i, _)| {
            i.vendor
                .as_ref()
                .is_some_and(|v| v.id == super::BACKSTAGE_VENDOR)
        })
        .or_else(|| keyed().next())
        .map(|(_, key)| key)
}

/// `name` of `kind:namespace/name`.
pub fn entity_name(entity_ref: &str) -> &str {
    entity_ref.rsplit('/').next().unwrap_or(entity_ref)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(id: &str, name: &str) -> pagerduty::Service {
        serde_json::from_value(serde_json::json!({
            "id": id, "name": name, "type": "service",
            "html_url": format!("https://acme.pagerduty.com/service-directory/{id}"),
            "teams": [{"id": "T1", "type": "team_reference", "summary": "Checkout"}],
            "escalation_policy": {"id": "E1", "type": "escalation_policy_reference", "summary": "Checkout Escalation"},
            "integrations": [
                {"id": "I1", "type": "generic_events_api_inbound_integration", "integration_key": "other"},
                {"id": "I2", "type": "events_api_v2_inbound_integration", "integration_key": "backstage-key",
                 "vendor": {"id": "PRO19CT", "type": "vendor_reference"}}
            ]
        }))
        .expect("a service")
    }

    #[test]
    fn mapped_services_are_in_sync_and_the_rest_not_mapped_sorted_by_name() {
        let services = [service("P2", "payments"), service("P1", "Checkout")];
        let mapping = Mapping {
            index: 1,
            id: "u".into(),
            service_id: "P2".into(),
            integration_key: None,
            entity_ref: "component:default/pay".into(),
            account: "default".into(),
            processed_at_ms: 0,
            revision: 1,
        };
        let rows = service_rows(
            &[("default", &services)],
            std::slice::from_ref(&mapping),
            &KeyAliases::none(),
            None,
        );
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].service_name, "Checkout");
        assert_eq!(rows[0].status, MappingStatus::NotMapped);
        assert_eq!(rows[0].integration_key, "backstage-key");
        assert_eq!(rows[0].team, "Checkout");
        assert_eq!(rows[0].escalation_policy, "Checkout Escalation");
        assert_eq!(rows[1].status, MappingStatus::InSync);
        assert_eq!(rows[1].entity_ref, "component:default/pay");
        assert_eq!(rows[1].entity_name, "pay");
        assert_eq!(
            rows[1].service_url,
            "https://acme.pagerduty.com/service-directory/P2"
        );
    }

    fn mapping(service_id: &str, entity_ref: &str) -> Mapping {
        Mapping {
            index: 1,
            id: "u".into(),
            service_id: service_id.into(),
            integration_key: None,
            entity_ref: entity_ref.into(),
            account: "default".into(),
            processed_at_ms: 0,
            revision: 1,
        }
    }

    fn entity(name: &str, service_id: Option<&str>, key: Option<&str>) -> CatalogEntity {
        CatalogEntity {
            kind: "Component".into(),
            namespace: "default".into(),
            name: name.into(),
            service_id: service_id.map(Into::into),
            integration_key: key.map(Into::into),
            ..CatalogEntity::default()
        }
    }

    #[test]
    fn the_catalogs_annotations_decide_in_sync_and_out_of_sync() {
        let services = [
            service("P1", "a"),
            service("P2", "b"),
            service("P3", "c"),
            service("P4", "d"),
            service("P5", "e"),
        ];
        let accounts: [(&str, &[pagerduty::Service]); 1] = [("default", &services)];
        // P1 annotated where stored; P2 stored elsewhere than annotated;
        // P3 stored, annotated nowhere; P4 annotated (by key: every test
        // service has "backstage-key", so the first key wins: P1), not
        // stored; P5 neither.
        let index = CatalogIndex::new(
            &[
                entity("one", Some("P1"), None),
                entity("two", Some("P2"), None),
                entity("four", Some("P4"), None),
                entity("keyed", None, Some("backstage-key")),
            ],
            &accounts,
        );
        let stored = [
            mapping("P1", "component:default/one"),
            mapping("P2", "component:default/elsewhere"),
            mapping("P3", "component:default/three"),
        ];
        let rows = service_rows(&accounts, &stored, &KeyAliases::none(), Some(&index));
        let got: Vec<(&str, &str, MappingStatus)> = rows
            .iter()
            .map(|r| (r.service_id, r.entity_ref, r.status))
            .collect();
        assert_eq!(
            got,
            [
                ("P1", "component:default/one", MappingStatus::InSync),
                (
                    "P2",
                    "component:default/elsewhere",
                    MappingStatus::OutOfSync
                ),
                ("P3", "component:default/three", MappingStatus::OutOfSync),
                ("P4", "component:default/four", MappingStatus::InSync),
                ("P5", "", MappingStatus::NotMapped),
            ]
        );
        assert_eq!(rows[3].entity_name, "four");
        // The key annotation resolves through the services' keys.
        assert_eq!(index.entity_of("P1"), Some("component:default/one"));
        let by_key = CatalogIndex::new(&[entity("keyed", None, Some("other"))], &accounts);
        assert_eq!(by_key.entity_of("P1"), Some("component:default/keyed"));
        // Without the catalog the store alone decides.
        let stored = [mapping("P3", "component:default/three")];
        let rows = service_rows(&accounts, &stored, &KeyAliases::none(), None);
        assert_eq!(rows[2].status, MappingStatus::InSync);
        assert_eq!(rows[3].status, MappingStatus::NotMapped);
    }

    /// The rows are read once per store revision: a second listing reuses
    /// them (and its fingerprint holds), a write through another handle on
    /// the database (another replica) is read by the very next listing.
    #[tokio::test]
    async fn a_listing_reads_the_rows_again_only_when_the_revision_moved() {
        let dir = std::env::temp_dir().join(format!("dutycard-listing-{}", uuid::Uuid::new_v4()));
        let url = format!("sqlite://{}/listing.db", dir.display());
        let options = store::StoreOptions::new(&url);
        let mine = store::Store::open(&options).await.unwrap();
        let other = store::Store::open(&options).await.unwrap();
        let service = MappingService::new(mine, Arc::new(KeyAliases::none()), None);
        let services = [service_of("P1", "one"), service_of("P2", "two")];
        let accounts: [(&str, &[pagerduty::Service]); 1] = [("", &services)];
        let write = async |id: &str, entity: &str| {
            other
                .upsert_mapping(&store::NewMapping {
                    service_id: id.into(),
                    entity_ref: entity.into(),
                    integration_key: None,
                    account: String::new(),
                })
                .await
        };
        write("P1", "component:default/a").await.unwrap();
        let first = service.service_listing(&accounts).await.unwrap();
        let again = service.service_listing(&accounts).await.unwrap();
        assert!(
            Arc::ptr_eq(&first.mappings, &again.mappings),
            "the kept rows"
        );
        assert_eq!(first.fingerprint(), again.fingerprint());
        write("P2", "component:default/b").await.unwrap();
        let after = service.service_listing(&accounts).await.unwrap();
        assert!(!Arc::ptr_eq(&first.mappings, &after.mappings), "read again");
        assert_ne!(after.fingerprint(), first.fingerprint());
        let rows = after.rows(&accounts, &KeyAliases::none());
        assert_eq!(
            rows.iter().map(|r| r.entity_ref).collect::<Vec<_>>(),
            ["component:default/a", "component:default/b"]
        );
        other.close().await;
        service.store().close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    fn service_of(id: &str, name: &str) -> pagerduty::Service {
        serde_json::from_value(serde_json::json!({"id": id, "name": name, "type": "service"}))
            .expect("a service")
    }
}
