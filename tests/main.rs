//! End-to-end tests. One binary; each area is a module.

mod auth;
mod auth_jwt;
mod backstage;
mod browser;
mod cards;
mod catalog;
mod config;
mod degraded;
mod dependencies;
mod entities;
mod errors;
mod first_run;
mod frontends;
mod health;
mod helpers;
mod legacy;
mod live;
mod metrics;
mod openapi;
mod postgres;
mod redis_server;
mod sim_client;
mod store;
mod trigger;
mod ui;
mod upstream;
