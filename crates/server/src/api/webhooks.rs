//! `POST /v1/webhooks/pagerduty` (`?account=` or `/{account}`): PagerDuty
//! v3 webhooks in. Outside the
//! caller auth of `/v1` (PagerDuty sends no bearer token): a delivery is
//! authenticated by its signature alone ([`crate::webhooks`]).

use actix_web::{HttpRequest, HttpResponse, post, web};
use futures::StreamExt as _;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use crate::http::extract::Query;
use crate::state::AppState;
use crate::webhooks::{Receipt, WebhookError};

/// `?account=`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WebhookParams {
    /// PagerDuty account id (`[pagerduty.accounts.<id>]`) whose subscription
    /// sends here; the default account when absent.
    pub account: Option<String>,
}

/// What was done with a delivery.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookReceipt {
    /// `queued` (its sections are being dropped), `ping`, `duplicate` (this
    /// `X-Webhook-Id` was processed already) or `ignored`.
    #[schema(example = "queued")]
    pub status: String,
    /// Why it was ignored: `unknown_event_type`, `no_service`, `not_an_event`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Receive a PagerDuty v3 webhook.
///
/// Point a v3 webhook subscription here (`dutycard webhooks subscribe`).
/// `X-PagerDuty-Signature` must hold a `v1=` HMAC-SHA256 of the raw body
/// made with one of the account's `webhooks.secrets` (several while one is
/// rotated), else 401 and nothing happens. A verified incident event drops
/// that service's incidents section (and on-call for escalations and
/// reassignments), a service event the service and the service lists; open
/// card streams then show the refetched card. Answered at once (the work is
/// queued); a redelivered `X-Webhook-Id` is processed once; a signed event
/// dutycard cannot use is 202 `ignored` (never a 4xx, which would make
/// PagerDuty disable the subscription).
#[utoipa::path(
    tag = "webhooks",
    params(
        WebhookParams,
        ("X-PagerDuty-Signature" = String, Header, description = "`v1=<hex HMAC-SHA256 of the body>`, comma-separated when several"),
        ("X-Webhook-Id" = Option<String>, Header, description = "The same on every attempt of one webhook"),
    ),
    request_body(content = Object, description = "A v3 webhook: `{\"event\": {\"event_type\", \"occurred_at\", \"data\", …}}`", content_type = "application/json"),
    responses(
        (status = 202, description = "Accepted (queued, ping, duplicate or ignored)", body = WebhookReceipt),
        (status = 400, description = "Unknown `account`", body = ErrorBody),
        (status = 404, description = "`webhooks.enabled` is false: answered as a route that does not exist (`route_not_found`)", body = ErrorBody),
        (status = 401, description = "Missing or bad signature; nothing was done", body = ErrorBody),
        (status = 408, description = "The body did not arrive within the request deadline", body = ErrorBody),
        (status = 413, description = "Body larger than webhooks.max_body_bytes", body = ErrorBody),
        (status = 503, description = "Too many webhooks waiting; PagerDuty retries (Retry-After)", body = ErrorBody),
    )
)]
#[post("")]
pub async fn receive_webhook(
    req: HttpRequest,
    state: web::Data<AppState>,
    Query(params, _): Query<WebhookParams, ApiError>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    receive(req, state, params.account.as_deref(), payload).await
}

/// Receive a PagerDuty v3 webhook for one account.
///
/// `POST /v1/webhooks/pagerduty?account={account}` with the account in the
/// path, for subscriptions whose URL cannot carry a query string.
#[utoipa::path(
    tag = "webhooks",
    params(
        ("account" = String, Path, description = "PagerDuty account id (`[pagerduty.accounts.<id>]`)", example = "eu"),
        ("X-PagerDuty-Signature" = String, Header, description = "`v1=<hex HMAC-SHA256 of the body>`, comma-separated when several"),
        ("X-Webhook-Id" = Option<String>, Header, description = "The same on every attempt of one webhook"),
    ),
    request_body(content = Object, description = "A v3 webhook", content_type = "application/json"),
    responses(
        (status = 202, description = "Accepted (queued, ping, duplicate or ignored)", body = WebhookReceipt),
        (status = 400, description = "Unknown `account`", body = ErrorBody),
        (status = 404, description = "`webhooks.enabled` is false: answered as a route that does not exist (`route_not_found`)", body = ErrorBody),
        (status = 401, description = "Missing or bad signature; nothing was done", body = ErrorBody),
        (status = 408, description = "The body did not arrive within the request deadline", body = ErrorBody),
        (status = 413, description = "Body larger than webhooks.max_body_bytes", body = ErrorBody),
        (status = 503, description = "Too many webhooks waiting; PagerDuty retries (Retry-After)", body = ErrorBody),
    )
)]
#[post("/{account}")]
pub async fn receive_account_webhook(
    req: HttpRequest,
    state: web::Data<AppState>,
    account: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    receive(req, state, Some(account.as_str()), payload).await
}

async fn receive(
    req: HttpRequest,
    state: web::Data<AppState>,
    account: Option<&str>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    // Disabled: the answer of a route that does not exist, before the body
    // is read or the account looked up. The routes stay registered so that
    // the answer is this 404 whatever the caller auth of `/v1` says.
    if !state.webhooks_enabled {
        return Err(ApiError::RouteNotFound {
            method: req.method().to_string(),
            path: req.path().to_owned(),
        });
    }
    let account = state.account(account)?;
    let body = read_body(payload, state.webhooks_max_body, state.request_deadline).await?;
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let receipt = state
        .webhooks
        .receive(
            account,
            header("x-pagerduty-signature"),
            header("x-webhook-id"),
            &body,
        )
        .await
        .map_err(|e| match e {
            WebhookError::Signature(e) => ApiError::InvalidSignature(e.to_string()),
            WebhookError::Busy => ApiError::Overloaded {
                code: "webhook_queue_full",
                message: e.to_string(),
                retry_after_secs: 5,
            },
        })?;
    let (status, reason) = match receipt {
        Receipt::Ignored(reason) => ("ignored", Some(reason.to_owned())),
        other => (other.outcome(), None),
    };
    Ok(HttpResponse::Accepted().json(WebhookReceipt {
        status: status.to_owned(),
        reason,
    }))
}

/// The raw body (the signature is over its exact bytes), at most `limit`
/// bytes, all of it within `deadline`.
async fn read_body(
    mut payload: web::Payload,
    limit: usize,
    deadline: std::time::Duration,
) -> Result<web::BytesMut, ApiError> {
    let read = async {
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| ApiError::InvalidBody {
                field: None,
                message: e.to_string(),
            })?;
            if body.len() + chunk.len() > limit {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    tokio::time::timeout(deadline, read)
        .await
        .map_err(|_| ApiError::BodyTimeout {
            timeout_ms: deadline.as_millis() as u64,
        })?
}
