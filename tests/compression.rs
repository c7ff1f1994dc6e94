//! Backstage bodies of 1 kB or more go out gzip-compressed to clients that
//! accept it (as the Node backend's `compression` middleware does), each
//! rendering compressed once: the compressed answer unzips to the identity
//! answer byte for byte, both say `Vary: Accept-Encoding`, and the listing
//! with validators keeps one (weak) ETag for both. Cards and batches are
//! gzip-spliced from each card template's compressed pieces: they unzip to
//! what the identity answer says.

use std::io::Read as _;

use reqwest::header::{ACCEPT_ENCODING, CONTENT_ENCODING, ETAG, IF_NONE_MATCH, VARY};

use crate::backstage::pick_service;
use serde_json::{Value, json};

use crate::helpers::{TestApp, small_sim, spawn_with_sim, start_sim};
use crate::store::{Db, app_on};

const P: &str = "/api/pagerduty";
/// What Chromium sends.
const BROWSER: &str = "gzip, deflate, br, zstd";

/// `GET path` with `Accept-Encoding: accept` (none when `None`): the
/// response's headers and raw (still encoded) body.
async fn raw(
    app: &TestApp,
    path: &str,
    accept: Option<&str>,
) -> (reqwest::header::HeaderMap, Vec<u8>) {
    let mut request = app.http.get(app.url(path));
    if let Some(accept) = accept {
        request = request.header(ACCEPT_ENCODING, accept);
    }
    sent(request, path).await
}

/// The 200 answer to `request`: its headers and raw (still encoded) body.
async fn sent(
    request: reqwest::RequestBuilder,
    what: &str,
) -> (reqwest::header::HeaderMap, Vec<u8>) {
    let res = request.send().await.expect("answered");
    assert_eq!(res.status(), 200, "{what}");
    let headers = res.headers().clone();
    (headers, res.bytes().await.expect("body").to_vec())
}

/// A card answer as JSON without what changes from one answer to the next
/// (`generated_at`, and the `max_age_secs` that count down with the clock).
fn timeless(body: &[u8]) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(map) => {
                map.remove("generated_at");
                map.remove("max_age_secs");
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut v: Value = serde_json::from_slice(body).expect("JSON");
    strip(&mut v);
    v
}

/// The `Vary` header names `Accept-Encoding` (next to what CORS adds).
fn varies_on_encoding(headers: &reqwest::header::HeaderMap) -> bool {
    headers.get_all(VARY).iter().any(|v| {
        v.to_str()
            .unwrap_or_default()
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("accept-encoding"))
    })
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("a gzip stream");
    out
}

#[tokio::test]
async fn long_backstage_bodies_are_gzipped_for_clients_that_accept_it() {
    // On a store, so the mapping listing answers too.
    let db = Db::sqlite();
    let sim = start_sim(small_sim()).await;
    let app = app_on(&sim, &db).await;
    let (id, _key, policy) = pick_service(&sim);
    let mut compressed = Vec::new();
    for path in [
        format!("{P}/services"),
        format!("{P}/services?limit=10"),
        format!("{P}/services/{id}"),
        format!("{P}/services/{id}/incidents"),
        format!("{P}/services/{id}/change-events"),
        format!("{P}/services/{id}/standards"),
        format!("{P}/services/{id}/metrics"),
        format!("{P}/oncall-users?escalation_policy_ids[]={policy}"),
        format!("{P}/oncalls?escalation_policy_ids[]={policy}"),
        format!("{P}/escalation_policies"),
        format!("{P}/teams"),
        format!("{P}/mapping/entity"),
    ] {
        let (plain_headers, plain) = raw(&app, &path, None).await;
        assert!(plain_headers.get(CONTENT_ENCODING).is_none(), "{path}");
        assert!(varies_on_encoding(&plain_headers), "{path}");
        // Twice: the second answer is the kept compression.
        for _ in 0..2 {
            let (headers, body) = raw(&app, &path, Some(BROWSER)).await;
            assert!(varies_on_encoding(&headers), "{path}");
            assert_eq!(
                headers.get(ETAG),
                plain_headers.get(ETAG),
                "{path}: one weak ETag for both encodings"
            );
            if plain.len() >= 1024 {
                assert_eq!(headers[CONTENT_ENCODING], "gzip", "{path}");
                assert!(body.len() < plain.len(), "{path}");
                assert_eq!(gunzip(&body), plain, "{path}: byte for byte");
            } else {
                assert!(headers.get(CONTENT_ENCODING).is_none(), "{path}");
                assert_eq!(body, plain, "{path}");
            }
        }
        if plain.len() >= 1024 {
            compressed.push(path.clone());
        }
        // A refusal of gzip, or a client that only takes another coding,
        // gets the identity body.
        for refusal in ["gzip;q=0", "br", "identity", "*, gzip;q=0"] {
            let (headers, body) = raw(&app, &path, Some(refusal)).await;
            assert!(headers.get(CONTENT_ENCODING).is_none(), "{path} {refusal}");
            assert_eq!(body, plain, "{path} {refusal}");
        }
    }
    assert!(
        compressed.contains(&format!("{P}/services"))
            && compressed.contains(&format!("{P}/mapping/entity")),
        "the listings are long enough to compress: {compressed:?}"
    );
}

#[tokio::test]
async fn a_gzip_client_revalidates_the_mapping_listing_with_its_etag() {
    let db = Db::sqlite();
    let sim = start_sim(small_sim()).await;
    let app = app_on(&sim, &db).await;
    let path = format!("{P}/mapping/entity");
    let (headers, _) = raw(&app, &path, Some(BROWSER)).await;
    let etag = headers[ETAG].to_str().unwrap().to_owned();
    assert!(etag.starts_with("W/"), "weak: shared by both encodings");
    revalidated_by_gzip_client(&app, &path, &etag).await;
}

/// A gzip client's `If-None-Match: etag` on `path` gets a 304 without a
/// body or an encoding that says `Vary: Accept-Encoding` like its 200.
async fn revalidated_by_gzip_client(app: &TestApp, path: &str, etag: &str) {
    let res = app
        .http
        .get(app.url(path))
        .header(ACCEPT_ENCODING, BROWSER)
        .header(IF_NONE_MATCH, etag)
        .send()
        .await
        .expect("answered");
    assert_eq!(res.status(), 304, "{path}");
    assert!(res.headers().get(CONTENT_ENCODING).is_none(), "{path}");
    assert!(varies_on_encoding(res.headers()), "{path}");
    assert!(res.bytes().await.unwrap().is_empty(), "{path}");
}

#[tokio::test]
async fn cards_and_batches_are_gzipped_for_clients_that_accept_it() {
    let app = spawn_with_sim(small_sim(), "").await;
    let account = app.sim.account();
    let id = account.services[0].id.clone();
    let key = account
        .services
        .iter()
        .find_map(|s| {
            s.integrations
                .iter()
                .find_map(|i| i.integration_key.clone())
        })
        .expect("a service with an integration key");
    let ids: Vec<String> = account.services.iter().map(|s| s.id.clone()).collect();
    assert!(ids.len() >= 2, "a batch of several cards");
    let asked = [&ids[..], &["PNOSUCH".to_owned()]].concat();
    let batch = json!({ "service_ids": asked });
    let app = &app.app;
    let get = |path: &str, accept: Option<&str>| {
        let mut request = app.http.get(app.url(path));
        if let Some(accept) = accept {
            request = request.header(ACCEPT_ENCODING, accept);
        }
        request
    };
    let post = |accept: Option<&str>| {
        let mut request = app.http.post(app.url("/v1/cards/batch")).json(&batch);
        if let Some(accept) = accept {
            request = request.header(ACCEPT_ENCODING, accept);
        }
        request
    };
    type Send<'a> = Box<dyn Fn(Option<&str>) -> reqwest::RequestBuilder + 'a>;
    let routes: Vec<(&str, Send)> = vec![
        ("card", Box::new(|a| get(&format!("/v1/cards/{id}"), a))),
        (
            "card by key",
            Box::new(|a| get(&format!("/v1/cards?integration_key={key}"), a)),
        ),
        (
            "card with options",
            Box::new(|a| get(&format!("/v1/cards/{id}?incidents=1"), a)),
        ),
        ("batch", Box::new(post)),
    ];
    // Loaded first: the batch's joined reads refresh what the single card
    // read alone.
    for (what, send) in &routes {
        sent(send(None), what).await;
    }
    for (what, send) in &routes {
        let (plain_headers, plain) = sent(send(None), what).await;
        assert!(plain_headers.get(CONTENT_ENCODING).is_none(), "{what}");
        assert!(varies_on_encoding(&plain_headers), "{what}");
        let plain = timeless(&plain);
        // Twice: the second splices the kept compressed pieces.
        for _ in 0..2 {
            let (headers, body) = sent(send(Some(BROWSER)), what).await;
            assert_eq!(headers[CONTENT_ENCODING], "gzip", "{what}");
            assert!(varies_on_encoding(&headers), "{what}");
            assert_eq!(headers.get(ETAG), plain_headers.get(ETAG), "{what}");
            assert_eq!(timeless(&gunzip(&body)), plain, "{what}");
        }
        for refusal in ["gzip;q=0", "br", "identity"] {
            let (headers, body) = sent(send(Some(refusal)), what).await;
            assert!(headers.get(CONTENT_ENCODING).is_none(), "{what} {refusal}");
            assert_eq!(timeless(&body), plain, "{what} {refusal}");
        }
    }
    // The batch keeps its order and its inline error when compressed.
    let (_, body) = sent(post(Some(BROWSER)), "batch").await;
    let body: Value = serde_json::from_slice(&gunzip(&body)).unwrap();
    let cards = body["cards"].as_array().unwrap();
    assert_eq!(cards.len(), ids.len() + 1);
    assert_eq!(cards[0]["card"]["service"]["data"]["id"], ids[0].as_str());
    assert_eq!(cards[ids.len()]["status"], 404);

    // A gzip client revalidating a card gets a 304 that varies too.
    let path = format!("/v1/cards/{id}");
    let (headers, _) = sent(get(&path, Some(BROWSER)), "card").await;
    revalidated_by_gzip_client(app, &path, headers[ETAG].to_str().unwrap()).await;
}
