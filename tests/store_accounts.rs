//! `?account=` on the store routes (`/settings…`, `/mapping…`) and the
//! catalog route, run inside `store::every_route` on both backends.

use serde_json::json;

use crate::helpers::{TestApp, send};
use crate::store::{Db, first_error, get, post};

const P: &str = "/api/pagerduty";

/// `?account=` on every store route, like the other Backstage routes: an
/// unknown id is a 400 naming it and the valid ids (nothing read or
/// written); a known one is accepted (settings are global), and lookups
/// and unmapping only see that account's rows. `mapped` is a default
/// account service mapped to `component:default/checkout-api`.
pub async fn account_rules(app: &TestApp, db: &Db, mapped: &str) {
    use reqwest::Method;
    let setting = json!([{"id": "settings::data-sync", "value": "disabled"}]);
    for (method, path, body) in [
        (
            Method::GET,
            format!("{P}/settings/settings::data-sync"),
            None,
        ),
        (Method::POST, format!("{P}/settings"), Some(setting.clone())),
        (Method::GET, format!("{P}/mapping/entity"), None),
        (
            Method::GET,
            format!("{P}/mapping/entity/component/default/checkout-api"),
            None,
        ),
        (
            Method::GET,
            format!("{P}/mapping/entity/service/{mapped}"),
            None,
        ),
        (
            Method::DELETE,
            format!("{P}/mapping/entity/service/{mapped}"),
            None,
        ),
        (
            Method::GET,
            format!("{P}/catalog/entity/component/default/checkout-api"),
            None,
        ),
    ] {
        let (status, answer) =
            send(app, method.clone(), &format!("{path}?account=nope"), body).await;
        assert_eq!(status, 400, "{method} {path}: {answer}");
        let message = first_error(&answer);
        assert!(
            message.contains("account `nope`") && message.contains("valid accounts are default"),
            "{method} {path}: {message}"
        );
    }
    let (_, body) = get(app, &format!("{P}/settings/settings::data-sync")).await;
    assert_eq!(body["value"], "enabled", "the refused POST stored nothing");
    let (status, _) = get(app, &format!("{P}/mapping/entity/service/{mapped}")).await;
    assert_eq!(status, 200, "the refused DELETE removed nothing");

    // A known account: settings are the same global ones.
    let (status, body) = post(app, &format!("{P}/settings?account=default"), setting).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = get(
        app,
        &format!("{P}/settings/settings::data-sync?account=default"),
    )
    .await;
    assert_eq!(
        (status, body["value"].as_str()),
        (200, Some("disabled")),
        "{body}"
    );
    let (_, body) = get(app, &format!("{P}/settings/settings::data-sync")).await;
    assert_eq!(body["value"], "disabled");
    let (status, body) = get(
        app,
        &format!("{P}/mapping/entity/service/{mapped}?account=default"),
    )
    .await;
    assert_eq!(
        (status, body["mapping"]["serviceId"].as_str()),
        (200, Some(mapped)),
        "{body}"
    );
    let (status, body) = get(
        app,
        &format!("{P}/mapping/entity/component/default/checkout-api?account=default"),
    )
    .await;
    assert_eq!(
        (status, body["mapping"]["serviceId"].as_str()),
        (200, Some(mapped)),
        "{body}"
    );

    // A row of another account (written by another deployment): found
    // without `?account=`, not in the default account, and not removed
    // by an unmapping limited to it.
    let store = store::Store::open(&store::StoreOptions::new(db.url()))
        .await
        .unwrap();
    store
        .upsert_mapping(&store::NewMapping {
            service_id: "PFOREIGN1".into(),
            entity_ref: "component:default/foreign".into(),
            integration_key: None,
            account: "elsewhere".into(),
        })
        .await
        .unwrap();
    store.close().await;
    let by_service = format!("{P}/mapping/entity/service/PFOREIGN1");
    let by_entity = format!("{P}/mapping/entity/component/default/foreign");
    for path in [&by_service, &by_entity] {
        let (status, body) = get(app, path).await;
        assert_eq!(
            (status, body["mapping"]["account"].as_str()),
            (200, Some("elsewhere")),
            "{path}: {body}"
        );
        let (status, body) = get(app, &format!("{path}?account=default")).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(
            first_error(&body).ends_with("not found in account default."),
            "{body}"
        );
    }
    let (status, _) = send(
        app,
        Method::DELETE,
        &format!("{by_service}?account=default"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = get(app, &by_service).await;
    assert_eq!(status, 200, "another account's mapping is left alone");
    let (status, body) = send(app, Method::DELETE, &by_service, None).await;
    assert_eq!(
        (status, body["mapping"]["account"].as_str()),
        (200, Some("elsewhere"))
    );
}
