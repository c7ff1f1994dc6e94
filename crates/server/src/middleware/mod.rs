//! The middleware layers, outermost first: `HEAD` as `GET` ([`head`]), the
//! hardened `/docs` ([`docs`]), the request id
//! ([`telemetry::request_id`]) and its span, request metrics and the access
//! log ([`metrics::track_requests`]), CORS refusals in our error shape
//! ([`cors`]), and caller authentication ([`auth::require_caller`], per
//! surface).

pub mod auth;
pub mod cors;
pub mod docs;
pub mod head;
pub mod metrics;
pub mod telemetry;
