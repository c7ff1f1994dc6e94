//! `[shared]` at run time: one Redis [`ConnectionManager`] per process
//! (multiplexed, reconnecting, lazy: a replica starts while Redis is down),
//! the shared card cache on it, and every account's shared PagerDuty
//! budget. [`Shared::report`] tells `/readyz` and `/metrics` whether this
//! replica shares now (`shared`) or serves alone until Redis answers
//! (`degraded-local`); neither fails readiness, since cards are served
//! either way.
//!
//! In the crate's one-way order this comes after `config` and before
//! `accounts`, which takes a budget and a [`cards::Sharing`] per account.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cards::store::redis::{RedisSharedCache, RedisSharedConfig};
use cards::{SharedCache, SharedMode};
use pagerduty::budget::redis::{BudgetMode, RedisBudgetConfig, RedisRateBudget};
use redis::aio::ConnectionManager;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::config::SharedSettings;

/// How often a degraded replica asks Redis whether it is back.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// The shared state of this replica (see the [module docs](self)).
pub struct Shared {
    conn: ConnectionManager,
    cache: RedisSharedCache,
    replicas: u32,
    call_timeout: Duration,
    /// Each account's budget, registered as the accounts are built.
    budgets: Mutex<Vec<(String, RedisRateBudget)>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No URL: it may hold a password.
        f.debug_struct("Shared")
            .field("cache", &self.cache)
            .field("replicas", &self.replicas)
            .finish_non_exhaustive()
    }
}

/// What `/readyz` says about `[shared]`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SharedReport {
    /// `shared` (the card cache and every account's budget go through
    /// Redis) or `degraded-local` (Redis is unreachable or slow: this
    /// replica serves from its own caches and PagerDuty, at its share of
    /// the rate, until Redis answers again).
    pub mode: String,
    /// The card cache's mode: `shared` or `degraded-local`.
    pub cache: String,
    /// Each account's PagerDuty budget: `shared` or `degraded-local`.
    pub budgets: BTreeMap<String, String>,
    /// The trigger's idempotency entries and limits: `shared` or
    /// `degraded-local` (filled in by [`SharedReport::with_trigger`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    /// The replicas sharing each account (the local share is `1/replicas`).
    pub replicas: u32,
}

impl Shared {
    /// The shared state when `[shared].redis_url` is set (call within a
    /// Tokio runtime, on validated settings). Connects nothing: Redis down
    /// now only means this replica starts `degraded-local`.
    pub fn from_settings(settings: &SharedSettings) -> Result<Option<Arc<Shared>>, String> {
        let Some(url) = &settings.redis_url else {
            return Ok(None);
        };
        let call_timeout = settings.call_timeout();
        let conn = pagerduty::budget::redis::connection_manager(url.expose_secret(), call_timeout)
            .map_err(|e| format!("shared.redis_url: {e}"))?;
        let cache = RedisSharedCache::start(
            url.expose_secret(),
            conn.clone(),
            RedisSharedConfig {
                timing: settings.timing(),
                call_timeout,
                probe_interval: PROBE_INTERVAL,
                replica: uuid::Uuid::new_v4().to_string(),
            },
        )
        .map_err(|e| format!("shared.redis_url: {e}"))?;
        Ok(Some(Arc::new(Shared {
            conn,
            cache,
            replicas: settings.replicas,
            call_timeout,
            budgets: Mutex::new(Vec::new()),
        })))
    }

    /// The shared PagerDuty budget of `account` at `per_minute` for all
    /// replicas together.
    pub fn budget(&self, account: &str, per_minute: u32) -> pagerduty::Result<RedisRateBudget> {
        let budget = RedisRateBudget::new(
            self.conn.clone(),
            account,
            RedisBudgetConfig {
                per_minute,
                replicas: self.replicas,
                call_timeout: self.call_timeout,
                probe_interval: PROBE_INTERVAL,
            },
        )?;
        self.lock().push((account.to_owned(), budget.clone()));
        Ok(budget)
    }

    /// How `account`'s card service shares its sections.
    pub fn sharing(&self, account: &str) -> cards::Sharing {
        cards::Sharing {
            cache: Arc::new(self.cache.clone()),
            account: account.to_owned(),
            replicas: self.replicas,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(String, RedisRateBudget)>> {
        self.budgets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this replica shares now, in the cache and in every budget.
    pub fn report(&self) -> SharedReport {
        let cache = self.cache.mode();
        let budgets: BTreeMap<String, String> = self
            .lock()
            .iter()
            .map(|(id, b)| (id.clone(), budget_mode(b.mode()).to_owned()))
            .collect();
        let all_shared =
            cache == SharedMode::Shared && budgets.values().all(|m| m.as_str() == "shared");
        SharedReport {
            mode: if all_shared {
                "shared"
            } else {
                "degraded-local"
            }
            .to_owned(),
            cache: cache.as_str().to_owned(),
            budgets,
            trigger: None,
            replicas: self.replicas,
        }
    }

    /// The one Redis connection of this process (for the trigger's shared
    /// store, built at startup).
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// `shared.call_timeout_ms`.
    pub fn call_timeout(&self) -> Duration {
        self.call_timeout
    }

    /// Calls of the shared card cache to Redis that failed or timed out.
    pub fn redis_errors(&self) -> u64 {
        self.cache.errors()
    }

    /// Each account's budget: its Redis calls that failed or timed out.
    pub fn budget_errors(&self) -> Vec<(String, u64)> {
        self.lock()
            .iter()
            .map(|(id, b)| (id.clone(), b.errors()))
            .collect()
    }
}

impl SharedReport {
    /// Adds the trigger's mode (`shared` is true while it shares); the
    /// report is `degraded-local` unless everything shares.
    pub fn with_trigger(mut self, shared: bool) -> Self {
        let mode = if shared { "shared" } else { "degraded-local" };
        self.trigger = Some(mode.to_owned());
        if !shared {
            self.mode = "degraded-local".to_owned();
        }
        self
    }
}

fn budget_mode(mode: BudgetMode) -> &'static str {
    match mode {
        BudgetMode::Shared => "shared",
        BudgetMode::Degraded => "degraded-local",
    }
}
