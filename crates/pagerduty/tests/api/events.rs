//! Events API v2: enqueue, change events, validation naming each field,
//! and the retry rules (400 final; 429/5xx retried).

use pagerduty::{
    ChangeEventPayload, ChangeEventRequest, Error, Event, EventAction, EventLink, EventPayload,
    RoutingKey, Severity,
};
use serde_json::json;
use wiremock::matchers::{body_json, header, header_exists, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{ROUTING_KEY, bounded, token_client};

fn payload() -> EventPayload {
    EventPayload {
        summary: "Checkout latency p99 above 2s".into(),
        source: "payments-api-7d9f".into(),
        severity: Severity::Error,
        timestamp: Some("2026-11-23T09:00:00.123+00:00".into()),
        component: Some("checkout".into()),
        group: Some("payments".into()),
        class: Some("manual trigger".into()),
        custom_details: Some(json!({"user": "dana@acme.example"})),
    }
}

fn accepted(dedup: &str) -> ResponseTemplate {
    ResponseTemplate::new(202).set_body_json(json!({
        "status": "success", "message": "Event processed", "dedup_key": dedup
    }))
}

#[tokio::test]
async fn trigger_is_posted_to_enqueue() {
    bounded(async {
        let server = MockServer::start().await;
        let mut event = Event::trigger(ROUTING_KEY, payload());
        event.client = Some("dutycard".into());
        event.client_url = Some("https://portal.acme.example/catalog/payments".into());
        event.links = vec![EventLink {
            href: "https://portal.acme.example/catalog/payments".into(),
            text: Some("Service in the portal".into()),
        }];
        Mock::given(method("POST"))
            .and(path("/v2/enqueue"))
            .and(header("content-type", "application/json"))
            .and(body_json(json!({
                "routing_key": ROUTING_KEY,
                "event_action": "trigger",
                "payload": {
                    "summary": "Checkout latency p99 above 2s",
                    "source": "payments-api-7d9f",
                    "severity": "error",
                    "timestamp": "2026-11-23T09:00:00.123+00:00",
                    "component": "checkout",
                    "group": "payments",
                    "class": "manual trigger",
                    "custom_details": {"user": "dana@acme.example"}
                },
                "client": "dutycard",
                "client_url": "https://portal.acme.example/catalog/payments",
                "links": [{"href": "https://portal.acme.example/catalog/payments", "text": "Service in the portal"}]
            })))
            .respond_with(accepted("5f2c1a9e0b7d4e3c8a6f1d2b3c4e5f60"))
            .expect(1)
            .mount(&server)
            .await;
        // No REST auth header on the Events API.
        Mock::given(header_exists("authorization"))
            .respond_with(ResponseTemplate::new(500))
            .expect(0)
            .mount(&server)
            .await;
        let resp = token_client(&server).events().enqueue(&event).await.unwrap();
        assert_eq!(resp.status, "success");
        assert_eq!(resp.message, "Event processed");
        assert_eq!(resp.dedup_key.as_deref(), Some("5f2c1a9e0b7d4e3c8a6f1d2b3c4e5f60"));
    })
    .await
}

#[tokio::test]
async fn acknowledge_and_resolve_need_only_dedup_key() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v2/enqueue"))
            .and(body_json(json!({"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": "checkout-latency"})))
            .respond_with(accepted("checkout-latency"))
            .expect(1)
            .mount(&server)
            .await;
        let event = Event::follow_up(ROUTING_KEY, EventAction::Resolve, "checkout-latency");
        let resp = token_client(&server).enqueue(&event).await.unwrap();
        assert_eq!(resp.dedup_key.as_deref(), Some("checkout-latency"));
    })
    .await
}

#[tokio::test]
async fn change_event_is_posted_to_change_enqueue() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v2/change/enqueue"))
            .and(body_json(json!({
                "routing_key": ROUTING_KEY,
                "payload": {"summary": "Deploy payments-api v2.14.0", "source": "github-actions",
                            "timestamp": "2026-11-22T16:40:00Z", "custom_details": {"commit": "4f2a9c1"}},
                "links": [{"href": "https://git.example/acme/payments/pull/812"}]
            })))
            .respond_with(ResponseTemplate::new(202).set_body_json(json!({
                "status": "success", "message": "Change event processed"
            })))
            .expect(1)
            .mount(&server)
            .await;
        let ev = ChangeEventRequest {
            routing_key: RoutingKey::new(ROUTING_KEY),
            payload: ChangeEventPayload {
                summary: "Deploy payments-api v2.14.0".into(),
                source: Some("github-actions".into()),
                timestamp: Some("2026-11-22T16:40:00Z".into()),
                custom_details: Some(json!({"commit": "4f2a9c1"})),
            },
            links: vec![EventLink {
                href: "https://git.example/acme/payments/pull/812".into(),
                text: None,
            }],
        };
        let resp = token_client(&server).events().enqueue_change(&ev).await.unwrap();
        assert_eq!(resp.status, "success");
        assert_eq!(resp.dedup_key, None);
    })
    .await
}

#[tokio::test]
async fn invalid_event_answer_is_not_retried_and_keeps_errors() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v2/enqueue"))
            .respond_with(ResponseTemplate::new(400).set_body_json(json!({
                "status": "invalid event", "message": "Event object is invalid",
                "errors": ["'payload.summary' is missing or blank"]
            })))
            .expect(1)
            .mount(&server)
            .await;
        let err = token_client(&server)
            .enqueue(&Event::trigger(ROUTING_KEY, payload()))
            .await
            .unwrap_err();
        match &err {
            Error::InvalidRequest { body } => {
                assert_eq!(body.message.as_deref(), Some("Event object is invalid"));
                assert_eq!(body.errors, vec!["'payload.summary' is missing or blank"]);
            }
            other => panic!("expected InvalidRequest, got {other:?}"),
        }
    })
    .await
}

#[tokio::test]
async fn throttled_and_failing_events_are_retried() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v2/enqueue"))
            .respond_with(ResponseTemplate::new(429))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v2/enqueue"))
            .respond_with(ResponseTemplate::new(502).set_body_json(json!({
                "status": "Unrecognized object", "message": "Event object format is unrecognized",
                "errors": ["JSON parse error"]
            })))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v2/enqueue"))
            .respond_with(accepted("k1"))
            .expect(1)
            .mount(&server)
            .await;
        let resp = token_client(&server)
            .enqueue(&Event::trigger(ROUTING_KEY, payload()))
            .await
            .unwrap();
        assert_eq!(resp.dedup_key.as_deref(), Some("k1"));
    })
    .await
}

fn assert_field(r: Result<(), pagerduty::ValidationError>, field: &str) {
    let e = r.expect_err(field);
    assert_eq!(e.field, field, "{e}");
    assert!(e.to_string().contains(field), "{e}");
}

#[test]
fn every_validation_rule_names_its_field() {
    let ok = Event::trigger(ROUTING_KEY, payload());
    ok.validate().unwrap();

    let mut e = ok.clone();
    e.routing_key = RoutingKey::new("short");
    assert_field(e.validate(), "routing_key");
    e.routing_key = RoutingKey::new(format!("{ROUTING_KEY}x"));
    assert_field(e.validate(), "routing_key");

    let mut e = ok.clone();
    e.payload.as_mut().unwrap().summary = String::new();
    assert_field(e.validate(), "payload.summary");
    e.payload.as_mut().unwrap().summary = "x".repeat(1025);
    assert_field(e.validate(), "payload.summary");
    e.payload.as_mut().unwrap().summary = "é".repeat(1024); // characters, not bytes
    e.validate().unwrap();

    let mut e = ok.clone();
    e.payload.as_mut().unwrap().source = "  ".into();
    assert_field(e.validate(), "payload.source");

    assert_field("fatal".parse::<Severity>().map(|_| ()), "payload.severity");
    assert_eq!("critical".parse::<Severity>().unwrap(), Severity::Critical);
    let bad: Result<Event, _> = serde_json::from_value(json!({
        "routing_key": ROUTING_KEY, "event_action": "trigger",
        "payload": {"summary": "s", "source": "s", "severity": "fatal"}
    }));
    assert!(bad.unwrap_err().to_string().contains("fatal"));

    let mut e = ok.clone();
    e.dedup_key = Some("d".repeat(256));
    assert_field(e.validate(), "dedup_key");
    e.dedup_key = Some("d".repeat(255));
    e.validate().unwrap();
    assert_field(
        Event {
            dedup_key: None,
            ..Event::follow_up(ROUTING_KEY, EventAction::Acknowledge, "x")
        }
        .validate(),
        "dedup_key",
    );

    let mut e = ok.clone();
    e.payload.as_mut().unwrap().timestamp = Some("yesterday at noon".into());
    assert_field(e.validate(), "payload.timestamp");
    e.payload.as_mut().unwrap().timestamp = Some("2015-07-17T08:42:58.315+0000".into());
    e.validate().unwrap();

    let mut e = ok.clone();
    e.payload.as_mut().unwrap().custom_details = Some(json!(["not", "an", "object"]));
    assert_field(e.validate(), "payload.custom_details");

    let mut e = ok.clone();
    e.payload = None;
    assert_field(e.validate(), "payload");

    let mut e = ok.clone();
    e.payload.as_mut().unwrap().custom_details = Some(json!({"blob": "x".repeat(512 * 1024)}));
    assert_field(e.validate(), "body");

    let mut e = ok.clone();
    e.links = vec![EventLink {
        href: String::new(),
        text: None,
    }];
    assert_field(e.validate(), "links[0].href");

    let mut e = ok.clone();
    e.images = vec![json!({"alt": "graph"})];
    assert_field(e.validate(), "images[0].src");

    let change = ChangeEventRequest {
        routing_key: RoutingKey::new("x"),
        payload: ChangeEventPayload {
            summary: "deploy".into(),
            source: None,
            timestamp: None,
            custom_details: None,
        },
        links: vec![],
    };
    assert_field(change.validate(), "routing_key");
    let mut c = change.clone();
    c.routing_key = RoutingKey::new(ROUTING_KEY);
    c.validate().unwrap();
    c.payload.summary = "x".repeat(1025);
    assert_field(c.validate(), "payload.summary");
    c.payload.summary = "deploy".into();
    c.payload.timestamp = Some("2026-13-45".into());
    assert_field(c.validate(), "payload.timestamp");
    c.payload.timestamp = None;
    c.payload.custom_details = Some(json!("text"));
    assert_field(c.validate(), "payload.custom_details");
}

#[tokio::test]
async fn invalid_events_are_never_sent() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(accepted("x"))
            .expect(0)
            .mount(&server)
            .await;
        let mut e = Event::trigger(ROUTING_KEY, payload());
        e.payload.as_mut().unwrap().summary = String::new();
        let err = token_client(&server).enqueue(&e).await.unwrap_err();
        assert!(
            matches!(&err, Error::InvalidEvent(v) if v.field == "payload.summary"),
            "{err:?}"
        );
        assert!(err.to_string().contains("payload.summary"));
    })
    .await
}

#[test]
fn routing_key_is_redacted() {
    let key = RoutingKey::new(ROUTING_KEY);
    let shown = format!("{key:?}");
    assert!(!shown.contains(ROUTING_KEY), "{shown}");
    assert!(!shown.contains("0123456789abcdef"), "{shown}");
    assert_eq!(key.fingerprint().len(), 8);
    assert_eq!(
        key.fingerprint(),
        RoutingKey::new(ROUTING_KEY).fingerprint()
    );
    assert_ne!(
        key.fingerprint(),
        RoutingKey::new("x".repeat(32)).fingerprint()
    );
    assert_eq!(key.expose(), ROUTING_KEY);
    let event = Event::trigger(ROUTING_KEY, payload());
    assert!(!format!("{event:?}").contains(ROUTING_KEY));
    // Serialization is how the key reaches PagerDuty, so it is kept there.
    assert!(serde_json::to_string(&event).unwrap().contains(ROUTING_KEY));
}

#[tokio::test]
async fn enqueue_once_makes_exactly_one_attempt() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v2/enqueue"))
            .respond_with(ResponseTemplate::new(503))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v2/enqueue"))
            .respond_with(accepted("k1"))
            .expect(0)
            .mount(&server)
            .await;
        let err = token_client(&server)
            .events()
            .enqueue_once(&Event::trigger(ROUTING_KEY, payload()))
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(503), "{err:?}");
    })
    .await
}

#[tokio::test]
async fn accepted_event_with_an_unexpected_body_is_still_accepted() {
    bounded(async {
        for (body, status) in [
            ("", ""),
            ("not json", ""),
            (r#"{"status":"success"}"#, "success"),
        ] {
            let server = MockServer::start().await;
            Mock::given(method("POST"))
                .and(path("/v2/enqueue"))
                .respond_with(ResponseTemplate::new(202).set_body_string(body))
                .expect(1)
                .mount(&server)
                .await;
            let client = token_client(&server);
            let resp = client
                .events()
                .enqueue_once(&Event::trigger(ROUTING_KEY, payload()))
                .await
                .unwrap_or_else(|e| panic!("202 {body:?} must be accepted: {e:?}"));
            assert_eq!(resp.status, status, "body {body:?}");
            assert_eq!(resp.message, "");
            assert_eq!(resp.dedup_key, None);
        }
    })
    .await
}
