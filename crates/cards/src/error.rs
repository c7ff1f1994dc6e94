//! Errors: per section ([`SectionError`]) and for a whole card ([`CardError`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What kind of failure a section met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SectionErrorKind {
    /// PagerDuty has no such object (404), or an id list answered nothing for it.
    NotFound,
    /// The credentials may not read this (403); see `missing_scopes`.
    Forbidden,
    /// PagerDuty's rate limit (429) persisted through the client's retries.
    RateLimited,
    /// PagerDuty failed (5xx, transport error, bad body) or our request was refused.
    Unavailable,
    /// The call did not finish in time.
    Timeout,
    /// PagerDuty refused our credentials (401) or the OAuth token could not be obtained.
    Unauthorized,
}

/// Why a section has no fresh data. Carries no secret (PagerDuty's messages only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct SectionError {
    /// The kind of failure.
    pub kind: SectionErrorKind,
    /// A human-readable explanation.
    pub message: String,
    /// True when a 403 said the token lacks required scopes (Scoped OAuth).
    #[serde(default)]
    pub missing_scopes: bool,
    /// For `forbidden`: the scopes PagerDuty said the token needs (its
    /// `error.required_scopes`), e.g. `["incidents.read"]`; omitted when
    /// PagerDuty named none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_scopes: Vec<String>,
    /// For `rate_limited`: seconds until PagerDuty's window resets, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
}

impl SectionError {
    /// A `not_found` error with the given message.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(SectionErrorKind::NotFound, message)
    }

    /// A `timeout` error with the given message.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(SectionErrorKind::Timeout, message)
    }

    /// An `unavailable` error with the given message.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(SectionErrorKind::Unavailable, message)
    }

    fn new(kind: SectionErrorKind, message: impl Into<String>) -> Self {
        SectionError {
            kind,
            message: message.into(),
            missing_scopes: false,
            required_scopes: Vec::new(),
            retry_after_secs: None,
        }
    }
}

impl From<&pagerduty::Error> for SectionError {
    fn from(error: &pagerduty::Error) -> Self {
        use pagerduty::Error as E;
        // The client's messages never contain secrets (it strips URLs), so they
        // can be shown to the portal user as they are.
        let message = error.to_string();
        match error {
            E::NotFound { .. } => SectionError::new(SectionErrorKind::NotFound, message),
            E::Forbidden {
                missing_scopes,
                body,
            } => SectionError {
                missing_scopes: *missing_scopes,
                required_scopes: scope_list(body.required_scopes()),
                ..SectionError::new(SectionErrorKind::Forbidden, message)
            },
            E::RateLimited { retry_after, .. } => SectionError {
                retry_after_secs: retry_after.map(|d| d.as_secs().max(1)),
                ..SectionError::new(SectionErrorKind::RateLimited, message)
            },
            E::Timeout => SectionError::new(SectionErrorKind::Timeout, message),
            E::Unauthorized { .. } | E::OAuth(_) => {
                SectionError::new(SectionErrorKind::Unauthorized, message)
            }
            _ => SectionError::new(SectionErrorKind::Unavailable, message),
        }
    }
}

/// Splits PagerDuty's required scopes (`"a.read b.write"` or `"a.read, b.write"`).
fn scope_list(scopes: Option<&str>) -> Vec<String> {
    scopes
        .unwrap_or_default()
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl From<pagerduty::Error> for SectionError {
    fn from(error: pagerduty::Error) -> Self {
        SectionError::from(&error)
    }
}

/// Why no card (or raw object) could be produced at all.
///
/// Only the `service` section decides this: any other section's failure is
/// reported inside the card.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardError {
    /// The service (or integration key) does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for, e.g. `service PABC123` or `integration key`.
        what: String,
    },
    /// PagerDuty rejected our credentials.
    #[error("PagerDuty rejected the credentials: {0}")]
    Unauthorized(String),
    /// The credentials may not read the service.
    #[error("PagerDuty denied access: {message}")]
    Forbidden {
        /// PagerDuty's explanation.
        message: String,
        /// True when the token lacks required scopes.
        missing_scopes: bool,
        /// The scopes PagerDuty said the token needs (empty when it named none).
        required_scopes: Vec<String>,
    },
    /// Rate limited and no stale data to serve.
    #[error("PagerDuty rate limit exceeded")]
    RateLimited {
        /// When to retry, if PagerDuty said.
        retry_after: Option<Duration>,
    },
    /// The upstream call timed out and no stale data was available.
    #[error("PagerDuty did not answer in time")]
    Timeout,
    /// Any other upstream failure, with no stale data to serve.
    #[error("PagerDuty unavailable: {0}")]
    Unavailable(String),
    /// The service has no Events API v2 integration (no routing key to trigger with).
    #[error("service {service_id} has no Events API v2 integration")]
    NoEventsIntegration {
        /// The service looked at.
        service_id: String,
    },
}

impl CardError {
    /// Maps a section failure to a card failure; `what` names the missing object.
    pub(crate) fn from_section(error: &SectionError, what: impl Into<String>) -> Self {
        match error.kind {
            SectionErrorKind::NotFound => CardError::NotFound { what: what.into() },
            SectionErrorKind::Forbidden => CardError::Forbidden {
                message: error.message.clone(),
                missing_scopes: error.missing_scopes,
                required_scopes: error.required_scopes.clone(),
            },
            SectionErrorKind::RateLimited => CardError::RateLimited {
                retry_after: error.retry_after_secs.map(Duration::from_secs),
            },
            SectionErrorKind::Timeout => CardError::Timeout,
            SectionErrorKind::Unauthorized => CardError::Unauthorized(error.message.clone()),
            SectionErrorKind::Unavailable => CardError::Unavailable(error.message.clone()),
        }
    }
}
