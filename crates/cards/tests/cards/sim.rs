//! Cards against the PagerDuty simulator: contents match its account, and a
//! trigger shows up after invalidation.

use std::collections::{BTreeMap, BTreeSet};

use cards::{CardOptions, CardService, CardsConfig, Section, ServiceRef};
use pagerduty::{Client, Credentials, Event, EventPayload, SecretString, Severity};
use sim::{Sim, SimConfig, SimHandle, SimToken};

use crate::support::config;

async fn start(config: SimConfig) -> SimHandle {
    Sim::start(config).await.expect("simulator starts")
}

fn client(sim: &SimHandle, token: &str) -> Client {
    Client::builder(Credentials::ApiToken(SecretString::from(token.to_owned())))
        .api_base_url(sim.base_url())
        .events_base_url(sim.events_base_url())
        .build()
        .expect("client")
}

fn cards_for(sim: &SimHandle, settings: CardsConfig) -> CardService {
    CardService::new(client(sim, &sim.api_token()), settings)
}

#[tokio::test]
async fn cards_match_the_simulated_account() {
    let sim = start(SimConfig {
        services: 30,
        ..SimConfig::default()
    })
    .await;
    let cards = cards_for(&sim, config());
    let account = sim.account();
    let ids: Vec<cards::ServiceId> = account
        .services
        .iter()
        .map(|s| s.id.parse().unwrap())
        .collect();
    let results = cards
        .cards(
            &ids,
            &CardOptions {
                incident_limit: Some(25),
                include_standards: true,
                include_metrics: true,
                ..CardOptions::default()
            },
        )
        .await;
    for (id, card) in ids.iter().map(cards::ServiceId::as_str).zip(&results) {
        let card = card.as_ref().expect("card");
        let expected = account.service(id).unwrap();
        let service = card.service.data.as_ref().unwrap();
        assert_eq!(service.name, expected.name);
        let standards = card.standards.as_ref().unwrap();
        let standards = standards.data.as_ref().expect("standards");
        assert_eq!(standards.standards.len(), account.standards_for(id).len());
        let passing = account
            .standards_for(id)
            .iter()
            .filter(|(_, pass)| *pass)
            .count();
        assert_eq!(standards.passing, Some(passing as u32));
        let metrics = card.metrics.as_ref().unwrap();
        assert!(metrics.data.is_some(), "{:?}", metrics.error);

        let open = account.open_incidents(id);
        let incidents = card.incidents.data.as_ref().expect("incidents");
        let triggered = open.iter().filter(|i| i.status == "triggered").count();
        assert_eq!(incidents.triggered as usize, triggered, "{id}");
        assert_eq!(
            incidents.acknowledged as usize,
            open.len() - triggered,
            "{id}"
        );

        let policy = account
            .escalation_policy(&expected.escalation_policy_id)
            .unwrap();
        let oncall = card.oncall.data.as_ref().expect("oncall");
        assert_eq!(oncall.escalation_policy_id, policy.id);
        assert_eq!(oncall.levels.len(), policy.rules.len());
        // Users per level, deduplicated, as the simulator computes them now.
        let mut want: BTreeMap<u32, BTreeSet<String>> = BTreeMap::new();
        for entry in account.current_oncalls(&policy.id, sim.now()) {
            want.entry(entry.escalation_level)
                .or_default()
                .insert(entry.user_id);
        }
        for level in &oncall.levels {
            let got: Vec<&str> = level.users.iter().map(|u| u.id.as_str()).collect();
            let unique: BTreeSet<&str> = got.iter().copied().collect();
            assert_eq!(got.len(), unique.len(), "deduplicated");
            let want_level: BTreeSet<&str> = want
                .get(&level.level)
                .map(|s| s.iter().map(String::as_str).collect())
                .unwrap_or_default();
            assert_eq!(unique, want_level, "{id} level {}", level.level);
        }
        let primary: Vec<u32> = oncall
            .levels
            .iter()
            .filter(|l| l.primary)
            .map(|l| l.level)
            .collect();
        let lowest = oncall
            .levels
            .iter()
            .find(|l| !l.users.is_empty())
            .map(|l| l.level);
        assert_eq!(primary, lowest.into_iter().collect::<Vec<_>>());
    }
    // 30 cold services: one services listing, one on-call and one incidents
    // batch (pages aside), one change events call.
    let stats = sim.stats();
    assert_eq!(stats.count("GET", "/services/{id}"), 0);
    assert_eq!(cards.stats().incidents.batched_calls, 1);
    assert_eq!(cards.stats().oncall.batched_calls, 1);
    assert_eq!(stats.count("GET", "/change_events"), 1);
    assert_eq!(stats.count("GET", "/standards/scores/{resource_type}"), 1);
    assert_eq!(
        stats.count("POST", "/analytics/metrics/incidents/services"),
        1
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_trigger_shows_up_in_the_next_card_after_invalidation() {
    let sim = start(SimConfig {
        services: 5,
        ..SimConfig::default()
    })
    .await;
    let cards = cards_for(&sim, config());
    let account = sim.account();
    let service = account
        .services
        .iter()
        .find(|s| {
            s.status == "active"
                && s.integrations
                    .iter()
                    .any(|i| i.kind.starts_with("events_api_v2") && i.integration_key.is_some())
        })
        .expect("a service with an Events API v2 integration");
    let options = CardOptions::default();
    let before = cards
        .card(ServiceRef::Id(service.id.parse().unwrap()), &options)
        .await
        .unwrap();
    let triggered = before.incidents.data.as_ref().unwrap().triggered;

    let routing = cards.routing_key_for_service(&service.id).await.unwrap();
    let resolved = cards
        .resolve_integration_key(routing.routing_key.expose())
        .await
        .expect("the simulator finds the key");
    assert_eq!(resolved.service_id, service.id);
    assert!(resolved.events_v2);
    let by_key = cards
        .card(
            ServiceRef::IntegrationKey(routing.routing_key.expose().into()),
            &options,
        )
        .await
        .unwrap();
    assert_eq!(by_key.service.data.unwrap().id, service.id);
    let payload = EventPayload {
        summary: "Disk full on db-1".into(),
        source: "db-1".into(),
        severity: Severity::Critical,
        timestamp: None,
        component: None,
        group: None,
        class: None,
        custom_details: None,
    };
    cards
        .client()
        .enqueue(&Event::trigger(routing.routing_key.clone(), payload))
        .await
        .expect("trigger accepted");
    cards.invalidate(&service.id, &[Section::Incidents]).await;

    let after = cards
        .card(ServiceRef::Id(service.id.parse().unwrap()), &options)
        .await
        .unwrap();
    let incidents = after.incidents.data.as_ref().unwrap();
    assert_eq!(incidents.triggered, triggered + 1);
    assert_eq!(
        incidents.newest[0].title.as_deref(),
        Some("Disk full on db-1")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn without_change_events_read_change_events_are_read_per_service() {
    let scopes = [
        "services.read",
        "incidents.read",
        "oncalls.read",
        "escalation_policies.read",
        "users.read",
        "teams.read",
    ];
    let sim = start(SimConfig {
        services: 4,
        api_tokens: vec![SimToken::scoped("limited", &scopes)],
        ..SimConfig::default()
    })
    .await;
    let cards = CardService::new(client(&sim, "limited"), config());
    let account = sim.account();
    let ids: Vec<cards::ServiceId> = account
        .services
        .iter()
        .map(|s| s.id.parse().unwrap())
        .collect();
    let results = cards.cards(&ids, &CardOptions::default()).await;
    for card in &results {
        let card = card.as_ref().unwrap();
        assert!(
            card.change_events.data.is_some(),
            "{:?}",
            card.change_events.error
        );
        assert!(card.change_events.error.is_none());
    }
    let stats = sim.stats();
    assert_eq!(stats.by_status("GET", "/change_events", 403), 1);
    assert_eq!(
        stats.count("GET", "/services/{id}/change_events"),
        ids.len() as u64
    );
    sim.shutdown().await;
}
