//! How to open the store: which database, how many connections, and the
//! bounds that keep a slow or dead database from hanging a request.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

/// What [`crate::Store::open`] needs.
#[derive(Clone)]
pub struct StoreOptions {
    /// `sqlite://path/to/file.db`, `sqlite::memory:` or
    /// `postgres://user:password@host:port/db` (a secret: it may hold a
    /// password).
    pub url: SecretString,
    /// Pool size (connections).
    pub pool_size: u32,
    /// Bound of one statement (Postgres `statement_timeout`, SQLite busy
    /// timeout).
    pub statement_timeout: Duration,
    /// Bound of waiting for a pooled connection (and of connecting).
    pub acquire_timeout: Duration,
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOptions")
            .field("url", &redact_url(self.url.expose_secret()))
            .field("pool_size", &self.pool_size)
            .field("statement_timeout", &self.statement_timeout)
            .field("acquire_timeout", &self.acquire_timeout)
            .finish()
    }
}

impl StoreOptions {
    /// Defaults for `url`: 4 connections, 5 s statements, 2 s acquire.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: SecretString::from(url.into()),
            pool_size: 4,
            statement_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(2),
        }
    }

    /// The bound of one whole operation (acquire, statements, commit): past
    /// it the caller gets [`crate::StoreError::Unavailable`], never a hang.
    pub fn operation_timeout(&self) -> Duration {
        self.acquire_timeout + self.statement_timeout * 2
    }
}

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend of `url`, if it is one we speak.
    pub fn of(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// `url` with any password replaced by `redacted` (for logs, errors and
/// check-config output).
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            // Cannot fail for URLs with a host (a password implies one).
            let _ = parsed.set_password(Some("redacted"));
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        // Unparseable: show only the scheme, the rest may hold a password.
        Err(_) => match url.split_once(':') {
            Some((scheme, _)) if url.contains('@') => format!("{scheme}:[redacted]"),
            _ => url.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_and_everything_else_kept() {
        assert_eq!(
            redact_url("postgres://dutycard:s3cret@db.internal:5432/cards?sslmode=require"),
            "postgres://dutycard:redacted@db.internal:5432/cards?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://db.internal/cards"),
            "postgres://db.internal/cards"
        );
        assert_eq!(
            redact_url("sqlite://data/dutycard.db"),
            "sqlite://data/dutycard.db"
        );
        let options = StoreOptions::new("postgres://u:hunter2@h/d");
        assert!(!format!("{options:?}").contains("hunter2"));
    }

    #[test]
    fn backends_are_told_by_scheme() {
        assert_eq!(Backend::of("sqlite::memory:"), Some(Backend::Sqlite));
        assert_eq!(Backend::of("postgresql://h/d"), Some(Backend::Postgres));
        assert_eq!(Backend::of("mysql://h/d"), None);
    }
}
