use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pagerduty::{
    CallObserver, CallRecord, Client, ClientBuilder, Credentials, OAuthCredentials, RetryPolicy,
    SecretString,
};
use wiremock::MockServer;

pub const API_TOKEN: &str = "y_NbAkKc66ryYTWUXYEu";
pub const CLIENT_SECRET: &str = "cs-9f2b7c1e-very-secret";
pub const ROUTING_KEY: &str = "R0123456789abcdef0123456789abcde"; // 32 chars

/// Retries fast enough for tests (waits of a few ms, 429 wait capped at 50 ms).
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
        deadline: Duration::from_secs(5),
    }
}

/// A port nothing listens on (bound, noted, closed).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

pub fn token_builder(server: &MockServer) -> ClientBuilder {
    Client::builder(Credentials::ApiToken(SecretString::from(API_TOKEN)))
        .api_base_url(server.uri())
        .events_base_url(format!("{}/v2", server.uri()))
        .request_timeout(Duration::from_secs(5))
        .retry_policy(fast_retry())
}

pub fn token_client(server: &MockServer) -> Client {
    token_builder(server).build().expect("client builds")
}

pub fn oauth_creds() -> OAuthCredentials {
    OAuthCredentials {
        client_id: "app-client-id-123".into(),
        client_secret: SecretString::from(CLIENT_SECRET),
        subdomain: "acme".into(),
        scopes: vec!["services.read".into(), "incidents.read".into()],
    }
}

pub fn oauth_builder(server: &MockServer) -> ClientBuilder {
    Client::builder(Credentials::OAuth(oauth_creds()))
        .api_base_url(server.uri())
        .events_base_url(format!("{}/v2", server.uri()))
        .oauth_token_url(format!("{}/oauth/token", server.uri()))
        .request_timeout(Duration::from_secs(5))
        .retry_policy(fast_retry())
}

/// Everything the client logged (target `pagerduty`, all levels), from
/// every test of this binary.
static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs one global subscriber for the whole binary, before any test
/// touches a tracing callsite (a per-test `set_default` races with other
/// test threads over tracing's callsite interest cache).
pub fn init_tracing() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("pagerduty=trace")
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .with_ansi(false)
            .with_writer(|| LogWriter)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("first subscriber");
    });
}

/// The client's log output so far.
pub fn logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned()
}

/// Every test body runs under this bound (and with the log capture on).
pub async fn bounded<F: Future>(f: F) -> F::Output {
    init_tracing();
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("test took longer than 20 s")
}

/// Records every attempt.
#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<CallRecord>>);

impl CallObserver for Recorder {
    fn on_call(&self, record: &CallRecord) {
        self.0.lock().unwrap().push(record.clone());
    }
}

impl Recorder {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
    pub fn records(&self) -> Vec<CallRecord> {
        self.0.lock().unwrap().clone()
    }
}

/// `new` contains every key of `orig` with an equal value (recursively);
/// keys only in `new` must be null or an empty list.
pub fn assert_untrimmed(orig: &serde_json::Value, new: &serde_json::Value, path: &str) {
    use serde_json::Value;
    match (orig, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let nv = b
                    .get(k)
                    .unwrap_or_else(|| panic!("`{path}.{k}` was dropped"));
                assert_untrimmed(v, nv, &format!("{path}.{k}"));
            }
            for (k, v) in b {
                if !a.contains_key(k) {
                    assert!(
                        v.is_null() || v.as_array().is_some_and(|x| x.is_empty()),
                        "`{path}.{k}` was added with a value: {v}"
                    );
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "`{path}` length changed");
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                assert_untrimmed(x, y, &format!("{path}[{i}]"));
            }
        }
        _ => assert_eq!(orig, new, "`{path}` changed"),
    }
}
