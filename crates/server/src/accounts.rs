//! Several PagerDuty accounts behind one server.
//!
//! `[pagerduty]` alone describes one account, whose id is [`LEGACY_ACCOUNT_ID`]
//! (`default`). `[pagerduty.accounts.<id>]` tables describe several (Backstage's
//! `pagerDuty.accounts[]`): each has its own credentials (API token or
//! OAuth), region and hosts, and takes timeouts, retries and the rate limit
//! from `[pagerduty]`. When accounts are configured, the top-level credentials
//! must be absent (they would be ambiguous).
//!
//! Every account gets its own [`pagerduty::Client`] (so its own token bucket
//! and OAuth token) and its own [`cards::CardService`] (so its own caches).
//! One account is the default: the only one, or the one with
//! `is_default = true` (exactly one must say so when there are several).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::config::{
    OAuthSettings, PagerDutySettings, Problem, Settings, check_http_url, problem, read_secret_file,
};

/// The id of the single account described by `[pagerduty]` alone.
pub const LEGACY_ACCOUNT_ID: &str = "default";

/// One `[pagerduty.accounts.<id>]` table. Keys mirror `[pagerduty]`; unset
/// URLs derive from `region` (itself inherited from `[pagerduty]`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSettings {
    /// `us` or `eu`; defaults to `pagerduty.region`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<pagerduty::Region>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_base_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_base_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth_token_url: Option<String>,
    #[serde(
        default,
        serialize_with = "crate::config::redact_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub api_token: Option<SecretString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_token_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth: Option<OAuthSettings>,
    /// The account used when a request names none.
    #[serde(default)]
    pub is_default: bool,
}

/// Reads each account's `api_token_file` / `oauth.client_secret_file`.
pub(crate) fn read_secret_files(
    accounts: &mut BTreeMap<String, AccountSettings>,
    problems: &mut Vec<Problem>,
) {
    for (id, account) in accounts.iter_mut() {
        let key = format!("pagerduty.accounts.{id}");
        if let Some(path) = &account.api_token_file {
            if account.api_token.is_some() {
                problems.push(problem(
                    format!("{key}.api_token_file"),
                    format!("set either {key}.api_token or {key}.api_token_file, not both"),
                ));
            } else if let Some(secret) =
                read_secret_file(&format!("{key}.api_token_file"), path, problems)
            {
                account.api_token = Some(secret);
            }
        }
        if let Some(oauth) = &mut account.oauth
            && let Some(path) = &oauth.client_secret_file
        {
            if oauth.client_secret.is_some() {
                problems.push(problem(
                    format!("{key}.oauth.client_secret_file"),
                    format!(
                        "set either {key}.oauth.client_secret or {key}.oauth.client_secret_file, not both"
                    ),
                ));
            } else if let Some(secret) =
                read_secret_file(&format!("{key}.oauth.client_secret_file"), path, problems)
            {
                oauth.client_secret = Some(secret);
            }
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

/// Checks `[pagerduty.accounts.*]` (called only when some are configured).
pub(crate) fn validate(pd: &PagerDutySettings, problems: &mut Vec<Problem>) {
    if pd.api_token.is_some() || pd.api_token_file.is_some() || pd.oauth.is_some() {
        problems.push(problem(
            "pagerduty.api_token",
            "[pagerduty.accounts.<id>] tables are configured: put the credentials in each account, not in [pagerduty]",
        ));
    }
    for (id, account) in &pd.accounts {
        let key = format!("pagerduty.accounts.{id}");
        if let Err(why) = check_account_id(id) {
            problems.push(problem(key.clone(), format!("account id `{id}` {why}")));
        }
        for (name, value) in [
            ("api_base_url", &account.api_base_url),
            ("events_base_url", &account.events_base_url),
            ("oauth_token_url", &account.oauth_token_url),
        ] {
            if let Some(value) = value
                && let Err(why) = check_http_url(value)
            {
                problems.push(problem(format!("{key}.{name}"), format!("`{value}` {why}")));
            }
        }
        if let Some(token) = &account.api_token
            && token.expose_secret().trim().is_empty()
        {
            problems.push(problem(format!("{key}.api_token"), "must not be empty"));
        }
        let has_token = account.api_token.is_some() || account.api_token_file.is_some();
        match (&account.oauth, has_token) {
            (None, false) => problems.push(problem(
                format!("{key}.api_token"),
                format!("no credentials for account `{id}`: set {key}.api_token, {key}.api_token_file or [{key}.oauth]"),
            )),
            (Some(_), true) => problems.push(problem(
                format!("{key}.oauth"),
                "both an API token and OAuth are configured: keep only one",
            )),
            (Some(oauth), false) => validate_oauth(&key, oauth, problems),
            (None, true) => {}
        }
    }
    let defaults: Vec<&str> = pd
        .accounts
        .iter()
        .filter(|(_, a)| a.is_default)
        .map(|(id, _)| id.as_str())
        .collect();
    if pd.accounts.len() > 1 && defaults.len() != 1 {
        let ids: Vec<&str> = pd.accounts.keys().map(String::as_str).collect();
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

fn validate_oauth(key: &str, oauth: &OAuthSettings, problems: &mut Vec<Problem>) {
    if oauth
        .client_id
        .as_deref()
        .is_none_or(|s| s.trim().is_empty())
    {
        problems.push(problem(format!("{key}.oauth.client_id"), "must be set"));
    }
    if oauth
        .client_secret
        .as_ref()
        .is_none_or(|s| s.expose_secret().trim().is_empty())
        && oauth.client_secret_file.is_none()
    {
        problems.push(problem(
            format!("{key}.oauth.client_secret"),
            format!("must be set (or {key}.oauth.client_secret_file)"),
        ));
    }
    match oauth.subdomain.as_deref().map(str::trim) {
        None | Some("") => problems.push(problem(
            format!("{key}.oauth.subdomain"),
            "must be set to the account's subdomain (https://<subdomain>.pagerduty.com)",
        )),
        Some(s) if !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') => {
            problems.push(problem(
                format!("{key}.oauth.subdomain"),
                format!("`{s}` is not a subdomain (letters, digits and '-' only)"),
            ))
        }
        Some(_) => {}
    }
    if oauth.scopes.is_empty() {
        problems.push(problem(
            format!("{key}.oauth.scopes"),
            "must list the scopes to request, e.g. [\"services.read\", \"incidents.read\"]",
        ));
    }
}

/// One PagerDuty account: its client and its card caches.
pub struct Account {
    /// The id callers pass as `?account=`.
    pub id: String,
    /// True for the account used when a request names none.
    pub is_default: bool,
    /// True when the configuration said `is_default = true` (reported by
    /// `GET /accounts` like Backstage does).
    pub marked_default: bool,
    /// The account's PagerDuty client (its own rate limiter and OAuth token).
    pub client: pagerduty::Client,
    /// The account's card service (its own caches).
    pub cards: cards::CardService,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("is_default", &self.is_default)
            .field("api_base_url", &self.client.api_base_url())
            .finish_non_exhaustive()
    }
}

/// `?account=` named no configured account.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown PagerDuty account `{requested}`: valid accounts are {}", .valid.join(", "))]
pub struct UnknownAccount {
    /// What the caller asked for.
    pub requested: String,
    /// The configured ids.
    pub valid: Vec<String>,
}

/// Every configured account, in id order, and which one is the default.
#[derive(Debug)]
pub struct Accounts {
    accounts: Vec<Arc<Account>>,
    default: usize,
    /// Configured with `[pagerduty]` alone (no accounts tables).
    legacy: bool,
}

impl Accounts {
    /// Builds one client and card service per account from validated settings.
    /// Every HTTP attempt of every client is reported to `observer`.
    pub fn from_settings(
        settings: &Settings,
        observer: Arc<dyn pagerduty::CallObserver>,
    ) -> pagerduty::Result<Accounts> {
        let pd = &settings.pagerduty;
        let cards_config = settings.cache.cards_config();
        if pd.accounts.is_empty() {
            let client = pd.client(observer)?;
            let account = Account {
                id: LEGACY_ACCOUNT_ID.to_owned(),
                is_default: true,
                marked_default: false,
                cards: cards::CardService::new(client.clone(), cards_config),
                client,
            };
            return Ok(Accounts {
                accounts: vec![Arc::new(account)],
                default: 0,
                legacy: true,
            });
        }
        let single = pd.accounts.len() == 1;
        let mut accounts = Vec::with_capacity(pd.accounts.len());
        let mut default = 0;
        for (i, (id, settings)) in pd.accounts.iter().enumerate() {
            let client = account_pagerduty_settings(pd, settings)
                .client(Arc::clone(&observer))
                .map_err(|e| match e {
                    pagerduty::Error::Config { field, message } => pagerduty::Error::Config {
                        field: format!("pagerduty.accounts.{id}: {field}"),
                        message,
                    },
                    other => other,
                })?;
            let is_default = single || settings.is_default;
            if is_default {
                default = i;
            }
            accounts.push(Arc::new(Account {
                id: id.clone(),
                is_default,
                marked_default: settings.is_default,
                cards: cards::CardService::new(client.clone(), cards_config.clone()),
                client,
            }));
        }
        Ok(Accounts {
            accounts,
            default,
            legacy: false,
        })
    }

    /// The account used when a request names none.
    pub fn default_account(&self) -> &Arc<Account> {
        &self.accounts[self.default]
    }

    /// The account `?account=` names; `None` or an empty id is the default.
    pub fn get(&self, id: Option<&str>) -> Result<&Arc<Account>, UnknownAccount> {
        match id.map(str::trim) {
            None | Some("") => Ok(self.default_account()),
            Some(id) => self
                .accounts
                .iter()
                .find(|a| a.id == id)
                .ok_or_else(|| UnknownAccount {
                    requested: id.to_owned(),
                    valid: self.ids().map(str::to_owned).collect(),
                }),
        }
    }

    /// Every account, in id order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Account>> {
        self.accounts.iter()
    }

    /// The configured ids, in order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.accounts.iter().map(|a| a.id.as_str())
    }

    /// How many accounts are configured.
    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    /// Never true (there is always at least one account); for clippy.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// True when only `[pagerduty]` is configured (no accounts tables).
    pub fn is_legacy(&self) -> bool {
        self.legacy
    }
}

/// `[pagerduty]` with one account's region, hosts and credentials.
fn account_pagerduty_settings(
    base: &PagerDutySettings,
    account: &AccountSettings,
) -> PagerDutySettings {
    PagerDutySettings {
        region: account.region.unwrap_or(base.region),
        api_base_url: account.api_base_url.clone(),
        events_base_url: account.events_base_url.clone(),
        oauth_token_url: account.oauth_token_url.clone(),
        api_token: account.api_token.clone(),
        api_token_file: None,
        oauth: account.oauth.clone(),
        accounts: BTreeMap::new(),
        ..base.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_are_url_safe_and_any_length() {
        assert!(check_account_id("a").is_ok());
        assert!(check_account_id("acme-eu_2.prod").is_ok());
        assert!(check_account_id("").is_err());
        assert!(check_account_id("a b").is_err());
        assert!(check_account_id("a&b").is_err());
    }

    #[test]
    fn debug_never_prints_tokens() {
        let account = AccountSettings {
            api_token: Some(SecretString::from("super-secret-token")),
            ..AccountSettings::default()
        };
        assert!(!format!("{account:?}").contains("super-secret-token"));
        let toml = toml::to_string(&account).unwrap();
        assert!(!toml.contains("super-secret-token"), "{toml}");
    }
}
