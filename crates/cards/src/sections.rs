//! Pure functions from PagerDuty objects to card sections (no I/O, unit-tested).

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use pagerduty::{
    ChangeEvent, EscalationPolicy, Incident, IncidentStatus, Oncall, Reference, Service,
    ServiceIncidentMetrics, ServiceStandards, Urgency,
};

use crate::model::{
    ChangeEventSummary, ChangeEventsSection, EscalationLevel, EscalationPolicySection,
    EscalationTarget, EventLink, IncidentSummary, IncidentsSection, MetricsSection, ObjectRef,
    OncallLevel, OncallSection, OncallUser, ServiceSection, StandardResult, StandardsSection,
    TargetKind,
};

fn reference(r: &Reference) -> ObjectRef {
    ObjectRef {
        id: r.id.clone(),
        name: r.summary.clone(),
        html_url: r.html_url.clone(),
    }
}

/// The service section.
pub(crate) fn service_section(service: &Service) -> ServiceSection {
    ServiceSection {
        id: service.id.clone(),
        name: service.name.clone(),
        description: service.description.clone(),
        status: service.status.clone(),
        html_url: service.html_url.clone(),
        teams: service
            .teams
            .iter()
            .map(|t| ObjectRef {
                id: t.id.clone(),
                name: t.name.clone().or_else(|| t.summary.clone()),
                html_url: t.html_url.clone(),
            })
            .collect(),
        created_at: service.created_at,
        updated_at: service.updated_at,
    }
}

/// The escalation policy section (from the service read with `include[]=escalation_policies`).
pub(crate) fn escalation_policy_section(policy: &EscalationPolicy) -> EscalationPolicySection {
    EscalationPolicySection {
        id: policy.id.clone(),
        name: policy.name.clone().or_else(|| policy.summary.clone()),
        html_url: policy.html_url.clone(),
        levels: policy
            .escalation_rules
            .iter()
            .enumerate()
            .map(|(i, rule)| EscalationLevel {
                level: i as u32 + 1,
                escalation_delay_in_minutes: rule.escalation_delay_in_minutes,
                targets: rule
                    .targets
                    .iter()
                    .map(|t| EscalationTarget {
                        // "user", "user_reference", "schedule", "schedule_reference"
                        kind: if t.kind.starts_with("schedule") {
                            TargetKind::Schedule
                        } else {
                            TargetKind::User
                        },
                        id: t.id.clone(),
                        name: t.summary.clone(),
                        html_url: t.html_url.clone(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// On-call levels of one escalation policy.
///
/// * every level the policy defines is listed, even when nobody is on call
///   there (level 1 can be empty, e.g. a schedule with a gap);
/// * a user appears once per level (PagerDuty lists one entry per schedule
///   or direct target that puts them there); users are sorted by name;
/// * the lowest level with anyone on call is `primary`: those are the
///   people paged first.
pub(crate) fn oncall_section(
    escalation_policy_id: &str,
    policy_levels: usize,
    oncalls: &[Oncall],
) -> OncallSection {
    let mut levels: BTreeMap<u32, Vec<OncallUser>> = (1..=policy_levels as u32)
        .map(|level| (level, Vec::new()))
        .collect();
    let mut seen: HashSet<(u32, &str)> = HashSet::new();
    let mut entries: Vec<&Oncall> = oncalls
        .iter()
        .filter(|o| o.escalation_policy.id == escalation_policy_id)
        .collect();
    // Earliest shift first, so the kept duplicate is the one on call longest.
    entries.sort_by_key(|o| (o.escalation_level, o.start));
    for oncall in entries {
        let users = levels.entry(oncall.escalation_level).or_default();
        if !seen.insert((oncall.escalation_level, oncall.user.id.as_str())) {
            continue;
        }
        let user = &oncall.user;
        users.push(OncallUser {
            id: user.id.clone(),
            name: user.name.clone().or_else(|| user.summary.clone()),
            email: user.email.clone(),
            html_url: user.html_url.clone(),
            avatar_url: user.avatar_url.clone(),
            schedule: oncall.schedule.as_ref().map(reference),
            start: oncall.start,
            end: oncall.end,
        });
    }
    let primary = levels
        .iter()
        .find(|(_, users)| !users.is_empty())
        .map(|(level, _)| *level);
    OncallSection {
        escalation_policy_id: escalation_policy_id.to_owned(),
        levels: levels
            .into_iter()
            .map(|(level, mut users)| {
                users.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
                OncallLevel {
                    level,
                    primary: Some(level) == primary,
                    users,
                }
            })
            .collect(),
    }
}

fn status_str(status: &IncidentStatus) -> &'static str {
    match status {
        IncidentStatus::Triggered => "triggered",
        IncidentStatus::Acknowledged => "acknowledged",
        IncidentStatus::Resolved => "resolved",
    }
}

fn urgency_str(urgency: &Urgency) -> &'static str {
    match urgency {
        Urgency::High => "high",
        Urgency::Low => "low",
    }
}

/// Counts and newest `limit` of a service's open incidents.
pub(crate) fn incidents_section(
    incidents: &[Incident],
    truncated: bool,
    limit: usize,
) -> IncidentsSection {
    let open: Vec<&Incident> = incidents
        .iter()
        .filter(|i| !matches!(i.status, IncidentStatus::Resolved))
        .collect();
    let count = |s: IncidentStatus| open.iter().filter(|i| i.status == s).count() as u32;
    let mut newest = open.clone();
    newest.sort_by_key(|i| std::cmp::Reverse(i.created_at));
    IncidentsSection {
        triggered: count(IncidentStatus::Triggered),
        acknowledged: count(IncidentStatus::Acknowledged),
        truncated,
        newest: newest
            .into_iter()
            .take(limit)
            .map(|i| IncidentSummary {
                id: i.id.clone(),
                number: i.incident_number,
                title: i.title.clone().or_else(|| i.summary.clone()),
                status: status_str(&i.status).to_owned(),
                urgency: i.urgency.as_ref().map(|u| urgency_str(u).to_owned()),
                created_at: i.created_at,
                html_url: i.html_url.clone(),
                assignees: i
                    .assignments
                    .iter()
                    .map(|a| reference(&a.assignee))
                    .collect(),
            })
            .collect(),
    }
}

/// The newest `limit` change events, newest first.
pub(crate) fn change_events_section<'a>(
    events: impl IntoIterator<Item = &'a ChangeEvent>,
    limit: usize,
) -> ChangeEventsSection {
    let mut events: Vec<&ChangeEvent> = events.into_iter().collect();
    events.sort_by_key(|e| std::cmp::Reverse(e.timestamp));
    ChangeEventsSection {
        items: events
            .into_iter()
            .take(limit)
            .map(|e| ChangeEventSummary {
                id: e.id.clone(),
                summary: e.summary.clone(),
                source: e.source.clone(),
                timestamp: e.timestamp,
                links: e
                    .links
                    .iter()
                    .map(|l| EventLink {
                        href: l.href.clone(),
                        text: l.text.clone(),
                    })
                    .collect(),
                html_url: e.html_url.clone(),
            })
            .collect(),
    }
}

/// The standards section.
pub(crate) fn standards_section(standards: &ServiceStandards) -> StandardsSection {
    StandardsSection {
        passing: standards.score.as_ref().map(|s| s.passing),
        total: standards.score.as_ref().map(|s| s.total),
        standards: standards
            .standards
            .iter()
            .map(|s| StandardResult {
                id: Some(s.id.clone()),
                name: s.name.clone(),
                description: s.description.clone(),
                pass: s.pass,
            })
            .collect(),
    }
}

/// The metrics section: PagerDuty answers one row per service (none when the
/// service had no incidents in the period).
pub(crate) fn metrics_section(
    rows: &[ServiceIncidentMetrics],
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> MetricsSection {
    let row = rows.first();
    MetricsSection {
        since,
        until,
        total_incident_count: Some(
            row.and_then(|r| r.total_incident_count.flatten())
                .unwrap_or(0),
        ),
        mean_seconds_to_resolve: row.and_then(|r| r.mean_seconds_to_resolve.flatten()),
        mean_seconds_to_first_ack: row.and_then(|r| r.mean_seconds_to_first_ack.flatten()),
        raw: row
            .and_then(|r| serde_json::to_value(r).ok())
            .unwrap_or(serde_json::Value::Null),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn oncall(level: u32, user: &str, name: &str, schedule: Option<&str>) -> Oncall {
        serde_json::from_value(json!({
            "escalation_policy": {"id": "PEP1", "type": "escalation_policy_reference"},
            "escalation_level": level,
            "schedule": schedule.map(|s| json!({"id": s, "type": "schedule_reference", "summary": format!("Schedule {s}")})),
            "user": {"id": user, "type": "user", "name": name, "email": format!("{user}@example.com"),
                     "html_url": format!("https://x.pagerduty.com/users/{user}"), "avatar_url": "https://gravatar/x"},
            "start": "2026-11-23T00:00:00Z", "end": "2026-11-24T00:00:00Z"
        }))
        .unwrap()
    }

    #[test]
    fn levels_are_deduplicated_and_the_lowest_non_empty_level_is_primary() {
        let oncalls = vec![
            oncall(2, "PU2", "Zoe", Some("PS1")),
            oncall(2, "PU1", "Ann", Some("PS1")),
            oncall(2, "PU1", "Ann", Some("PS2")),
            oncall(3, "PU1", "Ann", None),
        ];
        // The policy has 3 levels; nobody is on call at level 1.
        let section = oncall_section("PEP1", 3, &oncalls);
        assert_eq!(section.levels.len(), 3);
        assert!(section.levels[0].users.is_empty());
        assert!(!section.levels[0].primary);
        assert!(section.levels[1].primary);
        let names: Vec<_> = section.levels[1]
            .users
            .iter()
            .map(|u| u.name.as_deref().unwrap())
            .collect();
        assert_eq!(
            names,
            ["Ann", "Zoe"],
            "deduplicated within the level, sorted by name"
        );
        // The same person on another level stays there: dedup is per level.
        assert_eq!(section.levels[2].users.len(), 1);
        assert!(!section.levels[2].primary);
        assert_eq!(section.levels[2].users[0].schedule, None);
        assert_eq!(
            section.levels[1].users[0].schedule.as_ref().unwrap().id,
            "PS1"
        );
    }

    #[test]
    fn level_one_is_primary_when_staffed_and_other_policies_are_ignored() {
        let mut other = oncall(1, "PU9", "Other", None);
        other.escalation_policy.id = "PEP2".into();
        let section = oncall_section("PEP1", 1, &[oncall(1, "PU1", "Ann", None), other]);
        assert_eq!(section.levels.len(), 1);
        assert!(section.levels[0].primary);
        assert_eq!(section.levels[0].users.len(), 1);
    }

    #[test]
    fn nobody_on_call_gives_empty_levels_and_no_primary() {
        let section = oncall_section("PEP1", 2, &[]);
        assert_eq!(section.levels.len(), 2);
        assert!(
            section
                .levels
                .iter()
                .all(|l| !l.primary && l.users.is_empty())
        );
    }

    fn incident(id: &str, status: &str, created: &str) -> Incident {
        serde_json::from_value(json!({
            "id": id, "type": "incident", "incident_number": 1, "title": format!("t {id}"),
            "status": status, "urgency": "high", "created_at": created,
            "service": {"id": "PS", "type": "service_reference"},
            "assignments": [{"at": created, "assignee": {"id": "PU1", "type": "user_reference", "summary": "Ann"}}]
        }))
        .unwrap()
    }

    #[test]
    fn incidents_are_counted_and_the_newest_listed_first() {
        let incidents = vec![
            incident("P1", "triggered", "2026-01-01T00:00:00Z"),
            incident("P2", "acknowledged", "2026-11-01T00:00:00Z"),
            incident("P3", "triggered", "2026-11-20T00:00:00Z"),
        ];
        let section = incidents_section(&incidents, false, 2);
        assert_eq!((section.triggered, section.acknowledged), (2, 1));
        let ids: Vec<_> = section.newest.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["P3", "P2"]);
        assert_eq!(section.newest[0].urgency.as_deref(), Some("high"));
        assert_eq!(section.newest[0].assignees[0].name.as_deref(), Some("Ann"));
    }

    #[test]
    fn escalation_targets_keep_their_kind() {
        let policy: EscalationPolicy = serde_json::from_value(json!({
            "id": "PEP1", "type": "escalation_policy", "name": "Ops",
            "escalation_rules": [
                {"escalation_delay_in_minutes": 30, "targets": [
                    {"id": "PS1", "type": "schedule_reference", "summary": "Primary"},
                    {"id": "PU1", "type": "user_reference", "summary": "Ann"}]}
            ]
        }))
        .unwrap();
        let section = escalation_policy_section(&policy);
        assert_eq!(section.levels[0].targets[0].kind, TargetKind::Schedule);
        assert_eq!(section.levels[0].targets[1].kind, TargetKind::User);
        assert_eq!(section.levels[0].escalation_delay_in_minutes, Some(30));
    }
}
