//! `POST /analytics/metrics/incidents/services`.

use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use serde_json::{Value, json};

use super::body::{self, string_list};
use super::ok;
use crate::account::{AccountView, ServiceMetrics};
use crate::http::{Reply, invalid};
use crate::render::ts;

fn parse_body_time(v: &Value, field: &str) -> Result<Option<DateTime<Utc>>, Reply> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| invalid(format!("{field} must be an ISO 8601 date-time"))),
        _ => Err(invalid(format!("{field} must be a string"))),
    }
}

fn bucket_start(t: DateTime<Utc>, unit: &str) -> DateTime<Utc> {
    let day = Utc
        .with_ymd_and_hms(t.year(), t.month(), t.day(), 0, 0, 0)
        .single()
        .unwrap_or(t);
    match unit {
        "week" => day - Duration::days(i64::from(day.weekday().num_days_from_monday())),
        "month" => Utc
            .with_ymd_and_hms(t.year(), t.month(), 1, 0, 0, 0)
            .single()
            .unwrap_or(day),
        _ => day,
    }
}

fn next_bucket(t: DateTime<Utc>, unit: &str) -> DateTime<Utc> {
    match unit {
        "week" => t + Duration::days(7),
        "month" => {
            let (y, m) = if t.month() == 12 {
                (t.year() + 1, 1)
            } else {
                (t.year(), t.month() + 1)
            };
            Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0)
                .single()
                .unwrap_or(t + Duration::days(31))
        }
        _ => t + Duration::days(1),
    }
}

pub(super) fn incident_metrics(
    raw: &[u8],
    account: &AccountView,
    now: DateTime<Utc>,
) -> Result<Reply, Reply> {
    let req = body::object(raw, true)?;
    let filters = &req["filters"];
    if !(filters.is_object() || filters.is_null()) {
        return Err(invalid("filters must be an object"));
    }
    let end = parse_body_time(&filters["created_at_end"], "filters.created_at_end")?.unwrap_or(now);
    let start = parse_body_time(&filters["created_at_start"], "filters.created_at_start")?
        .unwrap_or(end - Duration::days(30));
    if end <= start {
        return Err(invalid(
            "filters.created_at_end must be after filters.created_at_start",
        ));
    }
    if end - start > Duration::days(366) {
        return Err(invalid(
            "filters.created_at_start to filters.created_at_end must not exceed one year",
        ));
    }
    let mut service_ids = string_list(&filters["service_ids"], "filters.service_ids")?;
    let team_ids = string_list(&filters["team_ids"], "filters.team_ids")?;
    let urgency = match &filters["urgency"] {
        Value::Null => None,
        Value::String(u) if u == "high" || u == "low" => Some(u.as_str()),
        _ => return Err(invalid("filters.urgency must be high or low")),
    };
    if !team_ids.is_empty() {
        let in_teams: Vec<String> = account
            .services
            .iter()
            .filter(|s| s.team_ids.iter().any(|t| team_ids.contains(t)))
            .filter(|s| service_ids.is_empty() || service_ids.contains(&s.id))
            .map(|s| s.id.clone())
            .collect();
        if in_teams.is_empty() {
            service_ids = vec![String::new()];
        } else {
            service_ids = in_teams;
        }
    }
    let unit = match &req["aggregate_unit"] {
        Value::Null => None,
        Value::String(u) if matches!(u.as_str(), "day" | "week" | "month") => Some(u.as_str()),
        _ => return Err(invalid("aggregate_unit must be day, week or month")),
    };
    // (from, to, range_start)
    type Range = (DateTime<Utc>, DateTime<Utc>, Option<DateTime<Utc>>);
    let mut ranges: Vec<Range> = Vec::new();
    match unit {
        None => ranges.push((start, end, None)),
        Some(unit) => {
            let mut b = bucket_start(start, unit);
            while b < end && ranges.len() < 400 {
                let next = next_bucket(b, unit);
                ranges.push((b.max(start), next.min(end), Some(b)));
                b = next;
            }
        }
    }
    let mut data = Vec::new();
    for (from, to, range_start) in ranges {
        // Escalations are counted up to the same instant in every bucket.
        let as_of = end.min(now);
        for m in account.incident_metrics_as_of(&service_ids, from, to, urgency, as_of) {
            let mut row = metrics_row(&m, account);
            if let Some(rs) = range_start {
                row["range_start"] = json!(rs.format("%Y-%m-%dT%H:%M:%S").to_string());
            }
            data.push(row);
        }
    }
    let mut echo = filters.clone();
    if echo.is_null() {
        echo = json!({});
    }
    echo["created_at_start"] = json!(ts(start));
    echo["created_at_end"] = json!(ts(end));
    Ok(ok(json!({
        "data": data,
        "filters": echo,
        "aggregate_unit": unit,
        "time_zone": req["time_zone"].as_str().unwrap_or("Etc/UTC"),
    })))
}

/// One `AnalyticsIncidentMetrics` row. PagerDuty's schema has no `null`
/// for the team of a service without one or for a mean without samples,
/// so those are left out; only the two multi-responder means, which it
/// documents as `null` for incidents with one responder, are sent as such.
fn metrics_row(m: &ServiceMetrics, account: &AccountView) -> Value {
    let svc = account.service(&m.service_id);
    let team = svc
        .and_then(|s| s.team_ids.first())
        .and_then(|t| account.team(t));
    let mut row = json!({
        "service_id": m.service_id,
        "total_incident_count": m.total_incident_count,
        "total_incidents_acknowledged": m.total_incidents_acknowledged,
        "total_incidents_auto_resolved": m.total_incidents_auto_resolved,
        "total_incidents_manual_escalated": m.total_incidents_manual_escalated,
        "total_incidents_reassigned": m.total_incidents_reassigned,
        "total_incidents_timeout_escalated": m.total_incidents_timeout_escalated,
        "total_escalation_count": m.total_escalation_count,
        "total_notifications": m.total_notifications,
        "total_interruptions": m.total_interruptions,
        "total_business_hour_interruptions": m.total_business_hour_interruptions,
        "total_off_hour_interruptions": m.total_off_hour_interruptions,
        "total_sleep_hour_interruptions": m.total_sleep_hour_interruptions,
        "total_engaged_seconds": m.total_engaged_seconds,
        "total_user_defined_engaged_seconds": m.total_user_defined_engaged_seconds,
        "total_snoozed_seconds": m.total_snoozed_seconds,
        "mean_seconds_to_engage": m.mean_seconds_to_engage,
        "mean_seconds_to_mobilize": m.mean_seconds_to_mobilize,
        "up_time_pct": m.up_time_pct,
    });
    for (field, value) in [
        ("mean_assignment_count", m.mean_assignment_count),
        ("mean_engaged_seconds", m.mean_engaged_seconds),
        (
            "mean_user_defined_engaged_seconds",
            m.mean_user_defined_engaged_seconds,
        ),
        ("mean_engaged_user_count", m.mean_engaged_user_count),
        ("mean_seconds_to_first_ack", m.mean_seconds_to_first_ack),
        ("mean_seconds_to_resolve", m.mean_seconds_to_resolve),
    ] {
        if let Some(v) = value {
            row[field] = json!(v);
        }
    }
    if let Some(s) = svc {
        row["service_name"] = json!(s.name);
    }
    if let Some(t) = team {
        row["team_id"] = json!(t.id);
        row["team_name"] = json!(t.name);
    }
    row
}
