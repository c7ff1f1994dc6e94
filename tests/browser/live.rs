//! How a card stays current (a push stream, else polls with
//! `If-None-Match`) and what Create incident says when PagerDuty fails.
//! The stream route is another issue's (16): here a fetch hook (the JWT
//! portals' way in) serves the stream, so the card's SSE reading is proven
//! without it, against the real card route for everything else.

use std::time::Duration;

use serde_json::{Value, json};

use super::driver::Browser;
use super::{errors, root, text, turn};
use crate::helpers::{small_sim, spawn_with_sim};
use crate::trigger::{ENQUEUE, triggerable_service};

/// JS: a card `#live` whose fetch hook logs every request (URL,
/// If-None-Match, answer status) and answers the stream URL with a stream
/// the test writes to through `window.dcPush(text)` / `window.dcEnd()`.
const LIVE_CARD: &str = r#"
const [id, interval] = arguments;
window.dcLog = [];
let writer;
const stream = new ReadableStream({ start(c) { writer = c; } });
window.dcPush = (text) => writer.enqueue(new TextEncoder().encode(text));
window.dcEnd = () => writer.close();
const card = document.createElement('dutycard-card');
card.id = 'live';
card.fetch = (url, init) => {
  const entry = { url, inm: (init.headers || {})['If-None-Match'] || null, status: null };
  window.dcLog.push(entry);
  if (url.includes('/stream')) {
    entry.status = 200;
    return Promise.resolve(new Response(stream, { headers: { 'Content-Type': 'text/event-stream' } }));
  }
  return fetch(url, init).then((r) => { entry.status = r.status; return r; });
};
card.setAttribute('service-id', id);
card.setAttribute('interval', interval);
document.body.append(card);
"#;

const LIVE: &str = "document.getElementById('live')";

#[tokio::test]
async fn a_card_follows_its_stream_and_polls_with_if_none_match_when_it_ends() {
    let _turn = turn().await;
    let app = spawn_with_sim(small_sim(), "").await;
    let id = app.sim.account().services[0].id.clone();
    let browser = Browser::start().await;
    // An empty page (no demo cards), then one card with the hook.
    browser.goto(&app.app.url("/ui/?services=")).await;
    browser.js(LIVE_CARD, vec![json!(id), json!("1")]).await;
    browser
        .wait_for(
            "the card read through the hook",
            super::RENDER_TIMEOUT,
            &format!("return {LIVE}.dataset.state === 'ready';"),
        )
        .await;
    let log = browser.js("return window.dcLog;", vec![]).await;
    let urls: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["url"].as_str().unwrap())
        .collect();
    assert!(urls[0].ends_with(&format!("/v1/cards/{id}")), "{urls:?}");
    assert!(
        urls.iter()
            .any(|u| u.ends_with(&format!("/v1/cards/{id}/stream"))),
        "the stream is asked for: {urls:?}"
    );

    // A pushed card (in the server's event shape, a batch entry; split
    // across reads, after a heartbeat) is shown, its id kept as the ETag.
    let pushed = browser
        .js(
            &format!(
                "const c = structuredClone({LIVE}.card);
                 c.service.data.name = 'Pushed by the stream';
                 return JSON.stringify({{ service_id: c.service.data.id, status: 200, card: c }});"
            ),
            vec![],
        )
        .await;
    let event = format!(
        ": heartbeat\n\nid: W/\"pushed-1\"\nevent: card\ndata: {}\n\n",
        pushed.as_str().unwrap()
    );
    let (first, second) = event.split_at(event.len() / 2);
    for part in [first, second] {
        browser
            .js("window.dcPush(arguments[0]);", vec![json!(part)])
            .await;
    }
    browser
        .wait_for(
            "the pushed card",
            Duration::from_secs(5),
            &format!(
                "return {LIVE}.shadowRoot.querySelector('h2').innerText === 'Pushed by the stream'
                   && {LIVE}.dataset.etag === 'W/\"pushed-1\"';"
            ),
        )
        .await;
    // An error event (the service is gone at PagerDuty): the problem in
    // words, the last card still shown under it.
    let gone = json!({"service_id": id, "status": 404, "error": {"code": "not_found", "message": "No such PagerDuty service."}});
    browser
        .js(
            "window.dcPush(`id: W/\"error\"\nevent: card\ndata: ${arguments[0]}\n\n`);",
            vec![json!(gone.to_string())],
        )
        .await;
    let problem = browser
        .wait_for(
            "the stream's error event shown",
            Duration::from_secs(5),
            &format!(
                "const r = {LIVE}.shadowRoot;
                 const p = r.querySelector('article > [role=alert]');
                 return {LIVE}.dataset.state === 'error' && !p.hidden
                   ? [p.innerText, r.querySelector('h2').innerText] : null;"
            ),
        )
        .await;
    assert_eq!(
        problem,
        json!(["PagerDuty has no such service.", "Pushed by the stream"])
    );
    let requests = browser.js("return window.dcLog.length;", vec![]).await;
    assert_eq!(requests, json!(2), "no polls while the stream is open");

    // The stream ends: polls every second with the last ETag. The pushed
    // ETag is not the server's, so the first poll brings the real card back,
    // the next ones are 304s with its ETag.
    browser.js("window.dcEnd();", vec![]).await;
    let real_name = app.sim.account().services[0].name.clone();
    let poll = browser
        .wait_for(
            "a 304 poll after the stream ended",
            Duration::from_secs(10),
            &format!(
                "const etag = {LIVE}.dataset.etag;
                 return window.dcLog.find((e) => e.status === 304 && e.inm === etag) || null;"
            ),
        )
        .await;
    assert!(
        poll["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/v1/cards/{id}"))
    );
    let polled_with_pushed = browser
        .js(
            "return window.dcLog.some((e) => e.inm === 'W/\"pushed-1\"' && e.status === 200);",
            vec![],
        )
        .await;
    assert_eq!(polled_with_pushed, json!(true));
    let name = text(
        &browser,
        &format!("return {LIVE}.shadowRoot.querySelector('h2').innerText;"),
    )
    .await;
    assert_eq!(name, real_name);

    // The other ways to name a card: an integration key gives the same
    // service; an entity nothing is mapped to says so.
    let (keyed, key) = triggerable_service(&app.sim);
    let keyed_name = app
        .sim
        .account()
        .services
        .iter()
        .find(|s| s.id == keyed)
        .unwrap()
        .name
        .clone();
    browser
        .js(
            "for (const [attr, value] of [['integration-key', arguments[0]], ['entity', 'component:default/checkout']]) {
               const c = document.createElement('dutycard-card');
               c.setAttribute(attr, value);
               c.className = attr;
               document.body.append(c);
             }",
            vec![json!(key)],
        )
        .await;
    let shown = browser
        .wait_for(
            "the integration-key card",
            super::RENDER_TIMEOUT,
            "const c = document.querySelector('.integration-key');
             return c.dataset.state === 'ready' ? c.shadowRoot.querySelector('h2').innerText : null;",
        )
        .await;
    assert_eq!(shown, json!(keyed_name));
    let entity = browser
        .wait_for(
            "the entity card's answer",
            super::RENDER_TIMEOUT,
            "const c = document.querySelector('.entity');
             return c.dataset.state === 'error' ? c.shadowRoot.querySelector('[role=alert]').innerText : null;",
        )
        .await;
    // An entity nothing is mapped to is its route's 404, in words.
    assert!(
        entity
            .as_str()
            .unwrap()
            .starts_with("No PagerDuty service is mapped to this entity"),
        "{entity}"
    );

    // The entity's 404s (its card, then its stream) are the answer the
    // card turned into words.
    let unmapped = app.app.url("/v1/entities/component/default/checkout");
    let errors = errors(
        &browser,
        &app.app.address,
        &[
            (&format!("{unmapped}/card"), 404),
            (&format!("{unmapped}/stream"), 404),
        ],
    )
    .await;
    assert!(errors.is_empty(), "browser errors: {errors:#?}");
    browser.close().await;
}

#[tokio::test]
async fn a_trigger_pagerduty_fails_says_not_created_and_safe_to_retry_and_the_retry_creates_it() {
    let _turn = turn().await;
    let app = spawn_with_sim(small_sim(), "").await;
    let (id, _) = triggerable_service(&app.sim);
    let browser = Browser::start().await;
    browser
        .goto(&app.app.url(&format!("/ui/?services={id}")))
        .await;
    super::wait_until_cards_ready(&browser, 1).await;
    app.sim.set_faults(sim::Faults {
        per_route: vec![(
            ENQUEUE.into(),
            sim::FaultSpec {
                fail_next: 1_000,
                fail_status: 503,
                ..sim::FaultSpec::default()
            },
        )],
        ..sim::Faults::default()
    });
    let summary = "Payments are slow (browser e2e)";
    let card = root(&id);
    browser
        .js(
            &format!(
                "const r = {card};
                 r.querySelector('[data-action=open-form]').click();
                 r.querySelector('[name=summary]').value = arguments[0];
                 r.querySelector('[type=submit]').click();"
            ),
            vec![json!(summary)],
        )
        .await;
    let answer_js = format!(
        "const a = {card}.querySelector('.answer');
         return a.dataset.ok !== undefined ? a.innerText : null;"
    );
    let answer = browser
        .wait_for(
            "the failed trigger's answer",
            Duration::from_secs(10),
            &answer_js,
        )
        .await;
    let answer = answer.as_str().unwrap().to_owned();
    assert!(
        answer.starts_with("NOT created.") || answer.starts_with("Could not be confirmed"),
        "{answer}"
    );
    assert!(answer.contains("Safe to retry"), "{answer}");
    let failed: Value = browser
        .js(
            &format!("return {card}.querySelector('.answer').dataset.ok;"),
            vec![],
        )
        .await;
    assert_eq!(failed, json!("false"));

    // PagerDuty is back: the same form, sent again, creates it once.
    app.sim.clear_faults();
    let before = app.sim.stats().count("POST", ENQUEUE);
    browser
        .js(
            &format!(
                "const r = {card}; delete r.querySelector('.answer').dataset.ok;
                 r.querySelector('[type=submit]').click();"
            ),
            vec![],
        )
        .await;
    let answer = browser
        .wait_for("the retry's answer", Duration::from_secs(10), &answer_js)
        .await;
    assert!(answer.as_str().unwrap().starts_with("Created"), "{answer}");
    assert_eq!(app.sim.stats().count("POST", ENQUEUE), before + 1);
    browser
        .wait_for(
            "the incident on the card",
            Duration::from_secs(2),
            &format!(
                "return {card}.querySelector('[data-section=\"incidents\"]').innerText.includes({summary:?});"
            ),
        )
        .await;
    browser.close().await;
}
