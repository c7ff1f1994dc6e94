//! Entity mappings and the admin page's settings: the domain behind the
//! Backstage routes `/settings…` and `/mapping…`, free of HTTP.
//!
//! The rows live in the `store` crate (SQLite or Postgres); the PagerDuty
//! side (does the service exist, its name, team, policy, Backstage
//! integration key) comes from each account's cached lists in
//! [`cards::CardService`], so listing every service costs no extra upstream
//! call when the lists are warm. Integration keys are stored as they are
//! (an alias given by a browser is mapped back first, see [`crate::keys`])
//! and never logged; answers show them by the `backstage.integration_keys`
//! rule.
//!
//! [`listing`] builds the status rows of every service (`InSync` /
//! `OutOfSync` / `NotMapped`, with the catalog's annotations);
//! [`entity_listing`] the paged rows of every catalog entity.

pub mod entity_listing;
pub mod listing;
mod settings;

use std::sync::Arc;

use store::{Inserted, Mapping, NewMapping, Store, StoreError, StoredKey};

use crate::accounts::Account;
use crate::catalog::CatalogClient;
use crate::keys::{AliasError, KeyAliases};
pub use settings::{KNOWN_SETTINGS, check_setting};

/// ` in account X` when a lookup was limited to one account.
fn in_account(account: Option<&str>) -> String {
    account
        .map(|a| format!(" in account {a}"))
        .unwrap_or_default()
}

fn not_mapped(service_id: &str, account: Option<&str>) -> MappingError {
    MappingError::NotFound(format!(
        "Mapping for serviceId {service_id} not found{}.",
        in_account(account)
    ))
}

/// The Backstage vendor's integration (preferred when a mapping names no key).
const BACKSTAGE_VENDOR: &str = "PRO19CT";

/// Why a mapping or settings operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    /// Bad input: the field and the problem.
    #[error("{field} {message}")]
    Invalid { field: String, message: String },
    /// Nothing stored under this id.
    #[error("{0}")]
    NotFound(String),
    /// The PagerDuty service does not exist in the account.
    #[error("service {service_id} was not found in PagerDuty account {account}")]
    UnknownService { service_id: String, account: String },
    /// PagerDuty could not be read to check the service.
    #[error("{0}")]
    PagerDuty(cards::CardError),
    /// The account's services list could not be read.
    #[error("{0}")]
    ServicesList(Arc<pagerduty::Error>),
    /// The integration key alias could not be mapped back.
    #[error(transparent)]
    Alias(AliasError),
    /// The database failed (`is_unavailable`: down or slow, retry).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl MappingError {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        MappingError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// What a caller asks to map.
#[derive(Debug, Clone, Default)]
pub struct MapRequest {
    pub entity_ref: String,
    pub service_id: String,
    /// An integration key or its alias; empty: the service's Backstage
    /// integration key.
    pub integration_key: Option<String>,
}

/// One row of a bulk request and what happened to it.
#[derive(Debug)]
pub enum BulkRow {
    Created(Mapping),
    Skipped {
        entity_ref: String,
        service_id: String,
        reason: String,
    },
    Failed {
        entity_ref: String,
        service_id: Option<String>,
        error: String,
    },
}

/// The mapping domain service.
pub struct MappingService {
    store: Store,
    keys: Arc<KeyAliases>,
    catalog: Option<CatalogClient>,
    /// Bumped after every committed mapping write (entity streams re-read).
    writes: tokio::sync::watch::Sender<u64>,
    /// The rows the last service listing read, under the store's revision.
    kept_rows: listing::KeptRows,
}

impl MappingService {
    pub fn new(store: Store, keys: Arc<KeyAliases>, catalog: Option<CatalogClient>) -> Self {
        Self {
            store,
            keys,
            catalog,
            writes: tokio::sync::watch::Sender::new(0),
            kept_rows: listing::KeptRows::default(),
        }
    }

    /// Changes after every committed mapping write (map, bulk, unmap) of
    /// this process: which entities a write touched is not said (a remap
    /// moves a service between two), so a listener re-reads what it shows.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.writes.subscribe()
    }

    fn written(&self) {
        self.writes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The Backstage catalog, when `backstage.catalog_url` is set.
    pub fn catalog(&self) -> Option<&CatalogClient> {
        self.catalog.as_ref()
    }

    /// The store (readiness pings it).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The key aliases (answers show keys by their rule).
    pub fn keys(&self) -> &KeyAliases {
        &self.keys
    }

    /// A known setting's stored value; 400 for an unknown id, 404 unset.
    pub async fn setting(&self, id: &str) -> Result<store::Setting, MappingError> {
        settings::check_id(id)?;
        self.store
            .setting(id)
            .await?
            .ok_or_else(|| MappingError::NotFound(format!("Setting {id} is not set.")))
    }

    /// Checks every `(id, value)` (all problems of the first bad one named),
    /// then stores them together in one transaction.
    pub async fn store_settings(&self, settings: &[(String, String)]) -> Result<(), MappingError> {
        for (i, (id, value)) in settings.iter().enumerate() {
            check_setting(id, value).map_err(|e| match e {
                MappingError::Invalid { field, message } => {
                    MappingError::invalid(format!("[{i}].{field}"), message)
                }
                other => other,
            })?;
        }
        Ok(self.store.put_settings(settings).await?)
    }

    /// Maps `request.service_id` of `account` to `request.entity_ref`,
    /// replacing the service's previous mapping. The service must exist;
    /// without a key, its Backstage (else first) integration key is stored.
    pub async fn map(
        &self,
        account: &Account,
        request: MapRequest,
    ) -> Result<Mapping, MappingError> {
        let entity_ref = normalize_entity_ref("entityRef", &request.entity_ref)?;
        check_service_id("serviceId", &request.service_id)?;
        let service = account
            .cards
            .raw_service(&request.service_id)
            .await
            .map_err(|e| match e {
                cards::CardError::NotFound { .. } => MappingError::UnknownService {
                    service_id: request.service_id.clone(),
                    account: account.id.clone(),
                },
                other => MappingError::PagerDuty(other),
            })?
            .value;
        let key = self
            .key_to_store(account, request.integration_key.as_deref(), &service)
            .await?;
        let mapping = self
            .store
            .upsert_mapping(&NewMapping {
                service_id: request.service_id,
                entity_ref,
                integration_key: key,
                account: account.id.clone(),
            })
            .await?;
        self.written();
        Ok(mapping)
    }

    /// Maps many services at once: rows whose service is already mapped are
    /// skipped (left unchanged), bad rows are reported, the rest inserted in
    /// transactions of [`store::BULK_CHUNK`] rows. Services are checked
    /// against the account's cached services list (one read for all rows).
    pub async fn map_bulk(
        &self,
        account: &Account,
        requests: Vec<MapRequest>,
    ) -> Result<Vec<BulkRow>, MappingError> {
        let services = account
            .cards
            .services()
            .await
            .map_err(MappingError::ServicesList)?;
        let mut rows: Vec<Option<BulkRow>> = Vec::with_capacity(requests.len());
        let mut to_insert = Vec::new();
        let mut positions = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, request) in requests.into_iter().enumerate() {
            let checked = async {
                let entity_ref = normalize_entity_ref("entityRef", &request.entity_ref)?;
                check_service_id("serviceId", &request.service_id)?;
                let service = services
                    .iter()
                    .find(|s| s.id == request.service_id)
                    .ok_or_else(|| MappingError::UnknownService {
                        service_id: request.service_id.clone(),
                        account: account.id.clone(),
                    })?;
                let key = self
                    .key_to_store(account, request.integration_key.as_deref(), service)
                    .await?;
                Ok::<_, MappingError>(NewMapping {
                    service_id: request.service_id.clone(),
                    entity_ref,
                    integration_key: key,
                    account: account.id.clone(),
                })
            }
            .await;
            match checked {
                Ok(mapping) if !seen.insert(mapping.service_id.clone()) => {
                    rows.push(Some(BulkRow::Skipped {
                        entity_ref: mapping.entity_ref,
                        service_id: mapping.service_id,
                        reason: "Duplicate service ID in this request".into(),
                    }));
                }
                Ok(mapping) => {
                    positions.push(i);
                    to_insert.push(mapping);
                    rows.push(None);
                }
                Err(MappingError::Store(e)) => return Err(MappingError::Store(e)),
                Err(e) => rows.push(Some(BulkRow::Failed {
                    entity_ref: request.entity_ref,
                    service_id: (!request.service_id.is_empty()).then_some(request.service_id),
                    error: e.to_string(),
                })),
            }
        }
        let outcomes = self.store.insert_new_mappings(&to_insert).await?;
        if outcomes.iter().any(|o| matches!(o, Inserted::Created(_))) {
            self.written();
        }
        for ((position, outcome), asked) in positions.into_iter().zip(outcomes).zip(to_insert) {
            rows[position] = Some(match outcome {
                Inserted::Created(mapping) => BulkRow::Created(mapping),
                Inserted::Exists => BulkRow::Skipped {
                    entity_ref: asked.entity_ref,
                    service_id: asked.service_id,
                    reason: "Mapping already exists for this service ID".into(),
                },
            });
        }
        Ok(rows.into_iter().flatten().collect())
    }

    /// The mappings of an entity (`kind`, `namespace`, `name`), oldest first,
    /// only those of `account` when given; 404 when there is none.
    pub async fn of_entity(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        account: Option<&str>,
    ) -> Result<Vec<Mapping>, MappingError> {
        let entity_ref = normalize_entity_ref("entityRef", &format!("{kind}:{namespace}/{name}"))?;
        let mut found = self.store.mappings_of_entity(&entity_ref).await?;
        found.retain(|m| account.is_none_or(|a| m.account == a));
        if found.is_empty() {
            return Err(MappingError::NotFound(format!(
                "Mapping for entityRef {entity_ref} not found{}.",
                in_account(account)
            )));
        }
        Ok(found)
    }

    /// The mapping of a service (only if it names `account`, when given);
    /// 404 when there is none.
    pub async fn of_service(
        &self,
        service_id: &str,
        account: Option<&str>,
    ) -> Result<Mapping, MappingError> {
        check_service_id(":serviceId", service_id)?;
        self.store
            .mapping_by_service(service_id)
            .await?
            .filter(|m| account.is_none_or(|a| m.account == a))
            .ok_or_else(|| not_mapped(service_id, account))
    }

    /// Removes the mapping of a service (only if it names `account`, when
    /// given, in the same statement); 404 when there is none.
    pub async fn unmap(
        &self,
        service_id: &str,
        account: Option<&str>,
    ) -> Result<Mapping, MappingError> {
        check_service_id(":serviceId", service_id)?;
        let removed = match account {
            None => self.store.delete_mapping(service_id).await?,
            Some(account) => {
                self.store
                    .delete_mapping_in_account(service_id, account)
                    .await?
            }
        }
        .ok_or_else(|| not_mapped(service_id, account))?;
        self.written();
        Ok(removed)
    }

    /// Every mapping.
    pub async fn all(&self) -> Result<Vec<Mapping>, MappingError> {
        Ok(self.store.mappings().await?)
    }

    /// The key to store: the caller's (an alias mapped back), else the
    /// service's Backstage integration key, else its first key.
    async fn key_to_store(
        &self,
        account: &Account,
        given: Option<&str>,
        service: &pagerduty::Service,
    ) -> Result<Option<StoredKey>, MappingError> {
        match given.map(str::trim).filter(|k| !k.is_empty()) {
            Some(text) => Ok(Some(StoredKey::new(
                self.keys
                    .key(account, text)
                    .await
                    .map_err(MappingError::Alias)?,
            ))),
            None => Ok(service_key(service).map(StoredKey::new)),
        }
    }
}

/// The Backstage (`PRO19CT`) integration's key of `service`, else its first.
pub fn service_key(service: &pagerduty::Service) -> Option<String> {
    let keyed = || {
        service
            .integrations
            .iter()
            .filter(|i| i.integration_key.is_some())
    };
    keyed()
        .find(|i| i.vendor.as_ref().is_some_and(|v| v.id == BACKSTAGE_VENDOR))
        .or_else(|| keyed().next())
        .and_then(|i| i.integration_key.clone())
}

/// `kind:namespace/name` (namespace `default` when absent), lower case like
/// the Node backend, each part checked.
pub fn normalize_entity_ref(field: &str, text: &str) -> Result<String, MappingError> {
    let text = text.trim();
    let invalid = |why: &str| MappingError::invalid(field, format!("`{text}` {why}"));
    if text.is_empty() {
        return Err(MappingError::invalid(
            field,
            "is required (kind:namespace/name)",
        ));
    }
    let (kind, rest) = text
        .split_once(':')
        .ok_or_else(|| invalid("is not an entity reference (kind:namespace/name)"))?;
    let (namespace, name) = rest.split_once('/').unwrap_or(("default", rest));
    for part in [kind, namespace, name] {
        if part.is_empty()
            || part.len() > 253
            || !part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(invalid(
                "is not an entity reference (kind:namespace/name; letters, digits, - _ .)",
            ));
        }
    }
    Ok(format!("{kind}:{namespace}/{name}").to_lowercase())
}

/// PagerDuty ids are short alphanumeric strings.
pub fn check_service_id(field: &str, id: &str) -> Result<(), MappingError> {
    if !pagerduty::ids::is_pagerduty_id(id) {
        return Err(MappingError::invalid(
            field,
            "must be a PagerDuty id (1 to 64 letters and digits)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_refs_are_checked_and_lower_cased() {
        assert_eq!(
            normalize_entity_ref("entityRef", "Component:Default/Checkout-API").unwrap(),
            "component:default/checkout-api"
        );
        assert_eq!(
            normalize_entity_ref("entityRef", "component:web").unwrap(),
            "component:default/web"
        );
        for bad in ["", "web", "component:/x", "component:a/b c", "component:a/"] {
            let e = normalize_entity_ref("entityRef", bad).unwrap_err();
            assert!(e.to_string().starts_with("entityRef"), "{bad}: {e}");
        }
    }
}
