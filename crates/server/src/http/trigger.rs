//! The one place where the trigger's outcomes get HTTP statuses: both
//! surfaces answer a trigger (or acknowledge/resolve) with these statuses,
//! `Retry-After` and, on success, 202 with `Idempotent-Replayed` on a
//! replayed answer.

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use actix_web::{HttpResponse, ResponseError};
use serde_json::{Map, Value, json};

use crate::trigger::{DeliveryFailure, Outcome, TriggerError};

/// Header naming a request for idempotent retries.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
/// Set (`true`) on an answer replayed from an earlier request.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// The status of a failed trigger.
pub fn status(e: &TriggerError) -> StatusCode {
    match e {
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
        TriggerError::Lookup(cards::CardError::NotFound { .. }) => StatusCode::NOT_FOUND,
        TriggerError::Lookup(cards::CardError::NoEventsIntegration { .. }) => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        // Lookups that failed on PagerDuty's side became NotDelivered.
        TriggerError::Lookup(_) => StatusCode::BAD_GATEWAY,
        TriggerError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The facts a caller acts on: the field at fault, whether the incident was
/// created, whether and how to retry.
pub fn details(e: &TriggerError) -> Map<String, Value> {
    let value = match e {
        TriggerError::Invalid { field, .. } => json!({ "field": field }),
        TriggerError::KeyNotAllowed => json!({ "field": "integration_key" }),
        TriggerError::RateLimited { scope, retry_after } => json!({
            "scope": scope.as_str(),
            "retry_after_secs": crate::trigger::error::secs(*retry_after),
        }),
        TriggerError::IdempotencyKeyReused | TriggerError::InProgress => {
            json!({ "header": IDEMPOTENCY_KEY })
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
        TriggerError::Lookup(_) | TriggerError::Internal(_) => json!({}),
    };
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// 202 with the accepted event, or the error in the surface's shape `E`;
/// a replayed answer says so.
pub fn respond<E: From<TriggerError> + ResponseError>(outcome: Outcome) -> HttpResponse {
    let mut response = match outcome.result {
        Ok(accepted) => HttpResponse::Accepted().json(accepted),
        Err(e) => E::from(e).error_response(),
    };
    if outcome.replayed {
        response
            .headers_mut()
            .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    response
}

/// Adds `Retry-After` when the trigger error says when to retry.
pub fn retry_after(e: &TriggerError, response: &mut HttpResponse) {
    if let Some(secs) = e.retry_after_secs()
        && let Ok(value) = HeaderValue::from_str(&secs.to_string())
    {
        response.headers_mut().insert(RETRY_AFTER, value);
    }
}

/// The `Idempotency-Key` header's value; a non-UTF-8 value is passed on as
/// empty (and refused by validation).
pub fn idempotency_key(req: &actix_web::HttpRequest) -> Option<String> {
    req.headers()
        .get(IDEMPOTENCY_KEY)
        .map(|v| v.to_str().unwrap_or("").to_owned())
}
