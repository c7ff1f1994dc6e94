//! Building cards: contents, coalescing and batching.

use std::time::Duration;

use cards::{CardOptions, ServiceRef, TargetKind};

use crate::support::{TestPd, config, epid, eventually, sid, sref, typed_ids};

#[tokio::test]
async fn a_full_card_from_a_fresh_cache_has_the_expected_contents() {
    let pd = TestPd::start(6, 3).await;
    let cards = pd.cards(config());
    let options = CardOptions {
        include_standards: true,
        include_metrics: true,
        ..CardOptions::default()
    };
    // Service 5: policy 2 (staffed), 2 triggered + 1 old acknowledged incident, no change events.
    // Service 4: policy 1, 1 triggered + 1 acknowledged, 2 change events.
    let card = cards.card(sref(4), &options).await.expect("card");

    let service = card.service.data.as_ref().expect("service data");
    assert_eq!(service.id, sid(4));
    assert_eq!(service.name, "Service 4");
    assert_eq!(service.status.as_deref(), Some("active"));
    assert_eq!(service.teams[0].name.as_deref(), Some("Payments"));
    assert!(!card.service.stale && card.service.error.is_none());
    assert!(card.service.fetched_at.is_some());

    let policy = card.escalation_policy.data.as_ref().expect("policy");
    assert_eq!(policy.id, epid(1));
    assert_eq!(policy.levels.len(), 3);
    assert_eq!(policy.levels[0].targets[0].kind, TargetKind::Schedule);
    assert_eq!(policy.levels[1].targets[0].kind, TargetKind::User);
    assert_eq!(policy.levels[0].escalation_delay_in_minutes, Some(30));

    let oncall = card.oncall.data.as_ref().expect("oncall");
    assert_eq!(oncall.escalation_policy_id, epid(1));
    let level1: Vec<_> = oncall.levels[0]
        .users
        .iter()
        .map(|u| u.name.as_deref().unwrap())
        .collect();
    assert_eq!(
        level1,
        ["Ann", "Zed"],
        "Ann is on level 1 twice: listed once"
    );
    assert!(oncall.levels[0].primary);
    assert!(!oncall.levels[1].primary);
    assert_eq!(
        oncall.levels[2].users[0].id, "PUANN",
        "same person on another level stays"
    );
    assert_eq!(
        oncall.levels[0].users[0].email.as_deref(),
        Some("ann@example.com")
    );
    assert!(oncall.levels[0].users[0].schedule.is_some());

    let incidents = card.incidents.data.as_ref().expect("incidents");
    assert_eq!((incidents.triggered, incidents.acknowledged), (1, 1));
    assert_eq!(incidents.newest.len(), 2);
    assert_eq!(incidents.newest[0].status, "triggered");
    assert_eq!(
        incidents.newest[1].created_at.to_rfc3339(),
        "2026-01-15T00:00:00+00:00",
        "open incidents older than 30 days are included"
    );
    assert_eq!(
        incidents.newest[0].assignees[0].name.as_deref(),
        Some("Ann")
    );

    let changes = card.change_events.data.as_ref().expect("change events");
    assert_eq!(changes.items.len(), 2);
    assert_eq!(
        changes.items[0].summary.as_deref(),
        Some("Deploy 1 of service 4")
    );
    assert_eq!(changes.items[0].links[0].href, "https://ci.example/build/1");

    let standards = card
        .standards
        .as_ref()
        .unwrap()
        .data
        .as_ref()
        .expect("standards");
    assert_eq!((standards.passing, standards.total), (Some(1), Some(2)));
    let metrics = card
        .metrics
        .as_ref()
        .unwrap()
        .data
        .as_ref()
        .expect("metrics");
    assert_eq!(metrics.total_incident_count, Some(7));
    assert!(card.max_age_secs() > 0);

    // One call per section, nothing else.
    assert_eq!(pd.calls("GET", &format!("/services/{}", sid(4))).await, 1);
    assert_eq!(pd.calls("GET", "/oncalls").await, 1);
    assert_eq!(pd.calls("GET", "/incidents").await, 1);
    assert_eq!(pd.calls("GET", "/change_events").await, 1);
    assert_eq!(
        pd.calls("GET", "/standards/scores/technical_services")
            .await,
        1
    );
    assert_eq!(
        pd.calls("POST", "/analytics/metrics/incidents/services")
            .await,
        1
    );
    assert_eq!(pd.total_calls().await, 6);
    let stats = cards.stats();
    assert_eq!(stats.upstream_calls(), 6);
    assert_eq!(
        (stats.service.misses, stats.service.coalesced),
        (1, 0),
        "one lookup per card"
    );
    assert_eq!((stats.incidents.misses, stats.incidents.hits), (1, 0));
    assert_eq!(stats.incidents.batched_calls, 1);
    assert_eq!(stats.incidents.upstream_calls, 1);

    // A second card is served from the caches.
    let again = cards.card(sref(4), &options).await.unwrap();
    assert_eq!(again.incidents.data, card.incidents.data);
    assert_eq!(pd.total_calls().await, 6);
    let stats = cards.stats();
    assert_eq!(stats.incidents.hits, 1);
    assert_eq!(stats.service.hits, 1);
    assert_eq!(stats.oncall.hits, 1);
}

#[tokio::test]
async fn a_hundred_concurrent_requests_for_one_cold_card_make_one_call_per_section() {
    let pd = TestPd::start(3, 2).await;
    pd.set_delay(Duration::from_millis(100));
    let cards = pd.cards(config());
    let options = CardOptions::default();
    let results = futures::future::join_all((0..100).map(|_| cards.card(sref(1), &options))).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(pd.calls("GET", &format!("/services/{}", sid(1))).await, 1);
    assert_eq!(pd.calls("GET", "/oncalls").await, 1);
    assert_eq!(pd.calls("GET", "/incidents").await, 1);
    assert_eq!(pd.calls("GET", "/change_events").await, 1);
    assert_eq!(pd.total_calls().await, 4);
    let stats = cards.stats();
    assert_eq!(stats.incidents.misses, 1);
    assert_eq!(stats.incidents.coalesced, 99);
}

#[tokio::test]
async fn fifty_concurrent_cold_cards_batch_incidents_and_oncalls() {
    for batch in [50usize, 10] {
        let pd = TestPd::start(50, 50).await;
        let cards = pd.cards(cards::CardsConfig {
            batch_max_size: batch,
            batch_window: Duration::from_millis(200),
            ..config()
        });
        let ids: Vec<String> = (0..50).map(sid).collect();
        let options = CardOptions {
            include_standards: true,
            include_metrics: true,
            ..CardOptions::default()
        };
        let results = cards.cards(&typed_ids(&ids), &options).await;
        for (i, card) in results.iter().enumerate() {
            let card = card.as_ref().expect("card");
            assert_eq!(card.service.data.as_ref().unwrap().id, sid(i), "same order");
            // Results are split back per service.
            let incidents = card.incidents.data.as_ref().unwrap();
            assert_eq!(incidents.triggered as usize, i % 3);
            assert_eq!(
                card.oncall.data.as_ref().unwrap().escalation_policy_id,
                epid(i)
            );
        }
        let expected = 50usize.div_ceil(batch);
        // One list call per batch (a call may read more than one page: count first pages).
        let first_pages = |path: &'static str| {
            let server = &pd.server;
            async move {
                server
                    .received_requests()
                    .await
                    .unwrap()
                    .iter()
                    .filter(|r| r.url.path() == path)
                    .filter(|r| r.url.query_pairs().any(|(k, v)| k == "offset" && v == "0"))
                    .count()
            }
        };
        assert_eq!(first_pages("/incidents").await, expected, "batch {batch}");
        assert_eq!(first_pages("/oncalls").await, expected, "batch {batch}");
        assert_eq!(cards.stats().oncall.batched_calls, expected as u64);
        // 50 cold services are read with the services list (one page), not 50 reads.
        let singles = pd
            .server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .filter(|r| r.url.path().starts_with("/services/"))
            .count();
        assert_eq!(singles, 0, "batch {batch}");
        assert!(
            pd.calls("GET", "/services").await <= expected,
            "batch {batch}"
        );
        assert_eq!(pd.calls("GET", "/change_events").await, 1);
        assert_eq!(cards.stats().incidents.batched_calls, expected as u64);
        assert_eq!(
            pd.calls("GET", "/standards/scores/technical_services")
                .await,
            expected
        );
        assert_eq!(
            pd.calls("POST", "/analytics/metrics/incidents/services")
                .await,
            expected
        );
        assert!(results.iter().all(|c| {
            let c = c.as_ref().unwrap();
            c.standards.as_ref().unwrap().data.is_some()
                && c.metrics.as_ref().unwrap().data.is_some()
        }));
    }
}

#[tokio::test]
async fn unknown_service_is_not_found_but_other_cards_in_the_batch_are_fine() {
    let pd = TestPd::start(3, 2).await;
    let cards = pd.cards(config());
    let ids = vec![sid(0), "PNOPE00".to_string(), sid(2)];
    let results = cards.cards(&typed_ids(&ids), &CardOptions::default()).await;
    assert!(results[0].is_ok() && results[2].is_ok());
    assert!(matches!(
        results[1],
        Err(cards::CardError::NotFound { ref what, .. }) if what.contains("PNOPE00")
    ));
}

#[tokio::test]
async fn an_unknown_service_is_remembered_briefly() {
    let pd = TestPd::start(2, 1).await;
    let clock = std::sync::Arc::new(cards::clock::ManualClock::new());
    let cards = pd.cards_with_clock(
        cards::CardsConfig {
            integration_key_miss_ttl: Duration::from_secs(30),
            ..config()
        },
        clock.clone(),
    );
    for _ in 0..5 {
        let result = cards
            .card(
                ServiceRef::Id("PGONE00".parse().unwrap()),
                &CardOptions::default(),
            )
            .await;
        assert!(matches!(result, Err(cards::CardError::NotFound { .. })));
    }
    assert!(matches!(
        cards.raw_service("PGONE00").await,
        Err(cards::CardError::NotFound { .. })
    ));
    assert_eq!(pd.calls("GET", "/services/PGONE00").await, 1);
    clock.advance(Duration::from_secs(31));
    assert!(cards.raw_service("PGONE00").await.is_err());
    assert_eq!(
        pd.calls("GET", "/services/PGONE00").await,
        2,
        "only briefly"
    );
}

#[tokio::test]
async fn a_cold_card_costs_the_slowest_path_not_the_sum_of_its_calls() {
    let pd = TestPd::start(2, 1).await;
    let delay = Duration::from_millis(300);
    pd.set_delay(delay);
    let cards = pd.cards(cards::CardsConfig {
        batch_window: Duration::from_millis(5),
        ..config()
    });
    let options = CardOptions {
        include_standards: true,
        ..CardOptions::default()
    };
    let started = std::time::Instant::now();
    let card = cards.card(sref(1), &options).await.unwrap();
    let elapsed = started.elapsed();
    assert!(card.standards.unwrap().data.is_some());
    // Five calls of 300 ms each; only service -> on-call are sequential.
    assert_eq!(pd.total_calls().await, 5);
    assert!(elapsed < delay * 3, "took {elapsed:?}");
}

/// The simulated PagerDuty latency of the round-trip tests.
const ROUND_TRIP: Duration = Duration::from_millis(1000);

/// Single service reads (`GET /services/{id}`) received so far.
async fn single_reads(pd: &TestPd) -> usize {
    pd.server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| {
            r.url.path().starts_with("/services/") && !r.url.path().ends_with("change_events")
        })
        .count()
}

/// A listing answers each waiting card when the page that holds its service
/// arrives; the other pages are read on in the background and warm the cache.
/// Before, the cards waited for all 5 pages (5 round trips, then on-call).
#[tokio::test]
async fn ten_cold_cards_that_start_a_listing_cost_one_round_trip_for_their_services() {
    let pd = TestPd::start(500, 50).await;
    // Long enough that a loaded machine's scheduling (hundreds of ms) cannot
    // pass for a round trip: the bounds count round trips.
    let delay = ROUND_TRIP;
    pd.set_delay(delay);
    let cards = pd.cards(cards::CardsConfig {
        batch_window: Duration::from_millis(5),
        ..config()
    });
    // Ten services of the first page, on ten different policies.
    let ids: Vec<String> = (0..10).map(|i| sid(i * 7)).collect();
    let started = std::time::Instant::now();
    let results = cards.cards(&typed_ids(&ids), &CardOptions::default()).await;
    let elapsed = started.elapsed();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    // Service (first page) then on-call: two round trips, not six.
    assert!(elapsed < delay * 3, "took {elapsed:?}");
    // No extra calls: the listing goes on after the cards got their services
    // and warms the other 490 (the budget test shows the later cards hit).
    eventually("the listing read its 5 pages", || async {
        pd.calls("GET", "/services").await == 5
    })
    .await;
    assert_eq!(single_reads(&pd).await, 0, "no single service reads");
}

/// Cards whose services are on the last page of the listing: the first page
/// tells PagerDuty's total, the other pages are read at once, so a service
/// costs at most two round trips whatever its page (was one per page).
#[tokio::test]
async fn cold_cards_on_the_last_listing_page_wait_two_round_trips_not_five() {
    let pd = TestPd::start(500, 50).await;
    // Long enough that a loaded machine's scheduling (hundreds of ms) cannot
    // pass for a round trip: the bounds count round trips.
    let delay = ROUND_TRIP;
    pd.set_delay(delay);
    let cards = pd.cards(cards::CardsConfig {
        batch_window: Duration::from_millis(5),
        ..config()
    });
    let ids: Vec<String> = (0..10).map(|i| sid(400 + i * 7)).collect();
    let started = std::time::Instant::now();
    let results = cards.cards(&typed_ids(&ids), &CardOptions::default()).await;
    let elapsed = started.elapsed();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    // Services (2 round trips) then on-call (1); the old listing took 5 + 1.
    assert!(elapsed < delay * 4, "took {elapsed:?}");
    assert_eq!(
        pd.calls("GET", "/services").await,
        5,
        "exactly the pages the account fills"
    );
    assert_eq!(single_reads(&pd).await, 0);
}

/// After 10 single reads, the next lone cold card starts a listing; it gets
/// its service from the first page, not after the last one.
#[tokio::test]
async fn a_lone_card_that_starts_a_listing_does_not_wait_for_its_last_page() {
    let pd = TestPd::start(500, 50).await;
    let cards = pd.cards(cards::CardsConfig {
        batch_window: Duration::from_millis(5),
        ..config()
    });
    let options = CardOptions::default();
    for i in 0..10 {
        cards.card(sref(i), &options).await.unwrap();
    }
    assert_eq!(single_reads(&pd).await, 10);
    assert_eq!(pd.calls("GET", "/services").await, 0);
    // Long enough that a loaded machine's scheduling (hundreds of ms) cannot
    // pass for a round trip: the bounds count round trips.
    let delay = ROUND_TRIP;
    pd.set_delay(delay);
    let started = std::time::Instant::now();
    let card = cards.card(sref(42), &options).await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(card.service.data.unwrap().id, sid(42));
    assert!(elapsed < delay * 3, "took {elapsed:?}");
    assert_eq!(single_reads(&pd).await, 10, "served by the listing");
    eventually("the listing read its 5 pages", || async {
        pd.calls("GET", "/services").await == 5
    })
    .await;
}

#[tokio::test]
async fn an_account_larger_than_one_listing_is_read_service_by_service() {
    let pd = TestPd::start(150, 10).await;
    let cards = pd.cards(cards::CardsConfig {
        service_list_max_pages: 1,
        ..config()
    });
    let options = CardOptions::default();
    // 20 cold services beyond the first page: the listing reads its one page
    // (capped), then the 20 are read one by one.
    let first: Vec<String> = (100..120).map(sid).collect();
    assert!(
        cards
            .cards(&typed_ids(&first), &options)
            .await
            .iter()
            .all(Result::is_ok)
    );
    assert_eq!(pd.calls("GET", "/services").await, 1);
    // The listing could not cover the account: the next wave reads singles only.
    let second: Vec<String> = (120..140).map(sid).collect();
    assert!(
        cards
            .cards(&typed_ids(&second), &options)
            .await
            .iter()
            .all(Result::is_ok)
    );
    assert_eq!(pd.calls("GET", "/services").await, 1);
    let singles = pd
        .server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().starts_with("/services/"))
        .count();
    assert_eq!(singles, 40);
    // Services of the first page were warmed by the listing.
    cards.card(sref(5), &options).await.unwrap();
    assert_eq!(pd.calls("GET", &format!("/services/{}", sid(5))).await, 0);
}

#[tokio::test]
async fn an_empty_first_level_makes_the_next_staffed_level_primary() {
    // Service 0 uses policy 0: nobody at level 1, Bob at level 2, nobody at level 3.
    let pd = TestPd::start(2, 2).await;
    let cards = pd.cards(config());
    let card = cards.card(sref(0), &CardOptions::default()).await.unwrap();
    let oncall = card.oncall.data.expect("oncall");
    assert_eq!(
        oncall.levels.len(),
        3,
        "every level of the policy is listed"
    );
    assert!(oncall.levels[0].users.is_empty() && !oncall.levels[0].primary);
    assert!(oncall.levels[1].primary);
    assert_eq!(oncall.levels[1].users[0].name.as_deref(), Some("Bob"));
    assert!(oncall.levels[2].users.is_empty() && !oncall.levels[2].primary);
}

#[tokio::test]
async fn raw_objects_come_from_the_same_caches_as_the_cards() {
    let pd = TestPd::start(4, 2).await;
    let cards = pd.cards(config());
    let options = CardOptions {
        include_standards: true,
        include_metrics: true,
        ..CardOptions::default()
    };
    let card = cards.card(sref(2), &options).await.unwrap();
    let calls = pd.total_calls().await;

    let service = cards.raw_service(&sid(2)).await.unwrap();
    assert_eq!(service.value.id, sid(2));
    assert_eq!(Some(service.fetched_at), card.service.fetched_at);
    assert!(!service.stale);
    assert!(
        service.value.extra.contains_key("type"),
        "untrimmed PagerDuty object"
    );
    let incidents = cards.raw_open_incidents(&sid(2)).await.unwrap().value;
    assert_eq!(incidents.len(), 3);
    let changes = cards.raw_change_events(&sid(2)).await.unwrap().value;
    let changes = changes.newest_first();
    assert_eq!(changes.len(), 2);
    assert!(changes[0].timestamp >= changes[1].timestamp, "newest first");
    let oncalls = cards.raw_oncalls(&epid(0)).await.unwrap().value;
    assert_eq!(oncalls.len(), 1);
    let standards = cards.raw_standards(&sid(2)).await.unwrap().value;
    assert_eq!(standards.resource_id, sid(2));
    let metrics = cards.raw_metrics(&sid(2)).await.unwrap().value;
    assert_eq!(metrics[0].total_incident_count, Some(Some(7)));
    assert_eq!(
        pd.total_calls().await,
        calls,
        "no extra upstream calls when warm"
    );
}

/// Settings past what the clock can hold are refused by `validate`; a card
/// service built without validating them still answers instead of panicking.
#[tokio::test]
async fn durations_too_large_for_the_clock_do_not_panic() {
    let pd = TestPd::start(3, 2).await;
    let settings = cards::CardsConfig {
        section_timeout: Duration::MAX,
        max_stale: Duration::MAX,
        change_events_fallback_ttl: Duration::MAX,
        load_timeout: Duration::MAX,
        ..config()
    };
    assert!(settings.validate().is_err());
    let cards = pd.cards(settings);
    let card = tokio::time::timeout(
        Duration::from_secs(10),
        cards.card(sref(1), &CardOptions::default()),
    )
    .await
    .expect("bounded")
    .unwrap();
    assert_eq!(card.service.data.unwrap().id, sid(1));
    let many = cards
        .cards(&typed_ids(&[sid(0), sid(2)]), &CardOptions::default())
        .await;
    assert!(many.iter().all(Result::is_ok));
}
