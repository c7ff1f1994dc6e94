//! Builder defaults (regions, hosts), validation of settings, and secrets
//! kept out of Debug output.

use std::time::Duration;

use pagerduty::{Client, Credentials, Error, OAuthCredentials, Region, RetryPolicy, SecretString};

use crate::helpers::{API_TOKEN, CLIENT_SECRET, oauth_creds};

fn token() -> Credentials {
    Credentials::ApiToken(SecretString::from(API_TOKEN))
}

#[test]
fn us_hosts_are_the_default() {
    let c = Client::builder(token()).build().unwrap();
    assert_eq!(c.region(), Region::Us);
    assert_eq!(c.api_base_url(), "https://api.pagerduty.com");
    assert_eq!(c.events_base_url(), "https://events.pagerduty.com/v2");
    assert_eq!(
        c.oauth_token_url(),
        "https://identity.pagerduty.com/oauth/token"
    );
}

#[test]
fn eu_region_picks_eu_hosts_and_the_same_token_url() {
    let c = Client::builder(token()).region(Region::Eu).build().unwrap();
    assert_eq!(c.api_base_url(), "https://api.eu.pagerduty.com");
    assert_eq!(c.events_base_url(), "https://events.eu.pagerduty.com/v2");
    assert_eq!(
        c.oauth_token_url(),
        "https://identity.pagerduty.com/oauth/token"
    );
    assert_eq!(
        oauth_creds().scope_string(Region::Eu),
        "as_account-eu.acme services.read incidents.read"
    );
}

#[test]
fn overrides_win_over_region_defaults() {
    let c = Client::builder(token())
        .region(Region::Eu)
        .api_base_url("http://127.0.0.1:4010/")
        .events_base_url("http://127.0.0.1:4012/v2/")
        .oauth_token_url("http://127.0.0.1:4013/oauth/token")
        .build()
        .unwrap();
    assert_eq!(c.api_base_url(), "http://127.0.0.1:4010");
    assert_eq!(c.events_base_url(), "http://127.0.0.1:4012/v2");
    assert_eq!(c.oauth_token_url(), "http://127.0.0.1:4013/oauth/token");
}

#[test]
fn region_parses_and_displays() {
    assert_eq!("eu".parse::<Region>().unwrap(), Region::Eu);
    assert_eq!("US".parse::<Region>().unwrap(), Region::Us);
    assert!("apac".parse::<Region>().unwrap_err().contains("apac"));
    assert_eq!(Region::Eu.to_string(), "eu");
    assert_eq!(serde_json::to_string(&Region::Us).unwrap(), "\"us\"");
}

fn config_field(r: pagerduty::Result<Client>) -> String {
    match r {
        Err(Error::Config { field, .. }) => field,
        other => panic!("expected a Config error, got {other:?}"),
    }
}

#[test]
fn bad_settings_name_the_field() {
    assert_eq!(
        config_field(Client::builder(token()).api_base_url("not a url").build()),
        "api_base_url"
    );
    assert_eq!(
        config_field(
            Client::builder(token())
                .events_base_url("ftp://x/v2")
                .build()
        ),
        "events_base_url"
    );
    assert_eq!(
        config_field(
            Client::builder(token())
                .oauth_token_url("/oauth/token")
                .build()
        ),
        "oauth_token_url"
    );
    assert_eq!(
        config_field(Client::builder(Credentials::ApiToken(SecretString::from(" "))).build()),
        "api_token"
    );
    assert_eq!(
        config_field(
            Client::builder(token())
                .request_timeout(Duration::ZERO)
                .build()
        ),
        "request_timeout"
    );
    assert_eq!(
        config_field(
            Client::builder(token())
                .retry_policy(RetryPolicy {
                    max_attempts: 0,
                    ..Default::default()
                })
                .build()
        ),
        "retry_policy.max_attempts"
    );
    assert_eq!(
        config_field(
            Client::builder(token())
                .rate_limit_per_minute(Some(0))
                .build()
        ),
        "rate_limit_per_minute"
    );
    let bad_sub = OAuthCredentials {
        subdomain: "acme.pagerduty.com".into(),
        ..oauth_creds()
    };
    assert_eq!(
        config_field(Client::builder(Credentials::OAuth(bad_sub)).build()),
        "oauth.subdomain"
    );
    let no_secret = OAuthCredentials {
        client_secret: SecretString::from(""),
        ..oauth_creds()
    };
    assert_eq!(
        config_field(Client::builder(Credentials::OAuth(no_secret)).build()),
        "oauth.client_secret"
    );
}

#[test]
fn retry_policy_default_matches_the_contract() {
    let p = RetryPolicy::default();
    assert_eq!(p.max_attempts, 3);
    assert_eq!(p.base_delay, Duration::from_millis(200));
    assert_eq!(p.max_delay, Duration::from_secs(10));
    assert_eq!(p.deadline, Duration::from_secs(20));
}

#[test]
fn debug_never_shows_secrets() {
    let api = format!("{:?}", token());
    assert!(!api.contains(API_TOKEN), "{api}");
    let oauth = Credentials::OAuth(oauth_creds());
    let shown = format!("{oauth:?}");
    assert!(!shown.contains(CLIENT_SECRET), "{shown}");
    assert!(shown.contains("app-client-id-123"));
    let builder = format!("{:?}", Client::builder(token()));
    assert!(!builder.contains(API_TOKEN), "{builder}");
    let client = Client::builder(Credentials::OAuth(oauth_creds()))
        .build()
        .unwrap();
    let shown = format!("{client:?}");
    assert!(!shown.contains(CLIENT_SECRET), "{shown}");
    let integration: pagerduty::Integration = serde_json::from_value(serde_json::json!({
        "id": "PINT001", "type": "events_api_v2_inbound_integration",
        "integration_key": "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    }))
    .unwrap();
    let shown = format!("{integration:?}");
    assert!(!shown.contains("0a1b2c3d4e5f"), "{shown}");
}

#[tokio::test]
async fn empty_ids_are_rejected_before_sending() {
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(wiremock::ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let c = crate::helpers::token_client(&server);
    let field = |r: pagerduty::Error| match r {
        Error::Config { field, .. } => field,
        other => panic!("expected Config, got {other:?}"),
    };
    assert_eq!(
        field(c.get_service("", &[]).await.unwrap_err()),
        "service_id"
    );
    assert_eq!(field(c.get_user(" ").await.unwrap_err()), "user_id");
    assert_eq!(
        field(c.get_escalation_policy("").await.unwrap_err()),
        "escalation_policy_id"
    );
    assert_eq!(
        field(c.find_service_by_integration_key("").await.unwrap_err()),
        "integration_key"
    );
    assert_eq!(
        field(c.service_standards("").await.unwrap_err()),
        "service_id"
    );
    assert_eq!(
        field(
            c.list_service_change_events("", &Default::default())
                .await
                .unwrap_err()
        ),
        "service_id"
    );
}
