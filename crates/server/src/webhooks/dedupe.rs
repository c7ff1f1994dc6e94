//! Redeliveries: PagerDuty retries a webhook it got no 2xx for (a timeout,
//! a 5xx) with the same `X-Webhook-Id`, and may deliver one twice. An id
//! seen within the window is processed once.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Ids remembered at most (the oldest go first): a flood of distinct ids
/// costs bounded memory.
const MAX_IDS: usize = 100_000;

/// Webhook ids seen within a window.
#[derive(Debug)]
pub struct Dedupe {
    window: Duration,
    seen: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    at: HashMap<String, Instant>,
    order: VecDeque<(Instant, String)>,
}

impl Dedupe {
    pub fn new(window: Duration) -> Self {
        Dedupe {
            window,
            seen: Mutex::default(),
        }
    }

    /// True the first time `id` is seen within the window (and remembers it).
    pub fn first(&self, id: &str, now: Instant) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        while let Some((at, _)) = seen.order.front() {
            if now.saturating_duration_since(*at) < self.window && seen.order.len() < MAX_IDS {
                break;
            }
            if let Some((at, old)) = seen.order.pop_front()
                && seen.at.get(&old) == Some(&at)
            {
                seen.at.remove(&old);
            }
        }
        if seen.at.contains_key(id) {
            return false;
        }
        seen.at.insert(id.to_owned(), now);
        seen.order.push_back((now, id.to_owned()));
        true
    }

    /// Forgets `id` (its processing was refused, so a redelivery must count).
    pub fn forget(&self, id: &str) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.at.remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_counts_once_within_the_window() {
        let dedupe = Dedupe::new(Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(dedupe.first("a", t0));
        assert!(!dedupe.first("a", t0 + Duration::from_secs(59)));
        assert!(dedupe.first("b", t0 + Duration::from_secs(1)));
        // Past the window it is new again.
        assert!(dedupe.first("a", t0 + Duration::from_secs(61)));
        dedupe.forget("b");
        assert!(dedupe.first("b", t0 + Duration::from_secs(62)));
    }
}
