//! Service dependencies: associate, list from both ends, disassociate,
//! PagerDuty's validation and limits.

use serde_json::{Value, json};

use crate::common::*;

const ASSOCIATE: &str = "/service_dependencies/associate";
const DISASSOCIATE: &str = "/service_dependencies/disassociate";

fn pair(supporting: &str, dependent: &str) -> Value {
    json!({"supporting_service": {"id": supporting, "type": "service"},
           "dependent_service": {"id": dependent, "type": "service"}})
}

fn body(pairs: &[Value]) -> Value {
    json!({ "relationships": pairs })
}

async fn list(sim: &sim::SimHandle, id: &str) -> Vec<(String, String)> {
    get_ok(
        sim,
        &format!("/service_dependencies/technical_services/{id}"),
    )
    .await["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["type"], "service_dependency");
            assert!(r["id"].as_str().unwrap().starts_with('D'));
            (
                r["supporting_service"]["id"].as_str().unwrap().to_owned(),
                r["dependent_service"]["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn associated_services_show_on_both_ends_until_disassociated() {
    let sim = start(config()).await;
    let s: Vec<String> = sim
        .account()
        .services
        .iter()
        .map(|s| s.id.clone())
        .collect();
    let (api, db, cache) = (&s[0], &s[1], &s[2]);
    // Backstage's body: supporting and dependent, typed "service".
    let r = post_json(&sim, ASSOCIATE, &body(&[pair(db, api), pair(cache, api)])).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let made = r.json()["relationships"].as_array().unwrap().clone();
    assert_eq!(made.len(), 2);
    assert_eq!(
        made[0]["supporting_service"]["type"],
        "technical_service_reference"
    );
    let first_id = made[0]["id"].clone();

    assert_eq!(
        list(&sim, api).await,
        vec![(db.clone(), api.clone()), (cache.clone(), api.clone())]
    );
    assert_eq!(list(&sim, db).await, vec![(db.clone(), api.clone())]);
    assert_eq!(sim.account().dependencies.len(), 2);

    // Associating again changes nothing and answers the same dependency.
    let again = post_json(&sim, ASSOCIATE, &body(&[pair(db, api)])).await;
    assert_eq!(again.json()["relationships"][0]["id"], first_id);
    assert_eq!(sim.account().dependencies.len(), 2);

    let r = post_json(&sim, DISASSOCIATE, &body(&[pair(db, api)])).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["relationships"][0]["id"], first_id);
    assert_eq!(list(&sim, api).await, vec![(cache.clone(), api.clone())]);
    assert!(list(&sim, db).await.is_empty());
    let gone = post_json(&sim, DISASSOCIATE, &body(&[pair(db, api)])).await;
    assert_eq!(gone.status, 404, "{}", gone.text);
    assert!(gone.text.contains("does not depend on"), "{}", gone.text);

    let stats = sim.stats();
    assert_eq!(stats.by_status("POST", ASSOCIATE, 200), 2);
    assert_eq!(stats.by_status("POST", DISASSOCIATE, 404), 1);
    assert_eq!(
        stats.count("GET", "/service_dependencies/technical_services/{id}"),
        4
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn bad_dependencies_are_refused_naming_the_problem() {
    let sim = start(config()).await;
    let s: Vec<String> = sim
        .account()
        .services
        .iter()
        .map(|s| s.id.clone())
        .collect();
    let (a, b, c) = (&s[0], &s[1], &s[2]);
    assert_eq!(
        post_json(&sim, ASSOCIATE, &body(&[pair(a, b), pair(b, c)]))
            .await
            .status,
        200
    );

    let cases = [
        (body(&[pair(a, a)]), 400, "cannot depend on itself"),
        (body(&[pair(c, a)]), 400, "cycle"),
        (
            body(&[pair(a, "PNOPE00")]),
            404,
            "service PNOPE00 not found",
        ),
        (
            json!({"relationships": [{"supporting_service": {"id": a, "type": "business_service"},
                                      "dependent_service": {"id": b, "type": "service"}}]}),
            404,
            "business service",
        ),
        (
            json!({"relationships": [{"supporting_service": {"id": a, "type": "team"},
                                      "dependent_service": {"id": b, "type": "service"}}]}),
            400,
            "relationships[0].supporting_service.type",
        ),
        (
            json!({"relationships": [{"supporting_service": {"id": a, "type": "service"}}]}),
            400,
            "relationships[0].dependent_service is required",
        ),
        (json!({"relationships": []}), 400, "must not be empty"),
        (json!({}), 400, "relationships is required"),
    ];
    for (b, status, needle) in cases {
        let r = post_json(&sim, ASSOCIATE, &b).await;
        assert_eq!(r.status, status, "{b}: {}", r.text);
        assert!(r.text.contains(needle), "{b}: {}", r.text);
    }
    // All or nothing: the good first pair of a failing request is not kept.
    let r = post_json(&sim, ASSOCIATE, &body(&[pair(c, &s[3]), pair(c, a)])).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("relationships[1]"), "{}", r.text);
    assert_eq!(sim.account().dependencies.len(), 2);
    let bad_json = http()
        .post(format!("{}{ASSOCIATE}", sim.base_url()))
        .header("Authorization", format!("Token token={}", sim.api_token()))
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_json.status(), 400);
    assert!(bad_json.text().await.unwrap().contains("not valid JSON"));
    assert_eq!(
        get(&sim, "/service_dependencies/technical_services/PNOPE00")
            .await
            .status,
        404
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn dependency_routes_need_services_scopes() {
    let sim = start(sim::SimConfig {
        api_tokens: vec![sim::SimToken::scoped("reader", &["services.read"])],
        ..config()
    })
    .await;
    let id = sim.account().services[0].id.clone();
    let read = get_with(
        &sim,
        "reader",
        &format!("/service_dependencies/technical_services/{id}"),
    )
    .await;
    assert_eq!(read.status, 200, "{}", read.text);
    let write = http()
        .post(format!("{}{ASSOCIATE}", sim.base_url()))
        .header("Authorization", "Token token=reader")
        .json(&body(&[pair(&id, &id)]))
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), 403);
    assert!(write.text().await.unwrap().contains("services.write"));
    sim.shutdown().await;
}
