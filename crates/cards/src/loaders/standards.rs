//! The standards section: technical standards scores per service.

use std::sync::Arc;

use pagerduty::ServiceStandards;

use super::Upstream;
use crate::batcher::{BatchResults, Early};
use crate::build::BatchLoad;
use crate::error::SectionError;

/// `GET /standards/scores/technical_services?ids=…`: one call for many services.
pub(crate) struct StandardsLoader(pub Upstream);

impl BatchLoad<String, Arc<ServiceStandards>> for StandardsLoader {
    async fn load(
        &self,
        keys: Vec<String>,
        _early: Early<String, Arc<ServiceStandards>>,
    ) -> Result<BatchResults<String, Arc<ServiceStandards>>, SectionError> {
        self.0.count();
        let items = self.0.client.services_standards(&keys).await?;
        Ok(items
            .into_iter()
            .map(|s| (s.resource_id.clone(), Ok(Arc::new(s))))
            .collect())
    }

    fn missing(&self, id: &String) -> Result<Arc<ServiceStandards>, SectionError> {
        Err(SectionError::not_found(format!(
            "no standards scores for service {id}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::SectionErrorKind;
    use crate::loaders::testing::{nobody, sim, upstream};

    #[tokio::test]
    async fn one_call_scores_every_service_of_the_batch() {
        let sim = sim(10).await;
        let account = sim.account();
        let ids: Vec<String> = account.services.iter().map(|s| s.id.clone()).collect();
        let loader = StandardsLoader(upstream(&sim));
        let results = loader.load(ids.clone(), nobody()).await.unwrap();
        for id in &ids {
            let scores = results[id].as_ref().unwrap();
            assert_eq!(scores.standards.len(), account.standards_for(id).len());
        }
        assert_eq!(loader.0.counters.snapshot().upstream_calls, 1);
        assert_eq!(
            loader.missing(&"PX".into()).unwrap_err().kind,
            SectionErrorKind::NotFound
        );
    }
}
