//! `HEAD` wherever `GET` works (uptime checkers use it): the request is
//! routed as a `GET`; actix's HTTP/1 codec remembers that the request was a
//! `HEAD` and sends the headers (with the GET's `Content-Length`) without
//! the body.

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;

/// Middleware (outermost, so routing sees the `GET`).
pub async fn head_as_get(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
    }
    next.call(req).await
}
