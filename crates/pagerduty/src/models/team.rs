use serde::{Deserialize, Serialize};

use super::Extra;

/// A team (full object or `team_reference`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Team {
    /// PagerDuty id.
    pub id: String,
    /// `team` or `team_reference`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Team name (full object only).
    #[serde(default)]
    pub name: Option<String>,
    /// Short summary (usually the name).
    #[serde(default)]
    pub summary: Option<String>,
    /// Web UI URL.
    #[serde(default)]
    pub html_url: Option<String>,
    /// Unknown fields (description, self, parent, ...), kept as-is.
    #[serde(flatten)]
    pub extra: Extra,
}
