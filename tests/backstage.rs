//! The drop-in Backstage routes (`/api/pagerduty/*`): the exact URLs PagerDuty's
//! Backstage frontend builds, replayed against the app and the simulator, with
//! envelopes, fields and statuses compared to the Node backend's captured
//! answers (`tests/fixtures/backstage/anchor-shapes.json`).

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::helpers::{
    SimApp, TestApp, settings_from, small_sim, spawn_with_sim, spawn_with_sim_token, start_sim,
};

pub(crate) const P: &str = "/api/pagerduty";

pub(crate) fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/backstage")
}

fn anchor(route: &str) -> Value {
    let text = std::fs::read_to_string(fixtures().join("anchor-shapes.json")).expect("fixture");
    let all: Value = serde_json::from_str(&text).expect("fixture JSON");
    all["routes"][route].clone()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// Fields the simulator does not generate (so no PagerDuty object of ours can
/// carry them); everything else the Node backend returned must be there.
const NOT_SIMULATED: &[&str] = &[
    // change events
    "images",
    "routing_key",
    // incidents
    "basic_alert_grouping",
    "first_trigger_log_entry",
    "incidents_responders",
    "resolve_reason",
    "responder_requests",
    // metrics not in PagerDuty's AnalyticsIncidentMetrics
    "total_incident_handoff_count",
    "total_major_incidents",
    // users
    "billed",
    "coordinated_incidents",
];

/// Fields of the Node backend's capture (made against another fake) that the
/// simulator leaves out, per route, because PagerDuty's OpenAPI description
/// does not have them (`updated_at`, `parent`, an incident's `description`)
/// or has no `null` for them (`support_hours`, `priority`) and the simulator
/// has no value; `conference_bridge` comes only with `include[]`.
const NOT_IN_SPEC: &[(&str, &str)] = &[
    ("service", "updated_at"),
    ("service", "support_hours"),
    ("service_by_key", "updated_at"),
    ("service_by_key", "support_hours"),
    ("services_filtered", "updated_at"),
    ("services_filtered", "support_hours"),
    ("services_all", "updated_at"),
    ("services_all", "support_hours"),
    ("incidents", "conference_bridge"),
    ("incidents", "description"),
    ("incidents", "priority"),
    ("teams", "parent"),
];

/// Same status and envelope as the Node backend's capture of `route`, and
/// every field it returned (where the upstream object has it). A list must
/// not be empty: an empty one would compare no field.
pub(crate) fn assert_shape(route: &str, status: u16, body: &Value) {
    let (a, inner) = assert_envelope(route, status, body);
    let item = match &inner {
        Value::Array(items) => match items.first() {
            Some(item) => item.clone(),
            None => panic!("{route}: an empty list proves no field; pick data that has some"),
        },
        other => other.clone(),
    };
    let ours = keys(&item);
    let missing: Vec<&str> = a["item_keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .filter(|k| {
            !ours.contains(*k) && !NOT_SIMULATED.contains(k) && !NOT_IN_SPEC.contains(&(route, *k))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "{route}: fields missing vs the Node backend: {missing:?}\nours: {ours:?}"
    );
}

/// Same status and envelope as the Node backend's capture of `route`
/// (fields unchecked); returns the anchor and the envelope's content.
fn assert_envelope(route: &str, status: u16, body: &Value) -> (Value, Value) {
    let a = anchor(route);
    assert_eq!(
        status,
        a["status"].as_u64().unwrap() as u16,
        "{route}: status"
    );
    let envelope = a["envelope"].as_str().unwrap();
    let inner = if envelope == "array" {
        assert!(
            body.is_array(),
            "{route}: expected a bare array, got {body}"
        );
        body.clone()
    } else {
        assert_eq!(
            keys(body),
            BTreeSet::from([envelope.to_owned()]),
            "{route}: envelope"
        );
        body[envelope].clone()
    };
    assert_eq!(
        inner.is_array(),
        a["list"].as_bool().unwrap(),
        "{route}: list or object"
    );
    (a, inner)
}

/// A GET as the frontend's `PagerDutyClient` sends it (its headers included).
pub(crate) async fn get_json(app: &TestApp, path: &str) -> (u16, Value) {
    let res = app
        .http
        .get(app.url(path))
        .header("Accept", "application/vnd.pagerduty+json;version=2")
        .header("Content-Type", "application/json")
        .send()
        .await
        .expect("request sent");
    let status = res.status().as_u16();
    let body = res.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

pub(crate) fn error_message(body: &Value) -> String {
    let errors = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors[] in {body}"));
    assert_eq!(errors.len(), 1, "{body}");
    assert_eq!(keys(body), BTreeSet::from(["errors".to_owned()]), "{body}");
    errors[0].as_str().expect("string message").to_owned()
}

/// The upstream object, straight from the simulator.
async fn upstream(sim: &sim::SimHandle, path: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{}{path}", sim.base_url()))
        .header("Authorization", format!("Token token={}", sim.api_token()))
        .send()
        .await
        .expect("sim answers")
        .json()
        .await
        .expect("sim JSON")
}

/// A service with an escalation policy, an Events v2 key and open incidents if any.
pub(crate) fn pick_service(sim: &sim::SimHandle) -> (String, String, String) {
    let account = sim.account();
    let mut services: Vec<_> = account
        .services
        .iter()
        .filter(|s| s.integrations.iter().any(|i| i.integration_key.is_some()))
        .collect();
    services.sort_by_key(|s| std::cmp::Reverse(account.open_incidents(&s.id).len()));
    let service = services.first().expect("a service with an integration key");
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

#[tokio::test]
async fn card_routes_answer_the_frontends_exact_urls_like_the_node_backend() {
    let SimApp { app, sim } = spawn_with_sim(small_sim(), "").await;
    let (id, key, policy) = pick_service(&sim);

    let (status, body) = get_json(&app, &format!("{P}/health")).await;
    assert_eq!((status, body.clone()), (200, json!({"status": "ok"})));

    // getServiceById: the untrimmed PagerDuty object.
    let (status, body) = get_json(&app, &format!("{P}/services/{id}")).await;
    assert_shape("service", status, &body);
    let service = &body["service"];
    assert_eq!(service["id"], id.as_str());
    for field in ["name", "html_url", "status"] {
        assert!(service[field].is_string(), "service.{field}: {service}");
    }
    for field in ["id", "name", "html_url"] {
        assert!(
            service["escalation_policy"][field].is_string(),
            "escalation_policy.{field}"
        );
    }
    assert_eq!(service["escalation_policy"]["id"], policy.as_str());
    let direct = upstream(
        &sim,
        &format!(
            "/services/{id}?include[]=integrations&include[]=escalation_policies&include[]=teams"
        ),
    )
    .await;
    let missing: Vec<String> = keys(&direct["service"])
        .difference(&keys(service))
        .cloned()
        .collect();
    assert!(missing.is_empty(), "trimmed: {missing:?}");
    // The integration is there, its key shown as an alias (never the key:
    // see frontends::backstage_answers_show_aliases_that_work_here_and_nowhere_else).
    assert!(
        service["integrations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["integration_key"]
                .as_str()
                .is_some_and(|k| k.starts_with("dcak_"))),
        "{service}"
    );
    assert!(!service.to_string().contains(key.as_str()));

    // getServiceByPagerDutyEntity with an integration key.
    let (status, body) = get_json(&app, &format!("{P}/services?integration_key={key}")).await;
    assert_shape("service_by_key", status, &body);
    assert_eq!(body["service"]["id"], id.as_str());

    // Incidents: every open one.
    let (status, body) = get_json(&app, &format!("{P}/services/{id}/incidents")).await;
    assert_shape("incidents", status, &body);
    let open = sim.account().open_incidents(&id).len();
    assert_eq!(body["incidents"].as_array().unwrap().len(), open);
    for incident in body["incidents"].as_array().unwrap() {
        for field in ["id", "title", "status", "urgency", "created_at", "html_url"] {
            assert!(incident[field].is_string(), "incident.{field}: {incident}");
        }
        assert!(incident["assignments"].is_array());
    }

    // Incidents of any age: a service with an open incident older than 30
    // days (the simulator guarantees one: its first generated service, which
    // is not `services[0]` once sorted by name).
    let account = sim.account();
    let cutoff = sim.now() - chrono::Duration::days(30);
    let old_open = |service: &str| -> BTreeSet<String> {
        account
            .open_incidents(service)
            .iter()
            .filter(|i| i.created_at < cutoff)
            .map(|i| i.id.clone())
            .collect()
    };
    let first = &account
        .services
        .iter()
        .find(|s| !old_open(&s.id).is_empty())
        .expect("the simulator has an open incident older than 30 days")
        .id;
    let old = old_open(first);
    let (status, body) = get_json(&app, &format!("{P}/services/{first}/incidents")).await;
    assert_shape("incidents", status, &body);
    let incidents = body["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), account.open_incidents(first).len());
    let older: BTreeSet<String> = incidents
        .iter()
        .filter(|i| {
            let created = i["created_at"].as_str().expect("created_at");
            chrono::DateTime::parse_from_rfc3339(created).expect("RFC 3339") < cutoff
        })
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(older, old, "open incidents older than 30 days are listed");

    // Change events of a service that has some (the newest one's service).
    let newest = account
        .change_events
        .iter()
        .max_by_key(|e| e.timestamp)
        .expect("the simulator has change events");
    let with_changes = newest.service_id.clone();
    let (status, body) =
        get_json(&app, &format!("{P}/services/{with_changes}/change-events")).await;
    assert_shape("change_events", status, &body);
    let events = body["change_events"].as_array().unwrap();
    assert!(!events.is_empty() && events.len() <= 5, "{body}");
    assert!(
        events.iter().any(|e| e["id"] == newest.id.as_str()),
        "the newest change event is listed: {body}"
    );
    let direct = upstream(&sim, &format!("/services/{with_changes}/change_events")).await;
    let missing: Vec<String> = keys(&direct["change_events"][0])
        .difference(&keys(&events[0]))
        .cloned()
        .collect();
    assert!(missing.is_empty(), "change event trimmed: {missing:?}");
    for event in events {
        for field in ["id", "summary", "timestamp"] {
            assert!(event[field].is_string(), "change_event.{field}: {event}");
        }
    }

    let (status, body) = get_json(&app, &format!("{P}/services/{id}/standards")).await;
    assert_shape("standards", status, &body);
    let standards = &body["standards"];
    assert_eq!(standards["resource_id"], id.as_str());
    assert!(standards["score"]["total"].is_u64() && standards["score"]["passing"].is_u64());
    for standard in standards["standards"].as_array().unwrap() {
        assert!(standard["name"].is_string() && standard["pass"].is_boolean());
    }

    // Metrics of a service with incidents in the last 30 days (a day of
    // margin on both ends of the window).
    let now = sim.now();
    let busy = account
        .incident_metrics(
            &[],
            now - chrono::Duration::days(29),
            now - chrono::Duration::days(1),
            None,
        )
        .into_iter()
        .max_by_key(|m| m.total_incident_count)
        .expect("a service with recent incidents");
    let (status, body) = get_json(&app, &format!("{P}/services/{}/metrics", busy.service_id)).await;
    assert_shape("metrics", status, &body);
    let row = &body["metrics"][0];
    for field in ["total_interruptions", "total_incident_count"] {
        assert!(row[field].is_number(), "metrics[0].{field}: {row}");
    }
    assert!(
        row["total_incident_count"].as_u64().unwrap() >= busy.total_incident_count,
        "{row}"
    );
    // Read by the card too.
    assert!(
        row["total_interruptions"].as_u64().unwrap() >= busy.total_interruptions,
        "{row}"
    );

    // getOnCallByPolicyId builds `?escalation_policy_ids[]=ID` by string
    // concatenation: literal brackets. Percent-encoded and bare names too.
    let now = sim.now();
    let oncalls = sim.account().current_oncalls(&policy, now);
    let lowest = oncalls.iter().map(|o| o.escalation_level).min();
    let expected: BTreeSet<String> = oncalls
        .iter()
        .filter(|o| Some(o.escalation_level) == lowest)
        .map(|o| o.user_id.clone())
        .collect();
    assert!(!expected.is_empty(), "someone is on call for {policy}");
    let mut answers = Vec::new();
    for query in [
        format!("escalation_policy_ids[]={policy}"),
        format!("escalation_policy_ids%5B%5D={policy}"),
        format!("escalation_policy_ids={policy}"),
    ] {
        let (status, body) = get_json(&app, &format!("{P}/oncall-users?{query}")).await;
        assert_shape("oncall_users", status, &body);
        let users = body["users"].as_array().unwrap();
        let ids: Vec<String> = users
            .iter()
            .map(|u| u["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            ids.iter().cloned().collect::<BTreeSet<_>>(),
            expected,
            "{query}: lowest level's users"
        );
        assert_eq!(ids.len(), expected.len(), "{query}: deduplicated");
        let names: Vec<&str> = users.iter().map(|u| u["name"].as_str().unwrap()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "sorted by name");
        for user in users {
            for field in ["name", "email", "avatar_url", "html_url"] {
                assert!(user[field].is_string(), "user.{field}: {user}");
            }
        }
        answers.push(body);
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]));

    let (status, body) = get_json(&app, &format!("{P}/oncall-users")).await;
    assert_eq!(status, 400);
    assert_eq!(
        error_message(&body),
        "Bad Request: 'escalation_policy_ids[]' is required"
    );
}

#[tokio::test]
async fn card_routes_add_no_upstream_call_when_the_card_is_warm() {
    let SimApp { app, sim } = spawn_with_sim(small_sim(), "").await;
    let (id, key, policy) = pick_service(&sim);
    let card = app
        .get(&format!("/v1/cards/{id}?include=standards,metrics"))
        .await;
    assert_eq!(card.status(), 200);
    // The by-key card warms the integration-key cache.
    let card = app
        .get(&format!(
            "/v1/cards?integration_key={key}&include=standards,metrics"
        ))
        .await;
    assert_eq!(card.status(), 200);
    sim.reset_stats();
    for path in [
        format!("{P}/services/{id}"),
        format!("{P}/services/{id}/incidents"),
        format!("{P}/services/{id}/standards"),
        format!("{P}/services/{id}/metrics"),
        format!("{P}/services/{id}/change-events"),
        format!("{P}/oncall-users?escalation_policy_ids[]={policy}"),
        format!("{P}/services?integration_key={key}"),
    ] {
        assert_eq!(app.get(&path).await.status(), 200, "{path}");
    }
    assert_eq!(sim.stats().total, 0, "{:?}", sim.stats());
}

#[tokio::test]
async fn list_routes_match_the_node_backend_and_are_cached() {
    let SimApp { app, sim } = spawn_with_sim(small_sim(), "").await;
    let account = sim.account();

    let (status, body) = get_json(&app, &format!("{P}/escalation_policies")).await;
    assert_shape("escalation_policies", status, &body);
    let options = body.as_array().unwrap();
    assert_eq!(options.len(), account.escalation_policies.len());
    let labels: Vec<&str> = options
        .iter()
        .map(|o| o["label"].as_str().unwrap())
        .collect();
    let mut sorted = labels.clone();
    sorted.sort_by_key(|l| l.to_lowercase());
    assert_eq!(labels, sorted);
    assert!(
        labels.iter().all(|l| !l.starts_with('(')),
        "one account: no prefix"
    );

    let (status, body) = get_json(&app, &format!("{P}/teams")).await;
    assert_shape("teams", status, &body);
    assert_eq!(body.as_array().unwrap().len(), account.teams.len());
    assert!(
        body.as_array()
            .unwrap()
            .iter()
            .all(|t| t["account"] == "default")
    );
    let names: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort_by_key(|n| n.to_lowercase());
    assert_eq!(names, sorted, "teams sort by name, case insensitive");

    let (status, body) = get_json(&app, &format!("{P}/services")).await;
    assert_shape("services_all", status, &body);
    assert_eq!(
        body["services"].as_array().unwrap().len(),
        account.services.len()
    );

    let team = account
        .services
        .iter()
        .find_map(|s| s.team_ids.first().cloned())
        .expect("a service with a team");
    let (status, body) = get_json(&app, &format!("{P}/services?team_id={team}&limit=10")).await;
    assert_shape("services_filtered", status, &body);
    let filtered = body.as_array().unwrap();
    assert!(!filtered.is_empty() && filtered.len() <= 10);
    for service in filtered {
        assert_eq!(service["account"], "default");
        assert!(
            service["teams"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["id"] == team.as_str()),
            "{service}"
        );
    }
    let (status, body) = get_json(&app, &format!("{P}/services?query=zzzz-no-such-service")).await;
    assert_eq!((status, body), (200, json!([])));
    for bad in ["0", "-1", "ten"] {
        let (status, body) = get_json(&app, &format!("{P}/services?limit={bad}")).await;
        assert_eq!(status, 400, "limit={bad}");
        assert!(error_message(&body).contains("'limit'"));
    }
    // Above PagerDuty's page size: capped like PagerDuty does, not refused.
    let (status, body) = get_json(&app, &format!("{P}/services?limit=500")).await;
    assert_eq!(status, 200, "{body}");
    let page = body.as_array().expect("a bare array");
    assert!(!page.is_empty() && page.len() <= 100, "{}", page.len());

    let (status, body) = get_json(&app, &format!("{P}/accounts")).await;
    assert_envelope("accounts", status, &body);
    assert_eq!(
        body,
        json!({"accounts": []}),
        "legacy config, like the Node backend"
    );

    // The lists are cached: repeating them costs PagerDuty nothing.
    sim.reset_stats();
    for path in [
        "escalation_policies",
        "teams",
        "services",
        "services?query=zzzz-no-such-service",
    ] {
        assert_eq!(app.get(&format!("{P}/{path}")).await.status(), 200);
    }
    assert_eq!(sim.stats().total, 0, "{:?}", sim.stats());
}

#[tokio::test]
async fn errors_use_the_errors_envelope_and_pass_401_403_404_through() {
    let SimApp { app, sim } = spawn_with_sim(small_sim(), "").await;
    let (id, _, _) = pick_service(&sim);

    let (status, body) = get_json(&app, &format!("{P}/services/PNOSUCH")).await;
    assert_eq!(status, 404);
    assert_eq!(
        error_message(&body),
        "Failed to get service. The requested resource was not found."
    );
    let (status, body) = get_json(&app, &format!("{P}/services/not-an-id!")).await;
    assert_eq!(status, 400);
    assert!(error_message(&body).starts_with("Bad Request: "));

    // Where the Node backend answered 200 {} on a 429, the caller sees the 429.
    sim.set_faults(sim::Faults {
        per_route: vec![(
            "/services/{id}".into(),
            sim::FaultSpec {
                fail_next: 1,
                fail_status: 429,
                rate_limit_reset_secs: 3,
                ..sim::FaultSpec::default()
            },
        )],
        ..sim::Faults::default()
    });
    let res = app.get(&format!("{P}/services/{id}")).await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().get("retry-after").is_some());
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        error_message(&body),
        "Failed to get service. Too many requests have been made, the rate limit has been reached."
    );
    sim.clear_faults();

    // After the 429 check: an unknown key makes the cards crate list every
    // service once (its fallback when `query` does not match), which warms
    // the service cache the 429 check must miss.
    let (status, body) = get_json(
        &app,
        &format!("{P}/services?integration_key=0000000000000000000000000000dead"),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        error_message(&body),
        "Failed to get service. The requested resource was not found."
    );

    // Unknown account: 400 naming the valid ids (the Node backend hung).
    let (status, body) = get_json(&app, &format!("{P}/services/{id}?account=nope")).await;
    assert_eq!(status, 400);
    let message = error_message(&body);
    assert!(
        message.contains("nope") && message.contains("default"),
        "{message}"
    );

    // PagerDuty refuses dutycard's token: 401 passes through (the frontend
    // shows "Missing or invalid PagerDuty Token"); metrics and standards
    // are answered empty so the card still renders (tests/degraded.rs).
    let SimApp { app, sim } = spawn_with_sim_token(
        sim::SimConfig {
            api_tokens: vec![sim::SimToken::full("the-right-token")],
            ..small_sim()
        },
        "",
        Some("a-wrong-token"),
    )
    .await;
    let (id, _, _) = pick_service(&sim);
    for (path, prefix) in [
        (format!("{P}/services/{id}"), "Failed to get service."),
        (
            format!("{P}/escalation_policies"),
            "Failed to list escalation policies.",
        ),
    ] {
        let (status, body) = get_json(&app, &path).await;
        assert_eq!(status, 401, "{path}");
        assert_eq!(
            error_message(&body),
            format!(
                "{prefix} Caller did not supply credentials or did not provide the correct credentials."
            )
        );
    }

    let (status, body) = get_json(&app, &format!("{P}/services/{id}/metrics")).await;
    assert_eq!((status, body), (200, serde_json::json!({"metrics": []})));

    // A token without standards.read: the card renders without standards.
    let sim = start_sim(sim::SimConfig {
        api_tokens: vec![sim::SimToken::scoped(
            "scoped-token",
            &["services.read", "incidents.read"],
        )],
        ..small_sim()
    })
    .await;
    let mut env = crate::helpers::sim_env(&sim);
    env.push((
        "DUTYCARD_PAGERDUTY__API_TOKEN".into(),
        "scoped-token".into(),
    ));
    let app = TestApp::spawn(settings_from(&[crate::helpers::BASE_TOML], &env)).await;
    let (id, _, _) = pick_service(&sim);
    let (status, body) = get_json(&app, &format!("{P}/services/{id}/standards")).await;
    assert_eq!((status, body), (200, serde_json::json!({"standards": {}})));
    // Reads it is allowed stay as they were.
    let (status, _) = get_json(&app, &format!("{P}/services/{id}/incidents")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn every_request_gets_an_answer_within_the_deadline() {
    let SimApp { app, sim } = spawn_with_sim(
        small_sim(),
        "[server]\nrequest_deadline_ms = 300\n[pagerduty]\nrequest_timeout_ms = 5000\nretry_deadline_ms = 5000\n[trigger]\ndeadline_ms = 300\n",
    )
    .await;
    let (id, _, _) = pick_service(&sim);
    sim.set_faults(sim::Faults {
        global: sim::FaultSpec {
            latency_ms: 3000,
            ..sim::FaultSpec::default()
        },
        ..sim::Faults::default()
    });
    let started = std::time::Instant::now();
    let (status, body) = get_json(&app, &format!("{P}/services/{id}/incidents")).await;
    assert_eq!(status, 504);
    assert!(error_message(&body).contains("300 ms"));
    let (status, _) = get_json(&app, &format!("{P}/escalation_policies")).await;
    assert_eq!(status, 504);
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    sim.clear_faults();
}

#[tokio::test]
async fn caller_auth_guards_every_route_but_health() {
    let SimApp { app, sim: _sim } = spawn_with_sim(
        small_sim(),
        "[server.auth]\nmode = \"static\"\n[[server.auth.tokens]]\nname = \"backstage\"\ntoken = \"0123456789abcdef-backstage\"\n",
    )
    .await;
    assert_eq!(app.get(&format!("{P}/health")).await.status(), 200);
    let res = app.get(&format!("{P}/escalation_policies")).await;
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert!(!error_message(&body).is_empty());
    let res = app
        .http
        .get(app.url(&format!("{P}/escalation_policies")))
        .bearer_auth("0123456789abcdef-backstage")
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    assert_eq!(status, 200, "{}", res.text().await.unwrap_or_default());
}
