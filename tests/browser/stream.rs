//! The card on the demo page against the real stream (issue 16 meets
//! issue 19): a trigger made straight at PagerDuty (the simulator), which
//! the simulator announces with a signed webhook, shows on the open card
//! with no poll of the card route.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dutycard_server::startup::{Application, Stopper};
use dutycard_server::webhooks::WebhookService;
use serde_json::{Value, json};

use super::driver::Browser;
use super::{errors, root, turn, wait_until_cards_ready};
use crate::helpers::{BASE_TOML, TestApp, settings_from, sim_env, small_sim, start_sim};
use crate::trigger::triggerable_service;

/// Incidents and on-call fresh for 5 minutes: no poll or expiry can bring
/// a new incident in during the test, only the webhook.
pub(super) const LONG_TTLS: &str = "[cache]\nincidents_ttl_secs = 300\noncall_ttl_secs = 300\n";

/// Stops the app when the test ends, however it ends.
pub(super) struct StopOnDrop(pub(super) Stopper);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let stopper = self.0.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { stopper.stop(false).await });
        }
    }
}

/// Subscribes the simulator's account to the app's webhook intake and
/// gives the app the subscription's secret.
pub(super) async fn subscribe(
    http: &reqwest::Client,
    sim: &sim::SimHandle,
    app: &str,
    webhooks: &WebhookService,
) {
    let r = http
        .post(format!("{}/webhook_subscriptions", sim.base_url()))
        .header("Authorization", format!("Token token={}", sim.api_token()))
        .json(&json!({"webhook_subscription": {
            "type": "webhook_subscription",
            "delivery_method": {"type": "http_delivery_method", "url": format!("{app}/v1/webhooks/pagerduty")},
            "events": ["incident.triggered", "incident.acknowledged", "incident.resolved"],
            "filter": {"type": "account_reference"},
        }}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let secret = body["webhook_subscription"]["delivery_method"]["secret"]
        .as_str()
        .expect("the created subscription's secret")
        .to_owned();
    webhooks.add_secret("default", secret.into());
}

pub(super) async fn metrics(http: &reqwest::Client, app: &str) -> String {
    http.get(format!("{app}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Every `GET /v1/cards/{service_id}` the app answered (any status).
pub(super) fn card_gets(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| {
            l.starts_with("dutycard_http_requests_total{")
                && l.contains(r#"method="GET""#)
                && l.contains(r#"route="/v1/cards/{service_id}""#)
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

pub(super) fn gauge(metrics: &str, name: &str) -> Option<u64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn a_trigger_at_pagerduty_shows_on_the_open_card_within_2s_through_the_real_stream_without_a_poll()
 {
    let _turn = turn().await;
    let sim = start_sim(small_sim()).await;
    let mut env = sim_env(&sim);
    env.push(("DUTYCARD_PAGERDUTY__API_TOKEN".into(), sim.api_token()));
    let app = Application::build(settings_from(&[BASE_TOML, LONG_TTLS], &env))
        .await
        .expect("app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let webhooks: Arc<WebhookService> = app.webhooks();
    let _stop = StopOnDrop(app.stopper());
    tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    subscribe(&http, &sim, &address, &webhooks).await;
    let (id, key) = triggerable_service(&sim);

    let browser = Browser::start().await;
    browser.goto(&format!("{address}/ui/?services={id}")).await;
    wait_until_cards_ready(&browser, 1).await;
    // The card's stream is open (it opens after the first read).
    let deadline = Instant::now() + Duration::from_secs(10);
    while gauge(&metrics(&http, &address).await, "dutycard_streams_open") != Some(1) {
        assert!(
            Instant::now() < deadline,
            "the card never opened its stream"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let gets = card_gets(&metrics(&http, &address).await);
    assert!(gets >= 1, "the card's first read is counted");
    let incident_reads = sim.stats().count("GET", "/incidents");

    // A trigger straight at PagerDuty's Events API, not through dutycard.
    let title = "Disk full on db-1 (browser, real stream)";
    let r = http
        .post(format!("{}/enqueue", sim.events_base_url()))
        .json(&json!({
            "routing_key": key,
            "event_action": "trigger",
            "dedup_key": "browser-stream-1",
            "payload": {"summary": title, "source": "db-1", "severity": "critical"},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
    let sent = Instant::now();
    browser
        .wait_for(
            "the incident triggered at PagerDuty on the card",
            Duration::from_secs(2),
            &format!(
                "const s = {}.querySelector('[data-section=\"incidents\"]');
                 return s && s.innerText.includes({title:?});",
                root(&id)
            ),
        )
        .await;
    let took = sent.elapsed();
    println!("incident triggered at PagerDuty on the card after {took:?}");

    // The card did not poll: no further card read, and the incidents were
    // read from PagerDuty once (the webhook's refetch; TTLs are 5 minutes).
    let after = metrics(&http, &address).await;
    assert_eq!(card_gets(&after), gets, "the card polled: {after}");
    assert_eq!(
        sim.stats().count("GET", "/incidents"),
        incident_reads + 1,
        "one incidents refetch"
    );
    assert!(
        after.contains(r#"dutycard_webhook_deliveries_total{account="default",event_type="incident.triggered",outcome="queued"} 1"#),
        "the simulator's webhook came in: {after}"
    );
    // What the stream brought is the card GET answers (its ETag kept).
    let etag = browser
        .js(
            &format!(
                "return document.querySelector('dutycard-card[service-id=\"{id}\"]').dataset.etag;"
            ),
            vec![],
        )
        .await;
    let get = http
        .get(format!("{address}/v1/cards/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        get.headers().get("etag").and_then(|v| v.to_str().ok()),
        etag.as_str(),
        "the shown card's ETag is the server's"
    );
    browser
        .screenshot_of(
            &format!("dutycard-card[service-id=\"{id}\"]"),
            "card-after-real-stream.png",
        )
        .await;
    let errors = errors(&browser, &address, &[]).await;
    assert!(errors.is_empty(), "browser errors: {errors:#?}");
    browser.close().await;
}

/// The subscription secret of hand-made webhooks ([`deliver_signed`]).
pub(super) const WEBHOOK_SECRET: &str = "browser-webhook-secret-0123456789";

/// `[webhooks]` TOML accepting [`WEBHOOK_SECRET`].
pub(super) fn webhook_secret_toml() -> String {
    format!("[webhooks]\nsecrets = [\"{WEBHOOK_SECRET}\"]\n")
}

/// A PagerDuty v3 webhook about `data` (`event_type`, delivery `id`),
/// signed with [`WEBHOOK_SECRET`], to the app at `address`: accepted.
pub(super) async fn deliver_signed(
    http: &reqwest::Client,
    address: &str,
    id: &str,
    event_type: &str,
    data: Value,
) {
    let body = json!({"event": {
        "id": format!("01{id}"), "event_type": event_type,
        "resource_type": event_type.split('.').next().unwrap(),
        "occurred_at": chrono::Utc::now().to_rfc3339(),
        "data": data,
    }})
    .to_string();
    let r = http
        .post(format!("{address}/v1/webhooks/pagerduty"))
        .header("content-type", "application/json")
        .header("X-Webhook-Id", id)
        .header(
            "X-PagerDuty-Signature",
            dutycard_server::webhooks::signature::sign(WEBHOOK_SECRET, body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
}

#[tokio::test]
async fn a_service_pagerduty_stops_knowing_reaches_the_open_card_as_the_streams_error_in_words_over_the_last_card()
 {
    let _turn = turn().await;
    let sim = start_sim(small_sim()).await;
    let mut env = sim_env(&sim);
    env.push(("DUTYCARD_PAGERDUTY__API_TOKEN".into(), sim.api_token()));
    let secrets = webhook_secret_toml();
    let app = TestApp::spawn(settings_from(&[BASE_TOML, LONG_TTLS, &secrets], &env)).await;
    let service = sim.account().services[0].clone();
    let id = service.id.clone();

    let browser = Browser::start().await;
    browser.goto(&app.url(&format!("/ui/?services={id}"))).await;
    wait_until_cards_ready(&browser, 1).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while gauge(
        &metrics(&app.http, &app.address).await,
        "dutycard_streams_open",
    ) != Some(1)
    {
        assert!(
            Instant::now() < deadline,
            "the card never opened its stream"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let gets = card_gets(&metrics(&app.http, &app.address).await);

    // From now on PagerDuty answers 404 for the service (the simulator's
    // faults), and a service.updated webhook makes dutycard read it again:
    // the stream's next event is the card's error, not a card.
    sim.set_faults(sim::Faults {
        per_route: vec![(
            "/services/{id}".into(),
            sim::FaultSpec {
                fail_next: 10_000,
                fail_status: 404,
                ..sim::FaultSpec::default()
            },
        )],
        ..sim::Faults::default()
    });
    deliver_signed(
        &app.http,
        &app.address,
        "browser-service-updated-1",
        "service.updated",
        json!({"id": id, "type": "service"}),
    )
    .await;
    let card = format!("document.querySelector('dutycard-card[service-id=\"{id}\"]')");
    let problem = browser
        .wait_for(
            "the stream's error event on the card",
            Duration::from_secs(10),
            &format!(
                "const c = {card};
                 const p = c.shadowRoot.querySelector('article > [role=alert]');
                 return c.dataset.state === 'error' && !p.hidden
                   ? [p.innerText, c.shadowRoot.querySelector('h2').innerText,
                      !!c.shadowRoot.querySelector('[data-section=\"oncall\"]')]
                   : null;"
            ),
        )
        .await;
    assert_eq!(
        problem,
        json!(["PagerDuty has no such service.", service.name, true]),
        "the problem in words over the last card"
    );
    // It came through the stream: the card route was not read again.
    let after = metrics(&app.http, &app.address).await;
    assert_eq!(card_gets(&after), gets, "the card polled: {after}");
    assert!(
        sim.stats().by_status("GET", "/services/{id}", 404) > 0,
        "PagerDuty's 404 for the service was what dutycard read"
    );
    browser
        .screenshot_of(
            &format!("dutycard-card[service-id=\"{id}\"]"),
            "card-stream-error.png",
        )
        .await;
    let errors = errors(&browser, &app.address, &[]).await;
    assert!(errors.is_empty(), "browser errors: {errors:#?}");
    browser.close().await;
}
