//! Request metrics and the access log line of every request: INFO for
//! answers up to 4xx (a client's mistake, or a scanner, is not our
//! problem), ERROR for 5xx with the error's cause chain.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, web};

use crate::api::error::ApiError;
use crate::backstage::error::BackstageError;
use crate::metrics::{Metrics, UNMATCHED};

/// What an error answer was about, with its causes when it is one of ours.
fn describe(error: &actix_web::Error) -> String {
    if let Some(e) = error.as_error::<ApiError>() {
        return chain(e);
    }
    if let Some(e) = error.as_error::<BackstageError>() {
        return chain(e);
    }
    error.to_string()
}

/// An error and its sources on one line (`a: b: c`), so a log shows why.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        // thiserror's `transparent` and wrappers often repeat their cause.
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

/// Middleware: count every answered request by route template and status.
pub async fn track_requests(
    metrics: web::Data<Metrics>,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let start = Instant::now();
    let method = req.method().clone();
    // Never clone the HttpRequest before `next.call`: routing needs it unique.
    let result = next.call(req).await;
    let (route, status, error) = match &result {
        Ok(res) => (
            res.request()
                .match_pattern()
                .unwrap_or_else(|| UNMATCHED.to_owned()),
            res.status().as_u16(),
            res.response().error().map(describe),
        ),
        // Errors raised by middleware (not handlers) carry no request.
        Err(e) => (
            UNMATCHED.to_owned(),
            e.as_response_error().status_code().as_u16(),
            Some(describe(e)),
        ),
    };
    let elapsed = start.elapsed();
    metrics.observe_request(method.as_str(), &route, status, elapsed);
    let latency_ms = elapsed.as_millis() as u64;
    if status >= 500 {
        tracing::error!(
            http.route = %route,
            http.status_code = status,
            latency_ms,
            error = error.as_deref().unwrap_or(""),
            "request failed"
        );
    } else {
        tracing::info!(
            http.route = %route,
            http.status_code = status,
            latency_ms,
            "request finished"
        );
    }
    result
}

#[cfg(test)]
mod tests {
    use crate::telemetry::captured::Captured;

    use actix_web::middleware::from_fn;
    use actix_web::test as atest;
    use actix_web::{App, HttpResponse};
    use tracing_actix_web::TracingLogger;
    use tracing_subscriber::fmt;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;
    use crate::middleware::telemetry::RequestSpan;

    /// A scanner's 404s are INFO lines, nothing at WARN; a 5xx is one ERROR
    /// line that carries the error.
    #[actix_web::test]
    async fn client_errors_log_at_info_and_server_errors_at_error() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::registry()
            .with(fmt::layer().json().with_writer(move || writer.clone()));
        let _guard = tracing::subscriber::set_default(subscriber);
        let app = atest::init_service(
            App::new()
                .app_data(web::Data::new(Metrics::new()))
                .route(
                    "/boom",
                    web::get().to(|| async {
                        Err::<HttpResponse, _>(ApiError::Internal("the disk is on fire".into()))
                    }),
                )
                .route(
                    "/missing",
                    web::get().to(|| async {
                        Err::<HttpResponse, _>(ApiError::NotFound {
                            what: "service PX".into(),
                        })
                    }),
                )
                .wrap(from_fn(track_requests))
                .wrap(TracingLogger::<RequestSpan>::new()),
        )
        .await;
        for path in ["/missing", "/missing", "/boom"] {
            atest::call_service(&app, atest::TestRequest::get().uri(path).to_request()).await;
        }
        let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = logs
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let at = |level: &str| lines.iter().filter(|l| l["level"] == level).count();
        assert_eq!(at("WARN"), 0, "{logs}");
        assert_eq!(at("ERROR"), 1, "{logs}");
        assert!(at("INFO") >= 2, "{logs}");
        let error = lines.iter().find(|l| l["level"] == "ERROR").unwrap();
        assert_eq!(error["fields"]["http.status_code"], 500, "{logs}");
    }

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("inner")]
    struct Inner(#[source] std::io::Error);

    #[test]
    fn the_chain_names_every_cause_once() {
        let e = Outer(Inner(std::io::Error::other("connection reset")));
        assert_eq!(chain(&e), "outer: inner: connection reset");
    }
}
