//! The passthrough's error: PagerDuty's own shape,
//! `{"error":{"message","code","errors"}}`, with PagerDuty's codes, so the
//! legacy frontend (which was written against PagerDuty) reads it as it
//! would read PagerDuty's.

use std::time::Duration;

use actix_web::body::BoxBody;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::accounts::UnknownAccount;
use crate::auth::AuthError;
use crate::http::RequestError;
use crate::http::deadline::DeadlineExceeded;

/// An error answer in PagerDuty's REST shape.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status}: {message}")]
pub struct RestError {
    status: StatusCode,
    /// PagerDuty's `error.message` for the code ("Not Found").
    message: &'static str,
    /// PagerDuty's `error.code` (2001 invalid input, 2006 authentication
    /// failed, 2010 access denied, 2020 rate limit, 2100 not found).
    code: u32,
    /// `error.errors`: what exactly was wrong.
    errors: Vec<String>,
    headers: Vec<(header::HeaderName, String)>,
}

impl RestError {
    fn new(
        status: StatusCode,
        code: u32,
        message: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        RestError {
            status,
            message,
            code,
            errors: vec![detail.into()],
            headers: Vec::new(),
        }
    }

    /// 400 `Invalid Input Provided` naming the parameter and the problem.
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            2001,
            "Invalid Input Provided",
            detail,
        )
    }

    /// 404 `Not Found` (PagerDuty's answer to an unknown path too).
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, 2100, "Not Found", detail)
    }

    /// 500: a bug (details logged, not shown).
    pub fn internal(what: &str) -> Self {
        tracing::error!(what, "legacy passthrough route failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            2000,
            "Internal Error",
            "internal error",
        )
    }

    fn retry_after(mut self, after: Option<Duration>) -> Self {
        if let Some(after) = after {
            self.headers
                .push((header::RETRY_AFTER, after.as_secs().max(1).to_string()));
        }
        self
    }

    /// A failed cached read.
    pub fn from_card(error: &cards::CardError) -> Self {
        use cards::CardError as E;
        let detail = error.to_string();
        match error {
            E::NotFound { .. } => Self::not_found(detail),
            E::Unauthorized { .. } => Self::new(
                StatusCode::UNAUTHORIZED,
                2006,
                "Authentication failed",
                detail,
            ),
            E::Forbidden { .. } => Self::new(StatusCode::FORBIDDEN, 2010, "Access Denied", detail),
            E::RateLimited { retry_after, .. } => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                2020,
                "Rate Limit Exceeded",
                detail,
            )
            .retry_after(*retry_after),
            E::Timeout { .. } => Self::new(
                StatusCode::GATEWAY_TIMEOUT,
                2000,
                "PagerDuty did not answer in time",
                detail,
            ),
            E::Unavailable { .. } | E::NoEventsIntegration { .. } => Self::new(
                StatusCode::BAD_GATEWAY,
                2000,
                "PagerDuty unavailable",
                detail,
            ),
        }
    }
}

impl From<DeadlineExceeded> for RestError {
    fn from(e: DeadlineExceeded) -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            2000,
            "Request Timeout",
            e.to_string(),
        )
    }
}

impl From<UnknownAccount> for RestError {
    fn from(e: UnknownAccount) -> Self {
        Self::invalid(e.to_string())
    }
}

/// Every request error is a 400 or a 404 here: the passthrough is
/// read-only, and any other method or path is PagerDuty's "Not Found".
impl From<RequestError> for RestError {
    fn from(e: RequestError) -> Self {
        match e {
            RequestError::RouteNotFound { .. } | RequestError::MethodNotAllowed { .. } => {
                Self::not_found(format!(
                    "{e}: this read-only passthrough serves only the GETs of the legacy Backstage plugin"
                ))
            }
            _ => Self::invalid(e.to_string()),
        }
    }
}

impl From<AuthError> for RestError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthorized => {
                let mut error = Self::new(
                    StatusCode::UNAUTHORIZED,
                    2006,
                    "Authentication failed",
                    e.to_string(),
                );
                error.headers.push((
                    header::WWW_AUTHENTICATE,
                    "Bearer realm=\"dutycard\"".to_owned(),
                ));
                error
            }
            AuthError::IdentityProviderUnavailable(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                2000,
                "Service Unavailable",
                e.to_string(),
            ),
        }
    }
}

impl ResponseError for RestError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        let mut answer = HttpResponse::build(self.status);
        for (name, value) in &self.headers {
            answer.insert_header((name.clone(), value.as_str()));
        }
        answer.json(json!({"error": {
            "message": self.message,
            "code": self.code,
            "errors": self.errors,
        }}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shape_and_codes_are_pagerdutys() {
        let answer = RestError::not_found("no such route").error_response();
        assert_eq!(answer.status(), 404);
        let error = RestError::from(RequestError::MethodNotAllowed {
            method: "POST".into(),
            path: "/pagerduty-rest/services".into(),
            allow: "GET".into(),
        });
        assert_eq!((error.status.as_u16(), error.code), (404, 2100));
        let limited = RestError::from_card(&cards::CardError::RateLimited {
            retry_after: Some(Duration::from_millis(2500)),
            cause: None,
        });
        assert_eq!((limited.status.as_u16(), limited.code), (429, 2020));
        assert_eq!(limited.headers[0].1, "2");
        let auth = RestError::from(AuthError::Unauthorized);
        assert_eq!((auth.status.as_u16(), auth.code), (401, 2006));
    }
}
