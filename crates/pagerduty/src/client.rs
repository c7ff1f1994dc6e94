//! The [`Client`], its builder, and the request core (auth, rate budget,
//! retries, tracing, call observation).
//!
//! Every call goes through one loop, bounded by the [`RetryPolicy`] (the
//! policy is written down in [`crate::retry`]); REST attempts first take a
//! permit of the client's [`RateBudget`] (see [`crate::budget`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use tokio::time::Instant;
use tracing::Instrument;
use url::Url;

use crate::auth::{Auth, AuthFailure, Credentials, TokenHealth};
use crate::budget::{LocalRateBudget, PermitRequest, RateBudget, RateLimitHeaders, header_seconds};
use crate::error::{Error, OAuthError, Result};
use crate::events::EventsClient;
pub use crate::region::{
    EU_API_BASE_URL, EU_EVENTS_BASE_URL, OAUTH_TOKEN_URL, Region, US_API_BASE_URL,
    US_EVENTS_BASE_URL,
};
pub use crate::retry::RetryPolicy;

type Bytes = Vec<u8>;

/// The REST `Accept` header that selects API version 2.
pub const ACCEPT_V2: &str = "application/vnd.pagerduty+json;version=2";

/// Sees every HTTP attempt the client makes (for metrics): REST and Events
/// attempts, and OAuth token requests (endpoint `/oauth/token`).
pub trait CallObserver: Send + Sync + 'static {
    /// Called once per attempt, after the response body was read or the attempt failed.
    fn on_call(&self, record: &CallRecord);
}

/// One HTTP attempt, as reported to a [`CallObserver`]. Holds no secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// `GET`, `POST`.
    pub method: &'static str,
    /// The path template, e.g. `/services/{id}` (never the real ids or query).
    pub endpoint: &'static str,
    /// HTTP status; `None` for a transport error or timeout.
    pub status: Option<u16>,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// Time from send to the end of the body.
    pub elapsed: Duration,
}

/// Builds a [`Client`]; see [`Client::builder`].
#[must_use]
pub struct ClientBuilder {
    credentials: Credentials,
    region: Region,
    api_base_url: Option<String>,
    events_base_url: Option<String>,
    oauth_token_url: Option<String>,
    connect_timeout: Duration,
    request_timeout: Duration,
    retry: RetryPolicy,
    rate_limit_per_minute: Option<u32>,
    rate_budget: Option<Arc<dyn RateBudget>>,
    observer: Option<Arc<dyn CallObserver>>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("credentials", &self.credentials)
            .field("region", &self.region)
            .field("api_base_url", &self.api_base_url)
            .field("events_base_url", &self.events_base_url)
            .field("oauth_token_url", &self.oauth_token_url)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("retry", &self.retry)
            .field("rate_limit_per_minute", &self.rate_limit_per_minute)
            .field("rate_budget", &self.rate_budget.as_ref().map(|_| "custom"))
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// The account's region; picks the default REST and Events hosts.
    pub fn region(mut self, region: Region) -> Self {
        self.region = region;
        self
    }
    /// REST base URL, e.g. a simulator at `http://127.0.0.1:PORT`.
    pub fn api_base_url(mut self, url: impl AsRef<str>) -> Self {
        self.api_base_url = Some(url.as_ref().to_string());
        self
    }
    /// Events API base URL, including `/v2` (e.g. `http://127.0.0.1:PORT/v2`).
    pub fn events_base_url(mut self, url: impl AsRef<str>) -> Self {
        self.events_base_url = Some(url.as_ref().to_string());
        self
    }
    /// Full URL of the OAuth token endpoint.
    pub fn oauth_token_url(mut self, url: impl AsRef<str>) -> Self {
        self.oauth_token_url = Some(url.as_ref().to_string());
        self
    }
    /// TCP/TLS connect timeout (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
    /// Timeout of one attempt, body included (default 10 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }
    /// Retry bounds (default [`RetryPolicy::default`]).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }
    /// Client-side token bucket: at most `n` REST API requests per minute,
    /// with bursts of up to `n/60` (at least 1). Callers over the rate wait
    /// instead of earning a 429, but never past the retry policy's
    /// deadline: a call that would, fails at once with
    /// [`Error::RateLimited`] without being sent. `None` (the default)
    /// turns it off.
    ///
    /// Events API enqueues and OAuth token requests never wait in this
    /// bucket: PagerDuty's per-account limit (960/min) counts REST calls
    /// only, and a page must not queue behind card reads.
    ///
    /// This is the client's default [`RateBudget`], a [`LocalRateBudget`];
    /// see [`ClientBuilder::rate_budget`] to share one budget between
    /// replicas.
    pub fn rate_limit_per_minute(mut self, n: Option<u32>) -> Self {
        self.rate_limit_per_minute = n;
        self
    }
    /// Replaces the client's in-process [`LocalRateBudget`] (the token
    /// bucket of [`ClientBuilder::rate_limit_per_minute`] and the
    /// account-wide pause after a 429) with `budget`, e.g. one shared by
    /// every replica through Redis. Every REST attempt then waits for its
    /// permit, and every 429 and `ratelimit-*` header is reported to it;
    /// see [`RateBudget`] for what it must guarantee. Cannot be combined
    /// with `rate_limit_per_minute` ([`Error::Config`] from
    /// [`build`](ClientBuilder::build)): give the rate to the budget.
    pub fn rate_budget(mut self, budget: Arc<dyn RateBudget>) -> Self {
        self.rate_budget = Some(budget);
        self
    }
    /// Observer told about every HTTP attempt.
    pub fn observer(mut self, observer: Arc<dyn CallObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Validates the settings and builds the client.
    ///
    /// Fails with [`Error::Config`] naming the bad setting: a base URL that
    /// is not an absolute http(s) URL, an empty credential, a zero timeout or
    /// rate, `max_attempts == 0`, or both a rate and a rate budget.
    pub fn build(self) -> Result<Client> {
        let api_base = parse_base(
            "api_base_url",
            self.api_base_url
                .as_deref()
                .unwrap_or(self.region.api_base_url()),
        )?;
        let events_base = parse_base(
            "events_base_url",
            self.events_base_url
                .as_deref()
                .unwrap_or(self.region.events_base_url()),
        )?;
        let token_url = parse_url(
            "oauth_token_url",
            self.oauth_token_url.as_deref().unwrap_or(OAUTH_TOKEN_URL),
        )?;
        validate_credentials(&self.credentials)?;
        if self.connect_timeout.is_zero() {
            return Err(config("connect_timeout", "must be greater than zero"));
        }
        if self.request_timeout.is_zero() {
            return Err(config("request_timeout", "must be greater than zero"));
        }
        if self.retry.max_attempts == 0 {
            return Err(config("retry_policy.max_attempts", "must be at least 1"));
        }
        let budget: Arc<dyn RateBudget> = match (self.rate_budget, self.rate_limit_per_minute) {
            (None, per_minute) => Arc::new(LocalRateBudget::new(per_minute)?),
            (Some(budget), None) => budget,
            (Some(_), Some(_)) => {
                return Err(config(
                    "rate_limit_per_minute",
                    "cannot be combined with rate_budget: a supplied rate budget replaces the client's token bucket (give it the rate instead)",
                ));
            }
        };
        let http = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout)
            .user_agent(concat!("dutycard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| config("http_client", &e.to_string()))?;
        let inner = Arc::new(Inner {
            auth: Auth::new(self.credentials, self.region, token_url.clone()),
            token_url,
            http,
            region: self.region,
            api_base,
            events_base,
            request_timeout: self.request_timeout,
            retry: self.retry,
            budget,
            observer: self.observer,
        });
        Ok(Client {
            events: EventsClient::new(inner.clone()),
            inner,
        })
    }
}

fn config(field: &str, message: &str) -> Error {
    Error::Config {
        field: field.to_string(),
        message: message.to_string(),
    }
}

fn parse_url(field: &str, s: &str) -> Result<Url> {
    let url = Url::parse(s.trim()).map_err(|e| config(field, &format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() || url.host().is_none() {
        return Err(config(field, "must be an absolute http:// or https:// URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(config(field, "must not have a query or fragment"));
    }
    Ok(url)
}

fn parse_base(field: &str, s: &str) -> Result<Url> {
    let mut url = parse_url(field, s)?;
    // Normalise: no trailing slash, so path segments append cleanly.
    let path = url.path().trim_end_matches('/').to_string();
    url.set_path(&path);
    Ok(url)
}

fn validate_credentials(c: &Credentials) -> Result<()> {
    use secrecy::ExposeSecret;
    match c {
        Credentials::ApiToken(t) => {
            if t.expose_secret().trim().is_empty() {
                return Err(config("api_token", "is empty"));
            }
        }
        Credentials::OAuth(o) => {
            if o.client_id.trim().is_empty() {
                return Err(config("oauth.client_id", "is empty"));
            }
            if o.client_secret.expose_secret().trim().is_empty() {
                return Err(config("oauth.client_secret", "is empty"));
            }
            let sub = o.subdomain.trim();
            if sub.is_empty()
                || !sub
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(config(
                    "oauth.subdomain",
                    "must be the account subdomain (letters, digits, `-`), e.g. `acme` for acme.pagerduty.com",
                ));
            }
            if let Some(bad) = o
                .scopes
                .iter()
                .find(|s| s.is_empty() || s.contains(char::is_whitespace))
            {
                return Err(config(
                    "oauth.scopes",
                    &format!("scope `{bad}` is empty or contains whitespace"),
                ));
            }
        }
    }
    Ok(())
}

/// The PagerDuty client: cheap to clone (one `Arc`), safe to share.
///
/// REST calls are methods on the client (see the `api` modules); the Events
/// API is [`Client::events`].
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
    events: EventsClient,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("region", &self.inner.region)
            .field("api_base_url", &self.inner.api_base.as_str())
            .field("events_base_url", &self.inner.events_base.as_str())
            .field("oauth", &self.inner.auth.is_oauth())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Starts a builder with the given credentials (US region, default hosts).
    pub fn builder(credentials: Credentials) -> ClientBuilder {
        ClientBuilder {
            credentials,
            region: Region::Us,
            api_base_url: None,
            events_base_url: None,
            oauth_token_url: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            rate_limit_per_minute: None,
            rate_budget: None,
            observer: None,
        }
    }

    /// The Events API v2 client sharing this client's HTTP pool and policy.
    pub fn events(&self) -> &EventsClient {
        &self.events
    }

    /// The configured region.
    pub fn region(&self) -> Region {
        self.inner.region
    }

    /// The REST base URL in use, without a trailing `/`.
    pub fn api_base_url(&self) -> &str {
        self.inner.api_base.as_str().trim_end_matches('/')
    }

    /// The Events API base URL in use (ends in `/v2` by default), without a trailing `/`.
    pub fn events_base_url(&self) -> &str {
        self.inner.events_base.as_str().trim_end_matches('/')
    }

    /// The OAuth token endpoint in use (only contacted with OAuth credentials).
    pub fn oauth_token_url(&self) -> &str {
        self.inner.token_url.as_str()
    }

    /// Credential health for readiness probes, without secrets.
    ///
    /// With OAuth this obtains a token if none is cached (so it checks the
    /// token endpoint); with an API token it reports whether the last REST
    /// answer was a 401.
    pub async fn token_health(&self) -> TokenHealth {
        self.inner
            .auth
            .health(&self.inner.http, self.inner.observer.as_deref())
            .await
    }
}

/// Which host a call goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Host {
    /// REST API, with auth and the v2 `Accept` header.
    Api,
    /// Events API, no auth header (the routing key is in the body).
    Events,
}

/// One logical call (possibly several attempts).
pub(crate) struct Call<'a> {
    pub method: Method,
    pub host: Host,
    pub endpoint: &'static str,
    pub segments: &'a [&'a str],
    pub query: &'a [(String, String)],
    pub body: Option<Vec<u8>>,
    pub idempotent: bool,
    /// One attempt only (no retry of any kind): for callers that run their
    /// own retry loop under their own deadline.
    pub single_attempt: bool,
}

pub(crate) struct Inner {
    pub(crate) http: reqwest::Client,
    pub(crate) auth: Auth,
    region: Region,
    token_url: Url,
    api_base: Url,
    events_base: Url,
    request_timeout: Duration,
    pub(crate) retry: RetryPolicy,
    /// Permits for REST calls: the token bucket and the 429 pause.
    budget: Arc<dyn RateBudget>,
    observer: Option<Arc<dyn CallObserver>>,
}

enum Next {
    Done(Bytes),
    Retry(Duration, Error),
    RenewAuth(Option<u64>),
    Fail(Error),
}

impl Inner {
    fn url(&self, host: Host, segments: &[&str]) -> Url {
        let mut url = match host {
            Host::Api => self.api_base.clone(),
            Host::Events => self.events_base.clone(),
        };
        if let Ok(mut p) = url.path_segments_mut() {
            p.pop_if_empty().extend(segments);
        }
        url
    }

    /// Runs a call under the retry policy and returns the 2xx body.
    pub(crate) async fn execute(&self, call: Call<'_>) -> Result<Bytes> {
        let url = self.url(call.host, call.segments);
        let method_str = method_str(&call.method);
        let started = Instant::now();
        let policy = if call.single_attempt {
            RetryPolicy {
                max_attempts: 1,
                ..self.retry
            }
        } else {
            self.retry
        };
        let mut attempt: u32 = 0;
        let mut renewed = false;
        loop {
            attempt += 1;
            // PagerDuty's per-account rate limit applies to the REST API only;
            // an Events enqueue (a page) never queues behind card reads.
            if call.host == Host::Api {
                self.budget
                    .acquire(PermitRequest {
                        endpoint: call.endpoint,
                        deadline: started + policy.deadline,
                        resume_jitter: policy.base_delay,
                    })
                    .await?;
            }
            let mut auth_generation = None;
            let mut rb = self.http.request(call.method.clone(), url.clone());
            match call.host {
                Host::Api => {
                    match self.auth.value(&self.http, self.observer.as_deref()).await {
                        Ok(v) => {
                            auth_generation = v.generation;
                            rb = rb.header(AUTHORIZATION, v.header);
                        }
                        Err(AuthFailure {
                            error: Error::OAuth(OAuthError::Unreachable(msg)),
                            retry_at,
                        }) if call.idempotent
                            && attempt - u32::from(renewed) < policy.max_attempts =>
                        {
                            // The token manager makes no new fetch before
                            // `retry_at` (its back-off after a failed fetch):
                            // wait for it, so the retry reaches the token
                            // endpoint (shared with every caller waiting too)
                            // instead of getting the remembered error again.
                            let until_fetch = retry_at
                                .map(|t| t.saturating_duration_since(Instant::now()))
                                .unwrap_or_default();
                            let wait = policy.backoff(attempt).max(until_fetch);
                            if !self.fits(started, wait) {
                                return Err(Error::OAuth(OAuthError::Unreachable(msg)));
                            }
                            tracing::debug!(attempt, wait_ms = wait.as_millis() as u64, error = %msg, "OAuth token endpoint unreachable; retrying");
                            tokio::time::sleep(wait).await;
                            continue;
                        }
                        Err(f) => return Err(f.error),
                    }
                    rb = rb
                        .header(ACCEPT, HeaderValue::from_static(ACCEPT_V2))
                        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                }
                Host::Events => {
                    rb = rb
                        .header(ACCEPT, HeaderValue::from_static("application/json"))
                        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                }
            }
            if !call.query.is_empty() {
                rb = rb.query(call.query);
            }
            if let Some(body) = &call.body {
                rb = rb.body(body.clone());
            }
            let left = policy.deadline.saturating_sub(started.elapsed());
            rb = rb.timeout(self.request_timeout.min(left.max(Duration::from_millis(1))));

            let span = tracing::debug_span!(
                "pagerduty.request",
                method = method_str,
                endpoint = call.endpoint,
                attempt,
                status = tracing::field::Empty,
                elapsed_ms = tracing::field::Empty,
            );
            let t0 = Instant::now();
            let outcome = async {
                let resp = rb.send().await?;
                let status = resp.status().as_u16();
                let headers = resp.headers();
                if call.host == Host::Api
                    && let Some(limits) = RateLimitHeaders::from_headers(headers)
                {
                    self.budget.on_headers(&limits);
                }
                // PagerDuty documents `ratelimit-reset` (seconds); accept a
                // numeric `Retry-After` as a fallback from proxies.
                let reset = header_seconds(headers, "ratelimit-reset")
                    .or_else(|| header_seconds(headers, "retry-after"));
                let bytes = resp.bytes().await?;
                Ok::<_, reqwest::Error>((status, reset, bytes.to_vec()))
            }
            .instrument(span.clone())
            .await;
            let elapsed = t0.elapsed();
            let status = outcome.as_ref().ok().map(|(s, _, _)| *s);
            if let Some(s) = status {
                span.record("status", s);
            }
            span.record("elapsed_ms", elapsed.as_millis() as u64);
            if let Some(o) = &self.observer {
                o.on_call(&CallRecord {
                    method: method_str,
                    endpoint: call.endpoint,
                    status,
                    attempt,
                    elapsed,
                });
            }

            let next = match outcome {
                Ok((status, _, bytes)) if (200..300).contains(&status) => {
                    if call.host == Host::Api {
                        self.auth.on_authorized();
                    }
                    Next::Done(bytes)
                }
                Ok((401, _, bytes)) if call.host == Host::Api => {
                    if self.auth.is_oauth() && !renewed {
                        Next::RenewAuth(auth_generation)
                    } else {
                        self.auth.on_unauthorized(None).await;
                        Next::Fail(Error::from_status(401, &bytes, None))
                    }
                }
                Ok((429, reset, bytes)) => {
                    let err = Error::from_status(429, &bytes, reset);
                    if call.host == Host::Api
                        && let (Some(r), Some(body)) = (reset, err.body())
                    {
                        self.budget
                            .on_rate_limited(policy.rate_limit_pause(r), body);
                    }
                    Next::Retry(policy.rate_limit_wait(reset, attempt), err)
                }
                Ok((status, _, bytes)) => {
                    if call.host == Host::Api {
                        self.auth.on_authorized();
                    }
                    let err = Error::from_status(status, &bytes, None);
                    if (status >= 500 || status == 408) && call.idempotent {
                        Next::Retry(policy.backoff(attempt), err)
                    } else {
                        Next::Fail(err)
                    }
                }
                Err(e) => {
                    let err = Error::from_reqwest(e);
                    if call.idempotent {
                        Next::Retry(policy.backoff(attempt), err)
                    } else {
                        Next::Fail(err)
                    }
                }
            };
            match next {
                Next::Done(b) => return Ok(b),
                Next::Fail(e) => return Err(e),
                Next::RenewAuth(generation) => {
                    tracing::debug!(
                        endpoint = call.endpoint,
                        "401 with an OAuth token; renewing once"
                    );
                    renewed = true;
                    self.auth.on_unauthorized(generation).await;
                }
                Next::Retry(wait, err) => {
                    // The one renewal retry after a 401 does not count as an attempt.
                    let counted = attempt - u32::from(renewed);
                    if counted >= policy.max_attempts || !self.fits(started, wait) {
                        return Err(err);
                    }
                    tracing::debug!(
                        endpoint = call.endpoint,
                        attempt,
                        wait_ms = wait.as_millis() as u64,
                        error = %err,
                        "retrying PagerDuty call"
                    );
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    fn fits(&self, started: Instant, wait: Duration) -> bool {
        started.elapsed() + wait < self.retry.deadline
    }
}

fn method_str(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        _ => "OTHER",
    }
}
