use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Extra, Reference, User};

/// One on-call entry (`GET /oncalls`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Oncall {
    /// The escalation policy this entry belongs to.
    pub escalation_policy: Reference,
    /// Level in the policy (1 = first).
    pub escalation_level: u32,
    /// The schedule, or `None` for a direct user target.
    #[serde(default)]
    pub schedule: Option<Reference>,
    /// The user on call (full object with `include[]=users`, else a reference).
    pub user: User,
    /// Shift start; `None` = permanent.
    #[serde(default)]
    pub start: Option<DateTime<Utc>>,
    /// Shift end; `None` = never goes off call.
    #[serde(default)]
    pub end: Option<DateTime<Utc>>,
    /// Unknown fields, kept as-is.
    #[serde(flatten)]
    pub extra: Extra,
}
