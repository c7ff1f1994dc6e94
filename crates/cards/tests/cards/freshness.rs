//! Stale-while-revalidate, stale-if-error and invalidation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cards::clock::ManualClock;

use cards::{CardOptions, CardsConfig, Section, SectionErrorKind};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::support::{TestPd, config, eventually, incident, sid, sref};

const INCIDENTS_TTL: Duration = Duration::from_secs(20);

/// Incidents expire when the test advances the clock past their TTL.
fn expiring() -> (CardsConfig, Arc<ManualClock>) {
    let config = CardsConfig {
        incidents_ttl: INCIDENTS_TTL,
        ..config()
    };
    (config, Arc::new(ManualClock::new()))
}

#[tokio::test]
async fn an_expired_section_is_served_stale_at_once_and_refreshed_once() {
    let pd = TestPd::start(3, 2).await;
    let (settings, clock) = expiring();
    let cards = pd.cards_with_clock(settings, clock.clone());
    let options = CardOptions::default();
    let first = cards.card(sref(2), &options).await.unwrap();
    assert!(!first.incidents.stale);
    assert_eq!(pd.calls("GET", "/incidents").await, 1);

    clock.advance(INCIDENTS_TTL);
    // Upstream is now slow: a stale answer must not wait for it.
    pd.set_delay(Duration::from_millis(700));
    let started = Instant::now();
    let stale = futures::future::join_all((0..20).map(|_| cards.card(sref(2), &options))).await;
    assert!(
        started.elapsed() < Duration::from_millis(600),
        "served at once"
    );
    for card in &stale {
        let card = card.as_ref().unwrap();
        assert!(card.incidents.stale);
        assert_eq!(card.incidents.max_age_secs, 0);
        assert_eq!(card.incidents.fetched_at, first.incidents.fetched_at);
        assert_eq!(card.incidents.data, first.incidents.data);
        assert!(!card.service.stale, "other sections are still fresh");
    }
    eventually("the refreshed section is served", || async {
        let card = cards.card(sref(2), &options).await.unwrap();
        !card.incidents.stale && card.incidents.fetched_at > first.incidents.fetched_at
    })
    .await;
    assert_eq!(
        pd.calls("GET", "/incidents").await,
        2,
        "exactly one refresh"
    );
    assert_eq!(cards.stats().incidents.refreshes, 1);
    assert!(cards.stats().incidents.stale_served >= 20);
}

#[tokio::test]
async fn an_upstream_failure_after_a_good_value_serves_it_stale_with_the_error() {
    let pd = TestPd::start(3, 2).await;
    let (settings, clock) = expiring();
    let cards = pd.cards_with_clock(settings, clock.clone());
    let options = CardOptions::default();
    let first = cards.card(sref(1), &options).await.unwrap();
    Mock::given(method("GET"))
        .and(path("/incidents"))
        .respond_with(
            ResponseTemplate::new(503).set_body_json(json!({"error": {"message": "down"}})),
        )
        .mount(&pd.server)
        .await;
    clock.advance(INCIDENTS_TTL);
    let card = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let card = cards.card(sref(1), &options).await.unwrap();
            if card.incidents.error.is_some() {
                return card;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the failed refresh is reported");
    assert!(card.incidents.stale);
    assert_eq!(
        card.incidents.data, first.incidents.data,
        "the last good value"
    );
    assert_eq!(card.incidents.fetched_at, first.incidents.fetched_at);
    assert_eq!(
        card.incidents.error.as_ref().unwrap().kind,
        SectionErrorKind::Unavailable
    );
    assert!(card.service.error.is_none() && card.oncall.error.is_none());
    assert!(cards.stats().incidents.errors >= 1);
    // The failing refresh is not retried on every view (backoff).
    let calls = pd.calls("GET", "/incidents").await;
    for _ in 0..10 {
        cards.card(sref(1), &options).await.unwrap();
    }
    assert_eq!(pd.calls("GET", "/incidents").await, calls);
    // After the backoff (the TTL, capped at 10 s) the next view retries once.
    clock.advance(Duration::from_secs(10));
    for _ in 0..5 {
        cards.card(sref(1), &options).await.unwrap();
    }
    let pd = &pd;
    eventually("one retry after the backoff", || async move {
        pd.calls("GET", "/incidents").await == calls + 1
    })
    .await;
    assert_eq!(cards.stats().incidents.refreshes, 2);
}

#[tokio::test]
async fn invalidation_after_a_trigger_makes_the_next_card_show_the_new_incident() {
    let pd = TestPd::start(3, 2).await;
    let cards = pd.cards(config());
    let options = CardOptions::default();
    let before = cards.card(sref(0), &options).await.unwrap();
    assert_eq!(before.incidents.data.as_ref().unwrap().triggered, 0);

    // A trigger opened an incident upstream.
    pd.account.incidents.lock().unwrap().push(incident(
        "PNEW001",
        &sid(0),
        "triggered",
        "2026-11-23T08:00:00Z",
    ));
    let cached = cards.card(sref(0), &options).await.unwrap();
    assert_eq!(
        cached.incidents.data.as_ref().unwrap().triggered,
        0,
        "still cached"
    );

    cards.invalidate(&sid(0), &[Section::Incidents]).await;
    let after = cards.card(sref(0), &options).await.unwrap();
    let incidents = after.incidents.data.as_ref().unwrap();
    assert_eq!(incidents.triggered, 1);
    assert_eq!(incidents.newest[0].id, "PNEW001");
    assert_eq!(pd.calls("GET", "/incidents").await, 2);
    assert_eq!(
        pd.calls("GET", &format!("/services/{}", sid(0))).await,
        1,
        "other sections untouched"
    );
}

/// A trigger while a cold card is loading: the incidents read that started
/// before the trigger must not be kept as fresh for the whole TTL.
#[tokio::test]
async fn invalidation_during_a_cold_load_makes_the_next_card_show_the_new_incident() {
    let pd = TestPd::start(3, 2).await;
    pd.set_delay(Duration::from_millis(300));
    let cards = pd.cards(config());
    let options = CardOptions::default();
    let loading = tokio::spawn({
        let cards = cards.clone();
        let options = options.clone();
        async move { cards.card(sref(0), &options).await }
    });
    // The incidents read is under way (its answer was computed on arrival).
    eventually("the incidents read started", || async {
        pd.calls("GET", "/incidents").await == 1
    })
    .await;
    pd.account.incidents.lock().unwrap().push(incident(
        "PNEW002",
        &sid(0),
        "triggered",
        "2026-11-23T09:00:00Z",
    ));
    cards.invalidate(&sid(0), &[Section::Incidents]).await;
    let first = tokio::time::timeout(Duration::from_secs(5), loading)
        .await
        .expect("bounded")
        .unwrap()
        .unwrap();
    assert_eq!(
        first.incidents.data.as_ref().unwrap().triggered,
        0,
        "read before the trigger"
    );
    let after = cards.card(sref(0), &options).await.unwrap();
    let incidents = after.incidents.data.as_ref().unwrap();
    assert_eq!(incidents.triggered, 1, "the pre-trigger read was not kept");
    assert_eq!(incidents.newest[0].id, "PNEW002");
    assert_eq!(pd.calls("GET", "/incidents").await, 2);
}

#[tokio::test]
async fn invalidating_service_and_oncall_refetches_them() {
    let pd = TestPd::start(3, 2).await;
    let cards = pd.cards(config());
    let options = CardOptions::default();
    cards.card(sref(1), &options).await.unwrap();
    cards
        .invalidate(&sid(1), &[Section::Oncall, Section::Service])
        .await;
    cards.card(sref(1), &options).await.unwrap();
    assert_eq!(pd.calls("GET", &format!("/services/{}", sid(1))).await, 2);
    assert_eq!(pd.calls("GET", "/oncalls").await, 2);
    assert_eq!(pd.calls("GET", "/incidents").await, 1);
}
