//! Unit tests of the card service (kept beside it, in their own file so
//! `service.rs` stays readable).

use std::time::Duration;

use super::*;
use crate::clock::ManualClock;
use crate::loaders::testing::{client, sim};
use crate::model::{CardOptions, ServiceId, ServiceRef};

async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what}"));
}

#[tokio::test]
async fn shutdown_cancels_a_refresh_in_flight_and_nothing_is_spawned_after() {
    let sim = sim(5).await;
    let ids: Vec<ServiceId> = sim
        .account()
        .services
        .iter()
        .map(|s| s.id.parse().unwrap())
        .collect();
    let clock = Arc::new(ManualClock::new());
    let config = CardsConfig {
        refresh_batch_window: Duration::from_millis(5),
        ..CardsConfig::default()
    };
    let cards = CardService::with_clock(client(&sim), config.clone(), clock.clone());
    let options = CardOptions::default();
    let card = |i: usize| cards.card(ServiceRef::Id(ids[i].clone()), &options);
    card(0).await.unwrap();

    // The next incidents read hangs: a refresh stays in flight.
    sim.set_faults(sim::Faults {
        per_route: vec![(
            "/incidents".into(),
            sim::FaultSpec {
                timeout_next: 1,
                ..sim::FaultSpec::default()
            },
        )],
        ..sim::Faults::default()
    });
    clock.advance(config.incidents_ttl + Duration::from_secs(1));
    assert!(card(0).await.unwrap().incidents.stale);
    eventually("the refresh reached PagerDuty", || {
        sim.stats().count("GET", "/incidents") == 2
    })
    .await;
    assert!(cards.inner.tasks.running() > 0);

    // Cancelled, not waited for (it would hang until the client's deadline).
    tokio::time::timeout(Duration::from_secs(2), cards.shutdown())
        .await
        .expect("shutdown does not wait for the hung refresh");
    assert_eq!(cards.inner.tasks.running(), 0);
    cards.shutdown().await; // idempotent

    // Reads still work: stale sections are served without a refresh,
    // cold ones load inline; no task is spawned.
    let refreshes = cards.stats().incidents.refreshes;
    clock.advance(config.incidents_ttl + Duration::from_secs(1));
    let again = card(0).await.unwrap();
    assert!(again.incidents.stale);
    assert_eq!(
        cards.stats().incidents.refreshes,
        refreshes,
        "no refresh started"
    );
    let cold = card(1).await.unwrap();
    assert_eq!(cold.service.data.unwrap().id, ids[1].as_str());
    assert!(cold.incidents.data.is_some());
    let many = cards.cards(&ids[2..], &options).await;
    assert!(many.iter().all(Result::is_ok));
    assert_eq!(
        cards.inner.tasks.running(),
        0,
        "nothing spawned after shutdown"
    );
    assert_eq!(sim.stats().count("GET", "/incidents"), 4, "no refresh call");
}

#[tokio::test]
async fn a_miss_load_running_at_shutdown_is_awaited() {
    let sim = sim(3).await;
    let id = sim.account().services[0].id.clone();
    sim.set_faults(sim::Faults {
        per_route: vec![(
            "/services/{id}".into(),
            sim::FaultSpec {
                latency_ms: 300,
                ..sim::FaultSpec::default()
            },
        )],
        ..sim::Faults::default()
    });
    let cards = CardService::new(client(&sim), CardsConfig::default());
    let reader = tokio::spawn({
        let cards = cards.clone();
        async move { cards.raw_service(&id).await.map(|s| s.value.id.clone()) }
    });
    eventually("the read started", || cards.inner.tasks.running() > 0).await;
    cards.shutdown().await;
    assert_eq!(cards.inner.tasks.running(), 0, "waited for");
    assert!(reader.await.unwrap().is_ok(), "its caller got the service");
}

#[tokio::test]
async fn the_lists_warm_the_service_section_and_count_in_the_stats() {
    let sim = sim(20).await;
    let cards = CardService::new(client(&sim), CardsConfig::default());
    let services = cards.services().await.unwrap();
    assert_eq!(services.len(), 20);
    assert_eq!(cards.stats().lists.upstream_calls, 1);
    let before = sim.stats().total();
    let raw = cards.raw_service(&services[3].id).await.unwrap();
    assert!(!raw.stale);
    assert_eq!(sim.stats().total(), before, "served by the listing");
    assert_eq!(cards.stats().upstream_calls(), 1);
    assert!(cards.teams().await.is_ok());
    assert!(cards.escalation_policies().await.is_ok());
    assert_eq!(cards.stats().lists.upstream_calls, 3);
}
