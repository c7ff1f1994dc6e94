//! The retry policy: 429 waits for `ratelimit-reset`, 5xx and transport
//! errors back off, other 4xx are final; plus timeouts and the rate limiter.

use std::time::{Duration, Instant};

use pagerduty::{Error, RetryPolicy};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::fixtures;
use crate::helpers::{Recorder, bounded, token_builder, token_client};

fn user_ok() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"user": fixtures::user("PUSER01")}))
}

fn rate_limited(reset: &str) -> ResponseTemplate {
    ResponseTemplate::new(429)
        .insert_header("ratelimit-limit", "960")
        .insert_header("ratelimit-remaining", "0")
        .insert_header("ratelimit-reset", reset)
        .set_body_json(fixtures::error_body("Rate Limit Exceeded", 2020))
}

#[tokio::test]
async fn rate_limited_then_success_waits_capped_reset() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/users/PUSER01"))
            .respond_with(rate_limited("20"))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/users/PUSER01"))
            .respond_with(user_ok())
            .expect(1)
            .mount(&server)
            .await;
        let started = Instant::now();
        // fast_retry caps any wait (including ratelimit-reset: 20) at 50 ms.
        let user = token_client(&server).get_user("PUSER01").await.unwrap();
        assert_eq!(user.id, "PUSER01");
        assert!(started.elapsed() < Duration::from_secs(1));
    })
    .await
}

#[tokio::test]
async fn rate_limited_zero_reset_waits_a_second() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/users/PUSER01"))
            .respond_with(rate_limited("0"))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/users/PUSER01"))
            .respond_with(user_ok())
            .mount(&server)
            .await;
        let client = token_builder(&server)
            .retry_policy(RetryPolicy {
                max_attempts: 2,
                base_delay: Duration::from_millis(1),
                max_delay: Duration::from_secs(2),
                deadline: Duration::from_secs(5),
            })
            .build()
            .unwrap();
        let started = Instant::now();
        client.get_user("PUSER01").await.unwrap();
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "waited {:?}; `ratelimit-reset: 0` means later this second, so at least 1 s",
            started.elapsed()
        );
    })
    .await
}

#[tokio::test]
async fn rate_limit_exhausted_reports_reset() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/users/PUSER01"))
            .respond_with(rate_limited("7"))
            .expect(3)
            .mount(&server)
            .await;
        let err = token_client(&server).get_user("PUSER01").await.unwrap_err();
        assert!(err.is_rate_limited(), "{err:?}");
        assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(err.status(), Some(429));
        assert_eq!(err.body().unwrap().code, Some(2020));
    })
    .await
}

#[tokio::test]
async fn service_unavailable_then_success_is_observed() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/services/PSVC001"))
            .respond_with(ResponseTemplate::new(503).set_body_string("upstream connect error"))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/services/PSVC001"))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"service": fixtures::service("PSVC001", "Payments API", "k")}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let recorder = Recorder::new();
        let client = token_builder(&server)
            .observer(recorder.clone())
            .build()
            .unwrap();
        let svc = client.get_service("PSVC001", &[]).await.unwrap();
        assert_eq!(svc.id, "PSVC001");
        let records = recorder.records();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].endpoint, "/services/{id}");
        assert_eq!(records[0].method, "GET");
        assert_eq!((records[0].status, records[0].attempt), (Some(503), 1));
        assert_eq!((records[1].status, records[1].attempt), (Some(200), 2));
    })
    .await
}

#[tokio::test]
async fn server_errors_exhaust_attempts() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/abilities"))
            .respond_with(
                ResponseTemplate::new(500)
                    .set_body_json(fixtures::error_body("An internal error has occurred", 2000)),
            )
            .expect(3)
            .mount(&server)
            .await;
        let err = token_client(&server).list_abilities().await.unwrap_err();
        assert!(
            matches!(&err, Error::Upstream { status: 500, body } if body.code == Some(2000)),
            "{err:?}"
        );
    })
    .await
}

#[tokio::test]
async fn bad_request_is_not_retried() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/incidents"))
            .respond_with(ResponseTemplate::new(400).set_body_json(json!({
                "error": {"message": "Invalid Input Provided", "code": 2001,
                          "errors": ["Statuses must be one of triggered, acknowledged, resolved"]}
            })))
            .expect(1)
            .mount(&server)
            .await;
        let err = token_client(&server)
            .list_incidents(&Default::default())
            .await
            .unwrap_err();
        match &err {
            Error::InvalidRequest { body } => {
                assert_eq!(body.code, Some(2001));
                assert_eq!(body.status, Some(400));
                assert_eq!(body.message.as_deref(), Some("Invalid Input Provided"));
                assert_eq!(body.errors.len(), 1);
            }
            other => panic!("expected InvalidRequest, got {other:?}"),
        }
        assert_eq!(err.status(), Some(400));
        assert!(err.to_string().contains("Invalid Input Provided"));
    })
    .await
}

#[tokio::test]
async fn not_found_and_payment_required_are_not_retried() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/services/PGONE00"))
            .respond_with(
                ResponseTemplate::new(404).set_body_json(fixtures::error_body("Not Found", 2100)),
            )
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/incidents"))
            .respond_with(
                ResponseTemplate::new(402)
                    .set_body_json(fixtures::error_body("Missing Account Ability", 2014)),
            )
            .expect(1)
            .mount(&server)
            .await;
        let client = token_client(&server);
        let err = client.get_service("PGONE00", &[]).await.unwrap_err();
        assert!(err.is_not_found(), "{err:?}");
        let err = client
            .list_incidents(&Default::default())
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(402));
    })
    .await
}

#[tokio::test]
async fn slow_answer_times_out() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/abilities"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"abilities": []}))
                    .set_delay(Duration::from_secs(3)),
            )
            .expect(2)
            .mount(&server)
            .await;
        let client = token_builder(&server)
            .request_timeout(Duration::from_millis(100))
            .retry_policy(RetryPolicy {
                max_attempts: 2,
                ..crate::helpers::fast_retry()
            })
            .build()
            .unwrap();
        let started = Instant::now();
        let err = client.list_abilities().await.unwrap_err();
        assert!(err.is_timeout(), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
    })
    .await
}

#[tokio::test]
async fn connection_refused_is_a_connect_error_after_retries() {
    bounded(async {
        // A port that was just free: bind, note the address, close the listener.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let recorder = Recorder::new();
        let client =
            pagerduty::Client::builder(pagerduty::Credentials::ApiToken("tok".to_string().into()))
                .api_base_url(format!("http://127.0.0.1:{port}"))
                .retry_policy(crate::helpers::fast_retry())
                .observer(recorder.clone())
                .build()
                .unwrap();
        let err = client
            .find_service_by_integration_key("0a1b2c3d4e5f60718293a4b5c6d7e8f9")
            .await
            .unwrap_err();
        // Nothing was sent: the caller can tell this from a maybe-sent failure.
        assert!(matches!(err, Error::Connect(_)), "{err:?}");
        assert!(err.is_connect());
        assert!(
            err.to_string().contains("nothing was sent"),
            "the message says nothing was sent: {err}"
        );
        assert!(
            !err.to_string().contains("0a1b2c3d"),
            "the integration key in the URL must not leak: {err}"
        );
        // Retried like any transport failure.
        let records = recorder.records();
        assert_eq!(records.len(), 3);
        assert!(records.iter().all(|r| r.status.is_none()));
    })
    .await
}

#[tokio::test]
async fn events_connection_refused_is_a_connect_error() {
    bounded(async {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let client =
            pagerduty::Client::builder(pagerduty::Credentials::ApiToken("tok".to_string().into()))
                .events_base_url(format!("http://127.0.0.1:{port}/v2"))
                .retry_policy(crate::helpers::fast_retry())
                .build()
                .unwrap();
        let event = pagerduty::Event::trigger(
            crate::helpers::ROUTING_KEY,
            pagerduty::EventPayload {
                summary: "disk full".into(),
                source: "db-1".into(),
                severity: pagerduty::Severity::Critical,
                timestamp: None,
                component: None,
                group: None,
                class: None,
                custom_details: None,
            },
        );
        let err = client.events().enqueue_once(&event).await.unwrap_err();
        assert!(err.is_connect(), "{err:?}");
        assert!(!err.to_string().contains(crate::helpers::ROUTING_KEY));
    })
    .await
}

#[tokio::test]
async fn connection_closed_after_the_request_is_a_transport_error() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::AsyncReadExt;

    bounded(async {
        // Accepts, reads the whole request head, then closes without an
        // answer: the request reached the server, so this is not `Connect`.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let seen = requests.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                seen.fetch_add(1, Ordering::SeqCst);
                drop(sock);
            }
        });
        let client = token_builder(&MockServer::start().await)
            .api_base_url(format!("http://{addr}"))
            .retry_policy(RetryPolicy {
                max_attempts: 2,
                ..crate::helpers::fast_retry()
            })
            .build()
            .unwrap();
        let err = client.list_abilities().await.unwrap_err();
        server.abort();
        assert!(matches!(err, Error::Transport(_)), "{err:?}");
        assert!(!err.is_connect());
        assert_eq!(requests.load(Ordering::SeqCst), 2, "retried once");
    })
    .await
}

#[tokio::test]
async fn deadline_bounds_retries() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/abilities"))
            .respond_with(rate_limited("1"))
            .expect(1)
            .mount(&server)
            .await;
        let client = token_builder(&server)
            .retry_policy(RetryPolicy {
                max_attempts: 10,
                base_delay: Duration::from_millis(1),
                max_delay: Duration::from_secs(10),
                deadline: Duration::from_millis(900),
            })
            .build()
            .unwrap();
        let started = Instant::now();
        let err = client.list_abilities().await.unwrap_err();
        assert!(err.is_rate_limited());
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "a 1 s wait does not fit a 0.9 s deadline, so the client gives up at once"
        );
    })
    .await
}

#[tokio::test]
async fn client_rate_limiter_queues_bursts() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/abilities"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"abilities": []})))
            .expect(13)
            .mount(&server)
            .await;
        // 600/min = 10/s with a burst of 10: 13 calls need about 0.3 s.
        let client = token_builder(&server)
            .rate_limit_per_minute(Some(600))
            .build()
            .unwrap();
        let started = Instant::now();
        let calls = (0..13).map(|_| client.list_abilities());
        for r in futures::future::join_all(calls).await {
            r.unwrap();
        }
        assert!(
            started.elapsed() >= Duration::from_millis(250),
            "13 calls at 10/s took only {:?}",
            started.elapsed()
        );
    })
    .await
}

#[tokio::test]
async fn client_rate_limiter_wait_is_bounded_by_the_deadline() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/abilities"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"abilities": []})))
            .expect(1)
            .mount(&server)
            .await;
        // 1/min: the second call would wait ~60 s for a cell, far past its
        // 200 ms deadline.
        let client = token_builder(&server)
            .rate_limit_per_minute(Some(1))
            .retry_policy(RetryPolicy {
                deadline: Duration::from_millis(200),
                ..crate::helpers::fast_retry()
            })
            .build()
            .unwrap();
        client.list_abilities().await.unwrap();
        let started = Instant::now();
        let err = client.list_abilities().await.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_millis(150),
            "failed fast, not after waiting: {:?}",
            started.elapsed()
        );
        assert!(err.is_rate_limited(), "{err:?}");
        let body = err.body().unwrap();
        assert_eq!(body.status, None, "no request was sent: {body:?}");
        assert!(
            body.message
                .as_deref()
                .unwrap()
                .contains("rate_limit_per_minute"),
            "{err}"
        );
        let retry_after = err.retry_after().unwrap();
        assert!(retry_after > Duration::from_secs(50), "{retry_after:?}");
    })
    .await
}

#[tokio::test]
async fn retry_after_is_a_fallback_for_ratelimit_reset() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/abilities"))
            .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "4"))
            .expect(1)
            .mount(&server)
            .await;
        let client = token_builder(&server)
            .retry_policy(RetryPolicy::none())
            .build()
            .unwrap();
        let err = client.list_abilities().await.unwrap_err();
        assert_eq!(err.retry_after(), Some(Duration::from_secs(4)));
        assert_eq!(err.body().unwrap().raw, None, "no body is fine");
    })
    .await
}

#[tokio::test]
async fn events_enqueue_skips_the_rest_token_bucket() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/abilities"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"abilities": []})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v2/enqueue"))
            .respond_with(ResponseTemplate::new(202).set_body_json(json!({
                "status": "success", "message": "Event processed", "dedup_key": "k1"
            })))
            .expect(1)
            .mount(&server)
            .await;
        // 1/min with a burst of 1: one REST call empties the bucket for a minute.
        let client = token_builder(&server)
            .rate_limit_per_minute(Some(1))
            .build()
            .unwrap();
        client.list_abilities().await.unwrap();
        // A further REST call is held by the bucket (it would wait a minute,
        // past its 5 s deadline, so it fails unsent)...
        let err = client.list_abilities().await.unwrap_err();
        assert!(err.is_rate_limited(), "{err:?}");
        // ...but an Events enqueue goes out at once.
        let event = pagerduty::Event::trigger(
            crate::helpers::ROUTING_KEY,
            pagerduty::EventPayload {
                summary: "Checkout down".into(),
                source: "payments-api".into(),
                severity: pagerduty::Severity::Critical,
                timestamp: None,
                component: None,
                group: None,
                class: None,
                custom_details: None,
            },
        );
        let resp = tokio::time::timeout(Duration::from_secs(2), client.enqueue(&event))
            .await
            .expect("the enqueue waited in the REST token bucket")
            .unwrap();
        assert_eq!(resp.dedup_key.as_deref(), Some("k1"));
    })
    .await
}

/// Answers the first request with a 429 (`ratelimit-reset: 1`), every
/// later one with 200, and notes when each request arrived.
struct FirstRateLimited(std::sync::Mutex<Vec<Instant>>);

impl wiremock::Respond for FirstRateLimited {
    fn respond(&self, _: &wiremock::Request) -> ResponseTemplate {
        let mut seen = self.0.lock().unwrap();
        seen.push(Instant::now());
        if seen.len() == 1 {
            rate_limited("1")
        } else {
            user_ok()
        }
    }
}

#[tokio::test]
async fn rate_limit_pauses_every_rest_call_until_the_reset() {
    bounded(async {
        let server = MockServer::start().await;
        let arrivals = std::sync::Arc::new(FirstRateLimited(Default::default()));
        Mock::given(method("GET"))
            .and(path("/users/PUSER01"))
            .respond_with(ArcResponder(arrivals.clone()))
            .expect(3)
            .mount(&server)
            .await;
        let recorder = Recorder::new();
        let client = token_builder(&server)
            .retry_policy(RetryPolicy {
                max_attempts: 3,
                base_delay: Duration::from_millis(5),
                max_delay: Duration::from_secs(3),
                deadline: Duration::from_secs(5),
            })
            .observer(recorder.clone())
            .build()
            .unwrap();
        let first = tokio::spawn({
            let c = client.clone();
            async move { c.get_user("PUSER01").await }
        });
        // Start the second call once the first has had its 429.
        while recorder.records().is_empty() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        client.get_user("PUSER01").await.unwrap();
        first.await.unwrap().unwrap();
        let seen = arrivals.0.lock().unwrap().clone();
        assert_eq!(
            seen.len(),
            3,
            "429, the first call's retry, the second call"
        );
        for later in &seen[1..] {
            let gap = *later - seen[0];
            assert!(
                gap >= Duration::from_millis(950),
                "a call reached PagerDuty {gap:?} after the 429, before its 1 s reset"
            );
        }
    })
    .await
}

struct ArcResponder(std::sync::Arc<FirstRateLimited>);

impl wiremock::Respond for ArcResponder {
    fn respond(&self, r: &wiremock::Request) -> ResponseTemplate {
        self.0.respond(r)
    }
}

#[tokio::test]
async fn rate_limit_pause_past_the_deadline_fails_without_sending() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/users/PUSER01"))
            .respond_with(rate_limited("3"))
            .expect(1)
            .mount(&server)
            .await;
        let client = token_builder(&server)
            .retry_policy(RetryPolicy {
                max_attempts: 3,
                base_delay: Duration::from_millis(5),
                max_delay: Duration::from_secs(3),
                deadline: Duration::from_secs(1),
            })
            .build()
            .unwrap();
        let err = client.get_user("PUSER01").await.unwrap_err();
        assert!(err.is_rate_limited(), "{err:?}");
        let started = Instant::now();
        let err = client.get_user("PUSER01").await.unwrap_err();
        assert!(started.elapsed() < Duration::from_millis(500));
        match err {
            Error::RateLimited { retry_after, body } => {
                let left = retry_after.unwrap();
                assert!(left > Duration::from_secs(2) && left <= Duration::from_secs(3));
                assert_eq!(body.code, Some(2020));
            }
            other => panic!("{other:?}"),
        }
    })
    .await
}
