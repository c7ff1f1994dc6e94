//! Escalation policies, change events, teams, users, schedules, abilities,
//! standards and analytics.

use chrono::Duration;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn escalation_policies_by_id_and_by_service() {
    let sim = start(config()).await;
    let account = sim.account();
    let svc = &account.services[2];
    let ep = account
        .escalation_policy(&svc.escalation_policy_id)
        .unwrap();

    let one = get_ok(&sim, &format!("/escalation_policies/{}", ep.id)).await;
    let e = &one["escalation_policy"];
    assert_eq!(e["type"], "escalation_policy");
    assert_eq!(e["name"], ep.name.as_str());
    let rules = e["escalation_rules"].as_array().unwrap();
    assert_eq!(rules.len(), ep.rules.len());
    for (r, want) in rules.iter().zip(&ep.rules) {
        assert_eq!(r["targets"].as_array().unwrap().len(), want.targets.len());
        for t in r["targets"].as_array().unwrap() {
            let kind = t["type"].as_str().unwrap();
            assert!(
                kind == "user_reference" || kind == "schedule_reference",
                "{kind}"
            );
        }
    }
    assert!(ids(&e["services"]).contains(&svc.id));

    let targets = get_ok(
        &sim,
        &format!("/escalation_policies/{}?include[]=targets", ep.id),
    )
    .await;
    for r in targets["escalation_policy"]["escalation_rules"]
        .as_array()
        .unwrap()
    {
        for t in r["targets"].as_array().unwrap() {
            let kind = t["type"].as_str().unwrap();
            assert!(kind == "user" || kind == "schedule", "{kind}");
        }
    }

    let by_service = get_ok(
        &sim,
        &format!("/escalation_policies?service_ids[]={}", svc.id),
    )
    .await;
    assert_eq!(ids(&by_service["escalation_policies"]), vec![ep.id.clone()]);
    let list = get_ok(&sim, "/escalation_policies?limit=100&total=true").await;
    assert_eq!(list["total"], account.escalation_policies.len());
    let missing = get(&sim, "/escalation_policies/PNOPE00").await;
    assert_eq!(missing.status, 404);
    sim.shutdown().await;
}

#[tokio::test]
async fn change_events_per_service_and_account_wide() {
    let sim = start(config()).await;
    let account = sim.account();
    let svc = account
        .services
        .iter()
        .find(|s| {
            account
                .change_events
                .iter()
                .filter(|c| c.service_id == s.id)
                .count()
                >= 2
        })
        .unwrap();
    let page = get_ok(&sim, &format!("/services/{}/change_events?limit=5", svc.id)).await;
    let events = page["change_events"].as_array().unwrap();
    assert!(events.len() >= 2);
    let stamps: Vec<&str> = events
        .iter()
        .map(|c| c["timestamp"].as_str().unwrap())
        .collect();
    assert!(stamps.windows(2).all(|w| w[0] >= w[1]), "newest first");
    for c in events {
        assert_eq!(c["services"][0]["id"], svc.id.as_str());
        assert_eq!(c["type"], "change_event");
        assert!(
            c["links"][0]["href"]
                .as_str()
                .unwrap()
                .starts_with("https://")
        );
    }

    let all = get_ok(&sim, "/change_events?limit=100&total=true").await;
    assert_eq!(all["total"], account.change_events.len().min(10_000));
    let since = (fixed_now() - Duration::days(3)).format("%Y-%m-%dT%H:%M:%SZ");
    let recent = get_ok(
        &sim,
        &format!("/change_events?since={since}&limit=100&total=true"),
    )
    .await;
    let want = account
        .change_events
        .iter()
        .filter(|c| c.timestamp >= fixed_now() - Duration::days(3))
        .count();
    assert_eq!(recent["total"], want);

    // A team that owns a service with change events.
    let team = account
        .change_events
        .iter()
        .find_map(|c| account.service(&c.service_id)?.team_ids.first())
        .expect("a change event on a service with a team");
    let by_team = get_ok(
        &sim,
        &format!("/change_events?team_ids[]={team}&limit=100&total=true"),
    )
    .await;
    let want = account
        .change_events
        .iter()
        .filter(|c| {
            account
                .service(&c.service_id)
                .is_some_and(|s| s.team_ids.contains(team))
        })
        .count();
    assert!(want > 0);
    assert_eq!(by_team["total"], want);
    assert_eq!(
        by_team["change_events"].as_array().unwrap().len(),
        want.min(100)
    );
    for c in by_team["change_events"].as_array().unwrap() {
        let sid = c["services"][0]["id"].as_str().unwrap();
        assert!(account.service(sid).unwrap().team_ids.contains(team));
    }

    let non_utc = get(
        &sim,
        &format!(
            "/services/{}/change_events?since=2026-05-01T00:00:00%2B02:00",
            svc.id
        ),
    )
    .await;
    assert_eq!(non_utc.status, 400);
    assert!(
        non_utc.text.contains("since must be a UTC"),
        "{}",
        non_utc.text
    );
    let missing = get(&sim, "/services/PNOPE00/change_events").await;
    assert_eq!(missing.status, 404);
    sim.shutdown().await;
}

#[tokio::test]
async fn teams_users_schedules_abilities() {
    let sim = start(config()).await;
    let account = sim.account();
    let teams = get_ok(&sim, "/teams?limit=100&total=true").await;
    assert_eq!(teams["total"], account.teams.len());
    let q = &account.teams[0].name[..3];
    let found = get_ok(&sim, &format!("/teams?query={q}")).await;
    assert!(ids(&found["teams"]).contains(&account.teams[0].id));

    let u = &account.users[0];
    let user = get_ok(&sim, &format!("/users/{}", u.id)).await;
    assert_eq!(user["user"]["email"], u.email.as_str());
    assert_eq!(
        user["user"]["html_url"],
        format!("https://sim.pagerduty.com/users/{}", u.id)
    );
    assert_eq!(get(&sim, "/users/PNOPE00").await.status, 404);

    let s = account
        .schedules
        .iter()
        .find(|s| !s.user_ids.is_empty())
        .unwrap();
    let sched = get_ok(&sim, &format!("/schedules/{}", s.id)).await;
    assert_eq!(sched["schedule"]["name"], s.name.as_str());
    assert!(
        !sched["schedule"]["final_schedule"]["rendered_schedule_entries"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let abilities = get_ok(&sim, "/abilities").await;
    assert!(
        abilities["abilities"]
            .as_array()
            .unwrap()
            .contains(&json!("teams"))
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn standards_one_and_many() {
    let sim = start(config()).await;
    let account = sim.account();
    let svc = &account.services[0];
    let one = get_ok(
        &sim,
        &format!("/standards/scores/technical_services/{}", svc.id),
    )
    .await;
    assert_eq!(one["resource_id"], svc.id.as_str());
    assert_eq!(one["resource_type"], "technical_service");
    let standards = one["standards"].as_array().unwrap();
    let passing = standards.iter().filter(|s| s["pass"] == true).count();
    assert_eq!(one["score"]["passing"], passing);
    assert_eq!(one["score"]["total"], standards.len());
    let desc = standards
        .iter()
        .find(|s| s["type"] == "has_technical_service_description")
        .unwrap();
    assert_eq!(desc["pass"], svc.description.is_some());

    let a = &account.services[1].id;
    let b = &account.services[2].id;
    for q in [
        format!("ids={a}&ids={b}"),
        format!("ids[]={a}&ids[]={b}"),
        format!("ids={a},{b}"),
    ] {
        let many = get_ok(&sim, &format!("/standards/scores/technical_services?{q}")).await;
        let got: Vec<&str> = many["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["resource_id"].as_str().unwrap())
            .collect();
        assert_eq!(got, vec![a.as_str(), b.as_str()], "{q}");
    }
    let too_many: Vec<String> = (0..101).map(|i| format!("ids[]=P{i:06}")).collect();
    let r = get(
        &sim,
        &format!(
            "/standards/scores/technical_services?{}",
            too_many.join("&")
        ),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        get(&sim, "/standards/scores/technical_services/PNOPE00")
            .await
            .status,
        404
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn incident_metrics_for_several_services() {
    let sim = start(config()).await;
    let account = sim.account();
    let end = fixed_now();
    let start_t = end - Duration::days(90);
    let with_incidents: Vec<String> = account
        .services
        .iter()
        .filter(|s| {
            account
                .incidents
                .iter()
                .any(|i| i.service_id == s.id && i.created_at >= start_t)
        })
        .take(3)
        .map(|s| s.id.clone())
        .collect();
    assert_eq!(with_incidents.len(), 3);
    let body = json!({
        "filters": {
            "created_at_start": start_t.to_rfc3339(),
            "created_at_end": end.to_rfc3339(),
            "service_ids": with_incidents,
        },
        "time_zone": "Etc/UTC",
    });
    let r = post_json(&sim, "/analytics/metrics/incidents/services", &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let data = r.json()["data"].as_array().unwrap().clone();
    assert_eq!(data.len(), 3);
    for row in &data {
        let sid = row["service_id"].as_str().unwrap();
        let want = account
            .incidents
            .iter()
            .filter(|i| i.service_id == sid && i.created_at >= start_t && i.created_at < end)
            .count();
        assert_eq!(row["total_incident_count"], want);
        assert_eq!(
            row["service_name"],
            account.service(sid).unwrap().name.as_str()
        );
    }

    let daily = post_json(
        &sim,
        "/analytics/metrics/incidents/services",
        &json!({"filters": body["filters"], "aggregate_unit": "day"}),
    )
    .await;
    let rows = daily.json()["data"].as_array().unwrap().clone();
    let total: u64 = rows
        .iter()
        .map(|r| r["total_incident_count"].as_u64().unwrap())
        .sum();
    let whole: u64 = data
        .iter()
        .map(|r| r["total_incident_count"].as_u64().unwrap())
        .sum();
    assert_eq!(total, whole);
    assert!(rows.iter().all(|r| r["range_start"].is_string()));

    let bad = post_json(
        &sim,
        "/analytics/metrics/incidents/services",
        &json!({"filters": {"created_at_start": "last week"}}),
    )
    .await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.text.contains("filters.created_at_start"),
        "{}",
        bad.text
    );
    sim.shutdown().await;
}
