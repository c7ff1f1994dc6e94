//! `/readyz`: are the config and PagerDuty credentials good?
//!
//! Credentials are proven with `GET /abilities` (the cheapest authenticated
//! call), for every configured account. The result is reused for [`OK_TTL`]
//! so a probe every few seconds costs PagerDuty almost nothing; failures are
//! retried sooner.
//!
//! A probe never waits for PagerDuty (Kubernetes gives it about a second):
//! it answers from the last result and starts a new check in the background
//! when that result expired. Only before the very first result does it wait,
//! at most [`FIRST_WAIT`]. A check still running after [`STUCK_AFTER`] is
//! itself reported as a problem.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::task::TaskTracker;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// How long a successful check is reused.
pub const OK_TTL: Duration = Duration::from_secs(30);
/// How long a failed check is reused (recover quickly once fixed).
pub const ERROR_TTL: Duration = Duration::from_secs(5);
/// The longest a probe waits for an account's first result.
pub const FIRST_WAIT: Duration = Duration::from_millis(500);
/// A check running longer than this is reported as stuck.
pub const STUCK_AFTER: Duration = Duration::from_secs(3);

/// Readiness answer.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct ReadyReport {
    /// True when the server can serve cards: every account is ready.
    pub ready: bool,
    /// Always `ok`: the server only starts with a valid configuration.
    pub config: String,
    /// The default account's check.
    pub pagerduty: PagerDutyCheck,
    /// The default account's credential.
    pub token: TokenView,
    /// Every account by id (`default` when `[pagerduty]` alone is
    /// configured), the default one included.
    pub accounts: BTreeMap<String, AccountReadiness>,
    /// Optional sections (standards, metrics) PagerDuty refuses an account:
    /// the Backstage routes answer them empty, the cards show the error.
    /// Not a readiness failure: the cards still render.
    #[serde(default)]
    pub degraded: Vec<crate::degraded::DegradedSection>,
    /// The store (entity mappings, settings): reachable now? Filled in by
    /// [`store_check`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreCheck>,
    /// `[shared]` (Redis), when configured: `shared`, or `degraded-local`
    /// while Redis is unreachable (not a readiness failure: cards are
    /// served from this replica's caches and PagerDuty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared: Option<crate::shared::SharedReport>,
}

/// The store's readiness: one `SELECT 1` within [`STORE_PING`].
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct StoreCheck {
    /// The database answered.
    pub ok: bool,
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// Why not (never a driver message or a password).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The longest a probe waits for the store.
pub const STORE_PING: Duration = Duration::from_millis(500);

/// Pings `store` within [`STORE_PING`].
pub async fn store_check(store: &store::Store) -> StoreCheck {
    let error = match tokio::time::timeout(STORE_PING, store.ping()).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(format!(
            "checking the store: no answer within {} ms",
            STORE_PING.as_millis()
        )),
    };
    StoreCheck {
        ok: error.is_none(),
        backend: store.backend().name().to_owned(),
        error,
    }
}

/// One PagerDuty account's readiness.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct AccountReadiness {
    /// This account's credentials work (or worked and the failure is transient).
    pub ready: bool,
    pub pagerduty: PagerDutyCheck,
    pub token: TokenView,
}

/// The last credential check against PagerDuty.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct PagerDutyCheck {
    /// The last `GET /abilities` succeeded.
    pub ok: bool,
    /// Some check has succeeded since startup.
    pub credentials_proven: bool,
    /// When the last check ran.
    pub checked_at: DateTime<Utc>,
    /// Why the last check failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Credential health reported by the PagerDuty client (never a secret).
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct TokenView {
    /// `api_token` or `oauth`.
    pub kind: String,
    /// OAuth: a token is held and not expired. API token: no 401 since the last success.
    pub valid: bool,
    /// OAuth: when the current access token expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// OAuth: the scopes PagerDuty granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub granted_scope: Option<String>,
    /// The last authentication error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl From<pagerduty::TokenHealth> for TokenView {
    fn from(h: pagerduty::TokenHealth) -> Self {
        TokenView {
            kind: match h.kind {
                pagerduty::TokenKind::ApiToken => "api_token",
                pagerduty::TokenKind::Oauth => "oauth",
            }
            .into(),
            valid: h.valid,
            expires_at: h.expires_at,
            granted_scope: h.granted_scope,
            last_error: h.last_error,
        }
    }
}

struct Probe {
    at: Instant,
    checked_at: DateTime<Utc>,
    /// None = success; Some((message, credentials rejected?)).
    error: Option<(String, bool)>,
}

#[derive(Default)]
struct State {
    last: Option<Probe>,
    proven: bool,
    /// When the check in flight started.
    running_since: Option<Instant>,
}

/// Runs and caches the credential check of every account.
pub struct Readiness {
    /// (account id, probe), in id order.
    accounts: Vec<(String, Arc<AccountProbe>)>,
    /// The background checks (stopped at shutdown).
    tasks: TaskTracker,
    /// Index of the default account in `accounts`.
    default: usize,
}

impl Readiness {
    /// One probe per account: `(id, client)` pairs and the default's id.
    pub fn new(accounts: Vec<(String, pagerduty::Client)>, default_id: &str) -> Self {
        let default = accounts
            .iter()
            .position(|(id, _)| id == default_id)
            .unwrap_or(0);
        Self {
            accounts: accounts
                .into_iter()
                .map(|(id, client)| (id, Arc::new(AccountProbe::new(client))))
                .collect(),
            default,
            tasks: TaskTracker::new(),
        }
    }

    /// Starts every account's first check (at start-up, so the first probe
    /// finds a result).
    pub fn start(&self) {
        for (_, probe) in &self.accounts {
            probe.refresh_if_due(&self.tasks);
        }
    }

    /// Stops the checks in flight (they only read).
    pub async fn shutdown(&self) {
        self.tasks.close();
        for (_, probe) in &self.accounts {
            probe.stopping.cancel();
        }
        self.tasks.wait().await;
    }

    /// The current report from each account's last result, starting a
    /// background check wherever that result expired.
    pub async fn check(&self) -> ReadyReport {
        let reports = futures::future::join_all(
            self.accounts
                .iter()
                .map(|(_, probe)| probe.report(&self.tasks)),
        )
        .await;
        let accounts: BTreeMap<String, AccountReadiness> = self
            .accounts
            .iter()
            .map(|(id, _)| id.clone())
            .zip(reports)
            .collect();
        let ready = !accounts.is_empty() && accounts.values().all(|a| a.ready);
        let default = self
            .accounts
            .get(self.default)
            .and_then(|(id, _)| accounts.get(id))
            .cloned();
        let (pagerduty, token) = match default {
            Some(a) => (a.pagerduty, a.token),
            None => (
                PagerDutyCheck {
                    ok: false,
                    credentials_proven: false,
                    checked_at: Utc::now(),
                    error: Some("no PagerDuty account configured".into()),
                },
                TokenView {
                    kind: "api_token".into(),
                    valid: false,
                    expires_at: None,
                    granted_scope: None,
                    last_error: None,
                },
            ),
        };
        ReadyReport {
            ready,
            config: "ok".into(),
            pagerduty,
            token,
            accounts,
            degraded: Vec::new(),
            store: None,
            shared: None,
        }
    }
}

/// One account's cached credential check.
struct AccountProbe {
    client: pagerduty::Client,
    // A std Mutex: never held across an await.
    state: Mutex<State>,
    /// Bumped when a check ends, so the first probe can wait for it.
    done: tokio::sync::watch::Sender<u64>,
    stopping: tokio_util::sync::CancellationToken,
}

impl AccountProbe {
    fn new(client: pagerduty::Client) -> Self {
        Self {
            client,
            state: Mutex::new(State::default()),
            done: tokio::sync::watch::channel(0).0,
            stopping: tokio_util::sync::CancellationToken::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a check in the background unless one runs or the last result
    /// is still fresh.
    fn refresh_if_due(self: &Arc<Self>, tasks: &TaskTracker) {
        {
            let mut state = self.lock();
            let fresh = state.last.as_ref().is_some_and(|p| {
                let ttl = if p.error.is_none() { OK_TTL } else { ERROR_TTL };
                p.at.elapsed() < ttl
            });
            if fresh || state.running_since.is_some() || tasks.is_closed() {
                return;
            }
            state.running_since = Some(Instant::now());
        }
        let probe = Arc::clone(self);
        tasks.spawn(async move {
            let stopping = probe.stopping.clone();
            stopping.run_until_cancelled(probe.run()).await;
        });
    }

    /// One check against PagerDuty (bounded by the client's own retry
    /// deadline), recorded when it ends.
    async fn run(&self) {
        let error = match self.client.list_abilities().await {
            Ok(_) => None,
            Err(e) => {
                let rejected = e.is_unauthorized() || e.is_forbidden();
                tracing::warn!(error = %e, "readiness check against PagerDuty failed");
                Some((e.to_string(), rejected))
            }
        };
        {
            let mut state = self.lock();
            state.proven |= error.is_none();
            state.running_since = None;
            state.last = Some(Probe {
                at: Instant::now(),
                checked_at: Utc::now(),
                error,
            });
        }
        self.done.send_modify(|n| *n += 1);
    }

    /// This account's report from its last result (waiting at most
    /// [`FIRST_WAIT`] when there is none yet).
    async fn report(self: &Arc<Self>, tasks: &TaskTracker) -> AccountReadiness {
        self.refresh_if_due(tasks);
        let has_result = self.lock().last.is_some();
        if !has_result {
            let mut done = self.done.subscribe();
            let _ = tokio::time::timeout(FIRST_WAIT, done.wait_for(|n| *n > 0)).await;
        }
        let (proven, last, running_since) = {
            let state = self.lock();
            let last = state.last.as_ref().map(|p| (p.checked_at, p.error.clone()));
            (state.proven, last, state.running_since)
        };
        let stuck = running_since
            .map(|since| since.elapsed())
            .filter(|running| *running >= STUCK_AFTER);
        let (checked_at, mut error) = match last {
            Some((checked_at, error)) => (checked_at, error),
            None => (
                Utc::now(),
                Some((
                    "the first credential check against PagerDuty has not finished yet".to_owned(),
                    false,
                )),
            ),
        };
        if let Some(running) = stuck {
            // A check that hangs says more than the stale result before it.
            let message = format!(
                "the credential check against PagerDuty has not finished after {} s (PagerDuty is not answering)",
                running.as_secs()
            );
            error = Some(match error {
                Some((before, rejected)) => (format!("{message}; last result: {before}"), rejected),
                None => (message, false),
            });
        }
        // Ready when the last check passed, or when it failed for a transient
        // reason (timeout, 5xx, 429, a stuck check) after the credentials
        // were once proven: taking the instance out of rotation would not
        // help then.
        let ready = match &error {
            None => true,
            Some((_, rejected)) => proven && !rejected,
        };
        AccountReadiness {
            ready,
            pagerduty: PagerDutyCheck {
                ok: error.is_none(),
                credentials_proven: proven,
                checked_at,
                error: error.map(|(message, _)| message),
            },
            token: self.client.token_health().await.into(),
        }
    }
}
