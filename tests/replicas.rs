//! Several replicas on one Redis (issue 17): two or three app instances in
//! this process, against one simulator, sharing a real `redis-server`
//! through `[shared]`: the card cache (a card one replica loaded is a hit
//! on the others; one load per key across replicas), invalidations (a
//! webhook or a trigger on one replica reaches a stream held on another),
//! the PagerDuty budget, trigger idempotency. What happens when Redis
//! stops and comes back is in `replicas_outage`.

use std::time::{Duration, Instant};

use dutycard_server::webhooks::signature::sign;
use serde_json::{Value, json};

use crate::helpers::{TestApp, small_sim, spawn_on_sim, start_sim};
use crate::live::{Sse, open_incidents};
use crate::redis_server::RedisServer;

/// Every wait of these tests is bounded by this.
pub(crate) const WAIT: Duration = Duration::from_secs(15);
pub(crate) const SECRET: &str = "replica-webhook-secret-0123456789";
/// Sections fresh for 5 minutes: a change can only come from an invalidation.
pub(crate) const LONG_TTLS: &str = "[cache]\nincidents_ttl_secs = 300\noncall_ttl_secs = 300\n";

pub(crate) fn shared_env(redis_url: &str, replicas: u32) -> Vec<(String, String)> {
    vec![
        ("DUTYCARD_SHARED__REDIS_URL".into(), redis_url.to_owned()),
        ("DUTYCARD_SHARED__REPLICAS".into(), replicas.to_string()),
    ]
}

/// `n` replicas of the app on `sim`, sharing `redis_url`, each shared.
pub(crate) async fn replicas(
    sim: &sim::SimHandle,
    redis_url: &str,
    n: u32,
    extra: &str,
) -> Vec<TestApp> {
    let env = shared_env(redis_url, n);
    let mut apps = Vec::new();
    for _ in 0..n {
        apps.push(spawn_on_sim(sim, extra, &env).await);
    }
    for app in &apps {
        wait_mode(app, "shared").await;
    }
    apps
}

pub(crate) async fn readyz(app: &TestApp) -> (u16, Value) {
    let r = app.get("/readyz").await;
    let status = r.status().as_u16();
    (status, r.json().await.expect("readyz JSON"))
}

/// Polls `/readyz` (bounded) until `shared.mode` is `mode`; readiness holds
/// meanwhile (the cards are served in both modes).
pub(crate) async fn wait_mode(app: &TestApp, mode: &str) -> Value {
    let started = Instant::now();
    loop {
        let (status, report) = readyz(app).await;
        if report["shared"]["mode"] == mode {
            assert_eq!(status, 200, "ready in either mode: {report}");
            assert_eq!(report["ready"], true, "{report}");
            return report;
        }
        assert!(
            started.elapsed() < WAIT,
            "shared.mode never became {mode}: {report}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Upstream calls for cards: every simulator request but the readiness
/// checks' `GET /abilities`.
pub(crate) fn card_calls(sim: &sim::SimHandle) -> u64 {
    let stats = sim.stats();
    stats.total() - stats.count("GET", "/abilities")
}

pub(crate) fn service_ids(sim: &sim::SimHandle) -> Vec<String> {
    sim.account()
        .services
        .iter()
        .map(|s| s.id.clone())
        .collect()
}

pub(crate) async fn card(app: &TestApp, id: &str) -> reqwest::Response {
    app.get(&format!("/v1/cards/{id}")).await
}

/// A counter's value in a `/metrics` text (0 when absent).
pub(crate) fn counter(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_card_loaded_through_one_replica_is_a_hit_on_another_with_no_upstream_call() {
    let redis = RedisServer::start();
    let sim = start_sim(small_sim()).await;
    let apps = replicas(&sim, &redis.url(), 2, "").await;
    let id = &service_ids(&sim)[0];

    let a = card(&apps[0], id).await;
    assert_eq!(a.status(), 200);
    let etag = a.headers()["etag"].to_str().unwrap().to_owned();
    let calls = card_calls(&sim);
    assert!(calls > 0, "replica A read PagerDuty");

    let b = card(&apps[1], id).await;
    assert_eq!(b.status(), 200);
    assert_eq!(card_calls(&sim), calls, "replica B made no upstream call");
    assert_eq!(b.headers()["etag"].to_str().unwrap(), etag, "the same card");
    let body: Value = b.json().await.unwrap();
    assert_eq!(body["service"]["data"]["id"], id.as_str());
    assert_eq!(body["incidents"]["stale"], false);

    let metrics = apps[1].metrics().await;
    for section in ["service", "incidents", "oncall", "change_events"] {
        let series = format!(
            "dutycard_cache_shared_hits_total{{account=\"default\",section=\"{section}\"}}"
        );
        assert!(counter(&metrics, &series) >= 1, "{series} in {metrics}");
    }
    assert!(
        metrics.contains("dutycard_shared_mode{mode=\"shared\"} 1"),
        "{metrics}"
    );

    // The sections are in Redis under namespaced, versioned keys with a TTL.
    let mut conn = redis.inspect().await;
    let key = format!("dutycard:v1:{{default}}:section:service:{id}");
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 0, "{key} has a TTL ({ttl})");
}

#[tokio::test]
async fn three_replicas_asking_for_one_cold_card_at_once_load_it_once() {
    let redis = RedisServer::start();
    let sim = start_sim(small_sim()).await;
    let apps = replicas(&sim, &redis.url(), 3, "").await;
    let id = &service_ids(&sim)[1];
    let answers = futures::future::join_all(apps.iter().map(|app| card(app, id))).await;
    assert!(answers.iter().all(|r| r.status() == 200));
    let stats = sim.stats();
    assert_eq!(stats.count("GET", "/services/{id}"), 1, "one service read");
    assert_eq!(stats.count("GET", "/incidents"), 1, "one incidents read");
    assert_eq!(stats.count("GET", "/oncalls"), 1, "one on-call read");
}

/// A load that outlasts the lease time (PagerDuty slow): its replica renews
/// the lease, so the replica asking meanwhile waits for that value instead
/// of reading PagerDuty too.
#[tokio::test]
async fn a_load_slower_than_the_lease_is_waited_for_not_repeated() {
    let redis = RedisServer::start();
    let sim = start_sim(small_sim()).await;
    let mut env = shared_env(&redis.url(), 2);
    env.push(("DUTYCARD_SHARED__LEASE_MS".into(), "300".into()));
    let (a, b) = (
        spawn_on_sim(&sim, "", &env).await,
        spawn_on_sim(&sim, "", &env).await,
    );
    for app in [&a, &b] {
        wait_mode(app, "shared").await;
    }
    sim.set_faults(sim::Faults {
        per_route: vec![(
            "/services/{id}".into(),
            sim::FaultSpec {
                latency_ms: 1_500,
                ..sim::FaultSpec::default()
            },
        )],
        ..sim.faults()
    });
    let id = service_ids(&sim)[2].clone();
    let key = format!("dutycard:v1:{{default}}:section:service:{id}");
    let on_a = tokio::spawn({
        let (http, url) = (a.http.clone(), a.url(&format!("/v1/cards/{id}")));
        async move { http.get(url).send().await.unwrap().status() }
    });
    let mut conn = redis.inspect().await;
    let exists = |conn: &mut redis::aio::MultiplexedConnection, key: String| {
        let mut conn = conn.clone();
        async move {
            redis::cmd("EXISTS")
                .arg(key)
                .query_async::<i64>(&mut conn)
                .await
                .unwrap()
                == 1
        }
    };
    let started = std::time::Instant::now();
    while !exists(&mut conn, format!("{key}:lease")).await {
        assert!(started.elapsed() < WAIT, "replica A never leased {key}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // B asks while A's read is held for 1.5 s, five lease times.
    assert_eq!(card(&b, &id).await.status(), 200);
    assert_eq!(on_a.await.unwrap(), 200);
    while !exists(&mut conn, key.clone()).await {
        assert!(started.elapsed() < WAIT, "A never stored {key}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        sim.stats().count("GET", "/services/{id}"),
        1,
        "B waited for A's renewed lease"
    );
}

/// `GET /v1/cards/{id}/stream` on `app`, answered.
async fn stream_on(app: &TestApp, id: &str) -> Sse {
    let response = app
        .http
        .get(app.url(&format!("/v1/cards/{id}/stream")))
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    Sse::new(response)
}

#[tokio::test]
async fn a_webhook_on_one_replica_reaches_a_stream_held_on_another() {
    let redis = RedisServer::start();
    let sim = start_sim(small_sim()).await;
    let extra = format!("{LONG_TTLS}[webhooks]\nsecrets = [\"{SECRET}\"]\n");
    let apps = replicas(&sim, &redis.url(), 2, &extra).await;
    let account = sim.account();
    let service = account
        .services
        .iter()
        .find(|s| s.status == "active" && !s.integrations.is_empty())
        .expect("a routable service");
    let key = service.integrations[0].integration_key.clone().unwrap();
    let id = service.id.clone();

    let mut stream = stream_on(&apps[1], &id).await;
    let (etag, first) = stream.card(WAIT).await;
    let before = open_incidents(&first);

    // An incident at PagerDuty, and its webhook delivered to replica A only.
    let r = apps[0]
        .http
        .post(format!("{}/v2/enqueue", sim.base_url()))
        .json(&json!({"routing_key": key, "event_action": "trigger", "dedup_key": "replicas-1",
            "payload": {"summary": "Disk full replicas-1", "source": "db-1", "severity": "critical"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let body = json!({"event": {
        "id": "01REPLICA", "event_type": "incident.triggered", "resource_type": "incident",
        "occurred_at": chrono::Utc::now().to_rfc3339(),
        "data": {"id": "Q1", "type": "incident", "service": {"id": id, "type": "service_reference"}},
    }})
    .to_string();
    let r = apps[0]
        .http
        .post(apps[0].url("/v1/webhooks/pagerduty"))
        .header("content-type", "application/json")
        .header("X-Webhook-Id", "replica-w1")
        .header("X-PagerDuty-Signature", sign(SECRET, body.as_bytes()))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);

    let (next_etag, next) = stream.card(Duration::from_secs(5)).await;
    assert_ne!(next_etag, etag);
    assert_eq!(open_incidents(&next), before + 1, "{next}");
    // The incidents were read again once for both replicas (the other
    // took the value from Redis or saw it fresh).
    let reads = sim.stats().count("GET", "/incidents");
    let on_a = card(&apps[0], &id).await;
    assert_eq!(on_a.headers()["etag"].to_str().unwrap(), next_etag);
    assert_eq!(sim.stats().count("GET", "/incidents"), reads);
}

/// The items of `POST /v1/cards/batch` for `ids` on `app` (answered 200).
async fn batch(app: &TestApp, ids: &[impl serde::Serialize]) -> Vec<Value> {
    let r = app
        .http
        .post(app.url("/v1/cards/batch"))
        .json(&json!({ "service_ids": ids }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["cards"].as_array().unwrap().clone()
}

/// A portal's page views: `views` pages of 8 cards each (`POST
/// /v1/cards/batch`), 10 pages at a time, spread over `apps` in turn;
/// every page is answered, and all but a few cards (a simulator slowed
/// down by a loaded machine may time out) carry their card. Returns the
/// upstream calls they made.
async fn portal(sim: &sim::SimHandle, apps: &[TestApp], views: usize) -> u64 {
    let ids = service_ids(sim);
    let before = card_calls(sim);
    let failed = std::sync::Mutex::new(Vec::new());
    let failed = &failed;
    for wave in 0..views.div_ceil(10) {
        let pages = (wave * 10..(wave * 10 + 10).min(views)).map(|view| {
            let app = &apps[view % apps.len()];
            let page: Vec<&String> = (0..8).map(|k| &ids[(view * 5 + k) % ids.len()]).collect();
            async move {
                for item in batch(app, &page).await {
                    if item["status"] != 200 {
                        failed.lock().unwrap().push(item.clone());
                    }
                }
            }
        });
        futures::future::join_all(pages).await;
    }
    let failed = failed.lock().unwrap();
    assert!(
        failed.len() * 50 <= views * 8,
        "more than 2 % of the cards failed: {failed:?}"
    );
    card_calls(sim) - before
}

fn portal_sim() -> sim::SimConfig {
    sim::SimConfig {
        services: 40,
        rate_limit_per_minute: Some(960),
        ..small_sim()
    }
}

/// Small batches: at this test's scale (40 services) they make upstream
/// calls follow the keys loaded, as in a portal of hundreds of services
/// with the default batch of 50 (with 40 keys and batches of 50 one
/// replica needs one call per section, and any split costs a call).
const PORTAL_CACHE: &str = "[cache]\nbatch_max_size = 4\n";

#[tokio::test]
async fn three_replicas_under_a_portal_load_make_about_as_many_upstream_calls_as_one() {
    let sim_one = start_sim(portal_sim()).await;
    let one = vec![spawn_on_sim(&sim_one, PORTAL_CACHE, &[]).await];
    let calls_one = portal(&sim_one, &one, 60).await;

    let sim_alone = start_sim(portal_sim()).await;
    let mut alone = Vec::new();
    for _ in 0..3 {
        alone.push(spawn_on_sim(&sim_alone, PORTAL_CACHE, &[]).await);
    }
    let calls_alone = portal(&sim_alone, &alone, 60).await;

    let redis = RedisServer::start();
    let sim_three = start_sim(portal_sim()).await;
    let three = replicas(&sim_three, &redis.url(), 3, PORTAL_CACHE).await;
    let calls_three = portal(&sim_three, &three, 60).await;

    eprintln!(
        "portal: 1 replica {calls_one} upstream calls; 3 replicas alone {calls_alone}; 3 replicas on Redis {calls_three}"
    );
    for (name, sim) in [
        ("1", &sim_one),
        ("3 alone", &sim_alone),
        ("3 Redis", &sim_three),
    ] {
        let routes: Vec<String> = sim
            .stats()
            .routes
            .iter()
            .map(|r| format!("{} {} {}: {}", r.method, r.route, r.status, r.count))
            .collect();
        eprintln!("portal {name}: {}", routes.join(", "));
    }
    for sim in [&sim_one, &sim_alone, &sim_three] {
        assert_eq!(sim.stats().rate_limited(), 0, "no 429 from the limiter");
    }
    // Every section entry is loaded once across the replicas, and a
    // listing on one replica is offered to the others: about one
    // replica's calls (1.0 to 1.05 times here; what is left is batches
    // split between replicas), against about 3 times without Redis.
    assert!(
        calls_three * 4 <= calls_one * 5,
        "3 replicas on Redis made {calls_three} calls, 1 replica {calls_one}: more than 1.25 times"
    );
    assert!(
        calls_three * 3 <= calls_alone * 2,
        "3 replicas on Redis made {calls_three} calls, 3 without Redis {calls_alone}"
    );
    assert!(calls_alone >= calls_one * 2, "{calls_alone} vs {calls_one}");
}

/// A batch window long enough that three replicas' cold loads meet in it.
const JOIN_CACHE: &str = "[cache]\nbatch_window_ms = 400\n";

/// The lease is per entry, the upstream call per batch: the incidents of
/// 30 services, 10 leased by each of three replicas in the same window,
/// cost one batched call (the first replica whose batch runs collects, the
/// others hand it their entries), not three.
#[tokio::test]
async fn the_entries_three_replicas_leased_in_one_window_cost_one_batched_call() {
    let redis = RedisServer::start();
    let sim = start_sim(sim::SimConfig {
        services: 30,
        ..small_sim()
    })
    .await;
    let apps = replicas(&sim, &redis.url(), 3, JOIN_CACHE).await;
    let ids = service_ids(&sim);
    let before = sim.stats().count("GET", "/incidents");
    let pages = apps.iter().enumerate().map(|(i, app)| {
        let page = &ids[i * 10..i * 10 + 10];
        async move {
            for item in batch(app, page).await {
                assert_eq!(item["status"], 200, "{item}");
                assert!(item["card"]["incidents"].is_object(), "{item}");
            }
        }
    });
    tokio::time::timeout(WAIT, futures::future::join_all(pages))
        .await
        .expect("the three pages are answered");
    assert_eq!(
        sim.stats().count("GET", "/incidents") - before,
        1,
        "one batched incidents call for the three replicas' entries"
    );
    let (mut handed, mut taken) = (0, 0);
    for app in &apps {
        let metrics = app.get("/metrics").await.text().await.unwrap();
        let series = |name: &str| {
            format!("dutycard_cache_{name}_total{{account=\"default\",section=\"incidents\"}}")
        };
        handed += counter(&metrics, &series("shared_batch_handed"));
        taken += counter(&metrics, &series("shared_batch_taken"));
    }
    assert_eq!((handed, taken), (20, 20), "two replicas handed 10 each");
}

#[test]
fn check_config_and_debug_never_show_the_redis_password() {
    let settings = crate::helpers::settings(
        "[shared]\nredis_url = \"redis://:hunter2@redis.internal:6379/0\"\nreplicas = 2\n",
        &[],
    );
    let text = settings.to_redacted_toml();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(
        text.contains("redis://:redacted@redis.internal:6379/0"),
        "{text}"
    );
    let debug = format!("{settings:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
}

#[tokio::test]
async fn a_trigger_on_one_replica_retried_on_another_creates_one_incident_and_shows_there() {
    let redis = RedisServer::start();
    let sim = start_sim(small_sim()).await;
    let apps = replicas(&sim, &redis.url(), 2, LONG_TTLS).await;
    let report = wait_mode(&apps[1], "shared").await;
    assert_eq!(report["shared"]["trigger"], "shared", "{report}");
    let (id, _) = crate::trigger::triggerable_service(&sim);
    let incidents = || sim.account().incidents_of(&id).len();
    let before = incidents();
    // Replica B shows the card (its incidents cached for 5 minutes).
    let card_on_b: Value = card(&apps[1], &id).await.json().await.unwrap();
    let open = |card: &Value| {
        card["incidents"]["data"]["triggered"].as_u64().unwrap()
            + card["incidents"]["data"]["acknowledged"].as_u64().unwrap()
    };
    let open_before = open(&card_on_b);

    let body = json!({"service_id": id, "summary": "checkout is down (replicas)"});
    let header = [("Idempotency-Key", "replicas-click-1")];
    let first = crate::trigger::trigger(&apps[0], &body, &header).await;
    assert_eq!(first.status(), 202);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    let retried = crate::trigger::trigger(&apps[1], &body, &header).await;
    assert_eq!(retried.status(), 202);
    assert_eq!(retried.headers()["idempotent-replayed"], "true");
    let retried: Value = retried.json().await.unwrap();
    assert_eq!(first, retried, "the first answer, replayed");
    assert_eq!(
        sim.stats().count("POST", crate::trigger::ENQUEUE),
        1,
        "sent once"
    );
    assert_eq!(incidents(), before + 1, "one incident");

    // The accepted trigger on A dropped the incidents on B too.
    let started = Instant::now();
    loop {
        let now: Value = card(&apps[1], &id).await.json().await.unwrap();
        if open(&now) == open_before + 1 {
            break;
        }
        assert!(started.elapsed() < WAIT, "replica B never showed it: {now}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The trigger's own invalidation, published by replica A, reaches a
/// stream held on B: B's incidents are cached for 5 minutes, so only that
/// message can make B's stream send the new card.
#[tokio::test]
async fn a_trigger_on_one_replica_shows_on_a_stream_held_on_another() {
    let redis = RedisServer::start();
    let sim = start_sim(small_sim()).await;
    let apps = replicas(&sim, &redis.url(), 2, LONG_TTLS).await;
    let (id, _) = crate::trigger::triggerable_service(&sim);
    let mut stream = stream_on(&apps[1], &id).await;
    let (etag, first) = stream.card(WAIT).await;
    let before = open_incidents(&first);

    let body = json!({"service_id": id, "summary": "checkout is down (stream on B)"});
    let r = crate::trigger::trigger(&apps[0], &body, &[]).await;
    assert_eq!(r.status(), 202);
    assert_eq!(sim.stats().count("POST", crate::trigger::ENQUEUE), 1);

    // The next card event on B (each bounded, the whole wait too): a
    // card event that still shows the old count is not the trigger's.
    let started = Instant::now();
    loop {
        let left = WAIT.saturating_sub(started.elapsed());
        let (next_etag, next) = stream.card(left).await;
        if open_incidents(&next) == before + 1 {
            assert_ne!(next_etag, etag);
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "B's stream never showed the trigger: {next}"
        );
    }
}
