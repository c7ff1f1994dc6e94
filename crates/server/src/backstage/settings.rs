//! `GET /settings/{id}` and `POST /settings`: the admin page's settings,
//! kept in the store.
//!
//! Settings are global, as in the Node backend (its `pagerduty_settings`
//! has no account column): `?account=` is accepted like on every Backstage
//! route, an unknown id is the same 400 listing the valid ones, and a known
//! one reads and writes the same settings.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{BackstageError, ErrorsBody};
use super::params::{Params, Result};
use super::store_errors::within_deadline;
use crate::http::extract::Json;
use crate::state::AppState;

/// One setting, as stored.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"id": "settings::service-dependency-sync-strategy", "value": "backstage", "updatedAt": "2026-11-22 13:34:08"}))]
pub struct SettingBody {
    /// `settings::service-dependency-sync-strategy` or `settings::data-sync`.
    pub id: String,
    pub value: String,
    /// When it was last stored (UTC, `YYYY-MM-DD HH:MM:SS`).
    pub updated_at: String,
}

/// One `{id, value}` of `POST /settings`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SettingUpdate {
    pub id: String,
    pub value: String,
}

/// `GET /settings/{setting_id}`: a stored setting.
///
/// Known ids: `settings::service-dependency-sync-strategy` (`backstage`,
/// `pagerduty`, `both`, `disabled`) and `settings::data-sync` (`enabled`,
/// `disabled`).
#[utoipa::path(
    tag = "backstage",
    params(
        ("setting_id" = String, Path, description = "The setting's id"),
        ("account" = Option<String>, Query, description = "Account id (checked; settings are global)"),
    ),
    responses(
        (status = 200, description = "The setting", body = SettingBody),
        (status = 400, description = "Unknown setting id or account", body = ErrorsBody),
        (status = 401, description = "Missing caller token", body = ErrorsBody),
        (status = 404, description = "The setting was never stored", body = ErrorsBody),
        (status = 503, description = "The store is unavailable (`store_unavailable`); see Retry-After", body = ErrorsBody),
    ),
    security(("bearer" = []))
)]
#[get("/settings/{setting_id}")]
pub async fn get_setting(
    req: HttpRequest,
    state: web::Data<AppState>,
    setting_id: web::Path<String>,
) -> Result<HttpResponse> {
    Params::parse(&req)?.account_filter(&state)?;
    let setting = within_deadline(&state, state.mappings.setting(&setting_id)).await?;
    Ok(HttpResponse::Ok().json(SettingBody {
        id: setting.id,
        value: setting.value,
        updated_at: setting.updated_at,
    }))
}

/// `POST /settings`: store settings, all in one transaction.
///
/// Every id and value is checked first (400 naming the first bad one;
/// nothing is stored then). Answers `OK` (text) after the commit.
#[utoipa::path(
    tag = "backstage",
    params(("account" = Option<String>, Query, description = "Account id (checked; settings are global)")),
    request_body(content = Vec<SettingUpdate>, example = json!([{"id": "settings::data-sync", "value": "enabled"}])),
    responses(
        (status = 200, description = "Stored (body `OK`)", body = String, content_type = "text/plain"),
        (status = 400, description = "Unknown id, invalid value or unknown account", body = ErrorsBody),
        (status = 401, description = "Missing caller token", body = ErrorsBody),
        (status = 503, description = "The store is unavailable (`store_unavailable`); nothing stored", body = ErrorsBody),
    ),
    security(("bearer" = []))
)]
#[post("/settings")]
pub async fn store_settings(
    req: HttpRequest,
    state: web::Data<AppState>,
    Json(body, _): Json<Vec<SettingUpdate>, BackstageError>,
) -> Result<HttpResponse> {
    Params::parse(&req)?.account_filter(&state)?;
    if body.is_empty() {
        return Err(BackstageError::bad_request(
            "the body must be a non-empty array of {id, value}",
        ));
    }
    let settings: Vec<(String, String)> = body.into_iter().map(|s| (s.id, s.value)).collect();
    within_deadline(&state, state.mappings.store_settings(&settings)).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("OK"))
}
