//! The owner of a [`CardService`](crate::CardService)'s tasks.
//!
//! Every task the crate spawns goes through one [`Tasks`] (a tokio-util
//! `TaskTracker` and a `CancellationToken`), so [`Tasks::shutdown`] can stop
//! them, as mini-redis does with its shutdown signal and drop guard:
//!
//! * **background** work that nobody waits for (stale-while-revalidate
//!   refreshes, their batch flushes, the rest of a services listing) is
//!   cancelled at shutdown;
//! * **awaited** work (a miss load, a batch flush, a single service read:
//!   a caller waits for its answer) runs in its own task so that a caller
//!   who gives up does not cancel it for the others; at shutdown it is
//!   waited for (bounded), not cut off.
//!
//! After shutdown nothing is spawned: awaited work runs inline in the
//! caller's task, and background work is not started.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A task ended without its result (it panicked, or its runtime went away).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TaskFailed(pub String);

/// Spawns and stops the tasks of one card service; cloning shares it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tasks {
    tracker: TaskTracker,
    cancel: CancellationToken,
}

impl Tasks {
    /// True once [`Tasks::shutdown`] was called.
    pub(crate) fn is_shut_down(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Starts `work` that somebody waits for: in its own task (it goes on
    /// if the waiter gives up), or, after shutdown, inline when the
    /// returned future is polled. Either way it starts no later than the
    /// first poll.
    pub(crate) fn start<F>(&self, work: F) -> BoxFuture<'static, Result<F::Output, TaskFailed>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        if self.is_shut_down() {
            return AssertUnwindSafe(work)
                .catch_unwind()
                .map(|r| r.map_err(|_| TaskFailed("the task panicked".into())))
                .boxed();
        }
        let handle = self.tracker.spawn(work);
        async move { handle.await.map_err(|e| TaskFailed(e.to_string())) }.boxed()
    }

    /// Spawns awaited `work` whose result goes elsewhere (a channel).
    /// After shutdown it is handed back, to be run inline.
    pub(crate) fn spawn<F>(&self, work: F) -> Result<(), F>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if self.is_shut_down() {
            return Err(work);
        }
        self.tracker.spawn(work);
        Ok(())
    }

    /// Spawns `work` nobody waits for; shutdown cancels it. After shutdown
    /// it is handed back, not started.
    pub(crate) fn background<F>(&self, work: F) -> Result<(), F>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if self.is_shut_down() {
            return Err(work);
        }
        let cancel = self.cancel.clone();
        self.tracker.spawn(async move {
            cancel.run_until_cancelled(work).await;
        });
        Ok(())
    }

    /// Stops starting tasks, cancels the background ones and waits up to
    /// `grace` for every task to end. Idempotent; true when all ended.
    pub(crate) async fn shutdown(&self, grace: Duration) -> bool {
        self.cancel.cancel();
        self.tracker.close();
        tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
    }

    /// Tasks running now.
    #[cfg(test)]
    pub(crate) fn running(&self) -> usize {
        self.tracker.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[tokio::test]
    async fn shutdown_cancels_background_work_and_waits_for_awaited_work() {
        let tasks = Tasks::default();
        let finished = Arc::new(AtomicBool::new(false));
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let spawned = tasks.background(async move {
            let _ = started_tx.send(());
            futures::future::pending::<()>().await;
        });
        assert!(spawned.is_ok());
        let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
        let awaited = tasks.start({
            let finished = Arc::clone(&finished);
            async move {
                let _ = release_rx.await;
                finished.store(true, Ordering::SeqCst);
                7
            }
        });
        started_rx.await.unwrap();
        assert_eq!(tasks.running(), 2);
        let shutdown = tokio::spawn({
            let tasks = tasks.clone();
            async move { tasks.shutdown(Duration::from_secs(5)).await }
        });
        // The awaited task holds the shutdown until it ends.
        release_tx.send(()).unwrap();
        assert!(shutdown.await.unwrap(), "every task ended within the grace");
        assert!(finished.load(Ordering::SeqCst));
        assert_eq!(awaited.await, Ok(7));
        assert_eq!(tasks.running(), 0);
    }

    #[tokio::test]
    async fn nothing_is_spawned_after_shutdown() {
        let tasks = Tasks::default();
        assert!(tasks.shutdown(Duration::from_secs(1)).await);
        assert!(tasks.shutdown(Duration::from_secs(1)).await, "idempotent");
        assert!(tasks.background(async {}).is_err(), "handed back");
        let inline = tasks.start(async { 5 });
        assert_eq!(tasks.running(), 0, "awaited work runs inline");
        assert_eq!(inline.await, Ok(5));
        let panicked = tasks.start(async { panic!("boom") });
        assert!(panicked.await.is_err(), "a panic is an error, not a crash");
    }

    #[tokio::test]
    async fn the_grace_bounds_the_wait() {
        let tasks = Tasks::default();
        let _hung = tasks.start(futures::future::pending::<()>());
        assert!(!tasks.shutdown(Duration::from_millis(20)).await);
    }
}
