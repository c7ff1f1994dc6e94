//! What a new user meets first: HEAD, the docs, logs, the demo, check-config.

use crate::helpers::{SimApp, small_sim, spawn_with_sim};

/// Uptime checkers send HEAD: every GET route answers it with the GET's
/// status and headers and no body.
#[tokio::test]
async fn head_is_answered_wherever_get_is() {
    let SimApp { app, sim } = spawn_with_sim(small_sim(), "").await;
    let id = sim.account().services[0].id.clone();
    for path in [
        "/healthz".to_owned(),
        "/openapi.json".to_owned(),
        format!("/v1/cards/{id}"),
        format!("/api/pagerduty/services/{id}"),
        "/api/pagerduty/health".to_owned(),
    ] {
        let get = app.get(&path).await;
        let get_status = get.status();
        let get_type = get.headers().get("content-type").cloned();
        let get_len = get.bytes().await.unwrap().len();
        let head = app.http.head(app.url(&path)).send().await.unwrap();
        assert_eq!(head.status(), get_status, "{path}");
        assert_eq!(
            head.headers().get("content-type").cloned(),
            get_type,
            "{path}"
        );
        let length: usize = head
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or_else(|| panic!("{path}: HEAD without Content-Length"));
        assert_eq!(length, get_len, "{path}: the GET's length");
        assert!(head.bytes().await.unwrap().is_empty(), "{path}: no body");
    }
    // HEAD on a POST-only route is a 405 like GET, not a 404.
    let head = app
        .http
        .head(app.url("/v1/incidents"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 405);
}

/// `/docs`: an unknown file is our JSON 404; the explorer cannot be framed
/// or sniffed.
#[tokio::test]
async fn the_docs_are_hardened_and_unknown_files_get_our_json_404() {
    let SimApp { app, sim: _sim } = spawn_with_sim(small_sim(), "").await;
    let res = app.get("/docs/no-such-file.js").await;
    assert_eq!(res.status(), 404);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "route_not_found", "{body}");
    let res = app.get("/docs/").await;
    assert_eq!(res.status(), 200);
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("content-security-policy", "frame-ancestors 'none'"),
    ] {
        assert_eq!(res.headers().get(name).unwrap(), value, "{name}");
    }
}

/// A client trickling its body (1 byte every 100 ms of a 1 KiB body) gets
/// 408 once the request deadline passes, instead of holding the
/// connection; several at once are all cut off.
#[tokio::test]
async fn a_body_that_does_not_arrive_within_the_deadline_is_a_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let toml = "[server]\nrequest_deadline_ms = 800\n[trigger]\ndeadline_ms = 800\n";
    let SimApp { app, sim: _sim } = spawn_with_sim(small_sim(), toml).await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let slow_sender = |address: String| async move {
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream
            .write_all(
                b"POST /v1/incidents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1024\r\n\r\n{",
            )
            .await
            .unwrap();
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            tokio::select! {
                read = stream.read(&mut buf) => match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        answer.extend_from_slice(&buf[..n]);
                        if answer.windows(4).any(|w| w == b"\r\n\r\n") { break; }
                    }
                },
                _ = tokio::time::sleep(std::time::Duration::from_millis(100)) => {
                    if stream.write_all(b" ").await.is_err() { break; }
                }
            }
        }
        String::from_utf8_lossy(&answer).into_owned()
    };
    let answers = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        futures::future::join_all((0..5).map(|_| slow_sender(address.clone()))),
    )
    .await
    .expect("every slow sender was answered within 10 s");
    for answer in answers {
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
}
