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
