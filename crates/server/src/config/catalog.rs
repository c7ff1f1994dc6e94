//! `backstage.catalog_*`: the Backstage catalog dutycard reads entity
//! annotations from (`GET {prefix}/catalog/entity/…`, the mapping listings,
//! entity cards). Flattened into `[backstage]`; the old `[catalog]` table is
//! refused with a message naming the new keys ([`LEGACY_TABLE_MESSAGE`]).

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::Problem;
use super::checks::{check_http_url, problem, redact_opt, secret_from_file};

/// Why a `[catalog]` table is refused.
pub const LEGACY_TABLE_MESSAGE: &str = "the [catalog] table is now part of [backstage]: use backstage.catalog_url, backstage.catalog_token (or backstage.catalog_token_file) and backstage.catalog_timeout_ms (DUTYCARD_BACKSTAGE__CATALOG_URL, ...)";

/// `backstage.catalog_*` settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CatalogSettings {
    /// The catalog API's base URL, e.g. `https://backstage.example.com/api/catalog`.
    /// Unset: no catalog (the catalog routes answer 501).
    #[serde(
        rename = "catalog_url",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub url: Option<String>,
    /// A Backstage service token (sent as `Authorization: Bearer`).
    #[serde(
        rename = "catalog_token",
        default,
        serialize_with = "redact_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub token: Option<SecretString>,
    /// A file holding that token.
    #[serde(
        rename = "catalog_token_file",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub token_file: Option<PathBuf>,
    /// Bound of one catalog call (and of one whole paged list).
    #[serde(
        rename = "catalog_timeout_ms",
        default = "default_timeout_ms",
        deserialize_with = "number_or_text"
    )]
    pub timeout_ms: u64,
}

/// A number, also as the text an environment variable gives: these keys are
/// flattened into `[backstage]`, and serde's flatten hands the value over as
/// it came, without the config crate's conversion.
fn number_or_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        Number(u64),
        Text(String),
    }
    match Given::deserialize(d)? {
        Given::Number(n) => Ok(n),
        Given::Text(t) => t.trim().parse().map_err(|_| {
            serde::de::Error::custom(format!(
                "invalid value `{t}`, expected a number of milliseconds"
            ))
        }),
    }
}

impl Default for CatalogSettings {
    fn default() -> Self {
        Self {
            url: None,
            token: None,
            token_file: None,
            timeout_ms: default_timeout_ms(),
        }
    }
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
            "backstage.catalog_token",
            &mut self.token,
            self.token_file.as_deref(),
            problems,
        );
    }

    pub(super) fn validate(&self, problems: &mut Vec<Problem>) {
        if let Some(url) = &self.url
            && let Err(why) = check_http_url(url)
        {
            problems.push(problem("backstage.catalog_url", format!("`{url}` {why}")));
        }
        if !(1..=60_000).contains(&self.timeout_ms) {
            problems.push(problem(
                "backstage.catalog_timeout_ms",
                "must be between 1 and 60000",
            ));
        }
    }
}
