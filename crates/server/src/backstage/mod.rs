//! A drop-in backend for PagerDuty's Backstage frontend plugin.
//!
//! PagerDuty's Backstage card (`@pagerduty/backstage-plugin`) talks to its
//! Node.js backend under `{backend}/api/pagerduty`. These routes serve the
//! same paths, query parameters, envelopes and status codes, so the
//! frontend works unchanged when Backstage's proxy (or the
//! `discovery.endpoints` entry for `pagerduty`) points at dutycard:
//!
//! | route (under `backstage.prefix`) | answer |
//! |---|---|
//! | `GET /health` | `{"status":"ok"}` (no caller auth) |
//! | `GET /services/{id}` | `{"service": …}` (untrimmed, integrations and escalation policy included) |
//! | `GET /services?integration_key=K` | `{"service": …}` (verified match on the key) |
//! | `GET /services?team_id&query&limit` | `[service + "account"]` |
//! | `GET /services` | `{"services": [service + "account"]}` (every account) |
//! | `GET /services/{id}/incidents` | `{"incidents": […]}` (every open incident, any age) |
//! | `GET /services/{id}/change-events` | `{"change_events": […]}` (5 newest) |
//! | `GET /services/{id}/standards` | `{"standards": …}` |
//! | `GET /services/{id}/metrics` | `{"metrics": […]}` (last 30 days) |
//! | `GET /oncall-users?escalation_policy_ids[]=` | `{"users": […]}` |
//! | `GET /oncalls?escalation_policy_ids[]=` | `{"oncalls": […]}` (PagerDuty's on-calls, every level) |
//! | `GET /escalation_policies` | `[{"label","value"}]` |
//! | `GET /teams` | `[team + "account"]` |
//! | `GET /accounts` | `{"accounts": [{"id","isDefault"}]}` |
//! | `POST /services/{id}/incidents` | trigger through the server (see [`trigger`]) |
//! | `POST /enqueue`, `POST /v2/enqueue` | an Events v2 event through the same machinery (see [`enqueue`]) |
//! | `GET /catalog/entity/{type}/{namespace}/{name}` | the entity's `pagerduty.com/service-id`, from the Backstage catalog ([`catalog`]) |
//! | `GET`/`POST`/`DELETE /dependencies/service/{id}`, `POST /services/{id}/integration/{vendorId}` | PagerDuty's service dependencies and new integrations ([`dependencies`]) |
//! | `GET /settings/{id}`, `POST /settings` | the admin page's settings, in the store ([`settings`]) |
//! | `POST /mapping/entity`, `POST /mapping/entities/bulk`, `GET /mapping/entity`, `GET /mapping/entity/{type}/{namespace}/{name}`, `GET`/`DELETE /mapping/entity/service/{id}` | entity mappings, in the store ([`mapping`]) |
//! | `POST /mapping/entities` | catalog entities with their services and statuses, paged ([`entity_listing`]) |
//!
//! Card routes read the same cached sections as `/v1/cards` (no upstream call
//! when the card data is warm); the lists are cached for
//! `backstage.list_ttl_secs` with concurrent misses coalesced.
//!
//! **Errors** are `{"errors":["…"]}` (the only shape the frontend parses),
//! with the anchor's message texts. On `/standards` and `/metrics`,
//! PagerDuty's 401, 402, 403 and 404 are answered 200 and empty (the card
//! renders "-" instead of going blank) and reported ([`crate::degraded`]).
//! Elsewhere PagerDuty's 401, 403 and 404 pass through
//! with their status (the frontend maps them to "missing token", "forbidden"
//! and "not found"); where the Node backend answered `200 {}` (a 429 on a
//! service) or never answered (unknown account, network failure), dutycard
//! answers the real status (429, 400, 502, 504), always within
//! `server.request_deadline_ms`.
//!
//! **Auth**: every route but `GET {prefix}/health` sits behind the same
//! caller authentication as `/v1` (`server.auth`): configure Backstage's
//! proxy to send the token (`headers: {Authorization: Bearer …}`).
//!
//! **Accounts**: `?account=<id>` on every route picks the account
//! ([`crate::accounts`]); an unknown id is a 400 listing the valid ones.
//! An absent or empty `?account=` means the default account on the routes
//! about one service or policy, and every account on the all-accounts lists
//! (`GET /services` without filters, `/teams`, `/escalation_policies`,
//! `GET /mapping/entity`). The mapping lookups and unmapping
//! (`/mapping/entity/{type}/…`, `/mapping/entity/service/{id}`) take an
//! absent one as any account and a given one as "only that account's row";
//! settings and the catalog are shared by every account, so there it is
//! only checked.

//!
//! # Layout
//!
//! [`params`] parses like Express and picks the account(s); [`error`] is the
//! surface's one error type; [`envelopes`] the Node backend's answer shapes;
//! the handlers are grouped by what they read: [`services`], [`sections`]
//! (the per-service card data), [`oncall`], [`lists`] (policies, teams,
//! accounts) and [`trigger`]. [`legacy`] is the legacy frontend's
//! PagerDuty-shaped passthrough, at its own prefix.

pub mod catalog;
pub mod dependencies;
pub mod enqueue;
pub mod entity_listing;
pub mod envelopes;
pub mod error;
pub mod legacy;
pub mod lists;
pub mod mapping;
pub mod oncall;
pub mod params;
pub mod sections;
pub mod services;
pub mod settings;
mod store_errors;
pub mod trigger;

use actix_web::middleware::from_fn;
use actix_web::{HttpResponse, get, web};
use serde_json::json;

use crate::config::BackstageSettings;
use crate::http::routes::not_found;
use crate::middleware::auth::require_caller;
use error::BackstageError;

/// Where and whether the Backstage routes are mounted.
#[derive(Debug, Clone)]
pub struct BackstageRoutes {
    pub enabled: bool,
    pub prefix: String,
    /// The legacy frontend's passthrough prefix, when it is served.
    pub legacy_prefix: Option<String>,
}

impl BackstageRoutes {
    /// What the router needs from `[backstage]`.
    pub fn from_settings(settings: &BackstageSettings) -> Self {
        Self {
            enabled: settings.enabled,
            prefix: settings.prefix.clone(),
            legacy_prefix: settings
                .legacy_enabled
                .then(|| settings.legacy_prefix.clone()),
        }
    }
}

impl Default for BackstageRoutes {
    fn default() -> Self {
        Self::from_settings(&BackstageSettings::default())
    }
}

/// Registers the Backstage routes (a no-op when disabled). The handlers need
/// the app's `web::Data<AppState>`; unknown paths under the prefix get a 404
/// (or 405) in Backstage's shape.
pub fn configure(
    options: BackstageRoutes,
) -> impl FnOnce(&mut utoipa_actix_web::service_config::ServiceConfig) {
    move |cfg| {
        if let Some(prefix) = options.legacy_prefix {
            legacy::configure(prefix)(cfg);
        }
        if !options.enabled {
            return;
        }
        cfg.service(
            utoipa_actix_web::scope(options.prefix.as_str())
                .service(health)
                .service(
                    utoipa_actix_web::scope("")
                        .wrap(from_fn(require_caller::<BackstageError>))
                        .service(services_scope())
                        .service(oncall::oncall_users)
                        .service(oncall::list_oncalls)
                        .service(lists::list_escalation_policies)
                        .service(lists::list_teams)
                        .service(lists::list_accounts)
                        .service(enqueue::enqueue)
                        .service(enqueue::enqueue_v2)
                        .service(settings::get_setting)
                        .service(settings::store_settings)
                        .service(mapping::store_mapping)
                        .service(mapping::store_mappings_bulk)
                        .service(mapping::list_mappings)
                        .service(entity_listing::list_entities)
                        .service(mapping::mapping_of_service)
                        .service(mapping::unmap_service)
                        .service(mapping::mapping_of_entity)
                        .service(catalog::entity_service_id)
                        .service(dependencies::list_dependencies)
                        .service(dependencies::add_dependencies)
                        .service(dependencies::remove_dependencies)
                        .default_service(web::to(not_found::<BackstageError>)),
                ),
        );
    }
}

/// Everything under `/services`, in scopes: actix tries a scope's routes in
/// order and matches each `{param}` pattern with a regex (allocating its
/// captures even when it fails), so a flat list made a request for
/// `/oncall-users` try six `/services/{service_id}...` patterns first, and
/// one for `/standards` five. Here a path outside `/services` is turned
/// away by one prefix comparison, and one under it matches the id once.
/// A scope that matches a path none of its routes take answers it itself,
/// so each has the surface's 404 (or 405).
fn services_scope() -> utoipa_actix_web::scope::Scope<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    utoipa_actix_web::scope("/services")
        .service(services::list_services)
        .service(
            utoipa_actix_web::scope("/{service_id}")
                .service(services::get_service)
                .service(sections::service_incidents)
                .service(trigger::trigger_incident)
                .service(sections::service_change_events)
                .service(sections::service_standards)
                .service(sections::service_metrics)
                .service(dependencies::create_integration)
                .default_service(web::to(not_found::<BackstageError>)),
        )
        .default_service(web::to(not_found::<BackstageError>))
}

/// `GET /health`: the plugin is up.
///
/// Always `{"status":"ok"}`, without caller auth (like the Node backend),
/// so Backstage's health checks need no token.
#[utoipa::path(
    tag = "backstage",
    responses((status = 200, description = "Always `{\"status\":\"ok\"}`", body = Object, example = json!({"status": "ok"})))
)]
#[get("/health")]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}
