//! `dutycard webhooks subscribe|list|delete|ping`: the account's v3 webhook
//! subscriptions, through the PagerDuty client (the account's credentials
//! from the same settings `serve` reads).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;
use pagerduty::{NewWebhookSubscription, WebhookFilter, WebhookSubscription};
use secrecy::ExposeSecret;

use crate::accounts::Accounts;
use crate::config::Settings;
use crate::metrics::Metrics;
use crate::webhooks::event::subscribed_events;

/// What `dutycard webhooks` does.
#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Create an account-wide subscription to the events dutycard uses
    /// (incident.*, service.*); its secret is shown once.
    Subscribe {
        /// Where PagerDuty delivers: dutycard's https://…/v1/webhooks/pagerduty.
        /// For another account than the default, `/ID` is appended (the
        /// intake verifies that account's secrets there) unless the URL
        /// already names it (`…/ID` or `?account=ID`).
        #[arg(long)]
        url: String,
        /// Write the secret to this file (mode 0600) instead of printing it.
        #[arg(long, value_name = "PATH")]
        secret_file: Option<PathBuf>,
    },
    /// List the account's subscriptions.
    List,
    /// Delete a subscription.
    Delete {
        /// The subscription id.
        id: String,
    },
    /// Ask PagerDuty to send a `pagey.ping` to a subscription.
    Ping {
        /// The subscription id.
        id: String,
    },
}

/// Creates the account-wide subscription dutycard needs, to `url`.
pub async fn subscribe(
    client: &pagerduty::Client,
    url: &str,
) -> pagerduty::Result<WebhookSubscription> {
    client
        .create_webhook_subscription(&NewWebhookSubscription {
            url: url.to_owned(),
            events: subscribed_events().into_iter().map(str::to_owned).collect(),
            filter: WebhookFilter::account(),
            description: Some("dutycard: live cards".into()),
        })
        .await
}

/// Runs a `webhooks` command against `account` (the default when None).
pub async fn run(settings: Settings, account: Option<&str>, command: WebhooksCommand) -> ExitCode {
    let accounts = match Accounts::from_settings(&settings, Arc::new(Metrics::new())) {
        Ok(accounts) => accounts,
        Err(e) => return fail(&e.to_string()),
    };
    let account = match accounts.get(account) {
        Ok(account) => account,
        Err(e) => return fail(&e.to_string()),
    };
    let client = &account.client;
    match command {
        WebhooksCommand::Subscribe { url, secret_file } => {
            if let Err(why) = crate::config::check_http_url(&url) {
                return fail(&format!("--url `{url}` {why}"));
            }
            let url = match url_for_account(&url, &account.id, account.is_default) {
                Ok(url) => url,
                Err(why) => return fail(&format!("--url `{url}` {why}")),
            };
            let sub = match subscribe(client, &url).await {
                Ok(sub) => sub,
                Err(e) => return fail(&e.to_string()),
            };
            let Some(secret) = sub.delivery_method.secret.as_ref() else {
                return fail("PagerDuty answered without the subscription's secret");
            };
            println!(
                "created subscription {} for account {} delivering to {}",
                sub.id,
                account.id,
                without_credentials(&url)
            );
            match secret_file {
                Some(path) => {
                    if let Err(e) = write_secret(&path, secret.expose_secret()) {
                        return fail(&format!("cannot write {}: {e}", path.display()));
                    }
                    println!(
                        "secret written to {} (mode 0600): point webhooks.secrets_file{} at it",
                        path.display(),
                        section(&account.id, account.is_default)
                    );
                }
                None => {
                    println!(
                        "secret (shown once; put it in webhooks.secrets{}):",
                        section(&account.id, account.is_default)
                    );
                    println!("{}", secret.expose_secret());
                }
            }
            ExitCode::SUCCESS
        }
        WebhooksCommand::List => match client.list_webhook_subscriptions().await {
            Ok(subs) => {
                for s in subs {
                    println!(
                        "{}\t{}\t{}\t{} events{}",
                        s.id,
                        if s.active { "active" } else { "inactive" },
                        without_credentials(&s.delivery_method.url),
                        s.events.len(),
                        if s.delivery_method.temporarily_disabled {
                            "\ttemporarily disabled"
                        } else {
                            ""
                        }
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e.to_string()),
        },
        WebhooksCommand::Delete { id } => match client.delete_webhook_subscription(&id).await {
            Ok(()) => {
                println!("deleted subscription {id}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e.to_string()),
        },
        WebhooksCommand::Ping { id } => match client.ping_webhook_subscription(&id).await {
            Ok(()) => {
                println!("PagerDuty is sending a pagey.ping to subscription {id}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e.to_string()),
        },
    }
}

/// The URL PagerDuty delivers `account`'s webhooks to. The intake checks a
/// delivery against the secrets of the account its URL names (the path
/// segment `/v1/webhooks/pagerduty/{account}` or `?account=`) and of the
/// default account otherwise, so another account's subscription must name
/// it: `/{account}` is appended unless the URL names it already. A URL
/// that names another account is refused (its deliveries would all fail
/// verification).
fn url_for_account(url: &str, account: &str, is_default: bool) -> Result<String, String> {
    let mut parsed = url::Url::parse(url).map_err(|e| format!("is not a URL: {e}"))?;
    let in_query = parsed
        .query_pairs()
        .find(|(k, _)| k == "account")
        .map(|(_, v)| v.into_owned());
    let last = parsed
        .path_segments()
        .and_then(|mut s| s.next_back().map(str::to_owned))
        .filter(|s| !s.is_empty());
    let after_intake = parsed
        .path()
        .trim_end_matches('/')
        .rsplit_once("/pagerduty/")
        .map(|(_, a)| a.to_owned());
    if let Some(named) = in_query.or(after_intake.filter(|a| !a.contains('/'))) {
        return if named == account {
            Ok(url.to_owned())
        } else {
            Err(format!("names account `{named}`, not `{account}`"))
        };
    }
    if is_default || last.as_deref() == Some(account) {
        return Ok(url.to_owned());
    }
    parsed
        .path_segments_mut()
        .map_err(|()| "cannot take a path".to_owned())?
        .pop_if_empty()
        .push(account);
    Ok(parsed.to_string())
}

/// Where the secret goes: `webhooks.secrets` for the default account,
/// `[webhooks.accounts.<id>]` otherwise.
fn section(account: &str, is_default: bool) -> String {
    if is_default {
        String::new()
    } else {
        format!(" of [webhooks.accounts.{account}]")
    }
}

/// `url` without user and password (a URL may carry basic-auth credentials).
fn without_credentials(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => "[unparsable URL]".to_owned(),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("dutycard webhooks: {message}");
    ExitCode::FAILURE
}

/// Writes `secret` and a newline to `path`, readable by its owner only
/// (the mode is set before any byte is written).
fn write_secret(path: &Path, secret: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    #[cfg(unix)]
    {
        // An existing file keeps its mode on open: set it.
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    writeln!(file, "{secret}")
}

#[cfg(test)]
mod tests {
    use super::url_for_account;

    const INTAKE: &str = "https://dutycard.example/v1/webhooks/pagerduty";

    #[test]
    fn another_accounts_url_routes_to_its_secrets() {
        let ok = |url: &str, account: &str, default: bool| {
            url_for_account(url, account, default).unwrap()
        };
        assert_eq!(ok(INTAKE, "default", true), INTAKE, "the default: as given");
        assert_eq!(ok(INTAKE, "eu", false), format!("{INTAKE}/eu"));
        assert_eq!(
            ok(&format!("{INTAKE}/"), "eu", false),
            format!("{INTAKE}/eu")
        );
        // Already named: as given.
        for named in [format!("{INTAKE}/eu"), format!("{INTAKE}?account=eu")] {
            assert_eq!(ok(&named, "eu", false), named);
        }
        // Naming another account is refused, default or not.
        for (url, default) in [
            (format!("{INTAKE}/us"), false),
            (format!("{INTAKE}?account=us"), false),
            (format!("{INTAKE}/us"), true),
        ] {
            let err = url_for_account(&url, "eu", default).unwrap_err();
            assert!(err.contains("`us`"), "{err}");
        }
        // An id that needs escaping is one path segment.
        assert_eq!(ok(INTAKE, "a b", false), format!("{INTAKE}/a%20b"));
    }
}
