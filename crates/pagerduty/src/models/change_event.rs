use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Extra, Link, Reference};

/// A change event (`GET /services/{id}/change_events`, `GET /change_events`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeEvent {
    /// PagerDuty id.
    #[serde(default)]
    pub id: Option<String>,
    /// Summary (≤ 1024 characters).
    #[serde(default)]
    pub summary: Option<String>,
    /// The system that changed.
    #[serde(default)]
    pub source: Option<String>,
    /// When the change happened.
    #[serde(default)]
    pub timestamp: Option<DateTime<Utc>>,
    /// Links (e.g. to the deploy or pull request).
    #[serde(default)]
    pub links: Vec<Link>,
    /// Web UI URL, when PagerDuty provides one.
    #[serde(default)]
    pub html_url: Option<String>,
    /// Affected services.
    #[serde(default)]
    pub services: Vec<Reference>,
    /// Free-form details object.
    #[serde(default)]
    pub custom_details: Option<Value>,
    /// Unknown fields (type, integration, images, ...), kept as-is.
    /// `routing_key` is removed on decode: it is a secret.
    #[serde(flatten)]
    pub extra: Extra,
}
