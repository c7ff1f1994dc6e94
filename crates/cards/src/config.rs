//! Freshness, capacity and batching settings.

use std::time::Duration;

/// Settings of a [`CardService`](crate::CardService).
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
///   long, never served stale.
#[derive(Debug, Clone, PartialEq)]
pub struct CardsConfig {
    /// Freshness of the service section.
    pub service_ttl: Duration,
    /// Freshness of the escalation policy section.
    pub escalation_policy_ttl: Duration,
    /// Freshness of the on-call section.
    pub oncall_ttl: Duration,
    /// Freshness of the incidents section.
    pub incidents_ttl: Duration,
    /// Freshness of the change events section.
    pub change_events_ttl: Duration,
    /// Freshness of the standards section.
    pub standards_ttl: Duration,
    /// Freshness of the metrics section.
    pub metrics_ttl: Duration,
    /// How long an integration key → service mapping is kept.
    pub integration_key_ttl: Duration,
    /// How long "this integration key matches no service" is kept.
    pub integration_key_miss_ttl: Duration,
    /// The oldest value that may still be served while refreshing or after a failed refresh.
    pub max_stale: Duration,
    /// Maximum number of entries per section cache.
    pub max_entries: u64,
    /// How long a cold miss waits for others to join its batch.
    pub batch_window: Duration,
    /// Maximum number of distinct keys in one batch call.
    pub batch_max_size: usize,
    /// How long a background refresh waits for others to join its batch.
    pub refresh_batch_window: Duration,
    /// Minimum time between the starts of two batch loads of one section.
    pub min_batch_interval: Duration,
    /// Distinct cold services from which the paged services list is used.
    pub service_list_threshold: usize,
    /// Maximum number of pages one services listing reads.
    pub service_list_max_pages: u32,
    /// How long change events are read per service after `GET /change_events` was refused.
    pub change_events_fallback_ttl: Duration,
    /// Upper bound on any wait for a batched load.
    pub load_timeout: Duration,
    /// Upper bound on the wait for a card's sections (from the start of the card).
    pub section_timeout: Duration,
    /// Freshness of the Backstage lists (escalation policies, teams, services).
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

impl CardsConfig {
    /// Checks the settings; the error names the offending field.
    pub fn validate(&self) -> Result<(), String> {
        let durations = [
            ("service_ttl", self.service_ttl),
            ("escalation_policy_ttl", self.escalation_policy_ttl),
            ("oncall_ttl", self.oncall_ttl),
            ("incidents_ttl", self.incidents_ttl),
            ("change_events_ttl", self.change_events_ttl),
            ("standards_ttl", self.standards_ttl),
            ("metrics_ttl", self.metrics_ttl),
            ("integration_key_ttl", self.integration_key_ttl),
            ("integration_key_miss_ttl", self.integration_key_miss_ttl),
            ("max_stale", self.max_stale),
            ("batch_window", self.batch_window),
            ("refresh_batch_window", self.refresh_batch_window),
            ("min_batch_interval", self.min_batch_interval),
            (
                "change_events_fallback_ttl",
                self.change_events_fallback_ttl,
            ),
            ("load_timeout", self.load_timeout),
            ("section_timeout", self.section_timeout),
        ];
        for (field, value) in durations {
            if value > MAX_DURATION {
                return Err(format!(
                    "cards.{field} must be at most one week ({} s), got {} s",
                    MAX_DURATION.as_secs(),
                    value.as_secs()
                ));
            }
        }
        let nonzero = [
            ("service_ttl", self.service_ttl),
            ("escalation_policy_ttl", self.escalation_policy_ttl),
            ("oncall_ttl", self.oncall_ttl),
            ("incidents_ttl", self.incidents_ttl),
            ("change_events_ttl", self.change_events_ttl),
            ("standards_ttl", self.standards_ttl),
            ("metrics_ttl", self.metrics_ttl),
            ("integration_key_ttl", self.integration_key_ttl),
            ("integration_key_miss_ttl", self.integration_key_miss_ttl),
            ("max_stale", self.max_stale),
            ("load_timeout", self.load_timeout),
            ("section_timeout", self.section_timeout),
        ];
        for (field, value) in nonzero {
            if value.is_zero() {
                return Err(format!("cards.{field} must be greater than zero"));
            }
        }
        if !(LIST_TTL_MIN..=LIST_TTL_MAX).contains(&self.list_ttl) {
            return Err(format!(
                "cards.list_ttl must be between {} s and {} s, got {} s",
                LIST_TTL_MIN.as_secs(),
                LIST_TTL_MAX.as_secs(),
                self.list_ttl.as_secs_f64()
            ));
        }
        if self.max_entries == 0 {
            return Err("cards.max_entries must be greater than zero".into());
        }
        if self.batch_max_size == 0 || self.batch_max_size > 100 {
            return Err("cards.batch_max_size must be between 1 and 100".into());
        }
        if self.service_list_threshold == 0 {
            return Err("cards.service_list_threshold must be greater than zero".into());
        }
        if self.service_list_max_pages == 0 || self.service_list_max_pages > 100 {
            return Err("cards.service_list_max_pages must be between 1 and 100".into());
        }
        Ok(())
    }

    /// The hard age limit of a cached value: never shorter than its freshness.
    pub(crate) fn hard_limit(&self, ttl: Duration) -> Duration {
        self.max_stale.max(ttl)
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
                config.validate().unwrap_err().contains("cards.list_ttl"),
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
}
