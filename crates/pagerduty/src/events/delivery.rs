//! Delivering an alert event within a time budget:
//! [`EventsClient::enqueue_within`], and what it reports ([`Delivered`],
//! [`DeliveryError`]).
//!
//! The loop is described at [`EventsClient::enqueue_within`].

use std::time::Duration;

use tokio::time::Instant;

use super::{EnqueueResponse, Event, EventsClient, ValidationError};
use crate::error::Error;

/// An event PagerDuty accepted (any 2xx).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// PagerDuty's answer.
    pub response: EnqueueResponse,
    /// Attempts made, the accepted one included (at least 1).
    pub attempts: u32,
}

/// An event that was not delivered within the budget: why, how often it
/// was tried, and whether PagerDuty may have accepted it anyway.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct DeliveryError {
    /// What went wrong (on the last attempt).
    pub kind: DeliveryErrorKind,
    /// Attempts sent (0 when nothing was sent).
    pub attempts: u32,
    /// Some attempt may have reached PagerDuty, so the event may have been
    /// accepted: sticky over the attempts (see
    /// [`EventsClient::enqueue_within`]).
    pub maybe_delivered: bool,
    /// What happened, for people: e.g. `PagerDuty answered 503; gave up
    /// after 3 attempt(s) within the 2000 ms trigger deadline`. Holds no
    /// secret.
    pub reason: String,
}

impl DeliveryError {
    /// How long PagerDuty asked to wait, for [`DeliveryErrorKind::Throttled`].
    pub fn retry_after(&self) -> Option<Duration> {
        match self.kind {
            DeliveryErrorKind::Throttled { retry_after } => Some(retry_after),
            _ => None,
        }
    }
}

/// The kinds of [`DeliveryError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryErrorKind {
    /// PagerDuty answered 400: the event is invalid. Never retried.
    Rejected {
        /// PagerDuty's `message` (`invalid event` when it sent none).
        message: String,
        /// PagerDuty's `errors`.
        errors: Vec<String>,
    },
    /// The event failed local validation; nothing was sent.
    Invalid(ValidationError),
    /// PagerDuty kept answering 429 until the budget ran out.
    Throttled {
        /// The wait that no longer fit in the budget (PagerDuty's reset,
        /// or the backoff when it sent none).
        retry_after: Duration,
    },
    /// PagerDuty answered 5xx, or could not be reached, until the budget
    /// ran out.
    Unavailable,
    /// No answer within the budget (or no time left to send at all).
    Timeout,
    /// An answer that cannot be used: an unexpected status (a 4xx other
    /// than 400 and 429, a 401), or a body that cannot be read.
    BadGateway,
}

/// What one failed attempt means for the loop.
struct Failed {
    kind: DeliveryErrorKind,
    reason: String,
    /// Retry after this wait (if it fits), or `None` to stop now.
    wait: Option<Duration>,
    /// This attempt may have reached PagerDuty.
    maybe_delivered: bool,
}

impl Failed {
    fn retry(kind: DeliveryErrorKind, reason: String, wait: Duration, maybe: bool) -> Self {
        Failed {
            kind,
            reason,
            wait: Some(wait),
            maybe_delivered: maybe,
        }
    }

    fn stop(kind: DeliveryErrorKind, reason: String, maybe: bool) -> Self {
        Failed {
            kind,
            reason,
            wait: None,
            maybe_delivered: maybe,
        }
    }
}

impl EventsClient {
    /// Validates and sends an alert event, retrying within `budget`
    /// (counted from the call). Returns PagerDuty's answer and the attempts
    /// made, or a [`DeliveryError`] saying why not and whether the event may
    /// have been accepted anyway. The routing key never appears in the
    /// result or the logs.
    ///
    /// The loop (the one the server's create-incident proxy runs):
    ///
    /// * nothing is sent when the budget is already spent, nor when the event
    ///   fails local validation ([`DeliveryErrorKind::Invalid`]);
    /// * each attempt is one request with no retry of its own, cut off when the
    ///   budget ends (then the loop ends: "did not answer within ... ms");
    /// * **429**: wait the reset PagerDuty sent, or the backoff without one,
    ///   and at least [`RetryPolicy::base_delay`](crate::RetryPolicy::base_delay);
    /// * **5xx, connection errors, transport errors, timeouts**: wait
    ///   [`RetryPolicy::backoff`](crate::RetryPolicy::backoff) (the client's
    ///   policy: its `base_delay` and `max_delay`; its `max_attempts` and
    ///   `deadline` do not apply, the budget bounds the loop);
    /// * **400** ([`DeliveryErrorKind::Rejected`]) and any other unexpected
    ///   answer ([`DeliveryErrorKind::BadGateway`]) end the loop at once;
    /// * a wait that would not end before the budget does ends the loop, with
    ///   the kind and reason of the last attempt and "gave up after N
    ///   attempt(s)".
    ///
    /// [`DeliveryError::maybe_delivered`] is sticky: once an attempt may have
    /// reached PagerDuty (no answer in time, a connection lost after it was
    /// made), a later plain failure (a 503, a 429) does not prove the event was
    /// not accepted. A failure to connect sent nothing. Retrying is safe either
    /// way with the same `dedup_key`: PagerDuty merges events by it.
    ///
    /// The reasons use the words of the server's trigger answers ("... within
    /// the N ms trigger deadline"), so that they can be shown as they are.
    pub async fn enqueue_within(
        &self,
        event: &Event,
        budget: Duration,
    ) -> Result<Delivered, DeliveryError> {
        let body = event.validate_and_encode().map_err(|v| DeliveryError {
            reason: format!("invalid event: {v}"),
            kind: DeliveryErrorKind::Invalid(v),
            attempts: 0,
            maybe_delivered: false,
        })?;
        let policy = self.inner.retry;
        let deadline = Instant::now() + budget;
        let within = |reason: &str| {
            format!(
                "{reason} within the {} ms trigger deadline",
                budget.as_millis()
            )
        };
        let mut attempts = 0u32;
        let mut maybe_delivered = false;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() && attempts == 0 {
                // Nothing was sent: plainly not delivered (not "not confirmed").
                return Err(DeliveryError {
                    kind: DeliveryErrorKind::Timeout,
                    attempts: 0,
                    maybe_delivered: false,
                    reason: within("no time was left to send the event"),
                });
            }
            attempts += 1;
            tracing::debug!(
                routing_key = %event.routing_key.fingerprint(),
                action = ?event.event_action,
                attempt = attempts,
                remaining_ms = remaining.as_millis() as u64,
                "enqueue PagerDuty event within a budget"
            );
            let sent = self.post("/enqueue", &["enqueue"], body.clone(), true);
            let failed = match tokio::time::timeout(remaining, sent).await {
                Ok(Ok(response)) => return Ok(Delivered { response, attempts }),
                Ok(Err(e)) => classify(e, policy.backoff(attempts), policy.base_delay),
                Err(_) => Failed::stop(
                    DeliveryErrorKind::Timeout,
                    within("PagerDuty did not answer"),
                    true,
                ),
            };
            // A 400 means no attempt of this event was accepted.
            let rejected = matches!(
                failed.kind,
                DeliveryErrorKind::Rejected { .. } | DeliveryErrorKind::Invalid(_)
            );
            maybe_delivered = !rejected && (maybe_delivered || failed.maybe_delivered);
            let give_up = |kind, reason| DeliveryError {
                kind,
                attempts,
                maybe_delivered,
                reason,
            };
            let Some(wait) = failed.wait else {
                return Err(give_up(failed.kind, failed.reason));
            };
            let remaining = deadline.saturating_duration_since(Instant::now());
            if wait >= remaining {
                let kind = match failed.kind {
                    DeliveryErrorKind::Throttled { .. } => {
                        DeliveryErrorKind::Throttled { retry_after: wait }
                    }
                    other => other,
                };
                let reason = within(&format!(
                    "{}; gave up after {attempts} attempt(s)",
                    failed.reason
                ));
                return Err(give_up(kind, reason));
            }
            tokio::time::sleep(wait).await;
        }
    }
}

/// What a failed attempt means: `backoff` is the wait before a retry,
/// `base` the shortest wait after a 429.
fn classify(e: Error, backoff: Duration, base: Duration) -> Failed {
    use DeliveryErrorKind as K;
    match e {
        Error::InvalidRequest { body } if body.status.unwrap_or(400) == 400 => {
            let message = body.message.unwrap_or_else(|| "invalid event".to_owned());
            let reason = format!("PagerDuty rejected the event: {message}");
            let kind = K::Rejected {
                message,
                errors: body.errors,
            };
            Failed::stop(kind, reason, false)
        }
        // Validated before the loop; kept so that no case is lost.
        Error::InvalidEvent(v) => {
            let reason = format!("invalid event: {v}");
            Failed::stop(K::Invalid(v), reason, false)
        }
        Error::RateLimited { retry_after, .. } => {
            let wait = retry_after.unwrap_or(backoff).max(base);
            Failed::retry(
                K::Throttled { retry_after: wait },
                "PagerDuty is throttling events for this integration (429)".to_owned(),
                wait,
                false,
            )
        }
        Error::Upstream { status, .. } => Failed::retry(
            K::Unavailable,
            format!("PagerDuty answered {status}"),
            backoff,
            false,
        ),
        // No connection was made: nothing was sent.
        Error::Connect(e) => Failed::retry(
            K::Unavailable,
            format!("PagerDuty could not be reached: {e}"),
            backoff,
            false,
        ),
        // The connection failed after it was made (a reset while reading
        // the answer): the event may have been accepted.
        Error::Transport(e) => Failed::retry(
            K::Unavailable,
            format!("the connection to PagerDuty failed: {e}"),
            backoff,
            true,
        ),
        Error::Timeout => Failed::retry(
            K::Timeout,
            "PagerDuty did not answer in time".to_owned(),
            backoff,
            true,
        ),
        Error::Decode { message, .. } => Failed::stop(
            K::BadGateway,
            format!("PagerDuty's answer could not be read: {message}"),
            true,
        ),
        other => Failed::stop(K::BadGateway, format!("unexpected answer: {other}"), false),
    }
}
