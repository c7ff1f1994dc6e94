//! Building and running the HTTP server (zero2prod's `Application`).

use std::net::TcpListener;
use std::sync::Arc;

use actix_cors::{Cors, CorsError};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{RequestHead, Server, ServerHandle, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, Error, HttpServer, ResponseError, web};
use tracing_actix_web::TracingLogger;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use crate::auth::Authenticator;
use crate::config::{AuthMode, Settings};
use crate::error;
use crate::extract::BodyLimit;
use crate::metrics::{self, Metrics};
use crate::readiness::Readiness;
use crate::routes::{self, RouteOptions};
use crate::state::AppState;
use crate::telemetry::{self, RequestSpan};

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot build the PagerDuty client: {0}")]
    Client(String),
    #[error("cannot set up JWT authentication: {0}")]
    Jwt(String),
}

/// A bound, not yet running server.
pub struct Application {
    port: u16,
    server: Server,
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
        let accounts = Arc::new(
            crate::accounts::Accounts::from_settings(&settings, metrics.clone())
                .map_err(|e| StartupError::Client(e.to_string()))?,
        );
        let state = web::Data::new(AppState {
            metrics: metrics.clone(),
            request_deadline: server_settings.request_deadline(),
            readiness: Readiness::new(
                accounts
                    .iter()
                    .map(|a| (a.id.clone(), a.client.clone()))
                    .collect(),
                &accounts.default_account().id,
            ),
            cards: accounts.default_account().cards.clone(),
            accounts: Arc::clone(&accounts),
            trigger: Arc::new(crate::trigger::TriggerService::new(
                crate::trigger::TriggerConfig::from(&settings.trigger),
            )),
        });
        let backstage = web::Data::new(crate::backstage::BackstageState::new(
            accounts,
            &settings.backstage,
            server_settings.request_deadline(),
        ));
        let backstage_routes = settings.backstage.routes();
        let metrics = web::Data::from(metrics);
        let mut authenticator = Authenticator::from_settings(&server_settings.auth);
        if let Some(jwt) = &server_settings.auth.jwt {
            let verifier = crate::jwt::JwtVerifier::new(jwt, server_settings.request_deadline())
                .map_err(|e| StartupError::Jwt(e.to_string()))?;
            authenticator = authenticator.with_jwt(Arc::new(verifier));
        }
        let auth = web::Data::new(authenticator);
        let body_limit = server_settings.body_limit_bytes;
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
            let (json, query, path, payload) = error::extractor_configs(body_limit);
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
                .app_data(BodyLimit(body_limit))
                .app_data(backstage.clone())
                .configure(routes::configure(options))
                .configure(crate::backstage::configure(backstage_routes.clone()))
                .split_for_parts();
            // Layers, innermost first: CORS (its refusals turned into our
            // JSON errors), metrics and the access log, the request span,
            // the request id.
            let known = web::Data::new(error::KnownRoutes::from_spec(&api));
            app.app_data(known)
                // validatorUrl "none": the page never calls
                // validator.swagger.io (or anything else outside this server).
                .service(
                    SwaggerUi::new("/docs/{_:.*}")
                        .url("/openapi.json", api)
                        .config(utoipa_swagger_ui::Config::default().validator_url("none")),
                )
                .service(web::redirect("/docs", "/docs/"))
                .default_service(web::to(error::route_not_found))
                .wrap(cors(&origins))
                .wrap(from_fn(cors_errors_as_json))
                .wrap(from_fn(metrics::track_requests))
                .wrap(TracingLogger::<RequestSpan>::new())
                .wrap(from_fn(telemetry::request_id))
        })
        .workers(server_settings.workers)
        .shutdown_timeout(server_settings.shutdown_timeout_secs)
        .listen(listener)
        .map_err(|source| StartupError::Bind { address, source })?
        .run();

        Ok(Application { port, server })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle to stop the server (gracefully or not).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serve until SIGINT/SIGTERM or `handle().stop(..)`; in-flight requests
    /// get `server.shutdown_timeout_secs` to finish.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// Configured origins plus same-origin requests (the bundled API explorer
/// at `/docs` sends an `Origin` header on POST).
fn cors(origins: &[String]) -> Cors {
    let mut cors = Cors::default()
        .allowed_origin_fn(is_same_origin)
        .allowed_methods(["GET", "POST"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_NONE_MATCH,
            telemetry::X_REQUEST_ID.clone(),
            header::HeaderName::from_static("idempotency-key"),
        ])
        .expose_headers([
            header::ETAG,
            header::RETRY_AFTER,
            telemetry::X_REQUEST_ID.clone(),
            header::HeaderName::from_static("idempotent-replayed"),
        ])
        .max_age(Some(3600));
    for origin in origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

fn is_same_origin(origin: &header::HeaderValue, head: &RequestHead) -> bool {
    let (Ok(origin), Some(host)) = (
        origin.to_str(),
        head.headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok()),
    ) else {
        return false;
    };
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host))
}

/// The longest `Origin` echoed back in a `cors_rejected` error.
const ORIGIN_ECHO_LIMIT: usize = 256;

/// actix-cors answers what it refuses (a preflight from an origin that is not
/// allowed, a method or header we do not allow) with a plain-text 400. Every
/// error of ours is `{"error": {...}}`, so such an answer becomes a
/// `cors_rejected` [`error::ApiError`] (same status, its headers kept). The
/// refusal is recognised by the `CorsError` the response carries, not by its
/// status or body.
async fn cors_errors_as_json(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let origin = req.headers().get(header::ORIGIN).map(|v| {
        let origin = String::from_utf8_lossy(v.as_bytes());
        let mut end = origin.len().min(ORIGIN_ECHO_LIMIT);
        while !origin.is_char_boundary(end) {
            end -= 1;
        }
        origin[..end].to_owned()
    });
    let res = next.call(req).await?;
    let Some(reason) = res
        .response()
        .error()
        .and_then(|e| e.as_error::<CorsError>())
        .map(cors_reason)
    else {
        return Ok(res.map_into_left_body());
    };
    let (req, refused) = res.into_parts();
    let mut answer = error::ApiError::CorsRejected { origin, reason }.error_response();
    for (name, value) in refused.headers() {
        if !answer.headers().contains_key(name) && name != header::CONTENT_LENGTH {
            answer.headers_mut().append(name.clone(), value.clone());
        }
    }
    Ok(ServiceResponse::new(req, answer).map_into_right_body())
}

fn cors_reason(error: &CorsError) -> String {
    match error {
        CorsError::OriginNotAllowed => {
            "the origin is not allowed (server.cors_allowed_origins)".to_owned()
        }
        CorsError::MethodNotAllowed => {
            "the requested method is not allowed (GET and POST are)".to_owned()
        }
        CorsError::HeadersNotAllowed => "one or more requested headers are not allowed".to_owned(),
        other => other.to_string(),
    }
}
