//! Service cards built from PagerDuty data.
//!
//! Work in progress: see issue 4. Crate docs with the design and the budget
//! math land with `CardService`.
#![warn(missing_docs)]
// Temporary while `CardService` (which uses the machinery) is being written.
#![allow(dead_code)]

mod batcher;
mod cache;
pub mod config;
pub mod error;
pub mod model;
pub mod stats;

pub use config::CardsConfig;
pub use error::{CardError, SectionError, SectionErrorKind};
pub use model::*;
pub use stats::{CardStats, SectionStats};
