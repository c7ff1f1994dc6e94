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
        .and(path("/services/PSLOW01"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(serde_json::json!({"error": {"message": "Not Found", "code": 2100}}))
                .set_delay(std::time::Duration::from_millis(300)),
        )
        .mount(&pagerduty)
        .await;
    let app = app_against(&pagerduty).await;
    let in_flight = tokio::spawn({
        let (http, url) = (app.http.clone(), app.url("/v1/cards/PSLOW01"));
        async move { http.get(url).send().await }
    });
    // Wait (bounded) until the request reached PagerDuty, i.e. is in flight.
    tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while !pagerduty
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .any(|r| r.url.path() == "/services/PSLOW01")
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
    assert_eq!(response.status(), 404);
    // Stopped: new connections are refused.
    assert!(app.http.get(app.url("/healthz")).send().await.is_err());
}

/// A slow PagerDuty never makes /readyz slow (Kubernetes probes give up
/// after about a second): it answers at once from what it knows, and a
/// check that hangs is reported as such.
#[tokio::test]
async fn readyz_answers_at_once_when_pagerduty_hangs_and_reports_the_stuck_check() {
    let pagerduty = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/abilities"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"abilities": []}))
                .set_delay(std::time::Duration::from_secs(30)),
        )
        .mount(&pagerduty)
        .await;
    let uri = pagerduty.uri();
    let app = TestApp::spawn(settings(
        "[pagerduty]\nrequest_timeout_ms = 20000\nretry_deadline_ms = 20000\n",
        &[("DUTYCARD_PAGERDUTY__API_BASE_URL", uri.as_str())],
    ))
    .await;
    let probe = || {
        app.http
            .get(app.url("/readyz"))
            .timeout(std::time::Duration::from_secs(1))
            .send()
    };
    let response = probe().await.expect("answered within a second");
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    let error = body["pagerduty"]["error"].as_str().unwrap();
    assert!(error.contains("has not finished"), "{body}");
    // The same check is still running (one call to PagerDuty, not one per
    // probe); once it has run for 3 s it is reported as stuck.
    let stuck = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let body: Value = probe().await.unwrap().json().await.unwrap();
            let error = body["pagerduty"]["error"].as_str().unwrap_or("").to_owned();
            if error.contains("not finished after") {
                return error;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("the stuck check is reported");
    assert!(stuck.contains("not answering"), "{stuck}");
    let calls = pagerduty.received_requests().await.unwrap();
    assert_eq!(
        calls
            .iter()
            .filter(|r| r.url.path() == "/abilities")
            .count(),
        1
    );
}

/// Two accounts, each its own simulator; `corp`'s token is wrong when
/// `corp_token` says so.
async fn two_account_app(corp_token: Option<&str>) -> (TestApp, sim::SimHandle, sim::SimHandle) {
    let acme = crate::helpers::start_sim(crate::helpers::small_sim()).await;
    let corp = crate::helpers::start_sim(sim::SimConfig {
        seed: 8,
        api_tokens: vec![sim::SimToken::full("corp-valid-token")],
        ..crate::helpers::small_sim()
    })
    .await;
    let mut toml = String::new();
    for (id, sim, token, is_default) in [
        ("acme", &acme, acme.api_token().to_string(), true),
        (
            "corp",
            &corp,
            corp_token.unwrap_or("corp-valid-token").to_owned(),
            false,
        ),
    ] {
        toml.push_str(&format!(
            "[pagerduty.accounts.{id}]\napi_token = \"{token}\"\napi_base_url = \"{}\"\nevents_base_url = \"{}\"\nis_default = {is_default}\n",
            sim.base_url(),
            sim.events_base_url(),
        ));
    }
    let app = TestApp::spawn(crate::helpers::settings_from(
        &[crate::helpers::BASE_NO_CREDENTIALS, &toml],
        &[],
    ))
    .await;
    (app, acme, corp)
}

#[tokio::test]
async fn readyz_checks_every_account() {
    let (app, _acme, _corp) = two_account_app(None).await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["ready"], true, "{body}");
    for id in ["acme", "corp"] {
        assert_eq!(body["accounts"][id]["ready"], true, "{id}: {body}");
        assert_eq!(
            body["accounts"][id]["pagerduty"]["ok"], true,
            "{id}: {body}"
        );
    }

    // One account with a rejected token: not ready, and it says which.
    let (app, _acme, _corp) = two_account_app(Some("wrong-token-for-corp")).await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["ready"], false, "{body}");
    assert_eq!(body["accounts"]["acme"]["ready"], true, "{body}");
    assert_eq!(body["accounts"]["corp"]["ready"], false, "{body}");
    assert_eq!(body["accounts"]["corp"]["pagerduty"]["ok"], false, "{body}");
    // The top-level check is the default account's.
    assert_eq!(body["pagerduty"]["ok"], true, "{body}");
    assert!(!body.to_string().contains("wrong-token-for-corp"), "{body}");
}

/// The `account` label value of every `dutycard_cache_<counter>_total`
/// series, with its value.
fn cache_series(metrics: &str, counter: &str) -> Vec<(String, u64)> {
    let family = format!("dutycard_cache_{counter}_total{{");
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix(family.as_str()))
        .filter_map(|rest| {
            let account = rest
                .strip_prefix("account=\"")?
                .split('"')
                .next()?
                .to_owned();
            let n = rest.rsplit(' ').next()?.parse().ok()?;
            Some((account, n))
        })
        .collect()
}

#[tokio::test]
async fn cache_metrics_carry_every_account() {
    let (app, acme, _corp) = two_account_app(None).await;
    let id = acme.account().services[0].id.clone();
    assert_eq!(app.get(&format!("/v1/cards/{id}")).await.status(), 200);
    let metrics = app.metrics().await;
    let misses = cache_series(&metrics, "misses");
    let sum = |account: &str| -> u64 {
        misses
            .iter()
            .filter(|(a, _)| a == account)
            .map(|(_, n)| n)
            .sum()
    };
    assert!(
        misses.iter().any(|(a, _)| a == "corp"),
        "no corp series:\n{metrics}"
    );
    // The card was the default account's (acme): only its caches missed.
    assert!(sum("acme") > 0, "{metrics}");
    assert_eq!(sum("corp"), 0, "{metrics}");
}
