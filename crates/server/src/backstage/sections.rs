//! The per-service card routes: incidents, change events, standards and
//! metrics, from the same cached sections as `/v1/cards`.

use actix_web::{HttpRequest, HttpResponse, get, web};

use super::envelopes::{
    ChangeEventsEnvelope, IncidentsEnvelope, MetricsEnvelope, StandardsEnvelope, json_of,
};
use super::error::{ErrorsBody, Op, ReadErrors};
use super::params::{Result, read_for_service};
use crate::state::AppState;

/// Change events returned per service (the Node backend asks PagerDuty for 5).
const CHANGE_EVENTS: usize = 5;

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
        ReadErrors,
    ),
    security(("bearer" = []))
)]
#[get("/services/{service_id}/incidents")]
pub async fn service_incidents(
    req: HttpRequest,
    state: web::Data<AppState>,
    service_id: web::Path<String>,
) -> Result<HttpResponse> {
    let (incidents, _) = read_for_service(
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
        (status = 404, description = "No such service", body = ErrorsBody),
        ReadErrors,
    ),
    security(("bearer" = []))
)]
#[get("/services/{service_id}/change-events")]
pub async fn service_change_events(
    req: HttpRequest,
    state: web::Data<AppState>,
    service_id: web::Path<String>,
) -> Result<HttpResponse> {
    let (events, _) = read_for_service(
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
        (status = 404, description = "No such service", body = ErrorsBody),
        ReadErrors,
    ),
    security(("bearer" = []))
)]
#[get("/services/{service_id}/standards")]
pub async fn service_standards(
    req: HttpRequest,
    state: web::Data<AppState>,
    service_id: web::Path<String>,
) -> Result<HttpResponse> {
    let (standards, _) = read_for_service(
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
        ReadErrors,
    ),
    security(("bearer" = []))
)]
#[get("/services/{service_id}/metrics")]
pub async fn service_metrics(
    req: HttpRequest,
    state: web::Data<AppState>,
    service_id: web::Path<String>,
) -> Result<HttpResponse> {
    let (metrics, _) = read_for_service(
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
