//! The Node backend's envelopes (`{"service": …}`, `{"incidents": […]}`…)
//! and the JSON of PagerDuty objects in them.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::error::BackstageError;
use super::params::Result;
use crate::state::AppState;

/// A 200 JSON answer with a rendered body (see [`crate::http::rendered`]).
pub(super) fn json_body(
    req: &actix_web::HttpRequest,
    body: &crate::http::rendered::Body,
) -> actix_web::HttpResponse {
    crate::http::cache::json_body(req, body)
}

/// The JSON bytes of an answer.
pub(super) fn to_bytes<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|_| BackstageError::internal("serialising an answer"))
}

/// [`to_bytes`] into a buffer of `capacity` bytes (a large answer's last
/// length plus a margin: written without regrowing).
pub(super) fn to_bytes_sized<T: Serialize>(value: &T, capacity: usize) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(capacity);
    serde_json::to_writer(&mut out, value)
        .map_err(|_| BackstageError::internal("serialising an answer"))?;
    Ok(out)
}

pub(super) fn json_of<T: Serialize>(value: &T) -> Result<Value> {
    serde_json::to_value(value)
        .map_err(|_| BackstageError::internal("serialising a PagerDuty object"))
}

/// A service of `account` as JSON, each integration key shown as
/// `backstage.integration_keys` says (an alias by default).
pub(super) fn service_json(
    state: &AppState,
    account: &str,
    service: &pagerduty::Service,
) -> Result<Value> {
    let mut value = json_of(service)?;
    if let Some(integrations) = value.get_mut("integrations").and_then(Value::as_array_mut) {
        for integration in integrations {
            let Some(map) = integration.as_object_mut() else {
                continue;
            };
            if state.keys.display() == crate::config::IntegrationKeys::Omit {
                map.remove("integration_key");
                continue;
            }
            let Some(key) = map
                .get("integration_key")
                .and_then(Value::as_str)
                .map(str::to_owned)
            else {
                continue;
            };
            match state.keys.shown(account, &key) {
                Some(shown) => map.insert("integration_key".into(), Value::String(shown)),
                None => map.remove("integration_key"),
            };
        }
    }
    Ok(value)
}

/// A service as JSON with `"account": id` added.
pub(super) fn service_with_account(
    state: &AppState,
    service: &pagerduty::Service,
    account: &str,
) -> Result<Value> {
    let mut value = service_json(state, account, service)?;
    if let Value::Object(map) = &mut value {
        map.insert("account".into(), Value::String(account.to_owned()));
    }
    Ok(value)
}

/// `value` (an object) with `"account": id` added.
pub(super) fn with_account<T: Serialize>(value: &T, account: &str) -> Result<Value> {
    let mut value = json_of(value)?;
    if let Value::Object(map) = &mut value {
        map.insert("account".into(), Value::String(account.to_owned()));
    }
    Ok(value)
}

/// What `GET /services` answers, by its parameters (for OpenAPI: the
/// handler writes the variants directly).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // only its schema is used
pub enum ServicesAnswer {
    /// `?integration_key=`: the service owning the key.
    ByKey(ServiceEnvelope),
    /// `?team_id`, `?query`, `?limit`: a bare array (the Node backend's shape), each with `account`.
    Filtered(Vec<Value>),
    /// No parameter: every service of every account.
    All(ServicesEnvelope),
}

/// `{"service": {…}}`: the PagerDuty service object.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ServiceEnvelope {
    /// The PagerDuty service, untrimmed (integrations, escalation policy, teams included).
    #[schema(value_type = Object)]
    pub service: Value,
}

/// `{"services": [{…, "account"}]}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ServicesEnvelope {
    /// Every service of every account, each with its `account` id.
    #[schema(value_type = Vec<Object>)]
    pub services: Vec<Value>,
}

/// `{"incidents": […]}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IncidentsEnvelope {
    /// Every open (triggered or acknowledged) incident of the service, any age, newest first.
    #[schema(value_type = Vec<Object>)]
    pub incidents: Vec<Value>,
}

/// `{"change_events": […]}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChangeEventsEnvelope {
    /// The service's 5 most recent change events, newest first.
    #[schema(value_type = Vec<Object>)]
    pub change_events: Vec<Value>,
}

/// `{"standards": {…}}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StandardsEnvelope {
    /// PagerDuty's scores object: `resource_id`, `resource_type`, `score`, `standards`.
    #[schema(value_type = Object)]
    pub standards: Value,
}

/// `{"oncalls": […]}`: PagerDuty's on-call entries.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OncallsEnvelope {
    /// PagerDuty's on-call objects (`user`, `escalation_level`, `schedule`, `escalation_policy`, `start`, `end`).
    #[schema(value_type = Vec<Object>)]
    pub oncalls: Vec<Value>,
}

/// `{"metrics": […]}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MetricsEnvelope {
    /// PagerDuty's incident analytics rows for the service, last 30 days.
    #[schema(value_type = Vec<Object>)]
    pub metrics: Vec<Value>,
}

/// `{"users": […]}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UsersEnvelope {
    /// Who is on call at the lowest non-empty level of each policy, by name, without duplicates.
    #[schema(value_type = Vec<Object>)]
    pub users: Vec<Value>,
}

/// One option of Backstage's escalation-policy picker.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PolicyOption {
    /// The policy name; `(account) name` when several accounts are configured.
    pub label: String,
    /// The policy id.
    pub value: String,
}

/// One configured account.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AccountEntry {
    pub id: String,
    /// `is_default` as configured (false for an unmarked single account).
    #[serde(rename = "isDefault")]
    pub is_default: bool,
}

/// `{"accounts": […]}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AccountsEnvelope {
    /// Empty when only `[pagerduty]` is configured (like the Node backend's legacy config).
    pub accounts: Vec<AccountEntry>,
}
