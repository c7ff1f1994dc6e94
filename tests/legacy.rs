//! The legacy community frontend (`@backstage/plugin-pagerduty` 0.6.8)
//! against the passthrough: its five calls, exactly as it builds them,
//! with dutycard's caller token and no PagerDuty token; and PagerDuty's
//! newer plugin's raw `GET {prefix}/oncalls`.

use serde_json::Value;

use crate::helpers::{SimApp, TestApp, small_sim, spawn_with_sim};

const REST: &str = "/pagerduty-rest";
const TOKEN: &str = "portal-proxy-token-0123456789";
const AUTH: &str = "[server.auth]\nmode = \"static\"\n[[server.auth.tokens]]\nname = \"backstage-proxy\"\ntoken = \"portal-proxy-token-0123456789\"\n";

async fn call(app: &TestApp, method: reqwest::Method, path: &str) -> (u16, Value) {
    let res = app
        .http
        .request(method, app.url(path))
        .bearer_auth(TOKEN)
        .header("Accept", "application/vnd.pagerduty+json;version=2")
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    call(app, reqwest::Method::GET, path).await
}

/// A service with an integration key and open incidents.
fn busy_service(sim: &sim::SimHandle) -> (String, String, String) {
    let account = sim.account();
    let service = account
        .services
        .iter()
        .filter(|s| s.integrations.iter().any(|i| i.integration_key.is_some()))
        .max_by_key(|s| account.open_incidents(&s.id).len())
        .expect("a service with a key");
    let key = service
        .integrations
        .iter()
        .find_map(|i| i.integration_key.clone())
        .unwrap();
    (
        service.id.clone(),
        key,
        service.escalation_policy_id.clone(),
    )
}

fn pagerduty_error(body: &Value) -> (u64, &str) {
    (
        body["error"]["code"].as_u64().unwrap_or_default(),
        body["error"]["message"].as_str().unwrap_or_default(),
    )
}

/// The legacy card's five reads (0.6.8 `dist/esm/index-*.esm.js`), in its
/// order, succeed with only dutycard's token, in PagerDuty's shapes.
#[tokio::test]
async fn the_legacy_frontends_five_calls_succeed_through_the_passthrough() {
    let SimApp { app, sim } = spawn_with_sim(small_sim(), AUTH).await;
    let (id, key, policy) = busy_service(&sim);
    let account = sim.account();

    // 1. The service by integration key.
    let (status, body) = get(
        &app,
        &format!(
            "{REST}/services?time_zone=UTC&include[]=integrations&include[]=escalation_policies&query={key}"
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["services"][0]["id"], id.as_str(), "{body}");
    assert!(body["services"][0]["escalation_policy"]["id"] == policy.as_str());
    assert!(
        !body.to_string().contains(&key),
        "the real key is not shown by default"
    );

    // 2. The service by id.
    let (status, body) = get(
        &app,
        &format!(
            "{REST}/services/{id}?time_zone=UTC&include[]=integrations&include[]=escalation_policies"
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["service"]["id"], id.as_str());
    assert!(body["service"]["integrations"].is_array());

    // 3. Open incidents.
    let (status, body) = get(
        &app,
        &format!(
            "{REST}/incidents?time_zone=UTC&sort_by=created_at&statuses[]=triggered&statuses[]=acknowledged&service_ids[]={id}"
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let incidents = body["incidents"].as_array().unwrap();
    let open = account.open_incidents(&id).len();
    assert_eq!(incidents.len(), open.min(25), "{body}");
    assert!(open > 0, "the chosen service has open incidents");
    let created: Vec<&str> = incidents
        .iter()
        .map(|i| i["created_at"].as_str().unwrap())
        .collect();
    assert!(
        created.windows(2).all(|w| w[0] <= w[1]),
        "oldest first: {created:?}"
    );
    assert!(incidents.iter().all(|i| i["service"]["id"] == id.as_str()));

    // 4. Change events.
    let (status, body) = get(
        &app,
        &format!("{REST}/services/{id}/change_events?limit=5&time_zone=UTC&sort_by=timestamp"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["change_events"].as_array().unwrap().len() <= 5);
    assert_eq!(body["limit"], 5);

    // 5. Who is on call: every level, users included.
    let (status, body) = get(
        &app,
        &format!("{REST}/oncalls?time_zone=UTC&include[]=users&escalation_policy_ids[]={policy}"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let oncalls = body["oncalls"].as_array().unwrap();
    assert!(!oncalls.is_empty(), "{body}");
    assert!(oncalls.iter().all(|o| o["user"]["name"].is_string()));
    let levels: Vec<u64> = oncalls
        .iter()
        .map(|o| o["escalation_level"].as_u64().unwrap())
        .collect();
    assert!(levels.windows(2).all(|w| w[0] <= w[1]), "{levels:?}");

    // The same five again are served from the caches: no upstream call.
    sim.reset_stats();
    for path in [
        format!("{REST}/services?query={key}"),
        format!("{REST}/services/{id}"),
        format!("{REST}/incidents?statuses[]=triggered&statuses[]=acknowledged&service_ids[]={id}"),
        format!("{REST}/services/{id}/change_events?limit=5"),
        format!("{REST}/oncalls?include[]=users&escalation_policy_ids[]={policy}"),
    ] {
        let (status, _) = get(&app, &path).await;
        assert_eq!(status, 200, "{path}");
    }
    let stats = sim.stats();
    assert_eq!(
        stats.total - stats.count("GET", "/abilities"),
        0,
        "{:?}",
        stats.routes
    );
}

/// Only those GETs, only with dutycard's caller auth; everything else is
/// PagerDuty's 404 or a 400 naming the parameter.
#[tokio::test]
async fn the_passthrough_is_read_only_allow_listed_and_behind_caller_auth() {
    let SimApp { app, sim } = spawn_with_sim(small_sim(), AUTH).await;
    let (id, _, _) = busy_service(&sim);

    let res = app.get(&format!("{REST}/services/{id}")).await;
    assert_eq!(res.status(), 401, "no caller token");
    let body: Value = res.json().await.unwrap();
    assert_eq!(pagerduty_error(&body).0, 2006, "{body}");

    for (method, path) in [
        (reqwest::Method::GET, format!("{REST}/users")),
        (
            reqwest::Method::GET,
            format!("{REST}/services/{id}/integrations"),
        ),
        (reqwest::Method::POST, format!("{REST}/incidents")),
        (reqwest::Method::DELETE, format!("{REST}/services/{id}")),
        (reqwest::Method::PUT, format!("{REST}/services/{id}")),
    ] {
        let (status, body) = call(&app, method.clone(), &path).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
        assert_eq!(pagerduty_error(&body), (2100, "Not Found"), "{body}");
    }

    for (path, names) in [
        (
            format!("{REST}/incidents?statuses[]=triggered"),
            "service_ids[]",
        ),
        (
            format!("{REST}/incidents?service_ids[]={id}&statuses[]=resolved"),
            "statuses[]",
        ),
        (format!("{REST}/incidents?service_ids[]={id}"), "statuses[]"),
        (
            format!("{REST}/oncalls?include[]=users"),
            "escalation_policy_ids[]",
        ),
        (format!("{REST}/services?limit=zero"), "limit"),
        (format!("{REST}/services/not-an-id!"), "id"),
        (format!("{REST}/services/{id}?account=nope"), "nope"),
    ] {
        let (status, body) = get(&app, &path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(pagerduty_error(&body).0, 2001, "{body}");
        assert!(
            body["error"]["errors"][0].as_str().unwrap().contains(names),
            "{path}: {body}"
        );
    }

    let (status, body) = get(&app, &format!("{REST}/services/PNOSUCH1")).await;
    assert_eq!((status, pagerduty_error(&body).0), (404, 2100), "{body}");
}

/// The prefix is configurable and the passthrough can be turned off.
#[tokio::test]
async fn the_passthrough_prefix_is_configurable() {
    let toml = format!("{AUTH}[backstage]\nlegacy_prefix = \"/pd\"\n");
    let SimApp { app, sim } = spawn_with_sim(small_sim(), &toml).await;
    let (id, _, _) = busy_service(&sim);
    let (status, _) = get(&app, &format!("/pd/services/{id}")).await;
    assert_eq!(status, 200);
    let (status, _) = get(&app, &format!("{REST}/services/{id}")).await;
    assert_eq!(status, 404);

    let toml = format!("{AUTH}[backstage]\nlegacy_enabled = false\n");
    let SimApp { app, .. } = spawn_with_sim(small_sim(), &toml).await;
    let (status, _) = get(&app, &format!("{REST}/services/{id}")).await;
    assert_eq!(status, 404);
}

/// PagerDuty's newer plugin actions read raw on-calls from the backend:
/// `{"oncalls": […]}` with every level, user and schedule.
#[tokio::test]
async fn backstage_oncalls_answers_every_level_raw() {
    let SimApp { app, sim } = spawn_with_sim(small_sim(), AUTH).await;
    let (_, _, policy) = busy_service(&sim);
    let (status, body) = get(
        &app,
        &format!("/api/pagerduty/oncalls?escalation_policy_ids[]={policy}"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let oncalls = body["oncalls"].as_array().unwrap();
    let (_, users) = get(
        &app,
        &format!("/api/pagerduty/oncall-users?escalation_policy_ids[]={policy}"),
    )
    .await;
    // oncall-users shows the lowest level only; oncalls every level.
    assert!(oncalls.len() >= users["users"].as_array().unwrap().len());
    assert!(
        oncalls
            .iter()
            .all(|o| o["escalation_policy"]["id"] == policy.as_str())
    );
    assert!(oncalls.iter().any(|o| o["schedule"].is_object()), "{body}");

    let (status, body) = get(&app, "/api/pagerduty/oncalls").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["errors"][0]
            .as_str()
            .unwrap()
            .contains("escalation_policy_ids[]")
    );
}
