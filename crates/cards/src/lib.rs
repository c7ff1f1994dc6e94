//! Service cards built from PagerDuty data: one card per service, assembled
//! from parallel, cached, coalesced and batched PagerDuty calls.
//!
//! [`CardService`] owns what a card is ([`ServiceCard`]) and how fresh each
//! part of it is. It knows nothing of HTTP serving; the server crate calls
//! [`CardService::card`] and friends and maps [`CardError`] to statuses.
//!
//! # Layout
//!
//! * [`clock`]: the clock that decides freshness (system, or manual for tests);
//! * [`config`]: [`CardsConfig`], the TTLs and batching settings (defaults and
//!   their reasons are documented there);
//! * [`model`]: the card and its sections (serde + `utoipa::ToSchema`);
//! * [`error`]: [`SectionError`] (inside a card) and [`CardError`] (no card);
//! * [`stats`]: counters per cache for `/metrics`;
//! * `service`: [`CardService`], the facade: construction, counters,
//!   invalidation, raw objects, the Backstage lists, shutdown;
//! * `card`: card assembly (parallel sections under one deadline);
//! * `parts`: [`CardParts`], a card's cached sections with their versions
//!   ([`CardVersions`]) before it is built, so the server can reuse what it
//!   rendered while the versions hold; `version`: the process-wide counter
//!   every stored section value takes its version from;
//! * `loaders`: one module per section with its upstream loader, unit-tested
//!   against the simulator: `service` (single reads and the services-listing
//!   rule), `oncall`, `incidents`, `change_events` (with the per-service
//!   fallback), `standards`, `metrics`, `keys` (integration keys and routing
//!   keys), `lists` (escalation policies, teams, services for Backstage);
//! * `build`: the one way a loader becomes a section cache (its store, and
//!   for batched sections the miss and refresh batchers);
//! * `cache`: one section cache (TTL, stale-while-revalidate, stale-if-error,
//!   coalescing, hard age limit);
//! * `store`: its storage (values with their fetch instant, moka's expiry
//!   as the hard limit);
//! * `batcher`: merges concurrent single-key loads into list calls;
//! * `paging`: PagerDuty's offset paging, counted (one page after another,
//!   or the first page's `total` then the rest at once);
//! * `tasks`: the owner of every spawned task ([`CardService::shutdown`]);
//! * `sections`: pure functions from PagerDuty objects to sections.
//!
//! **Where the next pieces go.** A shared L2 section cache (Redis) behind
//! the in-process moka L1 belongs in `store`: `Store` is the one type every
//! section reads and writes through (`peek_fresh`, `insert_fresh`,
//! `invalidate`), so an L2 trait with the in-process store as its default
//! implementation goes behind it, and `build::Builder` (which creates every
//! store) chooses it. Cross-replica invalidation then calls
//! [`CardService::invalidate`] on each replica, or the L2's own
//! invalidation from `Store::invalidate`. A live-update stream that must
//! hear when a section changed after a refetch hooks into
//! `SectionCache::maybe_refresh` (where a refresh replaces the entry it
//! started from, and can compare old and new values) and the miss path of
//! `SectionCache::get`.
//!
//! # Sections and their upstream calls
//!
//! | section | cache key | upstream call | batched by |
//! |---|---|---|---|
//! | service, escalation policy | service id | `GET /services/{id}?include[]=escalation_policies&include[]=teams&include[]=integrations`, or `GET /services?include[]=…` pages | see below |
//! | on-call | escalation policy id | `GET /oncalls?escalation_policy_ids[]=…&include[]=users&earliest=true` (all pages) | policy ids |
//! | incidents | service id | `GET /incidents?service_ids[]=…&statuses[]=triggered&statuses[]=acknowledged&date_range=all&sort_by=created_at:desc` (at most 10 pages per batch; past that the section says `truncated` and its counts are lower bounds) | service ids |
//! | change events | the account | `GET /change_events` (newest 300: the pages the last read needed are read at once); per service `GET /services/{id}/change_events` while the account-wide call is forbidden | one call serves every service |
//! | standards | service id | `GET /standards/scores/technical_services?ids=…` | service ids |
//! | metrics | service id | `POST /analytics/metrics/incidents/services` (last 30 days) | service ids |
//! | Backstage lists | the account (the filtered page: team, query, limit) | `GET /escalation_policies`, `GET /teams`, `GET /services?include[]=…` (all pages; the services list also stores every service in the service section), `GET /services?team_ids[]=…&query=…&limit=…` | coalesced; fresh for `list_ttl`, then served stale while one refresh runs (up to `max_stale`) |
//! | integration key | the key | `GET /services?query=KEY&include[]=integrations` (verified match); when it finds none (PagerDuty documents `query` as a name filter): the fresh cached services, then one listing `GET /services?include[]=…` of every page (up to the 10 000 offset cap, 10 pages at a time) whose key index serves every key for `integration_key_miss_ttl` | coalesced per key; the listing shared by all keys |
//!
//! One service read carries the service, its escalation policy (rules and
//! targets) and its integrations, so the service and escalation policy
//! sections share one cached object (refreshed after the shorter of their
//! TTLs) and routing-key lookups cost nothing extra. `date_range=all` keeps
//! open incidents older than PagerDuty's default 30-day window.
//!
//! Services have no id-list filter. A batch of cold services is read one by
//! one in parallel, unless it holds at least `service_list_threshold` (10)
//! services, or that many single reads happened since the last listing (users
//! browsing many services one by one): then the services are read with the
//! paged list (100 per page, at most `service_list_max_pages`), which stores
//! every service on those pages, so the next cold services are hits. The
//! listing runs in its own task and stores each page as it arrives: a waiting
//! card gets its service as soon as the page that holds it arrives, not after
//! the last page, and the remaining pages are read on in the background. The
//! first page asks for PagerDuty's `total`, so the other pages are read at
//! once: a service on the first page costs one round trip, any other two
//! (a PagerDuty that sends no total gets the pages one after another). Only one listing runs at a
//! time; a batch that wants one while one runs follows it the same way. A
//! service the listing does not hold is then read on its own (not found, as
//! before). An account with more services than one listing reads
//! (`service_list_max_pages × 100`) is read service by service: the listing
//! pauses for `max_stale` after it was cut short (raise the cap for such
//! accounts).
//!
//! A service id PagerDuty answers 404 for is remembered for
//! `integration_key_miss_ttl` (30 s), like an unknown integration key, so a
//! portal asking for a deleted service costs one call per period.
//!
//! The on-call section needs the escalation policy id from the service, so a
//! card from a cold cache costs two round trips on that path (service, then
//! on-calls); every other section runs in parallel with the service read.
//! PagerDuty has no on-call filter by service.
//!
//! # Caching, coalescing, batching
//!
//! Every section cache is a moka cache with a maximum capacity whose expiry is
//! the *hard* limit `max_stale`; freshness (the section TTL) is checked on read:
//!
//! * **Coalescing**: concurrent misses of one key run one load (moka's entry
//!   API); errors reach every waiter and are not cached. An unknown
//!   integration key is cached, as a value, for `integration_key_miss_ttl`;
//!   the fallback listing behind key lookups runs at most once per that
//!   period however many different unknown keys are asked for (lookups that
//!   miss while it runs wait for it).
//! * **Batching**: a load goes through the section's batcher: keys that meet
//!   within `batch_window` (5 ms) make one list call of at most
//!   `batch_max_size` (50) ids; the results are split back per key, and a key
//!   the answer does not mention gets an explicit result (no incidents,
//!   nobody on call, not found), never a hang. Two batch loads of a section
//!   start at least `min_batch_interval` (250 ms) apart.
//! * **Stale-while-revalidate**: a value past its TTL but younger than
//!   `max_stale` is returned at once with `stale: true` and starts one
//!   background refresh per key. Refreshes use a second batcher with a longer
//!   window (`refresh_batch_window`, 2 s): nobody waits for them, so they wait
//!   to merge. **Stale-if-error**: when a refresh fails, the last good value
//!   keeps being served, `stale: true` with the section's `error`, until
//!   `max_stale`; the next retry waits for a backoff (the 429's reset time,
//!   or the TTL capped at 10 s).
//! * **Invalidation**: [`CardService::invalidate`] drops sections; a refresh
//!   that started before never puts back the dropped value, and a cold load
//!   running at that moment answers the callers waiting for it but is not
//!   kept, so the next read loads again. (Services stored by a listing that
//!   was already running are not covered: invalidating the service section
//!   right after a change may keep the listing's older copy until its TTL.)
//! * **Clock**: freshness is decided with a [`clock::Clock`] (the system clock
//!   by default; [`CardService::with_clock`] takes a
//!   [`clock::ManualClock`] so tests expire sections without sleeping):
//!   section TTLs, retry backoffs, remembered 404s and unknown keys, the
//!   change events fallback period and the pause of services listings.
//!   Waits (deadlines, batch windows) are tokio timers.
//! * **Tasks**: every spawned task (miss loads, batch flushes, single
//!   service reads, refreshes, services listings) belongs to the service;
//!   [`CardService::shutdown`] cancels the background ones (refreshes,
//!   listings), waits for the ones callers wait on (bounded by
//!   `section_timeout`) and spawns nothing afterwards.
//!
//! # PagerDuty's budget
//!
//! PagerDuty allows 960 REST calls a minute per account. Upstream calls here
//! follow *distinct services × freshness*, never views: a view of a cached
//! section costs nothing, a stale view starts at most one refresh per key,
//! and misses and refreshes merge into list calls.
//!
//! Per batched section (on-call, incidents, standards, metrics), calls per
//! minute are bounded by `2 × 60 s / min_batch_interval + K / batch_max_size`
//! (two batchers: misses and refreshes; `K` distinct keys loaded that minute,
//! usually one page per call), whatever the number of views.
//!
//! **Cold minute, 500 distinct services viewed by many users** (defaults).
//! The worst arrival pattern is a steady trickle of cold cards (about 8 a
//! second for the whole minute): every 250 ms each section starts a batch of
//! one or two ids.
//!
//! * services: at most 10 single reads, then the list: 5 pages warm all 500
//!   (an account of 2 000 services: 20 pages) → ≤ 30 calls;
//! * incidents: ≤ 240 batch starts + 500 / 50 = 10 → ≤ 250, plus the
//!   refreshes of the cards first read in the first 40 s (TTL 20 s; a
//!   refresh batch waits 2 s for others: ≤ 30 starts + 10) → ≤ 290;
//! * on-call: ≤ 250 over distinct escalation policies (a batch whose
//!   policies have more than 100 on-call entries adds pages);
//! * standards, when cards include them: ≤ 250;
//! * metrics, when cards include them: ≤ 250;
//! * change events: one account-wide call (3 pages) → ≤ 3;
//! * integration keys (cards by key): one `query` call per distinct key, plus
//!   at most one fallback listing per `integration_key_miss_ttl` (the
//!   account's pages, 100 services each).
//!
//! Without standards and metrics: ≤ ~575 calls, under 960 from the batching
//! alone. With both included, the worst case is ≤ ~1 075 calls, **over 960**:
//! the batching does not bound the first minute there. What does is the
//! client's token bucket (below: `rate_limit_per_minute`, 900 by default in
//! the server's configuration, burst 15) — at most 915 calls in any minute;
//! the excess waits in the bucket, so cards of that minute get slower, and a
//! section still waiting at `section_timeout` reports `timeout` (it is
//! filled when its call goes through). Realistic patterns stay far below:
//! 20 waves of 25 cards cost ≤ 46 calls, and 500 cold cards arriving 10 ms
//! apart with every section, at the default settings, cost ~115 calls in
//! ~5 s (both in the budget tests; the second checks each section against
//! one batch start per 250 ms).
//!
//! **Steady state, the same 500 services viewed continually**:
//!
//! * services (TTL 300 s): every service refreshed by a listing: 5 pages per
//!   5 minutes (+ at most 10 single reads) → ≤ 3 calls/min;
//! * incidents (TTL 20 s): 500 refreshes per 20 s = 25 per s, merged per 2 s
//!   refresh window → 1 call of 50 ids per window → 30/min;
//! * on-call (TTL 60 s): ≤ 500 policies per 60 s merged per 2 s window → ≤ 30/min;
//! * change events (TTL 180 s): 3 pages per 3 minutes → 1/min;
//! * standards (3600 s) and metrics (900 s), when asked: ≤ 10 calls per TTL → < 1/min;
//!
//! ≈ 65 calls/min, well under a quarter of the budget (240/min).
//!
//! **Change events of quiet services**: the account-wide read keeps the
//! account's newest 300 change events. In an account that records more than
//! 300 change events per `change_events_ttl` window, a service whose last
//! change is older than those 300 shows an empty change events section
//! (not an error). This is deliberate: reading every quiet service on its own
//! would cost one call per service per TTL (the budget of the forbidden case
//! below); the service's own page in PagerDuty lists its full history.
//!
//! Without `change_events.read`, change events are read per service
//! (`S / change_events_ttl` calls: 500 services → ~167/min); raise
//! `change_events_ttl` or grant the scope for large portals.
//!
//! **Token bucket**: the server builds the [`pagerduty::Client`] with
//! `ClientBuilder::rate_limit_per_minute` (one bucket per account, shared by
//! every clone of the client). Cards relies on it as the last guard: a burst
//! beyond the bounds above queues in the bucket instead of earning 429s.
//!
//! # Counters
//!
//! [`CardService::stats`] returns per-cache hits, misses, coalesced waits,
//! batch loads, upstream calls (one per HTTP request, pages included),
//! stale serves, refreshes and errors; `lists` counts the Backstage lists
//! (outside the card budget above: one read per list per `list_ttl`, the
//! services list one call per 100 services).
#![warn(missing_docs)]

mod batcher;
mod build;
mod cache;
mod card;
pub mod changes;
pub mod clock;
pub mod config;
pub mod error;
mod kept;
mod loaders;
pub mod model;
mod paging;
mod parts;
mod sections;
mod service;
pub mod stats;
pub mod store;
mod tasks;
mod version;
mod versioned;
mod warm;

pub use changes::{ChangeKind, SectionChange};
pub use config::CardsConfig;
pub use error::{CardError, Cause, Refusal, SectionError, SectionErrorKind};
pub use kept::{Kept, ServiceChangeEvents};
pub use model::*;
pub use parts::{CardParts, CardVersions, Memo};
pub use service::{CardService, Sharing};
pub use stats::{CardStats, SectionStats};
pub use store::shared::{SharedCache, SharedMode};
pub use versioned::Versioned;
