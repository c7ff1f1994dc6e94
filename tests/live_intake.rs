//! Live cards (issue 16), the edges of `live.rs`: a `service.updated` from
//! an admin change at PagerDuty on an open stream, another account's
//! webhook secrets, the intake and the streams under static caller auth,
//! the total stream limit, `webhooks.enabled = false`, and redeliveries
//! across replicas sharing a Redis.

use std::time::{Duration, Instant};

use dutycard_server::webhooks::signature::sign;
use serde_json::{Value, json};

use crate::auth::{TOKEN, static_auth_toml};
use crate::backstage_accounts::accounts_toml;
use crate::helpers::{
    BASE_NO_CREDENTIALS, TestApp, settings_from, small_sim, spawn_on_sim, start_sim,
};
use crate::live::{Sse, incident_event, live};

const WAIT: Duration = Duration::from_secs(10);
const HOME_SECRET: &str = "home-webhook-secret-0123456789";
const EU_SECRET: &str = "eu-webhook-secret-0123456789ab";

fn service_reads(sim: &sim::SimHandle) -> u64 {
    sim.stats().count("GET", "/services/{id}")
}

#[tokio::test]
async fn a_service_renamed_at_pagerduty_shows_on_an_open_stream_with_one_service_refetch() {
    let app = live("").await;
    app.subscribe().await;
    let (service, _) = app.routable(0);
    let mut stream = app
        .stream(&format!("/v1/cards/{service}/stream"), None)
        .await;
    let (etag, first) = stream.card(WAIT).await;
    let old_name = first["card"]["service"]["data"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let reads = service_reads(&app.sim);

    // An admin renames the service at PagerDuty (the simulator's REST API,
    // not through us); the service section is fresh for 5 minutes, so only
    // the simulator's `service.updated` webhook can bring the new name.
    let started = Instant::now();
    let r = app
        .http
        .put(format!("{}/services/{service}", app.sim.base_url()))
        .header(
            "Authorization",
            format!("Token token={}", app.sim.api_token()),
        )
        .json(&json!({"service": {"type": "service", "name": "renamed-by-an-admin"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let (next_etag, next) = stream.card(WAIT).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        next["card"]["service"]["data"]["name"], "renamed-by-an-admin",
        "was {old_name}"
    );
    assert_ne!(next_etag, etag);
    assert_eq!(service_reads(&app.sim), reads + 1, "one service refetch");
    assert_eq!(app.sim.webhooks().delivered("service.updated"), 1);
    let metrics = reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"event_type="service.updated",outcome="queued"} 1"#),
        "{metrics}"
    );
}

/// POSTs `body` signed with `secret` to `path`; the status and the answer.
async fn deliver(app: &TestApp, path: &str, secret: &str, body: &str, id: &str) -> (u16, Value) {
    let r = app
        .http
        .post(app.url(path))
        .header("content-type", "application/json")
        .header("X-Webhook-Id", id)
        .header("X-PagerDuty-Signature", sign(secret, body.as_bytes()))
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or_default())
}

#[tokio::test]
async fn another_accounts_secret_verifies_on_its_routes_only() {
    let (home, eu) = (start_sim(small_sim()).await, start_sim(small_sim()).await);
    let toml = format!(
        "{}[webhooks]\nsecrets = [\"{HOME_SECRET}\"]\n[webhooks.accounts.eu]\nsecrets = [\"{EU_SECRET}\"]\n",
        accounts_toml(&[("home", &home, true), ("eu", &eu, false)])
    );
    let app = TestApp::spawn(settings_from(&[BASE_NO_CREDENTIALS, &toml], &[])).await;
    let service = eu.account().services[0].id.clone();
    let body = incident_event("incident.triggered", &service);

    // eu's secret on eu's routes, path segment and query: verified.
    for (path, id) in [
        ("/v1/webhooks/pagerduty/eu", "eu-1"),
        ("/v1/webhooks/pagerduty?account=eu", "eu-2"),
    ] {
        let (status, answer) = deliver(&app, path, EU_SECRET, &body, id).await;
        assert_eq!(
            (status, answer["status"].as_str()),
            (202, Some("queued")),
            "{path}: {answer}"
        );
    }
    // eu's secret on the default account's routes, and the default's on
    // eu's: refused, as a forged signature is.
    for (path, secret, id) in [
        ("/v1/webhooks/pagerduty", EU_SECRET, "x-1"),
        ("/v1/webhooks/pagerduty/home", EU_SECRET, "x-2"),
        ("/v1/webhooks/pagerduty?account=home", EU_SECRET, "x-3"),
        ("/v1/webhooks/pagerduty/eu", HOME_SECRET, "x-4"),
    ] {
        let (status, answer) = deliver(&app, path, secret, &body, id).await;
        assert_eq!(status, 401, "{path}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_signature");
    }
    // The default account's secret still verifies on its own route.
    let (status, _) = deliver(&app, "/v1/webhooks/pagerduty", HOME_SECRET, &body, "home-1").await;
    assert_eq!(status, 202);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"dutycard_webhook_deliveries_total{account="eu",event_type="incident.triggered",outcome="queued"} 2"#),
        "{metrics}"
    );
    home.shutdown().await;
    eu.shutdown().await;
}

/// Static caller auth with the portal's token and two more callers.
fn static_callers(extra: &str) -> String {
    format!(
        "{}[[server.auth.tokens]]\nname = \"second\"\ntoken = \"second-token-0123456789abcdef\"\n[[server.auth.tokens]]\nname = \"third\"\ntoken = \"third-token-0123456789abcdefg\"\n{extra}",
        static_auth_toml(false)
    )
}

async fn open_stream(
    app: &crate::live::Live,
    path: &str,
    token: Option<&str>,
) -> reqwest::Response {
    let mut req = app.http.get(app.url(path)).timeout(Duration::from_secs(60));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn with_static_auth_the_intake_needs_only_a_signature_and_a_stream_needs_a_token() {
    let app = live(&static_callers(&format!(
        "[webhooks]\nsecrets = [\"{HOME_SECRET}\"]\n"
    )))
    .await;
    let (service, _) = app.routable(0);
    let path = format!("/v1/cards/{service}/stream");
    let refused = open_stream(&app, &path, None).await;
    assert_eq!(refused.status(), 401);
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["error"]["code"], "unauthorized");
    let wrong = open_stream(&app, &path, Some("wrong-token-0123456789abcdef")).await;
    assert_eq!(wrong.status(), 401);
    let mut stream = Sse::new(open_stream(&app, &path, Some(TOKEN)).await);
    let (_, first) = stream.card(WAIT).await;
    assert_eq!(first["status"], 200);

    // PagerDuty sends no bearer token: the signature is the intake's auth.
    let body = incident_event("incident.triggered", &service);
    let r = app
        .http
        .post(app.url("/v1/webhooks/pagerduty"))
        .header("X-Webhook-Id", "static-1")
        .header("X-PagerDuty-Signature", sign(HOME_SECRET, body.as_bytes()))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    // And it is not bypassed: no signature is a 401 of its own.
    let r = app
        .http
        .post(app.url("/v1/webhooks/pagerduty"))
        .header("X-Webhook-Id", "static-2")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let error: Value = r.json().await.unwrap();
    assert_eq!(error["error"]["code"], "invalid_signature");
    drop(stream);
}

#[tokio::test]
async fn the_total_stream_limit_answers_503_with_retry_after() {
    // One stream per caller, two in all: three callers meet the total limit.
    let app = live(&static_callers(
        // Fast heartbeats: a closed stream is noticed (and its slot freed)
        // at the next write.
        "[streams]\nmax_per_caller = 1\nmax_total = 2\nheartbeat_ms = 50\n",
    ))
    .await;
    let (service, _) = app.routable(0);
    let path = format!("/v1/cards/{service}/stream");
    let mut open = Vec::new();
    for token in [TOKEN, "second-token-0123456789abcdef"] {
        let r = open_stream(&app, &path, Some(token)).await;
        assert_eq!(r.status(), 200);
        let mut sse = Sse::new(r);
        sse.card(WAIT).await;
        open.push(sse);
    }
    let refused = open_stream(&app, &path, Some("third-token-0123456789abcdefg")).await;
    assert_eq!(refused.status(), 503);
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["error"]["code"], "too_many_streams");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("streams.max_total"), "{message}");

    // One closes: the third caller gets its stream (the slot is freed).
    drop(open.pop());
    let reopened = tokio::time::timeout(WAIT, async {
        loop {
            let r = open_stream(&app, &path, Some("third-token-0123456789abcdefg")).await;
            if r.status() == 200 {
                return r;
            }
            assert_eq!(r.status(), 503);
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("a freed slot within 10 s");
    Sse::new(reopened).card(WAIT).await;
}

#[tokio::test]
async fn with_webhooks_disabled_the_intake_answers_404_route_not_found() {
    let app = live(&format!(
        "[webhooks]\nenabled = false\nsecrets = [\"{HOME_SECRET}\"]\n"
    ))
    .await;
    let (service, _) = app.routable(0);
    let body = incident_event("incident.triggered", &service);
    for path in [
        "/v1/webhooks/pagerduty",
        "/v1/webhooks/pagerduty?account=default",
        "/v1/webhooks/pagerduty/default",
    ] {
        let r = app
            .http
            .post(app.url(path))
            .header("X-Webhook-Id", "off-1")
            .header("X-PagerDuty-Signature", sign(HOME_SECRET, body.as_bytes()))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path}");
        let error: Value = r.json().await.unwrap();
        assert_eq!(error["error"]["code"], "route_not_found", "{path}: {error}");
    }
    let metrics = reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !metrics.contains("dutycard_webhook_deliveries_total{"),
        "nothing was processed: {metrics}"
    );
    // The rest of the app serves as usual.
    let card = reqwest::get(app.url(&format!("/v1/cards/{service}")))
        .await
        .unwrap();
    assert_eq!(card.status(), 200);
}

#[tokio::test]
async fn a_redelivery_to_another_replica_is_processed_once_and_without_redis_the_local_window_decides()
 {
    let mut redis = crate::redis_server::RedisServer::start();
    let sim = start_sim(small_sim()).await;
    let extra = format!(
        "[shared]\nredis_url = \"{}\"\n[webhooks]\nsecrets = [\"{HOME_SECRET}\"]\n",
        redis.url()
    );
    let (a, b) = (
        spawn_on_sim(&sim, &extra, &[]).await,
        spawn_on_sim(&sim, &extra, &[]).await,
    );
    let service = sim.account().services[0].id.clone();
    let body = incident_event("incident.acknowledged", &service);
    let path = "/v1/webhooks/pagerduty";
    let status = |answer: &Value| answer["status"].as_str().unwrap_or_default().to_owned();

    let (code, first) = deliver(&a, path, HOME_SECRET, &body, "r-1").await;
    assert_eq!((code, status(&first)), (202, "queued".to_owned()));
    // PagerDuty's retry lands on the other replica: a duplicate there.
    for replica in [&b, &a] {
        let (code, again) = deliver(replica, path, HOME_SECRET, &body, "r-1").await;
        assert_eq!((code, status(&again)), (202, "duplicate".to_owned()));
    }
    // The claim is in Redis for the dedupe window (an hour by default).
    let mut conn = redis.inspect().await;
    let ttl: i64 = redis::cmd("PTTL")
        .arg(dutycard_server::webhooks::shared_dedupe::key("default/r-1"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 3_500_000 && ttl <= 3_600_000, "{ttl}");
    // A forged delivery claims nothing: its id is still new when signed.
    let forged = a
        .http
        .post(a.url(path))
        .header("X-Webhook-Id", "r-forged")
        .header(
            "X-PagerDuty-Signature",
            sign("not-the-secret-0123456789", body.as_bytes()),
        )
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    let (_, signed) = deliver(&b, path, HOME_SECRET, &body, "r-forged").await;
    assert_eq!(status(&signed), "queued");

    // Redis down: every delivery still answers 2xx at once, and each
    // replica's own window still drops its redeliveries.
    redis.stop();
    let started = Instant::now();
    let (code, alone) = deliver(&b, path, HOME_SECRET, &body, "r-2").await;
    assert_eq!((code, status(&alone)), (202, "queued".to_owned()));
    let (code, again) = deliver(&b, path, HOME_SECRET, &body, "r-2").await;
    assert_eq!((code, status(&again)), (202, "duplicate".to_owned()));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    sim.shutdown().await;
}
