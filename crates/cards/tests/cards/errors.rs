//! Per-section errors.

use cards::{CardError, CardOptions, SectionErrorKind};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::support::{TestPd, config, sid, sref, typed_ids};

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
        .card(sref(1), &CardOptions::default())
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
    cards.card(sref(1), &CardOptions::default()).await.unwrap();
    assert_eq!(pd.calls("GET", "/incidents").await, 2);
}

fn missing_named_scopes(scopes: Value) -> ResponseTemplate {
    ResponseTemplate::new(403).set_body_json(json!({"error": {
        "message": "Token missing required scopes", "code": 2010,
        "required_scopes": scopes}}))
}

#[tokio::test]
async fn a_forbidden_section_names_the_scopes_pagerduty_requires() {
    let pd = TestPd::start(3, 2).await;
    Mock::given(method("GET"))
        .and(path("/incidents"))
        .respond_with(missing_named_scopes(json!(["incidents.read"])))
        .mount(&pd.server)
        .await;
    let cards = pd.cards(config());
    let card = cards.card(sref(1), &CardOptions::default()).await.unwrap();
    let error = card.incidents.error.as_ref().unwrap();
    assert_eq!(error.kind, SectionErrorKind::Forbidden);
    assert!(error.missing_scopes);
    assert_eq!(error.required_scopes, vec!["incidents.read".to_owned()]);
    let json = serde_json::to_value(&card).unwrap();
    assert_eq!(
        json["incidents"]["error"]["required_scopes"],
        json!(["incidents.read"])
    );
    // Sections PagerDuty named no scopes for do not carry the field.
    assert!(
        json["oncall"]
            .get("error")
            .is_none_or(|e| e.get("required_scopes").is_none())
    );
}

#[tokio::test]
async fn a_forbidden_service_fails_the_card_with_the_required_scopes() {
    let pd = TestPd::start(3, 2).await;
    Mock::given(method("GET"))
        .and(path(format!("/services/{}", sid(2))))
        .respond_with(missing_named_scopes(json!("services.read teams.read")))
        .mount(&pd.server)
        .await;
    let cards = pd.cards(config());
    let error = cards
        .card(sref(2), &CardOptions::default())
        .await
        .unwrap_err();
    match error {
        CardError::Forbidden {
            missing_scopes,
            required_scopes,
            ..
        } => {
            assert!(missing_scopes);
            assert_eq!(required_scopes, vec!["services.read", "teams.read"]);
        }
        other => panic!("expected forbidden, got {other:?}"),
    }
    // Without named scopes the list is empty (and omitted from JSON).
    let plain = cards::SectionError::from(&pagerduty::Error::Forbidden {
        missing_scopes: false,
        body: pagerduty::PdErrorBody::parse(br#"{"error":{"message":"Access Denied"}}"#),
    });
    assert!(plain.required_scopes.is_empty());
    assert!(
        serde_json::to_value(&plain)
            .unwrap()
            .get("required_scopes")
            .is_none()
    );
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
    let card = cards.card(sref(1), &CardOptions::default()).await.unwrap();
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
    let card = cards.card(sref(2), &options).await.unwrap();
    let items = &card
        .change_events
        .data
        .as_ref()
        .expect("fallback data")
        .items;
    assert_eq!(items.len(), 2);
    assert!(card.change_events.error.is_none());
    // The fallback is remembered: the account-wide call is not retried per card.
    cards.card(sref(0), &options).await.unwrap();
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
        .card(sref(1), &CardOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(error, CardError::Unauthorized { .. }), "{error:?}");
}

/// A slow section reports `timeout` within `section_timeout`; the other
/// sections are intact, and the load goes on to fill the cache.
#[tokio::test]
async fn a_slow_section_times_out_alone_and_still_fills_the_cache() {
    let pd = TestPd::start(3, 2).await;
    Mock::given(method("GET"))
        .and(path("/incidents"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_delay(std::time::Duration::from_millis(4000))
                .set_body_json(json!({"incidents": [], "limit": 100, "offset": 0, "more": false})),
        )
        .mount(&pd.server)
        .await;
    let cards = pd.cards(cards::CardsConfig {
        section_timeout: std::time::Duration::from_millis(400),
        ..config()
    });
    let started = std::time::Instant::now();
    let card = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        cards.card(sref(1), &CardOptions::default()),
    )
    .await
    .expect("bounded")
    .expect("the card survives a slow section");
    assert!(started.elapsed() < std::time::Duration::from_millis(3000));
    assert_eq!(
        card.incidents.error.as_ref().map(|e| e.kind),
        Some(SectionErrorKind::Timeout)
    );
    assert!(card.incidents.data.is_none());
    assert!(card.service.data.is_some() && card.service.error.is_none());
    assert!(card.oncall.data.is_some() && card.oncall.error.is_none());
    assert!(card.change_events.data.is_some());
    // The abandoned load goes on: the next read joins it (or finds its
    // value cached) instead of calling PagerDuty again.
    let incidents = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        cards.raw_open_incidents(&sid(1)),
    )
    .await
    .expect("bounded")
    .expect("the load finished");
    assert!(incidents.value.is_empty());
    assert_eq!(pd.calls("GET", "/incidents").await, 1);
}

/// One slow service read fails only its own card; the other cards of the
/// batch (same service batch) come back within the bound.
#[tokio::test]
async fn a_slow_service_fails_only_its_card() {
    let pd = TestPd::start(3, 2).await;
    let slow = sid(1);
    Mock::given(method("GET"))
        .and(path(format!("/services/{slow}")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_delay(std::time::Duration::from_millis(4000))
                .set_body_json(json!({"service": pd.account.services[1].clone()})),
        )
        .mount(&pd.server)
        .await;
    let cards = pd.cards(cards::CardsConfig {
        section_timeout: std::time::Duration::from_millis(600),
        ..config()
    });
    let ids = [sid(0), slow.clone(), sid(2)];
    let started = std::time::Instant::now();
    let results = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        cards.cards(&typed_ids(&ids), &CardOptions::default()),
    )
    .await
    .expect("bounded");
    assert!(started.elapsed() < std::time::Duration::from_millis(3000));
    assert!(results[0].is_ok(), "{:?}", results[0]);
    assert!(
        matches!(results[1], Err(CardError::Timeout { .. })),
        "{:?}",
        results[1]
    );
    assert!(results[2].is_ok(), "{:?}", results[2]);
    assert!(results[0].as_ref().unwrap().oncall.data.is_some());
    assert_eq!(pd.calls("GET", &format!("/services/{slow}")).await, 1);
}

/// During an alert storm the incidents read stops at its page cap (10 pages)
/// and says the counts are lower bounds.
#[tokio::test]
async fn an_alert_storm_caps_the_incident_pages_and_marks_the_section_truncated() {
    let pd = TestPd::start(3, 2).await;
    let page: Vec<_> = (0..100)
        .map(|n| {
            crate::support::incident(
                &format!("PSTORM{n:03}"),
                &sid(1),
                "triggered",
                "2026-11-20T00:00:00Z",
            )
        })
        .collect();
    // Every page says there is more: only the cap ends the read.
    Mock::given(method("GET"))
        .and(path("/incidents"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"incidents": page, "limit": 100, "offset": 0, "more": true})),
        )
        .mount(&pd.server)
        .await;
    let cards = pd.cards(config());
    let card = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        cards.card(sref(1), &CardOptions::default()),
    )
    .await
    .expect("the read is bounded")
    .unwrap();
    let incidents = card.incidents.data.expect("incidents");
    assert!(incidents.truncated);
    assert_eq!(incidents.triggered, 1000, "a lower bound");
    assert_eq!(pd.calls("GET", "/incidents").await, 10);
    let quiet = cards.card(sref(2), &CardOptions::default()).await.unwrap();
    assert!(quiet.incidents.data.expect("incidents").truncated);
}
