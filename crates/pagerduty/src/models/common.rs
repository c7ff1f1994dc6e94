use serde::{Deserialize, Serialize};

use super::Extra;

/// A reference to another PagerDuty object (`{"id","type","summary","self","html_url"}`),
/// or the full object when it was included: extra fields land in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    /// PagerDuty id, e.g. `PIJ90N7`.
    pub id: String,
    /// Object type, e.g. `user_reference`, `schedule_reference`, `service`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short human-readable summary.
    #[serde(default)]
    pub summary: Option<String>,
    /// API URL of the object.
    #[serde(rename = "self", default)]
    pub self_url: Option<String>,
    /// Web UI URL of the object.
    #[serde(default)]
    pub html_url: Option<String>,
    /// Unknown fields, kept as-is.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A link attached to a change event (`{"href","text"}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    /// Target URL.
    pub href: String,
    /// Link text.
    #[serde(default)]
    pub text: Option<String>,
    /// Unknown fields, kept as-is.
    #[serde(flatten)]
    pub extra: Extra,
}
