//! Shared helpers: start a simulator with a fixed clock, call it.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use reqwest::header::HeaderMap;
use serde_json::Value;
use sim::{Sim, SimConfig, SimHandle};

/// The fixed clock base of the tests.
pub fn fixed_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

/// 30 services, fixed clock, seed 42.
pub fn config() -> SimConfig {
    SimConfig {
        services: 30,
        now: Some(fixed_now()),
        ..SimConfig::default()
    }
}

pub async fn start(config: SimConfig) -> SimHandle {
    tokio::time::timeout(Duration::from_secs(20), Sim::start(config))
        .await
        .expect("start in time")
        .expect("start")
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

async fn read(resp: reqwest::Response) -> Resp {
    Resp {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        text: resp.text().await.unwrap(),
    }
}

/// GET `path_and_query` with `Authorization: Token token=<token>`.
pub async fn get_with(sim: &SimHandle, token: &str, path_and_query: &str) -> Resp {
    let resp = http()
        .get(format!("{}{}", sim.base_url(), path_and_query))
        .header("Accept", "application/vnd.pagerduty+json;version=2")
        .header("Authorization", format!("Token token={token}"))
        .send()
        .await
        .unwrap();
    read(resp).await
}

/// GET with the simulator's all-scopes API token.
pub async fn get(sim: &SimHandle, path_and_query: &str) -> Resp {
    get_with(sim, &sim.api_token(), path_and_query).await
}

/// GET returning JSON, asserting 200.
pub async fn get_ok(sim: &SimHandle, path_and_query: &str) -> Value {
    let r = get(sim, path_and_query).await;
    assert_eq!(r.status, 200, "{path_and_query}: {}", r.text);
    r.json()
}

/// POST a JSON body with the API token.
pub async fn post_json(sim: &SimHandle, path: &str, body: &Value) -> Resp {
    let resp = http()
        .post(format!("{}{}", sim.base_url(), path))
        .header("Authorization", format!("Token token={}", sim.api_token()))
        .json(body)
        .send()
        .await
        .unwrap();
    read(resp).await
}

/// `method` `path` with the API token and an optional JSON body.
pub async fn call(sim: &SimHandle, method: &str, path: &str, body: Option<&Value>) -> Resp {
    let mut req = http()
        .request(
            method.parse().unwrap(),
            format!("{}{}", sim.base_url(), path),
        )
        .header("Authorization", format!("Token token={}", sim.api_token()));
    if let Some(b) = body {
        req = req.json(b);
    }
    read(req.send().await.unwrap()).await
}

/// POST a raw body without auth (Events API).
pub async fn post_raw(sim: &SimHandle, path: &str, body: &str) -> Resp {
    let resp = http()
        .post(format!("{}{}", sim.base_url(), path))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    read(resp).await
}

pub fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect()
}
