//! Unknown routes: a known path with another method is a 405 with `Allow`,
//! anything else a 404, each in the surface's error shape.

use actix_web::dev::ResourceDef;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};

use super::RequestError;

/// The documented routes and their methods, to tell a 405 from a 404.
#[derive(Debug, Default)]
pub struct KnownRoutes(Vec<(ResourceDef, Vec<&'static str>)>);

impl KnownRoutes {
    /// From the OpenAPI document (its paths use actix's `{param}` syntax).
    pub fn from_spec(spec: &utoipa::openapi::OpenApi) -> Self {
        let routes = spec
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let methods = [
                    ("GET", item.get.is_some()),
                    ("POST", item.post.is_some()),
                    ("PUT", item.put.is_some()),
                    ("DELETE", item.delete.is_some()),
                    ("PATCH", item.patch.is_some()),
                ]
                .into_iter()
                .filter_map(|(m, present)| present.then_some(m))
                .collect();
                (ResourceDef::new(path.as_str()), methods)
            })
            .collect();
        KnownRoutes(routes)
    }

    fn allowed(&self, path: &str) -> Option<&[&'static str]> {
        self.0
            .iter()
            .find(|(def, _)| def.is_match(path))
            .map(|(_, methods)| methods.as_slice())
    }

    /// What a request that matched no route gets told.
    pub fn not_found(&self, req: &HttpRequest) -> RequestError {
        let method = req.method().to_string();
        let path = req.path().to_owned();
        match self.allowed(&path) {
            Some(allowed) => RequestError::MethodNotAllowed {
                method,
                path,
                allow: allowed.join(", "),
            },
            None => RequestError::RouteNotFound { method, path },
        }
    }
}

/// A default service answering in the error shape `E`.
pub async fn not_found<E: From<RequestError> + ResponseError>(
    req: HttpRequest,
    known: web::Data<KnownRoutes>,
) -> HttpResponse {
    E::from(known.not_found(&req)).error_response()
}
