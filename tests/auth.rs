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
