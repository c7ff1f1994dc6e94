//! The simulator's answers against PagerDuty's own OpenAPI descriptions:
//! a sample of every route it serves (lists and single objects, with and
//! without `include[]`, error answers) is validated against the response
//! schema of the operation and status (see `openapi.rs` for how).
//!
//! Skipped, with a printed reason, only when the descriptions are absent
//! from `../shared/pagerduty-openapi/` (they are not in the repository).

mod openapi;
mod samples;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use serde_json::Value;
use sim::{Sim, SimConfig, SimHandle, SimToken};

use openapi::{Spec, View};
use samples::{Auth, Sample};

/// A token without the scopes any sampled route needs but `abilities.read`.
const NARROW_TOKEN: &str = "narrow-token";
const FULL_TOKEN: &str = "full-token";

async fn start() -> SimHandle {
    let config = SimConfig {
        services: 30,
        now: Some(Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()),
        api_tokens: vec![
            SimToken::full(FULL_TOKEN),
            SimToken::scoped(NARROW_TOKEN, &["abilities.read"]),
        ],
        ..SimConfig::default()
    };
    tokio::time::timeout(Duration::from_secs(20), Sim::start(config))
        .await
        .expect("start in time")
        .expect("start")
}

/// Creates an account-wide webhook subscription (to a URL that answers
/// 404, so nothing is retried); its id.
async fn subscribe(sim: &SimHandle) -> String {
    let body = serde_json::json!({"webhook_subscription": {
        "type": "webhook_subscription",
        "delivery_method": {"type": "http_delivery_method", "url": format!("{}/__sim/no-receiver", sim.base_url())},
        "events": ["incident.triggered"],
        "filter": {"type": "account_reference"},
    }});
    let sample = Sample::post("/webhook_subscriptions", "/webhook_subscriptions", &body);
    let (status, answer) = send(&reqwest::Client::new(), sim, &sample).await;
    assert_eq!(status, 200, "{answer}");
    answer["webhook_subscription"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Sends one sample; `(status, body)`.
async fn send(http: &reqwest::Client, sim: &SimHandle, s: &Sample) -> (u16, Value) {
    let url = format!("{}{}", sim.base_url(), s.path);
    let mut req = match s.method {
        "GET" => http.get(url),
        "POST" => http.post(url),
        "PUT" => http.put(url),
        "DELETE" => http.delete(url),
        other => panic!("method {other}"),
    }
    .header("Accept", "application/vnd.pagerduty+json;version=2");
    req = match s.auth {
        Auth::Full => req.header("Authorization", format!("Token token={FULL_TOKEN}")),
        Auth::Narrow => req.header("Authorization", format!("Token token={NARROW_TOKEN}")),
        Auth::None => req,
    };
    if let Some(from) = &s.from {
        req = req.header("From", from);
    }
    if let Some(body) = &s.body {
        req = req
            .header("content-type", "application/json")
            .body(body.clone());
    }
    let resp = req.send().await.expect("the simulator answers");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} {}: not JSON ({e}): {text}", s.method, s.path))
    };
    (status, body)
}

/// Runs `samples` against `spec`; the problems found, one line each.
async fn check(
    spec: &Spec,
    sim: &SimHandle,
    samples: &[Sample],
    template_in_spec: fn(&str) -> String,
) -> Vec<String> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut problems = Vec::new();
    for s in samples {
        if let Some(faults) = &s.faults {
            sim.set_faults(faults.clone());
        }
        let (status, body) = send(&http, sim, s).await;
        sim.clear_faults();
        let what = format!("{} {} -> {status}", s.method, s.path);
        if status != s.status {
            problems.push(format!("{what}: expected {} ({body})", s.status));
            continue;
        }
        let template = template_in_spec(s.template);
        let Some(pointer) = spec
            .response_schema(s.method, &template, status)
            .or_else(|| spec.generic_error(status))
        else {
            if !body.is_null() {
                problems.push(format!("{what}: the spec documents no body, got {body}"));
            }
            continue;
        };
        let view = if s.path.contains("include[]") {
            View::Include
        } else {
            View::Plain
        };
        for p in spec.problems(&pointer, &body, view) {
            problems.push(format!("{what}: {p}"));
        }
    }
    problems
}

fn report(problems: &[String]) {
    // The same problem in every row of a list is one problem: array
    // indices are folded, each distinct line is shown once with its count.
    let mut distinct: BTreeMap<String, usize> = BTreeMap::new();
    for p in problems {
        let folded: Vec<&str> = p
            .split('/')
            .map(|seg| {
                let end = seg.find(|c: char| !c.is_ascii_digit()).unwrap_or(seg.len());
                if end > 0 && (end == seg.len() || seg[end..].starts_with(':')) {
                    "*"
                } else {
                    seg
                }
            })
            .collect();
        // Values in messages too ("1234.0 is not of type ..." once).
        let line = folded.join("/");
        let line = match line.split_once(" is not ") {
            Some((head, tail)) => match head.rsplit_once(": ") {
                Some((at, value)) if value.parse::<f64>().is_ok() => {
                    format!("{at}: <number> is not {tail}")
                }
                _ => line.clone(),
            },
            None => line.clone(),
        };
        *distinct.entry(line).or_default() += 1;
    }
    let lines: Vec<String> = distinct
        .iter()
        .map(|(p, n)| format!("{p}  [x{n}]"))
        .collect();
    assert!(
        problems.is_empty(),
        "{} answer problem(s) ({} distinct) against PagerDuty's OpenAPI description:\n{}",
        problems.len(),
        lines.len(),
        lines.join("\n")
    );
}

#[tokio::test]
async fn every_rest_answer_matches_the_spec() {
    let Some(spec) = Spec::load(
        "rest-api-v2.openapiv3.json",
        samples::REST_URI,
        Some(samples::REST_ERROR),
    ) else {
        return;
    };
    let sim = start().await;
    let subs = samples::Subscriptions {
        kept: subscribe(&sim).await,
        deleted: subscribe(&sim).await,
    };
    let samples = samples::rest(&sim, &subs);
    // Every REST route the simulator serves is sampled with a success.
    for (method, template) in sim::ROUTES {
        if template.starts_with("/v2/") || *template == "/oauth/token" {
            continue;
        }
        assert!(
            samples
                .iter()
                .any(|s| s.method == *method && s.template == *template && s.status < 300),
            "no successful sample of {method} {template}"
        );
    }
    let problems = check(&spec, &sim, &samples, |t| t.to_owned()).await;
    sim.shutdown().await;
    report(&problems);
}

#[tokio::test]
async fn every_events_answer_matches_the_spec() {
    let Some(spec) = Spec::load(
        "events-api-v2.openapiv3.json",
        samples::EVENTS_URI,
        Some(samples::EVENTS_ERROR),
    ) else {
        return;
    };
    let sim = start().await;
    let samples = samples::events(&sim);
    for (method, template) in sim::ROUTES {
        if template.starts_with("/v2/") {
            assert!(
                samples
                    .iter()
                    .any(|s| s.method == *method && s.template == *template && s.status < 300),
                "no successful sample of {method} {template}"
            );
        }
    }
    let problems = check(&spec, &sim, &samples, |t| {
        t.trim_start_matches("/v2").to_owned()
    })
    .await;
    sim.shutdown().await;
    report(&problems);
}

#[tokio::test]
async fn a_field_the_spec_does_not_have_is_reported() {
    // The check can fail: an extra field, a wrong type and a missing
    // required field are each reported.
    let Some(spec) = Spec::load(
        "rest-api-v2.openapiv3.json",
        samples::REST_URI,
        Some(samples::REST_ERROR),
    ) else {
        return;
    };
    let sim = start().await;
    let id = sim.account().services[0].id.clone();
    let http = reqwest::Client::new();
    let sample = Sample::get("/services/{id}", format!("/services/{id}"));
    let (status, body) = send(&http, &sim, &sample).await;
    sim.shutdown().await;
    assert_eq!(status, 200);
    let pointer = spec.response_schema("GET", "/services/{id}", 200).unwrap();
    assert_eq!(
        spec.problems(&pointer, &body, View::Plain),
        Vec::<String>::new()
    );

    let mut extra = body.clone();
    extra["service"]["total_high_urgency_incidents"] = 3.into();
    let found = spec.problems(&pointer, &extra, View::Plain);
    assert!(
        found
            .iter()
            .any(|p| p.contains("/service/total_high_urgency_incidents")),
        "{found:?}"
    );
    let mut nested = body.clone();
    nested["service"]["escalation_policy"]["colour"] = "red".into();
    assert_eq!(spec.problems(&pointer, &nested, View::Plain).len(), 1);

    let mut wrong_type = body.clone();
    wrong_type["service"]["created_at"] = "yesterday".into();
    assert!(!spec.problems(&pointer, &wrong_type, View::Plain).is_empty());

    let mut missing = body;
    missing.as_object_mut().unwrap().remove("service");
    assert!(!spec.problems(&pointer, &missing, View::Plain).is_empty());
}

#[test]
fn an_absent_description_is_the_only_reason_to_skip() {
    assert!(Spec::load("no-such-description.json", samples::REST_URI, None).is_none());
}
