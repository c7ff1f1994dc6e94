//! Typed async client for PagerDuty's REST API v2 and Events API v2.
//!
//! ```no_run
//! use pagerduty::{Client, Credentials, ListIncidents, IncidentStatus, ServiceInclude};
//! use secrecy::SecretString;
//!
//! # async fn demo() -> pagerduty::Result<()> {
//! let pd = Client::builder(Credentials::ApiToken(SecretString::from("y_NbAkKc66ryYTWUXYEu")))
//!     .region(pagerduty::Region::Eu)
//!     .build()?;
//! let service = pd
//!     .get_service("PIJ90N7", &[ServiceInclude::EscalationPolicies, ServiceInclude::Integrations])
//!     .await?;
//! let open = pd
//!     .list_all_incidents(&ListIncidents {
//!         service_ids: vec![service.id.clone()],
//!         statuses: vec![IncidentStatus::Triggered, IncidentStatus::Acknowledged],
//!         date_range_all: true,
//!         ..Default::default()
//!     })
//!     .await?;
//! println!("{} has {} open incidents", service.name, open.len());
//! # Ok(())
//! # }
//! ```
//!
//! Scoped OAuth and the Events API:
//!
//! ```no_run
//! use std::time::Duration;
//! use pagerduty::{Client, Credentials, Event, EventPayload, OAuthCredentials, RetryPolicy, Severity};
//!
//! # async fn demo(secret: pagerduty::SecretString) -> pagerduty::Result<()> {
//! let pd = Client::builder(Credentials::OAuth(OAuthCredentials {
//!     client_id: "my-app-client-id".into(),
//!     client_secret: secret,
//!     subdomain: "acme".into(),
//!     scopes: vec!["services.read".into(), "incidents.read".into(), "oncalls.read".into()],
//! }))
//! .request_timeout(Duration::from_secs(5))
//! .retry_policy(RetryPolicy { max_attempts: 4, ..Default::default() })
//! .rate_limit_per_minute(Some(900))
//! .build()?;
//! let ack = pd
//!     .events()
//!     .enqueue(&Event::trigger(
//!         "R0123456789abcdef0123456789abcde",
//!         EventPayload {
//!             summary: "Checkout latency p99 above 2s".into(),
//!             source: "payments-api".into(),
//!             severity: Severity::Error,
//!             timestamp: None,
//!             component: None,
//!             group: None,
//!             class: None,
//!             custom_details: None,
//!         },
//!     ))
//!     .await?;
//! println!("dedup key {:?}", ack.dedup_key);
//! # Ok(())
//! # }
//! ```
//!
//! Delivering an event within a deadline, with a report of what happened
//! (was it maybe accepted anyway?) instead of an [`Error`]:
//!
//! ```no_run
//! # async fn demo(pd: pagerduty::Client, event: pagerduty::Event) {
//! use std::time::Duration;
//!
//! match pd.events().enqueue_within(&event, Duration::from_secs(8)).await {
//!     Ok(done) => println!("accepted after {} attempt(s)", done.attempts),
//!     Err(e) if e.maybe_delivered => println!("unknown ({e}): retry with the same dedup_key"),
//!     Err(e) => println!("not delivered: {e}"),
//! }
//! # }
//! ```
//!
//! # Layout
//!
//! * [`client`]: [`Client`], [`ClientBuilder`], [`CallObserver`], and the
//!   request loop every call goes through.
//! * [`region`]: [`Region`] (US or EU) and the default hosts.
//! * [`retry`]: [`RetryPolicy`], its backoff, and the retry rules written
//!   down.
//! * [`auth`]: [`Credentials`] (API token or Scoped OAuth), token caching
//!   and renewal, [`TokenHealth`].
//! * [`budget`]: [`RateBudget`], what a REST call waits for before it is
//!   sent, and its in-process default [`LocalRateBudget`] (token bucket and
//!   the account-wide pause after a 429).
//! * `api`: one module per REST resource; the calls are methods on [`Client`].
//! * [`models`]: serde models that keep unknown fields for untrimmed pass-through.
//! * [`query`]: list parameters; [`page`]: [`Page`], the 10 000 cap, and
//!   [`Paging`], which reads every page of any list call (counted,
//!   optionally concurrent).
//! * [`events`]: Events API v2 with local validation, and delivery within a
//!   time budget ([`EventsClient::enqueue_within`]).
//! * [`ids`]: validated id newtypes ([`ServiceId`], [`IncidentId`], ...) and
//!   the redacted [`IntegrationKey`].
//! * [`error`]: [`Error`], which keeps PagerDuty's error body, and
//!   [`TransportError`], which keeps the network cause.
//! * `secret` (private): the redacting key holder behind [`IntegrationKey`]
//!   and [`RoutingKey`].
//!
//! Secrets (API tokens, client secrets, access tokens, integration and
//! routing keys) never appear in `Debug`, errors or logs. Each HTTP attempt
//! is a `tracing` span `pagerduty.request` with method, path template,
//! attempt, status and elapsed time.
#![warn(missing_docs)]

mod api;
pub mod auth;
pub mod budget;
pub mod client;
pub mod error;
pub mod events;
pub mod ids;
pub mod models;
pub mod page;
pub mod query;
pub mod region;
pub mod retry;
mod secret;

pub use api::{DeliveryMethod, NewWebhookSubscription, WebhookFilter, WebhookSubscription};
pub use auth::{Credentials, OAuthCredentials, TokenHealth, TokenKind};
pub use budget::{LocalRateBudget, PermitDenied, PermitRequest, RateBudget, RateLimitHeaders};
pub use client::{CallObserver, CallRecord, Client, ClientBuilder};
pub use error::{Error, OAuthError, PdErrorBody, Result, TransportError};
pub use events::{
    ChangeEventPayload, ChangeEventRequest, Delivered, DeliveryError, DeliveryErrorKind,
    EnqueueResponse, Event, EventAction, EventLink, EventPayload, EventsClient, RoutingKey,
    Severity, ValidationError,
};
pub use ids::{
    EscalationPolicyId, IncidentId, IntegrationKey, InvalidId, ScheduleId, ServiceId, TeamId,
    UserId,
};
pub use models::*;
pub use page::{AtCap, Collected, Page, PageRequest, Pages, Paging};
pub use query::{
    IncidentMetricsQuery, ListChangeEvents, ListEscalationPolicies, ListIncidents, ListOncalls,
    ListServices, ListTeams, ListWebhookSubscriptions, ServiceInclude,
};
pub use region::Region;
pub use retry::RetryPolicy;
pub use secrecy::SecretString;
