//! Reading the `pagerDuty:` block of a Backstage `app-config.yaml`, so a
//! Backstage installation moves to dutycard without rewriting its config.
//!
//! `dutycard serve --backstage-config app-config.yaml` (or the key
//! `backstage.app_config_file`) maps:
//!
//! | Backstage key | dutycard setting |
//! |---|---|
//! | `pagerDuty.apiToken` | `pagerduty.api_token` |
//! | `pagerDuty.oauth.{clientId,clientSecret,subDomain}` | `pagerduty.oauth.{client_id,client_secret,subdomain}` (scopes: the Node backend's read scopes) |
//! | `pagerDuty.oauth.region` | `pagerduty.region` (`us`/`eu`: the API and Events hosts follow) |
//! | `pagerDuty.oauth.identityUrl` | `pagerduty.oauth_token_url` |
//! | `pagerDuty.apiBaseUrl` / `eventsBaseUrl` | `pagerduty.api_base_url` / `events_base_url` |
//! | `pagerDuty.accounts[]` (`id`, `isDefault`, and the keys above) | `[pagerduty.accounts.<id>]` |
//!
//! When the block is read it replaces the credentials, region and hosts of
//! `[pagerduty]` (timeouts, retries and the rate limit stay). Like Backstage,
//! `accounts[]` wins over the top-level keys. An EU API host
//! (`api.eu.pagerduty.com`) without a region selects the EU region, so the
//! Events host follows.
//!
//! Other keys of the block (`enableUnauthenticatedAccess`,
//! `customFieldsSyncLogs`...) are ignored: callers authenticate with
//! `server.auth`, and the database-backed routes are not served.
//!
//! String values may use Backstage's substitutions: `${VAR}` (and `$${` for
//! a literal `${`), `{$env: VAR}` and `{$file: path}` (relative to the
//! app-config's folder). Variables come from the [`ConfigSources`] env map
//! (the process environment when none is given); a missing variable is an
//! error naming the key, never a silent empty credential.
//!
//! The YAML parser is `serde_norway`, the maintained fork of the archived
//! `serde_yaml` (`serde_yml` is flagged unsound).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;
use serde_norway::Value;

use super::{
    AccountSettings, ConfigError, ConfigSources, ConnectionSettings, DEFAULT_OAUTH_SCOPES,
    OAuthSettings, PagerDutySettings, Problem, Settings, problem,
};

/// The scopes the Node backend requests, minus `services.write` (dutycard
/// only reads).
pub const BACKSTAGE_OAUTH_SCOPES: [&str; 12] = DEFAULT_OAUTH_SCOPES;

// Secrets are `SecretString`s from the moment they are read: the derived
// `Debug` prints `[REDACTED]` for them.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PagerDutyBlock {
    api_token: Option<SecretString>,
    oauth: Option<OAuthBlock>,
    api_base_url: Option<String>,
    events_base_url: Option<String>,
    accounts: Option<Vec<AccountBlock>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OAuthBlock {
    client_id: Option<String>,
    client_secret: Option<SecretString>,
    sub_domain: Option<String>,
    region: Option<String>,
    identity_url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccountBlock {
    id: String,
    #[serde(default)]
    is_default: bool,
    api_token: Option<SecretString>,
    oauth: Option<OAuthBlock>,
    api_base_url: Option<String>,
    events_base_url: Option<String>,
}

/// What the block says, in dutycard's terms.
#[derive(Debug)]
pub struct PagerDutyFromBackstage {
    /// Top-level (legacy) account, when there is no `accounts[]`.
    pub single: Option<AccountSettings>,
    /// `accounts[]`, by id.
    pub accounts: BTreeMap<String, AccountSettings>,
}

/// A TOML layer setting `backstage.app_config_file` (for `--backstage-config`).
pub fn settings_layer(path: &Path) -> String {
    let value = toml::Value::String(path.display().to_string());
    format!("[backstage]\napp_config_file = {value}\n")
}

/// Applies `backstage.app_config_file`, if set, to `settings.pagerduty`.
pub(crate) fn apply_configured(
    settings: &mut Settings,
    sources: &ConfigSources,
) -> Result<(), ConfigError> {
    let Some(path) = settings.backstage.app_config_file.clone() else {
        return Ok(());
    };
    let env: HashMap<String, String> = match &sources.env {
        Some(env) => env.clone(),
        None => std::env::vars().collect(),
    };
    let block = read(&path, &env).map_err(ConfigError::Invalid)?;
    apply(&mut settings.pagerduty, block);
    Ok(())
}

/// Reads and maps the `pagerDuty:` block of the app-config at `path`.
pub fn read(
    path: &Path,
    env: &HashMap<String, String>,
) -> Result<PagerDutyFromBackstage, Vec<Problem>> {
    let key = "backstage.app_config_file";
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![problem(key, format!("cannot read {}: {e}", path.display()))])?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    parse(&text, env, &base).map_err(|problems| {
        problems
            .into_iter()
            .map(|p| Problem {
                origin: Some(path.display().to_string()),
                ..p
            })
            .collect()
    })
}

/// Maps the `pagerDuty:` block of an app-config document. `base` resolves
/// relative `$file` paths.
pub fn parse(
    text: &str,
    env: &HashMap<String, String>,
    base: &Path,
) -> Result<PagerDutyFromBackstage, Vec<Problem>> {
    let doc: Value = serde_norway::from_str(text).map_err(|e| {
        vec![problem(
            "backstage.app_config_file",
            format!("not a YAML document: {e}"),
        )]
    })?;
    let Some(block) = doc.get("pagerDuty").cloned() else {
        return Err(vec![problem(
            "pagerDuty",
            "the app-config has no `pagerDuty:` block",
        )]);
    };
    let mut problems = Vec::new();
    let block = substitute(block, "pagerDuty", env, base, &mut problems);
    if !problems.is_empty() {
        return Err(problems);
    }
    let block: PagerDutyBlock = serde_path_to_error::deserialize(block).map_err(|e| {
        let key = format!("pagerDuty.{}", e.path());
        let message = if is_secret_key(&key) {
            // serde quotes the value it rejected (``invalid type: integer
            // `123…` ``): never for a secret.
            "must be a string (the value is not shown: it is a secret)".to_owned()
        } else {
            e.inner().to_string()
        };
        vec![problem(key, message)]
    })?;
    let mut out = PagerDutyFromBackstage {
        single: None,
        accounts: BTreeMap::new(),
    };
    match block.accounts {
        Some(accounts) if !accounts.is_empty() => {
            for (i, account) in accounts.into_iter().enumerate() {
                let key = format!("pagerDuty.accounts[{i}]");
                let id = account.id.trim().to_owned();
                if id.is_empty() {
                    problems.push(problem(format!("{key}.id"), "must not be empty"));
                    continue;
                }
                let settings = account_settings(
                    &key,
                    account.api_token,
                    account.oauth,
                    account.api_base_url,
                    account.events_base_url,
                    account.is_default,
                    &mut problems,
                );
                if out.accounts.insert(id.clone(), settings).is_some() {
                    problems.push(problem(
                        format!("{key}.id"),
                        format!("`{id}` is used by another account"),
                    ));
                }
            }
        }
        _ => {
            out.single = Some(account_settings(
                "pagerDuty",
                block.api_token,
                block.oauth,
                block.api_base_url,
                block.events_base_url,
                true,
                &mut problems,
            ));
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// `…apiToken` and `…clientSecret` hold credentials.
fn is_secret_key(key: &str) -> bool {
    let last = key.rsplit('.').next().unwrap_or(key);
    last == "apiToken" || last == "clientSecret"
}

fn account_settings(
    key: &str,
    api_token: Option<SecretString>,
    oauth: Option<OAuthBlock>,
    api_base_url: Option<String>,
    events_base_url: Option<String>,
    is_default: bool,
    problems: &mut Vec<Problem>,
) -> AccountSettings {
    let mut region = None;
    let mut oauth_token_url = None;
    let oauth = oauth.map(|o| {
        match o.region.as_deref().map(|r| r.trim().to_ascii_lowercase()) {
            None => {}
            Some(r) if r == "us" => region = Some(pagerduty::Region::Us),
            Some(r) if r == "eu" => region = Some(pagerduty::Region::Eu),
            Some(other) => problems.push(problem(
                format!("{key}.oauth.region"),
                format!("`{other}` is not a PagerDuty region: use `us` or `eu`"),
            )),
        }
        oauth_token_url = o.identity_url;
        OAuthSettings {
            client_id: o.client_id,
            client_secret: o.client_secret,
            client_secret_file: None,
            subdomain: o.sub_domain,
            scopes: BACKSTAGE_OAUTH_SCOPES
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    });
    if region.is_none()
        && api_base_url
            .as_deref()
            .and_then(|u| url::Url::parse(u).ok())
            .is_some_and(|u| u.host_str() == Some("api.eu.pagerduty.com"))
    {
        region = Some(pagerduty::Region::Eu);
    }
    AccountSettings {
        region,
        connection: ConnectionSettings {
            api_base_url: api_base_url.map(|u| u.trim_end_matches('/').to_owned()),
            events_base_url: events_base_url.map(|u| u.trim_end_matches('/').to_owned()),
            oauth_token_url,
            api_token,
            api_token_file: None,
            oauth,
        },
        is_default,
    }
}

/// Puts the block into `[pagerduty]`: it replaces credentials, region, hosts
/// and accounts.
pub fn apply(pd: &mut PagerDutySettings, block: PagerDutyFromBackstage) {
    pd.connection = ConnectionSettings::default();
    pd.accounts = block.accounts;
    if let Some(single) = block.single {
        if let Some(region) = single.region {
            pd.region = region;
        }
        pd.connection = single.connection;
    }
}

/// Applies `${VAR}`, `$${`, `{$env: VAR}` and `{$file: path}` to every string.
fn substitute(
    value: Value,
    key: &str,
    env: &HashMap<String, String>,
    base: &Path,
    problems: &mut Vec<Problem>,
) -> Value {
    match value {
        Value::String(s) => match interpolate(&s, env) {
            Ok(s) => Value::String(s),
            Err(var) => {
                problems.push(problem(
                    key,
                    format!("environment variable `{var}` is not set"),
                ));
                Value::Null
            }
        },
        Value::Sequence(items) => Value::Sequence(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| substitute(v, &format!("{key}[{i}]"), env, base, problems))
                .collect(),
        ),
        Value::Mapping(map) => {
            if map.len() == 1 {
                if let Some(var) = map.get("$env") {
                    let var = var.as_str().unwrap_or_default();
                    return match env.get(var) {
                        Some(v) => Value::String(v.clone()),
                        None => {
                            problems.push(problem(
                                key,
                                format!("environment variable `{var}` ($env) is not set"),
                            ));
                            Value::Null
                        }
                    };
                }
                if let Some(file) = map.get("$file") {
                    let path = base.join(PathBuf::from(file.as_str().unwrap_or_default()));
                    return match std::fs::read_to_string(&path) {
                        Ok(text) => Value::String(text.trim().to_owned()),
                        Err(e) => {
                            problems.push(problem(
                                key,
                                format!("cannot read {} ($file): {e}", path.display()),
                            ));
                            Value::Null
                        }
                    };
                }
            }
            Value::Mapping(
                map.into_iter()
                    .map(|(k, v)| {
                        let name = k.as_str().unwrap_or("?").to_owned();
                        let v = substitute(v, &format!("{key}.{name}"), env, base, problems);
                        (k, v)
                    })
                    .collect(),
            )
        }
        other => other,
    }
}

/// `${VAR}` → the variable; `$${` → a literal `${`. Err names a missing variable.
fn interpolate(s: &str, env: &HashMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${")
            && let Some(end) = after.find('}')
        {
            let var = after[..end].trim();
            out.push_str(env.get(var).ok_or_else(|| var.to_owned())?);
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn interpolation() {
        let env = env(&[("A", "1"), ("B", "two")]);
        assert_eq!(interpolate("x${A}y${ B }", &env).unwrap(), "x1ytwo");
        assert_eq!(
            interpolate("$${A} costs $5", &env).unwrap(),
            "${A} costs $5"
        );
        assert_eq!(interpolate("${MISSING}", &env).unwrap_err(), "MISSING");
    }

    #[test]
    fn legacy_block_with_oauth_in_the_eu() {
        let yaml = r#"
app:
  title: Portal
backend:
  database:
    connection: ${DB_URL_NOT_READ}
pagerDuty:
  oauth:
    clientId: ${PD_CLIENT_ID}
    clientSecret: { $env: PD_CLIENT_SECRET }
    subDomain: acme
    region: EU
  enableUnauthenticatedAccess: false
"#;
        let env = env(&[("PD_CLIENT_ID", "cid"), ("PD_CLIENT_SECRET", "s3cret")]);
        let block = parse(yaml, &env, Path::new(".")).unwrap();
        let single = block.single.unwrap();
        assert_eq!(single.region, Some(pagerduty::Region::Eu));
        let oauth = single.connection.oauth.unwrap();
        assert_eq!(oauth.client_id.as_deref(), Some("cid"));
        assert_eq!(oauth.client_secret.unwrap().expose_secret(), "s3cret");
        assert_eq!(oauth.subdomain.as_deref(), Some("acme"));
        assert!(oauth.scopes.iter().any(|s| s == "standards.read"));
        assert!(block.accounts.is_empty());
    }

    #[test]
    fn accounts_list_and_eu_host_region() {
        let yaml = r#"
pagerDuty:
  apiToken: ignored-when-accounts-exist
  accounts:
    - id: us-main
      isDefault: true
      apiToken: ${US_TOKEN}
    - id: eu
      apiToken: eu-token
      apiBaseUrl: https://api.eu.pagerduty.com/
      eventsBaseUrl: https://events.eu.pagerduty.com/v2
"#;
        let block = parse(yaml, &env(&[("US_TOKEN", "us-token")]), Path::new(".")).unwrap();
        assert!(block.single.is_none());
        let us = &block.accounts["us-main"];
        assert!(us.is_default);
        assert_eq!(
            us.connection.api_token.as_ref().unwrap().expose_secret(),
            "us-token"
        );
        let eu = &block.accounts["eu"];
        assert_eq!(eu.region, Some(pagerduty::Region::Eu));
        assert_eq!(
            eu.connection.api_base_url.as_deref(),
            Some("https://api.eu.pagerduty.com")
        );
        assert!(!block.accounts["eu"].is_default);
    }

    #[test]
    fn missing_variables_and_bad_values_name_the_key() {
        let yaml = "pagerDuty:\n  apiToken: ${NOPE}\n";
        let problems = parse(yaml, &HashMap::new(), Path::new(".")).unwrap_err();
        assert_eq!(problems[0].key, "pagerDuty.apiToken");
        assert!(problems[0].message.contains("NOPE"), "{}", problems[0]);

        let yaml = "pagerDuty:\n  oauth:\n    clientId: a\n    region: mars\n";
        let problems = parse(yaml, &HashMap::new(), Path::new(".")).unwrap_err();
        assert_eq!(problems[0].key, "pagerDuty.oauth.region");

        let yaml = "pagerDuty:\n  accounts:\n    - id: a\n      isDefault: maybe\n";
        let problems = parse(yaml, &HashMap::new(), Path::new(".")).unwrap_err();
        assert!(
            problems[0].key.starts_with("pagerDuty.accounts"),
            "{}",
            problems[0]
        );

        let problems = parse("app: {}\n", &HashMap::new(), Path::new(".")).unwrap_err();
        assert_eq!(problems[0].key, "pagerDuty");
    }

    #[test]
    fn secrets_stay_out_of_errors_and_debug() {
        for yaml in [
            "pagerDuty:\n  apiToken: 12345678901234567890\n",
            "pagerDuty:\n  oauth:\n    clientId: a\n    clientSecret: 12345678901234567890\n",
            "pagerDuty:\n  accounts:\n    - id: a\n      apiToken: 12345678901234567890\n",
            "pagerDuty:\n  accounts:\n    - id: a\n      oauth:\n        clientSecret: 12345678901234567890\n",
        ] {
            let problems = parse(yaml, &HashMap::new(), Path::new(".")).unwrap_err();
            assert_eq!(problems.len(), 1, "{yaml}");
            let shown = problems[0].to_string();
            assert!(
                problems[0].key.ends_with("apiToken") || problems[0].key.ends_with("clientSecret"),
                "{shown}"
            );
            assert!(!shown.contains("12345678901234567890"), "{shown}");
            assert!(!shown.contains("1234567"), "{shown}");
            assert!(shown.contains("must be a string"), "{shown}");
        }
        // Other keys keep serde's message, value included.
        let yaml = "pagerDuty:\n  apiBaseUrl: 42\n";
        let problems = parse(yaml, &HashMap::new(), Path::new(".")).unwrap_err();
        assert!(problems[0].message.contains("42"), "{}", problems[0]);

        let yaml = "pagerDuty:\n  apiToken: tok-very-secret-1\n  oauth:\n    clientId: cid\n    clientSecret: cs-very-secret-2\n  accounts:\n    - id: a\n      apiToken: tok-very-secret-3\n";
        let doc: Value = serde_norway::from_str(yaml).unwrap();
        let block: PagerDutyBlock = serde_norway::from_value(doc["pagerDuty"].clone()).unwrap();
        let shown = format!("{block:?}");
        assert!(shown.contains("cid"), "{shown}");
        assert!(!shown.contains("very-secret"), "{shown}");
        let parsed = parse(yaml, &HashMap::new(), Path::new(".")).unwrap();
        let shown = format!("{parsed:?}");
        assert!(!shown.contains("very-secret"), "{shown}");
    }

    #[test]
    fn file_substitution_is_relative_to_the_app_config() {
        let dir = std::env::temp_dir().join(format!("dutycard-appcfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("token.txt"), "file-token\n").unwrap();
        let yaml = "pagerDuty:\n  apiToken:\n    $file: token.txt\n";
        let block = parse(yaml, &HashMap::new(), &dir).unwrap();
        assert_eq!(
            block
                .single
                .unwrap()
                .connection
                .api_token
                .unwrap()
                .expose_secret(),
            "file-token"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
