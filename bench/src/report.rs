//! Results: one row per measured phase, the budgets, a text table and JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use crate::load::LoadResult;

/// One measured phase of a scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Scenario name, e.g. `warm-card`.
    pub scenario: String,
    /// Variant within it, e.g. `c=64` or `rate=16/s`.
    pub variant: String,
    /// Concurrent workers.
    pub concurrency: usize,
    /// Seconds from first request to last answer.
    pub duration_s: f64,
    /// Requests answered.
    pub requests: u64,
    /// Requests that failed (transport error or unexpected status).
    pub errors: u64,
    /// Requests per second.
    pub rps: f64,
    /// Latency percentiles (ms).
    pub p50_ms: f64,
    /// 90th percentile (ms).
    pub p90_ms: f64,
    /// 99th percentile (ms).
    pub p99_ms: f64,
    /// 99.9th percentile (ms).
    pub p999_ms: f64,
    /// Slowest (ms).
    pub max_ms: f64,
    /// Requests the simulator received in this phase (its own counters).
    pub upstream_calls: u64,
    /// Of those, answered 429.
    pub upstream_429: u64,
    /// Card views served in this phase.
    pub card_views: u64,
    /// `upstream_calls * 1000 / card_views`.
    pub upstream_per_1000_views: Option<f64>,
    /// Server's peak RSS (VmHWM) at the end of the phase, MiB.
    pub server_peak_rss_mib: Option<f64>,
    /// Server CPU seconds in this phase.
    pub server_cpu_s: Option<f64>,
    /// This process's CPU seconds in this phase (load generator + simulator).
    pub bench_cpu_s: Option<f64>,
    /// Scenario-specific numbers (stale share, steady-state calls/min...).
    pub extra: BTreeMap<String, Value>,
    /// The first error seen, if any.
    pub first_error: Option<String>,
}

impl Row {
    /// A row from a load result; upstream and process numbers are filled in by the caller.
    pub fn from_load(scenario: &str, variant: &str, concurrency: usize, r: &LoadResult) -> Self {
        Self {
            scenario: scenario.to_owned(),
            variant: variant.to_owned(),
            concurrency,
            duration_s: r.elapsed.as_secs_f64(),
            requests: r.requests,
            errors: r.errors,
            rps: r.rps(),
            p50_ms: r.percentile_ms(50.0),
            p90_ms: r.percentile_ms(90.0),
            p99_ms: r.percentile_ms(99.0),
            p999_ms: r.percentile_ms(99.9),
            max_ms: if r.hist.is_empty() {
                0.0
            } else {
                r.hist.max() as f64 / 1000.0
            },
            upstream_calls: 0,
            upstream_429: 0,
            card_views: r.card_views,
            upstream_per_1000_views: None,
            server_peak_rss_mib: None,
            server_cpu_s: None,
            bench_cpu_s: None,
            extra: BTreeMap::new(),
            first_error: r.first_error.clone(),
        }
    }

    /// Sets the upstream counts and the per-1,000-views ratio.
    pub fn set_upstream(&mut self, calls: u64, rate_limited: u64) {
        self.upstream_calls = calls;
        self.upstream_429 = rate_limited;
        self.upstream_per_1000_views =
            (self.card_views > 0).then(|| calls as f64 * 1000.0 / self.card_views as f64);
    }

    /// A number from [`Row::extra`].
    pub fn extra_f64(&self, key: &str) -> Option<f64> {
        self.extra.get(key).and_then(Value::as_f64)
    }
}

/// One budget from issue 8.
#[derive(Debug, Clone, Serialize)]
pub struct Budget {
    /// What is promised.
    pub name: String,
    /// What was measured.
    pub measured: String,
    /// The limit.
    pub limit: String,
    /// Whether the measurement meets it.
    pub met: bool,
}

/// Everything one invocation measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Machine and settings at measurement time.
    pub environment: BTreeMap<String, Value>,
    /// Measured phases, in order.
    pub rows: Vec<Row>,
    /// Scenarios that could not run, with the reason.
    pub unavailable: Vec<(String, String)>,
    /// Budgets that the rows allow to evaluate.
    pub budgets: Vec<Budget>,
}

fn find<'a>(rows: &'a [Row], scenario: &str, variant_prefix: &str) -> Option<&'a Row> {
    rows.iter()
        .find(|r| r.scenario == scenario && r.variant.starts_with(variant_prefix))
}

/// The budgets of issue 8 that `rows` allow to evaluate.
pub fn evaluate_budgets(rows: &[Row]) -> Vec<Budget> {
    let mut out = Vec::new();
    if let (Some(w), Some(c)) = (
        find(rows, "warm-card", "c=64"),
        find(rows, "ceiling", "c=64"),
    ) {
        let share = if c.rps > 0.0 { w.rps / c.rps } else { 0.0 };
        out.push(Budget {
            name: "warm-card throughput >= 70% of the ceiling route's (c=64)".to_owned(),
            measured: format!("{:.0}% ({:.0} vs {:.0} req/s)", share * 100.0, w.rps, c.rps),
            limit: "70%".to_owned(),
            met: share >= 0.70,
        });
    }
    if let Some(w) = find(rows, "warm-card", "c=64") {
        out.push(Budget {
            name: "warm-card p99 <= 5 ms at concurrency 64".to_owned(),
            measured: format!("{:.2} ms", w.p99_ms),
            limit: "5 ms".to_owned(),
            met: w.p99_ms <= 5.0 && w.errors == 0,
        });
    }
    let portal: Vec<&Row> = rows.iter().filter(|r| r.scenario == "portal").collect();
    for p in &portal {
        if let Some(steady) = p.extra_f64("upstream_per_min_steady") {
            out.push(Budget {
                name: format!(
                    "portal {}: steady-state upstream calls/min <= 240",
                    p.variant
                ),
                measured: format!("{steady:.0}/min"),
                limit: "240/min".to_owned(),
                met: steady <= 240.0,
            });
        }
        if let Some(rss) = p.server_peak_rss_mib {
            out.push(Budget {
                name: format!("portal {}: server peak RSS <= 64 MB", p.variant),
                measured: format!("{rss:.1} MiB"),
                limit: "64 MB".to_owned(),
                met: rss <= 64.0,
            });
        }
    }
    if let [low, high] = portal.as_slice()
        && let (Some(a), Some(b)) = (
            low.extra_f64("upstream_per_min_steady"),
            high.extra_f64("upstream_per_min_steady"),
        )
    {
        // "Not growing": within 10 % (+5 calls/min of noise) of the lower rate.
        out.push(Budget {
            name: "portal: upstream calls/min do not grow when the view rate doubles".to_owned(),
            measured: format!(
                "{a:.0}/min at {} -> {b:.0}/min at {}",
                low.variant, high.variant
            ),
            limit: "<= 110% + 5/min".to_owned(),
            met: b <= a * 1.10 + 5.0,
        });
    }
    let limited: Vec<&Row> = rows
        .iter()
        .filter(|r| r.scenario == "portal" || r.scenario == "cold-start")
        .collect();
    if !limited.is_empty() {
        let n: u64 = limited.iter().map(|r| r.upstream_429).sum();
        out.push(Budget {
            name: "no 429 from PagerDuty's 960/min limiter (portal + cold-start)".to_owned(),
            measured: format!("{n} x 429"),
            limit: "0".to_owned(),
            met: n == 0,
        });
    }
    routes_budgets(rows, &mut out);
    for d in rows.iter().filter(|r| r.scenario == "degraded") {
        if let Some(avail) = d.extra_f64("availability") {
            out.push(Budget {
                name: format!(
                    "degraded ({}): cards answered 200 with data >= 99.9%",
                    d.variant
                ),
                measured: format!("{:.3}%", avail * 100.0),
                limit: "99.9%".to_owned(),
                met: avail >= 0.999,
            });
        }
        if let Some(storms) = d.extra_f64("retry_storms") {
            out.push(Budget {
                name: format!("degraded ({}): at most one upstream retry storm", d.variant),
                measured: format!("{storms:.0}"),
                limit: "1".to_owned(),
                met: storms <= 1.0,
            });
        }
    }
    out
}

/// Issue 18's budgets over the `routes` rows: every cached route at least
/// 80 % of the ceiling's throughput (each concurrency), the batch of 20
/// instead at most 5 times one card's server CPU, p99 ≤ 5 ms at c=64, no
/// failed answer, and the warm server's peak RSS ≤ 64 MB. Each budget
/// names its route.
fn routes_budgets(rows: &[Row], out: &mut Vec<Budget>) {
    let routes: Vec<&Row> = rows
        .iter()
        .filter(|r| r.scenario == "routes" && !r.variant.starts_with("ceiling"))
        .collect();
    for r in &routes {
        // The identity listing is informational: 170 kB a request is bound
        // by its bytes; browsers, where the frontends run, get it gzipped.
        if r.variant
            .contains(crate::scenarios::routes::IDENTITY_SERVICES)
        {
            continue;
        }
        let batch = r.variant.starts_with(crate::scenarios::routes::BATCH_LABEL);
        if batch {
            // Twenty cards cannot cost one `/healthz`: the budget
            // for the batch is its cost next to one card's.
            batch_budget(r, &routes, out);
        } else if let Some(share) = r.extra_f64("share_of_ceiling") {
            out.push(Budget {
                name: format!("routes {}: throughput >= 80% of the ceiling", r.variant),
                measured: format!("{:.0}% ({:.0} req/s)", share * 100.0, r.rps),
                limit: "80%".to_owned(),
                met: share >= 0.80 && r.errors == 0,
            });
        }
        if r.concurrency == 64 {
            out.push(Budget {
                name: format!("routes {}: p99 <= 5 ms", r.variant),
                measured: format!("{:.2} ms", r.p99_ms),
                limit: "5 ms".to_owned(),
                met: r.p99_ms <= 5.0 && r.errors == 0,
            });
        }
    }
    if let Some(rss) = routes
        .iter()
        .filter_map(|r| r.server_peak_rss_mib)
        .reduce(f64::max)
    {
        out.push(Budget {
            name: "routes: warm server peak RSS <= 64 MB".to_owned(),
            measured: format!("{rss:.1} MiB"),
            limit: "64 MB".to_owned(),
            met: rss <= 64.0,
        });
    }
}

/// The batch's server CPU per request at most [`BATCH_COST_LIMIT`] times
/// one card's (`GET /v1/cards/{id}` at the same concurrency).
fn batch_budget(batch: &Row, routes: &[&Row], out: &mut Vec<Budget>) {
    const BATCH_COST_LIMIT: f64 = 5.0;
    let cost = |r: &Row| r.extra_f64("server_cpu_us_per_request");
    let card = routes.iter().find(|r| {
        r.concurrency == batch.concurrency
            && r.variant.starts_with(crate::scenarios::routes::CARD_LABEL)
    });
    let (measured, met) = match (cost(batch), card.and_then(|c| cost(c))) {
        (Some(b), Some(c)) if c > 0.0 => (
            format!("{:.1}x ({b:.0} us vs {c:.0} us)", b / c),
            b / c <= BATCH_COST_LIMIT && batch.errors == 0,
        ),
        _ => ("no CPU measured".to_owned(), false),
    };
    out.push(Budget {
        name: format!("routes {}: server CPU <= 5x one card's", batch.variant),
        measured,
        limit: format!("{BATCH_COST_LIMIT}x"),
        met,
    });
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.decimals$}"))
}

/// The human-readable table (Markdown, so it can be pasted into BENCHMARKS.md).
pub fn render_table(report: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| scenario | variant | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | errors | upstream calls | upstream / 1k views | 429s | server peak RSS MiB | server CPU s | bench CPU s |"
    );
    let _ = writeln!(
        s,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in &report.rows {
        let _ = writeln!(
            s,
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} / {} | {} | {} | {} | {} | {} | {} |",
            r.scenario,
            r.variant,
            r.rps,
            r.p50_ms,
            r.p90_ms,
            r.p99_ms,
            r.p999_ms,
            r.errors,
            r.requests,
            r.upstream_calls,
            opt(r.upstream_per_1000_views, 1),
            r.upstream_429,
            opt(r.server_peak_rss_mib, 1),
            opt(r.server_cpu_s, 2),
            opt(r.bench_cpu_s, 2),
        );
    }
    let _ = writeln!(s);
    for r in &report.rows {
        if r.extra.is_empty() && r.first_error.is_none() {
            continue;
        }
        let extras: Vec<String> = r
            .extra
            .iter()
            .map(|(k, v)| match v.as_f64() {
                Some(f) if f.fract() != 0.0 => format!("{k}={f:.3}"),
                _ => format!("{k}={v}"),
            })
            .collect();
        let _ = write!(s, "- {} {}: {}", r.scenario, r.variant, extras.join(", "));
        if let Some(e) = &r.first_error {
            let _ = write!(s, "; first error: {e}");
        }
        let _ = writeln!(s);
    }
    for (scenario, why) in &report.unavailable {
        let _ = writeln!(s, "- {scenario}: NOT RUN: {why}");
    }
    if !report.budgets.is_empty() {
        let _ = writeln!(s, "\n| budget | measured | limit | met |");
        let _ = writeln!(s, "|---|---|---|---|");
        for b in &report.budgets {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                b.name,
                b.measured,
                b.limit,
                if b.met { "met" } else { "MISSED" }
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::new_histogram;
    use std::time::Duration;

    fn row(scenario: &str, variant: &str, rps: f64, p99: f64) -> Row {
        let mut hist = new_histogram();
        hist.record(1000).unwrap();
        let r = LoadResult {
            hist,
            requests: 10,
            errors: 0,
            elapsed: Duration::from_secs(1),
            card_views: 10,
            cards_with_data: 10,
            cards_stale: 0,
            first_error: None,
        };
        let mut row = Row::from_load(scenario, variant, 64, &r);
        row.rps = rps;
        row.p99_ms = p99;
        row
    }

    #[test]
    fn budgets_compare_warm_card_with_the_ceiling() {
        let rows = vec![
            row("warm-card", "c=64", 650.0, 4.0),
            row("ceiling", "c=64", 1000.0, 1.0),
        ];
        let b = evaluate_budgets(&rows);
        assert_eq!(b.len(), 2);
        assert!(!b[0].met, "65% < 70%");
        assert!(b[1].met, "4 ms <= 5 ms");
    }

    #[test]
    fn routes_budgets_name_the_route() {
        use crate::scenarios::routes::{BATCH_LABEL, CARD_LABEL, IDENTITY_SERVICES};
        let mut fast = row("routes", &format!("{CARD_LABEL} c=64"), 900.0, 2.0);
        fast.extra.insert("share_of_ceiling".into(), 0.9.into());
        fast.extra
            .insert("server_cpu_us_per_request".into(), 20.0.into());
        fast.server_peak_rss_mib = Some(30.0);
        let mut slow = row("routes", "GET /b c=64", 500.0, 7.0);
        slow.extra.insert("share_of_ceiling".into(), 0.5.into());
        let mut batch = row("routes", &format!("{BATCH_LABEL} c=64"), 200.0, 4.0);
        batch.extra.insert("share_of_ceiling".into(), 0.2.into());
        batch
            .extra
            .insert("server_cpu_us_per_request".into(), 90.0.into());
        let mut costly = batch.clone();
        costly.concurrency = 1;
        costly.variant = format!("{BATCH_LABEL} c=1");
        costly
            .extra
            .insert("server_cpu_us_per_request".into(), 90.0.into());
        let mut identity = row("routes", &format!("{IDENTITY_SERVICES} c=64"), 100.0, 9.0);
        identity.extra.insert("share_of_ceiling".into(), 0.1.into());
        let ceiling = row("routes", "ceiling /healthz c=64", 1000.0, 1.0);
        let b = evaluate_budgets(&[ceiling, fast, slow, batch, costly, identity]);
        let missed: Vec<&str> = b
            .iter()
            .filter(|b| !b.met)
            .map(|b| b.name.as_str())
            .collect();
        assert_eq!(
            missed,
            vec![
                "routes GET /b c=64: throughput >= 80% of the ceiling".to_owned(),
                "routes GET /b c=64: p99 <= 5 ms".to_owned(),
                // No card at c=1 to compare with.
                format!("routes {BATCH_LABEL} c=1: server CPU <= 5x one card's"),
            ]
        );
        let batch = b
            .iter()
            .find(|b| b.name == format!("routes {BATCH_LABEL} c=64: server CPU <= 5x one card's"))
            .expect("the batch's cost budget");
        assert!(batch.met && batch.measured.starts_with("4.5x"), "{batch:?}");
        assert!(!b.iter().any(|b| b.name.contains("identity")), "{b:?}");
        assert_eq!(b.len(), 8, "{b:?}");
    }

    #[test]
    fn portal_growth_and_429_budgets() {
        let mut low = row("portal", "rate=16/s", 16.0, 10.0);
        low.extra
            .insert("upstream_per_min_steady".into(), 100.0.into());
        low.server_peak_rss_mib = Some(30.0);
        let mut high = row("portal", "rate=32/s", 32.0, 10.0);
        high.extra
            .insert("upstream_per_min_steady".into(), 150.0.into());
        high.server_peak_rss_mib = Some(70.0);
        high.set_upstream(10, 1);
        let b = evaluate_budgets(&[low, high]);
        let missed: Vec<&str> = b
            .iter()
            .filter(|b| !b.met)
            .map(|b| b.name.as_str())
            .collect();
        assert_eq!(
            missed,
            vec![
                "portal rate=32/s: server peak RSS <= 64 MB",
                "portal: upstream calls/min do not grow when the view rate doubles",
                "no 429 from PagerDuty's 960/min limiter (portal + cold-start)",
            ]
        );
        let table = render_table(&Report {
            environment: BTreeMap::new(),
            rows: vec![],
            unavailable: vec![("trigger".into(), "route not available".into())],
            budgets: b,
        });
        assert!(table.contains("| MISSED |"));
        assert!(table.contains("trigger: NOT RUN: route not available"));
    }
}
