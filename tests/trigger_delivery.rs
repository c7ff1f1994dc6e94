//! `POST /v1/incidents` against a fake Events host (wiremock) for the
//! answers the simulator does not give on demand: an attempt left
//! unanswered, a failed routing-key lookup, throttled follow-ups, replays
//! before the caller's limit, and what reaches the event. (The rest of
//! issue 6's list is in `trigger.rs`.)

use std::time::Duration;

use serde_json::{Value, json};
use sim::{FaultSpec, Faults};

use crate::helpers::{
    BASE_TOML, SimApp, TestApp, settings_from, sim_env, small_sim, spawn_with_sim, start_sim,
};
use crate::trigger::{
    ENQUEUE, enqueue_throttled_once, enqueued, post, trigger, triggerable_service,
};

/// The simulator for the REST API (routing-key lookups), but `events` (a
/// wiremock server) as the Events API host.
pub async fn spawn_with_events_host(events: &wiremock::MockServer, extra: &str) -> SimApp {
    let sim = start_sim(small_sim()).await;
    let mut env: Vec<(String, String)> = sim_env(&sim)
        .into_iter()
        .filter(|(name, _)| name != "DUTYCARD_PAGERDUTY__EVENTS_BASE_URL")
        .collect();
    env.push((
        "DUTYCARD_PAGERDUTY__EVENTS_BASE_URL".into(),
        format!("{}/v2", events.uri()),
    ));
    env.push(("DUTYCARD_PAGERDUTY__API_TOKEN".into(), sim.api_token()));
    let app = TestApp::spawn(settings_from(&[BASE_TOML, extra], &env)).await;
    SimApp { app, sim }
}

fn accepted_event() -> wiremock::ResponseTemplate {
    wiremock::ResponseTemplate::new(202).set_body_json(
        json!({"status": "success", "message": "Event processed", "dedup_key": "from-mock"}),
    )
}

#[tokio::test]
async fn an_unanswered_attempt_keeps_created_unknown_after_a_later_503() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let events = MockServer::start().await;
    // Attempt 1: no answer within pagerduty.request_timeout_ms (PagerDuty may
    // have accepted it); every later attempt: 503.
    Mock::given(method("POST"))
        .and(path(ENQUEUE))
        .respond_with(accepted_event().set_delay(Duration::from_secs(3)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&events)
        .await;
    Mock::given(method("POST"))
        .and(path(ENQUEUE))
        .respond_with(ResponseTemplate::new(503).set_body_json(json!({"status": "error"})))
        .with_priority(2)
        .mount(&events)
        .await;
    // The deadline leaves room for the timed-out attempt (300 ms), its
    // backoff and a 503 on a loaded machine; the routing key is read
    // first (a warm card) so the deadline is spent on delivery alone.
    let toml = "[pagerduty]\nrequest_timeout_ms = 300\n[trigger]\ndeadline_ms = 2500\n";
    let app = spawn_with_events_host(&events, toml).await;
    let (service_id, _) = triggerable_service(&app.sim);
    let card = app.app.get(&format!("/v1/cards/{service_id}")).await;
    assert_eq!(card.status(), 200);
    let body = json!({"service_id": service_id, "summary": "timeout then 503"});
    let response = trigger(&app.app, &body, &[]).await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    let error = &body["error"];
    assert_eq!(error["code"], "upstream_unavailable", "{body}");
    assert_eq!(error["details"]["created"], Value::Null, "unknown: {body}");
    assert_eq!(error["details"]["retry_safe"], true);
    let message = error["message"].as_str().unwrap();
    assert!(!message.contains("NOT created"), "{message}");
    assert!(message.contains("unknown whether"), "{message}");
    let sent = events.received_requests().await.unwrap_or_default();
    assert!(sent.len() >= 2, "retried after the timeout: {}", sent.len());
}

#[tokio::test]
async fn a_failed_lookup_of_the_routing_key_answers_not_created() {
    let app = spawn_with_sim(small_sim(), "").await;
    let (service_id, _) = triggerable_service(&app.sim);
    // Cold cache (no card loaded), and PagerDuty's REST API is down.
    app.sim.set_faults(Faults::on_route(
        "/services/{id}",
        FaultSpec {
            fail_next: 10_000,
            fail_status: 503,
            ..FaultSpec::default()
        },
    ));
    let body = json!({"service_id": service_id, "summary": "REST API down"});
    let response = trigger(&app.app, &body, &[]).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    let error = &body["error"];
    assert_eq!(error["code"], "upstream_unavailable", "{body}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("the incident was NOT created"),
        "{message}"
    );
    assert_eq!(error["details"]["created"], false, "{body}");
    assert_eq!(error["details"]["retry_safe"], true);
    assert_eq!(error["details"]["attempts"], 0);
    let dedup_key = error["details"]["dedup_key"].as_str().unwrap();
    assert!(dedup_key.starts_with("dutycard-"), "{body}");
    assert!(app.sim.stats().count("GET", "/services/{id}") >= 1);
    assert_eq!(enqueued(&app), 0, "nothing was sent");
}

#[tokio::test]
async fn a_failed_resolve_says_not_resolved_and_a_throttled_one_is_retried() {
    let app = spawn_with_sim(small_sim(), "[trigger]\ndeadline_ms = 1000\n").await;
    let (service_id, _) = triggerable_service(&app.sim);
    let body = json!({"service_id": service_id, "summary": "to resolve", "dedup_key": "res-1"});
    assert_eq!(trigger(&app.app, &body, &[]).await.status(), 202);
    let target = json!({"service_id": service_id});
    let resolve = "/v1/incidents/res-1/resolve";

    app.sim.set_faults(Faults::on_route(
        ENQUEUE,
        FaultSpec {
            fail_next: 10_000,
            fail_status: 503,
            ..FaultSpec::default()
        },
    ));
    let response = post(&app.app, resolve, &target, &[]).await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    let error = &body["error"];
    assert_eq!(error["code"], "upstream_unavailable", "{body}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("the incident was NOT resolved"),
        "{message}"
    );
    assert!(!message.contains("created"), "{message}");
    assert_eq!(error["details"]["retry_safe"], true);
    assert_eq!(error["details"]["dedup_key"], "res-1");

    // Throttled once, then accepted: the proxy retries and answers 202.
    app.sim.set_faults(enqueue_throttled_once());
    let before = app.sim.stats().by_status("POST", ENQUEUE, 429);
    let response = post(&app.app, resolve, &target, &[]).await;
    assert_eq!(response.status(), 202);
    assert_eq!(app.sim.stats().by_status("POST", ENQUEUE, 429), before + 1);
    let account = app.sim.account();
    let states: Vec<_> = account
        .incidents
        .iter()
        .filter(|i| i.incident_key == "res-1")
        .map(|i| i.status.as_str())
        .collect();
    assert_eq!(states, ["resolved"]);
}

#[tokio::test]
async fn a_stored_answer_is_replayed_before_the_caller_rate_limit() {
    let app = spawn_with_sim(small_sim(), "[trigger]\nper_caller_per_minute = 1\n").await;
    let (service_id, _) = triggerable_service(&app.sim);
    let body = json!({"service_id": service_id, "summary": "lost 202"});
    let header = [("Idempotency-Key", "lost-202")];
    let first = trigger(&app.app, &body, &header).await;
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.unwrap();

    let again = trigger(&app.app, &body, &header).await;
    assert_eq!(again.status(), 202, "a replay, not a 429");
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    assert_eq!(enqueued(&app), 1);

    // The limit itself is in force for a new request.
    let other = json!({"service_id": service_id, "summary": "another"});
    let response = trigger(&app.app, &other, &[]).await;
    assert_eq!(response.status(), 429);
    assert_eq!(enqueued(&app), 1);
}

#[tokio::test]
async fn client_url_and_the_default_source_reach_the_event() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer};

    let events = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(ENQUEUE))
        .respond_with(accepted_event())
        .mount(&events)
        .await;
    let configured = "https://portal.example/catalog";
    let toml = format!("[trigger]\nclient_url = \"{configured}\"\n");
    let app = spawn_with_events_host(&events, &toml).await;
    let (service_id, _) = triggerable_service(&app.sim);
    let page = "https://portal.example/catalog/default/component/checkout";
    let requests = [
        // client_url from the request; source defaults to it.
        json!({"service_id": service_id, "summary": "a", "client_url": page}),
        // client_url from trigger.client_url; source defaults to it.
        json!({"service_id": service_id, "summary": "b"}),
        // An explicit source wins.
        json!({"service_id": service_id, "summary": "c", "source": "checkout-api"}),
    ];
    for request in &requests {
        assert_eq!(trigger(&app.app, request, &[]).await.status(), 202);
    }
    let sent: Vec<Value> = events
        .received_requests()
        .await
        .expect("recording is on")
        .iter()
        .map(|r| serde_json::from_slice(&r.body).expect("a JSON event"))
        .collect();
    assert_eq!(sent.len(), 3, "{sent:?}");
    let field = |i: usize, pointer: &str| sent[i].pointer(pointer).cloned();
    assert_eq!(field(0, "/client_url"), Some(json!(page)));
    assert_eq!(field(0, "/payload/source"), Some(json!(page)));
    assert_eq!(field(1, "/client_url"), Some(json!(configured)));
    assert_eq!(field(1, "/payload/source"), Some(json!(configured)));
    assert_eq!(field(2, "/client_url"), Some(json!(configured)));
    assert_eq!(field(2, "/payload/source"), Some(json!("checkout-api")));
    for event in &sent {
        assert_eq!(event["client"], "dutycard", "{event}");
        assert_eq!(event["event_action"], "trigger");
    }
}
