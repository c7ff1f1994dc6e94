//! `GET /mapping/entity`'s rows: every PagerDuty service with the entity it
//! is mapped to, in the Node backend's shape.
//!
//! Status: `InSync` when the store maps the service to an entity,
//! `NotMapped` otherwise. (The Node backend also reports `OutOfSync` when the
//! catalog's `pagerduty.com/service-id` annotation disagrees with the stored
//! row; that needs the catalog, which these rows do not read.)

use std::collections::HashMap;

use serde::Serialize;
use store::Mapping;
use utoipa::ToSchema;

use super::service_key;
use crate::keys::KeyAliases;

/// A service's mapping status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub enum MappingStatus {
    InSync,
    OutOfSync,
    NotMapped,
}

/// One service and its mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceMappingRow {
    /// `kind:namespace/name`, `""` when not mapped.
    pub entity_ref: String,
    /// The name part of `entityRef`.
    pub entity_name: String,
    pub service_id: String,
    /// The stored key, else the service's Backstage integration key, shown
    /// by `backstage.integration_keys` (`""` when omitted or none).
    pub integration_key: String,
    pub status: MappingStatus,
    pub service_name: String,
    /// The service's first team.
    pub team: String,
    pub escalation_policy: String,
    pub service_url: String,
    pub account: String,
}

/// The rows of every service of every `(account, services)` pair, sorted by
/// service name (case-insensitive), then account.
pub fn service_rows(
    accounts: &[(&str, &[pagerduty::Service])],
    mappings: &[Mapping],
    keys: &KeyAliases,
) -> Vec<ServiceMappingRow> {
    let by_service: HashMap<&str, &Mapping> = mappings
        .iter()
        .map(|m| (m.service_id.as_str(), m))
        .collect();
    let by_service = &by_service;
    let mut rows: Vec<ServiceMappingRow> = accounts
        .iter()
        .flat_map(|(account, services)| {
            services.iter().map(move |service| {
                let mapping = by_service
                    .get(service.id.as_str())
                    .filter(|m| !m.entity_ref.is_empty());
                let key = mapping
                    .and_then(|m| m.integration_key.as_ref().map(|k| k.expose().to_owned()))
                    .or_else(|| service_key(service));
                let entity_ref = mapping.map(|m| m.entity_ref.clone()).unwrap_or_default();
                ServiceMappingRow {
                    entity_name: entity_name(&entity_ref).to_owned(),
                    entity_ref,
                    service_id: service.id.clone(),
                    integration_key: key
                        .and_then(|k| keys.shown(account, &k))
                        .unwrap_or_default(),
                    status: if mapping.is_some() {
                        MappingStatus::InSync
                    } else {
                        MappingStatus::NotMapped
                    },
                    service_name: service.name.clone(),
                    team: service
                        .teams
                        .first()
                        .and_then(|t| t.summary.clone().or_else(|| t.name.clone()))
                        .unwrap_or_default(),
                    escalation_policy: service
                        .escalation_policy
                        .as_ref()
                        .and_then(|p| p.summary.clone().or_else(|| p.name.clone()))
                        .unwrap_or_default(),
                    service_url: service.html_url.clone().unwrap_or_default(),
                    account: (*account).to_owned(),
                }
            })
        })
        .collect();
    rows.sort_by_cached_key(|r| (r.service_name.to_lowercase(), r.account.clone()));
    rows
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
        let rows = service_rows(&[("default", &services)], &[mapping], &KeyAliases::none());
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
}
