//! Integration keys and routing keys.

use std::time::Duration;

use cards::{CardError, CardOptions, CardsConfig, IntegrationKey, ServiceRef};

use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

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
    assert_eq!(pd.calls("GET", "/services").await, 1, "the miss is cached");
    clock.advance(Duration::from_secs(31));
    assert!(cards.resolve_integration_key(&unknown).await.is_err());
    assert_eq!(pd.calls("GET", "/services").await, 2, "only briefly");
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
