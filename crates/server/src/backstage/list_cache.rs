//! Short-lived caches of the list routes (escalation policies, teams,
//! services), per account. Concurrent misses of one key run one upstream
//! read (moka's `try_get_with`); errors are not cached.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use pagerduty::{
    EscalationPolicy, ListEscalationPolicies, ListServices, ListTeams, Service, ServiceInclude,
    Team,
};

use crate::accounts::Account;

/// PagerDuty's largest page: the fewest round trips per list.
const PAGE: u32 = 100;

/// Keys of the filtered `GET /services` page: account, team, query, limit.
type FilterKey = (String, Option<String>, Option<String>, u32);

/// The list caches of every account.
pub struct ListCache {
    policies: Cache<String, Arc<Vec<EscalationPolicy>>>,
    teams: Cache<String, Arc<Vec<Team>>>,
    services: Cache<String, Arc<Vec<Service>>>,
    filtered: Cache<FilterKey, Arc<Vec<Service>>>,
}

impl ListCache {
    /// Entries live `ttl`.
    pub fn new(ttl: Duration) -> Self {
        fn cache<K, V>(ttl: Duration, capacity: u64) -> Cache<K, V>
        where
            K: std::hash::Hash + Eq + Send + Sync + 'static,
            V: Clone + Send + Sync + 'static,
        {
            Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build()
        }
        Self {
            policies: cache(ttl, 64),
            teams: cache(ttl, 64),
            services: cache(ttl, 64),
            filtered: cache(ttl, 1_000),
        }
    }

    /// Every escalation policy of the account.
    pub async fn escalation_policies(
        &self,
        account: &Account,
    ) -> Result<Arc<Vec<EscalationPolicy>>, Arc<pagerduty::Error>> {
        let client = account.client.clone();
        self.policies
            .try_get_with(account.id.clone(), async move {
                client
                    .list_all_escalation_policies(&ListEscalationPolicies {
                        limit: Some(PAGE),
                        ..ListEscalationPolicies::default()
                    })
                    .await
                    .map(Arc::new)
            })
            .await
    }

    /// Every team of the account.
    pub async fn teams(&self, account: &Account) -> Result<Arc<Vec<Team>>, Arc<pagerduty::Error>> {
        let client = account.client.clone();
        self.teams
            .try_get_with(account.id.clone(), async move {
                client
                    .list_all_teams(&ListTeams {
                        limit: Some(PAGE),
                        ..ListTeams::default()
                    })
                    .await
                    .map(Arc::new)
            })
            .await
    }

    /// Every service of the account, with integrations, escalation policy and teams.
    pub async fn all_services(
        &self,
        account: &Account,
    ) -> Result<Arc<Vec<Service>>, Arc<pagerduty::Error>> {
        let client = account.client.clone();
        self.services
            .try_get_with(account.id.clone(), async move {
                client
                    .list_all_services(&ListServices {
                        include: vec![
                            ServiceInclude::Integrations,
                            ServiceInclude::EscalationPolicies,
                            ServiceInclude::Teams,
                        ],
                        limit: Some(PAGE),
                        ..ListServices::default()
                    })
                    .await
                    .map(Arc::new)
            })
            .await
    }

    /// One page of services filtered by team and/or query.
    pub async fn filtered_services(
        &self,
        account: &Account,
        team_id: Option<String>,
        query: Option<String>,
        limit: u32,
    ) -> Result<Arc<Vec<Service>>, Arc<pagerduty::Error>> {
        let client = account.client.clone();
        let key = (account.id.clone(), team_id.clone(), query.clone(), limit);
        self.filtered
            .try_get_with(key, async move {
                client
                    .list_services(&ListServices {
                        query,
                        team_ids: team_id.into_iter().collect(),
                        limit: Some(limit),
                        ..ListServices::default()
                    })
                    .await
                    .map(|page| Arc::new(page.items))
            })
            .await
    }
}
