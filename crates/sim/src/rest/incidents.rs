//! `GET /incidents`: filters, the date window, sorting.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::{check_enum, ok};
use crate::account::AccountView;
use crate::http::{Query, Reply, invalid, not_found, pd_error, time_error};
use crate::render::Render;

const SORT_FIELDS: &[&str] = &["incident_number", "created_at", "resolved_at", "urgency"];

pub(super) fn list_incidents(
    q: &Query,
    account: &AccountView,
    r: &Render,
    now: DateTime<Utc>,
) -> Result<Reply, Reply> {
    let page = q.page()?;
    let statuses = q.all("statuses");
    check_enum(
        "statuses[]",
        &statuses,
        &["triggered", "acknowledged", "resolved"],
    )?;
    let urgencies = q.all("urgencies");
    check_enum("urgencies[]", &urgencies, &["high", "low"])?;
    let include = q.all("include");
    check_enum(
        "include[]",
        &include,
        &[
            "acknowledgers",
            "agents",
            "assignees",
            "conference_bridge",
            "escalation_policies",
            "first_trigger_log_entries",
            "priorities",
            "services",
            "teams",
            "users",
        ],
    )?;
    let service_ids = q.all("service_ids");
    let team_ids = q.all("team_ids");
    let user_ids = q.all("user_ids");
    let incident_key = q.one("incident_key");
    let window = match q.one("date_range") {
        Some("all") => None,
        Some(other) => {
            return Err(invalid(format!(
                "date_range {other:?} is invalid; allowed: all"
            )));
        }
        None => {
            let since = q.time("since")?;
            let until = q.time("until")?;
            let (since, until) = match (since, until) {
                (Some(s), Some(u)) => (s, u),
                (Some(s), None) => (s, now.max(s)),
                (None, Some(u)) => (u - Duration::days(30), u),
                (None, None) => (now - Duration::days(30), now),
            };
            if until < since {
                return Err(time_error("until"));
            }
            if until - since > Duration::days(183) {
                return Err(pd_error(
                    400,
                    "Invalid Query Date Range",
                    Some(2005),
                    &["The range from since to until must not exceed 6 months".to_owned()],
                ));
            }
            Some((since, until))
        }
    };
    let mut sort: Vec<(String, bool)> = Vec::new();
    if let Some(spec) = q.one("sort_by") {
        for part in spec.split(',').filter(|p| !p.is_empty()) {
            let (field, dir) = part.split_once(':').unwrap_or((part, "asc"));
            if !SORT_FIELDS.contains(&field) || !matches!(dir, "asc" | "desc") {
                return Err(invalid(format!(
                    "sort_by {part:?} is invalid; fields: {}; directions: asc, desc",
                    SORT_FIELDS.join(", ")
                )));
            }
            sort.push((field.to_owned(), dir == "desc"));
        }
        if sort.len() > 2 {
            return Err(invalid("sort_by takes at most 2 fields"));
        }
    }
    let mut incidents: Vec<_> = account
        .incidents
        .iter()
        .filter(|i| service_ids.is_empty() || service_ids.contains(&i.service_id))
        .filter(|i| statuses.is_empty() || statuses.contains(&i.status))
        .filter(|i| urgencies.is_empty() || urgencies.contains(&i.urgency))
        .filter(|i| incident_key.is_none_or(|k| i.incident_key == k))
        .filter(|i| user_ids.is_empty() || i.assignee_ids.iter().any(|u| user_ids.contains(u)))
        .filter(|i| {
            team_ids.is_empty()
                || account
                    .service(&i.service_id)
                    .is_some_and(|s| s.team_ids.iter().any(|t| team_ids.contains(t)))
        })
        .filter(|i| window.is_none_or(|(s, u)| i.created_at >= s && i.created_at <= u))
        .collect();
    incidents.sort_by(|a, b| {
        for (field, desc) in &sort {
            let ord = match field.as_str() {
                "incident_number" => a.incident_number.cmp(&b.incident_number),
                "created_at" => a.created_at.cmp(&b.created_at),
                "resolved_at" => a.resolved_at.cmp(&b.resolved_at),
                _ => a.urgency.cmp(&b.urgency),
            };
            let ord = if *desc { ord.reverse() } else { ord };
            if ord.is_ne() {
                return ord;
            }
        }
        a.incident_number.cmp(&b.incident_number)
    });
    Ok(ok(page.wrap("incidents", &incidents, |i| {
        r.incident(i, &include)
    })))
}

pub(super) fn get_incident(
    id: &str,
    q: &Query,
    account: &AccountView,
    r: &Render,
) -> Result<Reply, Reply> {
    let i = account.incident(id).ok_or_else(not_found)?;
    Ok(ok(json!({"incident": r.incident(i, &q.all("include"))})))
}
