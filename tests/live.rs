//! Live cards (issue 16): PagerDuty v3 webhooks in (signatures, dedupe,
//! unusable events, bursts) and card streams out (a change at PagerDuty on
//! an open stream, resume, heartbeat, limits, a slow consumer, shutdown).

use std::sync::Arc;
use std::time::{Duration, Instant};

use dutycard_server::startup::{Application, Stopper};
use dutycard_server::webhooks::WebhookService;
use dutycard_server::webhooks::signature::sign;
use futures::StreamExt as _;
use serde_json::{Value, json};

use crate::helpers::{BASE_TOML, settings_from, sim_env, small_sim, start_sim};

const OLD: &str = "old-webhook-secret-0123456789";
const NEW: &str = "new-webhook-secret-0123456789";
/// Every wait of these tests is bounded by this, unless it says otherwise.
const WAIT: Duration = Duration::from_secs(10);

/// The app and the simulator, with the webhook intake at hand (the
/// intake-edge tests in `live_intake.rs` use it too).
pub(crate) struct Live {
    pub(crate) sim: sim::SimHandle,
    pub(crate) address: String,
    pub(crate) http: reqwest::Client,
    pub(crate) webhooks: Arc<WebhookService>,
    pub(crate) stopper: Stopper,
}

impl Drop for Live {
    fn drop(&mut self) {
        let stopper = self.stopper.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { stopper.stop(false).await });
        }
    }
}

/// Incidents fresh for 5 minutes: a change can only come from a webhook.
const LONG_TTLS: &str = "[cache]\nincidents_ttl_secs = 300\noncall_ttl_secs = 300\n";

pub(crate) async fn live(extra: &str) -> Live {
    let sim = start_sim(small_sim()).await;
    let mut env = sim_env(&sim);
    env.push(("DUTYCARD_PAGERDUTY__API_TOKEN".into(), sim.api_token()));
    let settings = settings_from(&[BASE_TOML, LONG_TTLS, extra], &env);
    let app = Application::build(settings).await.expect("app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let webhooks = app.webhooks();
    let stopper = app.stopper();
    tokio::spawn(app.run_until_stopped());
    Live {
        sim,
        address,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap(),
        webhooks,
        stopper,
    }
}

impl Live {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// An active service with an Events v2 routing key.
    pub(crate) fn routable(&self, nth: usize) -> (String, String) {
        let a = self.sim.account();
        let svc = a
            .services
            .iter()
            .filter(|s| s.status == "active" && !s.integrations.is_empty())
            .nth(nth)
            .expect("a routable service");
        let key = svc.integrations[0].integration_key.clone().unwrap();
        (svc.id.clone(), key)
    }

    /// Subscribes the simulator's account to our intake and accepts its secret.
    pub(crate) async fn subscribe(&self) {
        let r = self
            .http
            .post(format!("{}/webhook_subscriptions", self.sim.base_url()))
            .header("Authorization", format!("Token token={}", self.sim.api_token()))
            .json(&json!({"webhook_subscription": {
                "type": "webhook_subscription",
                "delivery_method": {"type": "http_delivery_method", "url": self.url("/v1/webhooks/pagerduty")},
                "events": ["incident.triggered", "incident.acknowledged", "incident.resolved", "service.updated"],
                "filter": {"type": "account_reference"},
            }}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        let secret = body["webhook_subscription"]["delivery_method"]["secret"]
            .as_str()
            .unwrap()
            .to_owned();
        self.webhooks.add_secret("default", secret.into());
    }

    /// A trigger straight to the simulator's Events API v2 (not through us).
    async fn trigger(&self, key: &str, dedup: &str) {
        self.event(key, "trigger", dedup).await;
    }

    /// An Events API v2 event straight to the simulator.
    async fn event(&self, key: &str, action: &str, dedup: &str) {
        let mut body = json!({"routing_key": key, "event_action": action, "dedup_key": dedup});
        if action == "trigger" {
            body["payload"] = json!({"summary": format!("Disk full {dedup}"), "source": "db-1", "severity": "critical"});
        }
        let r = self
            .http
            .post(format!("{}/v2/enqueue", self.sim.base_url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
    }

    /// A webhook signed with `signature` (None: no header).
    async fn deliver(&self, body: &str, signature: Option<String>, id: &str) -> reqwest::Response {
        let mut req = self
            .http
            .post(self.url("/v1/webhooks/pagerduty"))
            .header("content-type", "application/json")
            .header("X-Webhook-Id", id)
            .body(body.to_owned());
        if let Some(s) = signature {
            req = req.header("X-PagerDuty-Signature", s);
        }
        req.send().await.unwrap()
    }

    async fn metrics(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    fn incident_reads(&self) -> u64 {
        self.sim.stats().count("GET", "/incidents")
    }

    pub(crate) async fn stream(&self, path: &str, last_event_id: Option<&str>) -> Sse {
        let mut req = self
            .http
            .get(self.url(path))
            .timeout(Duration::from_secs(120));
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        Sse {
            body: r,
            buf: String::new(),
        }
    }
}

pub(crate) fn incident_event(event_type: &str, service_id: &str) -> String {
    json!({"event": {
        "id": "01EVENT", "event_type": event_type, "resource_type": "incident",
        "occurred_at": chrono::Utc::now().to_rfc3339(),
        "data": {"id": "Q1", "type": "incident", "service": {"id": service_id, "type": "service_reference"}},
    }})
    .to_string()
}

/// One SSE frame: a comment, or an event.
#[derive(Debug, Default)]
struct Frame {
    comment: Option<String>,
    event: Option<String>,
    id: Option<String>,
    data: String,
}

/// A minimal `text/event-stream` reader (what EventSource does); the
/// replica tests read streams with it too.
pub(crate) struct Sse {
    body: reqwest::Response,
    buf: String,
}

impl Sse {
    /// Reads `body`, an answered stream request.
    pub(crate) fn new(body: reqwest::Response) -> Sse {
        Sse {
            body,
            buf: String::new(),
        }
    }

    /// The next frame; None at the end of the stream.
    async fn frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let text: String = self.buf.drain(..end + 2).collect();
                let mut frame = Frame::default();
                for line in text.lines() {
                    if let Some(c) = line.strip_prefix(':') {
                        frame.comment = Some(c.trim().to_owned());
                    } else if let Some((field, value)) = line.split_once(':') {
                        let value = value.strip_prefix(' ').unwrap_or(value);
                        match field {
                            "event" => frame.event = Some(value.to_owned()),
                            "id" => frame.id = Some(value.to_owned()),
                            "data" => frame.data.push_str(value),
                            _ => {}
                        }
                    }
                }
                return Some(frame);
            }
            match self.body.chunk().await {
                Ok(Some(chunk)) => self.buf.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return None,
            }
        }
    }

    /// The next card event (comments skipped), within `within`.
    pub(crate) async fn card(&mut self, within: Duration) -> (String, Value) {
        self.event("card", within).await
    }

    /// The next `name` event (comments skipped), within `within`.
    async fn event(&mut self, name: &str, within: Duration) -> (String, Value) {
        tokio::time::timeout(within, async {
            loop {
                let frame = self.frame().await.expect("the stream is still open");
                if frame.event.as_deref() == Some(name) {
                    let data: Value = serde_json::from_str(&frame.data).unwrap();
                    return (frame.id.expect("an event id"), data);
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("a {name} event in time"))
    }
}

pub(crate) fn open_incidents(item: &Value) -> u64 {
    item["card"]["incidents"]["data"]["triggered"]
        .as_u64()
        .unwrap()
        + item["card"]["incidents"]["data"]["acknowledged"]
            .as_u64()
            .unwrap()
}

#[tokio::test]
async fn a_trigger_at_pagerduty_shows_on_an_open_stream_within_two_seconds_with_one_refetch() {
    let app = live("").await;
    app.subscribe().await;
    let (service, key) = app.routable(0);
    let mut stream = app
        .stream(&format!("/v1/cards/{service}/stream"), None)
        .await;
    let (etag, first) = stream.card(WAIT).await;
    assert_eq!(first["status"], 200);
    assert_eq!(first["service_id"], service.as_str());
    assert!(etag.starts_with("W/\""), "{etag}");
    let before = open_incidents(&first);
    let reads = app.incident_reads();

    let started = Instant::now();
    app.trigger(&key, "live-1").await;
    let (next_etag, next) = stream.card(Duration::from_secs(2)).await;
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    assert_eq!(open_incidents(&next), before + 1);
    let titles: Vec<&str> = next["card"]["incidents"]["data"]["newest"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["title"].as_str())
        .collect();
    assert!(titles.contains(&"Disk full live-1"), "{titles:?}");
    assert_ne!(next_etag, etag);
    // Incidents are fresh for 5 minutes: only the webhook made this read.
    assert_eq!(app.incident_reads(), reads + 1, "one incidents refetch");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"dutycard_webhook_deliveries_total{account="default",event_type="incident.triggered",outcome="queued"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains("dutycard_webhook_lag_seconds_count{account=\"default\",event_type=\"incident.triggered\"} 1"));

    // The card the stream showed is the one GET answers (same ETag).
    let get = app
        .http
        .get(app.url(&format!("/v1/cards/{service}")))
        .send()
        .await
        .unwrap();
    assert_eq!(get.headers()["etag"].to_str().unwrap(), next_etag);
}

/// Maps `service` to `component:default/shop` through the Backstage route.
async fn map_to_shop(app: &Live, service: &str) {
    let r = app
        .http
        .post(app.url("/api/pagerduty/mapping/entity"))
        .json(&json!({"entityRef": "component:default/shop", "serviceId": service}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
}

#[tokio::test]
async fn an_entity_stream_follows_its_mappings_and_a_trigger_on_any_of_its_services() {
    let app = live("").await;
    app.subscribe().await;
    let (first_service, _) = app.routable(0);
    let (second_service, second_key) = app.routable(1);
    let path = "/v1/entities/component/default/shop/stream";
    // Nothing mapped yet: the stream is refused as the card route would be.
    let r = app.http.get(app.url(path)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "not_found"
    );

    map_to_shop(&app, &first_service).await;
    let mut stream = app.stream(path, None).await;
    let (_, event) = stream.event("entity", WAIT).await;
    assert_eq!(event["status"], 200, "{event}");
    assert_eq!(event["card"]["entity_ref"], "component:default/shop");
    assert_eq!(event["card"]["services"].as_array().unwrap().len(), 1);

    // A second service mapped: the stream shows both, with no poll.
    map_to_shop(&app, &second_service).await;
    let (_, event) = stream.event("entity", WAIT).await;
    let ids: Vec<&str> = event["card"]["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["service_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [first_service.as_str(), second_service.as_str()]);
    let triggered = event["card"]["summary"]["triggered"].as_u64().unwrap();

    // A trigger at PagerDuty on the second service reaches the entity
    // stream through the webhook within two seconds.
    let started = Instant::now();
    app.trigger(&second_key, "entity-live-1").await;
    let (etag, event) = stream.event("entity", Duration::from_secs(2)).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    let summary = &event["card"]["summary"];
    assert_eq!(
        summary["triggered"].as_u64().unwrap(),
        triggered + 1,
        "{summary}"
    );
    assert!(
        summary["open_incidents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["title"] == "Disk full entity-live-1"
                && i["service_id"] == second_service.as_str()),
        "{summary}"
    );
    // The event id is the ETag the card route answers.
    let get = app
        .http
        .get(app.url("/v1/entities/component/default/shop/card"))
        .send()
        .await
        .unwrap();
    assert_eq!(get.headers()["etag"].to_str().unwrap(), etag);

    // A reconnect with that id sends nothing until the entity changes.
    let mut resumed = app.stream(path, Some(&etag)).await;
    // Both services unmapped: the entity has no card now, said as an event.
    for service in [&first_service, &second_service] {
        let r = app
            .http
            .delete(app.url(&format!("/api/pagerduty/mapping/entity/service/{service}")))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }
    let (_, gone) = resumed.event("entity", WAIT).await;
    // The first event after the resume is a change (one service left, or none).
    assert_ne!(
        gone["card"]["services"].as_array().map(Vec::len),
        Some(2),
        "{gone}"
    );
    let mut last = gone;
    while last["status"] != 404 {
        last = resumed.event("entity", WAIT).await.1;
    }
    assert_eq!(last["error"]["code"], "not_found", "{last}");
    assert!(last.get("card").is_none());
}

#[tokio::test]
async fn forged_stale_and_missing_signatures_are_refused_and_a_rotated_pair_verifies() {
    let app = live(&format!("[webhooks]\nsecrets = [\"{OLD}\", \"{NEW}\"]\n")).await;
    let (service, _) = app.routable(0);
    // A cached card: a delivery that got through would make the next read refetch.
    app.http
        .get(app.url(&format!("/v1/cards/{service}")))
        .send()
        .await
        .unwrap();
    let reads = app.incident_reads();
    let body = incident_event("incident.triggered", &service);
    let forged = format!("v1={}", "ab".repeat(32));
    let stale = sign("retired-secret-0123456789", body.as_bytes());
    for (signature, id) in [(Some(forged), "w1"), (Some(stale), "w2"), (None, "w3")] {
        let r = app.deliver(&body, signature, id).await;
        assert_eq!(r.status(), 401);
        let error: Value = r.json().await.unwrap();
        assert_eq!(error["error"]["code"], "invalid_signature");
    }
    app.http
        .get(app.url(&format!("/v1/cards/{service}")))
        .send()
        .await
        .unwrap();
    assert_eq!(app.incident_reads(), reads, "nothing was invalidated");
    let metrics = app.metrics().await;
    for reason in ["mismatch", "missing"] {
        assert!(
            metrics.contains(&format!(
                "dutycard_webhook_signature_failures_total{{account=\"default\",reason=\"{reason}\"}}"
            )),
            "{metrics}"
        );
    }

    // Both secrets of a rotation verify, alone or together.
    let both = format!(
        "{},{}",
        sign(OLD, body.as_bytes()),
        sign(NEW, body.as_bytes())
    );
    for (signature, id) in [
        (sign(OLD, body.as_bytes()), "r1"),
        (sign(NEW, body.as_bytes()), "r2"),
        (both, "r3"),
    ] {
        let r = app.deliver(&body, Some(signature), id).await;
        assert_eq!(r.status(), 202, "{id}");
    }
}

#[tokio::test]
async fn a_redelivered_webhook_is_processed_once_and_unusable_ones_get_2xx() {
    let app = live(&format!("[webhooks]\nsecrets = [\"{NEW}\"]\n")).await;
    let (service, _) = app.routable(0);
    let signed = |body: &str| Some(sign(NEW, body.as_bytes()));
    let status = |v: Value| v["status"].as_str().unwrap().to_owned();

    let body = incident_event("incident.acknowledged", &service);
    let first = app.deliver(&body, signed(&body), "same-id").await;
    assert_eq!(first.status(), 202);
    assert_eq!(status(first.json().await.unwrap()), "queued");
    // The account may be a path segment too: the same delivery is a
    // duplicate there; an unknown account is a 400 naming it.
    for (path, code) in [
        ("/v1/webhooks/pagerduty/default", 202),
        ("/v1/webhooks/pagerduty/nope", 400),
    ] {
        let r = app
            .http
            .post(app.url(path))
            .header("X-Webhook-Id", "same-id")
            .header("X-PagerDuty-Signature", signed(&body).unwrap())
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), code, "{path}");
        let answer: Value = r.json().await.unwrap();
        if code == 202 {
            assert_eq!(status(answer), "duplicate");
        } else {
            assert_eq!(
                answer["error"]["details"]["parameter"], "account",
                "{answer}"
            );
        }
    }
    let again = app.deliver(&body, signed(&body), "same-id").await;
    assert_eq!(again.status(), 202);
    assert_eq!(status(again.json().await.unwrap()), "duplicate");

    // Signed but unusable: 2xx (PagerDuty disables a subscription after 4xx).
    let unknown_type = incident_event("incident.frobnicated", &service);
    let r = app
        .deliver(&unknown_type, signed(&unknown_type), "u1")
        .await;
    assert_eq!(r.status(), 202);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["status"].as_str(), v["reason"].as_str()),
        (Some("ignored"), Some("unknown_event_type"))
    );
    let unknown_service = incident_event("incident.triggered", "PNOSUCH");
    let r = app
        .deliver(&unknown_service, signed(&unknown_service), "u2")
        .await;
    assert_eq!(r.status(), 202);
    let not_json = "not an event";
    let r = app.deliver(not_json, signed(not_json), "u3").await;
    assert_eq!(r.status(), 202);
    let ping =
        json!({"event": {"id": "01P", "event_type": "pagey.ping", "data": {"type": "ping"}}})
            .to_string();
    let r = app.deliver(&ping, signed(&ping), "u4").await;
    assert_eq!(status(r.json().await.unwrap()), "ping");

    let metrics = app.metrics().await;
    for line in [
        r#"event_type="incident.acknowledged",outcome="queued"} 1"#,
        // One redelivery on each route form.
        r#"event_type="incident.acknowledged",outcome="duplicate"} 2"#,
        r#"event_type="other",outcome="unknown_event_type"} 1"#,
        r#"event_type="other",outcome="not_an_event"} 1"#,
        r#"event_type="pagey.ping",outcome="ping"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }

    // Too large: 413 before any check.
    let huge = "x".repeat(300 * 1024);
    let r = app.deliver(&huge, signed(&huge), "big").await;
    assert_eq!(r.status(), 413);
}

#[tokio::test]
async fn a_burst_of_1000_deliveries_all_answer_2xx_each_under_5_seconds() {
    let app = live(&format!("[webhooks]\nsecrets = [\"{NEW}\"]\n")).await;
    let services: Vec<String> = (0..4).map(|i| app.routable(i).0).collect();
    let bodies: Vec<(String, String)> = (0..1000)
        .map(|i| {
            let body = incident_event("incident.triggered", &services[i % services.len()]);
            let signature = sign(NEW, body.as_bytes());
            (body, signature)
        })
        .collect();
    let app = &app;
    let results: Vec<(u16, Duration)> = futures::stream::iter(bodies.into_iter().enumerate())
        .map(|(i, (body, signature))| async move {
            let started = Instant::now();
            let r = app
                .deliver(&body, Some(signature), &format!("burst-{i}"))
                .await;
            (r.status().as_u16(), started.elapsed())
        })
        .buffer_unordered(250)
        .collect()
        .await;
    assert_eq!(results.len(), 1000);
    let slowest = results.iter().map(|(_, d)| *d).max().unwrap();
    assert!(results.iter().all(|(s, _)| *s == 202), "every one 2xx");
    assert!(slowest < Duration::from_secs(5), "slowest {slowest:?}");
}

#[tokio::test]
async fn a_reconnect_with_last_event_id_does_not_resend_an_unchanged_card() {
    let app = live("").await;
    app.subscribe().await;
    let (s0, k0) = app.routable(0);
    let (s1, _) = app.routable(1);
    let mut stream = app.stream(&format!("/v1/cards/{s0}/stream"), None).await;
    let (etag, _) = stream.card(WAIT).await;
    drop(stream);

    // Resumed with the ETag: the first event is the changed card, not a resend.
    let mut resumed = app
        .stream(&format!("/v1/cards/{s0}/stream"), Some(&etag))
        .await;
    app.trigger(&k0, "resume-1").await;
    let (etag2, card) = resumed.card(WAIT).await;
    assert_ne!(etag2, etag);
    let titles = card["card"]["incidents"]["data"]["newest"].to_string();
    assert!(titles.contains("Disk full resume-1"), "{titles}");

    // Several cards: the event id lists each card's ETag hash; resuming
    // with it sends only the card that changed.
    let path = format!("/v1/stream?service_ids={s0},{s1}");
    let mut many = app.stream(&path, None).await;
    let (_, a) = many.card(WAIT).await;
    let (id, b) = many.card(WAIT).await;
    assert_eq!(
        [a["service_id"].as_str(), b["service_id"].as_str()],
        [Some(s0.as_str()), Some(s1.as_str())]
    );
    assert_eq!(id.split(',').count(), 2, "{id}");
    drop(many);
    let mut many = app.stream(&path, Some(&id)).await;
    app.trigger(&k0, "resume-2").await;
    let (_, changed) = many.card(WAIT).await;
    assert_eq!(changed["service_id"], s0.as_str());
    assert!(
        changed["card"]["incidents"]["data"]["newest"]
            .to_string()
            .contains("resume-2")
    );
}

#[tokio::test]
async fn heartbeats_limits_and_shutdown() {
    let app = live("[streams]\nheartbeat_ms = 50\nmax_per_caller = 2\nmax_total = 3\n").await;
    let (s0, _) = app.routable(0);
    // An unknown service: a 404, as GET /v1/cards/{id} answers.
    let missing = app
        .http
        .get(app.url("/v1/cards/PNOSUCH/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let path = format!("/v1/cards/{s0}/stream");
    let mut first = app.stream(&path, None).await;
    first.card(WAIT).await;
    let heartbeat = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(comment) = first.frame().await.and_then(|f| f.comment) {
                return comment;
            }
        }
    })
    .await
    .expect("a heartbeat comment");
    assert_eq!(heartbeat, "keep-alive");
    let _second = app.stream(&path, None).await;
    let refused = app.http.get(app.url(&path)).send().await.unwrap();
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["error"]["code"], "too_many_streams");

    // Shutdown ends the open streams (the body ends) instead of holding
    // them until the shutdown timeout.
    let started = Instant::now();
    let stop = app.stopper.clone();
    tokio::spawn(async move { stop.stop(true).await });
    let ended = tokio::time::timeout(WAIT, async { while first.frame().await.is_some() {} }).await;
    assert!(ended.is_ok(), "the stream ended on shutdown");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_slow_stream_consumer_is_dropped_without_delaying_others() {
    // No pacing between batches: each change is refetched at once.
    let app = live("[streams]\nbuffer = 2\n[cache]\nmin_batch_interval_ms = 0\n").await;
    app.subscribe().await;
    let (service, key) = app.routable(0);
    // A consumer that never reads, with a tiny receive window.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(1024).unwrap();
    let addr = app.address.trim_start_matches("http://").parse().unwrap();
    let mut slow = socket.connect(addr).await.unwrap();
    let request = format!(
        "GET /v1/cards/{service}/stream?incidents=25 HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
    );
    tokio::io::AsyncWriteExt::write_all(&mut slow, request.as_bytes())
        .await
        .unwrap();
    let mut fast = app
        .stream(&format!("/v1/cards/{service}/stream?incidents=25"), None)
        .await;
    fast.card(WAIT).await;

    // Each change is a card of 25 incidents: a new one opens, and from the
    // 26th on the oldest is resolved, so the card stays large (it fills the
    // slow connection's buffers) and the simulator stays fast.
    let mut dropped = false;
    for i in 0..600 {
        app.trigger(&key, &format!("slow-{i}")).await;
        if i >= 25 {
            app.event(&key, "resolve", &format!("slow-{}", i - 25))
                .await;
        }
        let started = Instant::now();
        tokio::time::timeout(Duration::from_secs(2), async {
            loop {
                let (_, card) = fast.card(WAIT).await;
                assert_eq!(card["status"], 200);
                let newest = card["card"]["incidents"]["data"]["newest"].to_string();
                let gone = i < 25 || !newest.contains(&format!("\"Disk full slow-{}\"", i - 25));
                if newest.contains(&format!("\"Disk full slow-{i}\"")) && gone {
                    return;
                }
            }
        })
        .await
        .expect("the fast stream shows each change within 2 s");
        assert!(started.elapsed() < Duration::from_secs(2));
        if app
            .metrics()
            .await
            .contains(r#"dutycard_streams_total{outcome="dropped_slow"} 1"#)
        {
            dropped = true;
            eprintln!("slow consumer dropped after {} changes", i + 1);
            break;
        }
    }
    assert!(dropped, "the slow consumer was dropped");
    // The fast one goes on.
    app.trigger(&key, "after-drop").await;
    tokio::time::timeout(Duration::from_secs(2), async {
        while !fast.card(WAIT).await.1["card"]["incidents"]["data"]["newest"]
            .to_string()
            .contains("after-drop")
        {}
    })
    .await
    .expect("the fast stream goes on");
    drop(slow);
}

#[test]
fn check_config_shows_webhook_secrets_redacted_and_its_output_validates() {
    let dir = std::env::temp_dir().join(format!("dutycard-live-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("secrets");
    std::fs::write(&file, format!("# rotation\n{OLD}\n{NEW}\n")).unwrap();
    let toml = format!(
        "[webhooks]\nsecrets_file = {:?}\n[webhooks.accounts.default]\nsecrets = [\"{NEW}\"]\n",
        file.display().to_string()
    );
    let settings = crate::helpers::settings(&toml, &[]);
    assert_eq!(settings.webhooks.secrets_of("default", true).len(), 3);
    let text = settings.to_redacted_toml();
    assert!(!text.contains(OLD) && !text.contains(NEW), "{text}");
    assert!(text.contains("secrets_file"), "{text}");
    // Fed back, it validates (the file's secrets are shown as the file only).
    crate::helpers::load_layers(&[&text], &[]).unwrap_or_else(|e| panic!("{e}\n{text}"));
    // A short secret is a problem named by its key, never quoted.
    let err = crate::helpers::load("[webhooks]\nsecrets = [\"tiny\"]\n", &[]).unwrap_err();
    assert!(err.keys().contains(&"webhooks.secrets[0]"), "{err}");
    assert!(!err.to_string().contains("tiny"));
    std::fs::remove_dir_all(&dir).ok();
}
