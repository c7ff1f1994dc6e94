//! The create-incident proxy: `POST /v1/incidents` and the acknowledge /
//! resolve follow-ups, sent to PagerDuty's Events API v2 from the server so
//! integration keys never reach the browser.
//!
//! One request goes through, in order:
//! 1. validation of every field against the Events API v2 limits (400 naming
//!    the field; nothing leaves before that);
//! 2. the stored answer of an earlier request with the same
//!    `Idempotency-Key`, if any, is replayed (before any rate limit);
//!    otherwise the caller's rate limit (`trigger.per_caller_per_minute`, 429);
//! 3. routing-key resolution: by `service_id` (the service's Events API v2
//!    integration, preferring Backstage's vendor `PRO19CT`) or by
//!    `integration_key`, which with `trigger.allow = "known"` must belong to a
//!    service we can read. A lookup that fails on PagerDuty's side (5xx,
//!    429, timeout) gets the not-delivered answer of step 6 (nothing sent);
//! 4. idempotency: the `Idempotency-Key` header (per caller) claims the
//!    request before anything is sent and keeps its answer for
//!    `trigger.idempotency_window_secs`, so repeats and concurrent duplicates
//!    get the first answer and PagerDuty sees one event. A bare `dedup_key`
//!    (per routing key and action) only merges duplicates still in flight:
//!    later repeats are sent, and PagerDuty merges triggers into an open
//!    alert (a stored answer would hide a second resolve or a re-trigger
//!    after an outside resolve). Without either, an identical request within
//!    [`DERIVED_DEDUP_WINDOW`] reuses the same generated dedup_key;
//! 5. the routing key's rate limit (`trigger.per_routing_key_per_minute`);
//! 6. delivery with retries on 429/5xx/timeouts inside `trigger.deadline_ms`,
//!    in a spawned task so a client that hangs up cannot cancel a half-sent
//!    trigger; a failure says the incident was NOT created (acknowledged,
//!    resolved), or that this is unknown (`created: null`) when any attempt
//!    may have reached PagerDuty (no answer, connection lost after it was
//!    made; a failure to connect sent nothing),
//!    and gives the `dedup_key` to retry with (every event carries one,
//!    generated when the caller gave none);
//! 7. invalidation of the service's incidents section, so the next card
//!    shows the change: a known service at once (in memory), the rest (a
//!    key's service lookup with `allow = "any"`, the repeat 5 s later) in a
//!    task of its own, after the answer.
//!
//! Decision (deliberate, as in the README): only the `Idempotency-Key` gives
//! a full replay of the first answer for the window. A bare `dedup_key` is
//! not a stored answer, because PagerDuty's alert state moves on without us:
//! a stored 202 would swallow a re-trigger after the alert was resolved (in
//! dutycard or outside it) or a second resolve. PagerDuty's own merging of
//! triggers into an open alert covers plain repeats.
//!
//! The caller's identity goes into `custom_details.triggered_by` and into the
//! log line of the outcome; the routing key never appears in logs or errors,
//! only [`pagerduty::RoutingKey::fingerprint`].
//!
//! The service is account-agnostic: each call takes the [`Account`] (its id,
//! card service and PagerDuty client) to use; idempotency keys are scoped by
//! account.

pub mod error;
pub mod idempotency;
pub mod limits;

use std::sync::Arc;
use std::time::{Duration, Instant};

use cards::{CardService, Section};
use pagerduty::{Event, EventAction, EventLink, EventPayload, RoutingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::accounts::Account;
use crate::auth::Caller;
use crate::config::{Severity as ConfigSeverity, TriggerAllow, TriggerSettings};
pub use error::{DeliveryFailure, TriggerError};
use idempotency::{Begin, IdempotencyStore};
use limits::{LimitScope, RateLimits};

/// Default `payload.class`, as Backstage's card sends it.
pub const DEFAULT_CLASS: &str = "manual trigger";
/// The custom detail holding the caller's identity.
pub const TRIGGERED_BY: &str = "triggered_by";
/// How long a trigger without `dedup_key` and `Idempotency-Key` reuses the
/// dedup_key of an identical earlier one (same account, caller, service or
/// key, and summary): a repeated click or a proxy's retry within this window
/// merges into the same PagerDuty alert instead of opening a second incident.
pub const DERIVED_DEDUP_WINDOW: Duration = Duration::from_secs(30);
/// Longest accepted `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;

/// `POST /v1/incidents` body.
#[derive(Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"service_id": "PABC123", "summary": "Checkout is failing for EU users"}))]
pub struct TriggerRequest {
    /// PagerDuty service to page; the server finds its Events API v2
    /// integration key. Give this or `integration_key`.
    #[serde(default)]
    pub service_id: Option<String>,
    /// A 32-character Events API v2 integration (routing) key. With
    /// `trigger.allow = "known"` it must belong to a service dutycard can read.
    #[serde(default)]
    pub integration_key: Option<String>,
    /// What is wrong, 1 to 1024 characters.
    pub summary: String,
    /// `critical`, `error`, `warning` or `info` (default `trigger.default_severity`).
    #[serde(default)]
    pub severity: Option<String>,
    /// The affected system (default: the client URL or client name).
    #[serde(default)]
    pub source: Option<String>,
    /// Merges events into one alert (at most 255 characters). A duplicate
    /// still in flight gets the first answer; a later one is sent again
    /// (PagerDuty merges it into the alert while that is open). Generated
    /// when absent: an identical request (same caller, service, summary)
    /// within 30 s gets the same one.
    #[serde(default)]
    pub dedup_key: Option<String>,
    /// Component of the source.
    #[serde(default)]
    pub component: Option<String>,
    /// Logical group.
    #[serde(default)]
    pub group: Option<String>,
    /// Class of event (default `manual trigger`).
    #[serde(default)]
    pub class: Option<String>,
    /// Extra details, a JSON object; `triggered_by` is set to the caller.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub custom_details: Option<Value>,
    /// Links shown on the alert.
    #[serde(default)]
    pub links: Option<Vec<LinkInput>>,
    /// The portal page the trigger came from (default `trigger.client_url`).
    #[serde(default)]
    pub client_url: Option<String>,
}

/// A link on the alert.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkInput {
    /// Target URL (required).
    #[serde(default)]
    pub href: Option<String>,
    /// Link text.
    #[serde(default)]
    pub text: Option<String>,
}

/// `POST /v1/incidents/{dedup_key}/acknowledge|resolve` body: which service.
#[derive(Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FollowUpRequest {
    /// The service the alert was triggered on. Give this or `integration_key`.
    #[serde(default)]
    pub service_id: Option<String>,
    /// The integration key the alert was triggered with.
    #[serde(default)]
    pub integration_key: Option<String>,
}

/// Shown in place of an integration key in Debug output.
const REDACTED: &str = "[redacted]";

fn redacted(key: &Option<String>) -> Option<&'static str> {
    key.as_ref().map(|_| REDACTED)
}

// Debug hides `integration_key` (a secret).
impl std::fmt::Debug for TriggerRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TriggerRequest")
            .field("service_id", &self.service_id)
            .field("integration_key", &redacted(&self.integration_key))
            .field("summary", &self.summary)
            .field("severity", &self.severity)
            .field("source", &self.source)
            .field("dedup_key", &self.dedup_key)
            .field("component", &self.component)
            .field("group", &self.group)
            .field("class", &self.class)
            .field("custom_details", &self.custom_details)
            .field("links", &self.links)
            .field("client_url", &self.client_url)
            .finish()
    }
}

// Debug hides `integration_key` (a secret).
impl std::fmt::Debug for FollowUpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FollowUpRequest")
            .field("service_id", &self.service_id)
            .field("integration_key", &redacted(&self.integration_key))
            .finish()
    }
}

/// PagerDuty accepted the event (our 202).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"status": "success", "dedup_key": "dutycard-4f0c…", "message": "Event processed", "service_id": "PABC123"}))]
pub struct TriggerAccepted {
    /// PagerDuty's status, `success`.
    pub status: String,
    /// The alert's dedup_key: use it to acknowledge or resolve, or to retry.
    pub dedup_key: String,
    /// PagerDuty's message, e.g. `Event processed`.
    pub message: String,
    /// The service the event went to, when known.
    pub service_id: Option<String>,
}

/// The answer to a trigger request, and whether it is a stored one.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// 202 body or the error.
    pub result: Result<TriggerAccepted, TriggerError>,
    /// True when this is the stored answer of an earlier identical request.
    pub replayed: bool,
}

type Answer = Result<TriggerAccepted, TriggerError>;

/// Settings of the proxy (from `[trigger]`).
#[derive(Debug, Clone)]
pub struct TriggerConfig {
    /// `client` of every event.
    pub client_name: String,
    /// Default `client_url`.
    pub client_url: Option<String>,
    /// Severity when the request has none.
    pub default_severity: pagerduty::Severity,
    /// Which integration keys are accepted.
    pub allow: TriggerAllow,
    /// Budget of one request, lookups and retries included.
    pub deadline: Duration,
    /// How long answers are kept for idempotent replays.
    pub idempotency_window: Duration,
    /// Requests per caller per minute.
    pub per_caller_per_minute: u32,
    /// Requests per routing key per minute.
    pub per_routing_key_per_minute: u32,
}

impl From<&TriggerSettings> for TriggerConfig {
    fn from(s: &TriggerSettings) -> Self {
        TriggerConfig {
            client_name: s.client_name.clone(),
            client_url: s.client_url.clone(),
            default_severity: match s.default_severity {
                ConfigSeverity::Critical => pagerduty::Severity::Critical,
                ConfigSeverity::Error => pagerduty::Severity::Error,
                ConfigSeverity::Warning => pagerduty::Severity::Warning,
                ConfigSeverity::Info => pagerduty::Severity::Info,
            },
            allow: s.allow,
            deadline: Duration::from_millis(s.deadline_ms),
            idempotency_window: Duration::from_secs(s.idempotency_window_secs),
            per_caller_per_minute: s.per_caller_per_minute,
            per_routing_key_per_minute: s.per_routing_key_per_minute,
        }
    }
}

/// Where an event goes, as the request said it.
enum Target {
    Service(String),
    Key(String),
}

/// A validated request, before its routing key is known.
struct Prepared {
    action: EventAction,
    target: Target,
    event: Event,
    /// The dedup_key the caller chose (idempotency by dedup_key).
    caller_dedup_key: Option<String>,
    fingerprint: u64,
}

/// The trigger proxy. One per process, shared by all workers.
pub struct TriggerService {
    config: TriggerConfig,
    /// Derived dedup_keys of recent requests without one, by request hash.
    recent: std::sync::Mutex<std::collections::HashMap<u64, (String, Instant)>>,
    store: IdempotencyStore<Answer>,
    limits: RateLimits,
}

impl std::fmt::Debug for TriggerService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TriggerService")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A placeholder routing key used to size-check an event before the real
/// key is resolved (both are exactly 32 characters).
const PLACEHOLDER_KEY: &str = "00000000000000000000000000000000";

impl TriggerService {
    /// A proxy with `config`.
    pub fn new(config: TriggerConfig) -> Self {
        TriggerService {
            recent: Default::default(),
            store: IdempotencyStore::new(config.idempotency_window),
            limits: RateLimits::new(
                config.per_caller_per_minute,
                config.per_routing_key_per_minute,
            ),
            config,
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &TriggerConfig {
        &self.config
    }

    /// Trigger an incident through `account`.
    pub async fn trigger(
        self: &Arc<Self>,
        account: &Account,
        caller: &Caller,
        request: TriggerRequest,
        idempotency_key: Option<&str>,
    ) -> Outcome {
        let started = Instant::now();
        match self.prepare_trigger(caller, request, idempotency_key) {
            Ok(mut prepared) => {
                if prepared.caller_dedup_key.is_none() && idempotency_key.is_none() {
                    // Nothing identifies a retry: a repeated identical
                    // request within the window gets the same dedup_key,
                    // so PagerDuty merges it into the same alert.
                    let derived = self.derived_dedup_key(&account.id, caller, &prepared);
                    prepared.event.dedup_key = Some(derived);
                }
                self.run(account, caller, prepared, idempotency_key, started)
                    .await
            }
            Err(e) => fresh(Err(e)),
        }
    }

    /// The dedup_key of a trigger that has neither `dedup_key` nor
    /// `Idempotency-Key`: the one given to the same (account, caller,
    /// service or key, summary) within [`DERIVED_DEDUP_WINDOW`], else a new one.
    fn derived_dedup_key(&self, account: &str, caller: &Caller, prepared: &Prepared) -> String {
        let mut bytes = Vec::new();
        for part in [
            account,
            &caller.name,
            match &prepared.target {
                Target::Service(id) => id.as_str(),
                Target::Key(key) => key.as_str(),
            },
            prepared
                .event
                .payload
                .as_ref()
                .map_or("", |p| p.summary.as_str()),
        ] {
            bytes.extend_from_slice(part.as_bytes());
            bytes.push(0);
        }
        let hash = hash64(&bytes);
        let now = Instant::now();
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() > 1024 {
            recent.retain(|_, (_, at)| now.duration_since(*at) < DERIVED_DEDUP_WINDOW);
        }
        match recent.get(&hash) {
            Some((key, at)) if now.duration_since(*at) < DERIVED_DEDUP_WINDOW => key.clone(),
            _ => {
                let key = generated_dedup_key(caller, None);
                recent.insert(hash, (key.clone(), now));
                key
            }
        }
    }

    /// Acknowledge or resolve the alert with `dedup_key` through `account`.
    pub async fn follow_up(
        self: &Arc<Self>,
        account: &Account,
        caller: &Caller,
        action: EventAction,
        dedup_key: String,
        request: FollowUpRequest,
        idempotency_key: Option<&str>,
    ) -> Outcome {
        let started = Instant::now();
        match self.prepare_follow_up(action, dedup_key, request, idempotency_key) {
            Ok(prepared) => {
                self.run(account, caller, prepared, idempotency_key, started)
                    .await
            }
            Err(e) => fresh(Err(e)),
        }
    }

    fn prepare_trigger(
        &self,
        caller: &Caller,
        r: TriggerRequest,
        idempotency_key: Option<&str>,
    ) -> Result<Prepared, TriggerError> {
        check_idempotency_key(idempotency_key)?;
        let fingerprint = fingerprint(EventAction::Trigger, &r);
        let target = target(r.service_id, r.integration_key)?;
        if r.summary.trim().is_empty() {
            return Err(invalid("summary", "must not be empty"));
        }
        let severity = match &r.severity {
            None => self.config.default_severity,
            Some(s) => s.parse().map_err(|_| {
                invalid(
                    "severity",
                    format!("must be one of critical, error, warning, info; got `{s}`"),
                )
            })?,
        };
        if let Some(url) = &r.client_url {
            check_url(url).map_err(|m| invalid("client_url", m))?;
        }
        check_dedup_key(r.dedup_key.as_deref())?;
        let mut details = match r.custom_details {
            None => serde_json::Map::new(),
            Some(Value::Object(map)) => map,
            Some(_) => return Err(invalid("custom_details", "must be a JSON object")),
        };
        // Attribution cannot be spoofed: ours overwrites any given value.
        details.insert(TRIGGERED_BY.into(), Value::String(caller.name.clone()));
        let mut links = Vec::new();
        for (i, link) in r.links.unwrap_or_default().into_iter().enumerate() {
            let href = link.href.unwrap_or_default();
            if href.trim().is_empty() {
                return Err(invalid(format!("links[{i}].href"), "is required"));
            }
            links.push(EventLink {
                href,
                text: link.text,
            });
        }
        let client_url = r.client_url.or_else(|| self.config.client_url.clone());
        let dedup_key = r
            .dedup_key
            .clone()
            .unwrap_or_else(|| generated_dedup_key(caller, idempotency_key));
        let payload = EventPayload {
            summary: r.summary,
            source: r
                .source
                .filter(|s| !s.trim().is_empty())
                .or_else(|| client_url.clone())
                .unwrap_or_else(|| self.config.client_name.clone()),
            severity,
            timestamp: None,
            component: r.component,
            group: r.group,
            class: Some(r.class.unwrap_or_else(|| DEFAULT_CLASS.to_owned())),
            custom_details: Some(Value::Object(details)),
        };
        let mut event = Event::trigger(PLACEHOLDER_KEY, payload);
        event.dedup_key = Some(dedup_key);
        event.client = Some(self.config.client_name.clone());
        event.client_url = client_url;
        event.links = links;
        event.validate().map_err(from_validation)?;
        Ok(Prepared {
            action: EventAction::Trigger,
            target,
            event,
            caller_dedup_key: r.dedup_key,
            fingerprint,
        })
    }

    fn prepare_follow_up(
        &self,
        action: EventAction,
        dedup_key: String,
        r: FollowUpRequest,
        idempotency_key: Option<&str>,
    ) -> Result<Prepared, TriggerError> {
        check_idempotency_key(idempotency_key)?;
        check_dedup_key(Some(&dedup_key))?;
        let fingerprint = fingerprint(action, &(&dedup_key, &r));
        let target = target(r.service_id, r.integration_key)?;
        let mut event = Event::follow_up(PLACEHOLDER_KEY, action, dedup_key.clone());
        event.client = Some(self.config.client_name.clone());
        event.validate().map_err(from_validation)?;
        Ok(Prepared {
            action,
            target,
            event,
            caller_dedup_key: Some(dedup_key),
            fingerprint,
        })
    }

    async fn run(
        self: &Arc<Self>,
        account: &Account,
        caller: &Caller,
        mut prepared: Prepared,
        idempotency_key: Option<&str>,
        started: Instant,
    ) -> Outcome {
        let action = prepared.action;
        let cards = &account.cards;
        let idem_store_key =
            idempotency_key.map(|k| format!("idem\0{}\0{}\0{k}", account.id, caller.name));
        // A stored answer is replayed before any limit: a client retrying
        // its Idempotency-Key (e.g. after a lost 202) must not get a 429
        // for an event that was already delivered.
        if let Some(answer) = idem_store_key
            .as_deref()
            .and_then(|key| self.store.answer(key, prepared.fingerprint))
        {
            tracing::info!(
                caller = %caller.name,
                action = ?action,
                "idempotent replay: answering with the first result"
            );
            return Outcome {
                result: answer,
                replayed: true,
            };
        }
        if let Err(retry_after) = self.limits.check_caller(&caller.name) {
            tracing::warn!(caller = %caller.name, action = ?action, "trigger rate limit (caller)");
            return fresh(Err(TriggerError::RateLimited {
                scope: LimitScope::Caller,
                retry_after,
            }));
        }
        let remaining = self.config.deadline.saturating_sub(started.elapsed());
        let resolved =
            match tokio::time::timeout(remaining, self.resolve(cards, &prepared.target)).await {
                Ok(Ok(resolved)) => resolved,
                Ok(Err(e)) => return fresh(Err(lookup_failure(e, &prepared.event))),
                Err(_) => {
                    return fresh(Err(not_delivered(
                        DeliveryFailure::Timeout,
                        "looking up the service's integration key did not finish in time".into(),
                        &prepared.event,
                        0,
                        None,
                        false,
                    )));
                }
            };
        let (routing_key, service_id) = resolved;
        let key_hash = hash64(routing_key.expose().as_bytes());
        prepared.event.routing_key = routing_key;

        // An Idempotency-Key keeps the answer for the whole window (the
        // caller asked for exactly-once); a bare dedup_key only merges
        // duplicates still in flight, since PagerDuty itself merges repeated
        // triggers into an open alert, and a stored answer would hide a
        // second resolve, or a re-trigger after the alert was resolved
        // outside dutycard.
        let keep_answer = idempotency_key.is_some();
        let store_key = match (idem_store_key, &prepared.caller_dedup_key) {
            (Some(k), _) => Some(k),
            (None, Some(d)) => Some(dedup_store_key(key_hash, action, d)),
            (None, None) => None,
        };
        let claim = match &store_key {
            None => None,
            Some(key) => match self.claim(key, prepared.fingerprint, started).await {
                Claimed::Leader(claim) => Some(claim),
                Claimed::Answer(answer) => {
                    tracing::info!(
                        caller = %caller.name,
                        action = ?action,
                        routing_key = %prepared.event.routing_key.fingerprint(),
                        "idempotent replay: answering with the first result"
                    );
                    return Outcome {
                        result: answer,
                        replayed: true,
                    };
                }
                Claimed::Error(e) => return fresh(Err(e)),
            },
        };

        if let Err(retry_after) = self.limits.check_routing_key(key_hash) {
            tracing::warn!(
                caller = %caller.name,
                routing_key = %prepared.event.routing_key.fingerprint(),
                "trigger rate limit (routing key)"
            );
            let answer: Answer = Err(TriggerError::RateLimited {
                scope: LimitScope::RoutingKey,
                retry_after,
            });
            if let Some(claim) = claim {
                claim.finish(answer.clone(), false);
            }
            return fresh(answer);
        }

        // Deliver in a task of its own: once we start sending, the outcome is
        // recorded (and the claim settled) even if the caller hangs up.
        let this = self.clone();
        let cards = cards.clone();
        let caller_name = caller.name.clone();
        let task = tokio::spawn(async move {
            let event = prepared.event;
            let remaining = this.config.deadline.saturating_sub(started.elapsed());
            let (answer, attempts) =
                deliver(cards.client(), &event, remaining, service_id.clone()).await;
            log_outcome(
                &caller_name,
                &event,
                service_id.as_deref(),
                &answer,
                attempts,
                started,
            );
            if let Some(claim) = claim {
                // Keep final answers under an Idempotency-Key; release the
                // key when nothing was created or it was a bare dedup_key.
                let keep =
                    keep_answer && matches!(&answer, Ok(_) | Err(TriggerError::Rejected { .. }));
                claim.finish(answer.clone(), keep);
            }
            if answer.is_ok() {
                // A known service is invalidated right away (an in-memory
                // cache removal), so the very next card shows the incident;
                // anything that may wait on PagerDuty runs after the answer.
                if let Some(id) = &service_id {
                    cards.invalidate(id, &[Section::Incidents]).await;
                }
                tokio::spawn(async move { invalidate_after(&cards, &event, service_id).await });
            }
            answer
        });
        match task.await {
            Ok(answer) => fresh(answer),
            Err(e) => {
                tracing::error!(error = %e, "trigger delivery task failed");
                fresh(Err(crate::error::ApiError::Internal(e.to_string()).into()))
            }
        }
    }

    async fn claim(&self, key: &str, fingerprint: u64, started: Instant) -> Claimed {
        // A follower whose leader vanished (panicked) tries to lead; bounded.
        for _ in 0..3 {
            match self.store.begin(key, fingerprint) {
                Begin::Leader(claim) => return Claimed::Leader(claim),
                Begin::Done(answer) => return Claimed::Answer(answer),
                Begin::Mismatch => return Claimed::Error(TriggerError::IdempotencyKeyReused),
                Begin::Follower(mut rx) => {
                    // The leader answers within the deadline; wait a little longer.
                    let wait = self.config.deadline.saturating_sub(started.elapsed())
                        + Duration::from_secs(1);
                    match tokio::time::timeout(wait, rx.wait_for(Option::is_some)).await {
                        Ok(Ok(answer)) => {
                            if let Some(answer) = answer.clone() {
                                return Claimed::Answer(answer);
                            }
                        }
                        Ok(Err(_)) => continue,
                        Err(_) => return Claimed::Error(TriggerError::InProgress),
                    }
                }
            }
        }
        Claimed::Error(TriggerError::InProgress)
    }

    /// Resolve the routing key (and the service when known).
    async fn resolve(
        &self,
        cards: &CardService,
        target: &Target,
    ) -> Result<(RoutingKey, Option<String>), TriggerError> {
        match target {
            Target::Service(id) => {
                let info = cards.routing_key_for_service(id).await?;
                Ok((info.routing_key, Some(info.service_id)))
            }
            Target::Key(key) => match self.config.allow {
                TriggerAllow::Any => Ok((RoutingKey::new(key.clone()), None)),
                TriggerAllow::Known => match cards.resolve_integration_key(key).await {
                    Ok(resolved) => Ok((RoutingKey::new(key.clone()), Some(resolved.service_id))),
                    Err(cards::CardError::NotFound { .. }) => Err(TriggerError::KeyNotAllowed),
                    Err(e) => Err(e.into()),
                },
            },
        }
    }
}

/// Invalidate the service's incidents section after an accepted event, so
/// cards show the change. Runs in a task of its own, after the answer went
/// out: with `allow = "any"` finding the service may need a REST lookup,
/// which must not delay the 202. A known service was invalidated once
/// already; this only repeats it later.
async fn invalidate_after(cards: &CardService, event: &Event, service_id: Option<String>) {
    let service_id = match service_id {
        Some(id) => Some(id),
        // `allow = "any"`: find the service if we can, for invalidation.
        None => {
            let found = cards
                .resolve_integration_key(event.routing_key.expose())
                .await
                .ok()
                .map(|r| r.service_id);
            if let Some(id) = &found {
                cards.invalidate(id, &[Section::Incidents]).await;
            }
            found
        }
    };
    if let Some(id) = service_id {
        // PagerDuty turns events into incidents asynchronously (usually
        // within seconds): drop whatever a card read in between, again.
        tokio::time::sleep(Duration::from_secs(5)).await;
        cards.invalidate(&id, &[Section::Incidents]).await;
    }
}

enum Claimed {
    Leader(idempotency::Claim<Answer>),
    Answer(Answer),
    Error(TriggerError),
}

fn fresh(result: Answer) -> Outcome {
    Outcome {
        result,
        replayed: false,
    }
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> TriggerError {
    TriggerError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// The client crate names Events API fields (`payload.summary`); we name the
/// request's (`summary`).
fn from_validation(e: pagerduty::ValidationError) -> TriggerError {
    let field = e
        .field
        .strip_prefix("payload.")
        .unwrap_or(&e.field)
        .to_owned();
    let field = if field == "routing_key" {
        "integration_key".to_owned()
    } else {
        field
    };
    invalid(field, e.message)
}

fn target(
    service_id: Option<String>,
    integration_key: Option<String>,
) -> Result<Target, TriggerError> {
    match (service_id, integration_key) {
        (Some(_), Some(_)) => Err(invalid(
            "service_id",
            "give either service_id or integration_key, not both",
        )),
        (None, None) => Err(invalid(
            "service_id",
            "one of service_id or integration_key is required",
        )),
        (Some(id), None) => {
            if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(invalid(
                    "service_id",
                    "must be a PagerDuty id: 1 to 64 letters and digits",
                ));
            }
            Ok(Target::Service(id))
        }
        (None, Some(key)) => {
            let n = key.chars().count();
            if n != pagerduty::events::ROUTING_KEY_CHARS {
                // The key is a secret: never echo it.
                return Err(invalid(
                    "integration_key",
                    format!(
                        "must be exactly {} characters, got {n}",
                        pagerduty::events::ROUTING_KEY_CHARS
                    ),
                ));
            }
            if !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(invalid(
                    "integration_key",
                    "must contain only letters and digits",
                ));
            }
            Ok(Target::Key(key))
        }
    }
}

fn check_dedup_key(key: Option<&str>) -> Result<(), TriggerError> {
    if let Some(key) = key {
        let n = key.chars().count();
        if key.trim().is_empty() {
            return Err(invalid("dedup_key", "must not be empty"));
        }
        if n > pagerduty::events::MAX_DEDUP_KEY_CHARS {
            return Err(invalid(
                "dedup_key",
                format!(
                    "must be at most {} characters, got {n}",
                    pagerduty::events::MAX_DEDUP_KEY_CHARS
                ),
            ));
        }
    }
    Ok(())
}

fn check_idempotency_key(key: Option<&str>) -> Result<(), TriggerError> {
    if let Some(key) = key {
        let n = key.chars().count();
        if n == 0 || n > MAX_IDEMPOTENCY_KEY_CHARS || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid(
                "Idempotency-Key",
                format!(
                    "must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} visible ASCII characters (a UUID is a good choice)"
                ),
            ));
        }
    }
    Ok(())
}

fn check_url(value: &str) -> Result<(), String> {
    let url = url::Url::parse(value).map_err(|e| format!("is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("must use http or https, not `{}`", url.scheme()));
    }
    Ok(())
}

/// A dedup_key for a request without one. With an Idempotency-Key it is
/// derived from it, so a retry after the window (or after a failure whose
/// outcome was unknown) still merges into the same alert.
fn generated_dedup_key(caller: &Caller, idempotency_key: Option<&str>) -> String {
    match idempotency_key {
        Some(key) => {
            let mut bytes = caller.name.as_bytes().to_vec();
            bytes.push(0);
            bytes.extend_from_slice(key.as_bytes());
            format!("dutycard-{:016x}", hash64(&bytes))
        }
        None => format!("dutycard-{}", uuid::Uuid::new_v4().simple()),
    }
}

fn dedup_store_key(key_hash: u64, action: EventAction, dedup_key: &str) -> String {
    format!("dedup\0{key_hash:016x}\0{action:?}\0{dedup_key}")
}

/// 64-bit FNV-1a: stable across builds and processes (unlike `DefaultHasher`).
fn hash64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn fingerprint<T: Serialize>(action: EventAction, request: &T) -> u64 {
    let mut bytes = format!("{action:?}\0").into_bytes();
    bytes.extend(serde_json::to_vec(request).unwrap_or_default());
    hash64(&bytes)
}

fn not_delivered(
    failure: DeliveryFailure,
    reason: String,
    event: &Event,
    attempts: u32,
    retry_after: Option<Duration>,
    created_unknown: bool,
) -> TriggerError {
    TriggerError::NotDelivered {
        action: event.event_action,
        failure,
        reason,
        dedup_key: event.dedup_key.clone().unwrap_or_default(),
        attempts,
        retry_after,
        created_unknown,
    }
}

/// A routing-key lookup that failed on PagerDuty's side (5xx, 429, timeout)
/// or ours: nothing was sent, so the answer is the not-delivered one
/// (`created: false`, `retry_safe: true`, the dedup_key to retry with).
/// Client errors (unknown service, key not allowed...) pass through.
fn lookup_failure(e: TriggerError, event: &Event) -> TriggerError {
    let TriggerError::Api {
        status,
        code,
        message,
        retry_after,
        ..
    } = &e
    else {
        return e;
    };
    if *status < 500 && *status != 429 {
        return e;
    }
    let failure = match code.as_str() {
        "upstream_rate_limited" => DeliveryFailure::Throttled,
        "upstream_unavailable" => DeliveryFailure::Unavailable,
        "upstream_timeout" | "deadline_exceeded" => DeliveryFailure::Timeout,
        _ if *status == 429 => DeliveryFailure::Throttled,
        _ => DeliveryFailure::BadGateway,
    };
    let reason = format!("looking up the service's integration key failed ({code}): {message}");
    let retry_after = retry_after.map(Duration::from_secs);
    not_delivered(failure, reason, event, 0, retry_after, false)
}

/// First retry wait; doubles per attempt up to [`MAX_BACKOFF`].
const BASE_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Send `event`, retrying 429, 5xx, transport errors and timeouts until
/// `budget` is spent. Returns the answer and the attempts made.
async fn deliver(
    client: &pagerduty::Client,
    event: &Event,
    budget: Duration,
    service_id: Option<String>,
) -> (Answer, u32) {
    use pagerduty::Error as E;

    let deadline = tokio::time::Instant::now() + budget;
    let mut attempts = 0u32;
    let mut backoff = BASE_BACKOFF;
    // Sticky across attempts: once an attempt may have reached PagerDuty
    // (no answer, or a connection lost after sending), a later plain
    // failure (503, 429) does not prove the incident was not created.
    let mut maybe_created = false;
    loop {
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        if remaining.is_zero() && attempts == 0 {
            // The lookups used the whole budget: nothing was sent, so the
            // incident was plainly not created (not "not confirmed").
            let reason = format!(
                "no time was left to send the event within the {} ms trigger deadline",
                budget.as_millis()
            );
            return (
                Err(not_delivered(
                    DeliveryFailure::Timeout,
                    reason,
                    event,
                    0,
                    None,
                    false,
                )),
                0,
            );
        }
        attempts += 1;
        // What went wrong on this attempt, and how long to wait before the next.
        let (failure, reason, wait, created_unknown) =
            match tokio::time::timeout(remaining, client.events().enqueue_once(event)).await {
                Ok(Ok(response)) => {
                    let accepted = TriggerAccepted {
                        status: response.status,
                        dedup_key: response
                            .dedup_key
                            .or_else(|| event.dedup_key.clone())
                            .unwrap_or_default(),
                        message: response.message,
                        service_id,
                    };
                    return (Ok(accepted), attempts);
                }
                Ok(Err(E::InvalidRequest { body })) if body.status.unwrap_or(400) == 400 => {
                    let message = body
                        .message
                        .clone()
                        .unwrap_or_else(|| "invalid event".to_owned());
                    return (
                        Err(TriggerError::Rejected {
                            message,
                            errors: body.errors,
                        }),
                        attempts,
                    );
                }
                Ok(Err(E::InvalidEvent(v))) => return (Err(from_validation(v)), attempts),
                Ok(Err(E::RateLimited { retry_after, .. })) => (
                    DeliveryFailure::Throttled,
                    "PagerDuty is throttling events for this integration (429)".to_owned(),
                    retry_after.unwrap_or(backoff).max(BASE_BACKOFF),
                    false,
                ),
                Ok(Err(E::Upstream { status, .. })) => (
                    DeliveryFailure::Unavailable,
                    format!("PagerDuty answered {status}"),
                    backoff,
                    false,
                ),
                // No connection was made: nothing was sent.
                Ok(Err(E::Connect(message))) => (
                    DeliveryFailure::Unavailable,
                    format!("PagerDuty could not be reached: {message}"),
                    backoff,
                    false,
                ),
                // The connection failed after it was made (a reset while
                // reading the answer): the event may have been accepted.
                Ok(Err(E::Transport(message))) => (
                    DeliveryFailure::Unavailable,
                    format!("the connection to PagerDuty failed: {message}"),
                    backoff,
                    true,
                ),
                Ok(Err(E::Timeout)) => (
                    DeliveryFailure::Timeout,
                    "PagerDuty did not answer in time".to_owned(),
                    backoff,
                    true,
                ),
                Ok(Err(E::Decode { message, .. })) => {
                    let reason = format!("PagerDuty's answer could not be read: {message}");
                    return (
                        Err(not_delivered(
                            DeliveryFailure::BadGateway,
                            reason,
                            event,
                            attempts,
                            None,
                            true,
                        )),
                        attempts,
                    );
                }
                Ok(Err(other)) => {
                    let reason = format!("unexpected answer: {other}");
                    return (
                        Err(not_delivered(
                            DeliveryFailure::BadGateway,
                            reason,
                            event,
                            attempts,
                            None,
                            maybe_created,
                        )),
                        attempts,
                    );
                }
                Err(_) => {
                    let reason = format!(
                        "PagerDuty did not answer within the {} ms trigger deadline",
                        budget.as_millis()
                    );
                    return (
                        Err(not_delivered(
                            DeliveryFailure::Timeout,
                            reason,
                            event,
                            attempts,
                            None,
                            true,
                        )),
                        attempts,
                    );
                }
            };
        maybe_created |= created_unknown;
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        if wait >= remaining {
            let reason = format!(
                "{reason}; gave up after {attempts} attempt(s) within the {} ms trigger deadline",
                budget.as_millis()
            );
            let retry_after = (failure == DeliveryFailure::Throttled).then_some(wait);
            return (
                Err(not_delivered(
                    failure,
                    reason,
                    event,
                    attempts,
                    retry_after,
                    maybe_created,
                )),
                attempts,
            );
        }
        tokio::time::sleep(wait).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

fn log_outcome(
    caller: &str,
    event: &Event,
    service_id: Option<&str>,
    answer: &Answer,
    attempts: u32,
    started: Instant,
) {
    let routing_key = event.routing_key.fingerprint();
    let dedup_key = event.dedup_key.as_deref().unwrap_or("");
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let action = format!("{:?}", event.event_action).to_lowercase();
    match answer {
        Ok(_) => tracing::info!(
            caller,
            action,
            service_id,
            routing_key = %routing_key,
            dedup_key,
            attempts,
            elapsed_ms,
            outcome = "accepted",
            "event delivered to PagerDuty"
        ),
        Err(e) => tracing::warn!(
            caller,
            action,
            service_id,
            routing_key = %routing_key,
            dedup_key,
            attempts,
            elapsed_ms,
            outcome = e.code(),
            error = %e,
            "event NOT delivered to PagerDuty"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller() -> Caller {
        Caller {
            name: "alice".into(),
        }
    }

    /// A 127.0.0.1 address nobody listens on: a port-0 listener's port,
    /// released again.
    fn refused_url() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    }

    fn service() -> TriggerService {
        TriggerService::new(TriggerConfig {
            client_name: "dutycard".into(),
            client_url: None,
            default_severity: pagerduty::Severity::Error,
            allow: TriggerAllow::Known,
            deadline: Duration::from_secs(1),
            idempotency_window: Duration::from_secs(60),
            per_caller_per_minute: 10,
            per_routing_key_per_minute: 10,
        })
    }

    fn request() -> TriggerRequest {
        serde_json::from_value(serde_json::json!({"service_id": "PABC123", "summary": "down"}))
            .unwrap()
    }

    fn field_of(r: TriggerRequest) -> String {
        match service().prepare_trigger(&caller(), r, None) {
            Err(TriggerError::Invalid { field, .. }) => field,
            Err(other) => panic!("unexpected error {other:?}"),
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn defaults_follow_the_backstage_card_and_attribute_the_caller() {
        let p = service()
            .prepare_trigger(&caller(), request(), None)
            .unwrap();
        let payload = p.event.payload.unwrap();
        assert_eq!(payload.severity, pagerduty::Severity::Error);
        assert_eq!(payload.class.as_deref(), Some(DEFAULT_CLASS));
        assert_eq!(payload.custom_details.unwrap()[TRIGGERED_BY], "alice");
        assert_eq!(p.event.client.as_deref(), Some("dutycard"));
        assert!(p.event.dedup_key.unwrap().starts_with("dutycard-"));
    }

    #[test]
    fn each_rule_names_its_field() {
        let mut r = request();
        r.summary = " ".into();
        assert_eq!(field_of(r), "summary");
        let mut r = request();
        r.summary = "x".repeat(1025);
        assert_eq!(field_of(r), "summary");
        let mut r = request();
        r.severity = Some("fatal".into());
        assert_eq!(field_of(r), "severity");
        let mut r = request();
        r.dedup_key = Some("d".repeat(256));
        assert_eq!(field_of(r), "dedup_key");
        let mut r = request();
        r.custom_details = Some(serde_json::json!([1]));
        assert_eq!(field_of(r), "custom_details");
        let mut r = request();
        r.links = Some(vec![LinkInput {
            href: None,
            text: Some("t".into()),
        }]);
        assert_eq!(field_of(r), "links[0].href");
        let mut r = request();
        r.service_id = None;
        r.integration_key = Some("short".into());
        assert_eq!(field_of(r), "integration_key");
        let mut r = request();
        r.service_id = None;
        assert_eq!(field_of(r), "service_id");
        let mut r = request();
        r.custom_details = Some(serde_json::json!({"blob": "x".repeat(520 * 1024)}));
        assert_eq!(field_of(r), "body");
    }

    #[test]
    fn debug_never_shows_the_integration_key() {
        let key = "abcdefabcdefabcdefabcdefabcdef12";
        let mut r = request();
        r.integration_key = Some(key.into());
        let shown = format!("{r:?}");
        assert!(!shown.contains(key), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
        let f = FollowUpRequest {
            service_id: None,
            integration_key: Some(key.into()),
        };
        let shown = format!("{f:?}");
        assert!(!shown.contains(key), "{shown}");
    }

    #[tokio::test]
    async fn no_time_left_means_not_created_and_nothing_sent() {
        // Nothing listens on that port: had it sent, it would fail
        // differently (transport) or report "unknown".
        let client = pagerduty::Client::builder(pagerduty::Credentials::ApiToken(
            secrecy::SecretString::from("token"),
        ))
        .events_base_url(format!("{}/v2", refused_url()))
        .build()
        .unwrap();
        let p = service()
            .prepare_trigger(&caller(), request(), None)
            .unwrap();
        let (answer, attempts) = deliver(&client, &p.event, Duration::ZERO, None).await;
        assert_eq!(attempts, 0);
        match answer {
            Err(TriggerError::NotDelivered {
                created_unknown,
                attempts,
                ..
            }) => {
                assert!(!created_unknown, "nothing was sent: plainly not created");
                assert_eq!(attempts, 0);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_refused_connection_means_not_created() {
        // Nothing listens on that port: every attempt fails to connect, so
        // nothing was sent and the answer is a plain "not created".
        let client = pagerduty::Client::builder(pagerduty::Credentials::ApiToken(
            secrecy::SecretString::from("token"),
        ))
        .events_base_url(format!("{}/v2", refused_url()))
        .build()
        .unwrap();
        let p = service()
            .prepare_trigger(&caller(), request(), None)
            .unwrap();
        let (answer, attempts) = deliver(&client, &p.event, Duration::from_millis(400), None).await;
        assert!(attempts >= 2, "retried: {attempts}");
        match answer {
            Err(e @ TriggerError::NotDelivered { .. }) => {
                let TriggerError::NotDelivered {
                    created_unknown, ..
                } = &e
                else {
                    unreachable!()
                };
                assert!(!created_unknown, "a connect error sends nothing: {e}");
                assert!(
                    e.to_string().contains("the incident was NOT created"),
                    "{e}"
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn an_idempotency_key_gives_a_stable_dedup_key() {
        let a = generated_dedup_key(&caller(), Some("k1"));
        assert_eq!(a, generated_dedup_key(&caller(), Some("k1")));
        assert_ne!(a, generated_dedup_key(&caller(), Some("k2")));
        assert_ne!(
            generated_dedup_key(&caller(), None),
            generated_dedup_key(&caller(), None)
        );
    }
}
