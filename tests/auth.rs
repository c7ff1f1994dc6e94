//! `server.auth.mode = "static"`.

use crate::helpers::{TestApp, error_of, settings};

pub const TOKEN: &str = "portal-token-0123456789abcdef";

pub fn static_auth_toml(metrics_require_auth: bool) -> String {
    format!(
        "[server.auth]\nmode = \"static\"\nmetrics_require_auth = {metrics_require_auth}\n[[server.auth.tokens]]\nname = \"portal\"\ntoken = \"{TOKEN}\"\n"
    )
}

#[tokio::test]
async fn protected_metrics_need_a_bearer_token() {
    let app = TestApp::spawn(settings(&static_auth_toml(true), &[])).await;

    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"dutycard\""
    );
    let (code, _) = error_of(response).await;
    assert_eq!(code, "unauthorized");

    let response = app
        .http
        .get(app.url("/metrics"))
        .bearer_auth("wrong-token-0123456789abcdef")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    let response = app
        .http
        .get(app.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Health endpoints stay open for orchestrators.
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[tokio::test]
async fn the_card_api_needs_a_bearer_token_in_static_mode() {
    let app =
        crate::helpers::spawn_with_sim(crate::helpers::small_sim(), &static_auth_toml(false)).await;
    let id = app.sim.account().services[0].id.clone();
    let path = format!("/v1/cards/{id}");

    let response = app.app.get(&path).await;
    assert_eq!(response.status(), 401);
    let (code, _) = error_of(response).await;
    assert_eq!(code, "unauthorized");

    let response = app
        .app
        .http
        .post(app.app.url("/v1/cards/batch"))
        .json(&serde_json::json!({"service_ids": [id]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    let response = app
        .app
        .http
        .get(app.app.url(&path))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Metrics stay open unless metrics_require_auth is set.
    assert_eq!(app.app.get("/metrics").await.status(), 200);
}

/// Issue 15's routes sit behind the same caller auth as the rest: each
/// answers 401 without a token, and passes auth (whatever the route then
/// answers) with one.
#[tokio::test]
async fn the_store_catalog_dependency_and_entity_routes_need_a_bearer_token() {
    use reqwest::Method;
    use serde_json::json;
    let app =
        crate::helpers::spawn_with_sim(crate::helpers::small_sim(), &static_auth_toml(false)).await;
    let id = app.sim.account().services[0].id.clone();
    let p = "/api/pagerduty";
    let routes = [
        (
            Method::GET,
            format!("{p}/settings/settings::data-sync"),
            None,
        ),
        (
            Method::POST,
            format!("{p}/settings"),
            Some(json!([{"id": "settings::data-sync", "value": "enabled"}])),
        ),
        (Method::GET, format!("{p}/mapping/entity"), None),
        (
            Method::POST,
            format!("{p}/mapping/entity"),
            Some(json!({"entityRef": "component:default/shop", "serviceId": id})),
        ),
        (
            Method::POST,
            format!("{p}/mapping/entities/bulk"),
            Some(json!({"mappings": []})),
        ),
        (
            Method::POST,
            format!("{p}/mapping/entities"),
            Some(json!({})),
        ),
        (
            Method::GET,
            format!("{p}/mapping/entity/component/default/shop"),
            None,
        ),
        (
            Method::GET,
            format!("{p}/mapping/entity/service/{id}"),
            None,
        ),
        (
            Method::DELETE,
            format!("{p}/mapping/entity/service/{id}"),
            None,
        ),
        (
            Method::GET,
            format!("{p}/catalog/entity/component/default/shop"),
            None,
        ),
        (Method::GET, format!("{p}/dependencies/service/{id}"), None),
        (
            Method::POST,
            format!("{p}/dependencies/service/{id}"),
            Some(json!([id])),
        ),
        (
            Method::DELETE,
            format!("{p}/dependencies/service/{id}"),
            Some(json!([id])),
        ),
        (
            Method::POST,
            format!("{p}/services/{id}/integration/PRO19CT"),
            None,
        ),
        (
            Method::GET,
            "/v1/entities/component/default/shop/card".to_owned(),
            None,
        ),
        (
            Method::POST,
            "/v1/entities/cards/batch".to_owned(),
            Some(json!({"entities": ["component:default/shop"]})),
        ),
    ];
    let http = &app.app.http;
    for (method, path, body) in routes {
        let request = |token: Option<&str>| {
            let mut request = http.request(method.clone(), app.app.url(&path));
            if let Some(body) = &body {
                request = request.json(body);
            }
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            request.send()
        };
        let res = request(None).await.unwrap();
        assert_eq!(res.status(), 401, "{method} {path} without a token");
        let res = request(Some("wrong-token-0123456789abcdef")).await.unwrap();
        assert_eq!(res.status(), 401, "{method} {path} with a wrong token");
        let res = request(Some(TOKEN)).await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        assert!(
            status != 401 && status != 403,
            "{method} {path} with the token: {status} {text}"
        );
    }
}
