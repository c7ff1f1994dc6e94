//! Why a trigger (or acknowledge/resolve) was refused or not delivered, in
//! the domain's terms. The HTTP surfaces (`/v1` and Backstage) turn these
//! into statuses and bodies in one place (`crate::http::trigger`).
//!
//! Every failure after validation says whether the event was created and
//! whether retrying is safe: it always is with the same `dedup_key`, which
//! PagerDuty uses to merge events into one alert.

use std::time::Duration;

use pagerduty::EventAction;

use super::limits::LimitScope;

/// How delivery to PagerDuty ended without an accepted event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryFailure {
    /// PagerDuty answered 5xx or could not be reached, until the deadline.
    Unavailable,
    /// PagerDuty kept answering 429 until the deadline.
    Throttled,
    /// No answer before the deadline.
    Timeout,
    /// An answer we cannot use (an unexpected 4xx, a body we cannot read).
    BadGateway,
}

/// A failed trigger, cheap to clone (idempotent replays share it).
#[derive(Debug, Clone, thiserror::Error)]
pub enum TriggerError {
    /// A request field breaks an Events API rule; nothing was sent.
    #[error("invalid request body: `{field}` {message}")]
    Invalid { field: String, message: String },
    /// `trigger.allow = "known"` and the key belongs to no known service.
    #[error(
        "integration_key does not belong to a PagerDuty service dutycard can read (trigger.allow = \"known\")"
    )]
    KeyNotAllowed,
    /// Our own per-caller or per-routing-key limit.
    #[error("too many trigger requests for this {}; retry in {} s", .scope.as_str(), secs(*.retry_after))]
    RateLimited {
        scope: LimitScope,
        retry_after: Duration,
    },
    /// The same Idempotency-Key was used for a different request.
    #[error(
        "Idempotency-Key was already used for a different request within the idempotency window"
    )]
    IdempotencyKeyReused,
    /// A request with the same Idempotency-Key is still being delivered.
    #[error("a request with this Idempotency-Key is still in progress; retry shortly")]
    InProgress,
    /// PagerDuty answered 400: the event is invalid. Not retried.
    #[error("PagerDuty rejected the event: {message}")]
    Rejected {
        message: String,
        errors: Vec<String>,
    },
    /// Delivery failed within `trigger.deadline_ms`: the event was not
    /// created, or (`created_unknown`) no attempt proves it was not.
    #[error(
        "{}: {reason}. Retrying is safe with dedup_key `{dedup_key}` (PagerDuty merges events with the same dedup_key into one incident).",
        outcome(*.action, *.created_unknown)
    )]
    NotDelivered {
        /// What the event was to do (trigger, acknowledge, resolve).
        action: EventAction,
        failure: DeliveryFailure,
        reason: String,
        dedup_key: String,
        attempts: u32,
        retry_after: Option<Duration>,
        /// True when PagerDuty may have accepted it: some attempt got no
        /// answer, an unreadable one, or lost its connection after sending.
        created_unknown: bool,
    },
    /// The event has nowhere to go: the service does not exist, or has no
    /// Events API v2 integration (a lookup that failed on PagerDuty's side
    /// is [`TriggerError::NotDelivered`] instead: nothing was sent).
    #[error(transparent)]
    Lookup(cards::CardError),
    /// A bug on our side (the delivery task failed); details are logged.
    #[error("internal error")]
    Internal(String),
}

/// What became of the incident, in the words of the action.
fn outcome(action: EventAction, created_unknown: bool) -> String {
    let done = match action {
        EventAction::Trigger => "created",
        EventAction::Acknowledge => "acknowledged",
        EventAction::Resolve => "resolved",
    };
    if created_unknown {
        format!(
            "PagerDuty did not confirm the event, so it is unknown whether the incident was {done}"
        )
    } else {
        format!("the incident was NOT {done}")
    }
}

/// Whole seconds, rounded up, at least 1: retrying a little late is fine,
/// early earns another refusal.
pub fn secs(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

impl TriggerError {
    /// The stable `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            TriggerError::Invalid { .. } => "invalid_body",
            TriggerError::KeyNotAllowed => "integration_key_not_allowed",
            TriggerError::RateLimited { .. } => "rate_limited",
            TriggerError::IdempotencyKeyReused => "idempotency_key_reused",
            TriggerError::InProgress => "in_progress",
            TriggerError::Rejected { .. } => "event_rejected",
            TriggerError::NotDelivered { failure, .. } => match failure {
                DeliveryFailure::Unavailable => "upstream_unavailable",
                DeliveryFailure::Throttled => "upstream_rate_limited",
                DeliveryFailure::Timeout => "upstream_timeout",
                DeliveryFailure::BadGateway => "upstream_bad_response",
            },
            TriggerError::Lookup(cards::CardError::NoEventsIntegration { .. }) => {
                "no_events_integration"
            }
            TriggerError::Lookup(_) => "not_found",
            TriggerError::Internal(_) => "internal",
        }
    }

    /// Seconds after which a retry may succeed, when that is known.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            TriggerError::RateLimited { retry_after, .. } => Some(secs(*retry_after)),
            TriggerError::InProgress => Some(1),
            TriggerError::NotDelivered {
                failure: DeliveryFailure::Throttled | DeliveryFailure::Unavailable,
                retry_after,
                ..
            } => Some(retry_after.map(secs).unwrap_or(1)),
            _ => None,
        }
    }
}
