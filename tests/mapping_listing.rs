//! `GET /api/pagerduty/mapping/entity` with its reused body: replicas on one
//! database (a write through one shows in the other's very next listing,
//! because the body is reused only while the store's mappings revision
//! holds), and `ETag` / `If-None-Match` → 304.

use reqwest::header::{CACHE_CONTROL, ETAG, IF_NONE_MATCH};
use serde_json::{Value, json};

use crate::helpers::{TestApp, small_sim, start_sim};
use crate::store::{Db, app_on, get, keyed_services, post};

const P: &str = "/api/pagerduty";

/// The `(entityRef, status)` of `service_id`'s row in a listing.
fn row_of(body: &Value, service_id: &str) -> (String, String) {
    let row = body["mappings"]
        .as_array()
        .unwrap_or_else(|| panic!("no mappings in {body}"))
        .iter()
        .find(|r| r["serviceId"] == service_id)
        .unwrap_or_else(|| panic!("no row for {service_id} in {body}"));
    (
        row["entityRef"].as_str().unwrap().to_owned(),
        row["status"].as_str().unwrap().to_owned(),
    )
}

async fn listing(app: &TestApp) -> Value {
    let (status, body) = get(app, &format!("{P}/mapping/entity")).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn mapped(entity: &str) -> (String, String) {
    (entity.to_owned(), "InSync".to_owned())
}

fn not_mapped() -> (String, String) {
    (String::new(), "NotMapped".to_owned())
}

/// Two apps on one database: every kind of write through `a` (map, remap,
/// bulk, unmap) shows in `b`'s next listing, though `b` had just answered
/// (and kept) the listing from before; the store's revision moves with
/// each of them.
async fn another_replicas_writes_show_at_once(db: Db) {
    let sim = start_sim(small_sim()).await;
    let ids = keyed_services(&sim, 2);
    let a = app_on(&sim, &db).await;
    let b = app_on(&sim, &db).await;
    let store = store::Store::open(&store::StoreOptions::new(db.url()))
        .await
        .expect("opens");
    let mut revision = store.mappings_revision().await.unwrap();
    let mut moved = async || {
        let now = store.mappings_revision().await.unwrap();
        assert!(now > revision, "the revision moved: {now} after {revision}");
        revision = now;
    };

    // b answers twice (the second from its kept rows and body).
    for _ in 0..2 {
        assert_eq!(row_of(&listing(&b).await, &ids[0]), not_mapped());
    }
    let (status, body) = post(
        &a,
        &format!("{P}/mapping/entity"),
        json!({"entityRef": "component:default/from-a", "serviceId": ids[0]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    moved().await;
    assert_eq!(
        row_of(&listing(&b).await, &ids[0]),
        mapped("component:default/from-a"),
        "a's write shows in b's next listing"
    );

    let (status, body) = post(
        &a,
        &format!("{P}/mapping/entity"),
        json!({"entityRef": "component:default/moved", "serviceId": ids[0]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    moved().await;
    assert_eq!(
        row_of(&listing(&b).await, &ids[0]),
        mapped("component:default/moved"),
        "a remap"
    );

    let (status, body) = post(
        &a,
        &format!("{P}/mapping/entities/bulk"),
        json!({"mappings": [{"entityRef": "component:default/bulk", "serviceId": ids[1]}]}),
    )
    .await;
    assert_eq!((status, &body["successCount"]), (200, &json!(1)), "{body}");
    moved().await;
    assert_eq!(
        row_of(&listing(&b).await, &ids[1]),
        mapped("component:default/bulk"),
        "a bulk insert"
    );

    let (status, body) = post(
        &a,
        &format!("{P}/mapping/entity"),
        json!({"entityRef": "", "serviceId": ids[0]}),
    )
    .await;
    assert_eq!(
        (status, &body["status"]),
        (200, &json!("NotMapped")),
        "{body}"
    );
    moved().await;
    let body = listing(&b).await;
    assert_eq!(row_of(&body, &ids[0]), not_mapped(), "an unmap");
    assert_eq!(row_of(&body, &ids[1]), mapped("component:default/bulk"));
    store.close().await;
}

#[tokio::test]
async fn another_replicas_mapping_writes_show_at_once_on_sqlite() {
    another_replicas_writes_show_at_once(Db::sqlite()).await;
}

#[tokio::test]
async fn another_replicas_mapping_writes_show_at_once_on_postgres() {
    another_replicas_writes_show_at_once(Db::postgres()).await;
}

/// `GET path` with `If-None-Match: etag`: the status, the ETag and the body.
async fn conditional(app: &TestApp, etag: Option<&str>) -> (u16, String, String) {
    let mut request = app.http.get(app.url(&format!("{P}/mapping/entity")));
    if let Some(etag) = etag {
        request = request.header(IF_NONE_MATCH, etag);
    }
    let res = request.send().await.expect("answered");
    let status = res.status().as_u16();
    if status == 200 || status == 304 {
        assert_eq!(res.headers()[CACHE_CONTROL], "private, no-cache");
    }
    let etag = res
        .headers()
        .get(ETAG)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, etag, res.text().await.expect("body"))
}

/// An unchanged listing is a 304 without a body; a mapping write changes
/// the ETag (the old one then gets the new listing); replicas rendering
/// the same listing give the same ETag.
#[tokio::test]
async fn an_unchanged_listing_is_a_304_and_a_write_changes_its_etag() {
    let db = Db::sqlite();
    let sim = start_sim(small_sim()).await;
    let ids = keyed_services(&sim, 1);
    let a = app_on(&sim, &db).await;
    let b = app_on(&sim, &db).await;

    let (status, etag, body) = conditional(&a, None).await;
    assert_eq!(status, 200, "{body}");
    assert!(etag.starts_with("W/\""), "{etag}");
    let (status, again, body) = conditional(&a, Some(&etag)).await;
    assert_eq!((status, body.as_str()), (304, ""), "no body");
    assert_eq!(again, etag);
    let (status, from_b, _) = conditional(&b, Some(&etag)).await;
    assert_eq!(
        (status, from_b.as_str()),
        (304, etag.as_str()),
        "the other replica's body is the same bytes, so the same ETag"
    );
    let (status, _, _) = conditional(&a, Some("W/\"0000000000000000\"")).await;
    assert_eq!(status, 200, "another ETag gets the listing");

    let (status, body) = post(
        &b,
        &format!("{P}/mapping/entity"),
        json!({"entityRef": "component:default/tagged", "serviceId": ids[0]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, new_etag, body) = conditional(&a, Some(&etag)).await;
    assert_eq!(status, 200, "the write changed the listing");
    assert_ne!(new_etag, etag);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(row_of(&body, &ids[0]), mapped("component:default/tagged"));
    let (status, _, body) = conditional(&a, Some(&new_etag)).await;
    assert_eq!((status, body.as_str()), (304, ""));
}
