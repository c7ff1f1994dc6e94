//! Why a trigger (or acknowledge/resolve) was not delivered, and the answer
//! the caller gets: the API's usual `{"error":{"code","message","details"}}`.
//!
//! Every failure after validation says whether the event was created and
//! whether retrying is safe: it always is with the same `dedup_key`, which
//! PagerDuty uses to merge events into one alert.

use std::time::Duration;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use pagerduty::EventAction;
use serde_json::{Map, Value, json};

use crate::error::{ApiError, ErrorBody, ErrorDetail};
use crate::trigger::limits::LimitScope;

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
    /// Any other API error (service lookup failures, unknown service...).
    #[error("{message}")]
    Api {
        status: u16,
        code: String,
        message: String,
        details: Map<String, Value>,
        retry_after: Option<u64>,
    },
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

fn secs(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

impl From<ApiError> for TriggerError {
    fn from(e: ApiError) -> Self {
        let status = e.status_code().as_u16();
        let retry_after = match &e {
            ApiError::UpstreamRateLimited { retry_after } => {
                Some(retry_after.map(secs).unwrap_or(30))
            }
            _ => None,
        };
        let ErrorBody {
            error:
                ErrorDetail {
                    code,
                    message,
                    details,
                },
        } = e.body();
        TriggerError::Api {
            status,
            code,
            message,
            details,
            retry_after,
        }
    }
}

impl From<cards::CardError> for TriggerError {
    fn from(e: cards::CardError) -> Self {
        ApiError::from(e).into()
    }
}

impl TriggerError {
    /// The stable `error.code`.
    pub fn code(&self) -> &str {
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
            TriggerError::Api { code, .. } => code,
        }
    }

    fn details(&self) -> Map<String, Value> {
        let value = match self {
            TriggerError::Invalid { field, .. } => json!({ "field": field }),
            TriggerError::KeyNotAllowed => json!({ "field": "integration_key" }),
            TriggerError::RateLimited { scope, retry_after } => {
                json!({ "scope": scope.as_str(), "retry_after_secs": secs(*retry_after) })
            }
            TriggerError::IdempotencyKeyReused | TriggerError::InProgress => {
                json!({ "header": "Idempotency-Key" })
            }
            TriggerError::Rejected { errors, .. } => {
                json!({ "errors": errors, "created": false, "retry_safe": false })
            }
            TriggerError::NotDelivered {
                dedup_key,
                attempts,
                created_unknown,
                ..
            } => json!({
                "created": if *created_unknown { Value::Null } else { Value::Bool(false) },
                "retry_safe": true,
                "dedup_key": dedup_key,
                "attempts": attempts,
            }),
            TriggerError::Api { details, .. } => return details.clone(),
        };
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message: self.to_string(),
                details: self.details(),
            },
        }
    }

    fn retry_after_secs(&self) -> Option<u64> {
        match self {
            TriggerError::RateLimited { retry_after, .. } => Some(secs(*retry_after)),
            TriggerError::InProgress => Some(1),
            TriggerError::NotDelivered {
                failure: DeliveryFailure::Throttled | DeliveryFailure::Unavailable,
                retry_after,
                ..
            } => Some(retry_after.map(secs).unwrap_or(1)),
            TriggerError::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

impl ResponseError for TriggerError {
    fn status_code(&self) -> StatusCode {
        match self {
            TriggerError::Invalid { .. } | TriggerError::Rejected { .. } => StatusCode::BAD_REQUEST,
            TriggerError::KeyNotAllowed => StatusCode::FORBIDDEN,
            TriggerError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            TriggerError::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            TriggerError::InProgress => StatusCode::CONFLICT,
            TriggerError::NotDelivered { failure, .. } => match failure {
                DeliveryFailure::Unavailable | DeliveryFailure::Throttled => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                DeliveryFailure::Timeout => StatusCode::GATEWAY_TIMEOUT,
                DeliveryFailure::BadGateway => StatusCode::BAD_GATEWAY,
            },
            TriggerError::Api { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut builder = HttpResponse::build(self.status_code());
        if let Some(secs) = self.retry_after_secs() {
            builder.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        if self.status_code() == StatusCode::UNAUTHORIZED {
            builder.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"dutycard\""));
        }
        builder.json(self.body())
    }
}
