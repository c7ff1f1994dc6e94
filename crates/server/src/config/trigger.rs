//! `[trigger]`: the create-incident proxy.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Problem;
use super::checks::{check_http_url, problem};

/// Which integration keys the trigger proxy accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TriggerAllow {
    /// Only keys of services in the PagerDuty account we read.
    Known,
    /// Any well-formed key.
    Any,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct TriggerSettings {
    /// `client` of every event.
    pub client_name: String,
    /// Default `client_url` of every event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_url: Option<String>,
    /// Severity when the request has none.
    pub default_severity: pagerduty::Severity,
    /// Which integration keys are accepted.
    pub allow: TriggerAllow,
    /// Budget of one request, lookups and retries included.
    pub deadline_ms: u64,
    /// How long answers are kept for idempotent replays.
    pub idempotency_window_secs: u64,
    /// Requests per caller per minute.
    pub per_caller_per_minute: u32,
    /// Requests per routing key per minute.
    pub per_routing_key_per_minute: u32,
}

impl TriggerSettings {
    /// `deadline_ms`.
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline_ms)
    }

    /// `idempotency_window_secs`.
    pub fn idempotency_window(&self) -> Duration {
        Duration::from_secs(self.idempotency_window_secs)
    }

    /// `request_deadline_ms` bounds the trigger's own deadline.
    pub(super) fn validate(&self, request_deadline_ms: u64, problems: &mut Vec<Problem>) {
        if self.client_name.trim().is_empty() {
            problems.push(problem("trigger.client_name", "must not be empty"));
        }
        if let Some(url) = &self.client_url
            && let Err(why) = check_http_url(url)
        {
            problems.push(problem("trigger.client_url", format!("`{url}` {why}")));
        }
        if !(1..=600_000).contains(&self.deadline_ms) {
            problems.push(problem(
                "trigger.deadline_ms",
                "must be between 1 and 600000 (10 minutes)",
            ));
        } else if self.deadline_ms > request_deadline_ms {
            problems.push(problem(
                "trigger.deadline_ms",
                format!(
                    "{} exceeds server.request_deadline_ms ({request_deadline_ms}): the request would be cut off before the trigger's own deadline; keep trigger.deadline_ms <= server.request_deadline_ms",
                    self.deadline_ms
                ),
            ));
        }
        for (key, value) in [
            (
                "trigger.idempotency_window_secs",
                self.idempotency_window_secs,
            ),
            (
                "trigger.per_caller_per_minute",
                u64::from(self.per_caller_per_minute),
            ),
            (
                "trigger.per_routing_key_per_minute",
                u64::from(self.per_routing_key_per_minute),
            ),
        ] {
            if value == 0 {
                problems.push(problem(key, "must be at least 1"));
            }
        }
    }
}
