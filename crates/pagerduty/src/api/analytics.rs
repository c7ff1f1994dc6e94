//! Incident analytics: `POST /analytics/metrics/incidents/services`.

use reqwest::Method;

use super::decode_key;
use crate::client::{Call, Client, Host};
use crate::error::Result;
use crate::models::ServiceIncidentMetrics;
use crate::query::IncidentMetricsQuery;

impl Client {
    /// `POST /analytics/metrics/incidents/services`: aggregated incident
    /// metrics per service. Scope: `analytics.read`. A read, so it is retried
    /// like a GET.
    pub async fn incident_metrics_by_service(
        &self,
        q: &IncidentMetricsQuery,
    ) -> Result<Vec<ServiceIncidentMetrics>> {
        let body = serde_json::to_vec(&q.to_body()).map_err(|e| crate::Error::Config {
            field: "incident_metrics_query".into(),
            message: e.to_string(),
        })?;
        let bytes = self
            .inner
            .execute(Call {
                method: Method::POST,
                host: Host::Api,
                endpoint: "/analytics/metrics/incidents/services",
                segments: &["analytics", "metrics", "incidents", "services"],
                query: &[],
                body: Some(body),
                idempotent: true,
                single_attempt: false,
            })
            .await?;
        decode_key(&bytes, "data")
    }
}
