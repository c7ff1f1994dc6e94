//! The Backstage catalog, read for an entity's `pagerduty.com/service-id`
//! annotation (`GET {backstage.catalog_url}/entities/by-name/{kind}/{namespace}/{name}`
//! with a service token) and for lists of entities
//! (`GET {backstage.catalog_url}/entities/by-query`, paged by cursor: the annotated
//! entities behind the mapping statuses, the components of the paged
//! listing). Every call, a whole paged list included, is bounded by
//! `backstage.catalog_timeout_ms`.

use std::sync::atomic::{AtomicBool, Ordering};

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::config::CatalogSettings;

/// The annotation naming an entity's PagerDuty service.
pub const SERVICE_ID_ANNOTATION: &str = "pagerduty.com/service-id";
/// The annotation naming an entity's Events API routing key.
pub const INTEGRATION_KEY_ANNOTATION: &str = "pagerduty.com/integration-key";
/// The annotation naming an entity's PagerDuty account.
pub const ACCOUNT_ANNOTATION: &str = "pagerduty.com/account";
/// Entities per `by-query` page.
const PAGE_SIZE: usize = 500;
/// At most this many entities are read for one list (the Node backend's
/// bound for its post-processed listing).
pub const MAX_ENTITIES: usize = 10_000;
/// The fields a list asks for (the rest of an entity is never read).
const FIELDS: &str = "kind,metadata.name,metadata.namespace,metadata.uid,metadata.annotations,spec.system,spec.owner,spec.lifecycle";

/// Why the catalog could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error(
        "the Backstage catalog is not configured: set backstage.catalog_url (DUTYCARD_BACKSTAGE__CATALOG_URL)"
    )]
    NotConfigured,
    #[error("entity {0} was not found in the catalog")]
    NotFound(String),
    #[error("entity {0} has no {SERVICE_ID_ANNOTATION} annotation")]
    NoAnnotation(String),
    #[error("the catalog refused dutycard's token (HTTP {0}): check backstage.catalog_token")]
    Refused(u16),
    #[error("the catalog failed: {0}")]
    Unavailable(String),
    #[error("the catalog did not answer within {0} ms")]
    Timeout(u64),
}

/// One entity of a catalog list, with what the mapping routes read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CatalogEntity {
    /// As the catalog spells it (e.g. `Component`).
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// `metadata.uid` (`""` when absent).
    pub uid: String,
    /// `spec.system`, `spec.owner`, `spec.lifecycle` as the catalog gave them.
    pub system: Option<Value>,
    pub owner: Option<Value>,
    pub lifecycle: Option<Value>,
    /// Non-empty `pagerduty.com/service-id`.
    pub service_id: Option<String>,
    /// Non-empty `pagerduty.com/integration-key`.
    pub integration_key: Option<String>,
    /// Non-empty `pagerduty.com/account`.
    pub account: Option<String>,
}

impl CatalogEntity {
    /// `kind:namespace/name`, lower case like the stored entity refs.
    pub fn entity_ref(&self) -> String {
        format!("{}:{}/{}", self.kind, self.namespace, self.name).to_lowercase()
    }

    fn from_json(entity: &Value) -> Option<CatalogEntity> {
        let metadata = &entity["metadata"];
        let text = |v: &Value| v.as_str().map(str::to_owned);
        let spec =
            |field: &str| Some(entity["spec"][field].clone()).filter(|v| !v.is_null() && v != "");
        let annotations = &metadata["annotations"];
        let annotation = |key: &str| {
            annotations[key]
                .as_str()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        Some(CatalogEntity {
            kind: text(&entity["kind"])?,
            namespace: text(&metadata["namespace"]).unwrap_or_else(|| "default".to_owned()),
            name: text(&metadata["name"])?,
            uid: text(&metadata["uid"]).unwrap_or_default(),
            system: spec("system"),
            owner: spec("owner"),
            lifecycle: spec("lifecycle"),
            service_id: annotation(SERVICE_ID_ANNOTATION),
            integration_key: annotation(INTEGRATION_KEY_ANNOTATION),
            account: annotation(ACCOUNT_ANNOTATION),
        })
    }
}

/// A client of the catalog API.
pub struct CatalogClient {
    http: reqwest::Client,
    base: url::Url,
    token: Option<SecretString>,
    timeout_ms: u64,
    /// A list read failed last time: logged once per outage, not per call.
    failing: AtomicBool,
}

impl std::fmt::Debug for CatalogClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogClient")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl CatalogClient {
    /// The client `backstage.catalog_*` describes, if a URL is set (validated by the
    /// settings already).
    pub fn from_settings(settings: &CatalogSettings) -> Option<CatalogClient> {
        let base = url::Url::parse(settings.url.as_deref()?).ok()?;
        let http = reqwest::Client::builder()
            .timeout(settings.timeout())
            .build()
            .ok()?;
        Some(CatalogClient {
            http,
            base,
            token: settings.token.clone(),
            timeout_ms: settings.timeout_ms,
            failing: AtomicBool::new(false),
        })
    }

    /// The entity's JSON.
    pub async fn entity(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Value, CatalogError> {
        let entity_ref = format!("{kind}:{namespace}/{name}");
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|_| {
                CatalogError::Unavailable("backstage.catalog_url cannot be a base".into())
            })?
            .pop_if_empty()
            .extend(["entities", "by-name", kind, namespace, name]);
        let mut request = self.http.get(url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose_secret());
        }
        let response = request.send().await.map_err(|e| self.transport(&e))?;
        match response.status().as_u16() {
            200 => response.json().await.map_err(|e| self.transport(&e)),
            404 => Err(CatalogError::NotFound(entity_ref)),
            status @ (401 | 403) => Err(CatalogError::Refused(status)),
            status => Err(CatalogError::Unavailable(format!("HTTP {status}"))),
        }
    }

    /// The entity's `pagerduty.com/service-id` annotation.
    pub async fn service_id(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<String, CatalogError> {
        let entity = self.entity(kind, namespace, name).await?;
        annotation(&entity)
            .ok_or_else(|| CatalogError::NoAnnotation(format!("{kind}:{namespace}/{name}")))
    }

    /// Every entity with a `pagerduty.com/service-id` or
    /// `pagerduty.com/integration-key` annotation (the two `filter`
    /// parameters are or-ed by the catalog), at most [`MAX_ENTITIES`].
    pub async fn annotated_entities(&self) -> Result<Vec<CatalogEntity>, CatalogError> {
        self.query(&[
            format!("metadata.annotations.{SERVICE_ID_ANNOTATION}"),
            format!("metadata.annotations.{INTEGRATION_KEY_ANNOTATION}"),
        ])
        .await
    }

    /// Every `Component` entity (the Node backend's `queryEntities`), at
    /// most [`MAX_ENTITIES`], in the catalog's order.
    pub async fn components(&self) -> Result<Vec<CatalogEntity>, CatalogError> {
        self.query(&["kind=component".to_owned()]).await
    }

    /// `GET /entities/by-query?filter=…`, every page (the first with the
    /// filters, the next ones with the cursor the catalog answered), the
    /// whole list inside one `backstage.catalog_timeout_ms`.
    async fn query(&self, filters: &[String]) -> Result<Vec<CatalogEntity>, CatalogError> {
        let result = self.read_pages(filters).await;
        // A listing without the catalog still answers; the outage is logged
        // when it starts and when it ends, not on every listing.
        match &result {
            Err(e) if !self.failing.swap(true, Ordering::Relaxed) => {
                tracing::warn!(error = %e, "the Backstage catalog cannot be read; mapping statuses come from the store alone until it answers");
            }
            Ok(_) if self.failing.swap(false, Ordering::Relaxed) => {
                tracing::info!("the Backstage catalog answers again");
            }
            _ => {}
        }
        result
    }

    async fn read_pages(&self, filters: &[String]) -> Result<Vec<CatalogEntity>, CatalogError> {
        let read = async {
            let mut entities = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let mut url = self.base.clone();
                url.path_segments_mut()
                    .map_err(|_| {
                        CatalogError::Unavailable("backstage.catalog_url cannot be a base".into())
                    })?
                    .pop_if_empty()
                    .extend(["entities", "by-query"]);
                {
                    let mut query = url.query_pairs_mut();
                    query
                        .append_pair("limit", &PAGE_SIZE.to_string())
                        .append_pair("fields", FIELDS);
                    match &cursor {
                        Some(cursor) => {
                            query.append_pair("cursor", cursor);
                        }
                        None => {
                            for filter in filters {
                                query.append_pair("filter", filter);
                            }
                        }
                    }
                }
                let mut request = self.http.get(url);
                if let Some(token) = &self.token {
                    request = request.bearer_auth(token.expose_secret());
                }
                let response = request.send().await.map_err(|e| self.transport(&e))?;
                let page: Value = match response.status().as_u16() {
                    200 => response.json().await.map_err(|e| self.transport(&e))?,
                    status @ (401 | 403) => return Err(CatalogError::Refused(status)),
                    status => return Err(CatalogError::Unavailable(format!("HTTP {status}"))),
                };
                let items = page["items"].as_array().ok_or_else(|| {
                    CatalogError::Unavailable("its answer is not a list of entities".into())
                })?;
                entities.extend(items.iter().filter_map(CatalogEntity::from_json));
                cursor = page["pageInfo"]["nextCursor"]
                    .as_str()
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned);
                if cursor.is_none() || items.is_empty() || entities.len() >= MAX_ENTITIES {
                    entities.truncate(MAX_ENTITIES);
                    return Ok(entities);
                }
            }
        };
        tokio::time::timeout(std::time::Duration::from_millis(self.timeout_ms), read)
            .await
            .map_err(|_| CatalogError::Timeout(self.timeout_ms))?
    }

    fn transport(&self, e: &reqwest::Error) -> CatalogError {
        if e.is_timeout() {
            CatalogError::Timeout(self.timeout_ms)
        } else if e.is_decode() {
            CatalogError::Unavailable("its answer is not an entity".into())
        } else {
            // Without the URL: it may carry credentials.
            CatalogError::Unavailable("it cannot be reached".into())
        }
    }
}

/// A non-empty `metadata.annotations["pagerduty.com/service-id"]`.
pub fn annotation(entity: &Value) -> Option<String> {
    entity["metadata"]["annotations"][SERVICE_ID_ANNOTATION]
        .as_str()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_annotation_is_read_and_empty_means_none() {
        let entity = json!({"metadata": {"annotations": {SERVICE_ID_ANNOTATION: "PSVC001"}}});
        assert_eq!(annotation(&entity).as_deref(), Some("PSVC001"));
        let empty = json!({"metadata": {"annotations": {SERVICE_ID_ANNOTATION: " "}}});
        assert_eq!(annotation(&empty), None);
        assert_eq!(annotation(&json!({})), None);
    }

    #[test]
    fn a_listed_entity_keeps_what_the_mapping_routes_read() {
        let entity = CatalogEntity::from_json(&json!({
            "kind": "Component",
            "metadata": {"name": "Checkout-API", "uid": "u1", "annotations": {
                SERVICE_ID_ANNOTATION: "PSVC001", INTEGRATION_KEY_ANNOTATION: "",
                ACCOUNT_ANNOTATION: "eu"}},
            "spec": {"system": "shop", "owner": "group:default/checkout"}
        }))
        .expect("an entity");
        assert_eq!(entity.entity_ref(), "component:default/checkout-api");
        assert_eq!(entity.service_id.as_deref(), Some("PSVC001"));
        assert_eq!(entity.integration_key, None, "empty is none");
        assert_eq!(entity.account.as_deref(), Some("eu"));
        assert_eq!(entity.system, Some(json!("shop")));
        assert_eq!(entity.lifecycle, None);
        assert_eq!(CatalogEntity::from_json(&json!({"metadata": {}})), None);
    }
}
