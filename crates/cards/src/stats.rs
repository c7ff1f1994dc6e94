//! Counters per cache, for the server's `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use utoipa::ToSchema;

/// Live counters of one cache (lock-free; cheap to bump on every lookup).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub coalesced: AtomicU64,
    pub batched_calls: AtomicU64,
    pub batched_keys: AtomicU64,
    pub upstream_calls: AtomicU64,
    pub stale_served: AtomicU64,
    pub refreshes: AtomicU64,
    pub errors: AtomicU64,
    pub shared_hits: AtomicU64,
    pub shared_errors: AtomicU64,
    pub shared_batch_handed: AtomicU64,
    pub shared_batch_taken: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> SectionStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SectionStats {
            hits: get(&self.hits),
            misses: get(&self.misses),
            coalesced: get(&self.coalesced),
            batched_calls: get(&self.batched_calls),
            batched_keys: get(&self.batched_keys),
            upstream_calls: get(&self.upstream_calls),
            stale_served: get(&self.stale_served),
            refreshes: get(&self.refreshes),
            errors: get(&self.errors),
            shared_hits: get(&self.shared_hits),
            shared_errors: get(&self.shared_errors),
            shared_batch_handed: get(&self.shared_batch_handed),
            shared_batch_taken: get(&self.shared_batch_taken),
        }
    }
}

/// A snapshot of one cache's counters (monotonic since start).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct SectionStats {
    /// Lookups answered from a fresh cached value.
    pub hits: u64,
    /// Lookups that found nothing usable and ran the upstream load themselves.
    pub misses: u64,
    /// Lookups that found a load for the same key in flight and waited for it.
    pub coalesced: u64,
    /// Batch loads run (each merges the keys that met in one batch window).
    pub batched_calls: u64,
    /// Keys served by batch loads (`batched_keys / batched_calls` = mean batch size).
    pub batched_keys: u64,
    /// HTTP requests to PagerDuty made for this cache (one per page; client retries not counted).
    pub upstream_calls: u64,
    /// Lookups answered with an expired value (stale-while-revalidate or stale-if-error).
    pub stale_served: u64,
    /// Background refreshes started.
    pub refreshes: u64,
    /// Loads that failed.
    pub errors: u64,
    /// Loads answered by another replica's value from the shared cache
    /// (no upstream call).
    pub shared_hits: u64,
    /// Shared-cache calls that failed or timed out (the load read
    /// PagerDuty instead).
    pub shared_errors: u64,
    /// Entries this replica leased and handed to another replica's batch
    /// load, and got back from it (no upstream call here).
    pub shared_batch_handed: u64,
    /// Entries of other replicas this replica's batch loads took in and
    /// stored for them.
    pub shared_batch_taken: u64,
}

/// Counters of every cache of a [`CardService`](crate::CardService).
///
/// The escalation policy section is derived from the cached service object,
/// so it has no counters of its own: see `service`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct CardStats {
    /// Service objects (service and escalation policy sections, routing keys).
    pub service: SectionStats,
    /// On-calls per escalation policy.
    pub oncall: SectionStats,
    /// Open incidents per service.
    pub incidents: SectionStats,
    /// Change events (account-wide list and the per-service fallback).
    pub change_events: SectionStats,
    /// Standards scores per service.
    pub standards: SectionStats,
    /// 30-day incident metrics per service.
    pub metrics: SectionStats,
    /// Integration key → service mappings.
    pub integration_keys: SectionStats,
    /// The account-wide lists of the Backstage routes (escalation
    /// policies, teams, services, filtered services pages).
    pub lists: SectionStats,
}

impl CardStats {
    /// Upstream calls summed over every cache.
    pub fn upstream_calls(&self) -> u64 {
        [
            self.service,
            self.oncall,
            self.incidents,
            self.change_events,
            self.standards,
            self.metrics,
            self.integration_keys,
            self.lists,
        ]
        .iter()
        .map(|s| s.upstream_calls)
        .sum()
    }
}
