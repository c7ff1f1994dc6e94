//! The load generator: `concurrency` closed-loop workers (optionally paced),
//! bounded in time and in requests, latencies into an HDR histogram.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::time::MissedTickBehavior;

/// Shape of one load run.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Workers (virtual users), each with at most one request in flight.
    pub concurrency: usize,
    /// No request starts after this.
    pub duration: Duration,
    /// No more than this many requests in total.
    pub max_requests: u64,
    /// Each worker starts at most one request per `period` (think time);
    /// `None` = back to back.
    pub period: Option<Duration>,
}

/// What one request came to.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Counted as an error when false.
    pub ok: bool,
    /// Card views this request stands for (batch size, 1, or 0 for non-card routes).
    pub card_views: u64,
    /// Cards answered with service data (fresh or stale).
    pub cards_with_data: u64,
    /// Cards with at least one stale section.
    pub cards_stale: u64,
    /// Why it failed (kept for the first error only).
    pub error: Option<String>,
}

/// Totals of one run.
#[derive(Debug, Clone)]
pub struct LoadResult {
    /// Latencies in microseconds.
    pub hist: Histogram<u64>,
    /// Requests finished.
    pub requests: u64,
    /// Requests that failed.
    pub errors: u64,
    /// From the first start to the last finish.
    pub elapsed: Duration,
    /// Sum of [`Outcome::card_views`].
    pub card_views: u64,
    /// Sum of [`Outcome::cards_with_data`].
    pub cards_with_data: u64,
    /// Sum of [`Outcome::cards_stale`].
    pub cards_stale: u64,
    /// The first failure seen.
    pub first_error: Option<String>,
}

/// An empty histogram: 1 µs to 2 min, 3 significant figures.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("static histogram bounds are valid")
}

impl LoadResult {
    fn empty() -> Self {
        Self {
            hist: new_histogram(),
            requests: 0,
            errors: 0,
            elapsed: Duration::ZERO,
            card_views: 0,
            cards_with_data: 0,
            cards_stale: 0,
            first_error: None,
        }
    }

    fn add(&mut self, o: Outcome, micros: u64) {
        self.hist.saturating_record(micros.max(1));
        self.requests += 1;
        self.card_views += o.card_views;
        self.cards_with_data += o.cards_with_data;
        self.cards_stale += o.cards_stale;
        if !o.ok {
            self.errors += 1;
            if self.first_error.is_none() {
                self.first_error = o.error;
            }
        }
    }

    fn merge(&mut self, other: LoadResult) {
        let _ = self.hist.add(&other.hist);
        self.requests += other.requests;
        self.errors += other.errors;
        self.card_views += other.card_views;
        self.cards_with_data += other.cards_with_data;
        self.cards_stale += other.cards_stale;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    /// Requests per second over the run.
    pub fn rps(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.requests as f64 / secs
        } else {
            0.0
        }
    }

    /// Latency at `q` (0–100) in milliseconds.
    pub fn percentile_ms(&self, q: f64) -> f64 {
        if self.hist.is_empty() {
            return 0.0;
        }
        self.hist.value_at_percentile(q) as f64 / 1000.0
    }
}

/// Runs `request(worker, seq)` from `spec.concurrency` tasks until the time
/// or request budget is spent; every request is timed.
pub async fn run<F, Fut>(spec: &LoadSpec, request: F) -> LoadResult
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let request = Arc::new(request);
    let issued = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let deadline = start + spec.duration;
    let concurrency = spec.concurrency.max(1);
    let mut tasks = Vec::with_capacity(concurrency);
    for worker in 0..concurrency {
        let request = request.clone();
        let issued = issued.clone();
        let stop = stop.clone();
        let max = spec.max_requests;
        let period = spec.period;
        tasks.push(tokio::spawn(async move {
            let mut local = LoadResult::empty();
            let mut ticker = period.map(|p| {
                // Spread the workers' first requests over one period.
                let offset = p.mul_f64(worker as f64 / concurrency as f64);
                let mut t = tokio::time::interval_at((start + offset).into(), p);
                t.set_missed_tick_behavior(MissedTickBehavior::Delay);
                t
            });
            loop {
                if let Some(t) = ticker.as_mut()
                    && tokio::time::timeout_at(deadline.into(), t.tick())
                        .await
                        .is_err()
                {
                    break;
                }
                if stop.load(Ordering::Relaxed) || Instant::now() >= deadline {
                    break;
                }
                let seq = issued.fetch_add(1, Ordering::Relaxed);
                if seq >= max {
                    stop.store(true, Ordering::Relaxed);
                    break;
                }
                let t0 = Instant::now();
                let outcome = request(worker, seq).await;
                let micros = u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX);
                local.add(outcome, micros);
            }
            local
        }));
    }
    let mut total = LoadResult::empty();
    for task in tasks {
        match task.await {
            Ok(part) => total.merge(part),
            Err(e) => {
                total.errors += 1;
                total
                    .first_error
                    .get_or_insert(format!("load worker panicked: {e}"));
            }
        }
    }
    total.elapsed = start.elapsed();
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn request_budget_bounds_the_run_and_errors_are_counted() {
        let spec = LoadSpec {
            concurrency: 4,
            duration: Duration::from_secs(30),
            max_requests: 101,
            period: None,
        };
        let result = run(&spec, |_, seq| async move {
            Outcome {
                ok: seq % 10 != 0,
                card_views: 2,
                error: Some(format!("request {seq} failed")),
                ..Outcome::default()
            }
        })
        .await;
        assert_eq!(result.requests, 101);
        assert_eq!(result.errors, 11);
        assert_eq!(result.card_views, 202);
        assert!(result.first_error.unwrap().ends_with("failed"));
        assert!(result.elapsed < Duration::from_secs(30));
    }

    #[tokio::test]
    async fn pacing_limits_the_rate() {
        let spec = LoadSpec {
            concurrency: 2,
            duration: Duration::from_millis(300),
            max_requests: u64::MAX,
            period: Some(Duration::from_millis(100)),
        };
        let result = run(&spec, |_, _| async {
            Outcome {
                ok: true,
                ..Outcome::default()
            }
        })
        .await;
        // 2 workers × ticks at 0, 100, 200 ms (the second offset by 50 ms).
        assert!((4..=8).contains(&result.requests), "{}", result.requests);
        assert_eq!(result.errors, 0);
    }
}
