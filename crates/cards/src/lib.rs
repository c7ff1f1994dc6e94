//! Service cards built from PagerDuty data.
//!
//! Work in progress: see issue 4.
