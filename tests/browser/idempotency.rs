//! One `Idempotency-Key` per Create incident form, seen from the browser:
//! a fetch hook records what the form sends (and can lose an answer on
//! its way back). A retry of a failed form sends the same key; the next
//! form after a success a new one; a form sent twice (its first answer
//! lost, then a double click) pages PagerDuty once, and the second answer
//! says it is the first one replayed.

use std::time::Duration;

use serde_json::{Value, json};

use super::driver::Browser;
use super::{errors, turn};
use crate::helpers::{small_sim, spawn_with_sim};
use crate::trigger::{ENQUEUE, triggerable_service};

/// JS: a card `#form-card` whose hook records every `POST /v1/incidents`
/// (`window.dcPosts`: its URL, Idempotency-Key, summary and answer status)
/// and, while
/// `window.dcLoseAnswer` is set, lets the request reach the server but
/// throws instead of returning its answer (a connection lost on the way
/// back).
const RECORDING_CARD: &str = r#"
window.dcPosts = [];
window.dcLoseAnswer = false;
const card = document.createElement('dutycard-card');
card.id = 'form-card';
card.fetch = async (url, init) => {
  if ((init.method || 'GET') !== 'POST') return fetch(url, init);
  const entry = { url, key: init.headers['Idempotency-Key'], summary: JSON.parse(init.body).summary, status: null };
  window.dcPosts.push(entry);
  const res = await fetch(url, init);
  entry.status = res.status;
  if (window.dcLoseAnswer) {
    window.dcLoseAnswer = false;
    throw new TypeError('the connection was lost');
  }
  return res;
};
card.setAttribute('service-id', arguments[0]);
document.body.append(card);
"#;

const CARD: &str = "document.getElementById('form-card').shadowRoot";

/// Fill the form with `summary` (opening it if closed) and submit it
/// `times` times in a row, synchronously (a double click is 2).
async fn submit(browser: &Browser, summary: &str, times: u32) {
    browser
        .js(
            &format!(
                "const r = {CARD};
                 const form = r.querySelector('form');
                 if (form.hidden) r.querySelector('[data-action=open-form]').click();
                 delete r.querySelector('.answer').dataset.ok;
                 r.querySelector('[name=summary]').value = arguments[0];
                 for (let i = 0; i < arguments[1]; i++) form.requestSubmit();"
            ),
            vec![json!(summary), json!(times)],
        )
        .await;
}

async fn answer(browser: &Browser, what: &str) -> String {
    let answer = browser
        .wait_for(
            what,
            Duration::from_secs(10),
            &format!(
                "const a = {CARD}.querySelector('.answer');
                 return a.dataset.ok !== undefined ? a.innerText : null;"
            ),
        )
        .await;
    answer.as_str().unwrap().to_owned()
}

async fn posts(browser: &Browser) -> Vec<(String, String)> {
    let posts: Value = browser.js("return window.dcPosts;", vec![]).await;
    posts
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let key = p["key"].as_str().expect("an Idempotency-Key on every POST");
            (key.to_owned(), p["summary"].as_str().unwrap().to_owned())
        })
        .collect()
}

fn incidents_titled(sim: &sim::SimHandle, service: &str, title: &str) -> usize {
    sim.account()
        .open_incidents(service)
        .iter()
        .filter(|i| i.title == title)
        .count()
}

#[tokio::test]
async fn each_form_has_one_idempotency_key_a_retry_reuses_it_and_a_form_sent_twice_pages_once() {
    let _turn = turn().await;
    let app = spawn_with_sim(small_sim(), "").await;
    let (id, _) = triggerable_service(&app.sim);
    let browser = Browser::start().await;
    browser.goto(&app.app.url("/ui/?services=")).await;
    browser.js(RECORDING_CARD, vec![json!(id)]).await;
    browser
        .wait_for(
            "the card",
            super::RENDER_TIMEOUT,
            "return document.getElementById('form-card').dataset.state === 'ready';",
        )
        .await;

    // PagerDuty fails the first send: NOT created; the retry of the same
    // form carries the same key and creates it.
    app.sim.set_faults(sim::Faults {
        per_route: vec![(
            ENQUEUE.into(),
            sim::FaultSpec {
                // Every try of the send (the trigger retries a 503 itself).
                fail_next: 1_000,
                fail_status: 503,
                ..sim::FaultSpec::default()
            },
        )],
        ..sim::Faults::default()
    });
    let first = "Search is down (idempotency e2e)";
    submit(&browser, first, 1).await;
    let failed = answer(&browser, "the failed send's answer").await;
    assert!(failed.contains("Safe to retry"), "{failed}");
    app.sim.clear_faults();
    submit(&browser, first, 1).await;
    let created = answer(&browser, "the retry's answer").await;
    assert!(created.starts_with("Created"), "{created}");
    assert!(!created.contains("replayed"), "{created}");
    let sent = posts(&browser).await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[0], sent[1], "the retry reuses the form's key");
    assert_eq!(incidents_titled(&app.sim, &id, first), 1);

    // The next form after a success: a new key.
    let second = "Search is slow again (idempotency e2e)";
    let enqueues = app.sim.stats().count("POST", ENQUEUE);
    submit(&browser, second, 1).await;
    let created = answer(&browser, "the second form's answer").await;
    assert!(created.starts_with("Created"), "{created}");
    let sent = posts(&browser).await;
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert_ne!(sent[2].0, sent[1].0, "a new form, a new key");
    assert_eq!(app.sim.stats().count("POST", ENQUEUE), enqueues + 1);

    // A form sent twice: the first answer is lost on its way back (the
    // incident exists, the browser cannot know), so it says it could not
    // be confirmed; sent again with a double click, one request goes
    // (the second click finds it in flight), with the same key, and the
    // server replays the first answer instead of paging again.
    let third = "Checkout double submit (idempotency e2e)";
    let enqueues = app.sim.stats().count("POST", ENQUEUE);
    browser.js("window.dcLoseAnswer = true;", vec![]).await;
    submit(&browser, third, 1).await;
    let lost = answer(&browser, "the lost answer").await;
    assert!(
        lost.starts_with("Could not be confirmed") && lost.contains("Safe to retry"),
        "{lost}"
    );
    submit(&browser, third, 2).await;
    let replayed = answer(&browser, "the replayed answer").await;
    assert!(
        replayed.starts_with(
            "Created: PagerDuty accepted the incident (the first answer to this form, replayed)."
        ),
        "{replayed}"
    );
    let sent = posts(&browser).await;
    assert_eq!(sent.len(), 5, "the double click sent one request: {sent:?}");
    assert_ne!(sent[3].0, sent[2].0, "a new form, a new key");
    assert_eq!(sent[3], sent[4], "the form sent again keeps its key");
    assert_eq!(
        app.sim.stats().count("POST", ENQUEUE),
        enqueues + 1,
        "one event for the form sent twice"
    );
    assert_eq!(incidents_titled(&app.sim, &id, third), 1);

    // The failed send's answer is the one error status the page saw.
    let all: Value = browser.js("return window.dcPosts;", vec![]).await;
    let failed = &all[0];
    let (url, status) = (
        failed["url"].as_str().unwrap(),
        failed["status"].as_u64().unwrap(),
    );
    assert!(status >= 500, "{failed}");
    let errors = errors(&browser, &app.app.address, &[(url, status as u16)]).await;
    assert!(errors.is_empty(), "browser errors: {errors:#?}");
    browser.close().await;
}
