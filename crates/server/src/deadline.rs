//! Every request that waits on PagerDuty gets an answer within
//! `server.request_deadline_ms`.

use std::future::Future;
use std::time::Duration;

use crate::error::ApiError;

/// Run `work` with the request deadline. Past it the future is dropped
/// (cancelling its upstream calls) and the caller gets 504
/// `deadline_exceeded`.
///
/// This wraps handler work rather than being a middleware because a
/// middleware would have to keep a clone of the `HttpRequest` to build the
/// late answer, and actix's router needs that request unshared.
pub async fn within<T>(
    deadline: Duration,
    work: impl Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    match tokio::time::timeout(deadline, work).await {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!(
                deadline_ms = deadline.as_millis() as u64,
                "request deadline exceeded"
            );
            Err(ApiError::DeadlineExceeded {
                deadline_ms: u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slow_work_becomes_deadline_exceeded() {
        let result: Result<(), ApiError> = within(Duration::from_millis(10), async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(())
        })
        .await;
        assert!(matches!(
            result,
            Err(ApiError::DeadlineExceeded { deadline_ms: 10 })
        ));
    }

    #[tokio::test]
    async fn fast_work_passes_through() {
        assert_eq!(
            within(Duration::from_secs(5), async { Ok(7) })
                .await
                .unwrap(),
            7
        );
    }
}
