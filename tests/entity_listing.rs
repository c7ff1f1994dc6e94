//! The mapping listings that read the Backstage catalog, against both
//! stores: `GET {prefix}/mapping/entity`'s `InSync`/`OutOfSync`/`NotMapped`
//! from the stored rows and the catalog's annotated entities, and the paged
//! entity listing `POST {prefix}/mapping/entities`. The catalog is a fake
//! (wiremock on port 0) serving `entities/by-query` in two pages joined by
//! a cursor, and checking the service token.

use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{BASE_TOML, TestApp, send, settings_from, sim_env, small_sim, start_sim};
use crate::store::Db;

const P: &str = "/api/pagerduty";
const BY_QUERY: &str = "/api/catalog/entities/by-query";

/// A catalog entity with the PagerDuty annotations the Node backend reads.
fn entity(name: &str, service_id: &str, key: &str) -> Value {
    let mut annotations = json!({"backstage.io/source-location": "url:https://example.invalid"});
    if !service_id.is_empty() {
        annotations["pagerduty.com/service-id"] = json!(service_id);
    }
    if !key.is_empty() {
        annotations["pagerduty.com/integration-key"] = json!(key);
    }
    json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
           "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"),
                        "annotations": annotations},
           "spec": {"type": "service", "owner": format!("group:default/team-{name}"),
                    "system": "shop", "lifecycle": "production"}})
}

/// Serves `entities` for the by-query `filter` in two pages: the first
/// (asked with the filter, no cursor) names a cursor, the second (asked
/// with only the cursor) ends the list.
async fn serve_query(server: &MockServer, filter: &str, entities: &[Value]) {
    let half = entities.len().div_ceil(2);
    let cursor = format!("cursor-{}", filter.len());
    Mock::given(method("GET"))
        .and(path(BY_QUERY))
        .and(query_param("filter", filter))
        .and(query_param_is_missing("cursor"))
        .and(header("authorization", "Bearer catalog-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "items": &entities[..half], "totalItems": entities.len(),
            "pageInfo": {"nextCursor": cursor}})))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(BY_QUERY))
        .and(query_param("cursor", cursor.as_str()))
        .and(query_param_is_missing("filter"))
        .and(header("authorization", "Bearer catalog-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "items": &entities[half..], "totalItems": entities.len(), "pageInfo": {}})))
        .mount(server)
        .await;
}

/// A catalog whose annotated entities and components are `annotated` and
/// `components`.
async fn fake_catalog(annotated: &[Value], components: &[Value]) -> MockServer {
    let server = MockServer::start().await;
    serve_query(
        &server,
        "metadata.annotations.pagerduty.com/service-id",
        annotated,
    )
    .await;
    serve_query(&server, "kind=component", components).await;
    server
}

/// A catalog that fails every list.
async fn broken_catalog() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(BY_QUERY))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    server
}

async fn app_on(sim: &sim::SimHandle, db: &Db, catalog: &MockServer) -> TestApp {
    let mut env = sim_env(sim);
    env.push(("DUTYCARD_PAGERDUTY__API_TOKEN".into(), sim.api_token()));
    let toml = format!(
        "[store]\nurl = \"{}\"\nstatement_timeout_ms = 1000\nacquire_timeout_ms = 500\n\
         [backstage]\ncatalog_url = \"{}/api/catalog\"\ncatalog_token = \"catalog-token\"\n",
        db.url(),
        catalog.uri()
    );
    TestApp::spawn(settings_from(&[BASE_TOML, &toml], &env)).await
}

async fn map(app: &TestApp, entity_ref: &str, service_id: &str) {
    let (status, body) = send(
        app,
        reqwest::Method::POST,
        &format!("{P}/mapping/entity"),
        Some(json!({"entityRef": entity_ref, "serviceId": service_id})),
    )
    .await;
    assert_eq!(status, 200, "mapping {service_id}: {body}");
}

/// Services with an integration key, sorted by id, and the first key of each.
fn keyed(sim: &sim::SimHandle) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = sim
        .account()
        .services
        .iter()
        .filter_map(|s| {
            let key = s
                .integrations
                .iter()
                .find_map(|i| i.integration_key.clone())?;
            Some((s.id.clone(), key))
        })
        .collect();
    out.sort();
    assert!(
        out.len() >= 5,
        "the simulator has {} keyed services",
        out.len()
    );
    out
}

fn status_of<'a>(rows: &'a Value, service_id: &str) -> (&'a str, &'a str) {
    let row = rows["mappings"]
        .as_array()
        .expect("mappings")
        .iter()
        .find(|r| r["serviceId"] == service_id)
        .unwrap_or_else(|| panic!("no row for {service_id} in {rows}"));
    (
        row["entityRef"].as_str().unwrap(),
        row["status"].as_str().unwrap(),
    )
}

async fn statuses_follow_the_catalog(db: Db) {
    let sim = start_sim(small_sim()).await;
    let ids = keyed(&sim);
    let annotated = [
        entity("one", &ids[0].0, ""),
        entity("two", &ids[1].0, ""),
        entity("by-key", "", &ids[3].1),
    ];
    let catalog = fake_catalog(&annotated, &[]).await;
    let app = app_on(&sim, &db, &catalog).await;
    map(&app, "component:default/one", &ids[0].0).await;
    map(&app, "component:default/elsewhere", &ids[1].0).await;
    map(&app, "component:default/three", &ids[2].0).await;

    let (status, body) = send(
        &app,
        reqwest::Method::GET,
        &format!("{P}/mapping/entity"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("catalogError").is_none(), "{body}");
    assert_eq!(
        status_of(&body, &ids[0].0),
        ("component:default/one", "InSync")
    );
    assert_eq!(
        status_of(&body, &ids[1].0),
        ("component:default/elsewhere", "OutOfSync"),
        "the stored row names another entity than the annotated one"
    );
    assert_eq!(
        status_of(&body, &ids[2].0),
        ("component:default/three", "OutOfSync"),
        "stored, but no entity is annotated with it"
    );
    assert_eq!(
        status_of(&body, &ids[3].0),
        ("component:default/by-key", "InSync"),
        "no row; an entity annotated with one of its keys"
    );
    assert_eq!(status_of(&body, &ids[4].0), ("", "NotMapped"));
    // Fixing the row puts it in sync.
    map(&app, "component:default/two", &ids[1].0).await;
    let (_, body) = send(
        &app,
        reqwest::Method::GET,
        &format!("{P}/mapping/entity"),
        None,
    )
    .await;
    assert_eq!(
        status_of(&body, &ids[1].0),
        ("component:default/two", "InSync")
    );

    // A catalog that fails: the store alone decides, and the answer says so.
    let broken = broken_catalog().await;
    let app = app_on(&sim, &db, &broken).await;
    let (status, body) = send(
        &app,
        reqwest::Method::GET,
        &format!("{P}/mapping/entity"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["catalogError"].as_str().unwrap().contains("HTTP 500"),
        "{body}"
    );
    assert_eq!(
        status_of(&body, &ids[2].0),
        ("component:default/three", "InSync")
    );
    assert_eq!(status_of(&body, &ids[3].0), ("", "NotMapped"));
}

#[tokio::test]
async fn mapping_statuses_follow_the_catalog_on_sqlite() {
    statuses_follow_the_catalog(Db::sqlite()).await;
}

#[tokio::test]
async fn mapping_statuses_follow_the_catalog_on_postgres() {
    statuses_follow_the_catalog(Db::postgres()).await;
}

fn anchor() -> Value {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/backstage/anchor-store-shapes.json");
    let all: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("JSON");
    all["routes"]["list_entities"].clone()
}

fn key_set(v: &Value) -> Vec<String> {
    let mut keys: Vec<String> = v.as_object().expect("an object").keys().cloned().collect();
    keys.sort();
    keys
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("a list")
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

fn names(body: &Value) -> Vec<&str> {
    body["entities"]
        .as_array()
        .unwrap_or_else(|| panic!("no entities in {body}"))
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect()
}

async fn entities_are_listed_like_the_node_backend(db: Db) {
    let sim = start_sim(small_sim()).await;
    let ids = keyed(&sim);
    let components = [
        entity("checkout", &ids[0].0, ""),
        entity("pay", "", &ids[1].1),
        entity("docs", "", ""),
        entity("bare", "", ""),
        entity("ghost", "PNOSUCH", ""),
    ];
    let catalog = fake_catalog(&[], &components).await;
    let app = app_on(&sim, &db, &catalog).await;
    map(&app, "component:default/checkout", &ids[0].0).await;
    map(&app, "component:default/docs", &ids[1].0).await;
    let route = format!("{P}/mapping/entities");
    let list = |body: Value| send(&app, reqwest::Method::POST, &route, Some(body));

    // The admin page's first call.
    let (status, body) = list(json!({"offset": 0, "limit": 10})).await;
    assert_eq!(status, 200, "{body}");
    let shape = anchor();
    assert_eq!(key_set(&body), strings(&shape["keys"]));
    assert_eq!(body["totalCount"], 5);
    assert_eq!(
        names(&body),
        ["checkout", "pay", "docs", "bare", "ghost"],
        "the catalog's order, both pages"
    );
    let first = &body["entities"][0];
    assert_eq!(key_set(first), strings(&shape["item_keys"]));
    assert_eq!(
        key_set(&first["annotations"]),
        strings(&shape["annotation_keys"])
    );
    assert_eq!(
        first["system"], "\"shop\"",
        "JSON-stringified like {}",
        shape["stringified_system"]
    );
    assert_eq!(first["owner"], "\"group:default/team-checkout\"");
    assert_eq!(first["lifecycle"], "\"production\"");
    assert_eq!(
        (first["type"].as_str(), first["id"].as_str()),
        (Some("Component"), Some("uid-checkout"))
    );
    let service = sim
        .account()
        .services
        .iter()
        .find(|s| s.id == ids[0].0)
        .unwrap()
        .clone();
    assert_eq!(first["serviceName"], service.name.as_str());
    assert_eq!(first["account"], "default");
    let statuses: Vec<&str> = body["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    // pay: annotated by key with a service mapped to docs; docs: only a
    // stored row; ghost: a service no account has.
    assert_eq!(
        statuses,
        ["InSync", "OutOfSync", "OutOfSync", "NotMapped", "NotMapped"]
    );
    assert_eq!(
        body["entities"][2]["serviceId"],
        Value::Null,
        "no such field in the Node shape"
    );
    assert!(
        body["entities"][1]["annotations"]["pagerduty.com/integration-key"]
            .as_str()
            .unwrap()
            .starts_with("dcak_"),
        "keys are shown as aliases: {}",
        body["entities"][1]
    );

    // Filters, sort, page.
    let (_, body) = list(
        json!({"filters": {"status": "NotMapped", "name": "", "teamName": "", "serviceName": ""}}),
    )
    .await;
    assert_eq!(
        (names(&body), &body["totalCount"]),
        (vec!["bare", "ghost"], &json!(2))
    );
    let (_, body) = list(json!({"filters": {"teamName": "TEAM-D"}})).await;
    assert_eq!(names(&body), ["docs"]);
    let (_, body) = list(
        json!({"sort": {"column": "name", "direction": "descending"}, "offset": 1, "limit": 2}),
    )
    .await;
    assert_eq!(
        (names(&body), &body["totalCount"]),
        (vec!["ghost", "docs"], &json!(5))
    );
    let (_, body) =
        list(json!({"sort": {"column": "status", "direction": "descending"}, "limit": 1})).await;
    assert_eq!(names(&body), ["checkout"]);

    // Bad input names the field.
    for (bad, field) in [
        (json!({"limit": 0}), "limit"),
        (json!({"offset": -1}), "offset"),
        (json!({"limit": "ten"}), "limit"),
        (
            json!({"sort": {"column": "owner", "direction": "ascending"}}),
            "sort.column",
        ),
        (
            json!({"sort": {"column": "name", "direction": "up"}}),
            "sort.direction",
        ),
        (json!({"sort": "name"}), "sort"),
        (json!({"filters": {"status": "Maybe"}}), "filters.status"),
        (json!({"filters": {"colour": "red"}}), "colour"),
        (json!({"account": "nope"}), "nope"),
    ] {
        let (status, body) = list(bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {body}");
        let message = body["errors"][0].as_str().unwrap_or_default();
        assert!(message.contains(field), "{bad}: {message}");
    }

    // No catalog: the listing cannot exist, and says which key is missing.
    let mut env = sim_env(&sim);
    env.push(("DUTYCARD_PAGERDUTY__API_TOKEN".into(), sim.api_token()));
    let without = TestApp::spawn(settings_from(&[BASE_TOML], &env)).await;
    let (status, body) = send(
        &without,
        reqwest::Method::POST,
        &format!("{P}/mapping/entities"),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 501, "{body}");
    // A catalog that fails: its status, not a hang.
    let broken = broken_catalog().await;
    let app = app_on(&sim, &db, &broken).await;
    let (status, body) = send(
        &app,
        reqwest::Method::POST,
        &format!("{P}/mapping/entities"),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 502, "{body}");
}

#[tokio::test]
async fn entities_are_listed_paged_like_the_node_backend_on_sqlite() {
    entities_are_listed_like_the_node_backend(Db::sqlite()).await;
}

#[tokio::test]
async fn entities_are_listed_paged_like_the_node_backend_on_postgres() {
    entities_are_listed_like_the_node_backend(Db::postgres()).await;
}
