//! End-to-end tests. One binary; each area is a module.

mod auth;
mod auth_jwt;
mod backstage;
mod cards;
mod config;
mod errors;
mod first_run;
mod frontends;
mod health;
mod helpers;
mod live;
mod metrics;
mod openapi;
mod sim_client;
mod trigger;
mod upstream;
