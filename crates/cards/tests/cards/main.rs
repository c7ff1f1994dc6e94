//! Integration tests of the cards crate against a fake PagerDuty (wiremock),
//! counting upstream calls.

mod budget;
mod card;
mod errors;
mod freshness;
mod keys;
mod sim;
mod support;
