//! The Backstage handlers: parse like Express does, read the cached
//! sections or lists, answer in the Node backend's envelopes.

use std::collections::HashSet;
use std::future::Future;

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use pagerduty::{Oncall, User};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::BackstageState;
use super::error::{BackstageError, ErrorsBody, Op};
use crate::accounts::Account;

/// Change events returned per service (the Node backend asks PagerDuty for 5).
const CHANGE_EVENTS: usize = 5;
/// Largest `limit` of the filtered services route (PagerDuty's page size).
const MAX_LIMIT: u32 = 100;
/// Most escalation policies one on-call request may name.
const MAX_POLICIES: usize = 20;

type Result<T> = std::result::Result<T, BackstageError>;

/// The decoded query string (`a[]=1`, `a%5B%5D=1` and `a=1` all decode to
/// their plain key and value; repeated keys are kept).
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(req: &HttpRequest) -> Result<Params> {
        serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string())
            .map(Params)
            .map_err(|e| BackstageError::bad_request(format!("invalid query string: {e}")))
    }

    /// The first non-empty value of `name`.
    fn first(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim())
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    /// Every value of the given keys, comma-separated values split.
    fn all(&self, names: &[&str]) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| names.contains(&k.as_str()))
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The account `?account=` names (the default when absent or empty).
    fn account<'a>(&self, state: &'a BackstageState) -> Result<&'a std::sync::Arc<Account>> {
        Ok(state.accounts.get(self.first("account"))?)
    }

    /// The accounts an all-accounts list covers: the one `?account=` names,
    /// or every account when it is absent or empty (`?account=` alone
    /// filters nothing, on every list route alike).
    fn accounts<'a>(&self, state: &'a BackstageState) -> Result<Vec<&'a std::sync::Arc<Account>>> {
        Ok(match self.first("account") {
            Some(_) => vec![self.account(state)?],
            None => state.accounts.iter().collect(),
        })
    }
}

/// Runs `work` within the request deadline.
async fn within<T>(
    state: &BackstageState,
    op: Op,
    work: impl Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(state.request_deadline, work).await {
        Ok(result) => result,
        Err(_) => Err(BackstageError::deadline(op, state.request_deadline)),
    }
}

/// The shared body of the per-service routes: the account (`?account=`), the
/// checked id, and one read from that account's card cache within the
/// request deadline, its failure worded for `op`.
async fn read_for_service<T, Fut>(
    req: &HttpRequest,
    state: &BackstageState,
    service_id: web::Path<String>,
    op: Op,
    read: impl FnOnce(cards::CardService, String) -> Fut,
) -> Result<T>
where
    Fut: Future<Output = std::result::Result<T, cards::CardError>>,
{
    let params = Params::parse(req)?;
    let account = params.account(state)?;
    let id = service_id.into_inner();
    check_service_id(&id)?;
    let read = read(account.cards.clone(), id);
    within(state, op, async {
        read.await.map_err(|e| BackstageError::from_card(op, &e))
    })
    .await
}

/// PagerDuty ids are short alphanumeric strings.
fn check_service_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(BackstageError::bad_request(
            "':serviceId' must be a PagerDuty id (1 to 64 letters and digits)",
        ));
    }
    Ok(())
}

fn json_of<T: Serialize>(value: &T) -> Result<Value> {
    serde_json::to_value(value)
        .map_err(|_| BackstageError::internal("serialising a PagerDuty object"))
}

/// A service as JSON, without integration keys when so configured.
fn service_json(state: &BackstageState, service: &pagerduty::Service) -> Result<Value> {
    let mut value = json_of(service)?;
    if state.redact_integration_keys
        && let Some(integrations) = value.get_mut("integrations").and_then(Value::as_array_mut)
    {
        for integration in integrations {
            if let Some(map) = integration.as_object_mut() {
                map.remove("integration_key");
            }
        }
    }
    Ok(value)
}

/// A service as JSON with `"account": id` added.
fn service_with_account(
    state: &BackstageState,
    service: &pagerduty::Service,
    account: &str,
) -> Result<Value> {
    let mut value = service_json(state, service)?;
    if let Value::Object(map) = &mut value {
        map.insert("account".into(), Value::String(account.to_owned()));
    }
    Ok(value)
}

/// `value` (an object) with `"account": id` added.
fn with_account<T: Serialize>(value: &T, account: &str) -> Result<Value> {
    let mut value = json_of(value)?;
    if let Value::Object(map) = &mut value {
        map.insert("account".into(), Value::String(account.to_owned()));
    }
    Ok(value)
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

/// `GET /health`: the plugin is up.
///
/// Always `{"status":"ok"}`, without caller auth (like the Node backend),
/// so Backstage's health checks need no token.
#[utoipa::path(
    tag = "backstage",
    responses((status = 200, description = "Always `{\"status\":\"ok\"}`", body = Object, example = json!({"status": "ok"})))
)]
#[get("/health")]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// `GET /services/{service_id}`: one PagerDuty service.
///
/// The untrimmed PagerDuty object with its integrations, escalation policy
/// and teams, from the card cache (no upstream call when the card is warm).
#[utoipa::path(
    tag = "backstage",
    params(
        ("service_id" = String, Path, description = "PagerDuty service id", example = "PABC123"),
        ("account" = Option<String>, Query, description = "Account id (default account when absent)"),
    ),
    responses(
        (status = 200, description = "The service", body = ServiceEnvelope),
        (status = 400, description = "Bad id or unknown account", body = ErrorsBody),
        (status = 401, description = "Missing caller token, or PagerDuty refused dutycard's credentials", body = ErrorsBody),
        (status = 403, description = "PagerDuty denied access", body = ErrorsBody),
        (status = 404, description = "No such service", body = ErrorsBody),
        (status = 429, description = "PagerDuty rate limit and no cached copy; see Retry-After", body = ErrorsBody),
        (status = 502, description = "PagerDuty failed", body = ErrorsBody),
        (status = 504, description = "PagerDuty or the request deadline timed out", body = ErrorsBody),
    ),
    security(("bearer" = []))
)]
#[get("/services/{service_id}")]
pub async fn get_service(
    req: HttpRequest,
    state: web::Data<BackstageState>,
    service_id: web::Path<String>,
) -> Result<HttpResponse> {
    let service = read_for_service(
        &req,
        &state,
        service_id,
        Op::GetService,
        |cards, id| async move { cards.raw_service(&id).await },
    )
    .await?;
    Ok(HttpResponse::Ok().json(ServiceEnvelope {
        service: service_json(&state, &service.value)?,
    }))
}

/// `GET /services`: by integration key, filtered, or all.
///
/// * `?integration_key=K`: `{"service": …}`, the service owning that
///   integration key (verified against its integrations; 404 otherwise);
/// * `?team_id=T&query=Q&limit=N` (any of them): a bare array of one page
///   of services (N ≥ 1, default 100; above 100 is capped at 100 like
///   PagerDuty does), each with `account`;
/// * no parameter: `{"services": […]}`, every service of every account
///   (or of `?account=`; an empty `?account=` means every account, as on
///   `/teams` and `/escalation_policies`), each with `account`.
#[utoipa::path(
    tag = "backstage",
    params(
        ("integration_key" = Option<String>, Query, description = "An integration key of the service"),
        ("team_id" = Option<String>, Query, description = "Only services of this team"),
        ("query" = Option<String>, Query, description = "Name filter"),
        ("limit" = Option<u32>, Query, description = "Page size, at least 1 (default 100; larger values are capped at 100)"),
        ("account" = Option<String>, Query, description = "Account id"),
    ),
    responses(
        (status = 200, description = "`{\"service\"}` by key, a bare array when filtered, `{\"services\"}` otherwise", body = Object),
        (status = 400, description = "Bad parameter or unknown account", body = ErrorsBody),
        (status = 401, description = "Missing caller token, or PagerDuty refused dutycard's credentials", body = ErrorsBody),
        (status = 403, description = "PagerDuty denied access", body = ErrorsBody),
        (status = 404, description = "No service has this integration key", body = ErrorsBody),
        (status = 429, description = "PagerDuty rate limit", body = ErrorsBody),
        (status = 502, description = "PagerDuty failed", body = ErrorsBody),
        (status = 504, description = "Timed out", body = ErrorsBody),
    ),
    security(("bearer" = []))
)]
#[get("/services")]
pub async fn list_services(
    req: HttpRequest,
    state: web::Data<BackstageState>,
) -> Result<HttpResponse> {
    let params = Params::parse(&req)?;
    if params.has("integration_key") {
        let account = params.account(&state)?;
        let key = params
            .first("integration_key")
            .ok_or_else(|| BackstageError::bad_request("'integration_key' must not be empty"))?
            .to_owned();
        let service = within(&state, Op::GetService, async {
            let resolved = account
                .cards
                .resolve_integration_key(&key)
                .await
                .map_err(|e| BackstageError::from_card(Op::GetService, &e))?;
            account
                .cards
                .raw_service(&resolved.service_id)
                .await
                .map_err(|e| BackstageError::from_card(Op::GetService, &e))
        })
        .await?;
        return Ok(HttpResponse::Ok().json(ServiceEnvelope {
            service: service_json(&state, &service.value)?,
        }));
    }
    if params.has("team_id") || params.has("query") || params.has("limit") {
        let account = params.account(&state)?;
        // Above 100 is capped, as PagerDuty does (the Node backend forwards
        // the limit and gets at most 100 back); 0 and non-numbers are 400s.
        let limit = match params.first("limit") {
            None => MAX_LIMIT,
            Some(text) => match text.parse::<u64>() {
                Ok(n) if n >= 1 => n.min(u64::from(MAX_LIMIT)) as u32,
                _ => {
                    return Err(BackstageError::bad_request(format!(
                        "'limit' must be a positive number (at most {MAX_LIMIT} are returned), got `{text}`"
                    )));
                }
            },
        };
        let team = params.first("team_id").map(str::to_owned);
        let query = params.first("query").map(str::to_owned);
        let services = within(&state, Op::GetServices, async {
            account
                .cards
                .filtered_services(team, query, limit)
                .await
                .map_err(|e| BackstageError::from_pagerduty(Op::GetServices, &e))
        })
        .await?;
        let body = services
            .iter()
            .map(|s| service_with_account(&state, s, &account.id))
            .collect::<Result<Vec<_>>>()?;
        return Ok(HttpResponse::Ok().json(body));
    }
    let accounts = params.accounts(&state)?;
    let lists = within(&state, Op::GetServices, async {
        futures::future::try_join_all(accounts.iter().map(|account| async {
            account
                .cards
                .services()
                .await
                .map(|services| (account.id.as_str(), services))
                .map_err(|e| BackstageError::from_pagerduty(Op::GetServices, &e))
        }))
        .await
    })
    .await?;
    let mut services = Vec::new();
    for (account, list) in lists {
        for service in list.iter() {
            services.push(service_with_account(&state, service, account)?);
        }
    }
    Ok(HttpResponse::Ok().json(ServicesEnvelope { services }))
}

/// `GET /services/{service_id}/incidents`: every open incident.
///
/// Triggered and acknowledged incidents of any age (the Node backend
/// missed those older than 30 days), newest first, from the card cache.
#[utoipa::path(
    tag = "backstage",
    params(
        ("service_id" = String, Path, description = "PagerDuty service id"),
        ("account" = Option<String>, Query, description = "Account id"),
    ),
    responses(
        (status = 200, description = "The open incidents", body = IncidentsEnvelope),
        (status = 400, description = "Bad id or unknown account", body = ErrorsBody),
        (status = 401, description = "Missing caller token, or PagerDuty refused dutycard's credentials", body = ErrorsBody),
        (status = 403, description = "PagerDuty denied access", body = ErrorsBody),
        (status = 429, description = "PagerDuty rate limit", body = ErrorsBody),
        (status = 502, description = "PagerDuty failed", body = ErrorsBody),
        (status = 504, description = "Timed out", body = ErrorsBody),
    ),
    security(("bearer" = []))
)]
#[get("/services/{service_id}/incidents")]
pub async fn service_incidents(
    req: HttpRequest,
    state: web::Data<BackstageState>,
    service_id: web::Path<String>,
) -> Result<HttpResponse> {
    let incidents = read_for_service(
        &req,
        &state,
        service_id,
        Op::Incidents,
        |cards, id| async move { cards.raw_open_incidents(&id).await },
    )
    .await?;
    Ok(HttpResponse::Ok().json(IncidentsEnvelope {
        incidents: incidents.value.iter().map(json_of).collect::<Result<_>>()?,
    }))
}

/// `GET /services/{service_id}/change-events`: recent change events.
///
/// The service's 5 most recent change events (deploys, config changes),
/// newest first, from the card cache.
#[utoipa::path(
    tag = "backstage",
    params(
        ("service_id" = String, Path, description = "PagerDuty service id"),
        ("account" = Option<String>, Query, description = "Account id"),
    ),
    responses(
        (status = 200, description = "The newest change events", body = ChangeEventsEnvelope),
        (status = 400, description = "Bad id or unknown account", body = ErrorsBody),
        (status = 401, description = "Missing caller token, or PagerDuty refused dutycard's credentials", body = ErrorsBody),
        (status = 403, description = "PagerDuty denied access", body = ErrorsBody),
        (status = 404, description = "No such service", body = ErrorsBody),
        (status = 502, description = "PagerDuty failed", body = ErrorsBody),
        (status = 504, description = "Timed out", body = ErrorsBody),
    ),
    security(("bearer" = []))
)]
#[get("/services/{service_id}/change-events")]
pub async fn service_change_events(
    req: HttpRequest,
    state: web::Data<BackstageState>,
    service_id: web::Path<String>,
) -> Result<HttpResponse> {
    let events = read_for_service(
        &req,
        &state,
        service_id,
        Op::ChangeEvents,
        |cards, id| async move { cards.raw_change_events(&id).await },
    )
    .await?;
    Ok(HttpResponse::Ok().json(ChangeEventsEnvelope {
        change_events: events
            .value
            .iter()
            .take(CHANGE_EVENTS)
            .map(json_of)
            .collect::<Result<_>>()?,
    }))
}

/// `GET /services/{service_id}/standards`: the service's standards scores.
///
/// PagerDuty's 400 and 404 are real errors here (the Node backend answered
/// 200 with PagerDuty's error object inside `standards`).
#[utoipa::path(
    tag = "backstage",
    params(
        ("service_id" = String, Path, description = "PagerDuty service id"),
        ("account" = Option<String>, Query, description = "Account id"),
    ),
    responses(
        (status = 200, description = "The scores", body = StandardsEnvelope),
        (status = 400, description = "Bad id or unknown account", body = ErrorsBody),
        (status = 401, description = "Missing caller token, or PagerDuty refused dutycard's credentials", body = ErrorsBody),
        (status = 403, description = "PagerDuty denied access (e.g. no standards.read scope)", body = ErrorsBody),
        (status = 404, description = "No such service", body = ErrorsBody),
        (status = 429, description = "PagerDuty rate limit", body = ErrorsBody),
        (status = 502, description = "PagerDuty failed", body = ErrorsBody),
        (status = 504, description = "Timed out", body = ErrorsBody),
    ),
    security(("bearer" = []))
)]
#[get("/services/{service_id}/standards")]
pub async fn service_standards(
    req: HttpRequest,
    state: web::Data<BackstageState>,
    service_id: web::Path<String>,
) -> Result<HttpResponse> {
    let standards = read_for_service(
        &req,
        &state,
        service_id,
        Op::Standards,
        |cards, id| async move { cards.raw_standards(&id).await },
    )
    .await?;
    Ok(HttpResponse::Ok().json(StandardsEnvelope {
        standards: json_of(&standards.value)?,
    }))
}

/// `GET /services/{service_id}/metrics`: incident analytics, last 30 days.
///
/// PagerDuty's 401, 403 and 404 are real errors here (the Node backend
/// answered `200 {}`).
#[utoipa::path(
    tag = "backstage",
    params(
        ("service_id" = String, Path, description = "PagerDuty service id"),
        ("account" = Option<String>, Query, description = "Account id"),
    ),
    responses(
        (status = 200, description = "The metrics rows (empty without incidents)", body = MetricsEnvelope),
        (status = 400, description = "Bad id or unknown account", body = ErrorsBody),
        (status = 401, description = "Missing caller token, or PagerDuty refused dutycard's credentials", body = ErrorsBody),
        (status = 403, description = "PagerDuty denied access (e.g. no analytics.read scope)", body = ErrorsBody),
        (status = 429, description = "PagerDuty rate limit", body = ErrorsBody),
        (status = 502, description = "PagerDuty failed", body = ErrorsBody),
        (status = 504, description = "Timed out", body = ErrorsBody),
    ),
    security(("bearer" = []))
)]
#[get("/services/{service_id}/metrics")]
pub async fn service_metrics(
    req: HttpRequest,
    state: web::Data<BackstageState>,
    service_id: web::Path<String>,
) -> Result<HttpResponse> {
    let metrics = read_for_service(
        &req,
        &state,
        service_id,
        Op::Metrics,
        |cards, id| async move { cards.raw_metrics(&id).await },
    )
    .await?;
    Ok(HttpResponse::Ok().json(MetricsEnvelope {
        metrics: metrics.value.iter().map(json_of).collect::<Result<_>>()?,
    }))
}

/// The Node backend's level rule for one policy: only the lowest level
/// that has someone on call.
fn lowest_level(oncalls: &[Oncall]) -> impl Iterator<Item = &User> {
    let lowest = oncalls.iter().map(|o| o.escalation_level).min();
    oncalls
        .iter()
        .filter(move |o| Some(o.escalation_level) == lowest)
        .map(|o| &o.user)
}

/// Users of several policies' lowest levels, sorted by name, each once.
fn merge_oncall_users<'a>(per_policy: impl IntoIterator<Item = &'a [Oncall]>) -> Vec<&'a User> {
    let mut users: Vec<&User> = per_policy.into_iter().flat_map(lowest_level).collect();
    users.sort_by(|a, b| a.name.cmp(&b.name));
    let mut seen = HashSet::new();
    users.retain(|u| seen.insert(u.id.clone()));
    users
}

/// `GET /oncall-users?escalation_policy_ids[]=…`: who is on call.
///
/// Accepts `escalation_policy_ids[]` (literal or percent-encoded brackets)
/// and `escalation_policy_ids`, repeated or comma-separated. Per policy the
/// users of the lowest level with someone on call (a level-1 gap does not
/// hide everyone); all of them sorted by name, each user once.
#[utoipa::path(
    tag = "backstage",
    params(
        ("escalation_policy_ids[]" = Vec<String>, Query, description = "Escalation policy ids (also `escalation_policy_ids`)"),
        ("account" = Option<String>, Query, description = "Account id"),
    ),
    responses(
        (status = 200, description = "The on-call users (full PagerDuty user objects)", body = UsersEnvelope),
        (status = 400, description = "No policy id, or unknown account", body = ErrorsBody),
        (status = 401, description = "Missing caller token, or PagerDuty refused dutycard's credentials", body = ErrorsBody),
        (status = 403, description = "PagerDuty denied access", body = ErrorsBody),
        (status = 429, description = "PagerDuty rate limit", body = ErrorsBody),
        (status = 502, description = "PagerDuty failed", body = ErrorsBody),
        (status = 504, description = "Timed out", body = ErrorsBody),
    ),
    security(("bearer" = []))
)]
#[get("/oncall-users")]
pub async fn oncall_users(
    req: HttpRequest,
    state: web::Data<BackstageState>,
) -> Result<HttpResponse> {
    let params = Params::parse(&req)?;
    let account = params.account(&state)?;
    let mut ids = params.all(&["escalation_policy_ids[]", "escalation_policy_ids"]);
    let mut seen = HashSet::new();
    ids.retain(|id| seen.insert(id.clone()));
    if ids.is_empty() {
        return Err(BackstageError::bad_request(
            "'escalation_policy_ids[]' is required",
        ));
    }
    if ids.len() > MAX_POLICIES {
        return Err(BackstageError::bad_request(format!(
            "at most {MAX_POLICIES} 'escalation_policy_ids[]' per request"
        )));
    }
    let per_policy = within(&state, Op::Oncalls, async {
        futures::future::try_join_all(ids.iter().map(|id| async {
            account
                .cards
                .raw_oncalls(id)
                .await
                .map(|c| c.value)
                .map_err(|e| BackstageError::from_card(Op::Oncalls, &e))
        }))
        .await
    })
    .await?;
    let users = merge_oncall_users(per_policy.iter().map(Vec::as_slice))
        .into_iter()
        .map(json_of)
        .collect::<Result<_>>()?;
    Ok(HttpResponse::Ok().json(UsersEnvelope { users }))
}

/// `GET /escalation_policies`: the policies of `?account=` (or of every
/// account), for pickers.
///
/// A bare array of `{label, value}` sorted by account, then name (case
/// insensitive). With several accounts configured every label reads
/// `(account) name`, filtered or not.
#[utoipa::path(
    tag = "backstage",
    params(("account" = Option<String>, Query, description = "Account id (every account when absent or empty)")),
    responses(
        (status = 200, description = "The policies", body = Vec<PolicyOption>),
        (status = 400, description = "Unknown account", body = ErrorsBody),
        (status = 401, description = "Missing caller token, or PagerDuty refused dutycard's credentials", body = ErrorsBody),
        (status = 403, description = "PagerDuty denied access", body = ErrorsBody),
        (status = 429, description = "PagerDuty rate limit", body = ErrorsBody),
        (status = 502, description = "PagerDuty failed", body = ErrorsBody),
        (status = 504, description = "Timed out", body = ErrorsBody),
    ),
    security(("bearer" = []))
)]
#[get("/escalation_policies")]
pub async fn list_escalation_policies(
    req: HttpRequest,
    state: web::Data<BackstageState>,
) -> Result<HttpResponse> {
    let params = Params::parse(&req)?;
    let accounts = params.accounts(&state)?;
    let prefixed = state.accounts.len() > 1;
    let lists = within(&state, Op::EscalationPolicies, async {
        futures::future::try_join_all(accounts.iter().map(|account| async {
            account
                .cards
                .escalation_policies()
                .await
                .map(|list| (account.id.as_str(), list))
                .map_err(|e| BackstageError::from_pagerduty(Op::EscalationPolicies, &e))
        }))
        .await
    })
    .await?;
    let mut options = Vec::new();
    for (account, list) in lists {
        let mut policies: Vec<_> = list.iter().collect();
        policies.sort_by_key(|p| policy_name(p).to_lowercase());
        for policy in policies {
            let name = policy_name(policy);
            options.push(PolicyOption {
                label: if prefixed {
                    format!("({account}) {name}")
                } else {
                    name.to_owned()
                },
                value: policy.id.clone(),
            });
        }
    }
    Ok(HttpResponse::Ok().json(options))
}

fn policy_name(policy: &pagerduty::EscalationPolicy) -> &str {
    policy
        .name
        .as_deref()
        .or(policy.summary.as_deref())
        .unwrap_or(policy.id.as_str())
}

/// `GET /teams`: the teams of `?account=` (or of every account).
///
/// A bare array of PagerDuty teams, each with `account`, sorted by name
/// (case insensitive, like the escalation policies), then account.
#[utoipa::path(
    tag = "backstage",
    params(("account" = Option<String>, Query, description = "Account id (every account when absent or empty)")),
    responses(
        (status = 200, description = "The teams", body = Vec<Object>),
        (status = 400, description = "Unknown account", body = ErrorsBody),
        (status = 401, description = "Missing caller token, or PagerDuty refused dutycard's credentials", body = ErrorsBody),
        (status = 403, description = "PagerDuty denied access", body = ErrorsBody),
        (status = 429, description = "PagerDuty rate limit", body = ErrorsBody),
        (status = 502, description = "PagerDuty failed", body = ErrorsBody),
        (status = 504, description = "Timed out", body = ErrorsBody),
    ),
    security(("bearer" = []))
)]
#[get("/teams")]
pub async fn list_teams(
    req: HttpRequest,
    state: web::Data<BackstageState>,
) -> Result<HttpResponse> {
    let params = Params::parse(&req)?;
    let accounts = params.accounts(&state)?;
    let lists = within(&state, Op::Teams, async {
        futures::future::try_join_all(accounts.iter().map(|account| async {
            account
                .cards
                .teams()
                .await
                .map(|list| (account.id.as_str(), list))
                .map_err(|e| BackstageError::from_pagerduty(Op::Teams, &e))
        }))
        .await
    })
    .await?;
    let mut teams: Vec<(&str, &str, &pagerduty::Team)> = lists
        .iter()
        .flat_map(|(account, list)| {
            list.iter().map(move |t| {
                let name = t.name.as_deref().or(t.summary.as_deref()).unwrap_or("");
                (name, *account, t)
            })
        })
        .collect();
    teams.sort_by_cached_key(|(name, account, _)| (name.to_lowercase(), *account));
    let body = teams
        .into_iter()
        .map(|(_, account, team)| with_account(team, account))
        .collect::<Result<Vec<_>>>()?;
    Ok(HttpResponse::Ok().json(body))
}

/// `GET /accounts`: the configured accounts.
///
/// `{"accounts": []}` when only `[pagerduty]` is configured (as the Node
/// backend answers for its legacy config); otherwise every account with
/// `isDefault` as configured, like the Node backend: a single account not
/// marked `is_default` is still the one used without `?account=`, but is
/// reported `isDefault: false`.
#[utoipa::path(
    tag = "backstage",
    responses(
        (status = 200, description = "The accounts", body = AccountsEnvelope),
        (status = 401, description = "Missing caller token", body = ErrorsBody),
    ),
    security(("bearer" = []))
)]
#[get("/accounts")]
pub async fn list_accounts(state: web::Data<BackstageState>) -> HttpResponse {
    let accounts = if state.accounts.is_legacy() {
        Vec::new()
    } else {
        state
            .accounts
            .iter()
            .map(|a| AccountEntry {
                id: a.id.clone(),
                is_default: a.marked_default,
            })
            .collect()
    };
    HttpResponse::Ok().json(AccountsEnvelope { accounts })
}

/// `POST /services/{service_id}/incidents` body: what the Backstage card's
/// trigger dialog collects.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"description": "Checkout is failing for EU users", "userName": "guest", "source": "https://backstage.example.com/catalog/default/component/checkout"}))]
pub struct TriggerBody {
    /// What is wrong (the dialog's description), 1 to 1024 characters.
    pub description: String,
    /// The signed-in Backstage user's name, sent as `custom_details.user`.
    #[serde(default)]
    pub user_name: Option<String>,
    /// The affected system (the card sends the page URL); default `clientUrl`.
    #[serde(default)]
    pub source: Option<String>,
    /// The portal page the trigger came from (`client_url` of the event).
    #[serde(default)]
    pub client_url: Option<String>,
    /// `critical`, `error`, `warning` or `info` (default `error`, as the card sends).
    #[serde(default)]
    pub severity: Option<String>,
    /// Merges repeated triggers into one alert; generated when absent.
    #[serde(default)]
    pub dedup_key: Option<String>,
}

impl TriggerBody {
    /// The card's event semantics: severity `error`, class `manual trigger`,
    /// `custom_details.user` (dutycard adds `triggered_by`, the caller).
    fn into_request(self, service_id: String) -> crate::trigger::TriggerRequest {
        let custom_details = self.user_name.map(|user| json!({ "user": user }));
        crate::trigger::TriggerRequest {
            service_id: Some(service_id),
            integration_key: None,
            summary: self.description,
            severity: Some(self.severity.unwrap_or_else(|| "error".to_owned())),
            source: self.source.or_else(|| self.client_url.clone()),
            dedup_key: self.dedup_key,
            component: None,
            group: None,
            class: Some(crate::trigger::DEFAULT_CLASS.to_owned()),
            custom_details,
            links: None,
            client_url: self.client_url,
        }
    }
}

/// `POST /services/{service_id}/incidents`: trigger an incident server-side.
///
/// For updated frontends: instead of posting the integration key from the
/// browser to PagerDuty's Events API, post the card's dialog fields here.
/// dutycard finds the service's Events API v2 key itself (preferring the
/// Backstage `PRO19CT` integration) in the `?account=` account and sends the
/// event to that account's Events host, with the `/v1/incidents` machinery:
/// validation, per-caller and per-key limits, `Idempotency-Key`, retries
/// within `trigger.deadline_ms`. Answers 202 like the Events API.
#[utoipa::path(
    tag = "backstage",
    params(
        ("service_id" = String, Path, description = "PagerDuty service id"),
        ("account" = Option<String>, Query, description = "Account id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Client-chosen request id; repeats return the first answer"),
    ),
    request_body = TriggerBody,
    responses(
        (status = 202, description = "PagerDuty accepted the event", body = crate::trigger::TriggerAccepted),
        (status = 400, description = "Bad field, unknown account, or PagerDuty rejected the event", body = ErrorsBody),
        (status = 401, description = "Missing caller token", body = ErrorsBody),
        (status = 404, description = "No such service", body = ErrorsBody),
        (status = 409, description = "The same Idempotency-Key is still in progress", body = ErrorsBody),
        (status = 422, description = "The service has no Events API v2 integration", body = ErrorsBody),
        (status = 429, description = "Too many triggers; see Retry-After", body = ErrorsBody),
        (status = 502, description = "PagerDuty's answer was unusable; NOT created", body = ErrorsBody),
        (status = 503, description = "PagerDuty unavailable; NOT created", body = ErrorsBody),
        (status = 504, description = "PagerDuty did not answer in time; NOT confirmed", body = ErrorsBody),
    ),
    security(("bearer" = []))
)]
#[post("/services/{service_id}/incidents")]
pub async fn trigger_incident(
    req: HttpRequest,
    state: web::Data<BackstageState>,
    app: web::Data<crate::state::AppState>,
    caller: crate::auth::Caller,
    service_id: web::Path<String>,
    crate::extract::Json(body): crate::extract::Json<TriggerBody>,
) -> Result<HttpResponse> {
    let params = Params::parse(&req)?;
    let account = params.account(&state)?;
    let id = service_id.into_inner();
    check_service_id(&id)?;
    let key = req
        .headers()
        .get(crate::routes::incidents::IDEMPOTENCY_KEY)
        .map(|v| v.to_str().unwrap_or("").to_owned());
    // The trigger has its own deadline (trigger.deadline_ms) and runs its
    // delivery in a task a hang-up cannot cancel.
    let outcome = app
        .trigger
        .trigger(account, &caller, body.into_request(id), key.as_deref())
        .await;
    let mut response = match &outcome.result {
        Ok(accepted) => HttpResponse::Accepted().json(accepted),
        Err(e) => actix_web::ResponseError::error_response(e),
    };
    if outcome.replayed {
        response.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("idempotent-replayed"),
            actix_web::http::header::HeaderValue::from_static("true"),
        );
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oncall(level: u32, id: &str, name: &str) -> Oncall {
        serde_json::from_value(json!({
            "escalation_policy": {"id": "PEP", "type": "escalation_policy_reference"},
            "escalation_level": level,
            "user": {"id": id, "name": name, "type": "user"},
        }))
        .unwrap()
    }

    #[test]
    fn the_cards_trigger_body_maps_to_the_cards_event() {
        let body: TriggerBody = serde_json::from_value(json!({
            "description": "Checkout is failing",
            "userName": "guest",
            "clientUrl": "https://backstage.example.com/catalog/checkout",
        }))
        .unwrap();
        let request = body.into_request("PABC123".to_owned());
        assert_eq!(request.service_id.as_deref(), Some("PABC123"));
        assert_eq!(request.integration_key, None);
        assert_eq!(request.summary, "Checkout is failing");
        assert_eq!(request.class.as_deref(), Some("manual trigger"));
        assert_eq!(
            request.severity.as_deref(),
            Some("error"),
            "the card's severity"
        );
        assert_eq!(request.custom_details, Some(json!({"user": "guest"})));
        let page = "https://backstage.example.com/catalog/checkout";
        assert_eq!(request.client_url.as_deref(), Some(page));
        assert_eq!(
            request.source.as_deref(),
            Some(page),
            "source defaults to clientUrl"
        );
        assert_eq!(
            request.dedup_key, None,
            "generated by the trigger machinery"
        );

        // Explicit fields win; no userName, no custom_details.
        let body: TriggerBody = serde_json::from_value(json!({
            "description": "x",
            "source": "checkout-api",
            "clientUrl": "https://backstage.example.com/p",
            "severity": "critical",
            "dedupKey": "k-1",
        }))
        .unwrap();
        let request = body.into_request("P1".to_owned());
        assert_eq!(request.source.as_deref(), Some("checkout-api"));
        assert_eq!(
            request.client_url.as_deref(),
            Some("https://backstage.example.com/p")
        );
        assert_eq!(request.severity.as_deref(), Some("critical"));
        assert_eq!(request.dedup_key.as_deref(), Some("k-1"));
        assert_eq!(request.custom_details, None);

        // Neither source nor clientUrl: left to the trigger's defaults.
        let body: TriggerBody = serde_json::from_value(json!({"description": "x"})).unwrap();
        let request = body.into_request("P1".to_owned());
        assert_eq!((request.source, request.client_url), (None, None));

        // The card's field names only (camelCase, nothing else).
        assert!(
            serde_json::from_value::<TriggerBody>(json!({"description": "x", "user_name": "g"}))
                .is_err()
        );
    }

    #[test]
    fn lowest_non_empty_level_sorted_and_deduplicated() {
        // Level 1 is empty here: level 2 is shown, not level 3.
        let a = vec![
            oncall(3, "P3", "Zed"),
            oncall(2, "P2", "Bob"),
            oncall(2, "P1", "Alice"),
            oncall(2, "P2", "Bob"),
        ];
        let b = vec![oncall(1, "P1", "Alice"), oncall(2, "P9", "Nope")];
        let users = merge_oncall_users([a.as_slice(), b.as_slice()]);
        let ids: Vec<&str> = users.iter().map(|u| u.id.as_str()).collect();
        assert_eq!(ids, ["P1", "P2"]);
        assert!(merge_oncall_users([[].as_slice()]).is_empty());
    }
}
