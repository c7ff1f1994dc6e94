//! The Backstage catalog, read for an entity's `pagerduty.com/service-id`
//! annotation (`GET {catalog.url}/entities/by-name/{kind}/{namespace}/{name}`
//! with a service token). Every call is bounded by `catalog.timeout_ms`.

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::config::CatalogSettings;

/// The annotation naming an entity's PagerDuty service.
pub const SERVICE_ID_ANNOTATION: &str = "pagerduty.com/service-id";

/// Why the catalog could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("the Backstage catalog is not configured: set catalog.url (DUTYCARD_CATALOG__URL)")]
    NotConfigured,
    #[error("entity {0} was not found in the catalog")]
    NotFound(String),
    #[error("entity {0} has no {SERVICE_ID_ANNOTATION} annotation")]
    NoAnnotation(String),
    #[error("the catalog refused dutycard's token (HTTP {0}): check catalog.token")]
    Refused(u16),
    #[error("the catalog failed: {0}")]
    Unavailable(String),
    #[error("the catalog did not answer within {0} ms")]
    Timeout(u64),
}

/// A client of the catalog API.
pub struct CatalogClient {
    http: reqwest::Client,
    base: url::Url,
    token: Option<SecretString>,
    timeout_ms: u64,
}

impl std::fmt::Debug for CatalogClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogClient")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl CatalogClient {
    /// The client `[catalog]` describes, if a URL is set (validated by the
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
            .map_err(|_| CatalogError::Unavailable("catalog.url cannot be a base".into()))?
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
}
