//! Scoped OAuth: one shared token, renewal before expiry, one renewal on
//! 401, typed token-endpoint errors, token health.

use std::time::Duration;

use pagerduty::{Client, Credentials, Error, OAuthError, Region, TokenKind};
use serde_json::json;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{CLIENT_SECRET, bounded, oauth_builder, oauth_creds};

fn token(access: &str, expires_in: u64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "access_token": access,
        "token_type": "bearer",
        "scope": "as_account-us.acme services.read incidents.read",
        "expires_in": expires_in
    }))
}

async fn mount_abilities_for(server: &MockServer, bearer: &str, expect: u64) {
    Mock::given(method("GET"))
        .and(path("/abilities"))
        .and(header("authorization", format!("Bearer {bearer}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"abilities": ["teams"]})))
        .expect(expect)
        .mount(server)
        .await;
}

#[tokio::test]
async fn fifty_concurrent_calls_fetch_one_token() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/oauth/token"))
            .and(header("content-type", "application/x-www-form-urlencoded"))
            .and(body_string_contains("grant_type=client_credentials"))
            .and(body_string_contains("client_id=app-client-id-123"))
            .and(body_string_contains(
                "scope=as_account-us.acme+services.read+incidents.read",
            ))
            // Slow enough that all 50 callers arrive while the fetch is in flight.
            .respond_with(
                token("pdus+_0XBPWQQ_tokenA", 86400).set_delay(Duration::from_millis(200)),
            )
            .expect(1)
            .mount(&server)
            .await;
        mount_abilities_for(&server, "pdus+_0XBPWQQ_tokenA", 50).await;
        let recorder = crate::helpers::Recorder::new();
        let client = oauth_builder(&server)
            .observer(recorder.clone())
            .build()
            .unwrap();
        let calls = (0..50).map(|_| {
            let c = client.clone();
            tokio::spawn(async move { c.list_abilities().await })
        });
        for r in futures::future::join_all(calls).await {
            assert_eq!(r.unwrap().unwrap(), vec!["teams"]);
        }
        let records = recorder.records();
        let token_calls: Vec<_> = records
            .iter()
            .filter(|r| r.endpoint == "/oauth/token")
            .collect();
        assert_eq!(token_calls.len(), 1);
        assert_eq!(token_calls[0].method, "POST");
        assert_eq!(token_calls[0].status, Some(200));
        assert_eq!(records.len(), 51);
    })
    .await
}

#[tokio::test]
async fn token_is_renewed_before_expiry() {
    bounded(async {
        let server = MockServer::start().await;
        // expires_in = 2 s: renewal is due at 1.6 s, before the token expires.
        Mock::given(method("POST"))
            .and(path("/oauth/token"))
            .respond_with(token("tokenA", 2))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/oauth/token"))
            .respond_with(token("tokenB", 86400))
            .expect(1)
            .mount(&server)
            .await;
        mount_abilities_for(&server, "tokenA", 2).await;
        mount_abilities_for(&server, "tokenB", 1).await;
        let client = oauth_builder(&server).build().unwrap();
        client.list_abilities().await.unwrap();
        client.list_abilities().await.unwrap(); // cached
        // The token cache runs on tokio's clock: move it past 80 % of
        // expires_in without sleeping (wiremock serves from its own thread).
        tokio::time::pause();
        tokio::time::advance(Duration::from_millis(1700)).await;
        tokio::time::resume();
        client.list_abilities().await.unwrap(); // renewed at 80 %
    })
    .await
}

#[tokio::test]
async fn unauthorized_renews_once_and_retries_once() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/oauth/token"))
            .respond_with(token("revoked", 86400))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/oauth/token"))
            .respond_with(token("fresh", 86400))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/abilities"))
            .and(header("authorization", "Bearer revoked"))
            .respond_with(ResponseTemplate::new(401).set_body_json(
                json!({"error": {"message": "Authentication failed", "code": 2006}}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        mount_abilities_for(&server, "fresh", 1).await;
        let client = oauth_builder(&server).build().unwrap();
        assert_eq!(client.list_abilities().await.unwrap(), vec!["teams"]);
    })
    .await
}

#[tokio::test]
async fn persistent_unauthorized_gives_up_after_one_renewal() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/oauth/token"))
            .respond_with(token("useless", 86400))
            .expect(2)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/abilities"))
            .respond_with(ResponseTemplate::new(401).set_body_string("Unauthorized"))
            .expect(2)
            .mount(&server)
            .await;
        let client = oauth_builder(&server).build().unwrap();
        let err = client.list_abilities().await.unwrap_err();
        assert!(err.is_unauthorized(), "{err:?}");
        assert_eq!(err.body().unwrap().raw.as_deref(), Some("Unauthorized"));
    })
    .await
}

#[tokio::test]
async fn bad_client_secret_is_a_typed_error() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/oauth/token"))
            .respond_with(ResponseTemplate::new(401).set_body_json(json!({
                "error": "invalid_client", "error_description": "Client authentication failed"
            })))
            .expect(1)
            .mount(&server)
            .await;
        let client = oauth_builder(&server).build().unwrap();
        let err = client.list_abilities().await.unwrap_err();
        assert!(
            matches!(&err, Error::OAuth(OAuthError::InvalidClient(m)) if m.contains("Client authentication failed")),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.contains("client id or client secret"), "{text}");
        assert!(!text.contains(CLIENT_SECRET));
        assert!(!format!("{err:?}").contains(CLIENT_SECRET));
    })
    .await
}

#[tokio::test]
async fn bad_scope_is_a_typed_error() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/oauth/token"))
            .respond_with(ResponseTemplate::new(400).set_body_json(json!({
                "error": "invalid_request", "error_description": "Invalid scope"
            })))
            .expect(1)
            .mount(&server)
            .await;
        let err = oauth_builder(&server)
            .build()
            .unwrap()
            .list_abilities()
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::OAuth(OAuthError::InvalidScope(_))),
            "{err:?}"
        );
    })
    .await
}

#[tokio::test]
async fn unreachable_token_endpoint_is_a_typed_error() {
    bounded(async {
        let server = MockServer::start().await;
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let client = oauth_builder(&server)
            .oauth_token_url(format!("http://127.0.0.1:{port}/oauth/token"))
            .build()
            .unwrap();
        let err = client.list_abilities().await.unwrap_err();
        assert!(
            matches!(err, Error::OAuth(OAuthError::Unreachable(_))),
            "{err:?}"
        );
        let health = client.token_health().await;
        assert_eq!(health.kind, TokenKind::Oauth);
        assert!(!health.valid);
        assert!(health.last_error.unwrap().contains("unreachable"));
    })
    .await
}

#[tokio::test]
async fn token_health_reports_expiry_without_secrets() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/oauth/token"))
            .respond_with(token("pdus+_0XBPWQQ_secret-access", 86400))
            .expect(1)
            .mount(&server)
            .await;
        let client = oauth_builder(&server).build().unwrap();
        let health = client.token_health().await;
        assert!(health.valid);
        assert_eq!(health.kind, TokenKind::Oauth);
        let exp = health.expires_at.unwrap();
        assert!(exp > chrono::Utc::now() + chrono::Duration::hours(23));
        assert!(health.granted_scope.unwrap().contains("services.read"));
        let shown = serde_json::to_string(&client.token_health().await).unwrap();
        assert!(!shown.contains("secret-access"));
        assert!(!format!("{client:?}").contains("secret-access"));
    })
    .await
}

#[tokio::test]
async fn api_token_health_tracks_unauthorized() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/abilities"))
            .respond_with(ResponseTemplate::new(401).set_body_json(json!({
                "error": {"message": "Authentication failed", "code": 2006}
            })))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/abilities"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"abilities": []})))
            .mount(&server)
            .await;
        let client = crate::helpers::token_client(&server);
        assert!(client.token_health().await.valid);
        let err = client.list_abilities().await.unwrap_err();
        assert!(err.is_unauthorized());
        let health = client.token_health().await;
        assert_eq!(health.kind, TokenKind::ApiToken);
        assert!(!health.valid);
        client.list_abilities().await.unwrap();
        assert!(client.token_health().await.valid);
    })
    .await
}

#[tokio::test]
async fn eu_oauth_scope_names_the_region() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/oauth/token"))
            .and(body_string_contains(
                "scope=as_account-eu.acme+services.read",
            ))
            .respond_with(token("eu-token", 86400))
            .expect(1)
            .mount(&server)
            .await;
        mount_abilities_for(&server, "eu-token", 1).await;
        let client = Client::builder(Credentials::OAuth(oauth_creds()))
            .region(Region::Eu)
            .api_base_url(server.uri())
            .oauth_token_url(format!("{}/oauth/token", server.uri()))
            .build()
            .unwrap();
        client.list_abilities().await.unwrap();
    })
    .await
}

#[tokio::test]
async fn failed_renewal_backs_off_and_keeps_serving_the_current_token() {
    let server = MockServer::start().await;
    let client = bounded(async {
        Mock::given(method("POST"))
            .and(path("/oauth/token"))
            .respond_with(token("tokenA", 3600))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/oauth/token"))
            .respond_with(ResponseTemplate::new(503))
            // Once past renew_at, once more after the back-off.
            .expect(2)
            .mount(&server)
            .await;
        mount_abilities_for(&server, "tokenA", 1 + 20 + 1).await;
        let client = oauth_builder(&server).build().unwrap();
        client.list_abilities().await.unwrap();
        client
    })
    .await;
    // Past renew_at (2880 s) with 700 s left: the back-off is min(30 s, 175 s).
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(2900)).await;
    tokio::time::resume();
    bounded(async {
        let calls = (0..20).map(|_| {
            let c = client.clone();
            tokio::spawn(async move { c.list_abilities().await })
        });
        for r in futures::future::join_all(calls).await {
            assert_eq!(r.unwrap().unwrap(), vec!["teams"]);
        }
        let token_hits = server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .filter(|r| r.url.path() == "/oauth/token")
            .count();
        assert_eq!(token_hits, 2, "one renewal attempt for 20 callers");
        let health = client.token_health().await;
        assert!(health.valid);
        assert!(health.last_error.unwrap().contains("unreachable"));
    })
    .await;
    // After the back-off the renewal is tried again (and fails again).
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(31)).await;
    tokio::time::resume();
    bounded(async { client.list_abilities().await.unwrap() }).await;
}

async fn token_posts(server: &MockServer) -> usize {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/oauth/token")
        .count()
}

#[tokio::test]
async fn token_endpoint_503_once_is_retried_inside_the_call() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/oauth/token"))
            .respond_with(ResponseTemplate::new(503))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/oauth/token"))
            .respond_with(token("tokenA", 3600))
            .expect(1)
            .mount(&server)
            .await;
        mount_abilities_for(&server, "tokenA", 1).await;
        let client = oauth_builder(&server).build().unwrap();
        // The retry waits for the token manager's back-off (1 s) instead of
        // getting the remembered 503 again.
        assert_eq!(client.list_abilities().await.unwrap(), vec!["teams"]);
        assert_eq!(token_posts(&server).await, 2);
    })
    .await
}

#[tokio::test]
async fn failed_fetches_are_shared_by_concurrent_retrying_callers() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/oauth/token"))
            .respond_with(ResponseTemplate::new(503).set_delay(Duration::from_millis(300)))
            .mount(&server)
            .await;
        let client = oauth_builder(&server)
            .retry_policy(pagerduty::RetryPolicy {
                max_attempts: 2,
                ..crate::helpers::fast_retry()
            })
            .build()
            .unwrap();
        // Ten callers, two attempts each: one fetch per back-off window,
        // shared by every caller waiting for it.
        let calls = (0..10).map(|_| {
            let c = client.clone();
            tokio::spawn(async move { c.list_abilities().await })
        });
        for r in futures::future::join_all(calls).await {
            let err = r.unwrap().unwrap_err();
            assert!(
                matches!(err, Error::OAuth(OAuthError::Unreachable(_))),
                "{err:?}"
            );
        }
        assert_eq!(token_posts(&server).await, 2, "one fetch per attempt round");
    })
    .await
}

#[tokio::test]
async fn failed_fetch_answers_a_caller_that_cannot_retry_at_once() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/oauth/token"))
            .respond_with(ResponseTemplate::new(503).set_delay(Duration::from_millis(300)))
            .expect(2) // one per client
            .mount(&server)
            .await;
        // No retries (or a deadline shorter than the 1 s back-off): the
        // remembered error is the answer, without a second 300 ms trip.
        let client = oauth_builder(&server)
            .retry_policy(pagerduty::RetryPolicy::none())
            .build()
            .unwrap();
        let err = client.list_abilities().await.unwrap_err();
        assert!(
            matches!(err, Error::OAuth(OAuthError::Unreachable(_))),
            "{err:?}"
        );
        let err = tokio::time::timeout(Duration::from_millis(150), client.list_abilities())
            .await
            .expect("the second caller waited for the token endpoint")
            .unwrap_err();
        assert!(
            matches!(err, Error::OAuth(OAuthError::Unreachable(_))),
            "{err:?}"
        );
        let short = oauth_builder(&server)
            .retry_policy(pagerduty::RetryPolicy {
                deadline: Duration::from_millis(500),
                ..crate::helpers::fast_retry()
            })
            .build()
            .unwrap();
        // A second client fetches once; its retry would end after its
        // deadline, so it stops at once instead of waiting.
        let started = tokio::time::Instant::now();
        let err = short.list_abilities().await.unwrap_err();
        assert!(
            matches!(err, Error::OAuth(OAuthError::Unreachable(_))),
            "{err:?}"
        );
        assert!(started.elapsed() < Duration::from_millis(900));
    })
    .await
}

#[tokio::test]
async fn huge_expires_in_is_clamped_to_a_day() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/oauth/token"))
            .respond_with(token("forever", u64::MAX))
            .expect(1)
            .mount(&server)
            .await;
        mount_abilities_for(&server, "forever", 1).await;
        let client = oauth_builder(&server).build().unwrap();
        client.list_abilities().await.unwrap();
        let exp = client.token_health().await.expires_at.unwrap();
        assert!(exp <= chrono::Utc::now() + chrono::Duration::hours(24));
        assert!(exp > chrono::Utc::now() + chrono::Duration::hours(23));
    })
    .await
}

#[tokio::test]
async fn unreadable_token_response_does_not_quote_the_token() {
    const FAKE: &str = "pdus+_0XBPWQQ_FAKE_ACCESS_TOKEN";
    bounded(async {
        for (body, expected) in [
            (format!("\"{FAKE}\""), "not a JSON object"),
            (format!("[\"{FAKE}\"]"), "not a JSON object"),
            (
                format!("{{\"access_token\": \"{FAKE}\" oops}}"),
                "JSON syntax error at line 1 column",
            ),
            (
                format!("{{\"access_token\": \"x\", \"expires_in\": \"{FAKE}\"}}"),
                "`expires_in` is not a number of seconds",
            ),
            (
                format!("{{\"token\": \"{FAKE}\"}}"),
                "has no `access_token`",
            ),
        ] {
            let server = MockServer::start().await;
            Mock::given(method("POST"))
                .and(path("/oauth/token"))
                .respond_with(
                    ResponseTemplate::new(200).set_body_raw(body.clone(), "application/json"),
                )
                .expect(1)
                .mount(&server)
                .await;
            let client = oauth_builder(&server)
                .retry_policy(pagerduty::RetryPolicy::none())
                .build()
                .unwrap();
            let err = client.list_abilities().await.unwrap_err();
            assert!(
                matches!(err, Error::OAuth(OAuthError::Other(_))),
                "{body}: {err:?}"
            );
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains("FAKE"), "{body}: the token leaked: {shown}");
            assert!(shown.contains(expected), "{body}: {shown}");
            let health = format!("{:?}", client.token_health().await);
            assert!(!health.contains("FAKE"), "{body}: {health}");
        }
    })
    .await
}

#[tokio::test]
async fn zero_expires_in_still_reuses_the_token_for_a_second() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/oauth/token"))
            .respond_with(token("tokenZ", 0))
            .expect(2)
            .mount(&server)
            .await;
        mount_abilities_for(&server, "tokenZ", 4).await;
        let client = oauth_builder(&server).build().unwrap();
        for _ in 0..3 {
            client.list_abilities().await.unwrap();
        }
        assert_eq!(token_posts(&server).await, 1, "not one token per call");
        // After the 1 s floor the token is renewed.
        tokio::time::pause();
        tokio::time::advance(Duration::from_millis(1100)).await;
        tokio::time::resume();
        client.list_abilities().await.unwrap();
        assert_eq!(token_posts(&server).await, 2);
    })
    .await
}
