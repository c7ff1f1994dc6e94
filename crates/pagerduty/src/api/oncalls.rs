//! On-calls: `GET /oncalls`.

use futures::stream::BoxStream;

use crate::client::Client;
use crate::error::Result;
use crate::models::Oncall;
use crate::page::Page;
use crate::query::ListOncalls;

impl Client {
    /// `GET /oncalls`: one page. Scope: `oncalls.read`.
    pub async fn list_oncalls(&self, q: &ListOncalls) -> Result<Page<Oncall>> {
        self.get_page("/oncalls", &["oncalls"], q, "oncalls").await
    }

    /// `GET /oncalls`: every page, as a stream.
    pub fn oncalls_stream(&self, q: &ListOncalls) -> BoxStream<'static, Result<Oncall>> {
        self.paginate("/oncalls", vec!["oncalls".into()], q, "oncalls")
    }

    /// `GET /oncalls`: every page, collected.
    pub async fn list_all_oncalls(&self, q: &ListOncalls) -> Result<Vec<Oncall>> {
        self.collect_all("/oncalls", vec!["oncalls".into()], q, "oncalls")
            .await
    }
}
