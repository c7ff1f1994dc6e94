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

#[tokio::test]
async fn rate_limit_is_set_and_removed_through_the_admin_api() {
    let sim = start(config()).await;
    let admin = format!("{}/__sim/faults", sim.base_url());
    for _ in 0..5 {
        let r = get(&sim, "/abilities").await;
        assert_eq!(r.status, 200);
        assert!(r.headers.get("ratelimit-limit").is_none(), "off by default");
    }

    let r = http()
        .post(&admin)
        .json(&json!({"rate_limit_per_minute": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(sim.faults().rate_limit_per_minute, Some(3));
    // The window starts over: the 5 requests above do not count.
    for i in 0..3u32 {
        let r = get(&sim, "/abilities").await;
        assert_eq!(r.status, 200, "request {i}: {}", r.text);
        assert_eq!(r.headers["ratelimit-limit"], "3");
        assert_eq!(
            r.headers["ratelimit-remaining"],
            (2 - i).to_string().as_str()
        );
    }
    let limited = get(&sim, "/abilities").await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.headers["ratelimit-limit"], "3");
    assert_eq!(limited.headers["ratelimit-remaining"], "0");
    assert!(limited.headers.contains_key("ratelimit-reset"));
    assert_eq!(limited.json()["error"]["code"], 2020);

    // A bad value is rejected naming the field, and changes nothing.
    let bad = http()
        .post(&admin)
        .json(&json!({"rate_limit_per_minute": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("rate_limit_per_minute"));
    assert_eq!(get(&sim, "/abilities").await.status, 429);

    // `{}` turns the limit off.
    let r = http().post(&admin).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ok = get(&sim, "/abilities").await;
    assert_eq!(ok.status, 200);
    assert!(ok.headers.get("ratelimit-limit").is_none());
    sim.shutdown().await;
}

#[tokio::test]
async fn start_value_comes_from_the_config() {
    let sim = start(sim::SimConfig {
        rate_limit_per_minute: Some(2),
        ..config()
    })
    .await;
    assert_eq!(sim.faults().rate_limit_per_minute, Some(2));
    // Raising it at run time starts the window over with the new limit.
    assert_eq!(get(&sim, "/abilities").await.status, 200);
    assert_eq!(get(&sim, "/abilities").await.status, 200);
    assert_eq!(get(&sim, "/abilities").await.status, 429);
    sim.set_faults(sim::Faults {
        rate_limit_per_minute: Some(4),
        ..sim::Faults::default()
    });
    let r = get(&sim, "/abilities").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["ratelimit-limit"], "4");
    assert_eq!(r.headers["ratelimit-remaining"], "3");
    sim.shutdown().await;
}
