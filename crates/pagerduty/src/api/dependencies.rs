//! Service dependencies (`GET /service_dependencies/technical_services/{id}`,
//! `POST /service_dependencies/associate|disassociate`) and creating a
//! service's integration (`POST /services/{id}/integrations`).

use reqwest::Method;
use serde_json::json;

use super::decode_key;
use crate::client::{Call, Client, Host};
use crate::error::Result;
use crate::models::{Integration, ServiceDependency};

/// The `relationships` body of associate/disassociate: each
/// `(supporting, dependent)` pair of technical service ids.
fn relationships(pairs: &[(String, String)]) -> Vec<u8> {
    let items: Vec<_> = pairs
        .iter()
        .map(|(supporting, dependent)| {
            json!({
                "supporting_service": {"id": supporting, "type": "service"},
                "dependent_service": {"id": dependent, "type": "service"},
            })
        })
        .collect();
    json!({ "relationships": items }).to_string().into_bytes()
}

impl Client {
    /// `GET /service_dependencies/technical_services/{id}`: the service's
    /// dependencies, both directions. Scope: `services.read`.
    pub async fn service_dependencies(&self, service_id: &str) -> Result<Vec<ServiceDependency>> {
        super::require("service_id", service_id)?;
        self.get_one(
            "/service_dependencies/technical_services/{id}",
            &["service_dependencies", "technical_services", service_id],
            &[],
            "relationships",
        )
        .await
    }

    /// `POST /service_dependencies/associate` (`disassociate` when
    /// `associate` is false) for `(supporting, dependent)` pairs: all or
    /// nothing. Scope: `services.write`. Retried like a read: PagerDuty
    /// answers an existing (or already removed) dependency as it is, so a
    /// repeat changes nothing.
    pub async fn change_service_dependencies(
        &self,
        pairs: &[(String, String)],
        associate: bool,
    ) -> Result<Vec<ServiceDependency>> {
        let (endpoint, last) = if associate {
            ("/service_dependencies/associate", "associate")
        } else {
            ("/service_dependencies/disassociate", "disassociate")
        };
        let bytes = self
            .inner
            .execute(Call {
                method: Method::POST,
                host: Host::Api,
                endpoint,
                segments: &["service_dependencies", last],
                query: &[],
                body: Some(relationships(pairs)),
                idempotent: true,
                single_attempt: false,
            })
            .await?;
        decode_key(&bytes, "relationships")
    }

    /// `POST /services/{id}/integrations`: a new integration of vendor
    /// `vendor_id` (e.g. `PRO19CT`, Backstage) named `name`. Scope:
    /// `services.write`. Not retried once sent (a repeat would create a
    /// second integration).
    pub async fn create_integration(
        &self,
        service_id: &str,
        vendor_id: &str,
        name: &str,
    ) -> Result<Integration> {
        super::require("service_id", service_id)?;
        super::require("vendor_id", vendor_id)?;
        let body = json!({"integration": {
            "name": name,
            "service": {"id": service_id, "type": "service_reference"},
            "vendor": {"id": vendor_id, "type": "vendor_reference"},
        }});
        let bytes = self
            .inner
            .execute(Call {
                method: Method::POST,
                host: Host::Api,
                endpoint: "/services/{id}/integrations",
                segments: &["services", service_id, "integrations"],
                query: &[],
                body: Some(body.to_string().into_bytes()),
                idempotent: false,
                single_attempt: false,
            })
            .await?;
        decode_key(&bytes, "integration")
    }
}
