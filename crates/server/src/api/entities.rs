//! `/v1/entities/{kind}/{namespace}/{name}/card`: one card per catalog
//! entity, over every PagerDuty service mapped to it ([`crate::entities`]),
//! and its live stream (`…/stream`, [`crate::streams::entity`]).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};
use cards::ServiceCard;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use utoipa::ToSchema;

use actix_web_lab::sse;

use super::cards::{CardErrors, CardParams};
use super::error::{ApiError, ErrorBody, ErrorDetail};
use super::stream::{json_event, last_event_id, sse_events};
use crate::entities::{
    EntityService, EntityServiceError, EntityServices, EntitySummary, entity_services, summarize,
};
use crate::http::deadline;
use crate::http::extract::Query;
use crate::mappings::MappingError;
use crate::middleware::auth::Authenticated;
use crate::state::AppState;
use crate::streams::entity::{EntityStreamError, EntityStreamRequest};

/// One of the entity's services: its card, or why there is none.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EntityServiceItem {
    pub service_id: String,
    /// The PagerDuty account the mapping names.
    pub account: String,
    /// The status `GET /v1/cards/{service_id}` would have answered.
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card: Option<ServiceCard>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

/// An entity's card.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EntityCard {
    /// `kind:namespace/name`, lower case.
    pub entity_ref: String,
    /// Every mapped service, oldest mapping first.
    pub services: Vec<EntityServiceItem>,
    pub summary: EntitySummary,
    /// Why the catalog's annotation could not be read, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalog_error: Option<String>,
    pub generated_at: DateTime<Utc>,
}

impl From<MappingError> for ApiError {
    fn from(e: MappingError) -> Self {
        match e {
            MappingError::Invalid { field, message } => ApiError::InvalidParameter {
                parameter: field,
                message,
            },
            MappingError::NotFound(what) => ApiError::NotFound { what },
            MappingError::Store(e) if e.is_unavailable() => {
                tracing::warn!(error = %e, "store unavailable");
                ApiError::StoreUnavailable(e.to_string())
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// `?account=`: only that (configured) account's services; all when absent.
fn account_filter(state: &AppState, account: Option<&str>) -> Result<Option<String>, ApiError> {
    Ok(match account.map(str::trim) {
        Some(id) if !id.is_empty() => Some(state.account(Some(id))?.id.clone()),
        _ => None,
    })
}

fn item(service: EntityService) -> EntityServiceItem {
    let (status, card, error) = match service.card {
        Ok(card) => (200, Some(card), None),
        Err(e) => {
            let error = match e {
                EntityServiceError::Card(e) => ApiError::from(e),
                e @ EntityServiceError::UnknownAccount(_) => ApiError::NotFound {
                    what: e.to_string(),
                },
            };
            let status = actix_web::ResponseError::status_code(&error).as_u16();
            (status, None, Some(error.body().error))
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

/// The weak ETag: each card's own (without volatile fields) and each
/// failure, hashed in order.
fn etag(items: &[EntityServiceItem]) -> String {
    let mut hasher = sha2::Sha256::new();
    for item in items {
        hasher.update(item.service_id.as_bytes());
        hasher.update([0]);
        match (&item.card, &item.error) {
            (Some(card), _) => hasher.update(crate::http::cache::etag(card).as_bytes()),
            (None, Some(error)) => {
                hasher.update(item.status.to_be_bytes());
                hasher.update(error.code.as_bytes());
            }
            (None, None) => {}
        }
        hasher.update([0]);
    }
    let digest = hasher.finalize();
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("W/\"{hex}\"")
}

/// Get the card of a catalog entity.
///
/// The entity's services are the ones mapped to it (`POST
/// /api/pagerduty/mapping/entity`, any account) plus, with `catalog.url`
/// set, the service its catalog annotation `pagerduty.com/service-id`
/// names (default account): one or several. Answers
/// each service's card (the same card, caches and options as
/// `GET /v1/cards/{service_id}`) and a `summary`: open incidents across the
/// services (newest first, each naming its service), who is on call now per
/// distinct escalation policy, and the worst status (`triggered`,
/// `acknowledged`, `unknown` when some service could not be read, `ok`). A
/// service whose card fails is reported inside, with the status and error
/// its own card route would answer; the request still succeeds. `ETag` /
/// `If-None-Match` give 304. `?account=` keeps only that account's services.
#[utoipa::path(
    tag = "cards",
    params(
        ("kind" = String, Path, description = "Entity kind", example = "component"),
        ("namespace" = String, Path, description = "Entity namespace", example = "default"),
        ("name" = String, Path, description = "Entity name", example = "checkout-api"),
        CardParams,
        ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer"),
    ),
    responses(
        (status = 200, description = "The entity's card", body = EntityCard, headers(
            ("ETag" = String, description = "Weak validator of the cards' content"),
            ("Cache-Control" = String, description = "`private, no-cache`"),
        )),
        (status = 304, description = "Not modified since the ETag in If-None-Match"),
        (status = 400, description = "Bad parameter or entity reference; `details.parameter` names it", body = ErrorBody),
        (status = 404, description = "No service is mapped to this entity", body = ErrorBody),
        CardErrors,
    ),
    security(("bearer" = []))
)]
#[get("/entities/{kind}/{namespace}/{name}/card")]
pub async fn get_entity_card(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
    Query(params, _): Query<CardParams, ApiError>,
) -> Result<HttpResponse, ApiError> {
    let (kind, namespace, name) = path.into_inner();
    let options = params.options()?;
    let account = account_filter(&state, params.account.as_deref())?;
    let work = Box::pin(entity_services(
        &state.accounts,
        &state.mappings,
        (&kind, &namespace, &name),
        account.as_deref(),
        &options,
    ));
    let found = deadline::within(state.request_deadline, work).await??;
    let (card, etag) = entity_card(found);
    let not_modified = crate::http::cache::matches(&req, &etag);
    let mut answer = if not_modified {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    answer
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "private, no-cache"));
    if not_modified {
        return Ok(answer.finish());
    }
    Ok(answer.json(card))
}

/// The entity's answer and its ETag (the card route's and the stream's).
fn entity_card(found: EntityServices) -> (EntityCard, String) {
    let summary = summarize(&found.services);
    let services: Vec<_> = found.services.into_iter().map(item).collect();
    let etag = etag(&services);
    let card = EntityCard {
        entity_ref: found.entity_ref,
        services,
        summary,
        catalog_error: found.catalog_error,
        generated_at: Utc::now(),
    };
    (card, etag)
}

/// The data of an entity stream's `entity` event: the entity's card, or
/// why there is none now (the status and error its card route would answer).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EntityEvent {
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card: Option<EntityCard>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

/// How an entity stream renders each read
/// ([`crate::streams::entity::EntityRender`]).
fn render_event(found: Result<EntityServices, MappingError>) -> (String, EntityEvent) {
    match found {
        Ok(found) => {
            let (card, etag) = entity_card(found);
            let event = EntityEvent {
                status: 200,
                card: Some(card),
                error: None,
            };
            (etag, event)
        }
        Err(e) => {
            let error = ApiError::from(e);
            let status = actix_web::ResponseError::status_code(&error).as_u16();
            let detail = error.body().error;
            // Sent once per kind of failure, until there is a card again.
            let etag = format!("W/\"error-{status}-{}\"", detail.code);
            let event = EntityEvent {
                status,
                card: None,
                error: Some(detail),
            };
            (etag, event)
        }
    }
}

impl From<EntityStreamError> for ApiError {
    fn from(e: EntityStreamError) -> Self {
        match e {
            EntityStreamError::Stream(e) => e.into(),
            EntityStreamError::Entity(e) => e.into(),
        }
    }
}

/// Stream the card of a catalog entity.
///
/// Server-Sent Events: the entity's card (as `GET
/// /v1/entities/{kind}/{namespace}/{name}/card` answers it) at once, then
/// again whenever it changed: a section of one of its services changed (a
/// PagerDuty webhook, a trigger, a refresh), or a service was mapped to or
/// unmapped from it. Each `entity` event carries `{status, card}` (or
/// `{status, error}` when the entity cannot be read now) and the card's
/// ETag as its id; a reconnect with `Last-Event-ID` does not resend an
/// unchanged card. Heartbeats, buffer and limits as the card streams.
#[utoipa::path(
    tag = "cards",
    params(
        ("kind" = String, Path, description = "Entity kind", example = "component"),
        ("namespace" = String, Path, description = "Entity namespace", example = "default"),
        ("name" = String, Path, description = "Entity name", example = "checkout-api"),
        CardParams,
        ("Last-Event-ID" = Option<String>, Header, description = "The id of the last event received (a reconnect)"),
    ),
    responses(
        (status = 200, description = "`text/event-stream` of `entity` events (data: an EntityEvent)", body = EntityEvent, content_type = "text/event-stream"),
        (status = 400, description = "Bad parameter or entity reference; `details.parameter` names it", body = ErrorBody),
        (status = 401, description = "Missing or invalid bearer token", body = ErrorBody),
        (status = 404, description = "No service is mapped to this entity", body = ErrorBody),
        (status = 503, description = "Too many streams (per caller or in total), or the store is unavailable; see Retry-After", body = ErrorBody),
        (status = 504, description = "The request deadline passed before the first read", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/entities/{kind}/{namespace}/{name}/stream")]
pub async fn stream_entity(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Authenticated<ApiError>,
    path: web::Path<(String, String, String)>,
    Query(params, _): Query<CardParams, ApiError>,
) -> Result<impl actix_web::Responder, ApiError> {
    let request = EntityStreamRequest {
        entity: path.into_inner(),
        account: account_filter(&state, params.account.as_deref())?,
        options: params.options()?,
        last_event_id: last_event_id(&req),
    };
    let caller = caller.into_inner();
    let open = Box::pin(state.streams.open_entity(
        &caller.name,
        state.accounts.clone(),
        state.mappings.clone(),
        request,
        render_event,
    ));
    let stream = deadline::within(state.request_deadline, open).await??;
    let heartbeat = state.streams.settings().heartbeat();
    let events = sse_events(stream.items, stream.dropped, |item| {
        json_event("entity", item.id, &item.payload)
    });
    Ok(sse::Sse::from_stream(events).with_keep_alive(heartbeat))
}
