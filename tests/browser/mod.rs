//! The card component and the demo page in a real browser (headless
//! Chromium over WebDriver) against the app and the simulator on port 0
//! (issue 19). Screenshots land in `$CARGO_TARGET_TMPDIR/ui-screenshots`
//! (printed). One browser at a time: they share two cores with the suite.

mod driver;
mod entity;
mod idempotency;
mod jwt;
mod live;
mod sections;
mod stream;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sim::{SimConfig, SimToken};

use crate::auth::{TOKEN, static_auth_toml};
use crate::helpers::{SimApp, small_sim, spawn_with_sim, spawn_with_sim_token};
use crate::trigger::{ENQUEUE, triggerable_service};
use driver::Browser;

/// How long a page may take to show all its cards.
const RENDER_TIMEOUT: Duration = Duration::from_secs(30);

/// Browser tests take turns (each starts Chromium).
async fn turn() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// JS: the shadow root of the card of service `id`.
fn root(id: &str) -> String {
    format!("document.querySelector('dutycard-card[service-id=\"{id}\"]').shadowRoot")
}

/// JS: the visible text of one section of a card.
fn section_text(id: &str, section: &str) -> String {
    format!(
        "const s = {}.querySelector('[data-section=\"{section}\"]'); return s ? s.innerText : null;",
        root(id)
    )
}

async fn text(browser: &Browser, script: &str) -> String {
    browser
        .js(script, vec![])
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Where the simulated users' avatars are (PagerDuty's are on Gravatar):
/// unreachable offline, the card then shows initials.
const AVATAR_HOST: &str = "https://secure.gravatar.com/avatar/";

/// Severe browser log entries: console errors, script errors, failed loads.
/// Left out: avatars that cannot load (offline, see [`AVATAR_HOST`]), and
/// exactly the `expected` answers (full URL, status) the test itself
/// provoked, each one the card turned into words.
async fn errors(browser: &Browser, address: &str, expected: &[(&str, u16)]) -> Vec<String> {
    // Chromium's words for a load answered with an error status.
    let expected: Vec<String> = expected
        .iter()
        .map(|(url, status)| {
            assert!(url.starts_with(address), "{url} is not on {address}");
            format!(
                "{url} - Failed to load resource: the server responded with a status of {status} "
            )
        })
        .collect();
    browser
        .log()
        .await
        .into_iter()
        .filter(|(level, source, message)| {
            level == "SEVERE"
                && !(source == "network"
                    && (message.starts_with(AVATAR_HOST)
                        || expected.iter().any(|e| message.starts_with(e.as_str()))))
        })
        .map(|(_, source, message)| format!("[{source}] {message}"))
        .collect()
}

async fn wait_until_cards_ready(browser: &Browser, count: usize) {
    browser
        .wait_for(
            &format!("{count} rendered cards"),
            RENDER_TIMEOUT,
            &format!(
                "const c = [...document.querySelectorAll('dutycard-card')];
                 return c.length === {count} && c.every((e) => e.dataset.state === 'ready');"
            ),
        )
        .await;
}

/// A service whose card has someone on call and open incidents.
async fn busy_service(app: &SimApp) -> (String, Value) {
    for service in &app.sim.account().services {
        let card: Value = app
            .app
            .get(&format!("/v1/cards/{}", service.id))
            .await
            .json()
            .await
            .expect("card JSON");
        let incidents = card["incidents"]["data"]["newest"]
            .as_array()
            .is_some_and(|a| !a.is_empty());
        let oncall = card["oncall"]["data"]["levels"]
            .as_array()
            .is_some_and(|l| l.iter().any(|l| l["primary"] == true));
        if incidents && oncall {
            return (service.id.clone(), card);
        }
    }
    panic!("the seeded account has no service with on-call users and open incidents");
}

fn set_theme(theme: &str) -> String {
    format!(
        "const t = document.getElementById('theme'); t.value = '{theme}';
         t.dispatchEvent(new Event('change'));"
    )
}

#[tokio::test]
async fn the_demo_grid_shows_every_card_with_on_call_and_incidents_and_no_console_error() {
    let _turn = turn().await;
    let app = spawn_with_sim(small_sim(), "").await;
    let ids: BTreeSet<String> = app
        .sim
        .account()
        .services
        .iter()
        .map(|s| s.id.clone())
        .collect();
    let (busy, card) = busy_service(&app).await;
    let browser = Browser::start().await;
    browser.goto(&app.app.url("/ui/")).await;
    wait_until_cards_ready(&browser, ids.len()).await;

    let shown: BTreeSet<String> = serde_json::from_value(
        browser
            .js(
                "return [...document.querySelectorAll('dutycard-card')].map((e) => e.getAttribute('service-id'));",
                vec![],
            )
            .await,
    )
    .unwrap();
    assert_eq!(shown, ids, "one card per simulated service");
    let status = text(
        &browser,
        "return document.getElementById('status').innerText;",
    )
    .await;
    assert_eq!(status, format!("{n} of {n} services", n = ids.len()));

    // The busy card: its name, the primary on-call people first, every
    // incident of the card JSON with its status.
    let name = card["service"]["data"]["name"].as_str().unwrap();
    let header = text(
        &browser,
        &format!("return {}.querySelector('h2').innerText;", root(&busy)),
    )
    .await;
    assert_eq!(header, name);
    let oncall = text(&browser, &section_text(&busy, "oncall")).await;
    assert!(oncall.contains("Primary (level"), "{oncall}");
    let primary = card["oncall"]["data"]["levels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["primary"] == true)
        .unwrap();
    for user in primary["users"].as_array().unwrap() {
        let user = user["name"].as_str().unwrap();
        assert!(oncall.contains(user), "{user} not in {oncall}");
    }
    let first_line = oncall.lines().nth(1).unwrap_or_default();
    assert!(first_line.starts_with("Primary"), "primary first: {oncall}");
    let incidents = text(&browser, &section_text(&busy, "incidents")).await;
    for incident in card["incidents"]["data"]["newest"].as_array().unwrap() {
        let title = incident["title"].as_str().unwrap();
        assert!(incidents.contains(title), "{title} not in {incidents}");
        assert!(incidents.contains(incident["status"].as_str().unwrap()));
    }
    assert!(incidents.contains(" old"), "incident ages: {incidents}");
    for assignee in card["incidents"]["data"]["newest"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["assignees"].as_array().unwrap())
    {
        let name = assignee["name"].as_str().unwrap();
        assert!(
            incidents.contains(name),
            "assignee {name} not in {incidents}"
        );
    }
    let policy = text(&browser, &section_text(&busy, "escalation_policy")).await;
    let policy_name = card["escalation_policy"]["data"]["name"].as_str().unwrap();
    assert!(policy.contains(policy_name), "{policy}");
    let whole = text(
        &browser,
        &format!("return {}.querySelector('article').innerText;", root(&busy)),
    )
    .await;
    assert!(!whole.contains("http"), "a URL shown as text: {whole}");
    let links = browser
        .js(
            &format!(
                "return [...{}.querySelectorAll('a')].filter((a) => a.href.startsWith('http')).length;",
                root(&busy)
            ),
            vec![],
        )
        .await;
    assert!(links.as_u64().unwrap() >= 2, "links to PagerDuty: {links}");

    // The search box narrows the grid.
    let search = name.split_whitespace().next().unwrap();
    browser
        .js(
            "const s = document.getElementById('search'); s.value = arguments[0];
             s.dispatchEvent(new Event('input'));",
            vec![json!(search)],
        )
        .await;
    let visible = browser
        .js(
            "return [...document.querySelectorAll('dutycard-card')].filter((e) => !e.hidden).length;",
            vec![],
        )
        .await;
    let visible = visible.as_u64().unwrap() as usize;
    assert!(
        visible >= 1 && visible < ids.len(),
        "{visible} shown for {search:?}"
    );
    browser
        .js(
            "const s = document.getElementById('search'); s.value = '';
             s.dispatchEvent(new Event('input'));",
            vec![],
        )
        .await;

    // Without a theme the card follows the system's colour scheme.
    let background = format!(
        "return getComputedStyle({}.querySelector('.card')).backgroundColor;",
        root(&busy)
    );
    assert_eq!(text(&browser, &background).await, "rgb(255, 255, 255)");
    browser.prefer_color_scheme("dark").await;
    assert_eq!(text(&browser, &background).await, "rgb(22, 27, 34)");
    browser.prefer_color_scheme("light").await;

    let mut backgrounds = BTreeSet::new();
    for theme in ["light", "dark"] {
        browser.js(&set_theme(theme), vec![]).await;
        let contrast = browser.js(CONTRAST, vec![json!(busy)]).await;
        for (name, ratio) in contrast["ratios"].as_object().unwrap() {
            let ratio = ratio.as_f64().unwrap();
            assert!(ratio >= 4.5, "{theme}: {name} is {ratio:.2}:1");
        }
        backgrounds.insert(contrast["background"].as_str().unwrap().to_owned());
        browser.screenshot(&format!("grid-{theme}.png")).await;
        let card = format!("dutycard-card[service-id=\"{busy}\"]");
        browser
            .screenshot_of(&card, &format!("card-{theme}.png"))
            .await;
    }

    assert_eq!(
        backgrounds.len(),
        2,
        "light and dark differ: {backgrounds:?}"
    );

    let errors = errors(&browser, &app.app.address, &[]).await;
    assert!(errors.is_empty(), "browser errors: {errors:#?}");
    browser.close().await;
}

/// JS: the card's text colours against the backgrounds they are shown on
/// (the card, status chips and buttons, button.primary, the stale and
/// error notes): WCAG contrast ratios from the computed custom properties,
/// and the card's background itself.
const CONTRAST: &str = r#"
const host = document.querySelector(`dutycard-card[service-id="${arguments[0]}"]`);
const style = getComputedStyle(host);
const rgb = (name) => {
  const hex = style.getPropertyValue(name).trim().replace('#', '');
  return [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255);
};
const lum = (c) => {
  const [r, g, b] = c.map((v) => (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4));
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
};
const ratios = {};
const pair = (fgName, bgName) => {
  const [fg, bg] = [lum(rgb(fgName)), lum(rgb(bgName))];
  ratios[`${fgName} on ${bgName}`] = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
};
// Text on the card.
for (const name of ['--dc-fg', '--dc-muted', '--dc-accent', '--dc-ok', '--dc-warn', '--dc-critical']) pair(name, '--dc-bg');
// Status chips and buttons (and the Created answer) on the chip colour.
for (const name of ['--dc-fg', '--dc-muted', '--dc-accent', '--dc-ok', '--dc-warn', '--dc-critical']) pair(name, '--dc-chip-bg');
// button.primary: the background colour on the accent.
pair('--dc-bg', '--dc-accent');
// The stale banner and the error notes.
for (const bg of ['--dc-stale-bg', '--dc-error-bg']) {
  pair('--dc-fg', bg);
  pair('--dc-muted', bg);
}
return { ratios, background: getComputedStyle(host.shadowRoot.querySelector('.card')).backgroundColor };
"#;

#[tokio::test]
async fn keyboard_only_the_form_creates_an_incident_that_shows_on_the_card_within_2s() {
    let _turn = turn().await;
    let app = spawn_with_sim(small_sim(), "").await;
    let (id, _) = triggerable_service(&app.sim);
    let browser = Browser::start().await;
    browser
        .goto(&app.app.url(&format!("/ui/?services={id}")))
        .await;
    wait_until_cards_ready(&browser, 1).await;

    let form_shown = format!(
        "return {}.querySelector('form').checkVisibility();",
        root(&id)
    );
    assert_eq!(
        browser.js(&form_shown, vec![]).await,
        json!(false),
        "form closed at first"
    );
    // Tab through the page until the card's button has the focus.
    let focused = format!(
        "return {}.activeElement?.dataset.action ?? null;",
        root(&id)
    );
    let mut tabs = 0;
    loop {
        browser.tab().await;
        tabs += 1;
        if browser.js(&focused, vec![]).await == json!("open-form") {
            break;
        }
        assert!(tabs < 100, "Tab never reached the Create incident button");
    }
    browser.enter().await;
    browser
        .wait_for(
            "the form open with the summary focused",
            Duration::from_secs(5),
            &format!("return {}.activeElement?.name === 'summary';", root(&id)),
        )
        .await;
    let expanded = browser
        .js(
            &format!(
                "return {}.querySelector('[data-action=open-form]').getAttribute('aria-expanded');",
                root(&id)
            ),
            vec![],
        )
        .await;
    assert_eq!(expanded, json!("true"));
    assert_eq!(browser.js(&form_shown, vec![]).await, json!(true));
    let summary = "Checkout is failing for EU users (browser e2e)";
    browser.type_text(summary).await;
    browser.tab().await; // severity
    browser.tab().await; // details
    browser.type_text("Seen from the portal").await;
    browser.tab().await; // the submit button
    let on_submit = browser
        .js(&format!("return {}.activeElement.type;", root(&id)), vec![])
        .await;
    assert_eq!(on_submit, json!("submit"));

    let card = format!("dutycard-card[service-id=\"{id}\"]");
    for theme in ["dark", "light"] {
        browser.js(&set_theme(theme), vec![]).await;
        browser
            .screenshot_of(&card, &format!("form-{theme}.png"))
            .await;
    }

    let sent = Instant::now();
    browser.enter().await;
    browser
        .wait_for(
            "the new incident on the card",
            Duration::from_secs(2),
            &format!(
                "const s = {}.querySelector('[data-section=\"incidents\"]');
                 return s && s.innerText.includes({summary:?});",
                root(&id)
            ),
        )
        .await;
    let took = sent.elapsed();
    let answer = text(
        &browser,
        &format!("return {}.querySelector('.answer').innerText;", root(&id)),
    )
    .await;
    assert!(answer.starts_with("Created"), "{answer}");
    assert_eq!(app.sim.stats().count("POST", ENQUEUE), 1, "one event sent");
    // Escape closes the form and gives the focus back to its button.
    browser.keys(&[fantoccini::key::Key::Escape.into()]).await;
    assert_eq!(browser.js(&form_shown, vec![]).await, json!(false));
    assert_eq!(browser.js(&focused, vec![]).await, json!("open-form"));
    println!("incident on the card {took:?} after the submit");
    browser.screenshot_of(&card, "card-after-trigger.png").await;

    let errors = errors(&browser, &app.app.address, &[]).await;
    assert!(errors.is_empty(), "browser errors: {errors:#?}");
    browser.close().await;
}

/// Every scope a card reads, but analytics.
const ALL_BUT_ANALYTICS: &[&str] = &[
    "services.read",
    "incidents.read",
    "oncalls.read",
    "escalation_policies.read",
    "change_events.read",
    "teams.read",
    "users.read",
    "schedules.read",
    "abilities.read",
    "standards.read",
];

#[tokio::test]
async fn a_section_pagerduty_refuses_shows_why_while_the_rest_renders_with_a_static_token() {
    let _turn = turn().await;
    let sim_config = SimConfig {
        api_tokens: vec![SimToken::scoped("no-analytics-token", ALL_BUT_ANALYTICS)],
        ..small_sim()
    };
    let app = spawn_with_sim_token(
        sim_config,
        // Incidents expire after 1 s, so a failed refresh shows stale.
        &format!(
            "{}\n[cache]\nincidents_ttl_secs = 1\n",
            static_auth_toml(false)
        ),
        Some("no-analytics-token"),
    )
    .await;
    let id = app.sim.account().services[0].id.clone();
    let browser = Browser::start().await;
    browser
        .goto(
            &app.app
                .url(&format!("/ui/?services={id}&include=standards,metrics")),
        )
        .await;
    // Without a token the card says what it needs.
    browser
        .wait_for(
            "the card asking for a token",
            RENDER_TIMEOUT,
            &format!(
                "return document.querySelector('dutycard-card')?.dataset.state === 'error'
                   && {}.querySelector('[role=alert]').innerText.includes('needs a token');",
                root(&id)
            ),
        )
        .await;
    // The token field: kept in sessionStorage, given to every card.
    browser
        .js(
            "document.getElementById('token').value = arguments[0];
             document.getElementById('use-token').click();",
            vec![json!(TOKEN)],
        )
        .await;
    wait_until_cards_ready(&browser, 1).await;
    let stored = browser
        .js("return sessionStorage.getItem('dutycard-token');", vec![])
        .await;
    assert_eq!(stored, json!(TOKEN));

    let metrics = text(&browser, &section_text(&id, "metrics")).await;
    assert!(
        metrics.contains("PagerDuty refused: the token lacks analytics.read."),
        "{metrics}"
    );
    for section in ["oncall", "incidents", "escalation_policy", "standards"] {
        let shown = text(&browser, &section_text(&id, section)).await;
        assert!(!shown.is_empty(), "{section} missing");
        assert!(!shown.contains("PagerDuty refused"), "{section}: {shown}");
    }
    let errors_shown = browser
        .js(
            &format!(
                "return [...{}.querySelectorAll('[data-error-kind]')].map((e) => e.dataset.errorKind);",
                root(&id)
            ),
            vec![],
        )
        .await;
    assert_eq!(
        errors_shown,
        json!(["forbidden"]),
        "only the metrics section failed"
    );
    browser
        .screenshot_of(
            &format!("dutycard-card[service-id=\"{id}\"]"),
            "card-refused-section.png",
        )
        .await;

    // A section PagerDuty stops answering: the last good value, marked
    // stale with its age, and why it could not be refreshed.
    app.sim.set_faults(sim::Faults {
        per_route: vec![(
            "/incidents".into(),
            sim::FaultSpec {
                fail_next: 10_000,
                fail_status: 500,
                ..sim::FaultSpec::default()
            },
        )],
        ..sim::Faults::default()
    });
    let card_url = app
        .app
        .url(&format!("/v1/cards/{id}?include=standards,metrics"));
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let card: Value = app
            .app
            .http
            .get(&card_url)
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let incidents = &card["incidents"];
        if incidents["stale"] == true && incidents["error"].is_object() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "incidents never went stale: {card}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser
        .js("document.querySelector('dutycard-card').refresh();", vec![])
        .await;
    let stale = browser
        .wait_for(
            "the stale incidents marked",
            Duration::from_secs(5),
            &format!(
                "const s = {}.querySelector('[data-section=\"incidents\"]');
                 return s && s.querySelector('.stale') ? s.innerText : null;",
                root(&id)
            ),
        )
        .await;
    let stale = stale.as_str().unwrap();
    assert!(stale.contains("Stale: read from PagerDuty "), "{stale}");
    assert!(stale.contains("PagerDuty could not be reached."), "{stale}");
    assert!(
        stale.contains("triggered"),
        "the last good value stays: {stale}"
    );
    app.sim.clear_faults();

    // The first try without a token: the card and its stream refused, 401,
    // which the card answered in words.
    let card = app
        .app
        .url(&format!("/v1/cards/{id}?include=standards%2Cmetrics"));
    let stream = app.app.url(&format!(
        "/v1/cards/{id}/stream?include=standards%2Cmetrics"
    ));
    let errors = errors(&browser, &app.app.address, &[(&card, 401), (&stream, 401)]).await;
    assert!(errors.is_empty(), "browser errors: {errors:#?}");
    browser.close().await;
}
