//! The store routes (`/settings…`, `/mapping…`) against both backends:
//! every route with the Node backend's shapes (`tests/fixtures/backstage/
//! anchor-store-shapes.json`, from its captured answers) and the admin
//! page's call sequence, restart durability, concurrent writers, a
//! database stopped mid-test, and migrations. Postgres is started by the
//! test itself ([`crate::postgres::Postgres`]).

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::helpers::{BASE_TOML, TestApp, send, settings_from, sim_env, small_sim, start_sim};
use crate::postgres::Postgres;

const P: &str = "/api/pagerduty";

fn anchor(route: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/backstage/anchor-store-shapes.json");
    let all: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("JSON");
    all["routes"][route].clone()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn anchor_keys(route: &str, field: &str) -> BTreeSet<String> {
    anchor(route)[field]
        .as_array()
        .expect("key list")
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect()
}

/// The database of one test: a SQLite file in a temp dir, or a Postgres.
pub enum Db {
    Sqlite(PathBuf),
    Postgres(Postgres),
}

impl Db {
    pub fn sqlite() -> Db {
        let dir = std::env::temp_dir().join(format!(
            "dutycard-store-e2e-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        Db::Sqlite(dir)
    }

    pub fn postgres() -> Db {
        Db::Postgres(Postgres::start())
    }

    pub fn url(&self) -> String {
        match self {
            Db::Sqlite(dir) => format!("sqlite://{}/dutycard.db", dir.display()),
            Db::Postgres(pg) => pg.url(),
        }
    }

    pub fn pg(&self) -> &Postgres {
        match self {
            Db::Postgres(pg) => pg,
            Db::Sqlite(_) => panic!("not a Postgres test"),
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Db::Sqlite(dir) = self {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The app on `db`, pointed at `sim`, with short store bounds.
pub async fn app_on(sim: &sim::SimHandle, db: &Db) -> TestApp {
    let mut env = sim_env(sim);
    env.push(("DUTYCARD_PAGERDUTY__API_TOKEN".into(), sim.api_token()));
    let store = format!(
        "[store]\nurl = \"{}\"\nstatement_timeout_ms = 1000\nacquire_timeout_ms = 500\n",
        db.url()
    );
    TestApp::spawn(settings_from(&[BASE_TOML, &store], &env)).await
}

pub async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    send(app, reqwest::Method::GET, path, None).await
}

pub async fn post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    send(app, reqwest::Method::POST, path, Some(body)).await
}

pub fn first_error(body: &Value) -> String {
    body["errors"][0]
        .as_str()
        .unwrap_or_else(|| panic!("no errors envelope in {body}"))
        .to_owned()
}

/// Services of the simulated account that have an integration key.
pub fn keyed_services(sim: &sim::SimHandle, n: usize) -> Vec<String> {
    let mut ids: Vec<String> = sim
        .account()
        .services
        .iter()
        .filter(|s| s.integrations.iter().any(|i| i.integration_key.is_some()))
        .map(|s| s.id.clone())
        .collect();
    ids.sort();
    assert!(
        ids.len() >= n,
        "the simulator has {} keyed services",
        ids.len()
    );
    ids.truncate(n);
    ids
}

/// A listing row's service fields: name, first team, escalation policy,
/// URL, account.
fn described(row: &Value) -> [String; 5] {
    [
        "serviceName",
        "team",
        "escalationPolicy",
        "serviceUrl",
        "account",
    ]
    .map(|k| {
        row[k]
            .as_str()
            .unwrap_or_else(|| panic!("{k} in {row}"))
            .to_owned()
    })
}

/// The same fields from the simulator's own data for service `id`.
fn simulated(sim: &sim::SimHandle, id: &str) -> [String; 5] {
    let account = sim.account();
    let service = account
        .services
        .iter()
        .find(|s| s.id == id)
        .expect("service");
    let team = service
        .team_ids
        .first()
        .and_then(|t| account.team(t))
        .map(|t| t.name.clone())
        .unwrap_or_default();
    let policy = account
        .escalation_policy(&service.escalation_policy_id)
        .expect("policy")
        .name
        .clone();
    [
        service.name.clone(),
        team,
        policy,
        format!("https://sim.pagerduty.com/service-directory/{id}"),
        "default".to_owned(),
    ]
}

/// The admin page's calls in its order (getSetting, storeSettings,
/// getEntityMappings, storeServiceMapping), then every other route.
async fn every_route(db: Db) {
    let sim = start_sim(small_sim()).await;
    let app = app_on(&sim, &db).await;
    let ids = keyed_services(&sim, 3);
    let strategy = "settings::service-dependency-sync-strategy";

    // getSetting before anything was stored.
    let (status, body) = get(&app, &format!("{P}/settings/{strategy}")).await;
    assert_eq!(status, 404, "{body}");
    assert!(first_error(&body).contains(strategy));
    // storeSettings
    let (status, body) = post(
        &app,
        &format!("{P}/settings"),
        json!([{"id": strategy, "value": "backstage"}, {"id": "settings::data-sync", "value": "enabled"}]),
    )
    .await;
    assert_eq!((status, &body), (200, &anchor("store_settings")["body"]));
    let (status, body) = get(&app, &format!("{P}/settings/{strategy}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(keys(&body), anchor_keys("get_setting", "keys"));
    assert_eq!(
        (body["id"].as_str(), body["value"].as_str()),
        (Some(strategy), Some("backstage"))
    );
    // Unknown ids and values are named; nothing of a bad batch is stored.
    let (status, body) = get(&app, &format!("{P}/settings/settings::nope")).await;
    assert_eq!(status, 400);
    assert!(first_error(&body).contains("settings::nope"), "{body}");
    let (status, body) = post(
        &app,
        &format!("{P}/settings"),
        json!([{"id": strategy, "value": "pagerduty"}, {"id": "settings::data-sync", "value": "maybe"}]),
    )
    .await;
    assert_eq!(status, 400);
    let message = first_error(&body);
    assert!(
        message.contains("[1].value") && message.contains("maybe"),
        "{message}"
    );
    let (_, body) = get(&app, &format!("{P}/settings/{strategy}")).await;
    assert_eq!(body["value"], "backstage", "the bad batch stored nothing");

    // getEntityMappings: every service, none mapped yet.
    let (status, body) = get(&app, &format!("{P}/mapping/entity")).await;
    assert_eq!(status, 200, "{body}");
    let rows = body["mappings"].as_array().expect("mappings");
    assert_eq!(rows.len(), sim.account().services.len());
    for row in rows {
        assert_eq!(keys(row), anchor_keys("list_mappings", "item_keys"));
        assert_eq!(row["status"], "NotMapped");
    }
    // storeServiceMapping, as the admin page sends it.
    let (status, stored) = post(
        &app,
        &format!("{P}/mapping/entity"),
        json!({"entityRef": "Component:default/Checkout-API", "serviceId": ids[0], "integrationKey": "", "status": "InSync", "account": ""}),
    )
    .await;
    assert_eq!(status, 200, "{stored}");
    assert_eq!(keys(&stored), anchor_keys("store_mapping", "keys"));
    assert_eq!(stored["entityRef"], "component:default/checkout-api");
    assert_eq!(stored["status"], "InSync");
    assert!(
        stored["integrationKey"]
            .as_str()
            .unwrap()
            .starts_with("dcak_"),
        "keys are shown as aliases: {stored}"
    );
    let (_, body) = get(&app, &format!("{P}/mapping/entity")).await;
    let row = body["mappings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["serviceId"] == ids[0].as_str())
        .expect("the mapped service")
        .clone();
    assert_eq!(row["status"], "InSync");
    assert_eq!(row["entityName"], "checkout-api");
    assert_eq!(row["integrationKey"], stored["integrationKey"]);
    assert_eq!(row["entityRef"], "component:default/checkout-api");
    assert_eq!(described(&row), simulated(&sim, &ids[0]));
    let unmapped = body["mappings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["serviceId"] == ids[1].as_str())
        .expect("an unmapped service");
    assert_eq!(
        (
            &unmapped["status"],
            &unmapped["entityRef"],
            &unmapped["entityName"]
        ),
        (&json!("NotMapped"), &json!(""), &json!(""))
    );
    assert_eq!(described(unmapped), simulated(&sim, &ids[1]));

    // The lookups.
    let (status, body) = get(
        &app,
        &format!("{P}/mapping/entity/component/default/checkout-api"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        keys(&body["mapping"]),
        anchor_keys("mapping_of_entity", "keys")
    );
    assert_eq!(body["mapping"]["serviceId"], ids[0].as_str());
    assert_eq!(body["mapping"]["id"], stored["id"]);
    let (status, by_service) = get(&app, &format!("{P}/mapping/entity/service/{}", ids[0])).await;
    assert_eq!(status, 200);
    assert_eq!(by_service, body);
    let (status, body) = get(
        &app,
        &format!("{P}/mapping/entity/component/default/nothing"),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        first_error(&body),
        "Mapping for entityRef component:default/nothing not found."
    );

    crate::store_accounts::account_rules(&app, &db, &ids[0]).await;

    // Bulk: one new, one already mapped (skipped), two bad rows.
    let (status, body) = post(
        &app,
        &format!("{P}/mapping/entities/bulk"),
        json!({"mappings": [
            {"entityRef": "component:default/payments", "serviceId": ids[1], "integrationKey": ""},
            {"entityRef": "component:default/other", "serviceId": ids[0]},
            {"entityRef": "not a ref", "serviceId": ids[2]},
            {"entityRef": "component:default/ghost", "serviceId": "PNOSUCH1"},
        ]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(keys(&body), anchor_keys("bulk", "keys"));
    assert_eq!(body["total"], 4);
    assert_eq!(
        (
            body["successCount"].as_u64(),
            body["skippedCount"].as_u64(),
            body["errorCount"].as_u64()
        ),
        (Some(1), Some(1), Some(2))
    );
    assert_eq!(
        keys(&body["success"][0]),
        anchor_keys("bulk", "success_keys")
    );
    assert_eq!(
        keys(&body["skipped"][0]),
        anchor_keys("bulk", "skipped_keys")
    );
    assert_eq!(
        body["skipped"][0]["reason"],
        anchor("bulk")["skipped_reason"]
    );
    assert!(
        body["errors"][0]["error"]
            .as_str()
            .unwrap()
            .starts_with("entityRef"),
        "{body}"
    );
    assert!(
        body["errors"][1]["error"]
            .as_str()
            .unwrap()
            .contains("PNOSUCH1"),
        "{body}"
    );
    let (_, body) = get(&app, &format!("{P}/mapping/entity/service/{}", ids[0])).await;
    assert_eq!(
        body["mapping"]["entityRef"], "component:default/checkout-api",
        "skipped rows are unchanged"
    );

    // Bad input is named; an unknown service is a 404; an unknown account a 400.
    let (status, body) = post(
        &app,
        &format!("{P}/mapping/entity"),
        json!({"entityRef": "x", "serviceId": ids[2]}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(first_error(&body).contains("entityRef"), "{body}");
    let (status, _) = post(
        &app,
        &format!("{P}/mapping/entity"),
        json!({"entityRef": "component:default/a", "serviceId": "PNOSUCH1"}),
    )
    .await;
    assert_eq!(status, 404);
    let (status, body) = post(
        &app,
        &format!("{P}/mapping/entity?account=nope"),
        json!({"entityRef": "component:default/a", "serviceId": ids[2]}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(first_error(&body).contains("nope"), "{body}");
    let (status, _) = get(&app, &format!("{P}/mapping/entity/service/not-an-id")).await;
    assert_eq!(status, 400);

    // Unmapping: an empty entityRef (the Node way) and DELETE.
    let (status, body) = post(
        &app,
        &format!("{P}/mapping/entity"),
        json!({"entityRef": "", "serviceId": ids[1]}),
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("NotMapped")),
        "{body}"
    );
    let (status, _) = get(&app, &format!("{P}/mapping/entity/service/{}", ids[1])).await;
    assert_eq!(status, 404);
    let path = format!("{P}/mapping/entity/service/{}", ids[0]);
    let (status, body) = send(
        &app,
        reqwest::Method::DELETE,
        &format!("{path}?account=default"),
        None,
    )
    .await;
    assert_eq!(status, 200, "its own account's mapping is removed: {body}");
    assert_eq!(
        body["mapping"]["entityRef"],
        "component:default/checkout-api"
    );
    let (status, _) = send(&app, reqwest::Method::DELETE, &path, None).await;
    assert_eq!(status, 404);
    let (_, body) = get(&app, &format!("{P}/mapping/entity")).await;
    assert!(
        body["mappings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "NotMapped")
    );

    // The store is reported ready.
    let (status, body) = get(&app, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["store"]["ok"], true);
}

#[tokio::test]
async fn every_store_route_answers_like_the_node_backend_on_sqlite() {
    every_route(Db::sqlite()).await;
}

#[tokio::test]
async fn every_store_route_answers_like_the_node_backend_on_postgres() {
    every_route(Db::postgres()).await;
}

/// Write, stop the app, start another on the same database, read.
async fn survives_a_restart(db: Db) {
    let sim = start_sim(small_sim()).await;
    let ids = keyed_services(&sim, 1);
    let app = app_on(&sim, &db).await;
    let (status, _) = post(
        &app,
        &format!("{P}/settings"),
        json!([{"id": "settings::data-sync", "value": "disabled"}]),
    )
    .await;
    assert_eq!(status, 200);
    let (status, written) = post(
        &app,
        &format!("{P}/mapping/entity"),
        json!({"entityRef": "component:default/kept", "serviceId": ids[0]}),
    )
    .await;
    assert_eq!(status, 200, "{written}");
    app.stop(true).await;
    drop(app);

    let app = app_on(&sim, &db).await;
    let (_, body) = get(&app, &format!("{P}/settings/settings::data-sync")).await;
    assert_eq!(body["value"], "disabled");
    let (status, body) = get(&app, &format!("{P}/mapping/entity/service/{}", ids[0])).await;
    assert_eq!(status, 200);
    assert_eq!(body["mapping"]["id"], written["id"]);
    assert_eq!(body["mapping"]["entityRef"], "component:default/kept");
}

#[tokio::test]
async fn writes_survive_a_restart_on_sqlite() {
    survives_a_restart(Db::sqlite()).await;
}

#[tokio::test]
async fn writes_survive_a_restart_on_postgres() {
    survives_a_restart(Db::postgres()).await;
}

/// Many writers on one service at once: every write is acknowledged and
/// counted (the row's revision), one row remains, holding one of them.
async fn concurrent_writers_lose_nothing(db: Db) {
    const WRITERS: usize = 16;
    let sim = start_sim(small_sim()).await;
    let ids = keyed_services(&sim, 1);
    let app = app_on(&sim, &db).await;
    let path = format!("{P}/mapping/entity");
    let writes = (0..WRITERS).map(|i| {
        post(
            &app,
            &path,
            json!({"entityRef": format!("component:default/writer-{i}"), "serviceId": ids[0]}),
        )
    });
    let answers = futures::future::join_all(writes).await;
    let mut ids_seen = BTreeSet::new();
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        ids_seen.insert(body["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids_seen.len(), 1, "one row, one id across upserts");
    let (_, body) = get(&app, &format!("{P}/mapping/entity/service/{}", ids[0])).await;
    let last = body["mapping"]["entityRef"].as_str().unwrap().to_owned();
    assert!(last.starts_with("component:default/writer-"), "{last}");

    let store = store::Store::open(&store::StoreOptions::new(db.url()))
        .await
        .expect("opens");
    let row = store
        .mapping_by_service(&ids[0])
        .await
        .unwrap()
        .expect("the row");
    assert_eq!(
        row.revision, WRITERS as i64,
        "every acknowledged write was applied"
    );
    assert_eq!(store.mappings().await.unwrap().len(), 1);
    store.close().await;
}

#[tokio::test]
async fn concurrent_writers_on_one_mapping_lose_no_update_on_sqlite() {
    concurrent_writers_lose_nothing(Db::sqlite()).await;
}

#[tokio::test]
async fn concurrent_writers_on_one_mapping_lose_no_update_on_postgres() {
    concurrent_writers_lose_nothing(Db::postgres()).await;
}

#[tokio::test]
async fn a_database_stopped_mid_test_is_a_quick_503_then_recovers() {
    let db = Db::postgres();
    let sim = start_sim(small_sim()).await;
    let ids = keyed_services(&sim, 1);
    let app = app_on(&sim, &db).await;
    let (status, _) = post(
        &app,
        &format!("{P}/mapping/entity"),
        json!({"entityRef": "component:default/a", "serviceId": ids[0]}),
    )
    .await;
    assert_eq!(status, 200);

    db.pg().stop();
    let started = std::time::Instant::now();
    for path in [
        format!("{P}/mapping/entity/service/{}", ids[0]),
        format!("{P}/settings/settings::data-sync"),
        // The listing reads its services lists from PagerDuty, then the
        // store's mappings revision, which fails.
        format!("{P}/mapping/entity"),
    ] {
        let res = app.http.get(app.url(&path)).send().await.expect("answered");
        assert_eq!(res.status().as_u16(), 503, "{path}");
        assert_eq!(res.headers()["retry-after"], "5");
        let body: Value = res.json().await.unwrap();
        let message = first_error(&body);
        assert!(message.starts_with("store_unavailable: "), "{message}");
        assert!(
            !message.to_lowercase().contains("connection refused"),
            "no driver text: {message}"
        );
    }
    // The entity card reads the store's mappings first: the /v1 error shape.
    let res = app.get("/v1/entities/component/default/a/card").await;
    assert_eq!(res.status().as_u16(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "store_unavailable", "{body}");
    assert!(
        !body
            .to_string()
            .to_lowercase()
            .contains("connection refused"),
        "no driver text: {body}"
    );
    let (status, _) = post(
        &app,
        &format!("{P}/mapping/entity"),
        json!({"entityRef": "component:default/b", "serviceId": ids[0]}),
    )
    .await;
    assert_eq!(
        status, 503,
        "a write while down is refused, not acknowledged"
    );
    // Bounded: store.acquire_timeout_ms + 2 x statement_timeout_ms each, far less here.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let (status, body) = get(&app, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["store"]["ok"], false);

    db.pg().start_again();
    let (status, body) = get(&app, &format!("{P}/mapping/entity/service/{}", ids[0])).await;
    assert_eq!(status, 200, "recovers once the database is back: {body}");
    assert_eq!(
        body["mapping"]["entityRef"], "component:default/a",
        "the refused write left nothing"
    );
    let (status, body) = get(&app, "/readyz").await;
    assert_eq!(
        (status, &body["store"]["ok"]),
        (200, &json!(true)),
        "{body}"
    );
}

/// From an empty database, then again (a restart) and by several
/// "replicas" at once: the schema is applied exactly once.
async fn migrations_are_idempotent(db: Db) {
    let options = store::StoreOptions::new(db.url());
    let opens = (0..3).map(|_| store::Store::open(&options));
    let stores: Vec<_> = futures::future::join_all(opens)
        .await
        .into_iter()
        .map(|s| s.expect("every replica opens"))
        .collect();
    let latest = store::migrate::latest_version();
    for s in &stores {
        assert_eq!(
            s.applied_migrations().await.unwrap(),
            (1..=latest).collect::<Vec<_>>()
        );
        s.migrate().await.expect("a re-run is a no-op");
        s.close().await;
    }
    let again = store::Store::open(&options).await.expect("reopens");
    assert_eq!(
        again.applied_migrations().await.unwrap().len(),
        latest as usize
    );
    again.close().await;
}

#[tokio::test]
async fn migrations_run_once_from_empty_and_rerun_idempotently_on_sqlite() {
    migrations_are_idempotent(Db::sqlite()).await;
}

#[tokio::test]
async fn migrations_run_once_from_empty_and_rerun_idempotently_on_postgres() {
    migrations_are_idempotent(Db::postgres()).await;
}

#[test]
fn check_config_never_shows_the_database_password() {
    let settings = settings_from(
        &[
            BASE_TOML,
            "[store]\nurl = \"postgres://dutycard:hunter2@db.internal:5432/cards\"\n",
        ],
        &[],
    );
    let text = settings.to_redacted_toml();
    assert!(
        text.contains("postgres://dutycard:redacted@db.internal:5432/cards"),
        "{text}"
    );
    assert!(!text.contains("hunter2"));
    assert!(
        !format!("{settings:?}").contains("hunter2"),
        "nor Debug output"
    );
}
