//! The REST API v2 routes, one module per resource; [`handle`] dispatches
//! a matched [`Route`] to its module (`body` reads JSON request bodies).

mod analytics;
mod body;
mod change_events;
mod directory;
mod escalation_policies;
mod incidents;
mod integrations;
mod oncalls;
mod routes;
mod service_dependencies;
mod services;
mod standards;
mod updates;
mod webhook_subscriptions;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::account::AccountView;
use crate::http::{Query, Reply, invalid, not_found};
use crate::render::Render;
use crate::server::State;

pub(crate) use routes::Route;

pub(super) fn ok(v: Value) -> Reply {
    Reply::json(200, &v)
}

pub(super) fn check_enum(field: &str, values: &[String], allowed: &[&str]) -> Result<(), Reply> {
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

/// Serves a matched REST route: writes take the account (or the webhook
/// subscriptions) for themselves, reads share it. `from` is the `From`
/// header (the user an update is made by).
pub(crate) fn handle(
    route: &Route,
    q: &Query,
    body: &[u8],
    from: Option<&str>,
    state: &State,
) -> Reply {
    let now = state.now();
    let result = match route {
        Route::AssociateDependencies => service_dependencies::associate(body, state),
        Route::DisassociateDependencies => service_dependencies::disassociate(body, state),
        Route::CreateServiceIntegration(id) => integrations::create(id, body, state, now),
        Route::UpdateService(id) => updates::update_service(id, body, from, state, now),
        Route::UpdateIncident(id) => updates::update_incident(id, body, from, state, now),
        Route::WebhookSubscriptions => webhook_subscriptions::list(q, state),
        Route::CreateWebhookSubscription => webhook_subscriptions::create(body, state),
        Route::WebhookSubscription(id) => webhook_subscriptions::get(id, state),
        Route::DeleteWebhookSubscription(id) => webhook_subscriptions::delete(id, state),
        Route::PingWebhookSubscription(id) => webhook_subscriptions::ping(id, state, now),
        Route::EnableWebhookSubscription(id) => webhook_subscriptions::enable(id, state),
        _ => {
            let account = state.read_account();
            read(route, q, body, &account, &state.base_url, now)
        }
    };
    result.unwrap_or_else(|e| e)
}

/// The routes that only read the account.
fn read(
    route: &Route,
    q: &Query,
    body: &[u8],
    account: &AccountView,
    base: &str,
    now: DateTime<Utc>,
) -> Result<Reply, Reply> {
    let r = Render { account, base, now };
    match route {
        Route::Services => services::list_services(q, account, &r),
        Route::Service(id) => services::get_service(id, q, account, &r),
        Route::ServiceChangeEvents(id) => {
            change_events::list_service_change_events(id, q, account, &r)
        }
        Route::ChangeEvents => change_events::list_change_events(None, q, account, &r),
        Route::Incidents => incidents::list_incidents(q, account, &r, now),
        Route::Incident(id) => incidents::get_incident(id, q, account, &r),
        Route::Oncalls => oncalls::list_oncalls(q, account, &r, now),
        Route::EscalationPolicies => escalation_policies::list_escalation_policies(q, account, &r),
        Route::EscalationPolicy(id) => {
            escalation_policies::get_escalation_policy(id, q, account, &r)
        }
        Route::Teams => directory::list_teams(q, account, &r),
        Route::Team(id) => directory::get_team(id, account, &r),
        Route::User(id) => directory::get_user(id, account, &r),
        Route::Schedule(id) => directory::get_schedule(id, account, &r),
        Route::Abilities => Ok(ok(json!({"abilities": account.abilities}))),
        Route::StandardsScores(kind) => standards::standards_many(kind, q, account, &r),
        Route::StandardsScore(kind, id) => standards::standards_one(kind, id, account, &r),
        Route::IncidentMetricsByService => analytics::incident_metrics(body, account, now),
        Route::ServiceDependencies(id) => service_dependencies::list(id, account),
        Route::ServiceIntegration(id, integration) => {
            integrations::get(id, integration, q, account, &r)
        }
        // The writes are served by `handle`; OAuth and the Events API before
        // authentication, by `server::serve`.
        _ => Err(not_found()),
    }
}

/// `sort_by` of the lists that sort by name only; `items` come sorted by
/// name ascending.
pub(super) fn sort_by_name<T>(q: &Query, items: &mut [T]) -> Result<(), Reply> {
    match q.one("sort_by") {
        None | Some("name" | "name:asc") => Ok(()),
        Some("name:desc") => {
            items.reverse();
            Ok(())
        }
        Some(other) => Err(invalid(format!(
            "sort_by {other:?} is invalid; allowed: name, name:asc, name:desc"
        ))),
    }
}
