//! A fake PagerDuty for tests, benchmarks and the demo.
//!
//! Work in progress: see issue 3.
