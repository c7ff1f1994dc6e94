//! Escalation policies: `GET /escalation_policies/{id}`, `GET /escalation_policies`.

use futures::stream::BoxStream;

use crate::client::Client;
use crate::error::Result;
use crate::models::EscalationPolicy;
use crate::page::Page;
use crate::query::ListEscalationPolicies;

impl Client {
    /// `GET /escalation_policies/{id}`. Scope: `escalation_policies.read`.
    pub async fn get_escalation_policy(&self, id: &str) -> Result<EscalationPolicy> {
        super::require("escalation_policy_id", id)?;
        self.get_one(
            "/escalation_policies/{id}",
            &["escalation_policies", id],
            &[],
            "escalation_policy",
        )
        .await
    }

    /// `GET /escalation_policies`: one page.
    pub async fn list_escalation_policies(
        &self,
        q: &ListEscalationPolicies,
    ) -> Result<Page<EscalationPolicy>> {
        self.get_page(
            "/escalation_policies",
            &["escalation_policies"],
            q,
            "escalation_policies",
        )
        .await
    }

    /// `GET /escalation_policies`: every page, as a stream.
    pub fn escalation_policies_stream(
        &self,
        q: &ListEscalationPolicies,
    ) -> BoxStream<'static, Result<EscalationPolicy>> {
        self.paginate(
            "/escalation_policies",
            vec!["escalation_policies".into()],
            q,
            "escalation_policies",
        )
    }

    /// `GET /escalation_policies`: every page, collected.
    pub async fn list_all_escalation_policies(
        &self,
        q: &ListEscalationPolicies,
    ) -> Result<Vec<EscalationPolicy>> {
        self.collect_all(
            "/escalation_policies",
            vec!["escalation_policies".into()],
            q,
            "escalation_policies",
        )
        .await
    }
}
