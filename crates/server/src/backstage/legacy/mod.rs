//! A read-only PagerDuty REST passthrough for the legacy community frontend
//! (`@backstage/plugin-pagerduty` 0.6.8).
//!
//! That frontend calls PagerDuty's own REST paths through Backstage's proxy,
//! so the proxy holds a PagerDuty token and every view is a PagerDuty call.
//! Pointed at this prefix instead (`backstage.legacy_prefix`, default
//! `/pagerduty-rest`), its five GETs are answered from dutycard's caches in
//! PagerDuty's own shapes, behind dutycard's caller auth, and the PagerDuty
//! token stays in dutycard:
//!
//! | the frontend's call | answer |
//! |---|---|
//! | `GET /services?query=KEY&include[]=…` | `{"services": [service]}` (the service owning that key; else a name filter) |
//! | `GET /services/{id}?include[]=…` | `{"service": …}` |
//! | `GET /incidents?service_ids[]=…&statuses[]=triggered&statuses[]=acknowledged` | `{"incidents": […]}` |
//! | `GET /services/{id}/change_events?limit=5` | `{"change_events": […]}` |
//! | `GET /oncalls?include[]=users&escalation_policy_ids[]=…` | `{"oncalls": […]}` (every level, users included) |
//!
//! Anything else under the prefix (another path, another method) is a 404 in
//! PagerDuty's error shape ([`error::RestError`]). Parameters PagerDuty
//! would accept but that change nothing here (`time_zone`, `include[]`,
//! `sort_by=created_at`) are ignored; the ones that would ask for what the
//! caches do not hold (resolved incidents) are a 400 saying so. Integration
//! keys in the services follow `backstage.integration_keys` (an alias by
//! default), as on the other Backstage routes.

pub mod error;

use std::future::Future;
use std::sync::Arc;

use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, get, web};
use serde_json::{Value, json};

use super::envelopes::{json_of, service_json};
use super::params::Params;
use crate::accounts::Account;
use crate::http::deadline;
use crate::http::routes::not_found;
use crate::keys::{AliasError, KeyAliases};
use crate::middleware::auth::require_caller;
use crate::state::AppState;
use error::RestError;

type Result<T> = std::result::Result<T, RestError>;

/// PagerDuty's default page size.
const DEFAULT_LIMIT: usize = 25;
/// PagerDuty's largest page.
const MAX_LIMIT: usize = 100;
/// Most ids one list call may name (each is one cached read).
const MAX_IDS: usize = 20;

/// Registers the passthrough under `prefix`.
pub fn configure(
    prefix: String,
) -> impl FnOnce(&mut utoipa_actix_web::service_config::ServiceConfig) {
    move |cfg| {
        cfg.service(
            utoipa_actix_web::scope(prefix.as_str())
                .wrap(from_fn(require_caller::<RestError>))
                .service(rest_services)
                .service(rest_service)
                .service(rest_incidents)
                .service(rest_change_events)
                .service(rest_oncalls)
                .default_service(web::to(not_found::<RestError>)),
        );
    }
}

/// The query string, the account (`?account=`) and the deadline every
/// handler shares.
struct Request<'a> {
    params: Params,
    account: &'a Arc<Account>,
    state: &'a AppState,
}

impl<'a> Request<'a> {
    fn parse(req: &HttpRequest, state: &'a AppState) -> Result<Self> {
        let params = Params::from_query(req.query_string())
            .map_err(|e| RestError::invalid(format!("invalid query string: {e}")))?;
        let account = state.account(params.first("account"))?;
        Ok(Request {
            params,
            account,
            state,
        })
    }

    async fn within<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        deadline::within(self.state.request_deadline, Box::pin(work)).await?
    }

    /// `name` as a number in `1..=MAX_LIMIT` (default [`DEFAULT_LIMIT`]), as PagerDuty reads `limit`.
    fn limit(&self) -> Result<usize> {
        self.number("limit", DEFAULT_LIMIT).and_then(|n| match n {
            0 => Err(RestError::invalid("'limit' must be at least 1")),
            n => Ok(n.min(MAX_LIMIT)),
        })
    }

    fn offset(&self) -> Result<usize> {
        self.number("offset", 0)
    }

    fn number(&self, name: &str, default: usize) -> Result<usize> {
        match self.params.first(name) {
            None => Ok(default),
            Some(text) => text.parse().map_err(|_| {
                RestError::invalid(format!("'{name}' must be a whole number, got `{text}`"))
            }),
        }
    }

    /// The distinct ids of `name[]` (1 to [`MAX_IDS`], each a PagerDuty id).
    fn ids(&self, name: &str) -> Result<Vec<String>> {
        self.params
            .distinct_ids(name, MAX_IDS)
            .map_err(RestError::invalid)
    }

    fn service_json(&self, service: &pagerduty::Service) -> Result<Value> {
        service_json(self.state, &self.account.id, service)
            .map_err(|_| RestError::internal("serialising a service"))
    }
}

fn check_id(id: &str) -> Result<()> {
    if pagerduty::ids::is_pagerduty_id(id) {
        Ok(())
    } else {
        Err(RestError::invalid(format!(
            "'id': {}",
            pagerduty::InvalidId::RULE
        )))
    }
}

/// One page of `items` in PagerDuty's classic pagination envelope.
fn page(name: &str, items: Vec<Value>, offset: usize, limit: usize) -> HttpResponse {
    let more = items.len() > offset.saturating_add(limit);
    let items: Vec<Value> = items.into_iter().skip(offset).take(limit).collect();
    HttpResponse::Ok().json(json!({
        name: items,
        "limit": limit,
        "offset": offset,
        "more": more,
        "total": null,
    }))
}

fn values<T: serde::Serialize>(items: &[T]) -> Result<Vec<Value>> {
    items
        .iter()
        .map(|item| {
            json_of(item).map_err(|_| RestError::internal("serialising a PagerDuty object"))
        })
        .collect()
}

/// `GET /services`: the legacy card finds its service with `query=KEY`.
///
/// `query` that is an integration key (or its alias) answers the service
/// owning it, as PagerDuty's search does; any other `query` filters by
/// name; none lists every service. Paged with `limit`/`offset`.
#[utoipa::path(
    tag = "legacy",
    params(
        ("query" = Option<String>, Query, description = "An integration key (or its alias), or a name filter"),
        ("limit" = Option<u32>, Query, description = "Page size (default 25, at most 100)"),
        ("offset" = Option<u32>, Query, description = "Page offset"),
        ("account" = Option<String>, Query, description = "Account id"),
    ),
    responses(
        (status = 200, description = "`{\"services\": [...], limit, offset, more}`", body = Object),
        (status = 400, description = "Bad parameter or unknown account", body = Object),
    ),
    security(("bearer" = []))
)]
#[get("/services")]
async fn rest_services(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse> {
    let r = Request::parse(&req, &state)?;
    let (limit, offset) = (r.limit()?, r.offset()?);
    let query = r.params.first("query").map(str::to_owned);
    let found = r
        .within(async {
            if let Some(query) = &query
                && looks_like_a_key(query)
                && let Some(service) = service_by_key(&r, query).await?
            {
                return Ok(vec![r.service_json(&service)?]);
            }
            let cards = &r.account.cards;
            let list = match &query {
                Some(query) => {
                    cards
                        .filtered_services(None, Some(query.clone()), MAX_LIMIT as u32)
                        .await
                }
                None => cards.services().await,
            }
            .map_err(|e| RestError::from_card(&cards::CardError::from_list(e, "services")))?;
            list.iter().map(|s| r.service_json(s)).collect()
        })
        .await?;
    Ok(page("services", found, offset, limit))
}

/// Integration keys are 32 letters and digits; aliases have their own form.
fn looks_like_a_key(query: &str) -> bool {
    KeyAliases::is_alias(query)
        || (query.len() >= 20 && query.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// The service owning the key `text` (or the key its alias stands for).
async fn service_by_key(r: &Request<'_>, text: &str) -> Result<Option<pagerduty::Service>> {
    let key = match r.state.keys.key(r.account, text).await {
        Ok(key) => key,
        Err(AliasError::Unknown) => return Ok(None),
        Err(AliasError::Unavailable(why)) => {
            return Err(RestError::from_card(&cards::CardError::Unavailable {
                message: why,
                cause: None,
            }));
        }
    };
    let cards = &r.account.cards;
    let resolved = match cards.resolve_integration_key(&key).await {
        Ok(resolved) => resolved,
        Err(cards::CardError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(RestError::from_card(&e)),
    };
    let service = cards
        .raw_service(&resolved.service_id)
        .await
        .map_err(|e| RestError::from_card(&e))?;
    Ok(Some(pagerduty::Service::clone(&service.value)))
}

/// `GET /services/{id}`: one service, integrations and escalation policy included.
///
/// PagerDuty's service object from the card cache; `include[]` and
/// `time_zone` are accepted and change nothing.
#[utoipa::path(
    tag = "legacy",
    params(
        ("id" = String, Path, description = "PagerDuty service id"),
        ("account" = Option<String>, Query, description = "Account id"),
    ),
    responses(
        (status = 200, description = "`{\"service\": ...}`", body = Object),
        (status = 404, description = "No such service (PagerDuty's error shape)", body = Object),
    ),
    security(("bearer" = []))
)]
#[get("/services/{id}")]
async fn rest_service(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse> {
    let r = Request::parse(&req, &state)?;
    check_id(&id)?;
    let service = r
        .within(async {
            r.account
                .cards
                .raw_service(&id)
                .await
                .map_err(|e| RestError::from_card(&e))
        })
        .await?;
    Ok(HttpResponse::Ok().json(json!({"service": r.service_json(&service.value)?})))
}

/// `GET /incidents?service_ids[]=…&statuses[]=…`: open incidents of some services.
///
/// Only open statuses (`triggered`, `acknowledged`) are cached: asking for
/// `resolved` (or for no status, which means every status at PagerDuty) is
/// a 400 saying so. Sorted by `created_at` (ascending, PagerDuty's
/// default; `sort_by=created_at:desc` for newest first).
#[utoipa::path(
    tag = "legacy",
    params(
        ("service_ids[]" = Vec<String>, Query, description = "Service ids (1 to 20)"),
        ("statuses[]" = Vec<String>, Query, description = "`triggered` and/or `acknowledged`"),
        ("sort_by" = Option<String>, Query, description = "`created_at` (default) or `created_at:desc`"),
        ("limit" = Option<u32>, Query, description = "Page size (default 25, at most 100)"),
        ("offset" = Option<u32>, Query, description = "Page offset"),
        ("account" = Option<String>, Query, description = "Account id"),
    ),
    responses(
        (status = 200, description = "`{\"incidents\": [...], limit, offset, more}`", body = Object),
        (status = 400, description = "Missing ids, a status that is not open, or a bad parameter", body = Object),
    ),
    security(("bearer" = []))
)]
#[get("/incidents")]
async fn rest_incidents(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse> {
    let r = Request::parse(&req, &state)?;
    let ids = r.ids("service_ids")?;
    let statuses = r.params.all(&["statuses[]", "statuses"]);
    if statuses.is_empty() {
        return Err(RestError::invalid(
            "'statuses[]' is required: this passthrough serves open incidents (statuses[]=triggered&statuses[]=acknowledged)",
        ));
    }
    if let Some(other) = statuses
        .iter()
        .find(|s| !matches!(s.as_str(), "triggered" | "acknowledged"))
    {
        return Err(RestError::invalid(format!(
            "'statuses[]': `{other}` is not served here, only triggered and acknowledged"
        )));
    }
    let newest_first = match r.params.first("sort_by") {
        None | Some("created_at") | Some("created_at:asc") => false,
        Some("created_at:desc") => true,
        Some(other) => {
            return Err(RestError::invalid(format!(
                "'sort_by': `{other}` is not supported, use created_at or created_at:desc"
            )));
        }
    };
    let (limit, offset) = (r.limit()?, r.offset()?);
    let per_service = r
        .within(async {
            futures::future::try_join_all(ids.iter().map(|id| async {
                r.account
                    .cards
                    .raw_open_incidents(id)
                    .await
                    .map(|c| c.value)
                    .map_err(|e| RestError::from_card(&e))
            }))
            .await
        })
        .await?;
    let mut open: Vec<&pagerduty::Incident> = per_service
        .iter()
        .flat_map(|incidents| incidents.iter())
        .filter(|i| statuses.iter().any(|s| s == i.status.as_str()))
        .collect();
    open.sort_by_key(|i| i.created_at);
    if newest_first {
        open.reverse();
    }
    Ok(page("incidents", values(&open)?, offset, limit))
}

/// `GET /services/{id}/change_events`: the service's recent change events.
///
/// Newest first, from the card cache, paged with `limit` (the legacy card
/// asks for 5) and `offset`.
#[utoipa::path(
    tag = "legacy",
    params(
        ("id" = String, Path, description = "PagerDuty service id"),
        ("limit" = Option<u32>, Query, description = "Page size (default 25, at most 100)"),
        ("offset" = Option<u32>, Query, description = "Page offset"),
        ("account" = Option<String>, Query, description = "Account id"),
    ),
    responses(
        (status = 200, description = "`{\"change_events\": [...], limit, offset, more}`", body = Object),
    ),
    security(("bearer" = []))
)]
#[get("/services/{id}/change_events")]
async fn rest_change_events(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse> {
    let r = Request::parse(&req, &state)?;
    check_id(&id)?;
    let (limit, offset) = (r.limit()?, r.offset()?);
    let events = r
        .within(async {
            r.account
                .cards
                .raw_change_events(&id)
                .await
                .map_err(|e| RestError::from_card(&e))
        })
        .await?;
    Ok(page(
        "change_events",
        values(&events.value.newest_first())?,
        offset,
        limit,
    ))
}

/// `GET /oncalls?escalation_policy_ids[]=…`: who is on call for some policies.
///
/// Every on-call entry of the policies (every level, users and schedules
/// included), as PagerDuty lists them, from the card cache.
#[utoipa::path(
    tag = "legacy",
    params(
        ("escalation_policy_ids[]" = Vec<String>, Query, description = "Escalation policy ids (1 to 20)"),
        ("account" = Option<String>, Query, description = "Account id"),
    ),
    responses(
        (status = 200, description = "`{\"oncalls\": [...], limit, offset, more}`", body = Object),
        (status = 400, description = "No policy id, or a bad parameter", body = Object),
    ),
    security(("bearer" = []))
)]
#[get("/oncalls")]
async fn rest_oncalls(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse> {
    let r = Request::parse(&req, &state)?;
    let ids = r.ids("escalation_policy_ids")?;
    let levels = r
        .within(async {
            super::oncall::every_level(r.account, &ids)
                .await
                .map_err(|e| RestError::from_card(&e))
        })
        .await?;
    let oncalls = levels.oncalls();
    let count = oncalls.len().max(1);
    Ok(page("oncalls", values(&oncalls)?, 0, count))
}
