//! Error mapping: PagerDuty's error bodies are kept and parsed loosely.

use pagerduty::{Error, PdErrorBody};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{API_TOKEN, bounded, token_client};

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
