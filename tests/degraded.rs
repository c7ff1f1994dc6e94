//! PagerDuty says no: the 0.17.1 card's call sequence still renders when
//! PagerDuty refuses standards or analytics, the operator is told, and a
//! cold card whose service cannot be read costs one call.

use serde_json::{Value, json};

use crate::helpers::{SimApp, TestApp, small_sim, spawn_with_sim};

const P: &str = "/api/pagerduty";

async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    let res = app.get(path).await;
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Every request to the standards and analytics routes answers `status`.
fn refuse_standards_and_metrics(sim: &sim::SimHandle, status: u16) {
    let refuse = sim::FaultSpec {
        fail_next: 100_000,
        fail_status: status,
        ..sim::FaultSpec::default()
    };
    sim.set_faults(sim::Faults {
        per_route: [
            "/standards/scores/{resource_type}",
            "/standards/scores/{resource_type}/{id}",
            "/analytics/metrics/incidents/services",
        ]
        .into_iter()
        .map(|route| (route.to_owned(), refuse.clone()))
        .collect(),
        ..sim::Faults::default()
    });
}

/// The card's reads for every simulated service (service, standards,
/// metrics, then its tabs) answer 200 with PagerDuty refusing analytics and
/// standards with 403, 402 or 404: standards `{}` and metrics `[]`, the
/// rest as usual. `/readyz` lists both sections with the status, `/metrics`
/// counts the degraded answers, and `/v1` still reports the real error.
#[tokio::test]
async fn the_card_renders_when_pagerduty_refuses_standards_or_analytics() {
    for status in [403u16, 402, 404] {
        let SimApp { app, sim } = spawn_with_sim(small_sim(), "").await;
        refuse_standards_and_metrics(&sim, status);
        let services: Vec<(String, String)> = sim
            .account()
            .services
            .iter()
            .map(|s| (s.id.clone(), s.escalation_policy_id.clone()))
            .collect();
        assert!(services.len() >= 10);
        for (id, policy) in &services {
            let (code, body) = get(&app, &format!("{P}/services/{id}")).await;
            assert_eq!((code, body["service"]["id"].clone()), (200, json!(id)));
            let (code, body) = get(&app, &format!("{P}/services/{id}/standards")).await;
            assert_eq!(
                (code, &body),
                (200, &json!({"standards": {}})),
                "{status} {id}"
            );
            let (code, body) = get(&app, &format!("{P}/services/{id}/metrics")).await;
            assert_eq!(
                (code, &body),
                (200, &json!({"metrics": []})),
                "{status} {id}"
            );
            for path in [
                format!("{P}/services/{id}/incidents"),
                format!("{P}/services/{id}/change-events"),
                format!("{P}/oncall-users?escalation_policy_ids[]={policy}"),
            ] {
                let (code, body) = get(&app, &path).await;
                assert_eq!(code, 200, "{path}: {body}");
            }
        }

        let (code, ready) = get(&app, "/readyz").await;
        assert_eq!(
            code, 200,
            "a refused optional section is not unreadiness: {ready}"
        );
        let degraded = ready["degraded"].as_array().expect("degraded listed");
        let sections: Vec<(&str, &str, u64)> = degraded
            .iter()
            .map(|d| {
                (
                    d["account"].as_str().unwrap(),
                    d["section"].as_str().unwrap(),
                    d["status"].as_u64().unwrap(),
                )
            })
            .collect();
        let s = u64::from(status);
        assert_eq!(
            sections,
            [("default", "metrics", s), ("default", "standards", s)],
            "{ready}"
        );
        assert!(degraded.iter().all(|d| d["answers"].as_u64().unwrap() >= 1));

        let metrics = app.metrics().await;
        let line = format!(
            "dutycard_backstage_degraded_answers_total{{account=\"default\",section=\"metrics\",status=\"{status}\"}} {}",
            services.len()
        );
        assert!(metrics.contains(&line), "{line} missing from:\n{metrics}");
        assert!(metrics.contains(&format!(
            "dutycard_backstage_section_degraded{{account=\"default\",section=\"standards\",status=\"{status}\"}} 1"
        )));

        // The /v1 card keeps the truth: the section carries the error.
        let (id, _) = &services[0];
        let (code, card) = get(&app, &format!("/v1/cards/{id}?include=standards,metrics")).await;
        assert_eq!(code, 200, "{card}");
        assert!(card["metrics"]["error"].is_object(), "{card}");
        assert!(card["standards"]["error"].is_object(), "{card}");

        // PagerDuty serves them again: the entries go, the counter stays.
        sim.clear_faults();
        let fresh = &services[1].0;
        let (code, body) = get(&app, &format!("{P}/services/{fresh}/metrics")).await;
        assert_eq!(code, 200);
        assert!(body["metrics"].is_array());
        let (_, ready) = get(&app, "/readyz").await;
        let still: Vec<&str> = ready["degraded"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["section"].as_str().unwrap())
            .collect();
        assert_eq!(still, ["standards"], "{ready}");
    }
}

/// Failures that may pass stay errors: PagerDuty down is a 502 the
/// frontend shows, not an empty card that looks fine.
#[tokio::test]
async fn a_failing_pagerduty_is_not_hidden_as_an_empty_section() {
    let SimApp { app, sim } = spawn_with_sim(small_sim(), "[pagerduty]\nmax_attempts = 1\n").await;
    refuse_standards_and_metrics(&sim, 500);
    let id = sim.account().services[0].id.clone();
    let (code, body) = get(&app, &format!("{P}/services/{id}/metrics")).await;
    assert_eq!(code, 502, "{body}");
    let (_, ready) = get(&app, "/readyz").await;
    assert_eq!(ready["degraded"], json!([]));
}

/// Upstream calls but the readiness checks (`/abilities`), which run on
/// their own schedule.
fn card_calls(stats: &sim::SimStats) -> u64 {
    stats.total - stats.count("GET", "/abilities")
}

/// Reads of services, by id or listed.
fn service_reads(stats: &sim::SimStats) -> u64 {
    stats.count("GET", "/services/{id}") + stats.count("GET", "/services")
}

/// A cold card of a service PagerDuty does not have makes one upstream
/// call (the service read), not one per section.
#[tokio::test]
async fn a_cold_card_whose_service_fails_fetches_nothing_else() {
    let SimApp { app, sim } = spawn_with_sim(small_sim(), "").await;
    sim.reset_stats();
    let (code, body) = get(&app, "/v1/cards/PNOSUCH1?include=standards,metrics").await;
    assert_eq!(code, 404, "{body}");
    let stats = sim.stats();
    assert_eq!(card_calls(&stats), 1, "{:?}", stats.routes);
    assert_eq!(service_reads(&stats), 1, "{:?}", stats.routes);

    // PagerDuty failing the service read likewise costs that read only.
    let id = sim.account().services[0].id.clone();
    sim.set_faults(sim::Faults {
        per_route: vec![(
            "/services/{id}".to_owned(),
            sim::FaultSpec {
                fail_next: 1,
                fail_status: 503,
                ..sim::FaultSpec::default()
            },
        )],
        ..sim::Faults::default()
    });
    sim.reset_stats();
    let app = {
        // A fresh app: nothing of this service is cached.
        let mut env = crate::helpers::sim_env(&sim);
        env.push(("DUTYCARD_PAGERDUTY__API_TOKEN".into(), sim.api_token()));
        TestApp::spawn(crate::helpers::settings_from(
            &[crate::helpers::BASE_TOML],
            &env,
        ))
        .await
    };
    let (code, body) = get(&app, &format!("/v1/cards/{id}")).await;
    assert_eq!(code, 502, "{body}");
    let stats = sim.stats();
    assert!(service_reads(&stats) >= 1, "{:?}", stats.routes);
    assert_eq!(
        card_calls(&stats),
        service_reads(&stats),
        "{:?}",
        stats.routes
    );

    // A warm card still reads its sections alongside the service.
    let (code, _) = get(&app, &format!("/v1/cards/{id}")).await;
    assert_eq!(code, 200);
    assert!(sim.stats().count("GET", "/incidents") >= 1);
}
