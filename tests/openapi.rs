//! The committed spec matches the code, and the code documents itself.

use std::path::PathBuf;

use serde_json::Value;

use crate::helpers::{TestApp, settings};

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../openapi/openapi.json")
}

/// Regenerate with `UPDATE_OPENAPI=1 cargo test -p dutycard-tests openapi`.
#[test]
fn committed_spec_matches_the_code() {
    let generated = dutycard_server::openapi::spec_json();
    let path = committed_path();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).expect("write openapi/openapi.json");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/openapi.json is stale: run `UPDATE_OPENAPI=1 cargo test -p dutycard-tests openapi` and commit it"
    );
}

#[test]
fn every_operation_and_response_has_a_description() {
    let spec: Value = serde_json::from_str(&dutycard_server::openapi::spec_json()).unwrap();
    let paths = spec["paths"].as_object().expect("paths");
    assert!(!paths.is_empty());
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let name = format!("{} {path}", method.to_uppercase());
            for field in ["summary", "description"] {
                assert!(
                    op[field].as_str().is_some_and(|s| !s.trim().is_empty()),
                    "{name} has no {field}"
                );
            }
            let responses = op["responses"].as_object().expect("responses");
            for (status, response) in responses {
                assert!(
                    response["description"]
                        .as_str()
                        .is_some_and(|s| !s.trim().is_empty()),
                    "{name} response {status} has no description"
                );
            }
        }
    }
}

#[test]
fn every_schema_reference_resolves() {
    let text = dutycard_server::openapi::spec_json();
    let spec: Value = serde_json::from_str(&text).unwrap();
    let schemas = spec["components"]["schemas"].as_object().unwrap();
    let prefix = "\"$ref\": \"#/components/schemas/";
    for (i, _) in text.match_indices(prefix) {
        let rest = &text[i + prefix.len()..];
        let name = &rest[..rest.find('"').unwrap()];
        assert!(schemas.contains_key(name), "dangling $ref to {name}");
    }
    for name in ["ServiceCard", "ErrorBody", "BatchResponse", "ReadyReport"] {
        assert!(schemas.contains_key(name), "{name} missing");
    }
}

#[tokio::test]
async fn the_served_spec_is_the_generated_one_and_docs_are_local() {
    // With callers authenticated the served spec is the committed one.
    let secured = TestApp::spawn(settings(&crate::auth::static_auth_toml(false), &[])).await;
    let served: Value = secured.get("/openapi.json").await.json().await.unwrap();
    let generated: Value = serde_json::from_str(&dutycard_server::openapi::spec_json()).unwrap();
    assert_eq!(served, generated);
    assert!(served["paths"]["/v1/cards/{service_id}"]["get"]["security"].is_array());

    // With server.auth.mode = "none" nothing claims a bearer requirement.
    let app = TestApp::spawn(settings("", &[])).await;
    let open: Value = app.get("/openapi.json").await.json().await.unwrap();
    let text = open.to_string();
    assert!(
        !text.contains("\"security\""),
        "security left in the open spec"
    );
    assert!(
        !text.contains("\"bearer\""),
        "bearer scheme left in the open spec"
    );
    assert_eq!(
        open["paths"].as_object().unwrap().len(),
        served["paths"].as_object().unwrap().len()
    );

    let page = app.get("/docs/").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(!html.contains("https://"), "docs page loads remote assets");
    let bundle = app.get("/docs/swagger-ui-bundle.js").await;
    assert_eq!(bundle.status(), 200);
    // The initializer disables the online validator (validator.swagger.io)
    // and still loads our spec.
    let init = app.get("/docs/swagger-initializer.js").await;
    assert_eq!(init.status(), 200);
    let init = init.text().await.unwrap();
    assert!(
        init.contains(r#""validatorUrl": "none""#) || init.contains(r#""validatorUrl":"none""#),
        "{init}"
    );
    assert!(init.contains("/openapi.json"), "{init}");
    assert!(!init.contains("https://"), "{init}");
}
