//! JWT portals (`server.auth.mode = "jwt"`): the portal embeds the card
//! with its own user's token, either as the `token` attribute or through a
//! `fetch` hook adding `Authorization`; both read the card and open its
//! stream. A card with neither is told, in words, that it needs a token.

use std::time::{Duration, Instant};

use serde_json::json;

use super::driver::Browser;
use super::stream::{gauge, metrics};
use super::{errors, turn};
use crate::auth_jwt::jwt_auth;
use crate::helpers::{BASE_TOML, TestApp, settings_from, sim_env, small_sim, start_sim};

#[tokio::test]
async fn a_jwt_portal_card_renders_and_streams_with_a_token_attribute_and_with_a_fetch_hook() {
    let _turn = turn().await;
    let sim = start_sim(small_sim()).await;
    let (_jwks, auth, jwt) = jwt_auth().await;
    let mut env = sim_env(&sim);
    env.push(("DUTYCARD_PAGERDUTY__API_TOKEN".into(), sim.api_token()));
    let app = TestApp::spawn(settings_from(&[BASE_TOML, &auth], &env)).await;
    let id = sim.account().services[0].id.clone();
    let name = sim.account().services[0].name.clone();
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
             const none = document.createElement('dutycard-card');
             none.id = 'none';
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
    let hooked = browser.js("return window.dcAuth;", vec![]).await;
    let card_url = app.url(&format!("/v1/cards/{id}"));
    assert_eq!(
        hooked,
        json!([card_url.clone(), format!("{card_url}/stream")]),
        "the hook made the card's requests"
    );

    let errors = errors(
        &browser,
        &app.address,
        &[(&card_url, 401), (&format!("{card_url}/stream"), 401)],
    )
    .await;
    assert!(errors.is_empty(), "browser errors: {errors:#?}");
    browser.close().await;
}
