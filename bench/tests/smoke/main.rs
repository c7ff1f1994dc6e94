//! End-to-end smoke test of the harness: a tiny warm-card/ceiling run and a
//! tiny cold start against a real server process (this package's binary
//! serving through `__server`) and the in-process simulator.

use std::path::PathBuf;

use bench::harness::ServerBin;
use bench::scenarios::{Bench, Options, Scenario};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_scenarios_run_end_to_end() {
    let opts = Options {
        warm_secs: 1.0,
        warm_concurrency: vec![2],
        max_requests: 50,
        services: 10,
        cold_cards: 5,
        latency_ms: 5,
        jitter_ms: 2,
        server_log_level: "warn".to_owned(),
        ..Options::default()
    };
    let server = ServerBin::self_hosted(PathBuf::from(env!("CARGO_BIN_EXE_dutycard-bench")));
    let bench = Bench::new(opts, server).expect("harness");
    let report = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        bench.run(&[Scenario::WarmCard, Scenario::Ceiling, Scenario::ColdStart]),
    )
    .await
    .expect("the smoke run finishes within 60 s");

    assert!(report.unavailable.is_empty(), "{:?}", report.unavailable);
    let names: Vec<(&str, &str)> = report
        .rows
        .iter()
        .map(|r| (r.scenario.as_str(), r.variant.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("warm-card", "c=2"),
            ("ceiling", "c=2"),
            ("cold-start", "5 cards")
        ]
    );
    for row in &report.rows {
        assert!(row.requests > 0 && row.requests <= 50, "{row:?}");
        assert_eq!(row.errors, 0, "{row:?}");
        assert!(row.p50_ms > 0.0 && row.p50_ms <= row.p99_ms, "{row:?}");
        let rss = row.server_peak_rss_mib.expect("server RSS read from /proc");
        assert!(rss > 1.0, "{row:?}");
    }
    let cold = &report.rows[2];
    assert_eq!(cold.card_views, 5);
    assert!(
        cold.upstream_calls > 0,
        "cold cards call PagerDuty: {cold:?}"
    );
    assert_eq!(cold.upstream_429, 0);
    assert!(
        cold.p50_ms >= 5.0,
        "at least one simulated round trip: {cold:?}"
    );
    let warm = &report.rows[0];
    assert!(warm.extra_f64("share_of_ceiling").is_some());
    // The budgets that these rows allow to evaluate are present (their
    // verdicts on a debug build mean nothing).
    assert!(report.budgets.iter().any(|b| b.name.starts_with("no 429")));
    let table = bench::report::render_table(&report);
    assert!(table.contains("| warm-card | c=2 |"), "{table}");
}
