//! The entity card in a browser (issues 15, 16 and 19 together): one
//! `<dutycard-card entity=…>` over two mapped services, its summary and
//! folded service cards, Create incident paging the service the form
//! chose, and a trigger made straight at PagerDuty reaching the card
//! through the webhook and the real entity stream, with no poll.

use std::time::{Duration, Instant};

use dutycard_server::startup::Application;
use serde_json::{Value, json};

use super::driver::Browser;
use super::stream::{LONG_TTLS, StopOnDrop, gauge, metrics, subscribe};
use super::{errors, turn};
use crate::helpers::{BASE_TOML, settings_from, sim_env, small_sim, start_sim};

const ENTITY: &str = "component:default/shop";

/// JS: the entity card's shadow root.
const CARD: &str = "document.getElementById('entity').shadowRoot";

/// Two services the simulator can page (an Events API v2 key each).
fn two_triggerable(sim: &sim::SimHandle) -> Vec<(String, String, String)> {
    sim.account()
        .services
        .iter()
        .filter(|s| s.status != "disabled")
        .filter_map(|s| {
            let key = s
                .integrations
                .iter()
                .find(|i| i.kind == "events_api_v2_inbound_integration")?
                .integration_key
                .clone()?;
            Some((s.id.clone(), s.name.clone(), key))
        })
        .take(2)
        .collect()
}

/// Every `GET` of the entity card route the app answered.
fn entity_gets(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| {
            l.starts_with("dutycard_http_requests_total{")
                && l.contains(r#"method="GET""#)
                && l.contains("/v1/entities/")
                && l.contains("/card")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn an_entity_card_shows_both_services_pages_the_chosen_one_and_follows_its_stream() {
    let _turn = turn().await;
    let sim = start_sim(small_sim()).await;
    let mut env = sim_env(&sim);
    env.push(("DUTYCARD_PAGERDUTY__API_TOKEN".into(), sim.api_token()));
    let app = Application::build(settings_from(&[BASE_TOML, LONG_TTLS], &env))
        .await
        .expect("app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let webhooks = app.webhooks();
    let _stop = StopOnDrop(app.stopper());
    tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    subscribe(&http, &sim, &address, &webhooks).await;
    let services = two_triggerable(&sim);
    assert_eq!(services.len(), 2, "the seeded account pages two services");
    for (id, _, _) in &services {
        let r = http
            .post(format!("{address}/api/pagerduty/mapping/entity"))
            .json(&json!({"entityRef": ENTITY, "serviceId": id}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    }

    let browser = Browser::start().await;
    browser.goto(&format!("{address}/ui/?services=")).await;
    browser
        .js(
            "for (const [id, entity] of [['entity', arguments[0]], ['nothing', 'component:default/nothing-mapped']]) {
               const c = document.createElement('dutycard-card');
               c.id = id;
               c.setAttribute('entity', entity);
               document.body.append(c);
             }",
            vec![json!(ENTITY)],
        )
        .await;
    let shown = browser
        .wait_for(
            "the entity card",
            super::RENDER_TIMEOUT,
            &format!(
                "const e = document.getElementById('entity');
                 if (e.dataset.state !== 'ready') return null;
                 const r = {CARD};
                 return {{
                   title: r.querySelector('h2').innerText,
                   services: [...r.querySelectorAll('details.entity-service')].map((d) => d.dataset.serviceId),
                   names: [...r.querySelectorAll('details.entity-service > summary')].map((s) => s.innerText),
                   oncall: r.querySelector('[data-section=\"oncall\"]').innerText,
                   label: r.querySelector('article').getAttribute('aria-label'),
                 }};"
            ),
        )
        .await;
    assert_eq!(shown["title"], ENTITY);
    let ids: Vec<&str> = services.iter().map(|(id, _, _)| id.as_str()).collect();
    assert_eq!(shown["services"], json!(ids));
    for ((_, name, _), summary) in services.iter().zip(shown["names"].as_array().unwrap()) {
        assert!(summary.as_str().unwrap().contains(name.as_str()), "{shown}");
    }
    assert!(
        shown["oncall"].as_str().unwrap().contains("Primary"),
        "{shown}"
    );
    assert_eq!(shown["label"], format!("PagerDuty services of {ENTITY}"));
    let nothing = browser
        .wait_for(
            "the unmapped entity's answer",
            super::RENDER_TIMEOUT,
            "const c = document.getElementById('nothing');
             return c.dataset.state === 'error' ? c.shadowRoot.querySelector('[role=alert]').innerText : null;",
        )
        .await;
    assert!(
        nothing
            .as_str()
            .unwrap()
            .starts_with("No PagerDuty service is mapped to this entity"),
        "{nothing}"
    );

    // Create incident on the second service, chosen in the form.
    let (second, second_name, _) = &services[1];
    let summary = "Checkout is down (entity card)";
    browser
        .js(
            &format!(
                "const r = {CARD};
                 r.querySelector('[data-action=open-form]').click();
                 const pick = r.querySelector('[name=service]');
                 if (pick.closest('label').hidden) throw new Error('no service choice for two services');
                 pick.value = arguments[1];
                 r.querySelector('[name=summary]').value = arguments[0];
                 r.querySelector('[type=submit]').click();"
            ),
            vec![json!(summary), json!(second)],
        )
        .await;
    let answer = browser
        .wait_for(
            "the trigger's answer",
            Duration::from_secs(10),
            &format!(
                "const a = {CARD}.querySelector('.answer');
                 return a.dataset.ok !== undefined ? a.innerText : null;"
            ),
        )
        .await;
    assert!(answer.as_str().unwrap().starts_with("Created"), "{answer}");
    let incident = browser
        .wait_for(
            "the new incident on the entity card, naming its service",
            Duration::from_secs(2),
            &format!(
                "const li = [...{CARD}.querySelectorAll('[data-section=\"incidents\"] li.incident')]
                   .find((l) => l.innerText.includes({summary:?}));
                 return li ? li.innerText : null;"
            ),
        )
        .await;
    assert!(
        incident.as_str().unwrap().contains(second_name.as_str()),
        "{incident}"
    );
    let paged = sim
        .account()
        .open_incidents(second)
        .iter()
        .any(|i| i.title == summary);
    assert!(paged, "the chosen service got the incident");

    // The entity stream is open: a trigger straight at PagerDuty on the
    // first service reaches the card with no read of the card route.
    let deadline = Instant::now() + Duration::from_secs(10);
    while gauge(&metrics(&http, &address).await, "dutycard_streams_open") != Some(1) {
        assert!(
            Instant::now() < deadline,
            "the entity card never opened its stream"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Card route reads so far: each card's first read, and the entity
    // card's read after its trigger (which may still be on its way).
    let gets = 3;
    while entity_gets(&metrics(&http, &address).await) != gets {
        assert!(
            Instant::now() < deadline,
            "the card route was not read {gets} times"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, _, first_key) = &services[0];
    let title = "Disk full on db-1 (entity, real stream)";
    let r = http
        .post(format!("{}/enqueue", sim.events_base_url()))
        .json(&json!({
            "routing_key": first_key,
            "event_action": "trigger",
            "dedup_key": "browser-entity-1",
            "payload": {"summary": title, "source": "db-1", "severity": "critical"},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    browser
        .wait_for(
            "the PagerDuty-side trigger on the entity card",
            Duration::from_secs(2),
            &format!(
                "return {CARD}.querySelector('[data-section=\"incidents\"]').innerText.includes({title:?});"
            ),
        )
        .await;
    assert_eq!(
        entity_gets(&metrics(&http, &address).await),
        gets,
        "the card polled instead of following its stream"
    );
    let status: Value = browser
        .js(
            &format!("return {CARD}.querySelector('header [data-status]').dataset.status;"),
            vec![],
        )
        .await;
    assert_eq!(status, json!("triggered"));
    browser.screenshot_of("#entity", "entity-card.png").await;
    // The unmapped entity's 404s (its card, then its stream) are what the
    // card turned into words.
    let unmapped = format!("{address}/v1/entities/component/default/nothing-mapped");
    let errors = errors(
        &browser,
        &address,
        &[
            (&format!("{unmapped}/card"), 404),
            (&format!("{unmapped}/stream"), 404),
        ],
    )
    .await;
    assert!(errors.is_empty(), "browser errors: {errors:#?}");
    browser.close().await;
}
