//! JWT portals (`server.auth.mode = "jwt"`): the portal embeds the card
//! with its own user's token, either as the `token` attribute or through a
//! `fetch` hook adding `Authorization`; both read the card and follow its
//! stream (a trigger at PagerDuty reaches both with no poll). A card with
//! neither is told, in words, that it needs a token.

use std::time::{Duration, Instant};

use serde_json::json;

use super::driver::Browser;
use super::stream::{LONG_TTLS, card_gets, deliver_signed, gauge, metrics, webhook_secret_toml};
use super::{errors, turn};
use crate::auth_jwt::jwt_auth;
use crate::helpers::{BASE_TOML, TestApp, settings_from, sim_env, small_sim, start_sim};
use crate::trigger::triggerable_service;

#[tokio::test]
async fn a_jwt_portal_card_renders_and_streams_with_a_token_attribute_and_with_a_fetch_hook() {
    let _turn = turn().await;
    let sim = start_sim(small_sim()).await;
    let (_jwks, auth, jwt) = jwt_auth().await;
    let mut env = sim_env(&sim);
    env.push(("DUTYCARD_PAGERDUTY__API_TOKEN".into(), sim.api_token()));
    // Long TTLs: only the webhook below can bring a new incident in.
    let layers = [BASE_TOML, &auth, LONG_TTLS, &webhook_secret_toml()];
    let app = TestApp::spawn(settings_from(&layers, &env)).await;
    let (id, key) = triggerable_service(&sim);
    let name = sim
        .account()
        .services
        .iter()
        .find(|s| s.id == id)
        .unwrap()
        .name
        .clone();
    // The API wants the JWT (the page and its files do not).
    assert_eq!(app.get(&format!("/v1/cards/{id}")).await.status(), 401);

    let browser = Browser::start().await;
    browser.goto(&app.url("/ui/?services=")).await;
    browser
        .js(
            "const [id, jwt] = arguments;
             window.dcAuth = [];
             const attr = document.createElement('dutycard-card');
             attr.id = 'attr';
             attr.setAttribute('token', jwt);
             const hooked = document.createElement('dutycard-card');
             hooked.id = 'hook';
             hooked.fetch = (url, init) => {
               const headers = { ...(init.headers || {}), Authorization: `Bearer ${jwt}` };
               window.dcAuth.push(url);
               return fetch(url, { ...init, headers });
             };
             // Neither: it is refused once (no stream, no polls after).
             const none = document.createElement('dutycard-card');
             none.id = 'none';
             none.setAttribute('live', 'off');
             for (const c of [attr, hooked, none]) {
               c.setAttribute('service-id', id);
               document.body.append(c);
             }",
            vec![json!(id), json!(jwt)],
        )
        .await;
    let shown = browser
        .wait_for(
            "both JWT cards rendered",
            super::RENDER_TIMEOUT,
            "const names = ['attr', 'hook'].map((id) => {
               const c = document.getElementById(id);
               return c.dataset.state === 'ready' ? c.shadowRoot.querySelector('h2').innerText : null;
             });
             return names.every(Boolean) ? names : null;",
        )
        .await;
    assert_eq!(shown, json!([name, name]));
    let refused = browser
        .wait_for(
            "the card without a token refused",
            super::RENDER_TIMEOUT,
            "const c = document.getElementById('none');
             return c.dataset.state === 'error' ? c.shadowRoot.querySelector('[role=alert]').innerText : null;",
        )
        .await;
    assert_eq!(
        refused,
        json!("dutycard needs a token: set the card's token (or fetch hook).")
    );

    // Both JWT cards hold a stream open (the stream route wants the JWT
    // as much as the card route: a refused one would not count).
    let http = &app.http;
    let deadline = Instant::now() + Duration::from_secs(10);
    while gauge(&metrics(http, &app.address).await, "dutycard_streams_open") != Some(2) {
        assert!(
            Instant::now() < deadline,
            "the JWT cards did not both open their streams: {}",
            metrics(http, &app.address).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A trigger straight at PagerDuty (the simulator), announced by a
    // signed webhook: both cards show it through their streams.
    let gets = card_gets(&metrics(http, &app.address).await);
    let title = "Queue backlog on jobs-1 (JWT portal, stream)";
    let r = http
        .post(format!("{}/enqueue", sim.events_base_url()))
        .json(&json!({
            "routing_key": key, "event_action": "trigger", "dedup_key": "browser-jwt-1",
            "payload": {"summary": title, "source": "jobs-1", "severity": "error"},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
    deliver_signed(
        http,
        &app.address,
        "browser-jwt-triggered-1",
        "incident.triggered",
        json!({"id": "Q1", "type": "incident", "service": {"id": id, "type": "service_reference"}}),
    )
    .await;
    browser
        .wait_for(
            "the trigger on both JWT cards",
            Duration::from_secs(2),
            &format!(
                "return ['attr', 'hook'].every((id) => document.getElementById(id).shadowRoot
                   .querySelector('[data-section=\"incidents\"]').innerText.includes({title:?}));"
            ),
        )
        .await;
    assert_eq!(
        card_gets(&metrics(http, &app.address).await),
        gets,
        "a card polled instead of following its stream"
    );
    let hooked = browser.js("return window.dcAuth;", vec![]).await;
    let card_url = app.url(&format!("/v1/cards/{id}"));
    assert_eq!(
        hooked,
        json!([card_url.clone(), format!("{card_url}/stream")]),
        "the hook made the card's requests"
    );

    // A portal that sets the hook before the component's script has
    // loaded (an async script tag): the card still uses it. A page of this
    // server without the component (the OpenAPI document), the card made
    // and hooked first, the script imported after.
    browser.goto(&app.url("/openapi.json")).await;
    browser
        .js(
            "const [jwt, script] = arguments;
             window.dcEarly = 0;
             const early = document.createElement('dutycard-card');
             early.id = 'early';
             early.fetch = (url, init) => {
               window.dcEarly += 1;
               return fetch(url, { ...init, headers: { ...(init.headers || {}), Authorization: `Bearer ${jwt}` } });
             };
             early.setAttribute('service-id', arguments[2]);
             early.setAttribute('live', 'off');
             document.body.append(early);
             if (customElements.get('dutycard-card')) throw new Error('the component is already defined here');
             import(script);",
            vec![json!(jwt), json!(app.url("/ui/dutycard-card.js")), json!(id)],
        )
        .await;
    let early = browser
        .wait_for(
            "the early-hooked card settled",
            super::RENDER_TIMEOUT,
            "const c = document.getElementById('early');
             return c.dataset.state !== 'loading'
               ? [c.dataset.state, c.shadowRoot.querySelector('h2')?.innerText ?? null, window.dcEarly] : null;",
        )
        .await;
    assert_eq!(early, json!(["ready", name, 1]));

    // The card refused without a token, and the OpenAPI page's favicon
    // (this server has none).
    let favicon = app.url("/favicon.ico");
    let errors = errors(&browser, &app.address, &[(&card_url, 401), (&favicon, 404)]).await;
    assert!(errors.is_empty(), "browser errors: {errors:#?}");
    browser.close().await;
}
