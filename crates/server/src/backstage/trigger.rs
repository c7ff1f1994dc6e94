//! `POST /services/{id}/incidents`: the card's trigger dialog, sent
//! server-side through the create-incident machinery.

use actix_web::{HttpRequest, HttpResponse, post, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::error::{BackstageError, ErrorsBody};
use super::params::{Params, Result, check_service_id};
use crate::http::extract::Json;
use crate::http::trigger::{idempotency_key, respond};
use crate::middleware::auth::Authenticated;
use crate::state::AppState;

/// `POST /services/{service_id}/incidents` body: what the Backstage card's
/// trigger dialog collects.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"description": "Checkout is failing for EU users", "userName": "guest", "source": "https://backstage.example.com/catalog/default/component/checkout"}))]
pub struct TriggerBody {
    /// What is wrong (the dialog's description), 1 to 1024 characters.
    pub description: String,
    /// The signed-in Backstage user's name, sent as `custom_details.user`.
    #[serde(default)]
    pub user_name: Option<String>,
    /// The affected system (the card sends the page URL); default `clientUrl`.
    #[serde(default)]
    pub source: Option<String>,
    /// The portal page the trigger came from (`client_url` of the event).
    #[serde(default)]
    pub client_url: Option<String>,
    /// `critical`, `error`, `warning` or `info` (default `error`, as the card sends).
    #[serde(default)]
    pub severity: Option<String>,
    /// Merges repeated triggers into one alert; generated when absent.
    #[serde(default)]
    pub dedup_key: Option<String>,
}

impl TriggerBody {
    /// The card's event semantics: severity `error`, class `manual trigger`,
    /// `custom_details.user` (dutycard adds `triggered_by`, the caller).
    fn into_request(self, service_id: String) -> crate::trigger::TriggerRequest {
        let custom_details = self.user_name.map(|user| json!({ "user": user }));
        crate::trigger::TriggerRequest {
            service_id: Some(service_id),
            integration_key: None,
            summary: self.description,
            severity: Some(self.severity.unwrap_or_else(|| "error".to_owned())),
            source: self.source.or_else(|| self.client_url.clone()),
            dedup_key: self.dedup_key,
            component: None,
            group: None,
            class: Some(crate::trigger::DEFAULT_CLASS.to_owned()),
            custom_details,
            links: None,
            client_url: self.client_url,
        }
    }
}

/// `POST /services/{service_id}/incidents`: trigger an incident server-side.
///
/// For updated frontends: instead of posting the integration key from the
/// browser to PagerDuty's Events API, post the card's dialog fields here.
/// dutycard finds the service's Events API v2 key itself (preferring the
/// Backstage `PRO19CT` integration) in the `?account=` account and sends the
/// event to that account's Events host, with the `/v1/incidents` machinery:
/// validation, per-caller and per-key limits, `Idempotency-Key`, retries
/// within `trigger.deadline_ms`. Answers 202 like the Events API.
#[utoipa::path(
    tag = "backstage",
    params(
        ("service_id" = String, Path, description = "PagerDuty service id"),
        ("account" = Option<String>, Query, description = "Account id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Client-chosen request id; repeats return the first answer"),
    ),
    request_body = TriggerBody,
    responses(
        (status = 202, description = "PagerDuty accepted the event", body = crate::trigger::TriggerAccepted),
        (status = 400, description = "Bad field, unknown account, or PagerDuty rejected the event", body = ErrorsBody),
        (status = 401, description = "Missing caller token", body = ErrorsBody),
        (status = 404, description = "No such service", body = ErrorsBody),
        (status = 409, description = "The same Idempotency-Key is still in progress", body = ErrorsBody),
        (status = 422, description = "The service has no Events API v2 integration", body = ErrorsBody),
        (status = 429, description = "Too many triggers; see Retry-After", body = ErrorsBody),
        (status = 502, description = "PagerDuty's answer was unusable; NOT created", body = ErrorsBody),
        (status = 503, description = "PagerDuty unavailable; NOT created", body = ErrorsBody),
        (status = 504, description = "PagerDuty did not answer in time; NOT confirmed", body = ErrorsBody),
    ),
    security(("bearer" = []))
)]
#[post("/incidents")]
pub async fn trigger_incident(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Authenticated<BackstageError>,
    service_id: web::Path<String>,
    Json(body, _): Json<TriggerBody, BackstageError>,
) -> Result<HttpResponse> {
    let params = Params::parse(&req)?;
    let account = params.account(&state)?;
    let id = service_id.into_inner();
    check_service_id(&id)?;
    let key = idempotency_key(&req);
    // The trigger has its own deadline (trigger.deadline_ms) and runs its
    // delivery in a task a hang-up cannot cancel.
    let outcome = state
        .trigger
        .trigger(
            account,
            &caller.into_inner(),
            body.into_request(id),
            key.as_deref(),
        )
        .await;
    Ok(respond::<BackstageError>(outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cards_trigger_body_maps_to_the_cards_event() {
        let body: TriggerBody = serde_json::from_value(json!({
            "description": "Checkout is failing",
            "userName": "guest",
            "clientUrl": "https://backstage.example.com/catalog/checkout",
        }))
        .unwrap();
        let request = body.into_request("PABC123".to_owned());
        assert_eq!(request.service_id.as_deref(), Some("PABC123"));
        assert_eq!(request.integration_key, None);
        assert_eq!(request.summary, "Checkout is failing");
        assert_eq!(request.class.as_deref(), Some("manual trigger"));
        assert_eq!(
            request.severity.as_deref(),
            Some("error"),
            "the card's severity"
        );
        assert_eq!(request.custom_details, Some(json!({"user": "guest"})));
        let page = "https://backstage.example.com/catalog/checkout";
        assert_eq!(request.client_url.as_deref(), Some(page));
        assert_eq!(
            request.source.as_deref(),
            Some(page),
            "source defaults to clientUrl"
        );
        assert_eq!(
            request.dedup_key, None,
            "generated by the trigger machinery"
        );

        // Explicit fields win; no userName, no custom_details.
        let body: TriggerBody = serde_json::from_value(json!({
            "description": "x",
            "source": "checkout-api",
            "clientUrl": "https://backstage.example.com/p",
            "severity": "critical",
            "dedupKey": "k-1",
        }))
        .unwrap();
        let request = body.into_request("P1".to_owned());
        assert_eq!(request.source.as_deref(), Some("checkout-api"));
        assert_eq!(
            request.client_url.as_deref(),
            Some("https://backstage.example.com/p")
        );
        assert_eq!(request.severity.as_deref(), Some("critical"));
        assert_eq!(request.dedup_key.as_deref(), Some("k-1"));
        assert_eq!(request.custom_details, None);

        // Neither source nor clientUrl: left to the trigger's defaults.
        let body: TriggerBody = serde_json::from_value(json!({"description": "x"})).unwrap();
        let request = body.into_request("P1".to_owned());
        assert_eq!((request.source, request.client_url), (None, None));

        // The card's field names only (camelCase, nothing else).
        assert!(
            serde_json::from_value::<TriggerBody>(json!({"description": "x", "user_name": "g"}))
                .is_err()
        );
    }
}
