use serde::{Deserialize, Serialize};

use super::{Extra, Reference, Team};

/// An escalation policy (full object or `escalation_policy_reference`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EscalationPolicy {
    /// PagerDuty id.
    pub id: String,
    /// `escalation_policy` or `escalation_policy_reference`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Short summary (the name).
    #[serde(default)]
    pub summary: Option<String>,
    /// Name (full object only).
    #[serde(default)]
    pub name: Option<String>,
    /// Web UI URL.
    #[serde(default)]
    pub html_url: Option<String>,
    /// Escalation rules, in level order (full object only).
    #[serde(default)]
    pub escalation_rules: Vec<EscalationRule>,
    /// Teams.
    #[serde(default)]
    pub teams: Vec<Team>,
    /// Unknown fields (num_loops, services, self, ...), kept as-is.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One level of an escalation policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EscalationRule {
    /// Rule id.
    #[serde(default)]
    pub id: Option<String>,
    /// Minutes before escalating to the next rule.
    #[serde(default)]
    pub escalation_delay_in_minutes: Option<u32>,
    /// Targets: `kind` is `user_reference`/`schedule_reference` (or `user`/`schedule`).
    #[serde(default)]
    pub targets: Vec<Reference>,
    /// Unknown fields, kept as-is.
    #[serde(flatten)]
    pub extra: Extra,
}
