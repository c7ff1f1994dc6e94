//! Request counters per (method, route template, status).

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Status recorded for a request that got no answer (a `timeout_next` fault).
pub const STATUS_NO_ANSWER: u16 = 0;

/// One counter row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteStat {
    /// HTTP method, e.g. `GET`.
    pub method: String,
    /// Route template, e.g. `/services/{id}`; `<unmatched>` for unknown paths.
    pub route: String,
    /// Response status; `0` = held without answer (timeout fault).
    pub status: u16,
    /// Number of requests.
    pub count: u64,
}

/// A snapshot of the counters (admin routes are not counted).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimStats {
    /// Rows sorted by method, route, status.
    pub routes: Vec<RouteStat>,
    /// All counted requests.
    pub total: u64,
    /// Requests answered 429 (by the rate limiter or an injected fault).
    pub rate_limited: u64,
}

impl SimStats {
    /// Requests for `method` and `route` summed over statuses.
    pub fn count(&self, method: &str, route: &str) -> u64 {
        self.routes
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method) && r.route == route)
            .map(|r| r.count)
            .sum()
    }

    /// Requests for `method` and `route` answered with `status`.
    pub fn by_status(&self, method: &str, route: &str, status: u16) -> u64 {
        self.routes
            .iter()
            .filter(|r| {
                r.method.eq_ignore_ascii_case(method) && r.route == route && r.status == status
            })
            .map(|r| r.count)
            .sum()
    }

    /// All counted requests.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Requests answered 429.
    pub fn rate_limited(&self) -> u64 {
        self.rate_limited
    }
}

#[derive(Default)]
pub(crate) struct StatsRecorder {
    inner: Mutex<BTreeMap<(String, String, u16), u64>>,
}

impl StatsRecorder {
    pub fn record(&self, method: &str, route: &str, status: u16) {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry((method.to_owned(), route.to_owned(), status))
            .or_insert(0) += 1;
    }

    pub fn snapshot(&self) -> SimStats {
        let map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let routes: Vec<RouteStat> = map
            .iter()
            .map(|((method, route, status), count)| RouteStat {
                method: method.clone(),
                route: route.clone(),
                status: *status,
                count: *count,
            })
            .collect();
        let total = routes.iter().map(|r| r.count).sum();
        let rate_limited = routes
            .iter()
            .filter(|r| r.status == 429)
            .map(|r| r.count)
            .sum();
        SimStats {
            routes,
            total,
            rate_limited,
        }
    }

    pub fn reset(&self) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}
