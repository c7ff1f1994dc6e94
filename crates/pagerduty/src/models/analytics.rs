use serde::{Deserialize, Serialize};

use super::Extra;

/// Aggregated incident metrics of one service
/// (`POST /analytics/metrics/incidents/services`, one row per service and
/// aggregate unit).
///
/// PagerDuty leaves some metrics out and sends others as `null` (the
/// multi-responder means of a service whose incidents had one responder).
/// Each optional field tells the two apart, `None` (absent) from
/// `Some(None)` (`null`), so that serializing a row gives back PagerDuty's
/// keys exactly: nothing absent becomes `null`, no `null` goes missing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceIncidentMetrics {
    /// Service id.
    pub service_id: String,
    /// Service name.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub service_name: Option<Option<String>>,
    /// Owning team id.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub team_id: Option<Option<String>>,
    /// Owning team name.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub team_name: Option<Option<String>>,
    /// Start of the aggregate unit (local time of the query's time zone, no offset).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub range_start: Option<Option<String>>,
    /// Number of incidents.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub total_incident_count: Option<Option<u64>>,
    /// Mean seconds to resolve.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub mean_seconds_to_resolve: Option<Option<f64>>,
    /// Mean seconds to first acknowledgement.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub mean_seconds_to_first_ack: Option<Option<f64>>,
    /// Mean seconds to engage.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub mean_seconds_to_engage: Option<Option<f64>>,
    /// Mean seconds to mobilize.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub mean_seconds_to_mobilize: Option<Option<f64>>,
    /// Total escalations.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub total_escalation_count: Option<Option<u64>>,
    /// Total interruptions.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub total_interruptions: Option<Option<u64>>,
    /// Uptime percentage.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub up_time_pct: Option<Option<f64>>,
    /// Unknown fields (the many other metrics), kept as-is.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A field that is present: `Some(value)`, `Some(None)` for `null` (an
/// absent field never reaches this; `default` makes it `None`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_stays_absent_and_null_stays_null() {
        let row = serde_json::json!({
            "service_id": "PX", "total_incident_count": 3,
            "mean_seconds_to_engage": null, "team_id": null
        });
        let parsed: ServiceIncidentMetrics = serde_json::from_value(row.clone()).unwrap();
        assert_eq!(parsed.total_incident_count, Some(Some(3)));
        assert_eq!(parsed.mean_seconds_to_engage, Some(None));
        assert_eq!(parsed.mean_seconds_to_mobilize, None);
        assert_eq!(serde_json::to_value(&parsed).unwrap(), row);
    }
}
