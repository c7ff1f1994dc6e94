//! The REST rate budget: what a REST call waits for before it is sent.
//!
//! PagerDuty limits REST calls per account (960 a minute for an account
//! key or an app), and answers 429 with `ratelimit-reset` past it. The
//! client keeps to that through a [`RateBudget`]: before every REST attempt
//! it asks the budget for a permit (bounded by the call's deadline), and it
//! tells the budget about every 429 with a reset and every set of
//! `ratelimit-*` headers PagerDuty sends. Events API enqueues and OAuth
//! token requests never go through the budget: PagerDuty's limit counts REST
//! calls only, and a page must not queue behind card reads.
//!
//! [`LocalRateBudget`] is the default, in-process budget: a token bucket
//! ([`ClientBuilder::rate_limit_per_minute`](crate::ClientBuilder::rate_limit_per_minute))
//! and an account-wide pause after a 429. Several replicas sharing one
//! account can supply a shared one instead (for example through Redis) with
//! [`ClientBuilder::rate_budget`](crate::ClientBuilder::rate_budget).
//! With the cargo feature `redis`, [`redis::RedisRateBudget`] is that shared
//! budget: a GCRA and the 429 pause kept in Redis, with a local fallback at
//! the replica's share of the rate while Redis is unreachable.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use futures::future::BoxFuture;
use governor::clock::Clock;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::HeaderMap;
use tokio::time::Instant;

use crate::error::{Error, PdErrorBody, Result};
use crate::retry::jitter;

#[cfg(feature = "redis")]
pub mod redis;

/// Decides when the client may send a REST request; see the
/// [module docs](self).
///
/// # What an implementation must guarantee
///
/// A shared implementation (several replicas, one PagerDuty account) must
/// keep these, which the in-process [`LocalRateBudget`] does:
///
/// 1. **Bounded waits.** [`acquire`](RateBudget::acquire) resolves before
///    [`PermitRequest::deadline`]: with `Ok(())` when the request may be
///    sent now, or with [`PermitDenied`] as soon as it knows the permit
///    cannot be had in time (without waiting for the deadline first). A
///    denied call fails with [`Error::RateLimited`] and is not sent; a
///    permit granted with only milliseconds left would turn into a false
///    timeout, maybe after reaching PagerDuty.
/// 2. **One permit, one request.** Every `Ok(())` is spent on exactly one
///    REST request (retries ask again). Across replicas, the permits
///    granted per minute stay within the account's limit: each replica
///    spending a full local bucket multiplies the rate by the replica count.
/// 3. **429 pauses are account-wide.** After
///    [`on_rate_limited`](RateBudget::on_rate_limited), no permit is
///    granted anywhere until the pause ends (a later, shorter pause never
///    shortens a longer one); a call that would wait past its deadline is
///    denied with the time left and PagerDuty's body of the 429. When the
///    pause ends, waiting callers resume spread over
///    [`PermitRequest::resume_jitter`], not all at once.
/// 4. **Quick notifications.** `on_rate_limited` and
///    [`on_headers`](RateBudget::on_headers) run on the request path: they
///    must not block (publish to a shared store from a spawned task).
/// 5. **Cancellation.** The `acquire` future may be dropped (the caller
///    gave up): that must not leak a reservation.
/// 6. **Availability.** When the shared store cannot be reached, keep
///    answering within the deadline (for example with a local bucket at
///    the replica's share of the rate) rather than failing every call.
/// 7. **No secrets.** Nothing here carries one; keep it so (the endpoint is
///    a path template such as `/services/{id}`).
pub trait RateBudget: Send + Sync + 'static {
    /// Waits until one REST request may be sent, never past
    /// `request.deadline`.
    fn acquire(&self, request: PermitRequest) -> BoxFuture<'_, Result<(), PermitDenied>>;

    /// PagerDuty answered a REST call with 429 and a reset: no REST call of
    /// the account should be sent for `pause` (the reset, clamped by the
    /// client's retry policy to at least 1 s and at most its `max_delay`).
    /// `body` is PagerDuty's answer, for the errors of denied calls.
    fn on_rate_limited(&self, pause: Duration, body: &PdErrorBody);

    /// PagerDuty sent `ratelimit-limit`, `ratelimit-remaining` or
    /// `ratelimit-reset` on a REST answer (any status). The default ignores
    /// them (the local bucket already keeps the pace); a shared budget can
    /// use them to slow every replica down before PagerDuty says 429.
    fn on_headers(&self, headers: &RateLimitHeaders) {
        let _ = headers;
    }
}

/// What [`RateBudget::acquire`] is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PermitRequest {
    /// The path template of the call, e.g. `/services/{id}`.
    pub endpoint: &'static str,
    /// When the call's retry deadline ends: resolve before it.
    pub deadline: Instant,
    /// At most this much random extra wait after a 429 pause ends (the
    /// retry policy's `base_delay`).
    pub resume_jitter: Duration,
}

/// A permit that cannot be had before the call's deadline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PermitDenied {
    /// How long until a permit is expected.
    pub retry_after: Duration,
    /// PagerDuty's body of the 429 behind a pause, or a body whose
    /// `message` says which limit of the client held the call (its
    /// `status` is then `None`: PagerDuty did not answer 429).
    pub body: PdErrorBody,
}

impl From<PermitDenied> for Error {
    fn from(d: PermitDenied) -> Self {
        Error::RateLimited {
            retry_after: Some(d.retry_after),
            body: d.body,
        }
    }
}

/// PagerDuty's rate-limit headers on one REST answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimitHeaders {
    /// `ratelimit-limit`: requests allowed in the window.
    pub limit: Option<u64>,
    /// `ratelimit-remaining`: requests left in the window.
    pub remaining: Option<u64>,
    /// `ratelimit-reset`: time until the window resets.
    pub reset: Option<Duration>,
}

impl RateLimitHeaders {
    /// Reads the headers; `None` when PagerDuty sent none of them.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let parsed = RateLimitHeaders {
            limit: header_u64(headers, "ratelimit-limit"),
            remaining: header_u64(headers, "ratelimit-remaining"),
            reset: header_seconds(headers, "ratelimit-reset"),
        };
        (parsed != RateLimitHeaders::default()).then_some(parsed)
    }
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// A header holding seconds (PagerDuty sends whole ones; fractions and
/// values over a day are accepted and clamped).
pub(crate) fn header_seconds(headers: &HeaderMap, name: &str) -> Option<Duration> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(86_400.0)))
}

/// The in-process [`RateBudget`], the client's default: an optional token
/// bucket (at most `n` REST requests a minute, bursts of `n/60`, at least 1)
/// and the account-wide pause after a 429 with a reset.
pub struct LocalRateBudget {
    bucket: Option<DefaultDirectRateLimiter>,
    /// No REST call before this instant (with the body of the 429 that set it).
    paused_until: Mutex<Option<(Instant, PdErrorBody)>>,
}

impl fmt::Debug for LocalRateBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalRateBudget")
            .field("bucket", &self.bucket.is_some())
            .finish_non_exhaustive()
    }
}

impl LocalRateBudget {
    /// A budget with a bucket of `per_minute` requests a minute (`None`: no
    /// bucket, only the 429 pause). Fails with [`Error::Config`] on `Some(0)`.
    pub fn new(per_minute: Option<u32>) -> Result<Self> {
        let bucket = match per_minute {
            None => None,
            Some(n) => {
                let per_minute = NonZeroU32::new(n).ok_or_else(|| Error::Config {
                    field: "rate_limit_per_minute".into(),
                    message: "must be at least 1".into(),
                })?;
                let burst = NonZeroU32::new((n / 60).max(1)).unwrap_or(NonZeroU32::MIN);
                Some(RateLimiter::direct(
                    Quota::per_minute(per_minute).allow_burst(burst),
                ))
            }
        };
        Ok(LocalRateBudget {
            bucket,
            paused_until: Mutex::new(None),
        })
    }

    /// The time left of a 429 pause, if one is in force.
    fn pause(&self) -> Option<(Duration, PdErrorBody)> {
        let mut guard = self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
        let (until, body) = guard.as_ref()?;
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            *guard = None;
            return None;
        }
        Some((left, body.clone()))
    }

    /// Waits out a 429 pause in force, unless it ends too late.
    async fn wait_for_pause(&self, request: &PermitRequest) -> Result<(), PermitDenied> {
        let Some((left, body)) = self.pause() else {
            return Ok(());
        };
        let wait = left + jitter(request.resume_jitter);
        if Instant::now() + wait >= request.deadline {
            return Err(PermitDenied {
                retry_after: left,
                body,
            });
        }
        tracing::debug!(
            endpoint = request.endpoint,
            wait_ms = wait.as_millis() as u64,
            "PagerDuty rate limit in force for the account; waiting for its reset"
        );
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// Takes a cell of the token bucket, waiting no later than the deadline.
    async fn wait_for_bucket(&self, request: &PermitRequest) -> Result<(), PermitDenied> {
        let Some(bucket) = &self.bucket else {
            return Ok(());
        };
        let Err(not_until) = bucket.check() else {
            return Ok(());
        };
        let left = request.deadline.saturating_duration_since(Instant::now());
        let estimate = not_until.wait_time_from(bucket.clock().now());
        let denied = || {
            PermitDenied {
            retry_after: estimate,
            body: PdErrorBody {
                message: Some(
                    "the client's own rate limit (rate_limit_per_minute) would delay the call past its deadline; it was not sent"
                        .into(),
                ),
                ..Default::default()
            },
        }
        };
        if estimate >= left {
            return Err(denied());
        }
        tracing::debug!(
            endpoint = request.endpoint,
            wait_ms = estimate.as_millis() as u64,
            "waiting in the client's rate limiter"
        );
        // Other callers may take the next cells first: still bounded.
        tokio::time::timeout(left, bucket.until_ready())
            .await
            .map_err(|_| denied())
    }
}

impl RateBudget for LocalRateBudget {
    fn acquire(&self, request: PermitRequest) -> BoxFuture<'_, Result<(), PermitDenied>> {
        Box::pin(async move {
            self.wait_for_pause(&request).await?;
            self.wait_for_bucket(&request).await
        })
    }

    fn on_rate_limited(&self, pause: Duration, body: &PdErrorBody) {
        let until = Instant::now() + pause;
        let mut guard = self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
        if guard.as_ref().is_none_or(|(u, _)| *u < until) {
            *guard = Some((until, body.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(deadline: Duration) -> PermitRequest {
        PermitRequest {
            endpoint: "/services",
            deadline: Instant::now() + deadline,
            resume_jitter: Duration::ZERO,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_permits_until_it_ends_and_denies_past_the_deadline() {
        let budget = LocalRateBudget::new(None).unwrap();
        budget
            .acquire(request(Duration::from_secs(1)))
            .await
            .unwrap();
        let body = PdErrorBody {
            status: Some(429),
            message: Some("Rate Limit Exceeded".into()),
            ..Default::default()
        };
        budget.on_rate_limited(Duration::from_secs(5), &body);
        // A shorter pause does not shorten it.
        budget.on_rate_limited(Duration::from_secs(1), &PdErrorBody::default());
        let denied = budget
            .acquire(request(Duration::from_secs(3)))
            .await
            .unwrap_err();
        assert_eq!(denied.retry_after, Duration::from_secs(5));
        assert_eq!(denied.body, body);
        let started = Instant::now();
        budget
            .acquire(request(Duration::from_secs(10)))
            .await
            .unwrap();
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        // Over: granted at once.
        let started = Instant::now();
        budget
            .acquire(request(Duration::from_secs(1)))
            .await
            .unwrap();
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[test]
    fn a_zero_rate_is_a_config_error() {
        let err = LocalRateBudget::new(Some(0)).unwrap_err();
        assert!(
            matches!(&err, Error::Config { field, .. } if field == "rate_limit_per_minute"),
            "{err:?}"
        );
    }

    #[test]
    fn rate_limit_headers_are_read_when_present() {
        let mut h = HeaderMap::new();
        assert_eq!(RateLimitHeaders::from_headers(&h), None);
        h.insert("ratelimit-limit", "960".parse().unwrap());
        h.insert("ratelimit-remaining", " 12 ".parse().unwrap());
        h.insert("ratelimit-reset", "20".parse().unwrap());
        assert_eq!(
            RateLimitHeaders::from_headers(&h),
            Some(RateLimitHeaders {
                limit: Some(960),
                remaining: Some(12),
                reset: Some(Duration::from_secs(20)),
            })
        );
        h.insert("ratelimit-reset", "-1".parse().unwrap());
        h.remove("ratelimit-limit");
        let parsed = RateLimitHeaders::from_headers(&h).unwrap();
        assert_eq!((parsed.limit, parsed.reset), (None, None));
    }
}
