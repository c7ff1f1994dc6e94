//! One span per request carrying its `X-Request-Id` (the subscriber that
//! writes the lines is set up by [`crate::telemetry`]).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RootSpanBuilder};

/// Header carrying the request id, taken from the caller or generated.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the current request (in request extensions): the header
/// value itself, so the extension, the span and the response share one
/// copy (a clone is a reference count).
#[derive(Debug, Clone)]
pub struct RequestId(pub HeaderValue);

impl RequestId {
    /// The id as text (it is visible ASCII: checked, or a UUID).
    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or_default()
    }
}

/// Takes `X-Request-Id` from the request when it is a sane token (at most 128
/// visible ASCII characters), generates a UUID otherwise, and echoes it in the
/// response. Must wrap `TracingLogger` so the span can record it.
pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let value = match req
        .headers()
        .get(&X_REQUEST_ID)
        .filter(|v| v.to_str().is_ok_and(is_valid_request_id))
    {
        Some(given) => given.clone(),
        None => {
            let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
            let id = uuid::Uuid::new_v4().hyphenated();
            // A UUID's text is always a valid header value.
            HeaderValue::from_str(id.encode_lower(&mut text))
                .unwrap_or(HeaderValue::from_static(""))
        }
    };
    req.extensions_mut().insert(RequestId(value.clone()));
    // Never clone the HttpRequest before `next.call`: routing needs it unique.
    match next.call(req).await {
        Ok(mut res) => {
            res.headers_mut().insert(X_REQUEST_ID.clone(), value);
            Ok(res)
        }
        Err(mut e) => {
            e.add_response_mapper(move |mut res| {
                res.headers_mut()
                    .insert(X_REQUEST_ID.clone(), value.clone());
                res
            });
            Err(e)
        }
    }
}

fn is_valid_request_id(v: &str) -> bool {
    !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic())
}

/// Root span of each request. Unlike `tracing_actix_web::root_span!` it logs
/// the path without the query string: `?integration_key=` is a secret.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let extensions = request.extensions();
        let id = extensions.get::<RequestId>().map_or("", RequestId::as_str);
        tracing::info_span!(
            "http_request",
            http.method = %request.method(),
            http.target = %request.path(),
            request_id = %id,
            caller = tracing::field::Empty,
            http.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

#[cfg(test)]
mod tests {
    use crate::telemetry::captured::Captured;

    use actix_web::test as atest;
    use actix_web::{App, HttpResponse, middleware::from_fn, web};
    use tracing_actix_web::TracingLogger;

    use tracing_subscriber::fmt;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[actix_web::test]
    async fn request_logs_carry_the_request_id_but_never_the_query_string() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::registry().with(
            fmt::layer()
                .json()
                .with_current_span(true)
                .with_writer(move || writer.clone()),
        );
        let _guard = tracing::subscriber::set_default(subscriber);

        let app = atest::init_service(
            App::new()
                .route(
                    "/v1/cards",
                    web::get().to(|| async {
                        tracing::info!("handler ran");
                        HttpResponse::Ok().finish()
                    }),
                )
                .wrap(TracingLogger::<RequestSpan>::new())
                .wrap(from_fn(request_id)),
        )
        .await;
        let req = atest::TestRequest::get()
            .uri("/v1/cards?integration_key=SECRETKEY0123456789abcdef012345")
            .insert_header(("x-request-id", "req-42"))
            .to_request();
        let res = atest::call_service(&app, req).await;
        assert_eq!(res.headers().get("x-request-id").unwrap(), "req-42");

        let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(logs.contains("handler ran"), "{logs}");
        assert!(logs.contains("\"request_id\":\"req-42\""), "{logs}");
        assert!(logs.contains("/v1/cards"), "{logs}");
        assert!(!logs.contains("SECRETKEY"), "query string logged: {logs}");
    }

    #[test]
    fn request_ids_are_bounded_visible_ascii() {
        assert!(is_valid_request_id("abc-123_x.y"));
        assert!(!is_valid_request_id(""));
        assert!(!is_valid_request_id("has space"));
        assert!(!is_valid_request_id(&"x".repeat(129)));
        assert!(!is_valid_request_id("nul\u{0}"));
    }
}
