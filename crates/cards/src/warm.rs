//! The warm card path: a card whose sections are all fresh is read in one
//! synchronous step.
//!
//! A card read through the section caches costs 5 to 6 async moka reads
//! and the futures around them (about 4 µs, most of what a warm card costs
//! beyond the HTTP stack). So once a card's sections were all read fresh,
//! their lookups are kept here together, with a [`Seal`] per section: the
//! write count of the section's store stripe taken *before* the read, and
//! the instant the value stops being fresh (or, while shared, its L1 copy
//! is due to be re-read). A later read of the card takes them as they are
//! while every seal holds, and recomputes only each section's `max_age`.
//!
//! Why that is the answer a cache read would give: every write to a store
//! (a miss kept, a refresh, an invalidation, a page that warms it) moves
//! its key's stripe once the new value is visible, so a moved stripe means
//! "read again"; an unmoved one means the stored value is the one kept
//! here (a write to another key of the stripe costs only a slow read).
//! Before `keep_until` every kept value is still fresh, so a cache read
//! would have been a hit: the same counters are bumped. A section read
//! stale while its refresh runs is kept too (stale, `max_age` 0): its
//! refresh ends with a write, which ends the kept card, and until then a
//! cache read would only have found the refresh running (a stale read is
//! counted). Anything else (a failed section, a stale one with an error
//! or no refresh running, a section never read) takes the slow path,
//! which refreshes, loads and keeps the card again.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Instant;

use crate::cache::Lookup;
use crate::model::CardOptions;
use crate::parts::CardParts;
use crate::service::CardService;
use crate::stats::Counters;
use crate::store::Writes;

/// Kept cards by service id; one slot per combination of the optional
/// sections (standards, metrics).
#[derive(Default)]
pub(crate) struct WarmCards {
    cards: RwLock<HashMap<String, [Option<CardParts>; 4]>>,
}

fn slot(options: &CardOptions) -> usize {
    usize::from(options.include_standards) | usize::from(options.include_metrics) << 1
}

impl CardService {
    /// The card's parts, if they were kept and still hold (see the module doc).
    pub(crate) fn warm_parts(&self, id: &str, options: &CardOptions) -> Option<CardParts> {
        let i = &self.inner;
        let now = i.services.now();
        let mut parts = {
            let cards = i.warm.cards.read().unwrap_or_else(|e| e.into_inner());
            let kept = cards.get(id)?[slot(options)].as_ref()?;
            if !self.holds(kept, now) {
                return None;
            }
            kept.clone()
        };
        parts.options = options.clone();
        fn tick<V>(lookup: &mut Lookup<V>, now: Instant) {
            if let Some(until) = lookup.seal.fresh_until {
                lookup.max_age = until.saturating_duration_since(now);
            }
        }
        fn tick_ok<V>(lookup: &mut Result<Lookup<V>, crate::error::SectionError>, now: Instant) {
            if let Ok(lookup) = lookup {
                tick(lookup, now);
            }
        }
        tick(&mut parts.service, now);
        tick_ok(&mut parts.oncall, now);
        tick_ok(&mut parts.incidents, now);
        tick_ok(&mut parts.change_events, now);
        // What the cache reads would have counted: a hit per fresh section,
        // a stale read per stale one (whose refresh is running: see `keep_warm`).
        fn count<V>(counters: &crate::stats::Counters, lookup: &Lookup<V>) {
            Counters::bump(if lookup.stale {
                &counters.stale_served
            } else {
                &counters.hits
            });
        }
        fn count_ok<V>(
            counters: &crate::stats::Counters,
            lookup: &Result<Lookup<V>, crate::error::SectionError>,
        ) {
            if let Ok(lookup) = lookup {
                count(counters, lookup);
            }
        }
        count(i.services.counters(), &parts.service);
        count_ok(i.oncalls.counters(), &parts.oncall);
        count_ok(i.incidents.counters(), &parts.incidents);
        count_ok(i.change_events.counters(), &parts.change_events);
        if let Some(standards) = &mut parts.standards {
            tick_ok(standards, now);
            count_ok(i.standards.counters(), standards);
        }
        if let Some(metrics) = &mut parts.metrics {
            tick_ok(metrics, now);
            count_ok(i.metrics.counters(), metrics);
        }
        Some(parts)
    }

    /// Keeps `parts` for the next reads of the card, when every section in
    /// it may be reused: read fresh, or read stale while its refresh runs
    /// and without an error (the seal says which: `Store::seal`, and
    /// `SectionCache::lookup`).
    pub(crate) fn keep_warm(&self, parts: &CardParts) {
        let now = self.inner.services.now();
        // The check a kept card's reads make (every seal reusable now and
        // unmoved): a read whose own loads moved its marks is not kept
        // (the next read, all hits, is).
        if !self.holds(parts, now) {
            return;
        }
        let mut cards = self
            .inner
            .warm
            .cards
            .write()
            .unwrap_or_else(|e| e.into_inner());
        // Bounded like a section cache: ids come from reads of real
        // services only (a card is kept only once its service was read),
        // so this rarely starts over.
        if cards.len() as u64 >= self.inner.config.max_entries
            && !cards.contains_key(&parts.service_id)
        {
            cards.clear();
        }
        cards.entry(parts.service_id.clone()).or_default()[slot(&parts.options)] =
            Some(parts.clone());
    }

    /// Whether every section of `kept` is still what its cache holds, and fresh.
    fn holds(&self, kept: &CardParts, now: Instant) -> bool {
        let i = &self.inner;
        fn sealed<V>(writes: &Writes, lookup: &Lookup<V>, now: Instant) -> bool {
            lookup.seal.keep_until.is_some_and(|until| now < until)
                && writes.holds(lookup.seal.mark)
        }
        fn sealed_ok<V>(
            writes: &Writes,
            lookup: &Result<Lookup<V>, crate::error::SectionError>,
            now: Instant,
        ) -> bool {
            lookup.as_ref().is_ok_and(|l| sealed(writes, l, now))
        }
        i.missing_services.writes.holds(kept.missing)
            && sealed(i.services.writes(), &kept.service, now)
            && sealed_ok(i.oncalls.writes(), &kept.oncall, now)
            && sealed_ok(i.incidents.writes(), &kept.incidents, now)
            && kept.change_events.as_ref().is_ok_and(|events| {
                sealed(
                    i.change_events.writes(events.value.account_wide),
                    events,
                    now,
                )
            })
            && kept
                .standards
                .as_ref()
                .is_none_or(|s| sealed_ok(i.standards.writes(), s, now))
            && kept
                .metrics
                .as_ref()
                .is_none_or(|m| sealed_ok(i.metrics.writes(), m, now))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use crate::clock::ManualClock;
    use crate::config::CardsConfig;
    use crate::error::CardError;
    use crate::loaders::testing::{client, sim};
    use crate::model::{CardOptions, Section, ServiceId, ServiceRef};
    use crate::service::CardService;

    fn options() -> CardOptions {
        CardOptions {
            include_standards: true,
            include_metrics: true,
            ..CardOptions::default()
        }
    }

    fn upstream_calls(cards: &CardService) -> u64 {
        let s = cards.stats();
        [
            s.service,
            s.oncall,
            s.incidents,
            s.change_events,
            s.standards,
            s.metrics,
        ]
        .iter()
        .map(|s| s.upstream_calls)
        .sum()
    }

    /// The counters that moved between two `Debug` prints of the stats
    /// (name path and difference), to compare what two reads counted.
    fn stats_delta(before: &str, after: &str) -> Vec<(usize, i128)> {
        let numbers = |s: &str| -> Vec<i128> {
            s.split(|c: char| !c.is_ascii_digit())
                .filter(|n| !n.is_empty())
                .map(|n| n.parse().unwrap())
                .collect()
        };
        let (a, b) = (numbers(before), numbers(after));
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(&b)
            .enumerate()
            .filter(|(_, (x, y))| x != y)
            .map(|(i, (x, y))| (i, y - x))
            .collect()
    }

    #[tokio::test]
    async fn a_warm_card_is_read_whole_and_says_what_the_section_caches_would() {
        let sim = sim(3).await;
        let id: ServiceId = sim.account().services[0].id.parse().unwrap();
        let clock = Arc::new(ManualClock::new());
        let cards = CardService::with_clock(
            client(&sim),
            CardsConfig::default(),
            Arc::clone(&clock) as _,
        );
        let options = options();
        assert!(cards.warm_parts(id.as_str(), &options).is_none(), "cold");
        let read = || cards.card_parts(ServiceRef::Id(id.clone()), &options);
        read().await.unwrap();
        // The cold read's loads moved the stripes it had marked: not kept.
        assert!(cards.warm_parts(id.as_str(), &options).is_none());
        let first = read().await.unwrap();
        // Fresh everywhere now: kept. Only for these options.
        let warm = cards.warm_parts(id.as_str(), &options).expect("kept");
        assert!(
            cards
                .warm_parts(id.as_str(), &CardOptions::default())
                .is_none()
        );
        assert_eq!(warm.versions(), first.versions());
        let calls = upstream_calls(&cards);
        let hits = cards.stats().incidents.hits;
        // Later, still fresh: the max ages count down as a cache read's would.
        clock.advance(Duration::from_secs(7));
        let warm = cards
            .warm_parts(id.as_str(), &options)
            .expect("still fresh");
        let slow = Box::pin(cards.parts_by_id(&id, &options, false))
            .await
            .unwrap();
        assert_eq!(warm.versions(), slow.versions());
        assert_eq!(warm.max_age_secs(), slow.max_age_secs());
        assert_eq!(
            warm.max_age_secs()[3],
            first.max_age_secs()[3].map(|age| age - 7)
        );
        let built = warm.build();
        assert_eq!(
            crate::ServiceCard {
                generated_at: built.generated_at,
                ..slow.build()
            },
            built
        );
        assert_eq!(upstream_calls(&cards), calls, "no upstream call");
        assert_eq!(cards.stats().incidents.hits, hits + 2, "one hit per read");
        // And every counter moves as a slow read moves it.
        let delta = |f: &dyn Fn()| {
            let before = format!("{:?}", cards.stats());
            f();
            (before, format!("{:?}", cards.stats()))
        };
        let (a, b) = delta(&|| {
            cards.warm_parts(id.as_str(), &options).unwrap();
        });
        let before_slow = format!("{:?}", cards.stats());
        Box::pin(cards.parts_by_id(&id, &options, false))
            .await
            .unwrap();
        let after_slow = format!("{:?}", cards.stats());
        assert_ne!(a, b);
        assert_eq!(
            stats_delta(&a, &b),
            stats_delta(&before_slow, &after_slow),
            "a warm read counts what a slow read counts"
        );
        // Past a section's freshness: not kept any more (the slow path
        // serves it stale and refreshes it).
        clock.advance(CardsConfig::default().incidents_ttl);
        assert!(cards.warm_parts(id.as_str(), &options).is_none());
        let refreshes = cards.stats().incidents.upstream_calls;
        let stale = read().await.unwrap();
        assert_ne!(stale.versions(), first.versions());
        // Its refresh is running: the stale card is kept, as stale.
        let served = cards.stats().incidents.stale_served;
        let kept = cards.warm_parts(id.as_str(), &options).expect("kept stale");
        assert_eq!(kept.versions(), stale.versions());
        assert_eq!(kept.max_age_secs()[3], Some(0));
        assert!(kept.build().incidents.stale);
        assert_eq!(cards.stats().incidents.stale_served, served + 1);
        // The refresh lands (a write): the kept card ends, the next reads
        // are fresh and kept again.
        let waited = tokio::time::timeout(Duration::from_secs(10), async {
            while cards.stats().incidents.upstream_calls == refreshes
                || cards.warm_parts(id.as_str(), &options).is_some()
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        assert!(waited.is_ok(), "the refresh did not land within 10 s");
        let fresh = read().await.unwrap();
        assert!(!fresh.build().incidents.stale);
        let kept = cards.warm_parts(id.as_str(), &options).expect("kept again");
        assert_eq!(kept.versions(), fresh.versions());
        // A 404 remembered for the service (its entry was evicted, say, and
        // read again) ends the kept card: the slow path answers not found.
        cards
            .inner
            .missing_services
            .insert_fresh(id.as_str().to_owned(), ())
            .await;
        assert!(cards.warm_parts(id.as_str(), &options).is_none());
    }

    #[tokio::test]
    async fn every_sections_invalidation_ends_the_kept_card() {
        let sim = sim(3).await;
        let id: ServiceId = sim.account().services[0].id.parse().unwrap();
        let clock = Arc::new(ManualClock::new());
        let cards = CardService::with_clock(client(&sim), CardsConfig::default(), clock);
        let options = options();
        // Reads the card until it is kept (a read whose loads moved the
        // stripes it had marked is not: the read after it is).
        let warm_up = async || {
            for _ in 0..3 {
                let parts = cards
                    .card_parts(ServiceRef::Id(id.clone()), &options)
                    .await
                    .unwrap();
                if let Some(kept) = cards.warm_parts(id.as_str(), &options) {
                    assert_eq!(kept.versions(), parts.versions());
                    return kept;
                }
            }
            panic!("the card was not kept after three reads");
        };
        for section in [
            Section::Service,
            Section::Oncall,
            Section::Incidents,
            Section::ChangeEvents,
            Section::Standards,
            Section::Metrics,
        ] {
            let before = warm_up().await;
            cards.invalidate(id.as_str(), &[section]).await;
            assert!(
                cards.warm_parts(id.as_str(), &options).is_none(),
                "{section:?}"
            );
            // The next reads load the section again and keep the new card.
            let after = warm_up().await;
            assert_ne!(before.versions(), after.versions(), "{section:?}");
        }
    }

    /// A simulator of `n` services, their ids, and a card service on a
    /// manual clock (the simulator is returned to keep it running).
    async fn batch_setup(n: usize) -> (sim::SimHandle, Vec<ServiceId>, CardService) {
        let sim = sim(n).await;
        let ids = sim.account().services[..n]
            .iter()
            .map(|s| s.id.parse().unwrap())
            .collect();
        let clock = Arc::new(ManualClock::new());
        let cards = CardService::with_clock(client(&sim), CardsConfig::default(), clock);
        (sim, ids, cards)
    }

    #[tokio::test]
    async fn a_batch_reads_its_warm_cards_whole() {
        let (_sim, ids, cards) = batch_setup(4).await;
        let options = CardOptions::default();
        let first = cards.cards_parts(&ids, &options).await;
        // One more read keeps every card (the miss loads moved their stripes).
        cards.cards_parts(&ids, &options).await;
        for id in &ids {
            assert!(cards.warm_parts(id.as_str(), &options).is_some(), "{id:?}");
        }
        let calls = upstream_calls(&cards);
        let again = cards.cards_parts(&ids, &options).await;
        assert_eq!(upstream_calls(&cards), calls);
        for (a, b) in first.iter().zip(&again) {
            let (a, b) = (a.as_ref().unwrap(), b.as_ref().unwrap());
            assert_eq!(a.service_id(), b.service_id(), "same order");
            assert_eq!(a.versions(), b.versions());
        }
    }

    /// Warm cards are read first and only the others wait for loads: the
    /// answers still come in request order, a failure in its place.
    #[tokio::test]
    async fn a_batch_of_warm_and_cold_cards_answers_in_request_order() {
        let (_sim, all, cards) = batch_setup(6).await;
        let options = CardOptions::default();
        let warm = &all[..2];
        cards.cards_parts(warm, &options).await;
        cards.cards_parts(warm, &options).await;
        assert!(cards.warm_parts(all[0].as_str(), &options).is_some());
        assert!(cards.warm_parts(all[4].as_str(), &options).is_none());
        let unknown: ServiceId = "PNOSUCH".parse().unwrap();
        let ids = [
            all[4].clone(),
            all[0].clone(),
            unknown,
            all[1].clone(),
            all[5].clone(),
        ];
        let answers = cards.cards_parts(&ids, &options).await;
        assert_eq!(answers.len(), ids.len());
        for (i, (id, answer)) in ids.iter().zip(&answers).enumerate() {
            match answer {
                Ok(parts) => assert_eq!(parts.service_id(), id.as_str(), "answer {i}"),
                Err(e) => {
                    assert_eq!(i, 2, "only the unknown id fails: {e:?}");
                    assert!(matches!(e, CardError::NotFound { .. }), "{e:?}");
                }
            }
        }
        assert!(answers[2].is_err());
    }
}
