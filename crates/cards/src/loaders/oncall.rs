//! The on-call section: who is on call per escalation policy.

use std::sync::Arc;

use pagerduty::{ListOncalls, Oncall};

use super::{Upstream, group_by};
use crate::batcher::{BatchResults, Early};
use crate::build::BatchLoad;
use crate::error::SectionError;
use crate::paging::{PAGE_LIMIT, read_all};

/// `GET /oncalls?escalation_policy_ids[]=…&include[]=users&earliest=true`,
/// every page, split per policy; a policy nobody is on call for gets an
/// empty list.
pub(crate) struct OncallLoader(pub Upstream);

impl BatchLoad<String, Arc<Vec<Oncall>>> for OncallLoader {
    async fn load(
        &self,
        keys: Vec<String>,
        _early: Early<String, Arc<Vec<Oncall>>>,
    ) -> Result<BatchResults<String, Arc<Vec<Oncall>>>, SectionError> {
        let client = &self.0.client;
        let (items, _) = read_all(&self.0.counters, u32::MAX, |offset| {
            let q = ListOncalls {
                escalation_policy_ids: keys.clone(),
                include_users: true,
                earliest: true,
                time_zone: Some("UTC".into()),
                limit: Some(PAGE_LIMIT),
                offset: Some(offset),
                ..Default::default()
            };
            async move { client.list_oncalls(&q).await }
        })
        .await?;
        Ok(group_by(&keys, items, |o: &Oncall| {
            vec![o.escalation_policy.id.clone()]
        }))
    }

    fn missing(&self, _policy: &String) -> Result<Arc<Vec<Oncall>>, SectionError> {
        Ok(Arc::new(Vec::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loaders::testing::{nobody, sim, upstream};

    #[tokio::test]
    async fn one_call_answers_every_policy_of_the_batch() {
        let sim = sim(20).await;
        let account = sim.account();
        let mut policies: Vec<String> = account
            .escalation_policies
            .iter()
            .map(|p| p.id.clone())
            .collect();
        policies.truncate(3);
        policies.push("PNOBODY".into());
        let loader = OncallLoader(upstream(&sim));
        let results = loader.load(policies.clone(), nobody()).await.unwrap();
        let stats = sim.stats();
        assert_eq!(
            stats.count("GET", "/oncalls"),
            loader.0.counters.snapshot().upstream_calls,
            "every page counted"
        );
        for policy in &policies[..3] {
            let got = results[policy].as_ref().unwrap();
            assert!(got.iter().all(|o| &o.escalation_policy.id == policy));
            // Who is on call at which level (earliest=true keeps one entry
            // per user and level).
            let pairs =
                |it: Vec<(u32, String)>| it.into_iter().collect::<std::collections::BTreeSet<_>>();
            let got = pairs(
                got.iter()
                    .map(|o| (o.escalation_level, o.user.id.clone()))
                    .collect(),
            );
            let want = pairs(
                account
                    .current_oncalls(policy, sim.now())
                    .into_iter()
                    .map(|o| (o.escalation_level, o.user_id))
                    .collect(),
            );
            assert_eq!(got, want, "{policy}");
        }
        assert!(results["PNOBODY"].as_ref().unwrap().is_empty());
        assert_eq!(loader.missing(&"PX".into()), Ok(Arc::new(Vec::new())));
    }
}
