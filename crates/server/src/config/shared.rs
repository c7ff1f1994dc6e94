//! `[shared]`: what several replicas of dutycard share through Redis (one
//! PagerDuty budget per account, the card sections, their invalidations).
//! Without `redis_url` nothing is shared: one process needs nothing.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};

use super::Problem;
use super::checks::problem;

/// `[shared]` settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct SharedSettings {
    /// `redis://[user:password@]host:port[/db]` or `rediss://…` (TLS).
    /// Unset: nothing is shared. Shown with its password replaced; `Debug`
    /// never shows it.
    #[serde(
        default,
        serialize_with = "redacted_url",
        skip_serializing_if = "Option::is_none"
    )]
    pub redis_url: Option<SecretString>,
    /// How many replicas share each PagerDuty account: while Redis is
    /// unreachable each keeps to `rate_limit_per_minute / replicas`.
    pub replicas: u32,
    /// The most one Redis call may take before this replica goes local.
    pub call_timeout_ms: u64,
    /// Longest life of a replica's in-process copy of a shared section.
    pub local_ttl_ms: u64,
    /// How long the replica loading a section from PagerDuty holds off the
    /// others' loads of it.
    pub lease_ms: u64,
    /// How long a replica waits for another's load before loading itself
    /// (the loader renews its lease meanwhile, so this may exceed
    /// `lease_ms`: a live loader is waited for, a dead one's lease runs
    /// out within `lease_ms`).
    pub wait_ms: u64,
}

impl Default for SharedSettings {
    fn default() -> Self {
        Self {
            redis_url: None,
            replicas: 1,
            call_timeout_ms: 100,
            local_ttl_ms: 2000,
            lease_ms: 5000,
            wait_ms: 6000,
        }
    }
}

fn redacted_url<S: Serializer>(value: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(url) => s.serialize_str(&store::redact_url(url.expose_secret())),
        None => s.serialize_none(),
    }
}

/// The URL schemes redis-rs opens.
const SCHEMES: [&str; 4] = ["redis", "rediss", "redis+unix", "unix"];

impl SharedSettings {
    /// True when `redis_url` is set.
    pub fn enabled(&self) -> bool {
        self.redis_url.is_some()
    }

    /// `call_timeout_ms`.
    pub fn call_timeout(&self) -> Duration {
        Duration::from_millis(self.call_timeout_ms)
    }

    /// The waits and lifetimes of the shared card sections.
    pub fn timing(&self) -> cards::store::shared::SharedTiming {
        cards::store::shared::SharedTiming {
            l1_ttl: Duration::from_millis(self.local_ttl_ms),
            lease: Duration::from_millis(self.lease_ms),
            wait: Duration::from_millis(self.wait_ms),
            poll: Duration::from_millis(20).min(Duration::from_millis(self.wait_ms)),
        }
    }

    /// `request_deadline_ms` bounds the wait: a card waits for another
    /// replica's load within its own section timeout.
    pub(super) fn validate(&self, request_deadline_ms: u64, problems: &mut Vec<Problem>) {
        if let Some(url) = &self.redis_url {
            let text = url.expose_secret();
            let scheme_ok = url::Url::parse(text)
                .map(|u| SCHEMES.contains(&u.scheme()))
                .unwrap_or(false);
            if !scheme_ok {
                problems.push(problem(
                    "shared.redis_url",
                    format!(
                        "`{}` is not a Redis URL: use redis://[user:password@]host:port[/db] or rediss://… (TLS)",
                        store::redact_url(text)
                    ),
                ));
            }
        }
        if !(1..=1000).contains(&self.replicas) {
            problems.push(problem("shared.replicas", "must be between 1 and 1000"));
        }
        if !(1..=10_000).contains(&self.call_timeout_ms) {
            problems.push(problem(
                "shared.call_timeout_ms",
                "must be between 1 and 10000",
            ));
        }
        if !(1..=600_000).contains(&self.local_ttl_ms) {
            problems.push(problem(
                "shared.local_ttl_ms",
                "must be between 1 and 600000",
            ));
        }
        if !(self.call_timeout_ms..=600_000).contains(&self.lease_ms) {
            problems.push(problem(
                "shared.lease_ms",
                "must be at least shared.call_timeout_ms and at most 600000",
            ));
        }
        // Against the request deadline only when it is used: a small
        // deadline of a replica that shares nothing is no problem.
        let section_timeout = request_deadline_ms.saturating_mul(4) / 5;
        let too_long = self.enabled() && self.wait_ms >= section_timeout;
        if self.wait_ms == 0 || too_long {
            problems.push(problem(
                "shared.wait_ms",
                format!(
                    "must be above 0 and below the cards' section timeout ({section_timeout} ms, 80 % of server.request_deadline_ms)"
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_share_nothing() {
        let settings = SharedSettings::default();
        assert!(!settings.enabled());
        let mut problems = Vec::new();
        settings.validate(10_000, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        // A small request deadline matters only when something is shared.
        settings.validate(100, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        let on = SharedSettings {
            redis_url: Some(SecretString::from("redis://127.0.0.1:6379")),
            ..SharedSettings::default()
        };
        on.validate(100, &mut problems);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].key, "shared.wait_ms");
    }

    #[test]
    fn bad_values_are_named_and_the_password_never_shown() {
        let settings = SharedSettings {
            redis_url: Some(SecretString::from("http://u:hunter2@cache:6379")),
            replicas: 0,
            call_timeout_ms: 0,
            local_ttl_ms: 0,
            lease_ms: 50,
            wait_ms: 0,
        };
        let mut problems = Vec::new();
        settings.validate(10_000, &mut problems);
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "shared.redis_url",
                "shared.replicas",
                "shared.call_timeout_ms",
                "shared.local_ttl_ms",
                "shared.wait_ms"
            ],
            "{problems:?}"
        );
        let text = format!("{problems:?} {settings:?}");
        assert!(!text.contains("hunter2"), "{text}");
        let toml = toml::to_string(&SharedSettings {
            redis_url: Some(SecretString::from("redis://:hunter2@cache:6379/0")),
            ..SharedSettings::default()
        })
        .unwrap();
        assert!(!toml.contains("hunter2"), "{toml}");
        assert!(toml.contains("redis://:redacted@cache:6379/0"), "{toml}");
    }
}
