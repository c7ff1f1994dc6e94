//! `GET/POST/DELETE /dependencies/service/{id}` and
//! `POST /services/{id}/integration/{vendorId}`: PagerDuty writes the Node
//! backend's admin page and catalog processor make.

use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{BackstageError, ErrorsBody, Op, ReadErrors};
use super::params::{Params, Result, check_service_id, within};
use crate::dependencies;
use crate::http::extract::Json;
use crate::state::AppState;

/// `{"relationships": […]}`, as PagerDuty answers it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RelationshipsEnvelope {
    #[schema(value_type = Vec<Object>)]
    pub relationships: Vec<pagerduty::ServiceDependency>,
}

/// `GET /dependencies/service/{service_id}`: the service's dependencies.
///
/// PagerDuty's relationships of the service, both directions
/// (`supporting_service` is depended on by `dependent_service`).
#[utoipa::path(
    tag = "backstage",
    params(
        ("service_id" = String, Path, description = "PagerDuty service id"),
        ("account" = Option<String>, Query, description = "Account id"),
    ),
    responses(
        (status = 200, description = "The relationships", body = RelationshipsEnvelope),
        (status = 400, description = "Bad id or unknown account", body = ErrorsBody),
        (status = 404, description = "No such service", body = ErrorsBody),
        ReadErrors,
    ),
    security(("bearer" = []))
)]
#[get("/dependencies/service/{service_id}")]
pub async fn list_dependencies(
    req: HttpRequest,
    state: web::Data<AppState>,
    service_id: web::Path<String>,
) -> Result<HttpResponse> {
    let account = Params::parse(&req)?.account(&state)?;
    check_service_id(&service_id)?;
    let op = Op::Dependencies;
    let relationships = within(&state, op, async {
        dependencies::list(account, &service_id)
            .await
            .map_err(|e| BackstageError::from_pagerduty(op, &e))
    })
    .await?;
    Ok(HttpResponse::Ok().json(RelationshipsEnvelope { relationships }))
}

async fn change(
    req: HttpRequest,
    state: web::Data<AppState>,
    service_id: String,
    supporting: Vec<String>,
    associate: bool,
) -> Result<HttpResponse> {
    let account = Params::parse(&req)?.account(&state)?;
    check_service_id(&service_id)?;
    if supporting.is_empty() {
        return Err(BackstageError::bad_request(
            "'dependencies' must be provided as part of the request body (a non-empty array of service ids)",
        ));
    }
    for (i, id) in supporting.iter().enumerate() {
        if check_service_id(id).is_err() {
            return Err(BackstageError::bad_request(format!(
                "[{i}] must be a PagerDuty service id (1 to 64 letters and digits)"
            )));
        }
    }
    let op = Op::ChangeDependencies;
    within(&state, op, async {
        dependencies::change(account, &service_id, &supporting, associate)
            .await
            .map_err(|e| BackstageError::from_pagerduty(op, &e))
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("OK"))
}

/// `POST /dependencies/service/{service_id}`: the service depends on these.
///
/// Body: a JSON array of the supporting services' ids. All or nothing;
/// existing dependencies are kept. Answers `OK` (text).
#[utoipa::path(
    tag = "backstage",
    params(
        ("service_id" = String, Path, description = "The dependent service"),
        ("account" = Option<String>, Query, description = "Account id"),
    ),
    request_body(content = Vec<String>, example = json!(["PSVC005"])),
    responses(
        (status = 200, description = "Associated (body `OK`)", body = String, content_type = "text/plain"),
        (status = 400, description = "No or bad ids, a cycle, or unknown account", body = ErrorsBody),
        (status = 404, description = "No such service", body = ErrorsBody),
        ReadErrors,
    ),
    security(("bearer" = []))
)]
#[post("/dependencies/service/{service_id}")]
pub async fn add_dependencies(
    req: HttpRequest,
    state: web::Data<AppState>,
    service_id: web::Path<String>,
    Json(body, _): Json<Vec<String>, BackstageError>,
) -> Result<HttpResponse> {
    change(req, state, service_id.into_inner(), body, true).await
}

/// `DELETE /dependencies/service/{service_id}`: remove these dependencies.
///
/// Body: a JSON array of the supporting services' ids (a body on a DELETE,
/// like the Node backend). Answers `OK` (text).
#[utoipa::path(
    tag = "backstage",
    params(
        ("service_id" = String, Path, description = "The dependent service"),
        ("account" = Option<String>, Query, description = "Account id"),
    ),
    request_body(content = Vec<String>, example = json!(["PSVC005"])),
    responses(
        (status = 200, description = "Removed (body `OK`)", body = String, content_type = "text/plain"),
        (status = 400, description = "No or bad ids, or unknown account", body = ErrorsBody),
        (status = 404, description = "No such service", body = ErrorsBody),
        ReadErrors,
    ),
    security(("bearer" = []))
)]
#[delete("/dependencies/service/{service_id}")]
pub async fn remove_dependencies(
    req: HttpRequest,
    state: web::Data<AppState>,
    service_id: web::Path<String>,
    Json(body, _): Json<Vec<String>, BackstageError>,
) -> Result<HttpResponse> {
    change(req, state, service_id.into_inner(), body, false).await
}

/// `POST /services/{service_id}/integration/{vendor_id}`: create an integration.
///
/// Creates an integration of the vendor (`PRO19CT`: Backstage) on the
/// service and answers its key as a bare JSON string, shown by
/// `backstage.integration_keys` (an alias by default; `""` when omitted).
#[utoipa::path(
    tag = "backstage",
    params(
        ("service_id" = String, Path, description = "PagerDuty service id"),
        ("vendor_id" = String, Path, description = "PagerDuty vendor id, e.g. PRO19CT"),
        ("account" = Option<String>, Query, description = "Account id"),
    ),
    responses(
        (status = 200, description = "The new integration's key (or alias)", body = String, example = json!("dcak_0123456789abcdef0123456789abcdef")),
        (status = 400, description = "Bad id, unknown vendor or account", body = ErrorsBody),
        (status = 404, description = "No such service", body = ErrorsBody),
        ReadErrors,
    ),
    security(("bearer" = []))
)]
#[post("/integration/{vendor_id}")]
pub async fn create_integration(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse> {
    let account = Params::parse(&req)?.account(&state)?;
    let (service_id, vendor_id) = path.into_inner();
    check_service_id(&service_id)?;
    if check_service_id(&vendor_id).is_err() {
        return Err(BackstageError::bad_request(
            "':vendorId' must be a PagerDuty vendor id (letters and digits)",
        ));
    }
    let op = Op::CreateIntegration;
    let key = within(&state, op, async {
        dependencies::create_integration(account, &service_id, &vendor_id)
            .await
            .map_err(|e| BackstageError::from_pagerduty(op, &e))
    })
    .await?;
    let shown = key
        .and_then(|k| state.keys.shown(&account.id, &k))
        .unwrap_or_default();
    Ok(HttpResponse::Ok().json(shown))
}
