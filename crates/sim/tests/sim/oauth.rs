//! POST /oauth/token (client credentials) and Bearer tokens.

use serde_json::{Value, json};
use sim::SimOAuthClient;

use crate::common::*;

async fn token(sim: &sim::SimHandle, form: &[(&str, &str)]) -> (u16, Value) {
    let r = http()
        .post(sim.oauth_token_url())
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn bearer_get(sim: &sim::SimHandle, token: &str, path: &str) -> u16 {
    http()
        .get(format!("{}{path}", sim.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn client_credentials_grant_and_scopes() {
    let sim = start(config()).await;
    let (id, secret) = sim.oauth_client();
    assert_eq!((id.as_str(), secret.as_str()), ("sim-client", "sim-secret"));
    let (status, body) = token(
        &sim,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
            ("scope", "as_account-us.acme services.read oncalls.read"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(
        body["scope"],
        "as_account-us.acme services.read oncalls.read"
    );
    let access = body["access_token"].as_str().unwrap();
    assert!(access.starts_with("pdus+_"));

    assert_eq!(bearer_get(&sim, access, "/services").await, 200);
    assert_eq!(bearer_get(&sim, access, "/oncalls").await, 200);
    let r = http()
        .get(format!("{}/incidents", sim.base_url()))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": {"message": "Token missing required scopes", "required_scopes": "incidents.read"}})
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn token_endpoint_errors() {
    let sim = start(sim::SimConfig {
        oauth_clients: vec![SimOAuthClient {
            client_id: "app".into(),
            client_secret: "s3cret".into(),
            allowed_scopes: Some(vec!["services.read".into()]),
        }],
        ..config()
    })
    .await;
    let (status, body) = token(
        &sim,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "app"),
            ("client_secret", "wrong"),
            ("scope", "as_account-us.acme services.read"),
        ],
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_client");

    let (status, body) = token(
        &sim,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "app"),
            ("client_secret", "s3cret"),
            ("scope", "services.read"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_scope");

    let (status, body) = token(
        &sim,
        &[
            ("grant_type", "password"),
            ("client_id", "app"),
            ("client_secret", "s3cret"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "unsupported_grant_type");

    // Granted scopes are narrowed to what the app may have.
    let (status, body) = token(
        &sim,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "app"),
            ("client_secret", "s3cret"),
            ("scope", "as_account-eu.acme services.read incidents.read"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["scope"], "as_account-eu.acme services.read");
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(bearer_get(&sim, access, "/services").await, 200);
    assert_eq!(bearer_get(&sim, access, "/incidents").await, 403);
    sim.shutdown().await;
}

#[tokio::test]
async fn expired_tokens_are_rejected() {
    let sim = start(sim::SimConfig {
        oauth_token_ttl_secs: 0,
        ..config()
    })
    .await;
    let (id, secret) = sim.oauth_client();
    let (status, body) = token(
        &sim,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
            ("scope", "as_account-us.acme services.read"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["expires_in"], 0);
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(bearer_get(&sim, access, "/services").await, 401);
    sim.shutdown().await;
}
