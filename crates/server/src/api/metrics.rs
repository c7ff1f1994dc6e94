use actix_web::{HttpResponse, get, web};

use crate::state::AppState;

/// Prometheus metrics.
///
/// Text exposition format: HTTP requests by route template and status with
/// latency histograms, PagerDuty calls by endpoint and status, and the card
/// cache counters. Needs a bearer token when `server.auth.metrics_require_auth`
/// is set.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "Metrics in the Prometheus text format", content_type = "text/plain", body = String),
        (status = 401, description = "Missing or invalid bearer token (only with metrics_require_auth)", body = super::error::ErrorBody),
    )
)]
#[get("")]
pub async fn get_metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.render_metrics())
}
