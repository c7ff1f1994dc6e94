//! The incidents section: open incidents (any age) per service.

use std::sync::Arc;

use pagerduty::{Incident, IncidentStatus, ListIncidents};

use super::{Upstream, group_by};
use crate::batcher::{BatchResults, Early};
use crate::build::BatchLoad;
use crate::error::SectionError;
use crate::paging::{PAGE_LIMIT, read_all};

/// Pages of open incidents read per batch (1 000 incidents): during an alert
/// storm a batch stops there and its services' incident sections say
/// `truncated` (their counts are then lower bounds).
pub(crate) const INCIDENT_PAGES: u32 = 10;

/// A service's open incidents, and whether the batch that read them was cut
/// short by [`INCIDENT_PAGES`].
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct OpenIncidents {
    pub items: Vec<Incident>,
    pub truncated: bool,
}

/// `GET /incidents?service_ids[]=…&statuses[]=triggered&statuses[]=acknowledged&date_range=all`,
/// newest first, at most [`INCIDENT_PAGES`] pages, split per service.
pub(crate) struct IncidentsLoader(pub Upstream);

impl BatchLoad<String, Arc<OpenIncidents>> for IncidentsLoader {
    async fn load(
        &self,
        keys: Vec<String>,
        _early: Early<String, Arc<OpenIncidents>>,
    ) -> Result<BatchResults<String, Arc<OpenIncidents>>, SectionError> {
        let client = &self.0.client;
        let (items, truncated) = read_all(&self.0.counters, INCIDENT_PAGES, |offset| {
            let q = ListIncidents {
                service_ids: keys.clone(),
                statuses: vec![IncidentStatus::Triggered, IncidentStatus::Acknowledged],
                // Open incidents older than PagerDuty's default 30-day window too.
                date_range_all: true,
                sort_by: Some("created_at:desc".into()),
                limit: Some(PAGE_LIMIT),
                offset: Some(offset),
                ..Default::default()
            };
            async move { client.list_incidents(&q).await }
        })
        .await?;
        let groups = group_by(&keys, items, |i: &Incident| {
            i.service.iter().map(|s| s.id.clone()).collect()
        });
        Ok(groups
            .into_iter()
            .map(|(k, v)| {
                let v = v.map(|items| {
                    Arc::new(OpenIncidents {
                        items: Arc::unwrap_or_clone(items),
                        truncated,
                    })
                });
                (k, v)
            })
            .collect())
    }

    fn missing(&self, _service: &String) -> Result<Arc<OpenIncidents>, SectionError> {
        Ok(Arc::new(OpenIncidents::default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loaders::testing::{nobody, sim, upstream};

    #[tokio::test]
    async fn open_incidents_of_every_age_are_split_per_service() {
        let sim = sim(30).await;
        let account = sim.account();
        let ids: Vec<String> = account.services.iter().map(|s| s.id.clone()).collect();
        let loader = IncidentsLoader(upstream(&sim));
        let results = loader.load(ids.clone(), nobody()).await.unwrap();
        for id in &ids {
            let open = results[id].as_ref().unwrap();
            assert_eq!(open.items.len(), account.open_incidents(id).len(), "{id}");
            assert!(!open.truncated);
            let mut created: Vec<_> = open.items.iter().map(|i| i.created_at).collect();
            let sorted = {
                let mut c = created.clone();
                c.sort_by(|a, b| b.cmp(a));
                c
            };
            assert_eq!(created, sorted, "newest first");
            created.clear();
        }
        assert_eq!(
            sim.stats().count("GET", "/incidents"),
            loader.0.counters.snapshot().upstream_calls
        );
        assert!(loader.missing(&"PX".into()).unwrap().items.is_empty());
    }
}
