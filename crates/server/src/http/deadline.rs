//! Every request that waits on PagerDuty gets an answer within
//! `server.request_deadline_ms`.

use std::future::Future;
use std::time::Duration;

/// `work` did not finish within the request deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the request did not complete within {} ms", .deadline.as_millis())]
pub struct DeadlineExceeded {
    /// The deadline that passed.
    pub deadline: Duration,
}

impl DeadlineExceeded {
    /// The deadline in whole milliseconds.
    pub fn deadline_ms(&self) -> u64 {
        u64::try_from(self.deadline.as_millis()).unwrap_or(u64::MAX)
    }
}

/// Run `work` with the request deadline. Past it the future is dropped
/// (cancelling its upstream calls) and the caller answers its surface's 504
/// (each surface's error has `From<DeadlineExceeded>` or its own wording).
///
/// This wraps handler work rather than being a middleware because a
/// middleware would have to keep a clone of the `HttpRequest` to build the
/// late answer, and actix's router needs that request unshared.
///
/// Work that is done on its first poll (a warm read: every cached route)
/// sets up no timer: a tokio timer costs a runtime handle and a timer
/// entry per request. The deadline still counts from the call.
pub async fn within<F: Future>(deadline: Duration, work: F) -> Result<F::Output, DeadlineExceeded> {
    let Some(at) = tokio::time::Instant::now().checked_add(deadline) else {
        // Too far to represent: no deadline, as `tokio::time::timeout` does.
        return Ok(work.await);
    };
    let mut work = std::pin::pin!(work);
    if let std::task::Poll::Ready(output) = futures::poll!(work.as_mut()) {
        return Ok(output);
    }
    tokio::time::timeout_at(at, work).await.map_err(|_| {
        tracing::warn!(
            deadline_ms = deadline.as_millis() as u64,
            "request deadline exceeded"
        );
        DeadlineExceeded { deadline }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slow_work_becomes_deadline_exceeded() {
        let result = within(Duration::from_millis(10), async {
            tokio::time::sleep(Duration::from_secs(5)).await;
        })
        .await;
        assert_eq!(result.unwrap_err().deadline_ms(), 10);
    }

    #[tokio::test]
    async fn fast_work_passes_through() {
        assert_eq!(within(Duration::from_secs(5), async { 7 }).await, Ok(7));
        let waits = async {
            tokio::task::yield_now().await;
            8
        };
        assert_eq!(within(Duration::from_secs(5), waits).await, Ok(8));
        assert_eq!(within(Duration::MAX, async { 9 }).await, Ok(9));
    }
}
