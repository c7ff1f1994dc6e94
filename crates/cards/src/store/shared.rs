//! The shared (L2) half of the section caches: what several replicas of a
//! server that read one PagerDuty account share, behind the in-process moka
//! L1 of each.
//!
//! [`SharedCache`] is the trait; [`InProcess`] (nothing shared: every section
//! lives in this process only) is the default, and
//! [`RedisSharedCache`](super::redis::RedisSharedCache) (cargo feature
//! `redis`) the shared one. A shared cache holds, per section entry:
//!
//! * the **value**, serialized with its `fetched_at` (so a replica that reads
//!   it knows how old it is: freshness follows the first fetch, not the
//!   copy), with a TTL equal to the section's hard limit;
//! * a **lease** (`SET NX PX`): the one replica allowed to load the entry
//!   from PagerDuty now, renewed while its load runs; the others wait for
//!   its value (bounded), and load themselves when the lease disappears
//!   without a value (the holder died or failed) or the wait runs out;
//! * values **offered** by a listing (many entries read at once, no lease),
//!   stored where no value is, unless an invalidation of the section came
//!   after the listing started (a per-section **epoch**);
//! * a **generation**, bumped by every invalidation: a load that started
//!   before an invalidation never stores its (older) answer after it;
//!
//! and, per batched section, a **collection**: the replica whose batch
//! load is about to run holds it open for a short while, and the other
//! replicas hand it the entries they leased for their own batch loads
//! ([`SharedCache::collect_or_join`]), so the entries that went stale on
//! three replicas cost one batched call, not three.
//!
//! Invalidations are also **published** to every replica
//! ([`SharedCache::publish`], [`SharedCache::subscribe`]), so each drops its
//! L1 copy and tells its live streams (see [`crate::changes`]).
//!
//! A shared cache that fails (down, slow) says so through
//! [`SharedCache::mode`]; the section caches then read PagerDuty directly
//! and keep their values in L1 only, until it answers again. An error of a
//! shared cache never fails a card.

use std::fmt;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

use crate::model::Section;

/// Whether a [`SharedCache`] shares now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SharedMode {
    /// Nothing is shared (the in-process default).
    Off,
    /// Sections are shared with the other replicas.
    Shared,
    /// The shared store failed or is slow: sections are read from
    /// PagerDuty and kept in this process until it answers again.
    Degraded,
}

impl SharedMode {
    /// `off`, `shared` or `degraded-local` (readiness and metrics).
    pub fn as_str(self) -> &'static str {
        match self {
            SharedMode::Off => "off",
            SharedMode::Shared => "shared",
            SharedMode::Degraded => "degraded-local",
        }
    }
}

/// One section entry in a shared cache: the account, the section and the
/// entry's id (a service id; an escalation policy id for on-call; `all` for
/// the account-wide change events).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntryKey {
    /// The account name every replica agrees on (the server's account id).
    pub account: String,
    /// The section's name (`service`, `oncall`, `incidents`, ...).
    pub section: &'static str,
    /// The entry's id within the section.
    pub id: String,
}

/// What [`SharedCache::fetch_or_lease`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// A value fetched at or after the asked-for instant: `(fetched_at in
    /// Unix milliseconds, serialized value)`.
    Value(i64, Vec<u8>),
    /// No usable value, and this caller holds the lease now: load, then
    /// [`SharedCache::put`] with this generation and token.
    Leased {
        /// The entry's generation when the lease was taken.
        generation: String,
        /// This lease's token (releases only this lease).
        token: String,
    },
    /// Another replica holds the lease: wait (and ask again).
    Busy,
}

/// One entry of a [`SharedCache::offer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offered {
    /// The entry's id within the section.
    pub id: String,
    /// When the value was fetched (Unix milliseconds).
    pub fetched_at: i64,
    /// The serialized value.
    pub value: Vec<u8>,
    /// How long it is kept (the section's hard limit for it).
    pub ttl: Duration,
}

/// A lease-held entry a replica hands to another replica's batch load
/// ([`SharedCache::collect_or_join`]): the collector stores its value with
/// this generation and token, as the holder would have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// The entry's id within the section.
    pub id: String,
    /// The entry's generation when its holder took the lease.
    pub generation: String,
    /// The holder's lease token.
    pub token: String,
}

/// What [`SharedCache::collect_or_join`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Collect {
    /// No replica collects the section's batch now: this one does, under
    /// this token, until it takes the wanted entries
    /// ([`SharedCache::take_wanted`]).
    Collecting(String),
    /// The entries were handed to the collecting replica's batch: wait for
    /// their values ([`SharedCache::joined`]).
    Joined,
    /// Another replica collects, but its batch has no room for them: load
    /// them here.
    Alone,
}

/// Where a handed entry ([`Collect::Joined`]) stands, as
/// [`SharedCache::joined`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinState {
    /// Still leased by its holder: the collector has not stored it yet.
    Waiting,
    /// Stored (the lease is gone and a value fetched at or after the
    /// asked-for instant is there): `(fetched_at ms, serialized value)`.
    Value(i64, Vec<u8>),
    /// The lease is gone without a usable value (the collector's load
    /// failed, or the entry was invalidated meanwhile): load it here.
    Gone,
}

/// An error of the shared store (down, slow, refused). Never carries a URL
/// or a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("shared cache: {0}")]
pub struct SharedError(pub String);

/// A dropped section entry, as published to the other replicas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invalidation {
    /// The replica that dropped it (it does not apply its own message).
    pub origin: String,
    /// The account.
    pub account: String,
    /// What was dropped.
    pub what: Dropped,
}

/// What an [`Invalidation`] dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Dropped {
    /// Sections of one service ([`crate::CardService::invalidate`]); an
    /// on-call section names its escalation policy as the origin knew it.
    Sections {
        /// The service.
        service: String,
        /// Its sections.
        sections: Vec<Section>,
        /// The escalation policy whose on-call was dropped, if known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        escalation_policy: Option<String>,
    },
    /// The services lists and integration keys
    /// ([`crate::CardService::invalidate_service_lists`]).
    ServiceLists,
}

/// How long loads wait on each other across replicas, and how long an L1
/// copy of a shared section is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedTiming {
    /// Longest life of an L1 copy of a shared section (it is read again
    /// from the shared cache after that, and an invalidation whose message
    /// was lost is seen by then).
    pub l1_ttl: Duration,
    /// How long a lease lasts unless renewed: its holder renews it every
    /// third of this while its load runs, so a holder that died holds off
    /// the other replicas' loads of the entry at most this long.
    pub lease: Duration,
    /// How long a replica waits for another's load before loading itself.
    pub wait: Duration,
    /// How soon a waiting replica first asks again (then less often, up to
    /// every 100 ms).
    pub poll: Duration,
}

impl Default for SharedTiming {
    fn default() -> Self {
        SharedTiming {
            l1_ttl: Duration::from_secs(2),
            lease: Duration::from_secs(5),
            wait: Duration::from_secs(6),
            poll: Duration::from_millis(20),
        }
    }
}

/// A store of section entries shared by the replicas; see the
/// [module docs](self). Every call is bounded by the implementation's own
/// timeout; an error means "read PagerDuty instead", never a failed card.
pub trait SharedCache: Send + Sync + fmt::Debug + 'static {
    /// Whether this cache shares now ([`SharedMode::Off`]: never).
    fn mode(&self) -> SharedMode;

    /// Follows [`SharedCache::mode`] as it changes.
    fn watch_mode(&self) -> watch::Receiver<SharedMode>;

    /// The waits and lifetimes the section caches use with it.
    fn timing(&self) -> SharedTiming;

    /// The value of `key` when it was fetched at or after `fresh_since`
    /// (Unix milliseconds; 0 takes any), else the lease when it is free
    /// (held for `lease`), else [`Fetched::Busy`]. One atomic step.
    fn fetch_or_lease<'a>(
        &'a self,
        key: &'a EntryKey,
        fresh_since: i64,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Fetched, SharedError>>;

    /// Stores a loaded value (fetched at `fetched_at`, Unix ms) for `ttl`
    /// unless `key` was invalidated since `generation`, and releases the
    /// lease `token`.
    fn put<'a>(
        &'a self,
        key: &'a EntryKey,
        fetched_at: i64,
        value: Vec<u8>,
        ttl: Duration,
        generation: &'a str,
        token: &'a str,
    ) -> BoxFuture<'a, Result<(), SharedError>>;

    /// Releases the lease `token` without a value (the load failed).
    fn release<'a>(
        &'a self,
        key: &'a EntryKey,
        token: &'a str,
    ) -> BoxFuture<'a, Result<(), SharedError>>;

    /// Extends the lease `token` of `key` to `lease` from now, while its
    /// load runs (a load queued in the shared budget may outlast one
    /// lease). `Ok(false)`: the lease is no longer this token's.
    fn renew<'a>(
        &'a self,
        key: &'a EntryKey,
        token: &'a str,
        lease: Duration,
    ) -> BoxFuture<'a, Result<bool, SharedError>>;

    /// The invalidation epoch of `section` of `account`: changed by every
    /// [`SharedCache::invalidate`] of any of its entries. A listing reads
    /// it before its first page and [`SharedCache::offer`]s its pages with
    /// it, so nothing listed before an invalidation is shared after it.
    fn epoch<'a>(
        &'a self,
        account: &'a str,
        section: &'static str,
    ) -> BoxFuture<'a, Result<String, SharedError>>;

    /// Stores values read by a listing (not under a lease) for the entries
    /// that have none, unless the section's epoch moved past `epoch`. A
    /// value a lease holder stores later replaces an offered one.
    fn offer<'a>(
        &'a self,
        account: &'a str,
        section: &'static str,
        epoch: &'a str,
        entries: Vec<Offered>,
    ) -> BoxFuture<'a, Result<(), SharedError>>;

    /// Collects or joins a batch load of `section`: when another replica
    /// collects one with room for `wanted` (their holders' leases, all of
    /// `section`), hands them to it ([`Collect::Joined`]); when nobody
    /// does, makes this caller the collector for `hold`, with room for
    /// `room` more entries ([`Collect::Collecting`]). One atomic step. The
    /// default shares nothing: [`Collect::Alone`].
    fn collect_or_join<'a>(
        &'a self,
        account: &'a str,
        section: &'static str,
        wanted: Vec<Wanted>,
        hold: Duration,
        room: usize,
    ) -> BoxFuture<'a, Result<Collect, SharedError>> {
        let _ = (account, section, wanted, hold, room);
        Box::pin(async { Ok(Collect::Alone) })
    }

    /// Ends the collection `collector` of `section` and takes the entries
    /// the other replicas handed to it: the caller loads them with its own
    /// keys and [`SharedCache::put`]s each with its [`Wanted`] generation
    /// and token (or releases the lease when its load failed).
    fn take_wanted<'a>(
        &'a self,
        account: &'a str,
        section: &'static str,
        collector: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Wanted>, SharedError>> {
        let _ = (account, section, collector);
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Where each handed entry `(key, lease token, fresh_since ms)` stands
    /// (one state per entry, in order). One round trip.
    fn joined<'a>(
        &'a self,
        entries: &'a [(EntryKey, String, i64)],
    ) -> BoxFuture<'a, Result<Vec<JoinState>, SharedError>> {
        Box::pin(async { Ok(vec![JoinState::Gone; entries.len()]) })
    }

    /// Drops the value of `key` and bumps its generation (kept `ttl`).
    fn invalidate<'a>(
        &'a self,
        key: &'a EntryKey,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), SharedError>>;

    /// Tells every other replica (see [`SharedCache::subscribe`]).
    fn publish(&self, account: &str, what: Dropped) -> BoxFuture<'_, Result<(), SharedError>>;

    /// The invalidations published by the other replicas (never this
    /// replica's own), from now on.
    fn subscribe(&self) -> broadcast::Receiver<Invalidation>;
}

/// The default [`SharedCache`]: nothing is shared, every section lives in
/// this process only (one replica needs nothing more).
#[derive(Debug)]
pub struct InProcess {
    mode: watch::Sender<SharedMode>,
    invalidations: broadcast::Sender<Invalidation>,
}

impl Default for InProcess {
    fn default() -> Self {
        InProcess {
            mode: watch::Sender::new(SharedMode::Off),
            invalidations: broadcast::Sender::new(1),
        }
    }
}

impl SharedCache for InProcess {
    fn mode(&self) -> SharedMode {
        SharedMode::Off
    }

    fn watch_mode(&self) -> watch::Receiver<SharedMode> {
        self.mode.subscribe()
    }

    fn timing(&self) -> SharedTiming {
        SharedTiming::default()
    }

    fn fetch_or_lease<'a>(
        &'a self,
        _key: &'a EntryKey,
        _fresh_since: i64,
        _lease: Duration,
    ) -> BoxFuture<'a, Result<Fetched, SharedError>> {
        // Nobody else loads: this process always holds the lease.
        Box::pin(async {
            Ok(Fetched::Leased {
                generation: String::new(),
                token: String::new(),
            })
        })
    }

    fn put<'a>(
        &'a self,
        _key: &'a EntryKey,
        _fetched_at: i64,
        _value: Vec<u8>,
        _ttl: Duration,
        _generation: &'a str,
        _token: &'a str,
    ) -> BoxFuture<'a, Result<(), SharedError>> {
        Box::pin(async { Ok(()) })
    }

    fn release<'a>(
        &'a self,
        _key: &'a EntryKey,
        _token: &'a str,
    ) -> BoxFuture<'a, Result<(), SharedError>> {
        Box::pin(async { Ok(()) })
    }

    fn renew<'a>(
        &'a self,
        _key: &'a EntryKey,
        _token: &'a str,
        _lease: Duration,
    ) -> BoxFuture<'a, Result<bool, SharedError>> {
        Box::pin(async { Ok(true) })
    }

    fn epoch<'a>(
        &'a self,
        _account: &'a str,
        _section: &'static str,
    ) -> BoxFuture<'a, Result<String, SharedError>> {
        Box::pin(async { Ok(String::new()) })
    }

    fn offer<'a>(
        &'a self,
        _account: &'a str,
        _section: &'static str,
        _epoch: &'a str,
        _entries: Vec<Offered>,
    ) -> BoxFuture<'a, Result<(), SharedError>> {
        Box::pin(async { Ok(()) })
    }

    fn invalidate<'a>(
        &'a self,
        _key: &'a EntryKey,
        _ttl: Duration,
    ) -> BoxFuture<'a, Result<(), SharedError>> {
        Box::pin(async { Ok(()) })
    }

    fn publish(&self, _account: &str, _what: Dropped) -> BoxFuture<'_, Result<(), SharedError>> {
        Box::pin(async { Ok(()) })
    }

    fn subscribe(&self) -> broadcast::Receiver<Invalidation> {
        self.invalidations.subscribe()
    }
}
