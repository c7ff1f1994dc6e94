//! Settings: `config/default.toml` (embedded), then an optional file, then
//! `DUTYCARD_<SECTION>__<KEY>` environment variables; later sources win.
//!
//! Loading happens in two steps. The `config` crate merges the sources and
//! deserialises them (a wrong type fails here, naming the key). Then
//! [`Settings::load`] lists every key the sources set that no setting reads
//! (a typo never silently falls back to a default), reads the `*_file`
//! secrets and checks every value, collecting *all* problems so an operator
//! fixes them in one go.
//!
//! This module is plain data and validation, the first in the crate's
//! one-way order: it imports nothing else of the crate. Each section lives in
//! its own file ([`server`], [`pagerduty`], [`trigger`], [`backstage`]; the
//! card caches' `[cache]` is [`cards::CardsConfig`] itself, so its fields,
//! defaults and checks are written once, in the cards crate);
//! [`app_config`] reads a Backstage `app-config.yaml` into `[pagerduty]`.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub mod app_config;
pub mod backstage;
pub mod catalog;
mod checks;
pub mod live;
mod load;
pub mod pagerduty;
mod render;
pub mod server;
pub mod shared;
pub mod store;
pub mod trigger;

pub use self::backstage::{BackstageSettings, DEFAULT_PREFIX, IntegrationKeys};
pub use self::catalog::CatalogSettings;
pub use self::checks::{REDACTED, redact_values};
pub use self::live::{StreamSettings, WebhookSecrets, WebhookSettings};
pub use self::pagerduty::{
    AccountSettings, ConnectionSettings, DEFAULT_OAUTH_SCOPES, LEGACY_ACCOUNT_ID, OAuthSettings,
    PagerDutySettings,
};
pub use self::server::{
    AuthMode, AuthSettings, JwtSettings, LogFormat, ServerSettings, StaticToken,
};
pub use self::shared::SharedSettings;
pub use self::store::StoreSettings;
pub use self::trigger::{TriggerAllow, TriggerSettings};
pub(crate) use checks::{check_http_url, problem};

/// The documented defaults; every key is in this file.
pub const DEFAULT_TOML: &str = include_str!("../../../../config/default.toml");
/// The settings `dutycard demo` starts from (auth off, local simulator).
pub const DEMO_TOML: &str = include_str!("../../../../config/demo.toml");

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

/// One invalid value: the dotted key, why, and where it was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key, e.g. `pagerduty.api_base_url`.
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
    /// Where the value came from (a file's path, `the environment`), when
    /// a source set it.
    pub origin: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)?;
        // Keys of the Backstage app-config (`pagerDuty.…`) have no variable.
        let ours = [
            "server.",
            "pagerduty.",
            "cache.",
            "trigger.",
            "backstage.",
            "webhooks.",
            "streams.",
            "store.",
            "shared.",
        ]
        .iter()
        .any(|section| self.key.starts_with(section));
        let env = env_name(&self.key);
        match (&self.origin, ours) {
            (Some(origin), true) => write!(f, " (set in {origin}; environment variable {env})"),
            (Some(origin), false) => write!(f, " (in {origin})"),
            (None, true) => write!(f, " (environment variable {env})"),
            (None, false) => Ok(()),
        }
    }
}

/// The environment variable that sets `key`: `server.auth.mode` →
/// `DUTYCARD_SERVER__AUTH__MODE` (list indexes dropped: a list is set whole).
pub fn env_name(key: &str) -> String {
    let mut name = format!("{ENV_PREFIX}_");
    let key = key.split('[').next().unwrap_or(key);
    name.push_str(&key.replace('.', "__").to_ascii_uppercase());
    name
}

/// All settings. Fields mirror `config/default.toml`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub pagerduty: PagerDutySettings,
    /// `[cache]`: the card caches' TTLs and batching (`section_timeout` is
    /// not a key: 80 % of `server.request_deadline_ms`, set when the
    /// settings are finished, so a card's slow section times out inside the
    /// card before the request deadline blanks the whole answer).
    pub cache: cards::CardsConfig,
    pub trigger: TriggerSettings,
    pub backstage: BackstageSettings,
    /// `[webhooks]`: PagerDuty v3 webhooks in (secrets per account).
    #[serde(default)]
    pub webhooks: WebhookSettings,
    /// `[streams]`: card streams out (heartbeat, buffer, limits).
    #[serde(default)]
    pub streams: StreamSettings,
    /// `[store]`: entity mappings and settings (SQLite or Postgres).
    pub store: StoreSettings,
    /// The old `[catalog]` table, kept only to refuse it with a message
    /// naming the `backstage.catalog_*` keys (serialized back as given, so
    /// its keys are not also reported unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<serde_json::Value>,
    /// `[shared]`: what replicas share through Redis (off without `redis_url`).
    #[serde(default)]
    pub shared: SharedSettings,
}

impl Settings {
    /// Merge the embedded defaults with `sources`, read `*_file` secrets and
    /// validate everything. Every problem is reported at once: unknown keys,
    /// values of the wrong type (one per section at least) and invalid
    /// values, each with its environment variable and where it was set.
    pub fn load(sources: &ConfigSources) -> Result<Settings, ConfigError> {
        Self::load_layers(&[DEFAULT_TOML], sources, |_| {})
    }

    /// What `dutycard demo` runs with: `config/demo.toml` over the defaults,
    /// then `sources` (a `--config` file and `DUTYCARD_*`), then `adjust`
    /// (the simulator's URLs and token), validated.
    pub fn load_demo(
        sources: &ConfigSources,
        adjust: impl FnOnce(&mut Settings),
    ) -> Result<Settings, ConfigError> {
        Self::load_layers(&[DEFAULT_TOML, DEMO_TOML], sources, adjust)
    }

    fn load_layers(
        base: &[&str],
        sources: &ConfigSources,
        adjust: impl FnOnce(&mut Settings),
    ) -> Result<Settings, ConfigError> {
        let merged = load::Merged::build(base, sources)?;
        let (mut settings, mut problems) = match merged.settings() {
            Ok(loaded) => loaded,
            Err(mut problems) => {
                merged.annotate(&mut problems);
                return Err(ConfigError::Invalid(problems));
            }
        };
        app_config::apply_configured(&mut settings, sources)?;
        adjust(&mut settings);
        settings.finish_with(&mut problems);
        merged.annotate(&mut problems);
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// Read `*_file` secrets into their fields, then validate.
    pub fn finish(mut self) -> Result<Settings, ConfigError> {
        let mut problems = Vec::new();
        self.finish_with(&mut problems);
        if problems.is_empty() {
            Ok(self)
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    fn finish_with(&mut self, problems: &mut Vec<Problem>) {
        self.pagerduty.read_secret_files(problems);
        self.server.auth.read_tokens_file(problems);
        self.backstage.read_secret_files(problems);
        self.webhooks.read_secret_files(problems);
        self.backstage.catalog.read_secret_files(problems);
        self.validate(problems);
        // After validation, and saturating: an absurd deadline (u64::MAX) is
        // a reported problem, never an overflow.
        self.cache.section_timeout = std::time::Duration::from_millis(
            (self.server.request_deadline_ms.min(600_000) * 4 / 5).max(1),
        );
        // backstage.list_ttl_secs was validated with [backstage].
        self.cache.list_ttl = std::time::Duration::from_secs(self.backstage.list_ttl_secs);
    }

    fn validate(&self, problems: &mut Vec<Problem>) {
        self.server.validate(problems);
        self.pagerduty.validate(problems);
        for p in self.cache.problems() {
            problems.push(problem(format!("cache.{}", p.key), p.message));
        }
        self.trigger
            .validate(self.server.request_deadline_ms, problems);
        self.backstage.validate(problems);
        let accounts: Vec<String> = if self.pagerduty.accounts.is_empty() {
            vec![LEGACY_ACCOUNT_ID.to_owned()]
        } else {
            self.pagerduty.accounts.keys().cloned().collect()
        };
        self.webhooks.validate(&accounts, problems);
        self.streams.validate(problems);
        self.store.validate(problems);
        self.backstage.catalog.validate(problems);
        if self.catalog.is_some() {
            problems.push(problem("catalog", self::catalog::LEGACY_TABLE_MESSAGE));
        }
        self.shared
            .validate(self.server.request_deadline_ms, problems);
    }

    /// The effective settings as TOML that validates when fed back: secrets
    /// replaced by a placeholder (passwords inside URLs too), secrets read
    /// from a file shown only as the file, and the derived hosts of every
    /// account as comments.
    pub fn to_redacted_toml(&self) -> String {
        render::redacted_toml(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_name_their_environment_variable() {
        assert_eq!(env_name("server.auth.mode"), "DUTYCARD_SERVER__AUTH__MODE");
        assert_eq!(
            env_name("server.cors_allowed_origins[2]"),
            "DUTYCARD_SERVER__CORS_ALLOWED_ORIGINS"
        );
    }

    #[test]
    fn the_demo_keeps_its_store_in_memory() {
        // `dutycard demo` must leave no database file behind and need no
        // data directory: its layer sets an in-memory SQLite store.
        let sources = ConfigSources::isolated("", HashMap::new());
        let merged = load::Merged::build(&[DEFAULT_TOML, DEMO_TOML], &sources).unwrap();
        let (settings, problems) = merged.settings().unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(settings.store.effective_url(), "sqlite::memory:");
        // Without the demo layer it is the file under the data directory.
        let merged = load::Merged::build(&[DEFAULT_TOML], &sources).unwrap();
        let (settings, _) = merged.settings().unwrap();
        assert!(
            settings.store.effective_url().starts_with("sqlite://"),
            "{}",
            settings.store.effective_url()
        );
    }

    #[test]
    fn the_defaults_are_the_cards_crates_defaults() {
        let sources = ConfigSources::isolated("", HashMap::new());
        let merged = load::Merged::build(&[DEFAULT_TOML], &sources).unwrap();
        let (settings, problems) = merged.settings().unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        let defaults = cards::CardsConfig::default();
        assert_eq!(
            cards::CardsConfig {
                section_timeout: defaults.section_timeout,
                list_ttl: defaults.list_ttl,
                ..settings.cache
            },
            defaults,
            "config/default.toml's [cache] must show the cards crate's defaults"
        );
    }
}
