//! v3 webhook subscriptions and delivery: signed incident events after
//! Events API changes, retries, drops and disablement, delete, ping.

use std::time::Duration;

use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use sim::{DeliveryState, SimConfig, SimHandle, WebhookConfig};

use crate::common::*;
use crate::receiver::Receiver;

/// Fast retries, so that a test sees them in milliseconds.
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

const WAIT: Duration = Duration::from_secs(10);

/// Creates a subscription to `url`; `(id, secret)`.
pub async fn subscribe(
    sim: &SimHandle,
    url: &str,
    events: &[&str],
    filter: Value,
) -> (String, String) {
    let r = call(
        sim,
        "POST",
        "/webhook_subscriptions",
        Some(&json!({"webhook_subscription": {
            "type": "webhook_subscription",
            "delivery_method": {
                "type": "http_delivery_method", "url": url,
                "custom_headers": [{"name": "X-Team", "value": "platform"}],
            },
            "events": events,
            "filter": filter,
        }})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let ws = &r.json()["webhook_subscription"];
    (
        ws["id"].as_str().unwrap().to_owned(),
        ws["delivery_method"]["secret"].as_str().unwrap().to_owned(),
    )
}

/// A simulator, a receiver and an account-wide `incident.triggered`
/// subscription to it, with a routing key to trigger through.
struct Setup {
    sim: SimHandle,
    rx: Receiver,
    sub: String,
    secret: String,
    service: String,
    key: String,
}

async fn setup(config: SimConfig, rx: Receiver) -> Setup {
    let sim = start(config).await;
    let (sub, secret) = subscribe(
        &sim,
        &rx.url,
        &["incident.triggered"],
        json!({"type": "account_reference"}),
    )
    .await;
    let (service, key) = routable(&sim, 0);
    Setup {
        sim,
        rx,
        sub,
        secret,
        service,
        key,
    }
}

/// An active service with a routing key: `(service id, key)`.
pub fn routable(sim: &SimHandle, nth: usize) -> (String, String) {
    let a = sim.account();
    let svc = a
        .services
        .iter()
        .filter(|s| s.status == "active")
        .nth(nth)
        .unwrap();
    (
        svc.id.clone(),
        svc.integrations[0].integration_key.clone().unwrap(),
    )
}

async fn event(sim: &SimHandle, key: &str, action: &str, dedup: &str) {
    let mut body = json!({"routing_key": key, "event_action": action, "dedup_key": dedup});
    if action == "trigger" {
        body["payload"] = json!({"summary": "Disk full", "source": "db-1", "severity": "critical"});
        body["client"] = json!("Backstage");
    }
    let r = post_raw(sim, "/v2/enqueue", &body.to_string()).await;
    assert_eq!(r.status, 202, "{}", r.text);
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn a_trigger_is_delivered_signed_with_pagerdutys_headers() {
    let Setup {
        sim,
        mut rx,
        sub,
        secret,
        service,
        key,
    } = setup(fast(), Receiver::start(&[], 202).await).await;
    assert_eq!(secret.len(), 64);
    event(&sim, &key, "trigger", "webhook-1").await;

    let got = rx.next().await;
    assert_eq!(got.header("content-type"), "application/json");
    assert_eq!(got.header("user-agent"), "PagerDuty-Webhook/V3.0");
    assert_eq!(got.header("x-webhook-subscription"), sub);
    assert_eq!(got.header("x-team"), "platform");
    assert_eq!(
        got.header("x-pagerduty-signature"),
        format!("v1={}", hmac_hex(&secret, &got.body)),
        "signed with the subscription's secret over the raw body"
    );
    let webhook_id = got.header("x-webhook-id").to_owned();
    assert!(!webhook_id.is_empty());

    let e = &got.json()["event"];
    assert_eq!(e["event_type"], "incident.triggered");
    assert_eq!(e["resource_type"], "incident");
    assert!(e["id"].as_str().unwrap().len() >= 20);
    assert!(e["occurred_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(e["agent"]["type"], "service_reference");
    assert_eq!(e["client"], json!({"name": "Backstage"}));
    let incident = sim
        .account()
        .incidents
        .iter()
        .find(|i| i.incident_key == "webhook-1")
        .cloned()
        .unwrap();
    let data = &e["data"];
    assert_eq!(data["id"], incident.id.as_str());
    assert_eq!(data["type"], "incident");
    assert_eq!(data["number"], incident.incident_number);
    assert_eq!(data["status"], "triggered");
    assert_eq!(data["service"]["id"], service.as_str());
    assert_eq!(data["incident_key"], "webhook-1");

    let stats = sim
        .wait_for_webhooks(WAIT, |s| s.delivered("incident.triggered") == 1)
        .await
        .unwrap();
    let d = &stats.of(&sub)[0];
    assert_eq!(d.webhook_id, webhook_id);
    assert_eq!(d.resource_id, incident.id);
    assert_eq!(d.attempts.len(), 1);
    assert_eq!(d.attempts[0].status, 202);
    // Over HTTP too, with no secret anywhere.
    let admin = http()
        .get(format!("{}/__sim/webhooks", sim.base_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        admin.contains(&webhook_id) && !admin.contains(&secret),
        "{admin}"
    );
    rx.stop().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn delivery_does_not_hold_up_the_event_that_caused_it() {
    // The receiver answers only when released: a trigger that waited for
    // its webhook would hang (the 5 s bound only makes that failure quick).
    let Setup {
        sim, mut rx, key, ..
    } = setup(
        SimConfig {
            webhooks: WebhookConfig {
                timeout: Duration::from_secs(30),
                ..WebhookConfig::default()
            },
            ..config()
        },
        Receiver::start_held(200).await,
    )
    .await;
    tokio::time::timeout(
        Duration::from_secs(5),
        event(&sim, &key, "trigger", "held-receiver"),
    )
    .await
    .expect("the Events API answers while the webhook is unanswered");
    rx.next().await;
    assert_eq!(
        sim.webhooks().count(DeliveryState::Queued),
        1,
        "still in flight"
    );
    rx.release();
    sim.wait_for_webhooks(WAIT, |s| s.count(DeliveryState::Delivered) == 1)
        .await
        .unwrap();
    rx.stop().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn a_500_is_retried_with_the_same_webhook_id_until_delivered() {
    let Setup {
        sim,
        mut rx,
        sub,
        key,
        ..
    } = setup(fast(), Receiver::start(&[500, 503, 429], 200).await).await;
    event(&sim, &key, "trigger", "retried").await;
    let ids: Vec<String> = futures_ids(&mut rx, 4).await;
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
    let stats = sim
        .wait_for_webhooks(WAIT, |s| s.count(DeliveryState::Delivered) == 1)
        .await
        .unwrap();
    let statuses: Vec<u16> = stats.of(&sub)[0]
        .attempts
        .iter()
        .map(|a| a.status)
        .collect();
    assert_eq!(statuses, vec![500, 503, 429, 200]);
    assert_eq!(stats.subscriptions[0].consecutive_drops, 0);
    rx.stop().await;
    sim.shutdown().await;
}

async fn futures_ids(rx: &mut Receiver, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(rx.next().await.header("x-webhook-id").to_owned());
    }
    ids
}

#[tokio::test]
async fn no_answer_in_time_is_retried_then_dropped() {
    let Setup {
        sim,
        mut rx,
        sub,
        key,
        ..
    } = setup(
        SimConfig {
            webhooks: WebhookConfig {
                timeout: Duration::from_millis(100),
                max_attempts: 3,
                first_retry_after: Duration::from_millis(10),
                ..WebhookConfig::default()
            },
            ..config()
        },
        Receiver::start_with_delay(&[], 200, Duration::from_secs(2)).await,
    )
    .await;
    event(&sim, &key, "trigger", "too-slow").await;
    let stats = sim
        .wait_for_webhooks(WAIT, |s| s.count(DeliveryState::Dropped) == 1)
        .await
        .unwrap();
    let d = &stats.of(&sub)[0];
    assert_eq!(d.attempts.len(), 3);
    assert!(
        d.attempts
            .iter()
            .all(|a| a.status == 0 && a.error.as_deref() == Some("timeout"))
    );
    assert_eq!(
        d.dropped_because.as_deref(),
        Some("no 2xx answer in 3 attempts")
    );
    assert_eq!(rx.drain().len(), 3);
    rx.stop().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn a_4xx_is_not_retried_and_three_drops_disable_the_subscription() {
    let Setup {
        sim,
        mut rx,
        sub,
        key,
        ..
    } = setup(fast(), Receiver::start(&[], 410).await).await;
    for n in 0..3 {
        event(&sim, &key, "trigger", &format!("gone-{n}")).await;
        sim.wait_for_webhooks(WAIT, |s| s.count(DeliveryState::Dropped) == n + 1)
            .await
            .unwrap();
    }
    let stats = sim.webhooks();
    assert!(
        stats.of(&sub).iter().all(|d| d.attempts.len() == 1),
        "{stats:?}"
    );
    assert!(stats.subscriptions[0].temporarily_disabled);
    let shown = get_ok(&sim, &format!("/webhook_subscriptions/{sub}")).await;
    assert_eq!(
        shown["webhook_subscription"]["delivery_method"]["temporarily_disabled"],
        true
    );
    assert_eq!(rx.drain().len(), 3);

    // Disabled: a new webhook is dropped without an attempt.
    event(&sim, &key, "trigger", "gone-3").await;
    let stats = sim
        .wait_for_webhooks(WAIT, |s| s.count(DeliveryState::Dropped) == 4)
        .await
        .unwrap();
    let last = stats.of(&sub).last().cloned().unwrap();
    assert!(last.attempts.is_empty());
    assert_eq!(
        last.dropped_because.as_deref(),
        Some("subscription temporarily disabled")
    );

    // Enabled again, it delivers (and 410s) again.
    let r = call(
        &sim,
        "POST",
        &format!("/webhook_subscriptions/{sub}/enable"),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json()["webhook_subscription"]["delivery_method"]["temporarily_disabled"],
        false
    );
    event(&sim, &key, "trigger", "gone-4").await;
    rx.next().await;
    rx.stop().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn nothing_is_delivered_after_delete() {
    let sim = start(fast()).await;
    let mut deleted_rx = Receiver::start(&[], 200).await;
    let mut kept_rx = Receiver::start(&[], 200).await;
    let all = json!({"type": "account_reference"});
    let (deleted, _) = subscribe(&sim, &deleted_rx.url, &["incident.triggered"], all.clone()).await;
    let (kept, _) = subscribe(&sim, &kept_rx.url, &["incident.triggered"], all).await;
    let r = call(
        &sim,
        "DELETE",
        &format!("/webhook_subscriptions/{deleted}"),
        None,
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(r.text.is_empty());
    assert_eq!(
        get(&sim, &format!("/webhook_subscriptions/{deleted}"))
            .await
            .status,
        404
    );
    let again = call(
        &sim,
        "DELETE",
        &format!("/webhook_subscriptions/{deleted}"),
        None,
    )
    .await;
    assert_eq!(again.status, 404);

    let (_, key) = routable(&sim, 0);
    event(&sim, &key, "trigger", "after-delete").await;
    // The kept subscription's delivery is the barrier: the event went out.
    kept_rx.next().await;
    let stats = sim
        .wait_for_webhooks(WAIT, |s| s.delivered("incident.triggered") == 1)
        .await
        .unwrap();
    assert!(stats.of(&deleted).is_empty());
    assert_eq!(stats.of(&kept).len(), 1);
    assert!(deleted_rx.drain().is_empty());
    deleted_rx.stop().await;
    kept_rx.stop().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn a_webhook_being_retried_stops_when_its_subscription_is_deleted() {
    let Setup {
        sim,
        mut rx,
        sub,
        key,
        ..
    } = setup(
        SimConfig {
            webhooks: WebhookConfig {
                first_retry_after: Duration::from_millis(1500),
                max_retry_after: Duration::from_millis(1500),
                ..fast().webhooks
            },
            ..config()
        },
        Receiver::start(&[], 500).await,
    )
    .await;
    event(&sim, &key, "trigger", "deleted-while-retrying").await;
    rx.next().await; // first attempt: 500, a retry is due in 1.5 s
    assert_eq!(
        call(
            &sim,
            "DELETE",
            &format!("/webhook_subscriptions/{sub}"),
            None
        )
        .await
        .status,
        204
    );
    let stats = sim
        .wait_for_webhooks(WAIT, |s| s.count(DeliveryState::Dropped) == 1)
        .await
        .unwrap();
    let d = &stats.deliveries[0];
    assert_eq!(d.dropped_because.as_deref(), Some("subscription deleted"));
    assert_eq!(d.attempts.len(), 1);
    assert!(rx.drain().is_empty());
    rx.stop().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn ping_delivers_pagey_ping() {
    let sim = start(fast()).await;
    let mut rx = Receiver::start(&[], 200).await;
    // A service filter and no matching event type: a ping goes out anyway.
    let (service, _) = routable(&sim, 1);
    let (sub, secret) = subscribe(
        &sim,
        &rx.url,
        &["service.updated"],
        json!({"type": "service_reference", "id": service}),
    )
    .await;
    let r = call(
        &sim,
        "POST",
        &format!("/webhook_subscriptions/{sub}/ping"),
        None,
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let got = rx.next().await;
    assert_eq!(
        got.header("x-pagerduty-signature"),
        format!("v1={}", hmac_hex(&secret, &got.body))
    );
    let e = &got.json()["event"];
    assert_eq!(e["event_type"], "pagey.ping");
    assert_eq!(e["resource_type"], "pagey");
    assert_eq!(e["data"]["type"], "ping");
    assert_eq!(e["data"]["message"], "Hello from your friend Pagey!");
    sim.wait_for_webhooks(WAIT, |s| s.delivered("pagey.ping") == 1)
        .await
        .unwrap();
    let missing = call(&sim, "POST", "/webhook_subscriptions/PNOPE00/ping", None).await;
    assert_eq!(missing.status, 404);
    rx.stop().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn filters_and_event_types_choose_the_subscriptions() {
    let sim = start(fast()).await;
    let account = sim.account();
    let (service, key) = routable(&sim, 0);
    let team = account.service(&service).unwrap().team_ids.first().cloned();
    let (_, other_key) = account
        .services
        .iter()
        .filter(|s| s.status == "active" && s.id != service)
        .filter(|s| team.as_ref().is_none_or(|t| !s.team_ids.contains(t)))
        .map(|s| {
            (
                s.id.clone(),
                s.integrations[0].integration_key.clone().unwrap(),
            )
        })
        .next()
        .unwrap();
    let mut by_service = Receiver::start(&[], 200).await;
    let mut lifecycle = Receiver::start(&[], 200).await;
    let (svc_sub, _) = subscribe(
        &sim,
        &by_service.url,
        &["incident.triggered"],
        json!({"type": "service_reference", "id": service}),
    )
    .await;
    let (life_sub, _) = subscribe(
        &sim,
        &lifecycle.url,
        &["incident.acknowledged", "incident.resolved"],
        json!({"type": "account_reference"}),
    )
    .await;
    event(&sim, &other_key, "trigger", "elsewhere").await;
    event(&sim, &key, "trigger", "here").await;
    event(&sim, &key, "acknowledge", "here").await;
    event(&sim, &key, "acknowledge", "here").await; // no change, no event
    event(&sim, &key, "resolve", "here").await;
    let stats = sim
        .wait_for_webhooks(WAIT, |s| s.count(DeliveryState::Delivered) == 3)
        .await
        .unwrap();
    let types =
        |sub: &str| -> Vec<String> { stats.of(sub).iter().map(|d| d.event_type.clone()).collect() };
    assert_eq!(types(&svc_sub), vec!["incident.triggered"]);
    assert_eq!(
        types(&life_sub),
        vec!["incident.acknowledged", "incident.resolved"],
        "in order, once each"
    );
    let first = by_service.next().await.json();
    assert_eq!(first["event"]["data"]["incident_key"], "here");
    let ack = lifecycle.next().await.json();
    assert_eq!(ack["event"]["data"]["status"], "acknowledged");
    let resolved = lifecycle.next().await.json();
    assert_eq!(resolved["event"]["data"]["status"], "resolved");
    assert_eq!(resolved["event"]["data"]["assignees"], json!([]));

    if let Some(team) = team {
        let mut by_team = Receiver::start(&[], 200).await;
        let (team_sub, _) = subscribe(
            &sim,
            &by_team.url,
            &["incident.triggered"],
            json!({"type": "team_reference", "id": team}),
        )
        .await;
        event(&sim, &other_key, "trigger", "elsewhere-2").await;
        event(&sim, &key, "trigger", "here-2").await;
        let got = by_team.next().await.json();
        assert_eq!(got["event"]["data"]["incident_key"], "here-2");
        let stats = sim
            .wait_for_webhooks(WAIT, |s| {
                s.of(&team_sub).len() == 1 && s.count(DeliveryState::Queued) == 0
            })
            .await
            .unwrap();
        assert_eq!(stats.of(&team_sub).len(), 1);
        by_team.stop().await;
    }
    by_service.stop().await;
    lifecycle.stop().await;
    sim.shutdown().await;
}
