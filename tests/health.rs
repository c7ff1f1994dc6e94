//! `/healthz` and `/readyz`.

use serde_json::Value;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{TestApp, settings};

async fn app_against(pagerduty: &MockServer) -> TestApp {
    let uri = pagerduty.uri();
    TestApp::spawn(settings(
        "",
        &[("DUTYCARD_PAGERDUTY__API_BASE_URL", uri.as_str())],
    ))
    .await
}

#[tokio::test]
async fn healthz_answers_ok() {
    let app = TestApp::spawn(settings("", &[])).await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "ok"}));
}

#[tokio::test]
async fn readyz_proves_credentials_once_and_reuses_the_result() {
    let pagerduty = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/abilities"))
        .and(header("authorization", "Token token=test-token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"abilities": ["teams", "urgencies"]})),
        )
        .expect(1)
        .mount(&pagerduty)
        .await;
    let app = app_against(&pagerduty).await;

    for _ in 0..3 {
        let response = app.get("/readyz").await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["ready"], true, "{body}");
        assert_eq!(body["pagerduty"]["ok"], true);
        assert_eq!(body["token"]["kind"], "api_token");
        assert_eq!(body["token"]["valid"], true);
    }
}

#[tokio::test]
async fn readyz_is_503_when_pagerduty_rejects_the_credentials() {
    let pagerduty = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/abilities"))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            serde_json::json!({"error": {"message": "Authentication failed", "code": 2006}}),
        ))
        .mount(&pagerduty)
        .await;
    let app = app_against(&pagerduty).await;

    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["ready"], false);
    assert_eq!(body["pagerduty"]["ok"], false);
    assert_eq!(body["pagerduty"]["credentials_proven"], false);
    let error = body["pagerduty"]["error"].as_str().unwrap();
    assert!(!error.contains("test-token"), "token leaked: {error}");
}

#[tokio::test]
async fn readyz_reports_oauth_token_health_against_the_simulator() {
    let sim = crate::helpers::start_sim(crate::helpers::small_sim()).await;
    let (client_id, client_secret) = sim.oauth_client();
    let oauth = format!(
        "[pagerduty.oauth]\nclient_id = \"{client_id}\"\nclient_secret = \"{client_secret}\"\nsubdomain = \"acme\"\nscopes = [\"abilities.read\", \"services.read\"]\n"
    );
    let env = crate::helpers::sim_env(&sim);
    let app = TestApp::spawn(crate::helpers::settings_from(
        &[crate::helpers::BASE_NO_CREDENTIALS, &oauth],
        &env,
    ))
    .await;

    let response = app.get("/readyz").await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["ready"], true, "{body}");
    assert_eq!(body["token"]["kind"], "oauth");
    assert_eq!(body["token"]["valid"], true);
    assert!(body["token"]["expires_at"].is_string(), "{body}");
    assert!(!body.to_string().contains(&client_secret));
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let pagerduty = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/abilities"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"abilities": []}))
                .set_delay(std::time::Duration::from_millis(300)),
        )
        .mount(&pagerduty)
        .await;
    let app = app_against(&pagerduty).await;
    let in_flight = tokio::spawn({
        let (http, url) = (app.http.clone(), app.url("/readyz"));
        async move { http.get(url).send().await }
    });
    // Wait (bounded) until the request reached PagerDuty, i.e. is in flight.
    tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while pagerduty
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty()
        {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the request reached PagerDuty");

    app.stop(true).await;
    let response = in_flight
        .await
        .unwrap()
        .expect("in-flight request answered");
    assert_eq!(response.status(), 200);
    // Stopped: new connections are refused.
    assert!(app.http.get(app.url("/healthz")).send().await.is_err());
}
