//! The Backstage surface's one error type: the envelope `{"errors":["…"]}`
//! and the Node backend's message texts, one prefix per PagerDuty call
//! ("Failed to get service.") and one sentence per status ("The requested
//! resource was not found."). Every failure under the prefix is built here
//! directly in this shape: request errors, caller auth, cards, the trigger.

use std::time::Duration;

use actix_web::body::BoxBody;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::accounts::UnknownAccount;
use crate::auth::AuthError;
use crate::http::RequestError;
use crate::trigger::TriggerError;

/// The body of every Backstage error answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"errors": ["Failed to get service. The requested resource was not found."]}))]
pub struct ErrorsBody {
    /// One message (the frontend shows `errors[0]`).
    pub errors: Vec<String>,
}

/// The errors every Backstage route that reads PagerDuty data may answer
/// (for OpenAPI; each route adds its own 400 and 404).
#[derive(utoipa::IntoResponses)]
pub enum ReadErrors {
    /// Missing caller token, or PagerDuty refused dutycard's credentials
    #[response(status = 401)]
    Unauthorized(ErrorsBody),
    /// PagerDuty denied access (e.g. the token lacks a scope)
    #[response(status = 403)]
    Forbidden(ErrorsBody),
    /// PagerDuty rate limit and no cached copy; see Retry-After
    #[response(status = 429)]
    RateLimited(ErrorsBody),
    /// PagerDuty failed
    #[response(status = 502)]
    Upstream(ErrorsBody),
    /// PagerDuty or the request deadline timed out
    #[response(status = 504)]
    Timeout(ErrorsBody),
}

/// Which PagerDuty read failed: the first sentence of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    GetService,
    GetServices,
    Incidents,
    ChangeEvents,
    Standards,
    Metrics,
    Oncalls,
    EscalationPolicies,
    Teams,
    Trigger,
    Dependencies,
    ChangeDependencies,
    CreateIntegration,
}

impl Op {
    fn prefix(self) -> &'static str {
        match self {
            Op::GetService => "Failed to get service.",
            Op::GetServices => "Failed to get services.",
            Op::Incidents => "Failed to get incidents for service.",
            Op::ChangeEvents => "Failed to get change events for service.",
            Op::Standards => "Failed to get service standards for service.",
            Op::Metrics => "Failed to get service metrics for service.",
            Op::Oncalls => "Failed to list oncalls.",
            Op::EscalationPolicies => "Failed to list escalation policies.",
            Op::Teams => "Failed to list teams.",
            Op::Trigger => "Failed to trigger the incident.",
            Op::Dependencies => "Failed to get service dependencies.",
            Op::ChangeDependencies => "Failed to update service dependencies.",
            Op::CreateIntegration => "Failed to create the service integration.",
        }
    }
}

const INVALID: &str = "Caller provided invalid arguments.";
const UNAUTHORIZED: &str =
    "Caller did not supply credentials or did not provide the correct credentials.";
const PAYMENT: &str = "Account does not have the abilities to perform the action. Please review the response for the required abilities.";
const FORBIDDEN: &str = "Caller is not authorized to view the requested resource.";
const NOT_FOUND: &str = "The requested resource was not found.";
const RATE_LIMITED: &str = "Too many requests have been made, the rate limit has been reached.";

/// An error answer in Backstage's shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct BackstageError {
    pub status: StatusCode,
    pub message: String,
    /// `Retry-After` seconds (429 and 503).
    pub retry_after_secs: Option<u64>,
    /// Other headers the answer needs (`Allow` on a 405, `WWW-Authenticate`
    /// on a 401).
    pub headers: Vec<(header::HeaderName, String)>,
}

impl BackstageError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after_secs: None,
            headers: Vec::new(),
        }
    }

    fn with_header(mut self, name: header::HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// 400 with the anchor's `Bad Request: …` wording.
    pub fn bad_request(message: impl AsRef<str>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            format!("Bad Request: {}", message.as_ref()),
        )
    }

    /// 404 for `op`.
    pub fn not_found(op: Op) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            format!("{} {NOT_FOUND}", op.prefix()),
        )
    }

    /// 500 (a bug or an unreadable answer; details are logged, not shown).
    pub fn internal(what: &str) -> Self {
        tracing::error!(what, "backstage route failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal error")
    }

    /// 504: the request deadline passed.
    pub fn deadline(op: Op, deadline: Duration) -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "{} The request did not complete within {} ms.",
                op.prefix(),
                deadline.as_millis()
            ),
        )
    }

    /// Any other status with a message of ours.
    pub fn with_status(status: StatusCode, message: impl Into<String>) -> Self {
        Self::new(status, message)
    }

    /// A failed cached read.
    pub fn from_card(op: Op, error: &cards::CardError) -> Self {
        use cards::CardError as E;
        let p = op.prefix();
        match error {
            E::NotFound { .. } => Self::not_found(op),
            E::Unauthorized { .. } => {
                Self::new(StatusCode::UNAUTHORIZED, format!("{p} {UNAUTHORIZED}"))
            }
            E::Forbidden { missing_scopes, .. } => Self::forbidden(op, *missing_scopes),
            E::RateLimited { retry_after, .. } => Self::rate_limited(op, *retry_after),
            E::Timeout { .. } => Self::new(
                StatusCode::GATEWAY_TIMEOUT,
                format!("{p} PagerDuty did not answer in time."),
            ),
            E::Unavailable { message, .. } => Self::new(
                StatusCode::BAD_GATEWAY,
                format!("{p} PagerDuty API returned an error: {message}"),
            ),
            E::NoEventsIntegration { service_id } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{p} Service {service_id} has no Events API v2 integration."),
            ),
        }
    }

    /// A failed direct PagerDuty call (the lists).
    pub fn from_pagerduty(op: Op, error: &pagerduty::Error) -> Self {
        use pagerduty::Error as E;
        let p = op.prefix();
        match error {
            E::Unauthorized { .. } | E::OAuth(_) => {
                Self::new(StatusCode::UNAUTHORIZED, format!("{p} {UNAUTHORIZED}"))
            }
            E::Forbidden { missing_scopes, .. } => Self::forbidden(op, *missing_scopes),
            E::NotFound { .. } => Self::not_found(op),
            E::RateLimited { retry_after, .. } => Self::rate_limited(op, *retry_after),
            E::InvalidRequest { body } => match body.status {
                Some(402) => Self::new(StatusCode::PAYMENT_REQUIRED, format!("{p} {PAYMENT}")),
                _ => Self::new(StatusCode::BAD_REQUEST, format!("{p} {INVALID}")),
            },
            E::Timeout => Self::new(
                StatusCode::GATEWAY_TIMEOUT,
                format!("{p} PagerDuty did not answer in time."),
            ),
            other => Self::new(
                StatusCode::BAD_GATEWAY,
                format!("{p} PagerDuty API returned an error: {other}"),
            ),
        }
    }

    fn forbidden(op: Op, missing_scopes: bool) -> Self {
        let mut message = format!("{} {FORBIDDEN}", op.prefix());
        if missing_scopes {
            message.push_str(" The PagerDuty token is missing required scopes.");
        }
        Self::new(StatusCode::FORBIDDEN, message)
    }

    fn rate_limited(op: Op, retry_after: Option<Duration>) -> Self {
        Self {
            retry_after_secs: Some(
                retry_after
                    .map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
                    .unwrap_or(30)
                    .max(1),
            ),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("{} {RATE_LIMITED}", op.prefix()),
            )
        }
    }

    /// The answer.
    pub fn to_response(&self) -> HttpResponse<BoxBody> {
        let mut builder = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after_secs {
            builder.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        for (name, value) in &self.headers {
            builder.insert_header((name.clone(), value.as_str()));
        }
        builder.json(ErrorsBody {
            errors: vec![self.message.clone()],
        })
    }
}

impl From<UnknownAccount> for BackstageError {
    fn from(e: UnknownAccount) -> Self {
        Self::bad_request(e.to_string())
    }
}

impl From<RequestError> for BackstageError {
    fn from(e: RequestError) -> Self {
        let status = match &e {
            RequestError::InvalidBody { .. } | RequestError::InvalidParameter { .. } => {
                StatusCode::BAD_REQUEST
            }
            RequestError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            RequestError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            RequestError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            RequestError::RouteNotFound { .. } => StatusCode::NOT_FOUND,
            RequestError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
        };
        // The field named in the text too: `{"errors":[…]}` has no details.
        let text = match &e {
            RequestError::InvalidBody {
                field: Some(field),
                message,
            } => format!("invalid request body: `{field}`: {message}"),
            _ => e.to_string(),
        };
        let error = Self::new(status, text);
        match e {
            RequestError::MethodNotAllowed { allow, .. } => error.with_header(header::ALLOW, allow),
            _ => error,
        }
    }
}

impl From<AuthError> for BackstageError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthorized => Self::new(StatusCode::UNAUTHORIZED, e.to_string())
                .with_header(header::WWW_AUTHENTICATE, "Bearer realm=\"dutycard\""),
            AuthError::IdentityProviderUnavailable(_) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            }
        }
    }
}

/// The trigger's statuses are the same on both surfaces
/// ([`crate::http::trigger::status`]); the message is the trigger's own.
impl From<TriggerError> for BackstageError {
    fn from(e: TriggerError) -> Self {
        if let TriggerError::Internal(why) = &e {
            tracing::error!(error = %why, "trigger failed");
            return Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal error");
        }
        Self {
            retry_after_secs: e.retry_after_secs(),
            ..Self::new(crate::http::trigger::status(&e), e.to_string())
        }
    }
}

impl ResponseError for BackstageError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        self.to_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_the_node_backend() {
        let e = BackstageError::from_card(
            Op::GetService,
            &cards::CardError::Unauthorized {
                message: "x".into(),
                cause: None,
            },
        );
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            e.message,
            "Failed to get service. Caller did not supply credentials or did not provide the correct credentials."
        );
        let e = BackstageError::not_found(Op::ChangeEvents);
        assert_eq!(
            e.message,
            "Failed to get change events for service. The requested resource was not found."
        );
        let e = BackstageError::from_card(
            Op::Incidents,
            &cards::CardError::RateLimited {
                retry_after: Some(Duration::from_millis(1500)),
                cause: None,
            },
        );
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(e.retry_after_secs, Some(2));
    }
}
