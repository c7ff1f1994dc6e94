//! Replicas on Redis when Redis goes away (issue 17): a replica that starts
//! without it, Redis stopped mid-run (every kind of request still answered
//! within a bound, `/readyz` and `/metrics` saying `degraded-local` for
//! every part, sharing back by itself), and no 429 storm: replicas without
//! Redis keep to their share of the account's rate.

use std::time::{Duration, Instant};

use dutycard_server::webhooks::signature::sign;
use serde_json::{Value, json};

use crate::helpers::{TestApp, small_sim, spawn_on_sim, start_sim};
use crate::redis_server::RedisServer;
use crate::replicas::{
    SECRET, WAIT, card, card_calls, counter, readyz, replicas, service_ids, shared_env, wait_mode,
};

/// The most any request may take while Redis is down: Redis's part of it
/// is a few call timeouts (100 ms each), the rest is PagerDuty's.
const ANSWERED_WITHIN: Duration = Duration::from_secs(5);

/// Polls `/readyz` (bounded) until `shared.<part>` is `mode`.
async fn wait_part(app: &TestApp, part: &str, mode: &str) -> Value {
    let started = Instant::now();
    loop {
        let (_, report) = readyz(app).await;
        if report["shared"][part] == mode {
            return report;
        }
        assert!(
            started.elapsed() < WAIT,
            "shared.{part} never became {mode}: {report}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn has(metrics: &str, line: &str) -> bool {
    metrics.lines().any(|l| l == line)
}

#[tokio::test]
async fn a_replica_starts_without_redis_serves_cards_and_shares_once_redis_answers() {
    let mut redis = RedisServer::start();
    redis.stop();
    let sim = start_sim(small_sim()).await;
    let app = spawn_on_sim(&sim, "", &shared_env(&redis.url(), 2)).await;
    let report = wait_mode(&app, "degraded-local").await;
    assert_eq!(report["shared"]["cache"], "degraded-local", "{report}");
    // The trigger's store starts local too: it shares only once Redis
    // has answered its ping, whether or not a trigger was asked.
    assert_eq!(report["shared"]["trigger"], "degraded-local", "{report}");
    let id = &service_ids(&sim)[0];
    assert_eq!(card(&app, id).await.status(), 200);

    redis.run();
    let report = wait_mode(&app, "shared").await;
    assert_eq!(report["shared"]["budgets"]["default"], "shared", "{report}");
    assert_eq!(report["shared"]["trigger"], "shared", "{report}");
    let metrics = app.metrics().await;
    for line in [
        "dutycard_shared_mode{mode=\"shared\"} 1",
        "dutycard_shared_trigger_mode{mode=\"shared\"} 1",
        "dutycard_shared_budget_mode{account=\"default\",mode=\"shared\"} 1",
    ] {
        assert!(has(&metrics, line), "{line} in {metrics}");
    }
}

/// A signed `incident.triggered` webhook for `service`.
fn webhook(app: &TestApp, service: &str, n: u32) -> reqwest::RequestBuilder {
    let body = json!({"event": {
        "id": format!("01OUTAGE{n}"), "event_type": "incident.triggered", "resource_type": "incident",
        "occurred_at": chrono::Utc::now().to_rfc3339(),
        "data": {"id": format!("Q{n}"), "type": "incident", "service": {"id": service, "type": "service_reference"}},
    }})
    .to_string();
    app.http
        .post(app.url("/v1/webhooks/pagerduty"))
        .header("content-type", "application/json")
        .header("X-Webhook-Id", format!("outage-w{n}"))
        .header("X-PagerDuty-Signature", sign(SECRET, body.as_bytes()))
        .body(body)
}

/// `request`, answered within [`ANSWERED_WITHIN`] (reqwest's timeout
/// fails it otherwise): its status.
async fn answered(what: &str, request: reqwest::RequestBuilder) -> (u16, Value) {
    let started = Instant::now();
    let response = request
        .timeout(ANSWERED_WITHIN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{what} answered within {ANSWERED_WITHIN:?}: {e}"));
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    assert!(started.elapsed() < ANSWERED_WITHIN, "{what}");
    (status, body)
}

#[tokio::test]
async fn redis_stopped_mid_run_every_request_is_answered_and_sharing_comes_back() {
    let mut redis = RedisServer::start();
    let sim = start_sim(sim::SimConfig {
        rate_limit_per_minute: Some(960),
        ..small_sim()
    })
    .await;
    let extra = format!("[webhooks]\nsecrets = [\"{SECRET}\"]\n");
    let apps = replicas(&sim, &redis.url(), 2, &extra).await;
    let ids = service_ids(&sim);
    for id in &ids[..4] {
        assert_eq!(card(&apps[0], id).await.status(), 200);
    }

    redis.stop();
    // Cards of both replicas, cached and cold, while Redis is gone.
    for round in 0..3 {
        for (i, id) in ids[..ids.len() - 1].iter().enumerate() {
            let app = &apps[(i + round) % 2];
            let r = card(app, id).await;
            assert_eq!(r.status(), 200, "{id} on replica {}", (i + round) % 2);
        }
    }
    for app in &apps {
        let report = wait_mode(app, "degraded-local").await;
        assert_eq!(report["shared"]["cache"], "degraded-local", "{report}");
        assert_eq!(
            report["shared"]["budgets"]["default"], "degraded-local",
            "{report}"
        );
        // No trigger was asked yet: the trigger's own ping tells.
        wait_part(app, "trigger", "degraded-local").await;
    }

    // A trigger, its retry on the other replica, a page of cards and a
    // signed webhook: each answered, within the bound.
    let (service, _) = crate::trigger::triggerable_service(&sim);
    let trigger = json!({"service_id": service, "summary": "checkout is down (Redis away)"});
    for (n, app) in apps.iter().enumerate() {
        let request = app
            .http
            .post(app.url("/v1/incidents"))
            .header("Idempotency-Key", "outage-click-1")
            .json(&trigger);
        let (status, body) = answered(&format!("a trigger on replica {n}"), request).await;
        assert_eq!(status, 202, "{body}");
    }
    let page: Vec<&String> = ids.iter().take(6).collect();
    let request = apps[1]
        .http
        .post(apps[1].url("/v1/cards/batch"))
        .json(&json!({ "service_ids": page }));
    let (status, body) = answered("a page of cards", request).await;
    assert_eq!(status, 200, "{body}");
    let cards = body["cards"].as_array().expect("cards");
    assert_eq!(cards.len(), 6, "{body}");
    assert!(cards.iter().all(|c| c["status"] == 200), "{body}");
    let (status, body) = answered("a webhook", webhook(&apps[0], &service, 1)).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(sim.stats().rate_limited(), 0, "no 429 from PagerDuty");

    // `/metrics` says which part is local, and what Redis's absence cost.
    for app in &apps {
        let metrics = app.metrics().await;
        for line in [
            "dutycard_shared_mode{mode=\"degraded-local\"} 1",
            "dutycard_shared_trigger_mode{mode=\"degraded-local\"} 1",
            "dutycard_shared_budget_mode{account=\"default\",mode=\"degraded-local\"} 1",
            "dutycard_shared_budget_mode{account=\"default\",mode=\"shared\"} 0",
        ] {
            assert!(has(&metrics, line), "{line} in {metrics}");
        }
        for series in [
            "dutycard_shared_trigger_fallbacks_total",
            "dutycard_shared_budget_redis_errors_total{account=\"default\"}",
        ] {
            assert!(counter(&metrics, series) > 0, "{series} in {metrics}");
        }
    }

    redis.run();
    for app in &apps {
        let report = wait_mode(app, "shared").await;
        assert_eq!(report["shared"]["trigger"], "shared", "{report}");
        let metrics = app.metrics().await;
        for line in [
            "dutycard_shared_trigger_mode{mode=\"shared\"} 1",
            "dutycard_shared_budget_mode{account=\"default\",mode=\"shared\"} 1",
        ] {
            assert!(has(&metrics, line), "{line} in {metrics}");
        }
    }
    // Shared again: a card neither replica has read is loaded once.
    let cold = &ids[ids.len() - 1];
    assert_eq!(card(&apps[1], cold).await.status(), 200);
    let calls = card_calls(&sim);
    assert_eq!(card(&apps[0], cold).await.status(), 200);
    assert_eq!(
        card_calls(&sim),
        calls,
        "a hit from Redis on the other replica"
    );
}

/// The account's rate, per minute: the simulator's limiter and the
/// client's budget both.
const RATE: u32 = 120;
/// How long the load runs with Redis stopped. At the whole rate each, three
/// replicas could make 3 × (2 + 120 × 25/60) = 156 calls in that time, past
/// the simulator's 120 a minute; at their share (40 a minute, bursts of 1)
/// at most 3 × (1 + 40 × 25/60) = 53.
const OUTAGE_LOAD: Duration = Duration::from_secs(25);

/// Pages of cards on `app` until `until`, two at a time, each 8 of `ids`
/// in turn (from `offset`): every page answered 200 (cards the budget held
/// back carry their own status).
async fn load(app: &TestApp, ids: &[String], offset: usize, until: Instant) {
    let pages = (0..2).map(|lane| async move {
        let mut next = offset + lane * 8;
        while Instant::now() < until {
            let page: Vec<&String> = (0..8).map(|k| &ids[(next + k) % ids.len()]).collect();
            next += 16;
            let r = app
                .http
                .post(app.url("/v1/cards/batch"))
                .json(&json!({ "service_ids": page }))
                .timeout(Duration::from_secs(15))
                .send()
                .await
                .expect("a page answered within 15 s");
            assert_eq!(r.status(), 200);
        }
    });
    futures::future::join_all(pages).await;
}

/// No 429 storm: with Redis stopped, three replicas under more load than
/// the account's rate keep to their share of it (`rate / shared.replicas`),
/// so together they stay under the simulator's limiter, which counts one
/// 60-second window from the first call (this test runs within it).
#[tokio::test]
async fn with_redis_stopped_three_replicas_keep_to_their_share_and_earn_no_429() {
    let mut redis = RedisServer::start();
    let sim = start_sim(sim::SimConfig {
        services: 40,
        rate_limit_per_minute: Some(RATE),
        ..small_sim()
    })
    .await;
    // Sections fresh for a second only and small batches: the pages ask
    // for far more calls than the rate allows, all the time.
    let extra = "[cache]\nservice_ttl_secs = 1\nincidents_ttl_secs = 1\noncall_ttl_secs = 1\n\
                 change_events_ttl_secs = 1\nbatch_max_size = 4\n";
    let mut env = shared_env(&redis.url(), 3);
    env.push((
        "DUTYCARD_PAGERDUTY__RATE_LIMIT_PER_MINUTE".into(),
        RATE.to_string(),
    ));
    let mut apps = Vec::new();
    for _ in 0..3 {
        apps.push(spawn_on_sim(&sim, extra, &env).await);
    }
    for app in &apps {
        wait_mode(app, "shared").await;
    }
    let started = Instant::now();
    redis.stop();
    let ids = service_ids(&sim);
    let before = card_calls(&sim);
    let until = Instant::now() + OUTAGE_LOAD;
    let loads = apps
        .iter()
        .enumerate()
        .map(|(n, app)| load(app, &ids, n * 13, until));
    futures::future::join_all(loads).await;
    let calls = card_calls(&sim) - before;
    let stats = sim.stats();
    eprintln!(
        "no 429 storm: {calls} card calls in {:?} with Redis stopped, {} in all, {} rate limited",
        started.elapsed(),
        stats.total(),
        stats.rate_limited()
    );
    assert!(
        started.elapsed() < Duration::from_secs(55),
        "within the simulator's first window"
    );
    assert_eq!(stats.rate_limited(), 0, "no 429 from the limiter");
    // The load did use the replicas' shares (so the limiter was tested).
    assert!(calls >= 30, "{calls} calls");
    for app in &apps {
        let report = wait_mode(app, "degraded-local").await;
        assert_eq!(
            report["shared"]["budgets"]["default"], "degraded-local",
            "{report}"
        );
    }
}
