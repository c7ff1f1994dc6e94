//! `[catalog]`: the Backstage catalog dutycard reads entity annotations from
//! (`GET {prefix}/catalog/entity/…`, entity cards).

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::Problem;
use super::checks::{check_http_url, problem, redact_opt, secret_from_file};

/// `[catalog]` settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct CatalogSettings {
    /// The catalog API's base URL, e.g. `https://backstage.example.com/api/catalog`.
    /// Unset: no catalog (the catalog route answers 501).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A Backstage service token (sent as `Authorization: Bearer`).
    #[serde(
        default,
        serialize_with = "redact_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub token: Option<SecretString>,
    /// A file holding that token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// Bound of one catalog call.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_timeout_ms() -> u64 {
    3000
}

impl CatalogSettings {
    /// `timeout_ms`.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    pub(super) fn read_secret_files(&mut self, problems: &mut Vec<Problem>) {
        secret_from_file(
            "catalog.token",
            &mut self.token,
            self.token_file.as_deref(),
            problems,
        );
    }

    pub(super) fn validate(&self, problems: &mut Vec<Problem>) {
        if let Some(url) = &self.url
            && let Err(why) = check_http_url(url)
        {
            problems.push(problem("catalog.url", format!("`{url}` {why}")));
        }
        if !(1..=60_000).contains(&self.timeout_ms) {
            problems.push(problem("catalog.timeout_ms", "must be between 1 and 60000"));
        }
    }
}
