//! v3 webhooks: the subscriptions (`/webhook_subscriptions`), the outbound
//! events the simulator's changes produce, and their delivery (`delivery`)
//! with PagerDuty's headers, signature, timeout, retries and disablement.
//!
//! [`WebhookStats`] (also `GET /__sim/webhooks`) reports every webhook and
//! attempt, so tests can wait on counters rather than sleep.

mod delivery;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, SecondsFormat, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::WebhookConfig;

/// The outbound event types a subscription may ask for (PagerDuty's v3
/// list). The simulator produces:
/// - `incident.triggered`, `.acknowledged`, `.resolved` from Events API v2
///   changes (the service is the agent);
/// - `incident.acknowledged`, `.unacknowledged`, `.resolved`, `.reopened`,
///   `.reassigned`, `.escalated` from `PUT /incidents/{id}` (the `From`
///   user is the agent);
/// - `service.updated` from `PUT /services/{id}`;
/// - `pagey.ping` from the ping route.
///
/// It has no route that creates or deletes services, changes priorities,
/// notes or responders, so the other types are accepted but never sent.
pub const EVENT_TYPES: &[&str] = &[
    "incident.acknowledged",
    "incident.annotated",
    "incident.delegated",
    "incident.escalated",
    "incident.priority_updated",
    "incident.reassigned",
    "incident.reopened",
    "incident.resolved",
    "incident.responder.added",
    "incident.responder.replied",
    "incident.status_update_published",
    "incident.triggered",
    "incident.unacknowledged",
    "service.created",
    "service.deleted",
    "service.updated",
];

/// What a subscription listens to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Filter {
    /// Every event of the account.
    Account,
    /// Events of one service.
    Service(String),
    /// Events of the services of one team.
    Team(String),
}

/// A v3 webhook subscription.
#[derive(Clone)]
pub(crate) struct Subscription {
    pub id: String,
    pub delivery_method_id: String,
    pub url: String,
    pub custom_headers: Vec<(String, String)>,
    pub description: Option<String>,
    pub events: Vec<String>,
    pub filter: Filter,
    pub active: bool,
    /// Set after [`WebhookConfig::disable_after_drops`] consecutive drops.
    pub temporarily_disabled: bool,
    pub consecutive_drops: u32,
    /// Signs every webhook; shown once, in the create answer.
    pub secret: String,
}

impl std::fmt::Debug for Subscription {
    // The secret, header values and URL credentials stay out of Debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .field("url", &redact_url(&self.url))
            .field("events", &self.events)
            .field("filter", &self.filter)
            .field("active", &self.active)
            .field("temporarily_disabled", &self.temporarily_disabled)
            .finish_non_exhaustive()
    }
}

/// What a subscription is made of (validated by the route).
pub(crate) struct NewSubscription {
    pub url: String,
    pub custom_headers: Vec<(String, String)>,
    pub description: Option<String>,
    pub events: Vec<String>,
    pub filter: Filter,
    pub active: bool,
}

/// An outbound event: what changed, and whom it concerns.
pub(crate) struct OutboundEvent {
    pub event_type: &'static str,
    pub resource_type: &'static str,
    /// Webhooks of one subscription and resource are delivered in order.
    pub resource_id: String,
    /// The service the event is about (for service and team filters).
    pub service_id: Option<String>,
    /// The teams of that service.
    pub team_ids: Vec<String>,
    pub occurred_at: DateTime<Utc>,
    pub agent: Value,
    pub client: Value,
    pub data: Value,
}

/// Where a webhook is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its first attempt or a retry.
    Queued,
    /// A 2xx answered it.
    Delivered,
    /// Given up (see [`WebhookDelivery::dropped_because`]).
    Dropped,
}

/// One attempt to deliver a webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryAttempt {
    /// The receiver's status; `0` = no answer (see `error`).
    pub status: u16,
    /// `timeout` or a connection error, when there was no answer.
    pub error: Option<String>,
}

/// One webhook: an event for one subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDelivery {
    /// `X-Webhook-Id`, the same on every attempt.
    pub webhook_id: String,
    /// `X-Webhook-Subscription`.
    pub subscription_id: String,
    /// `event.id`.
    pub event_id: String,
    /// `event.event_type`, e.g. `incident.triggered`.
    pub event_type: String,
    /// The incident (or other resource) the event is about.
    pub resource_id: String,
    /// Where it is.
    pub state: DeliveryState,
    /// Every attempt so far, oldest first.
    pub attempts: Vec<DeliveryAttempt>,
    /// Why it was dropped.
    pub dropped_because: Option<String>,
}

/// A subscription's delivery state (no secret, no header value, no URL
/// credentials).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookSubscriptionState {
    /// Subscription id.
    pub id: String,
    /// Destination, user and password removed.
    pub url: String,
    /// Whether it produces webhooks.
    pub active: bool,
    /// Disabled after repeated dropped webhooks (until enabled again).
    pub temporarily_disabled: bool,
    /// Dropped webhooks since the last delivered one.
    pub consecutive_drops: u32,
}

/// Every subscription and webhook (`GET /__sim/webhooks`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookStats {
    /// Subscriptions, oldest first (deleted ones are gone).
    pub subscriptions: Vec<WebhookSubscriptionState>,
    /// Webhooks, oldest first (the last 10 000).
    pub deliveries: Vec<WebhookDelivery>,
}

impl WebhookStats {
    /// Webhooks in `state`.
    pub fn count(&self, state: DeliveryState) -> usize {
        self.deliveries.iter().filter(|d| d.state == state).count()
    }

    /// Delivered webhooks of `event_type`.
    pub fn delivered(&self, event_type: &str) -> usize {
        self.deliveries
            .iter()
            .filter(|d| d.state == DeliveryState::Delivered && d.event_type == event_type)
            .count()
    }

    /// Attempts over all webhooks.
    pub fn attempts(&self) -> usize {
        self.deliveries.iter().map(|d| d.attempts.len()).sum()
    }

    /// The webhooks of one subscription, oldest first.
    pub fn of(&self, subscription_id: &str) -> Vec<&WebhookDelivery> {
        self.deliveries
            .iter()
            .filter(|d| d.subscription_id == subscription_id)
            .collect()
    }
}

/// Webhooks kept in [`WebhookStats::deliveries`].
const MAX_LOG: usize = 10_000;

/// A webhook waiting in its lane.
#[derive(Clone)]
struct Queued {
    webhook_id: String,
    body: Arc<Vec<u8>>,
}

/// Subscriptions, the delivery log and the lanes; shared by the routes and
/// the delivery tasks.
pub(crate) struct Hub {
    config: WebhookConfig,
    subscriptions: Mutex<Vec<Subscription>>,
    log: Mutex<VecDeque<WebhookDelivery>>,
    /// `(subscription, resource)` → webhooks in order; a lane exists while
    /// a task delivers it.
    lanes: Mutex<HashMap<(String, String), VecDeque<Queued>>>,
    rng: Mutex<ChaCha8Rng>,
    /// Bumped on every change of the log or of a subscription's state.
    version: tokio::sync::watch::Sender<u64>,
    /// The runtime the simulator was started in: deliveries run there, not
    /// on the HTTP workers, and never hold up the request that caused them.
    runtime: tokio::runtime::Handle,
    client: reqwest::Client,
    shutdown: tokio::sync::watch::Receiver<bool>,
    /// Itself, for the lane tasks it spawns.
    me: std::sync::Weak<Hub>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `url` without user and password (which a URL may carry for basic auth).
pub(crate) fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => "[unparsable]".to_owned(),
    }
}

impl Hub {
    pub fn new(
        config: WebhookConfig,
        seed: u64,
        runtime: tokio::runtime::Handle,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Arc<Self> {
        // No redirects (a 3xx is not a delivery) and no proxy from the
        // environment (PagerDuty's servers do not use the tester's).
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .unwrap_or_default();
        Arc::new_cyclic(|me| Self {
            config,
            subscriptions: Mutex::new(Vec::new()),
            log: Mutex::new(VecDeque::new()),
            lanes: Mutex::new(HashMap::new()),
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed ^ 0x00E6_400C)),
            version: tokio::sync::watch::Sender::new(0),
            runtime,
            client,
            shutdown,
            me: me.clone(),
        })
    }

    fn random(&self, alphabet: &[u8], len: usize) -> String {
        let mut rng = lock(&self.rng);
        (0..len)
            .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
            .collect()
    }

    fn changed(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    /// Creates a subscription; the copy returned carries the secret.
    pub fn create(&self, new: NewSubscription) -> Subscription {
        const UPPER: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
        const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let sub = Subscription {
            id: format!("P{}", self.random(UPPER, 6)),
            delivery_method_id: format!("P{}", self.random(UPPER, 6)),
            url: new.url,
            custom_headers: new.custom_headers,
            description: new.description,
            events: new.events,
            filter: new.filter,
            active: new.active,
            temporarily_disabled: false,
            consecutive_drops: 0,
            secret: self.random(ALNUM, 64),
        };
        lock(&self.subscriptions).push(sub.clone());
        self.changed();
        sub
    }

    /// Every subscription, oldest first.
    pub fn list(&self) -> Vec<Subscription> {
        lock(&self.subscriptions).clone()
    }

    /// A subscription by id.
    pub fn get(&self, id: &str) -> Option<Subscription> {
        lock(&self.subscriptions)
            .iter()
            .find(|s| s.id == id)
            .cloned()
    }

    /// Deletes a subscription; its queued webhooks are dropped. False when
    /// there is no such subscription.
    pub fn delete(&self, id: &str) -> bool {
        let removed = {
            let mut subs = lock(&self.subscriptions);
            let before = subs.len();
            subs.retain(|s| s.id != id);
            subs.len() != before
        };
        if removed {
            self.drop_queued(id, "subscription deleted");
            self.changed();
        }
        removed
    }

    /// Ends a temporary disablement; `None` when there is no such subscription.
    pub fn enable(&self, id: &str) -> Option<Subscription> {
        let sub = {
            let mut subs = lock(&self.subscriptions);
            let sub = subs.iter_mut().find(|s| s.id == id)?;
            sub.temporarily_disabled = false;
            sub.consecutive_drops = 0;
            sub.clone()
        };
        self.changed();
        Some(sub)
    }

    /// Sends `pagey.ping` to one subscription, whatever its events and filter.
    pub fn ping(&self, sub: &Subscription, now: DateTime<Utc>) {
        let body = self.body(
            "pagey.ping",
            "pagey",
            now,
            &Value::Null,
            &Value::Null,
            &json!({"message": "Hello from your friend Pagey!", "type": "ping"}),
        );
        self.enqueue(sub, "pagey.ping", "pagey", body);
    }

    /// Queues `event` for every active subscription that wants it.
    pub fn publish(&self, event: &OutboundEvent) {
        let matching: Vec<Subscription> = lock(&self.subscriptions)
            .iter()
            .filter(|s| s.active && s.events.iter().any(|e| e == event.event_type))
            .filter(|s| match &s.filter {
                Filter::Account => true,
                Filter::Service(id) => event.service_id.as_ref() == Some(id),
                Filter::Team(id) => event.team_ids.contains(id),
            })
            .cloned()
            .collect();
        if matching.is_empty() {
            return;
        }
        // One event, one body: every subscription gets the same bytes.
        let body = self.body(
            event.event_type,
            event.resource_type,
            event.occurred_at,
            &event.agent,
            &event.client,
            &event.data,
        );
        for sub in &matching {
            self.enqueue(sub, event.event_type, &event.resource_id, body.clone());
        }
    }

    /// `{"event": {...}}` with a fresh event id.
    fn body(
        &self,
        event_type: &str,
        resource_type: &str,
        occurred_at: DateTime<Utc>,
        agent: &Value,
        client: &Value,
        data: &Value,
    ) -> (String, Arc<Vec<u8>>) {
        let event_id = format!(
            "01{}",
            self.random(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", 24)
        );
        let body = json!({"event": {
            "id": event_id,
            "event_type": event_type,
            "resource_type": resource_type,
            "occurred_at": occurred_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            "agent": agent,
            "client": client,
            "data": data,
        }});
        (event_id, Arc::new(body.to_string().into_bytes()))
    }

    /// Logs a webhook of `body` for `sub` and starts its lane if idle; a
    /// temporarily disabled subscription drops it at once.
    fn enqueue(
        &self,
        sub: &Subscription,
        event_type: &str,
        resource_id: &str,
        body: (String, Arc<Vec<u8>>),
    ) {
        let (event_id, body) = body;
        let hex = b"0123456789abcdef";
        let webhook_id = format!(
            "{}-{}-{}-{}-{}",
            self.random(hex, 8),
            self.random(hex, 4),
            self.random(hex, 4),
            self.random(hex, 4),
            self.random(hex, 12)
        );
        let disabled = self.get(&sub.id).is_none_or(|s| s.temporarily_disabled);
        {
            let mut log = lock(&self.log);
            if log.len() >= MAX_LOG {
                log.pop_front();
            }
            log.push_back(WebhookDelivery {
                webhook_id: webhook_id.clone(),
                subscription_id: sub.id.clone(),
                event_id,
                event_type: event_type.to_owned(),
                resource_id: resource_id.to_owned(),
                state: if disabled {
                    DeliveryState::Dropped
                } else {
                    DeliveryState::Queued
                },
                attempts: Vec::new(),
                dropped_because: disabled.then(|| "subscription temporarily disabled".to_owned()),
            });
        }
        self.changed();
        if !disabled {
            self.start(&sub.id, resource_id, Queued { webhook_id, body });
        }
    }

    /// The state of everything, for tests and `GET /__sim/webhooks`.
    pub fn stats(&self) -> WebhookStats {
        WebhookStats {
            subscriptions: lock(&self.subscriptions)
                .iter()
                .map(|s| WebhookSubscriptionState {
                    id: s.id.clone(),
                    url: redact_url(&s.url),
                    active: s.active,
                    temporarily_disabled: s.temporarily_disabled,
                    consecutive_drops: s.consecutive_drops,
                })
                .collect(),
            deliveries: lock(&self.log).iter().cloned().collect(),
        }
    }

    /// A receiver of [`Hub::changed`] notifications.
    pub fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.version.subscribe()
    }

    fn update(&self, webhook_id: &str, f: impl FnOnce(&mut WebhookDelivery)) {
        if let Some(d) = lock(&self.log)
            .iter_mut()
            .rev()
            .find(|d| d.webhook_id == webhook_id)
        {
            f(d);
        }
        self.changed();
    }
}
