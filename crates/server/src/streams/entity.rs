//! Entity streams: the card of a catalog entity ([`crate::entities`]) on
//! connect, and again whenever it changed.
//!
//! An entity's services may live in several accounts, so the stream listens
//! to every account's [`cards::CardService::subscribe_changes`] and to the
//! mapping writes ([`MappingService::subscribe`]: a service mapped to or
//! unmapped from the entity changes which cards it has). A change that
//! names one of its services (or, for on-call, one of their escalation
//! policies) reads the entity again: the store's mappings (cheap, local)
//! and the services' cards through the same caches as every other reader,
//! so after a webhook's invalidation that read is the one coalesced refetch.
//!
//! The HTTP layer renders each read (`render`: the answer's ETag and its
//! payload), so this module stays free of HTTP types while the stream still
//! sends only what changed (by ETag) and its event ids are the ETags
//! `GET /v1/entities/{kind}/{namespace}/{name}/card` answers: a client can
//! resume with the ETag of a plain read. Same limits and buffer rules as
//! the card streams.

use std::collections::HashSet;
use std::sync::Arc;

use cards::{CardOptions, SectionChange};
use futures::future::{BoxFuture, FutureExt};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::{StreamError, StreamService};
use crate::accounts::Accounts;
use crate::entities::{EntityServices, entity_services};
use crate::mappings::{MappingError, MappingService};

/// One read of the entity, as the caller renders it: its ETag and payload.
pub type EntityRender<T> = fn(Result<EntityServices, MappingError>) -> (String, T);

/// What entity to stream.
#[derive(Debug, Clone)]
pub struct EntityStreamRequest {
    /// `kind`, `namespace`, `name` of the catalog entity.
    pub entity: (String, String, String),
    /// Only the services of this account (`?account=`), when set.
    pub account: Option<String>,
    /// The card options of every service's card.
    pub options: CardOptions,
    /// `Last-Event-ID` of a reconnect.
    pub last_event_id: Option<String>,
}

/// One event of an entity stream.
#[derive(Debug)]
pub struct EntityItem<T> {
    /// The SSE event id: the entity card's ETag.
    pub id: String,
    /// What `render` made of the read.
    pub payload: T,
}

/// An open entity stream (see [`super::CardStream`] for `dropped`).
#[derive(Debug)]
pub struct EntityStream<T> {
    pub items: mpsc::Receiver<EntityItem<T>>,
    pub dropped: CancellationToken,
}

/// Why no entity stream was opened.
#[derive(Debug, thiserror::Error)]
pub enum EntityStreamError {
    /// The stream limits, or shutdown.
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// The entity could not be read at all (as its card route would fail:
    /// nothing mapped, a bad reference, the store down).
    #[error(transparent)]
    Entity(#[from] MappingError),
}

impl StreamService {
    /// Opens a stream of the entity in `request` for `caller`. The entity
    /// is read first: an entity that cannot be read is an error, as its
    /// card route would answer; later failures are events.
    pub async fn open_entity<T: Send + 'static>(
        self: &Arc<Self>,
        caller: &str,
        accounts: Arc<Accounts>,
        mappings: Arc<MappingService>,
        request: EntityStreamRequest,
        render: EntityRender<T>,
    ) -> Result<EntityStream<T>, EntityStreamError> {
        let permit = self.permit(caller)?;
        // Listening before the first read: a change during it is not missed.
        let changes: Vec<_> = accounts
            .iter()
            .map(|a| a.cards.subscribe_changes())
            .collect();
        let mut mapping_writes = mappings.subscribe();
        mapping_writes.mark_unchanged();
        let mut watch = EntityWatch {
            accounts,
            mappings,
            request,
            render,
            ids: HashSet::new(),
        };
        let first = watch.read().await?;
        let (tx, items) = mpsc::channel(self.settings.buffer.max(1));
        let dropped = CancellationToken::new();
        self.metrics.observe_stream("opened");
        let metrics = Arc::clone(&self.metrics);
        let stopping = self.stopping.clone();
        let stream = EntityStream {
            items,
            dropped: dropped.clone(),
        };
        self.tasks.spawn(async move {
            let _permit = permit;
            let outcome = watch
                .run(first, changes, mapping_writes, &tx, &stopping)
                .await;
            if outcome == "dropped_slow" {
                dropped.cancel();
            }
            metrics.observe_stream(outcome);
        });
        Ok(stream)
    }
}

/// One entity stream's state.
struct EntityWatch<T> {
    accounts: Arc<Accounts>,
    mappings: Arc<MappingService>,
    request: EntityStreamRequest,
    render: EntityRender<T>,
    /// The ids whose changes concern the entity: its services and their
    /// escalation policies, as of the last read.
    ids: HashSet<String>,
}

/// A rendered read of the entity: its ETag and payload.
type Read<T> = (String, T);

impl<T: Send + 'static> EntityWatch<T> {
    /// A read; its failure is returned (the first read's is the request's).
    async fn read(&mut self) -> Result<Read<T>, MappingError> {
        let (kind, namespace, name) = &self.request.entity;
        let found = Box::pin(entity_services(
            &self.accounts,
            &self.mappings,
            (kind, namespace, name),
            self.request.account.as_deref(),
            &self.request.options,
        ))
        .await?;
        self.ids = concerned_ids(&found);
        Ok((self.render)(Ok(found)))
    }

    /// A later read: its failure is an event (rendered too).
    async fn reread(&mut self) -> Read<T> {
        match self.read().await {
            Ok(read) => read,
            Err(e) => (self.render)(Err(e)),
        }
    }

    /// On-call changes are keyed by escalation policy, the others by
    /// service; both kinds of id are in `ids`.
    fn concerns(&self, change: &SectionChange) -> bool {
        self.ids.contains(change.id.as_str())
    }

    /// Until the client leaves, is too slow, or the server stops.
    async fn run(
        &mut self,
        first: Read<T>,
        mut changes: Vec<broadcast::Receiver<SectionChange>>,
        mut mapping_writes: watch::Receiver<u64>,
        tx: &mpsc::Sender<EntityItem<T>>,
        stopping: &CancellationToken,
    ) -> &'static str {
        let mut last = self.request.last_event_id.clone();
        if let Err(outcome) = send(first, &mut last, tx) {
            return outcome;
        }
        loop {
            let dirty = tokio::select! {
                () = stopping.cancelled() => return "closed",
                () = tx.closed() => return "closed",
                changed = mapping_writes.changed() => match changed {
                    Ok(()) => true,
                    Err(_) => return "closed",
                },
                heard = next_change(&mut changes) => match heard {
                    Heard::Change(change) => self.concerns(&change),
                    Heard::Lagged => true,
                    Heard::Closed => return "closed",
                },
            };
            // What else has arrived: one read covers a burst.
            let mut dirty = dirty || mapping_writes.has_changed().unwrap_or(false);
            mapping_writes.mark_unchanged();
            for rx in &mut changes {
                loop {
                    match rx.try_recv() {
                        Ok(change) => dirty |= self.concerns(&change),
                        Err(broadcast::error::TryRecvError::Lagged(_)) => dirty = true,
                        Err(_) => break,
                    }
                }
            }
            if !dirty {
                continue;
            }
            let read = tokio::select! {
                () = stopping.cancelled() => return "closed",
                read = self.reread() => read,
            };
            if let Err(outcome) = send(read, &mut last, tx) {
                return outcome;
            }
        }
    }
}

/// Sends a read unless the client has it (same ETag); records what it has.
fn send<T>(
    (etag, payload): Read<T>,
    last: &mut Option<String>,
    tx: &mpsc::Sender<EntityItem<T>>,
) -> Result<(), &'static str> {
    if last.as_deref() == Some(etag.as_str()) {
        return Ok(());
    }
    *last = Some(etag.clone());
    match tx.try_send(EntityItem { id: etag, payload }) {
        Ok(()) => Ok(()),
        Err(mpsc::error::TrySendError::Full(_)) => Err("dropped_slow"),
        Err(mpsc::error::TrySendError::Closed(_)) => Err("closed"),
    }
}

/// The services and escalation policies whose changes concern the entity.
fn concerned_ids(found: &EntityServices) -> HashSet<String> {
    let mut ids = HashSet::new();
    for service in &found.services {
        ids.insert(service.service_id.clone());
        if let Ok(card) = &service.card
            && let Some(policy) = &card.escalation_policy.data
        {
            ids.insert(policy.id.clone());
        }
    }
    ids
}

enum Heard {
    Change(SectionChange),
    Lagged,
    Closed,
}

/// The next change of any account (never resolves without accounts).
fn next_change(changes: &mut [broadcast::Receiver<SectionChange>]) -> BoxFuture<'_, Heard> {
    if changes.is_empty() {
        return futures::future::pending().boxed();
    }
    let receives = changes.iter_mut().map(|rx| Box::pin(rx.recv()));
    futures::future::select_all(receives)
        .map(|(heard, _, _)| match heard {
            Ok(change) => Heard::Change(change),
            Err(broadcast::error::RecvError::Lagged(_)) => Heard::Lagged,
            Err(broadcast::error::RecvError::Closed) => Heard::Closed,
        })
        .boxed()
}
