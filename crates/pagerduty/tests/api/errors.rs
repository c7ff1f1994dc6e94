//! Error mapping: PagerDuty's error bodies are kept and parsed loosely.

use pagerduty::{Error, PdErrorBody};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{API_TOKEN, bounded, closed_port, token_client};

#[tokio::test]
async fn missing_scopes_forbidden() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/standards/scores/technical_services/PSVC001"))
            .respond_with(ResponseTemplate::new(403).set_body_json(json!({
                "error": {"message": "Token missing required scopes", "required_scopes": "standards.read"}
            })))
            .expect(1)
            .mount(&server)
            .await;
        let err = token_client(&server)
            .service_standards("PSVC001")
            .await
            .unwrap_err();
        assert!(err.is_forbidden());
        assert!(err.is_missing_scopes(), "{err:?}");
        let body = err.body().unwrap();
        assert_eq!(body.required_scopes(), Some("standards.read"));
        assert_eq!(body.code, None);
        assert!(err.to_string().contains("missing required scopes"));
    })
    .await
}

#[tokio::test]
async fn plain_forbidden_is_not_missing_scopes() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/users/PUSER01"))
            .respond_with(
                ResponseTemplate::new(403)
                    .set_body_json(json!({"error": {"message": "Access Denied", "code": 2010}})),
            )
            .mount(&server)
            .await;
        let err = token_client(&server).get_user("PUSER01").await.unwrap_err();
        assert!(err.is_forbidden() && !err.is_missing_scopes(), "{err:?}");
    })
    .await
}

#[tokio::test]
async fn unauthorized_with_a_non_json_body() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/abilities"))
            .respond_with(ResponseTemplate::new(401).set_body_string("<html>401</html>"))
            .expect(1)
            .mount(&server)
            .await;
        let err = token_client(&server).list_abilities().await.unwrap_err();
        assert!(err.is_unauthorized());
        assert_eq!(err.body().unwrap().raw.as_deref(), Some("<html>401</html>"));
        assert!(!err.to_string().contains(API_TOKEN));
    })
    .await
}

#[tokio::test]
async fn decode_errors_name_the_json_path() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/incidents"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "incidents": [
                    crate::fixtures::incident("PI1", 1, "triggered"),
                    {"id": "PI2", "status": "triggered", "created_at": "not a date"}
                ],
                "limit": 25, "offset": 0, "more": false
            })))
            .mount(&server)
            .await;
        let err = token_client(&server)
            .list_incidents(&Default::default())
            .await
            .unwrap_err();
        match err {
            Error::Decode { path, .. } => assert_eq!(path, "incidents[1].created_at"),
            other => panic!("expected Decode, got {other:?}"),
        }
    })
    .await
}

#[test]
fn error_bodies_parse_loosely() {
    let b = PdErrorBody::parse(b"");
    assert_eq!(b, PdErrorBody::default());
    let b = PdErrorBody::parse(br#"{"error":{"message":"Invalid Input Provided","code":2001,"errors":{"start":["must be before end"]}}}"#);
    assert_eq!(b.code, Some(2001));
    assert_eq!(b.errors, vec!["start: must be before end"]);
    let b = PdErrorBody::parse(br#"{"code":2100,"message":"Not Found","errors":["Not Found"]}"#);
    assert_eq!(b.code, Some(2100));
    assert_eq!(b.message.as_deref(), Some("Not Found"));
    let b = PdErrorBody::parse(b"not json at all");
    assert_eq!(b.raw.as_deref(), Some("not json at all"));
    assert_eq!(b.message, None);
    let long = "x".repeat(10_000);
    assert_eq!(PdErrorBody::parse(long.as_bytes()).raw.unwrap().len(), 2048);
}

/// Every message of an error's `source()` chain, the error itself first.
fn chain(err: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut out = vec![err.to_string()];
    let mut src = err.source();
    while let Some(s) = src {
        out.push(s.to_string());
        src = s.source();
    }
    out
}

#[tokio::test]
async fn network_errors_keep_their_typed_cause_without_the_url() {
    bounded(async {
        let key = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
        let client = pagerduty::Client::builder(pagerduty::Credentials::ApiToken(API_TOKEN.into()))
            .api_base_url(format!("http://127.0.0.1:{}", closed_port()))
            .retry_policy(pagerduty::RetryPolicy::none())
            .build()
            .unwrap();
        // The key goes into the query string of the URL.
        let err = client
            .find_service_by_integration_key(key)
            .await
            .unwrap_err();
        let Error::Connect(cause) = &err else {
            panic!("{err:?}");
        };
        let reqwest = cause.reqwest_error().expect("the reqwest error is kept");
        assert!(reqwest.is_connect());
        assert_eq!(
            reqwest.url(),
            None,
            "the URL (and the key in it) is dropped"
        );
        // The chain: Error -> TransportError -> reqwest::Error -> ...
        let messages = chain(&err);
        assert!(messages.len() >= 3, "{messages:?}");
        assert_eq!(messages[1], cause.message());
        assert_eq!(messages[2], reqwest.to_string());
        // Display is as before: the whole chain of the cause on one line.
        assert_eq!(
            messages[0],
            format!(
                "could not connect to PagerDuty; nothing was sent: {}",
                messages[2..].join(": ")
            )
        );
        for m in messages.iter().chain([&format!("{err:?}")]) {
            assert!(!m.contains("0a1b2c3d"), "the key leaked: {m}");
        }
    })
    .await
}

fn unreachable_cause(err: &Error) -> &pagerduty::TransportError {
    match err {
        Error::OAuth(pagerduty::OAuthError::Unreachable(cause)) => cause,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn oauth_unreachable_keeps_its_cause() {
    bounded(async {
        let server = MockServer::start().await;
        let client = crate::helpers::oauth_builder(&server)
            .oauth_token_url(format!("http://127.0.0.1:{}/oauth/token", closed_port()))
            .retry_policy(pagerduty::RetryPolicy::none())
            .build()
            .unwrap();
        let err = client.list_abilities().await.unwrap_err();
        let cause = unreachable_cause(&err);
        assert!(cause.reqwest_error().is_some_and(|e| e.is_connect()));
        let messages = chain(&err);
        // Error -> OAuthError -> TransportError -> reqwest::Error -> ...
        assert!(messages.len() >= 4, "{messages:?}");
        assert!(messages[0].starts_with("PagerDuty OAuth: the token endpoint is unreachable: "));
        assert!(!format!("{messages:?} {err:?}").contains(crate::helpers::CLIENT_SECRET));

        // A 5xx of the token endpoint has no network cause.
        Mock::given(method("POST"))
            .and(path("/oauth/token"))
            .respond_with(ResponseTemplate::new(503))
            .mount(&server)
            .await;
        let client = crate::helpers::oauth_builder(&server)
            .retry_policy(pagerduty::RetryPolicy::none())
            .build()
            .unwrap();
        let err = client.list_abilities().await.unwrap_err();
        let cause = unreachable_cause(&err);
        assert!(cause.reqwest_error().is_none());
        assert_eq!(cause.message(), "HTTP 503");
        assert_eq!(
            err.to_string(),
            "PagerDuty OAuth: the token endpoint is unreachable: HTTP 503"
        );
    })
    .await
}
