//! Several PagerDuty accounts behind one server.
//!
//! `[pagerduty]` alone describes one account, whose id is
//! [`LEGACY_ACCOUNT_ID`] (`default`). `[pagerduty.accounts.<id>]` tables
//! describe several (Backstage's `pagerDuty.accounts[]`): each has its own
//! credentials (API token or OAuth), region and hosts, and takes timeouts,
//! retries and the rate limit from `[pagerduty]` (see
//! [`crate::config::pagerduty`]).
//!
//! Every account gets its own [`pagerduty::Client`] (so its own token bucket
//! and OAuth token) and its own [`cards::CardService`] (so its own caches).
//! One account is the default: the only one, or the one with
//! `is_default = true` (exactly one must say so when there are several).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use crate::config::{ConnectionSettings, LEGACY_ACCOUNT_ID, PagerDutySettings, Settings};
use crate::shared::Shared;

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

/// An account's PagerDuty client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("account `{account}`: {source}")]
pub struct AccountError {
    /// The account id.
    pub account: String,
    /// Why (boxed: `pagerduty::Error` is large and this happens once).
    #[source]
    pub source: Box<pagerduty::Error>,
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
    ) -> Result<Accounts, AccountError> {
        Self::from_settings_shared(settings, observer, None)
    }

    /// Like [`Accounts::from_settings`]; with `shared` (`[shared]` on),
    /// each account's client takes its rate budget from Redis and its card
    /// service shares its sections with the other replicas (both under
    /// the account's id, the same on every replica).
    pub fn from_settings_shared(
        settings: &Settings,
        observer: Arc<dyn pagerduty::CallObserver>,
        shared: Option<&Shared>,
    ) -> Result<Accounts, AccountError> {
        let pd = &settings.pagerduty;
        let cards_config = &settings.cache;
        let cards_of = |id: &str, client: &pagerduty::Client| match shared {
            Some(shared) => {
                cards::CardService::shared(client.clone(), cards_config.clone(), shared.sharing(id))
            }
            None => cards::CardService::new(client.clone(), cards_config.clone()),
        };
        if pd.accounts.is_empty() {
            let id = LEGACY_ACCOUNT_ID;
            let error = |source| AccountError {
                account: id.to_owned(),
                source: Box::new(source),
            };
            let budget = budget(shared, id, pd).map_err(error)?;
            let client = client(pd, pd.region, &pd.connection, observer, budget).map_err(error)?;
            let account = Account {
                id: id.to_owned(),
                is_default: true,
                marked_default: false,
                cards: cards_of(id, &client),
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
            let region = pd.region_of(settings);
            let error = |source| AccountError {
                account: id.clone(),
                source: Box::new(source),
            };
            let budget = budget(shared, id, pd).map_err(error)?;
            let client = client(
                pd,
                region,
                &settings.connection,
                Arc::clone(&observer),
                budget,
            )
            .map_err(error)?;
            let is_default = single || settings.is_default;
            if is_default {
                default = i;
            }
            accounts.push(Arc::new(Account {
                id: id.clone(),
                is_default,
                marked_default: settings.is_default,
                cards: cards_of(id, &client),
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

/// The account's shared budget at `rate_limit_per_minute` (none when
/// nothing is shared or the rate limit is off).
fn budget(
    shared: Option<&Shared>,
    id: &str,
    pd: &PagerDutySettings,
) -> pagerduty::Result<Option<Arc<dyn pagerduty::RateBudget>>> {
    match shared {
        Some(shared) if pd.rate_limit_per_minute > 0 => {
            let budget = shared.budget(id, pd.rate_limit_per_minute)?;
            Ok(Some(Arc::new(budget)))
        }
        _ => Ok(None),
    }
}

/// The PagerDuty client of one account: its connection, and the timeouts,
/// retries and rate limit every account shares (call on validated
/// settings); `budget` replaces the in-process rate limit (`[shared]`).
/// Every HTTP attempt is reported to `observer`.
pub fn client(
    pd: &PagerDutySettings,
    region: pagerduty::Region,
    connection: &ConnectionSettings,
    observer: Arc<dyn pagerduty::CallObserver>,
    budget: Option<Arc<dyn pagerduty::RateBudget>>,
) -> pagerduty::Result<pagerduty::Client> {
    let credentials = match (&connection.api_token, &connection.oauth) {
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
        .region(region)
        .connect_timeout(Duration::from_millis(pd.connect_timeout_ms))
        .request_timeout(Duration::from_millis(pd.request_timeout_ms))
        .retry_policy(pagerduty::RetryPolicy {
            max_attempts: pd.max_attempts,
            deadline: Duration::from_millis(pd.retry_deadline_ms),
            ..pagerduty::RetryPolicy::default()
        })
        .observer(observer);
    builder = match budget {
        Some(budget) => builder.rate_budget(budget),
        None => builder.rate_limit_per_minute(
            (pd.rate_limit_per_minute > 0).then_some(pd.rate_limit_per_minute),
        ),
    };
    if let Some(url) = &connection.api_base_url {
        builder = builder.api_base_url(url);
    }
    if let Some(url) = &connection.events_base_url {
        builder = builder.events_base_url(url);
    }
    if let Some(url) = &connection.oauth_token_url {
        builder = builder.oauth_token_url(url);
    }
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_tokens() {
        let account = crate::config::AccountSettings {
            connection: ConnectionSettings {
                api_token: Some(SecretString::from("super-secret-token")),
                ..ConnectionSettings::default()
            },
            ..Default::default()
        };
        assert!(!format!("{account:?}").contains("super-secret-token"));
        let toml = toml::to_string(&account).unwrap();
        assert!(!toml.contains("super-secret-token"), "{toml}");
    }
}
