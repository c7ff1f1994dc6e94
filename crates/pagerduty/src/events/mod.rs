//! Events API v2: alert events (`POST {events_base}/enqueue`) and change
//! events (`POST {events_base}/change/enqueue`).
//!
//! Events are validated before sending, and every rule names the bad field:
//! routing key exactly 32 characters; `payload.summary` 1–1024 characters;
//! `payload.source` non-empty; `payload.severity` one of
//! `critical|error|warning|info`; `dedup_key` at most 255 characters (and
//! required to acknowledge or resolve); `payload.timestamp` RFC 3339;
//! `payload.custom_details` a JSON object; the whole body at most 512 KB.
//!
//! PagerDuty answers 202 `{status, message, dedup_key}`; any 2xx counts as
//! accepted even when its body cannot be read (see [`EnqueueResponse`]). A 400 ("invalid
//! event", with PagerDuty's `errors` list) becomes
//! [`Error::InvalidRequest`] and is never retried; 429 and 5xx are retried
//! with backoff inside the client's [`RetryPolicy`](crate::RetryPolicy)
//! deadline.
//!
//! [`EventsClient::enqueue_within`] delivers an event within a time budget
//! instead, and reports the outcome as [`Delivered`] or [`DeliveryError`]
//! (was it maybe accepted anyway?) rather than as an [`Error`].

mod delivery;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use reqwest::Method;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::client::{Call, Client, Host, Inner};
use crate::error::{Error, Result};
use crate::secret::KeySecret;
pub use delivery::{Delivered, DeliveryError, DeliveryErrorKind};

/// Maximum size of an Events API body.
pub const MAX_EVENT_BYTES: usize = 512 * 1024;
/// Maximum `payload.summary` length, in characters.
pub const MAX_SUMMARY_CHARS: usize = 1024;
/// Maximum `dedup_key` length, in characters.
pub const MAX_DEDUP_KEY_CHARS: usize = 255;
/// Required routing key length.
pub const ROUTING_KEY_CHARS: usize = 32;

/// A local validation failure, naming the offending field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("`{field}` {message}")]
pub struct ValidationError {
    /// The field path, e.g. `payload.summary` or `links[0].href`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl ValidationError {
    /// Builds a validation error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ValidationError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An integration (routing) key. A secret: `Debug` shows only its
/// [fingerprint](RoutingKey::fingerprint), and there is no `Display`.
/// (Serde writes the key itself: it is part of the Events API body.)
#[derive(Clone)]
pub struct RoutingKey(KeySecret);

impl RoutingKey {
    /// Wraps a key (not validated here; see [`Event::validate`]).
    pub fn new(key: impl Into<String>) -> Self {
        RoutingKey(KeySecret::new(key))
    }

    pub(crate) fn from_secret(key: KeySecret) -> Self {
        RoutingKey(key)
    }

    /// The key itself. It is a secret: never log it.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// A short non-reversible fingerprint for logs and metrics
    /// (first 8 hex digits of a 64-bit FNV-1a hash; not a security hash, but
    /// 32 bits cannot be reversed into a 32-character key).
    pub fn fingerprint(&self) -> String {
        self.0.fingerprint()
    }

    fn validate(&self, field: &str) -> std::result::Result<(), ValidationError> {
        let n = self.expose().chars().count();
        if n != ROUTING_KEY_CHARS {
            return Err(ValidationError::new(
                field,
                format!("must be exactly {ROUTING_KEY_CHARS} characters, got {n}"),
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for RoutingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RoutingKey(#{})", self.fingerprint())
    }
}

impl From<String> for RoutingKey {
    fn from(s: String) -> Self {
        RoutingKey::new(s)
    }
}

impl From<&str> for RoutingKey {
    fn from(s: &str) -> Self {
        RoutingKey::new(s)
    }
}

impl Serialize for RoutingKey {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.expose())
    }
}

impl<'de> Deserialize<'de> for RoutingKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d).map(RoutingKey::new)
    }
}

/// What an alert event does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventAction {
    /// Open (or add to) an alert.
    Trigger,
    /// Acknowledge the alert with this `dedup_key`.
    Acknowledge,
    /// Resolve the alert with this `dedup_key`.
    Resolve,
}

/// Alert severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// critical
    Critical,
    /// error
    Error,
    /// warning
    Warning,
    /// info
    Info,
}

impl Severity {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = ValidationError;
    /// Parses `critical|error|warning|info`; the error names `payload.severity`.
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "critical" => Ok(Severity::Critical),
            "error" => Ok(Severity::Error),
            "warning" => Ok(Severity::Warning),
            "info" => Ok(Severity::Info),
            other => Err(ValidationError::new(
                "payload.severity",
                format!("must be one of critical, error, warning, info; got `{other}`"),
            )),
        }
    }
}

/// A link on an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventLink {
    /// Target URL.
    pub href: String,
    /// Link text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// The payload of a trigger event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventPayload {
    /// 1–1024 characters.
    pub summary: String,
    /// The affected system (e.g. a hostname); non-empty.
    pub source: String,
    /// Severity.
    pub severity: Severity,
    /// RFC 3339 time of the event; PagerDuty uses the receive time when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// Component of the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// Logical grouping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Class/type of event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// Free-form details; must be a JSON object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_details: Option<Value>,
}

/// An alert event (`POST /v2/enqueue`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    /// The integration key of the target service or ruleset (32 characters).
    pub routing_key: RoutingKey,
    /// trigger, acknowledge or resolve.
    pub event_action: EventAction,
    /// De-duplication key (≤ 255); required for acknowledge and resolve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup_key: Option<String>,
    /// Required for trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<EventPayload>,
    /// Name of the sending tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// URL of the sending tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_url: Option<String>,
    /// Links.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<EventLink>,
    /// Images (`{src, href?, alt?}` objects).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<Value>,
}

fn validate_timestamp(
    field: &str,
    ts: &Option<String>,
) -> std::result::Result<(), ValidationError> {
    if let Some(ts) = ts {
        let ok = chrono::DateTime::parse_from_rfc3339(ts).is_ok()
            // PagerDuty's own docs use `2015-07-17T08:42:58.315+0000`.
            || chrono::DateTime::parse_from_str(ts, "%Y-%m-%dT%H:%M:%S%.f%z").is_ok();
        if !ok {
            return Err(ValidationError::new(
                field,
                format!("must be an RFC 3339 timestamp (e.g. 2026-11-23T09:00:00Z), got `{ts}`"),
            ));
        }
    }
    Ok(())
}

fn validate_summary(field: &str, s: &str) -> std::result::Result<(), ValidationError> {
    let n = s.chars().count();
    if s.trim().is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if n > MAX_SUMMARY_CHARS {
        return Err(ValidationError::new(
            field,
            format!("must be at most {MAX_SUMMARY_CHARS} characters, got {n}"),
        ));
    }
    Ok(())
}

fn validate_details(field: &str, d: &Option<Value>) -> std::result::Result<(), ValidationError> {
    match d {
        None | Some(Value::Object(_)) => Ok(()),
        Some(_) => Err(ValidationError::new(field, "must be a JSON object")),
    }
}

fn validate_links(links: &[EventLink]) -> std::result::Result<(), ValidationError> {
    for (i, l) in links.iter().enumerate() {
        if l.href.trim().is_empty() {
            return Err(ValidationError::new(
                format!("links[{i}].href"),
                "must not be empty",
            ));
        }
    }
    Ok(())
}

fn validate_size<T: Serialize>(v: &T) -> std::result::Result<Vec<u8>, ValidationError> {
    let body = serde_json::to_vec(v)
        .map_err(|e| ValidationError::new("body", format!("cannot be serialized: {e}")))?;
    if body.len() > MAX_EVENT_BYTES {
        return Err(ValidationError::new(
            "body",
            format!(
                "must be at most {MAX_EVENT_BYTES} bytes (512 KB), got {}",
                body.len()
            ),
        ));
    }
    Ok(body)
}

impl Event {
    /// A trigger event with the required fields.
    pub fn trigger(routing_key: impl Into<RoutingKey>, payload: EventPayload) -> Self {
        Event {
            routing_key: routing_key.into(),
            event_action: EventAction::Trigger,
            dedup_key: None,
            payload: Some(payload),
            client: None,
            client_url: None,
            links: Vec::new(),
            images: Vec::new(),
        }
    }

    /// An acknowledge or resolve event for `dedup_key`.
    pub fn follow_up(
        routing_key: impl Into<RoutingKey>,
        action: EventAction,
        dedup_key: impl Into<String>,
    ) -> Self {
        Event {
            routing_key: routing_key.into(),
            event_action: action,
            dedup_key: Some(dedup_key.into()),
            payload: None,
            client: None,
            client_url: None,
            links: Vec::new(),
            images: Vec::new(),
        }
    }

    /// Checks every Events API rule; the error names the bad field.
    pub fn validate(&self) -> std::result::Result<(), ValidationError> {
        self.validate_and_encode().map(|_| ())
    }

    fn validate_and_encode(&self) -> std::result::Result<Vec<u8>, ValidationError> {
        self.routing_key.validate("routing_key")?;
        match &self.dedup_key {
            Some(k) => {
                let n = k.chars().count();
                if n > MAX_DEDUP_KEY_CHARS {
                    return Err(ValidationError::new(
                        "dedup_key",
                        format!("must be at most {MAX_DEDUP_KEY_CHARS} characters, got {n}"),
                    ));
                }
                if k.is_empty() {
                    return Err(ValidationError::new("dedup_key", "must not be empty"));
                }
            }
            None if self.event_action != EventAction::Trigger => {
                return Err(ValidationError::new(
                    "dedup_key",
                    "is required to acknowledge or resolve",
                ));
            }
            None => {}
        }
        match &self.payload {
            None if self.event_action == EventAction::Trigger => {
                return Err(ValidationError::new("payload", "is required for trigger"));
            }
            None => {}
            Some(p) => {
                validate_summary("payload.summary", &p.summary)?;
                if p.source.trim().is_empty() {
                    return Err(ValidationError::new("payload.source", "must not be empty"));
                }
                validate_timestamp("payload.timestamp", &p.timestamp)?;
                validate_details("payload.custom_details", &p.custom_details)?;
            }
        }
        validate_links(&self.links)?;
        for (i, img) in self.images.iter().enumerate() {
            let src = img.get("src").and_then(Value::as_str).unwrap_or("");
            if src.trim().is_empty() {
                return Err(ValidationError::new(
                    format!("images[{i}].src"),
                    "must be a non-empty string",
                ));
            }
        }
        validate_size(self)
    }
}

/// The payload of a change event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeEventPayload {
    /// 1–1024 characters.
    pub summary: String,
    /// The system that changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// RFC 3339 time of the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// Free-form details; must be a JSON object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_details: Option<Value>,
}

/// A change event (`POST /v2/change/enqueue`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChangeEventRequest {
    /// The integration key (32 characters).
    pub routing_key: RoutingKey,
    /// The change.
    pub payload: ChangeEventPayload,
    /// Links.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<EventLink>,
}

impl ChangeEventRequest {
    /// Checks the Events API rules; the error names the bad field.
    pub fn validate(&self) -> std::result::Result<(), ValidationError> {
        self.validate_and_encode().map(|_| ())
    }

    fn validate_and_encode(&self) -> std::result::Result<Vec<u8>, ValidationError> {
        self.routing_key.validate("routing_key")?;
        validate_summary("payload.summary", &self.payload.summary)?;
        if let Some(s) = &self.payload.source
            && s.trim().is_empty()
        {
            return Err(ValidationError::new(
                "payload.source",
                "must not be empty when given",
            ));
        }
        validate_timestamp("payload.timestamp", &self.payload.timestamp)?;
        validate_details("payload.custom_details", &self.payload.custom_details)?;
        validate_links(&self.links)?;
        validate_size(self)
    }
}

/// PagerDuty's 202 answer.
///
/// Any 2xx means PagerDuty accepted the event, whatever its body: fields
/// missing from it (or a body that is empty or not JSON) are left empty
/// rather than failing the call, so a caller never reports an accepted
/// event as not sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnqueueResponse {
    /// `success` (empty when PagerDuty's 2xx answer did not say).
    #[serde(default)]
    pub status: String,
    /// e.g. `Event processed` (empty when PagerDuty's 2xx answer did not say).
    #[serde(default)]
    pub message: String,
    /// The alert's de-duplication key (generated by PagerDuty if none was sent).
    #[serde(default)]
    pub dedup_key: Option<String>,
}

/// Reads a 2xx Events answer leniently: the event was accepted, so an
/// unexpected body only costs the fields that cannot be read.
fn accepted_response(endpoint: &'static str, bytes: &[u8]) -> EnqueueResponse {
    let v: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    let field = |name: &str| v.get(name).and_then(Value::as_str).map(str::to_owned);
    let response = EnqueueResponse {
        status: field("status").unwrap_or_default(),
        message: field("message").unwrap_or_default(),
        dedup_key: field("dedup_key"),
    };
    if !v.is_object() {
        // Only the size: the body is not logged.
        tracing::warn!(
            endpoint,
            body_bytes = bytes.len(),
            "PagerDuty accepted the event (2xx) but its answer is not a JSON object"
        );
    }
    response
}

/// Events API v2 client; get it from [`Client::events`].
#[derive(Clone)]
pub struct EventsClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for EventsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventsClient").finish_non_exhaustive()
    }
}

impl EventsClient {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        EventsClient { inner }
    }

    async fn post(
        &self,
        endpoint: &'static str,
        segments: &[&str],
        body: Vec<u8>,
        single_attempt: bool,
    ) -> Result<EnqueueResponse> {
        let bytes = self
            .inner
            .execute(Call {
                method: Method::POST,
                host: Host::Events,
                endpoint,
                segments,
                query: &[],
                body: Some(body),
                idempotent: true,
                single_attempt,
            })
            .await?;
        Ok(accepted_response(endpoint, &bytes))
    }

    /// Validates and sends an alert event (`POST {events_base}/enqueue`).
    pub async fn enqueue(&self, event: &Event) -> Result<EnqueueResponse> {
        let body = event.validate_and_encode().map_err(Error::InvalidEvent)?;
        tracing::debug!(
            routing_key = %event.routing_key.fingerprint(),
            action = ?event.event_action,
            "enqueue PagerDuty event"
        );
        self.post("/enqueue", &["enqueue"], body, false).await
    }

    /// Like [`EventsClient::enqueue`], but makes exactly one attempt: no
    /// retry on 429, 5xx or timeouts (a 401 is not renewed either: the Events
    /// API has no auth header). For callers that retry under their own
    /// deadline and must count their attempts, so that retries are not
    /// nested. [`EventsClient::enqueue_within`] runs such a loop.
    pub async fn enqueue_once(&self, event: &Event) -> Result<EnqueueResponse> {
        let body = event.validate_and_encode().map_err(Error::InvalidEvent)?;
        tracing::debug!(
            routing_key = %event.routing_key.fingerprint(),
            action = ?event.event_action,
            "enqueue PagerDuty event (single attempt)"
        );
        self.post("/enqueue", &["enqueue"], body, true).await
    }

    /// Validates and sends a change event (`POST {events_base}/change/enqueue`).
    pub async fn enqueue_change(&self, event: &ChangeEventRequest) -> Result<EnqueueResponse> {
        let body = event.validate_and_encode().map_err(Error::InvalidEvent)?;
        tracing::debug!(
            routing_key = %event.routing_key.fingerprint(),
            "enqueue PagerDuty change event"
        );
        self.post("/change/enqueue", &["change", "enqueue"], body, false)
            .await
    }
}

impl Client {
    /// Shortcut for [`EventsClient::enqueue`].
    pub async fn enqueue(&self, event: &Event) -> Result<EnqueueResponse> {
        self.events().enqueue(event).await
    }

    /// Shortcut for [`EventsClient::enqueue_change`].
    pub async fn enqueue_change(&self, event: &ChangeEventRequest) -> Result<EnqueueResponse> {
        self.events().enqueue_change(event).await
    }
}
