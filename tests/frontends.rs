//! The real frontends, driven the way they call dutycard: PagerDuty's
//! Backstage plugin 0.17.1 (its card's reads and `triggerAlarm`), with
//! integration keys hidden from the browser.

use serde_json::{Value, json};

use crate::helpers::{SimApp, small_sim, spawn_with_sim};
use crate::trigger::triggerable_service;

const P: &str = "/api/pagerduty";
const TOKEN: &str = "portal-user-token-0123456789";

/// Static caller auth: the token's name is the caller.
const AUTH: &str = "[server.auth]\nmode = \"static\"\n[[server.auth.tokens]]\nname = \"alice\"\ntoken = \"portal-user-token-0123456789\"\n";

async fn get(app: &crate::helpers::TestApp, path: &str) -> (u16, Value) {
    let res = app
        .http
        .get(app.url(path))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Every integration key of the simulated account.
fn real_keys(sim: &sim::SimHandle) -> Vec<String> {
    sim.account()
        .services
        .iter()
        .flat_map(|s| s.integrations.iter())
        .filter_map(|i| i.integration_key.clone())
        .collect()
}

/// The key a Backstage answer shows for `service_id`'s Events v2
/// integration.
fn shown_key(service: &Value, real: &str, sim: &sim::SimHandle) -> String {
    let account = sim.account();
    let integration_id = account
        .services
        .iter()
        .flat_map(|s| s.integrations.iter())
        .find(|i| i.integration_key.as_deref() == Some(real))
        .map(|i| i.id.clone())
        .unwrap();
    service["integrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == integration_id.as_str())
        .and_then(|i| i["integration_key"].as_str())
        .expect("the integration is shown with a key")
        .to_owned()
}

/// By default no Backstage answer carries a real integration key: each is
/// an alias, which dutycard accepts wherever a key goes and PagerDuty
/// refuses.
#[tokio::test]
async fn backstage_answers_show_aliases_that_work_here_and_nowhere_else() {
    let SimApp { app, sim } = spawn_with_sim(small_sim(), AUTH).await;
    let (service_id, real) = triggerable_service(&sim);
    let keys = real_keys(&sim);
    let team = sim.account().teams[0].id.clone();
    let mut alias = None;
    for path in [
        format!("{P}/services/{service_id}"),
        format!("{P}/services"),
        format!("{P}/services?team_id={team}"),
        format!("{P}/services?query=a&limit=100"),
        format!("{P}/services?integration_key={real}"),
    ] {
        let (status, body) = get(&app, &path).await;
        assert_eq!(status, 200, "{path}: {body}");
        let text = body.to_string();
        for key in &keys {
            assert!(!text.contains(key.as_str()), "{path} shows a real key");
        }
        if path.ends_with(&service_id) {
            alias = Some(shown_key(&body["service"], &real, &sim));
        }
    }
    let alias = alias.unwrap();
    assert!(alias.starts_with("dcak_"), "{alias}");

    // The alias finds the service and its card...
    let (status, body) = get(&app, &format!("{P}/services?integration_key={alias}")).await;
    assert_eq!(
        (status, body["service"]["id"].clone()),
        (200, json!(service_id))
    );
    let (status, body) = get(&app, &format!("/v1/cards?integration_key={alias}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["service"]["data"]["id"], json!(service_id));
    // ...an unknown alias is a plain 404...
    let unknown = format!("dcak_{}", "0".repeat(32));
    let (status, _) = get(&app, &format!("/v1/cards?integration_key={unknown}")).await;
    assert_eq!(status, 404);
    // ...and PagerDuty's own Events API refuses it.
    let res = reqwest::Client::new()
        .post(format!("{}/enqueue", sim.events_base_url()))
        .json(&json!({"routing_key": alias, "event_action": "trigger",
                      "payload": {"summary": "x", "source": "y", "severity": "error"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "the alias is not a routing key");
}

/// An operator can opt into raw keys (or none).
#[tokio::test]
async fn raw_keys_and_no_keys_are_opt_in() {
    for (mode, shows_real) in [("raw", true), ("omit", false)] {
        let toml = format!("{AUTH}[backstage]\nintegration_keys = \"{mode}\"\n");
        let SimApp { app, sim } = spawn_with_sim(small_sim(), &toml).await;
        let (service_id, real) = triggerable_service(&sim);
        let (_, body) = get(&app, &format!("{P}/services/{service_id}")).await;
        let text = body.to_string();
        assert_eq!(text.contains(&real), shows_real, "{mode}");
        assert!(!text.contains("dcak_"), "{mode}");
    }
}

/// The 0.17.1 frontend's `triggerAlarm` (its exact body, the alias from its
/// card's service read) posted to `{pagerDuty.eventsBaseUrl}/enqueue` with
/// the eventsBaseUrl set to our prefix: one incident, on the right
/// service, answered in Events v2's shape.
#[tokio::test]
async fn the_frontends_trigger_alarm_creates_one_incident_through_the_enqueue_intake() {
    let SimApp { app, sim } = spawn_with_sim(small_sim(), AUTH).await;
    let (service_id, real) = triggerable_service(&sim);
    let (_, body) = get(&app, &format!("{P}/services/{service_id}")).await;
    let alias = shown_key(&body["service"], &real, &sim);
    let page = "https://backstage.example.com/catalog/default/component/checkout";
    let event = json!({
        "event_action": "trigger", "routing_key": alias, "client": "Backstage",
        "client_url": page,
        "payload": {"summary": "Checkout is failing (0.17.1)", "source": page,
                    "severity": "error", "class": "manual trigger",
                    "custom_details": {"user": "guest"}}
    });
    let before = sim.account().incidents.len();
    let res = app
        .http
        .post(app.url(&format!("{P}/enqueue")))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json; charset=UTF-8")
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["status"], "success", "{answer}");
    assert!(answer["message"].is_string(), "{answer}");
    let dedup_key = answer["dedup_key"].as_str().unwrap().to_owned();
    let account = sim.account();
    assert_eq!(account.incidents.len(), before + 1, "exactly one incident");
    let incident = account
        .incidents
        .iter()
        .find(|i| i.incident_key == dedup_key)
        .expect("the incident");
    assert_eq!(incident.service_id, service_id);
    assert_eq!(incident.title, "Checkout is failing (0.17.1)");

    // Without a caller token: refused, nothing sent.
    let res = app
        .http
        .post(app.url(&format!("{P}/enqueue")))
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // A bad event is Events v2's 400, naming the field.
    let res = app
        .http
        .post(app.url(&format!("{P}/v2/enqueue")))
        .bearer_auth(TOKEN)
        .json(&json!({"event_action": "trigger", "routing_key": alias,
                      "payload": {"summary": " ", "source": "s", "severity": "error"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "invalid event", "{body}");
    assert!(
        body["errors"][0]
            .as_str()
            .unwrap()
            .contains("payload.summary"),
        "{body}"
    );
    assert_eq!(
        sim.account().incidents.len(),
        before + 1,
        "nothing more sent"
    );
}

/// What reaches PagerDuty: the real key (never the alias), our client, the
/// caller as `triggered_by` whatever the body says, the body's user kept.
#[tokio::test]
async fn the_enqueue_intake_attributes_the_caller_and_sends_the_real_key() {
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let events = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202).set_body_json(
            json!({"status": "success", "message": "Event processed", "dedup_key": "k"}),
        ))
        .mount(&events)
        .await;
    let app = crate::trigger_delivery::spawn_with_events_host(&events, AUTH).await;
    let (service_id, real) = triggerable_service(&app.sim);
    let (_, body) = get(&app.app, &format!("{P}/services/{service_id}")).await;
    let alias = shown_key(&body["service"], &real, &app.sim);
    let res = app
        .app
        .http
        .post(app.app.url(&format!("{P}/enqueue")))
        .bearer_auth(TOKEN)
        .json(
            &json!({"event_action": "trigger", "routing_key": alias, "client": "Backstage",
                      "payload": {"summary": "down", "source": "portal", "severity": "error",
                                  "custom_details": {"user": "guest", "triggered_by": "mallory"}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let sent: Vec<Value> = events
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["routing_key"], real.as_str());
    assert_eq!(sent[0]["client"], "dutycard");
    let details = &sent[0]["payload"]["custom_details"];
    assert_eq!(details["triggered_by"], "alice", "{details}");
    assert_eq!(details["user"], "guest", "{details}");
}
