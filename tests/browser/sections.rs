//! The card's other sections in a browser, checked against the card JSON
//! the same server answers: recent change events (summary, source, age,
//! link), and the optional standards and metrics, shown with `include` and
//! absent without it. Also what a portal relies on to fit the card in: a
//! labelled region, its `--dc-*` custom properties, the status linked to
//! PagerDuty.

use serde_json::{Value, json};

use super::driver::Browser;
use super::{errors, root, section_text, text, turn, wait_until_cards_ready};
use crate::helpers::{small_sim, spawn_with_sim};
use crate::trigger::triggerable_service;

/// The non-empty lines of a section's text after its heading (`innerText`
/// puts blank lines around paragraphs).
fn body_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .skip(1)
        .collect()
}

async fn card_json(app: &crate::helpers::SimApp, path: &str) -> Value {
    let res = app.app.get(path).await;
    assert_eq!(res.status(), 200, "{path}");
    res.json().await.expect("card JSON")
}

#[tokio::test]
async fn a_card_shows_its_recent_change_events_with_summary_source_link_and_age() {
    let _turn = turn().await;
    let app = spawn_with_sim(small_sim(), "").await;
    let (id, key) = triggerable_service(&app.sim);
    // A deploy 90 minutes ago, sent to PagerDuty's Change Events API (the
    // simulator's): "1 h ago" for the next half hour, however slow the
    // browser is to start.
    let summary = "Deployed checkout v2.4.1 (browser e2e)";
    let when = chrono::Utc::now() - chrono::Duration::minutes(90);
    let r = app
        .app
        .http
        .post(format!("{}/change/enqueue", app.sim.events_base_url()))
        .json(&json!({
            "routing_key": key,
            "payload": {"summary": summary, "source": "ci/deploy", "timestamp": when.to_rfc3339()},
            "links": [{"href": "https://ci.example.test/builds/42", "text": "Build 42"}],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
    let card = card_json(&app, &format!("/v1/cards/{id}")).await;
    let items = card["change_events"]["data"]["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no change events in {card}"))
        .clone();
    let posted = items
        .iter()
        .find(|c| c["summary"] == summary)
        .unwrap_or_else(|| panic!("the posted change is not in the card: {items:?}"));

    let browser = Browser::start().await;
    browser
        .goto(&app.app.url(&format!("/ui/?services={id}")))
        .await;
    wait_until_cards_ready(&browser, 1).await;
    let shown = text(&browser, &section_text(&id, "change_events")).await;
    // The heading is upper-cased by the stylesheet.
    assert!(shown.starts_with("RECENT CHANGES"), "{shown}");
    assert!(
        shown.contains(&format!("{summary} ci/deploy · 1 h ago")),
        "summary, source and age: {shown}"
    );
    // Every change of the card JSON, newest first, as the JSON lists them.
    let lines = body_lines(&shown);
    assert_eq!(lines.len(), items.len(), "{shown}");
    for (line, item) in lines.iter().zip(&items) {
        let summary = item["summary"].as_str().unwrap_or("Change");
        assert!(line.starts_with(summary), "{line:?} is not {summary:?}");
        assert!(line.ends_with(" ago"), "no age in {line:?}");
    }
    // The summary links to the change in PagerDuty when the JSON has a link.
    let href = browser
        .js(
            &format!(
                "const li = [...{}.querySelectorAll('[data-section=\"change_events\"] li')]
                   .find((l) => l.innerText.startsWith(arguments[0]));
                 const a = li.querySelector('a'); return a ? a.href : null;",
                root(&id)
            ),
            vec![json!(summary)],
        )
        .await;
    assert_eq!(href, posted["html_url"], "{posted}");

    let errors = errors(&browser, &app.app.address, &[]).await;
    assert!(errors.is_empty(), "browser errors: {errors:#?}");
    browser.close().await;
}

/// `Math.round(secs / 60)` minutes, as the card words it.
fn minutes(secs: &Value) -> String {
    secs.as_f64()
        .map_or("n/a".to_owned(), |s| format!("{} min", (s / 60.0).round()))
}

#[tokio::test]
async fn standards_and_metrics_render_with_include_and_are_absent_without_it() {
    let _turn = turn().await;
    // The simulator's own token: every scope, analytics and standards too.
    let app = spawn_with_sim(small_sim(), "").await;
    let id = app.sim.account().services[0].id.clone();
    let card = card_json(&app, &format!("/v1/cards/{id}?include=standards,metrics")).await;
    let standards = &card["standards"]["data"];
    let metrics = &card["metrics"]["data"];
    assert!(
        standards["standards"]
            .as_array()
            .is_some_and(|s| !s.is_empty()),
        "no standards in {card}"
    );
    assert!(metrics.is_object(), "no metrics in {card}");
    let plain = card_json(&app, &format!("/v1/cards/{id}")).await;
    assert!(plain.get("standards").is_none() && plain.get("metrics").is_none());

    let browser = Browser::start().await;
    browser
        .goto(
            &app.app
                .url(&format!("/ui/?services={id}&include=standards,metrics")),
        )
        .await;
    // The same service without `include`, themed by the portal through a
    // custom property set on the element.
    browser
        .js(
            "const c = document.createElement('dutycard-card');
             c.id = 'plain';
             c.setAttribute('service-id', arguments[0]);
             c.style.setProperty('--dc-bg', '#fdf6e3');
             c.style.setProperty('--dc-accent', '#0b5394');
             document.body.append(c);",
            vec![json!(id)],
        )
        .await;
    wait_until_cards_ready(&browser, 2).await;

    let shown = text(&browser, &section_text(&id, "metrics")).await;
    let n = metrics["total_incident_count"]
        .as_u64()
        .map_or("?".to_owned(), |n| n.to_string());
    let expected = format!(
        "30 days: {n} incidents, mean time to acknowledge {}, to resolve {}",
        minutes(&metrics["mean_seconds_to_first_ack"]),
        minutes(&metrics["mean_seconds_to_resolve"]),
    );
    assert_eq!(body_lines(&shown), [expected]);

    let shown = text(&browser, &section_text(&id, "standards")).await;
    let list = standards["standards"].as_array().unwrap();
    let count = |v: &Value| v.as_u64().map(|n| n.to_string());
    let mut expected = vec![format!(
        "{} of {} standards pass",
        count(&standards["passing"]).unwrap_or("?".into()),
        count(&standards["total"]).unwrap_or(list.len().to_string()),
    )];
    for s in list {
        let mark = if s["pass"] == true { "✓" } else { "✗" };
        expected.push(format!("{mark} {}", s["name"].as_str().unwrap()));
    }
    assert_eq!(body_lines(&shown), expected);

    // Without `include`: no such sections, the rest as usual.
    let plain_root = "document.getElementById('plain').shadowRoot";
    let sections = browser
        .js(
            &format!(
                "return [...{plain_root}.querySelectorAll('[data-section]')].map((s) => s.dataset.section);"
            ),
            vec![],
        )
        .await;
    assert_eq!(
        sections,
        json!([
            "service",
            "oncall",
            "incidents",
            "change_events",
            "escalation_policy"
        ])
    );

    // A labelled region, named after the service; the status chip links to
    // the service in PagerDuty and says what it is.
    let name = card["service"]["data"]["name"].as_str().unwrap();
    let status = card["service"]["data"]["status"].as_str().unwrap();
    let a11y = browser
        .js(
            &format!(
                "const r = {};
                 const a = r.querySelector('article');
                 const chip = r.querySelector('header .chip');
                 return {{ role: a.getAttribute('role'), label: a.getAttribute('aria-label'),
                          tag: chip.tagName, href: chip.href ?? null, chipLabel: chip.getAttribute('aria-label'),
                          text: chip.innerText }};",
                root(&id)
            ),
            vec![],
        )
        .await;
    assert_eq!(
        a11y,
        json!({
            "role": "region",
            "label": format!("PagerDuty service {name}"),
            "tag": "A",
            "href": card["service"]["data"]["html_url"],
            "chipLabel": format!("Status {status}, in PagerDuty"),
            "text": status,
        })
    );

    // The portal's custom properties win over the card's defaults.
    let styled = browser
        .js(
            &format!(
                "const r = {plain_root};
                 return [getComputedStyle(r.querySelector('.card')).backgroundColor,
                         getComputedStyle(r.querySelector('h2 a')).color,
                         getComputedStyle({}.querySelector('.card')).backgroundColor];",
                root(&id)
            ),
            vec![],
        )
        .await;
    assert_eq!(
        styled,
        json!([
            "rgb(253, 246, 227)",
            "rgb(11, 83, 148)",
            "rgb(255, 255, 255)"
        ])
    );
    browser
        .screenshot_of(
            &format!("dutycard-card[service-id=\"{id}\"]"),
            "card-standards-metrics.png",
        )
        .await;

    let errors = errors(&browser, &app.app.address, &[]).await;
    assert!(errors.is_empty(), "browser errors: {errors:#?}");
    browser.close().await;
}
