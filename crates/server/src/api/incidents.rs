//! `/v1/incidents`: create, acknowledge and resolve incidents through
//! PagerDuty's Events API v2, server-side (see [`crate::trigger`]).

use actix_web::{HttpRequest, HttpResponse, post, web};
use pagerduty::EventAction;
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::{ApiError, ErrorBody};
use crate::http::extract::{Json, Query};
use crate::http::trigger::{idempotency_key, respond};
use crate::middleware::auth::Authenticated;
use crate::state::AppState;
use crate::trigger::{FollowUpRequest, TriggerAccepted, TriggerRequest};

type Caller = Authenticated<ApiError>;

/// Which PagerDuty account to send through.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AccountParams {
    /// Account id (`[pagerduty.accounts.<id>]`); the default account when absent.
    pub account: Option<String>,
}

/// Trigger an incident.
///
/// Sends an Events API v2 `trigger` event from the server: with a
/// `service_id`, dutycard finds the service's integration key itself
/// (preferring the Backstage integration), so no key reaches the browser.
/// The caller's identity is added as `custom_details.triggered_by`.
///
/// Safe to retry: send an `Idempotency-Key` header (or a `dedup_key`) and a
/// repeat within `trigger.idempotency_window_secs` returns the first answer
/// (`Idempotent-Replayed: true`) without a second event. A failure answers
/// 502/503/504 saying the incident was NOT created, with the `dedup_key` to
/// retry with.
#[utoipa::path(
    tag = "incidents",
    params(
        AccountParams,
        ("Idempotency-Key" = Option<String>, Header, description = "Client-chosen request id (e.g. a UUID); repeats return the first answer"),
    ),
    request_body = TriggerRequest,
    responses(
        (status = 202, description = "PagerDuty accepted the event", body = TriggerAccepted, headers(
            ("Idempotent-Replayed" = String, description = "`true` when this is the stored answer of an earlier request"),
        )),
        (status = 400, description = "A field breaks an Events API rule (`details.field` names it), or PagerDuty rejected the event (`details.errors`)", body = ErrorBody),
        (status = 401, description = "Missing or invalid bearer token", body = ErrorBody),
        (status = 403, description = "The integration key belongs to no known service (trigger.allow = \"known\")", body = ErrorBody),
        (status = 404, description = "No such PagerDuty service", body = ErrorBody),
        (status = 409, description = "The same Idempotency-Key is still in progress", body = ErrorBody),
        (status = 413, description = "Body larger than server.body_limit_bytes", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Idempotency-Key reused for another request, or the service has no Events API v2 integration", body = ErrorBody),
        (status = 429, description = "Too many triggers by this caller or for this routing key; see Retry-After", body = ErrorBody),
        (status = 502, description = "PagerDuty's answer was unusable; NOT created, retry with `details.dedup_key`", body = ErrorBody),
        (status = 503, description = "PagerDuty unavailable or throttling until the deadline; NOT created, retry with `details.dedup_key`", body = ErrorBody),
        (status = 504, description = "PagerDuty did not answer in time; NOT confirmed, retry with `details.dedup_key`", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/incidents")]
pub async fn trigger_incident(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    Query(params, _): Query<AccountParams, ApiError>,
    Json(body, _): Json<TriggerRequest, ApiError>,
) -> Result<HttpResponse, ApiError> {
    let account = state.account(params.account.as_deref())?;
    let key = idempotency_key(&req);
    let outcome = state
        .trigger
        .trigger(account, &caller.into_inner(), body, key.as_deref())
        .await;
    Ok(respond::<ApiError>(outcome))
}

/// The answers of acknowledge and resolve (for OpenAPI).
#[derive(utoipa::IntoResponses)]
pub enum FollowUpResponses {
    /// PagerDuty accepted the event
    #[response(status = 202)]
    Accepted(TriggerAccepted),
    /// Bad field (`details.field`) or PagerDuty rejected the event
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// Missing or invalid bearer token
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The integration key belongs to no known service
    #[response(status = 403)]
    KeyNotAllowed(ErrorBody),
    /// No such PagerDuty service
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// Rate limited; see Retry-After
    #[response(status = 429)]
    RateLimited(ErrorBody),
    /// PagerDuty's answer was unusable; retry
    #[response(status = 502)]
    BadGateway(ErrorBody),
    /// PagerDuty unavailable until the deadline; retry
    #[response(status = 503)]
    Unavailable(ErrorBody),
    /// PagerDuty did not answer in time; retry
    #[response(status = 504)]
    Timeout(ErrorBody),
}

/// Acknowledge an incident by dedup_key.
///
/// Sends an Events API v2 `acknowledge` event for the alert with this
/// `dedup_key` on the given service (or integration key). Same
/// authentication, key resolution, idempotency, limits and delivery rules as
/// the trigger.
#[utoipa::path(
    tag = "incidents",
    params(
        ("dedup_key" = String, Path, description = "The dedup_key the trigger answered with"),
        AccountParams,
        ("Idempotency-Key" = Option<String>, Header, description = "Client-chosen request id; repeats return the first answer"),
    ),
    request_body = FollowUpRequest,
    responses(
        FollowUpResponses,
    ),
    security(("bearer" = []))
)]
#[post("/incidents/{dedup_key}/acknowledge")]
pub async fn acknowledge_incident(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    dedup_key: web::Path<String>,
    Query(params, _): Query<AccountParams, ApiError>,
    Json(body, _): Json<FollowUpRequest, ApiError>,
) -> Result<HttpResponse, ApiError> {
    let target = (params, dedup_key.into_inner(), body);
    follow_up(req, state, caller, EventAction::Acknowledge, target).await
}

/// Resolve an incident by dedup_key.
///
/// Sends an Events API v2 `resolve` event for the alert with this
/// `dedup_key`. Same rules as acknowledge. Afterwards a trigger with the same
/// `dedup_key` opens a new incident (it is not answered from the
/// idempotency store).
#[utoipa::path(
    tag = "incidents",
    params(
        ("dedup_key" = String, Path, description = "The dedup_key the trigger answered with"),
        AccountParams,
        ("Idempotency-Key" = Option<String>, Header, description = "Client-chosen request id; repeats return the first answer"),
    ),
    request_body = FollowUpRequest,
    responses(
        FollowUpResponses,
    ),
    security(("bearer" = []))
)]
#[post("/incidents/{dedup_key}/resolve")]
pub async fn resolve_incident(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    dedup_key: web::Path<String>,
    Query(params, _): Query<AccountParams, ApiError>,
    Json(body, _): Json<FollowUpRequest, ApiError>,
) -> Result<HttpResponse, ApiError> {
    let target = (params, dedup_key.into_inner(), body);
    follow_up(req, state, caller, EventAction::Resolve, target).await
}

async fn follow_up(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    action: EventAction,
    (params, dedup_key, body): (AccountParams, String, FollowUpRequest),
) -> Result<HttpResponse, ApiError> {
    let account = state.account(params.account.as_deref())?;
    let key = idempotency_key(&req);
    let outcome = state
        .trigger
        .follow_up(
            account,
            &caller.into_inner(),
            action,
            dedup_key,
            body,
            key.as_deref(),
        )
        .await;
    Ok(respond::<ApiError>(outcome))
}
