//! The real per-token rate limiter.

use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn sixth_request_in_a_minute_is_429() {
    let sim = start(sim::SimConfig {
        rate_limit_per_minute: Some(5),
        ..config()
    })
    .await;
    for i in 0..5u32 {
        let r = get_with(&sim, "token-a", "/abilities").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.headers["ratelimit-limit"], "5");
        assert_eq!(
            r.headers["ratelimit-remaining"],
            (4 - i).to_string().as_str()
        );
    }
    let limited = get_with(&sim, "token-a", "/abilities").await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.headers["ratelimit-limit"], "5");
    assert_eq!(limited.headers["ratelimit-remaining"], "0");
    let reset: u64 = limited.headers["ratelimit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&reset));
    assert_eq!(
        limited.json(),
        json!({"error": {"message": "Rate Limit Exceeded", "code": 2020}})
    );
    // Another token has its own budget; the Events API is not limited.
    assert_eq!(get_with(&sim, "token-b", "/abilities").await.status, 200);
    let event = post_raw(&sim, "/v2/enqueue", "{}").await;
    assert_eq!(event.status, 400, "events are validated, not rate limited");
    let stats = sim.stats();
    assert_eq!(stats.rate_limited(), 1);
    assert_eq!(stats.by_status("GET", "/abilities", 429), 1);
    sim.shutdown().await;
}
