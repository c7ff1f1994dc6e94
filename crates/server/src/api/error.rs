//! The `/v1` surface's one error type, and the one place that turns it into
//! a status code and a `{"error":{"code","message","details"}}` body. Every
//! failure of the layers below converts into it (`From`): request errors,
//! authentication, the deadline, cards and the trigger.

use std::time::Duration;

use actix_web::body::BoxBody;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::accounts::UnknownAccount;
use crate::auth::AuthError;
use crate::http::RequestError;
use crate::http::deadline::DeadlineExceeded;
use crate::keys::AliasError;
use crate::trigger::TriggerError;

/// Every error the API answers with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A request body that is not the JSON we expect.
    #[error("invalid request body: {message}")]
    InvalidBody {
        /// Path of the offending field (`service_ids[3]`), when known.
        field: Option<String>,
        message: String,
    },
    /// A bad query-string or path parameter.
    #[error("invalid parameter `{parameter}`: {message}")]
    InvalidParameter { parameter: String, message: String },
    #[error("request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// The body did not arrive within the request deadline.
    #[error("the request body did not arrive within {timeout_ms} ms")]
    BodyTimeout { timeout_ms: u64 },
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// The PagerDuty service (or integration key) does not exist.
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("no route for {method} {path}")]
    RouteNotFound { method: String, path: String },
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed {
        method: String,
        path: String,
        /// The methods the path has (the `Allow` header).
        allow: String,
    },
    /// PagerDuty rejected *our* credentials. This is our misconfiguration,
    /// not the caller's, so it is a 502 and never a pass-through 401.
    #[error("PagerDuty rejected dutycard's credentials: {0}")]
    UpstreamUnauthorized(String),
    /// PagerDuty refused access (e.g. the OAuth token lacks a scope).
    #[error(
        "PagerDuty refused access: {message}{}",
        scopes_suffix(required_scopes)
    )]
    UpstreamForbidden {
        message: String,
        missing_scopes: bool,
        /// The scopes PagerDuty said the token needs (empty when it named none).
        required_scopes: Vec<String>,
    },
    /// PagerDuty is rate limiting us and there is no stale copy to serve.
    #[error("PagerDuty is rate limiting dutycard; retry later")]
    UpstreamRateLimited { retry_after: Option<Duration> },
    #[error("PagerDuty did not answer in time")]
    UpstreamTimeout,
    #[error("PagerDuty request failed: {0}")]
    UpstreamUnavailable(String),
    /// Our own request deadline (`server.request_deadline_ms`) passed.
    #[error("the request did not complete within {deadline_ms} ms")]
    DeadlineExceeded { deadline_ms: u64 },
    /// The service has no Events API v2 integration to trigger through.
    #[error("service {service_id} has no Events API v2 integration")]
    NoEventsIntegration { service_id: String },
    /// `server.auth.mode = "jwt"`: the identity provider's signing keys
    /// (JWKS) could not be fetched in time, so no token can be checked.
    #[error("cannot verify the token: the identity provider is unavailable ({0})")]
    IdentityProviderUnavailable(String),
    /// The CORS layer refused a request (a preflight from an origin not in
    /// `server.cors_allowed_origins`, or asking for a method or header we do
    /// not allow). An origin is not a secret, so it is named.
    #[error("CORS request rejected{}: {reason}", origin.as_deref().map(|o| format!(" for origin {o}")).unwrap_or_default())]
    CorsRejected {
        origin: Option<String>,
        reason: String,
    },
    /// A webhook not signed by one of the account's secrets (nothing was done).
    #[error("{0}")]
    InvalidSignature(String),
    /// A limit on concurrent work was reached (streams, the webhook
    /// queue): 503 with `Retry-After`.
    #[error("{message}")]
    Overloaded {
        code: &'static str,
        message: String,
        retry_after_secs: u64,
    },
    /// A bug on our side: the log shows the reason, the caller only
    /// "internal error".
    #[error("internal error: {0}")]
    Internal(String),
    /// The store (entity mappings) is down or slow; retry later.
    #[error("the store is unavailable: {0}; retry later")]
    StoreUnavailable(String),
    /// A trigger (or acknowledge/resolve) failed; statuses and details in
    /// [`crate::http::trigger`].
    #[error(transparent)]
    Trigger(TriggerError),
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        match e {
            RequestError::InvalidBody { field, message } => {
                ApiError::InvalidBody { field, message }
            }
            RequestError::InvalidParameter { parameter, message } => {
                ApiError::InvalidParameter { parameter, message }
            }
            RequestError::UnsupportedMediaType => ApiError::UnsupportedMediaType,
            RequestError::PayloadTooLarge { limit } => ApiError::PayloadTooLarge { limit },
            RequestError::BodyTimeout { timeout_ms } => ApiError::BodyTimeout { timeout_ms },
            RequestError::RouteNotFound { method, path } => {
                ApiError::RouteNotFound { method, path }
            }
            RequestError::MethodNotAllowed {
                method,
                path,
                allow,
            } => ApiError::MethodNotAllowed {
                method,
                path,
                allow,
            },
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthorized => ApiError::Unauthorized,
            AuthError::IdentityProviderUnavailable(why) => {
                ApiError::IdentityProviderUnavailable(why)
            }
        }
    }
}

impl From<DeadlineExceeded> for ApiError {
    fn from(e: DeadlineExceeded) -> Self {
        ApiError::DeadlineExceeded {
            deadline_ms: e.deadline_ms(),
        }
    }
}

impl From<UnknownAccount> for ApiError {
    fn from(e: UnknownAccount) -> Self {
        ApiError::InvalidParameter {
            parameter: "account".into(),
            message: e.to_string(),
        }
    }
}

impl From<AliasError> for ApiError {
    fn from(e: AliasError) -> Self {
        match e {
            AliasError::Unknown => ApiError::NotFound {
                what: "integration key".into(),
            },
            AliasError::Unavailable(why) => ApiError::UpstreamUnavailable(why),
        }
    }
}

impl From<TriggerError> for ApiError {
    fn from(e: TriggerError) -> Self {
        match e {
            // The same answers as a card read that hits them.
            TriggerError::Lookup(card) => card.into(),
            TriggerError::Internal(why) => ApiError::Internal(why),
            other => ApiError::Trigger(other),
        }
    }
}

impl From<cards::CardError> for ApiError {
    fn from(e: cards::CardError) -> Self {
        use cards::CardError as E;
        match e {
            E::NotFound { what, .. } => ApiError::NotFound { what },
            E::Unauthorized { message, .. } => ApiError::UpstreamUnauthorized(message),
            E::Forbidden {
                message,
                missing_scopes,
                required_scopes,
                ..
            } => ApiError::UpstreamForbidden {
                message,
                missing_scopes,
                required_scopes,
            },
            E::RateLimited { retry_after, .. } => ApiError::UpstreamRateLimited { retry_after },
            E::Timeout { .. } => ApiError::UpstreamTimeout,
            E::Unavailable { message, .. } => ApiError::UpstreamUnavailable(message),
            E::NoEventsIntegration { service_id } => ApiError::NoEventsIntegration { service_id },
        }
    }
}

/// The body of every error answer.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
#[schema(example = json!({"error": {"code": "not_found", "message": "service PXXXXXX not found", "details": {}}}))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid_parameter`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// Extra facts, e.g. `{"parameter": "incidents"}`; `{}` when none.
    #[schema(value_type = Object)]
    pub details: Map<String, Value>,
}

impl ApiError {
    /// The stable `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Trigger(e) => e.code(),
            ApiError::InvalidBody { .. } => "invalid_body",
            ApiError::InvalidParameter { .. } => "invalid_parameter",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::BodyTimeout { .. } => "request_timeout",
            ApiError::Unauthorized => "unauthorized",
            ApiError::NotFound { .. } => "not_found",
            ApiError::RouteNotFound { .. } => "route_not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::UpstreamUnauthorized(_) => "upstream_unauthorized",
            ApiError::UpstreamForbidden { .. } => "upstream_forbidden",
            ApiError::UpstreamRateLimited { .. } => "upstream_rate_limited",
            ApiError::UpstreamTimeout => "upstream_timeout",
            ApiError::UpstreamUnavailable(_) => "upstream_unavailable",
            ApiError::DeadlineExceeded { .. } => "deadline_exceeded",
            ApiError::NoEventsIntegration { .. } => "no_events_integration",
            ApiError::IdentityProviderUnavailable(_) => "identity_provider_unavailable",
            ApiError::CorsRejected { .. } => "cors_rejected",
            ApiError::InvalidSignature(_) => "invalid_signature",
            ApiError::Overloaded { code, .. } => code,
            ApiError::Internal(_) => "internal",
            ApiError::StoreUnavailable(_) => "store_unavailable",
        }
    }

    fn details(&self) -> Map<String, Value> {
        let value = match self {
            ApiError::InvalidBody {
                field: Some(field), ..
            } => json!({ "field": field }),
            ApiError::InvalidParameter { parameter, .. } => json!({ "parameter": parameter }),
            ApiError::PayloadTooLarge { limit } => json!({ "limit_bytes": limit }),
            ApiError::BodyTimeout { timeout_ms } => json!({ "timeout_ms": timeout_ms }),
            ApiError::NotFound { what } => json!({ "resource": what }),
            ApiError::UpstreamForbidden {
                missing_scopes,
                required_scopes,
                ..
            } => {
                json!({ "missing_scopes": missing_scopes, "required_scopes": required_scopes })
            }
            ApiError::UpstreamRateLimited {
                retry_after: Some(d),
            } => json!({ "retry_after_secs": retry_after_secs(*d) }),
            ApiError::DeadlineExceeded { deadline_ms } => json!({ "deadline_ms": deadline_ms }),
            ApiError::NoEventsIntegration { service_id } => json!({ "service_id": service_id }),
            ApiError::CorsRejected {
                origin: Some(origin),
                ..
            } => json!({ "origin": origin }),
            ApiError::Trigger(e) => return crate::http::trigger::details(e),
            ApiError::Overloaded {
                retry_after_secs, ..
            } => json!({ "retry_after_secs": retry_after_secs }),
            _ => json!({}),
        };
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    /// The JSON body for this error.
    pub fn body(&self) -> ErrorBody {
        let message = match self {
            // Never echo internal details to the caller; they are logged.
            ApiError::Internal(_) => "internal error".to_owned(),
            other => other.to_string(),
        };
        ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message,
                details: self.details(),
            },
        }
    }
}

/// `" (the token needs the scopes: a.read, b.read)"`, or nothing when none are named.
fn scopes_suffix(scopes: &[String]) -> String {
    if scopes.is_empty() {
        String::new()
    } else {
        format!(" (the token needs the scopes: {})", scopes.join(", "))
    }
}

fn retry_after_secs(d: Duration) -> u64 {
    // Round up: retrying a little late is fine, early earns another 429.
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::InvalidBody { .. }
            | ApiError::InvalidParameter { .. }
            | ApiError::CorsRejected { .. } => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unauthorized | ApiError::InvalidSignature(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound { .. } | ApiError::RouteNotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::UpstreamUnauthorized(_)
            | ApiError::UpstreamForbidden { .. }
            | ApiError::UpstreamUnavailable(_) => StatusCode::BAD_GATEWAY,
            ApiError::UpstreamRateLimited { .. }
            | ApiError::IdentityProviderUnavailable(_)
            | ApiError::Overloaded { .. }
            | ApiError::StoreUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::UpstreamTimeout | ApiError::DeadlineExceeded { .. } => {
                StatusCode::GATEWAY_TIMEOUT
            }
            ApiError::NoEventsIntegration { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Trigger(e) => crate::http::trigger::status(e),
        }
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        let mut builder = HttpResponse::build(self.status_code());
        match self {
            ApiError::UpstreamRateLimited { retry_after } => {
                // PagerDuty's limits reset each minute; without a hint, a
                // conservative default keeps clients from hammering us.
                let secs = retry_after.map(retry_after_secs).unwrap_or(30).max(1);
                builder.insert_header((header::RETRY_AFTER, secs.to_string()));
            }
            ApiError::Unauthorized => {
                builder.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"dutycard\""));
            }
            ApiError::MethodNotAllowed { allow, .. } => {
                builder.insert_header((header::ALLOW, allow.as_str()));
            }
            ApiError::Overloaded {
                retry_after_secs, ..
            } => {
                builder.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            _ => {}
        }
        // 5xx answers are logged once, with their causes, by the access log
        // (middleware::metrics); trigger outcomes by the trigger service.
        let mut response = builder.json(self.body());
        if let ApiError::Trigger(e) = self {
            crate::http::trigger::retry_after(e, &mut response);
        }
        response
    }
}

/// `web::JsonConfig` error handler: bad JSON bodies in our error shape.
pub fn json_error_handler(
    err: actix_web::error::JsonPayloadError,
    _req: &HttpRequest,
) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as E;
    match err {
        E::OverflowKnownLength { limit, .. } | E::Overflow { limit } => {
            ApiError::PayloadTooLarge { limit }.into()
        }
        E::ContentType => ApiError::UnsupportedMediaType.into(),
        E::Deserialize(e) => ApiError::InvalidBody {
            field: None,
            message: e.to_string(),
        }
        .into(),
        other => ApiError::InvalidBody {
            field: None,
            message: other.to_string(),
        }
        .into(),
    }
}

/// `web::QueryConfig` error handler.
pub fn query_error_handler(
    err: actix_web::error::QueryPayloadError,
    _req: &HttpRequest,
) -> actix_web::Error {
    ApiError::InvalidParameter {
        parameter: "query".into(),
        message: err.to_string(),
    }
    .into()
}

/// `web::PathConfig` error handler.
pub fn path_error_handler(
    err: actix_web::error::PathError,
    _req: &HttpRequest,
) -> actix_web::Error {
    ApiError::InvalidParameter {
        parameter: "path".into(),
        message: err.to_string(),
    }
    .into()
}

/// The extractor configs every app installs.
pub fn extractor_configs(
    body_limit: usize,
) -> (
    web::JsonConfig,
    web::QueryConfig,
    web::PathConfig,
    web::PayloadConfig,
) {
    (
        web::JsonConfig::default()
            .limit(body_limit)
            .error_handler(json_error_handler),
        web::QueryConfig::default().error_handler(query_error_handler),
        web::PathConfig::default().error_handler(path_error_handler),
        web::PayloadConfig::new(body_limit),
    )
}
