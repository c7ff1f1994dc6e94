//! `/v1/cards`: aggregated PagerDuty service cards.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use bytes::{BufMut, Bytes, BytesMut};
use cards::{CardOptions, CardParts, IntegrationKey, ServiceCard, ServiceId, ServiceRef};
use pagerduty::InvalidId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody, ErrorDetail};
use crate::http::extract::{Json, Query};
use crate::http::rendered::{CardTemplate, Stamp};
use crate::http::{cache, deadline};
use crate::keys::KeyAliases;
use crate::state::AppState;

/// Largest batch accepted by `POST /v1/cards/batch`.
pub const MAX_BATCH: usize = 100;
/// Largest `incidents` / `change_events` list size.
pub const MAX_ITEMS: u32 = cards::MAX_ITEM_LIMIT as u32;

/// Options shared by every card route.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CardParams {
    /// Optional sections, comma-separated: `standards`, `metrics`.
    #[param(example = "standards,metrics")]
    pub include: Option<String>,
    /// How many of the newest open incidents to list (0-25, default 5).
    #[param(minimum = 0, maximum = 25)]
    pub incidents: Option<u32>,
    /// How many recent change events to list (0-25, default 5).
    #[param(minimum = 0, maximum = 25)]
    pub change_events: Option<u32>,
    /// PagerDuty account id (`[pagerduty.accounts.<id>]`); the default account when absent.
    pub account: Option<String>,
}

/// `GET /v1/cards?integration_key=...` parameters.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LookupParams {
    /// An integration (routing) key of one of the service's integrations.
    pub integration_key: String,
    /// Optional sections, comma-separated: `standards`, `metrics`.
    pub include: Option<String>,
    /// How many of the newest open incidents to list (0-25, default 5).
    #[param(minimum = 0, maximum = 25)]
    pub incidents: Option<u32>,
    /// How many recent change events to list (0-25, default 5).
    #[param(minimum = 0, maximum = 25)]
    pub change_events: Option<u32>,
    /// PagerDuty account id (`[pagerduty.accounts.<id>]`); the default account when absent.
    pub account: Option<String>,
}

/// The integration key is a secret: Debug never shows it.
impl std::fmt::Debug for LookupParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LookupParams")
            .field("integration_key", &"[redacted]")
            .field("include", &self.include)
            .field("incidents", &self.incidents)
            .field("change_events", &self.change_events)
            .field("account", &self.account)
            .finish()
    }
}

impl CardParams {
    /// Validated card options; errors name the parameter.
    pub fn options(&self) -> Result<CardOptions, ApiError> {
        let mut options = CardOptions {
            incident_limit: limit("incidents", self.incidents)?,
            change_event_limit: limit("change_events", self.change_events)?,
            ..CardOptions::default()
        };
        for part in self.include.iter().flat_map(|s| s.split(',')) {
            match part.trim() {
                "standards" => options.include_standards = true,
                "metrics" => options.include_metrics = true,
                "" => {}
                other => {
                    return Err(ApiError::InvalidParameter {
                        parameter: "include".into(),
                        message: format!(
                            "unknown section `{other}`: expected `standards` and/or `metrics`"
                        ),
                    });
                }
            }
        }
        Ok(options)
    }
}

impl LookupParams {
    fn split(self) -> (String, CardParams) {
        (
            self.integration_key,
            CardParams {
                include: self.include,
                incidents: self.incidents,
                change_events: self.change_events,
                account: self.account,
            },
        )
    }
}

fn limit(parameter: &str, value: Option<u32>) -> Result<Option<usize>, ApiError> {
    match value {
        Some(n) if n > MAX_ITEMS => Err(ApiError::InvalidParameter {
            parameter: parameter.into(),
            message: format!("must be between 0 and {MAX_ITEMS}, got {n}"),
        }),
        other => Ok(other.map(|n| n as usize)),
    }
}

/// A service id, or the rule it breaks (the id itself is not echoed).
pub(crate) fn parse_service_id(id: &str) -> Result<ServiceId, String> {
    ServiceId::new(id).map_err(|_| InvalidId::RULE.to_owned())
}

/// `POST /v1/cards/batch` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// PagerDuty service ids, 1 to 100; cards come back in this order.
    #[schema(example = json!(["PABC123", "PDEF456"]))]
    pub service_ids: Vec<String>,
}

/// What a card route answers when there is no card (for OpenAPI; each
/// route adds its 400 and 404).
#[derive(utoipa::IntoResponses)]
pub enum CardErrors {
    /// Missing or invalid bearer token
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// PagerDuty rejected dutycard's credentials or failed
    #[response(status = 502)]
    Upstream(ErrorBody),
    /// PagerDuty is rate limiting and no cached copy exists; see Retry-After
    #[response(status = 503)]
    RateLimited(ErrorBody),
    /// PagerDuty or the request deadline timed out
    #[response(status = 504)]
    Timeout(ErrorBody),
}

/// `POST /v1/cards/batch` answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchResponse {
    /// One entry per requested id, in request order.
    pub cards: Vec<BatchItem>,
}

/// One card of a batch, or why it could not be built.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchItem {
    /// The requested service id.
    pub service_id: String,
    /// The status `GET /v1/cards/{service_id}` would have answered.
    pub status: u16,
    /// The card, when `status` is 200.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card: Option<ServiceCard>,
    /// The error, otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

impl BatchItem {
    /// The entry of one card read (also a card stream's event).
    pub fn new(service_id: String, result: Result<ServiceCard, cards::CardError>) -> Self {
        match result {
            Ok(card) => BatchItem {
                service_id,
                status: 200,
                card: Some(card),
                error: None,
            },
            Err(e) => {
                let error = ApiError::from(e);
                BatchItem {
                    service_id,
                    status: actix_web::ResponseError::status_code(&error).as_u16(),
                    card: None,
                    error: Some(error.body().error),
                }
            }
        }
    }
}

/// Get the card of one service.
///
/// One call gives what a portal shows about a PagerDuty service: the service,
/// its escalation policy, who is on call per level, open incidents (counts and
/// the newest), recent change events and, on request, standards and 30-day
/// incident metrics. Each section carries `fetched_at`, `stale` and, when it
/// failed, an `error`: a card stays useful when one upstream call fails.
/// `ETag` / `If-None-Match` give 304; `Cache-Control: private, no-cache`
/// makes caches revalidate every view; each section's `max_age_secs` says
/// when it is due for refresh.
#[utoipa::path(
    tag = "cards",
    params(
        ("service_id" = String, Path, description = "PagerDuty service id", example = "PABC123"),
        CardParams,
        ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer"),
    ),
    responses(
        (status = 200, description = "The card", body = ServiceCard, headers(
            ("ETag" = String, description = "Weak validator of the card's content"),
            ("Cache-Control" = String, description = "`private, no-cache`: revalidate with If-None-Match (a 304 when unchanged)"),
        )),
        (status = 304, description = "Not modified since the ETag in If-None-Match"),
        (status = 400, description = "Bad parameter; `details.parameter` names it", body = ErrorBody),
        (status = 404, description = "No such PagerDuty service", body = ErrorBody),
        CardErrors,
    ),
    security(("bearer" = []))
)]
#[get("/cards/{service_id}")]
pub async fn get_card(
    req: HttpRequest,
    state: web::Data<AppState>,
    service_id: web::Path<String>,
    Query(params, _): Query<CardParams, ApiError>,
) -> Result<HttpResponse, ApiError> {
    let service_id =
        parse_service_id(&service_id).map_err(|message| ApiError::InvalidParameter {
            parameter: "service_id".into(),
            message,
        })?;
    let options = params.options()?;
    let account = state.account(params.account.as_deref())?;
    // Boxed: a card future is large (clippy::large_futures).
    let parts = Box::pin(
        account
            .cards
            .card_parts(ServiceRef::Id(service_id), &options),
    );
    let parts = deadline::within(state.request_deadline, parts).await??;
    card_response(&req, &state, &account.id, &parts, &options)
}

/// The card's answer from its rendered template (see [`crate::http::rendered`]).
fn card_response(
    req: &HttpRequest,
    state: &AppState,
    account: &str,
    parts: &CardParts,
    options: &CardOptions,
) -> Result<HttpResponse, ApiError> {
    let template = template(state, account, parts, options)?;
    Ok(cache::template_response(
        req,
        &template,
        &parts.max_age_secs(),
    ))
}

fn template(
    state: &AppState,
    account: &str,
    parts: &CardParts,
    options: &CardOptions,
) -> Result<Arc<CardTemplate>, ApiError> {
    state
        .rendered
        .card(account, parts, options)
        .map_err(|e| ApiError::Internal(format!("card could not be serialized: {e}")))
}

/// Find a card by integration key.
///
/// Resolves an integration (routing) key, as Backstage entities annotate it
/// (`pagerduty.com/integration-key`), to its service and returns that
/// service's card. Same options, caching headers and errors as
/// `GET /v1/cards/{service_id}`; an unknown key is a 404.
#[utoipa::path(
    tag = "cards",
    params(
        LookupParams,
        ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer"),
    ),
    responses(
        (status = 200, description = "The card of the key's service", body = ServiceCard, headers(
            ("ETag" = String, description = "Weak validator of the card's content"),
            ("Cache-Control" = String, description = "`private, no-cache`: revalidate with If-None-Match (a 304 when unchanged)"),
        )),
        (status = 304, description = "Not modified since the ETag in If-None-Match"),
        (status = 400, description = "Bad or missing parameter; `details.parameter` names it", body = ErrorBody),
        (status = 404, description = "No service has this integration key", body = ErrorBody),
        CardErrors,
    ),
    security(("bearer" = []))
)]
#[get("/cards")]
pub async fn find_card(
    req: HttpRequest,
    state: web::Data<AppState>,
    Query(params, _): Query<LookupParams, ApiError>,
) -> Result<HttpResponse, ApiError> {
    let (key, params) = params.split();
    let alias = KeyAliases::is_alias(&key);
    // Integration keys follow the id rule (1 to 64 letters and digits).
    if !alias && !pagerduty::ids::is_pagerduty_id(&key) {
        // The key is a secret: the message never repeats it.
        return Err(ApiError::InvalidParameter {
            parameter: "integration_key".into(),
            message: "must be an integration key (1 to 64 letters and digits) or its dcak_ alias"
                .into(),
        });
    }
    let options = params.options()?;
    let account = state.account(params.account.as_deref())?;
    // An alias (what Backstage answers show) stands for its key.
    let key = state.keys.key(account, &key).await?;
    let service = ServiceRef::IntegrationKey(IntegrationKey::new(key));
    let parts = Box::pin(account.cards.card_parts(service, &options));
    let parts = deadline::within(state.request_deadline, parts).await??;
    card_response(&req, &state, &account.id, &parts, &options)
}

/// Get the cards of many services.
///
/// Up to 100 service ids in one call; their upstream reads share batches.
/// Cards come back in request order, each with the status the single-card
/// route would answer and either the card or the error inline, so one unknown
/// id does not fail the others.
#[utoipa::path(
    tag = "cards",
    params(CardParams),
    request_body = BatchRequest,
    responses(
        (status = 200, description = "One entry per requested id, in order", body = BatchResponse),
        (status = 400, description = "Bad body or parameter; `details` names the field", body = ErrorBody),
        (status = 401, description = "Missing or invalid bearer token", body = ErrorBody),
        (status = 413, description = "Body larger than server.body_limit_bytes", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 504, description = "The request deadline passed", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/cards/batch")]
pub async fn batch_cards(
    req: HttpRequest,
    state: web::Data<AppState>,
    Query(params, _): Query<CardParams, ApiError>,
    Json(body, _): Json<BatchRequest, ApiError>,
) -> Result<HttpResponse, ApiError> {
    if body.service_ids.is_empty() || body.service_ids.len() > MAX_BATCH {
        return Err(ApiError::InvalidBody {
            field: Some("service_ids".into()),
            message: format!(
                "must hold 1 to {MAX_BATCH} service ids, got {}",
                body.service_ids.len()
            ),
        });
    }
    let ids = body
        .service_ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            parse_service_id(id).map_err(|message| ApiError::InvalidBody {
                field: Some(format!("service_ids[{i}]")),
                message,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let options = params.options()?;
    let account = state.account(params.account.as_deref())?;
    // Each card's wait ends at the card service's section timeout (80 % of
    // the request deadline): a card still loading then is an inline 504 and
    // the others are returned; the deadline here is only a backstop.
    let results = Box::pin(account.cards.cards_parts(&ids, &options));
    let results = deadline::within(state.request_deadline, results).await?;
    // The `BatchResponse` JSON, written from each card's rendered template
    // (byte for byte what serde writes: see the tests), gzip-spliced from
    // each template's compressed pieces for a client that accepts it.
    let now = Stamp::new(chrono::Utc::now());
    let mut out = BatchWriter::new(cache::accepts_gzip(&req), results.len());
    for (i, (service_id, result)) in body.service_ids.into_iter().zip(results).enumerate() {
        if i > 0 {
            out.literal(b",");
        }
        match result {
            Ok(parts) => {
                let template = template(&state, &account.id, &parts, &options)?;
                out.card(&service_id, &template, &parts.max_age_secs(), &now);
            }
            Err(e) => {
                let item = BatchItem::new(service_id, Err(e));
                let bytes = serde_json::to_vec(&item)
                    .map_err(|e| ApiError::Internal(format!("batch item: {e}")))?;
                out.literal(&bytes);
            }
        }
    }
    Ok(out.finish())
}

/// A batch answer being written, as it is or gzip-compressed.
enum BatchWriter {
    Identity(BytesMut),
    Gzip(crate::http::gzip::Splicer),
}

impl BatchWriter {
    fn new(gzip: bool, cards: usize) -> Self {
        let mut w = if gzip {
            BatchWriter::Gzip(crate::http::gzip::Splicer::with_capacity(cards * 1024))
        } else {
            BatchWriter::Identity(BytesMut::with_capacity(64 + cards * 4096))
        };
        w.literal(b"{\"cards\":[");
        w
    }

    fn literal(&mut self, bytes: &[u8]) {
        match self {
            BatchWriter::Identity(out) => out.put_slice(bytes),
            BatchWriter::Gzip(gz) => gz.literal().extend_from_slice(bytes),
        }
    }

    /// One 200 entry: what serde writes for a [`BatchItem`] with its card.
    fn card(
        &mut self,
        service_id: &str,
        template: &CardTemplate,
        max_ages: &[Option<u64>; 7],
        now: &Stamp,
    ) {
        self.literal(b"{\"service_id\":");
        let mut id = Vec::with_capacity(service_id.len() + 2);
        // A string always serializes.
        let _ = serde_json::to_writer(&mut id, service_id);
        self.literal(&id);
        self.literal(b",\"status\":200,\"card\":");
        match self {
            BatchWriter::Identity(out) => template.write_to(out, max_ages, now),
            BatchWriter::Gzip(gz) => template.write_gzip_to(gz, max_ages, now),
        }
        self.literal(b"}");
    }

    /// The body, and whether it is gzip.
    fn close(mut self) -> (Bytes, bool) {
        self.literal(b"]}");
        match self {
            BatchWriter::Identity(out) => (out.freeze(), false),
            BatchWriter::Gzip(gz) => (gz.finish(), true),
        }
    }

    fn finish(self) -> HttpResponse {
        let mut answer = HttpResponse::Ok();
        answer
            .insert_header(crate::http::JSON_CONTENT_TYPE)
            .insert_header((header::VARY, cache::ACCEPT_ENCODING_VARY));
        match self.close() {
            (body, true) => answer.insert_header(cache::GZIP).body(body),
            (body, false) => answer.body(body),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_includes_and_limits() {
        let params = CardParams {
            include: Some("metrics, standards".into()),
            incidents: Some(0),
            change_events: Some(25),
            account: None,
        };
        let options = params.options().unwrap();
        assert!(options.include_metrics && options.include_standards);
        assert_eq!(options.incident_limit, Some(0));
        assert_eq!(options.change_event_limit, Some(25));
    }

    #[test]
    fn bad_options_name_the_parameter() {
        for (params, name) in [
            (
                CardParams {
                    include: Some("standards,bogus".into()),
                    ..Default::default()
                },
                "include",
            ),
            (
                CardParams {
                    incidents: Some(26),
                    ..Default::default()
                },
                "incidents",
            ),
            (
                CardParams {
                    change_events: Some(1000),
                    ..Default::default()
                },
                "change_events",
            ),
        ] {
            match params.options() {
                Err(ApiError::InvalidParameter { parameter, .. }) => assert_eq!(parameter, name),
                other => panic!("expected an error naming {name}, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_batch_is_what_serde_writes_as_it_is_and_gzipped() {
        let s = serde_json::json!({"data": null, "fetched_at": null, "stale": false,
                                   "error": null, "max_age_secs": 4});
        let card: ServiceCard = serde_json::from_value(serde_json::json!({
            "service": s, "escalation_policy": s, "oncall": s, "incidents": s,
            "change_events": s, "generated_at": "2026-11-01T00:00:00Z",
        }))
        .unwrap();
        let template = CardTemplate::render(&card).unwrap();
        let id = "PABC\"123";
        let expected = serde_json::to_string(&BatchResponse {
            cards: vec![
                BatchItem::new(id.to_owned(), Ok(card.clone())),
                BatchItem::new(id.to_owned(), Ok(card.clone())),
            ],
        })
        .unwrap();
        for gzip in [false, true] {
            let mut out = BatchWriter::new(gzip, 2);
            let at = Stamp::new(card.generated_at);
            out.card(id, &template, &[Some(4); 7], &at);
            out.literal(b",");
            // The second time from the kept compressed pieces.
            out.card(id, &template, &[Some(4); 7], &at);
            let (body, gzipped) = out.close();
            assert_eq!(gzipped, gzip);
            let body = if gzip {
                let mut plain = Vec::new();
                std::io::Read::read_to_end(
                    &mut flate2::read::GzDecoder::new(&body[..]),
                    &mut plain,
                )
                .unwrap();
                plain
            } else {
                body.to_vec()
            };
            assert_eq!(
                std::str::from_utf8(&body).unwrap(),
                expected,
                "gzip: {gzip}"
            );
        }
    }

    #[test]
    fn service_ids_are_checked() {
        assert!(parse_service_id("PABC123").is_ok());
        assert!(parse_service_id("").is_err());
        assert!(parse_service_id("P../x").is_err());
        assert!(parse_service_id(&"P".repeat(65)).is_err());
    }
}
