//! Building and running the HTTP server (zero2prod's `Application`).

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use tracing_actix_web::TracingLogger;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use crate::accounts::Accounts;
use crate::api::error::{ApiError, extractor_configs};
use crate::api::{self, RouteOptions};
use crate::auth::Authenticator;
use crate::auth::jwt::JwtVerifier;
use crate::backstage::{self, BackstageRoutes};
use crate::config::{AuthMode, Settings};
use crate::http::extract::BodyRules;
use crate::http::routes::{KnownRoutes, not_found};
use crate::keys::KeyAliases;
use crate::mappings::MappingService;
use crate::metrics::Metrics;
use crate::middleware::cors::{cors, cors_errors_as_json};
use crate::middleware::telemetry::{self, RequestSpan};
use crate::readiness::Readiness;
use crate::state::AppState;
use crate::streams::StreamService;
use crate::trigger::TriggerService;
use crate::webhooks::WebhookService;

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen on {address}: {source}{}", bind_hint(source))]
    Bind {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot build the PagerDuty client: {0}")]
    Client(String),
    #[error("cannot set up JWT authentication: {0}")]
    Jwt(String),
    #[error("cannot open the store: {0}")]
    Store(String),
    #[error("cannot set up [shared]: {0}")]
    Shared(String),
}

/// What to do about a port that is taken.
fn bind_hint(e: &std::io::Error) -> &'static str {
    if e.kind() == std::io::ErrorKind::AddrInUse {
        "; another process uses this port: choose another with --port N (demo), \
         server.port or DUTYCARD_SERVER__PORT"
    } else {
        ""
    }
}

/// A bound, not yet running server.
pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
}

impl Application {
    /// Build everything from validated settings and bind the listener, so the
    /// real port is known even when `server.port` is 0.
    pub async fn build(settings: Settings) -> Result<Application, StartupError> {
        let server_settings = &settings.server;
        if server_settings.auth.mode == Some(AuthMode::None) {
            tracing::warn!(
                "server.auth.mode = \"none\": the API accepts requests without credentials"
            );
        }
        let metrics = Arc::new(Metrics::new());
        // One Redis connection for the process; nothing connects yet, so a
        // Redis that is down only makes this replica start degraded-local.
        let shared =
            crate::shared::Shared::from_settings(&settings.shared).map_err(StartupError::Shared)?;
        if shared.is_some() {
            tracing::info!(
                replicas = settings.shared.replicas,
                "[shared]: the PagerDuty budget and card sections are shared through Redis"
            );
        }
        let accounts = Arc::new(
            Accounts::from_settings_shared(&settings, metrics.clone(), shared.as_deref())
                .map_err(|e| StartupError::Client(e.to_string()))?,
        );
        // The store is opened (and migrated) before anything listens or starts
        // (the readiness checks): a server without its mappings would answer
        // them wrongly.
        let store = store::Store::open(&settings.store.options())
            .await
            .map_err(|e| StartupError::Store(e.to_string()))?;
        tracing::info!(
            store = store.location(),
            backend = store.backend().name(),
            "store open"
        );
        let readiness = Readiness::new(
            accounts
                .iter()
                .map(|a| (a.id.clone(), a.client.clone()))
                .collect(),
            &accounts.default_account().id,
        );
        readiness.start();
        let keys = Arc::new(KeyAliases::new(
            &accounts,
            settings.backstage.integration_keys,
            settings.backstage.integration_key_alias_secret.as_ref(),
            &settings.pagerduty,
        ));
        let webhooks = WebhookService::start(
            &settings.webhooks,
            &accounts,
            metrics.clone(),
            shared.as_ref().map(|shared| {
                crate::webhooks::shared_dedupe::SharedDedupe::new(
                    shared.connection(),
                    settings.webhooks.dedupe_window(),
                    shared.call_timeout(),
                )
            }),
        );
        let mappings = Arc::new(MappingService::new(
            store,
            keys.clone(),
            crate::catalog::CatalogClient::from_settings(&settings.backstage.catalog),
        ));
        let state = web::Data::new(AppState {
            metrics: metrics.clone(),
            request_deadline: server_settings.request_deadline(),
            readiness,
            accounts,
            trigger: Arc::new(trigger_service(&settings, keys.clone(), shared.as_deref())),
            keys,
            backstage: settings.backstage.clone(),
            degraded: Default::default(),
            webhooks,
            webhooks_max_body: settings.webhooks.max_body_bytes,
            webhooks_enabled: settings.webhooks.enabled,
            streams: StreamService::new(
                settings.streams.clone(),
                crate::http::cache::etag,
                metrics.clone(),
            ),
            mappings,
            rendered: Default::default(),
            shared,
        });
        let shared = state.clone();
        let streams = state.streams.clone();
        let backstage_routes = BackstageRoutes::from_settings(&settings.backstage);
        let ui_page = api::ui::DemoPage::new(&settings.backstage);
        let metrics = web::Data::from(metrics);
        let mut authenticator = Authenticator::from_settings(&server_settings.auth);
        if let Some(jwt) = &server_settings.auth.jwt {
            let verifier = JwtVerifier::new(jwt, server_settings.request_deadline())
                .map_err(|e| StartupError::Jwt(e.to_string()))?;
            authenticator = authenticator.with_jwt(Arc::new(verifier));
        }
        let auth = web::Data::new(authenticator);
        let body_limit = server_settings.body_limit_bytes;
        let auth_none = server_settings.auth.mode == Some(AuthMode::None);
        let request_deadline = server_settings.request_deadline();
        let origins = server_settings.cors_allowed_origins.clone();
        let options = RouteOptions {
            metrics_require_auth: server_settings.auth.metrics_require_auth,
        };

        let address = format!("{}:{}", server_settings.host, server_settings.port);
        let listener = TcpListener::bind(&address).map_err(|source| StartupError::Bind {
            address: address.clone(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind {
                address: address.clone(),
                source,
            })?
            .port();

        let server = HttpServer::new(move || {
            let (json, query, path, payload) = extractor_configs(body_limit);
            let (app, api) = App::new()
                .into_utoipa_app()
                .openapi(crate::openapi::base())
                .app_data(state.clone())
                .app_data(metrics.clone())
                .app_data(auth.clone())
                .app_data(json)
                .app_data(query)
                .app_data(path)
                .app_data(payload)
                .app_data(BodyRules {
                    limit: body_limit,
                    read_timeout: request_deadline,
                })
                .configure(api::configure(options))
                .configure(backstage::configure(backstage_routes.clone()))
                .split_for_parts();
            // Layers, innermost first: CORS (its refusals turned into our
            // JSON errors), metrics and the access log, the request span,
            // the request id.
            let known = web::Data::new(KnownRoutes::from_spec(&api));
            let api = if auth_none {
                crate::openapi::without_auth(api)
            } else {
                api
            };
            app.app_data(known)
                // validatorUrl "none": the page never calls
                // validator.swagger.io (or anything else outside this server).
                .service(
                    SwaggerUi::new("/docs/{_:.*}")
                        .url("/openapi.json", api)
                        .config(utoipa_swagger_ui::Config::default().validator_url("none")),
                )
                .service(web::redirect("/docs", "/docs/"))
                // The card component and demo page: not in the spec, like /docs.
                .configure(api::ui::configure(ui_page.clone()))
                .default_service(web::to(not_found::<ApiError>))
                .wrap(cors(&origins))
                .wrap(from_fn(cors_errors_as_json))
                .wrap(from_fn(crate::middleware::metrics::track_requests))
                .wrap(TracingLogger::<RequestSpan>::new())
                .wrap(from_fn(crate::middleware::docs::harden))
                .wrap(from_fn(telemetry::request_id))
                .wrap(from_fn(crate::middleware::head::head_as_get))
        })
        .workers(server_settings.workers)
        .shutdown_timeout(server_settings.shutdown_timeout_secs)
        // Our own SIGINT/SIGTERM handling: the card streams end first, so
        // the graceful stop does not wait the shutdown timeout for them.
        .shutdown_signal(async move {
            stop_signal().await;
            streams.stop();
        })
        .listen(listener)
        .map_err(|source| StartupError::Bind { address, source })?
        .run();

        Ok(Application {
            port,
            server,
            state: shared,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle to stop the server (gracefully or not). Open card streams
    /// hold their connections until the shutdown timeout: [`Application::stopper`]
    /// ends them first.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Stops like SIGTERM does: card streams end, then the server stops.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            server: self.server.handle(),
            streams: self.state.streams.clone(),
        }
    }

    /// The default account's PagerDuty client.
    pub fn default_client(&self) -> pagerduty::Client {
        self.state.accounts.default_account().client.clone()
    }

    /// The default account's id.
    pub fn default_account_id(&self) -> String {
        self.state.accounts.default_account().id.clone()
    }

    /// The webhook intake (to accept a subscription created after start-up).
    pub fn webhooks(&self) -> Arc<crate::webhooks::WebhookService> {
        self.state.webhooks.clone()
    }

    /// Serve until SIGINT/SIGTERM or `handle().stop(..)`; in-flight requests
    /// get `server.shutdown_timeout_secs` to finish, then the background
    /// work stops: trigger deliveries in flight finish, cache refreshes stop.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        self.state.shutdown().await;
        result
    }
}

/// Stops a running [`Application`] (see [`Application::stopper`]).
#[derive(Clone)]
pub struct Stopper {
    server: ServerHandle,
    streams: Arc<crate::streams::StreamService>,
}

impl Stopper {
    /// Ends the card streams, then stops the server (`graceful`: in-flight
    /// requests finish).
    pub async fn stop(&self, graceful: bool) {
        self.streams.stop();
        self.server.stop(graceful).await;
    }
}

/// The create-incident proxy; with `[shared]`, its idempotency entries
/// and limits live in Redis (on the process's one connection).
fn trigger_service(
    settings: &Settings,
    keys: Arc<KeyAliases>,
    shared: Option<&crate::shared::Shared>,
) -> TriggerService {
    let service = TriggerService::new(&settings.trigger, keys);
    match shared {
        Some(shared) => service.with_shared(crate::trigger::shared::SharedTrigger::new(
            shared.connection(),
            crate::trigger::shared::SharedSettings {
                call_timeout: shared.call_timeout(),
                probe_interval: crate::shared::PROBE_INTERVAL,
                ..Default::default()
            },
        )),
        None => service,
    }
}

/// SIGINT (Ctrl-C) or, on Unix, SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
