//! Services: `GET /services/{id}`, `GET /services`, lookup by integration key.

use futures::TryStreamExt;
use futures::stream::BoxStream;

use crate::client::Client;
use crate::error::Result;
use crate::models::Service;
use crate::page::Page;
use crate::query::{ListServices, Pairs, ServiceInclude, push_all};

impl Client {
    /// `GET /services/{id}` with `include[]` (escalation_policies, integrations, teams).
    ///
    /// Scope: `services.read`. A missing service is [`crate::Error::NotFound`].
    pub async fn get_service(&self, id: &str, include: &[ServiceInclude]) -> Result<Service> {
        super::require("service_id", id)?;
        let mut q = Pairs::new();
        push_all(&mut q, "include[]", include);
        q.push(("time_zone".into(), "UTC".into()));
        self.get_one("/services/{id}", &["services", id], &q, "service")
            .await
    }

    /// `GET /services`: one page.
    pub async fn list_services(&self, q: &ListServices) -> Result<Page<Service>> {
        self.get_page("/services", &["services"], q, "services")
            .await
    }

    /// `GET /services`: every page, as a stream.
    pub fn services_stream(&self, q: &ListServices) -> BoxStream<'static, Result<Service>> {
        self.paginate("/services", vec!["services".into()], q, "services")
    }

    /// `GET /services`: every page, collected.
    pub async fn list_all_services(&self, q: &ListServices) -> Result<Vec<Service>> {
        self.collect_all("/services", vec!["services".into()], q, "services")
            .await
    }

    /// Finds the service that owns an integration (routing) key.
    ///
    /// PagerDuty has no lookup endpoint; like PagerDuty's Backstage backend
    /// this asks `GET /services?query=KEY&include[]=integrations`, but it
    /// does not trust the first result: it returns the service whose
    /// `integrations[].integration_key` equals `key`, searching every result
    /// page, and `None` when no service matches. The key is never logged.
    pub async fn find_service_by_integration_key(&self, key: &str) -> Result<Option<Service>> {
        super::require("integration_key", key)?;
        let q = ListServices {
            query: Some(key.to_string()),
            include: vec![ServiceInclude::Integrations],
            limit: Some(100),
            ..Default::default()
        };
        let mut stream = self.services_stream(&q);
        while let Some(service) = stream.try_next().await? {
            if service
                .integrations
                .iter()
                .any(|i| i.integration_key.as_deref() == Some(key))
            {
                return Ok(Some(service));
            }
        }
        Ok(None)
    }
}
