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

/// Send `event` within `budget`: the client's deadline-bounded loop
/// ([`pagerduty::EventsClient::enqueue_within`], with the client's retry
/// policy), its report in the trigger's terms. Returns the answer and the
/// attempts made.
pub(super) async fn deliver(
    client: &pagerduty::Client,
    event: &Event,
    budget: Duration,
    service_id: Option<String>,
) -> (Answer, u32) {
    use pagerduty::DeliveryErrorKind as K;

    match client.events().enqueue_within(event, budget).await {
        Ok(delivered) => {
            let response = delivered.response;
            let accepted = TriggerAccepted {
                status: response.status,
                dedup_key: response
                    .dedup_key
                    .or_else(|| event.dedup_key.clone())
                    .unwrap_or_default(),
                message: response.message,
                service_id,
                created: (event.event_action == pagerduty::EventAction::Trigger).then_some(true),
            };
            (Ok(accepted), delivered.attempts)
        }
        Err(e) => {
            let attempts = e.attempts;
            let retry_after = e.retry_after();
            let failure = match e.kind {
                K::Rejected { message, errors } => {
                    return (Err(TriggerError::Rejected { message, errors }), attempts);
                }
                K::Invalid(v) => return (Err(from_validation(v)), attempts),
                K::Throttled { .. } => DeliveryFailure::Throttled,
                K::Unavailable => DeliveryFailure::Unavailable,
                K::Timeout => DeliveryFailure::Timeout,
                K::BadGateway => DeliveryFailure::BadGateway,
            };
            let answer = not_delivered(
                failure,
                e.reason,
                event,
                attempts,
                retry_after,
                e.maybe_delivered,
            );
            (Err(answer), attempts)
        }
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
