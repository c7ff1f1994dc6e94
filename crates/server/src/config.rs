//! Settings: `config/default.toml` (embedded), then an optional file, then
//! `DUTYCARD_<SECTION>__<KEY>` environment variables; later sources win.
//!
//! Loading happens in two steps. The `config` crate merges the sources and
//! deserialises them (a wrong type or an unknown key fails here, naming the
//! key). Then [`Settings::load`] reads the `*_file` secrets and checks every
//! value, collecting *all* problems so an operator fixes them in one go.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The documented defaults; every key is in this file.
pub const DEFAULT_TOML: &str = include_str!("../../../config/default.toml");
/// The settings `dutycard demo` starts from (auth off, local simulator).
pub const DEMO_TOML: &str = include_str!("../../../config/demo.toml");

/// Environment variable prefix: `DUTYCARD_SERVER__PORT` sets `server.port`.
pub const ENV_PREFIX: &str = "DUTYCARD";

/// Where settings come from, besides the embedded defaults.
#[derive(Debug, Default, Clone)]
pub struct ConfigSources {
    /// A TOML file (`--config FILE`).
    pub file: Option<PathBuf>,
    /// TOML documents applied in order after the file (used by the demo and
    /// by tests).
    pub toml: Vec<String>,
    /// Environment variables. `None` reads the process environment; tests
    /// pass a map so they never touch the process environment.
    pub env: Option<HashMap<String, String>>,
}

impl ConfigSources {
    /// The process environment plus an optional file: what `serve` uses.
    pub fn from_file(file: Option<PathBuf>) -> Self {
        Self {
            file,
            ..Self::default()
        }
    }

    /// Only the given TOML text and the given variables (never the process
    /// environment).
    pub fn isolated(toml: impl Into<String>, env: HashMap<String, String>) -> Self {
        Self {
            file: None,
            toml: vec![toml.into()],
            env: Some(env),
        }
    }
}

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The sources could not be merged or deserialised (bad TOML, wrong type,
    /// unknown key); the message names the key.
    #[error("configuration error: {0}")]
    Load(String),
    /// Values were read but some are invalid.
    #[error("{}", Problems(.0))]
    Invalid(Vec<Problem>),
}

impl ConfigError {
    /// The keys at fault (empty for a [`ConfigError::Load`] error).
    pub fn keys(&self) -> Vec<&str> {
        match self {
            ConfigError::Load(_) => Vec::new(),
            ConfigError::Invalid(problems) => problems.iter().map(|p| p.key.as_str()).collect(),
        }
    }
}

struct Problems<'a>(&'a [Problem]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration ({} problem(s)):", self.0.len())?;
        for problem in self.0 {
            write!(f, "\n  - {problem}")?;
        }
        Ok(())
    }
}

/// One invalid value: the dotted key and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key, e.g. `pagerduty.api_base_url`.
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// All settings. Fields mirror `config/default.toml`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub pagerduty: PagerDutySettings,
    pub cache: CacheSettings,
    pub trigger: TriggerSettings,
    pub backstage: crate::backstage::BackstageSettings,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub workers: usize,
    pub request_deadline_ms: u64,
    pub shutdown_timeout_secs: u64,
    pub body_limit_bytes: usize,
    #[serde(deserialize_with = "string_or_list")]
    pub cors_allowed_origins: Vec<String>,
    pub log_format: LogFormat,
    pub auth: AuthSettings,
}

impl ServerSettings {
    pub fn request_deadline(&self) -> Duration {
        Duration::from_millis(self.request_deadline_ms)
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// No default on purpose: running without auth must be a decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<AuthMode>,
    #[serde(default)]
    pub tokens: Vec<StaticToken>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_file: Option<PathBuf>,
    #[serde(default)]
    pub metrics_require_auth: bool,
    /// `mode = "jwt"`: where the signing keys are and what the tokens must say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtSettings>,
}

/// `[server.auth.jwt]`: verify callers' JWTs against a JWKS (e.g. Backstage's
/// `/api/auth/.well-known/jwks.json`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSettings {
    /// URL of the JSON Web Key Set holding the issuer's public keys.
    pub jwks_url: String,
    /// Required `iss` claim.
    pub issuer: String,
    /// Accepted `aud` values (one is enough); a token without `aud` is refused.
    #[serde(deserialize_with = "string_or_list")]
    pub audience: Vec<String>,
    /// Clock skew tolerated on `exp` / `nbf`, in seconds.
    #[serde(default = "default_jwt_leeway_secs")]
    pub leeway_secs: u64,
    /// How long fetched keys are trusted before they are fetched again.
    #[serde(default = "default_jwks_cache_secs")]
    pub jwks_cache_secs: u64,
    /// Least time between two fetches triggered by an unknown `kid`, so
    /// forged tokens cannot make us hammer the JWKS endpoint.
    #[serde(default = "default_jwks_min_refresh_secs")]
    pub jwks_min_refresh_secs: u64,
}

fn default_jwt_leeway_secs() -> u64 {
    30
}

fn default_jwks_cache_secs() -> u64 {
    3600
}

fn default_jwks_min_refresh_secs() -> u64 {
    30
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// No authentication (logged as a warning at startup).
    None,
    /// `Authorization: Bearer <token>` against configured static tokens.
    Static,
    /// `Authorization: Bearer <JWT>` verified against a JWKS
    /// (`[server.auth.jwt]`); the `sub` claim identifies the caller.
    Jwt,
}

/// A named API token for `mode = "static"`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StaticToken {
    pub name: String,
    #[serde(serialize_with = "redact")]
    pub token: SecretString,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    #[serde(default)]
    tokens: Vec<StaticToken>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDutySettings {
    pub region: pagerduty::Region,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_base_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_base_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth_token_url: Option<String>,
    #[serde(
        default,
        serialize_with = "redact_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub api_token: Option<SecretString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_token_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth: Option<OAuthSettings>,
    pub connect_timeout_ms: u64,
    pub request_timeout_ms: u64,
    pub max_attempts: u32,
    pub retry_deadline_ms: u64,
    /// 0 = no client-side limit.
    pub rate_limit_per_minute: u32,
    /// Several accounts (`[pagerduty.accounts.<id>]`); see [`crate::accounts`].
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub accounts: std::collections::BTreeMap<String, crate::accounts::AccountSettings>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(
        default,
        serialize_with = "redact_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub client_secret: Option<SecretString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subdomain: Option<String>,
    #[serde(default, deserialize_with = "string_or_list")]
    pub scopes: Vec<String>,
}

/// Card cache tuning; see `config/default.toml` for the reasons behind each
/// default.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSettings {
    pub service_ttl_secs: u64,
    pub escalation_policy_ttl_secs: u64,
    pub oncall_ttl_secs: u64,
    pub incidents_ttl_secs: u64,
    pub change_events_ttl_secs: u64,
    pub standards_ttl_secs: u64,
    pub metrics_ttl_secs: u64,
    pub integration_key_ttl_secs: u64,
    pub integration_key_miss_ttl_secs: u64,
    pub max_stale_secs: u64,
    pub max_entries: u64,
    pub batch_window_ms: u64,
    pub batch_max_size: usize,
    /// Not a key: 80 % of `server.request_deadline_ms`, set when the settings
    /// are finished, so a card's slow section times out inside the card
    /// before the request deadline blanks the whole answer.
    #[serde(skip)]
    pub section_timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Error,
    Warning,
    Info,
}

/// Which integration keys the trigger proxy accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TriggerAllow {
    /// Only keys of services in the PagerDuty account we read.
    Known,
    /// Any well-formed key.
    Any,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerSettings {
    pub client_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_url: Option<String>,
    pub default_severity: Severity,
    pub allow: TriggerAllow,
    pub deadline_ms: u64,
    pub idempotency_window_secs: u64,
    pub per_caller_per_minute: u32,
    pub per_routing_key_per_minute: u32,
}

impl Settings {
    /// Merge the embedded defaults with `sources`, read `*_file` secrets and
    /// validate everything.
    pub fn load(sources: &ConfigSources) -> Result<Settings, ConfigError> {
        let mut settings = Self::merge(DEFAULT_TOML, sources)?;
        crate::backstage::app_config::apply_configured(&mut settings, sources)?;
        settings.finish()
    }

    /// The demo's settings (`config/demo.toml` over the defaults), with the
    /// simulator's URLs and token filled in by the caller afterwards.
    pub fn demo_base() -> Result<Settings, ConfigError> {
        let sources = ConfigSources::isolated(DEMO_TOML, HashMap::new());
        Self::merge(DEFAULT_TOML, &sources)
    }

    fn merge(defaults: &str, sources: &ConfigSources) -> Result<Settings, ConfigError> {
        use config::{Config, Environment, File, FileFormat};

        let mut builder = Config::builder().add_source(File::from_str(defaults, FileFormat::Toml));
        if let Some(path) = &sources.file {
            builder = builder.add_source(File::from(path.as_path()).format(FileFormat::Toml));
        }
        for toml in &sources.toml {
            builder = builder.add_source(File::from_str(toml, FileFormat::Toml));
        }
        // No `try_parsing`: it would turn a token such as "1e5" into a float.
        // Lists given as strings are split by `string_or_list` instead.
        let env = Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("_")
            .separator("__")
            .source(sources.env.clone());
        builder
            .add_source(env)
            .build()
            .and_then(|c| c.try_deserialize::<Settings>())
            .map_err(|e| ConfigError::Load(redact_values(&e.to_string())))
    }

    /// Read `*_file` secrets into their fields, then validate.
    pub fn finish(mut self) -> Result<Settings, ConfigError> {
        let mut problems = Vec::new();
        self.read_secret_files(&mut problems);
        self.validate(&mut problems);
        // After validation, and saturating: an absurd deadline (u64::MAX) is
        // a reported problem, never an overflow.
        self.cache.section_timeout_ms =
            Some((self.server.request_deadline_ms.min(600_000) * 4 / 5).max(1));
        if problems.is_empty() {
            Ok(self)
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    fn read_secret_files(&mut self, problems: &mut Vec<Problem>) {
        let pd = &mut self.pagerduty;
        if let Some(path) = &pd.api_token_file {
            if pd.api_token.is_some() {
                problems.push(problem(
                    "pagerduty.api_token_file",
                    "set either pagerduty.api_token or pagerduty.api_token_file, not both",
                ));
            } else if let Some(secret) =
                read_secret_file("pagerduty.api_token_file", path, problems)
            {
                pd.api_token = Some(secret);
            }
        }
        if let Some(oauth) = &mut pd.oauth
            && let Some(path) = &oauth.client_secret_file
        {
            if oauth.client_secret.is_some() {
                problems.push(problem(
                    "pagerduty.oauth.client_secret_file",
                    "set either pagerduty.oauth.client_secret or pagerduty.oauth.client_secret_file, not both",
                ));
            } else if let Some(secret) =
                read_secret_file("pagerduty.oauth.client_secret_file", path, problems)
            {
                oauth.client_secret = Some(secret);
            }
        }
        crate::accounts::read_secret_files(&mut self.pagerduty.accounts, problems);
        let auth = &mut self.server.auth;
        if let Some(path) = &auth.tokens_file {
            match std::fs::read_to_string(path) {
                Ok(text) => match toml::from_str::<TokensFile>(&text) {
                    Ok(file) => auth.tokens.extend(file.tokens),
                    Err(e) => problems.push(problem(
                        "server.auth.tokens_file",
                        format!(
                            "{} is not a TOML file of [[tokens]] name/token entries: {}",
                            path.display(),
                            redact_values(e.message())
                        ),
                    )),
                },
                Err(e) => problems.push(problem(
                    "server.auth.tokens_file",
                    format!("cannot read {}: {e}", path.display()),
                )),
            }
        }
    }

    fn validate(&self, problems: &mut Vec<Problem>) {
        self.validate_server(problems);
        self.validate_pagerduty(problems);
        self.validate_cache(problems);
        self.validate_trigger(problems);
        self.backstage.validate(problems);
    }

    fn validate_server(&self, problems: &mut Vec<Problem>) {
        let s = &self.server;
        if s.host.trim().is_empty() {
            problems.push(problem("server.host", "must not be empty"));
        }
        if !(1..=64).contains(&s.workers) {
            problems.push(problem("server.workers", "must be between 1 and 64"));
        }
        if !(1..=600_000).contains(&s.request_deadline_ms) {
            problems.push(problem(
                "server.request_deadline_ms",
                "must be between 1 and 600000 (10 minutes)",
            ));
        }
        if s.shutdown_timeout_secs > 3600 {
            problems.push(problem(
                "server.shutdown_timeout_secs",
                "must be at most 3600",
            ));
        }
        if !(1024..=64 * 1024 * 1024).contains(&s.body_limit_bytes) {
            problems.push(problem(
                "server.body_limit_bytes",
                "must be between 1024 and 67108864 (64 MiB)",
            ));
        }
        for (i, origin) in s.cors_allowed_origins.iter().enumerate() {
            if let Err(why) = check_origin(origin) {
                problems.push(problem(
                    format!("server.cors_allowed_origins[{i}]"),
                    format!("`{origin}` {why}"),
                ));
            }
        }
        let auth = &s.auth;
        match auth.mode {
            None => problems.push(problem(
                "server.auth.mode",
                "must be set explicitly: \"static\" (bearer tokens), \"jwt\" (JWTs checked against a JWKS) or \"none\" (no authentication)",
            )),
            Some(AuthMode::Static) if auth.tokens.is_empty() => problems.push(problem(
                "server.auth.tokens",
                "mode \"static\" needs at least one [[server.auth.tokens]] entry (or server.auth.tokens_file)",
            )),
            Some(AuthMode::None) if auth.metrics_require_auth => problems.push(problem(
                "server.auth.metrics_require_auth",
                "needs caller authentication: server.auth.mode = \"static\" or \"jwt\" (mode \"none\" has no callers to check)",
            )),
            Some(AuthMode::Jwt) if auth.jwt.is_none() => problems.push(problem(
                "server.auth.jwt",
                "mode \"jwt\" needs a [server.auth.jwt] section (jwks_url, issuer, audience)",
            )),
            _ => {}
        }
        if let Some(jwt) = &auth.jwt {
            validate_jwt(jwt, problems);
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, token) in auth.tokens.iter().enumerate() {
            if token.name.trim().is_empty() {
                problems.push(problem(
                    format!("server.auth.tokens[{i}].name"),
                    "must not be empty",
                ));
            } else if !names.insert(token.name.as_str()) {
                problems.push(problem(
                    format!("server.auth.tokens[{i}].name"),
                    format!("`{}` is used by another token", token.name),
                ));
            }
            if token.token.expose_secret().chars().count() < 16 {
                problems.push(problem(
                    format!("server.auth.tokens[{i}].token"),
                    "must be at least 16 characters long",
                ));
            }
        }
    }

    fn validate_pagerduty(&self, problems: &mut Vec<Problem>) {
        let pd = &self.pagerduty;
        for (key, value) in [
            ("pagerduty.api_base_url", &pd.api_base_url),
            ("pagerduty.events_base_url", &pd.events_base_url),
            ("pagerduty.oauth_token_url", &pd.oauth_token_url),
        ] {
            if let Some(value) = value
                && let Err(why) = check_http_url(value)
            {
                problems.push(problem(key, format!("`{value}` {why}")));
            }
        }
        let has_token = pd.api_token.is_some() || pd.api_token_file.is_some();
        if let Some(token) = &pd.api_token
            && token.expose_secret().trim().is_empty()
        {
            problems.push(problem("pagerduty.api_token", "must not be empty"));
        }
        match (&pd.oauth, has_token) {
            _ if !pd.accounts.is_empty() => crate::accounts::validate(pd, problems),
            (None, false) => problems.push(problem(
                "pagerduty.api_token",
                "no PagerDuty credentials: set pagerduty.api_token, pagerduty.api_token_file or the [pagerduty.oauth] section",
            )),
            (Some(_), true) => problems.push(problem(
                "pagerduty.oauth",
                "both an API token and OAuth are configured: keep only one",
            )),
            (Some(oauth), false) => validate_oauth(oauth, problems),
            (None, true) => {}
        }
        if !(1..=600_000).contains(&pd.connect_timeout_ms) {
            problems.push(problem(
                "pagerduty.connect_timeout_ms",
                "must be between 1 and 600000",
            ));
        }
        if !(1..=600_000).contains(&pd.request_timeout_ms) {
            problems.push(problem(
                "pagerduty.request_timeout_ms",
                "must be between 1 and 600000",
            ));
        }
        if !(1..=10).contains(&pd.max_attempts) {
            problems.push(problem(
                "pagerduty.max_attempts",
                "must be between 1 and 10",
            ));
        }
        if !(1..=600_000).contains(&pd.retry_deadline_ms) {
            problems.push(problem(
                "pagerduty.retry_deadline_ms",
                "must be between 1 and 600000",
            ));
        }
    }

    fn validate_cache(&self, problems: &mut Vec<Problem>) {
        let c = &self.cache;
        for (key, value) in [
            ("cache.service_ttl_secs", c.service_ttl_secs),
            (
                "cache.escalation_policy_ttl_secs",
                c.escalation_policy_ttl_secs,
            ),
            ("cache.oncall_ttl_secs", c.oncall_ttl_secs),
            ("cache.incidents_ttl_secs", c.incidents_ttl_secs),
            ("cache.change_events_ttl_secs", c.change_events_ttl_secs),
            ("cache.standards_ttl_secs", c.standards_ttl_secs),
            ("cache.metrics_ttl_secs", c.metrics_ttl_secs),
            ("cache.integration_key_ttl_secs", c.integration_key_ttl_secs),
            (
                "cache.integration_key_miss_ttl_secs",
                c.integration_key_miss_ttl_secs,
            ),
        ] {
            if value == 0 {
                problems.push(problem(
                    key,
                    "a TTL of zero would call PagerDuty on every request: use at least 1",
                ));
            } else if value > 7 * 24 * 3600 {
                problems.push(problem(key, "must be at most 604800 (one week)"));
            }
        }
        if c.max_stale_secs > 7 * 24 * 3600 {
            problems.push(problem(
                "cache.max_stale_secs",
                "must be at most 604800 (one week)",
            ));
        }
        if c.max_entries == 0 {
            problems.push(problem("cache.max_entries", "must be at least 1"));
        }
        if c.batch_window_ms > 1000 {
            problems.push(problem(
                "cache.batch_window_ms",
                "must be at most 1000: it delays every cache miss",
            ));
        }
        if let Err(message) = c.cards_config().validate() {
            // The cards crate's own check; ours above normally catches first.
            if problems.iter().all(|p| !p.key.starts_with("cache.")) {
                problems.push(problem("cache", message));
            }
        }
        if !(1..=100).contains(&c.batch_max_size) {
            problems.push(problem(
                "cache.batch_max_size",
                "must be between 1 and 100 (PagerDuty's largest page)",
            ));
        }
    }

    fn validate_trigger(&self, problems: &mut Vec<Problem>) {
        let t = &self.trigger;
        if t.client_name.trim().is_empty() {
            problems.push(problem("trigger.client_name", "must not be empty"));
        }
        if let Some(url) = &t.client_url
            && let Err(why) = check_http_url(url)
        {
            problems.push(problem("trigger.client_url", format!("`{url}` {why}")));
        }
        if !(1..=600_000).contains(&t.deadline_ms) {
            problems.push(problem(
                "trigger.deadline_ms",
                "must be between 1 and 600000 (10 minutes)",
            ));
        } else if t.deadline_ms > self.server.request_deadline_ms {
            problems.push(problem(
                "trigger.deadline_ms",
                format!(
                    "{} exceeds server.request_deadline_ms ({}): the request would be cut off before the trigger's own deadline; keep trigger.deadline_ms <= server.request_deadline_ms",
                    t.deadline_ms, self.server.request_deadline_ms
                ),
            ));
        }
        for (key, value) in [
            ("trigger.idempotency_window_secs", t.idempotency_window_secs),
            (
                "trigger.per_caller_per_minute",
                u64::from(t.per_caller_per_minute),
            ),
            (
                "trigger.per_routing_key_per_minute",
                u64::from(t.per_routing_key_per_minute),
            ),
        ] {
            if value == 0 {
                problems.push(problem(key, "must be at least 1"));
            }
        }
    }

    /// The effective settings as TOML, secrets replaced by `[redacted]`.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render settings: {e}\n"))
    }
}

impl PagerDutySettings {
    /// The PagerDuty client these settings describe (call on validated
    /// settings). Every HTTP attempt is reported to `observer`.
    pub fn client(
        &self,
        observer: std::sync::Arc<dyn pagerduty::CallObserver>,
    ) -> pagerduty::Result<pagerduty::Client> {
        let credentials = match (&self.api_token, &self.oauth) {
            (Some(token), _) => pagerduty::Credentials::ApiToken(token.clone()),
            (None, Some(oauth)) => pagerduty::Credentials::OAuth(pagerduty::OAuthCredentials {
                client_id: oauth.client_id.clone().unwrap_or_default(),
                client_secret: oauth
                    .client_secret
                    .clone()
                    .unwrap_or_else(|| SecretString::from(String::new())),
                subdomain: oauth.subdomain.clone().unwrap_or_default(),
                scopes: oauth.scopes.clone(),
            }),
            (None, None) => {
                return Err(pagerduty::Error::Config {
                    field: "pagerduty.api_token".into(),
                    message: "no PagerDuty credentials".into(),
                });
            }
        };
        let mut builder = pagerduty::Client::builder(credentials)
            .region(self.region)
            .connect_timeout(Duration::from_millis(self.connect_timeout_ms))
            .request_timeout(Duration::from_millis(self.request_timeout_ms))
            .retry_policy(pagerduty::RetryPolicy {
                max_attempts: self.max_attempts,
                deadline: Duration::from_millis(self.retry_deadline_ms),
                ..pagerduty::RetryPolicy::default()
            })
            .rate_limit_per_minute(
                (self.rate_limit_per_minute > 0).then_some(self.rate_limit_per_minute),
            )
            .observer(observer);
        if let Some(url) = &self.api_base_url {
            builder = builder.api_base_url(url);
        }
        if let Some(url) = &self.events_base_url {
            builder = builder.events_base_url(url);
        }
        if let Some(url) = &self.oauth_token_url {
            builder = builder.oauth_token_url(url);
        }
        builder.build()
    }
}

impl CacheSettings {
    /// The cards crate's settings; keys not exposed here keep its defaults.
    pub fn cards_config(&self) -> cards::CardsConfig {
        let secs = Duration::from_secs;
        cards::CardsConfig {
            service_ttl: secs(self.service_ttl_secs),
            escalation_policy_ttl: secs(self.escalation_policy_ttl_secs),
            oncall_ttl: secs(self.oncall_ttl_secs),
            incidents_ttl: secs(self.incidents_ttl_secs),
            change_events_ttl: secs(self.change_events_ttl_secs),
            standards_ttl: secs(self.standards_ttl_secs),
            metrics_ttl: secs(self.metrics_ttl_secs),
            integration_key_ttl: secs(self.integration_key_ttl_secs),
            integration_key_miss_ttl: secs(self.integration_key_miss_ttl_secs),
            max_stale: secs(self.max_stale_secs),
            max_entries: self.max_entries,
            batch_window: Duration::from_millis(self.batch_window_ms),
            batch_max_size: self.batch_max_size,
            section_timeout: self.section_timeout_ms.map_or(
                cards::CardsConfig::default().section_timeout,
                Duration::from_millis,
            ),
            ..cards::CardsConfig::default()
        }
    }
}

fn validate_oauth(oauth: &OAuthSettings, problems: &mut Vec<Problem>) {
    if oauth
        .client_id
        .as_deref()
        .is_none_or(|s| s.trim().is_empty())
    {
        problems.push(problem("pagerduty.oauth.client_id", "must be set"));
    }
    if oauth
        .client_secret
        .as_ref()
        .is_none_or(|s| s.expose_secret().trim().is_empty())
        && oauth.client_secret_file.is_none()
    {
        problems.push(problem(
            "pagerduty.oauth.client_secret",
            "must be set (or pagerduty.oauth.client_secret_file)",
        ));
    }
    match oauth.subdomain.as_deref().map(str::trim) {
        None | Some("") => problems.push(problem(
            "pagerduty.oauth.subdomain",
            "must be set to your account's subdomain (https://<subdomain>.pagerduty.com)",
        )),
        Some(s) if !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') => {
            problems.push(problem(
                "pagerduty.oauth.subdomain",
                format!("`{s}` is not a subdomain (letters, digits and '-' only)"),
            ))
        }
        Some(_) => {}
    }
    if oauth.scopes.is_empty() {
        problems.push(problem(
            "pagerduty.oauth.scopes",
            "must list the scopes to request, e.g. [\"services.read\", \"incidents.read\"]",
        ));
    }
}

fn validate_jwt(jwt: &JwtSettings, problems: &mut Vec<Problem>) {
    if let Err(why) = check_http_url(&jwt.jwks_url) {
        problems.push(problem(
            "server.auth.jwt.jwks_url",
            format!("`{}` {why}", jwt.jwks_url),
        ));
    }
    if jwt.issuer.trim().is_empty() {
        problems.push(problem("server.auth.jwt.issuer", "must not be empty"));
    }
    if jwt.audience.iter().all(|a| a.trim().is_empty()) {
        problems.push(problem(
            "server.auth.jwt.audience",
            "must name at least one accepted audience, e.g. \"backstage\"",
        ));
    }
    if jwt.leeway_secs > 600 {
        problems.push(problem(
            "server.auth.jwt.leeway_secs",
            "must be at most 600",
        ));
    }
    if !(1..=7 * 24 * 3600).contains(&jwt.jwks_cache_secs) {
        problems.push(problem(
            "server.auth.jwt.jwks_cache_secs",
            "must be between 1 and 604800 (one week)",
        ));
    }
    if jwt.jwks_min_refresh_secs > 3600 {
        problems.push(problem(
            "server.auth.jwt.jwks_min_refresh_secs",
            "must be at most 3600",
        ));
    }
}

/// A load error without the values it quotes: serde names a bad value
/// (`invalid type: string "..."`) and TOML parse errors quote the offending
/// line, and either may be a secret (a token given where a list was expected,
/// a half-quoted API token). Keys, types and positions stay, so the message
/// still says what to fix.
pub fn redact_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for (i, line) in message.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        // A TOML excerpt: `12 | token = "abc` (the line number stays).
        if let Some((number, _)) = line.split_once(" | ")
            && !number.trim().is_empty()
            && number.trim().chars().all(|c| c.is_ascii_digit())
        {
            out.push_str(number);
            out.push_str(" | <redacted>");
            continue;
        }
        redact_quoted(line, &mut out);
    }
    out
}

/// Copy `line`, replacing the inside of every double-quoted string (with
/// backslash escapes, as serde's Debug-formatted values are) by `<redacted>`.
/// An unterminated quote redacts the rest of the line. Kept: a quoted file
/// path (`configuration file "..." not found`) and a lone quote character
/// in backticks (`` expected `"` ``).
fn redact_quoted(line: &str, out: &mut String) {
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        let after_backtick = out.ends_with('`');
        let after_file = out.ends_with("file ");
        out.push(c);
        if c != '"' || (after_backtick && chars.peek() == Some(&'`')) {
            continue;
        }
        if after_file {
            for c in chars.by_ref() {
                out.push(c);
                if c == '"' {
                    break;
                }
            }
            continue;
        }
        out.push_str("<redacted>");
        let mut escaped = false;
        for c in chars.by_ref() {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                out.push('"');
                break;
            }
        }
    }
}

pub(crate) fn problem(key: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        key: key.into(),
        message: message.into(),
    }
}

pub(crate) fn read_secret_file(
    key: &str,
    path: &Path,
    problems: &mut Vec<Problem>,
) -> Option<SecretString> {
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => {
            problems.push(problem(key, format!("{} is empty", path.display())));
            None
        }
        Ok(text) => Some(SecretString::from(text.trim().to_owned())),
        Err(e) => {
            problems.push(problem(key, format!("cannot read {}: {e}", path.display())));
            None
        }
    }
}

pub(crate) fn check_http_url(value: &str) -> Result<(), String> {
    let url = url::Url::parse(value).map_err(|e| format!("is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("must use http or https, not `{}`", url.scheme()));
    }
    if url.host_str().is_none() {
        return Err("has no host".into());
    }
    Ok(())
}

fn check_origin(value: &str) -> Result<(), String> {
    check_http_url(value)?;
    let url = url::Url::parse(value).map_err(|e| e.to_string())?;
    if url.path() != "/" || url.query().is_some() || value.ends_with('/') {
        return Err("must be an origin (scheme://host[:port]) with no path".into());
    }
    Ok(())
}

fn redact<S: Serializer>(_: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("[redacted]")
}

/// Serializes a secret as `[redacted]` (check-config prints the settings).
pub(crate) fn redact_opt<S: Serializer>(
    value: &Option<SecretString>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(_) => s.serialize_str("[redacted]"),
        None => s.serialize_none(),
    }
}

/// Accept a TOML list or, from an environment variable, a comma-separated
/// string.
fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        OneOrMany::Many(v) => v,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_values_hides_quoted_values_and_toml_excerpts() {
        let text = redact_values(
            "invalid type: string \"my-\\\"secret\", expected a sequence for key `server.auth.tokens`",
        );
        assert_eq!(
            text,
            "invalid type: string \"<redacted>\", expected a sequence for key `server.auth.tokens`"
        );
        let text = redact_values(
            "TOML parse error at line 3, column 13\n  |\n3 | api_token = \"abc\n  |             ^\ninvalid basic string",
        );
        assert!(!text.contains("abc"), "{text}");
        assert!(
            text.contains("line 3, column 13") && text.contains("3 | <redacted>"),
            "{text}"
        );
        let text = redact_values("unterminated \"secret-tail");
        assert_eq!(text, "unterminated \"<redacted>");
        let kept = "configuration file \"/etc/dutycard.toml\" not found; expected `\"`";
        assert_eq!(redact_values(kept), kept);
    }
}
