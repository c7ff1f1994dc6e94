//! Unit tests on SQLite (in memory and in a file); the end-to-end suite runs
//! the same behaviour against Postgres too.

use std::time::Duration;

use super::*;

fn temp_db() -> (std::path::PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("dutycard-store-{}", uuid::Uuid::new_v4()));
    let url = format!("sqlite://{}/nested/dutycard.db", dir.display());
    (dir, url)
}

fn new_mapping(service: &str, entity: &str) -> NewMapping {
    NewMapping {
        service_id: service.into(),
        entity_ref: entity.into(),
        integration_key: Some(StoredKey::new("k-".to_owned() + service)),
        account: String::new(),
    }
}

fn every_migration() -> Vec<i64> {
    (1..=migrate::latest_version()).collect()
}

#[tokio::test]
async fn migrations_run_once_and_a_rerun_is_a_no_op() {
    let (dir, url) = temp_db();
    let store = Store::open(&StoreOptions::new(&url)).await.expect("opens");
    assert_eq!(store.applied_migrations().await.unwrap(), every_migration());
    store.migrate().await.expect("re-run");
    store.close().await;
    let again = Store::open(&StoreOptions::new(&url))
        .await
        .expect("reopens");
    assert_eq!(again.applied_migrations().await.unwrap(), every_migration());
    again.close().await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_sqlite_file_store_runs_in_wal_mode_with_full_sync() {
    // WAL lets readers run while a write commits (several pooled
    // connections, several processes on one file); FULL sync makes an
    // acknowledged write durable. Every pooled connection has both.
    let (dir, url) = temp_db();
    let mut options = StoreOptions::new(&url);
    options.pool_size = 2;
    let store = Store::open(&options).await.expect("opens");
    let Pool::Sqlite(pool) = &store.pool else {
        panic!("a sqlite URL opens SQLite")
    };
    let (mut a, mut b) = (pool.acquire().await.unwrap(), pool.acquire().await.unwrap());
    for conn in [&mut a, &mut b] {
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        assert_eq!(sync, 2, "FULL");
    }
    drop((a, b));
    store
        .upsert_mapping(&new_mapping("P1", "component:default/a"))
        .await
        .unwrap();
    assert!(
        std::path::Path::new(&format!("{}/nested/dutycard.db-wal", dir.display())).exists(),
        "the write went through the WAL file"
    );
    store.close().await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn an_upsert_replaces_the_services_row_and_keeps_its_id() {
    let store = Store::open(&StoreOptions::new("sqlite::memory:"))
        .await
        .unwrap();
    let first = store
        .upsert_mapping(&new_mapping("P1", "component:default/a"))
        .await
        .unwrap();
    assert_eq!(first.revision, 1);
    let second = store
        .upsert_mapping(&new_mapping("P1", "component:default/b"))
        .await
        .unwrap();
    assert_eq!(second.id, first.id);
    assert_eq!(second.index, first.index);
    assert_eq!(second.revision, 2);
    assert_eq!(second.entity_ref, "component:default/b");
    assert_eq!(store.mappings().await.unwrap(), vec![second.clone()]);
    assert_eq!(
        store
            .mappings_of_entity("component:default/a")
            .await
            .unwrap(),
        vec![]
    );
    assert_eq!(store.delete_mapping("P1").await.unwrap(), Some(second));
    assert_eq!(store.mapping_by_service("P1").await.unwrap(), None);
    assert_eq!(store.delete_mapping("P1").await.unwrap(), None);
}

#[tokio::test]
async fn bulk_inserts_skip_mapped_services_across_chunks() {
    let store = Store::open(&StoreOptions::new("sqlite::memory:"))
        .await
        .unwrap();
    store
        .upsert_mapping(&new_mapping("S3", "component:default/old"))
        .await
        .unwrap();
    let rows: Vec<_> = (0..BULK_CHUNK + 5)
        .map(|i| new_mapping(&format!("S{i}"), "component:default/many"))
        .collect();
    let outcomes = store.insert_new_mappings(&rows).await.unwrap();
    assert_eq!(outcomes.len(), rows.len());
    assert_eq!(outcomes[3], Inserted::Exists);
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| matches!(o, Inserted::Created(_)))
            .count(),
        rows.len() - 1
    );
    assert_eq!(
        store
            .mappings_of_entity("component:default/many")
            .await
            .unwrap()
            .len(),
        rows.len() - 1
    );
    assert_eq!(
        store
            .mapping_by_service("S3")
            .await
            .unwrap()
            .unwrap()
            .entity_ref,
        "component:default/old"
    );
}

#[tokio::test]
async fn settings_are_written_together_and_read_back() {
    let store = Store::open(&StoreOptions::new("sqlite::memory:"))
        .await
        .unwrap();
    assert_eq!(store.setting("a").await.unwrap(), None);
    store
        .put_settings(&[("a".into(), "1".into()), ("b".into(), "2".into())])
        .await
        .unwrap();
    store
        .put_settings(&[("a".into(), "3".into())])
        .await
        .unwrap();
    let a = store.setting("a").await.unwrap().unwrap();
    assert_eq!((a.id.as_str(), a.value.as_str()), ("a", "3"));
    assert_eq!(a.updated_at.len(), "2026-11-22 13:34:08".len());
    assert_eq!(store.setting("b").await.unwrap().unwrap().value, "2");
}

#[tokio::test]
async fn keys_never_show_in_debug_output() {
    let m = new_mapping("P1", "component:default/a");
    assert!(!format!("{m:?}").contains("k-P1"));
}

#[tokio::test]
async fn a_closed_store_is_unavailable_at_once() {
    let mut options = StoreOptions::new("sqlite::memory:");
    options.acquire_timeout = Duration::from_millis(200);
    let store = Store::open(&options).await.unwrap();
    store.close().await;
    let e = store.ping().await.unwrap_err();
    assert!(e.is_unavailable(), "{e:?}");
}

/// CI once saw `database is locked` from three stores opening one fresh
/// file at once (the switch to WAL): many rounds of that all open.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stores_opening_one_fresh_file_at_once_all_open() {
    for _ in 0..20 {
        let (dir, url) = temp_db();
        let options = StoreOptions::new(&url);
        let opens = (0..6).map(|_| {
            let options = options.clone();
            tokio::spawn(async move { Store::open(&options).await })
        });
        for store in futures::future::join_all(opens).await {
            let store = store.unwrap().expect("every store opens");
            assert_eq!(store.applied_migrations().await.unwrap(), every_migration());
            store.close().await;
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[tokio::test]
async fn a_locked_sqlite_file_is_unavailable_within_the_bound() {
    let (dir, url) = temp_db();
    let mut options = StoreOptions::new(&url);
    // Short statements (the busy timeout), the default acquire bound: a
    // loaded machine may take a while to open the file.
    options.statement_timeout = Duration::from_millis(100);
    let store = Store::open(&options).await.unwrap();
    // Another writer holds the write lock.
    let Pool::Sqlite(pool) = &store.pool else {
        unreachable!()
    };
    let mut holder = pool.acquire().await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *holder)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let e = store
        .upsert_mapping(&new_mapping("P1", "component:default/a"))
        .await
        .unwrap_err();
    assert!(e.is_unavailable(), "{e:?}");
    assert!(started.elapsed() < options.operation_timeout() + Duration::from_secs(1));
    sqlx::query("ROLLBACK").execute(&mut *holder).await.unwrap();
    drop(holder);
    store
        .upsert_mapping(&new_mapping("P1", "component:default/a"))
        .await
        .expect("recovers");
    store.close().await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_bad_url_names_the_problem_without_the_password() {
    let e = Store::open(&StoreOptions::new("mysql://u:hunter2@h/d"))
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(text.contains("expected sqlite:"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

/// Every write that changes rows moves the revision; one that changes
/// nothing (a bulk of mapped services, a delete of no row) does not.
#[tokio::test]
async fn the_revision_moves_with_every_write_that_changes_rows() {
    let store = Store::open(&StoreOptions::new("sqlite::memory:"))
        .await
        .unwrap();
    let mut seen = store.mappings_revision().await.unwrap();
    let mut moved = |now: i64, what: &str| {
        assert!(now > seen, "{what}: {now} after {seen}");
        seen = now;
    };
    store
        .upsert_mapping(&new_mapping("P1", "component:default/a"))
        .await
        .unwrap();
    moved(store.mappings_revision().await.unwrap(), "an insert");
    store
        .upsert_mapping(&new_mapping("P1", "component:default/b"))
        .await
        .unwrap();
    moved(store.mappings_revision().await.unwrap(), "an upsert");
    store
        .insert_new_mappings(&[
            new_mapping("P1", "component:default/c"),
            new_mapping("P2", "component:default/c"),
        ])
        .await
        .unwrap();
    moved(store.mappings_revision().await.unwrap(), "a bulk insert");
    store.delete_mapping("P2").await.unwrap();
    moved(store.mappings_revision().await.unwrap(), "a delete");

    store
        .insert_new_mappings(&[new_mapping("P1", "component:default/d")])
        .await
        .unwrap();
    store.delete_mapping("P2").await.unwrap();
    assert_eq!(
        store.mappings_revision().await.unwrap(),
        seen,
        "nothing changed"
    );
}

/// The revision moves in the writing transaction: another connection sees
/// it only after the commit, and a rolled-back write leaves it as it was.
#[tokio::test]
async fn the_revision_is_seen_after_the_commit_and_not_after_a_rollback() {
    let (dir, url) = temp_db();
    let store = Store::open(&StoreOptions::new(&url)).await.unwrap();
    let before = store.mappings_revision().await.unwrap();
    let Pool::Sqlite(pool) = &store.pool else {
        unreachable!()
    };
    for commit in [false, true] {
        let mut tx = pool.begin().await.unwrap();
        sqlx::query(&mappings::upsert_sql())
            .bind(uuid::Uuid::new_v4().to_string())
            .bind("P1")
            .bind(None::<&str>)
            .bind("component:default/a")
            .bind("")
            .bind(0_i64)
            .execute(&mut *tx)
            .await
            .unwrap();
        assert_eq!(
            store.mappings_revision().await.unwrap(),
            before,
            "not visible before the commit"
        );
        if commit {
            tx.commit().await.unwrap();
            assert!(store.mappings_revision().await.unwrap() > before);
        } else {
            tx.rollback().await.unwrap();
            assert_eq!(store.mappings_revision().await.unwrap(), before);
            assert_eq!(store.mappings().await.unwrap(), vec![]);
        }
    }
    store.close().await;
    std::fs::remove_dir_all(dir).unwrap();
}
