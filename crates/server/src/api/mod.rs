//! The `/v1` API, `/healthz`, `/readyz` and `/metrics`. Handlers are thin:
//! parse, call one domain method, map the result; every error is an
//! [`error::ApiError`].

use actix_web::middleware::{Condition, from_fn};

use crate::middleware::auth::require_caller;
use error::ApiError;

pub mod cards;
pub mod entities;
pub mod entities_batch;
pub mod error;
pub mod health;
pub mod incidents;
pub mod metrics;
pub mod stream;
pub mod ui;
pub mod webhooks;

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
                        from_fn(require_caller::<ApiError>),
                    ))
                    .service(metrics::get_metrics),
            )
            // Before the /v1 scope and outside its caller auth: PagerDuty
            // authenticates by signature (crate::webhooks). In a scope of
            // their own because actix matches a `{param}` pattern with a
            // regex (allocating its captures) even when the path cannot
            // match: as a bare route, `/{account}` cost every `/v1` and
            // Backstage request one; now a prefix comparison turns them away.
            .service(
                utoipa_actix_web::scope("/v1/webhooks/pagerduty")
                    .service(webhooks::receive_webhook)
                    .service(webhooks::receive_account_webhook),
            )
            .service(
                utoipa_actix_web::scope("/v1")
                    .wrap(from_fn(require_caller::<ApiError>))
                    // Exact paths before `{param}` patterns, the card
                    // (the most read) before its stream: a card read tries
                    // one regex, not two. No path matches two of these.
                    .service(cards::batch_cards)
                    .service(cards::find_card)
                    .service(stream::stream_cards)
                    .service(cards::get_card)
                    .service(stream::stream_card)
                    .service(entities::get_entity_card)
                    .service(entities::stream_entity)
                    .service(entities_batch::batch_entity_cards)
                    .service(incidents::trigger_incident)
                    .service(incidents::acknowledge_incident)
                    .service(incidents::resolve_incident),
            );
    }
}
