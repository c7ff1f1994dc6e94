//! Errors: per section ([`SectionError`]) and for a whole card ([`CardError`]).

use std::fmt;
use std::sync::Arc;
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

/// The PagerDuty error behind a [`SectionError`] or [`CardError`], kept
/// typed so that logs can print the whole chain
/// ([`std::error::Error::source`]).
///
/// Cheap to clone (an `Arc`): one failed batch call is the cause of every
/// section it failed. Errors that hold one compare without it: an error is
/// identified by what it says (its kind, message and fields), the cause is
/// a diagnostic. It carries no secret (the client strips URLs and never
/// prints credentials).
#[derive(Clone)]
pub struct Cause(Arc<pagerduty::Error>);

impl Cause {
    /// The PagerDuty error.
    pub fn pagerduty(&self) -> &pagerduty::Error {
        &self.0
    }

    /// The shared PagerDuty error.
    pub fn into_arc(self) -> Arc<pagerduty::Error> {
        self.0
    }
}

impl From<pagerduty::Error> for Cause {
    fn from(error: pagerduty::Error) -> Self {
        Cause(Arc::new(error))
    }
}

impl From<Arc<pagerduty::Error>> for Cause {
    fn from(error: Arc<pagerduty::Error>) -> Self {
        Cause(error)
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Why a section has no fresh data. Carries no secret (PagerDuty's messages only).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, thiserror::Error)]
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
    /// The PagerDuty error this came from, when it came from one (not
    /// serialized: the JSON and the OpenAPI schema are unchanged).
    #[serde(skip)]
    #[source]
    pub cause: Option<Cause>,
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
            cause: None,
        }
    }

    /// The PagerDuty error behind this one, if any.
    pub fn pagerduty(&self) -> Option<&pagerduty::Error> {
        self.cause.as_ref().map(Cause::pagerduty)
    }
}

impl From<&pagerduty::Error> for SectionError {
    /// The section error PagerDuty's error means, without its cause (the
    /// error is borrowed); prefer `From<pagerduty::Error>`, which keeps it.
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

/// Compares what the errors say, not their causes.
impl PartialEq for SectionError {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
            && self.message == other.message
            && self.missing_scopes == other.missing_scopes
            && self.required_scopes == other.required_scopes
            && self.retry_after_secs == other.retry_after_secs
    }
}

impl Eq for SectionError {}

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
    /// The section error PagerDuty's error means, keeping it as the cause.
    fn from(error: pagerduty::Error) -> Self {
        let section = SectionError::from(&error);
        SectionError {
            cause: Some(Cause::from(error)),
            ..section
        }
    }
}

/// Why no card (or raw object) could be produced at all.
///
/// Only the `service` section decides this: any other section's failure is
/// reported inside the card. The variants that can come from PagerDuty keep
/// its error as `cause` ([`std::error::Error::source`]); `Display` shows
/// only the message.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CardError {
    /// The service (or integration key) does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for, e.g. `service PABC123` or `integration key`.
        what: String,
        /// PagerDuty's 404, when it said so (none for an empty id, an
        /// unknown integration key or a remembered 404).
        #[source]
        cause: Option<Cause>,
    },
    /// PagerDuty rejected our credentials.
    #[error("PagerDuty rejected the credentials: {message}")]
    Unauthorized {
        /// PagerDuty's explanation.
        message: String,
        /// PagerDuty's error.
        #[source]
        cause: Option<Cause>,
    },
    /// The credentials may not read the service.
    #[error("PagerDuty denied access: {message}")]
    Forbidden {
        /// PagerDuty's explanation.
        message: String,
        /// True when the token lacks required scopes.
        missing_scopes: bool,
        /// The scopes PagerDuty said the token needs (empty when it named none).
        required_scopes: Vec<String>,
        /// PagerDuty's error.
        #[source]
        cause: Option<Cause>,
    },
    /// Rate limited and no stale data to serve.
    #[error("PagerDuty rate limit exceeded")]
    RateLimited {
        /// When to retry, if PagerDuty said.
        retry_after: Option<Duration>,
        /// PagerDuty's error.
        #[source]
        cause: Option<Cause>,
    },
    /// The upstream call timed out and no stale data was available.
    #[error("PagerDuty did not answer in time")]
    Timeout {
        /// PagerDuty's error, when the client timed out (none when the
        /// card's own `section_timeout` ended the wait).
        #[source]
        cause: Option<Cause>,
    },
    /// Any other upstream failure, with no stale data to serve.
    #[error("PagerDuty unavailable: {message}")]
    Unavailable {
        /// What failed.
        message: String,
        /// PagerDuty's error, when there was one.
        #[source]
        cause: Option<Cause>,
    },
    /// The service has no Events API v2 integration (no routing key to trigger with).
    #[error("service {service_id} has no Events API v2 integration")]
    NoEventsIntegration {
        /// The service looked at.
        service_id: String,
    },
}

/// Compares what the errors say, not their causes.
impl PartialEq for CardError {
    fn eq(&self, other: &Self) -> bool {
        use CardError as E;
        match (self, other) {
            (E::NotFound { what: a, .. }, E::NotFound { what: b, .. }) => a == b,
            (E::Unauthorized { message: a, .. }, E::Unauthorized { message: b, .. }) => a == b,
            (
                E::Forbidden {
                    message: a,
                    missing_scopes: b,
                    required_scopes: c,
                    ..
                },
                E::Forbidden {
                    message: x,
                    missing_scopes: y,
                    required_scopes: z,
                    ..
                },
            ) => (a, b, c) == (x, y, z),
            (E::RateLimited { retry_after: a, .. }, E::RateLimited { retry_after: b, .. }) => {
                a == b
            }
            (E::Timeout { .. }, E::Timeout { .. }) => true,
            (E::Unavailable { message: a, .. }, E::Unavailable { message: b, .. }) => a == b,
            (
                E::NoEventsIntegration { service_id: a },
                E::NoEventsIntegration { service_id: b },
            ) => a == b,
            _ => false,
        }
    }
}

impl Eq for CardError {}

/// A lasting refusal by PagerDuty, from [`CardError::refusal`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// PagerDuty's status: 401, 402, 403 or 404.
    pub status: u16,
    /// What PagerDuty said, as the card error shows it (no secret).
    pub message: String,
}

impl CardError {
    /// A `NotFound` that PagerDuty did not say (no cause).
    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        CardError::NotFound {
            what: what.into(),
            cause: None,
        }
    }

    /// Maps a section failure to a card failure; `what` names the missing
    /// object. The section's cause becomes the card's.
    pub(crate) fn from_section(error: &SectionError, what: impl Into<String>) -> Self {
        let cause = error.cause.clone();
        match error.kind {
            SectionErrorKind::NotFound => CardError::NotFound {
                what: what.into(),
                cause,
            },
            SectionErrorKind::Forbidden => CardError::Forbidden {
                message: error.message.clone(),
                missing_scopes: error.missing_scopes,
                required_scopes: error.required_scopes.clone(),
                cause,
            },
            SectionErrorKind::RateLimited => CardError::RateLimited {
                retry_after: error.retry_after_secs.map(Duration::from_secs),
                cause,
            },
            SectionErrorKind::Timeout => CardError::Timeout { cause },
            SectionErrorKind::Unauthorized => CardError::Unauthorized {
                message: error.message.clone(),
                cause,
            },
            SectionErrorKind::Unavailable => CardError::Unavailable {
                message: error.message.clone(),
                cause,
            },
        }
    }

    /// A failed list read (the account-wide lists answer PagerDuty's error
    /// itself) as a card error about `what`, keeping the error as cause.
    pub fn from_list(error: Arc<pagerduty::Error>, what: impl Into<String>) -> Self {
        let section = SectionError {
            cause: Some(Cause::from(error.clone())),
            ..SectionError::from(&*error)
        };
        Self::from_section(&section, what)
    }

    /// PagerDuty's refusal behind this error, when it is one that retrying
    /// will not cure and that a portal can live without for an optional
    /// section (standards, metrics): PagerDuty refused the credentials
    /// (401), the plan lacks the feature (402), the token lacks a scope
    /// (403), or there is nothing to read (404). None for failures that
    /// may pass (rate limits, timeouts, PagerDuty down).
    pub fn refusal(&self) -> Option<Refusal> {
        let status = match self {
            CardError::Unauthorized { .. } => 401,
            CardError::Forbidden { .. } => 403,
            CardError::NotFound { .. } => 404,
            CardError::Unavailable { .. } => match self.pagerduty()?.status()? {
                402 => 402,
                _ => return None,
            },
            _ => return None,
        };
        Some(Refusal {
            status,
            message: self.to_string(),
        })
    }

    /// The PagerDuty error behind this one, if any.
    pub fn pagerduty(&self) -> Option<&pagerduty::Error> {
        match self {
            CardError::NotFound { cause, .. }
            | CardError::Unauthorized { cause, .. }
            | CardError::Forbidden { cause, .. }
            | CardError::RateLimited { cause, .. }
            | CardError::Timeout { cause }
            | CardError::Unavailable { cause, .. } => cause.as_ref().map(Cause::pagerduty),
            CardError::NoEventsIntegration { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    fn upstream_500() -> pagerduty::Error {
        pagerduty::Error::Upstream {
            status: 500,
            body: pagerduty::PdErrorBody::parse(br#"{"error":{"message":"boom"}}"#),
        }
    }

    #[test]
    fn a_pagerduty_error_stays_the_typed_source_of_section_and_card_errors() {
        let section = SectionError::from(upstream_500());
        assert_eq!(section.kind, SectionErrorKind::Unavailable);
        assert!(matches!(
            section.pagerduty(),
            Some(pagerduty::Error::Upstream { status: 500, .. })
        ));
        let source = section.source().expect("a source");
        assert_eq!(source.to_string(), upstream_500().to_string());

        let card = CardError::from_section(&section, "service PX");
        assert_eq!(
            card.to_string(),
            format!("PagerDuty unavailable: {}", section.message)
        );
        assert!(matches!(
            card.pagerduty(),
            Some(pagerduty::Error::Upstream { status: 500, .. })
        ));
        assert!(card.source().is_some());
        assert_eq!(
            card,
            CardError::from_section(&SectionError::from(&upstream_500()), "service PX"),
            "compared without the cause"
        );
        assert_ne!(card, CardError::not_found("service PX"));
    }

    #[test]
    fn the_cause_is_not_serialized_and_does_not_change_equality() {
        let with = SectionError::from(upstream_500());
        let without = SectionError::from(&upstream_500());
        assert!(without.cause.is_none());
        assert_eq!(with, without, "errors compare by what they say");
        let json = serde_json::to_value(&with).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "kind": "unavailable",
                "message": with.message,
                "missing_scopes": false,
            })
        );
        let back: SectionError = serde_json::from_value(json).unwrap();
        assert_eq!(back, with);
        assert!(back.cause.is_none());
    }

    #[test]
    fn refusals_are_401_402_403_and_404_and_nothing_that_may_pass() {
        let status_of = |error: pagerduty::Error| {
            CardError::from_section(&SectionError::from(error), "metrics of PX")
                .refusal()
                .map(|r| r.status)
        };
        let body = |status| pagerduty::PdErrorBody {
            status: Some(status),
            ..pagerduty::PdErrorBody::parse(br#"{"error":{"message":"no"}}"#)
        };
        assert_eq!(
            status_of(pagerduty::Error::Unauthorized { body: body(401) }),
            Some(401)
        );
        assert_eq!(
            status_of(pagerduty::Error::InvalidRequest { body: body(402) }),
            Some(402)
        );
        assert_eq!(
            status_of(pagerduty::Error::Forbidden {
                missing_scopes: true,
                body: body(403)
            }),
            Some(403)
        );
        assert_eq!(
            status_of(pagerduty::Error::NotFound { body: body(404) }),
            Some(404)
        );
        assert_eq!(
            status_of(pagerduty::Error::InvalidRequest { body: body(400) }),
            None
        );
        assert_eq!(status_of(upstream_500()), None);
        assert_eq!(status_of(pagerduty::Error::Timeout), None);
        assert_eq!(
            status_of(pagerduty::Error::RateLimited {
                retry_after: None,
                body: body(429)
            }),
            None
        );
        let refusal = CardError::Forbidden {
            message: "Access Denied".into(),
            missing_scopes: true,
            required_scopes: vec!["analytics.read".into()],
            cause: None,
        }
        .refusal()
        .unwrap();
        assert_eq!(refusal.message, "PagerDuty denied access: Access Denied");
    }

    #[test]
    fn display_is_unchanged() {
        let timeout = CardError::from_section(&SectionError::timeout("late"), "service PX");
        assert_eq!(timeout.to_string(), "PagerDuty did not answer in time");
        assert!(timeout.source().is_none());
        assert_eq!(
            CardError::not_found("service PX").to_string(),
            "service PX not found"
        );
    }
}
