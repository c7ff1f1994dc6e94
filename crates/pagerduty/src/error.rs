//! The crate-wide error type.
//!
//! Errors are grouped by what a caller can do about them: fix the
//! credentials ([`Error::Unauthorized`], [`Error::OAuth`]), grant a scope
//! ([`Error::Forbidden`] with `missing_scopes`), slow down
//! ([`Error::RateLimited`]), fix the input ([`Error::InvalidRequest`],
//! [`Error::InvalidEvent`], [`Error::PaginationLimit`]), or wait for
//! PagerDuty ([`Error::Upstream`], [`Error::Connect`], [`Error::Transport`],
//! [`Error::Timeout`]). Of the network failures only [`Error::Connect`]
//! guarantees that nothing of the request was sent; after
//! [`Error::Transport`] or [`Error::Timeout`] the request may have reached
//! PagerDuty.
//!
//! No variant ever carries a secret: the URL of a failed request is removed
//! from transport errors (it may hold an integration key as a query value).
//!
//! Network failures keep their cause: [`Error::Connect`], [`Error::Transport`]
//! and [`OAuthError::Unreachable`] hold a [`TransportError`] whose
//! [`source`](std::error::Error::source) is the `reqwest::Error`, so a log
//! can walk the chain (and code can inspect it) while `Display` stays one
//! readable line.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::events::ValidationError;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong when talking to PagerDuty.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 401: the API token or OAuth access token was refused.
    #[error("PagerDuty refused the credentials (401){}", body.suffix())]
    Unauthorized {
        /// PagerDuty's error body.
        body: PdErrorBody,
    },
    /// 403: the credentials are valid but not allowed to do this.
    #[error("PagerDuty denied access (403){}{}", if *missing_scopes { ": the token is missing required scopes" } else { "" }, body.suffix())]
    Forbidden {
        /// True when PagerDuty said "Token missing required scopes" (Scoped OAuth).
        missing_scopes: bool,
        /// PagerDuty's error body.
        body: PdErrorBody,
    },
    /// 404: the resource does not exist (or is not visible to these credentials).
    #[error("PagerDuty resource not found (404){}", body.suffix())]
    NotFound {
        /// PagerDuty's error body.
        body: PdErrorBody,
    },
    /// 429 after the retry policy was exhausted; or, without any request
    /// sent, a call that would have to wait for the rate limit past the
    /// retry policy's deadline (an account-wide 429 pause in force, or the
    /// client's own `rate_limit_per_minute` bucket; then `body.status` is
    /// `None` and `body.message` says so).
    #[error("PagerDuty rate limit exceeded (429){}{}", retry_after.map(|d| format!(", resets in {} s", d.as_secs_f64())).unwrap_or_default(), body.suffix())]
    RateLimited {
        /// The `ratelimit-reset` PagerDuty sent, if any.
        retry_after: Option<Duration>,
        /// PagerDuty's error body.
        body: PdErrorBody,
    },
    /// 400, 402 and other 4xx: the request is wrong and retrying will not help.
    /// Also the Events API's 400 "invalid event" (its `errors` are in the body).
    #[error("PagerDuty rejected the request ({}){}", body.status.unwrap_or(400), body.suffix())]
    InvalidRequest {
        /// PagerDuty's error body (`body.status` holds the exact 4xx status).
        body: PdErrorBody,
    },
    /// An event failed local validation and was not sent.
    #[error("invalid event: {0}")]
    InvalidEvent(ValidationError),
    /// 5xx (or another unexpected status) after the retry policy was exhausted.
    #[error("PagerDuty answered {status}{}", body.suffix())]
    Upstream {
        /// The HTTP status.
        status: u16,
        /// PagerDuty's error body.
        body: PdErrorBody,
    },
    /// A successful response did not have the expected shape.
    #[error("unexpected PagerDuty response body at `{path}`: {message}")]
    Decode {
        /// JSON path of the offending value, e.g. `services[0].created_at`.
        path: String,
        /// What was wrong.
        message: String,
    },
    /// No connection to PagerDuty could be made (DNS lookup, TCP connect,
    /// TLS handshake, or the connect timeout), after retries: **nothing of
    /// the request was sent**, so re-sending it cannot duplicate it.
    /// Retried like [`Error::Transport`].
    #[error("could not connect to PagerDuty; nothing was sent: {0}")]
    Connect(#[source] TransportError),
    /// The connection failed after it was established (reset or closed
    /// while sending the request or reading the answer, protocol error),
    /// after retries. The request **may have reached** PagerDuty.
    #[error("could not reach PagerDuty: {0}")]
    Transport(#[source] TransportError),
    /// A request attempt exceeded its timeout (after retries).
    #[error("PagerDuty did not answer in time")]
    Timeout,
    /// The OAuth token endpoint refused or could not be reached.
    #[error("PagerDuty OAuth: {0}")]
    OAuth(#[from] OAuthError),
    /// The client was built with a bad setting, or a call got a bad argument
    /// (an empty id, a page `limit` over 100).
    #[error("invalid PagerDuty client setting `{field}`: {message}")]
    Config {
        /// The builder setting, e.g. `api_base_url`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// `offset + limit` would exceed PagerDuty's classic pagination cap of 10 000.
    #[error(
        "PagerDuty pagination limit reached: offset {offset} + limit {limit} exceeds 10000; narrow the query with filters"
    )]
    PaginationLimit {
        /// The offset that would have been requested.
        offset: u32,
        /// The limit that would have been requested.
        limit: u32,
    },
}

/// Why a Scoped OAuth token could not be obtained.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    /// The token endpoint refused the client id or secret (`invalid_client`, 401).
    #[error("the client id or client secret was refused: {0}")]
    InvalidClient(String),
    /// The requested scope was refused (`invalid_scope`, or a bad `as_account-` region/subdomain).
    #[error("the requested scope was refused (check region, subdomain and scopes): {0}")]
    InvalidScope(String),
    /// The token endpoint could not be reached or failed (network error,
    /// timeout, 5xx); the [`TransportError`] keeps the network cause.
    #[error("the token endpoint is unreachable: {0}")]
    Unreachable(#[source] TransportError),
    /// Any other refusal or an unreadable answer.
    #[error("{0}")]
    Other(String),
}

/// PagerDuty's error body, parsed loosely.
///
/// REST errors look like `{"error":{"message","code","errors":[...]}}`;
/// Events API errors look like `{"status","message","errors":[...]}`. Bodies
/// may be missing, not JSON, or carry `errors` as an object; whatever was
/// found is kept, and the raw text (truncated) is kept too.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PdErrorBody {
    /// The HTTP status of the response the body came with.
    pub status: Option<u16>,
    /// `error.message` (REST) or `message` (Events).
    pub message: Option<String>,
    /// `error.code` (REST), e.g. 2001, 2006, 2100.
    pub code: Option<i64>,
    /// `error.errors` / `errors`, flattened to strings.
    pub errors: Vec<String>,
    /// The raw body text (at most 2 KiB), when there was one.
    pub raw: Option<String>,
}

const RAW_LIMIT: usize = 2048;
const REQUIRED_SCOPES_PREFIX: &str = "required scopes: ";

impl PdErrorBody {
    /// Parses an error body leniently; never fails.
    pub fn parse(bytes: &[u8]) -> Self {
        let text = String::from_utf8_lossy(bytes);
        let trimmed = text.trim();
        let raw = if trimmed.is_empty() {
            None
        } else {
            let mut end = trimmed.len().min(RAW_LIMIT);
            while !trimmed.is_char_boundary(end) {
                end -= 1;
            }
            Some(trimmed[..end].to_string())
        };
        let mut body = PdErrorBody {
            raw,
            ..Default::default()
        };
        let Ok(serde_json::Value::Object(top)) = serde_json::from_slice::<serde_json::Value>(bytes)
        else {
            return body;
        };
        // REST: {"error": {...}}; Events and some others: top-level fields.
        let obj = match top.get("error") {
            Some(serde_json::Value::Object(inner)) => inner.clone(),
            Some(serde_json::Value::String(s)) => {
                // OAuth-style {"error": "...", "error_description": "..."}
                body.message = Some(
                    top.get("error_description")
                        .and_then(|d| d.as_str())
                        .map(|d| format!("{s}: {d}"))
                        .unwrap_or_else(|| s.clone()),
                );
                return body;
            }
            _ => top,
        };
        body.message = obj
            .get("message")
            .and_then(|m| m.as_str())
            .map(str::to_string);
        body.code = obj.get("code").and_then(|c| {
            c.as_i64()
                .or_else(|| c.as_str().and_then(|s| s.parse().ok()))
        });
        body.errors = flatten_errors(obj.get("errors"));
        // Missing-scope 403s may name the scopes; keep them with the details.
        let required = match obj.get("required_scopes") {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Array(a)) => Some(
                a.iter()
                    .filter_map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            _ => None,
        };
        if let Some(r) = required {
            body.errors.push(format!("{REQUIRED_SCOPES_PREFIX}{r}"));
        }
        body
    }

    /// True when the message says "Token missing required scopes".
    pub fn says_missing_scopes(&self) -> bool {
        self.message
            .as_deref()
            .is_some_and(|m| m.to_ascii_lowercase().contains("missing required scopes"))
            || self.required_scopes().is_some()
    }

    /// The scopes PagerDuty said are missing (`error.required_scopes`), if it named them.
    pub fn required_scopes(&self) -> Option<&str> {
        self.errors
            .iter()
            .find_map(|e| e.strip_prefix(REQUIRED_SCOPES_PREFIX))
    }

    fn suffix(&self) -> String {
        let mut out = String::new();
        if let Some(m) = &self.message {
            out.push_str(": ");
            out.push_str(m);
        }
        if let Some(c) = self.code {
            out.push_str(&format!(" (code {c})"));
        }
        if !self.errors.is_empty() {
            out.push_str(&format!(" [{}]", self.errors.join("; ")));
        }
        out
    }
}

fn flatten_errors(v: Option<&serde_json::Value>) -> Vec<String> {
    match v {
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        Some(serde_json::Value::Object(map)) => map
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::Array(msgs) => format!(
                    "{k}: {}",
                    msgs.iter()
                        .map(|m| m
                            .as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| m.to_string()))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                serde_json::Value::String(s) => format!("{k}: {s}"),
                other => format!("{k}: {other}"),
            })
            .collect(),
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

impl fmt::Display for PdErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.suffix();
        f.write_str(s.strip_prefix(": ").unwrap_or(&s))
    }
}

impl Error {
    /// The HTTP status PagerDuty answered with, when the error came from one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Unauthorized { .. } => Some(401),
            Error::Forbidden { .. } => Some(403),
            Error::NotFound { .. } => Some(404),
            Error::RateLimited { .. } => Some(429),
            Error::InvalidRequest { body } => Some(body.status.unwrap_or(400)),
            Error::Upstream { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// PagerDuty's error body, when the error came from a response.
    pub fn body(&self) -> Option<&PdErrorBody> {
        match self {
            Error::Unauthorized { body }
            | Error::Forbidden { body, .. }
            | Error::NotFound { body }
            | Error::RateLimited { body, .. }
            | Error::InvalidRequest { body }
            | Error::Upstream { body, .. } => Some(body),
            _ => None,
        }
    }

    /// 404.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// 401, or an OAuth token endpoint that refused the client credentials.
    pub fn is_unauthorized(&self) -> bool {
        matches!(
            self,
            Error::Unauthorized { .. } | Error::OAuth(OAuthError::InvalidClient(_))
        )
    }

    /// 403.
    pub fn is_forbidden(&self) -> bool {
        matches!(self, Error::Forbidden { .. })
    }

    /// 403 because the OAuth token lacks a scope.
    pub fn is_missing_scopes(&self) -> bool {
        matches!(
            self,
            Error::Forbidden {
                missing_scopes: true,
                ..
            }
        )
    }

    /// 429 after retries.
    pub fn is_rate_limited(&self) -> bool {
        matches!(self, Error::RateLimited { .. })
    }

    /// No connection could be made, so nothing was sent ([`Error::Connect`]).
    pub fn is_connect(&self) -> bool {
        matches!(self, Error::Connect(_))
    }

    /// A request attempt timed out (after retries).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout)
    }

    /// How long PagerDuty asked us to wait (`ratelimit-reset`), for a 429.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub(crate) fn from_status(status: u16, bytes: &[u8], retry_after: Option<Duration>) -> Self {
        let mut body = PdErrorBody::parse(bytes);
        body.status = Some(status);
        match status {
            401 => Error::Unauthorized { body },
            403 => Error::Forbidden {
                missing_scopes: body.says_missing_scopes(),
                body,
            },
            404 => Error::NotFound { body },
            429 => Error::RateLimited { retry_after, body },
            400..=499 => Error::InvalidRequest { body },
            _ => Error::Upstream { status, body },
        }
    }

    pub(crate) fn from_reqwest(e: reqwest::Error) -> Self {
        // Checked before the timeout: a connect timeout also counts as a
        // timeout, but what matters to a caller is that nothing was sent.
        let connect = e.is_connect();
        if e.is_timeout() && !connect {
            return Error::Timeout;
        }
        let e = TransportError::from_reqwest(e);
        if connect {
            Error::Connect(e)
        } else {
            Error::Transport(e)
        }
    }
}

/// Why an HTTP exchange with PagerDuty failed below the HTTP status: the
/// message (the whole cause chain on one line, as `Display`) and, when
/// there is one, the `reqwest::Error` itself as the
/// [`source`](std::error::Error::source), without the request URL (which
/// may hold an integration key as a query value).
///
/// Cheap to clone (the cause is shared); equal when the messages are.
#[derive(Clone)]
pub struct TransportError {
    message: String,
    source: Option<Arc<reqwest::Error>>,
}

impl TransportError {
    /// The cause chain of `e` on one line, with `e` (without its URL) as the source.
    pub(crate) fn from_reqwest(e: reqwest::Error) -> Self {
        let e = e.without_url();
        let mut message = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            message.push_str(": ");
            message.push_str(&s.to_string());
            src = s.source();
        }
        TransportError {
            message,
            source: Some(Arc::new(e)),
        }
    }

    /// `message` for people, `e` (without its URL) as the source.
    pub(crate) fn with_message(message: impl Into<String>, e: reqwest::Error) -> Self {
        TransportError {
            message: message.into(),
            source: Some(Arc::new(e.without_url())),
        }
    }

    /// A failure without a network cause (e.g. a 5xx of the token endpoint,
    /// or a load that died before it could report one).
    pub fn new(message: impl Into<String>) -> Self {
        TransportError {
            message: message.into(),
            source: None,
        }
    }

    /// The message (what `Display` shows).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The `reqwest::Error` behind it, if any (its URL removed).
    pub fn reqwest_error(&self) -> Option<&reqwest::Error> {
        self.source.as_deref()
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportError")
            .field("message", &self.message)
            .field("source", &self.source)
            .finish()
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl PartialEq for TransportError {
    fn eq(&self, other: &Self) -> bool {
        self.message == other.message
    }
}

impl Eq for TransportError {}
