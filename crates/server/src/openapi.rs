//! The OpenAPI document: paths come from the `#[utoipa::path]` handlers
//! registered in `api::configure` and `backstage::configure`, so the spec and
//! the router cannot drift.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{InfoBuilder, LicenseBuilder, OpenApi as OpenApiDoc};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

/// Name of the bearer-token security scheme used by `/v1` operations.
pub const BEARER: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    modifiers(&Meta),
    tags(
        (name = "cards", description = "Aggregated PagerDuty service cards"),
        (name = "operations", description = "Health, readiness and metrics"),
        (name = "incidents", description = "Trigger, acknowledge and resolve incidents through PagerDuty's Events API v2, server-side"),
        (name = "legacy", description = "Read-only PagerDuty REST passthrough for the legacy Backstage frontend (`@backstage/plugin-pagerduty` 0.6.8), under `backstage.legacy_prefix` (default `/pagerduty-rest`): PagerDuty's paths, shapes and error bodies, answered from the caches"),
        (name = "webhooks", description = "PagerDuty v3 webhooks in: a signed delivery drops the sections it changed, and card streams show the refetched card"),
        (name = "backstage", description = "Drop-in routes of PagerDuty's Backstage backend plugin (under `backstage.prefix`, default `/api/pagerduty`): same paths, envelopes and `{\"errors\": [...]}` bodies"),
    )
)]
struct ApiDoc;

struct Meta;

impl Modify for Meta {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        // Pinned, not taken from Cargo: a crate version bump must not dirty
        // the committed spec.
        openapi.info = InfoBuilder::new()
            .title("dutycard")
            .version("v1")
            .description(Some(
                "PagerDuty service cards for developer portals: on-call, escalation policy, \
                 open incidents, recent changes, standards and metrics of a service in one call.",
            ))
            .license(Some(
                LicenseBuilder::new()
                    .name("Apache-2.0")
                    .identifier(Some("Apache-2.0"))
                    .build(),
            ))
            .build();
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A static token from `[[server.auth.tokens]]` (server.auth.mode = \"static\"), or a JWT verified against `server.auth.jwt.jwks_url` (server.auth.mode = \"jwt\").",
                    ))
                    .build(),
            ),
        );
    }
}

/// The base document (info, tags, security schemes) without paths.
pub fn base() -> OpenApiDoc {
    ApiDoc::openapi()
}

/// The full spec, as served at `/openapi.json`.
pub fn spec() -> OpenApiDoc {
    actix_web::App::new()
        .into_utoipa_app()
        .openapi(base())
        .configure(crate::api::configure(crate::api::RouteOptions::default()))
        .configure(crate::backstage::configure(
            crate::backstage::BackstageRoutes::default(),
        ))
        .split_for_parts()
        .1
}

/// The spec as served when callers are not authenticated
/// (`server.auth.mode = "none"`): no operation claims a bearer requirement
/// and the scheme is gone, so generated clients and the explorer do not
/// ask for a token that nothing checks.
pub fn without_auth(mut doc: OpenApiDoc) -> OpenApiDoc {
    doc.security = None;
    if let Some(components) = doc.components.as_mut() {
        components.security_schemes.remove(BEARER);
    }
    for item in doc.paths.paths.values_mut() {
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ]
        .into_iter()
        .flatten()
        {
            op.security = None;
        }
    }
    doc
}

/// The spec as committed in `openapi/openapi.json` (pretty JSON + newline).
pub fn spec_json() -> String {
    let mut text = spec()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}
