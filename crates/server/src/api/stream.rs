//! Card streams as Server-Sent Events (`actix-web-lab`'s `sse`: framing,
//! keep-alive comments). The streams themselves are [`crate::streams`].

use actix_web::{HttpRequest, get, web};
use actix_web_lab::sse;
use serde::Deserialize;
use utoipa::IntoParams;

use super::cards::{BatchItem, CardParams, parse_service_id};
use super::error::{ApiError, ErrorBody};
use crate::auth::Caller;
use crate::http::extract::Query;
use crate::middleware::auth::Authenticated;
use crate::state::AppState;
use crate::streams::{CardStream, RETRY_AFTER_SECS, StreamError, StreamRequest};

/// `GET /v1/stream` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// PagerDuty service ids, comma-separated (1 to `streams.max_services`).
    #[param(example = "PABC123,PDEF456")]
    pub service_ids: String,
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

impl From<StreamError> for ApiError {
    fn from(e: StreamError) -> Self {
        match e {
            StreamError::Card(e) => e.into(),
            StreamError::ShuttingDown => ApiError::Overloaded {
                code: "shutting_down",
                message: e.to_string(),
                retry_after_secs: RETRY_AFTER_SECS,
            },
            other => ApiError::Overloaded {
                code: "too_many_streams",
                message: other.to_string(),
                retry_after_secs: RETRY_AFTER_SECS,
            },
        }
    }
}

/// Stream one card.
///
/// Server-Sent Events: the card at once, then again whenever a section of
/// it changed (a PagerDuty webhook, a trigger, a refresh), as `event: card`
/// with the data of a `POST /v1/cards/batch` entry (`service_id`, `status`,
/// `card` or `error`) and the card's ETag as the event id. A reconnect with
/// `Last-Event-ID` (what `EventSource` sends) does not resend an unchanged
/// card. A comment line every `streams.heartbeat_ms`. A client that falls
/// `streams.buffer` events behind is disconnected. Limits per caller and in
/// total: 503 with `Retry-After`.
#[utoipa::path(
    tag = "cards",
    params(
        ("service_id" = String, Path, description = "PagerDuty service id", example = "PABC123"),
        CardParams,
        ("Last-Event-ID" = Option<String>, Header, description = "The id of the last event received (a reconnect)"),
    ),
    responses(
        (status = 200, description = "`text/event-stream` of `card` events (data: a BatchItem)", body = BatchItem, content_type = "text/event-stream"),
        (status = 400, description = "Bad parameter; `details.parameter` names it", body = ErrorBody),
        (status = 401, description = "Missing or invalid bearer token", body = ErrorBody),
        (status = 404, description = "No such PagerDuty service", body = ErrorBody),
        (status = 502, description = "PagerDuty rejected dutycard's credentials or failed", body = ErrorBody),
        (status = 503, description = "Too many streams (per caller or in total), or PagerDuty rate limiting; see Retry-After", body = ErrorBody),
        (status = 504, description = "PagerDuty or the request deadline timed out", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/cards/{service_id}/stream")]
pub async fn stream_card(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Authenticated<ApiError>,
    service_id: web::Path<String>,
    Query(params, _): Query<CardParams, ApiError>,
) -> Result<impl actix_web::Responder, ApiError> {
    let service_id =
        parse_service_id(&service_id).map_err(|message| ApiError::InvalidParameter {
            parameter: "service_id".into(),
            message,
        })?;
    let request = StreamRequest {
        service_ids: vec![service_id],
        single: true,
        options: params.options()?,
        last_event_id: last_event_id(&req),
    };
    open(
        &state,
        &caller.into_inner(),
        params.account.as_deref(),
        request,
    )
    .await
}

/// Stream several cards.
///
/// As `GET /v1/cards/{service_id}/stream` for up to `streams.max_services`
/// services in one connection: each card at once (in order), then each
/// card again when it changed. The event id lists every card's ETag hash
/// in `service_ids` order, so a reconnect with `Last-Event-ID` resends only
/// the cards that changed; a card that cannot be read is an event with its
/// `status` and `error`.
#[utoipa::path(
    tag = "cards",
    params(
        StreamParams,
        ("Last-Event-ID" = Option<String>, Header, description = "The id of the last event received (a reconnect)"),
    ),
    responses(
        (status = 200, description = "`text/event-stream` of `card` events (data: a BatchItem)", body = BatchItem, content_type = "text/event-stream"),
        (status = 400, description = "Bad parameter; `details.parameter` names it", body = ErrorBody),
        (status = 401, description = "Missing or invalid bearer token", body = ErrorBody),
        (status = 503, description = "Too many streams (per caller or in total); see Retry-After", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/stream")]
pub async fn stream_cards(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Authenticated<ApiError>,
    Query(params, _): Query<StreamParams, ApiError>,
) -> Result<impl actix_web::Responder, ApiError> {
    let max = state.streams.settings().max_services;
    let mut service_ids: Vec<cards::ServiceId> = Vec::new();
    for id in params.service_ids.split(',').map(str::trim) {
        let id = parse_service_id(id).map_err(|message| ApiError::InvalidParameter {
            parameter: "service_ids".into(),
            message: format!("`{id}` {message}"),
        })?;
        if !service_ids.contains(&id) {
            service_ids.push(id);
        }
    }
    if service_ids.len() > max {
        return Err(ApiError::InvalidParameter {
            parameter: "service_ids".into(),
            message: format!("at most {max} services, got {}", service_ids.len()),
        });
    }
    let card_params = CardParams {
        include: params.include,
        incidents: params.incidents,
        change_events: params.change_events,
        account: params.account,
    };
    let request = StreamRequest {
        service_ids,
        single: false,
        options: card_params.options()?,
        last_event_id: last_event_id(&req),
    };
    open(
        &state,
        &caller.into_inner(),
        card_params.account.as_deref(),
        request,
    )
    .await
}

pub(super) fn last_event_id(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .filter(|v| !v.trim().is_empty())
}

async fn open(
    state: &AppState,
    caller: &Caller,
    account: Option<&str>,
    request: StreamRequest,
) -> Result<impl actix_web::Responder + use<>, ApiError> {
    let account = state.account(account)?;
    let stream = Box::pin(state.streams.open(&caller.name, &account.cards, request));
    let stream = crate::http::deadline::within(state.request_deadline, stream).await??;
    let heartbeat = state.streams.settings().heartbeat();
    Ok(sse::Sse::from_stream(events(stream)).with_keep_alive(heartbeat))
}

/// Why a stream's connection was ended early (the client was too slow).
#[derive(Debug, thiserror::Error)]
#[error("the client fell too far behind; reconnect with Last-Event-ID")]
pub(super) struct TooSlow;

/// The stream's items as SSE events; when it is dropped for being slow, an
/// error ends the connection at once (what is still buffered is not sent).
fn events(
    stream: CardStream,
) -> impl futures::Stream<Item = Result<sse::Event, TooSlow>> + 'static {
    sse_events(stream.items, stream.dropped, |item| {
        json_event("card", item.id, &BatchItem::new(item.service_id, item.card))
    })
}

/// Items of a stream task as SSE events, each made by `to_event`; when
/// `dropped` fires (the client was too slow) an error ends the connection
/// at once, without writing what is still buffered.
pub(super) fn sse_events<I: Send + 'static>(
    items: tokio::sync::mpsc::Receiver<I>,
    dropped: tokio_util::sync::CancellationToken,
    to_event: fn(I) -> sse::Event,
) -> impl futures::Stream<Item = Result<sse::Event, TooSlow>> + 'static {
    futures::stream::unfold(Some((items, dropped)), move |state| async move {
        let (mut items, dropped) = state?;
        tokio::select! {
            biased;
            () = dropped.cancelled() => Some((Err(TooSlow), None)),
            item = items.recv() => Some((Ok(to_event(item?)), Some((items, dropped)))),
        }
    })
}

/// An SSE event `name` with `data` as JSON and `id`.
pub(super) fn json_event(
    name: &'static str,
    id: String,
    data: &impl serde::Serialize,
) -> sse::Event {
    match sse::Data::new_json(data) {
        Ok(data) => sse::Event::Data(data.event(name).id(id)),
        // Our answers always serialize; say so rather than drop one.
        Err(e) => sse::Event::Comment(format!("{name} not serializable: {e}").into()),
    }
}
