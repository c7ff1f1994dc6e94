//! Delivery to PagerDuty within `trigger.deadline_ms`, and what a caller
//! is told when it fails: whether the incident was created, and the
//! dedup_key to retry with.

use std::time::{Duration, Instant};

use pagerduty::Event;

use super::request::{Answer, TriggerAccepted};
use super::validate::from_validation;
use super::{DeliveryFailure, TriggerError};

pub(super) fn not_delivered(
    failure: DeliveryFailure,
    reason: String,
    event: &Event,
    attempts: u32,
    retry_after: Option<Duration>,
    created_unknown: bool,
) -> TriggerError {
    TriggerError::NotDelivered {
        action: event.event_action,
        failure,
        reason,
        dedup_key: event.dedup_key.clone().unwrap_or_default(),
        attempts,
        retry_after,
        created_unknown,
    }
}

/// A routing-key lookup that failed on PagerDuty's side (5xx, 429,
/// timeout, refused credentials): nothing was sent, so the answer is the
/// not-delivered one (`created: false`, `retry_safe: true`, the dedup_key to
/// retry with). An unknown service or one without an Events integration
/// passes through: retrying will not help.
pub(super) fn lookup_failure(e: TriggerError, event: &Event) -> TriggerError {
    use cards::CardError as C;
    let TriggerError::Lookup(card) = &e else {
        return e;
    };
    let (failure, retry_after) = match card {
        C::NotFound { .. } | C::NoEventsIntegration { .. } => return e,
        // PagerDuty's limits reset each minute; without a hint, 30 s keeps
        // clients from hammering us.
        C::RateLimited { retry_after, .. } => (
            DeliveryFailure::Throttled,
            Some(retry_after.unwrap_or(Duration::from_secs(30))),
        ),
        C::Unavailable { .. } => (DeliveryFailure::Unavailable, None),
        C::Timeout { .. } => (DeliveryFailure::Timeout, None),
        C::Unauthorized { .. } | C::Forbidden { .. } => (DeliveryFailure::BadGateway, None),
    };
    let reason = format!("looking up the service's integration key failed: {card}");
    not_delivered(failure, reason, event, 0, retry_after, false)
}

/// First retry wait; doubles per attempt up to [`MAX_BACKOFF`].
const BASE_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Send `event`, retrying 429, 5xx, transport errors and timeouts until
/// `budget` is spent. Returns the answer and the attempts made.
pub(super) async fn deliver(
    client: &pagerduty::Client,
    event: &Event,
    budget: Duration,
    service_id: Option<String>,
) -> (Answer, u32) {
    use pagerduty::Error as E;

    let deadline = tokio::time::Instant::now() + budget;
    let mut attempts = 0u32;
    let mut backoff = BASE_BACKOFF;
    // Sticky across attempts: once an attempt may have reached PagerDuty
    // (no answer, or a connection lost after sending), a later plain
    // failure (503, 429) does not prove the incident was not created.
    let mut maybe_created = false;
    loop {
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        if remaining.is_zero() && attempts == 0 {
            // The lookups used the whole budget: nothing was sent, so the
            // incident was plainly not created (not "not confirmed").
            let reason = format!(
                "no time was left to send the event within the {} ms trigger deadline",
                budget.as_millis()
            );
            return (
                Err(not_delivered(
                    DeliveryFailure::Timeout,
                    reason,
                    event,
                    0,
                    None,
                    false,
                )),
                0,
            );
        }
        attempts += 1;
        // What went wrong on this attempt, and how long to wait before the next.
        let (failure, reason, wait, created_unknown) =
            match tokio::time::timeout(remaining, client.events().enqueue_once(event)).await {
                Ok(Ok(response)) => {
                    let accepted = TriggerAccepted {
                        status: response.status,
                        dedup_key: response
                            .dedup_key
                            .or_else(|| event.dedup_key.clone())
                            .unwrap_or_default(),
                        message: response.message,
                        service_id,
                    };
                    return (Ok(accepted), attempts);
                }
                Ok(Err(E::InvalidRequest { body })) if body.status.unwrap_or(400) == 400 => {
                    let message = body
                        .message
                        .clone()
                        .unwrap_or_else(|| "invalid event".to_owned());
                    return (
                        Err(TriggerError::Rejected {
                            message,
                            errors: body.errors,
                        }),
                        attempts,
                    );
                }
                Ok(Err(E::InvalidEvent(v))) => return (Err(from_validation(v)), attempts),
                Ok(Err(E::RateLimited { retry_after, .. })) => (
                    DeliveryFailure::Throttled,
                    "PagerDuty is throttling events for this integration (429)".to_owned(),
                    retry_after.unwrap_or(backoff).max(BASE_BACKOFF),
                    false,
                ),
                Ok(Err(E::Upstream { status, .. })) => (
                    DeliveryFailure::Unavailable,
                    format!("PagerDuty answered {status}"),
                    backoff,
                    false,
                ),
                // No connection was made: nothing was sent.
                Ok(Err(E::Connect(message))) => (
                    DeliveryFailure::Unavailable,
                    format!("PagerDuty could not be reached: {message}"),
                    backoff,
                    false,
                ),
                // The connection failed after it was made (a reset while
                // reading the answer): the event may have been accepted.
                Ok(Err(E::Transport(message))) => (
                    DeliveryFailure::Unavailable,
                    format!("the connection to PagerDuty failed: {message}"),
                    backoff,
                    true,
                ),
                Ok(Err(E::Timeout)) => (
                    DeliveryFailure::Timeout,
                    "PagerDuty did not answer in time".to_owned(),
                    backoff,
                    true,
                ),
                Ok(Err(E::Decode { message, .. })) => {
                    let reason = format!("PagerDuty's answer could not be read: {message}");
                    return (
                        Err(not_delivered(
                            DeliveryFailure::BadGateway,
                            reason,
                            event,
                            attempts,
                            None,
                            true,
                        )),
                        attempts,
                    );
                }
                Ok(Err(other)) => {
                    let reason = format!("unexpected answer: {other}");
                    return (
                        Err(not_delivered(
                            DeliveryFailure::BadGateway,
                            reason,
                            event,
                            attempts,
                            None,
                            maybe_created,
                        )),
                        attempts,
                    );
                }
                Err(_) => {
                    let reason = format!(
                        "PagerDuty did not answer within the {} ms trigger deadline",
                        budget.as_millis()
                    );
                    return (
                        Err(not_delivered(
                            DeliveryFailure::Timeout,
                            reason,
                            event,
                            attempts,
                            None,
                            true,
                        )),
                        attempts,
                    );
                }
            };
        maybe_created |= created_unknown;
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        if wait >= remaining {
            let reason = format!(
                "{reason}; gave up after {attempts} attempt(s) within the {} ms trigger deadline",
                budget.as_millis()
            );
            let retry_after = (failure == DeliveryFailure::Throttled).then_some(wait);
            return (
                Err(not_delivered(
                    failure,
                    reason,
                    event,
                    attempts,
                    retry_after,
                    maybe_created,
                )),
                attempts,
            );
        }
        tokio::time::sleep(wait).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

pub(super) fn log_outcome(
    caller: &str,
    event: &Event,
    service_id: Option<&str>,
    answer: &Answer,
    attempts: u32,
    started: Instant,
) {
    let routing_key = event.routing_key.fingerprint();
    let dedup_key = event.dedup_key.as_deref().unwrap_or("");
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let action = format!("{:?}", event.event_action).to_lowercase();
    match answer {
        Ok(_) => tracing::info!(
            caller,
            action,
            service_id,
            routing_key = %routing_key,
            dedup_key,
            attempts,
            elapsed_ms,
            outcome = "accepted",
            "event delivered to PagerDuty"
        ),
        Err(e) => tracing::warn!(
            caller,
            action,
            service_id,
            routing_key = %routing_key,
            dedup_key,
            attempts,
            elapsed_ms,
            outcome = e.code(),
            error = %e,
            "event NOT delivered to PagerDuty"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trigger::validate::prepare_trigger;
    use crate::trigger::validate::tests::{caller, request, settings};

    /// A 127.0.0.1 address nobody listens on: a port-0 listener's port,
    /// released again.
    fn refused_url() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    }

    #[tokio::test]
    async fn no_time_left_means_not_created_and_nothing_sent() {
        // Nothing listens on that port: had it sent, it would fail
        // differently (transport) or report "unknown".
        let client = pagerduty::Client::builder(pagerduty::Credentials::ApiToken(
            secrecy::SecretString::from("token"),
        ))
        .events_base_url(format!("{}/v2", refused_url()))
        .build()
        .unwrap();
        let p = prepare_trigger(&settings(), &caller(), request(), None).unwrap();
        let (answer, attempts) = deliver(&client, &p.event, Duration::ZERO, None).await;
        assert_eq!(attempts, 0);
        match answer {
            Err(TriggerError::NotDelivered {
                created_unknown,
                attempts,
                ..
            }) => {
                assert!(!created_unknown, "nothing was sent: plainly not created");
                assert_eq!(attempts, 0);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_refused_connection_means_not_created() {
        // Nothing listens on that port: every attempt fails to connect, so
        // nothing was sent and the answer is a plain "not created".
        let client = pagerduty::Client::builder(pagerduty::Credentials::ApiToken(
            secrecy::SecretString::from("token"),
        ))
        .events_base_url(format!("{}/v2", refused_url()))
        .build()
        .unwrap();
        let p = prepare_trigger(&settings(), &caller(), request(), None).unwrap();
        let (answer, attempts) = deliver(&client, &p.event, Duration::from_millis(400), None).await;
        assert!(attempts >= 2, "retried: {attempts}");
        match answer {
            Err(e @ TriggerError::NotDelivered { .. }) => {
                let TriggerError::NotDelivered {
                    created_unknown, ..
                } = &e
                else {
                    unreachable!()
                };
                assert!(!created_unknown, "a connect error sends nothing: {e}");
                assert!(
                    e.to_string().contains("the incident was NOT created"),
                    "{e}"
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
