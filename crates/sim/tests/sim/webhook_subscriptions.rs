//! `/webhook_subscriptions`: listing, reading, validation and scopes
//! (delivery is in `webhooks`).

use serde_json::{Value, json};
use sim::SimConfig;

use crate::common::*;
use crate::webhooks::{routable, subscribe};

#[tokio::test]
async fn subscriptions_are_listed_read_and_validated() {
    let sim = start(config()).await;
    let (service, _) = routable(&sim, 0);
    let (sub, secret) = subscribe(
        &sim,
        "https://hooks.example.com/pd",
        &["incident.triggered"],
        json!({"type": "service_reference", "id": service}),
    )
    .await;
    subscribe(
        &sim,
        "https://hooks.example.com/all",
        &["incident.resolved"],
        json!({"type": "account_reference"}),
    )
    .await;

    let one = get_ok(&sim, &format!("/webhook_subscriptions/{sub}")).await;
    let ws = &one["webhook_subscription"];
    assert_eq!(ws["type"], "webhook_subscription");
    assert_eq!(ws["active"], true);
    assert_eq!(
        ws["delivery_method"]["secret"],
        Value::Null,
        "the secret is shown once"
    );
    assert_eq!(
        ws["delivery_method"]["custom_headers"][0]["value"],
        "-- redacted --"
    );
    assert_eq!(
        ws["filter"],
        json!({"type": "service_reference", "id": service})
    );
    let all = get_ok(&sim, "/webhook_subscriptions?total=true").await;
    assert_eq!(all["total"], 2);
    assert!(!all.to_string().contains(&secret));
    let mine = get_ok(
        &sim,
        &format!("/webhook_subscriptions?filter_type=service&filter_id={service}"),
    )
    .await;
    assert_eq!(ids(&mine["webhook_subscriptions"]), vec![sub.clone()]);
    let accounts = get_ok(&sim, "/webhook_subscriptions?filter_type=account").await;
    assert_eq!(
        accounts["webhook_subscriptions"].as_array().unwrap().len(),
        1
    );

    let ok_body = json!({
        "type": "webhook_subscription",
        "delivery_method": {"type": "http_delivery_method", "url": "https://hooks.example.com"},
        "events": ["incident.triggered"],
        "filter": {"type": "account_reference"},
    });
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "no body object",
            json!({}),
            "webhook_subscription is required",
        ),
        (
            "url",
            json!({"delivery_method": {"type": "http_delivery_method", "url": "ftp://x"}}),
            "delivery_method.url",
        ),
        (
            "method",
            json!({"delivery_method": {"type": "email", "url": "https://x"}}),
            "delivery_method.type",
        ),
        (
            "no events",
            json!({"events": []}),
            "webhook_subscription.events",
        ),
        (
            "unknown event",
            json!({"events": ["incident.exploded"]}),
            "events[0]",
        ),
        (
            "repeated event",
            json!({"events": ["incident.triggered", "incident.triggered"]}),
            "events[1]",
        ),
        (
            "filter type",
            json!({"filter": {"type": "planet_reference"}}),
            "filter.type",
        ),
        (
            "filter id",
            json!({"filter": {"type": "service_reference"}}),
            "filter.id",
        ),
        (
            "unknown service",
            json!({"filter": {"type": "service_reference", "id": "PNOPE00"}}),
            "service PNOPE00 not found",
        ),
        (
            "type",
            json!({"type": "subscription"}),
            "webhook_subscription.type",
        ),
        (
            "header",
            json!({"delivery_method": {"type": "http_delivery_method", "url": "https://x", "custom_headers": [{"name": "bad header", "value": "v"}]}}),
            "custom_headers[0]",
        ),
    ];
    for (what, patch, needle) in cases {
        let body = if what == "no body object" {
            json!({})
        } else {
            let mut b = ok_body.clone();
            for (k, v) in patch.as_object().unwrap() {
                b[k] = v.clone();
            }
            json!({"webhook_subscription": b})
        };
        let r = call(&sim, "POST", "/webhook_subscriptions", Some(&body)).await;
        assert_eq!(r.status, 400, "{what}: {}", r.text);
        assert!(r.text.contains(needle), "{what}: {}", r.text);
    }
    let bad_filter = get(&sim, "/webhook_subscriptions?filter_type=service").await;
    assert_eq!(bad_filter.status, 400);
    assert!(bad_filter.text.contains("filter_id"), "{}", bad_filter.text);

    let stats = sim.stats();
    assert_eq!(stats.by_status("POST", "/webhook_subscriptions", 200), 2);
    assert_eq!(stats.by_status("POST", "/webhook_subscriptions", 400), 11);
    assert_eq!(stats.count("GET", "/webhook_subscriptions/{id}"), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn webhook_routes_need_their_scopes() {
    let sim = start(SimConfig {
        api_tokens: vec![
            sim::SimToken::scoped("reader", &["webhook_subscriptions.read"]),
            sim::SimToken::scoped("writer", &["webhook_subscriptions.write"]),
        ],
        ..config()
    })
    .await;
    let list = get_with(&sim, "writer", "/webhook_subscriptions").await;
    assert_eq!(list.status, 403, "{}", list.text);
    assert!(
        list.text.contains("webhook_subscriptions.read"),
        "{}",
        list.text
    );
    assert_eq!(
        get_with(&sim, "reader", "/webhook_subscriptions")
            .await
            .status,
        200
    );
    let create = http()
        .post(format!("{}/webhook_subscriptions", sim.base_url()))
        .header("Authorization", "Token token=reader")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(create.status(), 403);
    assert!(
        create
            .text()
            .await
            .unwrap()
            .contains("webhook_subscriptions.write")
    );
    sim.shutdown().await;
}
