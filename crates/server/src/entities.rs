//! Entity cards: one card for a catalog entity that owns several PagerDuty
//! services (the Node plugin's most asked-for feature), free of HTTP.
//!
//! The services are the entity's mappings in the store (each with its
//! account) and the catalog's `pagerduty.com/service-id` annotation; each service's card comes from its account's
//! [`cards::CardService`] (same caches as `/v1/cards`; the misses of one
//! account share batches). A service whose card fails is reported inside the
//! entity card, with its error, never as a failed request. The summary
//! combines the cards that could be built: open incidents across services
//! (newest first, each naming its service), who is on call now per distinct
//! escalation policy (deduplicated: two services on one policy show it once)
//! and the worst status.

use std::collections::BTreeMap;

use cards::{CardError, CardOptions, IncidentSummary, OncallLevel, ServiceCard};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::accounts::Accounts;
use crate::catalog::CatalogError;
use crate::mappings::{MappingError, MappingService, normalize_entity_ref};

/// One mapped service and its card (or why there is none).
#[derive(Debug)]
pub struct EntityService {
    pub service_id: String,
    pub account: String,
    pub card: Result<ServiceCard, EntityServiceError>,
}

/// Why a mapped service has no card.
#[derive(Debug, thiserror::Error)]
pub enum EntityServiceError {
    #[error(transparent)]
    Card(#[from] CardError),
    /// The mapping names an account that is no longer configured.
    #[error("the mapping names PagerDuty account `{0}`, which is not configured")]
    UnknownAccount(String),
}

/// The entity's worst status, from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EntityStatus {
    /// No open incident on any service.
    Ok,
    /// Some service's incidents could not be read (and none is worse).
    Unknown,
    /// An open incident is acknowledged, none is triggered.
    Acknowledged,
    /// An incident is triggered on some service.
    Triggered,
}

/// An open incident and the service it is on.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EntityIncident {
    pub service_id: String,
    pub service_name: Option<String>,
    #[serde(flatten)]
    pub incident: IncidentSummary,
}

/// Who is on call for one escalation policy, and the services using it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EntityOncall {
    pub escalation_policy_id: String,
    pub escalation_policy_name: Option<String>,
    /// The entity's services on this policy.
    pub service_ids: Vec<String>,
    pub levels: Vec<OncallLevel>,
}

/// What the entity's services add up to.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EntitySummary {
    pub status: EntityStatus,
    pub services: usize,
    /// Services without a card (see each one's error).
    pub failed_services: usize,
    pub triggered: u32,
    pub acknowledged: u32,
    /// The newest open incidents of every service, newest first.
    pub open_incidents: Vec<EntityIncident>,
    /// One entry per distinct escalation policy.
    pub oncall: Vec<EntityOncall>,
}

/// The entity's services and their cards.
#[derive(Debug)]
pub struct EntityServices {
    /// `kind:namespace/name`, lower case.
    pub entity_ref: String,
    /// Store mappings first (oldest first), then the catalog's annotated
    /// service when no mapping names it.
    pub services: Vec<EntityService>,
    /// Why the catalog's annotation could not be read (the mapped services
    /// are answered all the same).
    pub catalog_error: Option<String>,
}

/// Every card of the entity's services: the store's mappings (any account)
/// plus the catalog's `pagerduty.com/service-id` annotation (default
/// account) when `backstage.catalog_url` is set; 404 ([`MappingError::NotFound`]) when
/// neither names one. `account` keeps only the services of that account.
pub async fn entity_services(
    accounts: &Accounts,
    mappings: &MappingService,
    (kind, namespace, name): (&str, &str, &str),
    account: Option<&str>,
    options: &CardOptions,
) -> Result<EntityServices, MappingError> {
    let entity_ref = normalize_entity_ref("entityRef", &format!("{kind}:{namespace}/{name}"))?;
    let mut found: Vec<(String, String)> =
        match mappings.of_entity(kind, namespace, name, None).await {
            Ok(rows) => rows
                .into_iter()
                .map(|m| (m.account, m.service_id))
                .collect(),
            Err(MappingError::NotFound(_)) => Vec::new(),
            Err(e) => return Err(e),
        };
    let mut catalog_error = None;
    if let Some(catalog) = mappings.catalog() {
        match catalog.service_id(kind, namespace, name).await {
            Ok(id) if !found.iter().any(|(_, s)| *s == id) => {
                found.push((accounts.default_account().id.clone(), id));
            }
            Ok(_) | Err(CatalogError::NotFound(_) | CatalogError::NoAnnotation(_)) => {}
            Err(e) => catalog_error = Some(e.to_string()),
        }
    }
    found.retain(|(a, _)| account.is_none_or(|wanted| wanted == a));
    // A malformed id (from a catalog annotation) names no service.
    let before = found.len();
    found.retain(|(_, id)| pagerduty::ids::is_pagerduty_id(id));
    if found.len() < before && catalog_error.is_none() {
        catalog_error = Some(format!(
            "a pagerduty.com/service-id annotation {}",
            pagerduty::InvalidId::RULE
        ));
    }
    if found.is_empty() {
        return Err(MappingError::NotFound(format!(
            "No PagerDuty service is mapped to entity {entity_ref}."
        )));
    }
    // One batch per account, the accounts concurrently.
    let mut by_account: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (account, service_id) in &found {
        by_account
            .entry(account.as_str())
            .or_default()
            .push(service_id.clone());
    }
    let batches = futures::future::join_all(by_account.into_iter().map(|(id, ids)| async move {
        let cards = match accounts.get(Some(id)) {
            Ok(account) if id.is_empty() || account.id == id => {
                let typed: Vec<cards::ServiceId> = ids
                    .iter()
                    .filter_map(|id| cards::ServiceId::new(id).ok())
                    .collect();
                Box::pin(account.cards.cards(&typed, options))
                    .await
                    .into_iter()
                    .map(|r| r.map_err(EntityServiceError::from))
                    .collect()
            }
            _ => ids
                .iter()
                .map(|_| Err(EntityServiceError::UnknownAccount(id.to_owned())))
                .collect::<Vec<_>>(),
        };
        (id, ids.into_iter().zip(cards).collect::<BTreeMap<_, _>>())
    }))
    .await;
    let mut batches: BTreeMap<&str, BTreeMap<String, _>> = batches.into_iter().collect();
    let services = found
        .iter()
        .filter_map(|(account, service_id)| {
            let card = batches.get_mut(account.as_str())?.remove(service_id)?;
            Some(EntityService {
                service_id: service_id.clone(),
                account: account.clone(),
                card,
            })
        })
        .collect();
    Ok(EntityServices {
        entity_ref,
        services,
        catalog_error,
    })
}

/// The combined view of `services`.
pub fn summarize(services: &[EntityService]) -> EntitySummary {
    let mut summary = EntitySummary {
        status: EntityStatus::Ok,
        services: services.len(),
        failed_services: 0,
        triggered: 0,
        acknowledged: 0,
        open_incidents: Vec::new(),
        oncall: Vec::new(),
    };
    let mut unknown = false;
    for service in services {
        let Ok(card) = &service.card else {
            summary.failed_services += 1;
            unknown = true;
            continue;
        };
        let service_name = card.service.data.as_ref().map(|s| s.name.clone());
        match &card.incidents.data {
            Some(incidents) => {
                summary.triggered += incidents.triggered;
                summary.acknowledged += incidents.acknowledged;
                summary
                    .open_incidents
                    .extend(incidents.newest.iter().map(|incident| EntityIncident {
                        service_id: service.service_id.clone(),
                        service_name: service_name.clone(),
                        incident: incident.clone(),
                    }));
            }
            None => unknown = true,
        }
        if let Some(oncall) = &card.oncall.data {
            let policy_name = card
                .escalation_policy
                .data
                .as_ref()
                .and_then(|p| p.name.clone());
            match summary
                .oncall
                .iter_mut()
                .find(|o| o.escalation_policy_id == oncall.escalation_policy_id)
            {
                Some(existing) => existing.service_ids.push(service.service_id.clone()),
                None => summary.oncall.push(EntityOncall {
                    escalation_policy_id: oncall.escalation_policy_id.clone(),
                    escalation_policy_name: policy_name,
                    service_ids: vec![service.service_id.clone()],
                    levels: oncall.levels.clone(),
                }),
            }
        }
    }
    summary
        .open_incidents
        .sort_by_key(|i| std::cmp::Reverse(i.incident.created_at));
    summary.status = if summary.triggered > 0 {
        EntityStatus::Triggered
    } else if summary.acknowledged > 0 {
        EntityStatus::Acknowledged
    } else if unknown {
        EntityStatus::Unknown
    } else {
        EntityStatus::Ok
    };
    summary
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn card(service: &str, policy: &str, incidents: serde_json::Value) -> ServiceCard {
        let section = |data: serde_json::Value| json!({"data": data, "fetched_at": "2026-12-01T00:00:00Z", "stale": false, "max_age_secs": 30});
        serde_json::from_value(json!({
            "service": section(json!({"id": service, "name": format!("svc {service}"), "teams": []})),
            "escalation_policy": section(json!({"id": policy, "name": format!("policy {policy}"), "levels": []})),
            "oncall": section(json!({"escalation_policy_id": policy, "levels": [
                {"level": 1, "primary": true, "users": [{"id": "U1", "name": "Ann"}]}
            ]})),
            "incidents": section(incidents),
            "change_events": section(json!({"items": []})),
            "generated_at": "2026-12-01T00:00:00Z",
        }))
        .expect("a card")
    }

    fn incidents(triggered: u32, acknowledged: u32, newest: &[(&str, &str)]) -> serde_json::Value {
        json!({
            "triggered": triggered, "acknowledged": acknowledged, "truncated": false,
            "newest": newest.iter().map(|(id, at)| json!({"id": id, "status": "triggered", "created_at": at, "assignees": []})).collect::<Vec<_>>()
        })
    }

    fn service(id: &str, card: Result<ServiceCard, EntityServiceError>) -> EntityService {
        EntityService {
            service_id: id.into(),
            account: "default".into(),
            card,
        }
    }

    #[test]
    fn incidents_merge_newest_first_and_policies_are_shown_once() {
        let services = [
            service(
                "P1",
                Ok(card(
                    "P1",
                    "E1",
                    incidents(1, 0, &[("I1", "2026-12-01T10:00:00Z")]),
                )),
            ),
            service(
                "P2",
                Ok(card(
                    "P2",
                    "E1",
                    incidents(0, 1, &[("I2", "2026-12-01T11:00:00Z")]),
                )),
            ),
            service("P3", Ok(card("P3", "E2", incidents(0, 0, &[])))),
        ];
        let summary = summarize(&services);
        assert_eq!(summary.status, EntityStatus::Triggered);
        assert_eq!((summary.triggered, summary.acknowledged), (1, 1));
        let order: Vec<_> = summary
            .open_incidents
            .iter()
            .map(|i| (i.incident.id.as_str(), i.service_id.as_str()))
            .collect();
        assert_eq!(order, [("I2", "P2"), ("I1", "P1")]);
        assert_eq!(
            summary.open_incidents[0].service_name.as_deref(),
            Some("svc P2")
        );
        assert_eq!(summary.oncall.len(), 2);
        assert_eq!(summary.oncall[0].service_ids, ["P1", "P2"]);
        assert_eq!(
            summary.oncall[0].escalation_policy_name.as_deref(),
            Some("policy E1")
        );
    }

    #[test]
    fn a_failing_service_is_counted_and_makes_a_quiet_entity_unknown() {
        let failed = Err(EntityServiceError::UnknownAccount("gone".into()));
        let services = [
            service("P1", Ok(card("P1", "E1", incidents(0, 0, &[])))),
            service("P2", failed),
        ];
        let summary = summarize(&services);
        assert_eq!((summary.services, summary.failed_services), (2, 1));
        assert_eq!(summary.status, EntityStatus::Unknown);
        let services = [service("P1", Ok(card("P1", "E1", incidents(0, 2, &[]))))];
        assert_eq!(summarize(&services).status, EntityStatus::Acknowledged);
        assert_eq!(summarize(&[]).status, EntityStatus::Ok);
    }
}
