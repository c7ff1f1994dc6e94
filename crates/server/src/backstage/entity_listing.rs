//! `POST /mapping/entities`: the admin page's paged, filtered, sorted list
//! of catalog entities with their PagerDuty services
//! ([`crate::mappings::entity_listing`]).

use actix_web::{HttpRequest, HttpResponse, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{BackstageError, ErrorsBody, Op, ReadErrors};
use super::params::{Params, Result, each_account};
use super::store_errors::within_deadline;
use crate::http::extract::Json;
use crate::mappings::entity_listing::{
    EntityQuery, EntityRow, EntityStatus, SortColumn, SortDirection,
};
use crate::state::AppState;

/// `filters` of the body; each optional, `""` meaning no filter.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EntityFilters {
    /// A case-insensitive part of the entity's name.
    #[serde(default)]
    pub name: String,
    /// A case-insensitive part of the entity's owner (or service's team).
    #[serde(default)]
    pub team_name: String,
    /// A case-insensitive part of the service's name.
    #[serde(default)]
    pub service_name: String,
    /// `InSync`, `OutOfSync`, `NotMapped` or `ErrorWhenFetchingService`.
    #[serde(default)]
    pub status: String,
    /// A case-insensitive part of the service's account id.
    #[serde(default)]
    pub account: String,
}

/// `sort` of the body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntitySort {
    pub column: SortColumn,
    pub direction: SortDirection,
}

/// `POST /mapping/entities` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntitiesBody {
    /// Rows to skip (default 0).
    #[serde(default)]
    pub offset: u64,
    /// Rows to answer, 1 or more (default 10).
    #[serde(default = "default_limit")]
    pub limit: u64,
    #[serde(default)]
    pub filters: Option<EntityFilters>,
    pub sort: Option<EntitySort>,
    /// The account whose services are joined (else `?account=`, else every
    /// account).
    #[serde(default)]
    pub account: Option<String>,
}

fn default_limit() -> u64 {
    10
}

/// `POST /mapping/entities` answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntitiesAnswer {
    pub entities: Vec<EntityRow>,
    /// Rows that passed the filters (the page is a slice of them).
    pub total_count: usize,
}

/// `POST /mapping/entities`: catalog entities and their services, paged.
///
/// Every `Component` of the catalog (`backstage.catalog_url`, at most 10,000) with the
/// service its `pagerduty.com/service-id` (or integration key) annotation
/// or a stored mapping names, its status (`InSync`, `OutOfSync`,
/// `NotMapped`), filtered (`filters.name`/`teamName`/`serviceName`/`account`:
/// case-insensitive parts; `status`: exact), sorted (`sort.column` ∈ name,
/// team (by owner), serviceName, status, account) and paged (`offset`,
/// `limit`); `totalCount` counts the filtered rows. The Node backend's shape:
/// `system`, `owner` and `lifecycle` are JSON-stringified (`"\"shop\""`).
/// Services come from the cached services lists (no PagerDuty call per
/// entity).
#[utoipa::path(
    tag = "backstage",
    params(("account" = Option<String>, Query, description = "Account id (the body's `account` wins; every account when both are absent)")),
    request_body(content = EntitiesBody, example = json!({"offset": 0, "limit": 10, "filters": {"name": "", "teamName": "", "serviceName": "", "status": ""}, "sort": {"column": "name", "direction": "ascending"}})),
    responses(
        (status = 200, description = "One page of entities", body = EntitiesAnswer),
        (status = 400, description = "Bad `offset`, `limit`, `sort`, `filters` or account (named)", body = ErrorsBody),
        (status = 501, description = "No catalog configured (`backstage.catalog_url`)", body = ErrorsBody),
        (status = 503, description = "The store is unavailable (`store_unavailable`)", body = ErrorsBody),
        ReadErrors,
    ),
    security(("bearer" = []))
)]
#[post("/mapping/entities")]
pub async fn list_entities(
    req: HttpRequest,
    state: web::Data<AppState>,
    Json(body, _): Json<EntitiesBody, BackstageError>,
) -> Result<HttpResponse> {
    let query = query_of(&body)?;
    let mut params = Params::parse(&req)?;
    if let Some(account) = body
        .account
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty())
    {
        params = params.with_account(account);
    }
    let lists = each_account(&state, &params, Op::GetServices, |account| async {
        account
            .cards
            .services()
            .await
            .map_err(|e| BackstageError::from_pagerduty(Op::GetServices, &e))
    })
    .await?;
    let accounts: Vec<(&str, &[pagerduty::Service])> = lists
        .iter()
        .map(|(account, services)| (*account, services.as_slice()))
        .collect();
    let page = within_deadline(&state, state.mappings.entity_listing(&accounts, &query))
        .await?
        .map_err(BackstageError::from)?;
    Ok(HttpResponse::Ok().json(EntitiesAnswer {
        entities: page.entities,
        total_count: page.total_count,
    }))
}

/// The checks serde cannot make, each naming its field.
fn query_of(body: &EntitiesBody) -> Result<EntityQuery> {
    if body.limit == 0 {
        return Err(BackstageError::bad_request(
            "'limit' must be a number greater than 0",
        ));
    }
    let filters = body.filters.as_ref();
    let text = |f: fn(&EntityFilters) -> &String| filters.map(f).cloned().unwrap_or_default();
    let status = text(|f| &f.status);
    let status = match status.trim() {
        "" => None,
        s => Some(EntityStatus::parse(s).ok_or_else(|| {
            BackstageError::bad_request(format!(
                "'filters.status' must be one of: InSync, OutOfSync, NotMapped, ErrorWhenFetchingService (not `{s}`)"
            ))
        })?),
    };
    Ok(EntityQuery {
        offset: usize::try_from(body.offset).unwrap_or(usize::MAX),
        limit: usize::try_from(body.limit).unwrap_or(usize::MAX),
        name: text(|f| &f.name),
        team_name: text(|f| &f.team_name),
        service_name: text(|f| &f.service_name),
        status,
        account: text(|f| &f.account),
        sort: body.sort.as_ref().map(|s| (s.column, s.direction)),
    })
}
