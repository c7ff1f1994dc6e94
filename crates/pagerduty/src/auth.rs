//! Credentials: a REST API token or Scoped OAuth client credentials.
//!
//! OAuth access tokens are fetched from the token endpoint with
//! `grant_type=client_credentials` and scope
//! `as_account-{region}.{subdomain} <scopes>`, cached, and renewed at 80 %
//! of `expires_in` (but reused for at least 1 s, so a tiny `expires_in`
//! cannot cost a token request per call). The cache sits behind one async mutex: concurrent callers
//! that find no valid token wait for the single renewal in flight and share
//! its result. After a failed fetch the manager backs off
//! (`min(30 s, time left / 4)`, at least 1 s): until then callers get the
//! still-valid token, or the last OAuth error at once, without contacting
//! the token endpoint again. That error says when the back-off ends: a call
//! allowed to retry (idempotent, attempts and deadline left) waits until
//! then and tries again, so a token endpoint that failed once (a 503 on a
//! cold start) does not fail the call, and every caller that waited shares
//! the one fetch made when the back-off ends. A 401 on a REST call invalidates the token it used (only if
//! no other caller has renewed it already), so a burst of 401s still causes
//! one renewal.

use std::fmt;
use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use tokio::time::Instant;
use tracing::Instrument;
use url::Url;

use crate::client::{CallObserver, CallRecord, Region};
use crate::error::{Error, OAuthError, Result, TransportError};

/// How the client authenticates to the REST API.
#[derive(Clone)]
pub enum Credentials {
    /// A REST API key (account or user): `Authorization: Token token=…`.
    ApiToken(SecretString),
    /// Scoped OAuth client credentials (an app token): `Authorization: Bearer …`.
    OAuth(OAuthCredentials),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::ApiToken(_) => f.write_str("ApiToken([REDACTED])"),
            Credentials::OAuth(o) => f.debug_tuple("OAuth").field(o).finish(),
        }
    }
}

/// Scoped OAuth client credentials of a PagerDuty private app.
#[derive(Clone)]
pub struct OAuthCredentials {
    /// The app's client id (not a secret, but identifying).
    pub client_id: String,
    /// The app's client secret.
    pub client_secret: SecretString,
    /// The account subdomain (`acme` for acme.pagerduty.com).
    pub subdomain: String,
    /// Resource scopes, e.g. `services.read`, `incidents.read`.
    pub scopes: Vec<String>,
}

impl fmt::Debug for OAuthCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[REDACTED]")
            .field("subdomain", &self.subdomain)
            .field("scopes", &self.scopes)
            .finish()
    }
}

impl OAuthCredentials {
    /// The `scope` form value: `as_account-{region}.{subdomain} <scopes…>`.
    pub fn scope_string(&self, region: Region) -> String {
        let mut s = format!("as_account-{region}.{}", self.subdomain);
        for scope in &self.scopes {
            s.push(' ');
            s.push_str(scope);
        }
        s
    }
}

/// Which kind of credential the client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// REST API token.
    ApiToken,
    /// Scoped OAuth app token.
    Oauth,
}

/// Credential health for readiness probes. Never contains a secret.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenHealth {
    /// The kind of credential.
    pub kind: TokenKind,
    /// OAuth: a token is held and not expired. API token: no 401 since the last success.
    pub valid: bool,
    /// OAuth: when the current token expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// OAuth: the scopes actually granted (may be narrower than requested).
    pub granted_scope: Option<String>,
    /// The last authentication error, if the last attempt failed.
    pub last_error: Option<String>,
}

#[derive(Clone)]
struct CachedToken {
    token: SecretString,
    generation: u64,
    renew_at: Instant,
    expires_at: Instant,
    expires_at_utc: DateTime<Utc>,
    scope: Option<String>,
}

/// What the OAuth manager remembers between calls (behind its async mutex).
#[derive(Default)]
struct TokenState {
    token: Option<CachedToken>,
    /// After a failed fetch: no new fetch before this instant.
    retry_not_before: Option<Instant>,
    /// The error of the last failed fetch (cleared on success).
    last_failure: Option<OAuthError>,
}

impl TokenState {
    /// The cached token if it can still be used after a failed renewal: not
    /// expired for at least 5 s, and the failure was the endpoint being down.
    fn usable_after(&self, e: &OAuthError, now: Instant) -> Option<CachedToken> {
        self.token
            .as_ref()
            .filter(|t| now + Duration::from_secs(5) < t.expires_at)
            .filter(|_| matches!(e, OAuthError::Unreachable(_)))
            .cloned()
    }
}

/// Back-off after a failed token fetch.
const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// `expires_in` values above this are clamped (no `Instant` overflow).
const MAX_EXPIRES_IN: Duration = Duration::from_secs(86_400);
/// A token is reused for at least this long, whatever its `expires_in`
/// (`0` would otherwise mean one token request per REST call). If
/// PagerDuty refuses it meanwhile, the 401 renewal gets a new one.
const MIN_TOKEN_REUSE: Duration = Duration::from_secs(1);

struct TokenResponse {
    access_token: String,
    expires_in: Option<u64>,
    scope: Option<String>,
}

impl TokenResponse {
    /// Reads a 2xx token answer. Errors name the field or the position,
    /// never a value: serde's own messages quote what they found, which may
    /// be the access token.
    fn parse(bytes: &[u8]) -> Result<Self, OAuthError> {
        let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
            let what = match e.classify() {
                serde_json::error::Category::Io => "I/O",
                serde_json::error::Category::Syntax => "JSON syntax",
                serde_json::error::Category::Data => "data",
                serde_json::error::Category::Eof => "unexpected end of input",
            };
            OAuthError::Other(format!(
                "unreadable token response: {what} error at line {} column {}",
                e.line(),
                e.column()
            ))
        })?;
        let Some(obj) = v.as_object() else {
            return Err(OAuthError::Other(
                "unreadable token response: not a JSON object".into(),
            ));
        };
        let access_token = match obj.get("access_token") {
            Some(serde_json::Value::String(t)) => t.clone(),
            None | Some(serde_json::Value::Null) => {
                return Err(OAuthError::Other(
                    "the token response has no `access_token`".into(),
                ));
            }
            Some(_) => {
                return Err(OAuthError::Other(
                    "the token response's `access_token` is not a string".into(),
                ));
            }
        };
        let expires_in = match obj.get("expires_in") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::Number(n)) => Some(
                n.as_u64()
                    .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
                    .ok_or_else(|| {
                        OAuthError::Other(
                            "the token response's `expires_in` is not a number of seconds".into(),
                        )
                    })?,
            ),
            Some(serde_json::Value::String(s)) => Some(s.trim().parse().map_err(|_| {
                OAuthError::Other(
                    "the token response's `expires_in` is not a number of seconds".into(),
                )
            })?),
            Some(_) => {
                return Err(OAuthError::Other(
                    "the token response's `expires_in` is not a number of seconds".into(),
                ));
            }
        };
        let scope = obj.get("scope").and_then(|s| s.as_str()).map(str::to_owned);
        Ok(TokenResponse {
            access_token,
            expires_in,
            scope,
        })
    }
}

/// An `Authorization` value plus the token generation it came from.
pub(crate) struct AuthValue {
    pub header: reqwest::header::HeaderValue,
    pub generation: Option<u64>,
}

/// No `Authorization` value: the error, and for a failed OAuth fetch the
/// instant its back-off ends (no new fetch is made before it).
pub(crate) struct AuthFailure {
    pub error: Error,
    pub retry_at: Option<Instant>,
}

impl From<Error> for AuthFailure {
    fn from(error: Error) -> Self {
        AuthFailure {
            error,
            retry_at: None,
        }
    }
}

pub(crate) enum Auth {
    ApiToken {
        token: SecretString,
        last_error: StdMutex<Option<String>>,
    },
    OAuth(Box<OAuthManager>),
}

impl Auth {
    pub(crate) fn new(credentials: Credentials, region: Region, token_url: Url) -> Self {
        match credentials {
            Credentials::ApiToken(token) => Auth::ApiToken {
                token,
                last_error: StdMutex::new(None),
            },
            Credentials::OAuth(creds) => Auth::OAuth(Box::new(OAuthManager {
                scope: creds.scope_string(region),
                creds,
                token_url,
                cache: tokio::sync::Mutex::new(TokenState::default()),
                last_error: StdMutex::new(None),
                generation: AtomicU64::new(0),
            })),
        }
    }

    pub(crate) fn is_oauth(&self) -> bool {
        matches!(self, Auth::OAuth(_))
    }

    pub(crate) async fn value(
        &self,
        http: &reqwest::Client,
        observer: Option<&dyn CallObserver>,
    ) -> std::result::Result<AuthValue, AuthFailure> {
        match self {
            Auth::ApiToken { token, .. } => Ok(AuthValue {
                header: sensitive(&format!("Token token={}", token.expose_secret()))?,
                generation: None,
            }),
            Auth::OAuth(m) => {
                let t = m.token(http, observer).await?;
                Ok(AuthValue {
                    header: sensitive(&format!("Bearer {}", t.token.expose_secret()))?,
                    generation: Some(t.generation),
                })
            }
        }
    }

    /// Called after a 401.
    pub(crate) async fn on_unauthorized(&self, generation: Option<u64>) {
        match self {
            Auth::ApiToken { last_error, .. } => {
                *lock(last_error) = Some("PagerDuty answered 401 to the API token".into());
            }
            Auth::OAuth(m) => {
                if let Some(g) = generation {
                    m.invalidate(g).await;
                }
            }
        }
    }

    /// Called after any non-401 answer from the REST API.
    pub(crate) fn on_authorized(&self) {
        if let Auth::ApiToken { last_error, .. } = self {
            let mut e = lock(last_error);
            if e.is_some() {
                *e = None;
            }
        }
    }

    pub(crate) async fn health(
        &self,
        http: &reqwest::Client,
        observer: Option<&dyn CallObserver>,
    ) -> TokenHealth {
        match self {
            Auth::ApiToken { last_error, .. } => {
                let last_error = lock(last_error).clone();
                TokenHealth {
                    kind: TokenKind::ApiToken,
                    valid: last_error.is_none(),
                    expires_at: None,
                    granted_scope: None,
                    last_error,
                }
            }
            Auth::OAuth(m) => {
                let r = m.token(http, observer).await.map_err(|f| f.error);
                let last_error = lock(&m.last_error).clone();
                match r {
                    Ok(t) => TokenHealth {
                        kind: TokenKind::Oauth,
                        valid: true,
                        expires_at: Some(t.expires_at_utc),
                        granted_scope: t.scope,
                        last_error,
                    },
                    Err(e) => TokenHealth {
                        kind: TokenKind::Oauth,
                        valid: false,
                        expires_at: None,
                        granted_scope: None,
                        last_error: last_error.or_else(|| Some(e.to_string())),
                    },
                }
            }
        }
    }
}

fn lock<T>(m: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn sensitive(v: &str) -> Result<reqwest::header::HeaderValue> {
    let mut h = reqwest::header::HeaderValue::from_str(v).map_err(|_| Error::Config {
        field: "credentials".into(),
        message: "the token contains characters not allowed in an HTTP header".into(),
    })?;
    h.set_sensitive(true);
    Ok(h)
}

/// The `endpoint` reported for token requests (spans and [`CallRecord`]s).
pub const TOKEN_ENDPOINT: &str = "/oauth/token";

pub(crate) struct OAuthManager {
    creds: OAuthCredentials,
    scope: String,
    token_url: Url,
    cache: tokio::sync::Mutex<TokenState>,
    last_error: StdMutex<Option<String>>,
    generation: AtomicU64,
}

impl OAuthManager {
    async fn token(
        &self,
        http: &reqwest::Client,
        observer: Option<&dyn CallObserver>,
    ) -> std::result::Result<CachedToken, AuthFailure> {
        // Holding the async mutex across the fetch is the point: every caller
        // that arrives during a renewal waits for it and reuses its token.
        let mut state = self.cache.lock().await;
        let now = Instant::now();
        if let Some(t) = state.token.as_ref()
            && now < t.renew_at
        {
            return Ok(t.clone());
        }
        // A fetch failed recently: answer from memory until the back-off ends,
        // so callers do not each wait for the token endpoint in turn.
        if let (Some(not_before), Some(e)) = (state.retry_not_before, state.last_failure.as_ref())
            && now < not_before
        {
            return match state.usable_after(e, now) {
                Some(t) => Ok(t),
                None => Err(AuthFailure {
                    error: Error::OAuth(e.clone()),
                    retry_at: Some(not_before),
                }),
            };
        }
        match self.fetch(http, observer).await {
            Ok(t) => {
                *lock(&self.last_error) = None;
                state.token = Some(t.clone());
                state.retry_not_before = None;
                state.last_failure = None;
                Ok(t)
            }
            Err(e) => {
                *lock(&self.last_error) = Some(e.to_string());
                let now = Instant::now();
                let left = state
                    .token
                    .as_ref()
                    .map(|t| t.expires_at.saturating_duration_since(now))
                    .unwrap_or_default();
                let backoff = (left / 4).clamp(RETRY_MIN, RETRY_MAX);
                state.retry_not_before = Some(now + backoff);
                state.last_failure = Some(e.clone());
                // A token that is past its renewal point but not expired is
                // still usable while the token endpoint is down.
                if let Some(t) = state.usable_after(&e, now) {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "PagerDuty OAuth renewal failed; using the current token until it expires");
                    return Ok(t);
                }
                Err(AuthFailure {
                    error: Error::OAuth(e),
                    retry_at: Some(now + backoff),
                })
            }
        }
    }

    async fn invalidate(&self, generation: u64) {
        let mut state = self.cache.lock().await;
        if state
            .token
            .as_ref()
            .is_some_and(|t| t.generation == generation)
        {
            state.token = None;
        }
    }

    async fn fetch(
        &self,
        http: &reqwest::Client,
        observer: Option<&dyn CallObserver>,
    ) -> Result<CachedToken, OAuthError> {
        let started = Instant::now();
        let span = tracing::debug_span!(
            "pagerduty.oauth_token",
            method = "POST",
            endpoint = TOKEN_ENDPOINT,
            status = tracing::field::Empty,
            elapsed_ms = tracing::field::Empty
        );
        let observe = |status: Option<u16>| {
            if let Some(o) = observer {
                o.on_call(&CallRecord {
                    method: "POST",
                    endpoint: TOKEN_ENDPOINT,
                    status,
                    attempt: 1,
                    elapsed: started.elapsed(),
                });
            }
        };
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.creds.client_id.as_str()),
            ("client_secret", self.creds.client_secret.expose_secret()),
            ("scope", self.scope.as_str()),
        ];
        let resp = http
            .post(self.token_url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .instrument(span.clone())
            .await
            .map_err(|e| {
                observe(None);
                OAuthError::Unreachable(transport_error(e))
            })?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| {
            observe(None);
            OAuthError::Unreachable(transport_error(e))
        })?;
        observe(Some(status));
        span.record("status", status);
        span.record("elapsed_ms", started.elapsed().as_millis() as u64);
        if (200..300).contains(&status) {
            let t = TokenResponse::parse(&bytes)?;
            if t.access_token.is_empty() {
                return Err(OAuthError::Other(
                    "the token response has an empty access_token".into(),
                ));
            }
            let expires_in = Duration::from_secs(t.expires_in.unwrap_or(3600)).min(MAX_EXPIRES_IN);
            let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::debug!(
                generation,
                expires_in_s = expires_in.as_secs(),
                "PagerDuty OAuth token obtained"
            );
            return Ok(CachedToken {
                token: SecretString::from(t.access_token),
                generation,
                renew_at: started + expires_in.mul_f64(0.8).max(MIN_TOKEN_REUSE),
                expires_at: started + expires_in,
                expires_at_utc: Utc::now()
                    + chrono::Duration::from_std(expires_in).unwrap_or(chrono::Duration::zero()),
                scope: t.scope,
            });
        }
        Err(classify_token_error(status, &bytes))
    }
}

fn transport_error(e: reqwest::Error) -> TransportError {
    if e.is_timeout() {
        return TransportError::with_message("timed out", e);
    }
    TransportError::from_reqwest(e)
}

fn classify_token_error(status: u16, bytes: &[u8]) -> OAuthError {
    let v: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
    let code = v.get("error").and_then(|e| e.as_str()).unwrap_or("");
    let desc = v
        .get("error_description")
        .and_then(|e| e.as_str())
        .unwrap_or("");
    let detail = match (code.is_empty(), desc.is_empty()) {
        (false, false) => format!("{code}: {desc} (HTTP {status})"),
        (false, true) => format!("{code} (HTTP {status})"),
        (true, false) => format!("{desc} (HTTP {status})"),
        (true, true) => format!("HTTP {status}"),
    };
    if status >= 500 {
        return OAuthError::Unreachable(TransportError::new(detail));
    }
    if code == "invalid_scope" || desc.to_ascii_lowercase().contains("scope") {
        return OAuthError::InvalidScope(detail);
    }
    if code == "invalid_client" || code == "unauthorized_client" || status == 401 {
        return OAuthError::InvalidClient(detail);
    }
    OAuthError::Other(detail)
}
