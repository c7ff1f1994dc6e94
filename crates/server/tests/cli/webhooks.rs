//! `dutycard webhooks …` against a simulator, and the demo's live cards.

use std::time::Duration;

use super::{Running, dutycard};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn webhooks_subscribe_writes_the_secret_0600_and_list_ping_delete_manage_it() {
    let rt = runtime();
    let sim = rt
        .block_on(sim::Sim::start(sim::SimConfig {
            port: 0,
            workers: 1,
            services: 3,
            ..sim::SimConfig::default()
        }))
        .unwrap();
    let (base, token) = (sim.base_url(), sim.api_token());
    let env = [
        ("DUTYCARD_SERVER__AUTH__MODE", "none"),
        ("DUTYCARD_PAGERDUTY__API_BASE_URL", base.as_str()),
        ("DUTYCARD_PAGERDUTY__API_TOKEN", token.as_str()),
    ];
    let dir = std::env::temp_dir().join(format!("dutycard-cli-webhooks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("secret");
    let file_arg = file.display().to_string();

    let out = dutycard(
        &[
            "webhooks",
            "subscribe",
            "--url",
            "https://dutycard.example/v1/webhooks/pagerduty",
            "--secret-file",
            &file_arg,
        ],
        &env,
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secret = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        secret.trim().len(),
        64,
        "the simulator's secrets are 64 characters"
    );
    assert!(
        !stdout.contains(secret.trim()),
        "written, not printed: {stdout}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let id = stdout
        .split_whitespace()
        .skip_while(|w| *w != "subscription")
        .nth(1)
        .expect("the subscription id")
        .to_owned();

    let list = dutycard(&["webhooks", "list"], &env);
    let listed = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(
        listed.contains(&id) && listed.contains("https://dutycard.example/"),
        "{listed}"
    );
    assert!(!listed.contains(secret.trim()));

    let ping = dutycard(&["webhooks", "ping", &id], &env);
    assert!(
        ping.status.success(),
        "{}",
        String::from_utf8_lossy(&ping.stderr)
    );
    assert!(
        sim.webhooks()
            .deliveries
            .iter()
            .any(|d| d.event_type == "pagey.ping")
    );

    // Printed once when no file is given.
    let printed = dutycard(
        &[
            "webhooks",
            "subscribe",
            "--url",
            "https://dutycard.example/second",
        ],
        &env,
    );
    assert!(printed.status.success());
    let text = String::from_utf8_lossy(&printed.stdout);
    assert!(text.lines().any(|l| l.trim().len() == 64), "{text}");

    let delete = dutycard(&["webhooks", "delete", &id], &env);
    assert!(
        delete.status.success(),
        "{}",
        String::from_utf8_lossy(&delete.stderr)
    );
    assert!(sim.webhooks().subscriptions.iter().all(|s| s.id != id));
    let again = dutycard(&["webhooks", "delete", &id], &env);
    assert!(!again.status.success(), "a second delete is a 404");

    // A bad URL is refused before PagerDuty is called.
    let bad = dutycard(&["webhooks", "subscribe", "--url", "ftp://x"], &env);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--url"));
    std::fs::remove_dir_all(&dir).ok();
    rt.block_on(sim.shutdown());
}

/// `--account ID`: the subscription is made in that account, and its URL
/// routes deliveries to that account's secrets (`/v1/webhooks/pagerduty/ID`).
#[test]
fn subscribe_for_another_account_routes_its_url_to_that_accounts_secrets() {
    let rt = runtime();
    let start = || {
        rt.block_on(sim::Sim::start(sim::SimConfig {
            port: 0,
            workers: 1,
            services: 3,
            ..sim::SimConfig::default()
        }))
        .unwrap()
    };
    let (home, eu) = (start(), start());
    let dir = std::env::temp_dir().join(format!("dutycard-cli-accounts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("dutycard.toml");
    let mut toml = String::new();
    for (id, sim, is_default) in [("home", &home, true), ("eu", &eu, false)] {
        toml.push_str(&format!(
            "[pagerduty.accounts.{id}]\napi_token = \"{}\"\napi_base_url = \"{}\"\nis_default = {is_default}\n",
            sim.api_token(),
            sim.base_url(),
        ));
    }
    std::fs::write(&config, toml).unwrap();
    let config_arg = config.display().to_string();
    let env = [("DUTYCARD_SERVER__AUTH__MODE", "none")];
    let intake = "https://dutycard.example/v1/webhooks/pagerduty";
    let subscribe = |extra: &[&str]| {
        let mut args = vec!["webhooks", "--config", &config_arg, "subscribe", "--url"];
        args.extend_from_slice(extra);
        let out = dutycard(&args, &env);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let urls = |sim: &sim::SimHandle| -> Vec<String> {
        sim.webhooks()
            .subscriptions
            .iter()
            .map(|s| s.url.clone())
            .collect()
    };

    let (ok, out) = subscribe(&[intake, "--account", "eu"]);
    assert!(ok, "{out}");
    assert!(out.contains("[webhooks.accounts.eu]"), "{out}");
    assert_eq!(
        urls(&eu),
        [format!("{intake}/eu")],
        "made in eu, routed to eu"
    );
    assert!(urls(&home).is_empty());
    // Already naming the account: kept as given.
    let named = format!("{intake}?account=eu");
    let (ok, out) = subscribe(&[&named, "--account", "eu"]);
    assert!(ok, "{out}");
    assert_eq!(urls(&eu)[1], named);
    // Naming another account: refused before PagerDuty is called.
    let (ok, out) = subscribe(&[&format!("{intake}/home"), "--account", "eu"]);
    assert!(!ok && out.contains("names account `home`"), "{out}");
    assert_eq!(urls(&eu).len(), 2);
    // The default account's URL is the intake as given.
    let (ok, out) = subscribe(&[intake]);
    assert!(ok, "{out}");
    assert_eq!(urls(&home), [intake.to_owned()]);
    std::fs::remove_dir_all(&dir).ok();
    rt.block_on(home.shutdown());
    rt.block_on(eu.shutdown());
}

/// The demo subscribes itself: a trigger at its simulator is delivered to
/// dutycard and accepted (its signature verifies).
#[test]
fn demo_subscribes_itself_so_its_cards_are_live() {
    let demo = Running::start(&["demo", "--port", "0", "--services", "5"], &[]);
    let live = demo.line_with("live:", Duration::from_secs(60));
    assert!(live.contains("/stream"), "{live}");
    let sim_line = demo.line_with("simulated PagerDuty at", Duration::from_secs(5));
    let sim_base = sim_line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_owned();
    let rt = runtime();
    rt.block_on(async {
        let http = reqwest::Client::new();
        let services: serde_json::Value = http
            .get(format!("{sim_base}/services?include[]=integrations"))
            .header(
                "Authorization",
                format!("Token token={}", sim::DEFAULT_API_TOKEN),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or_default();
        let key = services["services"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| s["integrations"].as_array().cloned().unwrap_or_default())
            .find_map(|i| i["integration_key"].as_str().map(str::to_owned));
        let Some(key) = key else {
            panic!("no integration key in {services}");
        };
        let r = http
            .post(format!("{sim_base}/v2/enqueue"))
            .json(
                &serde_json::json!({"routing_key": key, "event_action": "trigger",
                "payload": {"summary": "demo live", "source": "cli-test", "severity": "error"}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        // The simulator's delivery log: delivered = dutycard answered 2xx.
        let delivered = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let log: serde_json::Value = http
                    .get(format!("{sim_base}/__sim/webhooks"))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let found =
                    log["deliveries"].as_array().into_iter().flatten().any(|d| {
                        d["event_type"] == "incident.triggered" && d["state"] == "delivered"
                    });
                if found {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(
            delivered.is_ok(),
            "the demo accepted the simulator's signed webhook"
        );
    });
}

/// `webhooks.enabled = false`: the demo makes no subscription (its
/// deliveries would all be refused) and says no card is live.
#[test]
fn demo_with_webhooks_disabled_subscribes_nothing() {
    let demo = Running::start(
        &["demo", "--port", "0", "--services", "3"],
        &[("DUTYCARD_WEBHOOKS__ENABLED", "false")],
    );
    let sim_line = demo.line_with("simulated PagerDuty at", Duration::from_secs(60));
    let sim_base = sim_line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_owned();
    let rt = runtime();
    let log: serde_json::Value = rt.block_on(async {
        reqwest::get(format!("{sim_base}/__sim/webhooks"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(log["subscriptions"], serde_json::json!([]), "{log}");
}
