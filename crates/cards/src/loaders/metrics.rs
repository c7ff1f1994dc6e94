//! The metrics section: 30-day incident analytics per service.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use pagerduty::{IncidentMetricsQuery, ServiceIncidentMetrics};

use super::Upstream;
use crate::batcher::{BatchResults, Early};
use crate::build::BatchLoad;
use crate::error::SectionError;

/// Metrics cover the last 30 days.
const METRICS_DAYS: i64 = 30;

/// Metrics rows with the period they cover.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct MetricsValue {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub rows: Vec<ServiceIncidentMetrics>,
}

/// `POST /analytics/metrics/incidents/services` over the last 30 days: one
/// call for many services; a service without incidents gets no rows.
pub(crate) struct MetricsLoader(pub Upstream);

impl BatchLoad<String, Arc<MetricsValue>> for MetricsLoader {
    async fn load(
        &self,
        keys: Vec<String>,
        _early: Early<String, Arc<MetricsValue>>,
    ) -> Result<BatchResults<String, Arc<MetricsValue>>, SectionError> {
        // The period is wall-clock time (it is PagerDuty's query), not freshness.
        let until = Utc::now();
        let since = until - chrono::Duration::days(METRICS_DAYS);
        self.0.count();
        let rows = self
            .0
            .client
            .incident_metrics_by_service(&IncidentMetricsQuery {
                service_ids: keys.clone(),
                created_at_start: since,
                created_at_end: until,
                aggregate_unit: None,
                time_zone: Some("Etc/UTC".into()),
            })
            .await?;
        let mut per: HashMap<String, Vec<ServiceIncidentMetrics>> =
            keys.iter().map(|k| (k.clone(), Vec::new())).collect();
        for row in rows {
            if let Some(group) = per.get_mut(&row.service_id) {
                group.push(row);
            }
        }
        Ok(per
            .into_iter()
            .map(|(k, rows)| (k, Ok(Arc::new(MetricsValue { since, until, rows }))))
            .collect())
    }

    fn missing(&self, id: &String) -> Result<Arc<MetricsValue>, SectionError> {
        Err(SectionError::not_found(format!(
            "no metrics for service {id}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loaders::testing::{nobody, sim, upstream};

    #[tokio::test]
    async fn one_call_covers_the_last_thirty_days_of_every_service() {
        let sim = sim(10).await;
        let ids: Vec<String> = sim
            .account()
            .services
            .iter()
            .map(|s| s.id.clone())
            .collect();
        let loader = MetricsLoader(upstream(&sim));
        let results = loader.load(ids.clone(), nobody()).await.unwrap();
        for id in &ids {
            let value = results[id].as_ref().unwrap();
            assert_eq!(value.until - value.since, chrono::Duration::days(30));
            assert!(value.rows.iter().all(|r| &r.service_id == id));
        }
        assert_eq!(loader.0.counters.snapshot().upstream_calls, 1);
        assert_eq!(
            sim.stats()
                .count("POST", "/analytics/metrics/incidents/services"),
            1
        );
    }
}
