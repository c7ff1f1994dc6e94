//! The entity-mapping routes of the Node backend (its admin page and the
//! catalog processor call them): which catalog entity each PagerDuty
//! service belongs to, kept in the store ([`crate::mappings`]).

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::envelopes::to_bytes_sized;
use super::error::{BackstageError, ErrorsBody, Op, ReadErrors};
use super::params::{Params, Result, each_account};
use super::store_errors::within_deadline;
use crate::accounts::Account;
use crate::http::extract::Json;
use crate::mappings::listing::{MappingStatus, ServiceMappingRow};
use crate::mappings::{BulkRow, MapRequest, MappingError};
use crate::state::AppState;

/// `POST /mapping/entity` body (and one row of the bulk form).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MappingBody {
    /// `kind:namespace/name`; empty removes the service's mapping.
    #[serde(default)]
    pub entity_ref: String,
    pub service_id: String,
    /// A key or its `dcak_` alias; empty: the service's Backstage key.
    #[serde(default)]
    pub integration_key: Option<String>,
    /// The PagerDuty account (else `?account=`, else the default).
    #[serde(default)]
    pub account: Option<String>,
    /// Sent by the admin page; ignored (the status is computed).
    #[serde(default)]
    pub status: Option<String>,
}

/// What `POST /mapping/entity` answers (and a bulk row that succeeded).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoredMapping {
    pub id: String,
    pub entity_ref: String,
    /// Shown by `backstage.integration_keys` (`""` when omitted or none).
    pub integration_key: String,
    pub service_id: String,
    pub status: MappingStatus,
    pub account: String,
}

/// A stored row, as the lookups answer it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MappingRow {
    pub index: i64,
    pub id: String,
    pub service_id: String,
    pub integration_key: String,
    pub entity_ref: String,
    /// When it was written, epoch milliseconds.
    pub processed_date: i64,
    pub account: String,
}

/// `{"mapping": …}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MappingEnvelope {
    pub mapping: MappingRow,
}

/// `{"mappings": […]}` of `GET /mapping/entity`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MappingsEnvelope<'a> {
    pub mappings: Vec<ServiceMappingRow<'a>>,
    /// Present when the configured catalog could not be read: the statuses
    /// then come from the store alone (`InSync` when mapped, else
    /// `NotMapped`). Not in the Node backend's answer; its frontend ignores it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalog_error: Option<String>,
}

/// `POST /mapping/entities/bulk` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct BulkBody {
    pub mappings: Vec<MappingBody>,
}

/// A bulk row left unchanged.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SkippedRow {
    pub entity_ref: String,
    pub service_id: String,
    pub reason: String,
}

/// A bulk row that failed.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailedRow {
    pub entity_ref: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_id: Option<String>,
    pub error: String,
}

/// `POST /mapping/entities/bulk` answer.
#[derive(Debug, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BulkAnswer {
    pub success: Vec<StoredMapping>,
    pub skipped: Vec<SkippedRow>,
    pub errors: Vec<FailedRow>,
    pub total: usize,
    pub success_count: usize,
    pub skipped_count: usize,
    pub error_count: usize,
}

fn shown_key(state: &AppState, m: &store::Mapping) -> String {
    m.integration_key
        .as_ref()
        .and_then(|k| state.keys.shown(&m.account, k.expose()))
        .unwrap_or_default()
}

fn stored(state: &AppState, m: &store::Mapping) -> StoredMapping {
    StoredMapping {
        id: m.id.clone(),
        entity_ref: m.entity_ref.clone(),
        integration_key: shown_key(state, m),
        service_id: m.service_id.clone(),
        status: MappingStatus::InSync,
        account: m.account.clone(),
    }
}

fn row(state: &AppState, m: &store::Mapping) -> MappingRow {
    MappingRow {
        index: m.index,
        id: m.id.clone(),
        service_id: m.service_id.clone(),
        integration_key: shown_key(state, m),
        entity_ref: m.entity_ref.clone(),
        processed_date: m.processed_at_ms,
        account: m.account.clone(),
    }
}

/// The account of a body (its `account`, else `?account=`, else the default).
fn account_of<'a>(
    state: &'a AppState,
    params: &Params,
    body_account: Option<&str>,
) -> Result<&'a Arc<Account>> {
    match body_account.map(str::trim).filter(|a| !a.is_empty()) {
        Some(id) => Ok(state.account(Some(id))?),
        None => params.account(state),
    }
}

/// The account id a lookup is limited to (`?account=`), `None` for any.
fn account_id<'a>(state: &'a AppState, req: &HttpRequest) -> Result<Option<&'a str>> {
    Ok(Params::parse(req)?
        .account_filter(state)?
        .map(|a| a.id.as_str()))
}

fn request_of(body: MappingBody) -> MapRequest {
    MapRequest {
        entity_ref: body.entity_ref,
        service_id: body.service_id,
        integration_key: body.integration_key,
    }
}

/// `POST /mapping/entity`: map a service to an entity.
///
/// Replaces the service's previous mapping (one service, one entity; an
/// entity may own several services). The service must exist in the
/// account; without `integrationKey` its Backstage integration's key is
/// stored. An empty `entityRef` removes the mapping (answered `NotMapped`).
/// Answers after the commit.
#[utoipa::path(
    tag = "backstage",
    params(("account" = Option<String>, Query, description = "Account id (the body's `account` wins)")),
    request_body(content = MappingBody, example = json!({"entityRef": "component:default/checkout-api", "serviceId": "PSVC001", "integrationKey": "", "account": ""})),
    responses(
        (status = 200, description = "Stored", body = StoredMapping),
        (status = 400, description = "Bad entityRef, serviceId, key alias or account", body = ErrorsBody),
        (status = 404, description = "No such service in the account", body = ErrorsBody),
        (status = 503, description = "The store is unavailable (`store_unavailable`); nothing stored", body = ErrorsBody),
        ReadErrors,
    ),
    security(("bearer" = []))
)]
#[post("/mapping/entity")]
pub async fn store_mapping(
    req: HttpRequest,
    state: web::Data<AppState>,
    Json(body, _): Json<MappingBody, BackstageError>,
) -> Result<HttpResponse> {
    let params = Params::parse(&req)?;
    let account = account_of(&state, &params, body.account.as_deref())?;
    if body.entity_ref.trim().is_empty() {
        let service_id = body.service_id.clone();
        let removed = within_deadline(&state, async {
            match state.mappings.unmap(&service_id, None).await {
                Ok(m) => Ok(Some(m)),
                Err(MappingError::NotFound(_)) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await?;
        return Ok(HttpResponse::Ok().json(StoredMapping {
            id: removed.map(|m| m.id).unwrap_or_default(),
            entity_ref: String::new(),
            integration_key: String::new(),
            service_id,
            status: MappingStatus::NotMapped,
            account: account.id.clone(),
        }));
    }
    let mapping = within_deadline(&state, state.mappings.map(account, request_of(body))).await?;
    Ok(HttpResponse::Ok().json(stored(&state, &mapping)))
}

/// `POST /mapping/entities/bulk`: map many services at once.
///
/// Services already mapped are skipped (left unchanged), bad rows reported
/// in `errors`, the rest stored in transactions of 200 rows; each row is
/// answered. Rows may name different accounts.
#[utoipa::path(
    tag = "backstage",
    params(("account" = Option<String>, Query, description = "Account of rows without `account`")),
    request_body = BulkBody,
    responses(
        (status = 200, description = "Every row's outcome", body = BulkAnswer),
        (status = 400, description = "`mappings` is not an array of mappings", body = ErrorsBody),
        (status = 503, description = "The store is unavailable (`store_unavailable`); chunks before the failure stay stored, a re-run skips them", body = ErrorsBody),
        ReadErrors,
    ),
    security(("bearer" = []))
)]
#[post("/mapping/entities/bulk")]
pub async fn store_mappings_bulk(
    req: HttpRequest,
    state: web::Data<AppState>,
    Json(body, _): Json<BulkBody, BackstageError>,
) -> Result<HttpResponse> {
    let params = Params::parse(&req)?;
    let total = body.mappings.len();
    // Rows grouped by account, in order; an unknown account fails its row.
    let mut answer = BulkAnswer {
        total,
        ..BulkAnswer::default()
    };
    let mut groups: Vec<(&Arc<Account>, Vec<MapRequest>)> = Vec::new();
    for row in body.mappings {
        match account_of(&state, &params, row.account.as_deref()) {
            Ok(account) => match groups.iter_mut().find(|(a, _)| Arc::ptr_eq(a, account)) {
                Some((_, rows)) => rows.push(request_of(row)),
                None => groups.push((account, vec![request_of(row)])),
            },
            Err(e) => answer.errors.push(FailedRow {
                entity_ref: row.entity_ref,
                service_id: Some(row.service_id),
                error: e.message,
            }),
        }
    }
    for (account, rows) in groups {
        let outcomes = within_deadline(&state, state.mappings.map_bulk(account, rows)).await?;
        for outcome in outcomes {
            match outcome {
                BulkRow::Created(m) => answer.success.push(stored(&state, &m)),
                BulkRow::Skipped {
                    entity_ref,
                    service_id,
                    reason,
                } => answer.skipped.push(SkippedRow {
                    entity_ref,
                    service_id,
                    reason,
                }),
                BulkRow::Failed {
                    entity_ref,
                    service_id,
                    error,
                } => answer.errors.push(FailedRow {
                    entity_ref,
                    service_id,
                    error,
                }),
            }
        }
    }
    answer.success_count = answer.success.len();
    answer.skipped_count = answer.skipped.len();
    answer.error_count = answer.errors.len();
    Ok(HttpResponse::Ok().json(answer))
}

/// `GET /mapping/entity`: every PagerDuty service with its mapping.
///
/// One row per service of `?account=` (or of every account), sorted by
/// service name: the entity it is mapped to, its status, name, first team,
/// escalation policy, URL and account. The services come from the cached
/// services lists; the status compares the stored row with the catalog's
/// annotated entities (`backstage.catalog_url`): `InSync` when the annotated entity
/// is the stored one (or there is no row and an entity is annotated with
/// the service), `OutOfSync` when the row names another entity, `NotMapped`
/// when neither. A catalog that cannot be read does not fail the listing:
/// the store alone decides and `catalogError` says why. `ETag` /
/// `If-None-Match` give 304 (no body) while nothing shown changed.
#[utoipa::path(
    tag = "backstage",
    params(
        ("account" = Option<String>, Query, description = "Account id (every account when absent or empty)"),
        ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer"),
    ),
    responses(
        (status = 200, description = "Every service and its mapping", body = MappingsEnvelope, headers(
            ("ETag" = String, description = "Weak validator of the body"),
            ("Cache-Control" = String, description = "`private, no-cache`: revalidate with If-None-Match (a 304 when unchanged)"),
        )),
        (status = 304, description = "Not modified since the ETag in If-None-Match"),
        (status = 400, description = "Unknown account", body = ErrorsBody),
        (status = 503, description = "The store is unavailable (`store_unavailable`)", body = ErrorsBody),
        ReadErrors,
    ),
    security(("bearer" = []))
)]
#[get("/mapping/entity")]
pub async fn list_mappings(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse> {
    let params = Params::parse(&req)?;
    let lists = each_account(&state, &params, Op::GetServices, |account| async {
        account
            .cards
            .services_versioned()
            .await
            .map_err(|e| BackstageError::from_pagerduty(Op::GetServices, &e))
    })
    .await?;
    let (names, mut versions) = super::services::list_key(&lists);
    let accounts: Vec<(&str, &[pagerduty::Service])> = lists
        .iter()
        .map(|(account, (services, _))| (*account, services.as_slice()))
        .collect();
    let listing = within_deadline(&state, state.mappings.service_listing(&accounts)).await?;
    // The same services lists, store revision and catalog: the body
    // rendered before (2,000 rows are 634 kB of JSON), with its ETag; else
    // serialized straight from the borrowed rows (no string copied but the
    // shown keys) into a buffer sized from the last body.
    versions.push(listing.fingerprint());
    let body = state
        .rendered
        .bodies
        .body("mapping/entity", "", &names, &versions, |last| {
            to_bytes_sized(
                &MappingsEnvelope {
                    mappings: listing.rows(&accounts, &state.keys),
                    catalog_error: listing.catalog_error.clone(),
                },
                last + last / 16,
            )
        })?;
    Ok(crate::http::cache::body_response(&req, &body))
}

/// `GET /mapping/entity/{type}/{namespace}/{name}`: an entity's mapping.
///
/// The entity's first stored mapping (an entity may own several services;
/// `/v1` entity cards read them all), of `?account=` when given. 404 when
/// none.
#[utoipa::path(
    tag = "backstage",
    params(
        ("type" = String, Path, description = "Entity kind, e.g. component"),
        ("namespace" = String, Path, description = "Entity namespace, e.g. default"),
        ("name" = String, Path, description = "Entity name"),
        ("account" = Option<String>, Query, description = "Account id: only a mapping of that account (any account when absent or empty)"),
    ),
    responses(
        (status = 200, description = "The mapping", body = MappingEnvelope),
        (status = 400, description = "Not an entity reference, or unknown account", body = ErrorsBody),
        (status = 401, description = "Missing caller token", body = ErrorsBody),
        (status = 404, description = "No mapping for this entity", body = ErrorsBody),
        (status = 503, description = "The store is unavailable (`store_unavailable`)", body = ErrorsBody),
    ),
    security(("bearer" = []))
)]
#[get("/mapping/entity/{type}/{namespace}/{name}")]
pub async fn mapping_of_entity(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse> {
    let account = account_id(&state, &req)?;
    let (kind, namespace, name) = path.into_inner();
    let found = within_deadline(
        &state,
        state.mappings.of_entity(&kind, &namespace, &name, account),
    )
    .await?;
    // of_entity answers NotFound rather than an empty list.
    let first = found
        .first()
        .ok_or_else(|| BackstageError::internal("an entity's mappings were empty"))?;
    Ok(HttpResponse::Ok().json(MappingEnvelope {
        mapping: row(&state, first),
    }))
}

/// `GET /mapping/entity/service/{service_id}`: a service's mapping.
///
/// The stored row (the catalog processor asks which entity owns a
/// service). 404 when the service is not mapped (in `?account=`, when
/// given).
#[utoipa::path(
    tag = "backstage",
    params(
        ("service_id" = String, Path, description = "PagerDuty service id"),
        ("account" = Option<String>, Query, description = "Account id: only a mapping of that account (any account when absent or empty)"),
    ),
    responses(
        (status = 200, description = "The mapping", body = MappingEnvelope),
        (status = 400, description = "Not a PagerDuty id, or unknown account", body = ErrorsBody),
        (status = 401, description = "Missing caller token", body = ErrorsBody),
        (status = 404, description = "The service is not mapped", body = ErrorsBody),
        (status = 503, description = "The store is unavailable (`store_unavailable`)", body = ErrorsBody),
    ),
    security(("bearer" = []))
)]
#[get("/mapping/entity/service/{service_id}")]
pub async fn mapping_of_service(
    req: HttpRequest,
    state: web::Data<AppState>,
    service_id: web::Path<String>,
) -> Result<HttpResponse> {
    let account = account_id(&state, &req)?;
    let mapping = within_deadline(&state, state.mappings.of_service(&service_id, account)).await?;
    Ok(HttpResponse::Ok().json(MappingEnvelope {
        mapping: row(&state, &mapping),
    }))
}

/// `DELETE /mapping/entity/service/{service_id}`: unmap a service.
///
/// Answers the removed row after the commit; 404 when it was not mapped
/// (with `?account=`: when it was not mapped in that account; a mapping of
/// another account is left alone).
#[utoipa::path(
    tag = "backstage",
    params(
        ("service_id" = String, Path, description = "PagerDuty service id"),
        ("account" = Option<String>, Query, description = "Account id: only a mapping of that account (any account when absent or empty)"),
    ),
    responses(
        (status = 200, description = "Removed; the row it was", body = MappingEnvelope),
        (status = 400, description = "Not a PagerDuty id, or unknown account", body = ErrorsBody),
        (status = 401, description = "Missing caller token", body = ErrorsBody),
        (status = 404, description = "The service was not mapped", body = ErrorsBody),
        (status = 503, description = "The store is unavailable (`store_unavailable`); nothing removed", body = ErrorsBody),
    ),
    security(("bearer" = []))
)]
#[delete("/mapping/entity/service/{service_id}")]
pub async fn unmap_service(
    req: HttpRequest,
    state: web::Data<AppState>,
    service_id: web::Path<String>,
) -> Result<HttpResponse> {
    let account = account_id(&state, &req)?;
    let mapping = within_deadline(&state, state.mappings.unmap(&service_id, account)).await?;
    Ok(HttpResponse::Ok().json(MappingEnvelope {
        mapping: row(&state, &mapping),
    }))
}
