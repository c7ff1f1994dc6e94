//! HTTP plumbing shared by both surfaces (`/v1` in [`crate::api`] and the
//! Backstage routes in [`crate::backstage`]): extractors whose errors name
//! the field ([`extract`]), the request deadline ([`deadline`]), card ETags
//! ([`cache`]), the statuses of the trigger's outcomes ([`trigger`]), and
//! unknown routes ([`routes`]).
//!
//! Protocol-level failures are a [`RequestError`]; each surface's error type
//! implements `From<RequestError>` and renders it in its own shape, so an
//! error is built once, directly in the shape its caller reads.

pub mod cache;
pub mod deadline;
pub mod extract;
pub mod gzip;
pub mod rendered;
pub mod routes;
pub mod stamp;
pub mod trigger;

/// `Content-Type: application/json`, the value `ContentType::json()` gives,
/// made once: that header builds its value from the mime type (an
/// allocation and a copy) on every answer of every cached route.
pub const JSON_CONTENT_TYPE: (
    actix_web::http::header::HeaderName,
    actix_web::http::header::HeaderValue,
) = (
    actix_web::http::header::CONTENT_TYPE,
    actix_web::http::header::HeaderValue::from_static("application/json"),
);

/// What can go wrong with a request before any domain work: its body, its
/// parameters, or its route.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// A request body that is not the JSON we expect.
    #[error("invalid request body: {message}")]
    InvalidBody {
        /// Path of the offending field (`service_ids[3]`), when known.
        field: Option<String>,
        message: String,
    },
    /// A bad query-string or path parameter.
    #[error("invalid parameter `{parameter}`: {message}")]
    InvalidParameter { parameter: String, message: String },
    #[error("request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// The body did not arrive within the request deadline.
    #[error("the request body did not arrive within {timeout_ms} ms")]
    BodyTimeout { timeout_ms: u64 },
    #[error("no route for {method} {path}")]
    RouteNotFound { method: String, path: String },
    /// The path exists with other methods (`allow` lists them).
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed {
        method: String,
        path: String,
        allow: String,
    },
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{ContentType, TryIntoHeaderPair};

    #[test]
    fn the_json_content_type_is_the_one_actix_builds() {
        let (name, value) = ContentType::json().try_into_pair().unwrap();
        assert_eq!((name, value), super::JSON_CONTENT_TYPE);
    }
}
