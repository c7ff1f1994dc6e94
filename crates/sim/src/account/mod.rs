//! The generated PagerDuty account: the data model ([`AccountView`] and its
//! parts), its seeded generation (`generate`), the queries the routes share
//! (`queries`: lookups, on-calls, statuses, standards), the incident
//! analytics derived from the incidents (`metrics`) and the dependency graph
//! between services (`dependencies`).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

mod dependencies;
mod generate;
mod metrics;
mod names;
mod queries;

pub(crate) use dependencies::check as check_dependency;
pub use dependencies::{DependencyError, MAX_DEPENDENCIES, MAX_DEPTH};
pub use metrics::ServiceMetrics;

/// Vendor id of PagerDuty's Backstage integration.
pub const BACKSTAGE_VENDOR_ID: &str = "PRO19CT";

/// An integration vendor the simulator knows (`POST /services/{id}/integrations`
/// may name it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vendor {
    /// `P` + 6 characters.
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// The integration type an integration of this vendor gets.
    pub integration_type: &'static str,
    /// What it is for.
    pub description: &'static str,
    /// The vendor's site.
    pub website_url: &'static str,
}

/// The vendors the simulator knows: PagerDuty's Backstage vendor only.
pub const VENDORS: &[Vendor] = &[Vendor {
    id: BACKSTAGE_VENDOR_ID,
    name: "Backstage",
    integration_type: "events_api_v2_inbound_integration",
    description: "Backstage is an open platform for building developer portals.",
    website_url: "https://backstage.io",
}];

/// A vendor of [`VENDORS`] by id.
pub fn vendor(id: &str) -> Option<&'static Vendor> {
    VENDORS.iter().find(|v| v.id == id)
}

/// A dependency between two services: `dependent_service_id` depends on
/// `supporting_service_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceDependency {
    /// `D` + 15 characters, like PagerDuty's.
    pub id: String,
    /// The service relied upon.
    pub supporting_service_id: String,
    /// The service that relies on it.
    pub dependent_service_id: String,
}

/// A team.
#[derive(Debug, Clone, PartialEq)]
pub struct Team {
    /// `P` + 6 characters.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
}

/// A user.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// `P` + 6 characters.
    pub id: String,
    /// Full name.
    pub name: String,
    /// Email address.
    pub email: String,
    /// IANA time zone.
    pub time_zone: String,
    /// Avatar URL.
    pub avatar_url: String,
    /// Job title.
    pub job_title: String,
    /// Role (`user`, `admin`, ...).
    pub role: String,
    /// Teams the user belongs to.
    pub team_ids: Vec<String>,
}

/// An on-call schedule with one rotation layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// `P` + 6 characters.
    pub id: String,
    /// Display name.
    pub name: String,
    /// IANA time zone.
    pub time_zone: String,
    /// Rotation order; empty = nobody is ever on call.
    pub user_ids: Vec<String>,
    /// Start of the rotation's shift 0.
    pub rotation_start: DateTime<Utc>,
    /// Shift length in seconds.
    pub turn_length_secs: i64,
    /// Teams.
    pub team_ids: Vec<String>,
}

impl Schedule {
    /// Shifts `(start, end, user_id)` overlapping `[since, until]` (a point in
    /// time when `since == until`), oldest first, at most 200.
    pub fn shifts(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Vec<(DateTime<Utc>, DateTime<Utc>, String)> {
        let mut out = Vec::new();
        if self.user_ids.is_empty() || self.turn_length_secs <= 0 {
            return out;
        }
        let len = self.turn_length_secs;
        let first = (since - self.rotation_start).num_seconds().div_euclid(len);
        let mut k = first;
        while out.len() < 200 {
            let start = self.rotation_start + Duration::seconds(k * len);
            let end = start + Duration::seconds(len);
            if start > until || (start == until && since != until) {
                break;
            }
            if end > since {
                let idx = k.rem_euclid(self.user_ids.len() as i64) as usize;
                out.push((start, end, self.user_ids[idx].clone()));
            }
            k += 1;
        }
        out
    }
}

/// Target of an escalation rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A user, always on call at this level.
    User(String),
    /// A schedule: whoever is on call there.
    Schedule(String),
}

/// One level of an escalation policy.
#[derive(Debug, Clone, PartialEq)]
pub struct EscalationRule {
    /// `P` + 6 characters.
    pub id: String,
    /// Minutes before escalating to the next level.
    pub escalation_delay_in_minutes: u32,
    /// 1–3 targets.
    pub targets: Vec<Target>,
}

/// An escalation policy.
#[derive(Debug, Clone, PartialEq)]
pub struct EscalationPolicy {
    /// `P` + 6 characters.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Repeat count.
    pub num_loops: u32,
    /// Levels, level 1 first.
    pub rules: Vec<EscalationRule>,
    /// Teams.
    pub team_ids: Vec<String>,
}

/// An integration on a service.
#[derive(Clone, PartialEq)]
pub struct Integration {
    /// `P` + 6 characters.
    pub id: String,
    /// PagerDuty type, e.g. `events_api_v2_inbound_integration`.
    pub kind: String,
    /// Display name.
    pub name: String,
    /// 32-character routing key (none for email integrations). A secret in real life.
    pub integration_key: Option<String>,
    /// Vendor `(id, name)`, e.g. `("PRO19CT", "Backstage")`.
    pub vendor: Option<(String, String)>,
    /// Inbound email address (email integrations).
    pub integration_email: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for Integration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Integration")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field(
                "integration_key",
                &self.integration_key.as_ref().map(|_| "[redacted]"),
            )
            .field("vendor", &self.vendor)
            .field("integration_email", &self.integration_email)
            .finish()
    }
}

/// A service.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// `P` + 6 characters.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Description (some have none).
    pub description: Option<String>,
    /// Configured status: `active`, `disabled` or `maintenance`. The served
    /// status of an active service is derived from its open incidents
    /// (see [`AccountView::service_status`]).
    pub status: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Escalation policy.
    pub escalation_policy_id: String,
    /// Teams (0–2).
    pub team_ids: Vec<String>,
    /// Integrations.
    pub integrations: Vec<Integration>,
    /// Seconds, or none.
    pub auto_resolve_timeout: Option<u32>,
    /// Seconds, or none.
    pub acknowledgement_timeout: Option<u32>,
}

/// An incident.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    /// `P` + 6 characters.
    pub id: String,
    /// Account-wide number.
    pub incident_number: u64,
    /// Title.
    pub title: String,
    /// Service.
    pub service_id: String,
    /// Escalation policy.
    pub escalation_policy_id: String,
    /// `triggered`, `acknowledged` or `resolved`.
    pub status: String,
    /// `high` or `low`.
    pub urgency: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// First acknowledgement.
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// Resolution.
    pub resolved_at: Option<DateTime<Utc>>,
    /// The dedup key (Events API `dedup_key`).
    pub incident_key: String,
    /// Assigned users (empty when resolved).
    pub assignee_ids: Vec<String>,
    /// Users who acknowledged (at `acknowledged_at`).
    pub acknowledger_ids: Vec<String>,
    /// Alerts grouped into the incident.
    pub alert_count: u32,
    /// Responders pulled in by a responder request, with the time each
    /// accepted (acknowledged); they follow `acknowledger_ids` in the
    /// incident's acknowledgements, and are assigned while it is open.
    pub additional_responders: Vec<(String, DateTime<Utc>)>,
}

impl Incident {
    /// Triggered or acknowledged.
    pub fn is_open(&self) -> bool {
        self.status != "resolved"
    }
}

/// A change event.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeEvent {
    /// 26 characters, like PagerDuty's.
    pub id: String,
    /// Summary.
    pub summary: String,
    /// When it happened.
    pub timestamp: DateTime<Utc>,
    /// Source, e.g. `github-actions`.
    pub source: Option<String>,
    /// Service.
    pub service_id: String,
    /// Integration that received it.
    pub integration_id: Option<String>,
    /// Links `(href, text)`.
    pub links: Vec<(String, Option<String>)>,
    /// Free-form details.
    pub custom_details: Value,
}

/// A service standard.
#[derive(Debug, Clone, PartialEq)]
pub struct StandardDef {
    /// 26 characters.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Type, e.g. `has_technical_service_description`.
    pub kind: String,
}

/// One on-call entry, as `GET /oncalls` returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct Oncall {
    /// Escalation policy.
    pub escalation_policy_id: String,
    /// 1-based level.
    pub escalation_level: u32,
    /// User.
    pub user_id: String,
    /// Schedule, none for a direct user target.
    pub schedule_id: Option<String>,
    /// Shift start; none = permanent.
    pub start: Option<DateTime<Utc>>,
    /// Shift end; none = permanent.
    pub end: Option<DateTime<Utc>>,
}

/// The whole generated account (and its changes since start, e.g. incidents
/// opened by Events API triggers).
#[derive(Debug, Clone, PartialEq)]
pub struct AccountView {
    /// The clock base the data was generated around.
    pub generated_at: DateTime<Utc>,
    /// Teams.
    pub teams: Vec<Team>,
    /// Users.
    pub users: Vec<User>,
    /// Schedules.
    pub schedules: Vec<Schedule>,
    /// Escalation policies.
    pub escalation_policies: Vec<EscalationPolicy>,
    /// Services, sorted by name.
    pub services: Vec<Service>,
    /// Incidents, by incident number.
    pub incidents: Vec<Incident>,
    /// Change events, oldest first.
    pub change_events: Vec<ChangeEvent>,
    /// Standards applied to every service.
    pub standards: Vec<StandardDef>,
    /// Account abilities (`GET /abilities`).
    pub abilities: Vec<String>,
    /// Service dependencies made with `POST /service_dependencies/associate`,
    /// oldest first (none are generated).
    pub dependencies: Vec<ServiceDependency>,
    /// Lookup tables, rebuilt by [`AccountView::reindex`].
    index: Index,
}

/// Id → position tables so lookups stay fast for large accounts.
#[derive(Clone, Default, PartialEq)]
struct Index {
    services: BTreeMap<String, usize>,
    users: BTreeMap<String, usize>,
    teams: BTreeMap<String, usize>,
    schedules: BTreeMap<String, usize>,
    escalation_policies: BTreeMap<String, usize>,
    incidents: BTreeMap<String, usize>,
    service_by_key: BTreeMap<String, usize>,
    incidents_by_service: BTreeMap<String, Vec<usize>>,
    services_by_policy: BTreeMap<String, Vec<usize>>,
}

impl std::fmt::Debug for Index {
    // The tables hold integration keys: keep them out of Debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Index { .. }")
    }
}

fn positions<T>(items: &[T], id: impl Fn(&T) -> &str) -> BTreeMap<String, usize> {
    items
        .iter()
        .enumerate()
        .map(|(i, x)| (id(x).to_owned(), i))
        .collect()
}

impl AccountView {
    /// Rebuilds the lookup tables; call after changing the public vectors.
    pub fn reindex(&mut self) {
        let mut index = Index {
            services: positions(&self.services, |s| &s.id),
            users: positions(&self.users, |u| &u.id),
            teams: positions(&self.teams, |t| &t.id),
            schedules: positions(&self.schedules, |s| &s.id),
            escalation_policies: positions(&self.escalation_policies, |e| &e.id),
            incidents: positions(&self.incidents, |i| &i.id),
            ..Index::default()
        };
        for (pos, svc) in self.services.iter().enumerate() {
            for key in svc
                .integrations
                .iter()
                .filter_map(|i| i.integration_key.as_ref())
            {
                index.service_by_key.insert(key.clone(), pos);
            }
            index
                .services_by_policy
                .entry(svc.escalation_policy_id.clone())
                .or_default()
                .push(pos);
        }
        for (pos, inc) in self.incidents.iter().enumerate() {
            index
                .incidents_by_service
                .entry(inc.service_id.clone())
                .or_default()
                .push(pos);
        }
        self.index = index;
    }

    /// Appends an incident and indexes it.
    pub fn push_incident(&mut self, incident: Incident) {
        let pos = self.incidents.len();
        self.index.incidents.insert(incident.id.clone(), pos);
        self.index
            .incidents_by_service
            .entry(incident.service_id.clone())
            .or_default()
            .push(pos);
        self.incidents.push(incident);
    }

    /// Replaces the service of the same id (a REST update), keeping the
    /// services sorted by name and the tables current; false when there is
    /// no such service.
    pub fn replace_service(&mut self, service: Service) -> bool {
        let Some(&pos) = self.index.services.get(&service.id) else {
            return false;
        };
        let renamed = self.services[pos].name != service.name;
        self.services[pos] = service;
        if renamed {
            self.services
                .sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        }
        // The policy (and, after a rename, every position) may have moved.
        self.reindex();
        true
    }

    /// Replaces the incident of the same id (a REST update; its service
    /// stays, so the tables do too); false when there is no such incident.
    pub fn replace_incident(&mut self, incident: Incident) -> bool {
        let Some(&pos) = self.index.incidents.get(&incident.id) else {
            return false;
        };
        debug_assert_eq!(self.incidents[pos].service_id, incident.service_id);
        self.incidents[pos] = incident;
        true
    }

    /// Adds an integration to a service and indexes its key; false when the
    /// service does not exist.
    pub fn add_integration(&mut self, service_id: &str, integration: Integration) -> bool {
        let Some(&pos) = self.index.services.get(service_id) else {
            return false;
        };
        if let Some(key) = &integration.integration_key {
            self.index.service_by_key.insert(key.clone(), pos);
        }
        self.services[pos].integrations.push(integration);
        true
    }
}
