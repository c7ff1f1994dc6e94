//! Realistic PagerDuty bodies (shaped after the public API reference, with
//! our own sample values).

use serde_json::{Value, json};

pub fn service(id: &str, name: &str, integration_key: &str) -> Value {
    json!({
        "id": id,
        "type": "service",
        "summary": name,
        "self": format!("https://api.pagerduty.com/services/{id}"),
        "html_url": format!("https://acme.pagerduty.com/service-directory/{id}"),
        "name": name,
        "description": "Takes card payments for the web shop",
        "auto_resolve_timeout": 14400,
        "acknowledgement_timeout": 600,
        "created_at": "2024-03-02T08:15:00Z",
        "updated_at": "2026-10-30T17:45:12Z",
        "status": "active",
        "last_incident_timestamp": "2026-11-20T03:12:44Z",
        "alert_creation": "create_alerts_and_incidents",
        "incident_urgency_rule": {"type": "constant", "urgency": "high"},
        "support_hours": null,
        "scheduled_actions": [],
        "escalation_policy": {
            "id": "PEP0001",
            "type": "escalation_policy",
            "summary": "Payments on-call",
            "self": "https://api.pagerduty.com/escalation_policies/PEP0001",
            "html_url": "https://acme.pagerduty.com/escalation_policies/PEP0001",
            "name": "Payments on-call",
            "num_loops": 2,
            "escalation_rules": [
                {
                    "id": "PRULE01",
                    "escalation_delay_in_minutes": 15,
                    "targets": [
                        {"id": "PSCHED1", "type": "schedule_reference", "summary": "Payments primary",
                         "self": "https://api.pagerduty.com/schedules/PSCHED1",
                         "html_url": "https://acme.pagerduty.com/schedules/PSCHED1"}
                    ]
                },
                {
                    "id": "PRULE02",
                    "escalation_delay_in_minutes": 30,
                    "targets": [
                        {"id": "PUSER02", "type": "user_reference", "summary": "Ravi Menon",
                         "self": "https://api.pagerduty.com/users/PUSER02",
                         "html_url": "https://acme.pagerduty.com/users/PUSER02"}
                    ]
                }
            ],
            "teams": [{"id": "PTEAM01", "type": "team_reference", "summary": "Payments"}]
        },
        "teams": [
            {"id": "PTEAM01", "type": "team_reference", "summary": "Payments",
             "self": "https://api.pagerduty.com/teams/PTEAM01",
             "html_url": "https://acme.pagerduty.com/teams/PTEAM01"}
        ],
        "integrations": [
            {
                "id": "PINT001",
                "type": "events_api_v2_inbound_integration",
                "summary": "Prometheus Alertmanager",
                "name": "Prometheus Alertmanager",
                "self": format!("https://api.pagerduty.com/services/{id}/integrations/PINT001"),
                "html_url": format!("https://acme.pagerduty.com/services/{id}/integrations/PINT001"),
                "integration_key": integration_key,
                "created_at": "2024-03-02T08:20:00Z",
                "vendor": {"id": "PAM4FGS", "type": "vendor_reference", "summary": "Prometheus"}
            }
        ]
    })
}

pub fn incident(id: &str, number: u64, status: &str) -> Value {
    json!({
        "id": id,
        "type": "incident",
        "summary": format!("[#{number}] Checkout latency p99 above 2s"),
        "self": format!("https://api.pagerduty.com/incidents/{id}"),
        "html_url": format!("https://acme.pagerduty.com/incidents/{id}"),
        "incident_number": number,
        "title": "Checkout latency p99 above 2s",
        "created_at": "2026-11-23T07:58:03Z",
        "updated_at": "2026-11-23T08:01:10Z",
        "status": status,
        "incident_key": "checkout-latency",
        "service": {"id": "PSVC001", "type": "service_reference", "summary": "Payments API"},
        "assignments": [
            {"at": "2026-11-23T07:58:04Z",
             "assignee": {"id": "PUSER01", "type": "user_reference", "summary": "Dana Okafor",
                          "self": "https://api.pagerduty.com/users/PUSER01",
                          "html_url": "https://acme.pagerduty.com/users/PUSER01"}}
        ],
        "acknowledgements": [],
        "last_status_change_at": "2026-11-23T07:58:03Z",
        "escalation_policy": {"id": "PEP0001", "type": "escalation_policy_reference", "summary": "Payments on-call"},
        "teams": [{"id": "PTEAM01", "type": "team_reference", "summary": "Payments"}],
        "priority": null,
        "urgency": "high",
        "alert_counts": {"all": 3, "triggered": 3, "resolved": 0}
    })
}

pub fn oncall(user_id: &str, name: &str, level: u32) -> Value {
    json!({
        "escalation_policy": {"id": "PEP0001", "type": "escalation_policy_reference", "summary": "Payments on-call",
                              "self": "https://api.pagerduty.com/escalation_policies/PEP0001",
                              "html_url": "https://acme.pagerduty.com/escalation_policies/PEP0001"},
        "escalation_level": level,
        "schedule": {"id": "PSCHED1", "type": "schedule_reference", "summary": "Payments primary"},
        "user": {
            "id": user_id, "type": "user", "summary": name, "name": name,
            "email": format!("{}@acme.example", name.split(' ').next().unwrap().to_lowercase()),
            "time_zone": "Europe/Berlin", "color": "teal", "role": "user",
            "avatar_url": "https://secure.gravatar.com/avatar/0f3c?d=mm&r=PG",
            "html_url": format!("https://acme.pagerduty.com/users/{user_id}"),
            "job_title": "SRE"
        },
        "start": "2026-11-23T07:00:00Z",
        "end": "2026-11-30T07:00:00Z"
    })
}

pub fn escalation_policy() -> Value {
    json!({
        "id": "PEP0001",
        "type": "escalation_policy",
        "summary": "Payments on-call",
        "self": "https://api.pagerduty.com/escalation_policies/PEP0001",
        "html_url": "https://acme.pagerduty.com/escalation_policies/PEP0001",
        "name": "Payments on-call",
        "description": "Primary then secondary",
        "num_loops": 2,
        "on_call_handoff_notifications": "if_has_services",
        "escalation_rules": [
            {"id": "PRULE01", "escalation_delay_in_minutes": 15,
             "targets": [{"id": "PSCHED1", "type": "schedule_reference", "summary": "Payments primary"}]},
            {"id": "PRULE02", "escalation_delay_in_minutes": 30,
             "targets": [{"id": "PUSER02", "type": "user_reference", "summary": "Ravi Menon"}]}
        ],
        "services": [{"id": "PSVC001", "type": "service_reference", "summary": "Payments API"}],
        "teams": [{"id": "PTEAM01", "type": "team_reference", "summary": "Payments"}]
    })
}

pub fn change_event(id: &str) -> Value {
    json!({
        "id": id,
        "type": "change_event",
        "summary": "Deploy payments-api v2.14.0",
        "timestamp": "2026-11-22T16:40:00Z",
        "source": "github-actions",
        "routing_key": "Rabcdefabcdefabcdefabcdefabcdef0",
        "services": [{"id": "PSVC001", "type": "service_reference", "summary": "Payments API"}],
        "integration": {"id": "PINT002", "type": "inbound_integration_reference"},
        "custom_details": {"commit": "4f2a9c1", "actor": "dana"},
        "links": [{"href": "https://git.example/acme/payments/pull/812", "text": "PR #812"}],
        "images": []
    })
}

pub fn team(id: &str, name: &str) -> Value {
    json!({
        "id": id, "type": "team", "summary": name, "name": name,
        "description": format!("{name} engineering"),
        "self": format!("https://api.pagerduty.com/teams/{id}"),
        "html_url": format!("https://acme.pagerduty.com/teams/{id}"),
        "default_role": "manager", "parent": null
    })
}

pub fn user(id: &str) -> Value {
    json!({
        "id": id, "type": "user", "summary": "Dana Okafor", "name": "Dana Okafor",
        "email": "dana@acme.example", "time_zone": "Europe/Berlin", "color": "purple",
        "role": "admin", "avatar_url": "https://secure.gravatar.com/avatar/9a1b?d=mm&r=PG",
        "description": "Payments SRE", "invitation_sent": false, "job_title": "Staff SRE",
        "teams": [{"id": "PTEAM01", "type": "team_reference", "summary": "Payments"}],
        "contact_methods": [{"id": "PCM0001", "type": "email_contact_method_reference", "summary": "Default"}],
        "notification_rules": [],
        "self": format!("https://api.pagerduty.com/users/{id}"),
        "html_url": format!("https://acme.pagerduty.com/users/{id}")
    })
}

pub fn standards(id: &str) -> Value {
    json!({
        "resource_id": id,
        "resource_type": "technical_service",
        "score": {"passing": 1, "total": 2},
        "standards": [
            {"active": true, "description": "Responders need context about what the service does.",
             "id": "01STD0000DESCRIPTION0000001", "pass": true, "name": "Service has a description",
             "type": "has_technical_service_description"},
            {"active": true, "description": "A service should not page a single person.",
             "id": "01STD0000MULTIPLELEVELS0001", "pass": false,
             "name": "Escalation policy has more than one level",
             "type": "minimum_escalation_rules"}
        ]
    })
}

pub fn metrics(id: &str) -> Value {
    json!({
        "service_id": id, "service_name": "Payments API", "team_id": "PTEAM01", "team_name": "Payments",
        "mean_assignment_count": 1, "mean_engaged_seconds": 540, "mean_engaged_user_count": 2,
        "mean_seconds_to_engage": 95, "mean_seconds_to_first_ack": 71, "mean_seconds_to_mobilize": 40,
        "mean_seconds_to_resolve": 2710.5, "total_escalation_count": 3, "total_incident_count": 17,
        "total_incidents_acknowledged": 16, "total_interruptions": 21, "total_notifications": 58,
        "up_time_pct": 99.71
    })
}

pub fn error_body(message: &str, code: i64) -> Value {
    json!({"error": {"message": message, "code": code}})
}
