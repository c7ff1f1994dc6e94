//! PagerDuty's budget: upstream calls follow distinct services and
//! freshness, never the number of views.

use std::sync::Arc;
use std::time::Duration;

use cards::clock::ManualClock;
use cards::{CardOptions, CardService, CardsConfig, ServiceRef};

use crate::support::{TestPd, config, eventually, sid};

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
            .card(ServiceRef::Id(id.clone()), &CardOptions::default())
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
            .map(|id| cards.card(ServiceRef::Id(id.clone()), &options));
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
        let results = cards.cards(wave, &CardOptions::default()).await;
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
