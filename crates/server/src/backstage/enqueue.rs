//! An Events-API-v2-compatible intake: `POST {prefix}/enqueue` and
//! `POST {prefix}/v2/enqueue`.
//!
//! PagerDuty's Backstage frontend (0.17.1) sends "Create incident" from the
//! browser to `{pagerDuty.eventsBaseUrl}/enqueue` with an Events v2 body.
//! Pointing `pagerDuty.eventsBaseUrl` at dutycard's Backstage prefix routes
//! it through the create-incident machinery of `POST /v1/incidents`: caller
//! auth (Backstage's `fetchApi` sends the user's token), the known-key
//! allowlist, validation, idempotency, rate limits, attribution
//! (`custom_details.triggered_by` is the caller, whatever the body's user
//! name says) and delivery within `trigger.deadline_ms`. The body's
//! `routing_key` may be an integration key or its `dcak_` alias (what the
//! Backstage routes show). Answers use Events v2's own shapes: 202
//! `{status, message, dedup_key}` and 400 `{status: "invalid event",
//! message, errors}`; every other failure keeps the trigger's status with
//! `{status, message, errors}`.

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::{HttpRequest, HttpResponse, ResponseError, post, web};
use pagerduty::EventAction;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::params::Params;
use crate::accounts::UnknownAccount;
use crate::auth::AuthError;
use crate::http::RequestError;
use crate::http::extract::Json;
use crate::http::trigger::{IDEMPOTENT_REPLAYED, idempotency_key};
use crate::middleware::auth::Authenticated;
use crate::state::AppState;
use crate::trigger::{FollowUpRequest, LinkInput, TriggerError, TriggerRequest};

/// An Events API v2 event, as PagerDuty's Backstage frontend sends it.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"event_action": "trigger", "routing_key": "dcak_0123456789abcdef0123456789abcdef", "client": "Backstage", "client_url": "https://backstage.example.com/catalog/default/component/checkout", "payload": {"summary": "Checkout is failing", "source": "https://backstage.example.com/catalog/default/component/checkout", "severity": "error", "class": "manual trigger", "custom_details": {"user": "guest"}}}))]
pub struct EnqueueBody {
    /// The integration key, or its `dcak_` alias from a Backstage answer.
    #[serde(default)]
    pub routing_key: Option<String>,
    /// `trigger`, `acknowledge` or `resolve`.
    #[serde(default)]
    pub event_action: Option<String>,
    /// Required for acknowledge and resolve; generated for a trigger without one.
    #[serde(default)]
    pub dedup_key: Option<String>,
    /// The alert (required for a trigger).
    #[serde(default)]
    pub payload: Option<EnqueuePayload>,
    /// Shown in PagerDuty (dutycard sends its `trigger.client_name`).
    #[serde(default)]
    pub client: Option<String>,
    /// The portal page the event came from.
    #[serde(default)]
    pub client_url: Option<String>,
    /// Links on the alert.
    #[serde(default)]
    pub links: Option<Vec<LinkInput>>,
}

/// `payload` of an [`EnqueueBody`].
#[derive(Debug, Deserialize, ToSchema)]
pub struct EnqueuePayload {
    pub summary: Option<String>,
    pub source: Option<String>,
    pub severity: Option<String>,
    pub component: Option<String>,
    pub group: Option<String>,
    pub class: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub custom_details: Option<Value>,
}

/// Events v2's answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EnqueueAnswer {
    /// `success`, `invalid event`, or the failure's code.
    pub status: String,
    /// What happened.
    pub message: String,
    /// The alert's dedup_key (on success).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup_key: Option<String>,
    /// What is wrong (on failure).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// A refused or failed event, in Events v2's shape.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct EventsError {
    status: StatusCode,
    code: String,
    message: String,
    errors: Vec<String>,
    retry_after_secs: Option<u64>,
}

impl EventsError {
    /// Events v2's 400 for an event that breaks a rule.
    fn invalid(errors: Vec<String>) -> Self {
        EventsError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid event".into(),
            message: "Event object is invalid".into(),
            errors,
            retry_after_secs: None,
        }
    }
}

impl From<RequestError> for EventsError {
    fn from(e: RequestError) -> Self {
        match e {
            RequestError::InvalidBody { .. } | RequestError::InvalidParameter { .. } => {
                Self::invalid(vec![e.to_string()])
            }
            other => {
                let status = match &other {
                    RequestError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    RequestError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                    RequestError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
                    RequestError::RouteNotFound { .. } => StatusCode::NOT_FOUND,
                    RequestError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
                    _ => StatusCode::BAD_REQUEST,
                };
                EventsError {
                    status,
                    code: "error".into(),
                    message: other.to_string(),
                    errors: vec![other.to_string()],
                    retry_after_secs: None,
                }
            }
        }
    }
}

impl From<AuthError> for EventsError {
    fn from(e: AuthError) -> Self {
        let status = match e {
            AuthError::Unauthorized => StatusCode::UNAUTHORIZED,
            AuthError::IdentityProviderUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        EventsError {
            status,
            code: "unauthorized".into(),
            message: e.to_string(),
            errors: vec![e.to_string()],
            retry_after_secs: None,
        }
    }
}

impl From<UnknownAccount> for EventsError {
    fn from(e: UnknownAccount) -> Self {
        Self::invalid(vec![e.to_string()])
    }
}

impl From<TriggerError> for EventsError {
    fn from(e: TriggerError) -> Self {
        match &e {
            TriggerError::Invalid { field, message } => {
                Self::invalid(vec![format!("{} {message}", events_field(field))])
            }
            TriggerError::Rejected { errors, .. } => Self::invalid(errors.clone()),
            _ => {
                let message = match &e {
                    TriggerError::Internal(_) => "internal error".to_owned(),
                    other => other.to_string(),
                };
                EventsError {
                    status: crate::http::trigger::status(&e),
                    code: e.code().to_owned(),
                    errors: vec![message.clone()],
                    message,
                    retry_after_secs: e.retry_after_secs(),
                }
            }
        }
    }
}

/// The trigger names `/v1/incidents` fields; an Events v2 sender knows
/// its own.
fn events_field(field: &str) -> String {
    match field {
        "integration_key" => "routing_key".to_owned(),
        "summary" | "source" | "severity" | "component" | "group" | "class" | "custom_details" => {
            format!("payload.{field}")
        }
        other => other.to_owned(),
    }
}

impl ResponseError for EventsError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status).json(EnqueueAnswer {
            status: self.code.clone(),
            message: self.message.clone(),
            dedup_key: None,
            errors: self.errors.clone(),
        });
        if let Some(secs) = self.retry_after_secs
            && let Ok(value) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(RETRY_AFTER, value);
        }
        response
    }
}

/// `POST {prefix}/enqueue`: an Events API v2 event, through dutycard.
///
/// What PagerDuty's Backstage frontend posts to `{pagerDuty.eventsBaseUrl}/enqueue`
/// when `pagerDuty.eventsBaseUrl` is dutycard's prefix: the same machinery as
/// `POST /v1/incidents` (caller auth, known keys, validation,
/// `Idempotency-Key`, limits, attribution, delivery within
/// `trigger.deadline_ms`), answered in Events v2's shapes.
#[utoipa::path(
    tag = "backstage",
    params(
        ("account" = Option<String>, Query, description = "Account id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Client-chosen request id; repeats return the first answer"),
    ),
    request_body = EnqueueBody,
    responses(
        (status = 202, description = "PagerDuty accepted the event", body = EnqueueAnswer),
        (status = 400, description = "The event breaks an Events v2 rule (`errors`)", body = EnqueueAnswer),
        (status = 401, description = "Missing caller token", body = super::error::ErrorsBody),
        (status = 403, description = "The routing key belongs to no known service", body = EnqueueAnswer),
        (status = 415, description = "Body is not JSON", body = EnqueueAnswer),
        (status = 429, description = "Too many events; see Retry-After", body = EnqueueAnswer),
        (status = 502, description = "PagerDuty's answer was unusable; NOT created", body = EnqueueAnswer),
        (status = 503, description = "PagerDuty unavailable; NOT created", body = EnqueueAnswer),
        (status = 504, description = "PagerDuty did not answer in time; NOT confirmed", body = EnqueueAnswer),
    ),
    security(("bearer" = []))
)]
#[post("/enqueue")]
pub async fn enqueue(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Authenticated<EventsError>,
    Json(body, _): Json<EnqueueBody, EventsError>,
) -> Result<HttpResponse, EventsError> {
    accept(req, state, caller, body).await
}

/// `POST {prefix}/v2/enqueue`: the same intake at Events v2's own path.
///
/// For senders configured with PagerDuty's `https://events.pagerduty.com`
/// base URL (which append `/v2/enqueue`) instead of the `/v2` one: the same
/// machinery and answers as `POST {prefix}/enqueue`.
#[utoipa::path(
    tag = "backstage",
    params(
        ("account" = Option<String>, Query, description = "Account id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Client-chosen request id; repeats return the first answer"),
    ),
    request_body = EnqueueBody,
    responses(
        (status = 202, description = "PagerDuty accepted the event", body = EnqueueAnswer),
        (status = 400, description = "The event breaks an Events v2 rule (`errors`)", body = EnqueueAnswer),
        (status = 401, description = "Missing caller token", body = super::error::ErrorsBody),
        (status = 403, description = "The routing key belongs to no known service", body = EnqueueAnswer),
        (status = 503, description = "PagerDuty unavailable; NOT created", body = EnqueueAnswer),
    ),
    security(("bearer" = []))
)]
#[post("/v2/enqueue")]
pub async fn enqueue_v2(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Authenticated<EventsError>,
    Json(body, _): Json<EnqueueBody, EventsError>,
) -> Result<HttpResponse, EventsError> {
    accept(req, state, caller, body).await
}

async fn accept(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Authenticated<EventsError>,
    body: EnqueueBody,
) -> Result<HttpResponse, EventsError> {
    let params = Params::parse(&req).map_err(|e| EventsError::invalid(vec![e.message]))?;
    let account = state.account(params.first("account"))?;
    let key = idempotency_key(&req);
    let caller = caller.into_inner();
    let outcome = match body.event_action.as_deref().unwrap_or("trigger") {
        "trigger" => {
            let request = into_trigger(body)?;
            state
                .trigger
                .trigger(account, &caller, request, key.as_deref())
                .await
        }
        action @ ("acknowledge" | "resolve") => {
            let action = if action == "acknowledge" {
                EventAction::Acknowledge
            } else {
                EventAction::Resolve
            };
            let dedup_key = body.dedup_key.ok_or_else(|| {
                EventsError::invalid(vec![format!(
                    "dedup_key is required to {}",
                    action_name(action)
                )])
            })?;
            let request = FollowUpRequest {
                service_id: None,
                integration_key: body.routing_key,
            };
            state
                .trigger
                .follow_up(account, &caller, action, dedup_key, request, key.as_deref())
                .await
        }
        other => {
            return Err(EventsError::invalid(vec![format!(
                "event_action must be trigger, acknowledge or resolve, got `{other}`"
            )]));
        }
    };
    let replayed = outcome.replayed;
    let accepted = outcome.result?;
    let mut response = HttpResponse::Accepted().json(EnqueueAnswer {
        status: accepted.status,
        message: accepted.message,
        dedup_key: Some(accepted.dedup_key),
        errors: Vec::new(),
    });
    if replayed {
        response
            .headers_mut()
            .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(response)
}

fn action_name(action: EventAction) -> &'static str {
    match action {
        EventAction::Trigger => "trigger",
        EventAction::Acknowledge => "acknowledge",
        EventAction::Resolve => "resolve",
    }
}

/// An Events v2 trigger as a `/v1/incidents` request (the sender's
/// `client` is replaced by ours, as for every event dutycard sends).
fn into_trigger(body: EnqueueBody) -> Result<TriggerRequest, EventsError> {
    let payload = body
        .payload
        .ok_or_else(|| EventsError::invalid(vec!["payload is required to trigger".into()]))?;
    Ok(TriggerRequest {
        service_id: None,
        integration_key: body.routing_key,
        summary: payload.summary.unwrap_or_default(),
        severity: payload.severity,
        source: payload.source,
        dedup_key: body.dedup_key,
        component: payload.component,
        group: payload.group,
        class: payload.class,
        custom_details: payload.custom_details,
        links: body.links,
        client_url: body.client_url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frontends_body_maps_to_a_trigger_request() {
        let body: EnqueueBody = serde_json::from_value(serde_json::json!({
            "event_action": "trigger", "routing_key": "dcak_0123456789abcdef0123456789abcdef",
            "client": "Backstage", "client_url": "https://portal.example/c",
            "payload": {"summary": "down", "source": "https://portal.example/c",
                        "severity": "error", "class": "manual trigger",
                        "custom_details": {"user": "guest"}}
        }))
        .unwrap();
        let request = into_trigger(body).unwrap();
        assert_eq!(request.summary, "down");
        assert_eq!(request.severity.as_deref(), Some("error"));
        assert_eq!(
            request.client_url.as_deref(),
            Some("https://portal.example/c")
        );
        assert_eq!(
            request.custom_details,
            Some(serde_json::json!({"user": "guest"}))
        );
    }

    #[test]
    fn errors_name_the_events_fields() {
        let e = EventsError::from(TriggerError::Invalid {
            field: "summary".into(),
            message: "must not be empty".into(),
        });
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.code, "invalid event");
        assert_eq!(e.errors, ["payload.summary must not be empty"]);
    }
}
