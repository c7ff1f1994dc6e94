//! Integration keys never reach a browser: in Backstage answers each key is
//! replaced by an opaque alias that only dutycard maps back.
//!
//! An alias is `dcak_` followed by 32 hex digits of an HMAC-SHA256 of the
//! key, keyed per account. It is 37 characters long and not a routing key,
//! so PagerDuty's Events API refuses it, and it cannot be turned back into
//! the key without the secret: an alias copied out of a browser pages
//! nothing except through dutycard, with its caller auth, limits and
//! attribution. The same secret gives the same aliases across restarts and
//! replicas: `backstage.integration_key_alias_secret` when set, otherwise
//! one derived from the account's PagerDuty credential (which every replica
//! of one deployment shares; a rotated credential changes the aliases).
//!
//! Mapping back reads the account's services list (`CardService::services`,
//! cached for `backstage.list_ttl_secs`): the alias of every integration key
//! in it is computed once per list and looked up. A key created after the
//! list was read is known once the list refreshes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hmac::{KeyInit, Mac};
use secrecy::{ExposeSecret, SecretBox};

use crate::accounts::{Account, Accounts};
use crate::config::{IntegrationKeys, PagerDutySettings};

/// What every alias starts with.
pub const ALIAS_PREFIX: &str = "dcak_";

/// Hex digits of the HMAC kept in an alias (128 bits).
const ALIAS_HEX: usize = 32;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// An alias could not be mapped back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AliasError {
    /// No integration key of the account has this alias.
    #[error("the integration key alias belongs to no integration of this account")]
    Unknown,
    /// The services list could not be read to look it up.
    #[error("the integration key alias cannot be looked up now: {0}")]
    Unavailable(String),
}

/// The aliases of every account.
pub struct KeyAliases {
    display: IntegrationKeys,
    accounts: HashMap<String, AccountAliases>,
}

impl std::fmt::Debug for KeyAliases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyAliases")
            .field("display", &self.display)
            .field("accounts", &self.accounts.keys().collect::<Vec<_>>())
            .finish()
    }
}

struct AccountAliases {
    /// The account's HMAC, keyed once: each alias clones it instead of
    /// keying a new one (a listing makes thousands).
    mac: HmacSha256,
    /// alias → key, for the services list it was built from.
    index: Mutex<Option<Index>>,
}

struct Index {
    /// The list this index was built from (rebuilt when the list changes).
    built_from: Arc<Vec<pagerduty::Service>>,
    keys: HashMap<String, String>,
}

impl KeyAliases {
    /// One secret per account: `secret` when configured, else derived from
    /// the account's credential in `pd`.
    pub fn new(
        accounts: &Accounts,
        display: IntegrationKeys,
        secret: Option<&secrecy::SecretString>,
        pd: &PagerDutySettings,
    ) -> Self {
        let accounts = accounts
            .iter()
            .map(|a| {
                let seed = match secret {
                    Some(s) => s.expose_secret().to_owned(),
                    None => credential_seed(pd, &a.id),
                };
                (
                    a.id.clone(),
                    AccountAliases {
                        mac: keyed(&derive_secret(&a.id, &seed)),
                        index: Mutex::new(None),
                    },
                )
            })
            .collect();
        KeyAliases { display, accounts }
    }

    /// No accounts: every key is shown as itself (tests of other services).
    #[cfg(test)]
    pub(crate) fn none() -> Self {
        KeyAliases {
            display: IntegrationKeys::Raw,
            accounts: HashMap::new(),
        }
    }

    /// How keys are shown.
    pub fn display(&self) -> IntegrationKeys {
        self.display
    }

    /// Whether `text` has the form of an alias.
    pub fn is_alias(text: &str) -> bool {
        text.strip_prefix(ALIAS_PREFIX)
            .is_some_and(|hex| hex.len() == ALIAS_HEX && hex.bytes().all(|b| b.is_ascii_hexdigit()))
    }

    /// The alias of `key` in `account` (the key itself for an account this
    /// service does not know, which cannot happen for a configured one).
    pub fn alias(&self, account: &str, key: &str) -> String {
        match self.accounts.get(account) {
            Some(a) => alias_with(&a.mac, key),
            None => key.to_owned(),
        }
    }

    /// What a Backstage answer shows for `key`: the alias, the key, or
    /// nothing.
    pub fn shown(&self, account: &str, key: &str) -> Option<String> {
        match self.display {
            IntegrationKeys::Alias => Some(self.alias(account, key)),
            IntegrationKeys::Raw => Some(key.to_owned()),
            IntegrationKeys::Omit => None,
        }
    }

    /// The integration key `text` stands for: an alias mapped back through
    /// the account's services, or `text` itself when it is not an alias.
    pub async fn key(&self, account: &Account, text: &str) -> Result<String, AliasError> {
        if !Self::is_alias(text) {
            return Ok(text.to_owned());
        }
        let aliases = self.accounts.get(&account.id).ok_or(AliasError::Unknown)?;
        let services = account
            .cards
            .services()
            .await
            .map_err(|e| AliasError::Unavailable(e.to_string()))?;
        let mut index = aliases.index.lock().unwrap_or_else(|e| e.into_inner());
        let stale = index
            .as_ref()
            .is_none_or(|i| !Arc::ptr_eq(&i.built_from, &services));
        if stale {
            let keys = services
                .iter()
                .flat_map(|s| s.integrations.iter())
                .filter_map(|i| i.integration_key.as_deref())
                .map(|key| (alias_with(&aliases.mac, key), key.to_owned()))
                .collect();
            *index = Some(Index {
                built_from: services,
                keys,
            });
        }
        index
            .as_ref()
            .and_then(|i| i.keys.get(text).cloned())
            .ok_or(AliasError::Unknown)
    }
}

/// What stays the same on every replica of one deployment and is not
/// public: the account's API token, or its OAuth client id and secret.
fn credential_seed(pd: &PagerDutySettings, account: &str) -> String {
    let connection = match pd.accounts.get(account) {
        Some(a) => &a.connection,
        None => &pd.connection,
    };
    if let Some(token) = &connection.api_token {
        return token.expose_secret().to_owned();
    }
    connection
        .oauth
        .as_ref()
        .map(|o| {
            let secret = o
                .client_secret
                .as_ref()
                .map(|s| s.expose_secret().to_owned());
            format!(
                "{}\0{}",
                o.client_id.as_deref().unwrap_or(""),
                secret.unwrap_or_default()
            )
        })
        .unwrap_or_default()
}

/// The account's HMAC key: the seed stretched with the account id, so two
/// accounts sharing a configured secret still get different aliases.
fn derive_secret(account: &str, seed: &str) -> SecretBox<Vec<u8>> {
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    hash.update(b"dutycard:integration-key-alias:v1\0");
    hash.update(account.as_bytes());
    hash.update(b"\0");
    hash.update(seed.as_bytes());
    SecretBox::new(Box::new(hash.finalize().to_vec()))
}

/// The HMAC keyed with `secret`.
fn keyed(secret: &SecretBox<Vec<u8>>) -> HmacSha256 {
    // HMAC takes a key of any length, so this cannot fail.
    HmacSha256::new_from_slice(secret.expose_secret()).expect("HMAC accepts any key")
}

fn alias_with(mac: &HmacSha256, key: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut mac = mac.clone();
    mac.update(key.as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(ALIAS_PREFIX.len() + ALIAS_HEX);
    out.push_str(ALIAS_PREFIX);
    for b in digest.iter().take(ALIAS_HEX / 2) {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_stable_keyed_per_account_and_not_routing_keys() {
        let key = "abcdefabcdefabcdefabcdefabcdef12";
        let mac = |account: &str, seed: &str| keyed(&derive_secret(account, seed));
        let alias = alias_with(&mac("acme", "credential"), key);
        assert_eq!(alias, alias_with(&mac("acme", "credential"), key));
        assert_ne!(alias, alias_with(&mac("corp", "credential"), key));
        assert_ne!(alias, alias_with(&mac("acme", "other"), key));
        assert!(KeyAliases::is_alias(&alias), "{alias}");
        assert_ne!(alias.len(), pagerduty::events::ROUTING_KEY_CHARS);
        assert!(!alias.contains(key));
        assert!(!KeyAliases::is_alias(key));
        assert!(!KeyAliases::is_alias("dcak_nothex"));
    }
}
