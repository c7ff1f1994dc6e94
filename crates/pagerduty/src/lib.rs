//! Typed async client for PagerDuty's REST API v2 and Events API v2.
//!
//! Work in progress: see issue 2.
