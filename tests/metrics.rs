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
