//! `/ui`: the embeddable `<dutycard-card>` web component and the demo page,
//! compiled into the binary (no build step, nothing from a CDN).
//!
//! Static files only: they carry no data and need no caller auth; the
//! component reads `/v1` with the caller's own token. Like `/docs`, these
//! routes are left out of the OpenAPI document (they are not an API).
//! Every answer has its content type, a strong ETag (`If-None-Match` gives
//! 304), `nosniff` and no referrer; the page also gets a strict CSP and may
//! not be framed. The scripts may be loaded by other origins (portals
//! embedding the card): `Cross-Origin-Resource-Policy: cross-origin`; their
//! API calls still need the portal's origin in `server.cors_allowed_origins`.

use std::sync::LazyLock;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use crate::config::BackstageSettings;
use crate::http::RequestError;

/// Where the files are served.
pub const UI: &str = "/ui";

/// The page's placeholder for the services listing URL.
const SERVICES_URL: &str = "{{SERVICES_URL}}";

/// The demo page allows only this server's scripts, styles and API, and
/// avatars from anywhere over HTTPS (PagerDuty's come from Gravatar).
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' https: data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// Scripts and styles: reused for 5 minutes, then revalidated (the URLs
/// carry no version, so an upgrade shows within minutes).
const ASSET_CACHE: &str = "public, max-age=300, must-revalidate";

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "dutycard-card.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../ui/dutycard-card.js"),
    },
    Asset {
        name: "render.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../ui/render.js"),
    },
    Asset {
        name: "form.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../ui/form.js"),
    },
    Asset {
        name: "styles.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../ui/styles.js"),
    },
    Asset {
        name: "demo.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../ui/demo.js"),
    },
    Asset {
        name: "demo.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../ui/demo.css"),
    },
];

const PAGE: &str = include_str!("../../ui/index.html");

/// The files' ETags, computed once.
static ETAGS: LazyLock<Vec<String>> =
    LazyLock::new(|| ASSETS.iter().map(|a| etag_of(a.body)).collect());

/// A strong ETag: the first 16 bytes of the body's SHA-256, in hex.
fn etag_of(body: &str) -> String {
    let digest = Sha256::digest(body.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// The demo page with its services listing URL filled in, built once.
#[derive(Debug, Clone)]
pub struct DemoPage {
    html: String,
    etag: String,
}

impl DemoPage {
    /// The page lists the services through the Backstage route
    /// `GET {prefix}/services` (every account); with the Backstage routes
    /// off it says so and takes `?services=` ids instead.
    pub fn new(backstage: &BackstageSettings) -> Self {
        let url = if backstage.enabled {
            // Relative to /ui/, so the page also works behind a reverse
            // proxy that mounts dutycard under a path.
            format!("..{}/services", backstage.prefix.trim_end_matches('/'))
        } else {
            String::new()
        };
        let html = PAGE.replace(SERVICES_URL, &html_attribute(&url));
        let etag = etag_of(&html);
        DemoPage { html, etag }
    }
}

/// Escapes a value for a double-quoted HTML attribute.
fn html_attribute(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Registers `/ui`, `/ui/` and `/ui/{file}` (outside the OpenAPI document).
pub fn configure(page: DemoPage) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(web::Data::new(page))
            .service(web::redirect(UI, "/ui/"))
            .route("/ui/", web::get().to(demo_page))
            .route("/ui/{file}", web::get().to(asset));
    }
}

/// `GET /ui/`: the demo page.
async fn demo_page(req: HttpRequest, page: web::Data<DemoPage>) -> HttpResponse {
    let mut res = answer(
        &req,
        "text/html; charset=utf-8",
        &page.etag,
        "no-cache",
        page.html.clone(),
    );
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}

/// `GET /ui/{file}`: one of the component's files; anything else is our
/// JSON 404.
async fn asset(req: HttpRequest, file: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let Some(i) = ASSETS.iter().position(|a| a.name == file.as_str()) else {
        return Err(ApiError::from(RequestError::RouteNotFound {
            method: req.method().to_string(),
            path: req.path().to_owned(),
        }));
    };
    let asset = &ASSETS[i];
    let mut res = answer(
        &req,
        asset.content_type,
        &ETAGS[i],
        ASSET_CACHE,
        asset.body.to_owned(),
    );
    res.headers_mut().insert(
        header::HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("cross-origin"),
    );
    Ok(res)
}

/// 200 with the body, or 304 when `If-None-Match` names its ETag; both
/// with the validators and the shared security headers.
fn answer(
    req: &HttpRequest,
    content_type: &'static str,
    etag: &str,
    cache_control: &'static str,
    body: String,
) -> HttpResponse {
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut builder = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    builder
        .insert_header((header::ETAG, etag.to_owned()))
        .insert_header((header::CACHE_CONTROL, cache_control))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"));
    if fresh {
        builder.finish()
    } else {
        builder
            .insert_header((header::CONTENT_TYPE, content_type))
            .body(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_component_imports_is_served() {
        for asset in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            for line in asset.body.lines() {
                if let Some(rest) = line.trim().strip_prefix("import ")
                    && let Some(from) = rest.split("from \"./").nth(1)
                {
                    let name = from.split('"').next().unwrap_or("");
                    assert!(
                        ASSETS.iter().any(|a| a.name == name),
                        "{} imports {name}, which is not served",
                        asset.name
                    );
                }
            }
        }
    }

    #[test]
    fn the_page_names_the_services_route_or_none() {
        let page = DemoPage::new(&BackstageSettings::default());
        assert!(
            page.html.contains(r#"content="../api/pagerduty/services""#),
            "{}",
            page.html
        );
        let off = DemoPage::new(&BackstageSettings {
            enabled: false,
            ..BackstageSettings::default()
        });
        assert!(off.html.contains(r#"name="dutycard-services" content="""#));
        assert!(!off.html.contains(SERVICES_URL));
        assert_ne!(page.etag, off.etag);
    }

    #[test]
    fn attribute_values_are_escaped() {
        assert_eq!(html_attribute(r#"/a"<b>&"#), "/a&quot;&lt;b&gt;&amp;");
    }
}
