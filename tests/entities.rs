//! `GET /v1/entities/{kind}/{namespace}/{name}/card`: one card over every
//! service mapped to an entity, with one failing service reported inside.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::helpers::{BASE_TOML, TestApp, settings_from, sim_env, small_sim, start_sim};
use crate::store::Db;

async fn an_entity_card_combines_its_services_and_reports_a_failing_one_inside(db: Db) {
    let sim = start_sim(small_sim()).await;
    let mut env = sim_env(&sim);
    env.push(("DUTYCARD_PAGERDUTY__API_TOKEN".into(), sim.api_token()));
    let store_toml = format!("[store]\nurl = \"{}\"\n", db.url());
    let app = TestApp::spawn(settings_from(&[BASE_TOML, &store_toml], &env)).await;

    // The two services with the most open incidents, on one entity.
    let account = sim.account();
    let mut services: Vec<_> = account.services.iter().collect();
    services.sort_by_key(|s| {
        (
            std::cmp::Reverse(account.open_incidents(&s.id).len()),
            s.id.clone(),
        )
    });
    let picked: Vec<String> = services.iter().take(2).map(|s| s.id.clone()).collect();
    for id in &picked {
        let res = app
            .http
            .post(app.url("/api/pagerduty/mapping/entity"))
            .json(&json!({"entityRef": "component:default/shop", "serviceId": id}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    // A third mapping names an account that is not configured: its card fails.
    let store = store::Store::open(&store::StoreOptions::new(db.url()))
        .await
        .unwrap();
    store
        .upsert_mapping(&store::NewMapping {
            service_id: "PGONE01".into(),
            entity_ref: "component:default/shop".into(),
            integration_key: None,
            account: "retired".into(),
        })
        .await
        .unwrap();
    store.close().await;

    let path = "/v1/entities/component/default/shop/card";
    let res = app.get(path).await;
    assert_eq!(res.status(), 200);
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["entity_ref"], "component:default/shop");
    let items = body["services"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    for (item, id) in items.iter().zip(&picked) {
        assert_eq!(
            (item["service_id"].as_str(), item["status"].as_u64()),
            (Some(id.as_str()), Some(200)),
            "{item}"
        );
        assert_eq!(item["card"]["service"]["data"]["id"], id.as_str());
    }
    assert_eq!(items[2]["status"], 404, "{}", items[2]);
    assert!(
        items[2]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("retired")
    );

    let summary = &body["summary"];
    assert_eq!(
        (
            summary["services"].as_u64(),
            summary["failed_services"].as_u64()
        ),
        (Some(3), Some(1))
    );
    // Every card's newest incidents, merged newest first, each naming its service.
    let expected: usize = items[..2]
        .iter()
        .map(|i| {
            i["card"]["incidents"]["data"]["newest"]
                .as_array()
                .unwrap()
                .len()
        })
        .sum();
    let merged = summary["open_incidents"].as_array().unwrap();
    assert_eq!(merged.len(), expected);
    assert!(
        expected > 0,
        "the simulator's busiest services have open incidents"
    );
    let times: Vec<&str> = merged
        .iter()
        .map(|i| i["created_at"].as_str().unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "newest first");
    assert!(merged.iter().all(
        |i| picked.contains(&i["service_id"].as_str().unwrap().to_owned())
            && i["service_name"].is_string()
    ));
    // One on-call entry per distinct policy.
    let policies: BTreeSet<&str> = items[..2]
        .iter()
        .filter_map(|i| i["card"]["oncall"]["data"]["escalation_policy_id"].as_str())
        .collect();
    assert_eq!(summary["oncall"].as_array().unwrap().len(), policies.len());
    let triggered: u64 = items[..2]
        .iter()
        .map(|i| {
            i["card"]["incidents"]["data"]["triggered"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(summary["triggered"].as_u64(), Some(triggered));
    let worst = if triggered > 0 {
        "triggered"
    } else if summary["acknowledged"].as_u64() > Some(0) {
        "acknowledged"
    } else {
        "unknown"
    };
    assert_eq!(summary["status"], worst);

    // Unchanged: 304.
    let res = app
        .http
        .get(app.url(path))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 304);

    // No mapping: 404; a bad option: 400 naming it.
    let res = app.get("/v1/entities/component/default/nothing/card").await;
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    let res = app.get(&format!("{path}?include=bogus")).await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["details"]["parameter"], "include");

    // `?account=`: an unknown one is a 400 naming the parameter and the
    // valid ids; a known one keeps only that account's services (the
    // retired account's mapping drops out).
    let res = app.get(&format!("{path}?account=nope")).await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["details"]["parameter"], "account", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("valid accounts are default"),
        "{body}"
    );
    let res = app.get(&format!("{path}?account=default")).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let ids: Vec<&str> = body["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["service_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, picked);
    assert_eq!(body["summary"]["failed_services"], 0, "{body}");
}

#[tokio::test]
async fn an_entity_card_combines_its_services_and_reports_a_failing_one_inside_on_sqlite() {
    an_entity_card_combines_its_services_and_reports_a_failing_one_inside(Db::sqlite()).await;
}

#[tokio::test]
async fn an_entity_card_combines_its_services_and_reports_a_failing_one_inside_on_postgres() {
    an_entity_card_combines_its_services_and_reports_a_failing_one_inside(Db::postgres()).await;
}
