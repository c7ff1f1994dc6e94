//! `POST /services/{id}/integrations` and
//! `GET /services/{id}/integrations/{integration_id}`.

use serde_json::{Value, json};

use crate::common::*;

async fn create(sim: &sim::SimHandle, service: &str, integration: Value) -> Resp {
    post_json(
        sim,
        &format!("/services/{service}/integrations"),
        &json!({ "integration": integration }),
    )
    .await
}

#[tokio::test]
async fn a_backstage_integration_gets_a_key_that_triggers_incidents() {
    let sim = start(config()).await;
    let service = sim
        .account()
        .services
        .iter()
        .find(|s| s.status == "active")
        .unwrap()
        .id
        .clone();
    // What PagerDuty's Backstage backend sends: no type, the vendor decides.
    let r = create(
        &sim,
        &service,
        json!({"name": "Backstage", "service": {"id": service, "type": "service_reference"},
               "vendor": {"id": "PRO19CT", "type": "vendor_reference"}}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let i = r.json()["integration"].clone();
    assert_eq!(i["type"], "events_api_v2_inbound_integration");
    assert_eq!(i["name"], "Backstage");
    assert_eq!(i["vendor"]["id"], "PRO19CT");
    assert_eq!(i["service"]["id"], service.as_str());
    let key = i["integration_key"].as_str().unwrap().to_owned();
    assert!(
        key.len() == 32 && key.chars().all(|c| c.is_ascii_hexdigit()),
        "{key}"
    );
    let id = i["id"].as_str().unwrap().to_owned();

    // The new key routes Events API v2 events to the service.
    let trigger = json!({"routing_key": key, "event_action": "trigger", "dedup_key": "new-key",
        "payload": {"summary": "Backstage says hi", "source": "backstage", "severity": "error"}});
    let enq = post_raw(&sim, "/v2/enqueue", &trigger.to_string()).await;
    assert_eq!(enq.status, 202, "{}", enq.text);
    let account = sim.account();
    let inc = account
        .incidents
        .iter()
        .find(|i| i.incident_key == "new-key")
        .unwrap();
    assert_eq!(inc.service_id, service);
    assert_eq!(
        account.service_by_integration_key(&key).unwrap().id,
        service
    );

    let one = get_ok(&sim, &format!("/services/{service}/integrations/{id}")).await;
    assert_eq!(one["integration"]["integration_key"], key.as_str());
    assert_eq!(one["integration"]["service"]["type"], "service_reference");
    let full = get_ok(
        &sim,
        &format!("/services/{service}/integrations/{id}?include[]=services&include[]=vendors"),
    )
    .await;
    assert_eq!(full["integration"]["service"]["type"], "service");
    assert_eq!(full["integration"]["vendor"]["type"], "vendor");
    assert_eq!(full["integration"]["vendor"]["name"], "Backstage");
    let listed = get_ok(&sim, &format!("/services/{service}?include[]=integrations")).await;
    assert!(ids(&listed["service"]["integrations"]).contains(&id));
    sim.shutdown().await;
}

#[tokio::test]
async fn integration_bodies_are_validated_naming_the_field() {
    let sim = start(config()).await;
    let a = sim.account();
    let (service, other) = (a.services[0].id.clone(), a.services[1].id.clone());
    let email = create(
        &sim,
        &service,
        json!({"type": "generic_email_inbound_integration", "integration_email": "alerts@sim.pagerduty.com"}),
    )
    .await;
    assert_eq!(email.status, 201, "{}", email.text);
    assert_eq!(email.json()["integration"]["name"], "Email");
    assert!(email.json()["integration"].get("integration_key").is_none());

    let cases = [
        (json!({"name": "x"}), "integration.type is required"),
        (
            json!({"type": "nagios_inbound_integration"}),
            "integration.type",
        ),
        (
            json!({"vendor": {"id": "PNOPE00"}}),
            "integration.vendor.id PNOPE00",
        ),
        (
            json!({"type": "generic_email_inbound_integration", "vendor": {"id": "PRO19CT"}}),
            "does not match vendor PRO19CT",
        ),
        (
            json!({"type": "generic_email_inbound_integration"}),
            "integration_email is required",
        ),
        (
            json!({"type": "generic_email_inbound_integration", "integration_email": "alerts@sim.pagerduty.com"}),
            "already used",
        ),
        (
            json!({"type": "events_api_v2_inbound_integration", "integration_email": "x@y"}),
            "only for generic_email_inbound_integration",
        ),
        (
            json!({"type": "events_api_v2_inbound_integration", "service": {"id": other}}),
            "integration.service.id",
        ),
        (
            json!({"type": "events_api_v2_inbound_integration", "name": ""}),
            "integration.name",
        ),
        (json!("text"), "integration must be an object"),
    ];
    for (integration, needle) in cases {
        let r = create(&sim, &service, integration.clone()).await;
        assert_eq!(r.status, 400, "{integration}: {}", r.text);
        assert!(r.text.contains(needle), "{integration}: {}", r.text);
    }
    let no_body = post_json(
        &sim,
        &format!("/services/{service}/integrations"),
        &json!({}),
    )
    .await;
    assert!(
        no_body.text.contains("integration is required"),
        "{}",
        no_body.text
    );
    let missing = create(
        &sim,
        "PNOPE00",
        json!({"type": "events_api_v2_inbound_integration"}),
    )
    .await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        get(&sim, &format!("/services/{service}/integrations/PNOPE00"))
            .await
            .status,
        404
    );
    // An integration of another service is not found under this one.
    let theirs = &a.services[1].integrations[0].id;
    assert_eq!(
        get(&sim, &format!("/services/{service}/integrations/{theirs}"))
            .await
            .status,
        404
    );
    let bad_include = get(
        &sim,
        &format!("/services/{other}/integrations/{theirs}?include[]=teams"),
    )
    .await;
    assert_eq!(bad_include.status, 400);
    let stats = sim.stats();
    assert_eq!(
        stats.by_status("POST", "/services/{id}/integrations", 201),
        1
    );
    assert_eq!(
        stats.by_status("POST", "/services/{id}/integrations", 400),
        11
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn creating_an_integration_needs_services_write() {
    let sim = start(sim::SimConfig {
        api_tokens: vec![sim::SimToken::scoped("reader", &["services.read"])],
        ..config()
    })
    .await;
    let a = sim.account();
    let (service, integration) = (&a.services[0].id, &a.services[0].integrations[0].id);
    let read = get_with(
        &sim,
        "reader",
        &format!("/services/{service}/integrations/{integration}"),
    )
    .await;
    assert_eq!(read.status, 200, "{}", read.text);
    let write = http()
        .post(format!(
            "{}/services/{service}/integrations",
            sim.base_url()
        ))
        .header("Authorization", "Token token=reader")
        .json(&json!({"integration": {"type": "events_api_v2_inbound_integration"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), 403);
    assert!(write.text().await.unwrap().contains("services.write"));
    sim.shutdown().await;
}
