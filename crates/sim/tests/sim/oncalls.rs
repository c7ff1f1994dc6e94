//! GET /oncalls: escalation policies, levels, earliest, include[]=users.

use std::collections::BTreeSet;

use chrono::Duration;
use serde_json::Value;

use crate::common::*;

fn entries(v: &Value) -> &Vec<Value> {
    v["oncalls"].as_array().unwrap()
}

#[tokio::test]
async fn current_oncalls_match_the_account() {
    let sim = start(config()).await;
    let account = sim.account();
    let ep = &account.escalation_policies[0];
    let want = account.current_oncalls(&ep.id, fixed_now());
    assert!(!want.is_empty());

    let plain = get_ok(
        &sim,
        &format!(
            "/oncalls?escalation_policy_ids[]={}&time_zone=UTC&limit=100",
            ep.id
        ),
    )
    .await;
    let got = entries(&plain);
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(
            g["escalation_policy"]["id"],
            w.escalation_policy_id.as_str()
        );
        assert_eq!(g["escalation_level"], w.escalation_level);
        assert_eq!(g["user"]["id"], w.user_id.as_str());
        assert_eq!(g["user"]["type"], "user_reference");
        match &w.schedule_id {
            Some(s) => assert_eq!(g["schedule"]["id"], s.as_str()),
            None => {
                assert!(g["schedule"].is_null());
                assert!(g["start"].is_null() && g["end"].is_null(), "permanent");
            }
        }
    }

    let with_users = get_ok(
        &sim,
        &format!("/oncalls?escalation_policy_ids[]={}&include[]=users", ep.id),
    )
    .await;
    let user = &entries(&with_users)[0]["user"];
    assert_eq!(user["type"], "user");
    let u = account.user(user["id"].as_str().unwrap()).unwrap();
    assert_eq!(user["email"], u.email.as_str());
    assert_eq!(user["name"], u.name.as_str());
    assert_eq!(user["avatar_url"], u.avatar_url.as_str());
    sim.shutdown().await;
}

#[tokio::test]
async fn several_policies_levels_and_empty_first_levels() {
    let sim = start(config()).await;
    let account = sim.account();
    let now = fixed_now();

    // Some policy has nobody on call at level 1.
    let empty_first = account
        .escalation_policies
        .iter()
        .find(|e| {
            !account
                .current_oncalls(&e.id, now)
                .iter()
                .any(|o| o.escalation_level == 1)
        })
        .expect("a policy whose level 1 is empty");
    // Some policy has the same user on several levels.
    let multi = account
        .escalation_policies
        .iter()
        .find(|e| {
            let oc = account.current_oncalls(&e.id, now);
            oc.iter().any(|a| {
                oc.iter()
                    .any(|b| a.user_id == b.user_id && a.escalation_level != b.escalation_level)
            })
        })
        .expect("a policy with one user on several levels");

    let page = get_ok(
        &sim,
        &format!(
            "/oncalls?escalation_policy_ids[]={}&escalation_policy_ids[]={}&limit=100",
            empty_first.id, multi.id
        ),
    )
    .await;
    let got = entries(&page);
    let policies: BTreeSet<&str> = got
        .iter()
        .map(|o| o["escalation_policy"]["id"].as_str().unwrap())
        .collect();
    assert!(policies.contains(multi.id.as_str()));
    assert!(!got.iter().any(|o| {
        o["escalation_policy"]["id"] == empty_first.id.as_str() && o["escalation_level"] == 1
    }));
    let total = account.current_oncalls(&empty_first.id, now).len()
        + account.current_oncalls(&multi.id, now).len();
    assert_eq!(got.len(), total);
    sim.shutdown().await;
}

#[tokio::test]
async fn earliest_keeps_one_entry_per_policy_level_and_user() {
    let sim = start(config()).await;
    let account = sim.account();
    let since = fixed_now();
    let until = since + Duration::days(14);
    let range = format!(
        "since={}&until={}",
        since.format("%Y-%m-%dT%H:%M:%SZ"),
        until.format("%Y-%m-%dT%H:%M:%SZ")
    );
    // A policy whose schedules rotate several shifts in two weeks.
    let ep = account
        .escalation_policies
        .iter()
        .find(|e| {
            let all = account.oncalls_for(&e.id, since, until);
            let keys: BTreeSet<_> = all
                .iter()
                .map(|o| (o.escalation_level, o.user_id.clone()))
                .collect();
            keys.len() < all.len()
        })
        .expect("a policy with repeated shifts");

    let all = get_ok(
        &sim,
        &format!(
            "/oncalls?escalation_policy_ids[]={}&{range}&limit=100",
            ep.id
        ),
    )
    .await;
    let earliest = get_ok(
        &sim,
        &format!(
            "/oncalls?escalation_policy_ids[]={}&{range}&earliest=true&limit=100",
            ep.id
        ),
    )
    .await;
    let all = entries(&all);
    let earliest = entries(&earliest);
    assert!(earliest.len() < all.len());
    let keys: BTreeSet<(u64, String)> = earliest
        .iter()
        .map(|o| {
            (
                o["escalation_level"].as_u64().unwrap(),
                o["user"]["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(keys.len(), earliest.len(), "one per (level, user)");
    let all_keys: BTreeSet<(u64, String)> = all
        .iter()
        .map(|o| {
            (
                o["escalation_level"].as_u64().unwrap(),
                o["user"]["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(keys, all_keys);
    // Each kept entry is the earliest of its key (permanent entries first).
    for e in earliest {
        let start = e["start"].as_str();
        for a in all.iter().filter(|a| {
            a["escalation_level"] == e["escalation_level"] && a["user"]["id"] == e["user"]["id"]
        }) {
            match (start, a["start"].as_str()) {
                (None, _) => {}
                (Some(_), None) => panic!("a permanent entry was dropped"),
                (Some(s), Some(o)) => assert!(s <= o),
            }
        }
    }

    let too_wide = get(
        &sim,
        &format!(
            "/oncalls?since={}&until={}",
            since.format("%Y-%m-%dT%H:%M:%SZ"),
            (since + Duration::days(100)).format("%Y-%m-%dT%H:%M:%SZ")
        ),
    )
    .await;
    assert_eq!(too_wide.status, 400);
    sim.shutdown().await;
}

#[tokio::test]
async fn schedule_and_user_filters() {
    let sim = start(config()).await;
    let account = sim.account();
    let now = fixed_now();
    let entry = account
        .escalation_policies
        .iter()
        .flat_map(|e| account.current_oncalls(&e.id, now))
        .find(|o| o.schedule_id.is_some())
        .unwrap();
    let schedule = entry.schedule_id.clone().unwrap();
    let page = get_ok(
        &sim,
        &format!("/oncalls?schedule_ids[]={schedule}&limit=100"),
    )
    .await;
    assert!(!entries(&page).is_empty());
    for o in entries(&page) {
        assert_eq!(o["schedule"]["id"], schedule.as_str());
    }
    // At the fixed clock, so the expected count cannot cross a hand-off.
    let at = now.format("%Y-%m-%dT%H:%M:%SZ");
    let page = get_ok(
        &sim,
        &format!(
            "/oncalls?user_ids[]={}&since={at}&until={at}&limit=100&total=true",
            entry.user_id
        ),
    )
    .await;
    let want = account
        .escalation_policies
        .iter()
        .flat_map(|e| account.current_oncalls(&e.id, now))
        .filter(|o| o.user_id == entry.user_id)
        .count();
    assert!(want > 0);
    assert_eq!(page["total"], want);
    assert_eq!(entries(&page).len(), want.min(100));
    for o in entries(&page) {
        assert_eq!(o["user"]["id"], entry.user_id.as_str());
    }
    sim.shutdown().await;
}
