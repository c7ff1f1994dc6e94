//! Service cards built from PagerDuty data.
//!
//! Work in progress: see issue 4. Crate docs with the design and the budget
//! math land with `CardService`.
#![warn(missing_docs)]

mod batcher;
mod cache;
pub mod config;
pub mod error;
pub mod model;
mod sections;
mod service;
pub mod stats;

pub use config::CardsConfig;
pub use error::{CardError, SectionError, SectionErrorKind};
pub use model::*;
pub use service::CardService;
pub use stats::{CardStats, SectionStats};
