//! Trigger idempotency and limits shared by replicas through a real
//! `redis-server` (issue 17): two `TriggerService`s on one Redis stand for
//! two replicas; a wiremock Events API counts what reaches PagerDuty.

use std::sync::Arc;
use std::time::Duration;

use dutycard_server::accounts::{Account, Accounts};
use dutycard_server::auth::Caller;
use dutycard_server::config::{TriggerAllow, TriggerSettings};
use dutycard_server::keys::KeyAliases;
use dutycard_server::metrics::Metrics;
use dutycard_server::trigger::limits::LimitScope;
use dutycard_server::trigger::shared::{RemoteBegin, SharedMode, SharedSettings, SharedTrigger};
use dutycard_server::trigger::{Outcome, TriggerError, TriggerRequest, TriggerService};
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde_json::json;
use tokio::time::Instant;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::settings;
use crate::redis_server::RedisServer;

const ROUTING_KEY: &str = "abcdefabcdefabcdefabcdefabcdef12";

/// Generous for a loaded test machine: a timeout here would switch the
/// replica to local mode and hide what the test is about.
const CALL_TIMEOUT: Duration = Duration::from_millis(500);

fn manager(redis: &RedisServer) -> ConnectionManager {
    let client = redis::Client::open(redis.url()).unwrap();
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CALL_TIMEOUT))
        .set_response_timeout(Some(CALL_TIMEOUT))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(200));
    ConnectionManager::new_lazy_with_config(client, config).unwrap()
}

/// A trigger's shared store on `redis`, once it shares (it starts local
/// and shares when its first ping is answered).
async fn shared(redis: &RedisServer) -> SharedTrigger {
    let shared = SharedTrigger::new(
        manager(redis),
        SharedSettings {
            call_timeout: CALL_TIMEOUT,
            probe_interval: Duration::from_millis(100),
            ..SharedSettings::default()
        },
    );
    let mut mode = shared.watch_mode();
    tokio::time::timeout(
        Duration::from_secs(10),
        mode.wait_for(|m| *m == SharedMode::Shared),
    )
    .await
    .expect("shared within 10 s")
    .expect("the mode is still watched");
    shared
}

fn trigger_settings(per_caller: u32, per_key: u32) -> TriggerSettings {
    TriggerSettings {
        client_name: "dutycard".into(),
        client_url: None,
        default_severity: pagerduty::Severity::Error,
        allow: TriggerAllow::Any,
        deadline_ms: 3000,
        idempotency_window_secs: 600,
        per_caller_per_minute: per_caller,
        per_routing_key_per_minute: per_key,
    }
}

/// Two replicas (each its own local store and limiters) on one Redis.
struct Replicas {
    events: MockServer,
    redis: RedisServer,
    account: Arc<Account>,
    a: Arc<TriggerService>,
    b: Arc<TriggerService>,
}

async fn replicas(events: MockServer, per_caller: u32, per_key: u32) -> Replicas {
    let redis = RedisServer::start();
    let env = [(
        "DUTYCARD_PAGERDUTY__EVENTS_BASE_URL",
        format!("{}/v2", events.uri()),
    )];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let settings = settings("", &env);
    let accounts = Accounts::from_settings(&settings, Arc::new(Metrics::new())).unwrap();
    let keys = Arc::new(KeyAliases::new(
        &accounts,
        settings.backstage.integration_keys,
        None,
        &settings.pagerduty,
    ));
    let replica = async || {
        Arc::new(
            TriggerService::new(&trigger_settings(per_caller, per_key), keys.clone())
                .with_shared(shared(&redis).await),
        )
    };
    let (a, b) = (replica().await, replica().await);
    Replicas {
        account: accounts.default_account().clone(),
        events,
        redis,
        a,
        b,
    }
}

async fn events_answering(response: ResponseTemplate) -> MockServer {
    let events = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(response)
        .mount(&events)
        .await;
    events
}

fn accepted() -> ResponseTemplate {
    ResponseTemplate::new(202)
        .set_body_json(json!({"status": "success", "message": "Event processed"}))
}

fn request(summary: &str) -> TriggerRequest {
    serde_json::from_value(json!({"integration_key": ROUTING_KEY, "summary": summary})).unwrap()
}

fn caller(name: &str) -> Caller {
    Caller { name: name.into() }
}

impl Replicas {
    async fn on(
        &self,
        replica: &Arc<TriggerService>,
        who: &str,
        summary: &str,
        key: Option<&str>,
    ) -> Outcome {
        replica
            .trigger(&self.account, &caller(who), request(summary), key)
            .await
    }

    async fn sent(&self) -> usize {
        self.events.received_requests().await.unwrap().len()
    }

    async fn redis_keys(&self, pattern: &str) -> Vec<String> {
        let mut conn = self.redis.inspect().await;
        let mut keys: Vec<String> = conn.keys(pattern).await.unwrap();
        keys.sort();
        keys
    }
}

/// Polls `done` every few milliseconds, for at most five seconds.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    tokio::time::timeout(Duration::from_secs(5), async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what} within 5 s"));
}

async fn mode_becomes(service: &TriggerService, mode: SharedMode) {
    let mut rx = service.shared().unwrap().watch_mode();
    tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|m| *m == mode))
        .await
        .unwrap_or_else(|_| panic!("{mode:?} within 10 s"))
        .unwrap();
}

#[tokio::test]
async fn an_idempotency_key_retried_on_another_replica_is_sent_once_and_replayed() {
    let r = replicas(events_answering(accepted()).await, 30, 100).await;
    let first = r.on(&r.a, "alice", "checkout down", Some("key-1")).await;
    let accepted = first.result.expect("accepted on A");
    assert!(!first.replayed);

    let retry = r.on(&r.b, "alice", "checkout down", Some("key-1")).await;
    assert!(retry.replayed, "B replays A's answer");
    assert_eq!(retry.result.expect("the same 202"), accepted);
    assert_eq!(r.sent().await, 1, "PagerDuty saw one event");

    // Another caller's same Idempotency-Key is another request.
    let other = r.on(&r.b, "bob", "checkout down", Some("key-1")).await;
    assert!(!other.replayed);
    assert_eq!(r.sent().await, 2);

    let keys = r.redis_keys("dutycard:v1:trigger:idem:*").await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    let mut conn = r.redis.inspect().await;
    for key in &keys {
        let ttl: i64 = conn.pttl(key).await.unwrap();
        assert!(
            ttl > 590_000 && ttl <= 600_000,
            "kept for the window: {ttl}"
        );
        let value: String = conn.get(key).await.unwrap();
        for secret in [ROUTING_KEY, "alice", "bob", "key-1"] {
            assert!(
                !key.contains(secret) && !value.contains(secret),
                "{key} {value}"
            );
        }
    }
}

#[tokio::test]
async fn a_different_request_under_the_same_key_on_another_replica_is_a_mismatch() {
    let r = replicas(events_answering(accepted()).await, 30, 100).await;
    assert!(
        r.on(&r.a, "alice", "first", Some("key-2"))
            .await
            .result
            .is_ok()
    );
    let other = r.on(&r.b, "alice", "second", Some("key-2")).await;
    assert!(
        matches!(other.result, Err(TriggerError::IdempotencyKeyReused)),
        "{other:?}"
    );
    assert_eq!(r.sent().await, 1, "nothing sent for the mismatch");
}

#[tokio::test]
async fn a_duplicate_on_b_while_a_is_sending_waits_and_replays_a_answer() {
    let slow = accepted().set_delay(Duration::from_millis(800));
    let r = replicas(events_answering(slow).await, 30, 100).await;
    let on_a = tokio::spawn({
        let (a, account) = (r.a.clone(), r.account.clone());
        async move {
            a.trigger(&account, &caller("alice"), request("down"), Some("key-3"))
                .await
        }
    });
    // A's delivery task runs once its Redis claim is made.
    until("A sending", || r.a.in_flight() == 1).await;
    let on_b = r.on(&r.b, "alice", "down", Some("key-3")).await;
    let on_a = on_a.await.unwrap();
    assert!(!on_a.replayed);
    assert!(on_b.replayed, "B waited for A's answer: {on_b:?}");
    assert_eq!(on_b.result.unwrap(), on_a.result.unwrap());
    assert_eq!(r.sent().await, 1, "one event for both");
}

#[tokio::test]
async fn a_failure_that_created_nothing_frees_the_key_on_every_replica() {
    let r = replicas(events_answering(ResponseTemplate::new(503)).await, 30, 100).await;
    let failed = r.on(&r.a, "alice", "down", Some("key-4")).await;
    assert!(
        matches!(failed.result, Err(TriggerError::NotDelivered { .. })),
        "{failed:?}"
    );
    let sent = r.sent().await;
    assert!(sent >= 1);
    assert!(
        r.redis_keys("dutycard:v1:trigger:idem:*").await.is_empty(),
        "the key is freed"
    );
    let retry = r.on(&r.b, "alice", "down", Some("key-4")).await;
    assert!(!retry.replayed, "a retry on B is sent again");
    assert!(r.sent().await > sent);
}

#[tokio::test]
async fn a_claim_dropped_or_left_by_a_dead_replica_lets_another_replica_send() {
    let redis = RedisServer::start();
    let (a, b) = (shared(&redis).await, shared(&redis).await);
    let ttl = Duration::from_secs(30);
    let wait = || Instant::now() + Duration::from_secs(5);

    let RemoteBegin::Leader(claim) = a.claim("k", 1, ttl, wait()).await else {
        panic!("A claims a free key")
    };
    assert!(matches!(
        b.claim("k", 2, ttl, wait()).await,
        RemoteBegin::Mismatch
    ));
    let waiting = tokio::spawn({
        let b = b.clone();
        async move {
            b.claim("k", 1, ttl, Instant::now() + Duration::from_secs(5))
                .await
        }
    });
    drop(claim);
    // Had the drop not freed the key, B would wait its 5 s and answer Busy.
    let started = Instant::now();
    let RemoteBegin::Leader(_b_claim) = waiting.await.unwrap() else {
        panic!("B leads once A's claim is dropped")
    };
    assert!(started.elapsed() < Duration::from_secs(4));

    // A replica that dies holding a claim never frees it: the TTL does.
    let RemoteBegin::Leader(claim) = a.claim("dead", 1, Duration::from_millis(300), wait()).await
    else {
        panic!()
    };
    std::mem::forget(claim);
    assert!(matches!(
        b.claim("dead", 1, ttl, Instant::now() + Duration::from_millis(50))
            .await,
        RemoteBegin::Busy
    ));
    assert!(matches!(
        b.claim("dead", 1, ttl, wait()).await,
        RemoteBegin::Leader(_)
    ));
}

#[tokio::test]
async fn with_redis_stopped_triggers_are_answered_locally_and_shared_again_after_a_restart() {
    let mut r = replicas(events_answering(accepted()).await, 30, 100).await;
    assert_eq!(r.a.shared_mode(), Some(SharedMode::Shared));
    r.redis.stop();

    let started = Instant::now();
    let outage = r.on(&r.a, "alice", "down", Some("key-5")).await;
    assert!(outage.result.is_ok(), "accepted without Redis: {outage:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "bounded: {:?}",
        started.elapsed()
    );
    assert_eq!(r.a.shared_mode(), Some(SharedMode::Local));
    let fallbacks = r.a.shared().unwrap().fallbacks();
    assert!(fallbacks > 0);
    // The local store still answers a retry on the same replica (with no
    // Redis call); B, on its own, also answers locally.
    let retry = r.on(&r.a, "alice", "down", Some("key-5")).await;
    assert!(retry.replayed);
    assert_eq!(r.sent().await, 1);
    assert!(
        r.on(&r.b, "bob", "down", Some("key-7"))
            .await
            .result
            .is_ok()
    );
    assert_eq!(r.b.shared_mode(), Some(SharedMode::Local));
    assert!(r.b.shared().unwrap().fallbacks() > 0, "counted on B too");

    r.redis.run();
    mode_becomes(&r.a, SharedMode::Shared).await;
    let first = r.on(&r.a, "alice", "down again", Some("key-6")).await;
    assert!(first.result.is_ok());
    mode_becomes(&r.b, SharedMode::Shared).await;
    let on_b = r.on(&r.b, "alice", "down again", Some("key-6")).await;
    assert!(on_b.replayed, "shared again: {on_b:?}");
    assert_eq!(r.sent().await, 3);
}

#[tokio::test]
async fn the_caller_and_routing_key_limits_count_every_replica() {
    let r = replicas(events_answering(accepted()).await, 2, 3).await;
    assert!(r.on(&r.a, "alice", "one", None).await.result.is_ok());
    assert!(r.on(&r.b, "alice", "two", None).await.result.is_ok());
    let third = r.on(&r.a, "alice", "three", None).await;
    match third.result {
        Err(TriggerError::RateLimited {
            scope: LimitScope::Caller,
            retry_after,
        }) => assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(30)),
        other => panic!("the caller's shared limit: {other:?}"),
    }
    // The routing key has had two of its three.
    assert!(r.on(&r.b, "bob", "four", None).await.result.is_ok());
    let fifth = r.on(&r.a, "carol", "five", None).await;
    assert!(
        matches!(
            fifth.result,
            Err(TriggerError::RateLimited {
                scope: LimitScope::RoutingKey,
                ..
            })
        ),
        "{fifth:?}"
    );
    assert_eq!(r.sent().await, 3);

    let limits = r.redis_keys("dutycard:v1:trigger:limit:*").await;
    assert_eq!(limits.len(), 4, "3 callers, 1 routing key: {limits:?}");
    let mut conn = r.redis.inspect().await;
    for key in &limits {
        let ttl: i64 = conn.pttl(key).await.unwrap();
        assert!(ttl > 0 && ttl <= 61_000, "{key}: {ttl}");
        assert!(
            !key.contains("alice") && !key.contains(ROUTING_KEY),
            "{key}"
        );
    }
}

#[tokio::test]
async fn a_slow_redis_costs_a_trigger_at_most_the_call_timeouts_and_recovers() {
    let r = replicas(events_answering(accepted()).await, 30, 100).await;
    // Redis holds every client's commands for 3 s: it is there, but slow.
    let mut conn = r.redis.inspect().await;
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(3000)
        .arg("ALL")
        .query_async(&mut conn)
        .await
        .unwrap();
    let started = Instant::now();
    let outcome = r.on(&r.a, "alice", "down", Some("key-8")).await;
    assert!(outcome.result.is_ok(), "{outcome:?}");
    assert!(
        started.elapsed() < CALL_TIMEOUT * 3,
        "one timed-out call, then local: {:?}",
        started.elapsed()
    );
    assert_eq!(r.a.shared_mode(), Some(SharedMode::Local));
    mode_becomes(&r.a, SharedMode::Shared).await;
    assert_eq!(r.sent().await, 1);
}

#[tokio::test]
async fn concurrent_duplicates_on_both_replicas_send_one_event() {
    let slow = accepted().set_delay(Duration::from_millis(500));
    let r = replicas(events_answering(slow).await, 30, 100).await;
    let send = |replica: &Arc<TriggerService>| {
        let (replica, account) = (replica.clone(), r.account.clone());
        tokio::spawn(async move {
            replica
                .trigger(&account, &caller("alice"), request("down"), Some("key-9"))
                .await
        })
    };
    let all = [send(&r.a), send(&r.a), send(&r.b), send(&r.b)];
    let outcomes: Vec<Outcome> = futures::future::join_all(all)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let dedup_keys: Vec<String> = outcomes
        .iter()
        .map(|o| o.result.as_ref().expect("accepted").dedup_key.clone())
        .collect();
    assert!(
        dedup_keys.iter().all(|k| *k == dedup_keys[0]),
        "{dedup_keys:?}"
    );
    assert_eq!(
        outcomes.iter().filter(|o| !o.replayed).count(),
        1,
        "one leader across both replicas: {outcomes:?}"
    );
    assert_eq!(r.sent().await, 1);
}
