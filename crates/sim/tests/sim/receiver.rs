//! A webhook receiver on 127.0.0.1, port 0: it hands every request it gets
//! to the test through a channel and answers with scripted statuses.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use tokio::sync::{Semaphore, mpsc};

/// One request the receiver got.
#[derive(Debug)]
pub struct Received {
    /// Header names lowercased.
    pub headers: HashMap<String, String>,
    /// The raw body, as signed.
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map_or("", String::as_str)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// What the receiver answers: scripted statuses first, then `then`.
struct Script {
    statuses: VecDeque<u16>,
    then: u16,
    /// Hold every answer this long (to provoke timeouts).
    delay: Duration,
}

pub struct Receiver {
    pub url: String,
    rx: mpsc::UnboundedReceiver<Received>,
    handle: actix_web::dev::ServerHandle,
    /// Answers wait for a permit when the receiver was started held.
    gate: Option<Arc<Semaphore>>,
}

async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    tx: web::Data<mpsc::UnboundedSender<Received>>,
    script: web::Data<Mutex<Script>>,
    gate: web::Data<Option<Arc<Semaphore>>>,
) -> HttpResponse {
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                v.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let _ = tx.send(Received {
        headers,
        body: body.to_vec(),
    });
    let (status, delay) = {
        let mut s = script.lock().unwrap();
        let status = s.statuses.pop_front().unwrap_or(s.then);
        (status, s.delay)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Some(gate) = gate.as_ref() {
        let _ = gate.acquire().await;
    }
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).finish()
}

impl Receiver {
    /// Answers `statuses` in order, then `then` for ever.
    pub async fn start(statuses: &[u16], then: u16) -> Self {
        Self::start_with_delay(statuses, then, Duration::ZERO).await
    }

    /// Like [`Receiver::start`], holding every answer for `delay`.
    pub async fn start_with_delay(statuses: &[u16], then: u16, delay: Duration) -> Self {
        Self::build(statuses, then, delay, None).await
    }

    /// Answers `status`, but only once [`Receiver::release`] is called.
    pub async fn start_held(status: u16) -> Self {
        Self::build(
            &[],
            status,
            Duration::ZERO,
            Some(Arc::new(Semaphore::new(0))),
        )
        .await
    }

    /// Lets the held answers go.
    pub fn release(&self) {
        if let Some(gate) = &self.gate {
            gate.add_permits(Semaphore::MAX_PERMITS / 2);
        }
    }

    async fn build(
        statuses: &[u16],
        then: u16,
        delay: Duration,
        gate: Option<Arc<Semaphore>>,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let tx = web::Data::new(tx);
        let gate_data = web::Data::new(gate.clone());
        let script = web::Data::new(Mutex::new(Script {
            statuses: statuses.iter().copied().collect(),
            then,
            delay,
        }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(tx.clone())
                .app_data(script.clone())
                .app_data(gate_data.clone())
                .default_service(web::to(receive))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            url,
            rx,
            handle,
            gate,
        }
    }

    /// The next request, waiting at most 10 s.
    pub async fn next(&mut self) -> Received {
        tokio::time::timeout(Duration::from_secs(10), self.rx.recv())
            .await
            .expect("a webhook within 10 s")
            .expect("the receiver is running")
    }

    /// Every request received so far, without waiting.
    pub fn drain(&mut self) -> Vec<Received> {
        let mut out = Vec::new();
        while let Ok(r) = self.rx.try_recv() {
            out.push(r);
        }
        out
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}
