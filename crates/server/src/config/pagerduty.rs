//! `[pagerduty]` and `[pagerduty.accounts.<id>]`: how to reach and
//! authenticate to each PagerDuty account.
//!
//! One [`ConnectionSettings`] describes an account's hosts and
//! credentials. `[pagerduty]` holds one (the single, legacy account) next to
//! the settings every account shares (timeouts, retries, the rate limit);
//! each `[pagerduty.accounts.<id>]` table holds one more plus `is_default`.
//! Both are read, checked and turned into a client by the same code.

use std::collections::BTreeMap;
use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::Problem;
use super::checks::{check_urls, problem, redact_opt, secret_from_file, string_or_list};

/// The id of the single account described by `[pagerduty]` alone.
pub const LEGACY_ACCOUNT_ID: &str = "default";

/// The scopes requested when `[pagerduty.oauth]` names none: what the cards,
/// the Backstage routes and `/readyz` read (the Node backend's read scopes).
pub const DEFAULT_OAUTH_SCOPES: [&str; 12] = [
    "abilities.read",
    "analytics.read",
    "change_events.read",
    "escalation_policies.read",
    "incidents.read",
    "oncalls.read",
    "schedules.read",
    "services.read",
    "standards.read",
    "teams.read",
    "users.read",
    "vendors.read",
];

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct PagerDutySettings {
    /// `us` or `eu`: the single account's region, and the default of the
    /// accounts tables.
    pub region: pagerduty::Region,
    /// The single account's hosts and credentials (unset with accounts
    /// tables configured).
    #[serde(flatten)]
    pub connection: ConnectionSettings,
    pub connect_timeout_ms: u64,
    pub request_timeout_ms: u64,
    pub max_attempts: u32,
    pub retry_deadline_ms: u64,
    /// 0 = no client-side limit.
    pub rate_limit_per_minute: u32,
    /// Several accounts (`[pagerduty.accounts.<id>]`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub accounts: BTreeMap<String, AccountSettings>,
}

/// Where one PagerDuty account is and how to authenticate to it. Unset URLs
/// derive from the account's region.
///
/// Flattened into `[pagerduty]` and each account table, so it holds only
/// keys whose type errors are unlikely (strings, and the oauth table):
/// serde reports errors inside a flattened struct at the table's key, not
/// the field's, so the region (an enum) is declared by each table itself.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ConnectionSettings {
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
}

/// One `[pagerduty.accounts.<id>]` table.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct AccountSettings {
    /// `us` or `eu`; defaults to `pagerduty.region`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<pagerduty::Region>,
    #[serde(flatten)]
    pub connection: ConnectionSettings,
    /// The account used when a request names none.
    #[serde(default)]
    pub is_default: bool,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
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

impl PagerDutySettings {
    /// The region of an account table: its own, else `pagerduty.region`.
    pub fn region_of(&self, account: &AccountSettings) -> pagerduty::Region {
        account.region.unwrap_or(self.region)
    }

    pub(super) fn read_secret_files(&mut self, problems: &mut Vec<Problem>) {
        self.connection.read_secret_files("pagerduty", problems);
        for (id, account) in &mut self.accounts {
            account
                .connection
                .read_secret_files(&format!("pagerduty.accounts.{id}"), problems);
        }
    }

    pub(super) fn validate(&self, problems: &mut Vec<Problem>) {
        if self.accounts.is_empty() {
            self.connection.validate("pagerduty", problems);
        } else {
            self.validate_accounts(problems);
        }
        for (key, value, range) in [
            ("connect_timeout_ms", self.connect_timeout_ms, 1..=600_000),
            ("request_timeout_ms", self.request_timeout_ms, 1..=600_000),
            ("max_attempts", u64::from(self.max_attempts), 1..=10),
            ("retry_deadline_ms", self.retry_deadline_ms, 1..=600_000),
        ] {
            if !range.contains(&value) {
                problems.push(problem(
                    format!("pagerduty.{key}"),
                    format!("must be between {} and {}", range.start(), range.end()),
                ));
            }
        }
    }

    /// `[pagerduty.accounts.*]`: each account's connection, the ids, and
    /// exactly one default among several.
    fn validate_accounts(&self, problems: &mut Vec<Problem>) {
        let top = &self.connection;
        if top.api_token.is_some() || top.api_token_file.is_some() || top.oauth.is_some() {
            problems.push(problem(
                "pagerduty.api_token",
                "[pagerduty.accounts.<id>] tables are configured: put the credentials in each account, not in [pagerduty]",
            ));
        }
        // Hosts in [pagerduty] are not inherited by the tables (each
        // account's come from its own region); they are still checked.
        check_urls(
            [
                ("pagerduty.api_base_url".to_owned(), &top.api_base_url),
                ("pagerduty.events_base_url".to_owned(), &top.events_base_url),
                ("pagerduty.oauth_token_url".to_owned(), &top.oauth_token_url),
            ],
            problems,
        );
        for (id, account) in &self.accounts {
            let key = format!("pagerduty.accounts.{id}");
            if let Err(why) = check_account_id(id) {
                problems.push(problem(key.clone(), format!("account id `{id}` {why}")));
            }
            account.connection.validate(&key, problems);
        }
        let defaults: Vec<&str> = self
            .accounts
            .iter()
            .filter(|(_, a)| a.is_default)
            .map(|(id, _)| id.as_str())
            .collect();
        if self.accounts.len() > 1 && defaults.len() != 1 {
            let ids: Vec<&str> = self.accounts.keys().map(String::as_str).collect();
            let message = if defaults.is_empty() {
                format!(
                    "{} accounts are configured ({}) but none has is_default = true: mark exactly one",
                    ids.len(),
                    ids.join(", ")
                )
            } else {
                format!(
                    "exactly one account may have is_default = true, found {} ({})",
                    defaults.len(),
                    defaults.join(", ")
                )
            };
            problems.push(problem("pagerduty.accounts", message));
        }
    }
}

impl ConnectionSettings {
    /// Reads `api_token_file` and `oauth.client_secret_file` into their
    /// fields; OAuth without `scopes` asks for [`DEFAULT_OAUTH_SCOPES`].
    fn read_secret_files(&mut self, key: &str, problems: &mut Vec<Problem>) {
        if let Some(oauth) = &mut self.oauth
            && oauth.scopes.is_empty()
        {
            oauth.scopes = DEFAULT_OAUTH_SCOPES.iter().map(|s| s.to_string()).collect();
        }
        secret_from_file(
            &format!("{key}.api_token"),
            &mut self.api_token,
            self.api_token_file.as_deref(),
            problems,
        );
        if let Some(oauth) = &mut self.oauth {
            secret_from_file(
                &format!("{key}.oauth.client_secret"),
                &mut oauth.client_secret,
                oauth.client_secret_file.as_deref(),
                problems,
            );
        }
    }

    /// The URLs, and exactly one of an API token or OAuth.
    fn validate(&self, key: &str, problems: &mut Vec<Problem>) {
        check_urls(
            [
                (format!("{key}.api_base_url"), &self.api_base_url),
                (format!("{key}.events_base_url"), &self.events_base_url),
                (format!("{key}.oauth_token_url"), &self.oauth_token_url),
            ],
            problems,
        );
        if let Some(token) = &self.api_token
            && token.expose_secret().trim().is_empty()
        {
            problems.push(problem(format!("{key}.api_token"), "must not be empty"));
        }
        let has_token = self.api_token.is_some() || self.api_token_file.is_some();
        match (&self.oauth, has_token) {
            (None, false) => problems.push(problem(
                format!("{key}.api_token"),
                format!(
                    "no PagerDuty credentials: set {key}.api_token, {key}.api_token_file or the [{key}.oauth] section"
                ),
            )),
            (Some(_), true) => problems.push(problem(
                format!("{key}.oauth"),
                "both an API token and OAuth are configured: keep only one",
            )),
            (Some(oauth), false) => oauth.validate(&format!("{key}.oauth"), problems),
            (None, true) => {}
        }
    }
}

impl OAuthSettings {
    fn validate(&self, key: &str, problems: &mut Vec<Problem>) {
        if self
            .client_id
            .as_deref()
            .is_none_or(|s| s.trim().is_empty())
        {
            problems.push(problem(format!("{key}.client_id"), "must be set"));
        }
        if self
            .client_secret
            .as_ref()
            .is_none_or(|s| s.expose_secret().trim().is_empty())
            && self.client_secret_file.is_none()
        {
            problems.push(problem(
                format!("{key}.client_secret"),
                format!("must be set (or {key}.client_secret_file)"),
            ));
        }
        match self.subdomain.as_deref().map(str::trim) {
            None | Some("") => problems.push(problem(
                format!("{key}.subdomain"),
                "must be set to the account's subdomain (https://<subdomain>.pagerduty.com)",
            )),
            Some(s) if !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') => {
                problems.push(problem(
                    format!("{key}.subdomain"),
                    format!("`{s}` is not a subdomain (letters, digits and '-' only)"),
                ))
            }
            Some(_) => {}
        }
    }
}

/// Account ids travel in URLs (`?account=`) and config keys.
fn check_account_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 100 {
        return Err("must be 1 to 100 characters long".into());
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err("may contain only letters, digits, '-', '_' and '.'".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_are_url_safe_and_any_length() {
        assert!(check_account_id("eu-corp_2.prod").is_ok());
        assert!(check_account_id("").is_err());
        assert!(check_account_id("a b").is_err());
        assert!(check_account_id(&"a".repeat(101)).is_err());
    }

    #[test]
    fn one_check_serves_the_single_account_and_the_tables() {
        let empty = ConnectionSettings::default();
        let mut problems = Vec::new();
        empty.validate("pagerduty", &mut problems);
        empty.validate("pagerduty.accounts.eu", &mut problems);
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            ["pagerduty.api_token", "pagerduty.accounts.eu.api_token"]
        );
        let oauth = ConnectionSettings {
            oauth: Some(OAuthSettings::default()),
            ..ConnectionSettings::default()
        };
        let mut problems = Vec::new();
        oauth.validate("pagerduty.accounts.eu", &mut problems);
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "pagerduty.accounts.eu.oauth.client_id",
                "pagerduty.accounts.eu.oauth.client_secret",
                "pagerduty.accounts.eu.oauth.subdomain",
            ]
        );
    }
}
