//! Integration keys and routing keys.

use std::time::Duration;

use cards::{CardError, CardOptions, CardsConfig, IntegrationKey, ServiceRef};

use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, Request, ResponseTemplate};

use crate::support::{TestPd, config, key_of, sid};

#[tokio::test]
async fn an_integration_key_gives_the_card_of_its_service() {
    let pd = TestPd::start(4, 2).await;
    let cards = pd.cards(config());
    let card = cards
        .card(
            ServiceRef::IntegrationKey(IntegrationKey::new(key_of(3))),
            &CardOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(card.service.data.unwrap().id, sid(3));
    let resolved = cards.resolve_integration_key(&key_of(3)).await.unwrap();
    assert_eq!(resolved.service_id, sid(3));
    assert!(resolved.events_v2);
    assert_eq!(
        pd.calls("GET", "/services").await,
        1,
        "the mapping is cached"
    );
}

#[tokio::test]
async fn an_unknown_key_is_not_found_and_cached_briefly() {
    let pd = TestPd::start(2, 1).await;
    let clock = std::sync::Arc::new(cards::clock::ManualClock::new());
    let cards = pd.cards_with_clock(
        CardsConfig {
            integration_key_miss_ttl: Duration::from_secs(30),
            ..config()
        },
        clock.clone(),
    );
    let unknown = "u".repeat(32);
    for _ in 0..5 {
        let error = cards.resolve_integration_key(&unknown).await.unwrap_err();
        assert!(matches!(error, CardError::NotFound { .. }));
    }
    // The query, then the fallback listing (one page).
    assert_eq!(pd.calls("GET", "/services").await, 2, "the miss is cached");
    clock.advance(Duration::from_secs(31));
    assert!(cards.resolve_integration_key(&unknown).await.is_err());
    assert_eq!(pd.calls("GET", "/services").await, 4, "only briefly");
    let error = cards
        .card(
            ServiceRef::IntegrationKey(IntegrationKey::new(unknown.clone())),
            &CardOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(
        !format!("{error} {error:?}").contains(&unknown),
        "the key is never printed"
    );
}

#[tokio::test]
async fn the_routing_key_prefers_the_backstage_integration() {
    let pd = TestPd::start(3, 1).await;
    let cards = pd.cards(config());
    let info = cards.routing_key_for_service(&sid(2)).await.unwrap();
    assert!(info.backstage_vendor);
    assert_eq!(info.vendor_id.as_deref(), Some("PRO19CT"));
    assert!(!format!("{info:?}").contains(info.routing_key.expose()));
    let info = cards.routing_key_for_service(&sid(1)).await.unwrap();
    assert!(!info.backstage_vendor);
    assert_eq!(info.routing_key.expose(), key_of(1));
    assert!(matches!(
        cards.routing_key_for_service("PNOPE00").await,
        Err(CardError::NotFound { .. })
    ));
}

/// A key lookup that reads several pages counts every page.
#[tokio::test]
async fn a_key_lookup_counts_every_page_it_reads() {
    let pd = TestPd::start(4, 2).await;
    let key = key_of(2);
    // The query also matches a service that merely mentions the key: the
    // match is on the second page.
    let decoy = json!({"id": "PDECOY1", "type": "service", "name": "mentions the key",
                       "integrations": []});
    Mock::given(method("GET"))
        .and(path("/services"))
        .and(query_param("query", key.as_str()))
        .and(query_param("offset", "0"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"services": [decoy], "limit": 100, "offset": 0, "more": true, "total": null}),
        ))
        .mount(&pd.server)
        .await;
    let owner = pd.account.services[2].clone();
    Mock::given(method("GET"))
        .and(path("/services"))
        .and(query_param("query", key.as_str()))
        .and(query_param("offset", "100"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"services": [owner], "limit": 100, "offset": 100, "more": false, "total": null}),
        ))
        .mount(&pd.server)
        .await;
    let cards = pd.cards(config());
    let resolved = cards.resolve_integration_key(&key).await.unwrap();
    assert_eq!(resolved.service_id, sid(2));
    assert_eq!(pd.calls("GET", "/services").await, 2);
    assert_eq!(cards.stats().integration_keys.upstream_calls, 2);
}

/// `GET /services?query=…` answers no service (PagerDuty documents `query`
/// as a name filter), at a higher priority than the fake.
async fn query_matches_nothing(pd: &TestPd) {
    Mock::given(method("GET"))
        .and(path("/services"))
        .and(|r: &Request| r.url.query_pairs().any(|(k, _)| k == "query"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"services": [], "limit": 100, "offset": 0, "more": false, "total": null}),
        ))
        .mount(&pd.server)
        .await;
}

/// `(query calls, listing calls)` received on `GET /services`.
async fn services_calls(pd: &TestPd) -> (usize, usize) {
    let requests = pd.server.received_requests().await.unwrap_or_default();
    let services = requests
        .iter()
        .filter(|r| r.method.as_str() == "GET" && r.url.path() == "/services");
    let (query, listing): (Vec<_>, Vec<_>) =
        services.partition(|r| r.url.query_pairs().any(|(k, _)| k == "query"));
    (query.len(), listing.len())
}

#[tokio::test]
async fn a_key_the_query_does_not_match_is_found_by_listing_the_services() {
    // 250 services: the listing reads 3 pages, the key is on the last one.
    let pd = TestPd::start(250, 5).await;
    query_matches_nothing(&pd).await;
    let cards = pd.cards(config());
    let card = cards
        .card(
            ServiceRef::IntegrationKey(IntegrationKey::new(key_of(242))),
            &CardOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(card.service.data.unwrap().id, sid(242));
    assert_eq!(services_calls(&pd).await, (1, 3), "one query, one listing");
    assert_eq!(
        pd.calls("GET", &format!("/services/{}", sid(242))).await,
        0,
        "the listing warmed the service section"
    );
    assert_eq!(cards.stats().integration_keys.upstream_calls, 4);
    // Another key within the miss TTL: its query, then the same listing's index.
    let resolved = cards.resolve_integration_key(&key_of(7)).await.unwrap();
    assert_eq!(resolved.service_id, sid(7));
    assert_eq!(services_calls(&pd).await, (2, 3));
}

#[tokio::test]
async fn a_key_of_a_cached_service_needs_no_listing() {
    let pd = TestPd::start(4, 2).await;
    query_matches_nothing(&pd).await;
    let cards = pd.cards(config());
    cards.raw_service(&sid(1)).await.unwrap();
    let resolved = cards.resolve_integration_key(&key_of(1)).await.unwrap();
    assert_eq!(resolved.service_id, sid(1));
    assert_eq!(services_calls(&pd).await, (1, 0));
}

#[tokio::test]
async fn unknown_keys_cost_one_listing_per_miss_ttl_whatever_their_number() {
    let pd = TestPd::start(150, 5).await;
    query_matches_nothing(&pd).await;
    let clock = std::sync::Arc::new(cards::clock::ManualClock::new());
    let cards = pd.cards_with_clock(
        CardsConfig {
            integration_key_miss_ttl: Duration::from_secs(30),
            ..config()
        },
        clock.clone(),
    );
    let unknown = "u".repeat(32);
    let error = cards.resolve_integration_key(&unknown).await.unwrap_err();
    assert!(matches!(error, CardError::NotFound { .. }));
    assert_eq!(services_calls(&pd).await, (1, 2), "one query, one listing");
    // The same key again within the miss TTL: no upstream call at all.
    let error = cards.resolve_integration_key(&unknown).await.unwrap_err();
    assert!(matches!(error, CardError::NotFound { .. }));
    assert_eq!(services_calls(&pd).await, (1, 2), "the miss is cached");
    // Ten other unknown keys at once: their queries, but no new listing.
    let others: Vec<String> = (0..10).map(|n| format!("k{n}").repeat(16)).collect();
    let results =
        futures::future::join_all(others.iter().map(|k| cards.resolve_integration_key(k))).await;
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(CardError::NotFound { .. })))
    );
    assert_eq!(services_calls(&pd).await, (11, 2));
    // Past the miss TTL a new key lists again, once even when many ask at once.
    clock.advance(Duration::from_secs(31));
    let later: Vec<String> = (0..10).map(|n| format!("v{n}").repeat(16)).collect();
    let results =
        futures::future::join_all(later.iter().map(|k| cards.resolve_integration_key(k))).await;
    assert!(results.iter().all(Result::is_err));
    assert_eq!(
        services_calls(&pd).await,
        (21, 4),
        "one listing for all ten"
    );
    assert_eq!(cards.stats().integration_keys.upstream_calls, 25);
}

#[tokio::test]
async fn a_failed_key_listing_is_an_error_not_a_cached_miss() {
    let pd = TestPd::start(4, 2).await;
    query_matches_nothing(&pd).await;
    Mock::given(method("GET"))
        .and(path("/services"))
        .and(|r: &Request| !r.url.query_pairs().any(|(k, _)| k == "query"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .mount(&pd.server)
        .await;
    let cards = pd.cards(config());
    let error = cards.resolve_integration_key(&key_of(2)).await.unwrap_err();
    assert!(!matches!(error, CardError::NotFound { .. }), "{error:?}");
    assert!(!format!("{error} {error:?}").contains(&key_of(2)));
    let resolved = cards.resolve_integration_key(&key_of(2)).await.unwrap();
    assert_eq!(resolved.service_id, sid(2));
}
