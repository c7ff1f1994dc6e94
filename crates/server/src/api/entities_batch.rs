//! `POST /v1/entities/cards/batch`: the cards of several catalog entities
//! in one call, like `POST /v1/cards/batch` for services.

use actix_web::{post, web};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::cards::CardParams;
use super::entities::{EntityCard, EntityServiceItem};
use super::error::{ApiError, ErrorBody, ErrorDetail};
use crate::entities::{EntityService, EntityServiceError, entity_services, summarize};
use crate::http::deadline;
use crate::http::extract::{Json, Query};
use crate::mappings::normalize_entity_ref;
use crate::state::AppState;

/// Largest batch: each entity may own several services.
pub const MAX_ENTITY_BATCH: usize = 50;

/// `POST /v1/entities/cards/batch` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntityBatchRequest {
    /// Entity references `kind:namespace/name` (namespace `default` when
    /// left out), 1 to 50; cards come back in this order.
    #[schema(example = json!(["component:default/checkout-api", "component:default/search"]))]
    pub entities: Vec<String>,
}

/// `POST /v1/entities/cards/batch` answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EntityBatchResponse {
    /// One entry per requested entity, in request order.
    pub cards: Vec<EntityBatchItem>,
}

/// One entity's card, or why there is none.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EntityBatchItem {
    /// The requested reference, normalized (`kind:namespace/name`, lower case).
    pub entity_ref: String,
    /// The status `GET /v1/entities/{kind}/{namespace}/{name}/card` would
    /// have answered.
    pub status: u16,
    /// The card, when `status` is 200.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card: Option<EntityCard>,
    /// The error, otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

/// A service of an entity as the single-entity route answers it.
fn service_item(service: EntityService) -> EntityServiceItem {
    let (status, card, error) = match service.card {
        Ok(card) => (200, Some(card), None),
        Err(e) => {
            let error = match e {
                EntityServiceError::Card(e) => ApiError::from(e),
                e @ EntityServiceError::UnknownAccount(_) => ApiError::NotFound {
                    what: e.to_string(),
                },
            };
            (status_of(&error), None, Some(error.body().error))
        }
    };
    EntityServiceItem {
        service_id: service.service_id,
        account: service.account,
        status,
        card,
        error,
    }
}

fn status_of(error: &ApiError) -> u16 {
    actix_web::ResponseError::status_code(error).as_u16()
}

/// Get the cards of many catalog entities.
///
/// Up to 50 entity references in one call, read concurrently; each entry
/// is what `GET /v1/entities/{kind}/{namespace}/{name}/card` answers for
/// that entity (its services' cards and the combined summary), inline with
/// its status, so an entity without services (404) or a store that is down
/// (503) does not fail the others. Same query options as the single route;
/// `?account=` keeps only that account's services.
#[utoipa::path(
    tag = "cards",
    params(CardParams),
    request_body = EntityBatchRequest,
    responses(
        (status = 200, description = "One entry per requested entity, in order", body = EntityBatchResponse),
        (status = 400, description = "Bad body or parameter; `details` names the field (e.g. `entities[2]`)", body = ErrorBody),
        (status = 401, description = "Missing or invalid bearer token", body = ErrorBody),
        (status = 413, description = "Body larger than server.body_limit_bytes", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 504, description = "The request deadline passed", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/entities/cards/batch")]
pub async fn batch_entity_cards(
    state: web::Data<AppState>,
    Query(params, _): Query<CardParams, ApiError>,
    Json(body, _): Json<EntityBatchRequest, ApiError>,
) -> Result<web::Json<EntityBatchResponse>, ApiError> {
    if body.entities.is_empty() || body.entities.len() > MAX_ENTITY_BATCH {
        return Err(ApiError::InvalidBody {
            field: Some("entities".into()),
            message: format!(
                "must hold 1 to {MAX_ENTITY_BATCH} entity references, got {}",
                body.entities.len()
            ),
        });
    }
    let refs = body
        .entities
        .iter()
        .enumerate()
        .map(|(i, text)| {
            normalize_entity_ref(&format!("entities[{i}]"), text).map_err(|e| match e {
                crate::mappings::MappingError::Invalid { field, message } => {
                    ApiError::InvalidBody {
                        field: Some(field),
                        message,
                    }
                }
                other => ApiError::from(other),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let options = params.options()?;
    let account = match params.account.as_deref().map(str::trim) {
        Some(id) if !id.is_empty() => Some(state.account(Some(id))?.id.clone()),
        _ => None,
    };
    let (options, account, state_ref) = (&options, account.as_deref(), &state);
    let reads = futures::future::join_all(refs.into_iter().map(|entity_ref| async move {
        // normalize_entity_ref answered `kind:namespace/name`.
        let (kind, rest) = entity_ref.split_once(':').unwrap_or_default();
        let (namespace, name) = rest.split_once('/').unwrap_or_default();
        let found = Box::pin(entity_services(
            &state_ref.accounts,
            &state_ref.mappings,
            (kind, namespace, name),
            account,
            options,
        ))
        .await;
        match found {
            Ok(found) => {
                let summary = summarize(&found.services);
                EntityBatchItem {
                    status: 200,
                    card: Some(EntityCard {
                        entity_ref: found.entity_ref,
                        services: found.services.into_iter().map(service_item).collect(),
                        summary,
                        catalog_error: found.catalog_error,
                        generated_at: Utc::now(),
                    }),
                    error: None,
                    entity_ref,
                }
            }
            Err(e) => {
                let error = ApiError::from(e);
                EntityBatchItem {
                    entity_ref,
                    status: status_of(&error),
                    card: None,
                    error: Some(error.body().error),
                }
            }
        }
    }));
    let cards = deadline::within(state.request_deadline, Box::pin(reads)).await?;
    Ok(web::Json(EntityBatchResponse { cards }))
}
