//! Per-section errors.

use cards::{CardError, CardOptions, SectionErrorKind, ServiceRef};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::support::{TestPd, config, sid};

fn missing_scopes() -> ResponseTemplate {
    ResponseTemplate::new(403)
        .set_body_json(json!({"error": {"message": "Token missing required scopes", "code": 2010}}))
}

#[tokio::test]
async fn one_forbidden_section_leaves_the_other_sections_intact() {
    let pd = TestPd::start(3, 2).await;
    Mock::given(method("GET"))
        .and(path("/incidents"))
        .respond_with(missing_scopes())
        .mount(&pd.server)
        .await;
    let cards = pd.cards(config());
    let card = cards
        .card(ServiceRef::Id(sid(1)), &CardOptions::default())
        .await
        .expect("the card survives a failing section");
    assert!(card.incidents.data.is_none());
    let error = card.incidents.error.as_ref().unwrap();
    assert_eq!(error.kind, SectionErrorKind::Forbidden);
    assert!(error.missing_scopes);
    assert_eq!(card.incidents.max_age_secs, 0);
    assert!(card.service.data.is_some() && card.service.error.is_none());
    assert!(card.escalation_policy.data.is_some());
    assert!(card.oncall.data.is_some() && card.oncall.error.is_none());
    assert!(card.change_events.data.is_some());
    assert_eq!(card.max_age_secs(), 0);
    // Errors are not cached: the next card asks again.
    cards
        .card(ServiceRef::Id(sid(1)), &CardOptions::default())
        .await
        .unwrap();
    assert_eq!(pd.calls("GET", "/incidents").await, 2);
}

#[tokio::test]
async fn rate_limited_sections_carry_the_retry_time() {
    let pd = TestPd::start(3, 2).await;
    Mock::given(method("GET"))
        .and(path("/oncalls"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("ratelimit-reset", "7")
                .set_body_json(json!({"error": {"message": "Rate Limit Exceeded", "code": 2020}})),
        )
        .mount(&pd.server)
        .await;
    let cards = pd.cards(config());
    let card = cards
        .card(ServiceRef::Id(sid(1)), &CardOptions::default())
        .await
        .unwrap();
    let error = card.oncall.error.as_ref().unwrap();
    assert_eq!(error.kind, SectionErrorKind::RateLimited);
    assert_eq!(error.retry_after_secs, Some(7));
    assert!(card.incidents.error.is_none());
}

#[tokio::test]
async fn change_events_fall_back_per_service_without_change_events_read() {
    let pd = TestPd::start(4, 2).await;
    Mock::given(method("GET"))
        .and(path("/change_events"))
        .respond_with(missing_scopes())
        .mount(&pd.server)
        .await;
    let cards = pd.cards(config());
    let options = CardOptions::default();
    let card = cards.card(ServiceRef::Id(sid(2)), &options).await.unwrap();
    let items = &card
        .change_events
        .data
        .as_ref()
        .expect("fallback data")
        .items;
    assert_eq!(items.len(), 2);
    assert!(card.change_events.error.is_none());
    // The fallback is remembered: the account-wide call is not retried per card.
    cards.card(ServiceRef::Id(sid(0)), &options).await.unwrap();
    assert_eq!(pd.calls("GET", "/change_events").await, 1);
    assert_eq!(
        pd.calls("GET", &format!("/services/{}/change_events", sid(2)))
            .await,
        1
    );
    assert_eq!(
        pd.calls("GET", &format!("/services/{}/change_events", sid(0)))
            .await,
        1
    );
}

#[tokio::test]
async fn a_failing_service_section_fails_the_card_with_its_kind() {
    let pd = TestPd::start(3, 2).await;
    Mock::given(method("GET"))
        .and(path(format!("/services/{}", sid(1))))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(
                json!({"error": {"message": "Authentication failed", "code": 2006}}),
            ),
        )
        .mount(&pd.server)
        .await;
    let cards = pd.cards(config());
    let error = cards
        .card(ServiceRef::Id(sid(1)), &CardOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(error, CardError::Unauthorized(_)), "{error:?}");
}
