//! `freshness` (issue 16): how long a change at PagerDuty takes to reach an
//! open card stream (trigger at the simulator → its signed webhook →
//! invalidation → refetch → the new card on `GET /v1/stream`), and what a
//! portal costs upstream per minute with webhooks on (incident and on-call
//! TTLs stretched to 5 min, the TTL as safety net) versus off (default TTLs).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sim::SimHandle;

use super::{Bench, NotRun, Phase};
use crate::harness::{ServerOptions, ServerProcess, free_port};
use crate::load::{self, LoadSpec, Outcome};
use crate::report::Row;

/// Pause between two timed changes (> the default 250 ms batch pacing).
const SETTLE: Duration = Duration::from_millis(500);
/// Cards on the stream and in the portal load.
const CARDS: usize = 10;
/// How often something changes at PagerDuty during the portal load (one of
/// the cards' incidents opens or resolves).
const CHANGE_EVERY: Duration = Duration::from_secs(10);

impl Bench {
    /// See the module docs.
    pub async fn freshness(&self) -> Result<Vec<Row>, NotRun> {
        let mut rows = Vec::new();
        for webhooks in [true, false] {
            let mut setup = self.sim_setup(self.opts.services.min(50), None);
            setup.jitter_ms = 0;
            let sim = setup.start().await?;
            let result = self.freshness_on(&sim, webhooks).await;
            sim.shutdown().await;
            rows.extend(result?);
        }
        Ok(rows)
    }

    async fn freshness_on(&self, sim: &SimHandle, webhooks: bool) -> Result<Vec<Row>, NotRun> {
        let port = free_port().map_err(|e| format!("picking a port: {e}"))?;
        let mut opts = ServerOptions {
            port: Some(port),
            ..self.server_options()
        };
        if webhooks {
            let url = format!("http://127.0.0.1:{port}/v1/webhooks/pagerduty");
            let secret = self.subscribe(sim, &url).await?;
            opts.extra_toml = format!("\n[webhooks]\nsecrets = [{secret:?}]\n");
            opts.cache = vec![
                ("incidents_ttl_secs".into(), 300),
                ("oncall_ttl_secs".into(), 300),
            ];
        }
        let server = ServerProcess::start(&self.server_bin, sim, &opts, &self.http).await?;
        let targets = routable(sim);
        if targets.is_empty() {
            server.stop();
            return Err(NotRun::Failed("no routable simulated service".into()));
        }
        let mut rows = Vec::new();
        let result = async {
            if webhooks {
                rows.push(self.change_to_stream(sim, &server, &targets).await?);
            }
            rows.push(self.portal_calls(sim, &server, &targets, webhooks).await?);
            Ok::<_, NotRun>(())
        }
        .await;
        server.stop();
        result.map(|()| rows)
    }

    /// Creates an account-wide incident subscription to `url`; its secret.
    async fn subscribe(&self, sim: &SimHandle, url: &str) -> Result<String, NotRun> {
        let answer: Value = self
            .http
            .post(format!("{}/webhook_subscriptions", sim.base_url()))
            .header("Authorization", format!("Token token={}", sim.api_token()))
            .json(&json!({"webhook_subscription": {
                "type": "webhook_subscription",
                "delivery_method": {"type": "http_delivery_method", "url": url},
                "events": ["incident.triggered", "incident.acknowledged", "incident.resolved"],
                "filter": {"type": "account_reference"},
            }}))
            .send()
            .await
            .map_err(|e| format!("subscribing: {e}"))?
            .json()
            .await
            .map_err(|e| format!("subscribing: {e}"))?;
        answer["webhook_subscription"]["delivery_method"]["secret"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| NotRun::Failed(format!("no secret in {answer}")))
    }

    /// Triggers one incident at a time at the simulator and times it to the
    /// card event that shows it on an open multi-card stream.
    async fn change_to_stream(
        &self,
        sim: &SimHandle,
        server: &ServerProcess,
        targets: &[(String, String)],
    ) -> Result<Row, NotRun> {
        let ids: Vec<&str> = targets.iter().map(|(id, _)| id.as_str()).collect();
        let url = format!(
            "{}/v1/stream?service_ids={}",
            server.base_url,
            ids.join(",")
        );
        let mut stream = self
            .http
            .get(&url)
            .timeout(Duration::from_secs(600))
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let mut buf = String::new();
        for _ in 0..targets.len() {
            next_card(&mut stream, &mut buf, Duration::from_secs(30)).await?;
        }
        let changes = ((self.opts.trigger_secs * 2.0) as usize).clamp(10, 200);
        let mut hist = load::new_histogram();
        let phase = Phase::begin(sim, server);
        let started = Instant::now();
        for n in 0..changes {
            let (service, key) = &targets[n % targets.len()];
            let title = format!("freshness {n}");
            let t0 = Instant::now();
            self.enqueue(sim, key, "trigger", &title).await?;
            loop {
                let item = next_card(&mut stream, &mut buf, Duration::from_secs(30)).await?;
                if item["service_id"] == service.as_str() && item.to_string().contains(&title) {
                    break;
                }
            }
            let _ = hist.record(t0.elapsed().as_micros().max(1) as u64);
            // Resolved again (not timed), seen on the stream, then a pause
            // longer than cache.min_batch_interval_ms: each timed change is
            // an isolated one, not paced behind the previous refetch.
            self.enqueue(sim, key, "resolve", &title).await?;
            loop {
                let item = next_card(&mut stream, &mut buf, Duration::from_secs(30)).await?;
                if item["service_id"] == service.as_str() && !item.to_string().contains(&title) {
                    break;
                }
            }
            tokio::time::sleep(SETTLE).await;
        }
        let result = load::LoadResult {
            hist,
            requests: changes as u64,
            errors: 0,
            elapsed: started.elapsed(),
            card_views: 0,
            cards_with_data: 0,
            cards_stale: 0,
            first_error: None,
        };
        let mut row = Row::from_load(
            "freshness",
            "change -> card on a stream, webhooks on",
            1,
            &result,
        );
        phase.end(&mut row, sim, server);
        row.extra.insert("changes".into(), json!(changes));
        Ok(row)
    }

    /// A paced portal (CARDS cards viewed round-robin) while an incident
    /// opens or resolves every [`CHANGE_EVERY`]; upstream calls per minute.
    async fn portal_calls(
        &self,
        sim: &SimHandle,
        server: &ServerProcess,
        targets: &[(String, String)],
        webhooks: bool,
    ) -> Result<Row, NotRun> {
        let urls: Arc<Vec<String>> = Arc::new(
            targets
                .iter()
                .map(|(id, _)| format!("{}/v1/cards/{id}", server.base_url))
                .collect(),
        );
        for url in urls.iter() {
            let _ = self.http.get(url).send().await;
        }
        let secs = self.opts.portal_secs;
        let spec = LoadSpec {
            concurrency: 4,
            duration: Duration::from_secs_f64(secs),
            max_requests: self.opts.max_requests,
            period: Some(Duration::from_millis(250)),
        };
        let changer = {
            let (bench_http, base, targets) = (self.http.clone(), sim.base_url(), targets.to_vec());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(CHANGE_EVERY);
                for n in 0.. {
                    tick.tick().await;
                    let (_, key) = &targets[n % targets.len()];
                    let action = if (n / targets.len()) % 2 == 0 {
                        "trigger"
                    } else {
                        "resolve"
                    };
                    let body = json!({"routing_key": key, "event_action": action,
                        "dedup_key": format!("portal-{}", n % targets.len()),
                        "payload": {"summary": "portal change", "source": "bench", "severity": "error"}});
                    let _ = bench_http
                        .post(format!("{base}/v2/enqueue"))
                        .json(&body)
                        .send()
                        .await;
                }
            })
        };
        let enqueued = sim.stats().count("POST", "/v2/enqueue");
        let phase = Phase::begin(sim, server);
        let http = self.http.clone();
        let result = load::run(&spec, move |worker, seq| {
            let (http, urls) = (http.clone(), urls.clone());
            async move {
                let url = &urls[(worker + seq as usize) % urls.len()];
                match http.get(url).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        Outcome {
                            ok: true,
                            card_views: 1,
                            ..Outcome::default()
                        }
                    }
                    Ok(r) => Outcome {
                        error: Some(format!("GET {url}: {}", r.status())),
                        ..Outcome::default()
                    },
                    Err(e) => Outcome {
                        error: Some(format!("GET {url}: {e}")),
                        ..Outcome::default()
                    },
                }
            }
        })
        .await;
        changer.abort();
        let variant = if webhooks {
            "portal, webhooks on (incident/on-call TTL 300 s)"
        } else {
            "portal, webhooks off (default TTLs)"
        };
        let mut row = Row::from_load("freshness", variant, 4, &result);
        phase.end(&mut row, sim, server);
        // Our own Events API calls are the changes, not the portal's cost.
        let ours = sim.stats().count("POST", "/v2/enqueue") - enqueued;
        let calls = row.upstream_calls.saturating_sub(ours);
        row.set_upstream(calls, row.upstream_429);
        let minutes = result.elapsed.as_secs_f64() / 60.0;
        if minutes > 0.0 {
            row.extra.insert(
                "upstream_calls_per_minute".into(),
                json!(calls as f64 / minutes),
            );
        }
        Ok(row)
    }

    async fn enqueue(
        &self,
        sim: &SimHandle,
        key: &str,
        action: &str,
        dedup: &str,
    ) -> Result<(), NotRun> {
        let body = json!({"routing_key": key, "event_action": action, "dedup_key": dedup,
            "payload": {"summary": dedup, "source": "dutycard-bench", "severity": "error"}});
        let r = self
            .http
            .post(format!("{}/v2/enqueue", sim.base_url()))
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("enqueue: {e}"))?;
        if !r.status().is_success() {
            return Err(NotRun::Failed(format!("enqueue answered {}", r.status())));
        }
        Ok(())
    }
}

/// Up to [`CARDS`] active services with a routing key: (id, key).
fn routable(sim: &SimHandle) -> Vec<(String, String)> {
    sim.account()
        .services
        .iter()
        .filter(|s| s.status == "active")
        .filter_map(|s| {
            let key = s
                .integrations
                .iter()
                .find_map(|i| i.integration_key.clone())?;
            Some((s.id.clone(), key))
        })
        .take(CARDS)
        .collect()
}

/// The data of the next `card` event of an SSE response.
async fn next_card(
    stream: &mut reqwest::Response,
    buf: &mut String,
    within: Duration,
) -> Result<Value, NotRun> {
    let read = async {
        loop {
            while let Some(end) = buf.find("\n\n") {
                let frame: String = buf.drain(..end + 2).collect();
                if frame.lines().any(|l| l == "event: card") {
                    let data: String = frame
                        .lines()
                        .filter_map(|l| l.strip_prefix("data: ").or(l.strip_prefix("data:")))
                        .collect();
                    return serde_json::from_str(&data).map_err(|e| format!("card event: {e}"));
                }
            }
            match stream.chunk().await {
                Ok(Some(chunk)) => buf.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(None) => return Err("the stream ended".to_owned()),
                Err(e) => return Err(format!("stream: {e}")),
            }
        }
    };
    tokio::time::timeout(within, read)
        .await
        .map_err(|_| NotRun::Failed(format!("no card event within {within:?}")))?
        .map_err(NotRun::Failed)
}
