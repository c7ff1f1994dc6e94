//! PagerDuty v3 webhooks in: verify, dedupe, then drop the sections the
//! event changed, so the next read (and every open card stream) shows the
//! change without waiting for a TTL.
//!
//! [`WebhookService::receive`] does only what must happen before the
//! answer: the signature check ([`signature`]), the `X-Webhook-Id` dedupe
//! ([`dedupe`], and across replicas with `[shared]` Redis,
//! [`shared_dedupe`]), reading the event ([`event`]) and queueing it. The
//! invalidation runs in one worker task behind a bounded queue, so a burst
//! is answered at once (PagerDuty waits 5 s) and costs no upstream call:
//! the refetch happens when a card is read again, coalesced and batched as
//! every read is. A full queue answers 503 and PagerDuty retries.
//!
//! Never a 4xx for a correctly signed delivery we cannot use (an unknown
//! event type, an event without a service, a body that is not an event):
//! PagerDuty drops 4xx deliveries and disables a subscription after three.

pub mod dedupe;
pub mod event;
pub mod shared_dedupe;
pub mod signature;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use cards::Section;
use secrecy::SecretString;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::accounts::{Account, Accounts};
use crate::config::WebhookSettings;
use crate::metrics::Metrics;
use dedupe::Dedupe;
use event::{Action, Envelope};
use shared_dedupe::SharedDedupe;
pub use signature::SignatureError;

/// Jobs the worker takes at once (their invalidations are merged).
const WORKER_BATCH: usize = 256;

/// What happened to a delivery that was answered 2xx.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receipt {
    /// Queued for invalidation.
    Queued,
    /// `pagey.ping`.
    Ping,
    /// This `X-Webhook-Id` was processed already.
    Duplicate,
    /// Signed, but nothing to do (the reason is logged and counted).
    Ignored(&'static str),
}

impl Receipt {
    /// The `outcome` label of the deliveries metric.
    pub fn outcome(&self) -> &'static str {
        match self {
            Receipt::Queued => "queued",
            Receipt::Ping => "ping",
            Receipt::Duplicate => "duplicate",
            Receipt::Ignored(reason) => reason,
        }
    }
}

/// Why a delivery was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// 401: not signed by one of the account's secrets; nothing happened.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// 503: the queue is full; PagerDuty retries (and the retry is not a
    /// duplicate: the id was forgotten).
    #[error("too many webhooks waiting to be processed; retry later")]
    Busy,
}

/// One verified event for the worker.
struct Job {
    cards: cards::CardService,
    account: String,
    event_type: &'static str,
    service_id: String,
    sections: Vec<Section>,
    lists: bool,
    occurred_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The webhook intake of every account.
pub struct WebhookService {
    /// Per account; a lock because `dutycard demo` adds the secret of the
    /// subscription it creates after start-up ([`WebhookService::add_secret`]).
    secrets: RwLock<HashMap<String, Vec<SecretString>>>,
    dedupe: Dedupe,
    /// With `[shared]`: the same window across replicas.
    shared: Option<SharedDedupe>,
    queue: mpsc::Sender<Job>,
    metrics: Arc<Metrics>,
    tasks: TaskTracker,
    stopping: CancellationToken,
}

impl std::fmt::Debug for WebhookService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets stay out: only how many each account has.
        let secrets = self.secrets.read().unwrap_or_else(|e| e.into_inner());
        let counts: HashMap<&str, usize> = secrets
            .iter()
            .map(|(id, s)| (id.as_str(), s.len()))
            .collect();
        f.debug_struct("WebhookService")
            .field("secrets", &counts)
            .finish_non_exhaustive()
    }
}

impl WebhookService {
    /// Takes each account's secrets from `settings` and starts the worker
    /// (needs a tokio runtime; [`WebhookService::shutdown`] stops it).
    /// `shared` (with `[shared]` Redis) dedupes across replicas too.
    pub fn start(
        settings: &WebhookSettings,
        accounts: &Accounts,
        metrics: Arc<Metrics>,
        shared: Option<SharedDedupe>,
    ) -> Arc<WebhookService> {
        let secrets = accounts
            .iter()
            .map(|a| (a.id.clone(), settings.secrets_of(&a.id, a.is_default)))
            .collect();
        let (queue, jobs) = mpsc::channel(settings.queue_size.max(1));
        let service = Arc::new(WebhookService {
            secrets: RwLock::new(secrets),
            dedupe: Dedupe::new(settings.dedupe_window()),
            shared,
            queue,
            metrics,
            tasks: TaskTracker::new(),
            stopping: CancellationToken::new(),
        });
        let worker = work(jobs, Arc::clone(&service.metrics), service.stopping.clone());
        service.tasks.spawn(worker);
        service.tasks.close();
        service
    }

    /// Verifies and queues one delivery to `account`. `signature` and
    /// `webhook_id` are the `X-PagerDuty-Signature` and `X-Webhook-Id`
    /// headers, `body` the raw body.
    pub async fn receive(
        &self,
        account: &Account,
        signature: Option<&str>,
        webhook_id: Option<&str>,
        body: &[u8],
    ) -> Result<Receipt, WebhookError> {
        let verified = {
            let secrets = self.secrets.read().unwrap_or_else(|e| e.into_inner());
            let secrets = secrets.get(&account.id).map_or(&[][..], Vec::as_slice);
            signature::verify(signature, body, secrets)
        };
        if let Err(e) = verified {
            self.metrics
                .observe_webhook_signature_failure(&account.id, e.reason());
            tracing::info!(account = %account.id, reason = e.reason(), "webhook refused: bad signature");
            return Err(e.into());
        }
        let event = match serde_json::from_slice::<Envelope>(body) {
            Ok(envelope) => envelope.event,
            Err(e) => {
                tracing::warn!(account = %account.id, error = %e, "signed webhook is not a v3 event; ignored");
                self.metrics
                    .observe_webhook(&account.id, "other", "not_an_event");
                return Ok(Receipt::Ignored("not_an_event"));
            }
        };
        let event_type = event.type_label();
        let receipt = self.accept(account, webhook_id, &event).await;
        match &receipt {
            Ok(Receipt::Ignored(reason)) => tracing::warn!(
                account = %account.id,
                event_type = %event.event_type,
                event_id = event.id.as_deref().unwrap_or(""),
                reason,
                "signed webhook ignored"
            ),
            Ok(receipt) => tracing::debug!(
                account = %account.id,
                event_type,
                outcome = receipt.outcome(),
                "webhook received"
            ),
            Err(_) => tracing::warn!(account = %account.id, event_type, "webhook queue full: 503"),
        }
        let outcome = receipt.as_ref().map_or("busy", Receipt::outcome);
        self.metrics
            .observe_webhook(&account.id, event_type, outcome);
        receipt
    }

    /// Accepts deliveries signed with `secret` for `account` too (a
    /// subscription created while running, e.g. by `dutycard demo`).
    pub fn add_secret(&self, account: &str, secret: SecretString) {
        self.secrets
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(account.to_owned())
            .or_default()
            .push(secret);
    }

    async fn accept(
        &self,
        account: &Account,
        webhook_id: Option<&str>,
        event: &event::Event,
    ) -> Result<Receipt, WebhookError> {
        let (service_id, sections, lists) = match event.action() {
            Action::Ping => return Ok(Receipt::Ping),
            Action::Ignore(reason) => return Ok(Receipt::Ignored(reason)),
            Action::Invalidate {
                service_id,
                sections,
                lists,
            } => (service_id, sections, lists),
        };
        // The webhook id (the same on every attempt), else the event id.
        let id = webhook_id
            .or(event.id.as_deref())
            .map(|id| format!("{}/{id}", account.id));
        if let Some(id) = &id
            && !self.dedupe.first(id, Instant::now())
        {
            return Ok(Receipt::Duplicate);
        }
        // New here; maybe not on another replica. Only a signed delivery
        // gets this far, so a forger cannot claim ids. Redis down (None):
        // the local window decides alone.
        if let (Some(id), Some(shared)) = (&id, &self.shared)
            && shared.first(id).await == Some(false)
        {
            return Ok(Receipt::Duplicate);
        }
        let job = Job {
            cards: account.cards.clone(),
            account: account.id.clone(),
            event_type: event.type_label(),
            service_id,
            sections,
            lists,
            occurred_at: event.occurred_at,
        };
        match self.queue.try_send(job) {
            Ok(()) => Ok(Receipt::Queued),
            Err(_) => {
                if let Some(id) = &id {
                    self.dedupe.forget(id);
                    if let Some(shared) = &self.shared {
                        shared.forget(id).await;
                    }
                }
                Err(WebhookError::Busy)
            }
        }
    }

    /// Stops the worker (queued invalidations are dropped with the caches
    /// they were for). Idempotent.
    pub async fn shutdown(&self) {
        self.stopping.cancel();
        if tokio::time::timeout(Duration::from_secs(5), self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("webhook worker still running at shutdown");
        }
    }
}

/// The worker: takes what is queued, merges it (a burst about one service
/// drops its sections once), invalidates.
async fn work(mut jobs: mpsc::Receiver<Job>, metrics: Arc<Metrics>, stopping: CancellationToken) {
    let mut batch = Vec::with_capacity(WORKER_BATCH);
    loop {
        let n = tokio::select! {
            () = stopping.cancelled() => return,
            n = jobs.recv_many(&mut batch, WORKER_BATCH) => n,
        };
        if n == 0 {
            return;
        }
        let mut merged: HashMap<(String, String), (cards::CardService, Vec<Section>)> =
            HashMap::new();
        let mut lists: HashMap<String, cards::CardService> = HashMap::new();
        for job in batch.drain(..) {
            let entry = merged
                .entry((job.account.clone(), job.service_id.clone()))
                .or_insert_with(|| (job.cards.clone(), Vec::new()));
            for section in job.sections {
                if !entry.1.contains(&section) {
                    entry.1.push(section);
                }
            }
            if job.lists {
                lists.insert(job.account.clone(), job.cards.clone());
            }
            let lag = job
                .occurred_at
                .and_then(|at| (chrono::Utc::now() - at).to_std().ok())
                .unwrap_or_default();
            metrics.observe_webhook_lag(&job.account, job.event_type, lag);
        }
        for cards in lists.values() {
            cards.invalidate_service_lists();
        }
        for ((account, service_id), (cards, sections)) in merged {
            if !cards.has_cached_service(&service_id).await {
                // Another account's service, a new one, or one no portal
                // shows: answered 2xx all the same (PagerDuty must not
                // disable the subscription), and said so.
                tracing::info!(%account, %service_id, "webhook about a service no cached card shows");
            }
            cards.invalidate(&service_id, &sections).await;
            tracing::debug!(%account, %service_id, ?sections, "webhook: sections invalidated");
        }
    }
}
