//! Prometheus metrics, written in the text exposition format by hand.
//!
//! Why not the `prometheus-client` crate: we export three small families whose
//! label values come from closed sets (route templates, PagerDuty endpoint
//! templates, status codes, cache section names), and the cache counters are
//! a snapshot read from `CardService::stats()` at scrape time, which a
//! registry of live counters fits badly. About a hundred lines with sorted
//! maps give stable output and no extra dependency.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

mod live;

/// Latency buckets in seconds: from a warm-cache hit to a slow upstream.
const BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Label for requests that matched no route (keeps cardinality bounded).
pub const UNMATCHED: &str = "unmatched";

#[derive(Debug, Default, Clone)]
pub(crate) struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    pub(crate) fn observe(&mut self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        for (count, bound) in self.counts.iter_mut().zip(BUCKETS) {
            if secs <= bound {
                *count += 1;
            }
        }
        self.sum += secs;
        self.count += 1;
    }
}

#[derive(Debug, Default)]
pub(crate) struct Inner {
    /// (method, route template, status) -> count
    /// Per route template (looked up by `&str`: no allocation per
    /// request once a route was seen): counts by (method, status) and
    /// latency by method. Rendered in (method, route, status) order.
    requests: BTreeMap<String, RouteStats>,
    /// (method, route template) -> latency
    /// (method, endpoint template, status or "error") -> count
    upstream: BTreeMap<(String, String, String), u64>,
    /// (method, endpoint template) -> latency
    upstream_latency: BTreeMap<(String, String), Histogram>,
    /// Webhooks and streams (`observe_webhook*`, `stream_*`).
    live: live::Live,
}

/// The `method` label of a request: a standard HTTP method, or `OTHER`.
#[derive(Debug, Default)]
struct RouteStats {
    counts: BTreeMap<(&'static str, u16), u64>,
    latency: BTreeMap<&'static str, Histogram>,
}

impl RouteStats {
    fn observe(&mut self, method: &'static str, status: u16, elapsed: Duration) {
        *self.counts.entry((method, status)).or_default() += 1;
        self.latency.entry(method).or_default().observe(elapsed);
    }
}

fn method_label(method: &str) -> &'static str {
    const STANDARD: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    STANDARD
        .into_iter()
        .find(|m| *m == method)
        .unwrap_or("OTHER")
}

/// Request and upstream-call counters. Shared through `web::Data`.
#[derive(Debug, Default)]
pub struct Metrics {
    // A std Mutex, not tokio's: it is held only to bump a map entry, never
    // across an `.await`.
    inner: Mutex<Inner>,
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps inconsistent
        // (each update is one insert), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Record one answered request. Methods outside the standard set are
    /// counted as `OTHER`: a client inventing methods must not create
    /// unbounded label values.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let method = method_label(method);
        let mut inner = self.lock();
        if let Some(stats) = inner.requests.get_mut(route) {
            stats.observe(method, status, elapsed);
            return;
        }
        let mut stats = RouteStats::default();
        stats.observe(method, status, elapsed);
        inner.requests.insert(route.to_owned(), stats);
    }

    /// Record one HTTP attempt to PagerDuty (`status` None = transport error
    /// or timeout).
    pub fn observe_upstream(
        &self,
        method: &str,
        endpoint: &str,
        status: Option<u16>,
        elapsed: Duration,
    ) {
        let status = status.map_or_else(|| "error".to_owned(), |s| s.to_string());
        let mut inner = self.lock();
        *inner
            .upstream
            .entry((method.to_owned(), endpoint.to_owned(), status))
            .or_default() += 1;
        inner
            .upstream_latency
            .entry((method.to_owned(), endpoint.to_owned()))
            .or_default()
            .observe(elapsed);
    }

    /// Render all families. `cache_stats` holds, per account id, the
    /// serialised `CardService::stats()`: `{section: {counter: n}}`.
    pub fn render(&self, cache_stats: &[(String, Value)]) -> String {
        let inner = self.lock();
        let mut out = String::new();

        family(
            &mut out,
            "dutycard_http_requests_total",
            "counter",
            "HTTP requests answered, by route template and status.",
        );
        let mut counts: Vec<(&str, &str, u16, u64)> = inner
            .requests
            .iter()
            .flat_map(|(route, stats)| {
                stats
                    .counts
                    .iter()
                    .map(move |((method, status), n)| (*method, route.as_str(), *status, *n))
            })
            .collect();
        counts.sort_unstable();
        for (method, route, status, n) in counts {
            let _ = writeln!(
                out,
                "dutycard_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(method),
                escape(route)
            );
        }
        family(
            &mut out,
            "dutycard_http_request_duration_seconds",
            "histogram",
            "Time to answer HTTP requests, by route template.",
        );
        let mut latencies: Vec<(&str, &str, &Histogram)> = inner
            .requests
            .iter()
            .flat_map(|(route, stats)| {
                stats
                    .latency
                    .iter()
                    .map(move |(method, h)| (*method, route.as_str(), h))
            })
            .collect();
        latencies.sort_unstable_by_key(|(method, route, _)| (*method, *route));
        for (method, route, h) in latencies {
            let labels = format!("method=\"{}\",route=\"{}\"", escape(method), escape(route));
            histogram(
                &mut out,
                "dutycard_http_request_duration_seconds",
                &labels,
                h,
            );
        }
        family(
            &mut out,
            "dutycard_upstream_requests_total",
            "counter",
            "HTTP attempts to PagerDuty, by endpoint template and status (\"error\" = no response).",
        );
        for ((method, endpoint, status), n) in &inner.upstream {
            let _ = writeln!(
                out,
                "dutycard_upstream_requests_total{{method=\"{}\",endpoint=\"{}\",status=\"{}\"}} {n}",
                escape(method),
                escape(endpoint),
                escape(status)
            );
        }
        family(
            &mut out,
            "dutycard_upstream_request_duration_seconds",
            "histogram",
            "Time of HTTP attempts to PagerDuty, by endpoint template.",
        );
        for ((method, endpoint), h) in &inner.upstream_latency {
            let labels = format!(
                "method=\"{}\",endpoint=\"{}\"",
                escape(method),
                escape(endpoint)
            );
            histogram(
                &mut out,
                "dutycard_upstream_request_duration_seconds",
                &labels,
                h,
            );
        }
        inner.live.render(&mut out);
        drop(inner);
        render_cache_stats(&mut out, cache_stats);
        out
    }
}

impl pagerduty::CallObserver for Metrics {
    fn on_call(&self, record: &pagerduty::CallRecord) {
        self.observe_upstream(
            record.method,
            record.endpoint,
            record.status,
            record.elapsed,
        );
    }
}

/// Each account's `{section: {counter: n, ...}, ...}` becomes one counter
/// family per counter name, labelled by account and section. Non-numeric
/// values are skipped.
fn render_cache_stats(out: &mut String, stats: &[(String, Value)]) {
    // counter -> (account, section) -> n
    let mut by_counter: BTreeMap<String, BTreeMap<(String, String), u64>> = BTreeMap::new();
    for (account, stats) in stats {
        let Some(sections) = stats.as_object() else {
            continue;
        };
        collect_cache_stats(account, sections, &mut by_counter);
    }
    for (counter, series) in by_counter {
        let name = format!("dutycard_cache_{}_total", sanitize(&counter));
        family(
            out,
            &name,
            "counter",
            &format!("Card cache `{counter}` counter, by PagerDuty account and section."),
        );
        for ((account, section), n) in series {
            let _ = writeln!(
                out,
                "{name}{{account=\"{}\",section=\"{}\"}} {n}",
                escape(&account),
                escape(&section)
            );
        }
    }
}

fn collect_cache_stats(
    account: &str,
    sections: &serde_json::Map<String, Value>,
    by_counter: &mut BTreeMap<String, BTreeMap<(String, String), u64>>,
) {
    for (section, counters) in sections {
        match counters {
            Value::Object(counters) => {
                for (counter, value) in counters {
                    if let Some(n) = value.as_u64() {
                        by_counter
                            .entry(counter.clone())
                            .or_default()
                            .insert((account.to_owned(), section.clone()), n);
                    }
                }
            }
            // A flat counter at the top level (e.g. a total).
            other => {
                if let Some(n) = other.as_u64() {
                    by_counter
                        .entry(section.clone())
                        .or_default()
                        .insert((account.to_owned(), "all".into()), n);
                }
            }
        }
    }
}

pub(crate) fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

pub(crate) fn histogram(out: &mut String, name: &str, labels: &str, h: &Histogram) {
    for (bound, count) in BUCKETS.iter().zip(h.counts) {
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {count}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum);
    let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
}

pub(crate) fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_counters_histograms_and_cache_stats() {
        let m = Metrics::new();
        m.observe_request(
            "GET",
            "/v1/cards/{service_id}",
            200,
            Duration::from_millis(3),
        );
        m.observe_request(
            "GET",
            "/v1/cards/{service_id}",
            200,
            Duration::from_millis(300),
        );
        m.observe_upstream("GET", "/services/{id}", None, Duration::from_millis(1));
        let text = m.render(&[
            (
                "default".into(),
                json!({"incidents": {"hits": 4, "misses": 1}}),
            ),
            ("eu".into(), json!({"incidents": {"hits": 2}})),
        ]);
        assert!(text.contains(
            "dutycard_http_requests_total{method=\"GET\",route=\"/v1/cards/{service_id}\",status=\"200\"} 2"
        ));
        assert!(text.contains(
            "dutycard_http_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/cards/{service_id}\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "dutycard_http_request_duration_seconds_count{method=\"GET\",route=\"/v1/cards/{service_id}\"} 2"
        ));
        assert!(text.contains(
            "dutycard_upstream_requests_total{method=\"GET\",endpoint=\"/services/{id}\",status=\"error\"} 1"
        ));
        assert!(
            text.contains("dutycard_cache_hits_total{account=\"default\",section=\"incidents\"} 4")
        );
        assert!(text.contains("dutycard_cache_hits_total{account=\"eu\",section=\"incidents\"} 2"));
        assert!(text.contains("# TYPE dutycard_cache_misses_total counter"));
    }
}
