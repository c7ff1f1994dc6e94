//! Freshness, capacity and batching settings.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Settings of a [`CardService`](crate::CardService).
///
/// Serialized with unit-suffixed keys (`incidents_ttl_secs`,
/// `batch_window_ms`); absent keys take the defaults below, and unknown keys
/// are ignored by serde, so a caller that reads settings from a file should
/// check for them (the server does, for every section of its settings).
///
/// The defaults follow how fast each kind of PagerDuty data changes and what a
/// stale value costs the reader:
///
/// * service and escalation policy (`300 s`): names, teams and escalation rules
///   are edited by hand a few times a month; five minutes late is harmless.
///   Both sections come from the same upstream call, so that cached object is
///   refreshed after the shorter of the two TTLs.
/// * on-call (`60 s`): shifts hand over at fixed times, and a reader who opens
///   a card to page someone must not see yesterday's person for long.
/// * incidents (`20 s`): the most volatile section and the one a reader acts
///   on; 20 s keeps it close to live while batching keeps the cost at a few
///   calls a minute (see the crate docs for the budget).
/// * change events (`180 s`): informative history, read account-wide in one call.
/// * standards (`3600 s`) and metrics (`900 s`): scores and 30-day aggregates
///   move slowly.
/// * integration key → service (`3600 s`), unknown key (`30 s`): keys are
///   created rarely; an unknown key is cached briefly so that a misconfigured
///   portal hammering a wrong key costs one lookup per 30 s (its `query`
///   call; the fallback listing of every service runs at most once per 30 s
///   for all unknown keys together), while a key that was just created
///   becomes usable quickly.
/// * `max_stale` (`3600 s`): how long an expired section may still be served
///   (stale-while-revalidate, stale-if-error). Past it the value is dropped.
/// * `max_entries` (`10 000`) per cache: bounds memory (LRU-ish eviction by moka).
/// * `batch_window` (`5 ms`) and `batch_max_size` (`50`): a cold miss waits at
///   most 5 ms for other misses of the same section to share its upstream
///   call; 50 ids keep the query string well under URL length limits.
/// * `refresh_batch_window` (`2 s`): background refreshes serve nobody who is
///   waiting (the stale value was already returned), so they wait longer to
///   merge; this bounds steady-state calls per section to about 30 a minute.
/// * `min_batch_interval` (`250 ms`): two foreground batch loads of one
///   section start at least this far apart, so that a stream of cold views
///   costs at most 4 batch calls a second per section instead of one call per
///   view; when no load ran recently the wait is only `batch_window`.
/// * `service_list_threshold` (`10`): when that many distinct cold services
///   meet in one batch (or that many single service reads happened since the
///   last listing), the services are read with the paged list call
///   `GET /services?include[]=…` (100 per page) instead of one call each,
///   which also warms the cache for every service on those pages.
/// * `service_list_max_pages` (`20`): a listing never reads more than this many
///   pages (2 000 services); services beyond are read one by one.
/// * `change_events_fallback_ttl` (`600 s`): after `GET /change_events` is
///   refused (403, the token lacks `change_events.read`), change events are
///   read per service for this long before the account-wide call is retried.
/// * `load_timeout` (`30 s`): the longest a caller waits for a batch result;
///   the client's own deadline (20 s by default) normally ends a call first.
/// * `section_timeout` (`8 s`): the longest a card waits for its sections,
///   counted from the start of the card (the on-call section waits for the
///   service first, so both share it). A section still loading then reports a
///   `timeout` error inside the card (the load goes on in the background and
///   fills the cache). In [`CardService::cards`](crate::CardService::cards)
///   a timed-out service section fails only that card
///   ([`CardError::Timeout`](crate::CardError::Timeout)); a lone
///   [`CardService::card`](crate::CardService::card) waits for its service
///   under the caller's own deadline (there is nothing to answer without it).
///   Keep it below the
///   caller's own deadline (80 % of the server's request deadline by default:
///   8 s of 10 s), so one slow section never blanks a whole answer. It also
///   bounds how long [`CardService::shutdown`](crate::CardService::shutdown)
///   waits for running loads.
/// * `list_ttl` (`60 s`, 1 s to 1 h): the account-wide lists of the
///   Backstage routes (escalation policies, teams, services, filtered
///   services pages), read when a portal opens a picker; fresh for this
///   long, then served stale while one refresh reads them again (at most
///   `max_stale`, like the sections), so no picker waits on PagerDuty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CardsConfig {
    /// Freshness of the service section.
    #[serde(rename = "service_ttl_secs", with = "secs")]
    pub service_ttl: Duration,
    /// Freshness of the escalation policy section.
    #[serde(rename = "escalation_policy_ttl_secs", with = "secs")]
    pub escalation_policy_ttl: Duration,
    /// Freshness of the on-call section.
    #[serde(rename = "oncall_ttl_secs", with = "secs")]
    pub oncall_ttl: Duration,
    /// Freshness of the incidents section.
    #[serde(rename = "incidents_ttl_secs", with = "secs")]
    pub incidents_ttl: Duration,
    /// Freshness of the change events section.
    #[serde(rename = "change_events_ttl_secs", with = "secs")]
    pub change_events_ttl: Duration,
    /// Freshness of the standards section.
    #[serde(rename = "standards_ttl_secs", with = "secs")]
    pub standards_ttl: Duration,
    /// Freshness of the metrics section.
    #[serde(rename = "metrics_ttl_secs", with = "secs")]
    pub metrics_ttl: Duration,
    /// How long an integration key → service mapping is kept.
    #[serde(rename = "integration_key_ttl_secs", with = "secs")]
    pub integration_key_ttl: Duration,
    /// How long "this integration key matches no service" is kept.
    #[serde(rename = "integration_key_miss_ttl_secs", with = "secs")]
    pub integration_key_miss_ttl: Duration,
    /// The oldest value that may still be served while refreshing or after a failed refresh.
    #[serde(rename = "max_stale_secs", with = "secs")]
    pub max_stale: Duration,
    /// Maximum number of entries per section cache.
    pub max_entries: u64,
    /// How long a cold miss waits for others to join its batch.
    #[serde(rename = "batch_window_ms", with = "millis")]
    pub batch_window: Duration,
    /// Maximum number of distinct keys in one batch call.
    pub batch_max_size: usize,
    /// How long a background refresh waits for others to join its batch.
    #[serde(rename = "refresh_batch_window_ms", with = "millis")]
    pub refresh_batch_window: Duration,
    /// Minimum time between the starts of two batch loads of one section.
    #[serde(rename = "min_batch_interval_ms", with = "millis")]
    pub min_batch_interval: Duration,
    /// Distinct cold services from which the paged services list is used.
    pub service_list_threshold: usize,
    /// Maximum number of pages one services listing reads.
    pub service_list_max_pages: u32,
    /// How long change events are read per service after `GET /change_events` was refused.
    #[serde(rename = "change_events_fallback_ttl_secs", with = "secs")]
    pub change_events_fallback_ttl: Duration,
    /// Upper bound on any wait for a batched load.
    #[serde(rename = "load_timeout_ms", with = "millis")]
    pub load_timeout: Duration,
    /// Upper bound on the wait for a card's sections (from the start of the card).
    ///
    /// Not a configuration key: the server derives it from its request
    /// deadline (see the server's configuration docs).
    #[serde(skip)]
    pub section_timeout: Duration,
    /// Freshness of the Backstage lists (escalation policies, teams, services).
    ///
    /// Not a `[cache]` key: the server sets it from `backstage.list_ttl_secs`.
    #[serde(skip)]
    pub list_ttl: Duration,
}

impl Default for CardsConfig {
    fn default() -> Self {
        CardsConfig {
            service_ttl: Duration::from_secs(300),
            escalation_policy_ttl: Duration::from_secs(300),
            oncall_ttl: Duration::from_secs(60),
            incidents_ttl: Duration::from_secs(20),
            change_events_ttl: Duration::from_secs(180),
            standards_ttl: Duration::from_secs(3600),
            metrics_ttl: Duration::from_secs(900),
            integration_key_ttl: Duration::from_secs(3600),
            integration_key_miss_ttl: Duration::from_secs(30),
            max_stale: Duration::from_secs(3600),
            max_entries: 10_000,
            batch_window: Duration::from_millis(5),
            batch_max_size: 50,
            refresh_batch_window: Duration::from_secs(2),
            min_batch_interval: Duration::from_millis(250),
            service_list_threshold: 10,
            service_list_max_pages: 20,
            change_events_fallback_ttl: Duration::from_secs(600),
            load_timeout: Duration::from_secs(30),
            section_timeout: Duration::from_secs(8),
            list_ttl: Duration::from_secs(60),
        }
    }
}

/// The longest any duration setting may be (one week): longer values are
/// surely mistakes, and they would overflow the clock when added to it.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 86_400);

/// The shortest `list_ttl`.
pub const LIST_TTL_MIN: Duration = Duration::from_secs(1);
/// The longest `list_ttl` (one hour: pickers should see new services the same day).
pub const LIST_TTL_MAX: Duration = Duration::from_secs(3600);

/// Longest `batch_window`: it delays every cache miss.
pub const MAX_BATCH_WINDOW: Duration = Duration::from_secs(1);

/// One invalid setting: its key (the serialized field name, e.g.
/// `incidents_ttl_secs`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The key, as in the serialized form.
    pub key: &'static str,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

impl CardsConfig {
    /// Every invalid setting, each naming its key (empty when all are valid).
    pub fn problems(&self) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        let mut push = |key, message: String| problems.push(ConfigProblem { key, message });
        // TTLs: zero would call PagerDuty on every request.
        let ttls = [
            ("service_ttl_secs", self.service_ttl),
            ("escalation_policy_ttl_secs", self.escalation_policy_ttl),
            ("oncall_ttl_secs", self.oncall_ttl),
            ("incidents_ttl_secs", self.incidents_ttl),
            ("change_events_ttl_secs", self.change_events_ttl),
            ("standards_ttl_secs", self.standards_ttl),
            ("metrics_ttl_secs", self.metrics_ttl),
            ("integration_key_ttl_secs", self.integration_key_ttl),
            (
                "integration_key_miss_ttl_secs",
                self.integration_key_miss_ttl,
            ),
        ];
        // Other durations that must not be zero.
        let positive = [
            ("max_stale_secs", self.max_stale),
            ("load_timeout_ms", self.load_timeout),
            ("section_timeout", self.section_timeout),
        ];
        let others = [
            ("batch_window_ms", self.batch_window),
            ("refresh_batch_window_ms", self.refresh_batch_window),
            ("min_batch_interval_ms", self.min_batch_interval),
            (
                "change_events_fallback_ttl_secs",
                self.change_events_fallback_ttl,
            ),
        ];
        for (key, value) in ttls {
            if value.is_zero() {
                push(
                    key,
                    "a TTL of zero would call PagerDuty on every request: use at least 1".into(),
                );
            }
        }
        for (key, value) in positive {
            if value.is_zero() {
                push(key, "must be greater than zero".into());
            }
        }
        for (key, value) in ttls.into_iter().chain(positive).chain(others) {
            if value > MAX_DURATION {
                push(
                    key,
                    format!(
                        "must be at most one week ({} s), got {} s",
                        MAX_DURATION.as_secs(),
                        value.as_secs()
                    ),
                );
            }
        }
        if self.batch_window > MAX_BATCH_WINDOW && self.batch_window <= MAX_DURATION {
            push(
                "batch_window_ms",
                "must be at most 1000: it delays every cache miss".into(),
            );
        }
        if self.max_entries == 0 {
            push("max_entries", "must be at least 1".into());
        }
        if !(1..=100).contains(&self.batch_max_size) {
            push(
                "batch_max_size",
                "must be between 1 and 100 (PagerDuty's largest page)".into(),
            );
        }
        if self.service_list_threshold == 0 {
            push("service_list_threshold", "must be at least 1".into());
        }
        if !(1..=100).contains(&self.service_list_max_pages) {
            push("service_list_max_pages", "must be between 1 and 100".into());
        }
        if !(LIST_TTL_MIN..=LIST_TTL_MAX).contains(&self.list_ttl) {
            push(
                "list_ttl",
                format!(
                    "must be between {} s and {} s, got {} s",
                    LIST_TTL_MIN.as_secs(),
                    LIST_TTL_MAX.as_secs(),
                    self.list_ttl.as_secs_f64()
                ),
            );
        }
        problems
    }

    /// Checks the settings; the error names the first offending key.
    pub fn validate(&self) -> Result<(), String> {
        match self.problems().into_iter().next() {
            None => Ok(()),
            Some(problem) => Err(problem.to_string()),
        }
    }

    /// The hard age limit of a cached value: never shorter than its freshness.
    pub(crate) fn hard_limit(&self, ttl: Duration) -> Duration {
        self.max_stale.max(ttl)
    }
}

/// Durations as whole seconds (`*_secs` keys).
mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

/// Durations as whole milliseconds (`*_ms` keys).
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(CardsConfig::default().validate(), Ok(()));
    }

    #[test]
    fn bad_values_name_the_field() {
        let config = CardsConfig {
            incidents_ttl: Duration::ZERO,
            ..CardsConfig::default()
        };
        assert!(config.validate().unwrap_err().contains("incidents_ttl"));
        let config = CardsConfig {
            batch_max_size: 101,
            ..CardsConfig::default()
        };
        assert!(config.validate().unwrap_err().contains("batch_max_size"));
    }

    #[test]
    fn list_ttl_is_between_a_second_and_an_hour() {
        for bad in [
            Duration::ZERO,
            Duration::from_millis(999),
            Duration::from_secs(3601),
        ] {
            let config = CardsConfig {
                list_ttl: bad,
                ..CardsConfig::default()
            };
            assert!(
                config.validate().unwrap_err().contains("list_ttl"),
                "{bad:?}"
            );
        }
        for good in [LIST_TTL_MIN, LIST_TTL_MAX] {
            let config = CardsConfig {
                list_ttl: good,
                ..CardsConfig::default()
            };
            assert_eq!(config.validate(), Ok(()));
        }
    }

    #[test]
    fn durations_too_large_for_the_clock_are_refused_by_name() {
        let huge = [
            CardsConfig {
                section_timeout: Duration::MAX,
                ..CardsConfig::default()
            },
            CardsConfig {
                max_stale: Duration::MAX,
                ..CardsConfig::default()
            },
            CardsConfig {
                min_batch_interval: Duration::MAX,
                ..CardsConfig::default()
            },
            CardsConfig {
                change_events_fallback_ttl: MAX_DURATION + Duration::from_secs(1),
                ..CardsConfig::default()
            },
        ];
        let fields = [
            "section_timeout",
            "max_stale",
            "min_batch_interval",
            "change_events_fallback_ttl",
        ];
        for (config, field) in huge.iter().zip(fields) {
            let error = config.validate().unwrap_err();
            assert!(error.contains(field), "{error}");
            assert!(error.contains("one week"), "{error}");
        }
        let week = CardsConfig {
            max_stale: MAX_DURATION,
            ..CardsConfig::default()
        };
        assert_eq!(week.validate(), Ok(()));
    }

    #[test]
    fn every_problem_is_listed_with_its_key() {
        let config = CardsConfig {
            incidents_ttl: Duration::ZERO,
            batch_max_size: 0,
            batch_window: Duration::from_secs(2),
            max_entries: 0,
            ..CardsConfig::default()
        };
        let keys: Vec<&str> = config.problems().iter().map(|p| p.key).collect();
        assert_eq!(
            keys,
            [
                "incidents_ttl_secs",
                "batch_window_ms",
                "max_entries",
                "batch_max_size"
            ]
        );
    }

    #[test]
    fn serialized_keys_carry_their_unit_and_round_trip() {
        let config = CardsConfig {
            oncall_ttl: Duration::from_secs(15),
            batch_window: Duration::from_millis(7),
            ..CardsConfig::default()
        };
        let value = serde_json::to_value(&config).unwrap();
        assert_eq!(value["oncall_ttl_secs"], 15);
        assert_eq!(value["batch_window_ms"], 7);
        assert!(value.get("section_timeout").is_none(), "{value}");
        let back: CardsConfig = serde_json::from_value(value).unwrap();
        assert_eq!(back, config);
        // Absent keys take the defaults.
        let partial: CardsConfig =
            serde_json::from_value(serde_json::json!({"incidents_ttl_secs": 5})).unwrap();
        assert_eq!(partial.incidents_ttl, Duration::from_secs(5));
        assert_eq!(partial.oncall_ttl, CardsConfig::default().oncall_ttl);
    }
}
