//! `/ui` over HTTP: content types, caching and security headers, the
//! redirect, our JSON 404, auth left to the API (issue 19). What the files
//! do in a browser is `browser.rs`.

use reqwest::header;
use serde_json::Value;

use crate::auth::{TOKEN, static_auth_toml};
use crate::helpers::{TestApp, error_of, settings};

fn header_of<'a>(res: &'a reqwest::Response, name: &str) -> &'a str {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header in {:?}", res.headers()))
}

#[tokio::test]
async fn the_page_and_the_component_are_served_with_their_types_and_headers() {
    // Static tokens: the files need none (they carry no data), the listing does.
    let app = TestApp::spawn(settings(&static_auth_toml(false), &[])).await;

    let page = app.get("/ui/").await;
    assert_eq!(page.status(), 200);
    assert_eq!(header_of(&page, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header_of(&page, "cache-control"), "no-cache");
    assert_eq!(header_of(&page, "x-frame-options"), "DENY");
    assert_eq!(header_of(&page, "x-content-type-options"), "nosniff");
    let csp = header_of(&page, "content-security-policy").to_owned();
    for directive in [
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    let html = page.text().await.unwrap();
    assert!(
        html.contains(r#"<meta name="dutycard-services" content="../api/pagerduty/services">"#),
        "{html}"
    );
    assert!(
        html.contains(r#"href="../docs/""#),
        "the page links the API explorer"
    );
    assert!(!html.contains("https://"), "the page loads nothing remote");

    for (file, kind) in [
        ("dutycard-card.js", "text/javascript; charset=utf-8"),
        ("render.js", "text/javascript; charset=utf-8"),
        ("form.js", "text/javascript; charset=utf-8"),
        ("styles.js", "text/javascript; charset=utf-8"),
        ("demo.js", "text/javascript; charset=utf-8"),
        ("demo.css", "text/css; charset=utf-8"),
    ] {
        let res = app.get(&format!("/ui/{file}")).await;
        assert_eq!(res.status(), 200, "{file}");
        assert_eq!(header_of(&res, "content-type"), kind, "{file}");
        assert_eq!(header_of(&res, "x-content-type-options"), "nosniff");
        assert_eq!(
            header_of(&res, "cache-control"),
            "public, max-age=300, must-revalidate"
        );
        assert_eq!(
            header_of(&res, "cross-origin-resource-policy"),
            "cross-origin"
        );
        let etag = header_of(&res, "etag").to_owned();
        assert!(etag.starts_with('"') && etag.len() == 34, "{etag}");
        let body = res.text().await.unwrap();
        assert!(!body.contains("https://cdn"), "{file} loads a CDN");

        let again = app
            .http
            .get(app.url(&format!("/ui/{file}")))
            .header(header::IF_NONE_MATCH, &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{file}");
        assert_eq!(header_of(&again, "etag"), etag);
        assert!(again.bytes().await.unwrap().is_empty());
    }

    // The listing the page reads is the API's, behind the caller's token.
    assert_eq!(app.get("/api/pagerduty/services").await.status(), 401);
    let with_token = app
        .http
        .get(app.url("/api/pagerduty/accounts"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(with_token.status(), 200, "the page's token is the API's");
}

#[tokio::test]
async fn ui_redirects_and_unknown_files_are_our_json_404() {
    let app = TestApp::spawn(settings("", &[])).await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = no_redirects.get(app.url("/ui")).send().await.unwrap();
    assert!(res.status().is_redirection(), "{}", res.status());
    assert_eq!(header_of(&res, "location"), "/ui/");

    let res = app.get("/ui/no-such-file.js").await;
    assert_eq!(res.status(), 404);
    let (code, _) = error_of(res).await;
    assert_eq!(code, "route_not_found");
    let res = app.get("/ui/../Cargo.toml").await;
    assert_eq!(res.status(), 404);

    let head = app
        .http
        .head(app.url("/ui/dutycard-card.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
}

#[tokio::test]
async fn without_the_backstage_routes_the_page_says_how_to_list_services() {
    let app = TestApp::spawn(settings("[backstage]\nenabled = false\n", &[])).await;
    let html = app.get("/ui/").await.text().await.unwrap();
    assert!(
        html.contains(r#"<meta name="dutycard-services" content="">"#),
        "{html}"
    );
}

#[test]
fn the_ui_routes_are_left_out_of_the_openapi_document_like_docs() {
    let spec: Value = serde_json::from_str(&dutycard_server::openapi::spec_json()).unwrap();
    let paths = spec["paths"].as_object().unwrap();
    assert!(paths.contains_key("/v1/cards/{service_id}"));
    assert!(
        paths
            .keys()
            .all(|p| !p.starts_with("/ui") && !p.starts_with("/docs")),
        "{:?}",
        paths.keys().collect::<Vec<_>>()
    );
}
