//! The rate-budget seam: a supplied `RateBudget` is asked before every
//! REST attempt (and only REST), told about 429s and `ratelimit-*` headers,
//! and a denial fails the call without sending it. (The in-process default
//! is covered by the rate-limit tests in `retries.rs`.)

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use pagerduty::{
    Error, Event, EventAction, PdErrorBody, PermitDenied, PermitRequest, RateBudget,
    RateLimitHeaders,
};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::fixtures;
use crate::helpers::{ROUTING_KEY, bounded, token_builder};

#[derive(Default)]
struct Recording {
    acquired: Mutex<Vec<PermitRequest>>,
    paused: Mutex<Vec<(Duration, PdErrorBody)>>,
    headers: Mutex<Vec<RateLimitHeaders>>,
    deny: AtomicBool,
}

impl RateBudget for Recording {
    fn acquire(&self, request: PermitRequest) -> BoxFuture<'_, Result<(), PermitDenied>> {
        self.acquired.lock().unwrap().push(request);
        let deny = self.deny.load(Ordering::SeqCst);
        Box::pin(async move {
            if deny {
                return Err(PermitDenied {
                    retry_after: Duration::from_secs(7),
                    body: PdErrorBody {
                        message: Some("the shared budget is spent".into()),
                        ..Default::default()
                    },
                });
            }
            Ok(())
        })
    }

    fn on_rate_limited(&self, pause: Duration, body: &PdErrorBody) {
        self.paused.lock().unwrap().push((pause, body.clone()));
    }

    fn on_headers(&self, headers: &RateLimitHeaders) {
        self.headers.lock().unwrap().push(*headers);
    }
}

#[tokio::test]
async fn a_supplied_budget_sees_every_rest_attempt_429_and_header() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/abilities"))
            .respond_with(
                ResponseTemplate::new(429)
                    .insert_header("ratelimit-limit", "960")
                    .insert_header("ratelimit-remaining", "0")
                    .insert_header("ratelimit-reset", "0")
                    .set_body_json(fixtures::error_body("Rate Limit Exceeded", 2020)),
            )
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/abilities"))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("ratelimit-remaining", "959")
                    .set_body_json(json!({"abilities": ["teams"]})),
            )
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v2/enqueue"))
            .respond_with(ResponseTemplate::new(202).set_body_json(json!({"status": "success"})))
            .expect(1)
            .mount(&server)
            .await;
        let budget = Arc::new(Recording::default());
        let client = token_builder(&server)
            .rate_budget(budget.clone())
            .build()
            .unwrap();
        let before = tokio::time::Instant::now();
        assert_eq!(client.list_abilities().await.unwrap(), ["teams"]);

        let acquired = budget.acquired.lock().unwrap().clone();
        assert_eq!(acquired.len(), 2, "one permit per attempt");
        for permit in &acquired {
            assert_eq!(permit.endpoint, "/abilities");
            // The retry policy's deadline (5 s in the test policy) and base delay.
            assert!(permit.deadline > before + Duration::from_secs(4));
            assert!(permit.deadline <= tokio::time::Instant::now() + Duration::from_secs(5));
            assert_eq!(permit.resume_jitter, Duration::from_millis(5));
        }
        let paused = budget.paused.lock().unwrap().clone();
        assert_eq!(paused.len(), 1);
        // `ratelimit-reset: 0` is at least 1 s, capped at the policy's 50 ms.
        assert_eq!(paused[0].0, Duration::from_millis(50));
        assert_eq!(paused[0].1.code, Some(2020));
        let headers = budget.headers.lock().unwrap().clone();
        assert_eq!(
            headers,
            [
                RateLimitHeaders {
                    limit: Some(960),
                    remaining: Some(0),
                    reset: Some(Duration::ZERO),
                },
                RateLimitHeaders {
                    limit: None,
                    remaining: Some(959),
                    reset: None,
                },
            ]
        );

        // Events are not REST calls: no permit asked.
        let event = Event::follow_up(ROUTING_KEY, EventAction::Resolve, "checkout-latency");
        client.events().enqueue(&event).await.unwrap();
        assert_eq!(budget.acquired.lock().unwrap().len(), 2);
    })
    .await
}

#[tokio::test]
async fn a_denied_permit_fails_the_call_without_sending_it() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200))
            .expect(0)
            .mount(&server)
            .await;
        let budget = Arc::new(Recording::default());
        budget.deny.store(true, Ordering::SeqCst);
        let client = token_builder(&server)
            .rate_budget(budget.clone())
            .build()
            .unwrap();
        let err = client.list_abilities().await.unwrap_err();
        assert!(err.is_rate_limited(), "{err:?}");
        assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
        assert!(
            err.to_string().contains("the shared budget is spent"),
            "{err}"
        );
        assert_eq!(budget.acquired.lock().unwrap().len(), 1, "not retried");
    })
    .await
}

#[tokio::test]
async fn a_budget_and_a_rate_are_not_combined() {
    let server = MockServer::start().await;
    let err = token_builder(&server)
        .rate_budget(Arc::new(Recording::default()))
        .rate_limit_per_minute(Some(600))
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, Error::Config { field, message } if field == "rate_limit_per_minute" && message.contains("rate_budget")),
        "{err:?}"
    );
}
