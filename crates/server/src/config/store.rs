//! `[store]`: where entity mappings and the admin page's settings live
//! (see the `store` crate).

use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};

use super::Problem;
use super::checks::problem;

/// The SQLite file under `data_dir` when `url` is unset.
pub const DEFAULT_DB_FILE: &str = "dutycard.db";

/// `[store]` settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct StoreSettings {
    /// `sqlite://FILE`, `sqlite::memory:` or `postgres://user:password@host/db`.
    /// Unset: the SQLite file [`DEFAULT_DB_FILE`] under `data_dir`.
    /// Shown with its password replaced.
    #[serde(
        default,
        serialize_with = "redacted_url",
        skip_serializing_if = "Option::is_none"
    )]
    pub url: Option<SecretString>,
    /// Where the default SQLite file lives (created when missing).
    pub data_dir: PathBuf,
    /// Connections in the pool.
    pub pool_size: u32,
    /// Bound of one statement (Postgres `statement_timeout`, SQLite busy
    /// timeout).
    pub statement_timeout_ms: u64,
    /// Bound of waiting for (or opening) a connection.
    pub acquire_timeout_ms: u64,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            url: None,
            data_dir: PathBuf::from("data"),
            pool_size: 4,
            statement_timeout_ms: 5000,
            acquire_timeout_ms: 2000,
        }
    }
}

fn redacted_url<S: Serializer>(value: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(url) => s.serialize_str(&store::redact_url(url.expose_secret())),
        None => s.serialize_none(),
    }
}

impl StoreSettings {
    /// The URL the store opens: `url`, or the file under `data_dir`.
    pub fn effective_url(&self) -> String {
        match &self.url {
            Some(url) => url.expose_secret().to_owned(),
            None => format!("sqlite://{}", self.data_dir.join(DEFAULT_DB_FILE).display()),
        }
    }

    /// What [`store::Store::open`] takes.
    pub fn options(&self) -> store::StoreOptions {
        let mut options = store::StoreOptions::new(self.effective_url());
        options.pool_size = self.pool_size;
        options.statement_timeout = Duration::from_millis(self.statement_timeout_ms);
        options.acquire_timeout = Duration::from_millis(self.acquire_timeout_ms);
        options
    }

    pub(super) fn validate(&self, problems: &mut Vec<Problem>) {
        if let Some(url) = &self.url
            && store::Backend::of(url.expose_secret()).is_none()
        {
            problems.push(problem(
                "store.url",
                format!(
                    "`{}` is not a store URL: use sqlite://FILE, sqlite::memory: or postgres://user:password@host:port/db",
                    store::redact_url(url.expose_secret())
                ),
            ));
        }
        if self.url.is_none() && self.data_dir.as_os_str().is_empty() {
            problems.push(problem(
                "store.data_dir",
                "must not be empty (or set store.url)",
            ));
        }
        if !(1..=200).contains(&self.pool_size) {
            problems.push(problem("store.pool_size", "must be between 1 and 200"));
        }
        for (key, value, max) in [
            (
                "store.statement_timeout_ms",
                self.statement_timeout_ms,
                600_000,
            ),
            ("store.acquire_timeout_ms", self.acquire_timeout_ms, 60_000),
        ] {
            if !(1..=max).contains(&value) {
                problems.push(problem(key, format!("must be between 1 and {max}")));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_a_file_under_the_data_directory() {
        let settings = StoreSettings::default();
        assert_eq!(settings.effective_url(), "sqlite://data/dutycard.db");
        let mut problems = Vec::new();
        settings.validate(&mut problems);
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn a_bad_url_is_named_without_its_password() {
        let settings = StoreSettings {
            url: Some(SecretString::from("mysql://u:hunter2@h/d")),
            pool_size: 0,
            ..StoreSettings::default()
        };
        let mut problems = Vec::new();
        settings.validate(&mut problems);
        let text = format!("{problems:?}");
        assert!(
            text.contains("store.url") && text.contains("store.pool_size"),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
    }
}
