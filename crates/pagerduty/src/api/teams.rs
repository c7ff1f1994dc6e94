//! Teams: `GET /teams`.

use futures::stream::BoxStream;

use crate::client::Client;
use crate::error::Result;
use crate::models::Team;
use crate::page::Page;
use crate::query::ListTeams;

impl Client {
    /// `GET /teams`: one page. Scope: `teams.read`.
    pub async fn list_teams(&self, q: &ListTeams) -> Result<Page<Team>> {
        self.get_page("/teams", &["teams"], q, "teams").await
    }

    /// `GET /teams`: every page, as a stream.
    pub fn teams_stream(&self, q: &ListTeams) -> BoxStream<'static, Result<Team>> {
        self.paginate("/teams", vec!["teams".into()], q, "teams")
    }

    /// `GET /teams`: every page, collected.
    pub async fn list_all_teams(&self, q: &ListTeams) -> Result<Vec<Team>> {
        self.collect_all("/teams", vec!["teams".into()], q, "teams")
            .await
    }
}
