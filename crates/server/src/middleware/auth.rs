//! Caller authentication as a middleware: the [`Caller`] goes into the
//! request extensions, a refusal is answered in the surface's error shape.

use std::future::{Ready, ready};
use std::marker::PhantomData;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::AUTHORIZATION;
use actix_web::middleware::Next;
use actix_web::{Error, FromRequest, HttpMessage, HttpRequest, ResponseError, web};

use crate::auth::{AuthError, Authenticator, Caller};

/// Reject unauthenticated requests with `E`'s 401 (or 503 when the identity
/// provider is down), else put the [`Caller`] in the request extensions.
pub async fn require_caller<E: From<AuthError> + ResponseError + 'static>(
    auth: web::Data<Authenticator>,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match auth.identify(header).await {
        Ok(caller) => {
            // The request span (telemetry::RequestSpan) has a `caller` field.
            tracing::Span::current().record("caller", caller.name.as_str());
            req.extensions_mut().insert(caller);
            Ok(next.call(req).await?.map_into_left_body())
        }
        Err(e) => Ok(req.error_response(E::from(e)).map_into_right_body()),
    }
}

/// The authenticated caller, for handlers behind [`require_caller`]; a
/// handler outside it gets `E`'s 401.
#[derive(Debug, Clone)]
pub struct Authenticated<E>(pub Caller, PhantomData<fn() -> E>);

impl<E> Authenticated<E> {
    /// The caller.
    pub fn into_inner(self) -> Caller {
        self.0
    }
}

impl<E: From<AuthError> + ResponseError + 'static> FromRequest for Authenticated<E> {
    type Error = Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<Caller>()
                .cloned()
                .map(|caller| Authenticated(caller, PhantomData))
                .ok_or_else(|| E::from(AuthError::Unauthorized).into()),
        )
    }
}
