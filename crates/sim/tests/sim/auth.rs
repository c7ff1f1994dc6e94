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
    // Real ids, so a missing scope check would answer 200.
    let account = sim.account();
    let (incident, policy) = (&account.incidents[0].id, &account.escalation_policies[0].id);
    let (team, user) = (&account.teams[0].id, &account.users[0].id);
    let (schedule, service) = (&account.schedules[0].id, &account.services[0].id);
    for (path, scope) in [
        ("/oncalls".to_owned(), "oncalls.read"),
        (
            "/escalation_policies".to_owned(),
            "escalation_policies.read",
        ),
        (
            format!("/escalation_policies/{policy}"),
            "escalation_policies.read",
        ),
        ("/change_events".to_owned(), "change_events.read"),
        ("/teams".to_owned(), "teams.read"),
        (format!("/teams/{team}"), "teams.read"),
        (format!("/incidents/{incident}"), "incidents.read"),
        (format!("/users/{user}"), "users.read"),
        (format!("/schedules/{schedule}"), "schedules.read"),
        ("/abilities".to_owned(), "abilities.read"),
        (
            format!("/standards/scores/technical_services?ids={service}"),
            "standards.read",
        ),
        (
            format!("/standards/scores/technical_services/{service}"),
            "standards.read",
        ),
    ] {
        let r = get_with(&sim, "services-only", &path).await;
        assert_eq!(r.status, 403, "{path}");
        assert_eq!(
            r.json(),
            json!({"error": {"message": "Token missing required scopes", "required_scopes": scope}}),
            "{path}"
        );
        // The same path works with every scope.
        assert_eq!(
            get_with(&sim, "full-token", &path).await.status,
            200,
            "{path}"
        );
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
    // Without analytics.read (or analytics.write) it is a 403.
    let r = http()
        .post(format!(
            "{}/analytics/metrics/incidents/services",
            sim.base_url()
        ))
        .header("Authorization", "Token token=services-only")
        .json(&json!({"filters": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        json!({"error": {"message": "Token missing required scopes", "required_scopes": "analytics.read"}})
    );
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
