//! A small fake PagerDuty behind wiremock: it answers the list filters the
//! cards crate uses (so batched calls are split correctly) and lets tests
//! count every request by path.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cards::{CardService, CardsConfig};
use pagerduty::{Client, Credentials, RetryPolicy, SecretString};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// The integration key of service `i` (32 characters).
pub fn key_of(i: usize) -> String {
    format!("{i:0>32}")
}

/// Id of service `i`.
pub fn sid(i: usize) -> String {
    format!("PS{i:05}")
}

/// The card reference of service `i`.
pub fn sref(i: usize) -> cards::ServiceRef {
    cards::ServiceRef::Id(sid(i).parse().unwrap())
}

/// Validated ids, for the batch API.
pub fn typed_ids(ids: &[String]) -> Vec<cards::ServiceId> {
    ids.iter().map(|id| id.parse().unwrap()).collect()
}

/// Id of escalation policy `e`.
pub fn epid(e: usize) -> String {
    format!("PE{e:05}")
}

/// The fake account's data.
pub struct Account {
    pub services: Vec<Value>,
    pub oncalls: Vec<Value>,
    pub incidents: Mutex<Vec<Value>>,
    pub change_events: Vec<Value>,
    /// Delay of every answer (makes concurrent callers really overlap).
    pub delay: Mutex<Duration>,
}

fn user(id: &str, name: &str) -> Value {
    json!({"id": id, "type": "user", "summary": name, "name": name,
           "email": format!("{}@example.com", name.to_lowercase()),
           "html_url": format!("https://acme.pagerduty.com/users/{id}"),
           "avatar_url": format!("https://gravatar.example/{id}")})
}

fn oncall(ep: &str, level: u32, user_value: Value, schedule: Option<&str>) -> Value {
    json!({
        "escalation_policy": {"id": ep, "type": "escalation_policy_reference"},
        "escalation_level": level,
        "schedule": schedule.map(|s| json!({"id": s, "type": "schedule_reference", "summary": format!("Schedule {s}"),
                                             "html_url": format!("https://acme.pagerduty.com/schedules/{s}")})),
        "user": user_value,
        "start": "2026-11-23T00:00:00Z",
        "end": "2026-11-24T00:00:00Z"
    })
}

/// One open incident on service `service`.
pub fn incident(id: &str, service: &str, status: &str, created_at: &str) -> Value {
    json!({
        "id": id, "type": "incident", "incident_number": 100,
        "title": format!("Incident {id}"), "status": status, "urgency": "high",
        "created_at": created_at,
        "html_url": format!("https://acme.pagerduty.com/incidents/{id}"),
        "service": {"id": service, "type": "service_reference"},
        "assignments": [{"at": created_at, "assignee": {"id": "PUANN", "type": "user_reference", "summary": "Ann"}}]
    })
}

impl Account {
    /// `services` services sharing `policies` escalation policies
    /// (service i uses policy i % policies).
    ///
    /// Every policy has 3 levels. Policy 0 has nobody on call at level 1
    /// (Bob at level 2); the others have Ann at level 1 twice (two
    /// schedules), Zed at level 1, Bob at level 2, and Ann again at level 3.
    /// Service i has i % 3 triggered incidents and one acknowledged incident
    /// created in January (older than 30 days). Even services have two
    /// change events.
    pub fn generate(services: usize, policies: usize) -> Account {
        let policy = |e: usize| {
            json!({
                "id": epid(e), "type": "escalation_policy", "name": format!("Policy {e}"),
                "html_url": format!("https://acme.pagerduty.com/escalation_policies/{}", epid(e)),
                "escalation_rules": [
                    {"id": "R1", "escalation_delay_in_minutes": 30, "targets": [
                        {"id": "PSCHED1", "type": "schedule_reference", "summary": "Primary"}]},
                    {"id": "R2", "escalation_delay_in_minutes": 15, "targets": [
                        {"id": "PUBOB", "type": "user_reference", "summary": "Bob"}]},
                    {"id": "R3", "escalation_delay_in_minutes": 10, "targets": [
                        {"id": "PUANN", "type": "user_reference", "summary": "Ann"}]}
                ]
            })
        };
        let services_json = (0..services)
            .map(|i| {
                let mut integrations = vec![json!({
                    "id": format!("PI{i:05}"), "type": "events_api_v2_inbound_integration",
                    "name": "Events", "integration_key": key_of(i)
                })];
                if i % 2 == 0 {
                    integrations.push(json!({
                        "id": format!("PB{i:05}"), "type": "events_api_v2_inbound_integration",
                        "name": "Backstage", "integration_key": format!("b{:0>31}", i),
                        "vendor": {"id": "PRO19CT", "type": "vendor_reference"}
                    }));
                }
                json!({
                    "id": sid(i), "type": "service", "name": format!("Service {i}"),
                    "description": "Does things", "status": "active",
                    "html_url": format!("https://acme.pagerduty.com/service-directory/{}", sid(i)),
                    "created_at": "2025-01-01T00:00:00Z", "updated_at": "2026-11-01T00:00:00Z",
                    "escalation_policy": policy(i % policies),
                    "teams": [{"id": "PT1", "type": "team_reference", "summary": "Payments", "name": "Payments",
                               "html_url": "https://acme.pagerduty.com/teams/PT1"}],
                    "integrations": integrations
                })
            })
            .collect();
        let mut oncalls = Vec::new();
        for e in 0..policies {
            let ep = epid(e);
            if e == 0 {
                oncalls.push(oncall(&ep, 2, user("PUBOB", "Bob"), None));
                continue;
            }
            oncalls.push(oncall(&ep, 1, user("PUZED", "Zed"), Some("PSCHED1")));
            oncalls.push(oncall(&ep, 1, user("PUANN", "Ann"), Some("PSCHED1")));
            oncalls.push(oncall(&ep, 1, user("PUANN", "Ann"), Some("PSCHED2")));
            oncalls.push(oncall(&ep, 2, user("PUBOB", "Bob"), None));
            oncalls.push(oncall(&ep, 3, user("PUANN", "Ann"), None));
        }
        let mut incidents = Vec::new();
        for i in 0..services {
            for n in 0..i % 3 {
                incidents.push(incident(
                    &format!("PX{i:05}{n}"),
                    &sid(i),
                    "triggered",
                    &format!("2026-11-2{n}T00:00:00Z"),
                ));
            }
            incidents.push(incident(
                &format!("PA{i:05}"),
                &sid(i),
                "acknowledged",
                "2026-01-15T00:00:00Z",
            ));
        }
        let mut change_events = Vec::new();
        for i in (0..services).step_by(2) {
            for n in 0..2 {
                change_events.push(json!({
                    "id": format!("PC{i:05}{n}"), "type": "change_event",
                    "summary": format!("Deploy {n} of service {i}"), "source": "ci",
                    "timestamp": format!("2026-11-1{n}T00:00:00Z"),
                    "links": [{"href": "https://ci.example/build/1", "text": "build"}],
                    "services": [{"id": sid(i), "type": "service_reference"}]
                }));
            }
        }
        Account {
            services: services_json,
            oncalls,
            incidents: Mutex::new(incidents),
            change_events,
            delay: Mutex::new(Duration::from_millis(0)),
        }
    }
}

fn query_all(request: &Request, key: &str) -> Vec<String> {
    request
        .url
        .query_pairs()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .collect()
}

fn query_one(request: &Request, key: &str) -> Option<String> {
    query_all(request, key).into_iter().next()
}

/// Classic pagination of `items` under `name` (`total` when asked for).
fn page(request: &Request, name: &str, items: Vec<Value>) -> Value {
    let limit: usize = query_one(request, "limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(25);
    let offset: usize = query_one(request, "offset")
        .and_then(|o| o.parse().ok())
        .unwrap_or(0);
    let more = items.len() > offset + limit;
    let total = (query_one(request, "total").as_deref() == Some("true")).then_some(items.len());
    let slice: Vec<Value> = items.into_iter().skip(offset).take(limit).collect();
    json!({name: slice, "limit": limit, "offset": offset, "more": more, "total": total})
}

/// Answers the REST routes the cards crate reads.
pub struct Fake(pub Arc<Account>);

impl Respond for Fake {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let account = &self.0;
        let delay = *account.delay.lock().unwrap();
        let path = request.url.path().to_owned();
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let body = match segments.as_slice() {
            ["services", id] => match account.services.iter().find(|s| s["id"] == *id) {
                Some(service) => json!({"service": service}),
                None => {
                    return ResponseTemplate::new(404)
                        .set_body_json(json!({"error": {"message": "Not Found", "code": 2100}}));
                }
            },
            ["services"] => {
                let query = query_one(request, "query");
                let items = account
                    .services
                    .iter()
                    .filter(|s| match &query {
                        Some(q) => s["integrations"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|i| i["integration_key"] == q.as_str()),
                        None => true,
                    })
                    .cloned()
                    .collect();
                page(request, "services", items)
            }
            ["oncalls"] => {
                let eps = query_all(request, "escalation_policy_ids[]");
                let items = account
                    .oncalls
                    .iter()
                    .filter(|o| {
                        eps.iter()
                            .any(|e| o["escalation_policy"]["id"] == e.as_str())
                    })
                    .cloned()
                    .collect();
                page(request, "oncalls", items)
            }
            ["incidents"] => {
                let ids = query_all(request, "service_ids[]");
                let mut items: Vec<Value> = account
                    .incidents
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|i| ids.iter().any(|s| i["service"]["id"] == s.as_str()))
                    .cloned()
                    .collect();
                items.sort_by(|a, b| {
                    b["created_at"]
                        .as_str()
                        .unwrap()
                        .cmp(a["created_at"].as_str().unwrap())
                });
                page(request, "incidents", items)
            }
            ["change_events"] => {
                let mut items = account.change_events.clone();
                items.sort_by(|a, b| {
                    b["timestamp"]
                        .as_str()
                        .unwrap()
                        .cmp(a["timestamp"].as_str().unwrap())
                });
                page(request, "change_events", items)
            }
            ["services", id, "change_events"] => {
                let items = account
                    .change_events
                    .iter()
                    .filter(|e| e["services"][0]["id"] == *id)
                    .cloned()
                    .collect();
                page(request, "change_events", items)
            }
            ["standards", "scores", "technical_services"] => {
                let ids = query_all(request, "ids");
                let resources: Vec<Value> = ids
                    .iter()
                    .map(|id| {
                        json!({"resource_id": id, "resource_type": "technical_service",
                               "score": {"passing": 1, "total": 2},
                               "standards": [
                                   {"id": "STD1", "name": "Has a description", "pass": true, "active": true, "type": "has_technical_service_description"},
                                   {"id": "STD2", "name": "Has a runbook", "pass": false, "active": true, "type": "has_runbook"}]})
                    })
                    .collect();
                json!({"resources": resources})
            }
            _ => {
                return ResponseTemplate::new(500)
                    .set_body_string(format!("fake PagerDuty has no route for {path}"));
            }
        };
        ResponseTemplate::new(200)
            .set_body_json(body)
            .set_delay(delay)
    }
}

/// Answers the analytics POST with one row per requested service.
pub struct FakeMetrics;

impl Respond for FakeMetrics {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let ids = body["filters"]["service_ids"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let data: Vec<Value> = ids
            .iter()
            .map(|id| {
                json!({"service_id": id, "service_name": "x", "total_incident_count": 7,
                             "mean_seconds_to_resolve": 1200.0, "mean_seconds_to_first_ack": 60.0})
            })
            .collect();
        ResponseTemplate::new(200).set_body_json(json!({"data": data, "filters": body["filters"]}))
    }
}

/// A fake PagerDuty and a card service reading from it.
pub struct TestPd {
    pub server: MockServer,
    pub account: Arc<Account>,
}

impl TestPd {
    /// Starts a fake account of `services` services over `policies` policies.
    pub async fn start(services: usize, policies: usize) -> TestPd {
        let server = MockServer::start().await;
        let account = Arc::new(Account::generate(services, policies));
        // Priority 10: tests mount failures with the default priority (5), which wins.
        Mock::given(method("GET"))
            .respond_with(Fake(account.clone()))
            .with_priority(10)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/analytics/metrics/incidents/services"))
            .respond_with(FakeMetrics)
            .with_priority(10)
            .mount(&server)
            .await;
        TestPd { server, account }
    }

    /// A client without retries (tests count exact calls) and a card service.
    pub fn cards(&self, config: CardsConfig) -> CardService {
        self.cards_with_clock(config, Arc::new(cards::clock::SystemClock))
    }

    /// Like [`TestPd::cards`], with the clock that decides freshness.
    pub fn cards_with_clock(
        &self,
        config: CardsConfig,
        clock: Arc<dyn cards::clock::Clock>,
    ) -> CardService {
        let client = Client::builder(Credentials::ApiToken(SecretString::from("test-token")))
            .api_base_url(self.server.uri())
            .retry_policy(RetryPolicy {
                max_attempts: 1,
                ..RetryPolicy::default()
            })
            .request_timeout(Duration::from_secs(5))
            .build()
            .expect("client");
        CardService::with_clock(client, config, clock)
    }

    /// Requests received so far for `method path` (exact path, any query).
    pub async fn calls(&self, method_name: &str, path_: &str) -> usize {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.method.as_str() == method_name && r.url.path() == path_)
            .count()
    }

    /// Every request received so far.
    pub async fn total_calls(&self) -> usize {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .len()
    }

    /// Sets the delay of every fake answer.
    pub fn set_delay(&self, delay: Duration) {
        *self.account.delay.lock().unwrap() = delay;
    }
}

/// Test settings: long TTLs, no minimum interval between batches, and a
/// batch window wide enough for a loaded CI machine.
pub fn config() -> CardsConfig {
    CardsConfig {
        batch_window: Duration::from_millis(50),
        refresh_batch_window: Duration::from_millis(20),
        min_batch_interval: Duration::ZERO,
        ..CardsConfig::default()
    }
}

/// Polls `check` every 10 ms for at most 5 s.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let waited = tokio::time::timeout(Duration::from_secs(5), async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "timed out waiting for: {what}");
}
