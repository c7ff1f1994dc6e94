//! dutycard's load harness (issue 8): the server as a child process, the
//! PagerDuty simulator with realistic latency, a bounded load generator with
//! HDR latency histograms, the scenarios and the budgets.
//!
//! Run it with `cargo run --release -p dutycard-bench -- <scenario>`; see
//! `BENCHMARKS.md` for the numbers and what they depend on.

pub mod cli;
pub mod harness;
pub mod load;
pub mod mappings;
pub mod report;
pub mod scenarios;
pub mod zipf;
