//! `GET /services/{id}` and `GET /services` (by key, filtered, or all).

use actix_web::{HttpRequest, HttpResponse, get, web};

use super::envelopes::{
    ServiceEnvelope, ServicesAnswer, ServicesEnvelope, json_body, service_json,
    service_with_account, to_bytes,
};
use super::error::{BackstageError, ErrorsBody, Op, ReadErrors};
use super::params::{Params, Result, each_account, read_for_service, within};
use crate::keys::AliasError;
use crate::state::AppState;

/// Largest `limit` of the filtered services route (PagerDuty's page size).
const MAX_LIMIT: u32 = 100;

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
        (status = 404, description = "No such service", body = ErrorsBody),
        ReadErrors,
    ),
    security(("bearer" = []))
)]
#[get("")]
pub async fn get_service(
    req: HttpRequest,
    state: web::Data<AppState>,
    service_id: web::Path<String>,
) -> Result<HttpResponse> {
    let (service, account) = read_for_service(
        &req,
        &state,
        service_id,
        Op::GetService,
        |cards, id| async move { cards.raw_service(&id).await },
    )
    .await?;
    service_answer(&req, &state, &account.id, &service)
}

/// `{"service": …}`, rendered once per version of the cached service
/// (the by-key route answers the same body).
fn service_answer(
    req: &HttpRequest,
    state: &AppState,
    account: &str,
    service: &cards::Cached<cards::Kept<pagerduty::Service>>,
) -> Result<HttpResponse> {
    let bytes = state.rendered.bodies.get_or_render(
        "service",
        account,
        &service.value.id,
        &[service.version],
        || {
            to_bytes(&ServiceEnvelope {
                service: service_json(state, account, &service.value)?,
            })
        },
    )?;
    Ok(json_body(req, &bytes))
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
        (status = 200, description = "`{\"service\"}` by key, a bare array when filtered, `{\"services\"}` otherwise", body = ServicesAnswer),
        (status = 400, description = "Bad parameter or unknown account", body = ErrorsBody),
        (status = 404, description = "No service has this integration key", body = ErrorsBody),
        ReadErrors,
    ),
    security(("bearer" = []))
)]
#[get("")]
pub async fn list_services(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse> {
    let params = Params::parse(&req)?;
    if params.has("integration_key") {
        let account = params.account(&state)?;
        let key = params
            .first("integration_key")
            .ok_or_else(|| BackstageError::bad_request("'integration_key' must not be empty"))?
            .to_owned();
        let service = within(&state, Op::GetService, async {
            // An alias (what these answers show) stands for its key.
            let key = state.keys.key(account, &key).await.map_err(|e| match e {
                AliasError::Unknown => BackstageError::not_found(Op::GetService),
                AliasError::Unavailable(why) => BackstageError::with_status(
                    actix_web::http::StatusCode::BAD_GATEWAY,
                    format!("Failed to get service. {why}"),
                ),
            })?;
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
        return service_answer(&req, &state, &account.id, &service);
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
        let args = format!("{team:?}\u{0}{query:?}\u{0}{limit}");
        let (services, version) = within(&state, Op::GetServices, async {
            account
                .cards
                .filtered_services_versioned(team, query, limit)
                .await
                .map_err(|e| BackstageError::from_pagerduty(Op::GetServices, &e))
        })
        .await?;
        let bytes = state.rendered.bodies.get_or_render(
            "services-filtered",
            &account.id,
            &args,
            &[version],
            || {
                let body = services
                    .iter()
                    .map(|s| service_with_account(&state, s, &account.id))
                    .collect::<Result<Vec<_>>>()?;
                to_bytes(&body)
            },
        )?;
        return Ok(json_body(&req, &bytes));
    }
    let lists = each_account(&state, &params, Op::GetServices, |account| async {
        account
            .cards
            .services_versioned()
            .await
            .map_err(|e| BackstageError::from_pagerduty(Op::GetServices, &e))
    })
    .await?;
    let (accounts, versions) = list_key(&lists);
    let bytes =
        state
            .rendered
            .bodies
            .get_or_render("services", "", &accounts, &versions, || {
                let mut services = Vec::new();
                for (account, (list, _)) in &lists {
                    for service in list.iter() {
                        services.push(service_with_account(&state, service, account)?);
                    }
                }
                to_bytes(&ServicesEnvelope { services })
            })?;
    Ok(json_body(&req, &bytes))
}

/// What an all-accounts list body is kept under: the accounts it covers
/// and the version of each account's list.
pub(super) fn list_key<T>(lists: &[(&str, cards::Versioned<T>)]) -> (String, Vec<u64>) {
    let accounts = lists
        .iter()
        .map(|(account, _)| *account)
        .collect::<Vec<_>>()
        .join(",");
    let versions = lists.iter().map(|(_, (_, version))| *version).collect();
    (accounts, versions)
}
