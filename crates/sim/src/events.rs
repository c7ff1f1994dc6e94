//! Events API v2: `POST /v2/enqueue` (alert events drive incidents) and
//! `POST /v2/change/enqueue` (change events), with PagerDuty's validation
//! and error bodies.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::account::{AccountView, ChangeEvent, Incident};
use crate::http::Reply;
use crate::render::Render;
use crate::server::State;
use crate::webhooks::OutboundEvent;

const MAX_BODY: usize = 512 * 1024;
const SEVERITIES: &[&str] = &["critical", "error", "warning", "info"];
const ACTIONS: &[&str] = &["trigger", "acknowledge", "resolve"];

fn invalid_event(errors: Vec<String>) -> Reply {
    Reply::json(
        400,
        &json!({"status": "invalid event", "message": "Event object is invalid", "errors": errors}),
    )
}

/// The body for an injected error status on the Events API. A 429 carries
/// `ratelimit-limit: limit`, `ratelimit-remaining: 0` and
/// `ratelimit-reset: reset_secs`, like an injected REST 429.
pub(crate) fn fault_reply(status: u16, limit: u32, reset_secs: u64) -> Reply {
    match status {
        429 => Reply::json(
            429,
            &json!({"status": "throttle event", "message": "Requests for this service are arriving too quickly.  Please retry later."}),
        )
        .header("ratelimit-limit", limit)
        .header("ratelimit-remaining", 0)
        .header("ratelimit-reset", reset_secs),
        400 => invalid_event(vec!["Injected fault".to_owned()]),
        s if s >= 500 => Reply::json(
            s,
            &json!({"status": "Unrecognized object", "message": "Event object format is unrecognized", "errors": ["Internal error"]}),
        ),
        s => Reply::json(s, &json!({"status": "error", "message": "Injected fault"})),
    }
}

fn parse_body(body: &[u8]) -> Result<serde_json::Map<String, Value>, Reply> {
    if body.len() > MAX_BODY {
        return Err(invalid_event(vec![
            "Event object is too large (the limit is 512 KB)".to_owned(),
        ]));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(invalid_event(vec![
            "Event object must be a JSON object".to_owned(),
        ])),
        Err(_) => Err(Reply::json(
            400,
            &json!({"status": "invalid event", "message": "Event object is invalid", "errors": ["JSON parse error"]}),
        )),
    }
}

fn blank(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        _ => false,
    }
}

fn check_routing_key(map: &serde_json::Map<String, Value>, errors: &mut Vec<String>) {
    match map.get("routing_key") {
        v if blank(v) => errors.push("'routing_key' is missing or blank".to_owned()),
        Some(Value::String(k)) if k.chars().count() != 32 => {
            errors.push("Length of 'routing_key' is incorrect (should be 32 characters)".to_owned())
        }
        Some(Value::String(_)) => {}
        _ => errors.push("'routing_key' must be a string".to_owned()),
    }
}

fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn check_summary(payload: &serde_json::Map<String, Value>, errors: &mut Vec<String>) {
    match payload.get("summary") {
        v if blank(v) => errors.push("'payload.summary' is missing or blank".to_owned()),
        Some(Value::String(s)) if s.chars().count() > 1024 => {
            errors.push("'payload.summary' is too long (maximum is 1024 characters)".to_owned())
        }
        Some(Value::String(_)) => {}
        _ => errors.push("'payload.summary' must be a string".to_owned()),
    }
    if let Some(ts) = payload.get("timestamp")
        && !ts.is_null()
        && ts.as_str().and_then(parse_timestamp).is_none()
    {
        errors.push("'payload.timestamp' is not a valid ISO 8601 timestamp".to_owned());
    }
}

fn new_id(state: &State, account: &AccountView) -> String {
    state.fresh_id(|id| account.incident(id).is_some() || account.service(id).is_some())
}

fn success(dedup_key: Option<&str>, message: &str) -> Reply {
    let mut body = json!({"status": "success", "message": message});
    if let Some(k) = dedup_key {
        body["dedup_key"] = json!(k);
    }
    Reply::json(202, &body)
}

/// `POST /v2/enqueue`.
pub(crate) fn enqueue(state: &State, body: &[u8]) -> Reply {
    let map = match parse_body(body) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let mut errors = Vec::new();
    check_routing_key(&map, &mut errors);
    let action = match map.get("event_action") {
        v if blank(v) => {
            errors.push("'event_action' is missing or blank".to_owned());
            None
        }
        Some(Value::String(a)) if ACTIONS.contains(&a.as_str()) => Some(a.clone()),
        _ => {
            errors.push(
                "'event_action' is invalid (must be one of trigger, acknowledge, resolve)"
                    .to_owned(),
            );
            None
        }
    };
    let dedup_key = match map.get("dedup_key") {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) if k.chars().count() > 255 => {
            errors.push("'dedup_key' is too long (maximum is 255 characters)".to_owned());
            None
        }
        Some(Value::String(k)) if k.is_empty() => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => {
            errors.push("'dedup_key' must be a string".to_owned());
            None
        }
    };
    let mut summary = String::new();
    let mut severity = String::new();
    match action.as_deref() {
        Some("trigger") => match map.get("payload") {
            Some(Value::Object(p)) => {
                check_summary(p, &mut errors);
                if blank(p.get("source")) {
                    errors.push("'payload.source' is missing or blank".to_owned());
                }
                match p.get("severity") {
                    v if blank(v) => errors.push("'payload.severity' is missing or blank".to_owned()),
                    Some(Value::String(s)) if SEVERITIES.contains(&s.as_str()) => {
                        severity = s.clone();
                    }
                    _ => errors.push(
                        "'payload.severity' is invalid (must be one of critical, error, warning, info)"
                            .to_owned(),
                    ),
                }
                summary = p
                    .get("summary")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
            }
            None | Some(Value::Null) => errors.push("'payload' is missing or blank".to_owned()),
            Some(_) => errors.push("'payload' must be an object".to_owned()),
        },
        Some(_) if dedup_key.is_none() && !errors.iter().any(|e| e.contains("dedup_key")) => {
            errors.push("'dedup_key' is missing or blank".to_owned());
        }
        _ => {}
    }
    if !errors.is_empty() {
        return invalid_event(errors);
    }
    let routing_key = map
        .get("routing_key")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let client = map.get("client").and_then(Value::as_str).map(str::to_owned);
    let now = state.now();
    let mut account = state.write_account();
    let Some(svc) = account.service_by_integration_key(routing_key).cloned() else {
        return invalid_event(vec!["Invalid routing key".to_owned()]);
    };
    let action = action.unwrap_or_default();
    if action == "trigger" {
        let key = dedup_key.unwrap_or_else(|| state.random_chars(b"0123456789abcdef", 32));
        if svc.status == "disabled" {
            // PagerDuty accepts the event and drops it.
            return success(Some(&key), "Event processed");
        }
        if let Some(inc) = account
            .incidents
            .iter_mut()
            .find(|i| i.service_id == svc.id && i.incident_key == key && i.is_open())
        {
            inc.alert_count += 1;
            inc.updated_at = now;
            return success(Some(&key), "Event processed");
        }
        let number = account
            .incidents
            .iter()
            .map(|i| i.incident_number)
            .max()
            .unwrap_or(1000)
            + 1;
        let mut oncall = account.current_oncalls(&svc.escalation_policy_id, now);
        oncall.sort_by_key(|o| o.escalation_level);
        let assignee = oncall.first().map(|o| o.user_id.clone());
        let id = new_id(state, &account);
        account.push_incident(Incident {
            id: id.clone(),
            incident_number: number,
            title: summary,
            service_id: svc.id.clone(),
            escalation_policy_id: svc.escalation_policy_id.clone(),
            status: "triggered".to_owned(),
            urgency: if matches!(severity.as_str(), "critical" | "error") {
                "high"
            } else {
                "low"
            }
            .to_owned(),
            created_at: now,
            updated_at: now,
            acknowledged_at: None,
            resolved_at: None,
            incident_key: key.clone(),
            assignee_ids: assignee.into_iter().collect(),
            acknowledger_ids: Vec::new(),
            alert_count: 1,
            additional_responders: Vec::new(),
        });
        publish(state, &account, "incident.triggered", &id, client, now);
        return success(Some(&key), "Event processed");
    }
    let key = dedup_key.unwrap_or_default();
    let mut changed = None;
    if let Some(inc) = account
        .incidents
        .iter_mut()
        .find(|i| i.service_id == svc.id && i.incident_key == key && i.is_open())
    {
        if action == "acknowledge" && inc.status == "triggered" {
            inc.status = "acknowledged".to_owned();
            inc.acknowledged_at = Some(now);
            inc.acknowledger_ids = inc.assignee_ids.clone();
            inc.updated_at = now;
            changed = Some(("incident.acknowledged", inc.id.clone()));
        } else if action == "resolve" {
            inc.status = "resolved".to_owned();
            inc.resolved_at = Some(now);
            inc.assignee_ids.clear();
            inc.updated_at = now;
            changed = Some(("incident.resolved", inc.id.clone()));
        }
    }
    if let Some((event_type, id)) = changed {
        publish(state, &account, event_type, &id, client, now);
    }
    success(Some(&key), "Event processed")
}

/// Tells the webhook subscriptions of a change through the Events API: the
/// service is the agent (the change came through its integration), the
/// event's `client` the client.
fn publish(
    state: &State,
    account: &AccountView,
    event_type: &'static str,
    incident_id: &str,
    client: Option<String>,
    now: DateTime<Utc>,
) {
    let Some(inc) = account.incident(incident_id) else {
        return;
    };
    let agent = Render {
        account,
        base: &state.base_url,
        now,
    }
    .service_ref(&inc.service_id);
    let client = client.map_or(Value::Null, |name| json!({ "name": name }));
    publish_incident(state, account, event_type, incident_id, agent, client, now);
}

/// Tells the webhook subscriptions that `incident_id` changed: the incident
/// as it is now, by `agent` through `client`. Shared by the Events API and
/// the REST updates (`PUT /incidents/{id}`).
pub(crate) fn publish_incident(
    state: &State,
    account: &AccountView,
    event_type: &'static str,
    incident_id: &str,
    agent: Value,
    client: Value,
    now: DateTime<Utc>,
) {
    let Some(inc) = account.incident(incident_id) else {
        return;
    };
    let r = Render {
        account,
        base: &state.base_url,
        now,
    };
    state.webhooks.publish(&OutboundEvent {
        event_type,
        resource_type: "incident",
        resource_id: inc.id.clone(),
        service_id: Some(inc.service_id.clone()),
        team_ids: account
            .service(&inc.service_id)
            .map(|s| s.team_ids.clone())
            .unwrap_or_default(),
        occurred_at: now,
        agent,
        client,
        data: r.webhook_incident(inc),
    });
}

/// `POST /v2/change/enqueue`.
pub(crate) fn change_enqueue(state: &State, body: &[u8]) -> Reply {
    let map = match parse_body(body) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let mut errors = Vec::new();
    check_routing_key(&map, &mut errors);
    let payload = match map.get("payload") {
        Some(Value::Object(p)) => {
            check_summary(p, &mut errors);
            Some(p.clone())
        }
        None | Some(Value::Null) => {
            errors.push("'payload' is missing or blank".to_owned());
            None
        }
        Some(_) => {
            errors.push("'payload' must be an object".to_owned());
            None
        }
    };
    let mut links = Vec::new();
    match map.get("links") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, l) in items.iter().enumerate() {
                match l.get("href").and_then(Value::as_str) {
                    Some(href) if !href.is_empty() => links.push((
                        href.to_owned(),
                        l.get("text").and_then(Value::as_str).map(str::to_owned),
                    )),
                    _ => errors.push(format!("'links[{i}].href' is missing or blank")),
                }
            }
        }
        Some(_) => errors.push("'links' must be an array".to_owned()),
    }
    if !errors.is_empty() {
        return invalid_event(errors);
    }
    let payload = payload.unwrap_or_default();
    let routing_key = map
        .get("routing_key")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let now = state.now();
    let mut account = state.write_account();
    let Some(svc) = account.service_by_integration_key(routing_key).cloned() else {
        return invalid_event(vec!["Invalid routing key".to_owned()]);
    };
    let integration_id = svc
        .integrations
        .iter()
        .find(|i| i.integration_key.as_deref() == Some(routing_key))
        .map(|i| i.id.clone());
    let timestamp = payload
        .get("timestamp")
        .and_then(Value::as_str)
        .and_then(parse_timestamp)
        .unwrap_or(now);
    let event = ChangeEvent {
        id: format!("01{}", state.random_chars(crate::server::ID_CHARS, 24)),
        summary: payload
            .get("summary")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        timestamp,
        source: payload
            .get("source")
            .and_then(Value::as_str)
            .map(str::to_owned),
        service_id: svc.id.clone(),
        integration_id,
        links,
        custom_details: payload
            .get("custom_details")
            .cloned()
            .unwrap_or(Value::Null),
    };
    let pos = account
        .change_events
        .partition_point(|c| c.timestamp <= event.timestamp);
    account.change_events.insert(pos, event);
    success(None, "Change event processed")
}
