//! `POST /v1/incidents` (+ acknowledge/resolve) against the simulator:
//! the "Done when" list of issue 6.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::{Value, json};
use sim::{FaultSpec, Faults};

use crate::auth::{TOKEN, static_auth_toml};
use crate::helpers::{SimApp, TestApp, error_of, small_sim, spawn_with_sim};

/// The Events API route template the simulator counts.
pub const ENQUEUE: &str = "/v2/enqueue";

/// A service with an Events API v2 integration (and a key), that is not
/// disabled (the simulator, like PagerDuty, drops events for those).
pub fn triggerable_service(sim: &sim::SimHandle) -> (String, String) {
    let account = sim.account();
    account
        .services
        .iter()
        .filter(|s| s.status != "disabled")
        .find_map(|s| {
            s.integrations
                .iter()
                .find(|i| i.kind == "events_api_v2_inbound_integration")
                .and_then(|i| i.integration_key.clone())
                .map(|key| (s.id.clone(), key))
        })
        .expect("the seeded account has a triggerable service")
}

pub async fn post(
    app: &TestApp,
    path: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = app.http.post(app.url(path)).json(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("request sent")
}

pub async fn trigger(app: &TestApp, body: &Value, headers: &[(&str, &str)]) -> reqwest::Response {
    post(app, "/v1/incidents", body, headers).await
}

/// The next Events API call is a 429 with no wait; later ones pass.
pub(crate) fn enqueue_throttled_once() -> Faults {
    Faults::on_route(
        ENQUEUE,
        FaultSpec {
            fail_next: 1,
            fail_status: 429,
            rate_limit_reset_secs: 0,
            ..FaultSpec::default()
        },
    )
}

pub(crate) fn enqueued(sim: &SimApp) -> u64 {
    sim.sim.stats().count("POST", ENQUEUE)
}

#[tokio::test]
async fn a_trigger_by_service_id_creates_the_incident_and_the_next_card_shows_it() {
    let app = spawn_with_sim(small_sim(), "").await;
    let (service_id, _) = triggerable_service(&app.sim);
    let card_path = format!("/v1/cards/{service_id}?incidents=25");
    let before: Value = app.app.get(&card_path).await.json().await.unwrap();
    assert!(before["incidents"]["data"].is_object(), "{before}");

    let summary = "Checkout is failing for EU users (e2e)";
    let response = trigger(
        &app.app,
        &json!({"service_id": service_id, "summary": summary}),
        &[],
    )
    .await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "success");
    assert_eq!(body["created"], true, "{body}");
    assert_eq!(body["service_id"], service_id.as_str());
    let dedup_key = body["dedup_key"].as_str().unwrap().to_owned();
    assert!(dedup_key.starts_with("dutycard-"), "{body}");
    assert_eq!(enqueued(&app), 1);

    // The simulator opened it on the right service...
    let account = app.sim.account();
    let incident = account
        .incidents
        .iter()
        .find(|i| i.incident_key == dedup_key)
        .expect("an incident with our dedup_key");
    assert_eq!(incident.service_id, service_id);
    assert_eq!(incident.title, summary);
    assert_eq!(incident.urgency, "high", "default severity error");

    // ...and the next card shows it although incidents were cached.
    let after: Value = app.app.get(&card_path).await.json().await.unwrap();
    let newest = after["incidents"]["data"]["newest"].as_array().unwrap();
    assert!(
        newest.iter().any(|i| i["title"] == summary),
        "card after the trigger: {}",
        after["incidents"]
    );

    // Acknowledge and resolve by dedup_key.
    let target = json!({"service_id": service_id});
    let response = post(
        &app.app,
        &format!("/v1/incidents/{dedup_key}/acknowledge"),
        &target,
        &[],
    )
    .await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    assert!(body.get("created").is_none(), "not a creation: {body}");
    let status = |app: &SimApp| {
        app.sim
            .account()
            .incidents
            .iter()
            .find(|i| i.incident_key == dedup_key)
            .map(|i| i.status.clone())
    };
    assert_eq!(status(&app).as_deref(), Some("acknowledged"));
    let response = post(
        &app.app,
        &format!("/v1/incidents/{dedup_key}/resolve"),
        &target,
        &[],
    )
    .await;
    assert_eq!(response.status(), 202);
    assert_eq!(status(&app).as_deref(), Some("resolved"));
    let card: Value = app.app.get(&card_path).await.json().await.unwrap();
    let newest = card["incidents"]["data"]["newest"].as_array().unwrap();
    assert!(
        newest.iter().all(|i| i["title"] != summary),
        "resolved: {card}"
    );
}

#[tokio::test]
async fn a_trigger_by_integration_key_is_accepted_only_for_known_keys() {
    let app = spawn_with_sim(small_sim(), "").await;
    let (service_id, key) = triggerable_service(&app.sim);
    let response = trigger(
        &app.app,
        &json!({"integration_key": key, "summary": "by key"}),
        &[],
    )
    .await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["service_id"], service_id.as_str());

    // A well-formed key of no known service: refused, nothing sent.
    let response = trigger(
        &app.app,
        &json!({"integration_key": "0123456789abcdef0123456789abcdef", "summary": "x"}),
        &[],
    )
    .await;
    assert_eq!(response.status(), 403);
    let (code, details) = error_of(response).await;
    assert_eq!(code, "integration_key_not_allowed");
    assert_eq!(details["field"], "integration_key");
    assert_eq!(enqueued(&app), 1);
}

#[tokio::test]
async fn a_repeated_idempotency_key_enqueues_once() {
    let app = spawn_with_sim(small_sim(), "").await;
    let (service_id, _) = triggerable_service(&app.sim);
    let body = json!({"service_id": service_id, "summary": "double click"});
    let header = [("Idempotency-Key", "click-1")];

    let first = trigger(&app.app, &body, &header).await;
    assert_eq!(first.status(), 202);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    let second = trigger(&app.app, &body, &header).await;
    assert_eq!(second.status(), 202);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    let second: Value = second.json().await.unwrap();
    assert_eq!(first, second);
    assert_eq!(enqueued(&app), 1);

    // The same key for another request is a client bug: 422, nothing sent.
    let other = json!({"service_id": service_id, "summary": "something else"});
    let response = trigger(&app.app, &other, &header).await;
    assert_eq!(response.status(), 422);
    let (code, _) = error_of(response).await;
    assert_eq!(code, "idempotency_key_reused");

    // A bare dedup_key is not a stored answer: the repeat is sent, and
    // PagerDuty merges it into the open alert (one incident).
    let with_dedup = json!({"service_id": service_id, "summary": "s", "dedup_key": "checkout-eu"});
    assert_eq!(trigger(&app.app, &with_dedup, &[]).await.status(), 202);
    let again = trigger(&app.app, &with_dedup, &[]).await;
    assert_eq!(again.status(), 202);
    assert!(again.headers().get("idempotent-replayed").is_none());
    assert_eq!(enqueued(&app), 3);
    let account = app.sim.account();
    let merged = account
        .incidents
        .iter()
        .filter(|i| i.incident_key == "checkout-eu");
    assert_eq!(merged.count(), 1);
}

#[tokio::test]
async fn an_identical_trigger_without_keys_merges_into_the_same_alert() {
    let app = spawn_with_sim(small_sim(), "").await;
    let (service_id, _) = triggerable_service(&app.sim);
    // Neither Idempotency-Key nor dedup_key (what the Backstage route sends).
    let body = json!({"service_id": service_id, "summary": "retried by a proxy"});
    let first: Value = trigger(&app.app, &body, &[]).await.json().await.unwrap();
    let second: Value = trigger(&app.app, &body, &[]).await.json().await.unwrap();
    assert_eq!(first["dedup_key"], second["dedup_key"], "{first} {second}");
    assert_eq!(enqueued(&app), 2);
    let dedup_key = first["dedup_key"].as_str().unwrap();
    let account = app.sim.account();
    let same = account
        .incidents
        .iter()
        .filter(|i| i.incident_key == dedup_key);
    assert_eq!(same.count(), 1, "one incident for the repeated click");

    // Another summary is another alert.
    let other = json!({"service_id": service_id, "summary": "something else"});
    let other: Value = trigger(&app.app, &other, &[]).await.json().await.unwrap();
    assert_ne!(other["dedup_key"], first["dedup_key"]);
}

#[tokio::test]
async fn concurrent_duplicates_enqueue_once() {
    let app = spawn_with_sim(small_sim(), "").await;
    let (service_id, _) = triggerable_service(&app.sim);
    // Slow PagerDuty down so the duplicates overlap the first request.
    app.sim.set_faults(Faults::on_route(
        ENQUEUE,
        FaultSpec {
            latency_ms: 300,
            ..FaultSpec::default()
        },
    ));
    let body = json!({"service_id": service_id, "summary": "many clicks"});
    let header = [("Idempotency-Key", "burst")];
    let one = || trigger(&app.app, &body, &header);
    let (a, b, c, d, e) = tokio::time::timeout(Duration::from_secs(20), async {
        tokio::join!(one(), one(), one(), one(), one())
    })
    .await
    .expect("all answered");
    let responses = [a, b, c, d, e];
    let mut bodies = Vec::new();
    for response in responses {
        assert_eq!(response.status(), 202);
        bodies.push(response.json::<Value>().await.unwrap());
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
    assert_eq!(enqueued(&app), 1);
}

#[tokio::test]
async fn each_validation_rule_answers_400_naming_the_field() {
    let app = spawn_with_sim(small_sim(), "").await;
    let (service_id, _) = triggerable_service(&app.sim);
    let base = json!({"service_id": service_id, "summary": "ok"});
    let with = |patch: Value| {
        let mut body = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        body
    };
    let cases = [
        (with(json!({"summary": null})), "summary"),
        (with(json!({"summary": ""})), "summary"),
        (with(json!({"summary": "x".repeat(1025)})), "summary"),
        (with(json!({"severity": "fatal"})), "severity"),
        (with(json!({"dedup_key": "d".repeat(256)})), "dedup_key"),
        (
            with(json!({"custom_details": "not an object"})),
            "custom_details",
        ),
        (
            with(json!({"links": [{"text": "no href"}]})),
            "links[0].href",
        ),
        (with(json!({"client_url": "ftp://portal"})), "client_url"),
        (
            with(json!({"service_id": null, "integration_key": "too-short"})),
            "integration_key",
        ),
        (with(json!({"service_id": null})), "service_id"),
        (
            with(json!({"integration_key": "0123456789abcdef0123456789abcdef"})),
            "service_id",
        ),
        (with(json!({"service_id": "P/../x"})), "service_id"),
        (
            with(json!({"custom_details": {"blob": "x".repeat(515 * 1024)}})),
            "body",
        ),
        (with(json!({"unknown_field": 1})), "unknown_field"),
    ];
    for (body, field) in cases {
        let response = trigger(&app.app, &body, &[]).await;
        assert_eq!(response.status(), 400, "expected 400 for `{field}`");
        let (code, details) = error_of(response).await;
        assert_eq!(code, "invalid_body", "{field}");
        assert_eq!(details["field"], field);
    }
    // Follow-ups: the dedup_key in the path is checked too.
    let long = "d".repeat(256);
    let response = post(
        &app.app,
        &format!("/v1/incidents/{long}/resolve"),
        &json!({"service_id": service_id}),
        &[],
    )
    .await;
    assert_eq!(response.status(), 400);
    let (_, details) = error_of(response).await;
    assert_eq!(details["field"], "dedup_key");

    // An unknown service is a 404.
    let response = trigger(&app.app, &with(json!({"service_id": "PNOPE00"})), &[]).await;
    assert_eq!(response.status(), 404);
    assert_eq!(enqueued(&app), 0, "nothing left for invalid requests");
}

#[tokio::test]
async fn static_tokens_guard_the_trigger_route() {
    let app = spawn_with_sim(small_sim(), &static_auth_toml(false)).await;
    let (service_id, _) = triggerable_service(&app.sim);
    let body = json!({"service_id": service_id, "summary": "auth"});

    let response = trigger(&app.app, &body, &[]).await;
    assert_eq!(response.status(), 401);
    let (code, _) = error_of(response).await;
    assert_eq!(code, "unauthorized");
    let response = trigger(
        &app.app,
        &body,
        &[("Authorization", "Bearer wrong-token-0123456789abcdef")],
    )
    .await;
    assert_eq!(response.status(), 401);
    assert_eq!(enqueued(&app), 0);

    let bearer = format!("Bearer {TOKEN}");
    let response = trigger(&app.app, &body, &[("Authorization", &bearer)]).await;
    assert_eq!(response.status(), 202);
    assert_eq!(enqueued(&app), 1);
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let toml = "[trigger]\nper_caller_per_minute = 2\nper_routing_key_per_minute = 100\n";
    let app = spawn_with_sim(small_sim(), toml).await;
    let (service_id, _) = triggerable_service(&app.sim);
    for i in 0..2 {
        let body = json!({"service_id": service_id, "summary": format!("n{i}")});
        assert_eq!(trigger(&app.app, &body, &[]).await.status(), 202);
    }
    let body = json!({"service_id": service_id, "summary": "one too many"});
    let response = trigger(&app.app, &body, &[]).await;
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let (code, details) = error_of(response).await;
    assert_eq!(code, "rate_limited");
    assert_eq!(details["scope"], "caller");
    assert_eq!(enqueued(&app), 2);

    // Per routing key.
    let toml = "[trigger]\nper_caller_per_minute = 100\nper_routing_key_per_minute = 1\n";
    let app = spawn_with_sim(small_sim(), toml).await;
    let (service_id, _) = triggerable_service(&app.sim);
    let body = json!({"service_id": service_id, "summary": "first"});
    assert_eq!(trigger(&app.app, &body, &[]).await.status(), 202);
    let body = json!({"service_id": service_id, "summary": "second"});
    let response = trigger(&app.app, &body, &[]).await;
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    let (_, details) = error_of(response).await;
    assert_eq!(details["scope"], "routing_key");
    assert_eq!(enqueued(&app), 1);
}

#[tokio::test]
async fn pagerduty_429_then_202_answers_202() {
    let app = spawn_with_sim(small_sim(), "").await;
    let (service_id, _) = triggerable_service(&app.sim);
    app.sim.set_faults(enqueue_throttled_once());
    let body = json!({"service_id": service_id, "summary": "throttled once"});
    let response = trigger(&app.app, &body, &[]).await;
    assert_eq!(response.status(), 202);
    let stats = app.sim.stats();
    assert_eq!(stats.by_status("POST", ENQUEUE, 429), 1);
    assert_eq!(stats.by_status("POST", ENQUEUE, 202), 1);
}

#[tokio::test]
async fn pagerduty_down_past_the_deadline_answers_503_not_created() {
    let toml = "[trigger]\ndeadline_ms = 1500\n";
    let app = spawn_with_sim(small_sim(), toml).await;
    let (service_id, _) = triggerable_service(&app.sim);
    // Warm the service cache so the whole budget goes to delivery.
    let card = app.app.get(&format!("/v1/cards/{service_id}")).await;
    assert_eq!(card.status(), 200);
    app.sim.set_faults(Faults::on_route(
        ENQUEUE,
        FaultSpec {
            fail_next: 10_000,
            fail_status: 503,
            ..FaultSpec::default()
        },
    ));
    let body = json!({"service_id": service_id, "summary": "during an outage"});
    let header = [("Idempotency-Key", "outage-1")];
    let response = trigger(&app.app, &body, &header).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let body_json: Value = response.json().await.unwrap();
    let error = &body_json["error"];
    assert_eq!(error["code"], "upstream_unavailable");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("NOT created"), "{message}");
    assert_eq!(error["details"]["created"], false);
    assert_eq!(error["details"]["retry_safe"], true);
    let dedup_key = error["details"]["dedup_key"].as_str().unwrap().to_owned();
    assert!(message.contains(&dedup_key), "{message}");
    assert!(
        app.sim.stats().by_status("POST", ENQUEUE, 503) >= 2,
        "retried"
    );

    // PagerDuty is back: the same retry goes through (the failure was not
    // stored) and uses the same dedup_key.
    app.sim.clear_faults();
    let response = trigger(&app.app, &body, &header).await;
    assert_eq!(response.status(), 202);
    let accepted: Value = response.json().await.unwrap();
    assert_eq!(accepted["dedup_key"], dedup_key.as_str());
}

/// Every log line of the test binary, from the first capture on.
fn captured_logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || BufferWriter(writer.clone()))
            .finish();
        // Global, because the app logs from actix's worker threads, which a
        // thread-scoped `set_default` in the test would not see. Nothing else
        // in this binary installs a global subscriber.
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
        buffer
    })
}

struct BufferWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for BufferWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_routing_key_or_token_appears_in_logs() {
    let logs = captured_logs();
    let app = spawn_with_sim(small_sim(), &static_auth_toml(false)).await;
    let (service_id, key) = triggerable_service(&app.sim);
    let bearer = format!("Bearer {TOKEN}");
    let auth = [("Authorization", bearer.as_str())];

    let by_id = json!({"service_id": service_id, "summary": "logs by id"});
    let response = trigger(&app.app, &by_id, &auth).await;
    assert_eq!(response.status(), 202);
    let by_key = json!({"integration_key": key, "summary": "logs by key"});
    assert_eq!(trigger(&app.app, &by_key, &auth).await.status(), 202);
    // A rejected key and a wrong token are not logged either.
    let bad_key = json!({"integration_key": "0123456789abcdef0123456789abcdef", "summary": "x"});
    assert_eq!(trigger(&app.app, &bad_key, &auth).await.status(), 403);
    let wrong = [("Authorization", "Bearer wrong-token-0123456789abcdef")];
    assert_eq!(trigger(&app.app, &by_id, &wrong).await.status(), 401);
    // A failed delivery logs its error.
    app.sim.set_faults(Faults::on_route(
        ENQUEUE,
        FaultSpec {
            fail_next: 1,
            fail_status: 400,
            ..FaultSpec::default()
        },
    ));
    let rejected = json!({"service_id": service_id, "summary": "rejected by PagerDuty"});
    let response = trigger(&app.app, &rejected, &auth).await;
    assert_eq!(response.status(), 400);
    let (code, details) = error_of(response).await;
    assert_eq!(code, "event_rejected");
    // PagerDuty's own error list, passed through (the simulator's 400 fault).
    assert_eq!(details["errors"], json!(["Injected fault"]));

    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    // The outcome is logged with the caller and a short hash of the key.
    let fingerprint = pagerduty::RoutingKey::new(key.clone()).fingerprint();
    assert!(
        text.lines().any(|l| l.contains("event delivered")
            && l.contains("caller=\"portal\"")
            && l.contains(&fingerprint)),
        "no outcome line with caller and key hash in:\n{text}"
    );
    assert!(text.contains("event NOT delivered"), "{text}");
    let secrets = app
        .sim
        .account()
        .services
        .iter()
        .flat_map(|s| s.integrations.iter())
        .filter_map(|i| i.integration_key.clone())
        .chain([
            TOKEN.to_owned(),
            "wrong-token-0123456789abcdef".to_owned(),
            "0123456789abcdef0123456789abcdef".to_owned(),
            app.sim.api_token(),
        ])
        .collect::<Vec<_>>();
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "a secret leaked into the logs"
        );
    }
}

fn account_toml(id: &str, sim: &sim::SimHandle, is_default: bool) -> String {
    format!(
        "[pagerduty.accounts.{id}]\napi_token = \"{}\"\napi_base_url = \"{}\"\nevents_base_url = \"{}\"\nis_default = {is_default}\n",
        sim.api_token(),
        sim.base_url(),
        sim.events_base_url(),
    )
}

#[tokio::test]
async fn account_selects_the_pagerduty_account_to_trigger_through() {
    let main = crate::helpers::start_sim(small_sim()).await;
    let other = crate::helpers::start_sim(sim::SimConfig {
        seed: 99,
        ..small_sim()
    })
    .await;
    let toml = format!(
        "{}{}",
        account_toml("main", &main, true),
        account_toml("other", &other, false)
    );
    let settings =
        crate::helpers::settings_from(&[crate::helpers::BASE_NO_CREDENTIALS, &toml], &[]);
    let app = TestApp::spawn(settings).await;
    let (other_service, _) = triggerable_service(&other);

    let body = json!({"service_id": other_service, "summary": "on the other account"});
    let response = post(&app, "/v1/incidents?account=other", &body, &[]).await;
    assert_eq!(response.status(), 202);
    assert_eq!(other.stats().count("POST", ENQUEUE), 1);
    assert_eq!(main.stats().count("POST", ENQUEUE), 0);
    let dedup: Value = response.json().await.unwrap();
    let dedup = dedup["dedup_key"].as_str().unwrap();
    let path = format!("/v1/incidents/{dedup}/resolve?account=other");
    let response = post(&app, &path, &json!({"service_id": other_service}), &[]).await;
    assert_eq!(response.status(), 202);
    assert_eq!(other.stats().count("POST", ENQUEUE), 2);

    let response = post(&app, "/v1/incidents?account=nope", &body, &[]).await;
    assert_eq!(response.status(), 400);
    let (code, details) = error_of(response).await;
    assert_eq!(code, "invalid_parameter");
    assert_eq!(details["parameter"], "account");
}

#[tokio::test]
async fn pagerduty_silent_past_the_deadline_answers_504_not_confirmed() {
    let toml = "[trigger]\ndeadline_ms = 500\n";
    let app = spawn_with_sim(small_sim(), toml).await;
    let (service_id, _) = triggerable_service(&app.sim);
    // Resolve the routing key first, so only the enqueue is held.
    let warm = trigger(
        &app.app,
        &json!({"service_id": service_id, "summary": "warm"}),
        &[],
    )
    .await;
    assert_eq!(warm.status(), 202);
    app.sim.set_faults(Faults::on_route(
        ENQUEUE,
        FaultSpec {
            timeout_next: 1,
            ..FaultSpec::default()
        },
    ));
    let body = json!({"service_id": service_id, "summary": "no answer"});
    let response = trigger(&app.app, &body, &[]).await;
    assert_eq!(response.status(), 504);
    let (code, details) = error_of(response).await;
    assert_eq!(code, "upstream_timeout");
    assert_eq!(details["created"], Value::Null, "unknown, not false");
    assert_eq!(details["retry_safe"], true);
    assert!(details["dedup_key"].is_string());
}

#[tokio::test]
async fn after_a_resolve_the_same_dedup_key_opens_a_new_incident() {
    let app = spawn_with_sim(small_sim(), "").await;
    let (service_id, _) = triggerable_service(&app.sim);
    let body = json!({"service_id": service_id, "summary": "flapping", "dedup_key": "flap-1"});
    assert_eq!(trigger(&app.app, &body, &[]).await.status(), 202);
    let target = json!({"service_id": service_id});
    let response = post(&app.app, "/v1/incidents/flap-1/resolve", &target, &[]).await;
    assert_eq!(response.status(), 202);

    // Not a replay of the first answer: the event is sent and reopens.
    let response = trigger(&app.app, &body, &[]).await;
    assert_eq!(response.status(), 202);
    assert!(response.headers().get("idempotent-replayed").is_none());
    assert_eq!(enqueued(&app), 3);
    let account = app.sim.account();
    let states: Vec<_> = account
        .incidents
        .iter()
        .filter(|i| i.incident_key == "flap-1")
        .map(|i| i.status.as_str())
        .collect();
    assert_eq!(states, ["resolved", "triggered"]);

    // The second resolve is sent too, and resolves the new incident.
    let response = post(&app.app, "/v1/incidents/flap-1/resolve", &target, &[]).await;
    assert_eq!(response.status(), 202);
    assert!(response.headers().get("idempotent-replayed").is_none());
    assert_eq!(enqueued(&app), 4);
    let account = app.sim.account();
    let states: Vec<_> = account
        .incidents
        .iter()
        .filter(|i| i.incident_key == "flap-1")
        .map(|i| i.status.as_str())
        .collect();
    assert_eq!(states, ["resolved", "resolved"]);
}

#[tokio::test]
async fn a_resolve_outside_dutycard_does_not_hide_the_next_trigger() {
    let app = spawn_with_sim(small_sim(), "").await;
    let (service_id, key) = triggerable_service(&app.sim);
    let body = json!({"service_id": service_id, "summary": "outside", "dedup_key": "outside-1"});
    assert_eq!(trigger(&app.app, &body, &[]).await.status(), 202);

    // Someone resolves it in PagerDuty directly (not through dutycard).
    let resolve = json!({"routing_key": key, "event_action": "resolve", "dedup_key": "outside-1"});
    let response = app
        .app
        .http
        .post(format!("{}/enqueue", app.sim.events_base_url()))
        .json(&resolve)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);

    // The next trigger is sent and opens a new incident.
    let response = trigger(&app.app, &body, &[]).await;
    assert_eq!(response.status(), 202);
    assert!(response.headers().get("idempotent-replayed").is_none());
    let account = app.sim.account();
    let states: Vec<_> = account
        .incidents
        .iter()
        .filter(|i| i.incident_key == "outside-1")
        .map(|i| i.status.as_str())
        .collect();
    assert_eq!(states, ["resolved", "triggered"]);
}

#[tokio::test]
async fn the_202_does_not_wait_for_the_card_refresh() {
    let app = spawn_with_sim(small_sim(), "[trigger]\nallow = \"any\"\n").await;
    let (service_id, key) = triggerable_service(&app.sim);
    let card_path = format!("/v1/cards/{service_id}?incidents=25");
    let before = app.app.get(&card_path).await;
    assert_eq!(before.status(), 200);
    // Finding the service of a key (for invalidation) lists /services: slow.
    app.sim.set_faults(Faults::on_route(
        "/services",
        FaultSpec {
            latency_ms: 3000,
            ..FaultSpec::default()
        },
    ));
    let summary = "answered before the card refresh";
    let body = json!({"integration_key": key, "summary": summary});
    let response = tokio::time::timeout(Duration::from_millis(1500), trigger(&app.app, &body, &[]))
        .await
        .expect("the 202 does not wait for the slow lookup");
    assert_eq!(response.status(), 202);

    // The refresh still happens: the card shows the incident (bounded).
    tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let card: Value = app.app.get(&card_path).await.json().await.unwrap();
            let newest = card["incidents"]["data"]["newest"].as_array().cloned();
            if newest
                .unwrap_or_default()
                .iter()
                .any(|i| i["title"] == summary)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the card shows the incident once the refresh ran");
    assert!(app.sim.stats().count("GET", "/services") >= 1);
}

#[test]
fn debug_output_never_shows_an_integration_key() {
    let key = "abcdefabcdefabcdefabcdefabcdef12";
    let trigger: dutycard_server::trigger::TriggerRequest =
        serde_json::from_value(json!({"integration_key": key, "summary": "s"})).unwrap();
    let follow_up: dutycard_server::trigger::FollowUpRequest =
        serde_json::from_value(json!({"integration_key": key})).unwrap();
    let lookup: dutycard_server::api::cards::LookupParams =
        serde_json::from_value(json!({"integration_key": key})).unwrap();
    for shown in [
        format!("{trigger:?}"),
        format!("{follow_up:?}"),
        format!("{lookup:?}"),
    ] {
        assert!(!shown.contains(key), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }
}
