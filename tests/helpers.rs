//! Spawning the app on port 0 (zero2prod's `spawn_app`).

use std::collections::HashMap;
use std::time::Duration;

use dutycard_server::config::{ConfigError, ConfigSources, Settings};
use dutycard_server::startup::Application;

/// Test basics without credentials: auth off, one worker, port 0, no retries.
pub const BASE_NO_CREDENTIALS: &str = r#"
[server]
port = 0
workers = 1
log_format = "pretty"
[server.auth]
mode = "none"
[pagerduty]
max_attempts = 1
[store]
url = "sqlite::memory:"
"#;

/// The smallest valid configuration: [`BASE_NO_CREDENTIALS`] plus a
/// placeholder API token. Tests add their own TOML after it.
pub const BASE_TOML: &str = r#"
[server]
port = 0
workers = 1
log_format = "pretty"
[server.auth]
mode = "none"
[pagerduty]
max_attempts = 1
api_token = "test-token"
[store]
url = "sqlite::memory:"
"#;

/// Load settings from TOML layers (in order) and `env`.
pub fn load_layers(layers: &[&str], env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Settings::load(&ConfigSources {
        file: None,
        toml: layers.iter().map(|l| l.to_string()).collect(),
        env: Some(env),
    })
}

/// Load settings from `BASE_TOML` + `extra` TOML + `env`, never reading the
/// process environment.
pub fn load(extra: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    load_layers(&[BASE_TOML, extra], env)
}

/// Like [`load`] but panics with the problems when invalid.
pub fn settings(extra: &str, env: &[(&str, &str)]) -> Settings {
    load(extra, env).unwrap_or_else(|e| panic!("test settings are invalid: {e}"))
}

/// A running app and an HTTP client for it.
pub struct TestApp {
    pub address: String,
    pub http: reqwest::Client,
    handle: actix_web::dev::ServerHandle,
}

impl TestApp {
    pub async fn spawn(settings: Settings) -> TestApp {
        let app = Application::build(settings).await.expect("app builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        let handle = app.handle();
        tokio::spawn(app.run_until_stopped());
        TestApp {
            address,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("reqwest client"),
            handle,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    /// Stop the server; `graceful` lets in-flight requests finish.
    pub async fn stop(&self, graceful: bool) {
        self.handle.stop(graceful).await;
    }

    pub async fn metrics(&self) -> String {
        self.get("/metrics")
            .await
            .text()
            .await
            .expect("metrics body")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        // Best effort: stop the workers when the test's runtime still runs.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { handle.stop(false).await });
        }
    }
}

/// Read a JSON error body and return (code, details).
pub async fn error_of(response: reqwest::Response) -> (String, serde_json::Value) {
    let body: serde_json::Value = response.json().await.expect("JSON error body");
    let error = &body["error"];
    assert!(error["message"].is_string(), "no message in {body}");
    (
        error["code"].as_str().expect("error.code").to_owned(),
        error["details"].clone(),
    )
}

/// A running simulator and an app pointed at it.
pub struct SimApp {
    pub app: TestApp,
    pub sim: sim::SimHandle,
}

/// Start the simulator with `sim_config`, then the app with `extra` TOML and
/// the simulator's URLs and token.
pub async fn spawn_with_sim(sim_config: sim::SimConfig, extra: &str) -> SimApp {
    spawn_with_sim_token(sim_config, extra, None).await
}

/// Like [`spawn_with_sim`], sending `token` instead of the simulator's.
pub async fn spawn_with_sim_token(
    sim_config: sim::SimConfig,
    extra: &str,
    token: Option<&str>,
) -> SimApp {
    let sim = start_sim(sim_config).await;
    let token = token.map_or_else(|| sim.api_token(), str::to_owned);
    let mut env = sim_env(&sim);
    env.push(("DUTYCARD_PAGERDUTY__API_TOKEN".into(), token));
    let app = TestApp::spawn(settings_from(&[BASE_TOML, extra], &env)).await;
    SimApp { app, sim }
}

/// The simulator on port 0.
pub async fn start_sim(sim_config: sim::SimConfig) -> sim::SimHandle {
    sim::Sim::start(sim::SimConfig {
        port: 0,
        workers: 1,
        ..sim_config
    })
    .await
    .expect("simulator starts")
}

/// The environment variables pointing the app at `sim` (no credentials).
pub fn sim_env(sim: &sim::SimHandle) -> Vec<(String, String)> {
    vec![
        ("DUTYCARD_PAGERDUTY__API_BASE_URL".into(), sim.base_url()),
        (
            "DUTYCARD_PAGERDUTY__EVENTS_BASE_URL".into(),
            sim.events_base_url(),
        ),
        (
            "DUTYCARD_PAGERDUTY__OAUTH_TOKEN_URL".into(),
            sim.oauth_token_url(),
        ),
    ]
}

/// Valid settings from TOML layers and owned env pairs.
pub fn settings_from(layers: &[&str], env: &[(String, String)]) -> Settings {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    load_layers(layers, &env).unwrap_or_else(|e| panic!("test settings are invalid: {e}"))
}

/// A small seeded account: fast to generate, deterministic.
pub fn small_sim() -> sim::SimConfig {
    sim::SimConfig {
        seed: 7,
        services: 12,
        ..sim::SimConfig::default()
    }
}

/// Another app on the running simulator `sim` (one replica of several):
/// `extra` TOML and `env` over the simulator's URLs and token.
pub async fn spawn_on_sim(sim: &sim::SimHandle, extra: &str, env: &[(String, String)]) -> TestApp {
    let mut all = sim_env(sim);
    all.push(("DUTYCARD_PAGERDUTY__API_TOKEN".into(), sim.api_token()));
    all.extend(env.iter().cloned());
    TestApp::spawn(settings_from(&[BASE_TOML, extra], &all)).await
}

/// `method path` with an optional JSON body: the status and the body as
/// JSON (a body that is not JSON as a JSON string).
pub async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut request = app.http.request(method, app.url(path));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let res = request.send().await.expect("request sent");
    let status = res.status().as_u16();
    let text = res.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}
