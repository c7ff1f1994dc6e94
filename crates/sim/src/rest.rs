//! The REST API v2 routes.

use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use serde_json::{Value, json};

use crate::account::{AccountView, Oncall};
use crate::http::{Query, Reply, invalid, not_found, pd_error, time_error};
use crate::render::{Render, ts};

/// A matched REST route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    Services,
    Service(String),
    ServiceChangeEvents(String),
    Incidents,
    Incident(String),
    Oncalls,
    EscalationPolicies,
    EscalationPolicy(String),
    ChangeEvents,
    Teams,
    Team(String),
    User(String),
    Schedule(String),
    Abilities,
    StandardsScores(String),
    StandardsScore(String, String),
    IncidentMetricsByService,
    OAuthToken,
    Enqueue,
    ChangeEnqueue,
}

impl Route {
    /// Every template [`Route::matches`] can return, with its method (what
    /// `per_route` faults may name).
    pub const TEMPLATES: &'static [(&'static str, &'static str)] = &[
        ("GET", "/services"),
        ("GET", "/services/{id}"),
        ("GET", "/services/{id}/change_events"),
        ("GET", "/incidents"),
        ("GET", "/incidents/{id}"),
        ("GET", "/oncalls"),
        ("GET", "/escalation_policies"),
        ("GET", "/escalation_policies/{id}"),
        ("GET", "/change_events"),
        ("GET", "/teams"),
        ("GET", "/teams/{id}"),
        ("GET", "/users/{id}"),
        ("GET", "/schedules/{id}"),
        ("GET", "/abilities"),
        ("GET", "/standards/scores/{resource_type}"),
        ("GET", "/standards/scores/{resource_type}/{id}"),
        ("POST", "/analytics/metrics/incidents/services"),
        ("POST", "/oauth/token"),
        ("POST", "/v2/enqueue"),
        ("POST", "/v2/change/enqueue"),
    ];

    /// Whether `template` is one of [`Route::TEMPLATES`].
    pub fn is_template(template: &str) -> bool {
        Self::TEMPLATES.iter().any(|(_, t)| *t == template)
    }

    /// Matches `method` and `path` to a route and its template.
    pub fn matches(method: &str, path: &str) -> Option<(Route, &'static str)> {
        let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
        let s = |i: usize| segs[i].to_owned();
        let r = match (method, segs.as_slice()) {
            ("GET", ["services"]) => (Route::Services, "/services"),
            ("GET", ["services", _]) => (Route::Service(s(1)), "/services/{id}"),
            ("GET", ["services", _, "change_events"]) => (
                Route::ServiceChangeEvents(s(1)),
                "/services/{id}/change_events",
            ),
            ("GET", ["incidents"]) => (Route::Incidents, "/incidents"),
            ("GET", ["incidents", _]) => (Route::Incident(s(1)), "/incidents/{id}"),
            ("GET", ["oncalls"]) => (Route::Oncalls, "/oncalls"),
            ("GET", ["escalation_policies"]) => (Route::EscalationPolicies, "/escalation_policies"),
            ("GET", ["escalation_policies", _]) => {
                (Route::EscalationPolicy(s(1)), "/escalation_policies/{id}")
            }
            ("GET", ["change_events"]) => (Route::ChangeEvents, "/change_events"),
            ("GET", ["teams"]) => (Route::Teams, "/teams"),
            ("GET", ["teams", _]) => (Route::Team(s(1)), "/teams/{id}"),
            ("GET", ["users", _]) => (Route::User(s(1)), "/users/{id}"),
            ("GET", ["schedules", _]) => (Route::Schedule(s(1)), "/schedules/{id}"),
            ("GET", ["abilities"]) => (Route::Abilities, "/abilities"),
            ("GET", ["standards", "scores", _]) => (
                Route::StandardsScores(s(2)),
                "/standards/scores/{resource_type}",
            ),
            ("GET", ["standards", "scores", _, _]) => (
                Route::StandardsScore(s(2), s(3)),
                "/standards/scores/{resource_type}/{id}",
            ),
            ("POST", ["analytics", "metrics", "incidents", "services"]) => (
                Route::IncidentMetricsByService,
                "/analytics/metrics/incidents/services",
            ),
            ("POST", ["oauth", "token"]) => (Route::OAuthToken, "/oauth/token"),
            ("POST", ["v2", "enqueue"]) => (Route::Enqueue, "/v2/enqueue"),
            ("POST", ["v2", "change", "enqueue"]) => (Route::ChangeEnqueue, "/v2/change/enqueue"),
            _ => return None,
        };
        Some(r)
    }

    /// Scopes that grant access (any one of them); `None` = no REST auth.
    pub fn scopes(&self) -> Option<&'static [&'static str]> {
        Some(match self {
            Route::Services | Route::Service(_) | Route::ServiceChangeEvents(_) => {
                &["services.read"]
            }
            Route::Incidents | Route::Incident(_) => &["incidents.read"],
            Route::Oncalls => &["oncalls.read"],
            Route::EscalationPolicies | Route::EscalationPolicy(_) => &["escalation_policies.read"],
            Route::ChangeEvents => &["change_events.read"],
            Route::Teams | Route::Team(_) => &["teams.read"],
            Route::User(_) => &["users.read"],
            Route::Schedule(_) => &["schedules.read"],
            Route::Abilities => &["abilities.read"],
            Route::StandardsScores(_) | Route::StandardsScore(..) => &["standards.read"],
            // The OpenAPI says analytics.write; PagerDuty's Backstage plugin asks for analytics.read.
            Route::IncidentMetricsByService => &["analytics.read", "analytics.write"],
            Route::OAuthToken | Route::Enqueue | Route::ChangeEnqueue => return None,
        })
    }
}

fn ok(v: Value) -> Reply {
    Reply::json(200, &v)
}

fn check_enum(field: &str, values: &[String], allowed: &[&str]) -> Result<(), Reply> {
    for v in values {
        if !allowed.contains(&v.as_str()) {
            return Err(invalid(format!(
                "{field} contains {v:?}; allowed: {}",
                allowed.join(", ")
            )));
        }
    }
    Ok(())
}

/// Serves a GET or the analytics POST.
pub(crate) fn handle(
    route: &Route,
    q: &Query,
    body: &[u8],
    account: &AccountView,
    base: &str,
    now: DateTime<Utc>,
) -> Reply {
    let r = Render { account, base };
    let result = match route {
        Route::Services => list_services(q, account, &r),
        Route::Service(id) => get_service(id, q, account, &r),
        Route::ServiceChangeEvents(id) => {
            if account.service(id).is_none() {
                Err(not_found())
            } else {
                list_change_events(Some(id), q, account, &r)
            }
        }
        Route::ChangeEvents => list_change_events(None, q, account, &r),
        Route::Incidents => list_incidents(q, account, &r, now),
        Route::Incident(id) => match account.incident(id) {
            Some(i) => Ok(ok(json!({"incident": r.incident(i, &q.all("include"))}))),
            None => Err(not_found()),
        },
        Route::Oncalls => list_oncalls(q, account, &r, now),
        Route::EscalationPolicies => list_escalation_policies(q, account, &r),
        Route::EscalationPolicy(id) => match account.escalation_policy(id) {
            Some(e) => {
                let include = q.all("include");
                check_enum("include[]", &include, &["services", "teams", "targets"])
                    .map(|()| ok(json!({"escalation_policy": r.escalation_policy(e, &include)})))
            }
            None => Err(not_found()),
        },
        Route::Teams => list_teams(q, account, &r),
        Route::Team(id) => match account.team(id) {
            Some(t) => Ok(ok(json!({"team": r.team(t)}))),
            None => Err(not_found()),
        },
        Route::User(id) => match account.user(id) {
            Some(u) => Ok(ok(json!({"user": r.user(u)}))),
            None => Err(not_found()),
        },
        Route::Schedule(id) => match account.schedule(id) {
            Some(s) => Ok(ok(json!({"schedule": r.schedule(s, now)}))),
            None => Err(not_found()),
        },
        Route::Abilities => Ok(ok(json!({"abilities": account.abilities}))),
        Route::StandardsScores(kind) => standards_many(kind, q, account, &r),
        Route::StandardsScore(kind, id) => {
            if kind != "technical_services" {
                Err(invalid("resource_type must be technical_services"))
            } else if account.service(id).is_none() {
                Err(not_found())
            } else {
                Ok(ok(r.standards(id)))
            }
        }
        Route::IncidentMetricsByService => incident_metrics(body, account, now),
        Route::OAuthToken | Route::Enqueue | Route::ChangeEnqueue => Err(not_found()),
    };
    result.unwrap_or_else(|e| e)
}

fn list_services(q: &Query, account: &AccountView, r: &Render) -> Result<Reply, Reply> {
    let page = q.page()?;
    let include = q.all("include");
    check_enum(
        "include[]",
        &include,
        &[
            "escalation_policies",
            "teams",
            "integrations",
            "auto_pause_notifications_parameters",
        ],
    )?;
    let team_ids = q.all("team_ids");
    let query = q.one("query").map(str::to_lowercase);
    let name = q.one("name");
    let mut services: Vec<_> = account
        .services
        .iter()
        .filter(|s| name.is_none_or(|n| s.name == n))
        .filter(|s| team_ids.is_empty() || s.team_ids.iter().any(|t| team_ids.contains(t)))
        .filter(|s| {
            query.as_deref().is_none_or(|qq| {
                s.name.to_lowercase().contains(qq)
                    || s.integrations
                        .iter()
                        .any(|i| i.integration_key.as_deref() == Some(qq))
            })
        })
        .collect();
    match q.one("sort_by") {
        None | Some("name" | "name:asc") => {}
        Some("name:desc") => services.reverse(),
        Some(other) => {
            return Err(invalid(format!(
                "sort_by {other:?} is invalid; allowed: name, name:asc, name:desc"
            )));
        }
    }
    Ok(ok(
        page.wrap("services", &services, |s| r.service(s, &include))
    ))
}

fn get_service(id: &str, q: &Query, account: &AccountView, r: &Render) -> Result<Reply, Reply> {
    let include = q.all("include");
    check_enum(
        "include[]",
        &include,
        &[
            "escalation_policies",
            "teams",
            "integrations",
            "auto_pause_notifications_parameters",
        ],
    )?;
    let svc = account.service(id).ok_or_else(not_found)?;
    Ok(ok(json!({"service": r.service(svc, &include)})))
}

fn list_change_events(
    service_id: Option<&str>,
    q: &Query,
    account: &AccountView,
    r: &Render,
) -> Result<Reply, Reply> {
    let page = q.page()?;
    let since = q.utc_time("since")?;
    let until = q.utc_time("until")?;
    let team_ids = q.all("team_ids");
    let integration_ids = q.all("integration_ids");
    let mut events: Vec<_> = account
        .change_events
        .iter()
        .filter(|c| service_id.is_none_or(|s| c.service_id == s))
        .filter(|c| since.is_none_or(|t| c.timestamp >= t))
        .filter(|c| until.is_none_or(|t| c.timestamp < t))
        .filter(|c| {
            team_ids.is_empty()
                || account
                    .service(&c.service_id)
                    .is_some_and(|s| s.team_ids.iter().any(|t| team_ids.contains(t)))
        })
        .filter(|c| {
            integration_ids.is_empty()
                || c.integration_id
                    .as_ref()
                    .is_some_and(|i| integration_ids.contains(i))
        })
        .collect();
    events.reverse(); // newest first
    Ok(ok(
        page.wrap("change_events", &events, |c| r.change_event(c))
    ))
}

const SORT_FIELDS: &[&str] = &["incident_number", "created_at", "resolved_at", "urgency"];

fn list_incidents(
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

fn list_oncalls(
    q: &Query,
    account: &AccountView,
    r: &Render,
    now: DateTime<Utc>,
) -> Result<Reply, Reply> {
    let page = q.page()?;
    let include = q.all("include");
    check_enum(
        "include[]",
        &include,
        &["escalation_policies", "users", "schedules"],
    )?;
    let ep_ids = q.all("escalation_policy_ids");
    let schedule_ids = q.all("schedule_ids");
    let user_ids = q.all("user_ids");
    let earliest = q.bool("earliest")?;
    let since = q.time("since")?.unwrap_or(now);
    let until = q.time("until")?.unwrap_or(since.max(now));
    if until < since {
        return Err(invalid("until must not be before since"));
    }
    if until - since > Duration::days(90) {
        return Err(invalid(
            "The range from since to until must not exceed 90 days",
        ));
    }
    let mut entries: Vec<Oncall> = Vec::new();
    for ep in &account.escalation_policies {
        if !ep_ids.is_empty() && !ep_ids.contains(&ep.id) {
            continue;
        }
        entries.extend(account.oncalls_for(&ep.id, since, until));
    }
    entries.retain(|o| {
        (schedule_ids.is_empty()
            || o.schedule_id
                .as_ref()
                .is_some_and(|s| schedule_ids.contains(s)))
            && (user_ids.is_empty() || user_ids.contains(&o.user_id))
    });
    if earliest {
        let mut kept: Vec<Oncall> = Vec::new();
        for o in entries {
            let same = kept.iter_mut().find(|k| {
                k.escalation_policy_id == o.escalation_policy_id
                    && k.escalation_level == o.escalation_level
                    && k.user_id == o.user_id
            });
            match same {
                // A permanent entry (no start) is the earliest possible.
                Some(k) if k.start.is_some() && (o.start.is_none() || o.start < k.start) => {
                    *k = o;
                }
                Some(_) => {}
                None => kept.push(o),
            }
        }
        entries = kept;
    }
    Ok(ok(page.wrap("oncalls", &entries, |o| r.oncall(o, &include))))
}

fn list_escalation_policies(q: &Query, account: &AccountView, r: &Render) -> Result<Reply, Reply> {
    let page = q.page()?;
    let include = q.all("include");
    check_enum("include[]", &include, &["services", "teams", "targets"])?;
    let service_ids = q.all("service_ids");
    let team_ids = q.all("team_ids");
    let user_ids = q.all("user_ids");
    let query = q.one("query").map(str::to_lowercase);
    let mut eps: Vec<_> = account
        .escalation_policies
        .iter()
        .filter(|e| {
            query
                .as_deref()
                .is_none_or(|qq| e.name.to_lowercase().contains(qq))
        })
        .filter(|e| team_ids.is_empty() || e.team_ids.iter().any(|t| team_ids.contains(t)))
        .filter(|e| {
            service_ids.is_empty()
                || account
                    .services_of_policy(&e.id)
                    .iter()
                    .any(|s| service_ids.contains(&s.id))
        })
        .filter(|e| {
            user_ids.is_empty()
                || e.rules.iter().any(|rule| {
                    rule.targets.iter().any(|t| match t {
                        crate::account::Target::User(u) => user_ids.contains(u),
                        crate::account::Target::Schedule(s) => account
                            .schedule(s)
                            .is_some_and(|s| s.user_ids.iter().any(|u| user_ids.contains(u))),
                    })
                })
        })
        .collect();
    eps.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    match q.one("sort_by") {
        None | Some("name" | "name:asc") => {}
        Some("name:desc") => eps.reverse(),
        Some(other) => {
            return Err(invalid(format!(
                "sort_by {other:?} is invalid; allowed: name, name:asc, name:desc"
            )));
        }
    }
    Ok(ok(page.wrap("escalation_policies", &eps, |e| {
        r.escalation_policy(e, &include)
    })))
}

fn list_teams(q: &Query, account: &AccountView, r: &Render) -> Result<Reply, Reply> {
    let page = q.page()?;
    let query = q.one("query").map(str::to_lowercase);
    let mut teams: Vec<_> = account
        .teams
        .iter()
        .filter(|t| {
            query
                .as_deref()
                .is_none_or(|qq| t.name.to_lowercase().contains(qq))
        })
        .collect();
    teams.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    Ok(ok(page.wrap("teams", &teams, |t| r.team(t))))
}

fn standards_many(
    kind: &str,
    q: &Query,
    account: &AccountView,
    r: &Render,
) -> Result<Reply, Reply> {
    if kind != "technical_services" {
        return Err(invalid("resource_type must be technical_services"));
    }
    let ids: Vec<String> = q
        .all("ids")
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect();
    if ids.is_empty() {
        return Err(invalid("ids is required"));
    }
    if ids.len() > 100 {
        return Err(invalid("ids takes at most 100 items"));
    }
    let resources: Vec<Value> = ids
        .iter()
        .filter(|id| account.service(id).is_some())
        .map(|id| r.standards(id))
        .collect();
    Ok(ok(json!({ "resources": resources })))
}

fn parse_body_time(v: &Value, field: &str) -> Result<Option<DateTime<Utc>>, Reply> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| invalid(format!("{field} must be an ISO 8601 date-time"))),
        _ => Err(invalid(format!("{field} must be a string"))),
    }
}

fn string_list(v: &Value, field: &str) -> Result<Vec<String>, Reply> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| invalid(format!("{field} must be an array of strings")))
            })
            .collect(),
        _ => Err(invalid(format!("{field} must be an array of strings"))),
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

fn incident_metrics(
    body: &[u8],
    account: &AccountView,
    now: DateTime<Utc>,
) -> Result<Reply, Reply> {
    let req: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(body).map_err(|e| invalid(format!("body is not valid JSON: {e}")))?
    };
    if !req.is_object() {
        return Err(invalid("body must be a JSON object"));
    }
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
        for m in account.incident_metrics(&service_ids, from, to, urgency) {
            let svc = account.service(&m.service_id);
            let team = svc
                .and_then(|s| s.team_ids.first())
                .and_then(|t| account.team(t));
            let mut row = json!({
                "service_id": m.service_id,
                "service_name": svc.map(|s| s.name.clone()),
                "team_id": team.map(|t| t.id.clone()),
                "team_name": team.map(|t| t.name.clone()),
                "total_incident_count": m.total_incident_count,
                "total_incidents_acknowledged": m.total_incidents_acknowledged,
                "mean_seconds_to_resolve": m.mean_seconds_to_resolve.map(f64::round),
                "mean_seconds_to_first_ack": m.mean_seconds_to_first_ack.map(f64::round),
                "total_high_urgency_incidents": m.total_high_urgency,
            });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_exactly_what_matches_returns() {
        for (method, template) in Route::TEMPLATES {
            let path = template
                .replace("{id}", "PABC123")
                .replace("{resource_type}", "technical_services");
            let (_, got) = Route::matches(method, &path)
                .unwrap_or_else(|| panic!("{method} {path} does not match"));
            assert_eq!(got, *template);
        }
        // A path of every shape `matches` knows, and its template is listed.
        for (method, path) in [
            ("GET", "/services/P1/change_events"),
            ("GET", "/standards/scores/technical_services/P1"),
            ("POST", "/v2/change/enqueue"),
        ] {
            let (_, template) = Route::matches(method, path).unwrap();
            assert!(Route::is_template(template), "{template}");
        }
        assert!(!Route::is_template("/service/{id}"));
        assert!(!Route::is_template("/services/PABC123"));
    }
}
