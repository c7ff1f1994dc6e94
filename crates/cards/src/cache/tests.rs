use super::*;
use crate::clock::SystemClock;
use std::sync::atomic::AtomicU32;

fn cache(store: Store<u32, u32>, load: LoadFn<u32, u32>) -> SectionCache<u32, u32> {
    SectionCache::new(store, load.clone(), load, Arc::default(), Tasks::default())
}

/// A cache whose loader returns the call number, or fails while `fail` is set.
fn counting(ttl_ms: u64) -> (SectionCache<u32, u32>, Arc<AtomicU32>, Arc<AtomicBool>) {
    let calls = Arc::new(AtomicU32::new(0));
    let fail = Arc::new(AtomicBool::new(false));
    let load: LoadFn<u32, u32> = {
        let calls = calls.clone();
        let fail = fail.clone();
        Arc::new(move |_k| {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            let fail = fail.load(Ordering::SeqCst);
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                if fail {
                    Err(SectionError::unavailable("upstream down"))
                } else {
                    Ok(n)
                }
            })
        })
    };
    let store = Store::with_ttl(
        100,
        Duration::from_millis(ttl_ms),
        Duration::from_secs(60),
        Arc::new(SystemClock),
    );
    let cache = cache(store, load);
    (cache, calls, fail)
}

async fn wait_for(calls: &AtomicU32, n: u32) {
    tokio::time::timeout(Duration::from_secs(5), async {
        while calls.load(Ordering::SeqCst) < n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("bounded wait");
}

#[tokio::test]
async fn loads_refreshes_and_invalidations_are_reported() {
    use crate::changes::{ChangeKind, Changes};
    let (cache, calls, _) = counting(30);
    let changes = Changes::default();
    let mut rx = changes.subscribe();
    cache.on_change(changes.notifier::<u32>(crate::model::Section::Incidents));
    let kind = |c: crate::changes::SectionChange| (c.id, c.kind);
    cache.get(&7).await.unwrap();
    assert_eq!(
        kind(recv(&mut rx).await),
        ("7".into(), ChangeKind::Replaced)
    );
    // Stale: the background refresh replaces it and says so.
    tokio::time::sleep(Duration::from_millis(40)).await;
    assert!(cache.get(&7).await.unwrap().stale);
    wait_for(&calls, 2).await;
    assert_eq!(
        kind(recv(&mut rx).await),
        ("7".into(), ChangeKind::Replaced)
    );
    cache.invalidate(&7).await;
    assert_eq!(
        kind(recv(&mut rx).await),
        ("7".into(), ChangeKind::Invalidated)
    );
}

async fn recv(
    rx: &mut tokio::sync::broadcast::Receiver<crate::changes::SectionChange>,
) -> crate::changes::SectionChange {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a change in time")
        .unwrap()
}

#[tokio::test]
async fn concurrent_misses_coalesce() {
    let (cache, calls, _) = counting(10_000);
    let results = futures::future::join_all((0..50).map(|_| cache.get(&7))).await;
    assert!(results.iter().all(|r| r.as_ref().unwrap().value == 1));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let stats = cache.counters().snapshot();
    assert_eq!(stats.misses, 1);
    assert_eq!(stats.coalesced, 49);
    assert!(!cache.get(&7).await.unwrap().stale);
    assert_eq!(cache.counters().snapshot().hits, 1);
}

#[tokio::test]
async fn errors_are_not_cached() {
    let (cache, calls, fail) = counting(10_000);
    fail.store(true, Ordering::SeqCst);
    assert!(cache.get(&1).await.is_err());
    fail.store(false, Ordering::SeqCst);
    assert_eq!(cache.get(&1).await.unwrap().value, 2);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn expired_values_are_served_stale_and_refreshed_once() {
    let (cache, calls, _) = counting(50);
    assert_eq!(cache.get(&1).await.unwrap().value, 1);
    tokio::time::sleep(Duration::from_millis(80)).await;
    let stale = futures::future::join_all((0..20).map(|_| cache.get(&1))).await;
    assert!(
        stale
            .iter()
            .all(|r| { r.as_ref().map(|l| l.stale && l.value == 1).unwrap_or(false) })
    );
    wait_for(&calls, 2).await;
    // The refreshed value replaces the stale one.
    tokio::time::timeout(Duration::from_secs(5), async {
        while cache.get(&1).await.unwrap().value != 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("refreshed value appears");
    assert_eq!(calls.load(Ordering::SeqCst), 2, "exactly one refresh");
}

#[tokio::test]
async fn failed_refresh_keeps_serving_the_old_value_with_the_error() {
    let (cache, calls, fail) = counting(50);
    assert_eq!(cache.get(&1).await.unwrap().value, 1);
    tokio::time::sleep(Duration::from_millis(80)).await;
    fail.store(true, Ordering::SeqCst);
    assert!(cache.get(&1).await.unwrap().stale);
    wait_for(&calls, 2).await;
    let lookup = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let lookup = cache.get(&1).await.unwrap();
            if lookup.error.is_some() {
                return lookup;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the error is recorded");
    assert!(lookup.stale);
    assert_eq!(lookup.value, 1);
    assert_eq!(lookup.error.unwrap().message, "upstream down");
}

#[tokio::test]
async fn invalidate_forces_a_reload() {
    let (cache, calls, _) = counting(10_000);
    cache.get(&1).await.unwrap();
    cache.invalidate(&1).await;
    assert_eq!(cache.get(&1).await.unwrap().value, 2);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_load_running_when_its_key_is_invalidated_is_not_kept() {
    let (cache, calls, _) = counting(10_000);
    let cache = Arc::new(cache);
    let first = tokio::spawn({
        let cache = Arc::clone(&cache);
        async move { cache.get(&1).await }
    });
    // The load (20 ms) started; the data it reads predates this invalidation.
    wait_for(&calls, 1).await;
    cache.invalidate(&1).await;
    assert_eq!(
        first.await.unwrap().unwrap().value,
        1,
        "its waiter is answered"
    );
    assert_eq!(
        cache.get(&1).await.unwrap().value,
        2,
        "the next read loads again"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(cache.get(&1).await.unwrap().value, 2, "that one is kept");
    assert_eq!(cache.counters().snapshot().errors, 0);
}

#[tokio::test]
async fn a_reader_arriving_after_an_invalidation_does_not_take_the_older_load() {
    let calls = Arc::new(AtomicU32::new(0));
    let gate = Arc::new(tokio::sync::Notify::new());
    let load: LoadFn<u32, u32> = {
        let calls = calls.clone();
        let gate = gate.clone();
        Arc::new(move |_k| {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            let gate = gate.clone();
            Box::pin(async move {
                if n == 1 {
                    gate.notified().await; // the read before the change
                }
                Ok(n)
            })
        })
    };
    let store = Store::with_ttl(
        10,
        Duration::from_secs(60),
        Duration::from_secs(60),
        Arc::new(SystemClock),
    );
    let cache = Arc::new(cache(store, load));
    let get = |cache: &Arc<SectionCache<u32, u32>>| {
        let cache = Arc::clone(cache);
        tokio::spawn(async move { cache.get(&1).await.map(|l| l.value) })
    };
    let before = get(&cache);
    wait_for(&calls, 1).await;
    cache.invalidate(&1).await;
    let after = get(&cache);
    // Let the late reader reach the running load (current-thread runtime).
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    gate.notify_one();
    assert_eq!(before.await.unwrap(), Ok(1));
    assert_eq!(after.await.unwrap(), Ok(2), "loaded after the invalidation");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(cache.get(&1).await.unwrap().value, 2);
}

#[tokio::test]
async fn values_past_the_hard_limit_are_reloaded() {
    let calls = Arc::new(AtomicU32::new(0));
    let load: LoadFn<u32, u32> = {
        let calls = calls.clone();
        Arc::new(move |_k| {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            Box::pin(async move { Ok(n) })
        })
    };
    let store = Store::with_ttl(
        10,
        Duration::from_millis(20),
        Duration::from_millis(40),
        Arc::new(SystemClock),
    );
    let cache = cache(store, load);
    cache.get(&1).await.unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    let lookup = cache.get(&1).await.unwrap();
    assert!(!lookup.stale, "a value past max_stale is never served");
    assert_eq!(lookup.value, 2);
}

#[tokio::test]
async fn every_write_of_a_section_cache_moves_the_stripe_of_its_key() {
    let (cache, calls, fail) = counting(30);
    let writes = Arc::clone(&cache.store.writes);
    // A miss load kept.
    let mark = writes.mark(&1);
    cache.get(&1).await.unwrap();
    assert!(!writes.holds(mark), "a miss kept");
    // A fresh hit writes nothing.
    let mark = writes.mark(&1);
    cache.get(&1).await.unwrap();
    assert!(writes.holds(mark), "a hit");
    // A refresh that replaces the value, and one that stores its error.
    for failing in [false, true] {
        fail.store(failing, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(40)).await;
        let before = calls.load(Ordering::SeqCst);
        let mark = writes.mark(&1);
        let stale = cache.get(&1).await.unwrap();
        assert!(stale.stale);
        wait_for(&calls, before + 1).await;
        tokio::time::timeout(Duration::from_secs(5), async {
            while writes.holds(mark) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("the refresh (failing: {failing}) moved no stripe"));
    }
    fail.store(false, Ordering::SeqCst);
    // Invalidations, of one key and of all.
    let mark = writes.mark(&1);
    cache.invalidate_local(&1).await;
    assert!(!writes.holds(mark), "an invalidation");
    cache.get(&2).await.unwrap();
    let mark = writes.mark(&2);
    cache.invalidate_all();
    assert!(!writes.holds(mark), "invalidate_all");
}

#[tokio::test]
async fn a_refresh_cancelled_at_shutdown_still_moves_the_stripe() {
    let (cache, calls, _) = counting(20);
    let writes = Arc::clone(&cache.store.writes);
    cache.get(&1).await.unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    let mark = writes.mark(&1);
    assert!(cache.get(&1).await.unwrap().stale, "a refresh starts");
    wait_for(&calls, 2).await;
    // The refresh is inside its 20 ms load: no grace, it is cancelled.
    cache.tasks.shutdown(Duration::ZERO).await;
    assert!(
        !writes.holds(mark),
        "the cancelled refresh moved the stripe"
    );
}
