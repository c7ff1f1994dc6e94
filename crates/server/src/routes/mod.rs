//! HTTP routes. Handlers are thin: extract, call one service, map the result.

use actix_web::middleware::{Condition, from_fn};

use crate::auth;

pub mod cards;
pub mod health;
pub mod incidents;
pub mod metrics;

/// What changes the route tree (not the handlers' state).
#[derive(Debug, Clone, Copy, Default)]
pub struct RouteOptions {
    /// `server.auth.metrics_require_auth`.
    pub metrics_require_auth: bool,
}

/// Register every documented route. Used by the app and by `openapi::spec`.
pub fn configure(
    options: RouteOptions,
) -> impl FnOnce(&mut utoipa_actix_web::service_config::ServiceConfig) {
    move |cfg| {
        cfg.service(health::get_healthz)
            .service(health::get_readyz)
            .service(
                utoipa_actix_web::scope("/metrics")
                    .wrap(Condition::new(
                        options.metrics_require_auth,
                        from_fn(auth::require_caller),
                    ))
                    .service(metrics::get_metrics),
            )
            .service(
                utoipa_actix_web::scope("/v1")
                    .wrap(from_fn(auth::require_caller))
                    .service(cards::batch_cards)
                    .service(cards::get_card)
                    .service(cards::find_card)
                    .service(incidents::trigger_incident)
                    .service(incidents::acknowledge_incident)
                    .service(incidents::resolve_incident),
            );
    }
}
