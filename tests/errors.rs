//! Errors outside the card routes: unknown routes, wrong methods, request ids.

use sim::{SimConfig, SimToken};

use crate::helpers::{TestApp, error_of, settings, small_sim, spawn_with_sim_token};

#[tokio::test]
async fn unknown_routes_get_a_json_404() {
    let app = TestApp::spawn(settings("", &[])).await;
    let response = app.get("/nope").await;
    assert_eq!(response.status(), 404);
    let (code, _) = error_of(response).await;
    assert_eq!(code, "route_not_found");
}

#[tokio::test]
async fn a_known_path_with_another_method_gets_a_json_405_with_allow() {
    let app = TestApp::spawn(settings("", &[])).await;
    let response = app.http.delete(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET");
    let (code, _) = error_of(response).await;
    assert_eq!(code, "method_not_allowed");
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let app = TestApp::spawn(settings("", &[])).await;
    let response = app
        .http
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-abc-123");

    // Error answers carry it too; an unusable id is replaced by a UUID.
    let response = app
        .http
        .get(app.url("/nope"))
        .header("x-request-id", "x".repeat(200))
        .send()
        .await
        .unwrap();
    let generated = response.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(generated.len(), 36, "{generated}");
}

#[tokio::test]
async fn cors_allows_configured_origins_only() {
    let app = TestApp::spawn(settings(
        "[server]\ncors_allowed_origins = [\"https://portal.example\"]",
        &[],
    ))
    .await;
    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/v1/cards/PABC123"))
        .header("origin", "https://portal.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://portal.example"
    );

    let foreign = app
        .http
        .get(app.url("/healthz"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    // No allow-origin header: the browser keeps the answer from the page.
    assert!(
        foreign
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn a_forbidden_card_names_the_scopes_the_token_needs() {
    // The simulator answers 403 {"error":{"message":"Token missing required
    // scopes","required_scopes":"services.read"}} like PagerDuty.
    let app = spawn_with_sim_token(
        SimConfig {
            api_tokens: vec![SimToken::scoped("narrow-token", &["abilities.read"])],
            ..small_sim()
        },
        "",
        Some("narrow-token"),
    )
    .await;
    let id = app.sim.account().services[0].id.clone();
    let response = app.app.get(&format!("/v1/cards/{id}")).await;
    assert_eq!(response.status(), 502);
    let body: serde_json::Value = response.json().await.expect("JSON error body");
    let error = &body["error"];
    assert_eq!(error["code"], "upstream_forbidden", "{body}");
    assert_eq!(error["details"]["missing_scopes"], true, "{body}");
    assert_eq!(
        error["details"]["required_scopes"],
        serde_json::json!(["services.read"]),
        "{body}"
    );
    let message = error["message"].as_str().expect("error.message");
    assert!(
        message.contains("the token needs the scopes: services.read"),
        "{message}"
    );
    assert!(!message.contains("narrow-token"), "{message}");
}

#[tokio::test]
async fn a_refused_cors_preflight_gets_our_json_error() {
    let app = TestApp::spawn(settings(
        "[server]\ncors_allowed_origins = [\"https://portal.example\"]",
        &[],
    ))
    .await;
    let preflight = |origin: &'static str, method: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, app.url("/v1/cards/PABC123"))
            .header("origin", origin)
            .header("access-control-request-method", method)
            .send()
    };

    let response = preflight("https://evil.example", "GET").await.unwrap();
    assert_eq!(response.status(), 400);
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: serde_json::Value = response.json().await.expect("JSON error body");
    assert_eq!(body["error"]["code"], "cors_rejected", "{body}");
    assert_eq!(
        body["error"]["details"]["origin"], "https://evil.example",
        "{body}"
    );
    let message = body["error"]["message"].as_str().expect("error.message");
    assert!(message.contains("https://evil.example"), "{message}");
    assert!(message.contains("not allowed"), "{message}");

    // An allowed origin asking for a method we do not serve: refused too.
    let response = preflight("https://portal.example", "DELETE").await.unwrap();
    assert_eq!(response.status(), 400);
    let (code, _) = error_of(response).await;
    assert_eq!(code, "cors_rejected");

    // The allowed preflight is untouched.
    let response = preflight("https://portal.example", "GET").await.unwrap();
    assert_eq!(response.status(), 200);
}

/// The Backstage routes under `/services` sit in nested scopes (one prefix
/// comparison turns other paths away, the id is matched once): a path such
/// a scope takes but none of its routes does still gets the Backstage 404,
/// a known path with another method its 405 with `Allow`, and the routes
/// keep their full templates in the request metrics.
#[tokio::test]
async fn backstage_paths_under_services_answer_404_405_and_keep_their_route() {
    use crate::backstage::{P, error_message, get_json, pick_service};
    let crate::helpers::SimApp { app, sim } = crate::helpers::spawn_with_sim(small_sim(), "").await;
    let (id, _, _) = pick_service(&sim);

    for path in [
        format!("{P}/services/"),
        format!("{P}/services/{id}/nope"),
        format!("{P}/services/{id}/standards/more"),
        format!("{P}/servicesX"),
    ] {
        let (status, body) = get_json(&app, &path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(error_message(&body).contains("no route"), "{path}: {body}");
    }
    for (method, path, allow) in [
        ("DELETE", format!("{P}/services/{id}/standards"), "GET"),
        ("GET", format!("{P}/services/{id}/integration/PV1"), "POST"),
        ("PUT", format!("{P}/services"), "GET"),
    ] {
        let res = app
            .http
            .request(method.parse().unwrap(), app.url(&path))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 405, "{method} {path}");
        assert_eq!(res.headers()["allow"], allow, "{method} {path}");
        let body: serde_json::Value = res.json().await.unwrap();
        error_message(&body);
    }
    for path in [
        format!("{P}/services"),
        format!("{P}/services/{id}"),
        format!("{P}/services/{id}/standards"),
        format!("{P}/services/{id}/incidents"),
    ] {
        assert_eq!(get_json(&app, &path).await.0, 200, "{path}");
    }
    let metrics = app.get("/metrics").await.text().await.unwrap();
    for route in [
        "/api/pagerduty/services",
        "/api/pagerduty/services/{service_id}",
        "/api/pagerduty/services/{service_id}/standards",
    ] {
        let line = format!(
            r#"dutycard_http_requests_total{{method="GET",route="{route}",status="200"}} 1"#
        );
        assert!(metrics.contains(&line), "{line} not in\n{metrics}");
    }
}

/// The webhook routes sit in a scope of their own and `/v1` lists exact
/// paths before `{param}` ones (issue 18: fewer regex matches per
/// request): the same paths still reach the same handlers, a wrong method
/// is a 405 naming POST, and the card and its stream keep their routes.
#[tokio::test]
async fn webhook_and_card_paths_keep_their_routes_after_the_reordering() {
    let crate::helpers::SimApp { app, sim } = crate::helpers::spawn_with_sim(small_sim(), "").await;
    let id = sim.account().services[0].id.clone();
    for path in ["/v1/webhooks/pagerduty", "/v1/webhooks/pagerduty/default"] {
        let res = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 405, "GET {path}");
        assert_eq!(res.headers()["allow"], "POST", "GET {path}");
        // Unsigned: refused by the webhook handler itself, not unrouted.
        let res = app
            .http
            .post(app.url(path))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "POST {path}");
    }
    for path in [
        "/v1/webhooks/pagerduty/",
        "/v1/webhooks/pagerduty/default/more",
    ] {
        let res = app.http.post(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 404, "POST {path}");
    }
    assert_eq!(app.get(&format!("/v1/cards/{id}")).await.status(), 200);
    let res = app
        .http
        .post(app.url("/v1/cards/batch"))
        .json(&serde_json::json!({"service_ids": [id]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    for (method, route, status) in [
        ("POST", "/v1/webhooks/pagerduty/{account}", "401"),
        ("GET", "/v1/cards/{service_id}", "200"),
        ("POST", "/v1/cards/batch", "200"),
    ] {
        let line = format!(
            r#"dutycard_http_requests_total{{method="{method}",route="{route}",status="{status}"}}"#
        );
        assert!(metrics.contains(&line), "{line} not in\n{metrics}");
    }
}
