//! Live cards: a stream of a card (or of several) that sends the card on
//! connect and again whenever one of its sections changed.
//!
//! Each stream is one task owned by [`StreamService`]. It listens to the
//! account's [`cards::CardService::subscribe_changes`]; a change of one of
//! its services (on-call: of one of their escalation policies) makes it read
//! the card again through the caches, and it sends the card when its ETag
//! differs from the last one sent. After an invalidation (a webhook) that
//! read is the refetch, shared with every other stream and reader of the
//! card (the caches coalesce it), so N streams of one card cost one call.
//!
//! Bounded everywhere: a connection has `streams.buffer` events waiting at
//! most; a client that lets more pile up is dropped ([`CardStream::dropped`]
//! fires; it reconnects with `Last-Event-ID`) and never slows the others;
//! streams per caller and in total are limited ([`StreamError`]); shutdown
//! ends every stream.
//!
//! Event ids: a single-card stream's is the card's ETag; a multi-card
//! stream's lists each card's ETag hash in request order (`a1b2…,c3d4…`),
//! so a reconnect resends only the cards that changed meanwhile.
//!
//! Entity streams (one card over an entity's mapped services) are in
//! [`entity`].

pub mod entity;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use cards::{CardError, CardOptions, CardService, Section, ServiceCard, ServiceRef};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::StreamSettings;
use crate::metrics::Metrics;

/// How a card's ETag is computed (the HTTP layer's, so a stream's event id
/// is the ETag `GET /v1/cards/{id}` answers).
pub type EtagFn = fn(&ServiceCard) -> String;

/// Seconds a refused caller is told to wait.
pub const RETRY_AFTER_SECS: u64 = 10;

/// One event of a stream: a card (or why there is none now).
#[derive(Debug)]
pub struct StreamItem {
    /// The SSE event id (see the module docs).
    pub id: String,
    /// The service.
    pub service_id: String,
    /// The card, or why it could not be read.
    pub card: Result<ServiceCard, CardError>,
}

/// An open stream: its events, and a token that fires when it was dropped
/// for being too slow (the HTTP side then ends the connection at once,
/// without writing what is still buffered).
#[derive(Debug)]
pub struct CardStream {
    pub items: mpsc::Receiver<StreamItem>,
    pub dropped: CancellationToken,
}

/// Why no stream was opened.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// This caller has `streams.max_per_caller` open.
    #[error("this caller has {0} card streams open, the most allowed (streams.max_per_caller)")]
    PerCaller(usize),
    /// `streams.max_total` are open.
    #[error("{0} card streams are open, the most allowed (streams.max_total)")]
    Total(usize),
    /// The server is shutting down.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The single card could not be read (as `GET /v1/cards/{id}` would fail).
    #[error(transparent)]
    Card(#[from] CardError),
}

/// What to stream.
#[derive(Debug, Clone)]
pub struct StreamRequest {
    /// The services, in order.
    pub service_ids: Vec<cards::ServiceId>,
    /// One card (`/v1/cards/{id}/stream`): the event id is its ETag, and a
    /// card that cannot be read fails the request instead of being an event.
    pub single: bool,
    /// The card options.
    pub options: CardOptions,
    /// `Last-Event-ID` of a reconnect.
    pub last_event_id: Option<String>,
}

/// Open streams, their limits and their tasks.
pub struct StreamService {
    settings: StreamSettings,
    etag: EtagFn,
    metrics: Arc<Metrics>,
    open: Mutex<Open>,
    tasks: TaskTracker,
    stopping: CancellationToken,
}

#[derive(Default)]
struct Open {
    total: usize,
    per_caller: HashMap<String, usize>,
}

/// A stream's place under the limits, given back when its task ends.
struct Permit {
    service: Arc<StreamService>,
    caller: String,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = lock(&self.service.open);
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.per_caller.get_mut(&self.caller) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.per_caller.remove(&self.caller);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl StreamService {
    pub fn new(settings: StreamSettings, etag: EtagFn, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(StreamService {
            settings,
            etag,
            metrics,
            open: Mutex::default(),
            tasks: TaskTracker::new(),
            stopping: CancellationToken::new(),
        })
    }

    /// `streams.*`.
    pub fn settings(&self) -> &StreamSettings {
        &self.settings
    }

    /// Streams open now.
    pub fn open_streams(&self) -> usize {
        lock(&self.open).total
    }

    fn permit(self: &Arc<Self>, caller: &str) -> Result<Permit, StreamError> {
        if self.stopping.is_cancelled() {
            return Err(StreamError::ShuttingDown);
        }
        let mut open = lock(&self.open);
        if open.total >= self.settings.max_total {
            self.metrics.observe_stream("refused_total");
            return Err(StreamError::Total(open.total));
        }
        let mine = open.per_caller.entry(caller.to_owned()).or_default();
        if *mine >= self.settings.max_per_caller {
            let n = *mine;
            self.metrics.observe_stream("refused_caller");
            return Err(StreamError::PerCaller(n));
        }
        *mine += 1;
        open.total += 1;
        Ok(Permit {
            service: Arc::clone(self),
            caller: caller.to_owned(),
        })
    }

    /// Opens a stream of `request` for `caller` over `cards` (the account's).
    /// The current cards are read first: a single card that cannot be read
    /// is an error, as `GET /v1/cards/{id}` would answer.
    pub async fn open(
        self: &Arc<Self>,
        caller: &str,
        cards: &CardService,
        request: StreamRequest,
    ) -> Result<CardStream, StreamError> {
        let permit = self.permit(caller)?;
        // Listening before the first read: a change during it is not missed.
        let changes = cards.subscribe_changes();
        let last = resume(&request);
        let mut watch = Watch {
            etag: self.etag,
            cards: cards.clone(),
            options: request.options,
            single: request.single,
            last,
            policies: vec![None; request.service_ids.len()],
            service_ids: request.service_ids,
        };
        let first = Box::pin(watch.read_all()).await;
        if watch.single
            && let Some(Err(e)) = first.first().map(|c| c.as_ref())
        {
            return Err(StreamError::Card(e.clone()));
        }
        let (tx, items) = mpsc::channel(self.settings.buffer.max(1));
        let dropped = CancellationToken::new();
        let stream = CardStream {
            items,
            dropped: dropped.clone(),
        };
        self.metrics.observe_stream("opened");
        let metrics = Arc::clone(&self.metrics);
        let stopping = self.stopping.clone();
        self.tasks.spawn(async move {
            let _permit = permit;
            let outcome = watch.run(first, changes, &tx, &stopping).await;
            if outcome == "dropped_slow" {
                dropped.cancel();
            }
            metrics.observe_stream(outcome);
        });
        Ok(stream)
    }

    /// Ends every stream and refuses new ones, at once (when the server
    /// starts to stop: an open stream would otherwise hold its connection
    /// until the shutdown timeout).
    pub fn stop(&self) {
        self.stopping.cancel();
    }

    /// [`StreamService::stop`], then waits (bounded) for the stream tasks.
    /// Idempotent.
    pub async fn shutdown(&self) {
        self.stop();
        self.tasks.close();
        let bound = std::time::Duration::from_secs(5);
        if tokio::time::timeout(bound, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                open = self.open_streams(),
                "card streams still open at shutdown"
            );
        }
    }
}

/// The ETags a reconnecting client has, per service (None: send it).
fn resume(request: &StreamRequest) -> Vec<Option<String>> {
    let n = request.service_ids.len();
    let Some(id) = request.last_event_id.as_deref().map(str::trim) else {
        return vec![None; n];
    };
    if request.single {
        return vec![Some(id.to_owned())];
    }
    let parts: Vec<&str> = id.split(',').collect();
    if parts.len() != n {
        // Another set of services (or garbage): everything is sent.
        return vec![None; n];
    }
    parts
        .into_iter()
        .map(|p| (!p.is_empty()).then(|| format!("W/\"{p}\"")))
        .collect()
}

/// The hash inside a weak ETag (`W/"<hash>"` → `<hash>`).
fn bare(etag: &str) -> &str {
    etag.trim_start_matches("W/").trim_matches('"')
}

/// One stream's state.
struct Watch {
    etag: EtagFn,
    cards: CardService,
    options: CardOptions,
    single: bool,
    service_ids: Vec<cards::ServiceId>,
    /// The ETag last sent (or the client already has), per service.
    last: Vec<Option<String>>,
    /// Each card's escalation policy (on-call changes are keyed by it).
    policies: Vec<Option<String>>,
}

impl Watch {
    async fn read(&self, i: usize) -> Result<ServiceCard, CardError> {
        let card = self
            .cards
            .card(ServiceRef::Id(self.service_ids[i].clone()), &self.options);
        Box::pin(card).await
    }

    async fn read_all(&mut self) -> Vec<Result<ServiceCard, CardError>> {
        let reads = (0..self.service_ids.len()).map(|i| self.read(i));
        futures::future::join_all(reads).await
    }

    /// Is `change` about one of the cards, and which?
    fn affected(&self, change: &cards::SectionChange, dirty: &mut HashSet<usize>) {
        for i in 0..self.service_ids.len() {
            let hit = match change.section {
                Section::Oncall => self.policies[i].as_deref() == Some(change.id.as_str()),
                _ => self.service_ids[i] == change.id.as_str(),
            };
            if hit {
                dirty.insert(i);
            }
        }
    }

    /// The event for card `i`, unless the client has this version; records it.
    fn item(&mut self, i: usize, card: Result<ServiceCard, CardError>) -> Option<StreamItem> {
        let etag = match &card {
            Ok(card) => {
                self.policies[i] = card.escalation_policy.data.as_ref().map(|p| p.id.clone());
                (self.etag)(card)
            }
            // No card: sent once, until there is a card again.
            Err(_) => "W/\"error\"".to_owned(),
        };
        if self.last[i].as_deref() == Some(etag.as_str()) {
            return None;
        }
        self.last[i] = Some(etag.clone());
        let id = if self.single {
            etag
        } else {
            self.last
                .iter()
                .map(|e| e.as_deref().map(bare).unwrap_or_default())
                .collect::<Vec<_>>()
                .join(",")
        };
        Some(StreamItem {
            id,
            service_id: self.service_ids[i].to_string(),
            card,
        })
    }

    /// Sends the changed cards; false when the client is gone or too slow.
    fn send(
        &mut self,
        cards: Vec<(usize, Result<ServiceCard, CardError>)>,
        tx: &mpsc::Sender<StreamItem>,
    ) -> Result<(), &'static str> {
        for (i, card) in cards {
            if let Some(item) = self.item(i, card) {
                match tx.try_send(item) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => return Err("dropped_slow"),
                    Err(mpsc::error::TrySendError::Closed(_)) => return Err("closed"),
                }
            }
        }
        Ok(())
    }

    /// Until the client leaves, is too slow, or the server stops; the
    /// outcome for the metric.
    async fn run(
        &mut self,
        first: Vec<Result<ServiceCard, CardError>>,
        mut changes: broadcast::Receiver<cards::SectionChange>,
        tx: &mpsc::Sender<StreamItem>,
        stopping: &CancellationToken,
    ) -> &'static str {
        if let Err(outcome) = self.send(first.into_iter().enumerate().collect(), tx) {
            return outcome;
        }
        loop {
            let mut dirty = HashSet::new();
            tokio::select! {
                () = stopping.cancelled() => return "closed",
                () = tx.closed() => return "closed",
                change = changes.recv() => match change {
                    Ok(change) => self.affected(&change, &mut dirty),
                    Err(broadcast::error::RecvError::Lagged(_)) => dirty.extend(0..self.service_ids.len()),
                    Err(broadcast::error::RecvError::Closed) => return "closed",
                },
            }
            // What else has arrived: one read covers a burst.
            loop {
                match changes.try_recv() {
                    Ok(change) => self.affected(&change, &mut dirty),
                    Err(broadcast::error::TryRecvError::Lagged(_)) => {
                        dirty.extend(0..self.service_ids.len());
                    }
                    Err(_) => break,
                }
            }
            if dirty.is_empty() {
                continue;
            }
            let mut dirty: Vec<usize> = dirty.into_iter().collect();
            dirty.sort_unstable();
            let reads = dirty.iter().map(|&i| self.read(i));
            let cards = tokio::select! {
                () = stopping.cancelled() => return "closed",
                cards = futures::future::join_all(reads) => cards,
            };
            if let Err(outcome) = self.send(dirty.into_iter().zip(cards).collect(), tx) {
                return outcome;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(ids: &[&str], single: bool, last: Option<&str>) -> StreamRequest {
        StreamRequest {
            service_ids: ids.iter().map(|s| s.parse().unwrap()).collect(),
            single,
            options: CardOptions::default(),
            last_event_id: last.map(str::to_owned),
        }
    }

    fn no_etag(_: &ServiceCard) -> String {
        String::new()
    }

    #[test]
    fn last_event_id_gives_each_card_its_etag() {
        assert_eq!(
            resume(&request(&["A"], true, Some("W/\"00ff\""))),
            [Some("W/\"00ff\"".to_owned())]
        );
        assert_eq!(
            resume(&request(&["A", "B"], false, Some("00ff,"))),
            [Some("W/\"00ff\"".to_owned()), None]
        );
        // Another number of services: start over.
        assert_eq!(
            resume(&request(&["A", "B"], false, Some("00ff"))),
            [None, None]
        );
        assert_eq!(resume(&request(&["A"], false, None)), [None]);
        assert_eq!(bare("W/\"abc\""), "abc");
    }

    #[test]
    fn the_limits_count_per_caller_and_in_total() {
        let settings = StreamSettings {
            max_per_caller: 2,
            max_total: 3,
            ..StreamSettings::default()
        };
        let service = StreamService::new(settings, no_etag, Arc::new(Metrics::new()));
        let a1 = service.permit("a").unwrap();
        let _a2 = service.permit("a").unwrap();
        assert!(matches!(
            service.permit("a"),
            Err(StreamError::PerCaller(2))
        ));
        let _b1 = service.permit("b").unwrap();
        assert!(matches!(service.permit("c"), Err(StreamError::Total(3))));
        drop(a1);
        assert_eq!(service.open_streams(), 2);
        assert!(
            service.permit("a").is_ok(),
            "a permit is given back on drop"
        );
    }
}
