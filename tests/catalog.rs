//! The Backstage catalog: `GET {prefix}/catalog/entity/…` reads the
//! entity's `pagerduty.com/service-id` from a fake catalog (wiremock on port
//! 0, which checks the service token), and entity cards add that service to
//! the mapped ones.

use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{BASE_TOML, TestApp, settings_from, sim_env, small_sim, start_sim};

const P: &str = "/api/pagerduty";

fn entity(name: &str, service_id: Option<&str>) -> Value {
    let mut annotations = json!({"backstage.io/source-location": "url:https://example.invalid"});
    if let Some(id) = service_id {
        annotations["pagerduty.com/service-id"] = json!(id);
    }
    json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
           "metadata": {"name": name, "namespace": "default", "annotations": annotations},
           "spec": {"type": "service", "owner": "group:default/checkout"}})
}

async fn fake_catalog(entities: &[(&str, Value)]) -> MockServer {
    let server = MockServer::start().await;
    for (name, body) in entities {
        Mock::given(method("GET"))
            .and(path(format!(
                "/api/catalog/entities/by-name/component/default/{name}"
            )))
            .and(header("authorization", "Bearer catalog-token"))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path(
            "/api/catalog/entities/by-name/component/default/broken",
        ))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    server
}

async fn app_with_catalog(sim: &sim::SimHandle, catalog: Option<&MockServer>) -> TestApp {
    let mut env = sim_env(sim);
    env.push(("DUTYCARD_PAGERDUTY__API_TOKEN".into(), sim.api_token()));
    let toml = match catalog {
        Some(c) => format!(
            "[backstage]\ncatalog_url = \"{}/api/catalog\"\ncatalog_token = \"catalog-token\"\n",
            c.uri()
        ),
        None => String::new(),
    };
    TestApp::spawn(settings_from(&[BASE_TOML, &toml], &env)).await
}

async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    let res = app.get(path).await;
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_catalog_route_answers_the_annotation_or_a_real_status() {
    let sim = start_sim(small_sim()).await;
    let service = sim.account().services[0].id.clone();
    let catalog = fake_catalog(&[
        ("checkout", entity("checkout", Some(&service))),
        ("bare", entity("bare", None)),
    ])
    .await;
    let app = app_with_catalog(&sim, Some(&catalog)).await;

    let (status, body) = get(
        &app,
        &format!("{P}/catalog/entity/component/default/checkout"),
    )
    .await;
    assert_eq!(
        (status, body),
        (200, json!(service)),
        "the bare string, like the Node backend"
    );
    for (name, status, words) in [
        ("nothing", 404, "not found"),
        ("bare", 404, "pagerduty.com/service-id"),
        ("broken", 502, "HTTP 500"),
    ] {
        let (got, body) = get(
            &app,
            &format!("{P}/catalog/entity/component/default/{name}"),
        )
        .await;
        assert_eq!(got, status, "{name}: {body}");
        assert!(
            body["errors"][0].as_str().unwrap().contains(words),
            "{name}: {body}"
        );
    }
    let (status, _) = get(&app, &format!("{P}/catalog/entity/component/default/a%20b")).await;
    assert_eq!(status, 400);
    // The catalog is Backstage's: a known `?account=` reads the same one,
    // an unknown one is a 400 naming it.
    let checkout = format!("{P}/catalog/entity/component/default/checkout");
    let (status, body) = get(&app, &format!("{checkout}?account=default")).await;
    assert_eq!((status, body), (200, json!(service)));
    let (status, body) = get(&app, &format!("{checkout}?account=nope")).await;
    assert_eq!(status, 400);
    assert!(
        body["errors"][0]
            .as_str()
            .unwrap()
            .contains("account `nope`"),
        "{body}"
    );

    let without = app_with_catalog(&sim, None).await;
    let (status, body) = get(
        &without,
        &format!("{P}/catalog/entity/component/default/checkout"),
    )
    .await;
    assert_eq!(status, 501);
    assert!(
        body["errors"][0]
            .as_str()
            .unwrap()
            .contains("backstage.catalog_url"),
        "{body}"
    );
}

#[tokio::test]
async fn entity_cards_add_the_catalogs_annotated_service_to_the_mapped_ones() {
    let sim = start_sim(small_sim()).await;
    let annotated = sim.account().services[0].id.clone();
    let mapped = sim.account().services[1].id.clone();
    let catalog = fake_catalog(&[
        ("shop", entity("shop", Some(&annotated))),
        ("solo", entity("solo", Some(&annotated))),
    ])
    .await;
    let app = app_with_catalog(&sim, Some(&catalog)).await;

    // Only the annotation: one service.
    let (status, body) = get(&app, "/v1/entities/component/default/solo/card").await;
    assert_eq!(status, 200, "{body}");
    let ids: Vec<&str> = body["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["service_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [annotated.as_str()]);

    // A mapping plus the annotation: both, the mapping first.
    let res = app
        .http
        .post(app.url(&format!("{P}/mapping/entity")))
        .json(&json!({"entityRef": "component:default/shop", "serviceId": mapped}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (status, body) = get(&app, "/v1/entities/component/default/shop/card").await;
    assert_eq!(status, 200, "{body}");
    let ids: Vec<&str> = body["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["service_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [mapped.as_str(), annotated.as_str()]);
    assert_eq!(body["summary"]["services"], 2);

    // A catalog that fails does not fail the mapped services' card.
    let res = app
        .http
        .post(app.url(&format!("{P}/mapping/entity")))
        .json(&json!({"entityRef": "component:default/broken", "serviceId": annotated}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (status, body) = get(&app, "/v1/entities/component/default/broken/card").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["services"].as_array().unwrap().len(), 1);
    assert!(
        body["catalog_error"].as_str().unwrap().contains("HTTP 500"),
        "{body}"
    );
}
