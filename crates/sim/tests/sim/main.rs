//! Integration tests of the PagerDuty simulator, over HTTP on port 0.

mod analytics;
mod auth;
mod common;
mod dependencies;
mod events;
mod faults;
mod generation;
mod incidents;
mod integrations;
mod oauth;
mod oncalls;
mod other_routes;
mod pinned;
mod rate_limit;
mod receiver;
mod services;
mod stats;
mod webhook_subscriptions;
mod webhooks;
mod webhooks_rest;
