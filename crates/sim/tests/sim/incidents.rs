//! GET /incidents: filters, the 30-day default window, sorting.

use chrono::Duration;

use crate::common::*;

#[tokio::test]
async fn default_window_hides_old_open_incidents_date_range_all_shows_them() {
    let sim = start(config()).await;
    let account = sim.account();
    let now = fixed_now();
    let old = account
        .incidents
        .iter()
        .find(|i| i.is_open() && i.created_at < now - Duration::days(30))
        .expect("an open incident older than 30 days");

    let base = format!(
        "/incidents?service_ids[]={}&statuses[]=triggered&statuses[]=acknowledged&limit=100",
        old.service_id
    );
    let recent = get_ok(&sim, &base).await;
    assert!(!ids(&recent["incidents"]).contains(&old.id));
    let all = get_ok(&sim, &format!("{base}&date_range=all")).await;
    assert!(ids(&all["incidents"]).contains(&old.id));

    let expected: Vec<String> = account
        .open_incidents(&old.service_id)
        .iter()
        .map(|i| i.id.clone())
        .collect();
    let mut got = ids(&all["incidents"]);
    got.sort();
    let mut want = expected.clone();
    want.sort();
    assert_eq!(got, want);
    sim.shutdown().await;
}

#[tokio::test]
async fn status_urgency_and_service_filters() {
    let sim = start(config()).await;
    let account = sim.account();
    for status in ["triggered", "acknowledged", "resolved"] {
        let page = get_ok(
            &sim,
            &format!("/incidents?statuses[]={status}&date_range=all&limit=100&total=true"),
        )
        .await;
        let want = account
            .incidents
            .iter()
            .filter(|i| i.status == status)
            .count();
        assert!(want > 0, "the account has {status} incidents");
        assert_eq!(page["total"], want, "{status}");
        for i in page["incidents"].as_array().unwrap() {
            assert_eq!(i["status"], status);
        }
    }
    let low = get_ok(
        &sim,
        "/incidents?urgencies[]=low&date_range=all&limit=100&total=true",
    )
    .await;
    let want = account
        .incidents
        .iter()
        .filter(|i| i.urgency == "low")
        .count();
    assert!(want > 0, "the account has low-urgency incidents");
    assert_eq!(low["total"], want);
    assert_eq!(low["incidents"].as_array().unwrap().len(), want.min(100));
    for i in low["incidents"].as_array().unwrap() {
        assert_eq!(i["urgency"], "low");
    }
    let s1 = &account.services[0].id;
    let s2 = &account.services[1].id;
    let two = get_ok(
        &sim,
        &format!("/incidents?service_ids[]={s1}&service_ids[]={s2}&date_range=all&limit=100"),
    )
    .await;
    let want = account
        .incidents
        .iter()
        .filter(|i| &i.service_id == s1 || &i.service_id == s2)
        .count();
    assert_eq!(two["incidents"].as_array().unwrap().len(), want);
    for i in two["incidents"].as_array().unwrap() {
        let sid = i["service"]["id"].as_str().unwrap();
        assert!(sid == s1 || sid == s2);
        assert_eq!(i["service"]["type"], "service_reference");
    }

    let bad = get(&sim, "/incidents?statuses[]=open").await;
    assert_eq!(bad.status, 400);
    assert!(bad.text.contains("statuses[]"), "{}", bad.text);
    sim.shutdown().await;
}

#[tokio::test]
async fn since_until_and_sorting() {
    let sim = start(config()).await;
    let now = fixed_now();
    let since = (now - Duration::days(90)).format("%Y-%m-%dT%H:%M:%SZ");
    let until = now.format("%Y-%m-%dT%H:%M:%SZ");
    let page = get_ok(
        &sim,
        &format!("/incidents?since={since}&until={until}&sort_by=created_at:desc&limit=100"),
    )
    .await;
    let created: Vec<&str> = page["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["created_at"].as_str().unwrap())
        .collect();
    assert!(created.len() > 10);
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "newest first");

    let asc = get_ok(
        &sim,
        "/incidents?date_range=all&sort_by=incident_number:asc&limit=100",
    )
    .await;
    let numbers: Vec<u64> = asc["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["incident_number"].as_u64().unwrap())
        .collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]));
    let first = &asc["incidents"][0];
    assert_eq!(
        first["summary"],
        format!(
            "[#{}] {}",
            first["incident_number"],
            first["title"].as_str().unwrap()
        )
    );

    let bad_sort = get(&sim, "/incidents?sort_by=title").await;
    assert_eq!(bad_sort.status, 400);
    let bad_time = get(&sim, "/incidents?since=yesterday").await;
    assert_eq!(bad_time.status, 400);
    assert_eq!(bad_time.json()["error"]["code"], 2004);
    let too_long = get(
        &sim,
        "/incidents?since=2025-01-01T00:00:00Z&until=2026-01-01T00:00:00Z",
    )
    .await;
    assert_eq!(too_long.status, 400);
    assert_eq!(too_long.json()["error"]["code"], 2005);
    sim.shutdown().await;
}

#[tokio::test]
async fn includes_expand_assignees_and_services() {
    let sim = start(config()).await;
    let page = get_ok(
        &sim,
        "/incidents?statuses[]=triggered&date_range=all&include[]=assignees&include[]=services&limit=5",
    )
    .await;
    let inc = &page["incidents"][0];
    assert_eq!(inc["service"]["type"], "service");
    let assignee = &inc["assignments"][0]["assignee"];
    assert_eq!(assignee["type"], "user");
    assert!(assignee["email"].as_str().unwrap().contains('@'));
    sim.shutdown().await;
}
