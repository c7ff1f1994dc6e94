//! `RedisRateBudget` against a real `redis-server` (started here on a free
//! port in a temporary directory, stopped by a drop guard): two budgets on
//! one Redis stand for two replicas of one account.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use pagerduty::budget::redis::{
    BudgetMode, RedisBudgetConfig, RedisRateBudget, connection_manager,
};
use pagerduty::{PdErrorBody, PermitRequest, RateBudget, RateLimitHeaders};
use tokio::time::Instant;

/// A `redis-server` of this test: killed and its directory removed on drop.
struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl RedisServer {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port on 127.0.0.1")
            .port();
        let dir = std::env::temp_dir().join(format!(
            "dutycard-redis-{}-{port}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let mut server = RedisServer {
            child: None,
            port,
            dir,
        };
        server.run();
        server
    }

    /// Starts (or restarts) the server on its port and waits, bounded, for
    /// its "Ready to accept connections".
    fn run(&mut self) {
        let binary = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or_else(|| {
                panic!(
                    "redis-server is not installed (looked in /usr/bin and /usr/local/bin): \
                     run `scripts/test`, which installs it"
                )
            });
        let mut child = Command::new(binary)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let stdout = child.stdout.take().expect("piped stdout");
        self.child = Some(child);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
                if line.contains("Ready to accept connections") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("redis-server ready within 10 s");
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A direct connection, to look at the keys.
    async fn inspect(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .expect("a connection to the test redis-server")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

/// One "replica": its own connection manager, like a separate process.
fn replica(server: &RedisServer, account: &str, config: RedisBudgetConfig) -> RedisRateBudget {
    let conn = connection_manager(&server.url(), config.call_timeout).unwrap();
    RedisRateBudget::new(conn, account, config).unwrap()
}

fn request(deadline: Duration) -> PermitRequest {
    PermitRequest {
        endpoint: "/services/{id}",
        deadline: Instant::now() + deadline,
        resume_jitter: Duration::ZERO,
    }
}

fn config(per_minute: u32, replicas: u32) -> RedisBudgetConfig {
    RedisBudgetConfig {
        // Generous: the test machine is shared; what is tested is counts.
        call_timeout: Duration::from_millis(1000),
        probe_interval: Duration::from_millis(50),
        ..RedisBudgetConfig::new(per_minute, replicas)
    }
}

#[tokio::test]
async fn two_replicas_together_grant_no_more_than_the_shared_rate() {
    let server = RedisServer::start();
    // 600 a minute: one permit every 100 ms, bursts of 10.
    let a = replica(&server, "acct-rate", config(600, 2));
    let b = replica(&server, "acct-rate", config(600, 2));
    let deadline = Duration::from_millis(500);
    let started = Instant::now();
    let mut calls = Vec::new();
    for budget in [&a, &b] {
        for _ in 0..25 {
            let budget = budget.clone();
            calls.push(tokio::spawn(async move {
                let r = budget.acquire(request(deadline)).await;
                (r, Instant::now())
            }));
        }
    }
    let mut granted = 0;
    let mut last = started;
    for call in calls {
        let (result, done) = call.await.unwrap();
        last = last.max(done);
        match result {
            Ok(()) => granted += 1,
            Err(denied) => assert!(
                denied
                    .body
                    .message
                    .as_deref()
                    .is_some_and(|m| m.contains("shared rate budget")),
                "{denied:?}"
            ),
        }
    }
    let elapsed = last - started;
    // Every wait bounded by the deadline (plus scheduling slack).
    assert!(
        elapsed < deadline + Duration::from_millis(300),
        "{elapsed:?}"
    );
    assert_eq!(
        (a.mode(), b.mode()),
        (BudgetMode::Shared, BudgetMode::Shared)
    );
    // One burst plus one permit per 100 ms that passed, for both together
    // (two separate buckets would grant twice that).
    let most = 10 + elapsed.as_millis() as usize / 100 + 1;
    assert!(
        (10..=most).contains(&granted),
        "{granted} permits in {elapsed:?} (at most {most})"
    );

    // The state lives under the versioned, namespaced key, with a TTL.
    let mut conn = server.inspect().await;
    let ttl: i64 = redis::cmd("PTTL")
        .arg("dutycard:v1:budget:{acct-rate}:gcra")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 0, "the GCRA key has a TTL: {ttl}");
}

#[tokio::test]
async fn a_429_reported_to_one_replica_pauses_the_other() {
    let server = RedisServer::start();
    let a = replica(&server, "acct-429", config(6000, 2));
    let b = replica(&server, "acct-429", config(6000, 2));
    b.acquire(request(Duration::from_secs(1))).await.unwrap();

    let raw = r#"{"error":{"message":"Rate Limit Exceeded","code":2020}}"#;
    let body = PdErrorBody {
        status: Some(429),
        ..PdErrorBody::parse(raw.as_bytes())
    };
    a.on_rate_limited(Duration::from_secs(3), &body);
    a.flush().await;
    let denied = b
        .acquire(request(Duration::from_millis(500)))
        .await
        .unwrap_err();
    assert!(
        denied.retry_after > Duration::from_secs(2) && denied.retry_after <= Duration::from_secs(3),
        "{denied:?}"
    );
    assert_eq!(denied.body.status, Some(429));
    assert_eq!(denied.body.message.as_deref(), Some("Rate Limit Exceeded"));
    assert_eq!(denied.body.code, Some(2020));

    // A later, shorter pause (from B) does not shorten the longer one.
    b.on_rate_limited(Duration::from_millis(100), &PdErrorBody::default());
    b.flush().await;
    let mut conn = server.inspect().await;
    let left: i64 = redis::cmd("PTTL")
        .arg("dutycard:v1:budget:{acct-429}:pause")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(left > 2000, "the pause key keeps its 3 s: {left} ms left");
    let denied = a
        .acquire(request(Duration::from_millis(200)))
        .await
        .unwrap_err();
    assert!(denied.retry_after > Duration::from_secs(2), "{denied:?}");

    // Another account is not paused.
    let other = replica(&server, "acct-other", config(6000, 2));
    other
        .acquire(request(Duration::from_secs(1)))
        .await
        .unwrap();
}

#[tokio::test]
async fn no_remaining_calls_in_pagerdutys_headers_pause_every_replica_until_the_reset() {
    let server = RedisServer::start();
    let a = replica(&server, "acct-headers", config(6000, 2));
    let b = replica(&server, "acct-headers", config(6000, 2));
    // Calls left: nothing happens.
    a.on_headers(&RateLimitHeaders {
        limit: Some(960),
        remaining: Some(5),
        reset: Some(Duration::from_secs(30)),
    });
    a.flush().await;
    b.acquire(request(Duration::from_millis(500)))
        .await
        .unwrap();
    a.on_headers(&RateLimitHeaders {
        limit: Some(960),
        remaining: Some(0),
        reset: Some(Duration::from_secs(2)),
    });
    a.flush().await;
    let denied = b
        .acquire(request(Duration::from_millis(300)))
        .await
        .unwrap_err();
    assert!(
        denied.retry_after > Duration::from_secs(1) && denied.retry_after <= Duration::from_secs(2),
        "{denied:?}"
    );
    assert_eq!(denied.body.status, None, "not a 429 from PagerDuty");
    assert!(
        denied
            .body
            .message
            .as_deref()
            .is_some_and(|m| m.contains("ratelimit-remaining")),
        "{denied:?}"
    );
}

#[tokio::test]
async fn a_pause_ends_for_every_replica_at_its_reset() {
    let server = RedisServer::start();
    let a = replica(&server, "acct-reset", config(6000, 2));
    let b = replica(&server, "acct-reset", config(6000, 2));
    a.on_rate_limited(Duration::from_millis(300), &PdErrorBody::default());
    a.flush().await;
    let started = Instant::now();
    b.acquire(request(Duration::from_secs(3))).await.unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(200) && waited < Duration::from_secs(2),
        "B waited out the shared pause: {waited:?}"
    );
}

#[tokio::test]
async fn redis_lost_mid_run_falls_back_to_the_local_share_and_comes_back() {
    let mut server = RedisServer::start();
    let budget = replica(
        &server,
        "acct-outage",
        RedisBudgetConfig {
            call_timeout: Duration::from_millis(200),
            ..config(600, 2)
        },
    );
    let mut mode = budget.watch_mode();
    budget
        .acquire(request(Duration::from_secs(1)))
        .await
        .unwrap();
    assert_eq!(budget.mode(), BudgetMode::Shared);

    server.stop();
    let deadline = Duration::from_secs(1);
    let started = Instant::now();
    budget.acquire(request(deadline)).await.unwrap();
    assert!(started.elapsed() < deadline, "{:?}", started.elapsed());
    assert_eq!(budget.mode(), BudgetMode::Degraded);
    // The local share is 600 / 2 = 300 a minute, bursts of 5: the first
    // call above took one; quick callers get at most the rest of the burst.
    let mut granted = 1;
    for _ in 0..20 {
        if budget
            .acquire(request(Duration::from_millis(20)))
            .await
            .is_ok()
        {
            granted += 1;
        }
    }
    assert!((5..=6).contains(&granted), "{granted} local permits");

    server.run();
    tokio::time::timeout(
        Duration::from_secs(10),
        mode.wait_for(|m| *m == BudgetMode::Shared),
    )
    .await
    .expect("shared again within 10 s of Redis coming back")
    .unwrap();
    budget
        .acquire(request(Duration::from_secs(1)))
        .await
        .unwrap();
    // That permit came from the restarted (empty) Redis.
    let mut conn = server.inspect().await;
    let exists: i64 = redis::cmd("EXISTS")
        .arg("dutycard:v1:budget:{acct-outage}:gcra")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(exists, 1);
}
