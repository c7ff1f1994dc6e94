//! `/dependencies/service/{id}` and `/services/{id}/integration/{vendorId}`
//! against the simulator's PagerDuty routes.

use serde_json::{Value, json};

use crate::helpers::{SimApp, send, small_sim, spawn_with_sim};

const P: &str = "/api/pagerduty";

fn supporters_of(body: &Value, dependent: &str) -> Vec<String> {
    body["relationships"]
        .as_array()
        .expect("relationships")
        .iter()
        .filter(|r| r["dependent_service"]["id"] == dependent)
        .map(|r| r["supporting_service"]["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn dependencies_are_listed_added_and_removed_like_the_node_backend() {
    let SimApp { app, sim } = spawn_with_sim(small_sim(), "").await;
    let mut ids: Vec<String> = sim
        .account()
        .services
        .iter()
        .map(|s| s.id.clone())
        .collect();
    ids.sort();
    let (a, b) = (ids[0].clone(), ids[1].clone());
    let path = format!("{P}/dependencies/service/{a}");

    let (status, before) = send(&app, reqwest::Method::GET, &path, None).await;
    assert_eq!(status, 200, "{before}");
    assert!(!supporters_of(&before, &a).contains(&b));
    let (status, body) = send(&app, reqwest::Method::POST, &path, Some(json!([b]))).await;
    assert_eq!((status, body), (200, json!("OK")));
    let (_, after) = send(&app, reqwest::Method::GET, &path, None).await;
    assert!(supporters_of(&after, &a).contains(&b), "{after}");
    let added = after["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["supporting_service"]["id"] == b.as_str())
        .unwrap();
    let keys: Vec<&str> = added
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["dependent_service", "id", "supporting_service", "type"],
        "the Node shape"
    );
    let (status, _) = send(&app, reqwest::Method::DELETE, &path, Some(json!([b]))).await;
    assert_eq!(status, 200);
    let (_, removed) = send(&app, reqwest::Method::GET, &path, None).await;
    assert!(!supporters_of(&removed, &a).contains(&b), "{removed}");

    // Bad input is named; PagerDuty's 404 passes through.
    let (status, body) = send(&app, reqwest::Method::POST, &path, Some(json!([]))).await;
    assert_eq!(status, 400);
    assert!(
        body["errors"][0]
            .as_str()
            .unwrap()
            .contains("'dependencies'"),
        "{body}"
    );
    let (status, body) = send(
        &app,
        reqwest::Method::POST,
        &path,
        Some(json!(["not an id"])),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["errors"][0].as_str().unwrap().contains("[0]"),
        "{body}"
    );
    let (status, _) = send(
        &app,
        reqwest::Method::POST,
        &path,
        Some(json!(["PNOSUCH1"])),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = send(
        &app,
        reqwest::Method::GET,
        &format!("{P}/dependencies/service/PNOSUCH1"),
        None,
    )
    .await;
    assert_eq!(status, 404);

    // `?account=`: a known one is the same account; an unknown one is a
    // 400 naming it and the valid ids, and changes nothing.
    let (status, body) = send(
        &app,
        reqwest::Method::GET,
        &format!("{path}?account=default"),
        None,
    )
    .await;
    assert_eq!((status, &body), (200, &removed));
    for method in [
        reqwest::Method::GET,
        reqwest::Method::POST,
        reqwest::Method::DELETE,
    ] {
        let body = (method != reqwest::Method::GET).then(|| json!([b]));
        let (status, answer) =
            send(&app, method.clone(), &format!("{path}?account=nope"), body).await;
        assert_eq!(status, 400, "{method}: {answer}");
        assert_unknown_account(&answer);
    }
    let (_, after) = send(&app, reqwest::Method::GET, &path, None).await;
    assert!(!supporters_of(&after, &a).contains(&b), "{after}");
}

/// The Backstage 400 for `?account=nope`: names it and the valid ids.
fn assert_unknown_account(body: &Value) {
    let message = body["errors"][0].as_str().unwrap_or_default();
    assert!(
        message.contains("account `nope`") && message.contains("valid accounts are default"),
        "{body}"
    );
}

fn integrations(sim: &sim::SimHandle, id: &str) -> usize {
    let account = sim.account();
    account
        .services
        .iter()
        .find(|s| s.id == id)
        .unwrap()
        .integrations
        .len()
}

#[tokio::test]
async fn a_created_integration_answers_an_alias_that_works_here() {
    let SimApp { app, sim } = spawn_with_sim(small_sim(), "").await;
    let id = sim.account().services[0].id.clone();
    let before = integrations(&sim, &id);
    let (status, body) = send(
        &app,
        reqwest::Method::POST,
        &format!("{P}/services/{id}/integration/PRO19CT"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let alias = body.as_str().expect("a bare string").to_owned();
    assert!(alias.starts_with("dcak_"), "{alias}");
    assert_eq!(
        integrations(&sim, &id),
        before + 1,
        "one integration created"
    );
    // The alias finds the service's card (mapped back to the new key).
    let res = app.get(&format!("/v1/cards?integration_key={alias}")).await;
    assert_eq!(res.status(), 200);
    let card: Value = res.json().await.unwrap();
    assert_eq!(card["service"]["data"]["id"], id.as_str());

    let (status, _) = send(
        &app,
        reqwest::Method::POST,
        &format!("{P}/services/{id}/integration/NOVENDOR1"),
        None,
    )
    .await;
    assert_eq!(status, 400, "PagerDuty refuses an unknown vendor");
    let (status, body) = send(
        &app,
        reqwest::Method::POST,
        &format!("{P}/services/{id}/integration/PRO19CT?account=nope"),
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert_unknown_account(&body);
    assert_eq!(
        integrations(&sim, &id),
        before + 1,
        "nothing created for an unknown account"
    );
    let (status, _) = send(
        &app,
        reqwest::Method::POST,
        &format!("{P}/services/PNOSUCH1/integration/PRO19CT"),
        None,
    )
    .await;
    assert_eq!(status, 404);
}
