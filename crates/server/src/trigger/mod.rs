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
//!
//! # Layout
//!
//! This is a domain module: it knows nothing of HTTP. [`TriggerError`] is
//! typed; the HTTP surfaces map it to statuses and bodies in
//! `crate::http::trigger`. [`request`] holds what callers send and get,
//! [`validate`] step 1, [`routing`] step 3 (and 7), [`idempotency`] step 4,
//! [`limits`] steps 2 and 5, [`delivery`] step 6; this file runs them in
//! order.
//!
//! # Several replicas
//!
//! [`TriggerService::with_shared`] adds a [`shared::SharedTrigger`]: the
//! stored answers, the in-flight claims of steps 2 and 4 and the limits of
//! steps 2 and 5 then live in Redis for every replica (a retry on another
//! replica replays the first answer; the limits count every replica's
//! requests). The local store still coalesces the concurrent duplicates of
//! one replica first (one Redis claim for all of them); while Redis is away
//! the local store and limits answer alone ([`TriggerService::shared_mode`]).

pub mod delivery;
pub mod error;
pub mod idempotency;
pub mod limits;
pub mod request;
pub mod routing;
pub mod shared;
pub mod validate;

use std::sync::Arc;
use std::time::{Duration, Instant};

use cards::Section;
use pagerduty::EventAction;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::accounts::Account;
use crate::auth::Caller;
use crate::config::TriggerSettings;
use crate::keys::KeyAliases;
use delivery::{deliver, log_outcome, lookup_failure, not_delivered};
pub use error::{DeliveryFailure, TriggerError};
use idempotency::{Begin, IdempotencyStore, RecentTriggers};
use limits::{LimitScope, RateLimits};
use request::fresh;
pub use request::{Answer, FollowUpRequest, LinkInput, Outcome, TriggerAccepted, TriggerRequest};
use shared::{RemoteBegin, SharedMode, SharedTrigger, StoredAnswer};
use validate::{Prepared, dedup_store_key, hash64};

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
/// How much longer than `trigger.deadline_ms` a shared in-flight claim
/// lives: a replica that dies while sending frees its keys after that.
pub const IN_FLIGHT_MARGIN: Duration = Duration::from_secs(2);

/// The trigger proxy. One per process, shared by all workers.
pub struct TriggerService {
    settings: TriggerSettings,
    /// Maps integration key aliases back to keys.
    keys: Arc<KeyAliases>,
    /// Owns every delivery and follow-up task: shutdown waits for the
    /// deliveries in flight (bounded) and stops the delayed invalidations.
    tasks: TaskTracker,
    stopping: CancellationToken,
    /// Derived dedup_keys of recent requests without one.
    recent: RecentTriggers,
    store: IdempotencyStore<Answer>,
    limits: RateLimits,
    /// Idempotency and limits shared by replicas, when configured.
    shared: Option<SharedTrigger>,
}

impl std::fmt::Debug for TriggerService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TriggerService")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl TriggerService {
    /// A proxy with `[trigger]`'s settings; `keys` maps the integration key
    /// aliases Backstage answers show back to keys.
    pub fn new(settings: &TriggerSettings, keys: Arc<KeyAliases>) -> Self {
        TriggerService {
            keys,
            tasks: TaskTracker::new(),
            stopping: CancellationToken::new(),
            recent: RecentTriggers::new(DERIVED_DEDUP_WINDOW),
            store: IdempotencyStore::new(settings.idempotency_window()),
            limits: RateLimits::new(
                settings.per_caller_per_minute,
                settings.per_routing_key_per_minute,
            ),
            shared: None,
            settings: settings.clone(),
        }
    }

    /// Share the idempotency entries and the rate limits with every replica
    /// using the same Redis and key prefix (see [`shared`]). Without this
    /// everything stays in this process.
    pub fn with_shared(mut self, shared: SharedTrigger) -> Self {
        self.limits = RateLimits::new(
            self.settings.per_caller_per_minute,
            self.settings.per_routing_key_per_minute,
        )
        .with_shared(shared.clone());
        self.shared = Some(shared);
        self
    }

    /// Whether idempotency and limits are shared right now: `None` when not
    /// configured, [`SharedMode::Local`] while Redis is away.
    pub fn shared_mode(&self) -> Option<SharedMode> {
        self.shared.as_ref().map(SharedTrigger::mode)
    }

    /// The shared store, when configured (its mode, its fallback count).
    pub fn shared(&self) -> Option<&SharedTrigger> {
        self.shared.as_ref()
    }

    /// The settings in force.
    pub fn settings(&self) -> &TriggerSettings {
        &self.settings
    }

    /// Deliveries and follow-up tasks still running.
    pub fn in_flight(&self) -> usize {
        self.tasks.len()
    }

    /// Stop: no new work is accepted (a trigger after this answers "NOT
    /// created"), the deliveries in flight finish (each within its own
    /// deadline, so the wait is bounded by `trigger.deadline_ms`), and the
    /// delayed card invalidations are dropped. Idempotent.
    pub async fn shutdown(&self) {
        self.stopping.cancel();
        self.tasks.close();
        let bound = self.settings.deadline() + Duration::from_secs(1);
        if tokio::time::timeout(bound, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                pending = self.tasks.len(),
                "trigger deliveries still running at shutdown"
            );
        }
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
        match validate::prepare_trigger(&self.settings, caller, request, idempotency_key) {
            Ok(mut prepared) => {
                if prepared.caller_dedup_key.is_none() && idempotency_key.is_none() {
                    // Nothing identifies a retry: a repeated identical
                    // request within the window gets the same dedup_key,
                    // so PagerDuty merges it into the same alert.
                    let derived = self.recent.dedup_key(&account.id, caller, &prepared);
                    prepared.event.dedup_key = Some(derived);
                }
                self.run(account, caller, prepared, idempotency_key, started)
                    .await
            }
            Err(e) => fresh(Err(e)),
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
        match validate::prepare_follow_up(
            &self.settings,
            action,
            dedup_key,
            request,
            idempotency_key,
        ) {
            Ok(prepared) => {
                self.run(account, caller, prepared, idempotency_key, started)
                    .await
            }
            Err(e) => fresh(Err(e)),
        }
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
        if let Some(answer) = self
            .stored_answer(idem_store_key.as_deref(), prepared.fingerprint)
            .await
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
        if let Err(retry_after) = self.limits.caller(&caller.name).await {
            tracing::warn!(caller = %caller.name, action = ?action, "trigger rate limit (caller)");
            return fresh(Err(TriggerError::RateLimited {
                scope: LimitScope::Caller,
                retry_after,
            }));
        }
        let remaining = self.settings.deadline().saturating_sub(started.elapsed());
        let resolved = match tokio::time::timeout(
            remaining,
            routing::resolve(self.settings.allow, &self.keys, account, &prepared.target),
        )
        .await
        {
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

        if let Err(retry_after) = self.limits.routing_key(key_hash).await {
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
                claim.finish(answer.clone(), false).await;
            }
            return fresh(answer);
        }

        if self.stopping.is_cancelled() {
            let answer: Answer = Err(not_delivered(
                DeliveryFailure::Unavailable,
                "dutycard is shutting down".into(),
                &prepared.event,
                0,
                None,
                false,
            ));
            if let Some(claim) = claim {
                claim.finish(answer.clone(), false).await;
            }
            return fresh(answer);
        }
        // Deliver in a task of its own: once we start sending, the outcome is
        // recorded (and the claim settled) even if the caller hangs up.
        let this = self.clone();
        let cards = cards.clone();
        let caller_name = caller.name.clone();
        let task = self.tasks.spawn(async move {
            let event = prepared.event;
            let remaining = this.settings.deadline().saturating_sub(started.elapsed());
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
                claim.finish(answer.clone(), keep).await;
            }
            if answer.is_ok() {
                // A known service is invalidated right away (an in-memory
                // cache removal), so the very next card shows the incident;
                // anything that may wait on PagerDuty runs after the answer.
                if let Some(id) = &service_id {
                    cards.invalidate(id, &[Section::Incidents]).await;
                }
                let stopping = this.stopping.clone();
                this.tasks.spawn(async move {
                    stopping
                        .run_until_cancelled(routing::invalidate_after(&cards, &event, service_id))
                        .await
                });
            }
            answer
        });
        match task.await {
            Ok(answer) => fresh(answer),
            Err(e) => {
                tracing::error!(error = %e, "trigger delivery task failed");
                fresh(Err(TriggerError::Internal(e.to_string())))
            }
        }
    }

    /// The kept answer for `key` (this replica's, else the shared one).
    async fn stored_answer(&self, key: Option<&str>, fingerprint: u64) -> Option<Answer> {
        let key = key?;
        if let Some(answer) = self.store.answer(key, fingerprint) {
            return Some(answer);
        }
        let shared = self.shared.as_ref()?;
        let stored = shared.answer(key, fingerprint).await?;
        Some(stored.into_answer())
    }

    async fn claim(&self, key: &str, fingerprint: u64, started: Instant) -> Claimed {
        // The leader answers within the deadline; wait a little longer.
        let until = started + self.settings.deadline() + Duration::from_secs(1);
        // A follower whose leader vanished (panicked) tries to lead; bounded.
        for _ in 0..3 {
            match self.store.begin(key, fingerprint) {
                Begin::Leader(local) => {
                    return self.claim_shared(local, key, fingerprint, until).await;
                }
                Begin::Done(answer) => return Claimed::Answer(answer),
                Begin::Mismatch => return Claimed::Error(TriggerError::IdempotencyKeyReused),
                Begin::Follower(mut rx) => {
                    let wait = until.saturating_duration_since(Instant::now());
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

    /// This replica leads for `key`: claim it in Redis too, when shared.
    /// Concurrent duplicates on this replica wait on `local` meanwhile.
    async fn claim_shared(
        &self,
        local: idempotency::Claim<Answer>,
        key: &str,
        fingerprint: u64,
        until: Instant,
    ) -> Claimed {
        let window = self.settings.idempotency_window();
        let lead = |local, remote| {
            Claimed::Leader(Lead {
                local,
                remote,
                window,
            })
        };
        let Some(shared) = &self.shared else {
            return lead(local, None);
        };
        let ttl = self.settings.deadline() + IN_FLIGHT_MARGIN;
        match shared
            .claim(key, fingerprint, ttl, tokio::time::Instant::from_std(until))
            .await
        {
            RemoteBegin::Leader(remote) => lead(local, Some(remote)),
            // Redis is away: lead on this replica alone (the dedup_key is
            // the same on every replica, so PagerDuty merges a second send).
            RemoteBegin::Unavailable => lead(local, None),
            RemoteBegin::Done(stored) => {
                let answer = stored.into_answer();
                // Wakes this replica's followers; Redis keeps the answer.
                local.finish(answer.clone(), false);
                Claimed::Answer(answer)
            }
            // Dropping `local` frees it; its followers meet the same answer.
            RemoteBegin::Mismatch => Claimed::Error(TriggerError::IdempotencyKeyReused),
            RemoteBegin::Busy => Claimed::Error(TriggerError::InProgress),
        }
    }
}

enum Claimed {
    Leader(Lead),
    Answer(Answer),
    Error(TriggerError),
}

/// The right (and duty) to answer for a key: this replica's claim, and the
/// Redis one when shared. Dropped unfinished, both are freed.
struct Lead {
    local: idempotency::Claim<Answer>,
    remote: Option<shared::RemoteClaim>,
    window: Duration,
}

impl Lead {
    /// Publish the answer (kept for the window when `keep`, else the key is
    /// freed) to Redis first, so that no replica finds the key free before
    /// the answer is there, then to this replica's followers.
    async fn finish(self, answer: Answer, keep: bool) {
        if let Some(remote) = self.remote {
            let stored = keep.then(|| StoredAnswer::of(&answer)).flatten();
            remote.finish(stored.as_ref(), self.window).await;
        }
        self.local.finish(answer, keep);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::config::TriggerAllow;

    fn account(events: &MockServer) -> Account {
        let client = pagerduty::Client::builder(pagerduty::Credentials::ApiToken(
            secrecy::SecretString::from("token"),
        ))
        .api_base_url(events.uri())
        .events_base_url(format!("{}/v2", events.uri()))
        .build()
        .unwrap();
        Account {
            id: "default".into(),
            is_default: true,
            marked_default: false,
            cards: cards::CardService::new(client.clone(), cards::CardsConfig::default()),
            client,
        }
    }

    /// Polls `done` every few milliseconds, for at most two seconds.
    async fn until(mut done: impl FnMut() -> bool) {
        tokio::time::timeout(Duration::from_secs(2), async {
            while !done() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("condition within 2 s");
    }

    #[tokio::test]
    async fn shutdown_waits_for_a_delivery_whose_caller_hung_up_then_refuses_new_ones() {
        let events = MockServer::start().await;
        // Slower than anything else in the test: had shutdown not waited, the
        // delivery would still be in flight when it returned.
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(202)
                    .set_body_json(json!({"status": "success", "message": "Event processed"}))
                    .set_delay(Duration::from_millis(1500)),
            )
            .mount(&events)
            .await;
        let service = Arc::new(TriggerService::new(
            &TriggerSettings {
                allow: TriggerAllow::Any,
                deadline_ms: 5000,
                ..validate::tests::settings()
            },
            Arc::new(KeyAliases::none()),
        ));
        let account = Arc::new(account(&events));
        let caller = Caller {
            name: "alice".into(),
        };
        let request = || -> TriggerRequest {
            serde_json::from_value(json!({
                "integration_key": "abcdefabcdefabcdefabcdefabcdef12",
                "summary": "down",
            }))
            .unwrap()
        };
        let request_task = tokio::spawn({
            let (service, account, caller) = (service.clone(), account.clone(), caller.clone());
            let request = request();
            async move { service.trigger(&account, &caller, request, None).await }
        });
        until(|| service.in_flight() == 1).await;
        // The caller hangs up; the delivery goes on in its own task.
        request_task.abort();
        service.shutdown().await;
        assert_eq!(
            service.in_flight(),
            0,
            "shutdown returned before the delivery ended"
        );
        assert_eq!(events.received_requests().await.unwrap().len(), 1);

        let outcome = service.trigger(&account, &caller, request(), None).await;
        match outcome.result {
            Err(TriggerError::NotDelivered {
                created_unknown: false,
                attempts: 0,
                reason,
                ..
            }) => assert!(reason.contains("shutting down"), "{reason}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert_eq!(
            events.received_requests().await.unwrap().len(),
            1,
            "nothing sent"
        );
    }
}
