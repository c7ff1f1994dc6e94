//! The store's bounds on Postgres: a statement that runs past
//! `store.statement_timeout_ms` is cancelled by the server and reported as
//! unavailable (HTTP 503 `store_unavailable`), well before the whole
//! operation's bound.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use store::{StoreError, Unavailable};

use crate::store::Db;

#[tokio::test]
async fn a_statement_past_the_statement_timeout_is_unavailable_on_postgres() {
    let db = Db::postgres();
    let mut options = store::StoreOptions::new(db.url());
    options.statement_timeout = Duration::from_millis(300);
    // The operation bound (acquire + 2 x statement) is then 5.6 s: an error
    // well before it, carrying the driver's error, is Postgres's own cancel.
    options.acquire_timeout = Duration::from_secs(5);
    let store = store::Store::open(&options).await.expect("opens");

    // A second session holds the settings table's lock, so the next read
    // waits on it; it says so once the lock is taken.
    let mut holder = db
        .pg()
        .psql()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("psql runs");
    let mut stdin = holder.stdin.take().unwrap();
    writeln!(
        stdin,
        "BEGIN; LOCK TABLE pagerduty_settings IN ACCESS EXCLUSIVE MODE; SELECT 'locked';"
    )
    .unwrap();
    let stdout = holder.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("psql took the lock within 30 s");
    assert_eq!(line, "locked");

    let started = Instant::now();
    let err = store
        .setting("settings::data-sync")
        .await
        .expect_err("the read waits on the lock past the statement timeout");
    let elapsed = started.elapsed();
    assert!(
        matches!(
            &err,
            StoreError::Unavailable {
                why: Unavailable::TimedOut,
                source: Some(_),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_unavailable());
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(3),
        "cancelled at the statement timeout, not the operation bound: {elapsed:?}"
    );
    assert!(
        !err.to_string().contains("canceling statement"),
        "no driver text: {err}"
    );

    // Lock released: the same store reads again.
    writeln!(stdin, "ROLLBACK;").unwrap();
    drop(stdin);
    assert!(holder.wait().expect("psql exits").success());
    assert!(
        store
            .setting("settings::data-sync")
            .await
            .unwrap()
            .is_none()
    );
    store.close().await;
}
