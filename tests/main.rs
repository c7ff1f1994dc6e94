//! End-to-end tests. One binary; each area is a module.

mod auth;
mod auth_jwt;
mod backstage;
mod cards;
mod catalog;
mod config;
mod dependencies;
mod entities;
mod errors;
mod first_run;
mod frontends;
mod health;
mod helpers;
mod metrics;
mod openapi;
mod postgres;
mod sim_client;
mod store;
mod trigger;
mod upstream;
