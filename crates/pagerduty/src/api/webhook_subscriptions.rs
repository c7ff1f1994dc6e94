//! v3 webhook subscriptions: `POST/GET /webhook_subscriptions`,
//! `DELETE /webhook_subscriptions/{id}`, `POST /webhook_subscriptions/{id}/ping`.
//! Scopes: `webhook_subscriptions.read` / `.write`.

use reqwest::Method;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{decode_key, require};
use crate::client::{Call, Client, Host};
use crate::error::Result;
use crate::query::ListWebhookSubscriptions;

/// What a subscription listens to: the whole account, one service or one team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookFilter {
    /// `account_reference`, `service_reference` or `team_reference`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The service or team id (none for the account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

impl WebhookFilter {
    /// Every event of the account.
    pub fn account() -> Self {
        WebhookFilter {
            kind: "account_reference".into(),
            id: None,
        }
    }
}

/// Where and how a subscription delivers.
#[derive(Clone, Deserialize)]
pub struct DeliveryMethod {
    /// PagerDuty id.
    #[serde(default)]
    pub id: Option<String>,
    /// The receiving URL.
    pub url: String,
    /// The signing secret: only in the answer that created the subscription.
    #[serde(default)]
    pub secret: Option<SecretString>,
    /// Disabled by PagerDuty after repeated failed deliveries.
    #[serde(default)]
    pub temporarily_disabled: bool,
}

impl std::fmt::Debug for DeliveryMethod {
    // The secret stays out; the URL may carry credentials, so only its host.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = url::Url::parse(&self.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned));
        f.debug_struct("DeliveryMethod")
            .field("id", &self.id)
            .field("host", &host)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("temporarily_disabled", &self.temporarily_disabled)
            .finish()
    }
}

/// A v3 webhook subscription.
#[derive(Debug, Clone, Deserialize)]
pub struct WebhookSubscription {
    /// PagerDuty id.
    pub id: String,
    /// Whether it produces webhooks.
    #[serde(default)]
    pub active: bool,
    /// Event types it sends, e.g. `incident.triggered`.
    #[serde(default)]
    pub events: Vec<String>,
    /// What it listens to.
    pub filter: WebhookFilter,
    /// Where it delivers.
    pub delivery_method: DeliveryMethod,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
}

/// What [`Client::create_webhook_subscription`] creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhookSubscription {
    /// The receiving URL (https in production).
    pub url: String,
    /// Event types to send.
    pub events: Vec<String>,
    /// What to listen to.
    pub filter: WebhookFilter,
    /// Free text shown in PagerDuty's UI.
    pub description: Option<String>,
}

impl Client {
    /// `POST /webhook_subscriptions`: creates a subscription; the answer is
    /// the only one that carries its secret. Not retried after it may have
    /// reached PagerDuty (a retry could create a second one).
    pub async fn create_webhook_subscription(
        &self,
        new: &NewWebhookSubscription,
    ) -> Result<WebhookSubscription> {
        require("url", &new.url)?;
        let mut ws = json!({
            "type": "webhook_subscription",
            "delivery_method": {"type": "http_delivery_method", "url": new.url},
            "events": new.events,
            "filter": new.filter,
        });
        if let Some(d) = &new.description {
            ws["description"] = json!(d);
        }
        let body = serde_json::to_vec(&json!({ "webhook_subscription": ws })).map_err(|e| {
            crate::Error::Config {
                field: "webhook_subscription".into(),
                message: e.to_string(),
            }
        })?;
        let bytes = self
            .call(
                Method::POST,
                "/webhook_subscriptions",
                &["webhook_subscriptions"],
                Some(body),
                false,
            )
            .await?;
        decode_key(&bytes, "webhook_subscription")
    }

    /// `GET /webhook_subscriptions`: every subscription (all pages).
    pub async fn list_webhook_subscriptions(&self) -> Result<Vec<WebhookSubscription>> {
        self.collect_all(
            "/webhook_subscriptions",
            vec!["webhook_subscriptions".into()],
            &ListWebhookSubscriptions::default(),
            "webhook_subscriptions",
        )
        .await
    }

    /// `DELETE /webhook_subscriptions/{id}`.
    pub async fn delete_webhook_subscription(&self, id: &str) -> Result<()> {
        require("id", id)?;
        self.call(
            Method::DELETE,
            "/webhook_subscriptions/{id}",
            &["webhook_subscriptions", id],
            None,
            true,
        )
        .await
        .map(drop)
    }

    /// `POST /webhook_subscriptions/{id}/ping`: PagerDuty sends a
    /// `pagey.ping` webhook to the subscription's URL.
    pub async fn ping_webhook_subscription(&self, id: &str) -> Result<()> {
        require("id", id)?;
        self.call(
            Method::POST,
            "/webhook_subscriptions/{id}/ping",
            &["webhook_subscriptions", id, "ping"],
            None,
            true,
        )
        .await
        .map(drop)
    }

    async fn call(
        &self,
        method: Method,
        endpoint: &'static str,
        segments: &[&str],
        body: Option<Vec<u8>>,
        idempotent: bool,
    ) -> Result<Vec<u8>> {
        self.inner
            .execute(Call {
                method,
                host: Host::Api,
                endpoint,
                segments,
                query: &[],
                body,
                idempotent,
                single_attempt: false,
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscription_decodes_and_its_debug_shows_neither_secret_nor_url_credentials() {
        let sub: WebhookSubscription = serde_json::from_value(json!({
            "id": "PSUB123", "type": "webhook_subscription", "active": true,
            "events": ["incident.triggered"],
            "filter": {"type": "account_reference"},
            "delivery_method": {"id": "PDM1", "type": "http_delivery_method",
                "url": "https://user:pass@dutycard.example/v1/webhooks/pagerduty",
                "secret": "s3cr3t-0123456789", "temporarily_disabled": false},
        }))
        .unwrap();
        assert_eq!(sub.filter, WebhookFilter::account());
        let debug = format!("{sub:?}");
        assert!(
            !debug.contains("s3cr3t") && !debug.contains("pass"),
            "{debug}"
        );
        assert!(debug.contains("dutycard.example"), "{debug}");
    }
}
