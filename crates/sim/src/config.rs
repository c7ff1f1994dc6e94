//! Start-up configuration of the simulator.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::faults::Faults;

/// How the simulator is set up: the generated account, the listening socket,
/// the accepted credentials, the initial faults and the rate limit.
#[derive(Clone)]
pub struct SimConfig {
    /// Seed of the generated account: the same seed (and `now`) gives the same account.
    pub seed: u64,
    /// Number of services to generate.
    pub services: usize,
    /// TCP port; 0 picks a free one.
    pub port: u16,
    /// Host to bind, e.g. `127.0.0.1`.
    pub host: String,
    /// actix-web worker threads (1–2 is plenty).
    pub workers: usize,
    /// Accepted REST API tokens (`Authorization: Token token=...`). Empty: any
    /// non-empty token is accepted with all scopes.
    pub api_tokens: Vec<SimToken>,
    /// Accepted OAuth clients for `POST /oauth/token`. Empty: one default
    /// client `sim-client` / `sim-secret` with every scope.
    pub oauth_clients: Vec<SimOAuthClient>,
    /// Lifetime of issued OAuth access tokens, in seconds (`expires_in`).
    pub oauth_token_ttl_secs: u64,
    /// Fixed clock base for generated data; `None` = the real current time.
    /// The simulator's clock starts there and advances in real time.
    pub now: Option<DateTime<Utc>>,
    /// Faults active from the start.
    pub faults: Faults,
    /// A real per-token (per OAuth app) limit on REST requests per minute,
    /// e.g. `Some(960)`; `None` = unlimited. The start value of
    /// [`Faults::rate_limit_per_minute`] when `faults` sets none; change it
    /// at run time with `POST /__sim/faults` or `SimHandle::set_faults`.
    pub rate_limit_per_minute: Option<u32>,
    /// How v3 webhooks are delivered.
    pub webhooks: WebhookConfig,
}

/// How the simulator delivers v3 webhooks: PagerDuty's rules, with the
/// retry schedule compressed (PagerDuty retries for up to 48 hours).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// Wait for an answer this long, then count a timeout (PagerDuty: 5 s).
    pub timeout: Duration,
    /// Attempts per webhook, the first included, before it is dropped.
    pub max_attempts: u32,
    /// Wait before the first retry; each later one waits twice as long.
    pub first_retry_after: Duration,
    /// Longest wait between two attempts.
    pub max_retry_after: Duration,
    /// Consecutive dropped webhooks after which a subscription is
    /// temporarily disabled (PagerDuty: 3).
    pub disable_after_drops: u32,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            max_attempts: 5,
            first_retry_after: Duration::from_secs(1),
            max_retry_after: Duration::from_secs(60),
            disable_after_drops: 3,
        }
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            services: 50,
            port: 0,
            host: "127.0.0.1".to_owned(),
            workers: 1,
            api_tokens: Vec::new(),
            oauth_clients: Vec::new(),
            oauth_token_ttl_secs: 3600,
            now: None,
            faults: Faults::default(),
            rate_limit_per_minute: None,
            webhooks: WebhookConfig::default(),
        }
    }
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("seed", &self.seed)
            .field("services", &self.services)
            .field("port", &self.port)
            .field("host", &self.host)
            .field("workers", &self.workers)
            .field("api_tokens", &self.api_tokens)
            .field("oauth_clients", &self.oauth_clients)
            .field("oauth_token_ttl_secs", &self.oauth_token_ttl_secs)
            .field("now", &self.now)
            .field("faults", &self.faults)
            .field("rate_limit_per_minute", &self.rate_limit_per_minute)
            .field("webhooks", &self.webhooks)
            .finish()
    }
}

/// A REST API token the simulator accepts.
#[derive(Clone)]
pub struct SimToken {
    /// The token value, sent as `Authorization: Token token=<token>`.
    pub token: String,
    /// Granted scopes (e.g. `services.read`); `None` = all scopes (a classic API key).
    pub scopes: Option<Vec<String>>,
}

impl SimToken {
    /// A token with all scopes.
    pub fn full(token: impl Into<String>) -> Self {
        Self {
            token: token.into(),
            scopes: None,
        }
    }

    /// A token limited to `scopes`.
    pub fn scoped(token: impl Into<String>, scopes: &[&str]) -> Self {
        Self {
            token: token.into(),
            scopes: Some(scopes.iter().map(|s| (*s).to_owned()).collect()),
        }
    }
}

impl std::fmt::Debug for SimToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimToken")
            .field("token", &"[redacted]")
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// An OAuth client (a PagerDuty "app") that may use the client-credentials grant.
#[derive(Clone)]
pub struct SimOAuthClient {
    /// `client_id` form field.
    pub client_id: String,
    /// `client_secret` form field.
    pub client_secret: String,
    /// Scopes this client may be granted; `None` = any scope it asks for.
    pub allowed_scopes: Option<Vec<String>>,
}

impl std::fmt::Debug for SimOAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimOAuthClient")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("allowed_scopes", &self.allowed_scopes)
            .finish()
    }
}

/// The default OAuth client id when none is configured.
pub const DEFAULT_CLIENT_ID: &str = "sim-client";
/// The default OAuth client secret when none is configured.
pub const DEFAULT_CLIENT_SECRET: &str = "sim-secret";
/// The token [`crate::SimHandle::api_token`] hands out when no token is configured.
pub const DEFAULT_API_TOKEN: &str = "sim-api-token";
