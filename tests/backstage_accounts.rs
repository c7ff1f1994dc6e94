//! The Backstage routes across accounts and configurations: `?account=`
//! routing, account settings and secrets, a Backstage `app-config.yaml`,
//! the server-side trigger route and its account's Events host, and keys
//! kept out of the answers. (The single-account routes and shapes are in
//! `backstage.rs`.)

use std::collections::{BTreeSet, HashMap};

use dutycard_server::config::{ConfigSources, Settings};
use serde_json::{Value, json};

use super::backstage::{P, assert_shape, error_message, fixtures, get_json, pick_service};
use crate::helpers::{
    BASE_NO_CREDENTIALS, SimApp, TestApp, load_layers, settings_from, small_sim, spawn_with_sim,
    start_sim,
};

/// `[pagerduty.accounts.<id>]` tables for simulators.
pub(crate) fn accounts_toml(accounts: &[(&str, &sim::SimHandle, bool)]) -> String {
    let mut toml = String::new();
    for (id, sim, is_default) in accounts {
        toml.push_str(&format!(
            "[pagerduty.accounts.{id}]\napi_token = \"{}\"\napi_base_url = \"{}\"\nevents_base_url = \"{}\"\noauth_token_url = \"{}\"\nis_default = {is_default}\n",
            sim.api_token(),
            sim.base_url(),
            sim.events_base_url(),
            sim.oauth_token_url()
        ));
    }
    toml
}

/// The second account's simulator: another seed, fewer services.
async fn corp_sim() -> sim::SimHandle {
    start_sim(sim::SimConfig {
        seed: 99,
        services: 8,
        ..sim::SimConfig::default()
    })
    .await
}

/// An app over two accounts, `acme` (the default) and `eu-corp`, each on
/// its own simulator.
async fn two_accounts() -> (sim::SimHandle, sim::SimHandle, TestApp) {
    let acme = start_sim(small_sim()).await;
    let corp = corp_sim().await;
    let toml = accounts_toml(&[("acme", &acme, true), ("eu-corp", &corp, false)]);
    let app = TestApp::spawn(settings_from(&[BASE_NO_CREDENTIALS, &toml], &[])).await;
    (acme, corp, app)
}

/// Every `/v1` card route takes `?account=` like the other routes: the
/// named account's card, the default one without it, and a 400 listing the
/// valid ids for an unknown one.
#[tokio::test]
async fn v1_card_routes_route_by_the_account_parameter() {
    let (acme, corp, app) = two_accounts().await;
    let (acme_id, _, _) = pick_service(&acme);
    let (corp_id, corp_key, _) = pick_service(&corp);

    let (status, body) = get_json(&app, &format!("/v1/cards/{acme_id}")).await;
    assert_eq!(status, 200, "the default account: {body}");
    let (status, _) = get_json(&app, &format!("/v1/cards/{corp_id}")).await;
    assert_eq!(
        status, 404,
        "eu-corp's service is not in the default account"
    );
    for path in [
        format!("/v1/cards/{corp_id}?account=eu-corp"),
        format!("/v1/cards?integration_key={corp_key}&account=eu-corp"),
    ] {
        let (status, body) = get_json(&app, &path).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body["service"]["data"]["id"], json!(corp_id), "{path}");
    }
    let res = app
        .http
        .post(app.url("/v1/cards/batch?account=eu-corp"))
        .json(&json!({"service_ids": [corp_id]}))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["cards"][0]["status"], 200, "{body}");
    for path in [
        format!("/v1/cards/{corp_id}?account=nope"),
        format!("/v1/cards?integration_key={corp_key}&account=nope"),
    ] {
        let (status, body) = get_json(&app, &path).await;
        assert_eq!(status, 400, "{path}");
        assert_eq!(body["error"]["details"]["parameter"], "account", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("acme, eu-corp"), "{message}");
    }
}

#[tokio::test]
async fn two_accounts_route_by_the_account_parameter() {
    let (acme, corp, app) = two_accounts().await;
    let (acme_id, _, _) = pick_service(&acme);
    let (corp_id, corp_key, corp_policy) = pick_service(&corp);

    let (status, body) = get_json(&app, &format!("{P}/accounts")).await;
    assert_shape("accounts", status, &body);
    assert_eq!(
        body,
        json!({"accounts": [{"id": "acme", "isDefault": true}, {"id": "eu-corp", "isDefault": false}]})
    );

    // No account: the default one.
    let (status, body) = get_json(&app, &format!("{P}/services/{acme_id}")).await;
    assert_eq!(
        (status, body["service"]["id"].clone()),
        (200, json!(acme_id))
    );
    let (status, _) = get_json(&app, &format!("{P}/services/{corp_id}")).await;
    assert_eq!(
        status, 404,
        "eu-corp's service is not in the default account"
    );
    for path in [
        format!("{P}/services/{corp_id}?account=eu-corp"),
        format!("{P}/services?integration_key={corp_key}&account=eu-corp"),
    ] {
        let (status, body) = get_json(&app, &path).await;
        assert_eq!(
            (status, body["service"]["id"].clone()),
            (200, json!(corp_id)),
            "{path}"
        );
    }
    let (status, body) = get_json(
        &app,
        &format!("{P}/services/{corp_id}/incidents?account=eu-corp"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["incidents"].as_array().unwrap().len(),
        corp.account().open_incidents(&corp_id).len()
    );

    // Every card route reads the named account.
    let (status, body) = get_json(
        &app,
        &format!("{P}/services/{corp_id}/standards?account=eu-corp"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["standards"]["resource_id"], corp_id.as_str());
    for route in ["change-events", "metrics"] {
        let (status, body) = get_json(
            &app,
            &format!("{P}/services/{corp_id}/{route}?account=eu-corp"),
        )
        .await;
        assert_eq!(status, 200, "{route}: {body}");
    }
    let (status, body) = get_json(
        &app,
        &format!("{P}/oncall-users?escalation_policy_ids[]={corp_policy}&account=eu-corp"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let corp_users: BTreeSet<String> = corp.account().users.iter().map(|u| u.id.clone()).collect();
    let users = body["users"].as_array().unwrap();
    assert!(!users.is_empty(), "{body}");
    assert!(
        users
            .iter()
            .all(|u| corp_users.contains(u["id"].as_str().unwrap())),
        "{body}"
    );
    let corp_name = corp.account().service(&corp_id).unwrap().name.clone();
    let (status, body) = get_json(
        &app,
        &format!(
            "{P}/services?account=eu-corp&query={}",
            corp_name
                .bytes()
                .map(|b| if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                })
                .collect::<String>()
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let page = body.as_array().unwrap();
    assert!(page.iter().any(|s| s["id"] == corp_id.as_str()), "{body}");
    assert!(page.iter().all(|s| s["account"] == "eu-corp"), "{body}");

    let (status, body) = get_json(&app, &format!("{P}/services/{corp_id}?account=acme-typo")).await;
    assert_eq!(status, 400);
    let message = error_message(&body);
    assert!(message.contains("acme, eu-corp"), "{message}");

    // Lists span both accounts; labels name the account.
    let (_, body) = get_json(&app, &format!("{P}/escalation_policies")).await;
    let labels: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["label"].as_str().unwrap())
        .collect();
    let (a, c) = (
        acme.account().escalation_policies.len(),
        corp.account().escalation_policies.len(),
    );
    assert_eq!(labels.len(), a + c);
    assert!(
        labels[..a].iter().all(|l| l.starts_with("(acme) ")),
        "{labels:?}"
    );
    assert!(
        labels[a..].iter().all(|l| l.starts_with("(eu-corp) ")),
        "{labels:?}"
    );

    let (_, body) = get_json(&app, &format!("{P}/services")).await;
    let services = body["services"].as_array().unwrap();
    assert_eq!(
        services.len(),
        acme.account().services.len() + corp.account().services.len()
    );
    let corp_services = services
        .iter()
        .filter(|s| s["account"] == "eu-corp")
        .count();
    assert_eq!(corp_services, corp.account().services.len());

    let (_, body) = get_json(&app, &format!("{P}/teams?account=eu-corp")).await;
    let teams = body.as_array().unwrap();
    assert_eq!(teams.len(), corp.account().teams.len());
    assert!(teams.iter().all(|t| t["account"] == "eu-corp"));

    // `?account=` filters the policies too; the labels keep the prefix.
    let (status, body) = get_json(&app, &format!("{P}/escalation_policies?account=eu-corp")).await;
    assert_eq!(status, 200, "{body}");
    let options = body.as_array().unwrap();
    let values: BTreeSet<String> = options
        .iter()
        .map(|o| o["value"].as_str().unwrap().to_owned())
        .collect();
    let expected: BTreeSet<String> = corp
        .account()
        .escalation_policies
        .iter()
        .map(|p| p.id.clone())
        .collect();
    assert_eq!(values, expected);
    assert_eq!(options.len(), expected.len());
    assert!(
        options
            .iter()
            .all(|o| o["label"].as_str().unwrap().starts_with("(eu-corp) ")),
        "{body}"
    );

    // An empty `?account=` filters nothing, on every all-accounts list.
    let (_, body) = get_json(&app, &format!("{P}/services?account=")).await;
    assert_eq!(
        body["services"].as_array().unwrap().len(),
        acme.account().services.len() + corp.account().services.len()
    );
    let (_, body) = get_json(&app, &format!("{P}/teams?account=")).await;
    assert_eq!(
        body.as_array().unwrap().len(),
        acme.account().teams.len() + corp.account().teams.len()
    );
    let (_, body) = get_json(&app, &format!("{P}/escalation_policies?account=")).await;
    assert_eq!(body.as_array().unwrap().len(), a + c);

    // An unknown account is a 400 listing the valid ids on every list route.
    for path in [
        "escalation_policies?account=nope",
        "teams?account=nope",
        "services?account=nope",
        "services?account=nope&query=a",
        "services?account=nope&team_id=PT1&limit=5",
    ] {
        let (status, body) = get_json(&app, &format!("{P}/{path}")).await;
        assert_eq!(status, 400, "{path}: {body}");
        let message = error_message(&body);
        assert!(
            message.contains("nope") && message.contains("acme, eu-corp"),
            "{path}: {message}"
        );
    }

    // Each account's pagination and caches are its own.
    acme.reset_stats();
    corp.reset_stats();
    let (status, _) = get_json(&app, &format!("{P}/escalation_policies")).await;
    assert_eq!(status, 200);
    assert_eq!(acme.stats().total + corp.stats().total, 0, "cached lists");
}

#[tokio::test]
async fn a_one_item_account_list_works_and_is_the_default() {
    let acme = start_sim(small_sim()).await;
    let toml = accounts_toml(&[("acme", &acme, false)]);
    let app = TestApp::spawn(settings_from(&[BASE_NO_CREDENTIALS, &toml], &[])).await;
    let (id, _, policy) = pick_service(&acme);
    // Reported as configured, like the Node backend (not marked: false),
    // though it is the account used when a request names none.
    let (_, body) = get_json(&app, &format!("{P}/accounts")).await;
    assert_eq!(
        body,
        json!({"accounts": [{"id": "acme", "isDefault": false}]})
    );
    for path in [
        format!("{P}/services/{id}"),
        format!("{P}/services/{id}?account=acme"),
        format!("{P}/oncall-users?escalation_policy_ids[]={policy}&account=acme"),
        format!("{P}/escalation_policies"),
    ] {
        assert_eq!(app.get(&path).await.status(), 200, "{path}");
    }
    let (_, body) = get_json(&app, &format!("{P}/escalation_policies")).await;
    assert!(
        body.as_array()
            .unwrap()
            .iter()
            .all(|o| !o["label"].as_str().unwrap().starts_with('(')),
        "a single account's labels carry no prefix"
    );
}

#[test]
fn account_settings_are_validated_naming_the_key() {
    let two_without_default = r#"
[pagerduty.accounts.a]
api_token = "t1"
[pagerduty.accounts.b]
api_token = "t2"
"#;
    let err = load_layers(&[BASE_NO_CREDENTIALS, two_without_default], &[]).unwrap_err();
    assert!(err.keys().contains(&"pagerduty.accounts"), "{err}");

    let two_defaults = two_without_default
        .replace("\"t1\"", "\"t1\"\nis_default = true")
        .replace("\"t2\"", "\"t2\"\nis_default = true");
    let err = load_layers(&[BASE_NO_CREDENTIALS, &two_defaults], &[]).unwrap_err();
    assert!(err.to_string().contains("exactly one"), "{err}");

    let mixed = "[pagerduty]\napi_token = \"top\"\n[pagerduty.accounts.a]\napi_token = \"t1\"\n";
    let err = load_layers(&[BASE_NO_CREDENTIALS, mixed], &[]).unwrap_err();
    assert!(err.keys().contains(&"pagerduty.api_token"), "{err}");

    let no_credentials = "[pagerduty.accounts.a]\nregion = \"eu\"\n";
    let err = load_layers(&[BASE_NO_CREDENTIALS, no_credentials], &[]).unwrap_err();
    assert!(
        err.keys().contains(&"pagerduty.accounts.a.api_token"),
        "{err}"
    );

    let bad_url = "[pagerduty.accounts.a]\napi_token = \"t\"\napi_base_url = \"ftp://x\"\n";
    let err = load_layers(&[BASE_NO_CREDENTIALS, bad_url], &[]).unwrap_err();
    assert!(
        err.keys().contains(&"pagerduty.accounts.a.api_base_url"),
        "{err}"
    );

    let ok = load_layers(
        &[
            BASE_NO_CREDENTIALS,
            "[pagerduty.accounts.a]\napi_token = \"secret-a\"\nregion = \"eu\"\n",
        ],
        &[],
    )
    .unwrap();
    assert_eq!(
        ok.pagerduty.accounts["a"].region,
        Some(pagerduty::Region::Eu)
    );
    assert!(!ok.to_redacted_toml().contains("secret-a"));

    let err = load_layers(
        &[BASE_NO_CREDENTIALS, "[backstage]\nprefix = \"/v1\"\n"],
        &[],
    )
    .unwrap_err();
    assert!(err.keys().contains(&"backstage.prefix"), "{err}");
}

#[test]
fn account_secrets_can_come_from_the_environment() {
    let toml = "[pagerduty.accounts.acme]\nis_default = true\n[pagerduty.accounts.corp]\napi_base_url = \"https://api.eu.pagerduty.com\"\n";
    let settings = load_layers(
        &[BASE_NO_CREDENTIALS, toml],
        &[
            (
                "DUTYCARD_PAGERDUTY__ACCOUNTS__ACME__API_TOKEN",
                "token-from-env-a",
            ),
            (
                "DUTYCARD_PAGERDUTY__ACCOUNTS__CORP__API_TOKEN",
                "token-from-env-c",
            ),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    use secrecy::ExposeSecret as _;
    let token = |id: &str| {
        settings.pagerduty.accounts[id]
            .connection
            .api_token
            .as_ref()
            .map(|t| t.expose_secret().to_owned())
    };
    assert_eq!(token("acme").as_deref(), Some("token-from-env-a"));
    assert_eq!(token("corp").as_deref(), Some("token-from-env-c"));
    let shown = settings.to_redacted_toml();
    assert!(!shown.contains("token-from-env"), "{shown}");
}

/// Settings from the defaults, test basics and a Backstage app-config,
/// with `env` for its `${VAR}`s (never the process environment).
fn with_app_config(
    path: &std::path::Path,
    env: &[(&str, &str)],
) -> Result<Settings, dutycard_server::config::ConfigError> {
    Settings::load(&ConfigSources {
        file: None,
        toml: vec![
            BASE_NO_CREDENTIALS.to_owned(),
            dutycard_server::config::app_config::settings_layer(path),
        ],
        env: Some(
            env.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>(),
        ),
    })
}

#[tokio::test]
async fn a_backstage_app_config_starts_the_server() {
    let sim = start_sim(small_sim()).await;
    let token = sim.api_token();
    let base = sim.base_url();
    let events = sim.events_base_url();
    let settings = with_app_config(
        &fixtures().join("app-config.yaml"),
        &[
            ("PAGERDUTY_TOKEN", &token),
            ("PAGERDUTY_API_URL", &base),
            ("PAGERDUTY_EVENTS_URL", &events),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        settings.pagerduty.connection.api_base_url.as_deref(),
        Some(base.as_str())
    );
    assert_eq!(
        settings.pagerduty.connection.events_base_url.as_deref(),
        Some(events.as_str())
    );
    assert!(settings.pagerduty.accounts.is_empty());
    let app = TestApp::spawn(settings).await;
    let (id, key, _) = pick_service(&sim);
    let (status, body) = get_json(&app, &format!("{P}/services?integration_key={key}")).await;
    assert_eq!((status, body["service"]["id"].clone()), (200, json!(id)));

    // A missing variable is an error naming the key, not an empty token.
    let err = with_app_config(&fixtures().join("app-config.yaml"), &[]).unwrap_err();
    assert!(err.keys().contains(&"pagerDuty.apiToken"), "{err}");
}

#[tokio::test]
async fn a_multi_account_app_config_with_oauth_starts_the_server() {
    let acme = start_sim(small_sim()).await;
    let (client_id, client_secret) = acme.oauth_client();
    let corp = corp_sim().await;
    let settings = with_app_config(
        &fixtures().join("app-config.accounts.yaml"),
        &[
            ("ACME_CLIENT_ID", &client_id),
            ("ACME_CLIENT_SECRET", &client_secret),
            ("ACME_API_URL", &acme.base_url()),
            ("ACME_IDENTITY_URL", &acme.oauth_token_url()),
            ("CORP_TOKEN", &corp.api_token()),
            ("CORP_API_URL", &corp.base_url()),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let ids: Vec<&String> = settings.pagerduty.accounts.keys().collect();
    assert_eq!(ids, ["acme", "corp"]);
    assert_eq!(
        settings.pagerduty.accounts["acme"].region,
        Some(pagerduty::Region::Eu)
    );
    let app = TestApp::spawn(settings).await;
    let (_, body) = get_json(&app, &format!("{P}/accounts")).await;
    assert_eq!(
        body,
        json!({"accounts": [{"id": "acme", "isDefault": false}, {"id": "corp", "isDefault": true}]})
    );
    let (acme_id, _, _) = pick_service(&acme);
    let (corp_id, _, _) = pick_service(&corp);
    assert_eq!(
        app.get(&format!("{P}/services/{corp_id}")).await.status(),
        200
    );
    assert_eq!(
        app.get(&format!("{P}/services/{acme_id}?account=acme"))
            .await
            .status(),
        200,
        "OAuth account"
    );
}

/// Counts nothing: the clients below are built, never used.
struct NoCalls;

impl pagerduty::CallObserver for NoCalls {
    fn on_call(&self, _: &pagerduty::CallRecord) {}
}

#[test]
fn an_eu_region_in_the_app_config_selects_the_eu_hosts() {
    const EU_API: &str = "https://api.eu.pagerduty.com";
    const EU_EVENTS: &str = "https://events.eu.pagerduty.com/v2";
    let env = [("EU_CLIENT_SECRET", "eu-secret"), ("US_TOKEN", "us-token")];
    let observer: std::sync::Arc<dyn pagerduty::CallObserver> = std::sync::Arc::new(NoCalls);

    // accounts[]: the EU OAuth account gets the EU hosts, the other the US ones.
    let settings = with_app_config(&fixtures().join("app-config.eu.yaml"), &env)
        .unwrap_or_else(|e| panic!("{e}"));
    let accounts = dutycard_server::accounts::Accounts::from_settings(&settings, observer.clone())
        .expect("clients built");
    let eu = accounts.get(Some("eu-oauth")).unwrap();
    assert_eq!(
        eu.client.region(),
        pagerduty::Region::Eu,
        "the OAuth scope's region"
    );
    assert_eq!(eu.client.api_base_url(), EU_API);
    assert_eq!(eu.client.events_base_url(), EU_EVENTS);
    let us = accounts.get(Some("us-token")).unwrap();
    assert_eq!(us.client.region(), pagerduty::Region::Us);
    assert_eq!(us.client.api_base_url(), "https://api.pagerduty.com");
    assert_eq!(
        us.client.events_base_url(),
        "https://events.pagerduty.com/v2"
    );

    // The legacy single-account block too.
    let settings = with_app_config(&fixtures().join("app-config.eu-legacy.yaml"), &env)
        .unwrap_or_else(|e| panic!("{e}"));
    let accounts = dutycard_server::accounts::Accounts::from_settings(&settings, observer)
        .expect("client built");
    let account = accounts.default_account();
    assert_eq!(account.client.region(), pagerduty::Region::Eu);
    assert_eq!(account.client.api_base_url(), EU_API);
    assert_eq!(account.client.events_base_url(), EU_EVENTS);
}

#[tokio::test]
async fn unknown_paths_under_the_prefix_answer_in_the_errors_envelope() {
    let SimApp { app, sim: _sim } = spawn_with_sim(small_sim(), "").await;
    let (status, body) = get_json(&app, &format!("{P}/no-such-route")).await;
    assert_eq!(status, 404);
    assert!(error_message(&body).contains("no-such-route"));
    let res = app
        .http
        .post(app.url(&format!("{P}/teams")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    let body: Value = res.json().await.unwrap();
    assert!(error_message(&body).contains("POST"));
}

#[test]
fn check_config_reads_a_backstage_app_config() {
    use clap::Parser as _;
    let run = |app_config: &str| {
        let cli = dutycard_server::cli::Cli::parse_from([
            "dutycard".to_owned(),
            "check-config".to_owned(),
            "--config".to_owned(),
            fixtures().join("dutycard.toml").display().to_string(),
            "--backstage-config".to_owned(),
            fixtures().join(app_config).display().to_string(),
        ]);
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(dutycard_server::cli::run(cli))
    };
    assert_eq!(
        run("app-config.literal.yaml"),
        std::process::ExitCode::SUCCESS
    );
    assert_eq!(
        run("no-such-app-config.yaml"),
        std::process::ExitCode::from(2)
    );
}

async fn post_json(app: &TestApp, path: &str, body: &Value) -> (u16, Value) {
    let res = app
        .http
        .post(app.url(path))
        .json(body)
        .send()
        .await
        .expect("request sent");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_server_side_trigger_route_uses_the_cards_body_and_the_trigger_machinery() {
    let SimApp { app, sim } = spawn_with_sim(small_sim(), "").await;
    let (id, _) = crate::trigger::triggerable_service(&sim);
    let description = "Checkout is failing (backstage e2e)";
    let (status, body) = post_json(
        &app,
        &format!("{P}/services/{id}/incidents"),
        &json!({"description": description, "userName": "guest"}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "success");
    let dedup_key = body["dedup_key"].as_str().expect("dedup_key").to_owned();
    let account = sim.account();
    let incident = account
        .incidents
        .iter()
        .find(|i| i.incident_key == dedup_key)
        .expect("the incident PagerDuty opened");
    assert_eq!(incident.service_id, id);
    assert_eq!(incident.title, description);
    assert_eq!(
        incident.urgency, "high",
        "severity error, as the card sends"
    );

    // The next incidents read shows it (the trigger invalidates the section).
    let (_, body) = get_json(&app, &format!("{P}/services/{id}/incidents")).await;
    assert!(
        body["incidents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["title"] == description)
    );

    // Errors in the errors envelope: a missing description, an unknown field,
    // an unknown service, an unknown account.
    for (path, body, expected) in [
        (
            format!("{P}/services/{id}/incidents"),
            json!({"description": " "}),
            400,
        ),
        (
            format!("{P}/services/{id}/incidents"),
            json!({"summary": "x"}),
            400,
        ),
        (
            format!("{P}/services/PNOSUCH/incidents"),
            json!({"description": "x"}),
            404,
        ),
        (
            format!("{P}/services/{id}/incidents?account=nope"),
            json!({"description": "x"}),
            400,
        ),
    ] {
        let (status, answer) = post_json(&app, &path, &body).await;
        assert_eq!(status, expected, "{path} {body}: {answer}");
        assert!(!error_message(&answer).is_empty());
    }
}

#[tokio::test]
async fn the_trigger_goes_to_the_accounts_own_events_host() {
    let (acme, corp, app) = two_accounts().await;
    let (corp_id, _) = crate::trigger::triggerable_service(&corp);
    let (status, body) = post_json(
        &app,
        &format!("{P}/services/{corp_id}/incidents?account=eu-corp"),
        &json!({"description": "EU checkout down", "userName": "guest"}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(corp.stats().count("POST", crate::trigger::ENQUEUE), 1);
    assert_eq!(acme.stats().count("POST", crate::trigger::ENQUEUE), 0);
    let dedup_key = body["dedup_key"].as_str().unwrap();
    assert!(
        corp.account()
            .incidents
            .iter()
            .any(|i| i.incident_key == dedup_key && i.service_id == corp_id)
    );
}

#[tokio::test]
async fn each_accounts_pages_are_read_independently() {
    // 120 and 104 escalation policies: two pages each. The Node backend
    // shared one offset between the accounts' loops and lost pages.
    let big = start_sim(sim::SimConfig {
        seed: 3,
        services: 150,
        ..sim::SimConfig::default()
    })
    .await;
    let other = start_sim(sim::SimConfig {
        seed: 4,
        services: 130,
        ..sim::SimConfig::default()
    })
    .await;
    let toml = accounts_toml(&[("big", &big, true), ("other", &other, false)]);
    let app = TestApp::spawn(settings_from(&[BASE_NO_CREDENTIALS, &toml], &[])).await;
    let (status, body) = get_json(&app, &format!("{P}/escalation_policies")).await;
    assert_eq!(status, 200);
    let values: BTreeSet<String> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["value"].as_str().unwrap().to_owned())
        .collect();
    let expected: BTreeSet<String> = big
        .account()
        .escalation_policies
        .iter()
        .chain(other.account().escalation_policies.iter())
        .map(|p| p.id.clone())
        .collect();
    assert!(expected.len() > 200, "{}", expected.len());
    assert_eq!(values, expected);
    assert_eq!(big.stats().count("GET", "/escalation_policies"), 2);
    assert_eq!(other.stats().count("GET", "/escalation_policies"), 2);
}

#[tokio::test]
async fn integration_keys_can_be_kept_out_of_the_answers() {
    let SimApp { app, sim } =
        spawn_with_sim(small_sim(), "[backstage]\nintegration_keys = \"omit\"\n").await;
    let (id, key, _) = pick_service(&sim);
    let mut answers = Vec::new();
    for path in [
        format!("{P}/services/{id}"),
        format!("{P}/services?integration_key={key}"),
        format!("{P}/services"),
        format!("{P}/services?query=a"),
    ] {
        let (status, body) = get_json(&app, &path).await;
        assert_eq!(status, 200, "{path}");
        answers.push(body);
    }
    let text = serde_json::to_string(&answers).unwrap();
    assert!(!text.contains("integration_key"), "{text}");
    assert!(!text.contains(&key));
    assert!(
        answers[0]["service"]["integrations"]
            .as_array()
            .is_some_and(|i| !i.is_empty())
    );
}
