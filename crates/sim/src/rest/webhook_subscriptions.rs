//! v3 webhook subscriptions: `POST/GET /webhook_subscriptions`,
//! `GET/DELETE /webhook_subscriptions/{id}`, `POST .../{id}/ping` and
//! `POST .../{id}/enable`. Delivery is `crate::webhooks`.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{body, ok};
use crate::http::{Query, Reply, invalid, not_found};
use crate::server::State;
use crate::webhooks::{EVENT_TYPES, Filter, NewSubscription, Subscription};

/// What PagerDuty shows instead of a custom header's value.
const REDACTED: &str = "-- redacted --";

/// The answer's object; the secret only when `with_secret` (the create
/// answer, the one time PagerDuty shows it).
fn render(s: &Subscription, with_secret: bool) -> Value {
    let filter = match &s.filter {
        Filter::Account => json!({"type": "account_reference"}),
        Filter::Service(id) => json!({"id": id, "type": "service_reference"}),
        Filter::Team(id) => json!({"id": id, "type": "team_reference"}),
    };
    let mut v = json!({
        "id": s.id,
        "type": "webhook_subscription",
        "active": s.active,
        "events": s.events,
        "filter": filter,
        "delivery_method": {
            "id": s.delivery_method_id,
            "type": "http_delivery_method",
            "url": s.url,
            "secret": if with_secret { json!(s.secret) } else { Value::Null },
            "temporarily_disabled": s.temporarily_disabled,
            "custom_headers": s.custom_headers.iter()
                .map(|(name, _)| json!({"name": name, "value": REDACTED}))
                .collect::<Vec<_>>(),
        },
    });
    if let Some(d) = &s.description {
        v["description"] = json!(d);
    }
    v
}

/// `POST /webhook_subscriptions`.
pub(super) fn create(raw: &[u8], state: &State) -> Result<Reply, Reply> {
    let req = body::object(raw, false)?;
    let new = parse(&req, state)?;
    let sub = state.webhooks.create(new);
    Ok(ok(json!({"webhook_subscription": render(&sub, true)})))
}

fn parse(req: &Value, state: &State) -> Result<NewSubscription, Reply> {
    const WS: &str = "webhook_subscription";
    let ws = body::required_object(&req[WS], WS)?;
    let at = |name: &str| ws.get(name).unwrap_or(&Value::Null);
    match body::required_str(at("type"), "webhook_subscription.type")? {
        "webhook_subscription" => {}
        other => {
            return Err(invalid(format!(
                "webhook_subscription.type {other:?} is invalid; allowed: webhook_subscription"
            )));
        }
    }
    let dm = body::required_object(
        at("delivery_method"),
        "webhook_subscription.delivery_method",
    )?;
    let dm_at = |name: &str| dm.get(name).unwrap_or(&Value::Null);
    match body::required_str(dm_at("type"), "webhook_subscription.delivery_method.type")? {
        "http_delivery_method" => {}
        other => {
            return Err(invalid(format!(
                "webhook_subscription.delivery_method.type {other:?} is invalid; allowed: http_delivery_method"
            )));
        }
    }
    let url = body::required_str(dm_at("url"), "webhook_subscription.delivery_method.url")?;
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
        _ => {
            return Err(invalid(
                "webhook_subscription.delivery_method.url must be an http:// or https:// URL",
            ));
        }
    }
    let custom_headers = headers(dm_at("custom_headers"))?;
    let events = body::string_list(at("events"), "webhook_subscription.events")?;
    if events.is_empty() {
        return Err(invalid(
            "webhook_subscription.events must name at least one event type",
        ));
    }
    for (i, e) in events.iter().enumerate() {
        if !EVENT_TYPES.contains(&e.as_str()) {
            return Err(invalid(format!(
                "webhook_subscription.events[{i}] {e:?} is not an event type; allowed: {}",
                EVENT_TYPES.join(", ")
            )));
        }
        if events[..i].contains(e) {
            return Err(invalid(format!(
                "webhook_subscription.events[{i}] {e:?} is repeated"
            )));
        }
    }
    let filter = filter(at("filter"), state)?;
    let description = body::optional_str(at("description"), "webhook_subscription.description")?;
    let active = body::optional_bool(at("active"), "webhook_subscription.active", true)?;
    Ok(NewSubscription {
        url: url.to_owned(),
        custom_headers,
        description: description.map(str::to_owned),
        events,
        filter,
        active,
    })
}

fn headers(v: &Value) -> Result<Vec<(String, String)>, Reply> {
    const FIELD: &str = "webhook_subscription.delivery_method.custom_headers";
    let items = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        _ => return Err(invalid(format!("{FIELD} must be an array"))),
    };
    let mut out: Vec<(String, String)> = Vec::with_capacity(items.len());
    for (i, h) in items.iter().enumerate() {
        let name = body::required_str(&h["name"], &format!("{FIELD}[{i}].name"))?;
        let value = body::required_str(&h["value"], &format!("{FIELD}[{i}].value"))?;
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err()
            || reqwest::header::HeaderValue::from_str(value).is_err()
        {
            return Err(invalid(format!("{FIELD}[{i}] is not a valid HTTP header")));
        }
        if out.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            return Err(invalid(format!(
                "{FIELD}[{i}].name {name:?} is repeated (header names must be unique)"
            )));
        }
        out.push((name.to_owned(), value.to_owned()));
    }
    Ok(out)
}

fn filter(v: &Value, state: &State) -> Result<Filter, Reply> {
    const FIELD: &str = "webhook_subscription.filter";
    let f = body::required_object(v, FIELD)?;
    let at = |name: &str| f.get(name).unwrap_or(&Value::Null);
    let kind = body::required_str(at("type"), &format!("{FIELD}.type"))?;
    let account = state.read_account();
    let id = || body::required_str(at("id"), &format!("{FIELD}.id")).map(str::to_owned);
    match kind {
        "account_reference" => Ok(Filter::Account),
        "service_reference" => {
            let id = id()?;
            if account.service(&id).is_none() {
                return Err(invalid(format!("{FIELD}.id: service {id} not found")));
            }
            Ok(Filter::Service(id))
        }
        "team_reference" => {
            let id = id()?;
            if account.team(&id).is_none() {
                return Err(invalid(format!("{FIELD}.id: team {id} not found")));
            }
            Ok(Filter::Team(id))
        }
        other => Err(invalid(format!(
            "{FIELD}.type {other:?} is invalid; allowed: account_reference, service_reference, team_reference"
        ))),
    }
}

/// `GET /webhook_subscriptions`: paginated, optionally only those with one
/// filter (`filter_type` account, service or team; `filter_id` for the
/// last two).
pub(super) fn list(q: &Query, state: &State) -> Result<Reply, Reply> {
    let page = q.page()?;
    let wanted = match (q.one("filter_type"), q.one("filter_id")) {
        (None, None) => None,
        (None, Some(_)) => return Err(invalid("filter_id needs filter_type")),
        (Some("account"), _) => Some(Filter::Account),
        (Some("service"), Some(id)) => Some(Filter::Service(id.to_owned())),
        (Some("team"), Some(id)) => Some(Filter::Team(id.to_owned())),
        (Some("service" | "team"), None) => {
            return Err(invalid(
                "filter_id is required when filter_type is service or team",
            ));
        }
        (Some(other), _) => {
            return Err(invalid(format!(
                "filter_type {other:?} is invalid; allowed: account, service, team"
            )));
        }
    };
    let subs: Vec<Subscription> = state
        .webhooks
        .list()
        .into_iter()
        .filter(|s| wanted.as_ref().is_none_or(|f| s.filter == *f))
        .collect();
    Ok(ok(page.wrap("webhook_subscriptions", &subs, |s| {
        render(s, false)
    })))
}

/// `GET /webhook_subscriptions/{id}`.
pub(super) fn get(id: &str, state: &State) -> Result<Reply, Reply> {
    let sub = state.webhooks.get(id).ok_or_else(not_found)?;
    Ok(ok(json!({"webhook_subscription": render(&sub, false)})))
}

/// `DELETE /webhook_subscriptions/{id}`: 204; its queued webhooks are dropped.
pub(super) fn delete(id: &str, state: &State) -> Result<Reply, Reply> {
    if state.webhooks.delete(id) {
        Ok(Reply::empty(204))
    } else {
        Err(not_found())
    }
}

/// `POST /webhook_subscriptions/{id}/ping`: 202, then `pagey.ping` is delivered.
pub(super) fn ping(id: &str, state: &State, now: DateTime<Utc>) -> Result<Reply, Reply> {
    let sub = state.webhooks.get(id).ok_or_else(not_found)?;
    state.webhooks.ping(&sub, now);
    Ok(Reply::empty(202))
}

/// `POST /webhook_subscriptions/{id}/enable`: ends a temporary disablement.
pub(super) fn enable(id: &str, state: &State) -> Result<Reply, Reply> {
    let sub = state.webhooks.enable(id).ok_or_else(not_found)?;
    Ok(ok(json!({"webhook_subscription": render(&sub, false)})))
}
