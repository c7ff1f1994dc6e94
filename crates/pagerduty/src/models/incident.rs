use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Extra, Reference};

/// An incident (`GET /incidents`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// PagerDuty id.
    pub id: String,
    /// Account-wide incident number.
    #[serde(default)]
    pub incident_number: Option<u64>,
    /// Title.
    #[serde(default)]
    pub title: Option<String>,
    /// Summary, e.g. `[#1234] The server is on fire.`
    #[serde(default)]
    pub summary: Option<String>,
    /// Current status.
    pub status: IncidentStatus,
    /// Urgency.
    #[serde(default)]
    pub urgency: Option<Urgency>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Web UI URL.
    #[serde(default)]
    pub html_url: Option<String>,
    /// The service.
    #[serde(default)]
    pub service: Option<Reference>,
    /// Current assignments (empty when resolved).
    #[serde(default)]
    pub assignments: Vec<Assignment>,
    /// The escalation policy.
    #[serde(default)]
    pub escalation_policy: Option<Reference>,
    /// Unknown fields (incident_key, priority, teams, ...), kept as-is.
    #[serde(flatten)]
    pub extra: Extra,
}

/// An incident assignment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    /// When the assignment was made.
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
    /// The assignee (a user reference).
    pub assignee: Reference,
    /// Unknown fields, kept as-is.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Incident status (`statuses[]` filter and `Incident::status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    /// Triggered, not yet acknowledged.
    Triggered,
    /// Acknowledged.
    Acknowledged,
    /// Resolved.
    Resolved,
}

impl IncidentStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Triggered => "triggered",
            IncidentStatus::Acknowledged => "acknowledged",
            IncidentStatus::Resolved => "resolved",
        }
    }
}

impl fmt::Display for IncidentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IncidentStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "triggered" => Ok(IncidentStatus::Triggered),
            "acknowledged" => Ok(IncidentStatus::Acknowledged),
            "resolved" => Ok(IncidentStatus::Resolved),
            other => Err(format!(
                "unknown incident status `{other}` (expected triggered, acknowledged or resolved)"
            )),
        }
    }
}

/// Incident urgency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    /// High urgency.
    High,
    /// Low urgency.
    Low,
}

impl Urgency {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::High => "high",
            Urgency::Low => "low",
        }
    }
}

impl fmt::Display for Urgency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Urgency {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "high" => Ok(Urgency::High),
            "low" => Ok(Urgency::Low),
            other => Err(format!("unknown urgency `{other}` (expected high or low)")),
        }
    }
}
