//! PagerDuty's budget: upstream calls follow distinct services and
//! freshness, never the number of views.

use std::sync::Arc;
use std::time::Duration;

use cards::clock::ManualClock;
use cards::{CardOptions, CardService, CardsConfig, ServiceRef};

use crate::support::{TestPd, config, eventually, sid, sref, typed_ids};

/// The default minimum interval between two batch loads of a section.
const MIN_BATCH_INTERVAL: Duration = Duration::from_millis(250);

/// Every service has its own escalation policy and the batch size equals the
/// number of services, so each batch flushes when its last key arrives: the
/// call counts do not depend on timing (the batch windows are never reached).
const SERVICES: usize = 40;
const ROUNDS: usize = 3;
/// Long TTLs on a manual clock: sections expire when the test advances the
/// clock, never because the test machine is slow.
const TTL: Duration = Duration::from_secs(60);

fn settings() -> CardsConfig {
    CardsConfig {
        service_ttl: TTL,
        escalation_policy_ttl: TTL,
        oncall_ttl: TTL,
        incidents_ttl: TTL,
        change_events_ttl: TTL,
        batch_max_size: SERVICES,
        batch_window: Duration::from_secs(3),
        refresh_batch_window: Duration::from_secs(3),
        ..config()
    }
}

async fn all_fresh(cards: &CardService, ids: &[String]) -> bool {
    for id in ids {
        let card = cards
            .card(ServiceRef::Id(id.parse().unwrap()), &CardOptions::default())
            .await
            .unwrap();
        if card.service.stale
            || card.oncall.stale
            || card.incidents.stale
            || card.change_events.stale
        {
            return false;
        }
    }
    true
}

/// `ROUNDS` rounds; in each, every service is viewed `views` times
/// (concurrently), the refreshes land, then the clock moves past every TTL.
async fn run(views: usize) -> (usize, u64) {
    let pd = TestPd::start(SERVICES, SERVICES).await;
    let clock = Arc::new(ManualClock::new());
    let cards = pd.cards_with_clock(settings(), clock.clone());
    let ids: Vec<String> = (0..SERVICES).map(sid).collect();
    let options = CardOptions::default();
    for round in 0..ROUNDS {
        let requests = (0..views)
            .flat_map(|_| ids.iter())
            .map(|id| cards.card(ServiceRef::Id(id.parse().unwrap()), &options));
        let seen = futures::future::join_all(requests).await;
        assert!(seen.iter().all(Result::is_ok));
        if round > 0 {
            assert!(
                seen.iter().all(|c| c.as_ref().unwrap().incidents.stale),
                "expired sections are served stale at once"
            );
        }
        eventually("the refreshes of this round landed", || {
            all_fresh(&cards, &ids)
        })
        .await;
        clock.advance(TTL + Duration::from_secs(1));
    }
    (pd.total_calls().await, cards.stats().upstream_calls())
}

#[tokio::test]
async fn doubling_the_views_of_the_same_services_does_not_add_upstream_calls() {
    let (once, once_counted) = run(1).await;
    let (twice, twice_counted) = run(2).await;
    assert_eq!(once, twice, "upstream calls must not follow views");
    assert_eq!(
        once_counted as usize, once,
        "stats count every upstream request"
    );
    assert_eq!(twice_counted as usize, twice);
    // Per round, cold or refresh: one services page, one on-call call of 2
    // pages (196 entries), one incidents call and one change events call:
    // refreshes are batched like misses.
    assert_eq!(once, 5 * ROUNDS);
}

#[tokio::test]
async fn five_hundred_cold_services_viewed_in_waves_stay_far_under_the_budget() {
    let pd = TestPd::start(500, 100).await;
    let cards = pd.cards(CardsConfig {
        batch_window: Duration::from_millis(20),
        ..config()
    });
    let ids: Vec<String> = (0..500).map(sid).collect();
    // 20 waves of 25 users each opening a different service.
    for wave in ids.chunks(25) {
        let results = cards.cards(&typed_ids(wave), &CardOptions::default()).await;
        assert!(results.iter().all(Result::is_ok));
    }
    let calls = pd.total_calls().await;
    // 5 service pages (the first wave lists, warming all 500), at most one
    // on-call and one incidents call per wave, one change events call.
    assert!(calls <= 5 + 20 + 20 + 1, "{calls} calls");
    assert!(calls < 960 / 4);
    assert_eq!(
        pd.calls("GET", "/services").await,
        5,
        "the services list warmed the cache"
    );
}

/// The worst arrival pattern for the batchers at production settings: the
/// default batch settings (`CardsConfig::default()`: 5 ms window, 250 ms
/// between batch starts, 50 ids per batch), 500 services over 500 escalation
/// policies (no two cards share an on-call key), standards and metrics
/// included, and 500 cold cards arriving one by one, 10 ms apart. No client
/// token bucket: the batching alone must keep the calls down.
#[tokio::test]
async fn a_trickle_of_five_hundred_cold_cards_with_every_section_stays_under_the_budget() {
    const CARDS: usize = 500;
    let defaults = CardsConfig::default();
    assert_eq!(defaults.min_batch_interval, MIN_BATCH_INTERVAL);
    let pd = TestPd::start(CARDS, CARDS).await;
    let cards = pd.cards(defaults);
    let options = CardOptions {
        include_standards: true,
        include_metrics: true,
        ..CardOptions::default()
    };
    let started = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut views = Vec::with_capacity(CARDS);
    for i in 0..CARDS {
        tick.tick().await;
        let cards = cards.clone();
        let options = options.clone();
        views.push(tokio::spawn(
            async move { cards.card(sref(i), &options).await },
        ));
    }
    for (i, view) in views.into_iter().enumerate() {
        let card = tokio::time::timeout(Duration::from_secs(30), view)
            .await
            .expect("a card within 30 s")
            .expect("the card task")
            .unwrap_or_else(|e| panic!("card {i}: {e}"));
        let standards = card.standards.as_ref().expect("standards asked for");
        let metrics = card.metrics.as_ref().expect("metrics asked for");
        for (section, error) in [
            ("service", &card.service.error),
            ("on-call", &card.oncall.error),
            ("incidents", &card.incidents.error),
            ("change events", &card.change_events.error),
            ("standards", &standards.error),
            ("metrics", &metrics.error),
        ] {
            assert!(error.is_none(), "card {i}: {section}: {error:?}");
        }
    }
    let elapsed = started.elapsed();
    let total = pd.total_calls().await;
    assert_eq!(
        cards.stats().upstream_calls() as usize,
        total,
        "stats count every upstream request"
    );
    // Everything happened within the first minute.
    assert!(elapsed < Duration::from_secs(60), "{elapsed:?}");
    assert!(total < 960, "{total} upstream calls in the first minute");
    // Each batched section starts at most one batch per minimum interval
    // (plus a full batch of 50 ids at once at most 10 times); extra pages
    // come only from on-call (5 entries per policy: 2 500 entries, so at most
    // 25 more pages) and incidents (~1 000 open incidents: at most 10 more).
    let starts = (elapsed.as_millis() / MIN_BATCH_INTERVAL.as_millis()) as usize + 1;
    for (what, method, path, extra_pages) in [
        ("incidents", "GET", "/incidents", 10),
        ("on-call", "GET", "/oncalls", 25),
        (
            "standards",
            "GET",
            "/standards/scores/technical_services",
            0,
        ),
        (
            "metrics",
            "POST",
            "/analytics/metrics/incidents/services",
            0,
        ),
    ] {
        let calls = pd.calls(method, path).await;
        assert!(
            calls <= starts + CARDS / 50 + extra_pages,
            "{what}: {calls} calls in {elapsed:?} (at most {starts} batch starts)"
        );
    }
    // Services: at most 10 single reads before the listing (and the few
    // already in flight), then 5 pages warm all 500.
    let services = pd.calls("GET", "/services").await;
    assert!(services <= 5, "{services} services pages");
    let stats = cards.stats();
    assert!(
        stats.service.upstream_calls <= 5 + 10 + 9,
        "{} service calls",
        stats.service.upstream_calls
    );
    eprintln!(
        "{total} upstream calls for {CARDS} cold cards in {elapsed:?}: service {}, on-call {}, \
         incidents {}, change events {}, standards {}, metrics {}",
        stats.service.upstream_calls,
        stats.oncall.upstream_calls,
        stats.incidents.upstream_calls,
        stats.change_events.upstream_calls,
        stats.standards.upstream_calls,
        stats.metrics.upstream_calls
    );
}
