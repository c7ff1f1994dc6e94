//! `POST /mapping/entities`'s rows: every `Component` entity of the
//! catalog with the PagerDuty service it belongs to, filtered, sorted and
//! paged, in the Node backend's shape (`FormattedBackstageEntity`).
//!
//! An entity's service is the one its `pagerduty.com/service-id`
//! annotation names, else the one that has its
//! `pagerduty.com/integration-key`, else the one a stored row maps to it;
//! names, URL, team, policy and account come from the cached services
//! lists (no PagerDuty call per entity). Its status follows the rule of
//! `GET /mapping/entity` ([`super::listing`]): `InSync` when the annotated
//! service is mapped to this entity or not mapped at all, `OutOfSync` when
//! it is mapped to another entity or when only a stored row (no
//! annotation) ties the entity to a service, `NotMapped` otherwise.
//!
//! Where this differs from the Node backend, on purpose: it answers
//! `NotMapped` for every entity annotated by integration key and leaves
//! `team` and `account` (and for id-annotated entities `escalationPolicy`)
//! empty; here they are filled from the service. Its `system`, `owner` and
//! `lifecycle` are `JSON.stringify`ed (`"\"shop\""`), and so are these, so
//! its frontend shows them the same.

use std::cmp::Ordering;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use store::Mapping;
use utoipa::ToSchema;

use super::{MappingError, MappingService};
use crate::catalog::{CatalogEntity, CatalogError};
use crate::keys::KeyAliases;

/// An entity's status in the paged listing (the Node backend's, with the
/// one it reports when a service could not be read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum EntityStatus {
    ErrorWhenFetchingService,
    NotMapped,
    OutOfSync,
    InSync,
}

impl EntityStatus {
    /// `status` as the filter names it.
    pub fn parse(text: &str) -> Option<EntityStatus> {
        Some(match text {
            "ErrorWhenFetchingService" => EntityStatus::ErrorWhenFetchingService,
            "NotMapped" => EntityStatus::NotMapped,
            "OutOfSync" => EntityStatus::OutOfSync,
            "InSync" => EntityStatus::InSync,
            _ => return None,
        })
    }
}

/// The two annotations the Node backend echoes (`""` when absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct EntityAnnotations {
    /// Shown by `backstage.integration_keys`, like every key dutycard answers.
    #[serde(rename = "pagerduty.com/integration-key")]
    pub integration_key: String,
    #[serde(rename = "pagerduty.com/service-id")]
    pub service_id: String,
}

/// One entity of the paged listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntityRow {
    pub name: String,
    /// `metadata.uid`.
    pub id: String,
    pub namespace: String,
    /// The entity's kind (`Component`).
    #[serde(rename = "type")]
    pub kind: String,
    /// `spec.system` JSON-stringified like the Node backend (`"\"shop\""`),
    /// `""` when absent; so are `owner` and `lifecycle`.
    pub system: String,
    pub owner: String,
    pub lifecycle: String,
    pub annotations: EntityAnnotations,
    pub status: EntityStatus,
    pub service_name: String,
    pub service_url: String,
    /// The service's first team.
    pub team: String,
    pub escalation_policy: String,
    /// The service's account id.
    pub account: String,
}

/// A sortable column (`team` sorts by `owner`, like the Node backend).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum SortColumn {
    Name,
    Team,
    ServiceName,
    Status,
    Account,
}

/// A sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SortDirection {
    Ascending,
    Descending,
}

/// What to list: filters (each a case-insensitive substring, empty means
/// none; `status` exact), an optional sort, and the page.
#[derive(Debug, Clone, Default)]
pub struct EntityQuery {
    pub offset: usize,
    pub limit: usize,
    pub name: String,
    pub team_name: String,
    pub service_name: String,
    pub status: Option<EntityStatus>,
    pub account: String,
    pub sort: Option<(SortColumn, SortDirection)>,
}

/// One page and how many rows passed the filters.
#[derive(Debug)]
pub struct EntityPage {
    pub entities: Vec<EntityRow>,
    pub total_count: usize,
}

impl MappingService {
    /// The catalog's components with their services (of `accounts`' cached
    /// lists) and stored mappings, filtered, sorted and paged. Needs the
    /// catalog: without one, or when it fails, the listing fails with why.
    pub async fn entity_listing(
        &self,
        accounts: &[(&str, &[pagerduty::Service])],
        query: &EntityQuery,
    ) -> Result<Result<EntityPage, CatalogError>, MappingError> {
        let Some(catalog) = self.catalog() else {
            return Ok(Err(CatalogError::NotConfigured));
        };
        let (entities, mappings) = tokio::join!(catalog.components(), self.all());
        let mappings = mappings?;
        Ok(entities.map(|entities| {
            let rows = entity_rows(&entities, accounts, &mappings, self.keys());
            page(rows, query)
        }))
    }
}

/// `JSON.stringify(value)` when the value is truthy, else `""`.
fn stringified(value: Option<&serde_json::Value>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

/// Every entity's row, in the catalog's order.
pub fn entity_rows(
    entities: &[CatalogEntity],
    accounts: &[(&str, &[pagerduty::Service])],
    mappings: &[Mapping],
    keys: &KeyAliases,
) -> Vec<EntityRow> {
    let mut by_id: HashMap<&str, (&str, &pagerduty::Service)> = HashMap::new();
    let mut by_key: HashMap<&str, (&str, &pagerduty::Service)> = HashMap::new();
    for (account, services) in accounts {
        for service in services.iter() {
            by_id
                .entry(service.id.as_str())
                .or_insert((account, service));
            for integration in &service.integrations {
                if let Some(key) = &integration.integration_key {
                    by_key.entry(key.as_str()).or_insert((account, service));
                }
            }
        }
    }
    let row_of_service: HashMap<&str, &Mapping> = mappings
        .iter()
        .filter(|m| !m.entity_ref.is_empty())
        .map(|m| (m.service_id.as_str(), m))
        .collect();
    let mut rows_of_entity: HashMap<&str, &Mapping> = HashMap::new();
    for m in mappings.iter().filter(|m| !m.entity_ref.is_empty()) {
        rows_of_entity.entry(m.entity_ref.as_str()).or_insert(m);
    }
    let default_account = accounts.first().map(|(a, _)| *a).unwrap_or_default();
    entities
        .iter()
        .map(|entity| {
            let entity_ref = entity.entity_ref();
            let annotated = entity
                .service_id
                .as_deref()
                .map(|id| by_id.get(id).copied())
                .or_else(|| {
                    entity
                        .integration_key
                        .as_deref()
                        .map(|k| by_key.get(k).copied())
                });
            let (status, service) = match annotated {
                // Annotated with a service the lists have.
                Some(Some((account, service))) => {
                    let status = match row_of_service.get(service.id.as_str()) {
                        Some(m) if m.entity_ref != entity_ref => EntityStatus::OutOfSync,
                        _ => EntityStatus::InSync,
                    };
                    (status, Some((account, service)))
                }
                // Annotated with a service no account has.
                Some(None) => (EntityStatus::NotMapped, None),
                None => match rows_of_entity.get(entity_ref.as_str()) {
                    Some(m) => (
                        EntityStatus::OutOfSync,
                        by_id.get(m.service_id.as_str()).copied(),
                    ),
                    None => (EntityStatus::NotMapped, None),
                },
            };
            let key_account = service
                .map(|(a, _)| a)
                .or(entity.account.as_deref())
                .unwrap_or(default_account);
            EntityRow {
                name: entity.name.clone(),
                id: entity.uid.clone(),
                namespace: entity.namespace.clone(),
                kind: entity.kind.clone(),
                system: stringified(entity.system.as_ref()),
                owner: stringified(entity.owner.as_ref()),
                lifecycle: stringified(entity.lifecycle.as_ref()),
                annotations: EntityAnnotations {
                    integration_key: entity
                        .integration_key
                        .as_deref()
                        .and_then(|k| keys.shown(key_account, k))
                        .unwrap_or_default(),
                    service_id: entity.service_id.clone().unwrap_or_default(),
                },
                status,
                service_name: service.map(|(_, s)| s.name.clone()).unwrap_or_default(),
                service_url: service
                    .and_then(|(_, s)| s.html_url.clone())
                    .unwrap_or_default(),
                team: service
                    .and_then(|(_, s)| s.teams.first())
                    .and_then(|t| t.summary.clone().or_else(|| t.name.clone()))
                    .unwrap_or_default(),
                escalation_policy: service
                    .and_then(|(_, s)| s.escalation_policy.as_ref())
                    .and_then(|p| p.summary.clone().or_else(|| p.name.clone()))
                    .unwrap_or_default(),
                account: service.map(|(a, _)| (*a).to_owned()).unwrap_or_default(),
            }
        })
        .collect()
}

fn contains(haystack: &str, needle: &str) -> bool {
    needle.is_empty() || haystack.to_lowercase().contains(needle)
}

fn status_order(status: EntityStatus) -> u8 {
    status as u8
}

/// Filters, sorts (stable: ties keep the catalog's order) and pages `rows`.
pub fn page(mut rows: Vec<EntityRow>, query: &EntityQuery) -> EntityPage {
    let name = query.name.trim().to_lowercase();
    let team = query.team_name.trim().to_lowercase();
    let service = query.service_name.trim().to_lowercase();
    let account = query.account.trim().to_lowercase();
    rows.retain(|r| {
        contains(&r.name, &name)
            && (contains(&r.owner, &team) || (!team.is_empty() && contains(&r.team, &team)))
            && contains(&r.service_name, &service)
            && contains(&r.account, &account)
            && query.status.is_none_or(|s| s == r.status)
    });
    if let Some((column, direction)) = query.sort {
        rows.sort_by(|a, b| {
            let ordering = match column {
                SortColumn::Status => status_order(a.status).cmp(&status_order(b.status)),
                SortColumn::Name => cmp_text(&a.name, &b.name),
                SortColumn::Team => cmp_text(&a.owner, &b.owner),
                SortColumn::ServiceName => cmp_text(&a.service_name, &b.service_name),
                SortColumn::Account => cmp_text(&a.account, &b.account),
            };
            match direction {
                SortDirection::Ascending => ordering,
                SortDirection::Descending => ordering.reverse(),
            }
        });
    }
    let total_count = rows.len();
    let entities = rows
        .into_iter()
        .skip(query.offset)
        .take(query.limit)
        .collect();
    EntityPage {
        entities,
        total_count,
    }
}

fn cmp_text(a: &str, b: &str) -> Ordering {
    a.to_lowercase().cmp(&b.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(id: &str, name: &str, key: &str) -> pagerduty::Service {
        serde_json::from_value(json!({
            "id": id, "name": name, "type": "service",
            "html_url": format!("https://acme.pagerduty.com/service-directory/{id}"),
            "teams": [{"id": "T1", "type": "team_reference", "summary": "Checkout"}],
            "escalation_policy": {"id": "E1", "type": "escalation_policy_reference", "summary": "Checkout Escalation"},
            "integrations": [{"id": "I1", "type": "events_api_v2_inbound_integration", "integration_key": key}]
        }))
        .expect("a service")
    }

    fn entity(
        name: &str,
        service_id: Option<&str>,
        key: Option<&str>,
        owner: &str,
    ) -> CatalogEntity {
        CatalogEntity {
            kind: "Component".into(),
            namespace: "default".into(),
            name: name.into(),
            uid: format!("uid-{name}"),
            system: Some(json!("shop")),
            owner: Some(json!(owner)),
            service_id: service_id.map(Into::into),
            integration_key: key.map(Into::into),
            ..CatalogEntity::default()
        }
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

    fn rows() -> Vec<EntityRow> {
        let services = [
            service("P1", "Checkout API", "k1"),
            service("P2", "Payments", "k2"),
            service("P3", "Search", "k3"),
        ];
        let entities = [
            entity("checkout", Some("P1"), None, "group:default/checkout"),
            entity("pay", None, Some("k2"), "group:default/payments"),
            entity("docs", None, None, "group:default/platform"),
            entity("ghost", Some("PNONE"), None, "group:default/platform"),
            entity("bare", None, None, "group:default/search"),
        ];
        entity_rows(
            &entities,
            &[("default", &services)],
            &[
                mapping("P1", "component:default/checkout"),
                mapping("P2", "component:default/docs"),
            ],
            &KeyAliases::none(),
        )
    }

    #[test]
    fn each_entity_gets_its_service_and_status() {
        let rows = rows();
        let got: Vec<(&str, EntityStatus, &str)> = rows
            .iter()
            .map(|r| (r.name.as_str(), r.status, r.service_name.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("checkout", EntityStatus::InSync, "Checkout API"),
                ("pay", EntityStatus::OutOfSync, "Payments"),
                ("docs", EntityStatus::OutOfSync, "Payments"),
                ("ghost", EntityStatus::NotMapped, ""),
                ("bare", EntityStatus::NotMapped, ""),
            ]
        );
        assert_eq!(rows[0].system, "\"shop\"", "JSON-stringified like Node");
        assert_eq!(rows[0].owner, "\"group:default/checkout\"");
        assert_eq!(rows[0].lifecycle, "");
        assert_eq!(rows[0].team, "Checkout");
        assert_eq!(rows[0].account, "default");
        assert_eq!(rows[1].annotations.integration_key, "k2");
        assert_eq!(rows[1].annotations.service_id, "");
        assert_eq!(rows[3].account, "");
    }

    #[test]
    fn filters_sort_and_page() {
        let all = |q: EntityQuery| {
            let p = page(rows(), &q);
            (
                p.entities
                    .iter()
                    .map(|r| r.name.clone())
                    .collect::<Vec<_>>(),
                p.total_count,
            )
        };
        let q = |f: fn(&mut EntityQuery)| {
            let mut q = EntityQuery {
                limit: 10,
                ..EntityQuery::default()
            };
            f(&mut q);
            q
        };
        assert_eq!(all(q(|q| q.name = "C".into())).0, ["checkout", "docs"]);
        assert_eq!(
            all(q(|q| q.team_name = "platform".into())).0,
            ["docs", "ghost"]
        );
        assert_eq!(all(q(|q| q.service_name = "pay".into())).0, ["pay", "docs"]);
        assert_eq!(
            all(q(|q| q.status = Some(EntityStatus::NotMapped))).0,
            ["ghost", "bare"]
        );
        assert_eq!(
            all(q(
                |q| q.sort = Some((SortColumn::Name, SortDirection::Descending))
            ))
            .0,
            ["pay", "ghost", "docs", "checkout", "bare"]
        );
        assert_eq!(
            all(q(
                |q| q.sort = Some((SortColumn::Status, SortDirection::Ascending))
            ))
            .0,
            ["ghost", "bare", "pay", "docs", "checkout"],
            "the Node backend's order; ties keep the catalog's"
        );
        assert_eq!(
            all(q(|q| {
                q.offset = 1;
                q.limit = 2;
            })),
            (vec!["pay".to_owned(), "docs".to_owned()], 5)
        );
        assert_eq!(all(q(|q| q.offset = 9)), (vec![], 5));
    }
}
