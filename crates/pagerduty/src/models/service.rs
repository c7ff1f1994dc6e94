use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{EscalationPolicy, Extra, Reference, Team};

/// A PagerDuty service (`GET /services/{id}`, `GET /services`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    /// PagerDuty id, e.g. `PIJ90N7`.
    pub id: String,
    /// Service name.
    pub name: String,
    /// Free-text description.
    #[serde(default)]
    pub description: Option<String>,
    /// `active`, `warning`, `critical`, `maintenance` or `disabled`.
    #[serde(default)]
    pub status: Option<String>,
    /// Web UI URL.
    #[serde(default)]
    pub html_url: Option<String>,
    /// Creation time.
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    /// Last update time.
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
    /// When the last incident was triggered.
    #[serde(default)]
    pub last_incident_timestamp: Option<DateTime<Utc>>,
    /// The escalation policy: a reference unless `include[]=escalation_policies` was sent.
    #[serde(default)]
    pub escalation_policy: Option<EscalationPolicy>,
    /// Teams (references unless `include[]=teams`).
    #[serde(default)]
    pub teams: Vec<Team>,
    /// Integrations (references unless `include[]=integrations`).
    #[serde(default)]
    pub integrations: Vec<Integration>,
    /// Unknown fields (type, summary, self, incident_urgency_rule, ...), kept as-is.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A service integration. With `include[]=integrations`, Events API
/// integrations carry their `integration_key`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Integration {
    /// PagerDuty id.
    pub id: String,
    /// e.g. `events_api_v2_inbound_integration` or `..._reference`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary.
    #[serde(default)]
    pub summary: Option<String>,
    /// Integration name.
    #[serde(default)]
    pub name: Option<String>,
    /// The integration (routing) key. It is a secret: never log it.
    /// [`Integration`]'s `Debug` redacts it.
    #[serde(default)]
    pub integration_key: Option<String>,
    /// The vendor reference.
    #[serde(default)]
    pub vendor: Option<Reference>,
    /// Web UI URL.
    #[serde(default)]
    pub html_url: Option<String>,
    /// Unknown fields, kept as-is.
    #[serde(flatten)]
    pub extra: Extra,
}

impl std::fmt::Debug for Integration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Integration")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("summary", &self.summary)
            .field("name", &self.name)
            .field(
                "integration_key",
                &self.integration_key.as_ref().map(|_| "[REDACTED]"),
            )
            .field("vendor", &self.vendor)
            .field("html_url", &self.html_url)
            .field("extra", &self.extra)
            .finish()
    }
}
