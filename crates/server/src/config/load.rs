//! Merging the sources, and finding every problem the merge shows: keys no
//! setting reads, values of the wrong type, and where each value came from.

use config::{Config, Environment, File, FileFormat};

use super::checks::{problem, redact_values};
use super::{ConfigError, ConfigSources, ENV_PREFIX, Problem, Settings};

/// The sources, merged in order (later wins).
pub(super) struct Merged {
    config: Config,
    /// The variables that were read (to tell a value's origin).
    env: std::collections::HashMap<String, String>,
    /// The file and its parsed content (likewise).
    file: Option<(String, toml::Value)>,
}

impl Merged {
    /// `base` TOML documents, then the file, the extra TOML layers and the
    /// environment. A file that cannot be read or TOML that does not parse
    /// is a [`ConfigError::Load`].
    pub(super) fn build(base: &[&str], sources: &ConfigSources) -> Result<Merged, ConfigError> {
        let mut builder = Config::builder();
        for layer in base {
            builder = builder.add_source(File::from_str(layer, FileFormat::Toml));
        }
        if let Some(path) = &sources.file {
            builder = builder.add_source(File::from(path.as_path()).format(FileFormat::Toml));
        }
        for toml in &sources.toml {
            builder = builder.add_source(File::from_str(toml, FileFormat::Toml));
        }
        // No `try_parsing`: it would turn a token such as "1e5" into a float.
        // Lists given as strings are split by `string_or_list` instead.
        let env = Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("_")
            .separator("__")
            .source(sources.env.clone());
        let config = builder
            .add_source(env)
            .build()
            .map_err(|e| ConfigError::Load(redact_values(&e.to_string())))?;
        let file = sources.file.as_ref().and_then(|path| {
            let text = std::fs::read_to_string(path).ok()?;
            Some((path.display().to_string(), toml::from_str(&text).ok()?))
        });
        let env = match &sources.env {
            Some(env) => env.clone(),
            None => std::env::vars()
                .filter(|(k, _)| k.starts_with(ENV_PREFIX))
                .collect(),
        };
        Ok(Merged { config, env, file })
    }

    /// The settings and a problem for every key no setting reads; or, when
    /// values have the wrong type, a problem for each (section by section,
    /// so one bad value does not hide another section's).
    pub(super) fn settings(&self) -> Result<(Settings, Vec<Problem>), Vec<Problem>> {
        let given: serde_json::Value = self
            .config
            .clone()
            .try_deserialize()
            .map_err(|e| vec![type_problem(&e)])?;
        let mut problems = Vec::new();
        let settings: Settings = match self.config.clone().try_deserialize() {
            Ok(settings) => settings,
            Err(whole) => {
                let mut type_errors = self.section_errors();
                if type_errors.is_empty() {
                    type_errors.push(type_problem(&whole));
                }
                return Err(type_errors);
            }
        };
        // What the settings read, serialized back: a key the sources set that
        // is missing there was read by nobody.
        let read = serde_json::to_value(&settings).unwrap_or_default();
        unknown_keys("", &given, &read, &mut problems);
        Ok((settings, problems))
    }

    /// Deserializes each section on its own, to report a type error in
    /// each of them.
    fn section_errors(&self) -> Vec<Problem> {
        /// The section alone under its own name, deserialized as a map, so
        /// the error's path still starts at the section (`server.port`).
        fn check<T: serde::de::DeserializeOwned>(
            config: &Config,
            key: &str,
            out: &mut Vec<Problem>,
        ) {
            let Ok(section) = config.get::<config::Value>(key) else {
                return;
            };
            let alone = Config::builder()
                .set_override(key, section)
                .and_then(|b| b.build())
                .and_then(|c| c.try_deserialize::<std::collections::HashMap<String, T>>());
            if let Err(e) = alone {
                out.push(type_problem(&e));
            }
        }
        let mut out = Vec::new();
        check::<super::ServerSettings>(&self.config, "server", &mut out);
        check::<super::PagerDutySettings>(&self.config, "pagerduty", &mut out);
        check::<cards::CardsConfig>(&self.config, "cache", &mut out);
        check::<super::TriggerSettings>(&self.config, "trigger", &mut out);
        check::<super::BackstageSettings>(&self.config, "backstage", &mut out);
        check::<super::WebhookSettings>(&self.config, "webhooks", &mut out);
        check::<super::StreamSettings>(&self.config, "streams", &mut out);
        check::<super::StoreSettings>(&self.config, "store", &mut out);
        check::<super::SharedSettings>(&self.config, "shared", &mut out);
        out
    }

    /// Notes where each problem's value was set: the environment (which
    /// wins), else the file; nothing for a default.
    pub(super) fn annotate(&self, problems: &mut [Problem]) {
        for p in problems {
            if p.origin.is_some() {
                continue;
            }
            let key = p.key.split('[').next().unwrap_or(&p.key);
            if self
                .env
                .keys()
                .any(|k| k.eq_ignore_ascii_case(&super::env_name(key)))
            {
                p.origin = Some("the environment".to_owned());
            } else if let Some((path, doc)) = &self.file
                && key
                    .split('.')
                    .try_fold(doc, |v, part| v.get(part))
                    .is_some()
            {
                p.origin = Some(path.clone());
            }
        }
    }
}

/// A deserialization error as a problem of its key (serde's message, with
/// any quoted value redacted: it may be a secret).
fn type_problem(e: &config::ConfigError) -> Problem {
    let text = with_valid_values(&redact_values(&e.to_string()));
    // `<message> for key `<key>`[ in <origin>]`
    if let Some((message, rest)) = text.rsplit_once(" for key `")
        && let Some((key, origin)) = rest.split_once('`')
    {
        let mut p = problem(key, message);
        p.origin = origin
            .strip_prefix(" in ")
            .map(str::to_owned)
            .filter(|o| !o.is_empty());
        return p;
    }
    problem("config", text)
}

/// The config crate's enum error (`enum Region does not have variant
/// constructor mars`) names neither the valid values nor the key's words:
/// say which values each of our enums takes.
fn with_valid_values(text: &str) -> String {
    const ENUMS: [(&str, &str); 5] = [
        ("Region", "`us` or `eu`"),
        ("Severity", "`critical`, `error`, `warning` or `info`"),
        ("AuthMode", "`none`, `static` or `jwt`"),
        ("LogFormat", "`json` or `pretty`"),
        ("TriggerAllow", "`known` or `any`"),
    ];
    let Some(rest) = text.strip_prefix("enum ") else {
        return text.to_owned();
    };
    let Some((name, tail)) = rest.split_once(" does not have variant constructor ") else {
        return text.to_owned();
    };
    let (value, suffix) = tail
        .split_once(" for key ")
        .map_or((tail, ""), |(v, s)| (v, s));
    let Some((_, valid)) = ENUMS.iter().find(|(n, _)| *n == name) else {
        return text.to_owned();
    };
    let value = redact_values(&format!("\"{value}\""));
    let mut out = format!("unknown value {value}, expected {valid}");
    if !suffix.is_empty() {
        out.push_str(" for key ");
        out.push_str(suffix);
    }
    out
}

/// Pushes a problem for every key of `given` (what the sources set) that
/// `read` (the deserialized settings, serialized back) lacks. Arrays of
/// tables are compared item by item; a value given as a string where the
/// settings hold a list (`a,b` from the environment) is not descended into.
fn unknown_keys(
    prefix: &str,
    given: &serde_json::Value,
    read: &serde_json::Value,
    problems: &mut Vec<Problem>,
) {
    use serde_json::Value;
    match (given, read) {
        (Value::Object(given), Value::Object(read)) => {
            for (key, value) in given {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                match read.get(key) {
                    Some(known) => unknown_keys(&path, value, known, problems),
                    None => problems.push(problem(
                        path,
                        "unknown key: no setting has this name (see config/default.toml for every key)",
                    )),
                }
            }
        }
        (Value::Array(given), Value::Array(read)) => {
            for (i, (value, known)) in given.iter().zip(read).enumerate() {
                unknown_keys(&format!("{prefix}[{i}]"), value, known, problems);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_found_at_every_depth() {
        let given = serde_json::json!({
            "server": {"port": "1", "prot": 2, "auth": {"tokens": [{"name": "a", "tokn": "x"}]}},
            "pagerduty": {"api_tokn": "x", "accounts": {"eu": {"regoin": "eu"}}},
            "extra": {}
        });
        let read = serde_json::json!({
            "server": {"port": 1, "auth": {"tokens": [{"name": "a", "token": "[redacted]"}]}},
            "pagerduty": {"accounts": {"eu": {"region": "eu"}}}
        });
        let mut problems = Vec::new();
        unknown_keys("", &given, &read, &mut problems);
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "extra",
                "pagerduty.accounts.eu.regoin",
                "pagerduty.api_tokn",
                "server.auth.tokens[0].tokn",
                "server.prot",
            ]
        );
    }
}
