//! `POST /v1/entities/cards/batch`: several entity cards in one call, each
//! what the single entity route answers, in request order, failures inline.

use serde_json::{Value, json};

use crate::helpers::{BASE_TOML, TestApp, settings_from, sim_env, small_sim, start_sim};
use crate::store::Db;

async fn batch(app: &TestApp, body: Value) -> (u16, Value) {
    let res = app
        .http
        .post(app.url("/v1/entities/cards/batch"))
        .json(&body)
        .send()
        .await
        .expect("request sent");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn entity_cards_come_in_one_batch(db: Db) {
    let sim = start_sim(small_sim()).await;
    let mut env = sim_env(&sim);
    env.push(("DUTYCARD_PAGERDUTY__API_TOKEN".into(), sim.api_token()));
    let store_toml = format!("[store]\nurl = \"{}\"\n", db.url());
    let app = TestApp::spawn(settings_from(&[BASE_TOML, &store_toml], &env)).await;
    let ids: Vec<String> = sim
        .account()
        .services
        .iter()
        .take(3)
        .map(|s| s.id.clone())
        .collect();
    for (entity, id) in [("shop", &ids[0]), ("shop", &ids[1]), ("search", &ids[2])] {
        let res = app
            .http
            .post(app.url("/api/pagerduty/mapping/entity"))
            .json(&json!({"entityRef": format!("component:default/{entity}"), "serviceId": id}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }

    let (status, body) = batch(
        &app,
        json!({"entities": ["component:default/search", "Component:Default/Shop", "component:nothing"]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let cards = body["cards"].as_array().expect("cards");
    let refs: Vec<&str> = cards
        .iter()
        .map(|c| c["entity_ref"].as_str().unwrap())
        .collect();
    assert_eq!(
        refs,
        [
            "component:default/search",
            "component:default/shop",
            "component:default/nothing"
        ],
        "request order, normalized"
    );
    assert_eq!(cards[0]["status"], 200, "{}", cards[0]);
    assert_eq!(
        cards[0]["card"]["services"][0]["service_id"],
        ids[2].as_str()
    );
    let shop: Vec<&str> = cards[1]["card"]["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["service_id"].as_str().unwrap())
        .collect();
    assert_eq!(shop, [ids[0].as_str(), ids[1].as_str()]);
    assert_eq!(cards[1]["card"]["summary"]["services"], 2);
    // Each entry is what the single route answers.
    let single: Value = app
        .get("/v1/entities/component/default/shop/card")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        single["summary"]["status"],
        cards[1]["card"]["summary"]["status"]
    );
    assert_eq!(
        (cards[2]["status"].as_u64(), cards[2].get("card")),
        (Some(404), None)
    );
    assert!(
        cards[2]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nothing"),
        "{}",
        cards[2]
    );

    // Bad input names the field; nothing is read.
    for (bad, field) in [
        (json!({"entities": []}), "entities"),
        (
            json!({"entities": ["component:default/a", "not a ref"]}),
            "entities[1]",
        ),
        (
            json!({"entities": vec!["component:default/a"; 51]}),
            "entities",
        ),
        (json!({"refs": ["component:default/a"]}), "refs"),
    ] {
        let (status, body) = batch(&app, bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {body}");
        let named = body["error"]["details"]["field"]
            .as_str()
            .unwrap_or_default();
        assert!(named.contains(field), "{bad}: {body}");
    }
}

#[tokio::test]
async fn entity_cards_come_in_one_batch_on_sqlite() {
    entity_cards_come_in_one_batch(Db::sqlite()).await;
}

#[tokio::test]
async fn entity_cards_come_in_one_batch_on_postgres() {
    entity_cards_come_in_one_batch(Db::postgres()).await;
}
