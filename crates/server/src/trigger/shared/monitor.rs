//! The trigger's watch on Redis: one task per [`SharedTrigger`](super::SharedTrigger)
//! that pings Redis at once, then every probe interval, whatever the mode.
//!
//! A failed trigger call already switches to local; the ping is what tells
//! the mode when no trigger is asked: a replica that starts while Redis is
//! down, or loses it between triggers, reports `degraded-local` in
//! `/readyz` and `/metrics` within one interval instead of claiming to
//! share, and shares again within one interval of Redis answering.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use super::{Inner, bounded};

/// Starts the watch of `inner` unless it runs already. Outside a Tokio
/// runtime it does nothing (the next trigger call starts it).
pub(super) fn start(inner: &Arc<Inner>) {
    if inner.monitoring.swap(true, Ordering::AcqRel) {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        inner.monitoring.store(false, Ordering::Release);
        return;
    };
    let weak: Weak<Inner> = Arc::downgrade(inner);
    let interval = inner.settings.probe_interval;
    runtime.spawn(async move {
        loop {
            // The trigger was dropped: nothing to watch for. Only a weak
            // reference is held across the sleep, so the watch never keeps
            // a trigger (and its connection) alive.
            let Some(inner) = weak.upgrade() else { return };
            let mut conn = inner.conn.clone();
            let cmd = redis::cmd("PING");
            let ping = cmd.query_async::<String>(&mut conn);
            if bounded(inner.settings.call_timeout, ping).await.is_some() {
                inner.share();
            } else {
                inner.degrade();
            }
            drop(inner);
            tokio::time::sleep(interval).await;
        }
    });
}
