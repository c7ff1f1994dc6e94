use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::readiness::ReadyReport;
use crate::state::AppState;

/// Liveness answer.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct Health {
    /// Always `ok`: the process is up and serving HTTP.
    #[schema(example = "ok")]
    pub status: String,
}

/// Liveness probe.
///
/// Answers 200 as long as the process serves HTTP. It checks nothing else, so
/// an orchestrator restarts the process only when it is truly stuck.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "The process is alive", body = Health))
)]
#[get("/healthz")]
pub async fn get_healthz() -> web::Json<Health> {
    web::Json(Health {
        status: "ok".into(),
    })
}

/// Readiness probe.
///
/// Ready when the configuration loaded, the store answers (`store`: one
/// `SELECT 1`, at most 500 ms) and PagerDuty accepted our credentials
/// (`GET /abilities`, checked at most every 30 s, failures re-checked after
/// 5 s). Reports the credential's health (kind, OAuth expiry, last error).
/// Answers 503 with the same body when not ready. Answers at once from the
/// last result (the check runs in the background), so a probe with a short
/// timeout never waits for a slow PagerDuty; a check that hangs is reported.
/// With `[shared]` on, `shared.mode` says whether this replica shares
/// through Redis (`shared`) or serves alone while Redis is unreachable
/// (`degraded-local`); the latter does not make it unready.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "Ready to serve cards", body = ReadyReport),
        (status = 503, description = "Not ready: PagerDuty rejected the credentials or was never reached", body = ReadyReport),
    )
)]
#[get("/readyz")]
pub async fn get_readyz(state: web::Data<AppState>) -> HttpResponse {
    let mut report = state.readiness.check().await;
    report.degraded = state.degraded.list();
    let store = crate::readiness::store_check(state.mappings.store()).await;
    report.ready &= store.ok;
    report.store = Some(store);
    report.shared = state.shared_report();
    if report.ready {
        HttpResponse::Ok().json(report)
    } else {
        HttpResponse::ServiceUnavailable().json(report)
    }
}
