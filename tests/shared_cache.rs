//! The cards crate's shared section cache on a real `redis-server` (issue
//! 17), driven through its public trait: two `RedisSharedCache`s on one
//! Redis stand for two replicas. The card-level behaviour (hits across
//! replicas, one load per key) is in `replicas`.

use std::time::Duration;

use cards::store::redis::{RedisSharedCache, RedisSharedConfig};
use cards::store::shared::{
    Collect, EntryKey, Fetched, JoinState, Offered, SharedCache, SharedMode, SharedTiming, Wanted,
};
use redis::AsyncCommands;

use crate::redis_server::RedisServer;

const WAIT: Duration = Duration::from_secs(10);

async fn replica(redis: &RedisServer, name: &str) -> RedisSharedCache {
    let call_timeout = Duration::from_millis(500);
    let conn = pagerduty::budget::redis::connection_manager(&redis.url(), call_timeout)
        .expect("a connection manager");
    let cache = RedisSharedCache::start(
        &redis.url(),
        conn,
        RedisSharedConfig {
            timing: SharedTiming::default(),
            call_timeout,
            probe_interval: Duration::from_millis(20),
            replica: name.into(),
        },
    )
    .expect("the cache starts");
    let mut mode = cache.watch_mode();
    tokio::time::timeout(WAIT, mode.wait_for(|m| *m == SharedMode::Shared))
        .await
        .expect("shared within 10 s")
        .expect("the mode is still watched");
    cache
}

fn entry(id: &str) -> EntryKey {
    EntryKey {
        account: "main".into(),
        section: "service",
        id: id.into(),
    }
}

fn offered(id: &str, value: &str, fetched_at: i64) -> Offered {
    Offered {
        id: id.into(),
        fetched_at,
        value: value.as_bytes().to_vec(),
        ttl: Duration::from_secs(60),
    }
}

async fn value_of(cache: &RedisSharedCache, id: &str) -> Option<(i64, String)> {
    match cache
        .fetch_or_lease(&entry(id), 0, Duration::from_secs(5))
        .await
        .expect("Redis answers")
    {
        Fetched::Value(at, bytes) => Some((at, String::from_utf8(bytes).unwrap())),
        Fetched::Leased { token, .. } => {
            cache.release(&entry(id), &token).await.unwrap();
            None
        }
        Fetched::Busy => panic!("nobody else loads {id}"),
    }
}

#[tokio::test]
async fn a_listing_offered_on_one_replica_is_a_hit_on_the_other_and_never_replaces_a_loaded_value()
{
    let redis = RedisServer::start();
    let (a, b) = (replica(&redis, "a").await, replica(&redis, "b").await);
    // B loaded P2 under a lease: its value is newer than any listing's.
    let Fetched::Leased { generation, token } = b
        .fetch_or_lease(&entry("P2"), 0, Duration::from_secs(5))
        .await
        .unwrap()
    else {
        panic!("P2 is free to load")
    };
    b.put(
        &entry("P2"),
        2_000,
        b"loaded".to_vec(),
        Duration::from_secs(60),
        &generation,
        &token,
    )
    .await
    .unwrap();

    let epoch = a.epoch("main", "service").await.unwrap();
    let page = vec![
        offered("P1", "listed-1", 1_000),
        offered("P2", "listed-2", 1_000),
    ];
    a.offer("main", "service", &epoch, page).await.unwrap();

    assert_eq!(value_of(&b, "P1").await, Some((1_000, "listed-1".into())));
    assert_eq!(
        value_of(&b, "P2").await,
        Some((2_000, "loaded".into())),
        "an offer never replaces a value"
    );
    let mut conn = redis.inspect().await;
    let ttl: i64 = conn
        .pttl("dutycard:v1:{main}:section:service:P1")
        .await
        .unwrap();
    assert!(
        ttl > 0 && ttl <= 60_000,
        "an offered value has its TTL: {ttl}"
    );
}

#[tokio::test]
async fn a_listing_that_overlaps_an_invalidation_offers_nothing() {
    let redis = RedisServer::start();
    let (a, b) = (replica(&redis, "a").await, replica(&redis, "b").await);
    // A's listing starts, then B invalidates a service of the section (a
    // webhook): what A read may predate that change.
    let epoch = a.epoch("main", "service").await.unwrap();
    b.invalidate(&entry("P9"), Duration::from_secs(60))
        .await
        .unwrap();
    a.offer("main", "service", &epoch, vec![offered("P1", "old", 1_000)])
        .await
        .unwrap();
    assert_eq!(value_of(&b, "P1").await, None, "nothing offered");

    // A listing that starts after it offers again.
    let epoch = a.epoch("main", "service").await.unwrap();
    a.offer("main", "service", &epoch, vec![offered("P1", "new", 3_000)])
        .await
        .unwrap();
    assert_eq!(value_of(&b, "P1").await, Some((3_000, "new".into())));
    // Another section's invalidation does not hold this one's offers back.
    let epoch = a.epoch("main", "service").await.unwrap();
    let other = EntryKey {
        section: "incidents",
        ..entry("P1")
    };
    b.invalidate(&other, Duration::from_secs(60)).await.unwrap();
    a.offer("main", "service", &epoch, vec![offered("P3", "x", 3_000)])
        .await
        .unwrap();
    assert_eq!(value_of(&b, "P3").await, Some((3_000, "x".into())));
}

#[tokio::test]
async fn a_renewed_lease_outlives_its_lease_time_and_only_its_holder_renews_it() {
    let redis = RedisServer::start();
    let (a, b) = (replica(&redis, "a").await, replica(&redis, "b").await);
    let lease = Duration::from_millis(300);
    let Fetched::Leased { token, .. } = a.fetch_or_lease(&entry("P1"), 0, lease).await.unwrap()
    else {
        panic!("P1 is free to load")
    };
    assert!(
        !b.renew(&entry("P1"), "not-the-token", lease).await.unwrap(),
        "another token renews nothing"
    );
    assert!(
        a.renew(&entry("P1"), &token, Duration::from_secs(30))
            .await
            .unwrap()
    );
    let mut conn = redis.inspect().await;
    let ttl: i64 = conn
        .pttl("dutycard:v1:{main}:section:service:P1:lease")
        .await
        .unwrap();
    assert!(ttl > 10_000, "renewed to 30 s, not the 300 ms taken: {ttl}");
    assert_eq!(
        b.fetch_or_lease(&entry("P1"), 0, lease).await.unwrap(),
        Fetched::Busy,
        "B waits for A's renewed lease"
    );
    a.release(&entry("P1"), &token).await.unwrap();
    assert!(
        !a.renew(&entry("P1"), &token, lease).await.unwrap(),
        "a released lease is not renewed"
    );
}

/// A replica that dies holding a lease (it never renews nor releases it):
/// the others wait no longer than the lease time, then one of them takes
/// the lease, loads the value itself, and every replica reads it.
#[tokio::test]
async fn a_lease_left_by_a_dead_holder_runs_out_and_another_replica_loads_the_value_itself() {
    let redis = RedisServer::start();
    let (a, b) = (replica(&redis, "a").await, replica(&redis, "b").await);
    let lease = Duration::from_millis(300);
    // Before A's call: the lease runs out at least `lease` after this.
    let taken = std::time::Instant::now();
    let Fetched::Leased { .. } = a.fetch_or_lease(&entry("P7"), 0, lease).await.unwrap() else {
        panic!("P7 is free to load")
    };
    // A dies here, its lease still held.
    let (generation, token) = loop {
        match b.fetch_or_lease(&entry("P7"), 0, lease).await.unwrap() {
            Fetched::Busy => {
                assert!(taken.elapsed() < WAIT, "A's dead lease never ran out");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Fetched::Leased { generation, token } => break (generation, token),
            Fetched::Value(..) => panic!("nobody stored P7"),
        }
    };
    // Redis counts whole milliseconds: allow one.
    assert!(
        taken.elapsed() + Duration::from_millis(1) >= lease,
        "B waited for the lease time: {:?}",
        taken.elapsed()
    );
    b.put(
        &entry("P7"),
        5_000,
        b"loaded-by-b".to_vec(),
        Duration::from_secs(60),
        &generation,
        &token,
    )
    .await
    .unwrap();
    assert_eq!(
        value_of(&a, "P7").await,
        Some((5_000, "loaded-by-b".into()))
    );
}

/// Nothing an invalidation leaves grows without bound: the entry's
/// generation and the section's epoch expire with the entry's hard limit.
#[tokio::test]
async fn the_generation_and_epoch_keys_of_an_invalidation_carry_a_ttl() {
    let redis = RedisServer::start();
    let a = replica(&redis, "a").await;
    a.invalidate(&entry("P4"), Duration::from_secs(60))
        .await
        .unwrap();
    let mut conn = redis.inspect().await;
    for key in [
        "dutycard:v1:{main}:section:service:P4:gen",
        "dutycard:v1:{main}:epoch:service",
    ] {
        let ttl: i64 = conn.pttl(key).await.unwrap();
        assert!(ttl > 0 && ttl <= 60_000, "{key}: {ttl}");
    }
}

/// The lease of `id` on `cache`, as a handed entry.
async fn leased(cache: &RedisSharedCache, id: &str) -> Wanted {
    match cache
        .fetch_or_lease(&entry(id), 0, Duration::from_secs(5))
        .await
        .unwrap()
    {
        Fetched::Leased { generation, token } => Wanted {
            id: id.into(),
            generation,
            token,
        },
        other => panic!("{id} is free to load: {other:?}"),
    }
}

/// The batch collection across replicas: the first replica whose batch
/// runs collects; another hands it the entries it leased (if there is
/// room) and waits; the collector takes them and stores their values under
/// their holders' leases, which the holders then see; a lease released
/// without a value reads as gone. Its keys carry TTLs.
#[tokio::test]
async fn a_batch_collected_on_one_replica_takes_in_and_answers_the_entries_another_leased() {
    let redis = RedisServer::start();
    let (a, b, c) = (
        replica(&redis, "a").await,
        replica(&redis, "b").await,
        replica(&redis, "c").await,
    );
    let hold = Duration::from_secs(2);
    let Collect::Collecting(collector) = a
        .collect_or_join("main", "service", Vec::new(), hold, 2)
        .await
        .unwrap()
    else {
        panic!("nobody collects yet")
    };
    let mut conn = redis.inspect().await;
    let ttl: i64 = conn
        .pttl("dutycard:v1:{main}:collect:service")
        .await
        .unwrap();
    assert!(
        ttl > 0 && ttl <= 3_000,
        "the collection ends by itself: {ttl}"
    );

    let p2 = leased(&b, "P2").await;
    assert_eq!(
        b.collect_or_join("main", "service", vec![p2.clone()], hold, 10)
            .await
            .unwrap(),
        Collect::Joined
    );
    let ttl: i64 = conn.pttl("dutycard:v1:{main}:wants:service").await.unwrap();
    assert!(ttl > 0 && ttl <= 9_000, "handed entries expire: {ttl}");
    // Room for 2, one taken: two more do not fit.
    let (p3, p4) = (leased(&c, "P3").await, leased(&c, "P4").await);
    assert_eq!(
        c.collect_or_join("main", "service", vec![p3, p4], hold, 10)
            .await
            .unwrap(),
        Collect::Alone
    );
    let asks = [(entry("P2"), p2.token.clone(), 0)];
    assert_eq!(b.joined(&asks).await.unwrap(), vec![JoinState::Waiting]);

    let taken = a.take_wanted("main", "service", &collector).await.unwrap();
    assert_eq!(taken, vec![p2.clone()]);
    a.put(
        &entry("P2"),
        7_000,
        b"loaded-by-a".to_vec(),
        Duration::from_secs(60),
        &p2.generation,
        &p2.token,
    )
    .await
    .unwrap();
    assert_eq!(
        b.joined(&asks).await.unwrap(),
        vec![JoinState::Value(7_000, b"loaded-by-a".to_vec())]
    );
    // Not fresh enough for a refresh that wants a newer value.
    assert_eq!(
        b.joined(&[(entry("P2"), p2.token.clone(), 8_000)])
            .await
            .unwrap(),
        vec![JoinState::Gone]
    );

    // The collection ended with the take: the next batch collects anew;
    // an entry whose load failed there is released, and reads as gone.
    let Collect::Collecting(next) = c
        .collect_or_join("main", "service", Vec::new(), hold, 5)
        .await
        .unwrap()
    else {
        panic!("the first collection ended")
    };
    let p5 = leased(&b, "P5").await;
    assert_eq!(
        b.collect_or_join("main", "service", vec![p5.clone()], hold, 10)
            .await
            .unwrap(),
        Collect::Joined
    );
    assert_eq!(
        c.take_wanted("main", "service", &next).await.unwrap(),
        vec![p5.clone()]
    );
    c.release(&entry("P5"), &p5.token).await.unwrap();
    assert_eq!(
        b.joined(&[(entry("P5"), p5.token, 0)]).await.unwrap(),
        vec![JoinState::Gone]
    );
    // A batch with no room of its own never collects.
    assert_eq!(
        a.collect_or_join("main", "service", Vec::new(), hold, 0)
            .await
            .unwrap(),
        Collect::Alone
    );
}
