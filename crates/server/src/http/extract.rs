//! JSON body and query extractors whose errors name the offending field.
//!
//! actix's own `web::Json`/`web::Query` report serde's message, which for a
//! wrong type says "invalid type: string, expected u32" without saying
//! *where*. These run the same deserialisation through `serde_path_to_error`.

//!
//! Both are generic over the surface's error type `E` (`/v1`'s `ApiError`,
//! Backstage's `BackstageError`): a bad body is answered in the shape the
//! caller reads, built once.

use std::marker::PhantomData;

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::{FromRequest, HttpMessage, HttpRequest, ResponseError, mime, web};
use futures::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use super::RequestError;

/// How a body may arrive, as app data: at most `limit` bytes
/// (`server.body_limit_bytes`), all of it within `read_timeout` (the
/// request deadline), so a client trickling a body cannot hold a
/// connection and a worker's attention forever.
#[derive(Debug, Clone, Copy)]
pub struct BodyRules {
    pub limit: usize,
    pub read_timeout: std::time::Duration,
}

impl Default for BodyRules {
    fn default() -> Self {
        BodyRules {
            limit: 256 * 1024,
            read_timeout: std::time::Duration::from_secs(10),
        }
    }
}

/// A JSON request body of type `T`; errors are answered as `E`.
#[derive(Debug)]
pub struct Json<T, E>(pub T, pub PhantomData<fn() -> E>);

impl<T: DeserializeOwned + 'static, E: From<RequestError> + ResponseError + 'static> FromRequest
    for Json<T, E>
{
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = match req.mime_type() {
            Ok(Some(mime)) => {
                mime.subtype() == mime::JSON || mime.suffix().is_some_and(|s| s == mime::JSON)
            }
            _ => false,
        };
        let rules = req.app_data::<BodyRules>().copied().unwrap_or_default();
        let limit = rules.limit;
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let fail = |e: RequestError| actix_web::Error::from(E::from(e));
            if !is_json {
                return Err(fail(RequestError::UnsupportedMediaType));
            }
            let read = tokio::time::timeout(rules.read_timeout, body)
                .await
                .map_err(|_| {
                    fail(RequestError::BodyTimeout {
                        timeout_ms: rules.read_timeout.as_millis() as u64,
                    })
                })?;
            let bytes = read.map_err(|e| {
                fail(match e.as_error::<PayloadError>() {
                    Some(PayloadError::Overflow) => RequestError::PayloadTooLarge { limit },
                    _ => RequestError::InvalidBody {
                        field: None,
                        message: e.to_string(),
                    },
                })
            })?;
            if bytes.len() > limit {
                return Err(fail(RequestError::PayloadTooLarge { limit }));
            }
            parse_json(&bytes)
                .map(|body| Json(body, PhantomData))
                .map_err(fail)
        })
    }
}

/// Deserialize a JSON body; the error names the offending field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, RequestError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let message = e.inner().to_string();
        let field = field_name(&e.path().to_string(), &message);
        RequestError::InvalidBody { field, message }
    })
}

/// Query-string parameters of type `T`; errors are answered as `E`.
#[derive(Debug)]
pub struct Query<T, E>(pub T, pub PhantomData<fn() -> E>);

/// Parse a raw query string; the error names the offending parameter.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, RequestError> {
    let de = serde_urlencoded::Deserializer::new(url::form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let message = e.inner().to_string();
        let parameter =
            field_name(&e.path().to_string(), &message).unwrap_or_else(|| "query".into());
        RequestError::InvalidParameter { parameter, message }
    })
}

impl<T: DeserializeOwned, E: From<RequestError> + ResponseError + 'static> FromRequest
    for Query<T, E>
{
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(
            parse_query(req.query_string())
                .map(|query| Query(query, PhantomData))
                .map_err(|e| E::from(e).into()),
        )
    }
}

/// The field a deserialisation error is about: the path when serde_path_to_error
/// has one, otherwise the name in serde's "unknown/missing field `x`" message.
fn field_name(path: &str, message: &str) -> Option<String> {
    if !path.is_empty() && path != "." {
        return Some(path.to_owned());
    }
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Params {
        incidents: Option<u32>,
        include: Option<String>,
    }

    #[test]
    fn query_type_errors_name_the_parameter() {
        let err = parse_query::<Params>("incidents=lots").unwrap_err();
        assert!(
            matches!(&err, RequestError::InvalidParameter { parameter, .. } if parameter == "incidents"),
            "{err:?}"
        );
    }

    #[test]
    fn unknown_query_parameters_are_named() {
        let err = parse_query::<Params>("incidnets=3").unwrap_err();
        assert!(
            matches!(&err, RequestError::InvalidParameter { parameter, .. } if parameter == "incidnets"),
            "{err:?}"
        );
    }

    #[test]
    fn valid_query_parses() {
        let p = parse_query::<Params>("incidents=3&include=standards").unwrap();
        assert_eq!(p.incidents, Some(3));
        assert_eq!(p.include.as_deref(), Some("standards"));
    }
}
