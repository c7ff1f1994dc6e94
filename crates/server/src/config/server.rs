//! `[server]`: the listener, deadlines, CORS, logs and caller authentication.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::Problem;
use super::checks::{check_http_url, problem, redact, redact_values, string_or_list};

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub workers: usize,
    pub request_deadline_ms: u64,
    pub shutdown_timeout_secs: u64,
    pub body_limit_bytes: usize,
    #[serde(deserialize_with = "string_or_list")]
    pub cors_allowed_origins: Vec<String>,
    pub log_format: LogFormat,
    pub auth: AuthSettings,
}

impl ServerSettings {
    pub fn request_deadline(&self) -> Duration {
        Duration::from_millis(self.request_deadline_ms)
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AuthSettings {
    /// No default on purpose: running without auth must be a decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<AuthMode>,
    #[serde(default)]
    pub tokens: Vec<StaticToken>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_file: Option<PathBuf>,
    #[serde(default)]
    pub metrics_require_auth: bool,
    /// `mode = "jwt"`: where the signing keys are and what the tokens must say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtSettings>,
    /// The tokens read from `tokens_file` (not a key: printed settings show
    /// the file, not its tokens).
    #[serde(skip)]
    pub file_tokens: Vec<StaticToken>,
}

/// `[server.auth.jwt]`: verify callers' JWTs against a JWKS (e.g. Backstage's
/// `/api/auth/.well-known/jwks.json`).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct JwtSettings {
    /// URL of the JSON Web Key Set holding the issuer's public keys.
    pub jwks_url: String,
    /// Required `iss` claim.
    pub issuer: String,
    /// Accepted `aud` values (one is enough); a token without `aud` is refused.
    #[serde(deserialize_with = "string_or_list")]
    pub audience: Vec<String>,
    /// Clock skew tolerated on `exp` / `nbf`, in seconds.
    #[serde(default = "default_jwt_leeway_secs")]
    pub leeway_secs: u64,
    /// How long fetched keys are trusted before they are fetched again.
    #[serde(default = "default_jwks_cache_secs")]
    pub jwks_cache_secs: u64,
    /// Least time between two fetches triggered by an unknown `kid`, so
    /// forged tokens cannot make us hammer the JWKS endpoint.
    #[serde(default = "default_jwks_min_refresh_secs")]
    pub jwks_min_refresh_secs: u64,
}

fn default_jwt_leeway_secs() -> u64 {
    30
}

fn default_jwks_cache_secs() -> u64 {
    3600
}

fn default_jwks_min_refresh_secs() -> u64 {
    30
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// No authentication (logged as a warning at startup).
    None,
    /// `Authorization: Bearer <token>` against configured static tokens.
    Static,
    /// `Authorization: Bearer <JWT>` verified against a JWKS
    /// (`[server.auth.jwt]`); the `sub` claim identifies the caller.
    Jwt,
}

/// A named API token for `mode = "static"`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StaticToken {
    pub name: String,
    #[serde(serialize_with = "redact")]
    pub token: SecretString,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    #[serde(default)]
    tokens: Vec<StaticToken>,
}

impl AuthSettings {
    /// Every static token: `tokens`, then those of `tokens_file`.
    pub fn all_tokens(&self) -> impl Iterator<Item = &StaticToken> {
        self.tokens.iter().chain(&self.file_tokens)
    }

    /// Reads the tokens of `tokens_file` into `file_tokens`.
    pub(super) fn read_tokens_file(&mut self, problems: &mut Vec<Problem>) {
        let Some(path) = &self.tokens_file else {
            return;
        };
        let key = "server.auth.tokens_file";
        match std::fs::read_to_string(path) {
            Ok(text) => match toml::from_str::<TokensFile>(&text) {
                Ok(file) => self.file_tokens = file.tokens,
                Err(e) => problems.push(problem(
                    key,
                    format!(
                        "{} is not a TOML file of [[tokens]] name/token entries: {}",
                        path.display(),
                        redact_values(e.message())
                    ),
                )),
            },
            Err(e) => problems.push(problem(key, format!("cannot read {}: {e}", path.display()))),
        }
    }
}

impl ServerSettings {
    pub(super) fn validate(&self, problems: &mut Vec<Problem>) {
        let s = self;
        if s.host.trim().is_empty() {
            problems.push(problem("server.host", "must not be empty"));
        }
        if !(1..=64).contains(&s.workers) {
            problems.push(problem("server.workers", "must be between 1 and 64"));
        }
        if !(1..=600_000).contains(&s.request_deadline_ms) {
            problems.push(problem(
                "server.request_deadline_ms",
                "must be between 1 and 600000 (10 minutes)",
            ));
        }
        if s.shutdown_timeout_secs > 3600 {
            problems.push(problem(
                "server.shutdown_timeout_secs",
                "must be at most 3600",
            ));
        }
        if !(1024..=64 * 1024 * 1024).contains(&s.body_limit_bytes) {
            problems.push(problem(
                "server.body_limit_bytes",
                "must be between 1024 and 67108864 (64 MiB)",
            ));
        }
        for (i, origin) in s.cors_allowed_origins.iter().enumerate() {
            if let Err(why) = check_origin(origin) {
                problems.push(problem(
                    format!("server.cors_allowed_origins[{i}]"),
                    format!("`{origin}` {why}"),
                ));
            }
        }
        s.auth.validate(problems);
    }
}

impl AuthSettings {
    fn validate(&self, problems: &mut Vec<Problem>) {
        match self.mode {
            None => problems.push(problem(
                "server.auth.mode",
                "must be set explicitly: \"static\" (bearer tokens), \"jwt\" (JWTs checked against a JWKS) or \"none\" (no authentication)",
            )),
            Some(AuthMode::Static) if self.all_tokens().next().is_none() => problems.push(problem(
                "server.auth.tokens",
                "mode \"static\" needs at least one [[server.auth.tokens]] entry (or server.auth.tokens_file)",
            )),
            Some(AuthMode::None) if self.metrics_require_auth => problems.push(problem(
                "server.auth.metrics_require_auth",
                "needs caller authentication: server.auth.mode = \"static\" or \"jwt\" (mode \"none\" has no callers to check)",
            )),
            Some(AuthMode::Jwt) if self.jwt.is_none() => problems.push(problem(
                "server.auth.jwt",
                "mode \"jwt\" needs a [server.auth.jwt] section (jwks_url, issuer, audience)",
            )),
            _ => {}
        }
        if let Some(jwt) = &self.jwt {
            jwt.validate(problems);
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, token) in self.all_tokens().enumerate() {
            if token.name.trim().is_empty() {
                problems.push(problem(
                    format!("server.auth.tokens[{i}].name"),
                    "must not be empty",
                ));
            } else if !names.insert(token.name.as_str()) {
                problems.push(problem(
                    format!("server.auth.tokens[{i}].name"),
                    format!("`{}` is used by another token", token.name),
                ));
            }
            if token.token.expose_secret().chars().count() < 16 {
                problems.push(problem(
                    format!("server.auth.tokens[{i}].token"),
                    "must be at least 16 characters long",
                ));
            }
        }
    }
}

impl JwtSettings {
    fn validate(&self, problems: &mut Vec<Problem>) {
        if let Err(why) = check_http_url(&self.jwks_url) {
            problems.push(problem(
                "server.auth.jwt.jwks_url",
                format!("`{}` {why}", self.jwks_url),
            ));
        }
        if self.issuer.trim().is_empty() {
            problems.push(problem("server.auth.jwt.issuer", "must not be empty"));
        }
        if self.audience.iter().all(|a| a.trim().is_empty()) {
            problems.push(problem(
                "server.auth.jwt.audience",
                "must name at least one accepted audience, e.g. \"backstage\"",
            ));
        }
        if self.leeway_secs > 600 {
            problems.push(problem(
                "server.auth.jwt.leeway_secs",
                "must be at most 600",
            ));
        }
        if !(1..=7 * 24 * 3600).contains(&self.jwks_cache_secs) {
            problems.push(problem(
                "server.auth.jwt.jwks_cache_secs",
                "must be between 1 and 604800 (one week)",
            ));
        }
        if self.jwks_min_refresh_secs > 3600 {
            problems.push(problem(
                "server.auth.jwt.jwks_min_refresh_secs",
                "must be at most 3600",
            ));
        }
    }
}

fn check_origin(value: &str) -> Result<(), String> {
    check_http_url(value)?;
    let url = url::Url::parse(value).map_err(|e| e.to_string())?;
    if url.path() != "/" || url.query().is_some() || value.ends_with('/') {
        return Err("must be an origin (scheme://host[:port]) with no path".into());
    }
    Ok(())
}
