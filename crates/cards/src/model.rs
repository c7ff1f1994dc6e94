//! What a card is: the serialised types the server returns.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use pagerduty::{IntegrationKey, ServiceId};

use crate::error::SectionError;

/// Default number of newest incidents / change events on a card.
pub const DEFAULT_ITEM_LIMIT: usize = 5;
/// Largest number of newest incidents / change events a card may ask for.
pub const MAX_ITEM_LIMIT: usize = 25;

/// How a card names its service.
#[derive(Clone)]
pub enum ServiceRef {
    /// A PagerDuty service id, e.g. `PABC123` (validated: see [`ServiceId`]).
    Id(ServiceId),
    /// An integration (routing) key of one of the service's integrations.
    IntegrationKey(IntegrationKey),
}

impl fmt::Debug for ServiceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceRef::Id(id) => f.debug_tuple("Id").field(id).finish(),
            ServiceRef::IntegrationKey(key) => f.debug_tuple("IntegrationKey").field(key).finish(),
        }
    }
}

/// Optional parts and sizes of a card.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CardOptions {
    /// Add the `standards` section.
    pub include_standards: bool,
    /// Add the `metrics` section (30-day incident analytics).
    pub include_metrics: bool,
    /// Newest open incidents to list (default 5, at most 25; larger values are capped).
    pub incident_limit: Option<usize>,
    /// Newest change events to list (default 5, at most 25; larger values are capped).
    pub change_event_limit: Option<usize>,
}

impl CardOptions {
    pub(crate) fn incident_limit(&self) -> usize {
        self.incident_limit
            .unwrap_or(DEFAULT_ITEM_LIMIT)
            .min(MAX_ITEM_LIMIT)
    }

    pub(crate) fn change_event_limit(&self) -> usize {
        self.change_event_limit
            .unwrap_or(DEFAULT_ITEM_LIMIT)
            .min(MAX_ITEM_LIMIT)
    }
}

/// The sections of a card (for invalidation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    /// Service details.
    Service,
    /// Escalation policy (cached with the service).
    EscalationPolicy,
    /// Who is on call.
    Oncall,
    /// Open incidents.
    Incidents,
    /// Recent change events.
    ChangeEvents,
    /// Standards scores.
    Standards,
    /// 30-day incident metrics.
    Metrics,
}

impl Section {
    /// Every section.
    pub const ALL: [Section; 7] = [
        Section::Service,
        Section::EscalationPolicy,
        Section::Oncall,
        Section::Incidents,
        Section::ChangeEvents,
        Section::Standards,
        Section::Metrics,
    ];
}

/// A cached PagerDuty object with its age.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cached<T> {
    /// The object.
    pub value: T,
    /// When it was read from PagerDuty.
    pub fetched_at: DateTime<Utc>,
    /// True when it is older than its section's TTL (a refresh is under way or failed).
    pub stale: bool,
    /// The cached entry's version: the same version is the same object
    /// (a replaced or reloaded entry gets a new, larger one). Not serialized.
    #[serde(skip)]
    pub version: u64,
}

/// One section of a card: its data (if any) and how fresh it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SectionResult<T> {
    /// The data; absent when it could not be read and no earlier copy exists.
    pub data: Option<T>,
    /// When the data was read from PagerDuty.
    pub fetched_at: Option<DateTime<Utc>>,
    /// True when the data is older than the section's TTL.
    pub stale: bool,
    /// Why the data is missing or stale, if a read failed.
    pub error: Option<SectionError>,
    /// Seconds until this section is due for refresh (0 when stale or missing).
    pub max_age_secs: u64,
}

impl<T> SectionResult<T> {
    pub(crate) fn ok(
        data: T,
        fetched_at: DateTime<Utc>,
        stale: bool,
        error: Option<SectionError>,
        max_age: Duration,
    ) -> Self {
        SectionResult {
            data: Some(data),
            fetched_at: Some(fetched_at),
            stale,
            error,
            max_age_secs: if stale { 0 } else { max_age.as_secs() },
        }
    }

    pub(crate) fn failed(error: SectionError) -> Self {
        SectionResult {
            data: None,
            fetched_at: None,
            stale: false,
            error: Some(error),
            max_age_secs: 0,
        }
    }
}

/// Everything a portal shows about one service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServiceCard {
    /// Service details.
    pub service: SectionResult<ServiceSection>,
    /// Its escalation policy.
    pub escalation_policy: SectionResult<EscalationPolicySection>,
    /// Who is on call now, per escalation level.
    pub oncall: SectionResult<OncallSection>,
    /// Open incidents.
    pub incidents: SectionResult<IncidentsSection>,
    /// Recent change events.
    pub change_events: SectionResult<ChangeEventsSection>,
    /// Standards scores (only when asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standards: Option<SectionResult<StandardsSection>>,
    /// 30-day incident metrics (only when asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<SectionResult<MetricsSection>>,
    /// When this card was assembled.
    pub generated_at: DateTime<Utc>,
}

impl ServiceCard {
    /// Seconds until the first section of this card is due for refresh (0 when
    /// one is stale or missing). The server does not turn it into an HTTP
    /// cache lifetime (cards are sent `Cache-Control: private, no-cache`, with
    /// an ETag); a portal may use it to schedule its next poll of the card.
    pub fn max_age_secs(&self) -> u64 {
        [
            Some(self.service.max_age_secs),
            Some(self.escalation_policy.max_age_secs),
            Some(self.oncall.max_age_secs),
            Some(self.incidents.max_age_secs),
            Some(self.change_events.max_age_secs),
            self.standards.as_ref().map(|s| s.max_age_secs),
            self.metrics.as_ref().map(|s| s.max_age_secs),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(0)
    }
}

/// A link to a PagerDuty object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ObjectRef {
    /// PagerDuty id.
    pub id: String,
    /// Display name (PagerDuty's `name` or `summary`).
    pub name: Option<String>,
    /// Web UI link.
    pub html_url: Option<String>,
}

/// Service details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ServiceSection {
    /// PagerDuty id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// `active`, `warning` (acknowledged incidents), `critical` (triggered
    /// incidents), `maintenance` or `disabled`.
    pub status: Option<String>,
    /// Web UI link.
    pub html_url: Option<String>,
    /// Owning teams.
    pub teams: Vec<ObjectRef>,
    /// Creation time.
    pub created_at: Option<DateTime<Utc>>,
    /// Last update time.
    pub updated_at: Option<DateTime<Utc>>,
}

/// What an escalation rule notifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// A user directly.
    User,
    /// Whoever is on call in a schedule.
    Schedule,
}

/// One target of an escalation rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EscalationTarget {
    /// User or schedule.
    pub kind: TargetKind,
    /// PagerDuty id.
    pub id: String,
    /// Display name.
    pub name: Option<String>,
    /// Web UI link.
    pub html_url: Option<String>,
}

/// One level of an escalation policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EscalationLevel {
    /// 1-based level number.
    pub level: u32,
    /// Minutes before escalating to the next level.
    pub escalation_delay_in_minutes: Option<u32>,
    /// Who is notified at this level.
    pub targets: Vec<EscalationTarget>,
}

/// The service's escalation policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EscalationPolicySection {
    /// PagerDuty id.
    pub id: String,
    /// Name.
    pub name: Option<String>,
    /// Web UI link.
    pub html_url: Option<String>,
    /// Levels in order.
    pub levels: Vec<EscalationLevel>,
}

/// A user on call now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OncallUser {
    /// PagerDuty id.
    pub id: String,
    /// Name.
    pub name: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Web UI link.
    pub html_url: Option<String>,
    /// Avatar image.
    pub avatar_url: Option<String>,
    /// The schedule that puts the user on call (none for a direct target).
    pub schedule: Option<ObjectRef>,
    /// Shift start (none = permanent).
    pub start: Option<DateTime<Utc>>,
    /// Shift end (none = never goes off call).
    pub end: Option<DateTime<Utc>>,
}

/// Who is on call at one escalation level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OncallLevel {
    /// 1-based level number.
    pub level: u32,
    /// True for the lowest level with anyone on call: the people paged first.
    pub primary: bool,
    /// Users on call, each once, sorted by name.
    pub users: Vec<OncallUser>,
}

/// On-call now, per escalation level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OncallSection {
    /// The escalation policy the levels belong to.
    pub escalation_policy_id: String,
    /// Levels in order (including empty levels that the policy defines).
    pub levels: Vec<OncallLevel>,
}

/// One open incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IncidentSummary {
    /// PagerDuty id.
    pub id: String,
    /// Incident number.
    pub number: Option<u64>,
    /// Title.
    pub title: Option<String>,
    /// `triggered` or `acknowledged`.
    pub status: String,
    /// `high` or `low`.
    pub urgency: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Web UI link.
    pub html_url: Option<String>,
    /// Users assigned.
    pub assignees: Vec<ObjectRef>,
}

/// Open incidents of a service (whatever their age).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IncidentsSection {
    /// Number of triggered incidents.
    pub triggered: u32,
    /// Number of acknowledged incidents.
    pub acknowledged: u32,
    /// True when the read stopped at its page cap (1 000 open incidents over
    /// the services read together, during an alert storm): `triggered` and
    /// `acknowledged` are then lower bounds.
    #[serde(default)]
    pub truncated: bool,
    /// The newest open incidents, newest first.
    pub newest: Vec<IncidentSummary>,
}

/// A link attached to a change event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EventLink {
    /// Target.
    pub href: String,
    /// Label.
    pub text: Option<String>,
}

/// One change event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChangeEventSummary {
    /// PagerDuty id.
    pub id: Option<String>,
    /// Summary.
    pub summary: Option<String>,
    /// Source (e.g. a CI system).
    pub source: Option<String>,
    /// When the change happened.
    pub timestamp: Option<DateTime<Utc>>,
    /// Links.
    pub links: Vec<EventLink>,
    /// Web UI link.
    pub html_url: Option<String>,
}

/// Recent change events of a service, newest first.
///
/// With `change_events.read` these come from the account's newest 300 change
/// events (one call serves every service): a service whose last change is
/// older than that window shows none. Without the scope they are read per
/// service (its newest 25, whatever their age; PagerDuty keeps 90 days).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChangeEventsSection {
    /// The newest change events.
    pub items: Vec<ChangeEventSummary>,
}

/// One standard and whether the service passes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StandardResult {
    /// Standard id.
    pub id: Option<String>,
    /// Name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Whether the service passes.
    pub pass: Option<bool>,
}

/// Standards scores of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StandardsSection {
    /// Standards passed.
    pub passing: Option<u32>,
    /// Standards evaluated.
    pub total: Option<u32>,
    /// Each standard.
    pub standards: Vec<StandardResult>,
}

/// 30-day incident analytics of a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MetricsSection {
    /// Start of the period.
    pub since: DateTime<Utc>,
    /// End of the period.
    pub until: DateTime<Utc>,
    /// Incidents in the period.
    pub total_incident_count: Option<u64>,
    /// Mean seconds to resolve.
    pub mean_seconds_to_resolve: Option<f64>,
    /// Mean seconds to first acknowledgement.
    pub mean_seconds_to_first_ack: Option<f64>,
    /// All metrics PagerDuty returned, as it named them.
    #[schema(value_type = Object)]
    pub raw: serde_json::Value,
}

/// What an integration key belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ResolvedKey {
    /// The service the key sends to.
    pub service_id: String,
    /// The integration that owns the key.
    pub integration_id: Option<String>,
    /// The integration's type, e.g. `events_api_v2_inbound_integration`.
    pub integration_type: Option<String>,
    /// The vendor id, e.g. `PRO19CT` for Backstage.
    pub vendor_id: Option<String>,
    /// True when the key accepts Events API v2 events.
    pub events_v2: bool,
}

/// The Events API v2 integration used to trigger incidents on a service.
///
/// `Debug` shows only a fingerprint of the routing key.
#[derive(Debug, Clone)]
pub struct RoutingKeyInfo {
    /// The service.
    pub service_id: String,
    /// The integration.
    pub integration_id: String,
    /// The integration's name.
    pub integration_name: Option<String>,
    /// The vendor id, if any.
    pub vendor_id: Option<String>,
    /// True when it is the Backstage vendor (`PRO19CT`) integration.
    pub backstage_vendor: bool,
    /// The routing key. A secret: never log it.
    pub routing_key: pagerduty::RoutingKey,
}
