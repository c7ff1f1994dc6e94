//! `POST /analytics/metrics/incidents/services`: PagerDuty's metric fields,
//! derived from the incidents and consistent with each other.

use std::collections::BTreeSet;

use chrono::Duration;
use serde_json::{Value, json};

use crate::common::*;

const ROUTE: &str = "/analytics/metrics/incidents/services";

/// Every field of PagerDuty's `AnalyticsIncidentMetrics`.
const SPEC_FIELDS: &[&str] = &[
    "mean_assignment_count",
    "mean_engaged_seconds",
    "mean_engaged_user_count",
    "mean_seconds_to_engage",
    "mean_seconds_to_first_ack",
    "mean_seconds_to_mobilize",
    "mean_seconds_to_resolve",
    "mean_user_defined_engaged_seconds",
    "range_start",
    "service_id",
    "service_name",
    "team_id",
    "team_name",
    "total_business_hour_interruptions",
    "total_engaged_seconds",
    "total_escalation_count",
    "total_incident_count",
    "total_incidents_acknowledged",
    "total_incidents_auto_resolved",
    "total_incidents_manual_escalated",
    "total_incidents_reassigned",
    "total_incidents_timeout_escalated",
    "total_interruptions",
    "total_notifications",
    "total_off_hour_interruptions",
    "total_sleep_hour_interruptions",
    "total_snoozed_seconds",
    "total_user_defined_engaged_seconds",
    "up_time_pct",
];

async fn rows(sim: &sim::SimHandle, body: Value) -> Vec<Value> {
    let r = post_json(sim, ROUTE, &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["data"].as_array().unwrap().clone()
}

fn u(row: &Value, field: &str) -> u64 {
    row[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field}: {row}"))
}

#[tokio::test]
async fn rows_carry_the_spec_fields_and_agree_with_each_other() {
    let sim = start(config()).await;
    let account = sim.account();
    let end = fixed_now();
    let start_t = end - Duration::days(90);
    let filters =
        json!({"created_at_start": start_t.to_rfc3339(), "created_at_end": end.to_rfc3339()});
    let data = rows(&sim, json!({"filters": filters})).await;
    assert!(data.len() > 10, "{}", data.len());
    let spec: BTreeSet<&str> = SPEC_FIELDS.iter().copied().collect();
    let mut engaged_rows = 0;
    for row in &data {
        let keys: BTreeSet<&str> = row
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let extra: Vec<_> = keys.difference(&spec).collect();
        assert!(extra.is_empty(), "not PagerDuty's fields: {extra:?}");
        for always in [
            "total_incident_count",
            "total_interruptions",
            "total_escalation_count",
            "total_notifications",
            "mean_assignment_count",
            "mean_engaged_user_count",
        ] {
            u(row, always);
        }
        // Interruptions are the three bands, and high-urgency pages are
        // both interruptions and two notifications each.
        assert_eq!(
            u(row, "total_interruptions"),
            u(row, "total_business_hour_interruptions")
                + u(row, "total_off_hour_interruptions")
                + u(row, "total_sleep_hour_interruptions"),
            "{row}"
        );
        assert!(
            u(row, "total_notifications") >= 2 * u(row, "total_interruptions"),
            "{row}"
        );
        assert!(u(row, "total_escalation_count") >= u(row, "total_incidents_timeout_escalated"));
        assert!(u(row, "total_incident_count") >= u(row, "total_incidents_timeout_escalated"));
        assert_eq!(
            u(row, "total_engaged_seconds"),
            u(row, "total_user_defined_engaged_seconds")
        );
        assert_eq!(row["up_time_pct"], 100.0);

        // Against the incidents themselves.
        let sid = row["service_id"].as_str().unwrap();
        let incs: Vec<_> = account
            .incidents
            .iter()
            .filter(|i| i.service_id == sid && i.created_at >= start_t && i.created_at < end)
            .collect();
        assert_eq!(u(row, "total_incident_count"), incs.len() as u64);
        let acked: Vec<i64> = incs
            .iter()
            .filter_map(|i| i.acknowledged_at.map(|a| (a - i.created_at).num_seconds()))
            .collect();
        assert_eq!(u(row, "total_incidents_acknowledged"), acked.len() as u64);
        match acked.len() {
            0 => assert!(row.get("mean_seconds_to_first_ack").is_none(), "{row}"),
            n => {
                let mean = (acked.iter().sum::<i64>() as f64 / n as f64).round() as u64;
                assert_eq!(u(row, "mean_seconds_to_first_ack"), mean);
            }
        }
        let auto = incs
            .iter()
            .filter(|i| i.resolved_at.is_some() && i.acknowledged_at.is_none())
            .count();
        assert_eq!(u(row, "total_incidents_auto_resolved"), auto as u64);
        let multi = incs.iter().any(|i| !i.additional_responders.is_empty());
        assert_eq!(row["mean_seconds_to_engage"].is_u64(), multi, "{row}");
        assert_eq!(row["mean_seconds_to_mobilize"].is_u64(), multi, "{row}");
        if multi {
            engaged_rows += 1;
        }
        let team = account.service(sid).unwrap().team_ids.first();
        assert_eq!(row["team_id"].as_str(), team.map(String::as_str), "{row}");
    }
    assert!(engaged_rows > 0, "some incidents have several responders");
    assert!(data.iter().any(|r| u(r, "total_escalation_count") > 0));

    // Per week, the counts add up to the whole period's.
    let weekly = rows(&sim, json!({"filters": filters, "aggregate_unit": "week"})).await;
    for field in [
        "total_incident_count",
        "total_escalation_count",
        "total_interruptions",
        "total_notifications",
        "total_engaged_seconds",
    ] {
        let sum = |rs: &[Value]| rs.iter().map(|r| u(r, field)).sum::<u64>();
        assert_eq!(sum(&weekly), sum(&data), "{field}");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn several_responders_show_in_the_incident_and_its_metrics() {
    let sim = start(config()).await;
    let account = sim.account();
    let inc = account
        .incidents
        .iter()
        .find(|i| !i.additional_responders.is_empty() && i.resolved_at.is_some())
        .expect("a resolved incident with an additional responder");
    let (second, accepted) = &inc.additional_responders[0];
    let body = get_ok(&sim, &format!("/incidents/{}", inc.id)).await;
    let acks = body["incident"]["acknowledgements"].as_array().unwrap();
    assert_eq!(acks.len(), 2, "{acks:?}");
    assert_eq!(acks[1]["acknowledger"]["id"], second.as_str());

    // The incident alone, in a one-second window: engage and mobilize are
    // its own figures.
    let data = rows(
        &sim,
        json!({"filters": {
            "created_at_start": inc.created_at.to_rfc3339(),
            "created_at_end": (inc.created_at + Duration::seconds(1)).to_rfc3339(),
            "service_ids": [inc.service_id],
        }}),
    )
    .await;
    assert_eq!(data.len(), 1);
    let row = &data[0];
    let first = inc.acknowledged_at.unwrap();
    assert_eq!(u(row, "total_incident_count"), 1);
    assert_eq!(u(row, "mean_engaged_user_count"), 2);
    assert_eq!(
        u(row, "mean_seconds_to_engage"),
        (*accepted - first).num_seconds() as u64
    );
    assert_eq!(
        u(row, "mean_seconds_to_mobilize"),
        (*accepted - inc.created_at).num_seconds() as u64
    );
    let resolved = inc.resolved_at.unwrap();
    assert_eq!(
        u(row, "total_engaged_seconds"),
        ((resolved - first) + (resolved - *accepted)).num_seconds() as u64
    );
    sim.shutdown().await;
}
