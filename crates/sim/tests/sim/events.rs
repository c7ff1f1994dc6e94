//! Events API v2: validation, and triggers driving incidents.

use serde_json::{Value, json};

use crate::common::*;

fn key_of(sim: &sim::SimHandle, index: usize) -> (String, String) {
    let account = sim.account();
    let svc = account
        .services
        .iter()
        .filter(|s| s.status == "active")
        .nth(index)
        .unwrap();
    (
        svc.id.clone(),
        svc.integrations[0].integration_key.clone().unwrap(),
    )
}

async fn enqueue(sim: &sim::SimHandle, body: Value) -> (u16, Value) {
    let r = post_raw(sim, "/v2/enqueue", &body.to_string()).await;
    (r.status, r.json())
}

async fn open_incidents(sim: &sim::SimHandle, service: &str) -> Vec<Value> {
    get_ok(
        sim,
        &format!(
            "/incidents?service_ids[]={service}&statuses[]=triggered&statuses[]=acknowledged&date_range=all&limit=100"
        ),
    )
    .await["incidents"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn trigger_acknowledge_resolve_drive_one_incident() {
    let sim = start(config()).await;
    let (service, key) = key_of(&sim, 0);
    let before = open_incidents(&sim, &service).await.len();

    let trigger = json!({
        "routing_key": key, "event_action": "trigger", "dedup_key": "disk-full-1",
        "client": "Backstage", "client_url": "https://backstage.example.com",
        "payload": {"summary": "Disk full on db-1", "source": "db-1", "severity": "critical",
                    "class": "manual trigger", "custom_details": {"user": "ada"}},
    });
    let (status, body) = enqueue(&sim, trigger.clone()).await;
    assert_eq!(status, 202);
    assert_eq!(
        body,
        json!({"status": "success", "message": "Event processed", "dedup_key": "disk-full-1"})
    );
    let open = open_incidents(&sim, &service).await;
    assert_eq!(open.len(), before + 1);
    let inc = open
        .iter()
        .find(|i| i["incident_key"] == "disk-full-1")
        .unwrap()
        .clone();
    assert_eq!(inc["title"], "Disk full on db-1");
    assert_eq!(inc["status"], "triggered");
    assert_eq!(inc["urgency"], "high");
    let detail = get_ok(&sim, &format!("/services/{service}")).await;
    assert_eq!(detail["service"]["status"], "critical");

    // Same dedup key: same incident.
    let (status, _) = enqueue(&sim, trigger.clone()).await;
    assert_eq!(status, 202);
    let open = open_incidents(&sim, &service).await;
    assert_eq!(open.len(), before + 1);
    let again = open.iter().find(|i| i["id"] == inc["id"]).unwrap();
    assert_eq!(again["alert_counts"]["all"], 2);

    let (status, _) = enqueue(
        &sim,
        json!({"routing_key": key, "event_action": "acknowledge", "dedup_key": "disk-full-1"}),
    )
    .await;
    assert_eq!(status, 202);
    let one = get_ok(&sim, &format!("/incidents/{}", inc["id"].as_str().unwrap())).await;
    assert_eq!(one["incident"]["status"], "acknowledged");

    let (status, _) = enqueue(
        &sim,
        json!({"routing_key": key, "event_action": "resolve", "dedup_key": "disk-full-1"}),
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(open_incidents(&sim, &service).await.len(), before);
    let resolved = sim
        .account()
        .incidents
        .into_iter()
        .find(|i| i.id == inc["id"].as_str().unwrap())
        .unwrap();
    assert_eq!(resolved.status, "resolved");
    assert!(resolved.assignee_ids.is_empty());

    // After resolution the same key opens a new incident.
    let (status, _) = enqueue(&sim, trigger).await;
    assert_eq!(status, 202);
    let open = open_incidents(&sim, &service).await;
    let new = open
        .iter()
        .find(|i| i["incident_key"] == "disk-full-1")
        .unwrap();
    assert_ne!(new["id"], inc["id"]);
    sim.shutdown().await;
}

#[tokio::test]
async fn trigger_without_dedup_key_gets_one() {
    let sim = start(config()).await;
    let (service, key) = key_of(&sim, 1);
    let (status, body) = enqueue(
        &sim,
        json!({"routing_key": key, "event_action": "trigger",
               "payload": {"summary": "Slow", "source": "web", "severity": "warning"}}),
    )
    .await;
    assert_eq!(status, 202);
    let dedup = body["dedup_key"].as_str().unwrap().to_owned();
    assert_eq!(dedup.len(), 32);
    let open = open_incidents(&sim, &service).await;
    let inc = open
        .iter()
        .find(|i| i["incident_key"] == dedup.as_str())
        .unwrap();
    assert_eq!(inc["urgency"], "low");
    sim.shutdown().await;
}

#[tokio::test]
async fn invalid_events_get_pagerduty_400_bodies() {
    let sim = start(config()).await;
    let (_, key) = key_of(&sim, 0);
    let before = sim.account();
    let cases = [
        (
            json!({"event_action": "trigger", "payload": {"summary": "x", "source": "y", "severity": "error"}}),
            vec!["'routing_key' is missing or blank"],
        ),
        (
            json!({"routing_key": "short", "event_action": "trigger", "payload": {"summary": "x", "source": "y", "severity": "error"}}),
            vec!["Length of 'routing_key' is incorrect (should be 32 characters)"],
        ),
        (
            json!({"routing_key": key, "event_action": "explode"}),
            vec!["'event_action' is invalid (must be one of trigger, acknowledge, resolve)"],
        ),
        (
            json!({"routing_key": key, "event_action": "trigger"}),
            vec!["'payload' is missing or blank"],
        ),
        (
            json!({"routing_key": key, "event_action": "trigger", "payload": {"source": "y", "severity": "fatal"}}),
            vec![
                "'payload.summary' is missing or blank",
                "'payload.severity' is invalid (must be one of critical, error, warning, info)",
            ],
        ),
        (
            json!({"routing_key": key, "event_action": "resolve"}),
            vec!["'dedup_key' is missing or blank"],
        ),
        (
            json!({"routing_key": key, "event_action": "trigger", "dedup_key": "k".repeat(256),
                   "payload": {"summary": "x", "source": "y", "severity": "info"}}),
            vec!["'dedup_key' is too long (maximum is 255 characters)"],
        ),
        (
            json!({"routing_key": "0123456789abcdef0123456789abcdef", "event_action": "trigger",
                   "payload": {"summary": "x", "source": "y", "severity": "info"}}),
            vec!["Invalid routing key"],
        ),
    ];
    for (body, errors) in cases {
        let (status, got) = enqueue(&sim, body.clone()).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            got,
            json!({"status": "invalid event", "message": "Event object is invalid", "errors": errors}),
            "{body}"
        );
    }
    let r = post_raw(&sim, "/v2/enqueue", "{not json").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["errors"], json!(["JSON parse error"]));
    assert_eq!(sim.account(), before, "nothing was created or changed");
    sim.shutdown().await;
}

#[tokio::test]
async fn change_events_show_up_on_the_service() {
    let sim = start(config()).await;
    let account = sim.account();
    let svc = account
        .services
        .iter()
        .find(|s| s.integrations.iter().any(|i| i.vendor.is_some()))
        .unwrap();
    let backstage_key = svc
        .integrations
        .iter()
        .find(|i| i.vendor.is_some())
        .and_then(|i| i.integration_key.clone())
        .unwrap();
    let r = post_raw(
        &sim,
        "/v2/change/enqueue",
        &json!({"routing_key": backstage_key,
                "payload": {"summary": "Deployed v2.0.0", "source": "ci", "custom_details": {"sha": "abc"}},
                "links": [{"href": "https://ci.example.com/1", "text": "Build 1"}]})
        .to_string(),
    )
    .await;
    assert_eq!(r.status, 202);
    assert_eq!(r.json()["status"], "success");
    let page = get_ok(&sim, &format!("/services/{}/change_events?limit=1", svc.id)).await;
    let newest = &page["change_events"][0];
    assert_eq!(newest["summary"], "Deployed v2.0.0");
    assert_eq!(newest["links"][0]["text"], "Build 1");
    assert_eq!(newest["custom_details"]["sha"], "abc");

    let bad = post_raw(
        &sim,
        "/v2/change/enqueue",
        &json!({"routing_key": backstage_key, "payload": {"summary": ""}, "links": [{"text": "x"}]})
            .to_string(),
    )
    .await;
    assert_eq!(bad.status, 400);
    assert_eq!(
        bad.json()["errors"],
        json!([
            "'payload.summary' is missing or blank",
            "'links[0].href' is missing or blank"
        ])
    );
    sim.shutdown().await;
}
