//! `/metrics` moves with traffic.

use crate::helpers::{TestApp, settings};

fn value_of(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn request_counters_move_by_route_and_status() {
    let app = TestApp::spawn(settings("", &[])).await;
    let ok = r#"dutycard_http_requests_total{method="GET",route="/healthz",status="200"}"#;
    let missing = r#"dutycard_http_requests_total{method="GET",route="unmatched",status="404"}"#;
    let before = app.metrics().await;
    for _ in 0..3 {
        app.get("/healthz").await;
    }
    app.get("/no/such/route").await;
    let after = app.metrics().await;
    assert_eq!(value_of(&after, ok) - value_of(&before, ok), 3, "{after}");
    assert_eq!(value_of(&after, missing) - value_of(&before, missing), 1);
    assert!(after.contains(
        r#"dutycard_http_request_duration_seconds_count{method="GET",route="/healthz"}"#
    ));
}

/// The sum of a family's samples, leaving out the readiness checks
/// (`/abilities`), which run in the background on their own schedule.
fn sum_of(metrics: &str, family: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(family) && l[family.len()..].starts_with('{'))
        .filter(|l| !l.contains("endpoint=\"/abilities\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn upstream_and_cache_counters_move_with_card_requests() {
    let app = crate::helpers::spawn_with_sim(crate::helpers::small_sim(), "").await;
    let id = app.sim.account().services[0].id.clone();
    // The readiness check starts at boot (GET /abilities): let it finish
    // (a probe waits for the first result) so it is not counted mid-test.
    app.app.get("/readyz").await;
    let before = app.app.metrics().await;
    let stats = app.sim.stats();
    assert_eq!(
        sum_of(&before, "dutycard_upstream_requests_total"),
        stats.total() - stats.count("GET", "/abilities"),
        "only the readiness check so far: {before}"
    );

    assert_eq!(app.app.get(&format!("/v1/cards/{id}")).await.status(), 200);
    let after_first = app.app.metrics().await;
    let upstream = sum_of(&after_first, "dutycard_upstream_requests_total");
    assert!(
        upstream > sum_of(&before, "dutycard_upstream_requests_total"),
        "{after_first}"
    );
    // What we counted is what the simulator saw.
    let stats = app.sim.stats();
    assert_eq!(
        upstream,
        stats.total() - stats.count("GET", "/abilities"),
        "{after_first}"
    );
    assert!(
        sum_of(&after_first, "dutycard_cache_misses_total") > 0,
        "{after_first}"
    );
    assert!(after_first.contains(
        r#"dutycard_http_requests_total{method="GET",route="/v1/cards/{service_id}",status="200"} 1"#
    ));

    // A second read is served from the cache: hits move, PagerDuty is not called.
    assert_eq!(app.app.get(&format!("/v1/cards/{id}")).await.status(), 200);
    let after_second = app.app.metrics().await;
    assert!(
        sum_of(&after_second, "dutycard_cache_hits_total")
            > sum_of(&after_first, "dutycard_cache_hits_total"),
        "{after_second}"
    );
    assert_eq!(
        sum_of(&after_second, "dutycard_upstream_requests_total"),
        upstream
    );
}

#[tokio::test]
async fn custom_methods_share_one_other_label() {
    let app = TestApp::spawn(settings("", &[])).await;
    for custom in ["FOO", "BAR", "PURGE"] {
        let method = reqwest::Method::from_bytes(custom.as_bytes()).unwrap();
        app.http
            .request(method, app.url("/healthz"))
            .send()
            .await
            .unwrap();
    }
    let metrics = app.metrics().await;
    for custom in ["FOO", "BAR", "PURGE"] {
        assert!(
            !metrics.contains(&format!("method=\"{custom}\"")),
            "{metrics}"
        );
    }
    let other: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("dutycard_http_requests_total{method=\"OTHER\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(other, 3, "{metrics}");
}
