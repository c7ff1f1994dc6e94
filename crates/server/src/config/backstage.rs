//! `[backstage]`: the drop-in routes of PagerDuty's Backstage backend.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::Problem;
use super::catalog::CatalogSettings;
use super::checks::{problem, redact_opt, secret_from_file};

/// The Node backend's mount point (`pluginId` `pagerduty`).
pub const DEFAULT_PREFIX: &str = "/api/pagerduty";
/// Where the legacy frontend's PagerDuty REST passthrough is served.
pub const DEFAULT_LEGACY_PREFIX: &str = "/pagerduty-rest";

/// `[backstage]` settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct BackstageSettings {
    /// Serve the Backstage routes.
    pub enabled: bool,
    /// Where they are mounted.
    pub prefix: String,
    /// How long the lists (escalation policies, teams, services) are cached.
    pub list_ttl_secs: u64,
    /// Serve the read-only PagerDuty REST passthrough for the legacy
    /// frontend (`@backstage/plugin-pagerduty` 0.6.8).
    #[serde(default = "yes")]
    pub legacy_enabled: bool,
    /// Where it is mounted (Backstage's proxy `/pagerduty` target).
    #[serde(default = "default_legacy_prefix")]
    pub legacy_prefix: String,
    /// How integration keys appear in the answers: an opaque alias that
    /// only dutycard maps back (default), the key itself, or nothing.
    #[serde(default)]
    pub integration_keys: IntegrationKeys,
    /// The secret the aliases are made with (the same on every replica).
    /// Unset: derived from each account's PagerDuty credential.
    #[serde(
        default,
        serialize_with = "redact_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub integration_key_alias_secret: Option<SecretString>,
    /// A file holding that secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_key_alias_secret_file: Option<PathBuf>,
    /// A Backstage `app-config.yaml` whose `pagerDuty:` block supplies the
    /// PagerDuty credentials and hosts (see [`super::app_config`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_config_file: Option<std::path::PathBuf>,
    /// `catalog_url`, `catalog_token(_file)`, `catalog_timeout_ms`: the
    /// Backstage catalog (see [`CatalogSettings`]).
    #[serde(flatten)]
    pub catalog: CatalogSettings,
}

impl Default for BackstageSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            prefix: DEFAULT_PREFIX.to_owned(),
            list_ttl_secs: 60,
            legacy_enabled: true,
            legacy_prefix: DEFAULT_LEGACY_PREFIX.to_owned(),
            integration_keys: IntegrationKeys::default(),
            integration_key_alias_secret: None,
            integration_key_alias_secret_file: None,
            app_config_file: None,
            catalog: CatalogSettings::default(),
        }
    }
}

fn yes() -> bool {
    true
}

fn default_legacy_prefix() -> String {
    DEFAULT_LEGACY_PREFIX.to_owned()
}

/// `backstage.integration_keys`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IntegrationKeys {
    /// An opaque alias that dutycard maps back; useless at PagerDuty.
    #[default]
    Alias,
    /// The key itself: every portal user can page the service directly.
    Raw,
    /// No key.
    Omit,
}

impl BackstageSettings {
    pub(super) fn read_secret_files(&mut self, problems: &mut Vec<Problem>) {
        secret_from_file(
            "backstage.integration_key_alias_secret",
            &mut self.integration_key_alias_secret,
            self.integration_key_alias_secret_file.as_deref(),
            problems,
        );
    }

    pub(super) fn validate(&self, problems: &mut Vec<Problem>) {
        if let Some(secret) = &self.integration_key_alias_secret
            && secrecy::ExposeSecret::expose_secret(secret).chars().count() < 16
        {
            problems.push(problem(
                "backstage.integration_key_alias_secret",
                "must be at least 16 characters long",
            ));
        }
        if let Err(why) = check_prefix(&self.prefix) {
            problems.push(problem(
                "backstage.prefix",
                format!("`{}` {why}", self.prefix),
            ));
        }
        if let Err(why) = check_prefix(&self.legacy_prefix) {
            problems.push(problem(
                "backstage.legacy_prefix",
                format!("`{}` {why}", self.legacy_prefix),
            ));
        } else if self.enabled
            && self.legacy_enabled
            && (nested(&self.prefix, &self.legacy_prefix)
                || nested(&self.legacy_prefix, &self.prefix))
        {
            problems.push(problem(
                "backstage.legacy_prefix",
                format!(
                    "`{}` overlaps backstage.prefix `{}`: give each its own path",
                    self.legacy_prefix, self.prefix
                ),
            ));
        }
        if !(1..=3600).contains(&self.list_ttl_secs) {
            problems.push(problem(
                "backstage.list_ttl_secs",
                "must be between 1 and 3600",
            ));
        }
    }
}

/// `inner` is `outer` or lies under it.
fn nested(outer: &str, inner: &str) -> bool {
    inner == outer || inner.starts_with(&format!("{outer}/"))
}

fn check_prefix(prefix: &str) -> Result<(), String> {
    if !prefix.starts_with('/') || prefix.len() < 2 || prefix.ends_with('/') {
        return Err("must start with '/', have a name and no trailing '/'".into());
    }
    if !prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.'))
        || prefix.contains("//")
    {
        return Err("may contain only letters, digits, '/', '-', '_' and '.'".into());
    }
    let first = prefix.split('/').nth(1).unwrap_or_default();
    if matches!(
        first,
        "v1" | "metrics" | "docs" | "healthz" | "readyz" | "openapi.json"
    ) {
        return Err(format!("collides with dutycard's own `/{first}` routes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_legacy_prefix_is_checked_and_apart_from_the_prefix() {
        let mut problems = Vec::new();
        BackstageSettings::default().validate(&mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        for (legacy, bad) in [
            ("/api/pagerduty", true),
            ("/api/pagerduty/rest", true),
            ("/api", true),
            ("/pd-rest", false),
            ("pd", true),
        ] {
            let settings = BackstageSettings {
                legacy_prefix: legacy.into(),
                ..BackstageSettings::default()
            };
            let mut problems = Vec::new();
            settings.validate(&mut problems);
            assert_eq!(!problems.is_empty(), bad, "{legacy}: {problems:?}");
        }
    }

    #[test]
    fn prefixes() {
        assert!(check_prefix("/api/pagerduty").is_ok());
        assert!(check_prefix("/backstage/pd-v2").is_ok());
        for bad in [
            "",
            "/",
            "api/pagerduty",
            "/api/pagerduty/",
            "/v1",
            "/v1/pd",
            "/a//b",
            "/a b",
        ] {
            assert!(check_prefix(bad).is_err(), "{bad}");
        }
    }
}
