//! Admin-made changes through the REST API: `PUT /services/{id}` and
//! `PUT /incidents/{id}` (status, reassignment, escalation). Each change
//! publishes its v3 webhook event (`service.updated`, `incident.*`) through
//! the same hub, signing and retry rules as the Events API changes, so a
//! subscriber sees the change the way PagerDuty would send it.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::body;
use crate::account::AccountView;
use crate::events::publish_incident;
use crate::http::{Reply, invalid, not_found};
use crate::render::Render;
use crate::server::State;
use crate::webhooks::OutboundEvent;

/// The statuses `PUT /services/{id}` may set (maintenance comes from
/// maintenance windows, warning and critical from open incidents).
const SERVICE_STATUSES: &[&str] = &["active", "disabled"];

/// The statuses `PUT /incidents/{id}` may set.
const INCIDENT_STATUSES: &[&str] = &["acknowledged", "resolved", "triggered"];

/// The user whose email the `From` header names; `None` when there is no
/// header, a 400 naming the header when no user has that email.
fn from_user(account: &AccountView, from: Option<&str>) -> Result<Option<String>, Reply> {
    let Some(email) = from.map(str::trim).filter(|e| !e.is_empty()) else {
        return Ok(None);
    };
    account
        .users
        .iter()
        .find(|u| u.email.eq_ignore_ascii_case(email))
        .map(|u| Some(u.id.clone()))
        .ok_or_else(|| {
            invalid(format!(
                "From header {email:?} is not a user of the account"
            ))
        })
}

fn field<'a>(spec: &'a Map<String, Value>, name: &str) -> &'a Value {
    spec.get(name).unwrap_or(&Value::Null)
}

/// A timeout in seconds: null or 0 turns the feature off, as PagerDuty has it.
fn timeout(v: &Value, field: &str) -> Result<Option<u32>, Reply> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => match n.as_u64().map(u32::try_from) {
            Some(Ok(0)) => Ok(None),
            Some(Ok(secs)) => Ok(Some(secs)),
            _ => Err(invalid(format!(
                "{field} must be a non-negative number of seconds"
            ))),
        },
        _ => Err(invalid(format!(
            "{field} must be a number of seconds or null"
        ))),
    }
}

/// `PUT /services/{id}`: `{"service": {name?, description?, status?,
/// escalation_policy?, auto_resolve_timeout?, acknowledgement_timeout?}}`;
/// a field left out is left as it is. Answers the service and publishes
/// `service.updated` (the agent is the `From` user, when named).
pub(super) fn update_service(
    id: &str,
    raw: &[u8],
    from: Option<&str>,
    state: &State,
    now: DateTime<Utc>,
) -> Result<Reply, Reply> {
    let req = body::object(raw, false)?;
    let spec = body::required_object(&req["service"], "service")?;
    let mut account = state.write_account();
    let agent = from_user(&account, from)?;
    let mut svc = account.service(id).ok_or_else(not_found)?.clone();
    if let Some(name) = body::optional_str(field(spec, "name"), "service.name")? {
        let name = name.trim();
        if name.is_empty() {
            return Err(invalid("service.name must not be blank"));
        }
        if name.chars().count() > 255 {
            return Err(invalid(
                "service.name is too long (maximum is 255 characters)",
            ));
        }
        if account.service_by_name(name).is_some_and(|s| s.id != id) {
            return Err(invalid(format!(
                "service.name {name:?} has already been taken"
            )));
        }
        name.clone_into(&mut svc.name);
    }
    if spec.contains_key("description") {
        svc.description = body::optional_str(field(spec, "description"), "service.description")?
            .map(str::to_owned);
    }
    if let Some(status) = body::optional_str(field(spec, "status"), "service.status")? {
        if !SERVICE_STATUSES.contains(&status) {
            return Err(invalid(format!(
                "service.status {status:?} is invalid; allowed: {}",
                SERVICE_STATUSES.join(", ")
            )));
        }
        status.clone_into(&mut svc.status);
    }
    if !field(spec, "escalation_policy").is_null() {
        let ep = body::required_object(
            field(spec, "escalation_policy"),
            "service.escalation_policy",
        )?;
        let ep_id = body::required_str(field(ep, "id"), "service.escalation_policy.id")?;
        if account.escalation_policy(ep_id).is_none() {
            return Err(invalid(format!(
                "service.escalation_policy.id {ep_id} is not an escalation policy of the account"
            )));
        }
        ep_id.clone_into(&mut svc.escalation_policy_id);
    }
    for (name, slot) in [
        ("auto_resolve_timeout", &mut svc.auto_resolve_timeout),
        ("acknowledgement_timeout", &mut svc.acknowledgement_timeout),
    ] {
        if spec.contains_key(name) {
            *slot = timeout(field(spec, name), &format!("service.{name}"))?;
        }
    }
    account.replace_service(svc);
    let r = Render {
        account: &account,
        base: &state.base_url,
        now,
    };
    let svc = account.service(id).ok_or_else(not_found)?;
    let data = r.service(svc, &[]);
    state.webhooks.publish(&OutboundEvent {
        event_type: "service.updated",
        resource_type: "service",
        resource_id: svc.id.clone(),
        service_id: Some(svc.id.clone()),
        team_ids: svc.team_ids.clone(),
        occurred_at: now,
        agent: agent.map_or(Value::Null, |u| r.user_ref(&u)),
        client: Value::Null,
        data: data.clone(),
    });
    Ok(Reply::json(200, &json!({ "service": data })))
}

/// `PUT /incidents/{id}`: `{"incident": {type, status?, assignments?,
/// escalation_level?}}` by the user the `From` header names (required, as
/// PagerDuty has it for API tokens). Each actual change publishes its
/// event: `incident.acknowledged`, `.unacknowledged`, `.resolved`,
/// `.reopened`, `.reassigned`, `.escalated`; a status the incident already
/// has changes nothing and publishes nothing.
pub(super) fn update_incident(
    id: &str,
    raw: &[u8],
    from: Option<&str>,
    state: &State,
    now: DateTime<Utc>,
) -> Result<Reply, Reply> {
    let req = body::object(raw, false)?;
    let spec = body::required_object(&req["incident"], "incident")?;
    match body::required_str(field(spec, "type"), "incident.type")? {
        "incident" | "incident_reference" => {}
        other => {
            return Err(invalid(format!(
                "incident.type {other:?} is invalid; allowed: incident, incident_reference"
            )));
        }
    }
    let status = body::optional_str(field(spec, "status"), "incident.status")?;
    if let Some(s) = status
        && !INCIDENT_STATUSES.contains(&s)
    {
        return Err(invalid(format!(
            "incident.status {s:?} is invalid; allowed: {}",
            INCIDENT_STATUSES.join(", ")
        )));
    }
    let level = match field(spec, "escalation_level") {
        Value::Null => None,
        v => Some(
            v.as_u64()
                .and_then(|l| u32::try_from(l).ok())
                .filter(|l| *l >= 1)
                .ok_or_else(|| invalid("incident.escalation_level must be a positive integer"))?,
        ),
    };
    let assignments = match field(spec, "assignments") {
        Value::Null => None,
        Value::Array(items) if !items.is_empty() => Some(
            items
                .iter()
                .map(|a| {
                    let assignee = a.get("assignee").unwrap_or(&Value::Null);
                    let assignee =
                        body::required_object(assignee, "incident.assignments[].assignee")?;
                    body::required_str(field(assignee, "id"), "incident.assignments[].assignee.id")
                        .map(str::to_owned)
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        _ => {
            return Err(invalid(
                "incident.assignments must be a non-empty array of {\"assignee\": {\"id\", \"type\"}}",
            ));
        }
    };
    if level.is_some() && assignments.is_some() {
        return Err(invalid(
            "incident.assignments and incident.escalation_level cannot both be given",
        ));
    }
    let mut account = state.write_account();
    let Some(user) = from_user(&account, from)? else {
        return Err(invalid(
            "From header is required (the email of a user of the account)",
        ));
    };
    let inc = account.incident(id).ok_or_else(not_found)?.clone();
    if let Some(users) = &assignments
        && let Some(missing) = users.iter().find(|u| account.user(u).is_none())
    {
        return Err(invalid(format!(
            "incident.assignments[].assignee.id {missing} is not a user of the account"
        )));
    }
    let rules = account
        .escalation_policy(&inc.escalation_policy_id)
        .map_or(0, |ep| ep.rules.len());
    if let Some(l) = level
        && l as usize > rules
    {
        return Err(invalid(format!(
            "incident.escalation_level {l} is beyond the {rules} levels of its escalation policy"
        )));
    }
    let reopening = !inc.is_open() && matches!(status, Some("acknowledged" | "triggered"));
    if (level.is_some() || assignments.is_some()) && !inc.is_open() && !reopening {
        return Err(invalid(format!(
            "incident {id} is resolved: it cannot be reassigned or escalated"
        )));
    }
    let oncall_at = |account: &AccountView, level: u32| -> Vec<String> {
        account
            .current_oncalls(&inc.escalation_policy_id, now)
            .into_iter()
            .filter(|o| o.escalation_level == level)
            .map(|o| o.user_id)
            .collect()
    };
    let mut next = inc.clone();
    let mut events: Vec<&'static str> = Vec::new();
    match (status, inc.status.as_str()) {
        (Some("acknowledged"), "triggered") => {
            next.status = "acknowledged".to_owned();
            next.acknowledged_at = Some(now);
            next.acknowledger_ids = vec![user.clone()];
            events.push("incident.acknowledged");
        }
        (Some("triggered"), "acknowledged") => {
            next.status = "triggered".to_owned();
            next.acknowledged_at = None;
            next.acknowledger_ids.clear();
            events.push("incident.unacknowledged");
        }
        (Some("resolved"), "triggered" | "acknowledged") => {
            next.status = "resolved".to_owned();
            next.resolved_at = Some(now);
            next.assignee_ids.clear();
            events.push("incident.resolved");
        }
        (Some(to @ ("acknowledged" | "triggered")), "resolved") => {
            // Reopened: acknowledged by the requester, or triggered for
            // whoever is on call first (PagerDuty's rules for a reopen).
            next.status = to.to_owned();
            next.resolved_at = None;
            if to == "acknowledged" {
                next.assignee_ids = vec![user.clone()];
                next.acknowledged_at = Some(now);
                next.acknowledger_ids = vec![user.clone()];
            } else {
                next.assignee_ids = oncall_at(&account, 1).into_iter().take(1).collect();
                next.acknowledged_at = None;
                next.acknowledger_ids.clear();
            }
            events.push("incident.reopened");
        }
        _ => {}
    }
    if let Some(users) = assignments
        && users != next.assignee_ids
    {
        next.assignee_ids = users;
        events.push("incident.reassigned");
    }
    if let Some(l) = level {
        // Escalating hands the incident to the level's on-call users and
        // triggers it again for them.
        next.assignee_ids = oncall_at(&account, l);
        next.status = "triggered".to_owned();
        next.acknowledger_ids.clear();
        events.push("incident.escalated");
    }
    if !events.is_empty() {
        next.updated_at = now;
        account.replace_incident(next);
    }
    let r = Render {
        account: &account,
        base: &state.base_url,
        now,
    };
    for event_type in events {
        publish_incident(
            state,
            &account,
            event_type,
            id,
            r.user_ref(&user),
            Value::Null,
            now,
        );
    }
    let inc = account.incident(id).ok_or_else(not_found)?;
    Ok(Reply::json(200, &json!({"incident": r.incident(inc, &[])})))
}
