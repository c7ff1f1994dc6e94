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
//! | `GET /escalation_policies` | `[{"label","value"}]` |
//! | `GET /teams` | `[team + "account"]` |
//! | `GET /accounts` | `{"accounts": [{"id","isDefault"}]}` |
//! | `POST /services/{id}/incidents` | trigger through the server (see [`routes`]) |
//!
//! Card routes read the same cached sections as `/v1/cards` (no upstream call
//! when the card data is warm); the lists are cached for
//! `backstage.list_ttl_secs` with concurrent misses coalesced.
//!
//! **Errors** are `{"errors":["…"]}` (the only shape the frontend parses),
//! with the anchor's message texts. PagerDuty's 401, 403 and 404 pass through
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
//! (`GET /services` without filters, `/teams`, `/escalation_policies`).

pub mod app_config;
pub mod error;
pub mod routes;

use std::sync::Arc;
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::{Next, from_fn};
use actix_web::{Error, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::accounts::Accounts;
use crate::auth;
use crate::config::{Problem, problem};

/// The Node backend's mount point (`pluginId` `pagerduty`).
pub const DEFAULT_PREFIX: &str = "/api/pagerduty";

/// `[backstage]` settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BackstageSettings {
    /// Serve the Backstage routes.
    pub enabled: bool,
    /// Where they are mounted.
    pub prefix: String,
    /// How long the lists (escalation policies, teams, services) are cached.
    pub list_ttl_secs: u64,
    /// Remove `integration_key` from the services returned.
    #[serde(default)]
    pub redact_integration_keys: bool,
    /// A Backstage `app-config.yaml` whose `pagerDuty:` block supplies the
    /// PagerDuty credentials and hosts (see [`app_config`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_config_file: Option<std::path::PathBuf>,
}

impl Default for BackstageSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            prefix: DEFAULT_PREFIX.to_owned(),
            list_ttl_secs: 60,
            redact_integration_keys: false,
            app_config_file: None,
        }
    }
}

impl BackstageSettings {
    pub(crate) fn validate(&self, problems: &mut Vec<Problem>) {
        if let Err(why) = check_prefix(&self.prefix) {
            problems.push(problem(
                "backstage.prefix",
                format!("`{}` {why}", self.prefix),
            ));
        }
        if !(1..=3600).contains(&self.list_ttl_secs) {
            problems.push(problem(
                "backstage.list_ttl_secs",
                "must be between 1 and 3600",
            ));
        }
    }

    /// What the router needs.
    pub fn routes(&self) -> BackstageRoutes {
        BackstageRoutes {
            enabled: self.enabled,
            prefix: self.prefix.clone(),
        }
    }
}

fn check_prefix(prefix: &str) -> Result<(), String> {
    if !prefix.starts_with('/') || prefix.len() < 2 || prefix.ends_with('/') {
        return Err("must start with '/', have a name and no trailing '/'".into());
    }
    if !prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.'))
        || prefix.contains("//")
    {
        return Err("may contain only letters, digits, '/', '-', '_' and '.'".into());
    }
    let first = prefix.split('/').nth(1).unwrap_or_default();
    if matches!(
        first,
        "v1" | "metrics" | "docs" | "healthz" | "readyz" | "openapi.json"
    ) {
        return Err(format!("collides with dutycard's own `/{first}` routes"));
    }
    Ok(())
}

/// Where and whether the Backstage routes are mounted.
#[derive(Debug, Clone)]
pub struct BackstageRoutes {
    pub enabled: bool,
    pub prefix: String,
}

impl Default for BackstageRoutes {
    fn default() -> Self {
        BackstageSettings::default().routes()
    }
}

/// What the Backstage handlers share (one per process).
pub struct BackstageState {
    pub accounts: Arc<Accounts>,
    /// `server.request_deadline_ms`.
    pub request_deadline: Duration,
    /// `backstage.redact_integration_keys`.
    pub redact_integration_keys: bool,
}

impl BackstageState {
    pub fn new(
        accounts: Arc<Accounts>,
        settings: &BackstageSettings,
        request_deadline: Duration,
    ) -> Self {
        Self {
            accounts,
            request_deadline,
            redact_integration_keys: settings.redact_integration_keys,
        }
    }
}

/// Registers the Backstage routes (a no-op when disabled). The handlers need
/// a `web::Data<BackstageState>` in the app.
pub fn configure(
    options: BackstageRoutes,
) -> impl FnOnce(&mut utoipa_actix_web::service_config::ServiceConfig) {
    move |cfg| {
        if !options.enabled {
            return;
        }
        cfg.service(
            utoipa_actix_web::scope(options.prefix.as_str())
                .wrap(from_fn(errors_envelope))
                .service(routes::health)
                .service(
                    utoipa_actix_web::scope("")
                        .wrap(from_fn(auth::require_caller))
                        .service(routes::list_services)
                        .service(routes::get_service)
                        .service(routes::service_incidents)
                        .service(routes::trigger_incident)
                        .service(routes::service_change_events)
                        .service(routes::service_standards)
                        .service(routes::service_metrics)
                        .service(routes::oncall_users)
                        .service(routes::list_escalation_policies)
                        .service(routes::list_teams)
                        .service(routes::list_accounts),
                ),
        );
    }
}

/// Middleware: any error answer under the prefix that is in dutycard's
/// `{"error":{"message"}}` shape (caller auth, extractors) is rewritten to
/// Backstage's `{"errors":["message"]}`, the only shape its frontend reads.
async fn errors_envelope(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let res = next.call(req).await?;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return Ok(res.map_into_boxed_body());
    }
    let (req, res) = res.into_parts();
    let mut headers = res.headers().clone();
    let body = match actix_web::body::to_bytes(res.into_body()).await {
        Ok(body) => body,
        Err(_) => {
            let rebuilt = error::BackstageError::internal("the error answer could not be read");
            return Ok(ServiceResponse::new(req, rebuilt.to_response()));
        }
    };
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned));
    headers.remove(header::CONTENT_LENGTH);
    let mut builder = HttpResponse::build(status);
    let response = match message {
        Some(message) => {
            headers.remove(header::CONTENT_TYPE);
            for (name, value) in &headers {
                builder.append_header((name.clone(), value.clone()));
            }
            builder.json(error::ErrorsBody {
                errors: vec![message],
            })
        }
        None => {
            for (name, value) in &headers {
                builder.append_header((name.clone(), value.clone()));
            }
            builder.body(body)
        }
    };
    Ok(ServiceResponse::new(req, response))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert!(check_prefix("/api/pagerduty").is_ok());
        assert!(check_prefix("/backstage/pd-v2").is_ok());
        for bad in [
            "",
            "/",
            "api/pagerduty",
            "/api/pagerduty/",
            "/v1",
            "/v1/pd",
            "/a//b",
            "/a b",
        ] {
            assert!(check_prefix(bad).is_err(), "{bad}");
        }
    }
}
