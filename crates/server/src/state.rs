//! What handlers share, built once per process and cloned into each worker:
//! the domain services, one instance each.

use std::sync::Arc;
use std::time::Duration;

use crate::accounts::{Account, Accounts, UnknownAccount};
use crate::config::BackstageSettings;
use crate::degraded::Degradations;
use crate::keys::KeyAliases;
use crate::mappings::MappingService;
use crate::metrics::Metrics;
use crate::readiness::Readiness;
use crate::streams::StreamService;
use crate::trigger::TriggerService;
use crate::webhooks::WebhookService;

/// Shared application state (behind `web::Data`), for both surfaces.
pub struct AppState {
    pub metrics: Arc<Metrics>,
    /// `server.request_deadline_ms`: see [`crate::http::deadline::within`].
    pub request_deadline: Duration,
    pub readiness: Readiness,
    /// Every PagerDuty account, each with its client and card service.
    pub accounts: Arc<Accounts>,
    /// The create-incident proxy; pass it an account.
    pub trigger: Arc<TriggerService>,
    /// Integration key aliases (what Backstage answers show instead of keys).
    pub keys: Arc<KeyAliases>,
    /// `[backstage]`: what the drop-in routes answer.
    pub backstage: BackstageSettings,
    /// Standards and metrics PagerDuty refuses (Backstage answers them empty).
    pub degraded: Degradations,
    /// PagerDuty v3 webhooks in (`POST /v1/webhooks/pagerduty`).
    pub webhooks: Arc<WebhookService>,
    /// `webhooks.max_body_bytes`.
    pub webhooks_max_body: usize,
    /// `webhooks.enabled`: when false the intake answers 404, as a route
    /// that does not exist would.
    pub webhooks_enabled: bool,
    /// Live card streams (`/v1/cards/{id}/stream`, `/v1/stream`).
    pub streams: Arc<StreamService>,
    /// Entity mappings and settings, over the store.
    pub mappings: Arc<MappingService>,
    /// Rendered card and Backstage answers, reused while the versions of
    /// what they were rendered from hold ([`crate::http::rendered`]).
    pub rendered: crate::http::rendered::Rendered,
    /// `[shared]` (Redis), when `shared.redis_url` is set.
    pub shared: Option<Arc<crate::shared::Shared>>,
}

impl AppState {
    /// The account `?account=` names (the default one when absent or empty).
    pub fn account(&self, id: Option<&str>) -> Result<&Arc<Account>, UnknownAccount> {
        self.accounts.get(id)
    }

    /// Stops the background work of every service: trigger deliveries in
    /// flight finish, then every account's cache refreshes stop (see
    /// [`TriggerService::shutdown`] and [`cards::CardService::shutdown`]).
    pub async fn shutdown(&self) {
        self.streams.shutdown().await;
        self.webhooks.shutdown().await;
        self.trigger.shutdown().await;
        self.readiness.shutdown().await;
        futures::future::join_all(self.accounts.iter().map(|a| a.cards.shutdown())).await;
        self.mappings.store().close().await;
    }

    /// The `/metrics` body: cache counters of every account.
    pub fn render_metrics(&self) -> String {
        let stats: Vec<(String, serde_json::Value)> = self
            .accounts
            .iter()
            .filter_map(|a| Some((a.id.clone(), serde_json::to_value(a.cards.stats()).ok()?)))
            .collect();
        let mut text = self.metrics.render(&stats);
        self.degraded.render(&mut text);
        if let (Some(shared), Some(report)) = (&self.shared, self.shared_report()) {
            let redis = SharedCounts {
                cache_errors: shared.redis_errors(),
                budget_errors: shared.budget_errors(),
                trigger_fallbacks: self.trigger.shared().map(|t| t.fallbacks()),
            };
            render_shared(&report, &redis, &mut text);
        }
        text
    }

    /// `[shared]`'s state for `/readyz` and `/metrics`: the card cache,
    /// every account's budget and the trigger's store (`None` when off).
    pub fn shared_report(&self) -> Option<crate::shared::SharedReport> {
        let report = self.shared.as_ref()?.report();
        Some(match self.trigger.shared_mode() {
            Some(mode) => report.with_trigger(mode == crate::trigger::shared::SharedMode::Shared),
            None => report,
        })
    }
}

/// What `[shared]` counted: the Redis failures of each part.
struct SharedCounts {
    cache_errors: u64,
    /// Per account.
    budget_errors: Vec<(String, u64)>,
    /// `None` without a shared trigger store.
    trigger_fallbacks: Option<u64>,
}

/// `[shared]`'s families: the mode this replica is in, as a whole and per
/// part (each account's budget, the trigger's store), and what each part
/// counted of Redis failing (so a degraded mode can be told apart from a
/// flapping one, and traced to its part).
fn render_shared(report: &crate::shared::SharedReport, counts: &SharedCounts, out: &mut String) {
    use std::fmt::Write as _;
    crate::metrics::family(
        out,
        "dutycard_shared_mode",
        "gauge",
        "1 for the mode this replica is in: shared (through Redis) or degraded-local (serving alone until Redis answers).",
    );
    mode_lines(out, "dutycard_shared_mode", "", &report.mode);
    crate::metrics::family(
        out,
        "dutycard_shared_budget_mode",
        "gauge",
        "1 for the mode of each account's PagerDuty budget: shared (one budget for every replica) or degraded-local (this replica's share of the rate).",
    );
    for (account, budget) in &report.budgets {
        let labels = format!("account=\"{account}\",");
        mode_lines(out, "dutycard_shared_budget_mode", &labels, budget);
    }
    crate::metrics::family(
        out,
        "dutycard_shared_redis_errors_total",
        "counter",
        "Calls of the shared card cache to Redis that failed or timed out (each read PagerDuty instead).",
    );
    let _ = writeln!(
        out,
        "dutycard_shared_redis_errors_total {}",
        counts.cache_errors
    );
    crate::metrics::family(
        out,
        "dutycard_shared_budget_redis_errors_total",
        "counter",
        "Calls of each account's shared PagerDuty budget to Redis that failed or timed out (each switched it to this replica's share of the rate).",
    );
    for (account, errors) in &counts.budget_errors {
        let _ = writeln!(
            out,
            "dutycard_shared_budget_redis_errors_total{{account=\"{account}\"}} {errors}"
        );
    }
    if let (Some(trigger), Some(fallbacks)) = (&report.trigger, counts.trigger_fallbacks) {
        crate::metrics::family(
            out,
            "dutycard_shared_trigger_mode",
            "gauge",
            "1 for the mode of the trigger's idempotency entries and limits: shared (in Redis) or degraded-local (this replica's own).",
        );
        mode_lines(out, "dutycard_shared_trigger_mode", "", trigger);
        crate::metrics::family(
            out,
            "dutycard_shared_trigger_fallbacks_total",
            "counter",
            "Trigger idempotency and limit checks answered by this replica alone because Redis failed, was slow or was away.",
        );
        let _ = writeln!(out, "dutycard_shared_trigger_fallbacks_total {fallbacks}");
    }
}

/// One gauge line per mode of `[shared]` (`shared`, `degraded-local`): 1
/// for `current`, 0 for the other; `labels` go before `mode` (each ending
/// in a comma).
fn mode_lines(out: &mut String, name: &str, labels: &str, current: &str) {
    use std::fmt::Write as _;
    for mode in ["shared", "degraded-local"] {
        let _ = writeln!(
            out,
            "{name}{{{labels}mode=\"{mode}\"}} {}",
            u8::from(current == mode)
        );
    }
}
