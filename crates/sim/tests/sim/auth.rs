//! Token auth and scopes, with PagerDuty's error bodies.

use serde_json::json;
use sim::SimToken;

use crate::common::*;

#[tokio::test]
async fn missing_or_malformed_credentials_are_401() {
    let sim = start(config()).await;
    let unauthorized = json!({"error": {"message": "Authentication failed", "code": 2006}});
    let none = http()
        .get(format!("{}/services", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
    assert_eq!(
        none.json::<serde_json::Value>().await.unwrap(),
        unauthorized
    );
    for header in [
        "Token token=",
        "token=abc",
        "Basic YWJjOmRlZg==",
        "Bearer not-issued",
    ] {
        let r = http()
            .get(format!("{}/services", sim.base_url()))
            .header("Authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{header}");
        assert_eq!(r.json::<serde_json::Value>().await.unwrap(), unauthorized);
    }
    // With no configured tokens any non-empty token works.
    assert_eq!(
        get_with(&sim, "whatever-123", "/abilities").await.status,
        200
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn configured_tokens_and_scopes() {
    let sim = start(sim::SimConfig {
        api_tokens: vec![
            SimToken::full("full-token"),
            SimToken::scoped("services-only", &["services.read"]),
            SimToken::scoped("analytics-reader", &["analytics.read"]),
        ],
        ..config()
    })
    .await;
    assert_eq!(sim.api_token(), "full-token");
    assert_eq!(get_with(&sim, "other", "/services").await.status, 401);
    assert_eq!(get_with(&sim, "full-token", "/incidents").await.status, 200);
    assert_eq!(
        get_with(&sim, "services-only", "/services").await.status,
        200
    );

    let forbidden = get_with(&sim, "services-only", "/incidents").await;
    assert_eq!(forbidden.status, 403);
    assert_eq!(
        forbidden.json(),
        json!({"error": {"message": "Token missing required scopes", "required_scopes": "incidents.read"}})
    );
    for (path, scope) in [
        ("/oncalls", "oncalls.read"),
        ("/escalation_policies", "escalation_policies.read"),
        ("/change_events", "change_events.read"),
        ("/teams", "teams.read"),
        ("/abilities", "abilities.read"),
        (
            "/standards/scores/technical_services?ids=P000000",
            "standards.read",
        ),
    ] {
        let r = get_with(&sim, "services-only", path).await;
        assert_eq!(r.status, 403, "{path}");
        assert_eq!(r.json()["error"]["required_scopes"], scope, "{path}");
    }
    // The per-service change events need services.read only.
    let svc = &sim.account().services[0].id;
    assert_eq!(
        get_with(
            &sim,
            "services-only",
            &format!("/services/{svc}/change_events")
        )
        .await
        .status,
        200
    );
    // Analytics accepts analytics.read (what Backstage asks for).
    let r = http()
        .post(format!(
            "{}/analytics/metrics/incidents/services",
            sim.base_url()
        ))
        .header("Authorization", "Token token=analytics-reader")
        .json(&json!({"filters": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn unknown_routes_are_404_with_pagerduty_body() {
    let sim = start(config()).await;
    let r = get(&sim, "/no/such/route").await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json(),
        json!({"error": {"message": "Not Found", "code": 2100}})
    );
    sim.shutdown().await;
}
