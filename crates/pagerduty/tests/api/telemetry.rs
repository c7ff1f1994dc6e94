//! Each upstream call is a tracing span with method, path template, status,
//! attempt and elapsed time; no secret reaches the logs (of this test or of
//! any other test in the binary: the capture is global).

use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::fixtures;
use crate::helpers::{
    API_TOKEN, CLIENT_SECRET, ROUTING_KEY, bounded, logs, oauth_builder, token_client,
};

const KEY: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
const ACCESS: &str = "pdus+_0XBPWQQ_access-token-value";

#[tokio::test]
async fn spans_carry_call_fields_and_no_secrets() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/services"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "services": [fixtures::service("PSVC001", "Payments API", KEY)],
                "limit": 100, "offset": 0, "more": false
            })))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/oauth/token"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "access_token": ACCESS, "token_type": "bearer", "expires_in": 86400
            })))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v2/enqueue"))
            .respond_with(ResponseTemplate::new(202).set_body_json(json!({
                "status": "success", "message": "Event processed", "dedup_key": "d"
            })))
            .mount(&server)
            .await;
        let token = token_client(&server);
        let found = token.find_service_by_integration_key(KEY).await.unwrap();
        assert!(found.is_some());
        let event = pagerduty::Event::trigger(
            ROUTING_KEY,
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
        token.enqueue(&event).await.unwrap();
        let oauth = oauth_builder(&server).build().unwrap();
        oauth.list_all_services(&Default::default()).await.unwrap();
    })
    .await;
    let logs = logs();
    assert!(logs.contains("pagerduty.request"), "{logs}");
    assert!(logs.contains("endpoint=\"/services\""), "{logs}");
    assert!(logs.contains("endpoint=\"/enqueue\""), "{logs}");
    assert!(logs.contains("method=\"GET\""), "{logs}");
    assert!(logs.contains("status=200"), "{logs}");
    assert!(logs.contains("status=202"), "{logs}");
    assert!(logs.contains("attempt=1"), "{logs}");
    assert!(logs.contains("elapsed_ms="), "{logs}");
    assert!(logs.contains("pagerduty.oauth_token"), "{logs}");
    for secret in [KEY, API_TOKEN, CLIENT_SECRET, ACCESS, ROUTING_KEY] {
        assert!(
            !logs.contains(secret),
            "`{secret}` leaked into logs:\n{logs}"
        );
    }
}
