//! Redeliveries across replicas: with `[shared]` Redis, a webhook id is
//! claimed with `SET key 1 NX PX <window>`, so a redelivery that lands on
//! another replica (PagerDuty's load balancer picks any) is processed once
//! too. Redis failing or slow is no reason to refuse a delivery: the call
//! is bounded and its failure falls back to this replica's own window
//! ([`super::dedupe`]), which is always consulted first.

use std::time::Duration;

use redis::aio::ConnectionManager;
use sha2::{Digest as _, Sha256};

/// Webhook ids claimed in Redis for the dedupe window.
#[derive(Clone)]
pub struct SharedDedupe {
    conn: ConnectionManager,
    window: Duration,
    call_timeout: Duration,
}

impl std::fmt::Debug for SharedDedupe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No connection details: the URL may hold a password.
        f.debug_struct("SharedDedupe")
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

/// The Redis key of `id` (an account-qualified webhook id): hashed, so a
/// sender's id of any length or bytes makes one bounded key.
pub fn key(id: &str) -> String {
    let digest: String = Sha256::digest(id.as_bytes())
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("dutycard:v1:webhook:{digest}")
}

impl SharedDedupe {
    /// Claims on `conn` for `window`, each call bounded by `call_timeout`.
    pub fn new(conn: ConnectionManager, window: Duration, call_timeout: Duration) -> Self {
        SharedDedupe {
            conn,
            window,
            call_timeout,
        }
    }

    /// `Some(true)` when this replica claimed `id` first, `Some(false)` when
    /// some replica had within the window, `None` when Redis did not answer
    /// in time (the caller goes by its local window alone).
    pub async fn first(&self, id: &str) -> Option<bool> {
        let mut conn = self.conn.clone();
        let window_ms = self.window.as_millis().max(1) as u64;
        let mut cmd = redis::cmd("SET");
        cmd.arg(key(id)).arg(1).arg("NX").arg("PX").arg(window_ms);
        let call = cmd.query_async::<Option<String>>(&mut conn);
        match tokio::time::timeout(self.call_timeout, call).await {
            Ok(Ok(set)) => Some(set.is_some()),
            Ok(Err(e)) => {
                tracing::debug!(error_kind = ?e.kind(), "webhook dedupe: Redis call failed; local window only");
                None
            }
            Err(_) => {
                tracing::debug!("webhook dedupe: Redis too slow; local window only");
                None
            }
        }
    }

    /// Releases `id` (its processing was refused, so a redelivery must
    /// count); best effort, bounded.
    pub async fn forget(&self, id: &str) {
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("DEL");
        cmd.arg(key(id));
        let call = cmd.query_async::<i64>(&mut conn);
        let _ = tokio::time::timeout(self.call_timeout, call).await;
    }
}
