//! How the mapping domain's failures are answered on the Backstage surface:
//! bad input 400 naming the field, missing rows 404, a database that is
//! down or slow 503 `store_unavailable` with `Retry-After` (never a driver
//! message, never a hang), and the request deadline 504.

use std::future::Future;

use actix_web::http::StatusCode;

use super::error::{BackstageError, Op};
use crate::http::deadline;
use crate::keys::AliasError;
use crate::mappings::MappingError;
use crate::state::AppState;

/// Seconds a client should wait before retrying a store that is down.
const STORE_RETRY_AFTER_SECS: u64 = 5;

impl From<MappingError> for BackstageError {
    fn from(e: MappingError) -> Self {
        match e {
            MappingError::Invalid { field, message } => {
                BackstageError::bad_request(format!("{field} {message}"))
            }
            MappingError::NotFound(message) => {
                BackstageError::with_status(StatusCode::NOT_FOUND, message)
            }
            e @ MappingError::UnknownService { .. } => BackstageError::with_status(
                StatusCode::NOT_FOUND,
                format!("Failed to get service. {e}."),
            ),
            MappingError::PagerDuty(e) => BackstageError::from_card(Op::GetService, &e),
            MappingError::ServicesList(e) => BackstageError::from_pagerduty(Op::GetServices, &e),
            MappingError::Alias(e @ AliasError::Unknown) => {
                BackstageError::bad_request(format!("integrationKey: {e}"))
            }
            MappingError::Alias(e @ AliasError::Unavailable(_)) => {
                BackstageError::with_status(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            }
            MappingError::Store(e) if e.is_unavailable() => {
                tracing::warn!(error = %e, cause = ?std::error::Error::source(&e).map(ToString::to_string), "store unavailable");
                BackstageError {
                    retry_after_secs: Some(STORE_RETRY_AFTER_SECS),
                    ..BackstageError::with_status(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("store_unavailable: {e}; retry later."),
                    )
                }
            }
            MappingError::Store(e) => {
                tracing::error!(error = %e, cause = ?std::error::Error::source(&e).map(ToString::to_string), "store failed");
                BackstageError::with_status(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "store_failed: the store refused the operation",
                )
            }
        }
    }
}

/// Runs a store-backed operation within the request deadline (the store's
/// own bound is usually shorter; this one holds whatever it is).
pub(super) async fn within_deadline<T>(
    state: &AppState,
    work: impl Future<Output = Result<T, MappingError>>,
) -> Result<T, BackstageError> {
    match deadline::within(state.request_deadline, Box::pin(work)).await {
        Ok(result) => result.map_err(BackstageError::from),
        Err(e) => Err(BackstageError::with_status(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "The request did not complete within {} ms.",
                e.deadline_ms()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_that_is_down_is_a_503_with_retry_after_and_no_driver_text() {
        // A closed pool is the same class as a lost connection.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let e = rt.block_on(async {
            let store = store::Store::open(&store::StoreOptions::new("sqlite::memory:"))
                .await
                .unwrap();
            store.close().await;
            store.ping().await.unwrap_err()
        });
        let answer = BackstageError::from(MappingError::Store(e));
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answer.retry_after_secs, Some(STORE_RETRY_AFTER_SECS));
        assert!(
            answer.message.starts_with("store_unavailable: "),
            "{}",
            answer.message
        );
    }
}
