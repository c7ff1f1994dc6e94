//! What handlers share, built once per process and cloned into each worker.

use std::sync::Arc;
use std::time::Duration;

use crate::metrics::Metrics;
use crate::readiness::Readiness;

/// Shared application state (behind `web::Data`).
pub struct AppState {
    pub metrics: Arc<Metrics>,
    /// `server.request_deadline_ms`: see [`crate::deadline::within`].
    pub request_deadline: Duration,
    pub readiness: Readiness,
    pub cards: cards::CardService,
    /// Every PagerDuty account (`cards` is the default one's card service).
    pub accounts: Arc<crate::accounts::Accounts>,
    /// The create-incident proxy (`/v1/incidents`); pass it an account's cards.
    pub trigger: Arc<crate::trigger::TriggerService>,
}

impl AppState {
    /// The `/metrics` body: cache counters of every account.
    pub fn render_metrics(&self) -> String {
        let stats: Vec<(String, serde_json::Value)> = self
            .accounts
            .iter()
            .filter_map(|a| Some((a.id.clone(), serde_json::to_value(a.cards.stats()).ok()?)))
            .collect();
        self.metrics.render(&stats)
    }
}
