//! Incidents: `GET /incidents`.

use futures::stream::BoxStream;

use crate::client::Client;
use crate::error::Result;
use crate::models::Incident;
use crate::page::Page;
use crate::query::ListIncidents;

impl Client {
    /// `GET /incidents`: one page. Scope: `incidents.read`.
    ///
    /// Without `date_range_all` or `since`, PagerDuty only looks at the last
    /// month; set `date_range_all` to see every open incident.
    pub async fn list_incidents(&self, q: &ListIncidents) -> Result<Page<Incident>> {
        self.get_page("/incidents", &["incidents"], q, "incidents")
            .await
    }

    /// `GET /incidents`: every page, as a stream.
    pub fn incidents_stream(&self, q: &ListIncidents) -> BoxStream<'static, Result<Incident>> {
        self.paginate("/incidents", vec!["incidents".into()], q, "incidents")
    }

    /// `GET /incidents`: every page, collected.
    pub async fn list_all_incidents(&self, q: &ListIncidents) -> Result<Vec<Incident>> {
        self.collect_all("/incidents", vec!["incidents".into()], q, "incidents")
            .await
    }
}
