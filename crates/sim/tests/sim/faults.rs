//! Fault injection: fail_next, 429, timeouts, malformed JSON, latency,
//! error rate, and the admin API.

use std::time::{Duration, Instant};

use serde_json::json;
use sim::{FaultSpec, Faults};

use crate::common::*;

fn on(route: &str, spec: FaultSpec) -> Faults {
    Faults {
        global: FaultSpec::default(),
        per_route: vec![(route.to_owned(), spec)],
        rate_limit_per_minute: None,
    }
}

#[tokio::test]
async fn fail_next_on_one_route() {
    let sim = start(config()).await;
    sim.set_faults(on(
        "/incidents",
        FaultSpec {
            fail_next: 2,
            fail_status: 503,
            ..FaultSpec::default()
        },
    ));
    assert_eq!(
        get(&sim, "/services").await.status,
        200,
        "other routes unaffected"
    );
    let first = get(&sim, "/incidents").await;
    assert_eq!(first.status, 503);
    assert!(first.json()["error"]["message"].is_string());
    assert_eq!(get(&sim, "/incidents").await.status, 503);
    assert_eq!(get(&sim, "/incidents").await.status, 200);
    let stats = sim.stats();
    assert_eq!(stats.by_status("GET", "/incidents", 503), 2);
    assert_eq!(stats.by_status("GET", "/incidents", 200), 1);
    assert_eq!(sim.faults().per_route[0].1.fail_next, 0, "counter consumed");
    sim.shutdown().await;
}

#[tokio::test]
async fn injected_429_carries_ratelimit_headers() {
    let sim = start(config()).await;
    sim.set_faults(Faults {
        global: FaultSpec {
            fail_next: 1,
            fail_status: 429,
            rate_limit_reset_secs: 7,
            ..FaultSpec::default()
        },
        per_route: vec![],
        rate_limit_per_minute: None,
    });
    let r = get(&sim, "/oncalls").await;
    assert_eq!(r.status, 429);
    assert_eq!(r.headers["ratelimit-limit"], "960");
    assert_eq!(r.headers["ratelimit-remaining"], "0");
    assert_eq!(r.headers["ratelimit-reset"], "7");
    assert_eq!(
        r.json(),
        json!({"error": {"message": "Rate Limit Exceeded", "code": 2020}})
    );
    assert_eq!(sim.stats().rate_limited(), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn timeout_next_never_answers_and_shutdown_is_prompt() {
    let sim = start(config()).await;
    sim.set_faults(on(
        "/services/{id}",
        FaultSpec {
            timeout_next: 1,
            ..FaultSpec::default()
        },
    ));
    let id = sim.account().services[0].id.clone();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let err = client
        .get(format!("{}/services/{id}", sim.base_url()))
        .header("Authorization", "Token token=t")
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(
        sim.stats()
            .by_status("GET", "/services/{id}", sim::STATUS_NO_ANSWER),
        1
    );
    assert_eq!(get(&sim, &format!("/services/{id}")).await.status, 200);

    // A held request does not hold up shutdown.
    sim.set_faults(on(
        "/services/{id}",
        FaultSpec {
            timeout_next: 1,
            ..FaultSpec::default()
        },
    ));
    let url = format!("{}/services/{id}", sim.base_url());
    let held = tokio::spawn(async move {
        http()
            .get(url)
            .header("Authorization", "Token token=t")
            .send()
            .await
    });
    // Wait (bounded) until the request is being held.
    tokio::time::timeout(Duration::from_secs(5), async {
        while sim.stats().by_status("GET", "/services/{id}", 0) < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("request held");
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), sim.shutdown())
        .await
        .expect("shutdown in time");
    assert!(started.elapsed() < Duration::from_secs(10));
    let _ = tokio::time::timeout(Duration::from_secs(10), held).await;
}

#[tokio::test]
async fn malformed_next_sends_invalid_json_with_200() {
    let sim = start(config()).await;
    sim.set_faults(on(
        "/services",
        FaultSpec {
            malformed_next: 1,
            ..FaultSpec::default()
        },
    ));
    let r = get(&sim, "/services").await;
    assert_eq!(r.status, 200);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert!(serde_json::from_str::<serde_json::Value>(&r.text).is_err());
    assert!(serde_json::from_str::<serde_json::Value>(&get(&sim, "/services").await.text).is_ok());
    sim.shutdown().await;
}

#[tokio::test]
async fn latency_is_added() {
    let sim = start(sim::SimConfig {
        faults: Faults {
            global: FaultSpec {
                latency_ms: 150,
                ..FaultSpec::default()
            },
            per_route: vec![],
            rate_limit_per_minute: None,
        },
        ..config()
    })
    .await;
    let started = Instant::now();
    assert_eq!(get(&sim, "/abilities").await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(150));
    sim.clear_faults();
    assert_eq!(sim.faults(), Faults::default());
    sim.shutdown().await;
}

async fn statuses_with_error_rate(seed: u64) -> Vec<u16> {
    let sim = start(sim::SimConfig {
        seed,
        faults: Faults {
            global: FaultSpec {
                error_rate: 0.3,
                ..FaultSpec::default()
            },
            per_route: vec![],
            rate_limit_per_minute: None,
        },
        ..config()
    })
    .await;
    let mut out = Vec::new();
    for _ in 0..60 {
        out.push(get(&sim, "/abilities").await.status);
    }
    sim.shutdown().await;
    out
}

#[tokio::test]
async fn error_rate_is_seeded_and_roughly_right() {
    let a = statuses_with_error_rate(7).await;
    let b = statuses_with_error_rate(7).await;
    assert_eq!(a, b, "same seed, same sequence");
    let errors = a.iter().filter(|s| **s >= 500).count();
    assert!((6..=32).contains(&errors), "{errors} of 60 at 30%");
    assert!(
        a.iter()
            .all(|s| *s == 200 || [500, 502, 503, 504].contains(s))
    );
}

#[tokio::test]
async fn admin_api_sets_and_reads_faults() {
    let sim = start(config()).await;
    let admin = format!("{}/__sim/faults", sim.base_url());
    let body = json!({
        "global": {"latency_ms": 0},
        "per_route": [["/v2/enqueue", {"fail_next": 1, "fail_status": 429}]]
    });
    let r = http().post(&admin).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let got: serde_json::Value = http()
        .get(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["per_route"][0][0], "/v2/enqueue");
    assert_eq!(got["per_route"][0][1]["fail_next"], 1);

    let throttled = post_raw(&sim, "/v2/enqueue", "{}").await;
    assert_eq!(throttled.status, 429);
    assert_eq!(throttled.json()["status"], "throttle event");
    assert_eq!(throttled.headers["ratelimit-limit"], "960");
    assert_eq!(throttled.headers["ratelimit-remaining"], "0");
    assert_eq!(throttled.headers["ratelimit-reset"], "1");

    let bad = http()
        .post(&admin)
        .json(&json!({"global": {"error_rate": 2.0}}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("global.error_rate"));
    // fail_status is a final HTTP status: 200..=599.
    for status in [100, 199, 600] {
        let r = http()
            .post(&admin)
            .json(&json!({"per_route": [["/teams", {"fail_next": 1, "fail_status": status}]]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{status}");
        let text = r.text().await.unwrap();
        assert!(text.contains("per_route[/teams].fail_status"), "{text}");
    }
    let unknown = http()
        .post(&admin)
        .json(&json!({"global": {"latency": 5}}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 400);
    assert!(unknown.text().await.unwrap().contains("latency"));
    // A template the router does not know would never fire: rejected.
    for template in ["/service/{id}", "/services/PABC123", "services", ""] {
        let r = http()
            .post(&admin)
            .json(&json!({"per_route": [[template, {"fail_next": 1}]]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{template}");
        let text = r.text().await.unwrap();
        assert!(
            text.contains(&format!("per_route[{template}]: unknown route template")),
            "{text}"
        );
        assert!(
            text.contains("/services/{id}"),
            "lists the known ones: {text}"
        );
    }
    assert_eq!(
        sim.faults().per_route[0].0,
        "/v2/enqueue",
        "rejected faults change nothing"
    );
    for status in [200, 599] {
        let r = http()
            .post(&admin)
            .json(&json!({"global": {"fail_status": status}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{status}");
    }
    assert_eq!(
        sim.stats().count("GET", "/__sim/faults"),
        0,
        "admin is not counted"
    );
    sim.shutdown().await;
}

/// Wall time of one GET that must succeed.
async fn timed_get(sim: &sim::SimHandle, path: &str) -> Duration {
    let started = Instant::now();
    let r = get(sim, path).await;
    let took = started.elapsed();
    assert_eq!(r.status, 200, "{path}: {}", r.text);
    took
}

#[tokio::test]
async fn latency_and_jitter_set_through_the_admin_api_add_up() {
    let sim = start(config()).await;
    let r = http()
        .post(format!("{}/__sim/faults", sim.base_url()))
        .json(&json!({
            "global": {"latency_ms": 50},
            "per_route": [["/abilities", {"latency_ms": 150, "jitter_ms": 100}]]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Global plus route: 200..=300 ms, plus generous slack for a busy machine.
    let mut abilities = Vec::new();
    for _ in 0..5 {
        abilities.push(timed_get(&sim, "/abilities").await);
    }
    for took in &abilities {
        assert!(*took >= Duration::from_millis(200), "{abilities:?}");
        assert!(*took < Duration::from_millis(1_000), "{abilities:?}");
    }
    // The jitter draws are seeded, so this spread is the same on every run;
    // without jitter the spread would be only the machine's noise.
    let spread = *abilities.iter().max().unwrap() - *abilities.iter().min().unwrap();
    assert!(spread >= Duration::from_millis(10), "{abilities:?}");

    // Another route gets the global latency only.
    let mut teams = Vec::new();
    for _ in 0..3 {
        teams.push(timed_get(&sim, "/teams").await);
    }
    assert!(
        teams.iter().all(|t| *t >= Duration::from_millis(50)),
        "{teams:?}"
    );
    assert!(
        *teams.iter().min().unwrap() < Duration::from_millis(200),
        "no route latency on /teams: {teams:?}"
    );
    sim.shutdown().await;
}
