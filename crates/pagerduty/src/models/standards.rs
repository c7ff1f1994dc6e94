use serde::{Deserialize, Serialize};

use super::Extra;

/// Standards scores of one technical service
/// (`GET /standards/scores/technical_services/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceStandards {
    /// The service id.
    pub resource_id: String,
    /// `technical_service`.
    #[serde(default)]
    pub resource_type: Option<String>,
    /// Passing / total.
    #[serde(default)]
    pub score: Option<StandardsScore>,
    /// Each standard and whether it passes.
    #[serde(default)]
    pub standards: Vec<Standard>,
    /// Unknown fields, kept as-is.
    #[serde(flatten)]
    pub extra: Extra,
}

/// How many standards pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StandardsScore {
    /// Passing standards.
    pub passing: u32,
    /// Applicable standards.
    pub total: u32,
    /// Unknown fields, kept as-is.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One standard applied to a resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standard {
    /// Standard id.
    pub id: String,
    /// Name, e.g. "Service has a description".
    #[serde(default)]
    pub name: Option<String>,
    /// Why the standard matters.
    #[serde(default)]
    pub description: Option<String>,
    /// Whether the standard is active.
    #[serde(default)]
    pub active: Option<bool>,
    /// Whether the resource passes it.
    #[serde(default)]
    pub pass: Option<bool>,
    /// Machine type, e.g. `has_technical_service_description`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Unknown fields, kept as-is.
    #[serde(flatten)]
    pub extra: Extra,
}
