//! Admin-made changes through the REST API (`PUT /services/{id}`,
//! `PUT /incidents/{id}`) deliver their v3 events through the same hub,
//! signed and in order, like the Events API changes (`webhooks.rs`).

use std::time::Duration;

use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use sim::{DeliveryState, SimConfig, SimHandle, SimToken, WebhookConfig};

use crate::common::*;
use crate::receiver::Receiver;
use crate::webhooks::{routable, subscribe};

const WAIT: Duration = Duration::from_secs(10);

fn fast() -> SimConfig {
    SimConfig {
        webhooks: WebhookConfig {
            timeout: Duration::from_millis(500),
            first_retry_after: Duration::from_millis(20),
            max_retry_after: Duration::from_millis(80),
            ..WebhookConfig::default()
        },
        ..config()
    }
}

fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("v1={hex}")
}

/// `PUT path` with the API token, an optional `From` and a JSON body.
async fn put(sim: &SimHandle, path: &str, from: Option<&str>, body: &Value) -> Resp {
    let mut req = http()
        .put(format!("{}{path}", sim.base_url()))
        .header("Authorization", format!("Token token={}", sim.api_token()))
        .json(body);
    if let Some(from) = from {
        req = req.header("From", from);
    }
    let resp = req.send().await.unwrap();
    Resp {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        text: resp.text().await.unwrap(),
    }
}

/// The 400 detail, asserting the status.
fn detail(r: &Resp) -> String {
    assert_eq!(r.status, 400, "{}", r.text);
    r.json()["error"]["errors"][0].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_service_update_is_validated_answered_and_delivered_as_service_updated() {
    let sim = start(fast()).await;
    let mut rx = Receiver::start(&[], 200).await;
    let (sub, secret) = subscribe(
        &sim,
        &rx.url,
        &["service.updated"],
        json!({"type": "account_reference"}),
    )
    .await;
    let account = sim.account();
    let (svc, other) = (&account.services[0], &account.services[1]);
    let path = format!("/services/{}", svc.id);

    // Refused changes: a 400 naming the field, and nothing delivered.
    let blank = put(&sim, &path, None, &json!({"service": {"name": " "}})).await;
    assert!(detail(&blank).contains("service.name"));
    let taken = put(&sim, &path, None, &json!({"service": {"name": other.name}})).await;
    assert!(detail(&taken).contains("already been taken"));
    let status = put(
        &sim,
        &path,
        None,
        &json!({"service": {"status": "critical"}}),
    )
    .await;
    assert!(detail(&status).contains("service.status"));
    let ep = json!({"service": {"escalation_policy": {"id": "PNOPE00", "type": "escalation_policy_reference"}}});
    assert!(detail(&put(&sim, &path, None, &ep).await).contains("service.escalation_policy.id"));
    let stranger = put(
        &sim,
        &path,
        Some("nobody@example.com"),
        &json!({"service": {}}),
    )
    .await;
    assert!(detail(&stranger).contains("From header"));
    let missing = put(
        &sim,
        "/services/PNOPE00",
        None,
        &json!({"service": {"name": "x"}}),
    )
    .await;
    assert_eq!(missing.status, 404);
    let no_body = put(&sim, &path, None, &json!({"name": "x"})).await;
    assert!(detail(&no_body).contains("service"));

    let admin = &account.users[0];
    let r = put(
        &sim,
        &path,
        Some(&admin.email),
        &json!({"service": {"type": "service", "name": "zz-renamed", "description": "new words",
            "auto_resolve_timeout": 0}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["service"]["name"], "zz-renamed");
    assert_eq!(r.json()["service"]["auto_resolve_timeout"], Value::Null);

    let got = rx.next().await;
    assert_eq!(got.header("x-webhook-subscription"), sub);
    assert_eq!(
        got.header("x-pagerduty-signature"),
        signature(&secret, &got.body)
    );
    let e = &got.json()["event"];
    assert_eq!(e["event_type"], "service.updated");
    assert_eq!(e["resource_type"], "service");
    assert_eq!(e["agent"]["id"], admin.id.as_str());
    assert_eq!(e["agent"]["type"], "user_reference");
    assert_eq!(e["data"]["id"], svc.id.as_str());
    assert_eq!(e["data"]["name"], "zz-renamed");
    assert_eq!(e["data"]["description"], "new words");
    let stats = sim
        .wait_for_webhooks(WAIT, |s| s.delivered("service.updated") == 1)
        .await
        .unwrap();
    assert_eq!(
        stats.deliveries.len(),
        1,
        "the refused changes sent nothing"
    );

    // The change is the account's now: reads show it, and the list stays
    // sorted by name.
    let read = get_ok(&sim, &path).await;
    assert_eq!(read["service"]["name"], "zz-renamed");
    let names: Vec<String> = get_ok(&sim, "/services?limit=100").await["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names.last().map(String::as_str), Some("zz-renamed"));
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    rx.stop().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn updates_need_the_write_scopes() {
    let sim = start(SimConfig {
        api_tokens: vec![SimToken::scoped(
            "reader",
            &["services.read", "incidents.read"],
        )],
        ..config()
    })
    .await;
    let account = sim.account();
    for (path, body) in [
        (
            format!("/services/{}", account.services[0].id),
            json!({"service": {"name": "x"}}),
        ),
        (
            format!("/incidents/{}", account.incidents[0].id),
            json!({"incident": {"type": "incident", "status": "resolved"}}),
        ),
    ] {
        let r = http()
            .put(format!("{}{path}", sim.base_url()))
            .header("Authorization", "Token token=reader")
            .header("From", account.users[0].email.as_str())
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{path}");
    }
    assert_eq!(sim.account(), account, "nothing changed");
    sim.shutdown().await;
}

#[tokio::test]
async fn incident_updates_deliver_acknowledged_reassigned_escalated_resolved_in_order() {
    let sim = start(fast()).await;
    let mut rx = Receiver::start(&[], 200).await;
    let (sub, _) = subscribe(
        &sim,
        &rx.url,
        &[
            "incident.acknowledged",
            "incident.unacknowledged",
            "incident.reassigned",
            "incident.escalated",
            "incident.resolved",
            "incident.reopened",
        ],
        json!({"type": "account_reference"}),
    )
    .await;
    let (_, key) = routable(&sim, 0);
    let trigger = json!({"routing_key": key, "event_action": "trigger", "dedup_key": "rest-1",
        "payload": {"summary": "Disk full", "source": "db-1", "severity": "critical"}});
    assert_eq!(
        post_raw(&sim, "/v2/enqueue", &trigger.to_string())
            .await
            .status,
        202
    );
    let account = sim.account();
    let inc = account
        .incidents
        .iter()
        .find(|i| i.incident_key == "rest-1")
        .unwrap()
        .clone();
    let path = format!("/incidents/{}", inc.id);
    let user = &account.users[0];
    let other = &account.users[1];
    let from = Some(user.email.as_str());

    // Refused: no From, a bad status, a bad type, an unknown assignee, a
    // level beyond the policy, both at once.
    let ack = json!({"incident": {"type": "incident", "status": "acknowledged"}});
    assert!(detail(&put(&sim, &path, None, &ack).await).contains("From header"));
    let bad = json!({"incident": {"type": "incident", "status": "snoozed"}});
    assert!(detail(&put(&sim, &path, from, &bad).await).contains("incident.status"));
    let bad = json!({"incident": {"type": "service", "status": "resolved"}});
    assert!(detail(&put(&sim, &path, from, &bad).await).contains("incident.type"));
    let bad = json!({"incident": {"type": "incident",
        "assignments": [{"assignee": {"id": "PNOPE00", "type": "user_reference"}}]}});
    assert!(detail(&put(&sim, &path, from, &bad).await).contains("assignee.id"));
    let bad = json!({"incident": {"type": "incident", "escalation_level": 99}});
    assert!(detail(&put(&sim, &path, from, &bad).await).contains("escalation_level"));
    assert_eq!(
        put(&sim, "/incidents/PNOPE00", from, &ack).await.status,
        404
    );

    let r = put(&sim, &path, from, &ack).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["incident"]["status"], "acknowledged");
    // The same status again changes nothing and sends nothing.
    assert_eq!(put(&sim, &path, from, &ack).await.status, 200);
    let reassign = json!({"incident": {"type": "incident_reference",
        "assignments": [{"assignee": {"id": other.id, "type": "user_reference"}}]}});
    let r = put(&sim, &path, from, &reassign).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let escalate = json!({"incident": {"type": "incident", "escalation_level": 1}});
    let r = put(&sim, &path, from, &escalate).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["incident"]["status"], "triggered");
    let resolve = json!({"incident": {"type": "incident", "status": "resolved"}});
    let r = put(&sim, &path, from, &resolve).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["incident"]["status"], "resolved");
    assert!(
        detail(&put(&sim, &path, from, &reassign).await).contains("resolved"),
        "a resolved incident is not reassigned"
    );

    let expected = [
        "incident.acknowledged",
        "incident.reassigned",
        "incident.escalated",
        "incident.resolved",
    ];
    let stats = sim
        .wait_for_webhooks(WAIT, |s| {
            s.count(DeliveryState::Delivered) == expected.len()
        })
        .await
        .unwrap();
    let types: Vec<&str> = stats
        .of(&sub)
        .iter()
        .map(|d| d.event_type.as_str())
        .collect();
    assert_eq!(types, expected, "once each, in order");
    let mut got = Vec::new();
    for _ in expected {
        got.push(rx.next().await.json()["event"].clone());
    }
    for (e, t) in got.iter().zip(expected) {
        assert_eq!(e["event_type"], t);
        assert_eq!(e["agent"]["id"], user.id.as_str(), "the From user did it");
        assert_eq!(e["data"]["id"], inc.id.as_str());
    }
    assert_eq!(got[0]["data"]["status"], "acknowledged");
    assert_eq!(
        got[1]["data"]["assignees"][0]["id"],
        other.id.as_str(),
        "reassigned to the named user"
    );
    assert_eq!(got[2]["data"]["status"], "triggered");
    assert_eq!(got[3]["data"]["status"], "resolved");
    // The account changed too.
    let now = sim.account();
    let stored = now.incident(&inc.id).unwrap();
    assert_eq!(stored.status, "resolved");
    assert!(stored.resolved_at.is_some());

    // Reopening a resolved incident is `incident.reopened`.
    let r = put(&sim, &path, from, &ack).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["incident"]["status"], "acknowledged");
    assert_eq!(
        rx.next().await.json()["event"]["event_type"],
        "incident.reopened"
    );
    rx.stop().await;
    sim.shutdown().await;
}
