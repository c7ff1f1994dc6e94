//! Happy path of every REST call, with the exact request PagerDuty expects.

use chrono::{TimeZone, Utc};
use pagerduty::{
    IncidentMetricsQuery, IncidentStatus, ListChangeEvents, ListEscalationPolicies, ListIncidents,
    ListOncalls, ListServices, ListTeams, ServiceInclude, Urgency,
};
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::fixtures;
use crate::helpers::{API_TOKEN, assert_untrimmed, bounded, token_client};

fn ok(body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

#[tokio::test]
async fn get_service_sends_headers_and_includes() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/services/PSVC001"))
            .and(query_param("include[]", "escalation_policies"))
            .and(query_param("include[]", "integrations"))
            .and(query_param("include[]", "teams"))
            .and(header(
                "authorization",
                format!("Token token={API_TOKEN}").as_str(),
            ))
            .and(header("accept", "application/vnd.pagerduty+json;version=2"))
            .and(header("content-type", "application/json"))
            .and(header(
                "user-agent",
                concat!("dutycard/", env!("CARGO_PKG_VERSION")),
            ))
            .respond_with(ok(
                json!({"service": fixtures::service("PSVC001", "Payments API", "k")}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let svc = token_client(&server)
            .get_service(
                "PSVC001",
                &[
                    ServiceInclude::EscalationPolicies,
                    ServiceInclude::Integrations,
                    ServiceInclude::Teams,
                ],
            )
            .await
            .unwrap();
        assert_eq!(svc.id, "PSVC001");
        assert_eq!(svc.name, "Payments API");
        assert_eq!(svc.status.as_deref(), Some("active"));
        let ep = svc.escalation_policy.as_ref().unwrap();
        assert_eq!(ep.escalation_rules.len(), 2);
        assert_eq!(ep.escalation_rules[0].targets[0].kind, "schedule_reference");
        assert_eq!(svc.teams[0].summary.as_deref(), Some("Payments"));
        assert_eq!(svc.integrations[0].integration_key.as_deref(), Some("k"));
        assert_eq!(
            svc.last_incident_timestamp,
            Some(Utc.with_ymd_and_hms(2026, 11, 20, 3, 12, 44).unwrap())
        );
    })
    .await
}

#[tokio::test]
async fn service_round_trips_untrimmed() {
    bounded(async {
        let server = MockServer::start().await;
        let mut original = fixtures::service("PSVC001", "Payments API", "k");
        original["x_future_field"] = json!({"nested": [1, 2, {"deep": true}]});
        Mock::given(method("GET"))
            .and(path("/services/PSVC001"))
            .respond_with(ok(json!({"service": original.clone()})))
            .mount(&server)
            .await;
        let svc = token_client(&server)
            .get_service("PSVC001", &[])
            .await
            .unwrap();
        assert_eq!(
            svc.extra["x_future_field"]["nested"][2]["deep"],
            json!(true)
        );
        assert_eq!(svc.extra["incident_urgency_rule"]["urgency"], json!("high"));
        let back = serde_json::to_value(&svc).unwrap();
        assert_untrimmed(&original, &back, "service");
    })
    .await
}

#[tokio::test]
async fn list_services_one_page_with_filters() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/services"))
            .and(query_param("query", "payments"))
            .and(query_param("team_ids[]", "PTEAM01"))
            .and(query_param("team_ids[]", "PTEAM02"))
            .and(query_param("include[]", "teams"))
            .and(query_param("limit", "2"))
            .and(query_param("offset", "0"))
            .and(query_param("total", "true"))
            .respond_with(ok(json!({
                "services": [
                    fixtures::service("PSVC001", "Payments API", "a"),
                    fixtures::service("PSVC002", "Payments worker", "b")
                ],
                "limit": 2, "offset": 0, "more": true, "total": 5
            })))
            .expect(1)
            .mount(&server)
            .await;
        let page = token_client(&server)
            .list_services(&ListServices {
                query: Some("payments".into()),
                team_ids: vec!["PTEAM01".into(), "PTEAM02".into()],
                include: vec![ServiceInclude::Teams],
                limit: Some(2),
                offset: Some(0),
                total: true,
            })
            .await
            .unwrap();
        assert_eq!(page.items.len(), 2);
        assert_eq!(page.items[1].name, "Payments worker");
        assert!(page.more);
        assert_eq!(page.total, Some(5));
        assert_eq!((page.limit, page.offset), (2, 0));
    })
    .await
}

#[tokio::test]
async fn list_incidents_with_filters() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/incidents"))
            .and(query_param("service_ids[]", "PSVC001"))
            .and(query_param("statuses[]", "triggered"))
            .and(query_param("statuses[]", "acknowledged"))
            .and(query_param("urgencies[]", "high"))
            .and(query_param("date_range", "all"))
            .and(query_param_is_missing("since"))
            .and(query_param("sort_by", "created_at:desc"))
            .and(query_param("limit", "25"))
            .and(query_param("time_zone", "UTC"))
            .respond_with(ok(json!({
                "incidents": [fixtures::incident("PINC001", 4211, "triggered"),
                              fixtures::incident("PINC002", 4212, "acknowledged")],
                "limit": 25, "offset": 0, "more": false, "total": null
            })))
            .expect(1)
            .mount(&server)
            .await;
        let page = token_client(&server)
            .list_incidents(&ListIncidents {
                service_ids: vec!["PSVC001".into()],
                statuses: vec![IncidentStatus::Triggered, IncidentStatus::Acknowledged],
                urgencies: vec![Urgency::High],
                date_range_all: true,
                since: Some(Utc::now()),
                sort_by: Some("created_at:desc".into()),
                limit: Some(25),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(page.items.len(), 2);
        let inc = &page.items[0];
        assert_eq!(inc.status, IncidentStatus::Triggered);
        assert_eq!(inc.urgency, Some(Urgency::High));
        assert_eq!(inc.incident_number, Some(4211));
        assert_eq!(
            inc.assignments[0].assignee.summary.as_deref(),
            Some("Dana Okafor")
        );
        assert_eq!(page.items[1].status, IncidentStatus::Acknowledged);
        assert_eq!(page.total, None);
    })
    .await
}

#[tokio::test]
async fn list_incidents_since_until_are_utc_z() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/incidents"))
            .and(query_param("since", "2026-11-01T00:00:00Z"))
            .and(query_param("until", "2026-11-23T09:30:00Z"))
            .and(query_param_is_missing("date_range"))
            .respond_with(ok(
                json!({"incidents": [], "limit": 25, "offset": 0, "more": false}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let page = token_client(&server)
            .list_incidents(&ListIncidents {
                since: Some(Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()),
                until: Some(Utc.with_ymd_and_hms(2026, 11, 23, 9, 30, 0).unwrap()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(page.items.is_empty());
    })
    .await
}

#[tokio::test]
async fn list_oncalls_with_users() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/oncalls"))
            .and(query_param("escalation_policy_ids[]", "PEP0001"))
            .and(query_param("schedule_ids[]", "PSCHED1"))
            .and(query_param("earliest", "true"))
            .and(query_param("include[]", "users"))
            .and(query_param("time_zone", "Europe/Berlin"))
            .respond_with(ok(json!({
                "oncalls": [fixtures::oncall("PUSER01", "Dana Okafor", 1),
                            fixtures::oncall("PUSER02", "Ravi Menon", 2)],
                "limit": 25, "offset": 0, "more": false, "total": null
            })))
            .expect(1)
            .mount(&server)
            .await;
        let page = token_client(&server)
            .list_oncalls(&ListOncalls {
                escalation_policy_ids: vec!["PEP0001".into()],
                schedule_ids: vec!["PSCHED1".into()],
                earliest: true,
                include_users: true,
                time_zone: Some("Europe/Berlin".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(page.items.len(), 2);
        let first = &page.items[0];
        assert_eq!(first.escalation_level, 1);
        assert_eq!(first.user.email.as_deref(), Some("dana@acme.example"));
        assert_eq!(first.schedule.as_ref().unwrap().id, "PSCHED1");
        assert!(first.end.is_some());
    })
    .await
}

#[tokio::test]
async fn get_and_list_escalation_policies() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/escalation_policies/PEP0001"))
            .respond_with(ok(
                json!({"escalation_policy": fixtures::escalation_policy()}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/escalation_policies"))
            .and(query_param("service_ids[]", "PSVC001"))
            .and(query_param("team_ids[]", "PTEAM01"))
            .and(query_param("query", "Payments"))
            .respond_with(ok(json!({
                "escalation_policies": [fixtures::escalation_policy()],
                "limit": 25, "offset": 0, "more": false, "total": null
            })))
            .expect(1)
            .mount(&server)
            .await;
        let client = token_client(&server);
        let ep = client.get_escalation_policy("PEP0001").await.unwrap();
        assert_eq!(ep.name.as_deref(), Some("Payments on-call"));
        assert_eq!(ep.escalation_rules[1].escalation_delay_in_minutes, Some(30));
        assert_eq!(ep.escalation_rules[1].targets[0].kind, "user_reference");
        assert_eq!(ep.extra["num_loops"], json!(2));
        let page = client
            .list_escalation_policies(&ListEscalationPolicies {
                query: Some("Payments".into()),
                service_ids: vec!["PSVC001".into()],
                team_ids: vec!["PTEAM01".into()],
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(page.items[0].id, "PEP0001");
    })
    .await
}

#[tokio::test]
async fn change_events_per_service_and_account_wide() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/services/PSVC001/change_events"))
            .and(query_param("since", "2026-11-16T00:00:00Z"))
            .and(query_param("limit", "5"))
            .respond_with(ok(json!({
                "change_events": [fixtures::change_event("PCE0001")],
                "limit": null, "offset": null, "total": null, "more": false
            })))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/change_events"))
            .and(query_param("team_ids[]", "PTEAM01"))
            .respond_with(ok(json!({
                "change_events": [fixtures::change_event("PCE0001"), fixtures::change_event("PCE0002")],
                "limit": 25, "offset": 0, "more": false, "total": null
            })))
            .expect(1)
            .mount(&server)
            .await;
        let client = token_client(&server);
        let page = client
            .list_service_change_events(
                "PSVC001",
                &ListChangeEvents {
                    since: Some(Utc.with_ymd_and_hms(2026, 11, 16, 0, 0, 0).unwrap()),
                    limit: Some(5),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(page.items.len(), 1);
        let ev = &page.items[0];
        assert_eq!(ev.summary.as_deref(), Some("Deploy payments-api v2.14.0"));
        assert_eq!(ev.links[0].text.as_deref(), Some("PR #812"));
        assert_eq!(ev.services[0].id, "PSVC001");
        assert!(
            !ev.extra.contains_key("routing_key"),
            "routing keys are secrets and are dropped"
        );
        assert_eq!(page.limit, 5, "null limit falls back to the requested one");
        let all = client
            .list_change_events(&ListChangeEvents {
                team_ids: vec!["PTEAM01".into()],
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(all.items.len(), 2);
    })
    .await
}

#[tokio::test]
async fn teams_user_abilities() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/teams"))
            .and(query_param("query", "Pay"))
            .respond_with(ok(json!({
                "teams": [fixtures::team("PTEAM01", "Payments"), fixtures::team("PTEAM03", "Payroll")],
                "limit": 25, "offset": 0, "more": false, "total": null
            })))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/users/PUSER01"))
            .respond_with(ok(json!({"user": fixtures::user("PUSER01")})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/abilities"))
            .respond_with(ok(json!({"abilities": ["teams", "read_only_users", "urgencies"]})))
            .expect(1)
            .mount(&server)
            .await;
        let client = token_client(&server);
        let teams = client
            .list_teams(&ListTeams {
                query: Some("Pay".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(teams.items[1].name.as_deref(), Some("Payroll"));
        let user = client.get_user("PUSER01").await.unwrap();
        assert_eq!(user.email.as_deref(), Some("dana@acme.example"));
        assert_eq!(user.extra["job_title"], json!("Staff SRE"));
        let abilities = client.list_abilities().await.unwrap();
        assert_eq!(abilities, vec!["teams", "read_only_users", "urgencies"]);
    })
    .await
}

#[tokio::test]
async fn standards_one_and_many() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/standards/scores/technical_services/PSVC001"))
            .respond_with(ok(fixtures::standards("PSVC001")))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/standards/scores/technical_services"))
            .and(query_param("ids", "PSVC001"))
            .and(query_param("ids", "PSVC002"))
            .respond_with(ok(json!({"resources": [fixtures::standards("PSVC001"), fixtures::standards("PSVC002")]})))
            .expect(1)
            .mount(&server)
            .await;
        let client = token_client(&server);
        let one = client.service_standards("PSVC001").await.unwrap();
        assert_eq!(one.resource_id, "PSVC001");
        let score = one.score.as_ref().unwrap();
        assert_eq!((score.passing, score.total), (1, 2));
        assert_eq!(one.standards[1].pass, Some(false));
        assert_eq!(one.standards[1].kind.as_deref(), Some("minimum_escalation_rules"));
        let many = client
            .services_standards(&["PSVC001".into(), "PSVC002".into()])
            .await
            .unwrap();
        assert_eq!(many.len(), 2);
        assert_eq!(many[1].resource_id, "PSVC002");
        assert!(client.services_standards(&[]).await.unwrap().is_empty());
    })
    .await
}

#[tokio::test]
async fn incident_metrics_by_service_posts_filters() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/analytics/metrics/incidents/services"))
            .and(header("content-type", "application/json"))
            .and(body_json(json!({
                "filters": {
                    "created_at_start": "2026-10-24T00:00:00Z",
                    "created_at_end": "2026-11-23T00:00:00Z",
                    "service_ids": ["PSVC001"]
                },
                "time_zone": "Etc/UTC"
            })))
            .respond_with(ok(json!({
                "data": [fixtures::metrics("PSVC001")],
                "filters": {"created_at_start": "2026-10-24T00:00:00Z", "created_at_end": "2026-11-23T00:00:00Z",
                            "service_ids": ["PSVC001"]},
                "time_zone": "Etc/UTC"
            })))
            .expect(1)
            .mount(&server)
            .await;
        let rows = token_client(&server)
            .incident_metrics_by_service(&IncidentMetricsQuery {
                service_ids: vec!["PSVC001".into()],
                created_at_start: Utc.with_ymd_and_hms(2026, 10, 24, 0, 0, 0).unwrap(),
                created_at_end: Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap(),
                aggregate_unit: None,
                time_zone: Some("Etc/UTC".into()),
            })
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].total_incident_count, Some(Some(17)));
        assert_eq!(rows[0].mean_seconds_to_resolve, Some(Some(2710.5)));
        assert_eq!(rows[0].extra["total_notifications"], json!(58));
    })
    .await
}

#[tokio::test]
async fn ids_are_path_encoded() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/users/..%2Fservices"))
            .respond_with(ok(json!({"user": fixtures::user("X")})))
            .expect(1)
            .mount(&server)
            .await;
        token_client(&server).get_user("../services").await.unwrap();
    })
    .await
}
