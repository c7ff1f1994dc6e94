//! A faithful fake PagerDuty for tests, benchmarks and the demo.
//!
//! [`Sim::start`] serves, on a port of your choice, the parts of PagerDuty's
//! REST API v2, Scoped OAuth (client credentials), Events API v2 and v3
//! webhooks that dutycard uses, over a seeded, generated account
//! ([`AccountView`]). It checks auth and scopes like PagerDuty, paginates like
//! PagerDuty, answers with PagerDuty's error bodies and the shapes of its
//! OpenAPI description (the `schema` test checks every route against it),
//! keeps incidents consistent with enqueued events, injects faults on demand
//! ([`Faults`]) and counts requests ([`SimStats`]). It speaks only HTTP and
//! depends on none of our crates, so it catches our client's mistakes.
//!
//! # Routes
//!
//! [`ROUTES`] lists them (the templates stats and faults name); scopes are
//! PagerDuty's, any one of the listed ones grants access:
//!
//! | route | scope |
//! |---|---|
//! | `GET /services`, `/services/{id}`, `/services/{id}/change_events` | `services.read` |
//! | `PUT /services/{id}` (name, description, status, escalation policy, timeouts; publishes `service.updated`) | `services.write` |
//! | `GET /services/{id}/integrations/{integration_id}` (`include[]` services, vendors) | `services.read` |
//! | `POST /services/{id}/integrations` (Events API v2 or email; a vendor such as Backstage's `PRO19CT` gives the type; a new Events API v2 key routes events at once) | `services.write` |
//! | `GET /service_dependencies/technical_services/{id}` | `services.read` |
//! | `POST /service_dependencies/associate`, `.../disassociate` (all or nothing; no self-dependency, no cycle, 2 000 per service, 100 deep) | `services.write` |
//! | `GET /incidents`, `/incidents/{id}` | `incidents.read` |
//! | `PUT /incidents/{id}` (`From` required; status, assignments or escalation level; publishes `incident.*`) | `incidents.write` |
//! | `GET /oncalls` | `oncalls.read` |
//! | `GET /escalation_policies`, `/escalation_policies/{id}` | `escalation_policies.read` |
//! | `GET /change_events` | `change_events.read` |
//! | `GET /teams`, `/teams/{id}` | `teams.read` |
//! | `GET /users/{id}` | `users.read` |
//! | `GET /schedules/{id}` | `schedules.read` |
//! | `GET /abilities` | `abilities.read` |
//! | `GET /standards/scores/{resource_type}`, `.../{id}` | `standards.read` |
//! | `POST /analytics/metrics/incidents/services` (every `AnalyticsIncidentMetrics` field, derived from the incidents) | `analytics.read` or `analytics.write` |
//! | `GET /webhook_subscriptions`, `/webhook_subscriptions/{id}` | `webhook_subscriptions.read` |
//! | `POST /webhook_subscriptions`, `DELETE /webhook_subscriptions/{id}`, `POST .../{id}/ping`, `POST .../{id}/enable` | `webhook_subscriptions.write` |
//! | `POST /oauth/token`, `POST /v2/enqueue`, `POST /v2/change/enqueue` | none (no REST auth) |
//!
//! # Webhooks
//!
//! A subscription (`http_delivery_method` URL, `filter` account, service or
//! team, `events`) gets a secret, shown once in the create answer. Events API
//! v2 changes (an incident triggered, acknowledged, resolved) and REST
//! updates (`PUT /incidents/{id}`: acknowledged, unacknowledged, resolved,
//! reopened, reassigned, escalated) produce `incident.*` events,
//! `PUT /services/{id}` `service.updated`, the ping route `pagey.ping`
//! (see [`EVENT_TYPES`]); each is delivered to
//! every matching subscription from a background task, signed
//! (`X-PagerDuty-Signature: v1=<hex HMAC-SHA256 of the body>`) with
//! PagerDuty's headers, retried on no answer, 429 and 5xx with doubling
//! waits, dropped on other statuses; three drops in a row disable the
//! subscription until `POST .../enable`. [`WebhookConfig`] sets the timeout
//! and the (compressed) retry schedule. The simulator has no route that
//! creates or deletes services, so `service.created` and `.deleted` are
//! never sent.
//!
//! # Admin routes (not counted, no auth)
//!
//! `GET /__sim/stats` ([`SimStats`]), `POST /__sim/reset` (zero the
//! counters), `GET`/`POST /__sim/faults` ([`Faults`]), `GET /__sim/account`
//! (counts and the services' routing keys, for the demo) and
//! `GET /__sim/webhooks` ([`WebhookStats`]: every subscription's state and
//! every webhook's attempts; [`SimHandle::wait_for_webhooks`] waits on it).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let sim = sim::Sim::start(sim::SimConfig::default()).await?;
//! println!("PagerDuty at {}", sim.base_url());
//! sim.shutdown().await;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod account;
pub mod cli;
mod config;
mod events;
mod faults;
mod http;
mod oauth;
mod render;
mod rest;
mod server;
mod stats;
mod webhooks;

use actix_web::{App, HttpServer, web};
use chrono::{DateTime, Utc};

pub use account::AccountView;
pub use config::{
    DEFAULT_API_TOKEN, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SimConfig, SimOAuthClient,
    SimToken, WebhookConfig,
};
pub use faults::{FaultSpec, Faults};
pub use stats::{RouteStat, STATUS_NO_ANSWER, SimStats};
pub use webhooks::{
    DeliveryAttempt, DeliveryState, EVENT_TYPES, WebhookDelivery, WebhookStats,
    WebhookSubscriptionState,
};

/// Every route the simulator serves, as `(method, template)`: the
/// templates [`SimStats`] rows and `per_route` faults name.
pub const ROUTES: &[(&str, &str)] = rest::Route::TEMPLATES;

use server::State;

/// The simulator. See [`Sim::start`].
pub struct Sim;

impl Sim {
    /// Generates the account and starts serving on `config.host:config.port`
    /// (port 0 picks a free port) inside the caller's tokio runtime.
    ///
    /// Errors: the socket cannot be bound, or `config.faults` is invalid
    /// (`InvalidInput`, naming the field).
    pub async fn start(config: SimConfig) -> std::io::Result<SimHandle> {
        let mut faults = config.faults;
        if faults.rate_limit_per_minute.is_none() {
            faults.rate_limit_per_minute = config.rate_limit_per_minute;
        }
        faults.validate().map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("faults: {e}"))
        })?;
        let listener = std::net::TcpListener::bind((config.host.as_str(), config.port))?;
        let addr = listener.local_addr()?;
        let host = if addr.ip().is_unspecified() {
            "127.0.0.1".to_owned()
        } else if addr.is_ipv6() {
            format!("[{}]", addr.ip())
        } else {
            addr.ip().to_string()
        };
        let base_url = format!("http://{host}:{}", addr.port());
        let clock_base = config.now.unwrap_or_else(Utc::now);
        let (seed, services) = (config.seed, config.services);
        let account =
            tokio::task::spawn_blocking(move || AccountView::generate(seed, services, clock_base))
                .await
                .map_err(std::io::Error::other)?;
        let api_token = config
            .api_tokens
            .iter()
            .find(|t| t.scopes.is_none())
            .or(config.api_tokens.first())
            .map_or_else(|| DEFAULT_API_TOKEN.to_owned(), |t| t.token.clone());
        let oauth_client = config.oauth_clients.first().map_or_else(
            || {
                (
                    DEFAULT_CLIENT_ID.to_owned(),
                    DEFAULT_CLIENT_SECRET.to_owned(),
                )
            },
            |c| (c.client_id.clone(), c.client_secret.clone()),
        );
        let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
        // Deliveries run in the caller's runtime, beside the server.
        let webhooks = webhooks::Hub::new(
            config.webhooks,
            config.seed,
            tokio::runtime::Handle::current(),
            shutdown_rx.clone(),
        );
        let state = web::Data::new(State::new(
            account,
            faults,
            config.seed,
            config.api_tokens,
            config.oauth_clients,
            config.oauth_token_ttl_secs,
            base_url.clone(),
            clock_base,
            shutdown_rx,
            webhooks,
        ));
        let app_state = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .app_data(web::PayloadConfig::new(1024 * 1024))
                .default_service(web::to(server::dispatch))
        })
        .workers(config.workers.max(1))
        .disable_signals()
        .shutdown_timeout(1)
        .listen(listener)?
        .run();
        let handle = server.handle();
        let join = tokio::spawn(server);
        tracing::info!(%base_url, services, seed, "PagerDuty simulator started");
        Ok(SimHandle {
            state,
            handle,
            join: Some(join),
            shutdown_tx,
            base_url,
            api_token,
            oauth_client,
        })
    }
}

/// A running simulator: its URLs, credentials, counters and controls.
pub struct SimHandle {
    state: web::Data<State>,
    handle: actix_web::dev::ServerHandle,
    join: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    shutdown_tx: tokio::sync::watch::Sender<bool>,
    base_url: String,
    api_token: String,
    oauth_client: (String, String),
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl SimHandle {
    /// REST base, e.g. `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// Events API base: `base_url() + "/v2"`.
    pub fn events_base_url(&self) -> String {
        format!("{}/v2", self.base_url)
    }

    /// OAuth token endpoint: `base_url() + "/oauth/token"`.
    pub fn oauth_token_url(&self) -> String {
        format!("{}/oauth/token", self.base_url)
    }

    /// A REST API token that works (with all scopes unless every configured
    /// token is scoped).
    pub fn api_token(&self) -> String {
        self.api_token.clone()
    }

    /// `(client_id, client_secret)` of a working OAuth client.
    pub fn oauth_client(&self) -> (String, String) {
        self.oauth_client.clone()
    }

    /// The simulator's clock (the configured `now` advancing in real time).
    pub fn now(&self) -> DateTime<Utc> {
        self.state.now()
    }

    /// A snapshot of the request counters.
    pub fn stats(&self) -> SimStats {
        self.state.stats.snapshot()
    }

    /// Zeroes the request counters.
    pub fn reset_stats(&self) {
        self.state.stats.reset();
    }

    /// Replaces the faults in force (counters like `fail_next` start over),
    /// including the rate limit: `rate_limit_per_minute: None` turns it off.
    pub fn set_faults(&self, faults: Faults) {
        self.state.set_faults(faults);
    }

    /// The faults in force, with the counters left.
    pub fn faults(&self) -> Faults {
        self.state.get_faults()
    }

    /// Removes every fault and the rate limit.
    pub fn clear_faults(&self) {
        self.state.set_faults(Faults::default());
    }

    /// Every webhook subscription and webhook delivery (as
    /// `GET /__sim/webhooks` reports them).
    pub fn webhooks(&self) -> WebhookStats {
        self.state.webhooks.stats()
    }

    /// Waits until `done` holds for [`SimHandle::webhooks`], re-checking on
    /// every delivery change (no polling); `Err` with the last state when
    /// `timeout` passes first.
    pub async fn wait_for_webhooks(
        &self,
        timeout: std::time::Duration,
        done: impl Fn(&WebhookStats) -> bool,
    ) -> Result<WebhookStats, WebhookStats> {
        let mut changes = self.state.webhooks.watch();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            changes.borrow_and_update();
            let stats = self.webhooks();
            if done(&stats) {
                return Ok(stats);
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                _ => return Err(self.webhooks()),
            }
        }
    }

    /// A copy of the account as it is now (including incidents opened or
    /// changed by events and change events received).
    pub fn account(&self) -> AccountView {
        self.state.read_account().clone()
    }

    /// Stops serving and waits for it: held requests are released,
    /// connections closed. Dropping the handle also stops the simulator,
    /// without waiting.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown_tx.send(true);
        self.handle.stop(false).await;
        if let Some(join) = self.join.take() {
            let _ = join.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        let _ = self.shutdown_tx.send(true);
        // `stop` sends the command at once; the returned future only waits.
        drop(self.handle.stop(false));
    }
}
