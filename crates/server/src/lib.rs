//! dutycard's HTTP server: PagerDuty service cards for developer portals.
//!
//! # Layout
//!
//! - [`cli`]: the `dutycard` command line (`serve`, `check-config`, `openapi`...).
//! - [`config`]: settings from `config/default.toml`, a file and `DUTYCARD_*` env,
//!   validated with every problem named.
//! - [`startup`]: [`startup::Application`] binds the port and runs the actix server.
//! - [`routes`]: thin handlers; [`error`]: the one `ApiError` and its JSON body;
//!   [`extract`]: body/query extractors whose errors name the field.
//! - [`auth`], [`deadline`], [`metrics`], [`telemetry`]: the middleware layers.
//! - [`openapi`]: the spec generated from the handlers, served at `/openapi.json`.

pub mod accounts;
pub mod auth;
pub mod backstage;
pub mod cli;
pub mod config;
pub mod deadline;
pub mod error;
pub mod extract;
pub mod http_cache;
pub mod jwt;
pub mod metrics;
pub mod openapi;
pub mod readiness;
pub mod routes;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod trigger;

pub use config::{ConfigSources, Settings};
pub use startup::Application;
