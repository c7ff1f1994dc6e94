//! Typed PagerDuty REST v2 objects.
//!
//! Every model tolerates unknown fields and keeps them in `extra`, so that
//! serializing a model gives back the PagerDuty object untrimmed (the
//! Backstage-compatible routes pass objects through). Optional fields are
//! `Option`; lists default to empty when missing.

mod analytics;
mod change_event;
mod common;
mod dependency;
mod escalation_policy;
mod incident;
mod oncall;
mod service;
mod standards;
mod team;
mod user;

pub use analytics::ServiceIncidentMetrics;
pub use change_event::ChangeEvent;
pub use common::{Link, Reference};
pub use dependency::ServiceDependency;
pub use escalation_policy::{EscalationPolicy, EscalationRule};
pub use incident::{Assignment, Incident, IncidentStatus, Urgency};
pub use oncall::Oncall;
pub use service::{Integration, Service};
pub use standards::{ServiceStandards, Standard, StandardsScore};
pub use team::Team;
pub use user::User;

/// Unknown fields of a PagerDuty object, kept for untrimmed pass-through.
pub type Extra = serde_json::Map<String, serde_json::Value>;
