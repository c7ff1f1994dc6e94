use serde::{Deserialize, Serialize};

use super::Extra;

/// Aggregated incident metrics of one service
/// (`POST /analytics/metrics/incidents/services`, one row per service and
/// aggregate unit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceIncidentMetrics {
    /// Service id.
    pub service_id: String,
    /// Service name.
    #[serde(default)]
    pub service_name: Option<String>,
    /// Owning team id.
    #[serde(default)]
    pub team_id: Option<String>,
    /// Owning team name.
    #[serde(default)]
    pub team_name: Option<String>,
    /// Start of the aggregate unit (local time of the query's time zone, no offset).
    #[serde(default)]
    pub range_start: Option<String>,
    /// Number of incidents.
    #[serde(default)]
    pub total_incident_count: Option<u64>,
    /// Mean seconds to resolve.
    #[serde(default)]
    pub mean_seconds_to_resolve: Option<f64>,
    /// Mean seconds to first acknowledgement.
    #[serde(default)]
    pub mean_seconds_to_first_ack: Option<f64>,
    /// Mean seconds to engage.
    #[serde(default)]
    pub mean_seconds_to_engage: Option<f64>,
    /// Mean seconds to mobilize.
    #[serde(default)]
    pub mean_seconds_to_mobilize: Option<f64>,
    /// Total escalations.
    #[serde(default)]
    pub total_escalation_count: Option<u64>,
    /// Total interruptions.
    #[serde(default)]
    pub total_interruptions: Option<u64>,
    /// Uptime percentage.
    #[serde(default)]
    pub up_time_pct: Option<f64>,
    /// Unknown fields (the many other metrics), kept as-is.
    #[serde(flatten)]
    pub extra: Extra,
}
