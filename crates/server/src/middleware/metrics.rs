//! Request metrics and the access log line of every request.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, web};

use crate::metrics::{Metrics, UNMATCHED};

/// Middleware: count every answered request by route template and status.
pub async fn track_requests(
    metrics: web::Data<Metrics>,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let start = Instant::now();
    let method = req.method().to_string();
    // Never clone the HttpRequest before `next.call`: routing needs it unique.
    let result = next.call(req).await;
    let (route, status) = match &result {
        Ok(res) => (
            res.request()
                .match_pattern()
                .unwrap_or_else(|| UNMATCHED.to_owned()),
            res.status().as_u16(),
        ),
        // Errors raised by middleware (not handlers) carry no request.
        Err(e) => (
            UNMATCHED.to_owned(),
            e.as_response_error().status_code().as_u16(),
        ),
    };
    let elapsed = start.elapsed();
    metrics.observe_request(&method, &route, status, elapsed);
    tracing::info!(
        http.route = %route,
        http.status_code = status,
        latency_ms = elapsed.as_millis() as u64,
        "request finished"
    );
    result
}
