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
mod checks;
pub mod pagerduty;
pub mod server;
pub mod trigger;

pub use self::backstage::{BackstageSettings, DEFAULT_PREFIX};
pub use self::checks::redact_values;
pub use self::pagerduty::{
    AccountSettings, ConnectionSettings, DEFAULT_OAUTH_SCOPES, LEGACY_ACCOUNT_ID, OAuthSettings,
    PagerDutySettings,
};
pub use self::server::{
    AuthMode, AuthSettings, JwtSettings, LogFormat, ServerSettings, StaticToken,
};
pub use self::trigger::{TriggerAllow, TriggerSettings};
pub(crate) use checks::problem;

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
}

impl Settings {
    /// Merge the embedded defaults with `sources`, read `*_file` secrets and
    /// validate everything.
    pub fn load(sources: &ConfigSources) -> Result<Settings, ConfigError> {
        let (mut settings, mut problems) = Self::merge(DEFAULT_TOML, sources)?;
        app_config::apply_configured(&mut settings, sources)?;
        settings.finish_with(&mut problems);
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// The demo's settings (`config/demo.toml` over the defaults), with the
    /// simulator's URLs and token filled in by the caller afterwards.
    pub fn demo_base() -> Result<Settings, ConfigError> {
        let sources = ConfigSources::isolated(DEMO_TOML, HashMap::new());
        match Self::merge(DEFAULT_TOML, &sources)? {
            (settings, problems) if problems.is_empty() => Ok(settings),
            (_, problems) => Err(ConfigError::Invalid(problems)),
        }
    }

    /// The merged settings, and a problem for every key no setting reads.
    fn merge(
        defaults: &str,
        sources: &ConfigSources,
    ) -> Result<(Settings, Vec<Problem>), ConfigError> {
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
        let load_error = |e: config::ConfigError| ConfigError::Load(redact_values(&e.to_string()));
        let merged = builder.add_source(env).build().map_err(load_error)?;
        let given: serde_json::Value = merged.clone().try_deserialize().map_err(load_error)?;
        let settings: Settings = merged.try_deserialize().map_err(load_error)?;
        let mut problems = Vec::new();
        // What the settings read, serialized back: a key the sources set that
        // is missing there was read by nobody.
        let read = serde_json::to_value(&settings).unwrap_or_default();
        unknown_keys("", &given, &read, &mut problems);
        Ok((settings, problems))
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
    }

    /// The effective settings as TOML, secrets replaced by `[redacted]`.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render settings: {e}\n"))
    }
}

/// Pushes a problem for every key of `given` (what the sources set) that
/// `read` (the deserialized settings, serialized back) lacks. Arrays of
/// tables are compared item by item; a value given as a string where the
/// settings hold a list (`a,b` from the environment) is not descended into.
fn unknown_keys(
    prefix: &str,
    given: &serde_json::Value,
    read: &serde_json::Value,
    problems: &mut Vec<Problem>,
) {
    use serde_json::Value;
    match (given, read) {
        (Value::Object(given), Value::Object(read)) => {
            for (key, value) in given {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                match read.get(key) {
                    Some(known) => unknown_keys(&path, value, known, problems),
                    None => problems.push(problem(
                        path,
                        "unknown key: no setting has this name (see config/default.toml for every key)",
                    )),
                }
            }
        }
        (Value::Array(given), Value::Array(read)) => {
            for (i, (value, known)) in given.iter().zip(read).enumerate() {
                unknown_keys(&format!("{prefix}[{i}]"), value, known, problems);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_found_at_every_depth() {
        let given = serde_json::json!({
            "server": {"port": "1", "prot": 2, "auth": {"tokens": [{"name": "a", "tokn": "x"}]}},
            "pagerduty": {"api_tokn": "x", "accounts": {"eu": {"regoin": "eu"}}},
            "extra": {}
        });
        let read = serde_json::json!({
            "server": {"port": 1, "auth": {"tokens": [{"name": "a", "token": "[redacted]"}]}},
            "pagerduty": {"accounts": {"eu": {"region": "eu"}}}
        });
        let mut problems = Vec::new();
        unknown_keys("", &given, &read, &mut problems);
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "extra",
                "pagerduty.accounts.eu.regoin",
                "pagerduty.api_tokn",
                "server.auth.tokens[0].tokn",
                "server.prot",
            ]
        );
    }

    #[test]
    fn the_defaults_are_the_cards_crates_defaults() {
        let sources = ConfigSources::isolated("", HashMap::new());
        let (settings, problems) = Settings::merge(DEFAULT_TOML, &sources).unwrap();
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
