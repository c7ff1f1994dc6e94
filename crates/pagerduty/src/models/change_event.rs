use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
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
    /// `routing_key` is removed on decode, wherever the event is decoded
    /// from: it is a secret (and `Debug` prints `extra`).
    #[serde(flatten, deserialize_with = "extra_without_routing_key")]
    pub extra: Extra,
}

fn extra_without_routing_key<'de, D: Deserializer<'de>>(d: D) -> Result<Extra, D::Error> {
    let mut extra = Extra::deserialize(d)?;
    extra.remove("routing_key");
    Ok(extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decoded_change_event_drops_its_routing_key() {
        let key = "R0123456789abcdef0123456789SECRET";
        let ev: ChangeEvent = serde_json::from_value(serde_json::json!({
            "id": "PCE1",
            "summary": "deploy",
            "routing_key": key,
            "type": "change_event",
        }))
        .unwrap();
        assert!(!format!("{ev:?}").contains("SECRET"), "{ev:?}");
        assert!(!serde_json::to_string(&ev).unwrap().contains("SECRET"));
        assert!(!ev.extra.contains_key("routing_key"));
        assert_eq!(ev.extra["type"], "change_event", "other extras are kept");
        assert_eq!(ev.summary.as_deref(), Some("deploy"));
    }
}
