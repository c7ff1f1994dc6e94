//! Query parameters of the list calls.
//!
//! Plain structs with public fields and `Default`, so callers write
//! `ListIncidents { service_ids: vec![id], statuses: vec![..], ..Default::default() }`.
//! Array parameters are sent as repeated `key[]=value` pairs; timestamps are
//! sent in UTC with a `Z` suffix (PagerDuty rejects non-UTC change-event
//! bounds).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::models::{IncidentStatus, Urgency};

/// Query-string pairs, in order.
pub(crate) type Pairs = Vec<(String, String)>;

pub(crate) fn push(pairs: &mut Pairs, key: &str, value: impl ToString) {
    pairs.push((key.to_string(), value.to_string()));
}

pub(crate) fn push_all<T: ToString>(pairs: &mut Pairs, key: &str, values: &[T]) {
    for v in values {
        push(pairs, key, v.to_string());
    }
}

pub(crate) fn utc(ts: &DateTime<Utc>) -> String {
    ts.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// What `include[]` can expand on a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceInclude {
    /// Full escalation policy instead of a reference.
    EscalationPolicies,
    /// Full integrations (with `integration_key`).
    Integrations,
    /// Full teams.
    Teams,
}

impl ServiceInclude {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceInclude::EscalationPolicies => "escalation_policies",
            ServiceInclude::Integrations => "integrations",
            ServiceInclude::Teams => "teams",
        }
    }
}

impl fmt::Display for ServiceInclude {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ServiceInclude {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "escalation_policies" => Ok(ServiceInclude::EscalationPolicies),
            "integrations" => Ok(ServiceInclude::Integrations),
            "teams" => Ok(ServiceInclude::Teams),
            other => Err(format!(
                "unknown service include `{other}` (expected escalation_policies, integrations or teams)"
            )),
        }
    }
}

/// Classic pagination: `limit` (≤ 100) and `offset`.
pub(crate) trait Paged: Clone {
    fn limit(&self) -> Option<u32>;
    fn offset(&self) -> Option<u32>;
    fn set_page(&mut self, limit: u32, offset: u32);
    fn pairs(&self) -> Pairs;
}

fn push_page(pairs: &mut Pairs, limit: Option<u32>, offset: Option<u32>) {
    if let Some(l) = limit {
        push(pairs, "limit", l);
    }
    if let Some(o) = offset {
        push(pairs, "offset", o);
    }
}

macro_rules! paged {
    ($t:ty) => {
        impl Paged for $t {
            fn limit(&self) -> Option<u32> {
                self.limit
            }
            fn offset(&self) -> Option<u32> {
                self.offset
            }
            fn set_page(&mut self, limit: u32, offset: u32) {
                self.limit = Some(limit);
                self.offset = Some(offset);
            }
            fn pairs(&self) -> Pairs {
                self.to_pairs()
            }
        }
    };
}

/// `GET /services` parameters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListServices {
    /// Name filter (PagerDuty also matches integration keys here).
    pub query: Option<String>,
    /// `team_ids[]`.
    pub team_ids: Vec<String>,
    /// `include[]`.
    pub include: Vec<ServiceInclude>,
    /// Page size (≤ 100; PagerDuty's default is 25).
    pub limit: Option<u32>,
    /// Start index.
    pub offset: Option<u32>,
    /// Ask for `total` (slower).
    pub total: bool,
}

impl ListServices {
    pub(crate) fn to_pairs(&self) -> Pairs {
        let mut p = Pairs::new();
        if let Some(q) = &self.query {
            push(&mut p, "query", q);
        }
        push_all(&mut p, "team_ids[]", &self.team_ids);
        push_all(&mut p, "include[]", &self.include);
        push_page(&mut p, self.limit, self.offset);
        if self.total {
            push(&mut p, "total", "true");
        }
        p
    }
}
paged!(ListServices);

/// `GET /incidents` parameters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListIncidents {
    /// `service_ids[]`.
    pub service_ids: Vec<String>,
    /// `statuses[]`; open incidents are `[Triggered, Acknowledged]`.
    pub statuses: Vec<IncidentStatus>,
    /// `urgencies[]` (needs the `urgencies` ability).
    pub urgencies: Vec<Urgency>,
    /// `date_range=all`: ignore since/until and the default 1-month window.
    pub date_range_all: bool,
    /// Start of the window (ignored with `date_range_all`).
    pub since: Option<DateTime<Utc>>,
    /// End of the window (ignored with `date_range_all`).
    pub until: Option<DateTime<Utc>>,
    /// e.g. `created_at:desc`.
    pub sort_by: Option<String>,
    /// Page size (≤ 100).
    pub limit: Option<u32>,
    /// Start index.
    pub offset: Option<u32>,
    /// `include[]`, e.g. `assignees`, `services`.
    pub include: Vec<String>,
}

impl ListIncidents {
    pub(crate) fn to_pairs(&self) -> Pairs {
        let mut p = Pairs::new();
        push_all(&mut p, "service_ids[]", &self.service_ids);
        push_all(&mut p, "statuses[]", &self.statuses);
        push_all(&mut p, "urgencies[]", &self.urgencies);
        if self.date_range_all {
            push(&mut p, "date_range", "all");
        } else {
            if let Some(s) = &self.since {
                push(&mut p, "since", utc(s));
            }
            if let Some(u) = &self.until {
                push(&mut p, "until", utc(u));
            }
        }
        if let Some(s) = &self.sort_by {
            push(&mut p, "sort_by", s);
        }
        push_all(&mut p, "include[]", &self.include);
        push(&mut p, "time_zone", "UTC");
        push_page(&mut p, self.limit, self.offset);
        p
    }
}
paged!(ListIncidents);

/// `GET /oncalls` parameters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListOncalls {
    /// `escalation_policy_ids[]`.
    pub escalation_policy_ids: Vec<String>,
    /// `schedule_ids[]`.
    pub schedule_ids: Vec<String>,
    /// `user_ids[]`.
    pub user_ids: Vec<String>,
    /// `earliest=true`: only the earliest on-call per (policy, level, user).
    pub earliest: bool,
    /// `include[]=users`: full user objects instead of references.
    pub include_users: bool,
    /// `time_zone` (defaults to `UTC` when unset).
    pub time_zone: Option<String>,
    /// Page size (≤ 100).
    pub limit: Option<u32>,
    /// Start index.
    pub offset: Option<u32>,
}

impl ListOncalls {
    pub(crate) fn to_pairs(&self) -> Pairs {
        let mut p = Pairs::new();
        push_all(
            &mut p,
            "escalation_policy_ids[]",
            &self.escalation_policy_ids,
        );
        push_all(&mut p, "schedule_ids[]", &self.schedule_ids);
        push_all(&mut p, "user_ids[]", &self.user_ids);
        if self.earliest {
            push(&mut p, "earliest", "true");
        }
        if self.include_users {
            push(&mut p, "include[]", "users");
        }
        push(
            &mut p,
            "time_zone",
            self.time_zone.as_deref().unwrap_or("UTC"),
        );
        push_page(&mut p, self.limit, self.offset);
        p
    }
}
paged!(ListOncalls);

/// `GET /escalation_policies` parameters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListEscalationPolicies {
    /// Name filter.
    pub query: Option<String>,
    /// `service_ids[]`.
    pub service_ids: Vec<String>,
    /// `team_ids[]`.
    pub team_ids: Vec<String>,
    /// Page size (≤ 100).
    pub limit: Option<u32>,
    /// Start index.
    pub offset: Option<u32>,
}

impl ListEscalationPolicies {
    pub(crate) fn to_pairs(&self) -> Pairs {
        let mut p = Pairs::new();
        if let Some(q) = &self.query {
            push(&mut p, "query", q);
        }
        push_all(&mut p, "service_ids[]", &self.service_ids);
        push_all(&mut p, "team_ids[]", &self.team_ids);
        push_page(&mut p, self.limit, self.offset);
        p
    }
}
paged!(ListEscalationPolicies);

/// Change-event list parameters (per service or account-wide).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListChangeEvents {
    /// Start (sent as UTC `Z`).
    pub since: Option<DateTime<Utc>>,
    /// End (sent as UTC `Z`).
    pub until: Option<DateTime<Utc>>,
    /// Page size (≤ 100).
    pub limit: Option<u32>,
    /// Start index.
    pub offset: Option<u32>,
    /// `team_ids[]`.
    pub team_ids: Vec<String>,
}

impl ListChangeEvents {
    pub(crate) fn to_pairs(&self) -> Pairs {
        let mut p = Pairs::new();
        if let Some(s) = &self.since {
            push(&mut p, "since", utc(s));
        }
        if let Some(u) = &self.until {
            push(&mut p, "until", utc(u));
        }
        push_all(&mut p, "team_ids[]", &self.team_ids);
        push_page(&mut p, self.limit, self.offset);
        p
    }
}
paged!(ListChangeEvents);

/// `GET /teams` parameters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListTeams {
    /// Name filter.
    pub query: Option<String>,
    /// Page size (≤ 100).
    pub limit: Option<u32>,
    /// Start index.
    pub offset: Option<u32>,
}

impl ListTeams {
    pub(crate) fn to_pairs(&self) -> Pairs {
        let mut p = Pairs::new();
        if let Some(q) = &self.query {
            push(&mut p, "query", q);
        }
        push_page(&mut p, self.limit, self.offset);
        p
    }
}
paged!(ListTeams);

/// `GET /webhook_subscriptions` parameters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListWebhookSubscriptions {
    /// Page size (≤ 100).
    pub limit: Option<u32>,
    /// Start index.
    pub offset: Option<u32>,
}

impl ListWebhookSubscriptions {
    pub(crate) fn to_pairs(&self) -> Pairs {
        let mut p = Pairs::new();
        push_page(&mut p, self.limit, self.offset);
        p
    }
}
paged!(ListWebhookSubscriptions);

/// `POST /analytics/metrics/incidents/services` parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentMetricsQuery {
    /// Services to report on (empty = all).
    pub service_ids: Vec<String>,
    /// Incidents created at or after this time.
    pub created_at_start: DateTime<Utc>,
    /// Incidents created before this time.
    pub created_at_end: DateTime<Utc>,
    /// `day`, `week` or `month`; `None` = one row per service for the whole range.
    pub aggregate_unit: Option<String>,
    /// Time zone for aggregation, e.g. `Etc/UTC`.
    pub time_zone: Option<String>,
}

impl IncidentMetricsQuery {
    pub(crate) fn to_body(&self) -> serde_json::Value {
        let mut filters = serde_json::json!({
            "created_at_start": utc(&self.created_at_start),
            "created_at_end": utc(&self.created_at_end),
        });
        if !self.service_ids.is_empty() {
            filters["service_ids"] = serde_json::json!(self.service_ids);
        }
        let mut body = serde_json::json!({ "filters": filters });
        if let Some(u) = &self.aggregate_unit {
            body["aggregate_unit"] = serde_json::json!(u);
        }
        if let Some(tz) = &self.time_zone {
            body["time_zone"] = serde_json::json!(tz);
        }
        body
    }
}
