//! `dutycard check-config`'s output: the effective settings as TOML that
//! validates when fed back, secrets never shown.

use super::Settings;

/// See [`Settings::to_redacted_toml`].
pub(super) fn redacted_toml(settings: &Settings) -> String {
    let mut value = match toml::Value::try_from(settings) {
        Ok(value) => value,
        Err(e) => return format!("# cannot render settings: {e}\n"),
    };
    fed_back_safely(&mut value);
    let mut out = derived_hosts(settings);
    out.push_str(
        &toml::to_string_pretty(&value)
            .unwrap_or_else(|e| format!("# cannot render settings: {e}\n")),
    );
    out
}

/// What would not validate when fed back is left out: a secret read from a
/// file is shown as the file only (the value and the file together are a
/// conflict), and a password inside a URL is replaced.
fn fed_back_safely(value: &mut toml::Value) {
    match value {
        toml::Value::Table(table) => {
            for (secret, file) in [
                ("api_token", "api_token_file"),
                ("client_secret", "client_secret_file"),
                ("secrets", "secrets_file"),
            ] {
                if table.contains_key(file) {
                    table.remove(secret);
                }
            }
            for (_, item) in table.iter_mut() {
                fed_back_safely(item);
            }
        }
        toml::Value::Array(items) => items.iter_mut().for_each(fed_back_safely),
        toml::Value::String(text) => {
            if let Ok(mut url) = url::Url::parse(text)
                && url.password().is_some()
                && url.set_password(Some("redacted")).is_ok()
            {
                *text = url.to_string();
            }
        }
        _ => {}
    }
}

/// The hosts each account ends up with, as comments (they follow from the
/// region unless set).
fn derived_hosts(settings: &Settings) -> String {
    let pd = &settings.pagerduty;
    let mut accounts = Vec::new();
    if pd.accounts.is_empty() {
        accounts.push((super::LEGACY_ACCOUNT_ID, pd.region, &pd.connection));
    }
    for (id, account) in &pd.accounts {
        accounts.push((id.as_str(), pd.region_of(account), &account.connection));
    }
    let mut out = String::from("# derived values (not keys):\n");
    for (id, region, connection) in accounts {
        let or = |set: &Option<String>, default: &str| set.clone().unwrap_or(default.to_owned());
        out.push_str(&format!(
            "#   account {id}: region {region}, API {}, Events {}, OAuth {}\n",
            or(&connection.api_base_url, region.api_base_url()),
            or(&connection.events_base_url, region.events_base_url()),
            or(
                &connection.oauth_token_url,
                pagerduty::region::OAUTH_TOKEN_URL
            ),
        ));
    }
    out.push_str(&format!(
        "#   cards: each section waits at most {} ms (80 % of server.request_deadline_ms)\n",
        settings.cache.section_timeout.as_millis()
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_inside_urls_and_secrets_from_files_are_left_out() {
        let mut value: toml::Value = toml::from_str(
            "[store]\nurl = \"postgres://app:hunter2@db:5432/dutycard\"\n[pagerduty]\napi_token = \"[redacted]\"\napi_token_file = \"/run/t\"\n",
        )
        .unwrap();
        fed_back_safely(&mut value);
        let text = toml::to_string(&value).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            text.contains("postgres://app:redacted@db:5432/dutycard"),
            "{text}"
        );
        assert!(!text.contains("api_token ="), "{text}");
        assert!(text.contains("api_token_file"), "{text}");
    }
}
