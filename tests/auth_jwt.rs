//! `server.auth.mode = "jwt"`: tokens signed with a locally generated
//! ES256 key (`tests/fixtures/jwt-es256-test-key.pem`, made with
//! `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`; test
//! only), the JWKS served by a mock server on port 0. Triggers go to a mock
//! Events API, which shows the identity (`sub`) in `custom_details`.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{TestApp, error_of, settings};

const ISSUER: &str = "https://backstage.example.test";
const AUDIENCE: &str = "backstage";
const KID: &str = "test-key";
const SUBJECT: &str = "user:default/alice";
const ROUTING_KEY: &str = "R0123456789abcdef0123456789abcde";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn key(name: &str) -> EncodingKey {
    EncodingKey::from_ec_pem(&fixture(name)).expect("an EC private key in PKCS#8 PEM")
}

fn signing_key() -> EncodingKey {
    key("jwt-es256-test-key.pem")
}

fn other_key() -> EncodingKey {
    key("jwt-es256-other-key.pem")
}

fn jwk(key: &EncodingKey, kid: &str) -> Jwk {
    let mut jwk = Jwk::from_encoding_key(key, Algorithm::ES256).expect("public JWK");
    jwk.common.key_id = Some(kid.to_owned());
    jwk
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims() -> Value {
    json!({"sub": SUBJECT, "iss": ISSUER, "aud": AUDIENCE, "iat": now(), "exp": now() + 600})
}

fn token(key: &EncodingKey, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, key).expect("token")
}

async fn mount_jwks(server: &MockServer, keys: Vec<Jwk>) {
    Mock::given(method("GET"))
        .and(path("/.well-known/jwks.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(JwkSet { keys }))
        .mount(server)
        .await;
}

/// For other tests (the browser's JWT portal): a JWKS mock serving the
/// test key, the `[server.auth]` TOML trusting it, and a valid token. The
/// mock server must live as long as the app.
pub(crate) async fn jwt_auth() -> (MockServer, String, String) {
    let jwks = MockServer::start().await;
    mount_jwks(&jwks, vec![jwk(&signing_key(), KID)]).await;
    let toml = format!(
        r#"
[server.auth]
mode = "jwt"
[server.auth.jwt]
jwks_url = "{}/.well-known/jwks.json"
issuer = "{ISSUER}"
audience = ["{AUDIENCE}"]
"#,
        jwks.uri()
    );
    let token = token(&signing_key(), KID, &claims());
    (jwks, toml, token)
}

struct JwtApp {
    app: TestApp,
    jwks: MockServer,
    events: MockServer,
}

async fn spawn() -> JwtApp {
    let jwks = MockServer::start().await;
    mount_jwks(&jwks, vec![jwk(&signing_key(), KID)]).await;
    let events = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/enqueue"))
        .respond_with(ResponseTemplate::new(202).set_body_json(
            json!({"status": "success", "message": "Event processed", "dedup_key": "k"}),
        ))
        .mount(&events)
        .await;
    let toml = format!(
        r#"
[server.auth]
mode = "jwt"
[server.auth.jwt]
jwks_url = "{}/.well-known/jwks.json"
issuer = "{ISSUER}"
audience = ["{AUDIENCE}"]
leeway_secs = 0
jwks_min_refresh_secs = 0
[pagerduty]
api_base_url = "{}"
events_base_url = "{}"
[trigger]
allow = "any"
"#,
        jwks.uri(),
        events.uri(),
        events.uri()
    );
    let app = TestApp::spawn(settings(&toml, &[])).await;
    JwtApp { app, jwks, events }
}

async fn trigger_with(app: &TestApp, bearer: Option<&str>) -> reqwest::Response {
    let mut request = app
        .http
        .post(app.url("/v1/incidents"))
        .json(&json!({"integration_key": ROUTING_KEY, "summary": "jwt"}));
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("request sent")
}

async fn enqueued_bodies(events: &MockServer) -> Vec<Value> {
    events
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == "/enqueue")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

async fn jwks_fetches(jwks: &MockServer) -> usize {
    jwks.received_requests().await.unwrap_or_default().len()
}

#[tokio::test]
async fn a_valid_jwt_is_accepted_and_its_subject_is_the_caller() {
    let t = spawn().await;
    let valid = token(&signing_key(), KID, &claims());
    for _ in 0..3 {
        assert_eq!(trigger_with(&t.app, Some(&valid)).await.status(), 202);
    }
    let bodies = enqueued_bodies(&t.events).await;
    assert_eq!(bodies.len(), 3);
    assert_eq!(
        bodies[0]["payload"]["custom_details"]["triggered_by"],
        SUBJECT
    );
    assert_eq!(bodies[0]["client"], "dutycard");
    assert_eq!(bodies[0]["payload"]["class"], "manual trigger");
    assert_eq!(bodies[0]["payload"]["severity"], "error");
    assert_eq!(jwks_fetches(&t.jwks).await, 1, "keys are cached");

    // Attribution cannot be spoofed; the caller's other details are kept.
    let response = t
        .app
        .http
        .post(t.app.url("/v1/incidents"))
        .bearer_auth(&valid)
        .json(&json!({
            "integration_key": ROUTING_KEY,
            "summary": "spoof",
            "custom_details": {"triggered_by": "mallory", "ticket": "OPS-1"},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let bodies = enqueued_bodies(&t.events).await;
    let details = &bodies[3]["payload"]["custom_details"];
    assert_eq!(details["triggered_by"], SUBJECT);
    assert_eq!(details["ticket"], "OPS-1");
}

#[tokio::test]
async fn missing_expired_foreign_and_forged_jwts_are_refused() {
    let t = spawn().await;
    let mut expired = claims();
    expired["exp"] = json!(now() - 120);
    let mut wrong_issuer = claims();
    wrong_issuer["iss"] = json!("https://evil.example.test");
    let mut wrong_audience = claims();
    wrong_audience["aud"] = json!("someone-else");
    let mut no_subject = claims();
    no_subject.as_object_mut().unwrap().remove("sub");
    let hmac = jsonwebtoken::encode(
        &Header {
            kid: Some(KID.into()),
            ..Header::new(Algorithm::HS256)
        },
        &claims(),
        &EncodingKey::from_secret(b"guessable"),
    )
    .unwrap();
    let cases = [
        ("expired", token(&signing_key(), KID, &expired)),
        ("wrong issuer", token(&signing_key(), KID, &wrong_issuer)),
        (
            "wrong audience",
            token(&signing_key(), KID, &wrong_audience),
        ),
        ("no sub", token(&signing_key(), KID, &no_subject)),
        ("bad signature", token(&other_key(), KID, &claims())),
        ("unknown kid", token(&other_key(), "nobody", &claims())),
        ("HS256", hmac),
        ("garbage", "not.a.jwt".to_owned()),
    ];
    for (case, bad) in &cases {
        let response = trigger_with(&t.app, Some(bad)).await;
        assert_eq!(response.status(), 401, "{case}");
        let (code, _) = error_of(response).await;
        assert_eq!(code, "unauthorized", "{case}");
    }
    let response = trigger_with(&t.app, None).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"dutycard\""
    );
    assert!(enqueued_bodies(&t.events).await.is_empty());
    // Cards are behind the same check.
    let response = t.app.get("/v1/cards/PABC123").await;
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn an_unknown_kid_refetches_the_jwks_for_rotated_keys() {
    let t = spawn().await;
    let rotated = token(&other_key(), "rotated", &claims());
    assert_eq!(trigger_with(&t.app, Some(&rotated)).await.status(), 401);
    let fetches = jwks_fetches(&t.jwks).await;

    // The issuer rotates: the JWKS now has both keys.
    t.jwks.reset().await;
    mount_jwks(
        &t.jwks,
        vec![jwk(&signing_key(), KID), jwk(&other_key(), "rotated")],
    )
    .await;
    assert_eq!(trigger_with(&t.app, Some(&rotated)).await.status(), 202);
    assert_eq!(
        jwks_fetches(&t.jwks).await,
        1,
        "one refetch after the reset"
    );
    assert!(fetches >= 1);
    let valid = token(&signing_key(), KID, &claims());
    assert_eq!(trigger_with(&t.app, Some(&valid)).await.status(), 202);
    assert_eq!(jwks_fetches(&t.jwks).await, 1, "known kids need no fetch");
}

/// An app whose JWKS endpoint answers `jwks_response`, with a 500 ms request
/// deadline.
async fn spawn_with_jwks(jwks_response: ResponseTemplate) -> (TestApp, MockServer) {
    let jwks = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/.well-known/jwks.json"))
        .respond_with(jwks_response)
        .mount(&jwks)
        .await;
    let toml = format!(
        r#"
[server]
request_deadline_ms = 500
[server.auth]
mode = "jwt"
[server.auth.jwt]
jwks_url = "{}/.well-known/jwks.json"
issuer = "{ISSUER}"
audience = ["{AUDIENCE}"]
jwks_min_refresh_secs = 0
[trigger]
deadline_ms = 500
allow = "any"
"#,
        jwks.uri()
    );
    (TestApp::spawn(settings(&toml, &[])).await, jwks)
}

#[tokio::test]
async fn a_slow_identity_provider_is_a_503_within_the_request_deadline() {
    let slow = ResponseTemplate::new(200)
        .set_body_json(JwkSet {
            keys: vec![jwk(&signing_key(), KID)],
        })
        .set_delay(std::time::Duration::from_secs(5));
    let (app, jwks) = spawn_with_jwks(slow).await;
    let valid = token(&signing_key(), KID, &claims());
    let started = std::time::Instant::now();
    let response = trigger_with(&app, Some(&valid)).await;
    let elapsed = started.elapsed();
    assert_eq!(response.status(), 503);
    let (code, body) = error_of(response).await;
    assert_eq!(code, "identity_provider_unavailable", "{body}");
    assert!(
        elapsed < std::time::Duration::from_millis(1500),
        "answered after {elapsed:?}, past the 500 ms deadline"
    );
    assert!(jwks_fetches(&jwks).await >= 1);
}

#[tokio::test]
async fn a_failing_jwks_endpoint_is_a_503_not_a_401() {
    let (app, _jwks) = spawn_with_jwks(ResponseTemplate::new(500)).await;
    let valid = token(&signing_key(), KID, &claims());
    let response = trigger_with(&app, Some(&valid)).await;
    assert_eq!(response.status(), 503);
    let (code, body) = error_of(response).await;
    assert_eq!(code, "identity_provider_unavailable", "{body}");
    // A request without a token is still the caller's problem.
    assert_eq!(trigger_with(&app, None).await.status(), 401);
}
