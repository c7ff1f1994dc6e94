use serde::{Deserialize, Serialize};

use super::Extra;

/// A user (full object, e.g. from `include[]=users`, or a `user_reference`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// PagerDuty id.
    pub id: String,
    /// `user` or `user_reference`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Short summary (the name).
    #[serde(default)]
    pub summary: Option<String>,
    /// Full name (full object only).
    #[serde(default)]
    pub name: Option<String>,
    /// Login email (full object only).
    #[serde(default)]
    pub email: Option<String>,
    /// Web UI URL.
    #[serde(default)]
    pub html_url: Option<String>,
    /// Avatar image URL.
    #[serde(default)]
    pub avatar_url: Option<String>,
    /// Unknown fields (time_zone, role, job_title, ...), kept as-is.
    #[serde(flatten)]
    pub extra: Extra,
}
