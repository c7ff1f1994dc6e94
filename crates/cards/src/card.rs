//! Card assembly: one service's sections, fetched in parallel, each wait
//! bounded by the card's deadline.

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;

use futures::future::Either;

use pagerduty::{Oncall, Service};

use crate::cache::Lookup;
use crate::clock::{deadline, until};
use crate::error::{CardError, SectionError};
use crate::model::{CardOptions, ServiceCard, ServiceId, ServiceRef};
use crate::parts::CardParts;
use crate::service::CardService;

impl CardService {
    /// Builds the card of one service.
    ///
    /// Sections are fetched in parallel; only the service section can fail
    /// the whole card (not found, or no data and no stale copy). The on-call
    /// section needs the escalation policy id from the service, so a cold
    /// card costs the service read plus the on-call read on that path. For a
    /// lone cold card the other sections start once the service is read (a
    /// cold card whose service fails makes no other call); when a copy of
    /// the service is cached, and in a batch, they run alongside it.
    pub async fn card(
        &self,
        service: ServiceRef,
        options: &CardOptions,
    ) -> Result<ServiceCard, CardError> {
        Ok(self.card_parts(service, options).await?.build())
    }

    /// What [`CardService::card`] reads, without building the card: the
    /// cached sections with their versions ([`CardParts::versions`]), so a
    /// caller that keeps what it rendered from a card can tell whether it
    /// is still the answer. Same lookups, counters, refreshes and errors
    /// as [`CardService::card`]; [`CardParts::build`] makes the card.
    pub async fn card_parts(
        &self,
        service: ServiceRef,
        options: &CardOptions,
    ) -> Result<CardParts, CardError> {
        let id = match service {
            ServiceRef::Id(id) => id,
            ServiceRef::IntegrationKey(key) => {
                let service_id = self.resolve_integration_key(key.expose()).await?.service_id;
                // PagerDuty's own answer; a malformed id would be a 404 anyway.
                ServiceId::new(&service_id)
                    .map_err(|_| CardError::not_found(format!("service {service_id}")))?
            }
        };
        if let Some(parts) = self.warm_parts(id.as_str(), options) {
            return Ok(parts);
        }
        // Boxed: a card's sections make a large future (kept off the caller's stack).
        Box::pin(self.parts_by_id(&id, options, false)).await
    }

    /// Builds many cards at once (same order as `service_ids`); their misses share batches.
    pub async fn cards(
        &self,
        service_ids: &[ServiceId],
        options: &CardOptions,
    ) -> Vec<Result<ServiceCard, CardError>> {
        self.cards_parts(service_ids, options)
            .await
            .into_iter()
            .map(|parts| parts.map(|p| p.build()))
            .collect()
    }

    /// [`CardService::cards`] without building the cards (see
    /// [`CardService::card_parts`]).
    pub async fn cards_parts(
        &self,
        service_ids: &[ServiceId],
        options: &CardOptions,
    ) -> Vec<Result<CardParts, CardError>> {
        // Warm cards are read at once, without a future each: joining
        // twenty futures whose output is a whole `CardParts` moved every
        // one of them several times (3 % of a warm batch's CPU in memmove,
        // BENCHMARKS.md, issue 18). Only the cold ones build (and box) the
        // section reads, joined as before; answers keep the request order.
        let mut answers: Vec<Option<Result<CardParts, CardError>>> = service_ids
            .iter()
            .map(|id| self.warm_parts(id.as_str(), options).map(Ok))
            .collect();
        if answers.iter().any(Option::is_none) {
            let cold = service_ids
                .iter()
                .zip(&answers)
                .filter(|(_, answer)| answer.is_none())
                .map(|(id, _)| Box::pin(self.parts_by_id(id, options, true)));
            let cold = futures::future::join_all(cold).await;
            // One cold answer per empty slot, in the same order.
            let empty = answers.iter_mut().filter(|answer| answer.is_none());
            for (slot, answer) in empty.zip(cold) {
                *slot = Some(answer);
            }
        }
        answers.into_iter().flatten().collect()
    }

    /// `bound_service`: whether the service section's wait also ends at
    /// `section_timeout` (failing the card with [`CardError::Timeout`]). A
    /// lone card leaves that to its caller: without the service there is
    /// nothing to answer anyway.
    pub(crate) async fn parts_by_id(
        &self,
        id: &ServiceId,
        options: &CardOptions,
        bound_service: bool,
    ) -> Result<CardParts, CardError> {
        let id = id.as_str();
        let i = &self.inner;
        // Before the check: a 404 remembered from now on moves it.
        let missing = i.missing_services.writes.mark(id);
        let key = self.known_service_id(id).await?;
        // Every section wait ends at the card's deadline; a section still
        // loading then reports a timeout (its load goes on and fills the cache).
        // (No deadline if the setting is too large for the clock.)
        let deadline = deadline(i.config.section_timeout);
        // One service lookup per card, shared with the on-call path (which
        // needs the escalation policy id), so counters see one lookup.
        let mut service_lookup = Box::pin(within(
            deadline.filter(|_| bound_service),
            "service",
            self.service_lookup(&key),
        ));
        // A lone cold card (no copy of its service, fresh or stale) first
        // learns whether the service can be read at all: when it cannot
        // (404, refused, PagerDuty down) there is no card, and the other
        // sections' calls would spend the account's budget for nothing (an
        // entity page of a deleted service would pay five calls per view).
        // It costs no latency: the on-call read waits for the service anyway.
        // A batch does not wait: its cards share their section calls (one
        // incidents call for all), so a failing card adds little, while the
        // wait would add a round trip to every card whose sections page.
        // The service lookup is polled once first (as the join below would
        // poll it first): a cached service answers at once, and then
        // neither the presence check nor a shared future for the on-call
        // path is needed (a warm card's common case, 20 times in a batch).
        let first = futures::poll!(service_lookup.as_mut());
        let (service_fut, for_oncall) = match first {
            Poll::Ready(result) => {
                drop(service_lookup);
                if !bound_service
                    && let Err(e) = &result
                    && i.services.peek(&key).await.is_none()
                {
                    return Err(CardError::from_section(e, format!("service {id}")));
                }
                let for_oncall = result.clone();
                (
                    Either::Left(std::future::ready(result)),
                    Either::Left(std::future::ready(for_oncall)),
                )
            }
            Poll::Pending => {
                let shared = futures::FutureExt::shared(service_lookup);
                if !bound_service
                    && i.services.peek(&key).await.is_none()
                    && let Err(e) = shared.clone().await
                {
                    return Err(CardError::from_section(&e, format!("service {id}")));
                }
                (Either::Right(shared.clone()), Either::Right(shared))
            }
        };
        let oncall_fut = self.oncall_lookup(for_oncall, deadline);
        let incidents_fut = within(deadline, "incidents", i.incidents.get(&key));
        let changes_fut = within(deadline, "change events", i.change_events.shared(&key));
        let standards_fut = async {
            if options.include_standards {
                Some(within(deadline, "standards", i.standards.get(&key)).await)
            } else {
                None
            }
        };
        let metrics_fut = async {
            if options.include_metrics {
                Some(within(deadline, "metrics", i.metrics.get(&key)).await)
            } else {
                None
            }
        };
        let (service, oncall, incidents, change_events, standards, metrics) = tokio::join!(
            service_fut,
            oncall_fut,
            incidents_fut,
            changes_fut,
            standards_fut,
            metrics_fut
        );
        let service = service.map_err(|e| CardError::from_section(&e, format!("service {id}")))?;
        let parts = CardParts {
            service_id: key,
            options: options.clone(),
            service,
            oncall,
            incidents,
            change_events,
            standards,
            metrics,
            missing,
            memo: Default::default(),
        };
        self.keep_warm(&parts);
        Ok(parts)
    }

    async fn oncall_lookup(
        &self,
        service: impl Future<Output = Result<Lookup<Arc<Service>>, SectionError>>,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Lookup<Arc<Vec<Oncall>>>, SectionError> {
        let service = service.await?;
        let Some(policy) = service.value.escalation_policy.as_ref() else {
            return Err(no_policy());
        };
        within(deadline, "on-call", self.inner.oncalls.get(&policy.id)).await
    }
}

/// Waits for a section until `deadline`; past it the section is a `timeout` error.
async fn within<V>(
    deadline: Option<tokio::time::Instant>,
    what: &str,
    lookup: impl Future<Output = Result<Lookup<V>, SectionError>>,
) -> Result<Lookup<V>, SectionError> {
    // A cached section answers on its first poll, as tokio's `Timeout`
    // would poll it first: no timer is set up for it (a runtime handle and
    // a timer entry, per section of every warm card).
    let mut lookup = std::pin::pin!(lookup);
    if let Poll::Ready(result) = futures::poll!(lookup.as_mut()) {
        return result;
    }
    until(deadline, lookup).await.unwrap_or_else(|()| {
        Err(SectionError::timeout(format!(
            "the {what} section did not load in time; it is still loading and will be served from the cache"
        )))
    })
}

pub(crate) fn no_policy() -> SectionError {
    SectionError::not_found("the service has no escalation policy")
}
