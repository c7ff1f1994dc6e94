//! GET /services and /services/{id}: filters, includes, pagination.

use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn list_paginates_like_pagerduty() {
    let sim = start(sim::SimConfig {
        services: 130,
        ..config()
    })
    .await;

    let page = get_ok(&sim, "/services").await;
    assert_eq!(page["limit"], 25);
    assert_eq!(page["offset"], 0);
    assert_eq!(page["more"], true);
    assert_eq!(page["total"], json!(null), "total only with total=true");
    let names: Vec<&str> = page["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 25);
    assert!(names.windows(2).all(|w| w[0] <= w[1]), "sorted by name");

    let page = get_ok(&sim, "/services?limit=500&total=true").await;
    assert_eq!(page["limit"], 100, "limit is capped at 100");
    assert_eq!(page["services"].as_array().unwrap().len(), 100);
    assert_eq!(page["total"], 130);
    assert_eq!(page["more"], true);

    let last = get_ok(&sim, "/services?limit=100&offset=100").await;
    assert_eq!(last["services"].as_array().unwrap().len(), 30);
    assert_eq!(last["more"], false);

    // Walking pages with `more` visits every service once.
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let p = get_ok(&sim, &format!("/services?limit=40&offset={offset}")).await;
        seen.extend(ids(&p["services"]));
        if p["more"] == false {
            break;
        }
        offset += 40;
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 130);

    let over = get(&sim, "/services?offset=9950&limit=100").await;
    assert_eq!(over.status, 400);
    assert_eq!(
        over.json(),
        json!({"error": {"message": "Invalid Input Provided", "code": 2001,
            "errors": ["Offset plus limit must not exceed 10000; narrow the query with filters"]}})
    );
    // An offset near u64::MAX is the same 400, not an overflow.
    for path in [
        "/services?offset=18446744073709551615",
        "/incidents?offset=18446744073709551615&limit=100",
        "/teams?offset=18446744073709551600",
    ] {
        let huge = get(&sim, path).await;
        assert_eq!(huge.status, 400, "{path}: {}", huge.text);
        assert_eq!(huge.json(), over.json(), "{path}");
    }
    let ok = get(&sim, "/services?offset=9900&limit=100").await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["services"], json!([]));

    let bad = get(&sim, "/services?limit=abc").await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.text.contains("limit must be a non-negative integer"),
        "{}",
        bad.text
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn query_matches_names_and_integration_keys() {
    let sim = start(config()).await;
    let account = sim.account();
    let svc = &account.services[3];
    let key = svc.integrations[0].integration_key.clone().unwrap();

    let by_key = get_ok(
        &sim,
        &format!("/services?query={key}&include[]=integrations"),
    )
    .await;
    assert_eq!(ids(&by_key["services"]), vec![svc.id.clone()]);
    let integ = &by_key["services"][0]["integrations"][0];
    assert_eq!(integ["integration_key"], key.as_str());
    assert_eq!(integ["type"], "events_api_v2_inbound_integration");

    let fragment = &svc.name[..svc.name.len() - 1].to_uppercase();
    let by_name = get_ok(&sim, &format!("/services?query={fragment}")).await;
    assert!(ids(&by_name["services"]).contains(&svc.id));
    for s in by_name["services"].as_array().unwrap() {
        assert!(
            s["name"]
                .as_str()
                .unwrap()
                .to_uppercase()
                .contains(fragment.as_str()),
            "query is a case-insensitive name match"
        );
    }

    let none = get_ok(&sim, "/services?query=no-such-service-anywhere").await;
    assert_eq!(none["services"], json!([]));
    sim.shutdown().await;
}

#[tokio::test]
async fn team_filter_and_bracket_forms() {
    let sim = start(config()).await;
    let account = sim.account();
    let team = &account.teams[0];
    let expected: Vec<String> = account
        .services
        .iter()
        .filter(|s| s.team_ids.contains(&team.id))
        .map(|s| s.id.clone())
        .collect();
    assert!(!expected.is_empty());
    for q in [
        format!("/services?team_ids[]={}&limit=100", team.id),
        format!("/services?team_ids%5B%5D={}&limit=100", team.id),
        format!("/services?team_ids={}&limit=100", team.id),
    ] {
        let page = get_ok(&sim, &q).await;
        assert_eq!(ids(&page["services"]), expected, "{q}");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn get_service_references_unless_included() {
    let sim = start(config()).await;
    let account = sim.account();
    let svc = account
        .services
        .iter()
        .find(|s| s.integrations.len() > 1 && !s.team_ids.is_empty())
        .unwrap();

    let plain = get_ok(&sim, &format!("/services/{}", svc.id)).await["service"].clone();
    assert_eq!(plain["id"], svc.id.as_str());
    assert_eq!(plain["type"], "service");
    assert_eq!(plain["name"], svc.name.as_str());
    assert_eq!(
        plain["escalation_policy"]["type"],
        "escalation_policy_reference"
    );
    assert_eq!(
        plain["escalation_policy"]["id"],
        svc.escalation_policy_id.as_str()
    );
    assert_eq!(plain["teams"][0]["type"], "team_reference");
    let integ = &plain["integrations"][0];
    assert!(integ["type"].as_str().unwrap().ends_with("_reference"));
    assert!(
        integ.get("integration_key").is_none(),
        "references carry no key"
    );
    assert_eq!(plain["status"], account.service_status(&svc.id).as_str());

    let full = get_ok(
        &sim,
        &format!(
            "/services/{}?include[]=escalation_policies&include[]=integrations&include[]=teams&time_zone=UTC",
            svc.id
        ),
    )
    .await["service"]
        .clone();
    assert_eq!(full["escalation_policy"]["type"], "escalation_policy");
    assert!(
        !full["escalation_policy"]["escalation_rules"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(full["teams"][0]["type"], "team");
    let keys: Vec<&str> = full["integrations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["integration_key"].as_str())
        .collect();
    let expected: Vec<&str> = svc
        .integrations
        .iter()
        .filter_map(|i| i.integration_key.as_deref())
        .collect();
    assert_eq!(keys, expected);

    let missing = get(&sim, "/services/PNOPE00").await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.json(),
        json!({"error": {"message": "Not Found", "code": 2100}})
    );

    let bad = get(&sim, &format!("/services/{}?include[]=bogus", svc.id)).await;
    assert_eq!(bad.status, 400);
    assert!(bad.text.contains("include[]"), "{}", bad.text);
    sim.shutdown().await;
}

#[tokio::test]
async fn backstage_vendor_integrations_are_served() {
    let sim = start(config()).await;
    let page = get_ok(&sim, "/services?include[]=integrations&limit=100").await;
    let backstage: Vec<_> = page["services"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["integrations"].as_array().unwrap().iter())
        .filter(|i| i["vendor"]["id"] == "PRO19CT")
        .collect();
    assert!(!backstage.is_empty());
    for i in backstage {
        assert_eq!(i["vendor"]["type"], "vendor_reference");
        assert_eq!(i["integration_key"].as_str().unwrap().len(), 32);
    }
    sim.shutdown().await;
}
