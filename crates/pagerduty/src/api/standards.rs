//! Service standards: `GET /standards/scores/technical_services[/{id}]`.

use super::decode_value;
use crate::client::Client;
use crate::error::Result;
use crate::models::ServiceStandards;
use crate::query::{Pairs, push_all};

/// PagerDuty's maximum number of `ids` per request.
const MAX_IDS: usize = 100;

impl Client {
    /// `GET /standards/scores/technical_services/{id}`. Scope: `standards.read`.
    pub async fn service_standards(&self, service_id: &str) -> Result<ServiceStandards> {
        super::require("service_id", service_id)?;
        let bytes = self
            .get_raw(
                "/standards/scores/technical_services/{id}",
                &["standards", "scores", "technical_services", service_id],
                &[],
            )
            .await?;
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| crate::Error::Decode {
                path: String::new(),
                message: format!("not JSON: {e}"),
            })?;
        decode_value(v, "")
    }

    /// `GET /standards/scores/technical_services?ids=…` (repeated `ids`),
    /// in chunks of 100 ids. Scope: `standards.read`.
    pub async fn services_standards(
        &self,
        service_ids: &[String],
    ) -> Result<Vec<ServiceStandards>> {
        let mut out = Vec::new();
        for chunk in service_ids.chunks(MAX_IDS) {
            let mut q = Pairs::new();
            push_all(&mut q, "ids", chunk);
            let mut part: Vec<ServiceStandards> = self
                .get_one(
                    "/standards/scores/technical_services",
                    &["standards", "scores", "technical_services"],
                    &q,
                    "resources",
                )
                .await?;
            out.append(&mut part);
        }
        Ok(out)
    }
}
