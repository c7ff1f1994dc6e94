use serde::{Deserialize, Serialize};

use super::Extra;

/// One service dependency: `supporting_service` supports (is depended on
/// by) `dependent_service`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceDependency {
    /// PagerDuty id of the relationship.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `service_dependency`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The service depended on (`{"id","type"}`, kept as PagerDuty sent it).
    pub supporting_service: Extra,
    /// The service that depends on it.
    pub dependent_service: Extra,
    /// Unknown fields, kept as-is.
    #[serde(flatten)]
    pub extra: Extra,
}
