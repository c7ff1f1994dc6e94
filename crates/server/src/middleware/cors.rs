//! CORS: the configured origins plus same-origin requests, and refusals
//! answered in our JSON error shape instead of actix-cors's plain text.

use actix_cors::{Cors, CorsError};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{RequestHead, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{Error, ResponseError};

use crate::api::error::ApiError;
use crate::http::trigger::IDEMPOTENT_REPLAYED;
use crate::middleware::telemetry;

/// Configured origins plus same-origin requests (the bundled API explorer
/// at `/docs` sends an `Origin` header on POST).
pub fn cors(origins: &[String]) -> Cors {
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
            IDEMPOTENT_REPLAYED,
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
/// `cors_rejected` [`ApiError`] (same status, its headers kept). The
/// refusal is recognised by the `CorsError` the response carries, not by its
/// status or body.
pub async fn cors_errors_as_json(
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
    let mut answer = ApiError::CorsRejected { origin, reason }.error_response();
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
