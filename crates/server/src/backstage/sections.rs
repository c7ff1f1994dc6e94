//! The per-service card routes: incidents, change events, standards and
//! metrics, from the same cached sections as `/v1/cards`.

use actix_web::{HttpRequest, HttpResponse, get, web};

use super::envelopes::{
    ChangeEventsEnvelope, IncidentsEnvelope, MetricsEnvelope, StandardsEnvelope, json_body,
    json_of, to_bytes,
};
use super::error::{ErrorsBody, Op, ReadErrors};
use super::params::{Result, read_for_service, read_optional};
use crate::degraded::OptionalSection;
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
#[get("/incidents")]
pub async fn service_incidents(
    req: HttpRequest,
    state: web::Data<AppState>,
    service_id: web::Path<String>,
) -> Result<HttpResponse> {
    let ((incidents, id), account) = read_for_service(
        &req,
        &state,
        service_id,
        Op::Incidents,
        |cards, id| async move { cards.raw_open_incidents(&id).await.map(|c| (c, id)) },
    )
    .await?;
    let bytes = state.rendered.bodies.get_or_render(
        "incidents",
        &account.id,
        &id,
        &[incidents.version],
        || {
            to_bytes(&IncidentsEnvelope {
                incidents: incidents.value.iter().map(json_of).collect::<Result<_>>()?,
            })
        },
    )?;
    Ok(json_body(&req, &bytes))
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
#[get("/change-events")]
pub async fn service_change_events(
    req: HttpRequest,
    state: web::Data<AppState>,
    service_id: web::Path<String>,
) -> Result<HttpResponse> {
    let ((events, id), account) = read_for_service(
        &req,
        &state,
        service_id,
        Op::ChangeEvents,
        |cards, id| async move { cards.raw_change_events(&id).await.map(|c| (c, id)) },
    )
    .await?;
    let bytes = state.rendered.bodies.get_or_render(
        "change-events",
        &account.id,
        &id,
        &[events.version],
        || {
            to_bytes(&ChangeEventsEnvelope {
                change_events: events
                    .value
                    .newest_first()
                    .into_iter()
                    .take(CHANGE_EVENTS)
                    .map(json_of)
                    .collect::<Result<_>>()?,
            })
        },
    )?;
    Ok(json_body(&req, &bytes))
}

/// `GET /services/{service_id}/standards`: the service's standards scores.
///
/// When PagerDuty refuses them (401, 402, 403, 404: a token without the
/// scope, a plan without standards) the answer is `200 {"standards": {}}`,
/// so the card still renders, and the refusal shows in `/readyz` and
/// `/metrics` (logged once per account). PagerDuty's 400 stays an error.
#[utoipa::path(
    tag = "backstage",
    params(
        ("service_id" = String, Path, description = "PagerDuty service id"),
        ("account" = Option<String>, Query, description = "Account id"),
    ),
    responses(
        (status = 200, description = "The scores; `{}` when PagerDuty refuses them", body = StandardsEnvelope),
        (status = 400, description = "Bad id or unknown account", body = ErrorsBody),
        ReadErrors,
    ),
    security(("bearer" = []))
)]
#[get("/standards")]
pub async fn service_standards(
    req: HttpRequest,
    state: web::Data<AppState>,
    service_id: web::Path<String>,
) -> Result<HttpResponse> {
    let (standards, account) = read_optional(
        &req,
        &state,
        service_id,
        Op::Standards,
        OptionalSection::Standards,
        |cards, id| async move { cards.raw_standards(&id).await.map(|c| (c, id)) },
    )
    .await?;
    let Some((standards, id)) = standards else {
        return Ok(HttpResponse::Ok().json(StandardsEnvelope {
            standards: serde_json::Value::Object(Default::default()),
        }));
    };
    let bytes = state.rendered.bodies.get_or_render(
        "standards",
        &account.id,
        &id,
        &[standards.version],
        || {
            to_bytes(&StandardsEnvelope {
                standards: json_of(&standards.value)?,
            })
        },
    )?;
    Ok(json_body(&req, &bytes))
}

/// `GET /services/{service_id}/metrics`: incident analytics, last 30 days.
///
/// When PagerDuty refuses them (401, 402, 403, 404: no `analytics.read`,
/// a plan without analytics) the answer is `200 {"metrics": []}`, as the
/// Node backend's `200 {}` let the card render, and the refusal shows in
/// `/readyz` and `/metrics` (logged once per account).
#[utoipa::path(
    tag = "backstage",
    params(
        ("service_id" = String, Path, description = "PagerDuty service id"),
        ("account" = Option<String>, Query, description = "Account id"),
    ),
    responses(
        (status = 200, description = "The metrics rows (empty without incidents, or when PagerDuty refuses analytics)", body = MetricsEnvelope),
        (status = 400, description = "Bad id or unknown account", body = ErrorsBody),
        ReadErrors,
    ),
    security(("bearer" = []))
)]
#[get("/metrics")]
pub async fn service_metrics(
    req: HttpRequest,
    state: web::Data<AppState>,
    service_id: web::Path<String>,
) -> Result<HttpResponse> {
    let (metrics, account) = read_optional(
        &req,
        &state,
        service_id,
        Op::Metrics,
        OptionalSection::Metrics,
        |cards, id| async move { cards.raw_metrics(&id).await.map(|c| (c, id)) },
    )
    .await?;
    let Some((metrics, id)) = metrics else {
        return Ok(HttpResponse::Ok().json(MetricsEnvelope {
            metrics: Vec::new(),
        }));
    };
    let bytes = state.rendered.bodies.get_or_render(
        "metrics",
        &account.id,
        &id,
        &[metrics.version],
        || {
            to_bytes(&MetricsEnvelope {
                metrics: metrics.value.iter().map(json_of).collect::<Result<_>>()?,
            })
        },
    )?;
    Ok(json_body(&req, &bytes))
}
