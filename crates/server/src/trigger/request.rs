//! What callers send and what they get back.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::TriggerError;

/// `POST /v1/incidents` body.
#[derive(Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"service_id": "PABC123", "summary": "Checkout is failing for EU users"}))]
pub struct TriggerRequest {
    /// PagerDuty service to page; the server finds its Events API v2
    /// integration key. Give this or `integration_key`.
    #[serde(default)]
    pub service_id: Option<String>,
    /// A 32-character Events API v2 integration (routing) key. With
    /// `trigger.allow = "known"` it must belong to a service dutycard can read.
    #[serde(default)]
    pub integration_key: Option<String>,
    /// What is wrong, 1 to 1024 characters.
    pub summary: String,
    /// `critical`, `error`, `warning` or `info` (default `trigger.default_severity`).
    #[serde(default)]
    pub severity: Option<String>,
    /// The affected system (default: the client URL or client name).
    #[serde(default)]
    pub source: Option<String>,
    /// Merges events into one alert (at most 255 characters). A duplicate
    /// still in flight gets the first answer; a later one is sent again
    /// (PagerDuty merges it into the alert while that is open). Generated
    /// when absent: an identical request (same caller, service, summary)
    /// within 30 s gets the same one.
    #[serde(default)]
    pub dedup_key: Option<String>,
    /// Component of the source.
    #[serde(default)]
    pub component: Option<String>,
    /// Logical group.
    #[serde(default)]
    pub group: Option<String>,
    /// Class of event (default `manual trigger`).
    #[serde(default)]
    pub class: Option<String>,
    /// Extra details, a JSON object; `triggered_by` is set to the caller.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub custom_details: Option<Value>,
    /// Links shown on the alert.
    #[serde(default)]
    pub links: Option<Vec<LinkInput>>,
    /// The portal page the trigger came from (default `trigger.client_url`).
    #[serde(default)]
    pub client_url: Option<String>,
}

/// A link on the alert.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkInput {
    /// Target URL (required).
    #[serde(default)]
    pub href: Option<String>,
    /// Link text.
    #[serde(default)]
    pub text: Option<String>,
}

/// `POST /v1/incidents/{dedup_key}/acknowledge|resolve` body: which service.
#[derive(Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FollowUpRequest {
    /// The service the alert was triggered on. Give this or `integration_key`.
    #[serde(default)]
    pub service_id: Option<String>,
    /// The integration key the alert was triggered with.
    #[serde(default)]
    pub integration_key: Option<String>,
}

/// Shown in place of an integration key in Debug output.
const REDACTED: &str = "[redacted]";

fn redacted(key: &Option<String>) -> Option<&'static str> {
    key.as_ref().map(|_| REDACTED)
}

// Debug hides `integration_key` (a secret).
impl std::fmt::Debug for TriggerRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TriggerRequest")
            .field("service_id", &self.service_id)
            .field("integration_key", &redacted(&self.integration_key))
            .field("summary", &self.summary)
            .field("severity", &self.severity)
            .field("source", &self.source)
            .field("dedup_key", &self.dedup_key)
            .field("component", &self.component)
            .field("group", &self.group)
            .field("class", &self.class)
            .field("custom_details", &self.custom_details)
            .field("links", &self.links)
            .field("client_url", &self.client_url)
            .finish()
    }
}

// Debug hides `integration_key` (a secret).
impl std::fmt::Debug for FollowUpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FollowUpRequest")
            .field("service_id", &self.service_id)
            .field("integration_key", &redacted(&self.integration_key))
            .finish()
    }
}

/// PagerDuty accepted the event (our 202).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"status": "success", "dedup_key": "dutycard-4f0c…", "message": "Event processed", "service_id": "PABC123", "created": true}))]
pub struct TriggerAccepted {
    /// PagerDuty's status, `success`.
    pub status: String,
    /// The alert's dedup_key: use it to acknowledge or resolve, or to retry.
    pub dedup_key: String,
    /// PagerDuty's message, e.g. `Event processed`.
    pub message: String,
    /// The service the event went to, when known.
    pub service_id: Option<String>,
    /// `true` on an accepted trigger: the incident was created (or merged
    /// into the open alert with the same dedup_key). Failures carry
    /// `created: false` (not created) or `null` (unknown) in their details;
    /// absent on acknowledge and resolve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<bool>,
}

/// The answer to a trigger request, and whether it is a stored one.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// 202 body or the error.
    pub result: Result<TriggerAccepted, TriggerError>,
    /// True when this is the stored answer of an earlier identical request.
    pub replayed: bool,
}

/// The answer to one request: the 202 body or the error.
pub type Answer = Result<TriggerAccepted, TriggerError>;

/// A fresh (not replayed) outcome.
pub(super) fn fresh(result: Answer) -> Outcome {
    Outcome {
        result,
        replayed: false,
    }
}
