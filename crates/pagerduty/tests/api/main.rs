//! Integration tests of the PagerDuty client against wiremock servers on
//! 127.0.0.1. One binary, one module per topic.

mod budget;
mod config;
mod delivery;
mod errors;
mod events;
mod fixtures;
mod helpers;
mod oauth;
mod pagination;
mod redis_budget;
mod resources;
mod retries;
mod telemetry;
