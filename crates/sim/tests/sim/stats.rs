//! Request counters and the admin stats endpoints.

use crate::common::*;

#[tokio::test]
async fn counts_per_route_and_status_and_resets() {
    let sim = start(config()).await;
    let id = sim.account().services[0].id.clone();
    get(&sim, "/services").await;
    get(&sim, "/services").await;
    get(&sim, &format!("/services/{id}")).await;
    get(&sim, "/services/PNOPE00").await;
    get(&sim, "/nope").await;
    http()
        .get(format!("{}/incidents", sim.base_url()))
        .send()
        .await
        .unwrap();

    let stats = sim.stats();
    assert_eq!(stats.count("GET", "/services"), 2);
    assert_eq!(stats.count("GET", "/services/{id}"), 2);
    assert_eq!(stats.by_status("GET", "/services/{id}", 200), 1);
    assert_eq!(stats.by_status("GET", "/services/{id}", 404), 1);
    assert_eq!(stats.by_status("GET", "/incidents", 401), 1);
    assert_eq!(stats.by_status("GET", "<unmatched>", 404), 1);
    assert_eq!(stats.total(), 6);

    let over_http: sim::SimStats = http()
        .get(format!("{}/__sim/stats", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(over_http, stats, "admin routes are not counted");

    let reset = http()
        .post(format!("{}/__sim/reset", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 204);
    assert_eq!(sim.stats().total(), 0);
    get(&sim, "/services").await;
    sim.reset_stats();
    assert_eq!(sim.stats().total(), 0);

    let summary: serde_json::Value = http()
        .get(format!("{}/__sim/account", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(summary["counts"]["services"], 30);
    sim.shutdown().await;
}

#[tokio::test]
async fn dropping_the_handle_stops_the_simulator() {
    let sim = start(config()).await;
    let addr = sim.base_url().trim_start_matches("http://").to_owned();
    assert_eq!(get(&sim, "/abilities").await.status, 200);
    drop(sim);
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while tokio::net::TcpStream::connect(&addr).await.is_ok() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the port closes after drop");
}
