//! PagerDuty failures map to our statuses, with JSON bodies (simulator faults).

use sim::{FaultSpec, Faults, SimConfig, SimToken};

use crate::helpers::{error_of, small_sim, spawn_with_sim, spawn_with_sim_token};

fn failing(status: u16) -> SimConfig {
    SimConfig {
        faults: Faults {
            global: FaultSpec {
                fail_next: 1000,
                fail_status: status,
                rate_limit_reset_secs: 7,
                ..FaultSpec::default()
            },
            per_route: Vec::new(),
            rate_limit_per_minute: None,
        },
        ..small_sim()
    }
}

#[tokio::test]
async fn pagerduty_rejecting_our_credentials_is_a_502_never_a_401() {
    let app = spawn_with_sim_token(
        SimConfig {
            api_tokens: vec![SimToken::full("the-only-valid-token")],
            ..small_sim()
        },
        "",
        Some("a-wrong-token"),
    )
    .await;
    let id = app.sim.account().services[0].id.clone();
    let response = app.app.get(&format!("/v1/cards/{id}")).await;
    assert_eq!(response.status(), 502);
    let body = response.text().await.unwrap();
    assert!(!body.contains("a-wrong-token"), "token leaked: {body}");
    let value: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(value["error"]["code"], "upstream_unauthorized", "{body}");

    // Readiness says so too.
    let response = app.app.get("/readyz").await;
    assert_eq!(response.status(), 503);
}

#[tokio::test]
async fn rate_limiting_without_stale_data_is_a_503_with_retry_after() {
    let app = spawn_with_sim(failing(429), "").await;
    let id = app.sim.account().services[0].id.clone();
    let response = app.app.get(&format!("/v1/cards/{id}")).await;
    assert_eq!(response.status(), 503);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // The simulator's ratelimit-reset is 7 s (`failing`): never more, and
    // at least 1.
    assert!((1..=7).contains(&retry_after), "Retry-After {retry_after}");
    let (code, _) = error_of(response).await;
    assert_eq!(code, "upstream_rate_limited");
}

#[tokio::test]
async fn pagerduty_5xx_is_a_502() {
    let app = spawn_with_sim(failing(500), "").await;
    let id = app.sim.account().services[0].id.clone();
    let response = app.app.get(&format!("/v1/cards/{id}")).await;
    assert_eq!(response.status(), 502);
    let (code, _) = error_of(response).await;
    assert_eq!(code, "upstream_unavailable");
}

#[tokio::test]
async fn a_pagerduty_timeout_is_a_504() {
    let config = SimConfig {
        faults: Faults {
            global: FaultSpec {
                timeout_next: 1000,
                ..FaultSpec::default()
            },
            per_route: Vec::new(),
            rate_limit_per_minute: None,
        },
        ..small_sim()
    };
    let app = spawn_with_sim(
        config,
        "[pagerduty]\nrequest_timeout_ms = 200\nretry_deadline_ms = 400",
    )
    .await;
    let id = app.sim.account().services[0].id.clone();
    let response = app.app.get(&format!("/v1/cards/{id}")).await;
    assert_eq!(response.status(), 504);
    let (code, _) = error_of(response).await;
    assert_eq!(code, "upstream_timeout");
}

#[tokio::test]
async fn every_request_is_answered_within_the_deadline() {
    let config = SimConfig {
        faults: Faults {
            global: FaultSpec {
                latency_ms: 3000,
                ..FaultSpec::default()
            },
            per_route: Vec::new(),
            rate_limit_per_minute: None,
        },
        ..small_sim()
    };
    let app = spawn_with_sim(
        config,
        "[server]\nrequest_deadline_ms = 300\n[trigger]\ndeadline_ms = 300",
    )
    .await;
    let id = app.sim.account().services[0].id.clone();
    let started = std::time::Instant::now();
    let response = app.app.get(&format!("/v1/cards/{id}")).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert_eq!(response.status(), 504);
    let (code, details) = error_of(response).await;
    assert_eq!(code, "deadline_exceeded");
    assert_eq!(details["deadline_ms"], 300);
}

#[tokio::test]
async fn a_token_missing_scopes_is_a_502_naming_it() {
    let app = spawn_with_sim_token(
        SimConfig {
            api_tokens: vec![SimToken::scoped("narrow-token", &["abilities.read"])],
            ..small_sim()
        },
        "",
        Some("narrow-token"),
    )
    .await;
    let id = app.sim.account().services[0].id.clone();
    let response = app.app.get(&format!("/v1/cards/{id}")).await;
    assert_eq!(response.status(), 502);
    let (code, details) = error_of(response).await;
    assert_eq!(code, "upstream_forbidden");
    assert_eq!(details["missing_scopes"], true);
    // The credentials themselves work: the instance is ready, cards are not.
    assert_eq!(app.app.get("/readyz").await.status(), 200);
}

#[tokio::test]
async fn malformed_pagerduty_answers_are_a_502() {
    let config = SimConfig {
        faults: Faults {
            global: FaultSpec {
                malformed_next: 1000,
                ..FaultSpec::default()
            },
            per_route: Vec::new(),
            rate_limit_per_minute: None,
        },
        ..small_sim()
    };
    let app = spawn_with_sim(config, "").await;
    let id = app.sim.account().services[0].id.clone();
    let response = app.app.get(&format!("/v1/cards/{id}")).await;
    assert_eq!(response.status(), 502);
    let (code, _) = error_of(response).await;
    assert_eq!(code, "upstream_unavailable");
}
