//! `/readyz`: are the config and PagerDuty credentials good?
//!
//! Credentials are proven with `GET /abilities` (the cheapest authenticated
//! call), for every configured account. The result is reused for [`OK_TTL`]
//! so a probe every few seconds costs PagerDuty almost nothing; failures are
//! retried sooner.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// How long a successful check is reused.
pub const OK_TTL: Duration = Duration::from_secs(30);
/// How long a failed check is reused (recover quickly once fixed).
pub const ERROR_TTL: Duration = Duration::from_secs(5);

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
}

/// Runs and caches the credential check of every account.
pub struct Readiness {
    /// (account id, probe), in id order.
    accounts: Vec<(String, AccountProbe)>,
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
                .map(|(id, client)| (id, AccountProbe::new(client)))
                .collect(),
            default,
        }
    }

    /// The current report, checking every account (concurrently) whose
    /// cached result expired.
    pub async fn check(&self) -> ReadyReport {
        let reports =
            futures::future::join_all(self.accounts.iter().map(|(_, probe)| probe.check())).await;
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
        }
    }
}

/// One account's cached credential check.
struct AccountProbe {
    client: pagerduty::Client,
    // A tokio Mutex held across the upstream call on purpose: concurrent
    // probes wait for one check instead of each calling PagerDuty.
    state: tokio::sync::Mutex<State>,
}

impl AccountProbe {
    fn new(client: pagerduty::Client) -> Self {
        Self {
            client,
            state: tokio::sync::Mutex::new(State::default()),
        }
    }

    /// This account's report, checking PagerDuty when the cached result expired.
    async fn check(&self) -> AccountReadiness {
        let mut state = self.state.lock().await;
        let fresh = state.last.as_ref().is_some_and(|p| {
            let ttl = if p.error.is_none() { OK_TTL } else { ERROR_TTL };
            p.at.elapsed() < ttl
        });
        if !fresh {
            let error = match self.client.list_abilities().await {
                Ok(_) => None,
                Err(e) => {
                    let rejected = e.is_unauthorized() || e.is_forbidden();
                    tracing::warn!(error = %e, "readiness check against PagerDuty failed");
                    Some((e.to_string(), rejected))
                }
            };
            state.proven |= error.is_none();
            state.last = Some(Probe {
                at: Instant::now(),
                checked_at: Utc::now(),
                error,
            });
        }
        let proven = state.proven;
        let (checked_at, error) = match &state.last {
            Some(p) => (p.checked_at, p.error.clone()),
            None => (Utc::now(), None),
        };
        drop(state);
        // Ready when the last check passed, or when it failed for a transient
        // reason (timeout, 5xx, 429) after the credentials were once proven:
        // taking the instance out of rotation would not help then.
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
