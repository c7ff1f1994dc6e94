//! `EventsClient::enqueue_within`: delivery within a time budget, every
//! branch of its loop. Budgets are short and real; where a test needs the
//! loop to stop after one attempt, the backoff is longer than the budget
//! (so no test depends on how fast the machine is).

use std::time::{Duration, Instant};

use pagerduty::{
    Client, Delivered, DeliveryError, DeliveryErrorKind, Event, EventPayload, RetryPolicy, Severity,
};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{ROUTING_KEY, bounded, closed_port, token_builder, token_client};

fn event() -> Event {
    let mut event = Event::trigger(
        ROUTING_KEY,
        EventPayload {
            summary: "Checkout latency p99 above 2s".into(),
            source: "payments-api".into(),
            severity: Severity::Critical,
            timestamp: None,
            component: None,
            group: None,
            class: None,
            custom_details: None,
        },
    );
    event.dedup_key = Some("checkout-latency".into());
    event
}

fn accepted() -> ResponseTemplate {
    ResponseTemplate::new(202).set_body_json(json!({
        "status": "success", "message": "Event processed", "dedup_key": "checkout-latency"
    }))
}

/// A client of the Events API at `events_base`, with `policy`.
fn client_at(events_base: &str, policy: RetryPolicy) -> Client {
    pagerduty::Client::builder(pagerduty::Credentials::ApiToken("tok".to_string().into()))
        .events_base_url(events_base)
        .retry_policy(policy)
        .build()
        .unwrap()
}

/// A client whose first retry wait (at least 5 s) never fits a test budget.
fn one_attempt_client(events_base: &str) -> Client {
    let slow = RetryPolicy {
        base_delay: Duration::from_secs(10),
        max_delay: Duration::from_secs(10),
        ..RetryPolicy::default()
    };
    client_at(events_base, slow)
}

/// Answers `POST /v2/enqueue` with `answer`: `times` times (then the next
/// mock answers), or always; expecting exactly that many calls.
async fn answer(server: &MockServer, answer: ResponseTemplate, times: Option<u64>) {
    let mock = Mock::given(method("POST"))
        .and(path("/v2/enqueue"))
        .respond_with(answer);
    match times {
        Some(n) => mock.up_to_n_times(n).expect(n),
        None => mock.expect(1),
    }
    .mount(server)
    .await;
}

/// `enqueue_within` of the test event on `client`.
async fn deliver(client: &Client, budget: Duration) -> Result<Delivered, DeliveryError> {
    client.events().enqueue_within(&event(), budget).await
}

#[tokio::test]
async fn a_503_is_retried_until_accepted() {
    bounded(async {
        let server = MockServer::start().await;
        answer(&server, ResponseTemplate::new(503), Some(2)).await;
        answer(&server, accepted(), None).await;
        let delivered = deliver(&token_client(&server), Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(delivered.attempts, 3);
        assert_eq!(delivered.response.status, "success");
        assert_eq!(
            delivered.response.dedup_key.as_deref(),
            Some("checkout-latency")
        );
    })
    .await
}

#[tokio::test]
async fn a_429_waits_for_its_reset_then_retries() {
    bounded(async {
        let server = MockServer::start().await;
        answer(
            &server,
            ResponseTemplate::new(429).insert_header("ratelimit-reset", "0.3"),
            Some(1),
        )
        .await;
        answer(&server, accepted(), None).await;
        let started = Instant::now();
        let delivered = deliver(&token_client(&server), Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(delivered.attempts, 2);
        // The backoff of the test policy is 5 ms: only the reset explains this.
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "{:?}",
            started.elapsed()
        );
    })
    .await
}

#[tokio::test]
async fn a_429_whose_reset_passes_the_budget_gives_up_at_once() {
    bounded(async {
        let server = MockServer::start().await;
        let throttled = ResponseTemplate::new(429).insert_header("ratelimit-reset", "20");
        answer(&server, throttled, None).await;
        let err = deliver(&token_client(&server), Duration::from_secs(2))
            .await
            .unwrap_err();
        assert_eq!(
            err.kind,
            DeliveryErrorKind::Throttled {
                retry_after: Duration::from_secs(20)
            }
        );
        assert_eq!(err.retry_after(), Some(Duration::from_secs(20)));
        assert_eq!((err.attempts, err.maybe_delivered), (1, false));
        assert_eq!(
            err.reason,
            "PagerDuty is throttling events for this integration (429); \
             gave up after 1 attempt(s) within the 2000 ms trigger deadline"
        );
        assert_eq!(err.to_string(), err.reason);
    })
    .await
}

#[tokio::test]
async fn a_400_is_rejected_and_not_retried() {
    bounded(async {
        let server = MockServer::start().await;
        answer(
            &server,
            ResponseTemplate::new(400).set_body_json(json!({
                "status": "invalid event",
                "message": "Event object is invalid",
                "errors": ["'payload.summary' is missing or blank"]
            })),
            None,
        )
        .await;
        let err = deliver(&token_client(&server), Duration::from_secs(10))
            .await
            .unwrap_err();
        assert_eq!(
            err.kind,
            DeliveryErrorKind::Rejected {
                message: "Event object is invalid".into(),
                errors: vec!["'payload.summary' is missing or blank".into()],
            }
        );
        assert_eq!((err.attempts, err.maybe_delivered), (1, false));
        assert_eq!(
            err.reason,
            "PagerDuty rejected the event: Event object is invalid"
        );
    })
    .await
}

#[tokio::test]
async fn an_unexpected_answer_is_a_bad_gateway_and_not_retried() {
    bounded(async {
        let server = MockServer::start().await;
        answer(&server, ResponseTemplate::new(404), None).await;
        let err = deliver(&token_client(&server), Duration::from_secs(10))
            .await
            .unwrap_err();
        assert_eq!(err.kind, DeliveryErrorKind::BadGateway);
        assert_eq!((err.attempts, err.maybe_delivered), (1, false));
        assert!(
            err.reason.starts_with("unexpected answer: "),
            "{}",
            err.reason
        );
    })
    .await
}

#[tokio::test]
async fn no_answer_within_the_budget_may_have_been_delivered() {
    bounded(async {
        let server = MockServer::start().await;
        answer(&server, accepted().set_delay(Duration::from_secs(30)), None).await;
        let err = deliver(&token_client(&server), Duration::from_millis(300))
            .await
            .unwrap_err();
        assert_eq!(err.kind, DeliveryErrorKind::Timeout);
        assert_eq!((err.attempts, err.maybe_delivered), (1, true));
        assert_eq!(
            err.reason,
            "PagerDuty did not answer within the 300 ms trigger deadline"
        );
    })
    .await
}

#[tokio::test]
async fn maybe_delivered_stays_after_a_later_plain_failure() {
    bounded(async {
        let server = MockServer::start().await;
        // The first attempt times out (the client's 100 ms request timeout):
        // it may have reached PagerDuty...
        answer(
            &server,
            accepted().set_delay(Duration::from_secs(30)),
            Some(1),
        )
        .await;
        // ... so a 429 after it does not prove the event was not accepted.
        answer(
            &server,
            ResponseTemplate::new(429).insert_header("ratelimit-reset", "20"),
            None,
        )
        .await;
        let client = token_builder(&server)
            .request_timeout(Duration::from_millis(100))
            .build()
            .unwrap();
        let err = deliver(&client, Duration::from_secs(10)).await.unwrap_err();
        assert!(
            matches!(err.kind, DeliveryErrorKind::Throttled { .. }),
            "{err:?}"
        );
        assert_eq!((err.attempts, err.maybe_delivered), (2, true));
    })
    .await
}

#[tokio::test]
async fn a_refused_connection_sent_nothing() {
    bounded(async {
        let client = one_attempt_client(&format!("http://127.0.0.1:{}/v2", closed_port()));
        let err = deliver(&client, Duration::from_secs(2)).await.unwrap_err();
        assert_eq!(err.kind, DeliveryErrorKind::Unavailable);
        assert_eq!((err.attempts, err.maybe_delivered), (1, false));
        assert!(
            err.reason.starts_with("PagerDuty could not be reached: "),
            "{}",
            err.reason
        );
        assert!(
            err.reason
                .ends_with("; gave up after 1 attempt(s) within the 2000 ms trigger deadline"),
            "{}",
            err.reason
        );
        assert!(!err.reason.contains(ROUTING_KEY));
    })
    .await
}

#[tokio::test]
async fn refused_connections_are_retried_within_the_budget() {
    bounded(async {
        let base = format!("http://127.0.0.1:{}/v2", closed_port());
        let client = client_at(&base, crate::helpers::fast_retry());
        let err = deliver(&client, Duration::from_millis(500))
            .await
            .unwrap_err();
        // Waits of 5 to 50 ms in a 500 ms budget: several attempts.
        assert!(err.attempts > 2, "{err:?}");
    })
    .await
}

#[tokio::test]
async fn a_connection_lost_after_sending_may_have_been_delivered() {
    use tokio::io::AsyncReadExt;

    bounded(async {
        // Reads the request head, then closes without an answer.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                drop(sock);
            }
        });
        let client = one_attempt_client(&format!("http://{addr}/v2"));
        let err = deliver(&client, Duration::from_secs(2)).await.unwrap_err();
        server.abort();
        assert_eq!(err.kind, DeliveryErrorKind::Unavailable);
        assert_eq!((err.attempts, err.maybe_delivered), (1, true));
        assert!(
            err.reason
                .starts_with("the connection to PagerDuty failed: "),
            "{}",
            err.reason
        );
    })
    .await
}

#[tokio::test]
async fn nothing_is_sent_without_budget_or_with_an_invalid_event() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(accepted())
            .expect(0)
            .mount(&server)
            .await;
        let client = token_client(&server);
        let err = deliver(&client, Duration::ZERO).await.unwrap_err();
        assert_eq!(err.kind, DeliveryErrorKind::Timeout);
        assert_eq!((err.attempts, err.maybe_delivered), (0, false));
        assert_eq!(
            err.reason,
            "no time was left to send the event within the 0 ms trigger deadline"
        );

        let mut invalid = event();
        invalid.routing_key = "too-short".into();
        let err = client
            .events()
            .enqueue_within(&invalid, Duration::from_secs(10))
            .await
            .unwrap_err();
        let DeliveryErrorKind::Invalid(v) = &err.kind else {
            panic!("{err:?}");
        };
        assert_eq!(v.field, "routing_key");
        assert_eq!((err.attempts, err.maybe_delivered), (0, false));
        assert!(!err.reason.contains("too-short"), "{}", err.reason);
    })
    .await
}
