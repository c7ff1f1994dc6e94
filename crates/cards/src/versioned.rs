//! The Backstage lists with the version of their cached entry, so the
//! server can reuse the body it rendered from the same list.

use std::sync::Arc;

use pagerduty::{EscalationPolicy, Service, Team};

use crate::cache::Lookup;
use crate::error::SectionError;
use crate::service::{CardService, list};

/// A cached list and its entry's version (see [`crate::Cached::version`]).
pub type Versioned<T> = (Arc<Vec<T>>, u64);

type ListResult<T> = Result<Versioned<T>, Arc<pagerduty::Error>>;

fn versioned<T>(lookup: Result<Lookup<Arc<Vec<T>>>, SectionError>) -> ListResult<T> {
    let version = lookup.as_ref().map_or(0, |l| l.version);
    list(lookup).map(|value| (value, version))
}

impl CardService {
    /// [`CardService::escalation_policies`] with its version.
    pub async fn escalation_policies_versioned(&self) -> ListResult<EscalationPolicy> {
        versioned(self.inner.lists.policies.get(&()).await)
    }

    /// [`CardService::teams`] with its version.
    pub async fn teams_versioned(&self) -> ListResult<Team> {
        versioned(self.inner.lists.teams.get(&()).await)
    }

    /// [`CardService::services`] with its version.
    pub async fn services_versioned(&self) -> ListResult<Service> {
        versioned(self.inner.lists.services.get(&()).await)
    }

    /// [`CardService::filtered_services`] with its version.
    pub async fn filtered_services_versioned(
        &self,
        team_id: Option<String>,
        query: Option<String>,
        limit: u32,
    ) -> ListResult<Service> {
        versioned(
            self.inner
                .lists
                .filtered
                .get(&(team_id, query, limit))
                .await,
        )
    }
}
