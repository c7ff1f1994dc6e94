//! The bundled API explorer under `/docs`: never framed by another site,
//! no content sniffing, and an unknown file is our JSON 404 (Swagger UI's
//! own answer is an empty 404).

use actix_web::Error;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;

use crate::api::error::ApiError;
use crate::http::RequestError;

/// Where the explorer is served.
pub const DOCS: &str = "/docs";

/// Middleware: hardens the answers under [`DOCS`].
pub async fn harden(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let path = req.path();
    if path != DOCS && !path.starts_with("/docs/") {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let (method, path) = (req.method().to_string(), path.to_owned());
    let mut res = next.call(req).await?;
    let res = if res.status() == StatusCode::NOT_FOUND {
        let (req, _) = res.into_parts();
        let answer = actix_web::ResponseError::error_response(&ApiError::from(
            RequestError::RouteNotFound { method, path },
        ));
        ServiceResponse::new(req, answer).map_into_right_body()
    } else {
        let headers = res.headers_mut();
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("frame-ancestors 'none'"),
        );
        res.map_into_left_body()
    };
    Ok(res)
}
