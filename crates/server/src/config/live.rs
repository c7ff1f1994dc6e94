//! `[webhooks]` (PagerDuty v3 webhooks in) and `[streams]` (card streams
//! out): what makes cards live.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Problem;
use super::checks::{problem, string_or_list};

/// A webhook secret shorter than this is a typo or a placeholder
/// (PagerDuty's are 64 characters).
const MIN_SECRET_LEN: usize = 16;

/// `[webhooks]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct WebhookSettings {
    /// Serve `POST /v1/webhooks/pagerduty` (and `/{account}`); when false
    /// the intake answers 404 `route_not_found` (as a route that does not
    /// exist), whatever it is sent.
    pub enabled: bool,
    /// The default account's subscription secrets; several while one is
    /// rotated (a delivery is good when any of them signed it).
    #[serde(
        default,
        deserialize_with = "secret_list",
        serialize_with = "redact_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub secrets: Vec<SecretString>,
    /// A file with those secrets, one per line (`#` comments and blank
    /// lines ignored); instead of `secrets`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_file: Option<PathBuf>,
    /// The secrets of the other accounts (`[webhooks.accounts.<id>]`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub accounts: BTreeMap<String, WebhookSecrets>,
    /// A redelivered `X-Webhook-Id` within this window is not processed again.
    pub dedupe_window_secs: u64,
    /// Larger bodies are refused (413) before any work.
    pub max_body_bytes: usize,
    /// Verified deliveries waiting to be processed; when full, PagerDuty
    /// is asked to retry (503), nothing is lost.
    pub queue_size: usize,
}

/// `[webhooks.accounts.<id>]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct WebhookSecrets {
    /// As `webhooks.secrets`.
    #[serde(
        default,
        deserialize_with = "secret_list",
        serialize_with = "redact_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub secrets: Vec<SecretString>,
    /// As `webhooks.secrets_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_file: Option<PathBuf>,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            secrets: Vec::new(),
            secrets_file: None,
            accounts: BTreeMap::new(),
            dedupe_window_secs: 3600,
            max_body_bytes: 256 * 1024,
            queue_size: 4096,
        }
    }
}

fn secret_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SecretString>, D::Error> {
    Ok(string_or_list(d)?
        .into_iter()
        .map(SecretString::from)
        .collect())
}

fn redact_list<S: Serializer>(value: &[SecretString], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(value.iter().map(|_| super::REDACTED))
}

impl WebhookSettings {
    /// `dedupe_window_secs`.
    pub fn dedupe_window(&self) -> Duration {
        Duration::from_secs(self.dedupe_window_secs)
    }

    /// The secrets of `account` (the default account's are the top-level ones).
    pub fn secrets_of(&self, account: &str, is_default: bool) -> Vec<SecretString> {
        let mut out = self
            .accounts
            .get(account)
            .map(|a| a.secrets.clone())
            .unwrap_or_default();
        if is_default {
            out.extend(self.secrets.iter().cloned());
        }
        out
    }

    pub(super) fn read_secret_files(&mut self, problems: &mut Vec<Problem>) {
        read_list(
            "webhooks",
            &mut self.secrets,
            self.secrets_file.as_deref(),
            problems,
        );
        for (id, account) in &mut self.accounts {
            read_list(
                &format!("webhooks.accounts.{id}"),
                &mut account.secrets,
                account.secrets_file.as_deref(),
                problems,
            );
        }
    }

    /// `account_ids`: the configured PagerDuty accounts.
    pub(super) fn validate(&self, account_ids: &[String], problems: &mut Vec<Problem>) {
        check_secrets("webhooks.secrets", &self.secrets, problems);
        for (id, account) in &self.accounts {
            if !account_ids.contains(id) {
                problems.push(problem(
                    format!("webhooks.accounts.{id}"),
                    format!(
                        "no PagerDuty account `{id}` is configured (accounts: {})",
                        account_ids.join(", ")
                    ),
                ));
            }
            check_secrets(
                &format!("webhooks.accounts.{id}.secrets"),
                &account.secrets,
                problems,
            );
        }
        if !(1..=86_400).contains(&self.dedupe_window_secs) {
            problems.push(problem(
                "webhooks.dedupe_window_secs",
                "must be between 1 and 86400",
            ));
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.max_body_bytes) {
            problems.push(problem(
                "webhooks.max_body_bytes",
                "must be between 1024 and 16777216",
            ));
        }
        if !(1..=1_000_000).contains(&self.queue_size) {
            problems.push(problem(
                "webhooks.queue_size",
                "must be between 1 and 1000000",
            ));
        }
    }
}

fn check_secrets(key: &str, secrets: &[SecretString], problems: &mut Vec<Problem>) {
    for (i, secret) in secrets.iter().enumerate() {
        if secret.expose_secret().trim().chars().count() < MIN_SECRET_LEN {
            problems.push(problem(
                format!("{key}[{i}]"),
                format!("must be at least {MIN_SECRET_LEN} characters long"),
            ));
        }
    }
}

/// Reads `file` (one secret a line) into `secrets`; both set is a conflict.
fn read_list(
    section: &str,
    secrets: &mut Vec<SecretString>,
    file: Option<&Path>,
    problems: &mut Vec<Problem>,
) {
    let Some(path) = file else { return };
    let key = format!("{section}.secrets_file");
    if !secrets.is_empty() {
        problems.push(problem(
            key,
            format!("set either {section}.secrets or {section}.secrets_file, not both"),
        ));
        return;
    }
    match std::fs::read_to_string(path) {
        Ok(text) => {
            *secrets = secret_lines(&text);
            if secrets.is_empty() {
                problems.push(problem(key, format!("{} holds no secret", path.display())));
            }
        }
        Err(e) => problems.push(problem(key, format!("cannot read {}: {e}", path.display()))),
    }
}

/// The secrets of a secrets file: one per line, `#` comments and blank lines skipped.
fn secret_lines(text: &str) -> Vec<SecretString> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| SecretString::from(l.to_owned()))
        .collect()
}

/// `[streams]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct StreamSettings {
    /// A comment line this often keeps proxies from closing a quiet stream.
    pub heartbeat_ms: u64,
    /// Events a connection may have waiting; a client that lets more pile
    /// up is too slow and is disconnected (it reconnects with
    /// `Last-Event-ID`).
    pub buffer: usize,
    /// Open streams per caller.
    pub max_per_caller: usize,
    /// Open streams in total.
    pub max_total: usize,
    /// Services one `GET /v1/stream` may watch.
    pub max_services: usize,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            heartbeat_ms: 15_000,
            buffer: 16,
            max_per_caller: 20,
            max_total: 1000,
            max_services: 50,
        }
    }
}

impl StreamSettings {
    /// `heartbeat_ms`.
    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms)
    }

    pub(super) fn validate(&self, problems: &mut Vec<Problem>) {
        let ranges: [(&str, u64, u64, u64); 5] = [
            ("heartbeat_ms", self.heartbeat_ms, 10, 300_000),
            ("buffer", self.buffer as u64, 1, 10_000),
            ("max_per_caller", self.max_per_caller as u64, 1, 100_000),
            ("max_total", self.max_total as u64, 1, 100_000),
            ("max_services", self.max_services as u64, 1, 100),
        ];
        for (key, value, min, max) in ranges {
            if !(min..=max).contains(&value) {
                problems.push(problem(
                    format!("streams.{key}"),
                    format!("must be between {min} and {max}"),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secrets_file_holds_one_secret_a_line() {
        let secrets = secret_lines(
            "# rotated on Monday\nold-secret-0123456789\n\n  new-secret-0123456789  \n",
        );
        let exposed: Vec<&str> = secrets.iter().map(|s| s.expose_secret()).collect();
        assert_eq!(exposed, ["old-secret-0123456789", "new-secret-0123456789"]);
    }

    #[test]
    fn short_secrets_and_unknown_accounts_are_problems() {
        let mut settings = WebhookSettings {
            secrets: vec![SecretString::from("short")],
            ..WebhookSettings::default()
        };
        settings
            .accounts
            .insert("nope".into(), WebhookSecrets::default());
        let mut problems = Vec::new();
        settings.validate(&["default".to_owned()], &mut problems);
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["webhooks.secrets[0]", "webhooks.accounts.nope"]);
        assert!(problems.iter().all(|p| !p.message.contains("short")));
    }

    #[test]
    fn secrets_are_redacted_when_printed() {
        let settings = WebhookSettings {
            secrets: vec![SecretString::from("0123456789abcdef-secret")],
            ..WebhookSettings::default()
        };
        let text = toml::to_string(&settings).unwrap();
        assert!(!text.contains("0123456789abcdef"), "{text}");
        assert!(text.contains(super::super::REDACTED));
        assert!(!format!("{settings:?}").contains("0123456789abcdef"));
    }
}
