//! Classic offset pagination: following `more`, streams, the 10 000 cap,
//! and the integration-key lookup across pages.

use futures::TryStreamExt;
use pagerduty::{Error, ListIncidents, ListServices};
use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::fixtures;
use crate::helpers::{bounded, token_client};

async fn mount_incident_page(server: &MockServer, offset: u32, ids: &[&str], more: bool) {
    let incidents: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| fixtures::incident(id, 100 + u64::from(offset) + i as u64, "triggered"))
        .collect();
    Mock::given(method("GET"))
        .and(path("/incidents"))
        .and(query_param("offset", offset.to_string().as_str()))
        .and(query_param("limit", "2"))
        .and(query_param("service_ids[]", "PSVC001"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "incidents": incidents, "limit": 2, "offset": offset, "more": more, "total": null
        })))
        .expect(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn three_pages_are_followed() {
    bounded(async {
        let server = MockServer::start().await;
        mount_incident_page(&server, 0, &["PI1", "PI2"], true).await;
        mount_incident_page(&server, 2, &["PI3", "PI4"], true).await;
        mount_incident_page(&server, 4, &["PI5"], false).await;
        let all = token_client(&server)
            .list_all_incidents(&ListIncidents {
                service_ids: vec!["PSVC001".into()],
                limit: Some(2),
                ..Default::default()
            })
            .await
            .unwrap();
        let ids: Vec<_> = all.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["PI1", "PI2", "PI3", "PI4", "PI5"]);
    })
    .await
}

#[tokio::test]
async fn stream_yields_items_lazily() {
    bounded(async {
        let server = MockServer::start().await;
        mount_incident_page(&server, 0, &["PI1", "PI2"], true).await;
        // The second page is never requested: the caller stops after 2 items.
        Mock::given(method("GET"))
            .and(path("/incidents"))
            .and(query_param("offset", "2"))
            .respond_with(ResponseTemplate::new(500))
            .expect(0)
            .mount(&server)
            .await;
        let client = token_client(&server);
        let mut stream = client.incidents_stream(&ListIncidents {
            service_ids: vec!["PSVC001".into()],
            limit: Some(2),
            ..Default::default()
        });
        assert_eq!(stream.try_next().await.unwrap().unwrap().id, "PI1");
        assert_eq!(stream.try_next().await.unwrap().unwrap().id, "PI2");
    })
    .await
}

#[tokio::test]
async fn offset_cap_is_a_clear_error_before_sending() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200))
            .expect(0)
            .mount(&server)
            .await;
        let err = token_client(&server)
            .list_services(&ListServices {
                offset: Some(9950),
                limit: Some(100),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::PaginationLimit {
                    offset: 9950,
                    limit: 100
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("10000"));
        let err = token_client(&server)
            .list_services(&ListServices {
                limit: Some(101),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Config { field, .. } if field == "limit"),
            "{err:?}"
        );
    })
    .await
}

#[tokio::test]
async fn all_pages_stop_at_the_cap() {
    bounded(async {
        let server = MockServer::start().await;
        // A server that always says `more`: the pager must stop at offset+limit > 10000.
        let services: Vec<_> = (0..100)
            .map(|i| fixtures::service(&format!("PS{i}"), "s", "k"))
            .collect();
        Mock::given(method("GET"))
            .and(path("/services"))
            .and(query_param("offset", "9800"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "services": services, "limit": 100, "offset": 9800, "more": true
            })))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/services"))
            .and(query_param("offset", "9900"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "services": services, "limit": 100, "offset": 9900, "more": true
            })))
            .expect(1)
            .mount(&server)
            .await;
        let err = token_client(&server)
            .list_all_services(&ListServices {
                offset: Some(9800),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::PaginationLimit {
                    offset: 10000,
                    limit: 100
                }
            ),
            "{err:?}"
        );
    })
    .await
}

fn services_page(services: Vec<serde_json::Value>, offset: u32, more: bool) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "services": services, "limit": 100, "offset": offset, "more": more, "total": null
    }))
}

const KEY: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";

#[tokio::test]
async fn integration_key_lookup_skips_a_non_matching_first_result() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/services"))
            .and(query_param("query", KEY))
            .and(query_param("include[]", "integrations"))
            .respond_with(services_page(
                vec![
                    // Name-matched, but its integration key is a different one.
                    fixtures::service(
                        "PSVC009",
                        "0a1b2c3d legacy",
                        "ffffffffffffffffffffffffffffffff",
                    ),
                    fixtures::service("PSVC001", "Payments API", KEY),
                ],
                0,
                false,
            ))
            .expect(1)
            .mount(&server)
            .await;
        let found = token_client(&server)
            .find_service_by_integration_key(KEY)
            .await
            .unwrap()
            .expect("a service matches");
        assert_eq!(found.id, "PSVC001");
    })
    .await
}

#[tokio::test]
async fn integration_key_lookup_follows_pages_and_returns_none_without_match() {
    bounded(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/services"))
            .and(query_param("query", KEY))
            .and(query_param("offset", "0"))
            .respond_with(services_page(
                vec![fixtures::service(
                    "PSVC009",
                    "other",
                    "ffffffffffffffffffffffffffffffff",
                )],
                0,
                true,
            ))
            .expect(2)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/services"))
            .and(query_param("query", KEY))
            .and(query_param("offset", "100"))
            .respond_with(services_page(
                vec![fixtures::service("PSVC001", "Payments API", KEY)],
                100,
                false,
            ))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/services"))
            .and(query_param("query", KEY))
            .and(query_param("offset", "100"))
            .respond_with(services_page(vec![], 100, false))
            .expect(1)
            .mount(&server)
            .await;
        let client = token_client(&server);
        let found = client.find_service_by_integration_key(KEY).await.unwrap();
        assert_eq!(found.unwrap().id, "PSVC001");
        // Second time the second page has no match: no service, no error.
        assert!(
            client
                .find_service_by_integration_key(KEY)
                .await
                .unwrap()
                .is_none()
        );
    })
    .await
}

// ---- Paging: the one helper behind every "read all pages" loop ----

mod paging {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use futures::TryStreamExt;
    use futures::future::BoxFuture;
    use pagerduty::{
        AtCap, Client, Error, ListServices, Page, PageRequest, Pages, Paging, Service,
    };
    use serde_json::{Value, json};
    use tokio::sync::Barrier;
    use wiremock::matchers::{method, path, query_param, query_param_is_missing};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use crate::fixtures;
    use crate::helpers::{bounded, token_client};

    /// A page of two services at `offset`.
    fn page_body(offset: u32, more: bool, total: Option<u64>) -> Value {
        let services: Vec<_> = (0..2)
            .map(|i| fixtures::service(&format!("PS{}", offset + i), "s", "k"))
            .collect();
        json!({"services": services, "limit": 2, "offset": offset, "more": more, "total": total})
    }

    /// Mounts the page at `offset`; the first page of a concurrent read is
    /// the only one that must ask for `total`.
    async fn mount(server: &MockServer, offset: u32, body: Value, asks_total: bool) {
        let mock = Mock::given(method("GET"))
            .and(path("/services"))
            .and(query_param("offset", offset.to_string().as_str()))
            .and(query_param("limit", "2"));
        let mock = if asks_total {
            mock.and(query_param("total", "true"))
        } else {
            mock.and(query_param_is_missing("total"))
        };
        mock.respond_with(ResponseTemplate::new(200).set_body_json(body))
            .expect(1)
            .mount(server)
            .await;
    }

    type Fetch =
        Box<dyn FnMut(PageRequest) -> BoxFuture<'static, pagerduty::Result<Page<Service>>> + Send>;

    /// `GET /services` for each request, counted in `calls` when requested.
    fn fetch(client: &Client, calls: &Arc<AtomicU32>) -> Fetch {
        let (client, calls) = (client.clone(), Arc::clone(calls));
        Box::new(move |page: PageRequest| {
            calls.fetch_add(1, Ordering::SeqCst);
            let client = client.clone();
            let q = ListServices {
                limit: Some(page.limit),
                offset: Some(page.offset),
                total: page.total,
                ..Default::default()
            };
            Box::pin(async move { client.list_services(&q).await })
        })
    }

    fn ids(items: &[Service]) -> Vec<&str> {
        items.iter().map(|s| s.id.as_str()).collect()
    }

    #[tokio::test]
    async fn after_a_first_page_with_total_the_rest_is_read_at_once() {
        bounded(async {
            let server = MockServer::start().await;
            mount(&server, 0, page_body(0, true, Some(6)), true).await;
            mount(&server, 2, page_body(2, true, None), false).await;
            mount(&server, 4, page_body(4, false, None), false).await;
            let client = token_client(&server);
            let calls = Arc::new(AtomicU32::new(0));
            // Pages 2 and 4 each wait for the other to have started: a read
            // one after the other would never pass the barrier.
            let barrier = Arc::new(Barrier::new(2));
            let mut inner = fetch(&client, &calls);
            let mut pages = Paging::new().limit(2).concurrent(10).pages(move |page| {
                let barrier = Arc::clone(&barrier);
                let call = inner(page);
                async move {
                    if page.offset > 0 {
                        tokio::time::timeout(Duration::from_secs(5), barrier.wait())
                            .await
                            .expect("the remaining pages are requested together");
                    }
                    call.await
                }
            });
            assert_eq!(
                calls.load(Ordering::SeqCst),
                0,
                "nothing before the first poll"
            );
            let first = pages.try_next().await.unwrap().unwrap();
            assert_eq!((first.offset, first.total), (0, Some(6)));
            assert_eq!(
                pages.requests(),
                1,
                "the others are not started before asked for"
            );
            let mut offsets = Vec::new();
            while let Some(page) = pages.try_next().await.unwrap() {
                offsets.push(page.offset);
            }
            offsets.sort_unstable();
            assert_eq!(offsets, [2, 4]);
            assert_eq!(pages.requests(), 3);
            assert_eq!(calls.load(Ordering::SeqCst), 3, "one fetch per request");
            assert!(!pages.truncated());
        })
        .await
    }

    #[tokio::test]
    async fn a_concurrent_read_keeps_to_its_concurrency() {
        bounded(async {
            let server = MockServer::start().await;
            mount(&server, 0, page_body(0, true, Some(10)), true).await;
            for offset in [2, 4, 6, 8] {
                mount(&server, offset, page_body(offset, offset < 8, None), false).await;
            }
            let client = token_client(&server);
            let calls = Arc::new(AtomicU32::new(0));
            let (now, max) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
            let mut inner = fetch(&client, &calls);
            let (n, m) = (Arc::clone(&now), Arc::clone(&max));
            let all = Paging::new()
                .limit(2)
                .concurrent(2)
                .pages(move |page| {
                    let call = inner(page);
                    let (now, max) = (Arc::clone(&n), Arc::clone(&m));
                    async move {
                        let running = now.fetch_add(1, Ordering::SeqCst) + 1;
                        max.fetch_max(running, Ordering::SeqCst);
                        let page = call.await;
                        now.fetch_sub(1, Ordering::SeqCst);
                        page
                    }
                })
                .collect_items()
                .await
                .unwrap();
            assert_eq!(all.items.len(), 10);
            assert_eq!(all.requests, 5);
            assert!(!all.truncated);
            assert_eq!(max.load(Ordering::SeqCst), 2, "two at a time, never more");
        })
        .await
    }

    #[tokio::test]
    async fn without_total_a_concurrent_read_follows_more() {
        bounded(async {
            let server = MockServer::start().await;
            // PagerDuty left `total` out: one page after the other.
            mount(&server, 0, page_body(0, true, None), true).await;
            mount(&server, 2, page_body(2, true, None), false).await;
            mount(&server, 4, page_body(4, false, None), false).await;
            let client = token_client(&server);
            let calls = Arc::new(AtomicU32::new(0));
            let all = Paging::new()
                .limit(2)
                .concurrent(10)
                .pages(fetch(&client, &calls))
                .collect_items()
                .await
                .unwrap();
            assert_eq!(ids(&all.items), ["PS0", "PS1", "PS2", "PS3", "PS4", "PS5"]);
            assert_eq!((all.requests, all.truncated), (3, false));
        })
        .await
    }

    #[tokio::test]
    async fn max_pages_truncates_one_after_the_other_and_at_once() {
        bounded(async {
            let server = MockServer::start().await;
            // Always `more`: only the page cap ends the read.
            mount(&server, 0, page_body(0, true, None), false).await;
            mount(&server, 2, page_body(2, true, None), false).await;
            let client = token_client(&server);
            let calls = Arc::new(AtomicU32::new(0));
            let all = Paging::new()
                .limit(2)
                .max_pages(2)
                .pages(fetch(&client, &calls))
                .collect_items()
                .await
                .unwrap();
            assert_eq!(ids(&all.items), ["PS0", "PS1", "PS2", "PS3"]);
            assert_eq!((all.requests, all.truncated), (2, true));

            let server = MockServer::start().await;
            mount(&server, 0, page_body(0, true, Some(100)), true).await;
            mount(&server, 2, page_body(2, true, None), false).await;
            mount(&server, 4, page_body(4, true, None), false).await;
            let client = token_client(&server);
            let all = Paging::new()
                .limit(2)
                .max_pages(3)
                .concurrent(usize::MAX)
                .pages(fetch(&client, &calls))
                .collect_items()
                .await
                .unwrap();
            assert_eq!(all.items.len(), 6);
            assert_eq!((all.requests, all.truncated), (3, true));
        })
        .await
    }

    #[tokio::test]
    async fn the_offset_cap_truncates_or_fails_after_the_pages_below_it() {
        bounded(async {
            /// Three pages below the cap (of 20 000 services), read with `at_cap`.
            async fn near_cap(at_cap: AtCap) -> (MockServer, Pages<'static, Service>) {
                let server = MockServer::start().await;
                mount(&server, 9994, page_body(9994, true, Some(20_000)), true).await;
                mount(&server, 9996, page_body(9996, true, None), false).await;
                mount(&server, 9998, page_body(9998, true, None), false).await;
                let calls = Arc::new(AtomicU32::new(0));
                let pages = Paging::new()
                    .limit(2)
                    .offset(9994)
                    .concurrent(4)
                    .at_cap(at_cap)
                    .pages(fetch(&token_client(&server), &calls));
                (server, pages)
            }

            let (_server, pages) = near_cap(AtCap::Truncate).await;
            let all = pages.collect_items().await.unwrap();
            assert_eq!(all.items.len(), 6);
            assert_eq!((all.requests, all.truncated), (3, true));

            let (_server, mut pages) = near_cap(AtCap::Fail).await;
            let mut read = 0;
            let err = loop {
                match pages.try_next().await {
                    Ok(Some(_)) => read += 1,
                    Ok(None) => panic!("the cap must end the read with an error"),
                    Err(e) => break e,
                }
            };
            assert_eq!(read, 3, "every page below the cap first");
            assert!(
                matches!(
                    err,
                    Error::PaginationLimit {
                        offset: 10_000,
                        limit: 2
                    }
                ),
                "{err:?}"
            );
            assert!(pages.try_next().await.unwrap().is_none(), "then the end");
            assert!(!pages.truncated());
        })
        .await
    }

    #[tokio::test]
    async fn an_error_ends_the_read_and_every_request_is_counted() {
        bounded(async {
            let server = MockServer::start().await;
            mount(&server, 0, page_body(0, true, None), false).await;
            Mock::given(method("GET"))
                .and(path("/services"))
                .and(query_param("offset", "2"))
                .respond_with(ResponseTemplate::new(404))
                .expect(1)
                .mount(&server)
                .await;
            let client = token_client(&server);
            let calls = Arc::new(AtomicU32::new(0));
            let mut pages = Paging::new().limit(2).pages(fetch(&client, &calls));
            assert_eq!(pages.try_next().await.unwrap().unwrap().items.len(), 2);
            assert!(pages.try_next().await.unwrap_err().is_not_found());
            assert!(pages.try_next().await.unwrap().is_none());
            assert_eq!(pages.requests(), 2);
            assert_eq!(calls.load(Ordering::SeqCst), 2);
        })
        .await
    }

    #[tokio::test]
    async fn list_all_uses_the_limit_and_offset_of_the_query() {
        bounded(async {
            let server = MockServer::start().await;
            mount(&server, 4, page_body(4, true, None), false).await;
            mount(&server, 6, page_body(6, false, None), false).await;
            let all = token_client(&server)
                .list_all_services(&ListServices {
                    limit: Some(2),
                    offset: Some(4),
                    ..Default::default()
                })
                .await
                .unwrap();
            assert_eq!(ids(&all), ["PS4", "PS5", "PS6", "PS7"]);
        })
        .await
    }
}
