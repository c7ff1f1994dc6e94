//! `/v1/cards`: contents match the simulator, batch, ETag/304, parameters.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::helpers::{SimApp, error_of, small_sim, spawn_with_sim};

async fn card(app: &SimApp, path_and_query: &str) -> (reqwest::StatusCode, Value) {
    let response = app.app.get(path_and_query).await;
    let status = response.status();
    (status, response.json().await.expect("JSON body"))
}

#[tokio::test]
async fn a_card_matches_the_simulated_account() {
    let app = spawn_with_sim(small_sim(), "").await;
    let account = app.sim.account();
    // A service with open incidents makes the comparison meaningful.
    let service = account
        .services
        .iter()
        .find(|s| !account.open_incidents(&s.id).is_empty())
        .expect("the seeded account has a service with open incidents");

    let (status, card) = card(&app, &format!("/v1/cards/{}", service.id)).await;
    assert_eq!(status, 200, "{card}");

    let section = &card["service"]["data"];
    assert_eq!(section["id"], service.id.as_str());
    assert_eq!(section["name"], service.name.as_str());
    let teams: BTreeSet<&str> = section["teams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(teams, service.team_ids.iter().map(String::as_str).collect());

    let policy = account
        .escalation_policy(&service.escalation_policy_id)
        .unwrap();
    let ep = &card["escalation_policy"]["data"];
    assert_eq!(ep["id"], policy.id.as_str());
    assert_eq!(ep["levels"].as_array().unwrap().len(), policy.rules.len());

    let open = account.open_incidents(&service.id);
    let incidents = &card["incidents"]["data"];
    let count = |status: &str| open.iter().filter(|i| i.status == status).count() as u64;
    assert_eq!(incidents["triggered"], count("triggered"), "{incidents}");
    assert_eq!(incidents["acknowledged"], count("acknowledged"));
    let newest = incidents["newest"].as_array().unwrap();
    assert_eq!(newest.len(), open.len().min(5));
    let open_ids: BTreeSet<&str> = open.iter().map(|i| i.id.as_str()).collect();
    for incident in newest {
        assert!(open_ids.contains(incident["id"].as_str().unwrap()));
    }

    let oncall = &card["oncall"]["data"];
    assert_eq!(oncall["escalation_policy_id"], policy.id.as_str());
    let expected_users: BTreeSet<String> = account
        .current_oncalls(&policy.id, chrono::Utc::now())
        .into_iter()
        .map(|o| o.user_id)
        .collect();
    let users: BTreeSet<String> = oncall["levels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l["users"].as_array().unwrap().iter())
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(users, expected_users);

    let changes = card["change_events"]["data"]["items"].as_array().unwrap();
    let expected_changes: BTreeSet<&str> = account
        .change_events
        .iter()
        .filter(|c| c.service_id == service.id)
        .map(|c| c.id.as_str())
        .collect();
    assert!(changes.len() <= 5);
    for change in changes {
        assert!(expected_changes.contains(change["id"].as_str().unwrap()));
    }
    // Optional sections only when asked for.
    assert!(card.get("standards").is_none_or(Value::is_null));
}

#[tokio::test]
async fn options_size_the_lists_and_add_sections() {
    let app = spawn_with_sim(small_sim(), "").await;
    let account = app.sim.account();
    let service = account
        .services
        .iter()
        .max_by_key(|s| account.open_incidents(&s.id).len())
        .unwrap();
    let (status, card) = card(
        &app,
        &format!(
            "/v1/cards/{}?include=standards,metrics&incidents=1&change_events=0",
            service.id
        ),
    )
    .await;
    assert_eq!(status, 200, "{card}");
    assert_eq!(
        card["incidents"]["data"]["newest"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(
        card["change_events"]["data"]["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        card["standards"]["data"].is_object(),
        "{}",
        card["standards"]
    );
    assert!(card["metrics"]["data"].is_object(), "{}", card["metrics"]);
}

#[tokio::test]
async fn a_card_is_found_by_integration_key() {
    let app = spawn_with_sim(small_sim(), "").await;
    let account = app.sim.account();
    let (service, key) = account
        .services
        .iter()
        .find_map(|s| {
            s.integrations
                .iter()
                .find_map(|i| i.integration_key.clone())
                .map(|k| (s, k))
        })
        .expect("a service with an integration key");

    let (status, body) = card(&app, &format!("/v1/cards?integration_key={key}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["service"]["data"]["id"], service.id.as_str());

    let response = app
        .app
        .get("/v1/cards?integration_key=0123456789abcdef0123456789abcdef")
        .await;
    assert_eq!(response.status(), 404);
    let (code, _) = error_of(response).await;
    assert_eq!(code, "not_found");

    let response = app.app.get("/v1/cards?integration_key=not%20a%20key").await;
    assert_eq!(response.status(), 400);
    let (code, details) = error_of(response).await;
    assert_eq!(
        (code.as_str(), &details),
        (
            "invalid_parameter",
            &json!({"parameter": "integration_key"})
        )
    );

    let response = app.app.get("/v1/cards").await;
    assert_eq!(response.status(), 400);
    let (_, details) = error_of(response).await;
    assert_eq!(details["parameter"], "integration_key");
}

#[tokio::test]
async fn unknown_services_are_json_404s() {
    let app = spawn_with_sim(small_sim(), "").await;
    let response = app.app.get("/v1/cards/PNOSUCH").await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("PNOSUCH"),
        "{body}"
    );
}

#[tokio::test]
async fn batch_returns_cards_in_order_with_inline_errors() {
    let app = spawn_with_sim(small_sim(), "").await;
    let account = app.sim.account();
    let ids = [
        account.services[0].id.clone(),
        "PNOSUCH".to_owned(),
        account.services[1].id.clone(),
    ];
    let response = app
        .app
        .http
        .post(app.app.url("/v1/cards/batch?incidents=2"))
        .json(&json!({ "service_ids": ids }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let cards = body["cards"].as_array().unwrap();
    assert_eq!(cards.len(), 3);
    for (item, id) in cards.iter().zip(&ids) {
        assert_eq!(item["service_id"], id.as_str());
    }
    assert_eq!(cards[0]["status"], 200);
    assert_eq!(cards[0]["card"]["service"]["data"]["id"], ids[0].as_str());
    assert!(
        cards[0]["card"]["incidents"]["data"]["newest"]
            .as_array()
            .unwrap()
            .len()
            <= 2
    );
    assert_eq!(cards[1]["status"], 404);
    assert_eq!(cards[1]["error"]["code"], "not_found");
    assert!(cards[1].get("card").is_none());
    assert_eq!(cards[2]["status"], 200);
    assert_eq!(cards[2]["card"]["service"]["data"]["id"], ids[2].as_str());
}

#[tokio::test]
async fn etag_and_if_none_match_give_304() {
    let app = spawn_with_sim(small_sim(), "").await;
    let id = app.sim.account().services[0].id.clone();
    let path = format!("/v1/cards/{id}");

    let first = app.app.get(&path).await;
    assert_eq!(first.status(), 200);
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with("W/\""), "{etag}");
    let cache_control = first.headers()["cache-control"]
        .to_str()
        .unwrap()
        .to_owned();
    // Revalidated on every view: never a pre-trigger card from a browser cache.
    assert_eq!(cache_control, "private, no-cache");

    let again = app
        .app
        .http
        .get(app.app.url(&path))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
    assert!(again.bytes().await.unwrap().is_empty());

    let other = app
        .app
        .http
        .get(app.app.url(&path))
        .header("if-none-match", "W/\"0000000000000000\"")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
}

#[tokio::test]
async fn bad_query_parameters_are_named() {
    let app = spawn_with_sim(small_sim(), "").await;
    let id = app.sim.account().services[0].id.clone();
    for (query, parameter) in [
        ("incidents=lots", "incidents"),
        ("incidents=26", "incidents"),
        ("change_events=-1", "change_events"),
        ("include=standards,bogus", "include"),
        ("incidnets=3", "incidnets"),
    ] {
        let response = app.app.get(&format!("/v1/cards/{id}?{query}")).await;
        assert_eq!(response.status(), 400, "{query}");
        let (code, details) = error_of(response).await;
        assert_eq!(code, "invalid_parameter", "{query}");
        assert_eq!(details["parameter"], parameter, "{query}");
    }
    let response = app.app.get("/v1/cards/P%21%40x").await;
    assert_eq!(response.status(), 400);
    let (_, details) = error_of(response).await;
    assert_eq!(details["parameter"], "service_id");
}

#[tokio::test]
async fn bad_batch_bodies_name_the_field() {
    let app = spawn_with_sim(small_sim(), "[server]\nbody_limit_bytes = 2048").await;
    let post = |body: String, content_type: &'static str| {
        let request = app
            .app
            .http
            .post(app.app.url("/v1/cards/batch"))
            .header("content-type", content_type)
            .body(body);
        async move { request.send().await.unwrap() }
    };
    let too_many: Vec<String> = (0..101).map(|i| format!("P{i:06}")).collect();
    for (body, field) in [
        (json!({"service_ids": []}).to_string(), "service_ids"),
        (
            json!({ "service_ids": too_many }).to_string(),
            "service_ids",
        ),
        (
            json!({"service_ids": ["PABC123", "../etc"]}).to_string(),
            "service_ids[1]",
        ),
        (json!({"service_ids": "PABC123"}).to_string(), "service_ids"),
        (
            json!({"service_ids": ["PABC123", 7]}).to_string(),
            "service_ids[1]",
        ),
        (
            json!({"service_idz": ["PABC123"]}).to_string(),
            "service_idz",
        ),
        (json!({}).to_string(), "service_ids"),
    ] {
        let response = post(body.clone(), "application/json").await;
        assert_eq!(response.status(), 400, "{body}");
        let (code, details) = error_of(response).await;
        assert_eq!(code, "invalid_body", "{body}");
        assert_eq!(details["field"], field, "{body}");
    }

    let response = post("{not json".into(), "application/json").await;
    assert_eq!(response.status(), 400);
    assert_eq!(error_of(response).await.0, "invalid_body");

    let response = post(
        json!({"service_ids": ["PABC123"]}).to_string(),
        "text/plain",
    )
    .await;
    assert_eq!(response.status(), 415);
    assert_eq!(error_of(response).await.0, "unsupported_media_type");

    let big = json!({"service_ids": ["PABC123"], "padding": "x".repeat(4096)}).to_string();
    let response = post(big, "application/json").await;
    assert_eq!(response.status(), 413);
    let (code, details) = error_of(response).await;
    assert_eq!(code, "payload_too_large");
    assert_eq!(details["limit_bytes"], 2048);
}

#[tokio::test]
async fn a_held_service_read_is_an_inline_timeout_and_the_other_cards_come_back() {
    let app = spawn_with_sim(
        small_sim(),
        "[server]\nrequest_deadline_ms = 1500\n[pagerduty]\nrequest_timeout_ms = 5000\nretry_deadline_ms = 5000\n[trigger]\ndeadline_ms = 1500\n",
    )
    .await;
    let account = app.sim.account();
    let ids: Vec<String> = account.services[..3].iter().map(|s| s.id.clone()).collect();
    // The first service read of the three is held (no answer for 60 s).
    app.sim.set_faults(sim::Faults {
        per_route: vec![(
            "/services/{id}".into(),
            sim::FaultSpec {
                timeout_next: 1,
                ..sim::FaultSpec::default()
            },
        )],
        ..sim::Faults::default()
    });
    let started = std::time::Instant::now();
    let response = app
        .app
        .http
        .post(app.app.url("/v1/cards/batch"))
        .json(&json!({ "service_ids": ids }))
        .send()
        .await
        .unwrap();
    assert!(started.elapsed() < std::time::Duration::from_millis(1500));
    assert_eq!(
        response.status(),
        200,
        "one slow card never blanks the batch"
    );
    let body: Value = response.json().await.unwrap();
    let cards = body["cards"].as_array().unwrap();
    let statuses: Vec<u64> = cards
        .iter()
        .map(|c| c["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == 504).count(), 1, "{body}");
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 2, "{body}");
    for (item, id) in cards.iter().zip(&ids) {
        assert_eq!(item["service_id"], id.as_str());
        if item["status"] == 200 {
            assert_eq!(item["card"]["service"]["data"]["id"], id.as_str());
            assert!(item["card"]["oncall"]["data"].is_object());
        } else {
            assert_eq!(item["error"]["code"], "upstream_timeout");
            assert!(item.get("card").is_none());
        }
    }
    app.sim.clear_faults();
}
