//! dutycard's HTTP server: PagerDuty service cards for developer portals.
//!
//! # Layout
//!
//! Modules depend one way, each only on those above it:
//!
//! 1. [`config`]: settings from `config/default.toml`, a file and
//!    `DUTYCARD_*` env, validated with every problem named. Plain data; it
//!    imports nothing else of this crate.
//! 2. [`shared`]: `[shared]` at run time (one Redis connection per
//!    process, the shared card cache, the accounts' shared budgets), then
//!    [`accounts`]: one PagerDuty client and card service per account.
//! 3. Domain services, free of HTTP: [`auth`] (who is calling; owns
//!    [`auth::jwt`]), [`keys`] (integration key aliases), [`catalog`] (the
//!    Backstage catalog's annotations), [`mappings`] (entity
//!    mappings and settings over the `store` crate), [`entities`] (one card
//!    per catalog entity over its mapped services), [`trigger`] (the
//!    create-incident proxy), [`degraded`] (optional sections PagerDuty
//!    refuses, answered empty on the Backstage routes and reported),
//!    [`webhooks`] (PagerDuty v3 webhooks in:
//!    signature, dedupe, invalidation), [`streams`] (live card streams),
//!    [`readiness`] (are the credentials good?), [`metrics`] (counters and
//!    their Prometheus text), [`state`] (the one [`state::AppState`] holding
//!    them).
//! 4. HTTP: [`http`] (plumbing both surfaces share: extractors, deadline,
//!    ETags, trigger statuses, unknown routes), [`middleware`] (request id,
//!    metrics, CORS, caller auth), [`api`] (`/v1`, health, metrics; its
//!    `ApiError`), [`backstage`] (the Node backend's routes; its
//!    `BackstageError`), [`openapi`] (the spec from the handlers).
//! 5. [`startup`] ([`startup::Application`] binds and runs the server),
//!    [`telemetry`] (the log subscriber) and [`cli`] (the `dutycard` command).

pub mod config;
pub mod shared;

pub mod accounts;

pub mod auth;
pub mod catalog;
pub mod degraded;
pub mod dependencies;
pub mod entities;
pub mod keys;
pub mod mappings;
pub mod metrics;
pub mod readiness;
pub mod state;
pub mod streams;
pub mod trigger;
pub mod webhooks;

pub mod api;
pub mod backstage;
pub mod http;
pub mod middleware;
pub mod openapi;

pub mod cli;
pub mod startup;
pub mod telemetry;

pub use config::{ConfigSources, Settings};
pub use startup::Application;
