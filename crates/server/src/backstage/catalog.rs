//! `GET /catalog/entity/{type}/{namespace}/{name}`: an entity's
//! `pagerduty.com/service-id`, read from the Backstage catalog.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, web};

use super::error::{BackstageError, ErrorsBody};
use super::params::{Params, Result};
use crate::catalog::CatalogError;
use crate::mappings::normalize_entity_ref;
use crate::state::AppState;

impl From<CatalogError> for BackstageError {
    fn from(e: CatalogError) -> Self {
        let status = match e {
            CatalogError::NotConfigured => StatusCode::NOT_IMPLEMENTED,
            CatalogError::NotFound(_) | CatalogError::NoAnnotation(_) => StatusCode::NOT_FOUND,
            CatalogError::Refused(_) | CatalogError::Unavailable(_) => StatusCode::BAD_GATEWAY,
            CatalogError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        };
        BackstageError::with_status(status, e.to_string())
    }
}

/// `GET /catalog/entity/{type}/{namespace}/{name}`: the entity's PagerDuty service id.
///
/// The bare JSON string of the entity's `pagerduty.com/service-id`
/// annotation (e.g. `"PSVC001"`), read from the catalog at `backstage.catalog_url`
/// with `backstage.catalog_token`. An unknown entity or one without the annotation is
/// a 404 in the `{"errors":[…]}` shape (the Node backend never answered).
/// The catalog is Backstage's, not a PagerDuty account's: `?account=` is
/// checked (an unknown id is a 400 listing the valid ones) and changes
/// nothing else.
#[utoipa::path(
    tag = "backstage",
    params(
        ("type" = String, Path, description = "Entity kind, e.g. component"),
        ("namespace" = String, Path, description = "Entity namespace"),
        ("name" = String, Path, description = "Entity name"),
        ("account" = Option<String>, Query, description = "Account id (checked; the catalog is shared)"),
    ),
    responses(
        (status = 200, description = "The annotation's value", body = String, example = json!("PSVC001")),
        (status = 400, description = "Not an entity reference, or unknown account", body = ErrorsBody),
        (status = 401, description = "Missing caller token", body = ErrorsBody),
        (status = 404, description = "No such entity, or no annotation", body = ErrorsBody),
        (status = 501, description = "No catalog configured (`backstage.catalog_url`)", body = ErrorsBody),
        (status = 502, description = "The catalog failed or refused the token", body = ErrorsBody),
        (status = 504, description = "The catalog did not answer in time", body = ErrorsBody),
    ),
    security(("bearer" = []))
)]
#[get("/catalog/entity/{type}/{namespace}/{name}")]
pub async fn entity_service_id(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse> {
    Params::parse(&req)?.account_filter(&state)?;
    let (kind, namespace, name) = path.into_inner();
    normalize_entity_ref("entity", &format!("{kind}:{namespace}/{name}"))?;
    let catalog = state
        .mappings
        .catalog()
        .ok_or(CatalogError::NotConfigured)?;
    let id = catalog.service_id(&kind, &namespace, &name).await?;
    Ok(HttpResponse::Ok().json(id))
}
